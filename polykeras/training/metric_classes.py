"""Keras' stateful metric classes (``metrics.AUC()``, ``metrics.Precision()``...).

A metric object accumulates state over calls of ``update_state(y_true, y_pred,
sample_weight=None)`` and reports it with ``result()``; ``reset_state()`` (Keras 2's
``reset_states()``) starts again; calling the object updates and returns the result.  The
state is a few backend arrays (``variables``), computed through :mod:`polykeras.ops` on
values detached from differentiation: metrics are never differentiated.

Given to ``compile(metrics=[...])``, a metric object is reset at the start of each epoch
and each evaluation, updated on every batch, and its ``result()`` is what the logs show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import autodiff, config, ops
from .. import backend as _backend
from ..engine.naming import snake_case
from ..engine.variables import Variable
from . import loss_classes as _lc
from . import losses as _losses
from . import metrics as _fns

#: what Keras puts below every score left out by ``top_k``
NEG_INF = -1e10


def _input(x: Any, dtype: str | None = None) -> Any:
    """``x`` as a detached backend array (NumPy arrays and lists converted)."""
    if x is None:
        return None
    B = _backend.current()
    if isinstance(x, (np.ndarray, list, tuple, int, float, np.generic)):
        arr = np.asarray(x)
        if dtype is not None:
            arr = arr.astype(dtype)
        elif arr.dtype.kind in "fb":
            arr = arr.astype(config.floatx())
        return B.asarray(arr)
    x = autodiff.detach(x)
    if dtype is not None and ops.dtype_name(x) != dtype:
        x = ops.cast(x, dtype)
    return x


def _divide_no_nan(num: Any, den: Any) -> Any:
    zero = ops.equal(den, 0.0)
    safe = ops.where(zero, ops.ones_like(den), den)
    return ops.where(zero, ops.zeros_like(num), ops.divide(num, safe))


class Metric:
    """Base class: subclasses create their state with ``add_variable`` in ``__init__`` and
    define ``update_state`` and ``result``."""

    def __init__(self, name: str | None = None, dtype: str | None = None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a string, got {name!r}")
        self.name = name or snake_case(type(self).__name__)
        dtype = dtype or config.floatx()
        if not isinstance(dtype, str) or np.dtype(dtype).kind != "f":
            raise ValueError(
                f"{type(self).__name__}: dtype must be a float dtype name, got {dtype!r}"
            )
        self._dtype = dtype
        self._variables: list[Variable] = []
        self._initial: list[np.ndarray] = []

    @property
    def dtype(self) -> str:
        return self._dtype

    @property
    def variables(self) -> list[Variable]:
        return list(self._variables)

    def add_variable(self, shape: tuple = (), name: str = "state") -> Variable:
        """A state variable of zeros (``reset_state`` sets it back to zeros)."""
        init = np.zeros(tuple(shape), dtype=self._dtype)
        var = Variable(init, f"{self.name}/{name}", trainable=False)
        self._variables.append(var)
        self._initial.append(init)
        return var

    add_weight = add_variable

    def _value(self, var: Variable) -> Any:
        """The variable's value, moved to the active backend first if need be."""
        var.move_to(_backend.current())
        return var.value

    def _add(self, var: Variable, delta: Any) -> None:
        var.assign(ops.add(self._value(var), ops.cast(delta, self._dtype)))

    def reset_state(self) -> None:
        for var, init in zip(self._variables, self._initial):
            var.move_to(_backend.current())
            var.assign(init)

    def reset_states(self) -> None:
        """Keras 2's spelling of :meth:`reset_state`."""
        self.reset_state()

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define update_state")

    def result(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define result")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self._dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


# -- means and sums -----------------------------------------------------------------------------


def _samplewise(values: Any, sample_weight: Any, reduce: Any = ops.mean) -> tuple[Any, Any]:
    """Keras 3's reduction of ``values`` (and weights) to one value per sample: weights
    fitted to the values' rank, values reduced (``reduce``: averaged, or summed for
    ``Sum``) over the axes the weights lack, then everything past the batch axis."""
    if sample_weight is not None:
        values, sample_weight = _lc._same_rank(values, sample_weight)
        v_nd, w_nd = len(ops.shape(values)), len(ops.shape(sample_weight))
        if v_nd > w_nd:
            values = reduce(values, axis=tuple(range(w_nd, v_nd)))
        sample_weight = ops.broadcast_to(sample_weight, tuple(ops.shape(values)))
        values = ops.multiply(values, sample_weight)
        if len(ops.shape(values)) > 1:
            sample_weight = reduce(sample_weight, axis=tuple(range(1, w_nd)))
    nd = len(ops.shape(values))
    if nd > 1:
        values = reduce(values, axis=tuple(range(1, nd)))
    return values, sample_weight


class Sum(Metric):
    """The (weighted) sum of every value given."""

    def __init__(self, name: str = "sum", dtype: str | None = None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), "total")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        values = _input(values, self._dtype)
        sample_weight = _input(sample_weight, self._dtype)
        values, _ = _samplewise(values, sample_weight, ops.sum)
        self._add(self.total, ops.sum(values))

    def result(self) -> Any:
        return self._value(self.total)


class Mean(Metric):
    """The (weighted) mean of every value given: per sample, then over samples."""

    def __init__(self, name: str = "mean", dtype: str | None = None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), "total")
        self.count = self.add_variable((), "count")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        values = _input(values, self._dtype)
        sample_weight = _input(sample_weight, self._dtype)
        values, sample_weight = _samplewise(values, sample_weight)
        self._add(self.total, ops.sum(values))
        if sample_weight is None:
            shape = tuple(ops.shape(values))
            self._add(self.count, float(shape[0]) if shape else 1.0)
        else:
            self._add(self.count, ops.sum(sample_weight))

    def result(self) -> Any:
        return _divide_no_nan(self._value(self.total), self._value(self.count))


class MeanMetricWrapper(Mean):
    """The mean of a per-sample function ``fn(y_true, y_pred, **kwargs)``."""

    def __init__(
        self, fn: Callable[..., Any], name: str | None = None, dtype: str | None = None, **kwargs
    ):
        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper: fn must be callable, got {fn!r}")
        super().__init__(name=name or str(getattr(fn, "__name__", "mean")), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        y_pred = _input(y_pred)
        y_true = _input(y_true)
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if type(self) is MeanMetricWrapper:
            config["fn"] = _fns.display_name(self._fn)
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        if cls is MeanMetricWrapper:
            config = dict(config)
            fn = config.pop("fn", None)
            if isinstance(fn, str):
                fn = _fns.get(fn)
            if fn is None:
                raise ValueError("MeanMetricWrapper.from_config needs 'fn'")
            return cls(fn, **config)
        return cls(**config)


def _accuracy(y_true: Any, y_pred: Any) -> Any:
    y_pred, y_true = _lc._same_rank(y_pred, y_true)
    return ops.cast(ops.equal(y_true, y_pred), ops.dtype_name(y_pred))


def _wrapper(fn: Callable[..., Any], default: str, doc: str, **fixed: Any) -> type:
    class Wrapped(MeanMetricWrapper):
        def __init__(self, name: str = default, dtype: str | None = None):
            super().__init__(fn, name=name, dtype=dtype, **fixed)

    Wrapped.__doc__ = doc
    return Wrapped


Accuracy = _wrapper(_accuracy, "accuracy", "How often y_pred equals y_true.")
CategoricalAccuracy = _wrapper(
    _fns.categorical_accuracy,
    "categorical_accuracy",
    "How often the argmax of y_pred is the argmax of the one-hot y_true.",
)
SparseCategoricalAccuracy = _wrapper(
    _fns.sparse_categorical_accuracy,
    "sparse_categorical_accuracy",
    "How often the argmax of y_pred is the integer label.",
)
MeanSquaredError = _wrapper(_losses.mean_squared_error, "mean_squared_error", "Mean squared error.")
MeanAbsoluteError = _wrapper(
    _losses.mean_absolute_error, "mean_absolute_error", "Mean absolute error."
)
for _cls, _n in (
    (Accuracy, "Accuracy"),
    (CategoricalAccuracy, "CategoricalAccuracy"),
    (SparseCategoricalAccuracy, "SparseCategoricalAccuracy"),
    (MeanSquaredError, "MeanSquaredError"),
    (MeanAbsoluteError, "MeanAbsoluteError"),
):
    _cls.__name__ = _cls.__qualname__ = _n
del _cls, _n


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` equals the 0/1 label."""

    def __init__(self, name: str = "binary_accuracy", dtype: str | None = None, threshold=0.5):
        super().__init__(_fns.binary_accuracy, name=name, dtype=dtype, threshold=float(threshold))


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label's class is among the ``k`` highest scores."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype=None):
        super().__init__(_fns.top_k_categorical_accuracy, name=name, dtype=dtype, k=int(k))


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the ``k`` highest scores."""

    def __init__(
        self,
        k: int = 5,
        name: str = "sparse_top_k_categorical_accuracy",
        dtype: str | None = None,
        from_sorted_ids: bool = False,
    ):
        if from_sorted_ids:
            raise NotImplementedError(
                "SparseTopKCategoricalAccuracy: from_sorted_ids=True is not implemented in "
                "polykeras; give y_pred as scores (the default)"
            )
        super().__init__(_fns.sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=int(k))


class RootMeanSquaredError(Mean):
    """sqrt of the (weighted) mean of the squared errors."""

    def __init__(self, name: str = "root_mean_squared_error", dtype: str | None = None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        y_pred = _input(y_pred, self._dtype)
        y_true = _input(y_true, self._dtype)
        y_pred, y_true = _lc._same_rank(y_pred, y_true)
        super().update_state(ops.square(ops.subtract(y_pred, y_true)), sample_weight)

    def result(self) -> Any:
        return ops.sqrt(super().result())


class BinaryCrossentropy(MeanMetricWrapper):
    """The mean binary crossentropy (``from_logits``, ``label_smoothing`` as the loss)."""

    def __init__(
        self,
        name: str = "binary_crossentropy",
        dtype: str | None = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
    ):
        super().__init__(
            _lc.binary_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=bool(from_logits),
            label_smoothing=_lc._check_smoothing(label_smoothing, "BinaryCrossentropy"),
        )


class CategoricalCrossentropy(MeanMetricWrapper):
    """The mean categorical crossentropy (``from_logits``, ``label_smoothing``, ``axis``)."""

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        dtype: str | None = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
    ):
        super().__init__(
            _lc.categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=bool(from_logits),
            label_smoothing=_lc._check_smoothing(label_smoothing, "CategoricalCrossentropy"),
            axis=int(axis),
        )


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """The mean crossentropy of integer labels (``from_logits``, ``axis``)."""

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        dtype: str | None = None,
        from_logits: bool = False,
        ignore_class: int | None = None,
        axis: int = -1,
    ):
        if ignore_class is not None:
            raise NotImplementedError(
                f"SparseCategoricalCrossentropy: ignore_class={ignore_class!r} is not "
                "implemented in polykeras; leave it None"
            )
        super().__init__(
            _lc.sparse_categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=bool(from_logits),
            axis=int(axis),
        )


# -- confusion matrices -------------------------------------------------------------------------


def _thresholds(thresholds: Any, default: float, owner: str) -> tuple[list[float], bool]:
    """The thresholds as a list, and whether one number was given (result is a scalar)."""
    if thresholds is None:
        return [default], True
    single = isinstance(thresholds, (int, float, np.floating, np.integer))
    values = [float(thresholds)] if single else [float(t) for t in thresholds]
    if not values:
        raise ValueError(f"{owner}: thresholds must not be empty")
    for t in values:
        if t != NEG_INF and not 0.0 <= t <= 1.0:
            raise ValueError(f"{owner}: every threshold must be in [0, 1], got {t!r}")
    return values, single or len(values) == 1


def _evenly_spaced(thresholds: list[float]) -> bool:
    """Whether the thresholds are 0, 1/(n-1), ..., 1 (give or take epsilon), for which
    Keras 3 counts scores clipped to [0, 1]."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype="float32") / (n - 1)
    return bool(np.allclose(thresholds, even, atol=config.epsilon()))


def _top_k_only(y_pred: Any, k: int) -> Any:
    """Scores outside each row's ``k`` highest replaced by NEG_INF."""
    higher = ops.sum(
        ops.cast(ops.greater(ops.expand_dims(y_pred, -2), ops.expand_dims(y_pred, -1)), "int32"),
        axis=-1,
    )
    keep = ops.less(higher, k)
    return ops.where(keep, y_pred, ops.full_like(y_pred, NEG_INF))


class _Confusion(Metric):
    """Counts of true/false positives/negatives at each threshold (weighted by samples)."""

    _counts: tuple[str, ...] = ("tp", "fp", "tn", "fn")

    def __init__(
        self,
        thresholds: list[float],
        name: str | None,
        dtype: str | None,
        top_k: int | None = None,
        class_id: int | None = None,
    ):
        super().__init__(name=name, dtype=dtype)
        self._threshold_list = list(thresholds)
        #: Keras counts evenly spaced thresholds by buckets, clipping scores to [0, 1]
        self._clip_scores = _evenly_spaced(self._threshold_list)
        self.top_k = None if top_k is None else int(top_k)
        self.class_id = None if class_id is None else int(class_id)
        n = len(thresholds)
        full = {
            "tp": "true_positives",
            "fp": "false_positives",
            "tn": "true_negatives",
            "fn": "false_negatives",
        }
        self._state = {c: self.add_variable((n,), full[c]) for c in self._counts}

    @property
    def thresholds(self) -> list[float]:
        return list(self._threshold_list)

    def _prepare(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        return y_true, y_pred

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = _input(y_pred, self._dtype)
        y_true = _input(y_true, self._dtype)
        y_true, y_pred = self._prepare(y_true, y_pred)
        y_pred, y_true = _lc._same_rank(y_pred, y_true)
        if sample_weight is not None:
            w = _input(sample_weight, self._dtype)
            extra = len(ops.shape(y_pred)) - len(ops.shape(w))
            if extra > 0:
                w = ops.reshape(w, tuple(ops.shape(w)) + (1,) * extra)
        if self.top_k is not None:
            y_pred = _top_k_only(y_pred, self.top_k)
        if self.class_id is not None:
            if len(ops.shape(y_pred)) < 2:
                raise ValueError(
                    f"{type(self).__name__}: class_id needs y_pred of shape (samples, "
                    f"classes), got shape {tuple(ops.shape(y_pred))}"
                )
            y_true = y_true[..., self.class_id]
            y_pred = y_pred[..., self.class_id]
            if sample_weight is not None:
                w = ops.broadcast_to(w, tuple(ops.shape(y_true)) + (ops.shape(w)[-1],))
                w = w[..., 0] if ops.shape(w)[-1] == 1 else w[..., self.class_id]
        if self._clip_scores:
            y_pred = ops.clip(y_pred, 0.0, 1.0)
        pred = ops.reshape(y_pred, (1, -1))
        label = ops.reshape(ops.not_equal(y_true, 0.0), (1, -1))
        B = _backend.current()
        thresholds = B.asarray(np.asarray(self._threshold_list, self._dtype).reshape(-1, 1))
        positive = ops.greater(pred, thresholds)
        if sample_weight is None:
            weight = ops.ones_like(pred)
        else:
            weight = ops.reshape(ops.broadcast_to(w, tuple(ops.shape(y_pred))), (1, -1))
        cases = {
            "tp": ops.logical_and(label, positive),
            "fp": ops.logical_and(ops.logical_not(label), positive),
            "tn": ops.logical_and(ops.logical_not(label), ops.logical_not(positive)),
            "fn": ops.logical_and(label, ops.logical_not(positive)),
        }
        for c in self._counts:
            counted = ops.multiply(ops.cast(cases[c], self._dtype), weight)
            self._add(self._state[c], ops.sum(counted, axis=1))

    def _count(self, c: str) -> Any:
        return self._value(self._state[c])

    def get_config(self) -> dict[str, Any]:
        return super().get_config()


class _Counter(_Confusion):
    """One of the four counts; a scalar for one threshold."""

    _which = "tp"

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype=None):
        values, self._single = _thresholds(thresholds, 0.5, type(self).__name__)
        self._counts = (self._which,)
        super().__init__(values, name, dtype)
        self._init_thresholds = thresholds

    def result(self) -> Any:
        value = self._count(self._which)
        return value[0] if self._single else value

    def get_config(self) -> dict[str, Any]:
        return {"thresholds": self._init_thresholds, **super().get_config()}


class TruePositives(_Counter):
    """The weighted number of positive labels predicted above each threshold."""

    _which = "tp"


class FalsePositives(_Counter):
    """The weighted number of negative labels predicted above each threshold."""

    _which = "fp"


class TrueNegatives(_Counter):
    """The weighted number of negative labels predicted at or below each threshold."""

    _which = "tn"


class FalseNegatives(_Counter):
    """The weighted number of positive labels predicted at or below each threshold."""

    _which = "fn"


class Precision(_Confusion):
    """tp / (tp + fp) at each threshold; ``top_k`` counts only each row's k highest
    scores, ``class_id`` one class."""

    _counts = ("tp", "fp")

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        default = 0.5 if top_k is None else NEG_INF
        values, self._single = _thresholds(thresholds, default, type(self).__name__)
        super().__init__(values, name, dtype, top_k, class_id)
        self._init_thresholds = thresholds

    def result(self) -> Any:
        tp = self._count("tp")
        value = _divide_no_nan(tp, ops.add(tp, self._count(self._counts[1])))
        return value[0] if self._single else value

    def get_config(self) -> dict[str, Any]:
        return {
            "thresholds": self._init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
            **super().get_config(),
        }


class Recall(Precision):
    """tp / (tp + fn) at each threshold (``top_k``, ``class_id`` as Precision)."""

    _counts = ("tp", "fn")


_CURVES = ("ROC", "PR")
_SUMMATIONS = ("interpolation", "minoring", "majoring")


class AUC(_Confusion):
    """Area under the ROC (or precision-recall) curve, from counts at ``num_thresholds``
    evenly spaced thresholds (or the ``thresholds`` given, plus 0 and 1)."""

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype: str | None = None,
        thresholds: Any = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ):
        for setting, value in (
            ("multi_label", multi_label),
            ("num_labels", num_labels),
            ("label_weights", label_weights),
        ):
            if value not in (None, False):
                raise NotImplementedError(
                    f"AUC: {setting}={value!r} is not implemented in polykeras (one curve "
                    "over every label, flattened, is); leave it at its default"
                )
        curve = str(curve).upper()
        if curve not in _CURVES:
            raise ValueError(f"AUC: curve must be one of {_CURVES}, got {curve!r}")
        method = str(summation_method).lower()
        if method not in _SUMMATIONS:
            raise ValueError(
                f"AUC: summation_method must be one of {_SUMMATIONS}, got {summation_method!r}"
            )
        eps = config.epsilon()
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
        else:
            if int(num_thresholds) <= 1:
                raise ValueError(f"AUC: num_thresholds must be > 1, got {num_thresholds!r}")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
        self.curve = curve
        self.summation_method = method
        self.multi_label = False
        self._from_logits = bool(from_logits)
        self._init_thresholds = thresholds
        super().__init__([0.0 - eps] + inner + [1.0 + eps], name or "auc", dtype)

    def _prepare(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        return y_true, (ops.sigmoid(y_pred) if self._from_logits else y_pred)

    def _pr_interpolated(self) -> Any:
        tp, fp, fn = self._count("tp"), self._count("fp"), self._count("fn")
        n = self.num_thresholds
        dtp = ops.subtract(tp[: n - 1], tp[1:])
        p = ops.add(tp, fp)
        dp = ops.subtract(p[: n - 1], p[1:])
        slope = _divide_no_nan(dtp, ops.maximum(dp, 0.0))
        intercept = ops.subtract(tp[1:], ops.multiply(slope, p[1:]))
        both = ops.logical_and(ops.greater(p[: n - 1], 0.0), ops.greater(p[1:], 0.0))
        ratio = ops.where(
            both, _divide_no_nan(p[: n - 1], ops.maximum(p[1:], 0.0)), ops.ones_like(p[1:])
        )
        steps = _divide_no_nan(
            ops.multiply(slope, ops.add(dtp, ops.multiply(intercept, ops.log(ratio)))),
            ops.maximum(ops.add(tp[1:], fn[1:]), 0.0),
        )
        return ops.sum(steps)

    def result(self) -> Any:
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._pr_interpolated()
        tp, fp, tn, fn = (self._count(c) for c in ("tp", "fp", "tn", "fn"))
        recall = _divide_no_nan(tp, ops.add(tp, fn))
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, ops.add(fp, tn)), recall
        else:
            x, y = recall, _divide_no_nan(tp, ops.add(tp, fp))
        n = self.num_thresholds
        if self.summation_method == "interpolation":
            heights = ops.divide(ops.add(y[: n - 1], y[1:]), 2.0)
        elif self.summation_method == "minoring":
            heights = ops.minimum(y[: n - 1], y[1:])
        else:
            heights = ops.maximum(y[: n - 1], y[1:])
        return ops.sum(ops.multiply(ops.subtract(x[: n - 1], x[1:]), heights))

    @property
    def thresholds(self) -> list[float]:
        return list(self._threshold_list)

    def get_config(self) -> dict[str, Any]:
        config = {
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": False,
            "num_labels": None,
            "label_weights": None,
            "from_logits": self._from_logits,
            **super().get_config(),
        }
        if self._init_thresholds is not None:
            config["thresholds"] = self._threshold_list[1:-1]
        return config


#: every metric class by name (metrics.get and deserialize look here)
CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Metric,
        Mean,
        Sum,
        MeanMetricWrapper,
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        MeanSquaredError,
        MeanAbsoluteError,
        RootMeanSquaredError,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        AUC,
        Precision,
        Recall,
        TruePositives,
        FalsePositives,
        TrueNegatives,
        FalseNegatives,
    )
}


def serialize(metric: Metric) -> dict[str, Any]:
    """``{"class_name", "config"}`` as Keras 2 writes a metric object."""
    from ..saving.custom_objects import get_registered_name

    cls = type(metric)
    name = cls.__name__ if CLASSES.get(cls.__name__) is cls else get_registered_name(cls)
    return {"class_name": name, "config": metric.get_config()}
