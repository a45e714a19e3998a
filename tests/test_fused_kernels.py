"""Optional fused kernels (contract.FusedKernels) give the same numbers as the primitives."""

from __future__ import annotations

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, ops
from polykeras.layers import LSTM, Input
from polykeras.models import Model

pytest.importorskip("torch", reason="the torch backend (the one with fused kernels) needs torch")


def _with_and_without_fused(fn):
    with polykeras.use_backend("torch") as B:
        fused = fn()
        kernel = type(B).lstm_sequence
        del type(B).lstm_sequence
        try:
            loop = fn()
        finally:
            type(B).lstm_sequence = kernel
    return fused, loop


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("use_bias", [False, True])
def test_fused_lstm_matches_the_time_loop(go_backwards, return_sequences, use_bias):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 5)).astype("float32")
    with polykeras.use_backend("torch"):
        inp = Input(shape=(7, 5))
        layer = LSTM(4, go_backwards=go_backwards, return_sequences=return_sequences,
                     return_state=True, use_bias=use_bias)
        model = Model(inp, layer(inp))
        weights = [rng.normal(size=w.shape).astype("float32") * 0.5 for w in layer.weights]
        layer.set_weights(weights)

    def outputs():
        return model.predict(x)

    def grads():
        vars_ = layer.trainable_weights

        def loss(leaves):
            with autodiff.substitute(vars_, leaves):
                out = layer.call(polykeras.backend.current().asarray(x))
            return ops.sum(ops.square(out[0])), None

        _, _, g = autodiff.value_and_grad(loss, [v.value for v in vars_])
        return [ops.to_numpy(v) for v in g]

    fused, loop = _with_and_without_fused(outputs)
    for a, b in zip(fused, loop):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    fused_g, loop_g = _with_and_without_fused(grads)
    for a, b in zip(fused_g, loop_g):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # and the core's tape (which never uses the fused kernel) agrees
    with polykeras.use_backend("torch"), autodiff.core_differentiation():
        tape_g = grads()
    for a, b in zip(fused_g, tape_g):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_custom_activation_runs_the_time_loop():
    with polykeras.use_backend("torch") as B:
        layer = LSTM(3, activation="relu")
        assert layer._fused_sequence(B.zeros((1, 2, 4), "float32"),
                                     [B.zeros((1, 3), "float32")] * 2) is None


def test_fused_rmsprop_matches_the_primitive_update():
    from polykeras.engine.variables import Variable
    from polykeras.training.optimizers import RMSprop

    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(4, 3)).astype("float32")
    grads = [rng.normal(size=(4, 3)).astype("float32") for _ in range(3)]

    def run():
        B = polykeras.backend.current()
        var = Variable(w0.copy(), "w:0")
        opt = RMSprop(learning_rate=0.01)
        for g in grads:
            opt.apply([B.asarray(g)], [var])
        return var.numpy()

    fused, loop = _with_and_without_fused_rmsprop(run)
    np.testing.assert_allclose(fused, loop, rtol=1e-6, atol=1e-7)


def _with_and_without_fused_rmsprop(fn):
    with polykeras.use_backend("torch") as B:
        fused = fn()
        kernel = type(B).rmsprop_update
        del type(B).rmsprop_update
        try:
            loop = fn()
        finally:
            type(B).rmsprop_update = kernel
    return fused, loop
