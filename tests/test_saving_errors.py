"""Bad input to the loaders is a clear error that changes nothing; saves are atomic."""

from __future__ import annotations

import json
import os
import zipfile

import h5py
import numpy as np
import pytest

from polykeras.layers import Conv2D, Dense, Flatten, Input
from polykeras.models import Model, load_model, model_from_json, model_from_yaml
from polykeras.saving import (
    FileFormatError,
    SavingError,
    UnknownLayerError,
    WeightsMismatchError,
    files,
    hdf5,
)


def _mlp(hidden=3, name_prefix=""):
    inp = Input(shape=(4,))
    x = Dense(hidden, name=f"{name_prefix}hidden")(inp)
    return Model(inp, Dense(2, name=f"{name_prefix}out")(x))


def _assert_unchanged(model, before):
    after = model.get_weights()
    assert len(after) == len(before)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


@pytest.fixture
def model():
    return _mlp()


def test_missing_file(model, tmp_path):
    before = model.get_weights()
    with pytest.raises(FileNotFoundError, match="no such file.*nope.h5"):
        model.load_weights(tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_model(tmp_path / "nope.h5")
    _assert_unchanged(model, before)


def test_folder_instead_of_file(model, tmp_path):
    with pytest.raises(FileFormatError, match="folder"):
        model.load_weights(tmp_path)


@pytest.mark.parametrize(
    "content,hint",
    [
        (b"hello, these are not weights\n", "no HDF5 signature"),
        (b"", "empty"),
        (b'{"class_name": "Model", "config": {}}', "model_from_json"),
        (b"\x80\x04\x95pickle", "pickle"),
    ],
)
def test_files_of_the_wrong_type(model, tmp_path, content, hint):
    path = tmp_path / "weights.h5"
    path.write_bytes(content)
    before = model.get_weights()
    with pytest.raises(FileFormatError, match="not an HDF5 file") as err:
        model.load_weights(path)
    assert hint in str(err.value)
    assert str(path) in str(err.value)
    with pytest.raises(FileFormatError):
        load_model(path)
    _assert_unchanged(model, before)


def test_keras3_zip_file_without_a_model_is_refused(model, tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(FileFormatError, match="config.json does not describe a model"):
        load_model(path)


def test_keras3_weights_h5_layout_that_does_not_fit_is_refused(model, tmp_path):
    path = tmp_path / "model.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", data=np.ones((4, 3)))
    with pytest.raises(WeightsMismatchError, match="layers/dense/vars"):
        model.load_weights(path)


def test_hdf5_file_without_weights(model, tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.ones(3))
    with pytest.raises(FileFormatError, match="no weights"):
        model.load_weights(path)
    with pytest.raises(FileFormatError, match="no model"):
        load_model(path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_file(model, tmp_path, keep):
    path = tmp_path / "w.h5"
    _mlp().save_weights(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    before = model.get_weights()
    with pytest.raises(FileFormatError):
        model.load_weights(path)
    _assert_unchanged(model, before)


def test_corrupted_metadata(model, tmp_path):
    path = tmp_path / "w.h5"
    _mlp().save_weights(path)
    data = bytearray(path.read_bytes())
    data[8:600] = os.urandom(592)  # superblock and root group headers
    path.write_bytes(bytes(data))
    before = model.get_weights()
    with pytest.raises(FileFormatError):
        model.load_weights(path)
    _assert_unchanged(model, before)


def test_weights_of_a_model_with_other_layers(model, tmp_path):
    inp = Input(shape=(4,))
    other = Model(inp, Dense(2)(Dense(3)(Dense(5)(inp))))
    path = tmp_path / "other.h5"
    other.save_weights(path)
    before = model.get_weights()
    with pytest.raises(WeightsMismatchError) as err:
        model.load_weights(path)
    message = str(err.value)
    assert "3 layer(s) with weights" in message and "2 layer(s) with weights" in message
    _assert_unchanged(model, before)


def test_weights_with_other_shapes_name_the_layer_and_both_shapes(model, tmp_path):
    path = tmp_path / "other.h5"
    _mlp(hidden=7).save_weights(path)
    before = model.get_weights()
    with pytest.raises(WeightsMismatchError) as err:
        model.load_weights(path)
    message = str(err.value)
    assert "'hidden'" in message and "(4, 3)" in message and "(4, 7)" in message
    _assert_unchanged(model, before)


def test_a_mismatch_in_the_last_layer_leaves_the_first_untouched(model, tmp_path):
    inp = Input(shape=(4,))
    other = Model(inp, Dense(5, name="out")(Dense(3, name="hidden")(inp)))
    path = tmp_path / "other.h5"
    other.save_weights(path)
    before = model.get_weights()
    with pytest.raises(WeightsMismatchError, match="out"):
        model.load_weights(path)
    _assert_unchanged(model, before)


def test_weights_with_a_different_weight_count(tmp_path):
    inp = Input(shape=(4,))
    no_bias = Model(inp, Dense(2, use_bias=False, name="d")(inp))
    inp2 = Input(shape=(4,))
    with_bias = Model(inp2, Dense(2, name="d")(inp2))
    path = tmp_path / "w.h5"
    no_bias.save_weights(path)
    before = with_bias.get_weights()
    with pytest.raises(WeightsMismatchError, match="expects 2 weight array"):
        with_bias.load_weights(path)
    _assert_unchanged(with_bias, before)


def test_load_model_on_a_weights_file(tmp_path):
    path = tmp_path / "w.h5"
    _mlp().save_weights(path)
    with pytest.raises(FileFormatError, match="weights only"):
        load_model(path)


def test_unknown_layer_class_says_how_to_register_it():
    doc = json.loads(_mlp().to_json())
    doc["config"]["layers"][1]["class_name"] = "FancyDense"
    with pytest.raises(UnknownLayerError) as err:
        model_from_json(json.dumps(doc))
    message = str(err.value)
    assert "FancyDense" in message
    assert "custom_objects" in message and "polykeras_register_layers" in message


@pytest.mark.parametrize(
    "text,match",
    [
        ("{not json", "not valid JSON"),
        ("class_name: Model", "not valid JSON"),
        ("[1, 2, 3]", "must describe a model"),
        ('{"class_name": "Model"}', "no 'layers'"),
        ('{"class_name": "Dense", "config": {"units": "many"}}', "Dense"),
        ('{"class_name": 5, "config": {}}', "class_name"),
    ],
)
def test_bad_json(text, match):
    with pytest.raises(SavingError, match=match):
        model_from_json(text)


def test_bad_yaml():
    with pytest.raises(SavingError, match="not valid YAML"):
        model_from_yaml("a: [1, 2\nb: }")
    with pytest.raises(SavingError, match="must describe a model"):
        model_from_yaml("- 1\n- 2\n")


def test_graph_with_wrong_shapes_names_the_layer():
    inp = Input(shape=(8, 8, 1))
    model = Model(inp, Dense(2)(Flatten()(Conv2D(2, (3, 3), name="conv")(inp))))
    doc = json.loads(model.to_json())
    doc["config"]["layers"][0]["config"]["batch_input_shape"] = [None, 2, 2, 1]
    with pytest.raises(SavingError, match="conv"):
        model_from_json(json.dumps(doc))


# -- writing ------------------------------------------------------------------------------------
def test_save_is_atomic_when_writing_fails_halfway(model, tmp_path, monkeypatch):
    path = tmp_path / "model.h5"
    model.save(path)
    original = path.read_bytes()
    real = hdf5.write_weights

    def fail_halfway(group, layers):
        real(group, layers[:1])
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(hdf5, "write_weights", fail_halfway)
    other = _mlp(hidden=5)
    with pytest.raises(RuntimeError, match="disk on fire"):
        other.save(path)
    with pytest.raises(RuntimeError, match="disk on fire"):
        other.save_weights(path)
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["model.h5"]
    load_model(path)


def test_save_is_atomic_when_the_rename_fails(model, tmp_path, monkeypatch):
    path = tmp_path / "w.h5"
    model.save_weights(path)
    original = path.read_bytes()

    def no_rename(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(files.os, "replace", no_rename)
    with pytest.raises(OSError, match="rename failed"):
        _mlp(hidden=6).save_weights(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["w.h5"]


def test_save_replaces_and_keeps_the_file_mode(model, tmp_path):
    path = tmp_path / "w.h5"
    model.save_weights(path)
    os.chmod(path, 0o640)
    _mlp().save_weights(path)
    assert os.stat(path).st_mode & 0o777 == 0o640
    fresh = _mlp()
    fresh.load_weights(path)


def test_save_errors(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "missing" / "m.h5")
    path = tmp_path / "m.h5"
    model.save(path)
    with pytest.raises(FileExistsError):
        model.save(path, overwrite=False)
    with pytest.raises(SavingError, match="contradicts"):
        model.save(tmp_path / "m.keras", save_format="h5")
    with pytest.raises(IsADirectoryError):
        model.save_weights(tmp_path)
    with pytest.raises(ValueError, match="save_format"):
        model.save(path, save_format="tf")
    assert sorted(os.listdir(tmp_path)) == ["m.h5"]


def test_unbuilt_model_cannot_be_described():
    from polykeras.models import Sequential

    with pytest.raises(SavingError, match="not built"):
        Model.get_config(Sequential([Dense(2)]))


def test_load_weights_into_an_unbuilt_model(tmp_path):
    from polykeras.models import Sequential

    path = tmp_path / "w.h5"
    Sequential([Dense(2, input_shape=(3,))]).save_weights(path)
    with pytest.raises(SavingError, match="not built"):
        Sequential([Dense(2)]).load_weights(path)


def test_by_name_with_no_matching_names(model, tmp_path):
    path = tmp_path / "w.h5"
    _mlp(name_prefix="other_").save_weights(path)
    before = model.get_weights()
    with pytest.raises(WeightsMismatchError, match="other_hidden"):
        model.load_weights(path, by_name=True)
    _assert_unchanged(model, before)
