"""Keras 3's smaller ``keras.utils`` helpers, served by :mod:`polykeras.utils` on first use:
``normalize``, ``pack_x_y_sample_weight`` / ``unpack_x_y_sample_weight``,
``serialize_keras_object`` / ``deserialize_keras_object`` and
``timeseries_dataset_from_array``."""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from .utils import Sequence, as_int


# -- normalize ------------------------------------------------------------------------------------
def normalize(x: Any, axis: int = -1, order: int = 2) -> Any:
    """``x`` divided by its ``order``-norm along ``axis`` (a zero norm divides by 1).  A
    NumPy array (or list) gives a NumPy array; a backend tensor, a backend tensor."""
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"normalize: order must be an int >= 1, got {order!r}")
    if isinstance(x, (np.ndarray, list, tuple, float, int)):
        arr = np.asarray(x)
        if not np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype("float32")
        if arr.ndim == 0:
            arr = arr.reshape(1)
        axis = _axis(axis, arr.ndim)
        norm = np.linalg.norm(arr, order, axis=axis, keepdims=True)
        norm = np.where(norm == 0, 1, norm).astype(arr.dtype)
        return arr / norm
    from . import ops

    if order == 2:
        return ops.normalize(x, axis=axis, order=2)
    norm = ops.norm(x, ord=order, axis=axis, keepdims=True)
    return ops.divide(x, ops.maximum(norm, 1e-12))


def _axis(axis: Any, ndim: int) -> int:
    a = operator.index(axis)
    if not -ndim <= a < ndim:
        raise ValueError(f"normalize: axis {axis} is out of range for an array of rank {ndim}")
    return a % ndim


# -- batches of a Sequence over numbered items ----------------------------------------------------
def batch_of(order: Any, index: Any, batches: int, batch_size: int | None) -> Any:
    """The items of batch ``index`` (negative counts from the end) out of ``batches``, taken
    from ``order`` in ``batch_size`` runs (None: one item per batch)."""
    index = operator.index(index)
    if index < 0:
        index += batches
    if not 0 <= index < batches:
        raise IndexError(f"batch index {index} is out of range for {batches} batches")
    if batch_size is None:
        return order[index : index + 1]
    return order[index * batch_size : (index + 1) * batch_size]


# -- serialize_keras_object / deserialize_keras_object --------------------------------------------
_PLAIN = (str, int, float, bool, type(None))


def serialize_keras_object(obj: Any) -> Any:
    """``obj`` as a config: ``{"class_name": ..., "config": ...}`` for a layer, model,
    optimizer, schedule, regularizer, initializer, constraint or loss (each as its own
    module serializes it), an activation's name, plain values as they are."""
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(o) for o in obj]
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if isinstance(obj, (np.generic,)):
        return obj.item()
    from . import constraints, initializers, regularizers
    from .engine.base_layer import Layer
    from .training import losses, optimizers, schedules

    if isinstance(obj, Layer):
        from .saving.config import serialize_layer

        return serialize_layer(obj)
    if isinstance(obj, optimizers.Optimizer):
        return {"module": "keras.optimizers", **optimizers.serialize(obj)}
    if isinstance(obj, schedules.LearningRateSchedule):
        return schedules.serialize(obj)
    if isinstance(obj, regularizers.Regularizer):
        return {"module": "keras.regularizers", **regularizers.serialize(obj)}
    if isinstance(obj, initializers.Initializer):
        return initializers.serialize(obj)
    if isinstance(obj, constraints.Constraint):
        return constraints.serialize(obj)
    if callable(obj) and not isinstance(obj, type):
        from . import activations

        for module in (activations, losses):
            try:
                return module.serialize(obj)
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
    get_config = getattr(obj, "get_config", None)
    if callable(get_config):
        from .saving.custom_objects import get_registered_name

        return {
            "module": None,
            "class_name": type(obj).__name__,
            "config": get_config(),
            "registered_name": get_registered_name(type(obj)),
        }
    raise ValueError(
        f"serialize_keras_object: cannot serialize {obj!r:.80} (of type {type(obj).__name__}): "
        "it is no Keras object and has no get_config()"
    )


#: Keras 3's ``module`` of a config -> how to read it
def _readers() -> dict[str, Any]:
    from . import constraints, initializers, regularizers
    from .saving.config import deserialize_layer
    from .training import losses, metrics, optimizers, schedules

    return {
        "keras.optimizers.schedules": schedules.deserialize,
        "keras.optimizers": optimizers.deserialize,
        "keras.regularizers": lambda c, co=None: regularizers.get(_strip(c)),
        "keras.initializers": lambda c, co=None: initializers.get(_strip(c)),
        "keras.constraints": lambda c, co=None: constraints.get(_strip(c)),
        "keras.losses": losses.deserialize,
        "keras.metrics": metrics.deserialize,
        "keras.layers": deserialize_layer,
        "keras.models": deserialize_layer,
        "keras": deserialize_layer,
    }


def _strip(config: dict) -> dict:
    return {"class_name": config["class_name"], "config": dict(config.get("config") or {})}


def deserialize_keras_object(
    config: Any,
    custom_objects: dict | None = None,
    module_objects: dict | None = None,
    printable_module_name: str = "object",
    **kwargs: Any,
) -> Any:
    """The object a :func:`serialize_keras_object` config (Keras 2's or 3's) describes.
    A class found in ``custom_objects``, the registered custom objects or
    ``module_objects`` (Keras 2's argument) is made by its ``from_config``; otherwise the
    config's ``module`` (Keras 3) or its class name says which kind of object it is."""
    unknown = set(kwargs) - {"safe_mode"}
    if unknown:
        raise TypeError(f"deserialize_keras_object: unexpected arguments {sorted(unknown)}")
    from .saving.custom_objects import effective

    objects = {**(module_objects or {}), **effective(custom_objects)}
    if config is None or isinstance(config, (int, float, bool)):
        return config
    if isinstance(config, str):
        if config in objects:
            return objects[config]
        return config
    if isinstance(config, (list, tuple)):
        return [deserialize_keras_object(c, custom_objects, module_objects) for c in config]
    if not isinstance(config, dict):
        raise ValueError(
            f"deserialize_keras_object: cannot read the {printable_module_name} config "
            f"{config!r:.80}"
        )
    if "class_name" not in config:
        return {
            k: deserialize_keras_object(v, custom_objects, module_objects)
            for k, v in config.items()
        }
    name = config["class_name"]
    registered = config.get("registered_name")
    cls = objects.get(registered) if registered else None
    cls = cls or objects.get(name)
    if cls is not None:
        inner = dict(config.get("config") or {})
        if hasattr(cls, "from_config"):
            return cls.from_config(inner)
        return cls(**inner)
    module = config.get("module") or ""
    readers = _readers()
    if module.startswith("keras.src.models") or module.startswith("keras.src.engine"):
        module = "keras.models"
    for prefix in sorted(readers, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return _read(readers[prefix], config, custom_objects)
    # no module (a Keras 2 config): try each kind by its class name
    for prefix in (
        "keras.optimizers.schedules",
        "keras.optimizers",
        "keras.regularizers",
        "keras.initializers",
        "keras.constraints",
        "keras.layers",
    ):
        try:
            return _read(readers[prefix], config, custom_objects)
        except (ValueError, TypeError, KeyError):
            continue
    raise ValueError(
        f"deserialize_keras_object: unknown {printable_module_name} {name!r}; pass its class "
        "in custom_objects (or register it with register_keras_serializable)"
    )


def _read(reader: Any, config: dict, custom_objects: dict | None) -> Any:
    try:
        return reader(config, custom_objects)
    except TypeError:
        return reader(config)


# -- timeseries_dataset_from_array ----------------------------------------------------------------
class TimeseriesDataset(Sequence):
    """Batches of windows over an array, as :func:`timeseries_dataset_from_array` makes
    them: a :class:`polykeras.utils.Sequence` that ``fit``/``evaluate``/``predict`` take
    and that iterates as Keras' dataset does: ``(inputs, targets)`` batches, or inputs
    alone without targets."""

    def __init__(
        self,
        data: Any,
        targets: Any,
        starts: np.ndarray,
        offsets: np.ndarray,
        start_index: int,
        batch_size: int | None,
    ):
        self._data = data
        self._targets = targets
        self._starts = starts
        self._offsets = offsets
        self._start_index = start_index
        self.batch_size = batch_size

    @property
    def num_sequences(self) -> int:
        return len(self._starts)

    def __len__(self) -> int:
        if self.batch_size is None:
            return len(self._starts)
        return math.ceil(len(self._starts) / self.batch_size)

    def __getitem__(self, index: int) -> Any:
        starts = batch_of(self._starts, index, len(self), self.batch_size)
        rows = (starts[:, None] + self._offsets[None, :]) + self._start_index
        x = np.asarray(self._data[rows.reshape(-1)]).reshape(rows.shape + self._data.shape[1:])
        y = None
        if self._targets is not None:
            y = np.asarray(self._targets[starts + self._start_index])
        if self.batch_size is None:
            x = x[0]
            y = None if y is None else y[0]
        return x if y is None else (x, y)


def timeseries_dataset_from_array(
    data: Any,
    targets: Any,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
) -> TimeseriesDataset:
    """Sliding windows over ``data`` (time on the first axis): window i starts at row
    ``start_index + p_i`` (``p_i = i * sequence_stride``) and takes ``sequence_length``
    rows ``sampling_rate`` apart; its target is ``targets[start_index + p_i]`` (None:
    windows alone).  Only rows before ``end_index`` are used.  ``shuffle`` orders the
    windows as Keras does (NumPy's ``RandomState(seed)`` shuffling the start positions;
    Keras' extra in-buffer shuffle of tf.data is not done).  ``batch_size=None`` gives
    single windows."""
    owner = "timeseries_dataset_from_array"
    if isinstance(data, (list, tuple)):
        data = np.asarray(data)
    if not hasattr(data, "__len__") or not hasattr(data, "shape"):
        raise ValueError(f"{owner}: data must be an array (time on the first axis)")
    if targets is not None and isinstance(targets, (list, tuple)):
        targets = np.asarray(targets)
    n = len(data)
    sequence_length = as_int(sequence_length, "sequence_length", owner, allow_float=False)
    sequence_stride = as_int(sequence_stride, "sequence_stride", owner, allow_float=False)
    sampling_rate = as_int(sampling_rate, "sampling_rate", owner, allow_float=False)
    if batch_size is not None:
        batch_size = as_int(batch_size, "batch_size", owner, allow_float=False)
    if sampling_rate >= n:
        raise ValueError(
            f"{owner}: sampling_rate must be lower than the length of the data, got "
            f"sampling_rate={sampling_rate} for data of length {n}"
        )
    if sequence_stride >= n:
        raise ValueError(
            f"{owner}: sequence_stride must be lower than the length of the data, got "
            f"sequence_stride={sequence_stride} for data of length {n}"
        )
    start = 0 if start_index is None else as_int(start_index, "start_index", owner, minimum=0)
    if start >= n:
        raise ValueError(
            f"{owner}: start_index must be lower than the length of the data, got "
            f"start_index={start} for data of length {n}"
        )
    end = n if end_index is None else as_int(end_index, "end_index", owner, minimum=1)
    if end_index is not None and (end <= start or end >= n):
        raise ValueError(
            f"{owner}: end_index must be above start_index ({start}) and lower than the "
            f"length of the data ({n}), got end_index={end}"
        )
    num = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        num = min(num, len(targets))
    starts = np.arange(0, max(num, 0), sequence_stride, dtype=np.int64)
    if shuffle:
        if seed is None:
            seed = int(np.random.randint(1_000_000))
        np.random.RandomState(seed).shuffle(starts)
    offsets = np.arange(0, sequence_length * sampling_rate, sampling_rate, dtype=np.int64)
    return TimeseriesDataset(data, targets, starts, offsets, start, batch_size)
