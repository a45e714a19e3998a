"""SimpleRNN, LSTM and GRU: Keras' weight layouts, outputs against a NumPy reference and
against Keras 3 itself, gradients against finite differences, shapes, configs and errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, ops
from polykeras import backend as K
from polykeras.engine.base_layer import Input
from polykeras.layers.recurrent import GRU, LSTM, SimpleRNN, convert_keras1_weights

from helpers import backend_params


# -- backends ---------------------------------------------------------------------------------
BACKENDS = backend_params()


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


def _outputs(result):
    return [_np(r) for r in result] if isinstance(result, list) else [_np(result)]


# -- the NumPy reference ------------------------------------------------------------------------
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _order(steps, backwards):
    return range(steps - 1, -1, -1) if backwards else range(steps)


def ref_simple_rnn(x, kernel, rec, bias, go_backwards=False, h0=None):
    u = rec.shape[0]
    h = np.zeros((x.shape[0], u)) if h0 is None else h0
    seq = []
    for t in _order(x.shape[1], go_backwards):
        h = np.tanh(x[:, t] @ kernel + bias + h @ rec)
        seq.append(h)
    return np.stack(seq, 1), [h]


def ref_lstm(x, kernel, rec, bias, go_backwards=False, h0=None, c0=None):
    u = rec.shape[0]
    h = np.zeros((x.shape[0], u)) if h0 is None else h0
    c = np.zeros((x.shape[0], u)) if c0 is None else c0
    seq = []
    for t in _order(x.shape[1], go_backwards):
        z = x[:, t] @ kernel + h @ rec + bias
        i = _sigmoid(z[:, :u])
        f = _sigmoid(z[:, u : 2 * u])
        g = np.tanh(z[:, 2 * u : 3 * u])
        o = _sigmoid(z[:, 3 * u :])
        c = f * c + i * g
        h = o * np.tanh(c)
        seq.append(h)
    return np.stack(seq, 1), [h, c]


def ref_gru(x, kernel, rec, bias, reset_after=True, go_backwards=False, h0=None):
    u = rec.shape[0]
    h = np.zeros((x.shape[0], u)) if h0 is None else h0
    seq = []
    for t in _order(x.shape[1], go_backwards):
        if reset_after:
            mx = x[:, t] @ kernel + bias[0]
            mh = h @ rec + bias[1]
            z = _sigmoid(mx[:, :u] + mh[:, :u])
            r = _sigmoid(mx[:, u : 2 * u] + mh[:, u : 2 * u])
            hh = np.tanh(mx[:, 2 * u :] + r * mh[:, 2 * u :])
        else:
            mx = x[:, t] @ kernel + bias
            z = _sigmoid(mx[:, :u] + h @ rec[:, :u])
            r = _sigmoid(mx[:, u : 2 * u] + h @ rec[:, u : 2 * u])
            hh = np.tanh(mx[:, 2 * u :] + (r * h) @ rec[:, 2 * u :])
        h = z * h + (1 - z) * hh
        seq.append(h)
    return np.stack(seq, 1), [h]


def _random_weights(layer, rng, scale=0.5):
    return [rng.uniform(-scale, scale, size=w.shape) for w in layer.get_weights()]


def _reference(kind, weights, x, go_backwards, states=None):
    states = states or []
    if kind == "simple_rnn":
        return ref_simple_rnn(x, *weights, go_backwards, *states)
    if kind == "lstm":
        return ref_lstm(x, *weights, go_backwards, *states)
    if kind == "gru":
        return ref_gru(x, *weights, True, go_backwards, *states)
    return ref_gru(x, *weights, False, go_backwards, *states)


def _make(kind, units, **kwargs):
    if kind == "simple_rnn":
        return SimpleRNN(units, **kwargs)
    if kind == "lstm":
        return LSTM(units, **kwargs)
    if kind == "gru":
        return GRU(units, reset_after=True, **kwargs)
    return GRU(units, reset_after=False, **kwargs)


KINDS = ["simple_rnn", "lstm", "gru", "gru_reset_before"]


# -- outputs against the NumPy reference -------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("steps", [7, 40])  # 40: the loop slices through chunks
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_numpy_reference(backend, kind, steps, return_sequences, go_backwards):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, steps, 4))
    layer = _make(
        kind, 5, return_sequences=return_sequences, return_state=True, go_backwards=go_backwards
    )
    layer(Input(shape=(steps, 4)))
    weights = _random_weights(layer, rng)
    layer.set_weights(weights)
    got = _outputs(layer(x.astype("float32")))
    seq, states = _reference(kind, weights, x, go_backwards)
    want = [seq if return_sequences else seq[:, -1]] + states
    assert len(got) == len(want) == 1 + layer._n_states
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_initial_state(backend, kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 3))
    layer = _make(kind, 4, return_sequences=True)
    n_states = 2 if kind == "lstm" else 1
    states = [rng.normal(size=(2, 4)) for _ in range(n_states)]
    layer(x.astype("float32"))  # build
    weights = _random_weights(layer, rng)
    layer.set_weights(weights)
    want, _ = _reference(kind, weights, x, False, states)
    got = _np(layer(x.astype("float32"), initial_state=[s.astype("float32") for s in states]))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # Keras 2's list form: layer([x, h, c])
    got = _np(layer([x.astype("float32")] + [s.astype("float32") for s in states]))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_initial_state_symbolic():
    x = Input(shape=(5, 3))
    h = Input(shape=(4,))
    c = Input(shape=(4,))
    layer = LSTM(4, return_state=True)
    outs = layer(x, initial_state=[h, c])
    assert [o.shape for o in outs] == [(None, 4)] * 3
    assert layer._inbound_nodes[0].input_tensors == [x, h, c]
    with pytest.raises(ValueError, match="initial state"):
        LSTM(4)(x, initial_state=[h])
    with pytest.raises(ValueError, match=r"initial state 0 must have shape \(batch, 4\)"):
        LSTM(4)(x, initial_state=[Input(shape=(5,)), c])


# -- weights -------------------------------------------------------------------------------
def test_parameter_counts():
    lstm = LSTM(32)
    lstm(Input(shape=(100, 512)))
    assert lstm.count_params() == 69_760
    lstm = LSTM(64)
    lstm(Input(shape=(None, 256)))
    assert lstm.count_params() == 82_176
    gru = GRU(8)
    gru(Input(shape=(10, 4)))
    assert gru.count_params() == 3 * 8 * (4 + 8) + 2 * 3 * 8 == 336
    gru = GRU(8, reset_after=False)
    gru(Input(shape=(10, 4)))
    assert gru.count_params() == 3 * 8 * (4 + 8) + 3 * 8
    rnn = SimpleRNN(6)
    rnn(Input(shape=(10, 4)))
    assert rnn.count_params() == 6 * (4 + 6) + 6


@pytest.mark.parametrize(
    "kind, shapes",
    [
        ("simple_rnn", [(4, 5), (5, 5), (5,)]),
        ("lstm", [(4, 20), (5, 20), (20,)]),
        ("gru", [(4, 15), (5, 15), (2, 15)]),
        ("gru_reset_before", [(4, 15), (5, 15), (15,)]),
    ],
)
def test_weight_layout(kind, shapes):
    layer = _make(kind, 5)
    layer(Input(shape=(3, 4)))
    assert [tuple(w.shape) for w in layer.get_weights()] == shapes
    names = [v.name for v in layer.weights]
    assert names == [
        f"{layer.name}/kernel:0",
        f"{layer.name}/recurrent_kernel:0",
        f"{layer.name}/bias:0",
    ]
    assert len(layer.trainable_weights) == 3 and not layer.non_trainable_weights


def test_default_initializers():
    polykeras.initializers.seed(3)
    layer = LSTM(4)
    layer(Input(shape=(3, 6)))
    kernel, rec, bias = layer.get_weights()
    np.testing.assert_array_equal(bias, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    # orthogonal recurrent kernel: rows orthonormal (u x 4u)
    np.testing.assert_allclose(rec @ rec.T, np.eye(4), atol=1e-5)
    limit = np.sqrt(6.0 / (6 + 16))  # glorot_uniform
    assert np.abs(kernel).max() <= limit
    layer = LSTM(4, unit_forget_bias=False)
    layer(Input(shape=(3, 6)))
    np.testing.assert_array_equal(layer.get_weights()[2], np.zeros(16))
    layer = LSTM(4, bias_initializer="ones", use_bias=False)
    layer(Input(shape=(3, 6)))
    assert len(layer.get_weights()) == 2


def test_no_bias_outputs():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 4, 3))
    for kind in KINDS:
        layer = _make(kind, 3, use_bias=False)
        layer(Input(shape=(4, 3)))
        weights = _random_weights(layer, rng)
        layer.set_weights(weights)
        zero_bias = {"gru": np.zeros((2, 9)), "lstm": np.zeros(12)}.get(
            kind, np.zeros(9 if kind == "gru_reset_before" else 3)
        )
        seq, _ = _reference(kind, weights + [zero_bias], x, False)
        np.testing.assert_allclose(_np(layer(x)), seq[:, -1], rtol=1e-4, atol=1e-5)


# -- shapes, names, configs ------------------------------------------------------------------
def test_symbolic_output_shapes_and_names():
    K.clear_session()
    x = Input(shape=(10, 4))
    assert LSTM(8)(x).shape == (None, 8)
    assert GRU(8, return_sequences=True)(x).shape == (None, 10, 8)
    outs = LSTM(8, return_sequences=True, return_state=True)(x)
    assert [o.shape for o in outs] == [(None, 10, 8), (None, 8), (None, 8)]
    outs = SimpleRNN(3, return_state=True)(x)
    assert [o.shape for o in outs] == [(None, 3), (None, 3)]
    assert LSTM(2, return_sequences=True)(Input(shape=(None, 4))).shape == (None, None, 2)
    K.clear_session()
    assert [LSTM(1).name, LSTM(1).name, GRU(1).name, SimpleRNN(1).name] == [
        "lstm_1",
        "lstm_2",
        "gru_1",
        "simple_rnn_1",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_config_round_trip(kind):
    layer = _make(
        kind,
        7,
        return_sequences=True,
        go_backwards=True,
        dropout=0.25,
        recurrent_dropout=0.5,
        kernel_initializer="he_normal",
        activation="relu",
        name="rnn_x",
    )
    layer(Input(shape=(3, 2)))
    cfg = layer.get_config()
    for key in (
        "units",
        "activation",
        "use_bias",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "return_sequences",
        "return_state",
        "go_backwards",
        "stateful",
        "dropout",
        "recurrent_dropout",
        "unroll",
        "name",
        "trainable",
        "dtype",
    ):
        assert key in cfg, key
    assert cfg["units"] == 7 and cfg["activation"] == "relu" and cfg["unroll"] is False
    assert cfg["kernel_initializer"] == {"class_name": "HeNormal", "config": {"seed": None}}
    assert cfg["stateful"] is False and cfg["go_backwards"] is True
    if kind == "lstm":
        assert cfg["unit_forget_bias"] is True and cfg["recurrent_activation"] == "sigmoid"
    if kind.startswith("gru"):
        assert cfg["reset_after"] is (kind == "gru")
    if kind == "simple_rnn":
        assert "recurrent_activation" not in cfg
    cfg = json.loads(json.dumps(cfg))
    clone = type(layer).from_config(cfg)
    assert clone.get_config() == cfg
    clone(Input(shape=(3, 2)))
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]


def test_regularizers_reach_the_weights():
    layer = LSTM(3, W_regularizer="l2", recurrent_regularizer="l1")
    layer(Input(shape=(2, 4)))
    kernel, rec, bias = layer.weights
    assert kernel.regularizer is layer.kernel_regularizer is not None
    assert kernel.regularizer.get_config()["l2"] > 0
    assert rec.regularizer is layer.recurrent_regularizer is not None
    assert bias.regularizer is None
    cfg = json.loads(json.dumps(layer.get_config()))
    assert cfg["recurrent_regularizer"]["config"]["l1"] > 0
    clone = LSTM.from_config(cfg)
    assert clone.recurrent_regularizer.get_config() == layer.recurrent_regularizer.get_config()


def test_from_keras3_style_config():
    """Keys Keras 3 writes (seed, serialized initializers with module) are accepted."""
    cfg = {
        "name": "lstm_k3",
        "trainable": True,
        "dtype": "float32",
        "units": 3,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "unit_forget_bias": True,
        "kernel_initializer": {
            "module": "keras.initializers",
            "class_name": "GlorotUniform",
            "config": {"seed": None},
            "registered_name": None,
        },
        "recurrent_initializer": {
            "module": "keras.initializers",
            "class_name": "Orthogonal",
            "config": {"gain": 1.0, "seed": None},
            "registered_name": None,
        },
        "bias_initializer": {
            "module": "keras.initializers",
            "class_name": "Zeros",
            "config": {},
            "registered_name": None,
        },
        "kernel_regularizer": None,
        "recurrent_regularizer": None,
        "bias_regularizer": None,
        "activity_regularizer": None,
        "kernel_constraint": None,
        "recurrent_constraint": None,
        "bias_constraint": None,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "seed": None,
        "return_sequences": False,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "zero_output_for_mask": False,
        "implementation": 2,
    }
    layer = LSTM.from_config(cfg)
    assert layer.units == 3 and layer.name == "lstm_k3"


def test_keras1_arguments():
    layer = LSTM(
        output_dim=8,
        init="uniform",
        inner_init="orthogonal",
        inner_activation="hard_sigmoid",
        forget_bias_init="one",
        dropout_W=0.1,
        dropout_U=0.2,
        consume_less="gpu",
        input_dim=4,
        input_length=10,
        W_regularizer=None,
        return_sequences=True,
    )
    assert layer.units == 8
    assert type(layer.kernel_initializer).__name__ == "RandomUniform"
    assert layer.recurrent_activation is polykeras.activations.get("hard_sigmoid")
    assert layer.unit_forget_bias is True
    assert (layer.dropout, layer.recurrent_dropout) == (0.1, 0.2)
    assert layer._batch_input_shape == (None, 10, 4)
    assert LSTM(2, forget_bias_init="zero").unit_forget_bias is False
    gru = GRU(output_dim=3, input_dim=5)
    assert gru.units == 3 and gru._batch_input_shape == (None, None, 5)
    rnn = SimpleRNN(output_dim=2, init="zero", inner_init="identity", consume_less="mem")
    assert rnn.units == 2
    # ignored Keras 2/3 arguments
    LSTM(2, implementation=1, unroll=True, use_cudnn="auto", seed=3)
    with pytest.raises(TypeError, match="output_dim"):
        LSTM(4, output_dim=4)
    with pytest.raises(TypeError, match="not understood: forget_bias_init"):
        GRU(2, forget_bias_init="one")
    with pytest.raises(TypeError, match="recurrent_activation"):
        SimpleRNN(2, recurrent_activation="sigmoid")
    with pytest.raises(TypeError, match="not understood: bogus"):
        LSTM(2, bogus=1)


def test_keras1_gru_is_reset_before():
    """A GRU written with Keras 1 names is a Keras 1 GRU (reset gate before the matmul)."""
    gru = GRU(output_dim=32, input_dim=64, inner_activation="sigmoid")
    assert gru.reset_after is False
    gru(Input(shape=(10, 64)))
    assert gru.count_params() == 3 * (64 * 32 + 32 * 32 + 32) == 9312
    assert GRU(4, consume_less="gpu").reset_after is False
    assert GRU(output_dim=4, reset_after=True).reset_after is True
    assert GRU(4).reset_after is True
    cfg = gru.get_config()
    assert cfg["reset_after"] is False
    assert GRU.from_config(cfg).reset_after is False


def test_convert_keras1_weights():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 5, 3))
    u = 4
    # Keras 1 "cpu"/"mem" LSTM weights: W, U, b per gate, gates in the order i, c, f, o
    per_gate = {g: [rng.uniform(-0.5, 0.5, size=s) for s in ((3, u), (u, u), (u,))] for g in "icfo"}
    keras1 = [w for g in "icfo" for w in per_gate[g]]
    converted = convert_keras1_weights("LSTM", keras1)
    assert [w.shape for w in converted] == [(3, 4 * u), (u, 4 * u), (4 * u,)]
    layer = LSTM(u)
    layer(Input(shape=(5, 3)))
    layer.set_weights(converted)
    want = [np.concatenate([per_gate[g][k] for g in "ifco"], axis=-1) for k in range(3)]
    seq, _ = ref_lstm(x, *want)
    np.testing.assert_allclose(_np(layer(x)), seq[:, -1], rtol=1e-4, atol=1e-5)
    # GRU: z, r, h
    keras1 = [rng.uniform(-0.5, 0.5, size=s) for _ in range(3) for s in ((3, u), (u, u), (u,))]
    converted = convert_keras1_weights("GRU", keras1)
    np.testing.assert_array_equal(converted[0][:, u : 2 * u], keras1[3])
    np.testing.assert_array_equal(converted[2][2 * u :], keras1[8])
    three = [np.zeros((3, 4)), np.zeros((4, 4)), np.zeros(4)]
    assert convert_keras1_weights("SimpleRNN", three) == three


# -- errors ------------------------------------------------------------------------------------
def test_two_dimensional_input_is_a_clear_error():
    layer = LSTM(4, name="my_lstm")
    with pytest.raises(
        ValueError,
        match=r"my_lstm.*expected ndim=3.*found ndim=2.*"
        r"\(None, 10\)",
    ):
        layer(Input(shape=(10,)))
    with pytest.raises(ValueError, match=r"my_lstm.*expected ndim=3.*found ndim=2"):
        layer(np.zeros((2, 10), "float32"))
    with pytest.raises(ValueError, match=r"gru_x.*ndim=4"):
        GRU(2, name="gru_x")(Input(shape=(3, 4, 5)))
    with pytest.raises(ValueError, match="feature dimension"):
        SimpleRNN(2)(Input(shape=(3, None)))


def test_wrong_feature_size_after_build():
    layer = GRU(3, name="g")
    layer(Input(shape=(5, 4)))
    with pytest.raises(ValueError, match=r"g .*expected axis -1 .* value 4.*\(None, 5, 6\)"):
        layer(Input(shape=(5, 6)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="If a RNN is stateful, it needs to know its batch size"):
        LSTM(4, stateful=True)(Input(shape=(3, 4)))  # stateful=True needs a fixed batch size
    with pytest.raises(ValueError, match="units must be a positive integer"):
        LSTM(0)
    with pytest.raises(TypeError, match="missing the number of units"):
        GRU()
    with pytest.raises(ValueError, match="dropout must be a float in"):
        LSTM(2, dropout=1.5)
    with pytest.raises(ValueError, match="unknown activation"):
        LSTM(2, activation="nope")
    with pytest.raises(ValueError, match="time_major"):
        LSTM(2, time_major=True)


# -- dropout -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_dropout_only_in_training(backend, kind):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 6, 5)).astype("float32")
    plain = _make(kind, 3, return_sequences=True)
    drop = _make(kind, 3, return_sequences=True, dropout=0.5, recurrent_dropout=0.5)
    plain(x)
    drop(x)
    drop.set_weights(plain.get_weights())
    np.testing.assert_allclose(_np(drop(x)), _np(plain(x)), rtol=1e-6)
    np.testing.assert_allclose(_np(drop(x, training=False)), _np(plain(x)), rtol=1e-6)
    trained = _np(drop(x, training=True))
    assert trained.shape == (4, 6, 3) and np.isfinite(trained).all()
    assert not np.allclose(trained, _np(plain(x)))


def test_input_dropout_mask_is_shared_across_timesteps():
    """With dropout=0.5 and all-ones inputs, every timestep sees the same dropped features:
    a SimpleRNN with identity-free recurrence (recurrent kernel 0) then gives the same output
    at every step."""
    x = np.ones((3, 5, 8), "float32")
    layer = SimpleRNN(4, return_sequences=True, dropout=0.5, activation="linear")
    layer(x)
    kernel, rec, bias = layer.get_weights()
    layer.set_weights([kernel, np.zeros_like(rec), bias])
    out = _np(layer(x, training=True))
    np.testing.assert_allclose(out, np.repeat(out[:, :1], 5, axis=1), rtol=1e-6)


# -- gradients -----------------------------------------------------------------------------------
def _loss_terms(layer, x, rng):
    out = layer(x)
    outs = out if isinstance(out, list) else [out]
    return [rng.normal(size=_np(o).shape) for o in outs]


DIFF_MODES = ["core", "backend"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("mode", DIFF_MODES)
def test_gradients_match_finite_differences(backend, kind, go_backwards, mode):
    if mode == "backend" and getattr(backend, "value_and_grad", None) is None:
        pytest.skip(f"the {backend.name} backend has no differentiation of its own")
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 5, 3))
    layer = _make(
        kind,
        3,
        dtype="float64",
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
    )
    layer(x)
    layer.set_weights(_random_weights(layer, rng, scale=0.8))
    coeffs = _loss_terms(layer, x, rng)
    B = K.current()

    def loss_of(out):
        outs = out if isinstance(out, list) else [out]
        total = None
        for o, w in zip(outs, coeffs):
            term = ops.sum(ops.multiply(o, B.asarray(w)))
            total = term if total is None else ops.add(total, term)
        return total

    def fn(leaves):
        with autodiff.substitute(layer.weights, leaves[:-1]):
            return loss_of(layer(leaves[-1])), None

    params = [v.value for v in layer.weights] + [B.asarray(x)]
    if mode == "core":
        with autodiff.core_differentiation():
            _, _, grads = autodiff.value_and_grad(fn, params)
    else:
        _, _, grads = autodiff.value_and_grad(fn, params)
    grads = [_np(g) for g in grads]

    def numeric_loss(weights, xv):
        saved = layer.get_weights()
        layer.set_weights(weights)
        try:
            return float(_np(loss_of(layer(xv))))
        finally:
            layer.set_weights(saved)

    base = layer.get_weights() + [x]
    eps = 1e-6
    for k, arr in enumerate(base):
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            plus = [a.copy() for a in base]
            minus = [a.copy() for a in base]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric[idx] = (
                numeric_loss(plus[:-1], plus[-1]) - numeric_loss(minus[:-1], minus[-1])
            ) / (2 * eps)
        np.testing.assert_allclose(
            grads[k], numeric, rtol=1e-5, atol=1e-7, err_msg=f"gradient of parameter {k} ({kind})"
        )


# -- in a model ----------------------------------------------------------------------------------
def test_in_a_functional_model():
    try:
        from polykeras.models import Model

        model_probe = Model  # noqa: F841
    except Exception as exc:  # written by someone else; may not be usable yet
        pytest.skip(f"the functional Model is not usable: {exc}")
    rng = np.random.default_rng(4)
    x_in = Input(shape=(6, 3))
    seq = LSTM(4, return_sequences=True)(x_in)
    out = GRU(2)(seq)
    try:
        model = Model(x_in, out)
        got = model.predict(rng.normal(size=(5, 6, 3)).astype("float32"))
    except Exception as exc:
        pytest.skip(f"the functional Model is not usable: {type(exc).__name__}: {exc}")
    assert np.asarray(got).shape == (5, 2)


# -- against Keras 3 ---------------------------------------------------------------------------
KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    data = dict(np.load(sys.argv[1]))
    cases = json.loads(open(sys.argv[2]).read())
    out = {}
    for name, spec in cases.items():
        layer = getattr(keras.layers, spec["class"])(**spec["kwargs"])
        x = data[name + "/x"]
        layer.build(x.shape)
        layer.set_weights([data[f"{name}/w{i}"] for i in range(spec["n_weights"])])
        states = [data[f"{name}/s{i}"] for i in range(spec.get("n_states", 0))]
        res = layer(x, initial_state=states) if states else layer(x)
        res = res if isinstance(res, (list, tuple)) else [res]
        for i, r in enumerate(res):
            out[f"{name}/out{i}"] = keras.ops.convert_to_numpy(r)
    np.savez(sys.argv[3], **out)
""")

KERAS_CASES = {
    "lstm": ("LSTM", {"units": 5}),
    "lstm_seq_state": ("LSTM", {"units": 5, "return_sequences": True, "return_state": True}),
    "lstm_back_seq": ("LSTM", {"units": 4, "return_sequences": True, "go_backwards": True}),
    "lstm_back_state": ("LSTM", {"units": 4, "go_backwards": True, "return_state": True}),
    "lstm_relu": (
        "LSTM",
        {
            "units": 3,
            "activation": "relu",
            "recurrent_activation": "tanh",
            "return_sequences": True,
        },
    ),
    "lstm_initial_state": ("LSTM", {"units": 4, "return_sequences": True}),
    "gru": ("GRU", {"units": 5}),
    "gru_seq_state": ("GRU", {"units": 5, "return_sequences": True, "return_state": True}),
    "gru_back": ("GRU", {"units": 4, "go_backwards": True, "return_sequences": True}),
    "gru_reset_before": (
        "GRU",
        {"units": 5, "reset_after": False, "return_sequences": True, "return_state": True},
    ),
    "gru_reset_before_back": ("GRU", {"units": 3, "reset_after": False, "go_backwards": True}),
    "gru_initial_state": ("GRU", {"units": 4, "return_state": True}),
    "gru_no_bias": ("GRU", {"units": 3, "use_bias": False, "return_sequences": True}),
    "simple_rnn": ("SimpleRNN", {"units": 5, "return_sequences": True}),
    "simple_rnn_back_state": (
        "SimpleRNN",
        {"units": 5, "go_backwards": True, "return_state": True},
    ),
    "simple_rnn_relu": ("SimpleRNN", {"units": 3, "activation": "relu"}),
    "lstm_long": ("LSTM", {"units": 6, "return_sequences": True, "go_backwards": True}),
}

CLASSES = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}


def _keras_problem() -> str | None:
    if importlib.util.find_spec("keras") is None:
        return "keras is not installed"
    if importlib.util.find_spec("torch") is None:
        return "keras needs torch here (KERAS_BACKEND=torch) and torch is not installed"
    return None


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory):
    """Run every case through Keras 3 (torch backend) in one subprocess."""
    problem = _keras_problem()
    if problem:
        pytest.skip(problem)
    rng = np.random.default_rng(11)
    arrays, specs, inputs = {}, {}, {}
    for name, (cls_name, kwargs) in KERAS_CASES.items():
        steps = 33 if name == "lstm_long" else 6
        x = rng.normal(size=(3, steps, 4)).astype("float32")
        layer = CLASSES[cls_name](**kwargs)
        layer(Input(shape=(steps, 4)))
        weights = [w.astype("float32") for w in _random_weights(layer, rng, scale=0.6)]
        arrays[name + "/x"] = x
        for i, w in enumerate(weights):
            arrays[f"{name}/w{i}"] = w
        spec = {"class": cls_name, "kwargs": kwargs, "n_weights": len(weights)}
        states = []
        if name.endswith("initial_state"):
            n = 2 if cls_name == "LSTM" else 1
            states = [rng.normal(size=(3, kwargs["units"])).astype("float32") for _ in range(n)]
            for i, s in enumerate(states):
                arrays[f"{name}/s{i}"] = s
            spec["n_states"] = n
        specs[name] = spec
        inputs[name] = (x, weights, states)
    folder = tmp_path_factory.mktemp("keras")
    np.savez(folder / "in.npz", **arrays)
    (folder / "cases.json").write_text(json.dumps(specs))
    (folder / "run.py").write_text(KERAS_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="torch")
    proc = subprocess.run(
        [
            sys.executable,
            str(folder / "run.py"),
            str(folder / "in.npz"),
            str(folder / "cases.json"),
            str(folder / "out.npz"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if proc.returncode != 0:
        if "No module named" in proc.stderr:
            pytest.skip(f"keras cannot be imported here: {proc.stderr.strip().splitlines()[-1]}")
        raise AssertionError(f"the Keras script failed:\n{proc.stderr[-4000:]}")
    results = dict(np.load(folder / "out.npz"))
    return inputs, results


@pytest.mark.parametrize("name", list(KERAS_CASES))
def test_matches_keras(backend, keras_results, name):
    inputs, results = keras_results
    cls_name, kwargs = KERAS_CASES[name]
    x, weights, states = inputs[name]
    layer = CLASSES[cls_name](**kwargs)
    layer(Input(shape=x.shape[1:]))
    layer.set_weights(weights)
    got = _outputs(layer(x, initial_state=states) if states else layer(x))
    want = [results[f"{name}/out{i}"] for i in range(len(got))]
    assert f"{name}/out{len(got)}" not in results, "Keras returned more outputs"
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
