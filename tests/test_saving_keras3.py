"""Keras 3's own formats, ``.keras`` and ``.weights.h5``: written and read by polykeras,
exchanged with real Keras 3 (torch backend, where installed) in both directions.

The live checks run tests/fixtures/keras3_native.py in a subprocess, as
tests/test_saving_keras.py does for the legacy HDF5 format, and skip when Keras 3 is not
importable.  A few files that script wrote with Keras 3.15.1 are shipped
(tests/fixtures/keras3_native/), so reading Keras 3's files is checked everywhere."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import keras3_available

import polykeras as keras
from polykeras.models import load_model
from polykeras.saving import keras3

FIXTURES = Path(__file__).parent / "fixtures"
SHIPPED = FIXTURES / "keras3_native"  # files Keras 3.15.1 wrote (keras3_native.py's k3_*)
# Predictions agree elementwise to rtol 1e-6 (measured: at most 7.4e-7 relative, 3.6e-7
# absolute, numpy and torch backends).  After a training step the weights agree to about
# one float32 rounding (measured: at most 1.2e-7 absolute); on weights near zero that is a
# large relative difference, so the step comparison also allows 1e-6 absolute.
EXACT = {"rtol": 1e-6, "atol": 1e-7}
STEP = {"rtol": 1e-6, "atol": 1e-6}


def _load_guide_models():
    spec = importlib.util.spec_from_file_location("saving_models", FIXTURES / "saving_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sm = _load_guide_models()


def _npz(path):
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def _close(got, expected, tol=EXACT):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, **tol)


def _guide_model(name, seed=3):
    keras.utils.set_random_seed(seed)
    model = sm.build(name, keras)
    sm.perturb(model)
    return model


def _load_native():
    spec = importlib.util.spec_from_file_location("keras3_native", FIXTURES / "keras3_native.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


native = _load_native()  # its training helpers (it imports Keras only when run)


def _step(model, name="mlp"):
    return native.step(model, name)


def _compiled(name="mlp", opt="adam"):
    model = _guide_model(name)
    native.compile_for_training(keras, model, name, opt)
    return model


def _compiled_mlp():
    return _compiled("mlp", "adam")


# -- layout ---------------------------------------------------------------------------------------
def test_snake_case_follows_keras3_naming():
    assert keras3.to_snake_case("MaxPooling2D") == "max_pooling2d"
    assert keras3.to_snake_case("SimpleRNN") == "simple_rnn"
    assert keras3.to_snake_case("BatchNormalization") == "batch_normalization"
    assert keras3.to_snake_case("GlobalAveragePooling1D") == "global_average_pooling1d"
    assert keras3.to_snake_case("Conv2D") == "conv2d"


def test_weights_file_uses_keras3_group_paths(tmp_path):
    model = _guide_model("multi_io")
    model.save_weights(tmp_path / "m.weights.h5")
    found = {}
    with h5py.File(tmp_path / "m.weights.h5", "r") as f:
        f.visititems(lambda n, o: found.update({n: getattr(o, "shape", None)}))
    assert found["layers/embedding/vars/0"] == (50, 8)
    assert found["layers/lstm/cell/vars/0"] == (8, 24)
    assert found["layers/lstm/cell/vars/2"] == (24,)
    assert found["layers/dense/vars/0"] == (11, 8)
    assert "layers/input_layer/vars" in found and "vars" in found
    assert not any(n.startswith("optimizer") for n in found)  # not compiled


def test_nested_and_wrapped_layers_nest_their_groups(tmp_path):
    paths = [p for p, _, v in keras3.walk(_guide_model("batchnorm")) if v]
    assert "layers/sequential/layers/batch_normalization/vars" in paths
    assert "layers/batch_normalization/vars" in paths
    paths = [p for p, _, v in keras3.walk(_guide_model("time_distributed")) if v]
    assert paths == [
        "layers/time_distributed/layer/layers/dense/vars",
        "layers/time_distributed/layer/layers/dense_1/vars",
    ]
    paths = [p for p, _, v in keras3.walk(_guide_model("shared_vision")) if v]
    assert "layers/functional/layers/conv2d_1/vars" in paths


def test_keras_archive_members_and_config(tmp_path):
    model = _compiled_mlp()
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        config = json.loads(zf.read("config.json"))
        metadata = json.loads(zf.read("metadata.json"))
    assert metadata["keras_version"].startswith("3.")
    assert config["class_name"] == "Functional"
    assert config["module"] == "keras.src.models.functional"
    assert {"config", "registered_name", "build_config", "compile_config"} <= set(config)
    dense = config["config"]["layers"][1]
    assert dense["module"] == "keras.layers"
    history = dense["inbound_nodes"][0]["args"][0]["config"]["keras_history"]
    assert history == [config["config"]["layers"][0]["name"], 0, 0]
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    assert config["compile_config"]["loss"] == "categorical_crossentropy"


# -- polykeras both ways -------------------------------------------------------------------------
@pytest.mark.parametrize("name", sm.NAMES)
def test_keras_file_round_trips(tmp_path, name):
    model = _guide_model(name)
    x = sm.inputs(name)
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    _close(sm.as_list(again.predict(x)), sm.as_list(model.predict(x)))
    fresh = sm.build(name, keras)
    model.save_weights(tmp_path / "m.weights.h5")
    fresh.load_weights(tmp_path / "m.weights.h5")
    _close(sm.as_list(fresh.predict(x)), sm.as_list(model.predict(x)))


def test_keras_file_weights_load_with_load_weights(tmp_path):
    model = _guide_model("zoo")
    model.save(tmp_path / "m.keras")
    fresh = sm.build("zoo", keras)
    fresh.load_weights(tmp_path / "m.keras")
    x = sm.inputs("zoo")
    _close(sm.as_list(fresh.predict(x)), sm.as_list(model.predict(x)))


def test_optimizer_state_and_compile_settings_round_trip(tmp_path):
    model = _compiled_mlp()
    _step(model)
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert type(again.optimizer).__name__ == "Adam"
    assert again.optimizer.iterations == 1
    assert again.loss == "categorical_crossentropy"
    for a, b in zip(_step(again), _step(model)):
        np.testing.assert_array_equal(a, b)


def test_weights_file_carries_optimizer_state(tmp_path):
    model = _compiled_mlp()
    _step(model)
    model.save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5", "r") as f:
        assert len(f["optimizer/vars"]) == 2 + 2 * 6  # iteration, lr, m and v per weight
    other = _compiled_mlp()
    other.load_weights(tmp_path / "m.weights.h5")
    assert other.optimizer.iterations == 1
    for a, b in zip(_step(other), _step(model)):
        np.testing.assert_array_equal(a, b)


def test_include_optimizer_false_leaves_compile_out(tmp_path):
    model = _compiled_mlp()
    model.save(tmp_path / "m.keras", include_optimizer=False)
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        assert "compile_config" not in json.loads(zf.read("config.json"))
    assert getattr(load_model(tmp_path / "m.keras"), "_compiled", None) in (None, False)


def test_format_follows_the_file_name_and_save_format(tmp_path):
    model = _guide_model("mlp")
    model.save(tmp_path / "a.keras")
    model.save(tmp_path / "a.h5")
    model.save(tmp_path / "b.model", save_format="keras")
    model.save_weights(tmp_path / "w.weights.h5")
    model.save_weights(tmp_path / "w.h5")
    assert zipfile.is_zipfile(tmp_path / "a.keras")
    assert zipfile.is_zipfile(tmp_path / "b.model")
    assert h5py.is_hdf5(tmp_path / "a.h5")
    with h5py.File(tmp_path / "w.weights.h5", "r") as f:
        assert "layers" in f and "layer_names" not in f.attrs
    with h5py.File(tmp_path / "w.h5", "r") as f:
        assert "layer_names" in f.attrs
    with pytest.raises(ValueError, match="contradicts"):
        model.save(tmp_path / "c.keras", save_format="h5")
    with pytest.raises(ValueError, match="save_format='tf'"):
        model.save(tmp_path / "c", save_format="tf")
    again = load_model(tmp_path / "b.model")  # recognised by its zip signature
    x = sm.inputs("mlp")
    _close(sm.as_list(again.predict(x)), sm.as_list(model.predict(x)))


def test_by_name_is_refused_for_keras3_files(tmp_path):
    model = _guide_model("mlp")
    model.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match="by_name"):
        model.load_weights(tmp_path / "w.weights.h5", by_name=True)


# -- files Keras 3.15 wrote, shipped (tests/fixtures/keras3_native/, made by running
# keras3_native.py), so the reading direction is checked without Keras installed ---------------
@pytest.mark.parametrize("name", ["multi_io", "batchnorm"])
def test_shipped_keras3_keras_files_load(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(SHIPPED / f"{name}.keras")
    expected = _npz(SHIPPED / f"{name}.npz")
    _close(sm.as_list(model.predict(sm.inputs(name))), expected)


def test_shipped_keras3_weights_file_loads():
    model = sm.build("zoo", keras)
    model.load_weights(SHIPPED / "zoo.weights.h5")
    _close(sm.as_list(model.predict(sm.inputs("zoo"))), _npz(SHIPPED / "zoo.npz"))


def test_shipped_keras3_training_state_resumes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(SHIPPED / "train_multi_io_rmsprop.keras")
    assert type(model.optimizer).__name__ == "RMSprop"
    assert model.optimizer.iterations == 1
    expected = _npz(SHIPPED / "train_multi_io_rmsprop.next.npz")
    _close(_step(model, "multi_io"), expected, STEP)


# -- live Keras 3 ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras3_native(tmp_path_factory):
    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed: no reference to compare with")
    out = tmp_path_factory.mktemp("keras3_native")
    expected = {}
    for name in sm.NAMES:
        model = _guide_model(name)
        model.save(out / f"pk_{name}.keras")
        model.save_weights(out / f"pk_{name}.weights.h5")
        expected[name] = sm.as_list(model.predict(sm.inputs(name)))
    for name, opt in native.TRAIN_CASES:
        model = _compiled(name, opt)
        _step(model, name)
        model.save(out / f"pk_train_{name}_{opt}.keras")
        expected[f"train_{name}_{opt}.next"] = _step(model, name)
    env = dict(os.environ, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, str(FIXTURES / "keras3_native.py"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary_path = out / "summary.json"
    if result.returncode != 0 or not summary_path.exists():
        pytest.fail(f"the Keras 3 script failed:\n{result.stderr[-3000:]}")
    return out, json.loads(summary_path.read_text()), expected


@pytest.mark.parametrize("name", sm.NAMES)
def test_keras3_files_load_in_polykeras(keras3_native, name):
    out, summary, _ = keras3_native
    assert summary[f"k3_{name}"] == "ok", summary[f"k3_{name}"]
    assert summary["keras_version"].startswith("3.")
    expected = _npz(out / f"k3_{name}.npz")
    x = sm.inputs(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model(out / f"k3_{name}.keras")
    _close(sm.as_list(loaded.predict(x)), expected)
    same = sm.build(name, keras)
    same.load_weights(out / f"k3_{name}.weights.h5")
    _close(sm.as_list(same.predict(x)), expected)


@pytest.mark.parametrize("how", ["load_model", "load_weights"])
@pytest.mark.parametrize("name", sm.NAMES)
def test_polykeras_files_load_in_keras3(keras3_native, name, how):
    out, summary, expected = keras3_native
    status = summary.get(f"pk_{name}.{how}")
    assert status == "ok", status
    _close(_npz(out / f"pk_{name}.{how}.npz"), expected[name])


@pytest.mark.parametrize("name, opt", native.TRAIN_CASES)
def test_keras3_training_state_resumes_in_polykeras(keras3_native, name, opt):
    out, summary, _ = keras3_native
    key = f"k3_train_{name}_{opt}"
    assert summary[key] == "ok", summary[key]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(out / f"{key}.keras")
    assert model.optimizer.iterations == 1
    _close(_step(model, name), _npz(out / f"{key}.next.npz"), STEP)
    other = sm.build(name, keras)
    native.compile_for_training(keras, other, name, opt)
    other.load_weights(out / f"{key}.weights.h5")
    assert other.optimizer.iterations == 1
    _close(_step(other, name), _npz(out / f"{key}.next.npz"), STEP)
    uncompiled = sm.build(name, keras)  # the optimizer's arrays are then left unread
    uncompiled.load_weights(out / f"{key}.weights.h5")
    for a, b in zip(uncompiled.get_weights(), load_model(out / f"{key}.keras").get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name, opt", native.TRAIN_CASES)
def test_polykeras_training_state_resumes_in_keras3(keras3_native, name, opt):
    out, summary, expected = keras3_native
    key = f"pk_train_{name}_{opt}"
    assert summary.get(key) == "ok", summary.get(key)
    assert summary[f"{key}.iterations"] == 1
    _close(_npz(out / f"{key}.next.npz"), expected[f"train_{name}_{opt}.next"], STEP)


# -- hostile archives ------------------------------------------------------------------------------
def _saved(tmp_path, name="mlp"):
    model = _guide_model(name)
    path = tmp_path / "good.keras"
    model.save(path)
    return model, path


def _rewrite(src, dst, replace=None, extra=(), compression=zipfile.ZIP_STORED):
    """A copy of the archive ``src`` with members replaced or added (written raw, with no
    checks, as an attacker would)."""
    replace = dict(replace or {})
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            data = replace.pop(info.filename, None)
            zout.writestr(info.filename, data if data is not None else zin.read(info))
        for name, data in list(replace.items()) + list(extra):
            zout.writestr(name, data)
    return dst


def _config(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("config.json"))


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "member", ["../escaped.txt", "/tmp/escaped.txt", "a/../../escaped.txt", "..\\escaped.txt"]
)
def test_path_traversal_member_names_are_refused(tmp_path, member):
    _, good = _saved(tmp_path)
    inner = tmp_path / "inner"
    inner.mkdir()
    bad = _rewrite(good, inner / "bad.keras", extra=[(member, b"owned")])
    before = _listing(tmp_path)
    with pytest.raises(keras.saving.UnsafeContentError, match="outside the archive"):
        load_model(bad)
    with pytest.raises(keras.saving.UnsafeContentError, match="outside the archive"):
        sm.build("mlp", keras).load_weights(bad)
    assert _listing(tmp_path) == before
    assert not os.path.exists("/tmp/escaped.txt")


def test_zip_bomb_is_refused_before_it_is_expanded(tmp_path):
    _, good = _saved(tmp_path)
    bomb = b"\0" * (keras3.MIN_ARCHIVE_ALLOWANCE + 2**20)  # deflates about 1000x
    bad = _rewrite(
        good,
        tmp_path / "bomb.keras",
        extra=[("padding.bin", bomb)],
        compression=zipfile.ZIP_DEFLATED,
    )
    assert os.path.getsize(bad) < 2**20
    with pytest.raises(keras.saving.UnsafeContentError, match="zip bomb"):
        load_model(bad)


def test_oversized_config_member_is_refused(tmp_path):
    _, good = _saved(tmp_path)
    big = b" " * (keras.saving.limits.MAX_CONFIG_BYTES + 1)
    bad = _rewrite(
        good, tmp_path / "big.keras", replace={"config.json": big}, compression=zipfile.ZIP_DEFLATED
    )
    with pytest.raises(keras.saving.UnsafeContentError):
        load_model(bad)


@pytest.mark.parametrize(
    "where, entry",
    [
        ("model", {"module": "os", "class_name": "system", "config": {"command": "touch x"}}),
        ("layer", {"module": "subprocess", "class_name": "Popen", "config": {"args": "id"}}),
        (
            "activation",
            {
                "module": "builtins",
                "class_name": "function",
                "config": "eval",
                "registered_name": "function",
            },
        ),
    ],
)
def test_config_naming_code_outside_the_registry_is_refused(tmp_path, where, entry):
    _, good = _saved(tmp_path)
    config = _config(good)
    if where == "model":
        config = {**entry, "config": config["config"]}
    elif where == "layer":
        config["config"]["layers"][1].update(entry)
    else:
        config["config"]["layers"][1]["config"]["activation"] = entry
    bad = _rewrite(good, tmp_path / "bad.keras", replace={"config.json": json.dumps(config)})
    with pytest.raises(keras.saving.UnsafeContentError, match="refused") as err:
        load_model(bad)
    named = entry["config"] if where == "activation" else entry["module"]
    assert named in str(err.value)


def test_lambda_bytecode_is_refused_and_never_run(tmp_path):
    _, good = _saved(tmp_path)
    config = _config(good)
    import base64
    import marshal

    def payload(x):
        open("owned-by-lambda", "w").close()  # pragma: no cover - must never run
        return x

    code = base64.b64encode(marshal.dumps(payload.__code__)).decode()
    dense = config["config"]["layers"][1]
    dense.update(
        {
            "class_name": "Lambda",
            "config": {
                "name": "dense",
                "function": {
                    "class_name": "__lambda__",
                    "config": {"code": code, "defaults": None, "closure": None},
                },
                "arguments": {},
            },
        }
    )
    bad = _rewrite(good, tmp_path / "bad.keras", replace={"config.json": json.dumps(config)})
    with pytest.raises(keras.saving.UnsafeContentError, match="never loads or calls code"):
        load_model(bad)
    assert not os.path.exists("owned-by-lambda")


def test_mismatched_weight_shapes_are_refused_and_change_nothing(tmp_path):
    _, good = _saved(tmp_path)
    wrong = tmp_path / "wrong.weights.h5"
    model = _guide_model("mlp")
    model.save_weights(wrong)
    with h5py.File(wrong, "r+") as f:
        del f["layers/dense_1/vars/0"]
        f["layers/dense_1/vars/0"] = np.zeros((16, 5), "float32")
    bad = _rewrite(good, tmp_path / "bad.keras", replace={"model.weights.h5": wrong.read_bytes()})
    with pytest.raises(keras.saving.WeightsMismatchError, match=r"\(16, 16\).*\(16, 5\)"):
        load_model(bad)
    target = sm.build("mlp", keras)
    before = target.get_weights()
    for path in (bad, wrong):
        with pytest.raises(keras.saving.WeightsMismatchError, match="dense_1/vars/0"):
            target.load_weights(path)
    for a, b in zip(before, target.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_of_another_model_are_refused(tmp_path):
    _guide_model("sequential").save_weights(tmp_path / "seq.weights.h5")
    with pytest.raises(keras.saving.WeightsMismatchError):
        sm.build("mlp", keras).load_weights(tmp_path / "seq.weights.h5")


@pytest.mark.parametrize("declared", ["units", "batch_shape"])
def test_huge_declared_shapes_are_refused(tmp_path, declared):
    _, good = _saved(tmp_path)
    config = _config(good)
    if declared == "units":
        config["config"]["layers"][1]["config"]["units"] = 2**27  # 2**31 kernel values
    else:
        config["config"]["layers"][0]["config"]["batch_shape"] = [None, 10**12]
    bad = _rewrite(good, tmp_path / "bad.keras", replace={"config.json": json.dumps(config)})
    with pytest.raises(keras.saving.LimitExceededError, match="MAX_PARAMS"):
        load_model(bad)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.1])
def test_truncated_archive_is_refused(tmp_path, keep):
    _, good = _saved(tmp_path)
    data = good.read_bytes()
    bad = tmp_path / "cut.keras"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(keras.saving.FileFormatError, match="truncated|corrupted|zip"):
        load_model(bad)


def test_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    model, good = _saved(tmp_path)
    before = good.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(keras3, "write_store", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        model.save(good)
    assert good.read_bytes() == before
    assert _listing(tmp_path) == ["good.keras"]


class Scale(keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return keras.ops.multiply(inputs, self.factor)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_custom_layers_need_custom_objects(tmp_path):
    inputs = keras.Input(shape=(2,))
    model = keras.Model(inputs, Scale(3.0)(keras.layers.Dense(2)(inputs)))
    model.save(tmp_path / "m.keras")
    with pytest.raises(keras.saving.UnknownLayerError, match="Scale"):
        load_model(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras", custom_objects={"Scale": Scale})
    x = np.ones((1, 2), "float32")
    _close(sm.as_list(again.predict(x)), sm.as_list(model.predict(x)))
    # a custom class from the user's own module (as Keras 3 writes it) is allowed by name
    config = _config(tmp_path / "m.keras")
    config["config"]["layers"][-1]["module"] = "my_project.layers"
    bad = _rewrite(tmp_path / "m.keras", tmp_path / "b.keras", {"config.json": json.dumps(config)})
    load_model(bad, custom_objects={"Scale": Scale})
    with pytest.raises(keras.saving.UnsafeContentError, match="my_project.layers"):
        load_model(bad)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_weighted_metrics_and_sample_weight_mode_survive_a_save(tmp_path, suffix):
    from polykeras.layers import Dense, Input
    from polykeras.models import Model, load_model

    inp = Input(shape=(3,))
    model = Model(inp, Dense(2, activation="softmax")(inp))
    model.compile(
        optimizer="adam",
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        weighted_metrics=["accuracy"],
    )
    path = tmp_path / f"m{suffix}"
    model.save(path)
    loaded = load_model(path)
    assert loaded.weighted_metrics
    assert loaded.metrics_names == model.metrics_names
