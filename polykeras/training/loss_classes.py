"""Keras' loss classes (``losses.CategoricalCrossentropy(from_logits=True)``...).

A loss object holds its settings; ``loss(y_true, y_pred, sample_weight=None)`` returns one
number, reduced as Keras 3 reduces: the per-sample values (``call``) times the sample
weights, then summed (``"sum"``), divided by the number of values
(``"sum_over_batch_size"``, Keras 2's ``"auto"``, and ``"mean"``), divided by the sum of the
weights (``"mean_with_sample_weight"``), or returned as they are (``"none"``/None).

Given to ``compile``, a loss object is used through its per-sample ``call`` (its settings
bound), so masks, sample weights and ``loss_weights`` work as for a loss named by string.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend as _backend
from .. import config, ops
from ..engine.base_layer import KerasTensor
from . import losses as _fns

#: the reductions a loss object knows; "auto" (Keras 2) means "sum_over_batch_size"
REDUCTIONS = ("sum_over_batch_size", "sum", "none", "mean", "mean_with_sample_weight")


def check_reduction(reduction: Any, owner: str) -> str:
    if reduction is None:
        return "none"
    if reduction == "auto":
        return "sum_over_batch_size"
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(
            f"{owner}: unknown reduction {reduction!r}; expected one of "
            f"{', '.join(repr(r) for r in REDUCTIONS + ('auto', None))}"
        )
    return reduction


def _as_array(x: Any, like: Any = None) -> Any:
    """``x`` as a value ops compute with: backend arrays, variables and traced values pass;
    NumPy arrays, lists and numbers become backend arrays (floats in floatx, or ``like``'s
    float dtype)."""
    B = _backend.current()
    if x is None or B.is_native(x) or not isinstance(x, (np.ndarray, list, tuple, int, float)):
        return x
    arr = np.asarray(x)
    if like is not None:
        arr = arr.astype(ops.dtype_name(like))
    elif arr.dtype.kind in "fb":
        arr = arr.astype(config.floatx())
    return B.asarray(arr)


def _same_rank(values: Any, weights: Any) -> tuple[Any, Any]:
    """Drop or add a trailing axis of size 1 where the ranks differ by one (as Keras)."""
    vs, ws = tuple(ops.shape(values)), tuple(ops.shape(weights))
    if len(vs) == len(ws) + 1 and vs[-1] == 1:
        if len(ws) == 1:
            weights = ops.expand_dims(weights, -1)
        else:
            values = ops.reshape(values, vs[:-1])
    elif len(ws) == len(vs) + 1 and ws[-1] == 1:
        if len(vs) == 1:
            values = ops.expand_dims(values, -1)
        else:
            weights = ops.reshape(weights, ws[:-1])
    return values, weights


def reduce_weighted(values: Any, sample_weight: Any, reduction: str) -> Any:
    """Keras 3's reduction of per-sample loss ``values`` weighted by ``sample_weight``."""
    if sample_weight is not None:
        sample_weight = ops.cast(sample_weight, ops.dtype_name(values))
        values, sample_weight = _same_rank(values, sample_weight)
        values = ops.multiply(values, sample_weight)
    shape = tuple(ops.shape(values))
    if reduction == "none" or shape in ((), (0,)):
        return values
    total = ops.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = ops.sum(ops.broadcast_to(sample_weight, tuple(ops.shape(values))))
        safe = ops.where(ops.equal(divisor, 0.0), ops.ones_like(divisor), divisor)
        return ops.where(ops.equal(divisor, 0.0), ops.zeros_like(total), ops.divide(total, safe))
    return ops.divide(total, float(math.prod(shape)))


def reduce_in_compile(
    values: Any, sample_weight: Any, mask: Any, reduction: str, what: str = "loss"
) -> Any:
    """A compiled loss object's per-sample ``values`` reduced by ``"sum"`` or
    ``"mean_with_sample_weight"`` as Keras 3 reduces them: the sample weights and the
    output's mask (kept = 1, dropped = 0) weight each position; "sum" adds the weighted
    values, "mean_with_sample_weight" divides that by the sum of the weights (0 when it is
    0).  The mean over the batch (the default) is the trainer's own path."""
    weights = None
    if mask is not None:
        from .metrics import _mask_weights

        weights = _mask_weights(values, mask, what)
    if sample_weight is not None:
        sample_weight = ops.cast(sample_weight, ops.dtype_name(values))
        extra = len(ops.shape(values)) - len(ops.shape(sample_weight))
        if extra > 0:
            shape = tuple(ops.shape(sample_weight)) + (1,) * extra
            sample_weight = ops.reshape(sample_weight, shape)
        weights = sample_weight if weights is None else ops.multiply(weights, sample_weight)
    if weights is not None:
        weights = ops.broadcast_to(weights, tuple(ops.shape(values)))
    return reduce_weighted(values, weights, reduction)


class Loss:
    """Base class: subclasses define ``call(y_true, y_pred)`` returning per-sample values."""

    #: the name of the loss function this class computes (target checks and 'accuracy'
    #: resolution in compile use it); None for user subclasses
    function_name: str | None = None

    def __init__(
        self,
        reduction: Any = "sum_over_batch_size",
        name: str | None = None,
        dtype: str | None = None,
    ):
        self.reduction = check_reduction(reduction, type(self).__name__)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a string, got {name!r}")
        self.name = name or _fns._snake(type(self).__name__)
        if dtype is not None and (not isinstance(dtype, str) or np.dtype(dtype).kind != "f"):
            raise ValueError(
                f"{type(self).__name__}: dtype must be a float dtype name or None, got {dtype!r}"
            )
        #: the dtype the loss computes in (None: the prediction's own)
        self.dtype = dtype

    def call(self, y_true: Any, y_pred: Any) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} subclasses Loss: define call(y_true, y_pred) returning "
            "one loss value per sample"
        )

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        symbolic = [
            a for a, t in (("y_true", y_true), ("y_pred", y_pred)) if type(t) is KerasTensor
        ]
        if symbolic:
            raise TypeError(
                f"loss {self.name} ({type(self).__name__}) was called on symbolic tensors "
                f"({', '.join(symbolic)}). It computes on arrays: pass it to "
                "model.compile(loss=...) and give data to fit/evaluate, or call it on NumPy "
                "or backend arrays"
            )
        y_pred = self._in_dtype(_as_array(y_pred))
        y_true = _as_array(y_true)
        values = self.call(y_true, y_pred)
        return reduce_weighted(values, _as_array(sample_weight, values), self.reduction)

    def per_sample(self) -> Callable[[Any, Any], Any]:
        """``(y_true, y_pred) -> per-sample values`` with this object's settings: what
        compile's loss table calls (named as the function it computes, for the checks of
        compile and the data)."""

        def per_sample(y_true: Any, y_pred: Any) -> Any:
            return self.call(y_true, self._in_dtype(y_pred))

        per_sample.__name__ = self.function_name or self.name
        per_sample._loss_object = self  # type: ignore[attr-defined]
        return per_sample

    def _in_dtype(self, y_pred: Any) -> Any:
        if self.dtype is None or ops.dtype_name(y_pred) == self.dtype:
            return y_pred
        return ops.cast(y_pred, self.dtype)

    def get_config(self) -> dict[str, Any]:
        config = {"reduction": self.reduction, "name": self.name}
        if self.dtype is not None:
            config["dtype"] = self.dtype
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class LossFunctionWrapper(Loss):
    """A loss object around a per-sample function ``fn(y_true, y_pred, **kwargs)``."""

    def __init__(
        self,
        fn: Callable[..., Any],
        reduction: Any = "sum_over_batch_size",
        name: str | None = None,
        dtype: str | None = None,
        **kwargs: Any,
    ):
        if not callable(fn):
            raise TypeError(f"LossFunctionWrapper: fn must be callable, got {fn!r}")
        super().__init__(reduction, name or getattr(fn, "__name__", None), dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: Any, y_pred: Any) -> Any:
        if self.function_name != "sparse_categorical_crossentropy":
            y_true = _cast_like(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if type(self) is LossFunctionWrapper:
            config["fn"] = _fns.name_of(self.fn)
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        if cls is LossFunctionWrapper:
            config = dict(config)
            fn = config.pop("fn", None)
            if isinstance(fn, str):
                fn = _fns.get(fn)
            if fn is None:
                raise ValueError("LossFunctionWrapper.from_config needs 'fn'")
            return cls(fn, **config)
        return cls(**config)


def _simple(fn: Callable[..., Any], fname: str, doc: str) -> type:
    """A class computing the named function with no setting of its own."""

    class Simple(LossFunctionWrapper):
        function_name = fname

        def __init__(
            self,
            reduction: Any = "sum_over_batch_size",
            name: str | None = None,
            dtype: str | None = None,
        ):
            super().__init__(fn, reduction=reduction, name=name, dtype=dtype)
            if name is None:
                self.name = fname

    Simple.__doc__ = doc
    return Simple


MeanSquaredError = _simple(
    _fns.mean_squared_error, "mean_squared_error", "mean((y_pred - y_true)**2) per sample."
)
MeanSquaredError.__name__ = MeanSquaredError.__qualname__ = "MeanSquaredError"
MeanAbsoluteError = _simple(
    _fns.mean_absolute_error, "mean_absolute_error", "mean(|y_pred - y_true|) per sample."
)
MeanAbsoluteError.__name__ = MeanAbsoluteError.__qualname__ = "MeanAbsoluteError"
MeanAbsolutePercentageError = _simple(
    _fns.mean_absolute_percentage_error,
    "mean_absolute_percentage_error",
    "100 * mean(|(y_true - y_pred) / y_true|) per sample.",
)
MeanAbsolutePercentageError.__name__ = "MeanAbsolutePercentageError"
MeanAbsolutePercentageError.__qualname__ = "MeanAbsolutePercentageError"
MeanSquaredLogarithmicError = _simple(
    _fns.mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error",
    "mean((log(1 + y_pred) - log(1 + y_true))**2) per sample.",
)
MeanSquaredLogarithmicError.__name__ = "MeanSquaredLogarithmicError"
MeanSquaredLogarithmicError.__qualname__ = "MeanSquaredLogarithmicError"
Hinge = _simple(_fns.hinge, "hinge", "mean(max(1 - y_true * y_pred, 0)); 0/1 labels as -1/+1.")
Hinge.__name__ = Hinge.__qualname__ = "Hinge"
SquaredHinge = _simple(_fns.squared_hinge, "squared_hinge", "mean(max(1 - y_true*y_pred, 0)**2).")
SquaredHinge.__name__ = SquaredHinge.__qualname__ = "SquaredHinge"
CategoricalHinge = _simple(
    _fns.categorical_hinge, "categorical_hinge", "max(neg - pos + 1, 0) per sample."
)
CategoricalHinge.__name__ = CategoricalHinge.__qualname__ = "CategoricalHinge"
LogCosh = _simple(_fns.logcosh, "log_cosh", "mean(log(cosh(y_pred - y_true))) per sample.")
LogCosh.__name__ = LogCosh.__qualname__ = "LogCosh"
KLDivergence = _simple(
    _fns.kullback_leibler_divergence,
    "kl_divergence",
    "sum(y_true * log(y_true / y_pred)) per sample, both clipped to [eps, 1].",
)
KLDivergence.__name__ = KLDivergence.__qualname__ = "KLDivergence"
Poisson = _simple(_fns.poisson, "poisson", "mean(y_pred - y_true * log(y_pred + eps)).")
Poisson.__name__ = Poisson.__qualname__ = "Poisson"


class Huber(LossFunctionWrapper):
    """Quadratic for errors below ``delta``, linear above."""

    function_name = "huber_loss"

    def __init__(
        self,
        delta: float = 1.0,
        reduction: Any = "sum_over_batch_size",
        name: str = "huber_loss",
        dtype: str | None = None,
    ):
        delta = float(delta)
        if not delta > 0:
            raise ValueError(f"Huber: delta must be positive, got {delta!r}")
        super().__init__(_fns.huber, reduction, name, dtype, delta=delta)


class CosineSimilarity(LossFunctionWrapper):
    """-sum(l2_normalize(y_true) * l2_normalize(y_pred)) along ``axis``."""

    function_name = "cosine_similarity"

    def __init__(
        self,
        axis: int = -1,
        reduction: Any = "sum_over_batch_size",
        name: str = "cosine_similarity",
        dtype: str | None = None,
    ):
        super().__init__(_cosine, reduction, name, dtype, axis=int(axis))


def _cosine(y_true: Any, y_pred: Any, axis: int = -1) -> Any:
    t = ops.l2_normalize(y_true, axis=axis)
    p = ops.l2_normalize(y_pred, axis=axis)
    return ops.neg(ops.sum(ops.multiply(t, p), axis=axis))


# -- crossentropies -----------------------------------------------------------------------------


def _check_smoothing(value: Any, owner: str) -> float:
    ls = float(value)
    if not 0.0 <= ls <= 1.0:
        raise ValueError(f"{owner}: label_smoothing must be in [0, 1], got {value!r}")
    return ls


def _last(x: Any, axis: int) -> Any:
    """``x`` with ``axis`` moved last (the functions reduce the last axis)."""
    nd = len(ops.shape(x))
    if axis in (-1, nd - 1):
        return x
    return ops.swapaxes(x, axis, -1)


def _cast_like(y_true: Any, y_pred: Any) -> Any:
    dtype = ops.dtype_name(y_pred)
    return y_true if ops.dtype_name(y_true) == dtype else ops.cast(y_true, dtype)


def binary_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0, axis=-1
) -> Any:
    y_true = _cast_like(ops.stop_gradient(y_true), y_pred)
    if label_smoothing:
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing), 0.5 * label_smoothing)
    if from_logits:
        return ops.mean(ops.sigmoid_crossentropy(y_true, y_pred), axis=axis)
    if axis in (-1, len(ops.shape(y_pred)) - 1):
        return _fns.binary_crossentropy(y_true, y_pred)
    return _fns.binary_crossentropy(_last(y_true, axis), _last(y_pred, axis))


def categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0, axis=-1
) -> Any:
    y_true = _last(_cast_like(ops.stop_gradient(y_true), y_pred), axis)
    y_pred = _last(y_pred, axis)
    if label_smoothing:
        classes = ops.shape(y_pred)[-1]
        y_true = ops.add(
            ops.multiply(y_true, 1.0 - label_smoothing), label_smoothing / float(classes)
        )
    if from_logits:
        return ops.softmax_crossentropy(y_true, y_pred)
    return _fns.categorical_crossentropy(y_true, y_pred)


def sparse_categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, axis: int = -1
) -> Any:
    y_pred = _last(y_pred, axis)
    if not from_logits:
        return _fns.sparse_categorical_crossentropy(y_true, y_pred)
    pred_shape, true_shape = ops.shape(y_pred), ops.shape(y_true)
    if len(true_shape) == len(pred_shape) and true_shape[-1] == 1:
        y_true = ops.reshape(ops.stop_gradient(y_true), tuple(true_shape[:-1]))
    target = _fns.one_hot(y_true, pred_shape[-1], ops.dtype_name(y_pred))
    return ops.softmax_crossentropy(target, y_pred)


class BinaryCrossentropy(LossFunctionWrapper):
    """Crossentropy of 0/1 labels; ``from_logits=True`` scores raw scores with a stable
    log-sigmoid; ``label_smoothing`` moves the labels towards 0.5."""

    function_name = "binary_crossentropy"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: Any = "sum_over_batch_size",
        name: str = "binary_crossentropy",
        dtype: str | None = None,
    ):
        super().__init__(
            binary_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=bool(from_logits),
            label_smoothing=_check_smoothing(label_smoothing, "BinaryCrossentropy"),
            axis=int(axis),
        )


class CategoricalCrossentropy(LossFunctionWrapper):
    """Crossentropy of one-hot labels; ``from_logits=True`` uses a stable log-softmax;
    ``label_smoothing`` mixes the labels with the uniform distribution."""

    function_name = "categorical_crossentropy"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: Any = "sum_over_batch_size",
        name: str = "categorical_crossentropy",
        dtype: str | None = None,
    ):
        super().__init__(
            categorical_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=bool(from_logits),
            label_smoothing=_check_smoothing(label_smoothing, "CategoricalCrossentropy"),
            axis=int(axis),
        )


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Crossentropy of integer class labels; ``from_logits=True`` uses a stable
    log-softmax.  ``ignore_class`` is not implemented and is refused when set."""

    function_name = "sparse_categorical_crossentropy"

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction: Any = "sum_over_batch_size",
        axis: int = -1,
        name: str = "sparse_categorical_crossentropy",
        dtype: str | None = None,
    ):
        if ignore_class is not None:
            raise NotImplementedError(
                f"SparseCategoricalCrossentropy: ignore_class={ignore_class!r} is not "
                "implemented in polykeras; leave it None (give those samples a sample "
                "weight of 0 instead)"
            )
        super().__init__(
            sparse_categorical_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=bool(from_logits),
            axis=int(axis),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ignore_class": None}


#: every loss class by name (losses.get and deserialize look here)
CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Loss,
        LossFunctionWrapper,
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        Hinge,
        SquaredHinge,
        CategoricalHinge,
        Huber,
        LogCosh,
        KLDivergence,
        Poisson,
        CosineSimilarity,
    )
}
CLASSES["KLD"] = KLDivergence


def serialize(loss: Loss) -> dict[str, Any]:
    """``{"class_name", "config"}`` as Keras 2 writes a loss object."""
    from ..saving.custom_objects import get_registered_name

    cls = type(loss)
    name = cls.__name__ if CLASSES.get(cls.__name__) is cls else get_registered_name(cls)
    return {"class_name": name, "config": loss.get_config()}
