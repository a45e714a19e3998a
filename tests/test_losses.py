"""Losses and metrics: formulas, stability, gradients, names, and real Keras 3's numbers."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, losses, metrics, ops
from polykeras import backend as K

RNG = np.random.default_rng(3)
N, C = 6, 4
PROBS = RNG.dirichlet(np.ones(C), size=N)
ONEHOT = np.eye(C)[RNG.integers(0, C, N)]
BIN_T = RNG.integers(0, 2, size=(N, 3)).astype(np.float64)
BIN_P = RNG.uniform(0.01, 0.99, size=(N, 3))
REG_T = RNG.normal(size=(N, 3))
REG_P = RNG.normal(size=(N, 3))
POS_T = RNG.uniform(0.1, 2.0, size=(N, 3))
POS_P = RNG.uniform(0.1, 2.0, size=(N, 3))

# name -> (y_true, y_pred)
CASES = {
    "binary_crossentropy": (BIN_T, BIN_P),
    "categorical_crossentropy": (ONEHOT, PROBS),
    "sparse_categorical_crossentropy": (np.argmax(ONEHOT, 1), PROBS),
    "mse": (REG_T, REG_P),
    "mae": (REG_T, REG_P),
    "mape": (REG_T, REG_P),
    "msle": (POS_T, POS_P),
    "hinge": (BIN_T, REG_P),
    "squared_hinge": (BIN_T, REG_P),
    "categorical_hinge": (ONEHOT, REG_P[:, :1] + PROBS),
    "kld": (PROBS[::-1].copy(), PROBS),
    "poisson": (POS_T, POS_P),
    "cosine_proximity": (REG_T, REG_P),
    "logcosh": (REG_T, REG_P),
}


def _np(fn, t, p):
    B = K.current()
    return B.to_numpy(fn(B.asarray(t), B.asarray(p)))


def test_formulas_against_numpy():
    eps = 1e-7
    clip = np.clip(BIN_P, eps, 1 - eps)
    want = {
        "binary_crossentropy": -np.mean(
            BIN_T * np.log(clip) + (1 - BIN_T) * np.log(1 - clip), axis=-1
        ),
        "categorical_crossentropy": -np.sum(ONEHOT * np.log(PROBS), axis=-1),
        "sparse_categorical_crossentropy": -np.sum(ONEHOT * np.log(PROBS), axis=-1),
        "mse": np.mean((REG_T - REG_P) ** 2, -1),
        "mae": np.mean(np.abs(REG_T - REG_P), -1),
        "mape": 100 * np.mean(np.abs((REG_T - REG_P) / np.abs(REG_T)), -1),
        "msle": np.mean((np.log1p(POS_P) - np.log1p(POS_T)) ** 2, -1),
        "hinge": np.mean(np.maximum(1 - (2 * BIN_T - 1) * REG_P, 0), -1),
        "squared_hinge": np.mean(np.maximum(1 - (2 * BIN_T - 1) * REG_P, 0) ** 2, -1),
        "kld": np.sum(PROBS[::-1] * np.log(PROBS[::-1] / PROBS), -1),
        "poisson": np.mean(POS_P - POS_T * np.log(POS_P + eps), -1),
        "cosine_proximity": -np.sum(REG_T * REG_P, -1)
        / (np.linalg.norm(REG_T, axis=-1) * np.linalg.norm(REG_P, axis=-1)),
        "logcosh": np.mean(np.log(np.cosh(REG_P - REG_T)), -1),
    }
    for name, value in want.items():
        t, p = CASES[name]
        np.testing.assert_allclose(_np(losses.get(name), t, p), value, rtol=1e-6, err_msg=name)


def test_crossentropy_is_finite_at_saturated_probabilities():
    t = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = np.array([[0.0, 1.0], [1.0, 0.0]])  # confidently wrong
    cce = _np(losses.categorical_crossentropy, t, p)
    np.testing.assert_allclose(cce, -np.log(1e-7), rtol=1e-6)
    bce = _np(losses.binary_crossentropy, t, p)
    assert np.all(np.isfinite(bce))
    with polykeras.use_backend("numpy"):
        leaf = autodiff.Traced(K.current().asarray(p))
        g = autodiff.gradients(ops.sum(losses.binary_crossentropy(t, leaf)), [leaf])[0]
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_gradient_matches_finite_differences(name):
    t, p = CASES[name]
    fn = losses.get(name)
    B = K.current()
    leaf = autodiff.Traced(B.asarray(p))
    with autodiff.core_differentiation():
        g = B.to_numpy(autodiff.gradients(ops.sum(fn(B.asarray(t), leaf)), [leaf])[0])
    h = 1e-6
    num = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        up, down = p.copy(), p.copy()
        up[idx] += h
        down[idx] -= h
        num[idx] = (_np(fn, t, up).sum() - _np(fn, t, down).sum()) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-4, atol=1e-6)


def test_get_names_aliases_and_serialize():
    assert losses.get("mse") is losses.mean_squared_error
    assert losses.get("MAE") is losses.mean_absolute_error
    assert losses.get("kullback_leibler_divergence") is losses.kld
    assert isinstance(losses.get("BinaryCrossentropy"), losses.BinaryCrossentropy)  # as Keras
    assert losses.serialize(losses.get("mse")) == "mean_squared_error"

    def custom(y_true, y_pred):
        return ops.mean(ops.abs(ops.subtract(y_true, y_pred)), axis=-1)

    assert losses.get(custom) is custom
    assert losses.serialize(custom) == "custom"
    with pytest.raises(ValueError, match="Unknown loss function: 'msee'"):
        losses.get("msee")
    assert polykeras.losses is losses and polykeras.metrics is metrics


def test_metrics_values():
    t = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=float)
    p = np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4]])
    np.testing.assert_array_equal(_np(metrics.categorical_accuracy, t, p), [1, 0, 0])
    np.testing.assert_array_equal(
        _np(metrics.sparse_categorical_accuracy, np.array([[2], [1], [0]]), p), [1, 0, 0]
    )
    np.testing.assert_array_equal(
        _np(lambda a, b: metrics.top_k_categorical_accuracy(a, b, k=2), t, p), [1, 1, 1]
    )
    np.testing.assert_array_equal(
        _np(lambda a, b: metrics.top_k_categorical_accuracy(a, b, k=1), t, p), [1, 0, 0]
    )
    np.testing.assert_array_equal(
        _np(
            metrics.binary_accuracy,
            np.array([[1.0], [0.0], [1.0]]),
            np.array([[0.6], [0.2], [0.5]]),
        ),
        [1, 1, 0],
    )


def test_accuracy_resolves_per_output_like_keras():
    r = metrics.resolve
    assert r("accuracy", losses.binary_crossentropy, (None, 5)) is metrics.binary_accuracy
    assert r("acc", losses.mean_squared_error, (None, 1)) is metrics.binary_accuracy
    assert (
        r("acc", losses.sparse_categorical_crossentropy, (None, 10))
        is metrics.sparse_categorical_accuracy
    )
    assert (
        r("accuracy", losses.categorical_crossentropy, (None, 10)) is metrics.categorical_accuracy
    )
    assert (
        r("crossentropy", losses.categorical_crossentropy, (None, 10))
        is losses.categorical_crossentropy
    )
    assert r("mse", losses.categorical_crossentropy, (None, 10)) is losses.mean_squared_error
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.get("accuracyy")


# -- real Keras 3 ---------------------------------------------------------------------------------
KERAS_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    data = dict(np.load(sys.argv[1]))
    names = {"mse": "mean_squared_error", "mae": "mean_absolute_error",
             "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
             "kld": "kl_divergence", "cosine_proximity": "cosine_similarity",
             "logcosh": "log_cosh"}
    out = {}
    for key in data:
        if not key.endswith("__t"):
            continue
        name = key[:-3]
        fn = getattr(keras.losses, names.get(name, name))
        value = fn(data[name + "__t"], data[name + "__p"])
        out[name] = keras.ops.convert_to_numpy(value)
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def keras3_losses(tmp_path_factory):
    from helpers import run_keras3_script

    arrays = {}
    for name, (t, p) in CASES.items():
        arrays[name + "__t"], arrays[name + "__p"] = t, p
    return run_keras3_script(tmp_path_factory.mktemp("keras3_losses"), KERAS_SCRIPT, arrays)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_matches_keras3(keras3_losses, name):
    t, p = CASES[name]
    np.testing.assert_allclose(
        _np(losses.get(name), t, p), keras3_losses[name], rtol=1e-5, atol=1e-7
    )
