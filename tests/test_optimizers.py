"""Optimizer updates against hand-computed Keras formulas, and against real Keras 3."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import optimizers
from polykeras.engine.variables import Variable

from helpers import run_keras3_script

RNG = np.random.default_rng(7)
W0 = RNG.normal(size=(3, 4))
GRADS = [RNG.normal(size=(3, 4)) for _ in range(4)]


def _run(opt, w0=W0, grads=GRADS, dtype="float64"):
    var = Variable(w0.astype(dtype), "w:0")
    out = []
    for g in grads:
        opt.apply([g.astype(dtype)], [var])
        out.append(var.numpy().copy())
    return out


def _check(opt, expected_fn, rtol=1e-10):
    got = _run(opt)
    want = expected_fn()
    for step, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12, err_msg=f"step {step + 1}")


def test_sgd_plain():
    def expected():
        w, out = W0.copy(), []
        for g in GRADS:
            w = w - 0.01 * g
            out.append(w)
        return out

    _check(optimizers.SGD(), expected)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_and_nesterov(nesterov):
    lr, m = 0.1, 0.9

    def expected():
        w, v, out = W0.copy(), np.zeros_like(W0), []
        for g in GRADS:
            v = m * v - lr * g
            w = w + (m * v - lr * g if nesterov else v)
            out.append(w)
        return out

    _check(optimizers.SGD(lr=lr, momentum=m, nesterov=nesterov), expected)


def test_rmsprop_defaults_and_formula():
    opt = optimizers.RMSprop()
    assert (opt.learning_rate, opt.rho, opt.epsilon) == (0.001, 0.9, 1e-7)

    def expected():
        w, a, out = W0.copy(), np.zeros_like(W0), []
        for g in GRADS:
            a = 0.9 * a + 0.1 * g * g
            w = w - 0.001 * g / np.sqrt(a + 1e-7)  # sqrt(v + epsilon), as tf.keras 2 / Keras 3
            out.append(w)
        return out

    _check(opt, expected)


def test_adam_formula():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7

    def expected():
        w, m, v, out = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), []
        for t, g in enumerate(GRADS, start=1):
            m = m + (g - m) * (1 - b1)
            v = v + (g * g - v) * (1 - b2)
            alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            w = w - alpha * m / (np.sqrt(v) + eps)
            out.append(w)
        return out

    _check(optimizers.Adam(learning_rate=lr), expected)


def test_adagrad_formula():
    opt = optimizers.Adagrad(lr=0.05)
    assert opt.initial_accumulator_value == 0.1 and opt.epsilon == 1e-7

    def expected():
        w, a, out = W0.copy(), np.full_like(W0, 0.1), []
        for g in GRADS:
            a = a + g * g
            w = w - 0.05 * g / np.sqrt(a + 1e-7)
            out.append(w)
        return out

    _check(opt, expected)


def test_adadelta_adamax_nadam_take_steps_downhill():
    # descent on f(w) = |w|^2 / 2 (gradient w): every optimizer shrinks |w|
    for cls in (optimizers.Adadelta, optimizers.Adamax, optimizers.Nadam):
        opt = cls(learning_rate=0.1 if cls is not optimizers.Adadelta else 1.0)
        var = Variable(W0.copy(), "w:0")
        start = np.abs(W0).sum()
        for _ in range(20):
            opt.apply([var.numpy()], [var])
        assert np.abs(var.numpy()).sum() < start, cls.__name__


def test_time_based_decay():
    lr, decay = 0.1, 0.5

    def expected():
        w, out = W0.copy(), []
        for it, g in enumerate(GRADS):
            w = w - lr / (1 + decay * it) * g
            out.append(w)
        return out

    _check(optimizers.SGD(lr=lr, decay=decay), expected)


def test_clipnorm_and_clipvalue():
    big = [g * 100 for g in GRADS]
    var = Variable(W0.copy(), "w:0")
    optimizers.SGD(lr=1.0, clipnorm=1.0).apply([big[0]], [var])
    step = W0 - var.numpy()
    assert np.linalg.norm(step) == pytest.approx(1.0)
    var = Variable(W0.copy(), "w:0")
    optimizers.SGD(lr=1.0, clipvalue=0.5).apply([big[0]], [var])
    np.testing.assert_allclose(W0 - var.numpy(), np.clip(big[0], -0.5, 0.5))
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)


def test_learning_rate_is_settable_with_lr_alias():
    opt = optimizers.RMSprop(lr=0.01)
    assert opt.lr == opt.learning_rate == 0.01
    opt.lr = 0.5
    assert opt.learning_rate == 0.5
    opt.learning_rate = 0.25
    assert opt.lr == 0.25
    with pytest.raises(ValueError):
        opt.learning_rate = -1


def test_get_by_name_config_and_instance():
    assert isinstance(optimizers.get("rmsprop"), optimizers.RMSprop)
    assert isinstance(optimizers.get("Adam"), optimizers.Adam)
    opt = optimizers.SGD(lr=0.3, momentum=0.5, nesterov=True, clipnorm=2.0)
    assert optimizers.get(opt) is opt
    clone = optimizers.get(optimizers.serialize(opt))
    assert isinstance(clone, optimizers.SGD)
    assert clone.get_config() == opt.get_config()
    assert optimizers.RMSprop.from_config({"lr": 0.2}).learning_rate == 0.2
    # a Keras 3 config (with keys polykeras does not use) loads
    keras3 = {
        "class_name": "Adam",
        "config": {
            "name": "adam",
            "learning_rate": 0.002,
            "weight_decay": None,
            "use_ema": False,
            "beta_1": 0.8,
            "amsgrad": False,
        },
    }
    adam = optimizers.get(keras3)
    assert adam.learning_rate == 0.002 and adam.beta_1 == 0.8
    with pytest.raises(ValueError, match="Unknown optimizer"):
        optimizers.get("sgdd")
    with pytest.raises(TypeError, match="not understood"):
        optimizers.SGD(foo=1)


def test_weights_roundtrip():
    opt = optimizers.Adam()
    _run(opt)
    state = opt.get_weights()
    assert int(state[0]) == len(GRADS) and len(state) == 3
    other = optimizers.Adam()
    var = Variable(W0.copy(), "w:0")
    other.build([var])
    other.set_weights(state)
    assert other.iterations == len(GRADS)
    np.testing.assert_array_equal(other.get_weights()[1], state[1])


def test_polykeras_optimizers_is_this_module():
    assert polykeras.optimizers is optimizers


# -- real Keras 3 ---------------------------------------------------------------------------------
KERAS_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    data = np.load(sys.argv[1])
    w0, grads = data["w0"], data["grads"]
    configs = {
        "sgd": ("SGD", dict(learning_rate=0.1)),
        "momentum": ("SGD", dict(learning_rate=0.1, momentum=0.9)),
        "nesterov": ("SGD", dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
        "rmsprop": ("RMSprop", dict()),
        "rmsprop_centered": ("RMSprop", dict(learning_rate=0.01, momentum=0.5, centered=True)),
        "adam": ("Adam", dict(learning_rate=0.01)),
        "amsgrad": ("Adam", dict(learning_rate=0.01, amsgrad=True)),
        "adagrad": ("Adagrad", dict(learning_rate=0.05)),
        "adadelta": ("Adadelta", dict(learning_rate=1.0)),
        "adamax": ("Adamax", dict(learning_rate=0.01)),
        "nadam": ("Nadam", dict(learning_rate=0.01)),
        "clipnorm": ("SGD", dict(learning_rate=0.1, clipnorm=0.5)),
        "clipvalue": ("Adam", dict(learning_rate=0.01, clipvalue=0.3)),
    }
    out = {}
    for key, (cls, kw) in configs.items():
        var = keras.Variable(w0, dtype="float64")
        opt = getattr(keras.optimizers, cls)(**kw)
        for g in grads:
            opt.apply_gradients([(keras.ops.convert_to_tensor(g, dtype="float64"), var)])
        out[key] = keras.ops.convert_to_numpy(var.value)
    np.savez(sys.argv[2], **out)
""")

OURS = {
    "sgd": lambda: optimizers.SGD(learning_rate=0.1),
    "momentum": lambda: optimizers.SGD(learning_rate=0.1, momentum=0.9),
    "nesterov": lambda: optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda: optimizers.RMSprop(),
    "rmsprop_centered": lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
    "adam": lambda: optimizers.Adam(learning_rate=0.01),
    "amsgrad": lambda: optimizers.Adam(learning_rate=0.01, amsgrad=True),
    "adagrad": lambda: optimizers.Adagrad(learning_rate=0.05),
    "adadelta": lambda: optimizers.Adadelta(learning_rate=1.0),
    "adamax": lambda: optimizers.Adamax(learning_rate=0.01),
    "nadam": lambda: optimizers.Nadam(learning_rate=0.01),
    "clipnorm": lambda: optimizers.SGD(learning_rate=0.1, clipnorm=0.5),
    "clipvalue": lambda: optimizers.Adam(learning_rate=0.01, clipvalue=0.3),
}


@pytest.fixture(scope="module")
def keras3_results(tmp_path_factory):
    return run_keras3_script(
        tmp_path_factory.mktemp("keras3"), KERAS_SCRIPT, {"w0": W0, "grads": np.stack(GRADS)}
    )


@pytest.mark.parametrize("key", sorted(OURS))
def test_matches_keras3(keras3_results, key):
    ours = _run(OURS[key]())[-1]
    np.testing.assert_allclose(ours, keras3_results[key], rtol=1e-6, atol=1e-9)


def test_optimizer_weights_snapshot_does_not_change_with_later_steps():
    import polykeras as keras

    for name in ("numpy", "torch"):
        try:
            ctx = keras.use_backend(name)
            ctx.__enter__()
        except Exception:
            continue
        try:
            model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
            opt = keras.optimizers.RMSprop(0.1)
            model.compile(opt, "mse")
            x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
            model.train_on_batch(x, y)
            snapshot = opt.get_weights()
            kept = [w.copy() for w in snapshot]
            opt.set_weights(snapshot)
            model.train_on_batch(x, y)
            for a, b in zip(snapshot, kept):
                np.testing.assert_array_equal(a, b)
        finally:
            ctx.__exit__(None, None, None)
