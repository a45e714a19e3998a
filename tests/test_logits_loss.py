"""Crossentropy from the logits of a softmax/sigmoid output (tf.keras 2's behaviour, issue 21).

Runs on the backend chosen by POLYKERAS_BACKEND (numpy by default).  The two paths (logits,
clipped probabilities) must agree wherever the clip is inactive; where it saturates the
logits path is finite with the true value and gradient.
"""

from __future__ import annotations

import textwrap
import threading

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, ops
from polykeras import backend as K
from polykeras import layers as L
from polykeras.training import losses

from helpers import run_keras3_script

RNG = np.random.default_rng(21)
EPS = 1e-7


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


def _log_softmax(x):
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _softplus(x):
    return np.logaddexp(0.0, x)


# -- the ops --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_ops_agree_with_clipped_path_where_clip_is_inactive(dtype, rtol):
    B = K.current()
    x = RNG.normal(size=(7, 5)).astype(dtype)
    t = np.eye(5, dtype=dtype)[RNG.integers(0, 5, 7)]
    logits_loss = _np(ops.softmax_crossentropy(B.asarray(t), B.asarray(x)))
    clipped = _np(ops.categorical_crossentropy(B.asarray(t), ops.softmax(B.asarray(x))))
    np.testing.assert_allclose(logits_loss, clipped, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(logits_loss, -(t * _log_softmax(x)).sum(-1), rtol=rtol)
    bt = RNG.integers(0, 2, size=(7, 3)).astype(dtype)
    bx = RNG.normal(size=(7, 3)).astype(dtype)
    b_logits = _np(ops.sigmoid_crossentropy(B.asarray(bt), B.asarray(bx)))
    b_clip = _np(ops.binary_crossentropy(B.asarray(bt), ops.sigmoid(B.asarray(bx))))
    np.testing.assert_allclose(b_logits, b_clip, rtol=rtol, atol=rtol)
    assert logits_loss.dtype == dtype and b_logits.dtype == dtype


@pytest.mark.parametrize("core", [True, False], ids=["core-tape", "backend-autodiff"])
def test_logits_path_is_finite_with_true_gradient_where_clip_saturates(core):
    B = K.current()
    x = np.array([[60.0, -40.0, 0.0], [-50.0, 45.0, 3.0]], dtype="float32")
    t = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype="float32")
    want = -(t * _log_softmax(x.astype("float64"))).sum(-1)  # 100 and 95: far past the clip

    def value(leaves):
        return ops.sum(ops.softmax_crossentropy(B.asarray(t), leaves[0])), None

    def clipped(leaves):
        return ops.sum(ops.categorical_crossentropy(B.asarray(t), ops.softmax(leaves[0]))), None

    ctx = autodiff.core_differentiation() if core else _nothing()
    with ctx:
        loss, _, (g,) = autodiff.value_and_grad(value, [B.asarray(x)])
        c_loss, _, (cg,) = autodiff.value_and_grad(clipped, [B.asarray(x)])
    np.testing.assert_allclose(float(_np(loss)), want.sum(), rtol=1e-6)
    p = np.exp(_log_softmax(x.astype("float64")))
    np.testing.assert_allclose(_np(g), p - t, atol=1e-6)
    assert np.isfinite(_np(g)).all()
    # the clipped path saturates at -log(1e-7) each and its gradient vanishes
    np.testing.assert_allclose(float(_np(c_loss)), 2 * -np.log(EPS), rtol=1e-3)
    assert np.abs(_np(cg)).max() < 1e-3

    bx = np.array([[40.0, -30.0]], dtype="float32")
    bt = np.array([[0.0, 1.0]], dtype="float32")

    def bvalue(leaves):
        return ops.sum(ops.sigmoid_crossentropy(B.asarray(bt), leaves[0])), None

    with autodiff.core_differentiation() if core else _nothing():
        bl, _, (bg,) = autodiff.value_and_grad(bvalue, [B.asarray(bx)])
    np.testing.assert_allclose(float(_np(bl)), 70.0, rtol=1e-6)
    sig = 1 / (1 + np.exp(-bx.astype("float64")))
    np.testing.assert_allclose(_np(bg), sig - bt, atol=1e-6)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_outputs_noted_only_inside_a_scope_and_per_thread():
    B = K.current()
    x = B.asarray(RNG.normal(size=(2, 3)).astype("float32"))
    y = ops.softmax(x)
    assert ops.logits_of(y, "softmax") is None  # no scope open
    seen_elsewhere = []
    with ops.logits_scope():
        y = ops.softmax(x)
        s = ops.sigmoid(x)
        assert ops.logits_of(y, "softmax") is x
        assert ops.logits_of(s, "sigmoid") is x
        assert ops.logits_of(s, "softmax") is None
        assert ops.logits_of(ops.multiply(y, 1.0), "softmax") is None
        assert ops.logits_of(ops.softmax(x, axis=0), "softmax") is None  # not the last axis
        worker = threading.Thread(target=lambda: seen_elsewhere.append(ops.logits_of(y, "softmax")))
        worker.start()
        worker.join()
    assert seen_elsewhere == [None]
    assert ops.logits_of(y, "softmax") is None


# -- models ------------------------------------------------------------------------------
def _model(kind, output="dense", scale=1.0):
    inp = L.Input((6,))
    h = L.Dense(8, activation="tanh")(inp)
    units, act = (4, "softmax") if kind != "binary" else (3, "sigmoid")
    if output == "dense":
        out = L.Dense(units, activation=act)(h)
    elif output == "activation":
        out = L.Activation(act)(L.Dense(units)(h))
    else:  # the activation, then a layer: no longer straight from the activation
        out = L.Reshape((units,))(L.Dense(units, activation=act)(h))
    model = polykeras.Model(inp, out)
    if scale != 1.0:  # fixed weights, whatever the global random state
        rng = np.random.default_rng(0)
        model.set_weights(
            [rng.normal(size=w.shape).astype("float32") * scale for w in model.get_weights()]
        )
    return model


def _data(kind, n=16):
    x = RNG.normal(size=(n, 6)).astype("float32")
    if kind == "binary":
        return x, RNG.integers(0, 2, size=(n, 3)).astype("float32")
    labels = RNG.integers(0, 4, n)
    if kind == "sparse":
        return x, labels.astype("float32")
    return x, np.eye(4, dtype="float32")[labels]


LOSS = {
    "categorical": "categorical_crossentropy",
    "sparse": "sparse_categorical_crossentropy",
    "binary": "binary_crossentropy",
}


def _clipped(kind):
    """The same loss on the clipped probabilities (ops' functions do not look for logits)."""
    if kind == "binary":
        return lambda t, p: ops.mean(ops.binary_crossentropy(t, p), axis=-1)
    return lambda t, p: ops.categorical_crossentropy(t, p)


@pytest.mark.parametrize("core", [False, True], ids=["backend-autodiff", "core-tape"])
@pytest.mark.parametrize("output", ["dense", "activation"])
@pytest.mark.parametrize("kind", ["categorical", "sparse", "binary"])
def test_fit_and_evaluate_agree_with_clipped_path_where_clip_is_inactive(kind, output, core):
    x, y = _data(kind)
    yb = np.eye(4, dtype="float32")[y.astype(int)] if kind == "sparse" else y  # one-hot twin
    a, b = _model(kind, output), _model(kind, output)
    b.set_weights(a.get_weights())
    a.compile(polykeras.optimizers.RMSprop(learning_rate=0.01), LOSS[kind])
    b.compile(polykeras.optimizers.RMSprop(learning_rate=0.01), _clipped(kind))
    np.testing.assert_allclose(
        a.evaluate(x, y, verbose=0), b.evaluate(x, yb, verbose=0), rtol=1e-5, atol=1e-6
    )
    with autodiff.core_differentiation() if core else _nothing():
        la = a.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history["loss"]
        lb = b.fit(x, yb, batch_size=8, epochs=2, verbose=0, shuffle=False).history["loss"]
    np.testing.assert_allclose(la, lb, rtol=1e-5, atol=1e-6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["categorical", "sparse", "binary"])
def test_saturated_model_uses_logits_and_metrics_keep_clipped_probabilities(kind):
    x, y = _data(kind)
    model = _model(kind, scale=40.0)  # softmax/sigmoid outputs at 0 or 1 in float32
    model.compile("sgd", LOSS[kind], metrics=[LOSS[kind]])
    loss, metric = model.evaluate(x, y, verbose=0)
    # the reference: the pre-activation values, through NumPy
    inner = polykeras.Model(model.inputs, model.layers[-1].input)
    kernel, bias = model.layers[-1].get_weights()
    z = np.asarray(inner.predict(x), dtype="float64") @ kernel + bias
    if kind == "binary":
        want = np.mean(_softplus(z) - y * z, axis=-1).mean()
    else:
        t = np.eye(4)[y.astype(int)] if kind == "sparse" else y
        want = -(t * _log_softmax(z)).sum(-1).mean()
    assert want > -np.log(EPS) + 1  # beyond what the clip can report
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    assert metric < loss  # the metric is computed on clipped probabilities
    before = model.get_weights()
    model.train_on_batch(x, y)
    after = model.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert any(np.abs(w1 - w0).max() > 0 for w0, w1 in zip(before, after))


def test_output_not_straight_from_the_activation_keeps_the_clip():
    x, y = _data("categorical")
    model = _model("categorical", output="reshape", scale=40.0)
    model.compile("sgd", "categorical_crossentropy")
    loss = model.evaluate(x, y, verbose=0)
    assert loss <= -np.log(EPS) + 1e-3  # clipped: at most -log(1e-7) per sample


def test_loss_functions_outside_training_use_the_clip():
    B = K.current()
    t = B.asarray(np.array([[0.0, 1.0]], "float32"))
    x = B.asarray(np.array([[50.0, -50.0]], "float32"))
    with ops.logits_scope():
        assert float(_np(losses.categorical_crossentropy(t, ops.softmax(x)))[0]) > 99
    assert float(_np(losses.categorical_crossentropy(t, ops.softmax(x)))[0]) < 17


# -- Keras 3 -----------------------------------------------------------------------------
KERAS3_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    d = np.load(sys.argv[1])
    out = {
        "cce": keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(
            d["t"], d["z"], from_logits=True)),
        "bce": keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(
            d["bt"], d["bz"], from_logits=True)),
    }
    np.savez(sys.argv[2], **out)
    """
)


def test_saturated_values_match_keras3_from_logits(tmp_path):
    """Keras 3 on TensorFlow scores a softmax/sigmoid output from its logits; on torch it
    clips, so the reference is Keras 3's from_logits=True on the same logits."""
    B = K.current()
    z = np.array([[60.0, -40.0, 0.0], [-50.0, 45.0, 3.0], [0.3, 0.1, -0.2]], dtype="float32")
    t = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype="float32")
    bz = np.array([[40.0, -30.0], [0.5, -0.25]], dtype="float32")
    bt = np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32")
    ref = run_keras3_script(tmp_path, KERAS3_SCRIPT, {"t": t, "z": z, "bt": bt, "bz": bz})
    with ops.logits_scope():
        cce = _np(losses.categorical_crossentropy(B.asarray(t), ops.softmax(B.asarray(z))))
        bce = _np(losses.binary_crossentropy(B.asarray(bt), ops.sigmoid(B.asarray(bz))))
    np.testing.assert_allclose(cce, ref["cce"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bce, ref["bce"], rtol=1e-4, atol=1e-5)
