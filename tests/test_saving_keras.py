"""Files and configs written by Keras load in polykeras and predict the same, and polykeras'
files load in Keras.

- Keras 1 and Keras 2.2.4 configs: hand-written fixtures in Keras' exact formats
  (tests/fixtures/keras1_*.json, keras2_mlp.json/.yaml), and weight files laid out by hand
  as those versions wrote them (Keras 1: 12-array LSTMs, 9-array GRUs, Theano-ordered
  kernels).
- tf.keras 2 (2.21) and Keras 3 (3.15) files shipped in tests/fixtures (made by
  tests/fixtures/keras3_reference.py), so these checks run without Keras installed.
- Live Keras 3 (where it is installed): every guide model is built and saved by Keras and
  loaded here, and saved here and loaded by Keras, in one subprocess.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import polykeras as keras
from polykeras.models import Sequential, load_model, model_from_json, model_from_yaml
from polykeras.saving import conversions

FIXTURES = Path(__file__).parent / "fixtures"
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _load_guide_models():
    spec = importlib.util.spec_from_file_location("saving_models", FIXTURES / "saving_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sm = _load_guide_models()


def _npz(path):
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def _close(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, **TOL)


def _write_keras_h5(path, layers, keras_version=None, backend=None, model_config=None):
    """A weights file laid out as Keras 1.2 / 2.2 wrote it with h5py 2: byte-string
    attributes, one group per layer, datasets at <layer>/<weight name>."""
    with h5py.File(path, "w") as f:
        root = f
        if model_config is not None:
            f.attrs["model_config"] = np.bytes_(json.dumps(model_config).encode())
            root = f.create_group("model_weights")
        for obj in {id(f): f, id(root): root}.values():
            if keras_version is not None:
                obj.attrs["keras_version"] = np.bytes_(keras_version.encode())
            if backend is not None:
                obj.attrs["backend"] = np.bytes_(backend.encode())
        root.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        for name, weights in layers:
            g = root.create_group(name)
            g.attrs["weight_names"] = (
                np.array([w.encode() for w, _ in weights]) if weights else np.asarray([])
            )
            for wname, value in weights:
                g.create_dataset(wname, data=value)


# -- Keras 1 ---------------------------------------------------------------------------------------
def _keras1_model():
    return model_from_json((FIXTURES / "keras1_functional.json").read_text())


def _keras1_inputs(n=3):
    rng = np.random.default_rng(5)
    return [
        rng.normal(size=(n, 3, 8, 8)).astype("float32"),
        rng.integers(0, 20, size=(n, 5)).astype("int32"),
        rng.integers(0, 20, size=(n, 5)).astype("int32"),
    ]


def test_keras1_functional_config_builds_the_same_graph():
    model = _keras1_model()
    assert model.input_names == ["image", "text_a", "text_b"]
    layer = model.get_layer
    assert type(layer("convolution2d_1")).__name__ == "Conv2D"
    assert layer("convolution2d_1").data_format == "channels_first"
    assert layer("convolution2d_1").padding == "same"
    assert type(layer("merge_1")).__name__ == "Concatenate"
    assert layer("gru_1").reset_after is False
    assert layer("lstm_1").recurrent_activation is keras.activations.get("hard_sigmoid")
    assert len(layer("lstm_1")._inbound_nodes) == 2
    assert len(layer("embedding_1")._inbound_nodes) == 2
    assert model.inputs[1].dtype == "int32"
    assert model.outputs[0].shape == (None, 1)
    again = model_from_json(model.to_json())  # and it round-trips in Keras 2's format
    assert again.get_config() == model.get_config()


def _to_keras1_layout(layer, weights, theano):
    """What Keras 1 stored for ``layer`` whose weights are ``weights`` in today's layout."""
    kind = type(layer).__name__
    name = layer.name
    if kind == "LSTM":
        kernel, rec, bias = weights
        u = layer.units
        out = []
        for gate, k in (("i", 0), ("c", 2), ("f", 1), ("o", 3)):  # Keras 1 order: i, c, f, o
            cols = slice(k * u, (k + 1) * u)
            out += [
                (f"{name}_W_{gate}", kernel[:, cols]),
                (f"{name}_U_{gate}", rec[:, cols]),
                (f"{name}_b_{gate}", bias[cols]),
            ]
        return out
    if kind == "GRU":
        kernel, rec, bias = weights
        u = layer.units
        out = []
        for k, gate in enumerate("zrh"):
            cols = slice(k * u, (k + 1) * u)
            out += [
                (f"{name}_W_{gate}", kernel[:, cols]),
                (f"{name}_U_{gate}", rec[:, cols]),
                (f"{name}_b_{gate}", bias[cols]),
            ]
        return out
    if kind == "Conv2D":
        kernel = weights[0][::-1, ::-1] if theano else weights[0]
        return [(f"{name}_W", np.transpose(kernel, (3, 2, 0, 1))), (f"{name}_b", weights[1])]
    if kind == "Conv1D":
        kernel = weights[0][::-1] if theano else weights[0]
        return [(f"{name}_W", kernel[:, None, :, :]), (f"{name}_b", weights[1])]
    suffixes = ["W", "b"] if len(weights) == 2 else ["W"]
    return [(f"{name}_{s}", w) for s, w in zip(suffixes, weights)]


@pytest.mark.parametrize("backend", [None, "tensorflow", "theano"])
@pytest.mark.parametrize("whole_model", [False, True])
def test_keras1_weights_are_converted_on_loading(backend, whole_model, tmp_path):
    keras.utils.set_random_seed(11)
    model = _keras1_model()
    rng = np.random.default_rng(0)
    model.set_weights(
        [rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    x = _keras1_inputs()
    expected = model.predict(x)
    layers = [
        (
            layer.name,
            _to_keras1_layout(layer, layer.get_weights(), backend == "theano")
            if layer.weights
            else [],
        )
        for layer in model.layers
    ]
    path = tmp_path / "keras1.h5"
    config = json.loads((FIXTURES / "keras1_functional.json").read_text())
    _write_keras_h5(
        path,
        layers,
        keras_version="1.2.2" if whole_model else None,
        backend=backend,
        model_config=config if whole_model else None,
    )
    fresh = load_model(path) if whole_model else _keras1_model()
    if not whole_model:
        fresh.load_weights(path)
    np.testing.assert_allclose(fresh.predict(x), expected, **TOL)
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras1_sequential_json():
    model = model_from_json((FIXTURES / "keras1_sequential.json").read_text())
    assert isinstance(model, Sequential)
    assert [type(lay).__name__ for lay in model.layers] == ["Dense", "Dropout", "Dense"]
    assert model.layers[1].rate == 0.2
    assert model.predict(np.ones((2, 6), dtype="float32")).shape == (2, 3)


def test_keras1_conversions_by_hand():
    u, d = 2, 3
    blocks = {g: np.full((d, u), i, dtype="float32") for i, g in enumerate("icfo")}
    rec = {g: np.full((u, u), 10 + i, dtype="float32") for i, g in enumerate("icfo")}
    bias = {g: np.full((u,), 20 + i, dtype="float32") for i, g in enumerate("icfo")}
    arrays = [a for g in "icfo" for a in (blocks[g], rec[g], bias[g])]
    inp = keras.Input(shape=(4, d))
    lstm = keras.layers.LSTM(u)
    lstm(inp)
    kernel, recurrent, b = conversions.convert(lstm, arrays, 1, None)
    assert kernel[0].tolist() == [0, 0, 2, 2, 1, 1, 3, 3]  # i, f, c, o
    assert recurrent[0].tolist() == [10, 10, 12, 12, 11, 11, 13, 13]
    assert b.tolist() == [20, 20, 22, 22, 21, 21, 23, 23]
    conv = keras.layers.Conv1D(5, 3)
    conv(keras.Input(shape=(6, 2)))
    k11 = np.arange(5 * 2 * 3, dtype="float32").reshape(5, 2, 3, 1)  # Keras 1.1 layout
    k12 = conversions.convert(conv, [k11, np.zeros(5)], 1, None)[0]
    assert k12.shape == (3, 2, 5)
    assert k12[1, 0, 4] == k11[4, 0, 1, 0]
    flipped = conversions.convert(conv, [k12, np.zeros(5)], 2, "theano")[0]
    np.testing.assert_array_equal(flipped, k12[::-1])


# -- Keras 2.2.4 -------------------------------------------------------------------------------
def _numpy_mlp(weights, x):
    h = np.maximum(x @ weights[0] + weights[1], 0)
    h = np.maximum(h @ weights[2] + weights[3], 0)
    z = h @ weights[4] + weights[5]
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_keras2_json_yaml_and_weights_layout(tmp_path):
    from_json = model_from_json((FIXTURES / "keras2_mlp.json").read_text())
    from_yaml = model_from_yaml((FIXTURES / "keras2_mlp.yaml").read_text())
    assert from_json.get_config() == from_yaml.get_config()
    assert [lay.name for lay in from_json.layers] == ["input_1", "dense_1", "dense_2", "dense_3"]
    rng = np.random.default_rng(1)
    shapes = [(20, 16), (16,), (16, 16), (16,), (16, 4), (4,)]
    weights = [rng.normal(size=s).astype("float32") for s in shapes]
    layers = [("input_1", [])] + [
        (
            f"dense_{i}",
            [
                (f"dense_{i}/kernel:0", weights[2 * i - 2]),
                (f"dense_{i}/bias:0", weights[2 * i - 1]),
            ],
        )
        for i in (1, 2, 3)
    ]
    path = tmp_path / "keras2.h5"
    _write_keras_h5(path, layers, keras_version="2.2.4", backend="tensorflow")
    from_yaml.load_weights(path)
    x = rng.normal(size=(5, 20)).astype("float32")
    np.testing.assert_allclose(from_yaml.predict(x), _numpy_mlp(weights, x), **TOL)


def test_polykeras_weights_file_has_keras2_layout(tmp_path):
    model = model_from_json((FIXTURES / "keras2_mlp.json").read_text())
    path = tmp_path / "w.h5"
    model.save_weights(path)
    with h5py.File(path, "r") as f:
        assert list(f.attrs["layer_names"]) == [b"input_1", b"dense_1", b"dense_2", b"dense_3"]
        assert f.attrs["keras_version"].startswith(b"2.")
        assert f.attrs["backend"] == keras.backend.backend().encode()
        assert list(f["dense_1"].attrs["weight_names"]) == [b"dense_1/kernel:0", b"dense_1/bias:0"]
        assert f["dense_1/dense_1/kernel:0"].shape == (20, 16)
        assert len(f["input_1"].attrs["weight_names"]) == 0


# -- shipped files from tf.keras 2 and Keras 3 ------------------------------------------------
SHIPPED = sorted(p.stem for p in FIXTURES.glob("*.h5"))


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_keras_files_load_and_predict_the_same(stem):
    name = stem.split("_", 1)[1]
    h5 = FIXTURES / f"{stem}.h5"
    expected = _npz(FIXTURES / f"{stem}.npz")
    x = sm.inputs(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model(h5)
    _close(sm.as_list(loaded.predict(x)), expected)
    same = sm.build(name, keras)
    same.load_weights(h5)
    _close(sm.as_list(same.predict(x)), expected)
    json_path = FIXTURES / f"{stem}.json"
    if json_path.exists():
        from_json = model_from_json(json_path.read_text())
        from_json.load_weights(h5)
        _close(sm.as_list(from_json.predict(x)), expected)


def test_shipped_files_were_written_by_keras():
    versions = {}
    for stem in SHIPPED:
        with h5py.File(FIXTURES / f"{stem}.h5", "r") as f:
            versions[stem] = f.attrs["keras_version"]
    assert versions["keras3_shared_vision"].startswith("3.")
    assert versions["tfkeras2_shared_vision"].startswith("2.")


def test_tfkeras2_compile_settings_are_restored():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(FIXTURES / "tfkeras2_mlp.h5")  # optimizer "Custom>Adam"
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.get_config()["learning_rate"] == pytest.approx(0.01)
    assert model.loss == "categorical_crossentropy"
    assert model._compiled.metrics == ["accuracy"]
    # model.metrics holds metric objects (Keras 3): the loss tracker, the compiled metrics
    model.evaluate(
        np.zeros((2, *model.input_shape[1:]), "float32"),
        np.eye(model.output_shape[-1], dtype="float32")[[0, 1]],
        verbose=0,
    )
    assert [m.name for m in model.metrics] == ["loss", "compile_metrics"]


def test_tfkeras2_nested_model_node_indices_are_read_keras2_style():
    doc = json.loads((FIXTURES / "tfkeras2_shared_vision.json").read_text())
    concat = [lay for lay in doc["config"]["layers"] if lay["class_name"] == "Concatenate"][0]
    assert [ref[1] for ref in concat["inbound_nodes"][0]] == [1, 2]  # own node counted
    doc3 = json.loads((FIXTURES / "keras3_shared_vision.json").read_text())
    concat3 = [lay for lay in doc3["config"]["layers"] if lay["class_name"] == "Concatenate"][0]
    args = concat3["inbound_nodes"][0]["args"][0]
    assert [a["config"]["keras_history"][1] for a in args] == [0, 1]  # Keras 3 counts from 0
    for path in ("tfkeras2_shared_vision.json", "keras3_shared_vision.json"):
        model = model_from_json((FIXTURES / path).read_text())
        nested = [lay for lay in model.layers if isinstance(lay, keras.Model)][0]
        assert len(nested._inbound_nodes) == 3


# -- live Keras 3 ---------------------------------------------------------------------------------
# polykeras writes Keras 2's format, which tf.keras 2 reads in full (checked with tf.keras
# 2.21 when the fixtures were made).  Keras 3's reader of that format has two gaps:
KERAS3_CANNOT_READ = {
    "shared_vision": "Keras 3 reads Keras 2 node indices of a nested model called in the "
    "graph without the model's own node 0 (it fails on tf.keras 2's file for "
    "this model too)",
    "batchnorm": "Keras 3 counts a nested Sequential's calls from 0 in output_layers, where "
    "Keras 2 counts the model's own node 0 first (it fails on tf.keras 2's file "
    "for this model too)",
    "time_distributed": "Keras 3 treats a wrapped Keras 2 model's one-element input list as "
    "a list structure and cannot call it per timestep (it cannot read tf.keras "
    "2's file for this model either)",
}


@pytest.fixture(scope="module")
def keras3_run(tmp_path_factory):
    if importlib.util.find_spec("keras") is None:
        pytest.skip(
            "Keras 3 is not installed (pip install keras); the shipped fixtures still "
            "check Keras' files"
        )
    if importlib.util.find_spec("torch") is None:
        pytest.skip("Keras 3 runs here on its torch backend, and torch is not installed")
    out = tmp_path_factory.mktemp("keras3")
    expected = {}
    for name in sm.NAMES:
        keras.utils.set_random_seed(3)
        model = sm.build(name, keras)
        sm.perturb(model)
        model.save(out / f"pk_{name}.h5")
        model.save_weights(out / f"pk_{name}.w.h5")
        expected[name] = sm.as_list(model.predict(sm.inputs(name)))
    env = dict(os.environ, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("REFERENCE_KERAS", None)
    result = subprocess.run(
        [sys.executable, str(FIXTURES / "keras3_reference.py"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary_path = out / "summary_k3.json"
    if result.returncode != 0 or not summary_path.exists():
        pytest.fail(f"the Keras 3 reference script failed:\n{result.stderr[-3000:]}")
    return out, json.loads(summary_path.read_text()), expected


@pytest.mark.parametrize("name", sm.NAMES)
def test_files_written_by_keras3_load_in_polykeras(keras3_run, name):
    out, summary, _ = keras3_run
    assert summary[f"k3_{name}"] == "ok", summary[f"k3_{name}"]
    assert summary["keras_version"].startswith("3.")
    expected = _npz(out / f"k3_{name}.npz")
    x = sm.inputs(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model(out / f"k3_{name}.h5")
    _close(sm.as_list(loaded.predict(x)), expected)
    same = sm.build(name, keras)
    same.load_weights(out / f"k3_{name}.h5")
    _close(sm.as_list(same.predict(x)), expected)
    from_json = model_from_json((out / f"k3_{name}.json").read_text())
    from_json.load_weights(out / f"k3_{name}.h5")
    _close(sm.as_list(from_json.predict(x)), expected)


def test_keras3_compile_settings_are_restored(keras3_run):
    out, _, _ = keras3_run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(out / "k3_mlp.h5")
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.get_config()["learning_rate"] == pytest.approx(0.01)
    assert model.loss == "categorical_crossentropy"


@pytest.mark.parametrize("how", ["load_model", "load_weights"])
@pytest.mark.parametrize("name", sm.NAMES)
def test_files_written_by_polykeras_load_in_keras3(keras3_run, name, how):
    out, summary, expected = keras3_run
    status = summary.get(f"pk_{name}.{how}")
    if how == "load_model" and name in KERAS3_CANNOT_READ and status != "ok":
        pytest.skip(f"Keras 3 limitation: {KERAS3_CANNOT_READ[name]} ({status[:120]})")
    assert status == "ok", status
    _close(_npz(out / f"pk_{name}.{how}.npz"), expected[name])
