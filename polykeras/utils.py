"""Utilities: reproducibility and small helpers Keras users reach for."""

from __future__ import annotations

import math
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
        out = int(math.trunc(value))  # integral here, so exact (as int(value) is)
    if minimum is not None and out < minimum:
        raise ValueError(f"{owner}: {what} must be {expected}, got {value!r}")
    return int(out)


def as_float(
    value: Any,
    what: str,
    owner: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite Python float within ``[low, high]`` (``low_open``/``high_open``
    exclude an end), or a ValueError naming ``what`` and ``owner``.  The one check every
    numeric setting of a layer, initializer, regularizer, constraint or optimizer goes
    through: NaN, infinity, bools, strings and values out of range are refused when the
    object is made, not found later as NaN weights."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: {what} must be a number, got {value!r:.60}")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf if operator.gt(value, 0) else -math.inf  # a huge int: refused below
    if not math.isfinite(out):
        raise ValueError(f"{owner}: {what} must be a finite number, got {value!r:.60}")
    lo_bad = low is not None and (out < low or (low_open and out == low))
    hi_bad = high is not None and (out > high or (high_open and out == high))
    if lo_bad or hi_bad:
        left = "any" if low is None else f"{'(' if low_open else '['}{low:g}"
        right = "any" if high is None else f"{high:g}{')' if high_open else ']'}"
        if low == 0 and high is None:
            expected = "a positive number" if low_open else "a non-negative number"
        elif low is not None and high is not None:
            expected = f"in {left}, {right}"
        elif low is not None:
            expected = f"{'>' if low_open else '>='} {low:g}"
        else:
            expected = f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{owner}: {what} must be {expected}, got {value!r}")
    return out


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


class Sequence:
    """Keras' ``utils.Sequence``: batches by index, for ``fit``/``evaluate``/``predict``.

    Subclasses define ``__getitem__(index)`` (one batch: ``(x, y)``, ``(x, y,
    sample_weight)``, or ``x`` for predict) and ``__len__`` (the number of batches); the
    training loop calls ``on_epoch_end`` after each epoch. Indexing makes batches safe to
    prepare out of order, in worker threads or processes."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index)")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__()")

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch (e.g. to reshuffle the samples)."""

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


#: Keras 3's name for Sequence
PyDataset = Sequence


#: names this module serves from modules imported only when the name is first used
#: (optional libraries such as pydot, Pillow or scikit-learn stay unimported until then):
#: name -> module that defines it
_LAZY: dict[str, str] = {
    # Keras' utils.get_file: download once, check the hash, unpack safely
    "get_file": "polykeras.utils_data",
    # where Keras 3 put it (preprocessing.sequence imports this module: loaded on use)
    "pad_sequences": "polykeras.preprocessing.sequence",
    "plot_model": "polykeras.visualize",
    "model_to_dot": "polykeras.visualize",
    "custom_object_scope": "polykeras.saving.custom_objects",
    "CustomObjectScope": "polykeras.saving.custom_objects",
    "get_custom_objects": "polykeras.saving.custom_objects",
    "register_keras_serializable": "polykeras.saving.custom_objects",
    "get_registered_name": "polykeras.saving.custom_objects",
    "get_registered_object": "polykeras.saving.custom_objects",
    "load_img": "polykeras.preprocessing.image",
    "img_to_array": "polykeras.preprocessing.image",
    "array_to_img": "polykeras.preprocessing.image",
    "save_img": "polykeras.preprocessing.image",
    "Progbar": "polykeras.training.progress",
    "normalize": "polykeras.utils_extra",
    "pack_x_y_sample_weight": "polykeras.training.custom_steps",
    "unpack_x_y_sample_weight": "polykeras.training.custom_steps",
    "serialize_keras_object": "polykeras.utils_extra",
    "deserialize_keras_object": "polykeras.utils_extra",
    "timeseries_dataset_from_array": "polykeras.utils_extra",
    "image_dataset_from_directory": "polykeras.utils_datasets",
    "text_dataset_from_directory": "polykeras.utils_datasets",
    "split_dataset": "polykeras.utils_datasets",
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'polykeras.utils' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(where), name)
