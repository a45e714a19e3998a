"""Keras 3's ``keras.random``: random tensors, drawn on the host with NumPy.

Every function takes ``seed``: an int, a :class:`SeedGenerator`, or None.

- An int gives the same values at every call (as in Keras 3) and on every backend: the
  values come from NumPy's generator seeded with it, then become a backend array.
- A :class:`SeedGenerator` gives a new draw at each call, its sequence fixed by its seed
  (the same on every backend).
- None draws from the generator :func:`polykeras.utils.set_random_seed` seeds (the one
  weight initializers use): repeatable after ``set_random_seed``, on every backend.

``dtype`` defaults to ``floatx()`` (``randint`` and ``categorical``: ``"int32"``).  The
values are not those of Keras 3 (its generators are the backend's), but the distributions
are the same.  ``dropout`` and ``shuffle`` work on any tensor ``polykeras.ops`` takes (while
a loss is differentiated too: the mask and the permutation are constants).
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

import numpy as np

from . import ops

__all__ = [
    "SeedGenerator",
    "normal",
    "uniform",
    "truncated_normal",
    "randint",
    "shuffle",
    "dropout",
    "categorical",
    "gamma",
    "beta",
    "binomial",
]


class SeedGenerator:
    """A sequence of seeds: each random call given it draws new values, the whole
    sequence fixed by ``seed`` (None: a fresh, unpredictable one)."""

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs: Any):
        if kwargs:
            raise ValueError(f"SeedGenerator: unrecognized keyword arguments: {sorted(kwargs)}")
        if seed is not None:
            seed = _int_seed(seed, "SeedGenerator")
        self.seed = seed
        self.name = name or "seed_generator"
        self._generator = np.random.default_rng(seed)

    def next(self) -> int:
        """A new seed from the sequence (an int)."""
        return int(self._generator.integers(0, 2**63 - 1))

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SeedGenerator:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<SeedGenerator seed={self.seed}>"


def _int_seed(seed: Any, owner: str) -> int:
    if isinstance(seed, (bool, np.bool_)):
        raise ValueError(f"{owner}: seed must be an integer, got {seed!r}")
    try:
        value = operator.index(seed)
    except TypeError:
        raise ValueError(f"{owner}: seed must be an integer, got {seed!r:.60}") from None
    if value < 0:
        raise ValueError(f"{owner}: seed must be a non-negative integer, got {value}")
    return int(value)


def _generator(seed: Any, owner: str) -> np.random.Generator:
    """The NumPy generator one call draws from (see the module docstring)."""
    if seed is None:
        from . import initializers

        return initializers._rng(None)
    if isinstance(seed, SeedGenerator):
        return np.random.default_rng(seed.next())
    if isinstance(seed, (numbers.Integral, np.integer)) or hasattr(seed, "__index__"):
        return np.random.default_rng(_int_seed(seed, owner))
    raise ValueError(
        f"{owner}: seed must be either an integer or an instance of SeedGenerator, "
        f"got {seed!r:.60} (of type {type(seed).__name__})"
    )


def _shape(shape: Any, owner: str) -> tuple[int, ...]:
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"{owner}: shape must be a tuple of integers, got {shape!r:.60}") from None
    out = []
    for d in dims:
        if isinstance(d, (bool, np.bool_)) or not hasattr(d, "__index__") or operator.index(d) < 0:
            raise ValueError(
                f"{owner}: shape must be a tuple of non-negative integers (fully known), "
                f"got {tuple(dims)!r:.80}"
            )
        out.append(operator.index(d))
    return tuple(out)


def _float_dtype(dtype: Any, owner: str) -> str:
    from .config import floatx

    name = floatx() if dtype is None else str(np.dtype(dtype))
    if not np.issubdtype(np.dtype(name), np.floating):
        raise ValueError(f"{owner} requires a floating point dtype, got dtype={dtype!r}")
    return name


def _int_dtype(dtype: Any, owner: str) -> str:
    name = str(np.dtype("int32" if dtype is None else dtype))
    if not np.issubdtype(np.dtype(name), np.integer):
        raise ValueError(f"{owner} requires an integer dtype, got dtype={dtype!r}")
    return name


def _finite(value: Any, what: str, owner: str) -> float:
    from .utils import as_float

    return as_float(value, what, owner)


def _out(values: np.ndarray, dtype: str) -> Any:
    from . import backend

    return backend.current().asarray(np.ascontiguousarray(values.astype(dtype)), dtype)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal values with ``mean`` and ``stddev``."""
    owner = "random.normal"
    shape, dtype = _shape(shape, owner), _float_dtype(dtype, owner)
    mean, stddev = _finite(mean, "mean", owner), _finite(stddev, "stddev", owner)
    values = _generator(seed, owner).normal(mean, stddev, size=shape)
    return _out(values, dtype)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Uniform values in ``[minval, maxval)``."""
    owner = "random.uniform"
    shape, dtype = _shape(shape, owner), _float_dtype(dtype, owner)
    lo, hi = _finite(minval, "minval", owner), _finite(maxval, "maxval", owner)
    if hi < lo:
        raise ValueError(f"{owner}: maxval ({maxval}) must not be below minval ({minval})")
    values = lo + (hi - lo) * _generator(seed, owner).random(size=shape)
    return _out(values, dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal values with ``mean`` and ``stddev``, those more than two standard
    deviations from the mean drawn again."""
    owner = "random.truncated_normal"
    shape, dtype = _shape(shape, owner), _float_dtype(dtype, owner)
    mean, stddev = _finite(mean, "mean", owner), _finite(stddev, "stddev", owner)
    gen = _generator(seed, owner)
    values = gen.standard_normal(size=shape)
    bad = np.abs(values) > 2.0
    while bad.any():
        values[bad] = gen.standard_normal(size=int(bad.sum()))
        bad = np.abs(values) > 2.0
    return _out(mean + stddev * values, dtype)


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers uniform in ``[minval, maxval)``."""
    owner = "random.randint"
    shape, dtype = _shape(shape, owner), _int_dtype(dtype, owner)
    lo, hi = _int_bound(minval, "minval", owner), _int_bound(maxval, "maxval", owner)
    if hi <= lo and math.prod(shape):
        raise ValueError(f"{owner}: maxval ({maxval}) must be greater than minval ({minval})")
    if not math.prod(shape):
        return _out(np.zeros(shape), dtype)
    return _out(_generator(seed, owner).integers(lo, hi, size=shape), dtype)


def _int_bound(value: Any, what: str, owner: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return int(float(value))
        raise ValueError(f"{owner}: {what} must be an integer, got {value!r:.60}") from None


def _known_shape(x: Any, owner: str) -> tuple[int, ...]:
    """The shape of a concrete tensor; a symbolic one (sizes unknown) is refused."""
    shape = tuple(ops.shape(x))
    if any(d is None for d in shape):
        raise ValueError(
            f"{owner}: the input's shape {shape} is not fully known (a symbolic tensor): "
            "call it on data, inside a layer's call or a Lambda"
        )
    return shape


def shuffle(x, axis=0, seed=None):
    """``x`` with its entries along ``axis`` in a random order."""
    owner = "random.shuffle"
    shape = _known_shape(x, owner)
    if not shape:
        raise ValueError(f"{owner}: x must have at least one axis, got a scalar")
    axis = operator.index(axis)
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"{owner}: axis {axis} is out of range for shape {shape}")
    order = _generator(seed, owner).permutation(shape[axis])
    return ops.take(x, _out(order, "int64"), axis=axis)


def dropout(inputs, rate, noise_shape=None, seed=None):
    """``inputs`` with each entry set to 0 with probability ``rate`` and the rest scaled
    by ``1 / (1 - rate)``; ``noise_shape`` (broadcast to the inputs' shape) shares one
    draw along its axes of size 1."""
    owner = "random.dropout"
    from .utils import as_float

    rate = as_float(rate, "rate", owner, low=0.0, high=1.0, high_open=True)
    shape = _known_shape(inputs, owner)
    if noise_shape is None:
        noise = shape
    else:
        noise = tuple(s if n is None else n for n, s in zip(noise_shape, shape))
        noise = _shape(noise, owner) if len(noise) == len(shape) else None
        if noise is None or any(n not in (1, s) for n, s in zip(noise, shape)):
            raise ValueError(
                f"{owner}: noise_shape {tuple(noise_shape)!r} does not broadcast to the "
                f"inputs' shape {shape}"
            )
    if rate == 0.0:
        return inputs
    keep = _generator(seed, owner).random(size=noise) >= rate
    scale = keep / (1.0 - rate)
    return ops.multiply(inputs, _out(scale, ops.dtype_name(inputs)))


def categorical(logits, num_samples, dtype="int32", seed=None):
    """For each row of the 2-D ``logits``: ``num_samples`` class indices drawn with the
    probabilities ``softmax(row)``."""
    owner = "random.categorical"
    from .utils import as_int

    dtype = _int_dtype(dtype, owner)
    num_samples = as_int(num_samples, "num_samples", owner, minimum=0, allow_float=False)
    values = np.asarray(ops.convert_to_numpy(logits), dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(
            f"{owner}: logits should be a 2-D tensor with shape (batch_size, num_classes), "
            f"got shape {values.shape}"
        )
    if values.shape[1] == 0:
        raise ValueError(f"{owner}: logits have no classes (shape {values.shape})")
    if np.isnan(values).any():
        raise ValueError(f"{owner}: logits hold NaN")
    top = values.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    probs = np.exp(values - top)
    probs /= probs.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(probs, axis=1)
    draws = _generator(seed, owner).random(size=(values.shape[0], num_samples))
    picks = (
        np.stack(
            [np.searchsorted(cumulative[i], draws[i], side="right") for i in range(len(values))]
        )
        if len(values)
        else np.zeros((0, num_samples))
    )
    return _out(np.minimum(picks, values.shape[1] - 1), dtype)


def gamma(shape, alpha, dtype=None, seed=None):
    """Gamma values with concentration ``alpha`` (scale 1)."""
    owner = "random.gamma"
    shape, dtype = _shape(shape, owner), _float_dtype(dtype, owner)
    alpha = _positive_array(alpha, "alpha", owner)
    return _out(_generator(seed, owner).gamma(alpha, size=shape), dtype)


def beta(shape, alpha, beta, dtype=None, seed=None):
    """Beta values with concentrations ``alpha`` and ``beta``."""
    owner = "random.beta"
    shape, dtype = _shape(shape, owner), _float_dtype(dtype, owner)
    a = _positive_array(alpha, "alpha", owner)
    b = _positive_array(beta, "beta", owner)
    return _out(_generator(seed, owner).beta(a, b, size=shape), dtype)


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """Binomial counts of successes in ``counts`` trials with success probability
    ``probabilities`` (returned as floats, ``dtype`` defaulting to floatx, as Keras 3)."""
    owner = "random.binomial"
    shape, dtype = _shape(shape, owner), _float_dtype(dtype, owner)
    n = np.asarray(ops.convert_to_numpy(counts) if not np.isscalar(counts) else counts)
    p = np.asarray(
        ops.convert_to_numpy(probabilities) if not np.isscalar(probabilities) else probabilities,
        dtype=np.float64,
    )
    if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.round(n)):
        raise ValueError(f"{owner}: counts must be non-negative integers, got {counts!r:.60}")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"{owner}: probabilities must be in [0, 1], got {probabilities!r:.60}")
    return _out(_generator(seed, owner).binomial(n.astype(np.int64), p, size=shape), dtype)


def _positive_array(value: Any, what: str, owner: str) -> np.ndarray:
    arr = np.asarray(ops.convert_to_numpy(value) if not np.isscalar(value) else value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{owner}: {what} must be a positive number, got {value!r:.60}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{owner}: {what} must be a positive number, got {value!r:.60}")
    return arr
