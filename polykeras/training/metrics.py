"""Metrics by name, as Keras 2 names them.

A metric is a function ``metric(y_true, y_pred)`` of backend arrays returning one value per
sample; the trainer averages it over batches and epochs.  Metrics are computed on values
detached from differentiation.  ``'accuracy'``/``'acc'`` and ``'crossentropy'``/``'ce'``
are resolved per output by :func:`resolve`, the way Keras 2 chooses.
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Callable

from .. import ops
from . import losses as _losses
from .loss_classes import Loss  # noqa: F401  (the trainer tells loss objects apart)
from .losses import (  # noqa: F401  (Keras exposes the losses as metrics too)
    binary_crossentropy,
    categorical_crossentropy,
    cosine_proximity,
    kullback_leibler_divergence,
    logcosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
)


def _float(x, like):
    return ops.cast(x, ops.dtype_name(like))


def binary_accuracy(y_true, y_pred, threshold: float = 0.5):
    pred = _float(ops.greater(y_pred, threshold), y_pred)
    return ops.mean(_float(ops.equal(y_true, pred), y_pred), axis=-1)


def categorical_accuracy(y_true, y_pred):
    return _float(ops.equal(ops.argmax(y_true, axis=-1), ops.argmax(y_pred, axis=-1)), y_pred)


def _labels(y_true, y_pred):
    """Integer labels shaped like y_pred without its class axis."""
    t_shape, p_shape = ops.shape(y_true), ops.shape(y_pred)
    if len(t_shape) == len(p_shape) and t_shape[-1] == 1:
        y_true = ops.reshape(y_true, tuple(t_shape[:-1]))
    return y_true


def sparse_categorical_accuracy(y_true, y_pred):
    labels = _labels(y_true, y_pred)
    pred = ops.cast(ops.argmax(y_pred, axis=-1), ops.dtype_name(labels))
    return _float(ops.equal(labels, pred), y_pred)


def _in_top_k(true_score, y_pred, k):
    """Whether fewer than k classes score strictly higher than the true class."""
    higher = ops.sum(_float(ops.greater(y_pred, ops.expand_dims(true_score, -1)), y_pred), axis=-1)
    return _float(ops.less(higher, float(k)), y_pred)


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5):
    true_score = ops.sum(ops.multiply(y_true, y_pred), axis=-1)
    return _in_top_k(true_score, y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k: int = 5):
    labels = _labels(y_true, y_pred)
    onehot = _losses.one_hot(labels, ops.shape(y_pred)[-1], ops.dtype_name(y_pred))
    return _in_top_k(ops.sum(ops.multiply(onehot, y_pred), axis=-1), y_pred, k)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
}

for _name, _fn in list(FUNCTIONS.items()):  # refuse symbolic tensors clearly
    FUNCTIONS[_name] = globals()[_fn.__name__] = _losses.arrays_only(_fn, "metric")
del _name, _fn

# short names
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
cosine = cosine_proximity


def resolve(identifier: Any, loss_fn: Callable[..., Any], output_shape: tuple) -> Callable:
    """The metric function for ``identifier`` on an output with ``loss_fn`` and shape.

    ``'accuracy'``/``'acc'``: binary when the loss is binary crossentropy or the output has
    one unit, sparse categorical for sparse crossentropy, categorical otherwise; the same
    rule picks the crossentropy for ``'crossentropy'``/``'ce'``.
    """
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc", "crossentropy", "ce"):
            acc = identifier in ("accuracy", "acc")
            obj = getattr(loss_fn, "_loss_object", None)  # a loss object's per-sample fn
            kind = obj.function_name if obj is not None else None
            if (
                loss_fn is _losses.binary_crossentropy
                or kind == "binary_crossentropy"
                or output_shape[-1] == 1
            ):
                return binary_accuracy if acc else _losses.binary_crossentropy
            if (
                loss_fn is _losses.sparse_categorical_crossentropy
                or kind == "sparse_categorical_crossentropy"
            ):
                return (
                    sparse_categorical_accuracy if acc else _losses.sparse_categorical_crossentropy
                )
            return categorical_accuracy if acc else _losses.categorical_crossentropy
        return get(identifier)
    return get(identifier)


def get(identifier: Any) -> Callable[..., Any]:
    """A metric function from a name (a metric or a loss name) or a callable; a metric
    object from a metric class's config (``{"class_name": "AUC", "config": {...}}``) or
    from a name that ``saving.get_custom_objects()`` / ``custom_object_scope`` knows."""
    if isinstance(identifier, dict):
        obj = _object_from_config(identifier)
        if obj is not None:
            return obj
        identifier = identifier.get("config", {}).get("name") or identifier.get("class_name")
    if isinstance(identifier, str):
        custom = _losses._custom(identifier)
        if custom is not None:
            return custom() if isinstance(custom, type) else custom
        if identifier in FUNCTIONS:
            return FUNCTIONS[identifier]
        if identifier in _extra.NAMES:  # Keras 3's names of metric classes ("f1_score")
            return _extra.NAMES[identifier]()
        name = _losses.canonical_name(identifier)
        if name is not None:
            return _losses.FUNCTIONS[name]
        cls = _classes.CLASSES.get(identifier)  # a class's name: an instance, as in Keras
        if isinstance(cls, type) and cls not in (Metric, _classes.MeanMetricWrapper):
            return cls()
        raise ValueError(
            f"Unknown metric function: {identifier!r}. Known metrics: 'accuracy', "
            f"'acc', 'crossentropy', {', '.join(repr(n) for n in FUNCTIONS)} and "
            "every loss name"
        )
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret metric function identifier: {identifier!r}")


def display_name(identifier: Any) -> str:
    """The name Keras 2 shows for a metric: the string given, or the function's name."""
    if isinstance(identifier, str):
        return identifier
    name = getattr(identifier, "name", None)
    if isinstance(name, str):
        return name
    return getattr(identifier, "__name__", type(identifier).__name__)


def serialize(identifier: Any) -> Any:
    """A metric as Keras 2 stores it: its name, or for a metric object
    ``{"class_name", "config"}``."""
    if isinstance(identifier, Metric):
        return _classes.serialize(identifier)
    return display_name(identifier)


def deserialize(config: Any, custom_objects: dict | None = None) -> Any:
    if custom_objects and isinstance(config, str) and config in custom_objects:
        return custom_objects[config]
    if custom_objects:
        from ..saving.custom_objects import custom_object_scope

        with custom_object_scope(custom_objects):
            return get(config)
    return get(config)


def _object_from_config(entry: dict) -> Any:
    """A metric object from ``{"class_name", "config"}`` naming a metric class (a custom
    one first), or None when the entry names no metric class."""
    class_name = entry.get("class_name")
    if not isinstance(class_name, str):
        return None
    cls = _losses._custom(class_name)
    if cls is None:
        cls = _classes.CLASSES.get(class_name.rpartition(">")[2])
    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        return None
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        raise ValueError(f"the config of metric {class_name!r} must be a dict, got {config!r:.80}")
    return cls.from_config(dict(config))


# -- masks ----------------------------------------------------------------------------------------
# An output with a mask (from Masking, Embedding(mask_zero=True)...) counts only its kept
# positions, as Keras 3 does: the mask becomes a sample weight of each position.


def _mask_weights(values: Any, mask: Any, what: str) -> Any:
    """The mask as float weights that broadcast against ``values`` (per-position values of
    a loss or metric), checked to fit."""
    v_shape, m_shape = tuple(ops.shape(values)), tuple(ops.shape(mask))
    if len(m_shape) > len(v_shape) or v_shape[: len(m_shape)] != m_shape:
        raise ValueError(
            f"{what}: the output's mask has shape {m_shape}, which does not fit the values "
            f"of shape {v_shape} that the function returns per position; a masked output "
            "needs a function that keeps the masked axes (as Keras' losses and metrics do, "
            "reducing only the last axis)"
        )
    weights = ops.cast(mask, ops.dtype_name(values))
    extra = len(v_shape) - len(m_shape)
    return ops.reshape(weights, m_shape + (1,) * extra) if extra else weights


def _times(weights: Any, sample_weight: Any) -> Any:
    """Mask weights times per-sample (or per-timestep) sample weights."""
    if sample_weight is None:
        return weights
    extra = len(ops.shape(weights)) - len(ops.shape(sample_weight))
    if extra > 0:
        sample_weight = ops.reshape(sample_weight, tuple(ops.shape(sample_weight)) + (1,) * extra)
    return ops.multiply(weights, ops.cast(sample_weight, ops.dtype_name(weights)))


def masked_loss(values: Any, sample_weight: Any, mask: Any, what: str = "loss") -> Any:
    """A loss's per-position ``values`` reduced as Keras 3 does for a masked output: the sum
    of ``values * sample_weight`` over kept positions, divided by the number of kept
    positions (0 when none is kept)."""
    weights = _mask_weights(values, mask, what)
    size_v = math.prod(ops.shape(values))
    size_m = math.prod(ops.shape(mask))
    kept = ops.sum(ops.cast(mask, ops.dtype_name(values)))
    per_mask_entry = size_v / size_m if size_m else 1.0
    total = ops.sum(ops.multiply(values, _times(weights, sample_weight)))
    return ops.divide(total, ops.multiply(ops.maximum(kept, 1.0), per_mask_entry))


def masked_mean(values: Any, sample_weight: Any, mask: Any, what: str = "metric") -> Any:
    """A metric's per-position ``values`` averaged over the kept positions, each weighted
    by its sample weight (Keras 3 passes the mask to compiled metrics as a weight)."""
    weights = _times(_mask_weights(values, mask, what), sample_weight)
    weights = ops.broadcast_to(weights, tuple(ops.shape(values)))
    return ops.divide(ops.sum(ops.multiply(values, weights)), ops.maximum(ops.sum(weights), 1e-12))


# Keras' stateful metric classes (metrics.AUC(), metrics.Precision()...)
from . import metric_classes as _classes  # noqa: E402
from .metric_classes import (  # noqa: E402,F401
    AUC,
    Accuracy,
    BinaryAccuracy,
    BinaryCrossentropy,
    CategoricalAccuracy,
    CategoricalCrossentropy,
    FalseNegatives,
    FalsePositives,
    Mean,
    MeanAbsoluteError,
    MeanMetricWrapper,
    MeanSquaredError,
    Metric,
    Precision,
    Recall,
    RootMeanSquaredError,
    SparseCategoricalAccuracy,
    SparseCategoricalCrossentropy,
    SparseTopKCategoricalAccuracy,
    Sum,
    TopKCategoricalAccuracy,
    TrueNegatives,
    TruePositives,
)

# more of Keras 3's metric classes (F1Score, R2Score, IoU, PrecisionAtRecall...)
from . import metric_classes_extra as _extra  # noqa: E402
from .loss_classes_extra import (  # noqa: E402,F401  (Keras 3 exposes these as metrics too)
    binary_focal_crossentropy,
    categorical_focal_crossentropy,
)
from .metric_classes_extra import (  # noqa: E402,F401
    BinaryIoU,
    CosineSimilarity,
    F1Score,
    FBetaScore,
    IoU,
    LogCoshError,
    MeanAbsolutePercentageError,
    MeanIoU,
    OneHotIoU,
    OneHotMeanIoU,
    PrecisionAtRecall,
    R2Score,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
)

_classes.CLASSES.update(_extra.CLASSES)
