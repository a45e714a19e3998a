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

    def compile_step(self, fn, args, write_back=False):
        raise self._exc


def test_failing_compiler_falls_back_with_its_reason():
    from polykeras import backend as K

    B = K.current()
    model = _model(True)
    c = model._compiled
    xs, ys, sws = [B.asarray(X[:16])], [B.asarray(Y[:16])], [None]
    failing = _FailingBackend(B, RuntimeError("no working C compiler"))
    jit = c.jit
    assert jit.train(failing, model, c, xs, ys, sws) is None  # first: eager
    with pytest.warns(UserWarning, match="tracing the step failed .*no working C compiler"):
        assert jit.train(failing, model, c, xs, ys, sws) is None
    assert jit.failed is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # given up: eager from now on, without a new warning
        assert jit.train(failing, model, c, xs, ys, sws) is None
        _fit(model, epochs=1)


def test_seeded_dropout_is_not_compiled():
    torch_reason = torch_unusable_reason()
    if torch_reason:
        pytest.skip(torch_reason)
    with polykeras.use_backend("torch"):
        model = _model(True, dropout_seed=3)
        with pytest.warns(UserWarning, match="NumPy seed"):
            _fit(model, epochs=1)


def test_row_sparse_embedding_updates_are_not_compiled():
    """An embedding table updated row by row (different rows every batch) stays eager,
    with one warning, on every backend."""
    ids = np.random.default_rng(1).integers(0, 50, size=(48, 4))
    inp = L.Input((4,), dtype="int32")
    h = L.Flatten()(L.Embedding(50, 3)(inp))
    model = polykeras.Model(inp, L.Dense(3, activation="softmax")(h))
    model.compile("rmsprop", "categorical_crossentropy", jit_compile=True)
    assert model._compiled.row_sparse
    with pytest.warns(UserWarning, match="(row by row|no compiler).*runs eagerly"):
        model.fit(ids, Y, batch_size=16, epochs=1, verbose=0)
    assert not model._compiled.jit.fns


def _use_torch():
    torch_reason = torch_unusable_reason()
    if torch_reason:
        pytest.skip(torch_reason)
    return polykeras.use_backend("torch")


#: what the fallback warning says where Inductor itself cannot work (no C++ compiler)
NO_COMPILER = ("the compiled step failed", "InductorError", "CppCompileError", "C compiler")


def _twin_fits(build, x, y, epochs=2, update_eager="", **fit_kw):
    """An eager and a compiled model from ``build(jit_compile)``, with the same weights,
    trained alike; returns both and both histories (skips where torch.compile fails)."""
    eager, jit = build(False), build(True)
    jit.set_weights(eager.get_weights())
    kw = {"batch_size": 16, "epochs": epochs, "verbose": 0, "shuffle": False, **fit_kw}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = jit.fit(x, y, **kw).history
    ours = [str(w.message) for w in caught if "jit_compile" in str(w.message)]
    if any(word in m for m in ours for word in NO_COMPILER):
        pytest.skip(f"torch.compile does not work here: {ours}")
    assert not ours  # a failed trace fails the test
    want = eager.fit(x, y, **kw).history
    step = jit._compiled.jit
    assert len(step.fns) == 1  # one batch signature (48 samples: 3 full batches), compiled once
    assert step.failed is None
    if update_eager:
        assert update_eager in step.update_eager
    else:
        assert step.update_eager == ""  # the optimizer's update is part of the graph
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=2e-5, atol=1e-6, err_msg=key)
    for a, b in zip(jit.get_weights(), eager.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    ours_opt, theirs_opt = jit.optimizer.get_weights(), eager.optimizer.get_weights()
    assert int(ours_opt[0]) == int(theirs_opt[0]) == epochs * 3  # the step count
    for a, b in zip(ours_opt[1:], theirs_opt[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    return eager, jit, got, want


@pytest.mark.slow
def test_torch_compiled_steps_give_eager_numbers():
    """RMSprop with BatchNormalization (its moving statistics written by the graph) and a
    metric: the whole step compiled, the weights updated in place."""
    with _use_torch():

        def build(jit):
            model = _model(jit, batchnorm=True)
            model.compile(
                polykeras.optimizers.RMSprop(learning_rate=0.01),
                "categorical_crossentropy",
                metrics=["accuracy", "mse"],
                jit_compile=jit,
            )
            return model

        eager, jit, _, _ = _twin_fits(build, X, Y, epochs=3)
        ((_, plan),) = jit._compiled.jit.fns.values()
        assert plan["metrics"]  # computed in the graph, read back with the loss
        np.testing.assert_allclose(
            jit.evaluate(X, Y, verbose=0), eager.evaluate(X, Y, verbose=0), rtol=1e-5
        )
        # compiled steps write the weights, the optimizer's slots and BatchNorm's moving
        # statistics into the arrays they hold (in place)
        held = [v.value for v in jit.weights]
        held_slots = [s for v in jit.trainable_weights for s in jit.optimizer._slots[id(v)]]
        old = jit.get_weights()
        _fit(jit, epochs=1)
        assert all(v.value is h for v, h in zip(jit.weights, held))
        slots = [s for v in jit.trainable_weights for s in jit.optimizer._slots[id(v)]]
        assert all(s is h for s, h in zip(slots, held_slots))
        assert all(not np.array_equal(a, b) for a, b in zip(jit.get_weights(), old))


@pytest.mark.slow
def test_torch_compiled_adam_sparse_crossentropy_and_sample_weights():
    """Sparse categorical crossentropy compiles (the label range check is skipped while
    tracing: fit checks the labels first); Adam's step size is an input of the graph."""
    labels = Y.argmax(1).astype("int32")
    sw = np.linspace(0.2, 2.0, len(X)).astype("float32")
    with _use_torch():

        def build(jit):
            model = _model(jit)
            model.compile(
                polykeras.optimizers.Adam(learning_rate=0.01, amsgrad=True),
                "sparse_categorical_crossentropy",
                metrics=["accuracy"],
                weighted_metrics=["accuracy"],
                jit_compile=jit,
            )
            return model

        _, jit, _, _ = _twin_fits(build, X, labels, sample_weight=sw)
        bad = labels.copy()
        bad[5] = 3  # the clear error, before any step, when the step is compiled too
        with pytest.raises(ValueError, match=r"class labels must lie in \[0, 3\)"):
            jit.fit(X, bad, batch_size=16, epochs=1, verbose=0)
        with polykeras.use_backend("torch") as B:
            with pytest.raises(IndexError, match=r"indices must lie in \[0, 3\)"):
                B.sparse_softmax_crossentropy(B.asarray(bad[:8]), B.asarray(X[:8, :3]))


@pytest.mark.slow
def test_torch_compiled_sgd_momentum_with_a_schedule():
    """SGD with Nesterov momentum and a learning-rate schedule: the rate changes every
    step without compiling again."""
    with _use_torch():

        def build(jit):
            model = _model(jit)
            schedule = polykeras.optimizers.schedules.ExponentialDecay(0.05, 2, 0.5)
            model.compile(
                polykeras.optimizers.SGD(schedule, momentum=0.9, nesterov=True),
                "categorical_crossentropy",
                jit_compile=jit,
            )
            return model

        _twin_fits(build, X, Y, epochs=3)


@pytest.mark.slow
def test_torch_compiled_masked_model_and_metric_objects():
    """A masked sequence output (the loss and metrics count kept steps) and a metric
    object, whose state is updated eagerly from the compiled step's outputs."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(48, 4, 3)).astype("float32")
    x[::3, 2:] = 0.0  # masked steps
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, (48, 4))]
    with _use_torch():

        def build(jit):
            inp = L.Input((4, 3))
            h = L.Masking(0.0)(inp)
            model = polykeras.Model(inp, L.Dense(2, activation="softmax")(h))
            model.compile(
                polykeras.optimizers.RMSprop(learning_rate=0.01),
                "categorical_crossentropy",
                metrics=["accuracy", polykeras.metrics.CategoricalAccuracy(name="acc_obj")],
                jit_compile=jit,
            )
            return model

        _, jit, got, _ = _twin_fits(build, x, y)
        assert "acc_obj" in got
        ((_, plan),) = jit._compiled.jit.fns.values()
        assert not plan["metrics"]  # a metric object keeps state: updated eagerly


@pytest.mark.slow
def test_torch_optimizer_without_compiled_update_updates_eagerly():
    """An optimizer whose update is not compiled (Adagrad): the loss and gradients still
    are, and the update follows eagerly; the same numbers."""
    with _use_torch():

        def build(jit):
            model = _model(jit)
            model.compile(
                polykeras.optimizers.Adagrad(learning_rate=0.05),
                "categorical_crossentropy",
                jit_compile=jit,
            )
            return model

        _twin_fits(build, X, Y, update_eager="Adagrad's update is not compiled")


KERAS3_FIT = """
import os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import keras

data = np.load(sys.argv[1])
inp = keras.Input((6,))
h = keras.layers.Dense(8, activation="relu")(inp)
model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))
model.compile(
    keras.optimizers.Adam(learning_rate=0.01),
    "sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
model.set_weights([data[f"w{i}"] for i in range(4)])
hist = model.fit(data["x"], data["y"], batch_size=16, epochs=2, verbose=0, shuffle=False)
out = {f"w{i}": w for i, w in enumerate(model.get_weights())}
np.savez(sys.argv[2], loss=np.asarray(hist.history["loss"]), **out)
"""


@pytest.mark.slow
def test_torch_compiled_step_matches_keras3(tmp_path):
    """The compiled step (sparse crossentropy, Adam) against Keras 3 training the same
    model from the same weights (Keras 3 on torch, eager)."""
    from helpers import run_keras3_script

    labels = Y.argmax(1).astype("int32")
    with _use_torch():
        model = _model(True)
        model.compile(
            polykeras.optimizers.Adam(learning_rate=0.01),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=True,
        )
        start = model.get_weights()
        got = model.fit(X, labels, batch_size=16, epochs=2, verbose=0, shuffle=False)
        assert model._compiled.jit.failed is None and len(model._compiled.jit.fns) == 1
        inputs = {"x": X, "y": labels, **{f"w{i}": w for i, w in enumerate(start)}}
        ref = run_keras3_script(tmp_path, KERAS3_FIT, inputs)
        np.testing.assert_allclose(got.history["loss"], ref["loss"], rtol=1e-4, atol=1e-5)
        for i, w in enumerate(model.get_weights()):
            np.testing.assert_allclose(w, ref[f"w{i}"], rtol=1e-4, atol=1e-5)


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
