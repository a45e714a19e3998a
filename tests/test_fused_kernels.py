"""The torch backend's optional fused RMSprop kernel (contract.FusedKernels) gives the numbers
of the primitives.  The LSTM kernel is checked in test_fused_lstm.py, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import polykeras

pytest.importorskip("torch", reason="the torch backend (the one with fused kernels) needs torch")


def test_fused_rmsprop_matches_the_primitive_update():
    from polykeras.engine.variables import Variable
    from polykeras.training.optimizers import RMSprop

    rng = np.random.default_rng(3)
    shapes = [(4, 3), (3,), (2, 2, 5)]
    w0 = [rng.normal(size=s).astype("float32") for s in shapes]
    steps = [[rng.normal(size=s).astype("float32") for s in shapes] for _ in range(3)]

    def run():
        B = polykeras.backend.current()
        variables = [Variable(w.copy(), f"w{i}:0") for i, w in enumerate(w0)]
        opt = RMSprop(learning_rate=0.01)
        for grads in steps:
            opt.apply([B.asarray(g) for g in grads], variables)
        return [v.numpy() for v in variables] + [B.to_numpy(s) for s in opt.weights[1:]]

    fused, loop = _with_and_without_fused_rmsprop(run)
    assert len(fused) == len(loop) == 6
    for a, b in zip(fused, loop):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


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


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_fused_conv_bias_matches_conv_then_add(monkeypatch, data_format, padding):
    from polykeras import autodiff, ops
    from polykeras.layers import Conv2D

    rng = np.random.default_rng(5)
    shape = (2, 6, 7, 3) if data_format == "channels_last" else (2, 3, 6, 7)
    x = rng.normal(size=shape).astype("float32")
    with polykeras.use_backend("torch") as B:
        layer = Conv2D(
            4, (3, 2), strides=(2, 1), padding=padding, data_format=data_format, activation="tanh"
        )
        layer.build(shape)
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])

        def run():
            variables = layer.trainable_weights

            def loss(leaves):
                with autodiff.substitute(variables, leaves):
                    out = layer.call(B.asarray(x))
                return ops.sum(ops.square(out)), autodiff.detach(out)

            _, out, grads = autodiff.value_and_grad(loss, [v.value for v in variables])
            return [ops.to_numpy(out)] + [ops.to_numpy(g) for g in grads]

        calls = []
        fused_kernel = B.conv2d_bias
        monkeypatch.setattr(
            B, "conv2d_bias", lambda *a, **k: calls.append(1) or fused_kernel(*a, **k)
        )
        fused = run()
        assert calls, "the layer did not use the backend's conv2d_bias"
        monkeypatch.setattr(B, "conv2d_bias", None)
        plain = run()
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
