"""Adam's fused update (the optional ``adam_update`` kernel of contract.FusedKernels: torch's
multi-tensor ops on the torch backend, fewer temporaries on NumPy) gives the numbers of the
optimizer's own op-by-op update, and Keras 3's."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import polykeras
from polykeras.engine.variables import Variable
from polykeras.training import optimizers

from helpers import run_keras3_script

RNG = np.random.default_rng(11)
SHAPES = [(4, 3), (3,), (2, 2, 5), (1,)]
W0 = [RNG.normal(size=s).astype("float32") for s in SHAPES]
STEPS = [[RNG.normal(size=s).astype("float32") for s in SHAPES] for _ in range(5)]

OPTIMIZERS = {
    "adam": lambda: optimizers.Adam(learning_rate=0.01),
    "amsgrad": lambda: optimizers.Adam(learning_rate=0.01, amsgrad=True),
    "adam_eps": lambda: optimizers.Adam(learning_rate=0.05, beta_1=0.5, epsilon=0.1),
    "clipnorm": lambda: optimizers.Adam(learning_rate=0.01, clipnorm=0.5),
}


def _train(make_opt, steps=STEPS):
    """The weights and optimizer state after ``steps``, as NumPy arrays."""
    B = polykeras.backend.current()
    variables = [Variable(w.copy(), f"w{i}:0") for i, w in enumerate(W0)]
    opt = make_opt()
    for grads in steps:
        opt.apply([B.asarray(g) for g in grads], variables)
    return [v.numpy().copy() for v in variables] + [np.array(w) for w in opt.get_weights()]


def _kernel():
    B = polykeras.backend.current()
    kernel = getattr(type(B), "adam_update", None)
    if kernel is None:
        pytest.skip(f"the {B.name} backend has no fused Adam kernel")
    return B, kernel


@pytest.mark.parametrize("key", sorted(OPTIMIZERS))
def test_fused_adam_matches_the_op_by_op_update(monkeypatch, key):
    B, kernel = _kernel()
    calls = []

    def spy(self, *args):
        calls.append(len(args[0]))
        return kernel(self, *args)

    monkeypatch.setattr(type(B), "adam_update", spy)
    fused = _train(OPTIMIZERS[key])
    assert calls == [len(SHAPES)] * len(STEPS), "the kernel updates every variable in one call"
    monkeypatch.setattr(type(B), "adam_update", None)  # no kernel
    loop = _train(OPTIMIZERS[key])
    slots = 3 if key == "amsgrad" else 2
    assert len(fused) == len(loop) == len(SHAPES) * (1 + slots) + 1
    for i, (a, b) in enumerate(zip(fused, loop)):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"array {i}")


def test_fused_adam_with_weight_decay_matches_the_op_by_op_update(monkeypatch):
    B, _ = _kernel()
    make = getattr(optimizers, "AdamW", None)
    if make is None:
        pytest.skip("no AdamW yet")
    fused = _train(lambda: make(learning_rate=0.01, weight_decay=0.1))
    monkeypatch.setattr(type(B), "adam_update", None)  # no kernel
    loop = _train(lambda: make(learning_rate=0.01, weight_decay=0.1))
    for a, b in zip(fused, loop):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_fused_adam_leaves_arrays_read_back_unchanged():
    """get_weights() arrays may share memory with the state (torch on the CPU): a later
    step must not change them."""
    _kernel()
    B = polykeras.backend.current()
    variables = [Variable(w.copy(), f"w{i}:0") for i, w in enumerate(W0)]
    opt = optimizers.Adam(learning_rate=0.01, amsgrad=True)
    opt.apply([B.asarray(g) for g in STEPS[0]], variables)
    before = opt.get_weights()
    copies = [np.array(a, copy=True) for a in before]
    given = [np.array(a, copy=True) for a in before]
    opt.set_weights(given)
    opt.apply([B.asarray(g) for g in STEPS[1]], variables)
    for a, b in zip(before, copies):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(given, copies):
        np.testing.assert_array_equal(a, b)


def test_a_subclass_with_its_own_update_is_not_fused(monkeypatch):
    B, _ = _kernel()

    class Halved(optimizers.Adam):
        def _update(self, B, w, g, slots, lr):
            return super()._update(B, w, g, slots, lr * 0.5)

    monkeypatch.setattr(
        type(B), "adam_update", lambda *a: pytest.fail("the fused kernel bypassed _update")
    )
    halved = _train(lambda: Halved(learning_rate=0.02))
    monkeypatch.setattr(type(B), "adam_update", None)  # no kernel
    plain = _train(lambda: optimizers.Adam(learning_rate=0.01))
    for a, b in zip(halved, plain):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


KERAS_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    data = np.load(sys.argv[1])
    n = int(data["n"])
    out = {}
    for key, kw in {"adam": {}, "amsgrad": {"amsgrad": True}}.items():
        variables = [keras.Variable(data[f"w{i}"], dtype="float32") for i in range(n)]
        opt = keras.optimizers.Adam(learning_rate=0.01, **kw)
        for s in range(int(data["steps"])):
            grads = [keras.ops.convert_to_tensor(data[f"g{s}_{i}"]) for i in range(n)]
            opt.apply_gradients(list(zip(grads, variables)))
        for i, v in enumerate(variables):
            out[f"{key}_{i}"] = keras.ops.convert_to_numpy(v.value)
    np.savez(sys.argv[2], **out)
""")


def test_fused_adam_matches_keras3(tmp_path):
    _kernel()
    inputs = {f"w{i}": w for i, w in enumerate(W0)}
    inputs.update({f"g{s}_{i}": g for s, grads in enumerate(STEPS) for i, g in enumerate(grads)})
    inputs.update({"n": np.array(len(W0)), "steps": np.array(len(STEPS))})
    ref = run_keras3_script(tmp_path, KERAS_SCRIPT, inputs)
    for key in ("adam", "amsgrad"):
        ours = _train(OPTIMIZERS[key])
        for i in range(len(W0)):
            np.testing.assert_allclose(ours[i], ref[f"{key}_{i}"], rtol=1e-5, atol=1e-6)
