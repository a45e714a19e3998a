"""compile(jit_compile=True): compiled training steps where the backend can compile, eager
with a warning naming why where it cannot; the same numbers either way (issue 21)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import polykeras
from polykeras import layers as L
from polykeras.training.compiled import JitStep

from helpers import torch_unusable_reason

RNG = np.random.default_rng(5)
X = RNG.normal(size=(48, 6)).astype("float32")
Y = np.eye(3, dtype="float32")[RNG.integers(0, 3, 48)]


def _model(jit, dropout_seed=None, batchnorm=False):
    inp = L.Input((6,))
    h = L.Dense(8, activation="relu")(inp)
    if batchnorm:
        h = L.BatchNormalization()(h)
    if dropout_seed is not None:
        h = L.Dropout(0.5, seed=dropout_seed)(h)
    model = polykeras.Model(inp, L.Dense(3, activation="softmax")(h))
    model.compile(
        polykeras.optimizers.RMSprop(learning_rate=0.01),
        "categorical_crossentropy",
        jit_compile=jit,
    )
    return model


def _fit(model, epochs=2):
    return model.fit(X, Y, batch_size=16, epochs=epochs, verbose=0, shuffle=False).history["loss"]


def test_jit_compile_values_are_checked():
    with pytest.raises(ValueError, match="jit_compile must be True, False or 'auto'"):
        _model("yes")
    for value in (False, "auto", None):
        assert _model(value)._compiled.jit is None
    assert isinstance(_model(True)._compiled.jit, JitStep)
    with pytest.warns(UserWarning, match="run_eagerly=True and jit_compile=True"):
        inp = L.Input((6,))
        m = polykeras.Model(inp, L.Dense(3)(inp))
        m.compile("sgd", "mse", run_eagerly=True, jit_compile=True)
    assert m._compiled.jit is None


def test_backend_without_compiler_warns_and_runs_eagerly():
    with polykeras.use_backend("numpy"):
        eager, jit = _model(False), _model(True)
        jit.set_weights(eager.get_weights())
        with pytest.warns(UserWarning, match="numpy backend has no compiler.*runs eagerly"):
            got = _fit(jit)
        np.testing.assert_array_equal(got, _fit(eager))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once per model, not every step
            _fit(jit, epochs=1)


class _FailingBackend:
    """The active backend with a compile hook that always fails."""

    def __init__(self, inner, exc):
        self._inner, self._exc = inner, exc

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def compile_step(self, fn, args):
        raise self._exc


def test_failing_compiler_falls_back_with_its_reason():
    from polykeras import backend as K

    B = K.current()
    model = _model(True)
    eager = _model(False)
    eager.set_weights(model.get_weights())
    step = model._jit_step(model._compiled)
    values = [v.value for v in model._compiled.trainable]
    xs, ys, sws = [B.asarray(X[:16])], [B.asarray(Y[:16])], [None]
    failing = _FailingBackend(B, RuntimeError("no working C compiler"))
    jit = model._compiled.jit
    assert jit.run(failing, model, step, values, xs, ys, sws) is None  # first: eager
    with pytest.warns(UserWarning, match="tracing the step failed .*no working C compiler"):
        assert jit.run(failing, model, step, values, xs, ys, sws) is None
    assert jit.failed is not None


def test_seeded_dropout_is_not_compiled():
    torch_reason = torch_unusable_reason()
    if torch_reason:
        pytest.skip(torch_reason)
    with polykeras.use_backend("torch"):
        model = _model(True, dropout_seed=3)
        with pytest.warns(UserWarning, match="NumPy seed"):
            _fit(model, epochs=1)


@pytest.mark.slow
def test_torch_compiled_steps_give_eager_numbers():
    """torch.compile on the traced step (slow to start on a small CPU: one tiny model)."""
    torch_reason = torch_unusable_reason()
    if torch_reason:
        pytest.skip(torch_reason)
    with polykeras.use_backend("torch"):
        eager, jit = _model(False, batchnorm=True), _model(True, batchnorm=True)
        jit.set_weights(eager.get_weights())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = _fit(jit, epochs=3)
        ours = [str(w.message) for w in caught if "jit_compile" in str(w.message)]
        if any("failed" in m for m in ours):
            pytest.skip(f"torch.compile does not work here: {ours}")
        assert not ours
        want = _fit(eager, epochs=3)
        assert len(jit._compiled.jit.fns) == 1  # one batch signature, compiled
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        for a, b in zip(jit.get_weights(), eager.get_weights()):  # BatchNorm's moving stats too
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(
            jit.evaluate(X, Y, verbose=0), eager.evaluate(X, Y, verbose=0), rtol=1e-5
        )


# -- dispatch: the NumPy backend's fused RMSprop (one call for every variable) --------------
def test_numpy_fused_rmsprop_gives_the_optimizers_own_numbers(monkeypatch):
    from polykeras_numpy.xp_backend import XpBackend

    from polykeras.engine.variables import Variable
    from polykeras.training.optimizers import RMSprop

    rng = np.random.default_rng(8)
    shapes = [(4, 3), (3,), (2, 2, 5)]
    w0 = [rng.normal(size=s).astype("float32") for s in shapes]
    steps = [[rng.normal(size=s).astype("float32") for s in shapes] for _ in range(3)]

    def run():
        with polykeras.use_backend("numpy") as B:
            variables = [Variable(w.copy(), f"w{i}:0") for i, w in enumerate(w0)]
            opt = RMSprop(learning_rate=0.01)
            for grads in steps:
                opt.apply([B.asarray(g) for g in grads], variables)
            return [v.numpy() for v in variables] + [B.to_numpy(s) for s in opt.weights[1:]]

    fused = run()
    monkeypatch.delattr(XpBackend, "rmsprop_update")
    loop = run()
    assert len(fused) == 6
    for a, b in zip(fused, loop):
        np.testing.assert_array_equal(a, b)  # the same operations in the same order
    assert not np.array_equal(fused[0], w0[0])
