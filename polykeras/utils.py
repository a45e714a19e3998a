"""Utilities: reproducibility and small helpers Keras users reach for."""

from __future__ import annotations

import numbers
import operator
import random
from typing import Any

import numpy as np


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy, weight initializers and the active backend's generator.

    After this, building and training the same model repeats exactly on the same backend.
    """
    from . import backend, initializers

    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"set_random_seed: seed must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    initializers.seed(seed)
    backend.current().seed(seed)


def as_int(
    value: Any, what: str, owner: str, minimum: int | None = 1, allow_float: bool = True
) -> int:
    """``value`` as a plain Python int, as Keras 2 reads integer arguments.

    Any integral type is accepted (``int``, NumPy integers, anything with ``__index__``),
    and so is a float with an integral value (tf.keras 2's Dense casts ``int(units)``);
    bools, fractional floats and non-numbers are refused, naming ``what`` and ``owner``.
    With ``minimum`` set, smaller values are refused too; ``allow_float=False`` refuses
    every float (shape dimensions).  Errors are ValueErrors, as Keras raises for an
    invalid ``units``."""
    expected = (
        "a positive integer"
        if minimum == 1
        else "a non-negative integer"
        if minimum == 0
        else f"an integer >= {minimum}"
        if minimum is not None
        else "an integer"
    )
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {what} must be {expected}, got the bool {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        if not (
            allow_float
            and isinstance(value, numbers.Real)
            and np.isfinite(float(value))
            and float(value).is_integer()
        ):
            kind = (
                f"a {type(value).__name__}"
                if not allow_float or not isinstance(value, numbers.Real)
                else "a fractional or non-finite number"
            )
            raise ValueError(
                f"{owner}: {what} must be {expected}, got {value!r} ({kind})"
            ) from None
        out = int(value)
    if minimum is not None and out < minimum:
        raise ValueError(f"{owner}: {what} must be {expected}, got {value!r}")
    return int(out)


def to_categorical(y, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """One-hot encode integer class labels."""
    y = np.asarray(y, dtype="int64")
    shape = y.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    y = y.ravel()
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {y.min()}")
    n = int(num_classes) if num_classes is not None else (int(y.max()) + 1 if y.size else 0)
    if y.size and y.max() >= n:
        raise ValueError(f"to_categorical: label {y.max()} is out of range for num_classes={n}")
    out = np.zeros((y.size, n), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out.reshape(shape + (n,))
