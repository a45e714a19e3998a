"""More of Keras 3's metric classes: F-scores, R², intersection over union, the
"X at fixed Y" curve points, and three means (MAPE, cosine similarity, log-cosh error).

Every state is a sum (counts, weighted sums, confusion tables), so that data parallelism
can add the states of the ranks and read the result from the sums
(``distribute.SharedMetrics``).  ``F1Score``/``FBetaScore`` and ``R2Score`` size their state
by the number of classes: on the first ``update_state``, as Keras 3 does, or earlier when
``compile`` knows the output's shape (:meth:`build_for_output`), so that every rank holds
the same variables from the first step.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import backend as _backend
from .. import config, ops
from . import loss_classes as _lc
from . import losses as _losses
from .metric_classes import (
    Metric,
    MeanMetricWrapper,
    _Confusion,
    _divide_no_nan,
    _input,
)

# -- means of per-sample functions ----------------------------------------------------------------


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> Any:
    """sum(l2_normalize(y_true) * l2_normalize(y_pred)) along ``axis`` (the metric: positive,
    unlike the loss)."""
    y_true, y_pred = _lc._same_rank(y_true, y_pred)
    t = ops.l2_normalize(y_true, axis=axis)
    p = ops.l2_normalize(y_pred, axis=axis)
    return ops.sum(ops.multiply(t, p), axis=axis)


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """The mean of 100 * |y_true - y_pred| / max(|y_true|, eps)."""

    def __init__(self, name: str = "mean_absolute_percentage_error", dtype: str | None = None):
        super().__init__(_losses.mean_absolute_percentage_error, name=name, dtype=dtype)


class CosineSimilarity(MeanMetricWrapper):
    """The mean cosine of the angle between y_true and y_pred along ``axis``."""

    def __init__(self, name: str = "cosine_similarity", dtype: str | None = None, axis: int = -1):
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"CosineSimilarity: axis must be an int, got {axis!r}")
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=int(axis))


class LogCoshError(MeanMetricWrapper):
    """The mean of log(cosh(y_pred - y_true))."""

    def __init__(self, name: str = "logcosh", dtype: str | None = None):
        super().__init__(_losses.logcosh, name=name, dtype=dtype)


# -- state sized by the number of classes -------------------------------------------------------


class _PerClass(Metric):
    """A metric whose state has one entry per class, created once the class count is known
    (``_create(classes)``)."""

    def __init__(self, name: str | None, dtype: str | None):
        super().__init__(name=name, dtype=dtype)
        self._built = False

    def _create(self, classes: int) -> None:
        raise NotImplementedError

    def build_for_output(self, shape: Any) -> None:
        """Create the state for an output of ``shape`` (batch axis first) if its last axis is
        known and the state is not there yet (compile calls this)."""
        shape = tuple(shape)
        if not self._built and len(shape) == 2 and shape[-1] is not None:
            self._build(int(shape[-1]))

    def _build(self, classes: int) -> None:
        self._create(classes)
        self._classes = classes
        self._built = True

    def _check(self, y_true: Any, y_pred: Any) -> None:
        ts, ps = tuple(ops.shape(y_true)), tuple(ops.shape(y_pred))
        if len(ts) != 2 or len(ps) != 2:
            raise ValueError(
                f"{type(self).__name__} expects 2D inputs of shape (batch_size, output_dim); "
                f"got y_true of shape {ts} and y_pred of shape {ps}"
            )
        if not self._built:
            self._build(int(ps[-1]))
        if ps[-1] != self._classes or ts[-1] != self._classes:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} counts {self._classes} columns, but got "
                f"y_true of shape {ts} and y_pred of shape {ps}"
            )

    def reset_state(self) -> None:
        if self._built:
            super().reset_state()


_AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(_PerClass):
    """The F-beta score, (1 + beta²) * precision * recall / (beta² * precision + recall),
    per class (``average=None``) or averaged: ``"micro"`` from the counts over every class,
    ``"macro"`` the mean of the classes' scores, ``"weighted"`` weighted by each class's
    (weighted) number of true labels.  ``y_pred`` counts as positive above ``threshold``, or
    (None) where it is its row's maximum."""

    def __init__(
        self,
        average: str | None = None,
        beta: float = 1.0,
        threshold: float | None = None,
        name: str = "fbeta_score",
        dtype: str | None = None,
    ):
        owner = type(self).__name__
        if average not in _AVERAGES:
            raise ValueError(f"{owner}: average must be one of {_AVERAGES}, got {average!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise ValueError(f"{owner}: beta must be a number > 0, got {beta!r}")
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
                raise ValueError(f"{owner}: threshold must be None or a number, got {threshold!r}")
            if not 0.0 < threshold <= 1.0:
                raise ValueError(f"{owner}: threshold must be in (0, 1], got {threshold!r}")
            threshold = float(threshold)
        super().__init__(name=name, dtype=dtype)
        self.average = average
        self.beta = float(beta)
        self.threshold = threshold

    def _create(self, classes: int) -> None:
        shape = (classes,) if self.average != "micro" else ()
        self.true_positives = self.add_variable(shape, "true_positives")
        self.false_positives = self.add_variable(shape, "false_positives")
        self.false_negatives = self.add_variable(shape, "false_negatives")
        self.intermediate_weights = self.add_variable(shape, "intermediate_weights")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = _input(y_true, self._dtype)
        y_pred = _input(y_pred, self._dtype)
        self._check(y_true, y_pred)
        if self.threshold is None:
            top = ops.max(y_pred, axis=-1, keepdims=True)
            positive = ops.logical_and(
                ops.greater_equal(y_pred, top), ops.greater(ops.abs(y_pred), 1e-9)
            )
        else:
            positive = ops.greater(y_pred, self.threshold)
        pred = ops.cast(positive, self._dtype)
        weight = None
        if sample_weight is not None:
            weight = _input(sample_weight, self._dtype)
            if len(ops.shape(weight)) == 1:
                weight = ops.expand_dims(weight, 1)
        axis = None if self.average == "micro" else 0

        def weighted_sum(values: Any) -> Any:
            if weight is not None:
                values = ops.multiply(values, weight)
            return ops.sum(values, axis=axis)

        missed = ops.subtract(1.0, pred)
        self._add(self.true_positives, weighted_sum(ops.multiply(pred, y_true)))
        self._add(self.false_positives, weighted_sum(ops.multiply(pred, ops.subtract(1.0, y_true))))
        self._add(self.false_negatives, weighted_sum(ops.multiply(missed, y_true)))
        self._add(self.intermediate_weights, weighted_sum(y_true))

    def result(self) -> Any:
        if not self._built:
            return _backend.current().asarray(np.zeros((), self._dtype))
        eps = config.epsilon()
        tp = self._value(self.true_positives)
        fp = self._value(self.false_positives)
        fn = self._value(self.false_negatives)
        precision = ops.divide(tp, ops.add(ops.add(tp, fp), eps))
        recall = ops.divide(tp, ops.add(ops.add(tp, fn), eps))
        b2 = self.beta**2
        both = ops.multiply(precision, recall)
        score = ops.divide(both, ops.add(ops.add(ops.multiply(precision, b2), recall), eps))
        score = ops.multiply(score, 1.0 + b2)
        if self.average == "weighted":
            support = self._value(self.intermediate_weights)
            share = ops.divide(support, ops.add(ops.sum(support), eps))
            return ops.sum(ops.multiply(score, share))
        if self.average is not None:
            return ops.mean(score)
        return score

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "average": self.average,
            "beta": self.beta,
            "threshold": self.threshold,
        }


class F1Score(FBetaScore):
    """The F1 score, 2 * precision * recall / (precision + recall) (FBetaScore, beta=1)."""

    def __init__(
        self,
        average: str | None = None,
        threshold: float | None = None,
        name: str = "f1_score",
        dtype: str | None = None,
    ):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config


_AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")


class R2Score(_PerClass):
    """The coefficient of determination, 1 - (residual sum of squares) / (total sum of
    squares), per output column (``class_aggregation=None``), their mean
    (``"uniform_average"``) or their mean weighted by each column's variance
    (``"variance_weighted_average"``); adjusted for ``num_regressors`` independent
    variables when that is not 0."""

    def __init__(
        self,
        class_aggregation: str | None = "uniform_average",
        num_regressors: int = 0,
        name: str = "r2_score",
        dtype: str | None = None,
    ):
        if class_aggregation not in _AGGREGATIONS:
            raise ValueError(
                f"R2Score: class_aggregation must be one of {_AGGREGATIONS}, got "
                f"{class_aggregation!r}"
            )
        if isinstance(num_regressors, bool) or not isinstance(num_regressors, (int, np.integer)):
            raise TypeError(f"R2Score: num_regressors must be an int, got {num_regressors!r}")
        if num_regressors < 0:
            raise ValueError(f"R2Score: num_regressors must be >= 0, got {num_regressors!r}")
        super().__init__(name=name, dtype=dtype)
        self.class_aggregation = class_aggregation
        self.num_regressors = int(num_regressors)
        self.num_samples = self.add_variable((), "num_samples")

    def _create(self, classes: int) -> None:
        self.squared_sum = self.add_variable((classes,), "squared_sum")
        self.sum = self.add_variable((classes,), "sum")
        self.total_mse = self.add_variable((classes,), "residual")
        self.count = self.add_variable((classes,), "count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = _input(y_true, self._dtype)
        y_pred = _input(y_pred, self._dtype)
        y_true, y_pred = _lc._same_rank(y_true, y_pred)
        self._check(y_true, y_pred)
        shape = tuple(ops.shape(y_true))
        if sample_weight is None:
            weight = ops.ones_like(y_true)
        else:
            weight = _input(sample_weight, self._dtype)
            if len(ops.shape(weight)) == 1:
                weight = ops.expand_dims(weight, 1)
            weight = ops.broadcast_to(weight, shape)
        weighted = ops.multiply(y_true, weight)
        self._add(self.sum, ops.sum(weighted, axis=0))
        self._add(self.squared_sum, ops.sum(ops.multiply(y_true, weighted), axis=0))
        residual = ops.multiply(ops.square(ops.subtract(y_true, y_pred)), weight)
        self._add(self.total_mse, ops.sum(residual, axis=0))
        self._add(self.count, ops.sum(weight, axis=0))
        self._add(self.num_samples, float(np.prod(shape)))

    def result(self) -> Any:
        if not self._built:
            return _backend.current().asarray(np.zeros((), self._dtype))
        total_sum = self._value(self.sum)
        mean = ops.divide(total_sum, self._value(self.count))
        total = ops.subtract(self._value(self.squared_sum), ops.multiply(total_sum, mean))
        raw = ops.subtract(1.0, ops.divide(self._value(self.total_mse), total))
        raw = ops.where(ops.isinf(raw), ops.zeros_like(raw), raw)
        if self.class_aggregation == "uniform_average":
            score = ops.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = ops.divide(ops.sum(ops.multiply(total, raw)), ops.sum(total))
        else:
            score = raw
        if self.num_regressors:
            B = _backend.current()
            n = float(np.asarray(B.to_numpy(self._value(self.num_samples))))
            p = float(self.num_regressors)
            if p > n - 1:
                warnings.warn(
                    "R2Score: more independent predictors than data points for the adjusted "
                    "R2 score; falling back to the standard R2 score",
                    stacklevel=2,
                )
            elif p == n - 1:
                warnings.warn(
                    "R2Score: division by zero in the adjusted R2 score; falling back to the "
                    "standard R2 score",
                    stacklevel=2,
                )
            else:
                score = ops.subtract(
                    1.0, ops.divide(ops.multiply(ops.subtract(1.0, score), n - 1.0), n - p - 1.0)
                )
        return score

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "class_aggregation": self.class_aggregation,
            "num_regressors": self.num_regressors,
        }


# -- intersection over union ----------------------------------------------------------------------


def _check_classes(num_classes: Any, owner: str) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"{owner}: num_classes must be an int, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"{owner}: num_classes must be >= 1, got {num_classes!r}")
    return int(num_classes)


class _IoUBase(Metric):
    """A confusion table of class ids (rows: true, columns: predicted), summed over the
    updates; ids outside ``[0, num_classes)`` and ``ignore_class`` labels are left out.
    Keras 3 keeps the table in integers (``dtype="int32"`` by default): sample weights are
    truncated to integers then, as there."""

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: str | None = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ):
        owner = type(self).__name__
        self.num_classes = _check_classes(num_classes, owner)
        table_dtype = "int32" if dtype is None else dtype
        kind: str = ""
        try:
            kind = np.dtype(table_dtype).kind if isinstance(table_dtype, str) else ""
        except TypeError:
            pass
        if kind not in ("i", "u", "f"):
            raise ValueError(
                f"{owner}: dtype must be an integer or float dtype name, got {dtype!r}"
            )
        super().__init__(name=name, dtype=None)
        self._dtype = np.dtype(table_dtype).name
        if ignore_class is not None and (
            isinstance(ignore_class, bool) or not isinstance(ignore_class, (int, np.integer))
        ):
            raise TypeError(f"{owner}: ignore_class must be None or an int, got {ignore_class!r}")
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.sparse_y_true = bool(sparse_y_true)
        self.sparse_y_pred = bool(sparse_y_pred)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"{owner}: axis must be an int, got {axis!r}")
        self.axis = int(axis)
        n = self.num_classes
        self.total_cm = self.add_variable((n, n), "total_confusion_matrix")

    @property
    def _float(self) -> str:
        return self._dtype if np.dtype(self._dtype).kind == "f" else config.floatx()

    def _ids(self, x: Any) -> Any:
        """Class ids as a flat int32 vector (values truncated, as Keras converts them)."""
        if ops.dtype_name(x) != "int32":
            x = ops.cast(x, "int32")
        return ops.reshape(x, (-1,))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = _input(y_true)
        y_pred = _input(y_pred)
        if not self.sparse_y_true:
            y_true = ops.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = ops.argmax(y_pred, axis=self.axis)
        t, p = self._ids(y_true), self._ids(y_pred)
        if tuple(ops.shape(t)) != tuple(ops.shape(p)):
            raise ValueError(
                f"{type(self).__name__}: y_true and y_pred hold different numbers of class "
                f"ids ({ops.shape(t)[0]} and {ops.shape(p)[0]})"
            )
        fdt = self._float
        if sample_weight is None:
            w = ops.ones(tuple(ops.shape(t)), dtype=fdt)
        else:
            w = _input(sample_weight)
            if np.dtype(self._dtype).kind != "f":  # Keras' integer table: weights truncated
                w = ops.cast(w, self._dtype)
            w = ops.cast(w, fdt)
            w_nd, t_shape = len(ops.shape(w)), tuple(ops.shape(y_true))
            if w_nd < len(t_shape):  # one weight per sample: for each of its ids
                w = ops.reshape(w, tuple(ops.shape(w)) + (1,) * (len(t_shape) - w_nd))
                w = ops.broadcast_to(w, t_shape)
            w = ops.broadcast_to(ops.reshape(w, (-1,)), tuple(ops.shape(t)))
        n = self.num_classes
        keep = ops.logical_and(
            ops.logical_and(ops.greater_equal(t, 0), ops.less(t, n)),
            ops.logical_and(ops.greater_equal(p, 0), ops.less(p, n)),
        )
        if self.ignore_class is not None:
            keep = ops.logical_and(keep, ops.not_equal(t, self.ignore_class))
        zero = ops.zeros_like(t)
        t, p = ops.where(keep, t, zero), ops.where(keep, p, zero)
        w = ops.where(keep, w, ops.zeros_like(w))
        true_rows = _losses.one_hot(t, n, fdt)
        pred_rows = ops.multiply(_losses.one_hot(p, n, fdt), ops.expand_dims(w, -1))
        table = ops.matmul(ops.transpose(true_rows), pred_rows)
        self._add(self.total_cm, ops.round(table) if self._float != self._dtype else table)

    def get_config(self) -> dict[str, Any]:
        return super().get_config()


class IoU(_IoUBase):
    """Intersection over union, tp / (tp + fp + fn), of each class in ``target_class_ids``,
    averaged over those that occur (in labels or predictions)."""

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Any,
        name: str | None = None,
        dtype: str | None = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ):
        super().__init__(
            num_classes,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=sparse_y_true,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )
        try:
            ids = [int(i) for i in target_class_ids]
        except TypeError:
            raise TypeError(
                f"{type(self).__name__}: target_class_ids must be a list of class ids, got "
                f"{target_class_ids!r}"
            ) from None
        if not ids:
            raise ValueError(f"{type(self).__name__}: target_class_ids must not be empty")
        bad = [i for i in ids if not 0 <= i < self.num_classes]
        if bad:
            raise ValueError(
                f"{type(self).__name__}: target class id {bad[0]} is out of range, which is "
                f"[0, {self.num_classes})"
            )
        self.target_class_ids = ids

    def result(self) -> Any:
        fdt = self._float
        table = ops.cast(self._value(self.total_cm), fdt)
        tp = ops.diag(table)
        union = ops.subtract(ops.add(ops.sum(table, axis=0), ops.sum(table, axis=1)), tp)
        B = _backend.current()
        ids = B.asarray(np.asarray(self.target_class_ids, "int64"))
        tp, union = ops.take(tp, ids), ops.take(union, ids)
        valid = ops.greater(union, 1e-9)
        eps = config.epsilon()
        iou = ops.where(valid, ops.divide(tp, ops.add(union, eps)), ops.zeros_like(tp))
        count = ops.sum(ops.cast(valid, fdt))
        return ops.divide(ops.sum(iou), ops.add(count, eps))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "target_class_ids": list(self.target_class_ids),
            "ignore_class": self.ignore_class,
            "sparse_y_true": self.sparse_y_true,
            "sparse_y_pred": self.sparse_y_pred,
            "axis": self.axis,
        }


class BinaryIoU(IoU):
    """IoU of two classes: a prediction is class 1 where ``y_pred >= threshold``."""

    def __init__(
        self,
        target_class_ids: Any = (0, 1),
        threshold: float = 0.5,
        name: str | None = None,
        dtype: str | None = None,
    ):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"BinaryIoU: threshold must be a number, got {threshold!r}")
        super().__init__(2, target_class_ids, name=name, dtype=dtype)
        self.threshold = float(threshold)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = _input(y_pred)
        y_pred = ops.cast(ops.greater_equal(y_pred, self.threshold), "int32")
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {
            "target_class_ids": list(self.target_class_ids),
            "threshold": self.threshold,
            "name": self.name,
            "dtype": self._dtype,
        }


class MeanIoU(IoU):
    """IoU averaged over every class (that occurs)."""

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: str | None = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ):
        n = _check_classes(num_classes, type(self).__name__)
        super().__init__(
            n,
            list(range(n)),
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=sparse_y_true,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["target_class_ids"]
        return config


class OneHotIoU(IoU):
    """IoU with one-hot labels (and, unless ``sparse_y_pred``, scores per class)."""

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Any,
        name: str | None = None,
        dtype: str | None = None,
        ignore_class: int | None = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ):
        super().__init__(
            num_classes,
            target_class_ids,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=False,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """MeanIoU with one-hot labels (and, unless ``sparse_y_pred``, scores per class)."""

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: str | None = None,
        ignore_class: int | None = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ):
        super().__init__(
            num_classes,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=False,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["sparse_y_true"]
        return config


# -- one point of a curve ---------------------------------------------------------------------


class _AtConstraint(_Confusion):
    """The best ``dependent`` rate among the thresholds whose ``constrained`` rate reaches
    the value given, from counts at ``num_thresholds`` evenly spaced thresholds in [0, 1]
    (scores clipped to [0, 1]; one threshold: 0.5)."""

    #: the constructor's argument that holds the value (Keras' config key)
    _setting = "value"

    def __init__(
        self,
        value: float,
        num_thresholds: int = 200,
        class_id: int | None = None,
        name: str | None = None,
        dtype: str | None = None,
    ):
        owner = type(self).__name__
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise TypeError(f"{owner}: {self._setting} must be a number, got {value!r}")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{owner}: {self._setting} must be in [0, 1], got {value!r}")
        if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)):
            raise TypeError(f"{owner}: num_thresholds must be an int, got {num_thresholds!r}")
        if num_thresholds <= 0:
            raise ValueError(f"{owner}: num_thresholds must be > 0, got {num_thresholds!r}")
        n = int(num_thresholds)
        if n == 1:
            thresholds = [0.5]
        else:
            thresholds = [0.0] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1.0]
        super().__init__(thresholds, name, dtype, None, class_id)
        self._clip_scores = n > 1
        self.value = float(value)
        self.num_thresholds = n

    def _rates(self) -> dict[str, Any]:
        tp, fp, tn, fn = (self._count(c) for c in ("tp", "fp", "tn", "fn"))
        return {
            "recall": _divide_no_nan(tp, ops.add(tp, fn)),
            "precision": _divide_no_nan(tp, ops.add(tp, fp)),
            "specificity": _divide_no_nan(tn, ops.add(tn, fp)),
        }

    _constrained = "recall"
    _dependent = "precision"

    def result(self) -> Any:
        rates = self._rates()
        feasible = ops.greater_equal(rates[self._constrained], self.value)
        dependent = rates[self._dependent]
        best = ops.max(ops.where(feasible, dependent, ops.zeros_like(dependent)))
        return ops.maximum(best, 0.0)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "class_id": self.class_id,
            "num_thresholds": self.num_thresholds,
            self._setting: self.value,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        config = dict(config)
        return cls(config.pop(cls._setting), **config)


class SensitivityAtSpecificity(_AtConstraint):
    """The best sensitivity (recall) where the specificity is at least ``specificity``."""

    _setting, _constrained, _dependent = "specificity", "specificity", "recall"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name, dtype)


class SpecificityAtSensitivity(_AtConstraint):
    """The best specificity where the sensitivity (recall) is at least ``sensitivity``."""

    _setting, _constrained, _dependent = "sensitivity", "recall", "specificity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)


class PrecisionAtRecall(_AtConstraint):
    """The best precision where the recall is at least ``recall``."""

    _setting, _constrained, _dependent = "recall", "recall", "precision"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name, dtype)


class RecallAtPrecision(_AtConstraint):
    """The best recall where the precision is at least ``precision``."""

    _setting, _constrained, _dependent = "precision", "precision", "recall"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name, dtype)


#: the classes by name (added to metric_classes.CLASSES)
CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        MeanAbsolutePercentageError,
        CosineSimilarity,
        LogCoshError,
        FBetaScore,
        F1Score,
        R2Score,
        IoU,
        BinaryIoU,
        MeanIoU,
        OneHotIoU,
        OneHotMeanIoU,
        SensitivityAtSpecificity,
        SpecificityAtSensitivity,
        PrecisionAtRecall,
        RecallAtPrecision,
    )
}

#: Keras 3's snake-case names of the classes that need no argument
#: (``compile(metrics=["f1_score"])``), each giving an instance with the defaults
NAMES: dict[str, type] = {
    "f1_score": F1Score,
    "f_beta_score": FBetaScore,
    "r2_score": R2Score,
    "binary_io_u": BinaryIoU,
    "cosine_similarity": CosineSimilarity,
    "log_cosh_error": LogCoshError,
}
