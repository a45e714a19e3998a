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
