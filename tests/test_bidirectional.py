"""Bidirectional: every merge mode, return_state, backward_layer and masks against Keras 3
(torch backend) on the same weights, forward and one training step; weights, names,
configs and files (JSON, HDF5, .keras, and a .keras file written by Keras 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import layers, ops
from polykeras import backend as K
from polykeras.engine.base_layer import Input
from polykeras.layers import GRU, LSTM, Bidirectional, SimpleRNN

from helpers import backend_params, keras3_available

BACKENDS = backend_params()


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(ops.stop_gradient(x)))


# Each case: the model's source (run with ``layers``, ``Input`` and ``Model`` bound to
# Keras' or polykeras'), whether its input is padded integer ids, whether it trains (one
# output only).
CASES = {
    "concat_lstm_seq": (
        "x = Input((6, 4)); model = Model(x, layers.Bidirectional("
        "layers.LSTM(3, return_sequences=True))(x))",
        False,
        True,
    ),
    "sum_gru": (
        "x = Input((6, 4)); model = Model(x, layers.Bidirectional(layers.GRU(3), "
        "merge_mode='sum')(x))",
        False,
        True,
    ),
    "mul_simple_rnn_seq": (
        "x = Input((6, 4)); model = Model(x, layers.Bidirectional("
        "layers.SimpleRNN(3, return_sequences=True), merge_mode='mul')(x))",
        False,
        True,
    ),
    "ave_lstm": (
        "x = Input((6, 4)); model = Model(x, layers.Bidirectional(layers.LSTM(3), "
        "merge_mode='ave')(x))",
        False,
        True,
    ),
    "none_lstm_seq": (
        "x = Input((6, 4)); model = Model(x, layers.Bidirectional("
        "layers.LSTM(3, return_sequences=True), merge_mode=None)(x))",
        False,
        False,
    ),
    "state_concat_lstm": (
        "x = Input((6, 4)); model = Model(x, layers.Bidirectional("
        "layers.LSTM(3, return_state=True))(x))",
        False,
        False,
    ),
    "backward_layer_gru": (
        "x = Input((6, 4)); model = Model(x, layers.Bidirectional(layers.GRU(3, "
        "return_sequences=True), backward_layer=layers.GRU(2, return_sequences=True, "
        "go_backwards=True))(x))",
        False,
        True,
    ),
    "masked_lstm_seq": (
        "x = Input((7,), dtype='int32'); e = layers.Embedding(9, 4, mask_zero=True)(x); "
        "y = layers.Bidirectional(layers.LSTM(3, return_sequences=True))(e); "
        "model = Model(x, layers.Bidirectional(layers.GRU(2), merge_mode='sum')(y))",
        True,
        True,
    ),
    "masked_gru_none": (
        "x = Input((7,), dtype='int32'); e = layers.Embedding(9, 4, mask_zero=True)(x); "
        "model = Model(x, layers.Bidirectional(layers.GRU(3, return_sequences=True), "
        "merge_mode=None)(e))",
        True,
        False,
    ),
}

KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    from keras import layers, Input, Model

    data = dict(np.load(sys.argv[1]))
    cases = json.loads(open(sys.argv[2]).read())
    out = {}
    for name, (source, _, trains) in cases.items():
        space = {"layers": layers, "Input": Input, "Model": Model}
        exec(source, space)
        model = space["model"]
        n = len(model.weights)
        model.set_weights([data[f"{name}/w{i}"] for i in range(n)])
        x = data[name + "/x"]
        res = model(x)
        res = res if isinstance(res, (list, tuple)) else [res]
        for i, r in enumerate(res):
            out[f"{name}/out{i}"] = keras.ops.convert_to_numpy(r)
        if trains:
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
            model.train_on_batch(x, data[name + "/y"])
            for i, w in enumerate(model.get_weights()):
                out[f"{name}/trained{i}"] = w
        if name == "backward_layer_gru":
            model.save(sys.argv[4])
    np.savez(sys.argv[3], **out)
""")


def _build(source):
    space = {"layers": layers, "Input": Input, "Model": polykeras.Model}
    exec(source, space)
    return space["model"]


def _data(name, rng):
    source, ids, _ = CASES[name]
    if ids:
        x = rng.integers(1, 9, size=(3, 7))
        x[0, 4:] = 0  # right padding
        x[1, :2] = 0  # left padding
        x[2, 3] = 0  # a hole
        return x.astype("int32")
    return rng.normal(size=(3, 6, 4)).astype("float32")


@pytest.fixture(scope="module")
def keras_bi(tmp_path_factory):
    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed: no reference to compare with")
    rng = np.random.default_rng(31)
    arrays, inputs = {}, {}
    for name, (source, _, trains) in CASES.items():
        with polykeras.use_backend("numpy"):
            model = _build(source)
            weights = [(rng.normal(size=w.shape) * 0.5).astype("float32") for w in model.weights]
            x = _data(name, rng)
            y = rng.normal(size=model.output_shape[1:]).astype("float32") if trains else None
            if y is not None:
                y = np.broadcast_to(y, (3,) + y.shape).copy()
        arrays[name + "/x"] = x
        for i, w in enumerate(weights):
            arrays[f"{name}/w{i}"] = w
        if y is not None:
            arrays[name + "/y"] = y
        inputs[name] = (x, weights, y)
    folder = tmp_path_factory.mktemp("keras_bi")
    np.savez(folder / "in.npz", **arrays)
    (folder / "cases.json").write_text(json.dumps(CASES))
    (folder / "run.py").write_text(KERAS_SCRIPT)
    keras_file = folder / "written_by_keras.keras"
    proc = subprocess.run(
        [
            sys.executable,
            str(folder / "run.py"),
            str(folder / "in.npz"),
            str(folder / "cases.json"),
            str(folder / "out.npz"),
            str(keras_file),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, KERAS_BACKEND="torch"),
        timeout=600,
    )
    if proc.returncode != 0:
        raise AssertionError(f"the Keras script failed:\n{proc.stderr[-4000:]}")
    return inputs, dict(np.load(folder / "out.npz")), keras_file


@pytest.mark.parametrize("name", list(CASES))
def test_matches_keras(backend, keras_bi, name):
    inputs, results, _ = keras_bi
    x, weights, y = inputs[name]
    model = _build(CASES[name][0])
    model.set_weights(weights)
    got = model.predict(x, verbose=0)
    got = got if isinstance(got, list) else [got]
    assert f"{name}/out{len(got)}" not in results, "Keras returned more outputs"
    for i, g in enumerate(got):
        np.testing.assert_allclose(g, results[f"{name}/out{i}"], rtol=1e-4, atol=1e-5)
    if y is not None:
        model.compile(optimizer=polykeras.optimizers.SGD(learning_rate=0.1), loss="mse")
        model.train_on_batch(x, y)
        for i, w in enumerate(model.get_weights()):
            np.testing.assert_allclose(w, results[f"{name}/trained{i}"], rtol=1e-4, atol=1e-5)


def test_loads_a_keras3_file(backend, keras_bi, tmp_path):
    inputs, results, keras_file = keras_bi
    model = polykeras.models.load_model(str(keras_file))
    x, _, _ = inputs["backward_layer_gru"]
    # the file holds the weights after the training step
    trained = [results[f"backward_layer_gru/trained{i}"] for i in range(len(model.weights))]
    assert len(trained) == 6 and f"backward_layer_gru/trained{len(trained)}" not in results
    for got, want in zip(model.get_weights(), trained):
        np.testing.assert_array_equal(got, want)
    bi = model.layers[1]
    assert isinstance(bi, Bidirectional)
    # names as Keras wrote them (its counters run across the script's models)
    assert bi.forward_layer.name.startswith("forward_gru")
    assert bi.backward_layer.name.startswith("gru_")  # a given backward layer keeps its name
    assert bi.backward_layer.units == 2 and bi.backward_layer.go_backwards
    again = polykeras.models.load_model(_saved(model, tmp_path / "again.keras"))
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0))


def _saved(model, path):
    model.save(str(path))
    return str(path)


# -- padded and masked == unpadded ---------------------------------------------------------------
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_padding_does_not_change_the_prediction(backend, merge_mode):
    rng = np.random.default_rng(2)
    model = polykeras.Sequential(
        [
            layers.Embedding(12, 4, mask_zero=True, input_shape=(None,)),
            Bidirectional(LSTM(3), merge_mode=merge_mode),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    x = rng.integers(1, 12, size=(5, 6))
    padded = np.concatenate([x, np.zeros((5, 4), x.dtype)], axis=1)
    np.testing.assert_allclose(
        model.predict(padded, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    y = (rng.random((5, 1)) > 0.5).astype("float32")
    model.compile("sgd", "binary_crossentropy")
    np.testing.assert_allclose(
        model.evaluate(padded, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5
    )


# -- layout, names, shapes -----------------------------------------------------------------------
def test_weights_names_and_shapes():
    inp = Input((5, 3))
    bi = Bidirectional(LSTM(4, name="enc"), name="bi")
    out = bi(inp)
    assert out.shape == (None, 8)
    assert [w.name for w in bi.weights] == [
        "bi/forward_enc/kernel:0",
        "bi/forward_enc/recurrent_kernel:0",
        "bi/forward_enc/bias:0",
        "bi/backward_enc/kernel:0",
        "bi/backward_enc/recurrent_kernel:0",
        "bi/backward_enc/bias:0",
    ]
    assert [w.shape for w in bi.weights[:3]] == [(3, 16), (4, 16), (16,)]
    assert bi.count_params() == 2 * (3 * 16 + 4 * 16 + 16)
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards
    seq = Bidirectional(GRU(2, return_sequences=True, return_state=True), merge_mode=None)
    shapes = [t.shape for t in seq(inp)]
    assert shapes == [(None, 5, 2), (None, 5, 2), (None, 2), (None, 2)]


def test_initial_weights_and_initial_state(backend):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    probe = Bidirectional(SimpleRNN(2))
    probe(x)
    weights = [rng.normal(size=w.shape).astype("float32") for w in probe.weights]
    bi = Bidirectional(SimpleRNN(2), weights=weights)
    bi(x)
    for got, want in zip(bi.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    h_f, h_b = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    B = K.current()
    got = _np(
        bi(x, initial_state=[B.asarray(h_f.astype("float32")), B.asarray(h_b.astype("float32"))])
    )
    fwd = _np(bi.forward_layer(x, initial_state=[B.asarray(h_f.astype("float32"))]))
    bwd = _np(bi.backward_layer(x, initial_state=[B.asarray(h_b.astype("float32"))]))
    np.testing.assert_allclose(got, np.concatenate([fwd, bwd], -1), rtol=1e-6)


def test_masks_out():
    m = np.ones((2, 5), bool)
    assert Bidirectional(LSTM(2, return_sequences=True)).compute_mask(None, m) is m
    assert Bidirectional(LSTM(2)).compute_mask(None, m) is None
    assert Bidirectional(LSTM(2, return_sequences=True), merge_mode=None).compute_mask(None, m) == [
        m,
        m,
    ]
    assert Bidirectional(GRU(2, return_state=True)).compute_mask(None, m) == [None, None, None]


# -- configs and files ---------------------------------------------------------------------------
def _model():
    inp = Input((5, 3))
    y = Bidirectional(LSTM(4, return_sequences=True), merge_mode="sum")(inp)
    y = Bidirectional(GRU(2), backward_layer=GRU(2, go_backwards=True, name="back"))(y)
    return polykeras.Model(inp, layers.Dense(1)(y))


def test_config_round_trip():
    bi = Bidirectional(LSTM(4, dropout=0.1), merge_mode="ave", name="b")
    cfg = bi.get_config()
    assert cfg["merge_mode"] == "ave" and cfg["layer"]["class_name"] == "LSTM"
    assert cfg["layer"]["config"]["name"] == "forward_lstm" or cfg["layer"]["config"][
        "name"
    ].startswith("forward_")
    assert "backward_layer" not in cfg
    again = Bidirectional.from_config(cfg)
    assert again.get_config() == cfg
    given = Bidirectional(GRU(2), backward_layer=GRU(2, go_backwards=True, name="back"))
    cfg = given.get_config()
    assert cfg["backward_layer"]["config"]["name"] == "back"
    assert Bidirectional.from_config(cfg).backward_layer.name == "back"


@pytest.mark.parametrize("suffix", ["json", ".h5", ".keras"])
def test_file_round_trips(backend, tmp_path, suffix):
    rng = np.random.default_rng(1)
    model = _model()
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    want = model.predict(x, verbose=0)
    if suffix == "json":
        again = polykeras.models.model_from_json(model.to_json())
        again.set_weights(model.get_weights())
    else:
        again = polykeras.models.load_model(_saved(model, tmp_path / f"m{suffix}"))
    assert [w.name for w in again.weights] == [w.name for w in model.weights]
    np.testing.assert_allclose(again.predict(x, verbose=0), want, rtol=1e-6, atol=1e-7)


def test_stateful_bidirectional(backend):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 8, 3)).astype("float32")
    inp = Input(batch_shape=(2, 4, 3))
    bi = Bidirectional(GRU(2, stateful=True, return_sequences=True))
    model = polykeras.Model(inp, bi(inp))
    first = model.predict(x[:, :4], batch_size=2, verbose=0)
    second = model.predict(x[:, :4], batch_size=2, verbose=0)
    assert np.abs(first - second).max() > 1e-4  # the states carried over
    model.reset_states()
    np.testing.assert_allclose(model.predict(x[:, :4], batch_size=2, verbose=0), first)


def test_bad_arguments():
    with pytest.raises(ValueError, match="recurrent layer instance"):
        Bidirectional(layers.Dense(3))
    with pytest.raises(ValueError, match="invalid merge_mode 'max'"):
        Bidirectional(LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match="opposite directions"):
        Bidirectional(LSTM(2), backward_layer=LSTM(2))
    with pytest.raises(ValueError, match="same return_sequences"):
        Bidirectional(LSTM(2), backward_layer=LSTM(2, go_backwards=True, return_sequences=True))
    with pytest.raises(AttributeError, match="needs a stateful layer"):
        Bidirectional(LSTM(2)).reset_states()
    with pytest.raises(ValueError, match="expected ndim=3"):
        Bidirectional(LSTM(2))(Input((4,)))


KERAS_LOADS_OURS = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    data = dict(np.load(sys.argv[1]))
    model = keras.saving.load_model(os.path.join(os.path.dirname(sys.argv[1]), "ours.keras"))
    names = [w.path for w in model.weights]
    np.savez(sys.argv[2], y=keras.ops.convert_to_numpy(model(data["x"])), n=len(names))
""")


def test_keras3_loads_our_file(tmp_path):
    from helpers import run_keras3_script

    model = _model()
    x = np.random.default_rng(4).normal(size=(2, 5, 3)).astype("float32")
    model.save(str(tmp_path / "ours.keras"))
    got = run_keras3_script(tmp_path, KERAS_LOADS_OURS, {"x": x})
    assert int(got["n"]) == len(model.weights)
    np.testing.assert_allclose(got["y"], model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
