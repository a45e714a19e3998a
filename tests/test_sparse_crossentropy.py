"""Sparse categorical crossentropy picks the label's entry (``ops.take_along_last``,
``ops.sparse_softmax_crossentropy``) instead of multiplying by one-hot rows (issue 21): the
same numbers and gradients as the one-hot form, on the probabilities and on the logits,
labels out of range refused, and Keras 3's values."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, ops
from polykeras.training import losses

from helpers import run_keras3_script

RNG = np.random.default_rng(21)
LOGITS = RNG.normal(scale=3.0, size=(6, 5)).astype("float32")
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)
LABELS = np.array([0, 4, 2, 2, 1, 3])
SEQ_LOGITS = RNG.normal(size=(2, 3, 4)).astype("float32")
SEQ_LABELS = np.array([[0, 3, 1], [2, 2, 0]])


def _value_and_grad(fn, x):
    _, out, (grad,) = autodiff.value_and_grad(lambda leaves: _sum_and_out(fn, leaves[0]), [x])
    return ops.to_numpy(out), ops.to_numpy(grad)


def _sum_and_out(fn, x):
    out = fn(x)
    return ops.sum(out), autodiff.detach(out)


def _one_hot(labels, n):
    return np.eye(n, dtype="float32")[labels]


@pytest.mark.parametrize("labels_shape", ["flat", "column"])
def test_probabilities_match_the_one_hot_form_with_gradients(labels_shape):
    B = polykeras.backend.current()
    labels = LABELS if labels_shape == "flat" else LABELS[:, None]
    probs = B.asarray(PROBS * 1.3)  # not normalised: the loss renormalises
    probs_np = PROBS * 1.3
    probs_np[1, 4] = 1e-9  # a clipped probability
    probs = B.asarray(probs_np.astype("float32"))
    picked, g_picked = _value_and_grad(
        lambda p: losses.sparse_categorical_crossentropy(labels, p), probs
    )
    hot = B.asarray(_one_hot(LABELS, 5))
    dense, g_dense = _value_and_grad(lambda p: losses.categorical_crossentropy(hot, p), probs)
    np.testing.assert_allclose(picked, dense, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g_picked, g_dense, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", ["2d", "sequence"])
def test_logits_match_the_one_hot_form_with_gradients(case):
    B = polykeras.backend.current()
    logits_np, labels = (LOGITS, LABELS) if case == "2d" else (SEQ_LOGITS, SEQ_LABELS)
    logits = B.asarray(logits_np)
    n = logits_np.shape[-1]
    picked, g_picked = _value_and_grad(
        lambda x: ops.sparse_categorical_crossentropy(labels, x, from_logits=True), logits
    )
    hot = B.asarray(_one_hot(labels, n))
    dense, g_dense = _value_and_grad(lambda x: ops.softmax_crossentropy(hot, x), logits)
    np.testing.assert_allclose(picked, dense, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_picked, g_dense, rtol=1e-5, atol=1e-6)
    # the generic composition (no fused kernel) gives the same
    with_core = polykeras.autodiff.core_differentiation
    with with_core():
        core, g_core = _value_and_grad(
            lambda x: ops.sparse_categorical_crossentropy(labels, x, from_logits=True), logits
        )
    np.testing.assert_allclose(core, dense, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_core, g_dense, rtol=1e-5, atol=1e-6)


def test_float_labels_and_the_symbolic_op():
    got = ops.to_numpy(
        ops.sparse_categorical_crossentropy(LABELS.astype("float32"), PROBS, from_logits=False)
    )
    want = -np.log(PROBS[np.arange(6), LABELS])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    t, x = polykeras.Input(shape=(1,)), polykeras.Input(shape=(5,))
    y = ops.sparse_categorical_crossentropy(t, x)
    assert tuple(y.shape) == (None,)
    model = polykeras.Model([t, x], y)
    got = model.predict([LABELS[:, None].astype("float32"), PROBS], verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("bad", [[0, 5], [-1, 0]])
@pytest.mark.parametrize("from_logits", [False, True])
def test_labels_out_of_range_are_refused(bad, from_logits):
    with pytest.raises(IndexError, match=r"class labels must lie in \[0, 5\)"):
        ops.sparse_categorical_crossentropy(np.array(bad), LOGITS[:2], from_logits=from_logits)


def test_labels_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"labels of shape \(2, 3\) do not fit predictions"):
        losses.sparse_categorical_crossentropy(np.zeros((2, 3), "int64"), PROBS)


def test_no_one_hot_rows_are_built_forward(monkeypatch):
    """The forward pass picks entries: neither the loss module's identity-matrix one-hot nor
    ops.one_hot runs."""
    monkeypatch.setattr(losses, "one_hot", lambda *a, **k: pytest.fail("one-hot built"))
    monkeypatch.setattr(ops, "one_hot", lambda *a, **k: pytest.fail("one-hot built"))
    losses.sparse_categorical_crossentropy(LABELS, PROBS)
    ops.sparse_categorical_crossentropy(LABELS, LOGITS, from_logits=True)


def test_fit_uses_the_logits_path_and_trains(monkeypatch):
    from polykeras import layers

    calls = []
    op = ops.sparse_softmax_crossentropy
    monkeypatch.setattr(ops, "sparse_softmax_crossentropy", lambda *a: calls.append(1) or op(*a))
    model = polykeras.Sequential([layers.Dense(5, activation="softmax", input_shape=(5,))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    first = model.evaluate(LOGITS, LABELS, verbose=0)
    model.fit(LOGITS, LABELS, epochs=5, verbose=0)
    assert np.isfinite(first) and model.evaluate(LOGITS, LABELS, verbose=0) < first
    assert calls, "a softmax output is scored from its logits"


KERAS_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    d = np.load(sys.argv[1])
    f = keras.losses.sparse_categorical_crossentropy
    out = {
        "probs": f(d["labels"], d["probs"]),
        "logits": f(d["labels"], d["logits"], from_logits=True),
        "seq": f(d["seq_labels"], d["seq_logits"], from_logits=True),
    }
    np.savez(sys.argv[2], **{k: keras.ops.convert_to_numpy(v) for k, v in out.items()})
""")


def test_matches_keras3(tmp_path):
    ref = run_keras3_script(
        tmp_path,
        KERAS_SCRIPT,
        {
            "labels": LABELS,
            "probs": PROBS,
            "logits": LOGITS,
            "seq_labels": SEQ_LABELS,
            "seq_logits": SEQ_LOGITS,
        },
    )
    ours = {
        "probs": losses.sparse_categorical_crossentropy(LABELS, PROBS),
        "logits": ops.sparse_categorical_crossentropy(LABELS, LOGITS, from_logits=True),
        "seq": ops.sparse_categorical_crossentropy(SEQ_LABELS, SEQ_LOGITS, from_logits=True),
    }
    for key, value in ours.items():
        np.testing.assert_allclose(ops.to_numpy(value), ref[key], rtol=1e-4, atol=1e-5)
