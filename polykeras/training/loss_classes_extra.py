"""Keras 3's focal crossentropies and overlap losses: ``BinaryFocalCrossentropy``,
``CategoricalFocalCrossentropy``, ``Dice`` and ``Tversky``, with their function forms.

The numbers are Keras 3's (torch backend): probabilities are clipped to ``[eps, 1 - eps]``
before the logarithm, ``from_logits=True`` applies the sigmoid (softmax) first, and the
focal factor ``(1 - p_t) ** gamma`` uses the unclipped probability.  ``Dice`` and
``Tversky`` reduce over ``axis`` (None: every axis, one value for the whole batch).
Everything goes through :mod:`polykeras.ops`, so the losses train on every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import config, ops
from . import loss_classes as _lc
from . import losses as _fns
from .loss_classes import LossFunctionWrapper

# -- settings -------------------------------------------------------------------------------------


def _check_gamma(gamma: Any, owner: str) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)):
        raise TypeError(f"{owner}: gamma must be a number, got {gamma!r}")
    if not gamma >= 0.0:
        raise ValueError(f"{owner}: gamma must be >= 0 (the focusing exponent), got {gamma!r}")
    return float(gamma)


def _check_alpha(alpha: Any, owner: str, per_class: bool = False) -> Any:
    """A weight in [0, 1], or (``per_class``) a list of per-class weights."""
    if per_class and isinstance(alpha, (list, tuple)):
        values = [_check_alpha(a, owner) for a in alpha]
        if not values:
            raise ValueError(f"{owner}: alpha must not be an empty list")
        return values
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        expected = "a number or a list of numbers (one per class)" if per_class else "a number"
        raise TypeError(f"{owner}: alpha must be {expected}, got {alpha!r}")
    return float(alpha)


def _check_axis(axis: Any, owner: str) -> Any:
    """None, an int, or a list of ints (as the config stores it)."""
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
            raise TypeError(f"{owner}: axis must be None, an int or a list of ints, got {axis!r}")
        return [int(a) for a in axis]
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{owner}: axis must be None, an int or a list of ints, got {axis!r}")
    return int(axis)


def _axes(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


# -- the functions ------------------------------------------------------------------------------


def binary_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Any:
    """Binary crossentropy scaled by ``(1 - p_t) ** gamma`` (``p_t``: the probability given
    to the true label), and by ``alpha`` / ``1 - alpha`` for positive / negative labels with
    ``apply_class_balancing``; the mean over ``axis``."""
    y_true = _lc._cast_like(ops.stop_gradient(y_true), y_pred)
    if label_smoothing:
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing), 0.5 * label_smoothing)
    p = ops.sigmoid(y_pred) if from_logits else y_pred
    eps = config.epsilon()
    clipped = ops.clip(p, eps, 1.0 - eps)
    not_true = ops.subtract(1.0, y_true)
    bce = ops.neg(
        ops.add(
            ops.multiply(y_true, ops.log(clipped)),
            ops.multiply(not_true, ops.log(ops.subtract(1.0, clipped))),
        )
    )
    p_t = ops.add(ops.multiply(y_true, p), ops.multiply(not_true, ops.subtract(1.0, p)))
    focal = ops.multiply(ops.power(ops.subtract(1.0, p_t), gamma), bce)
    if apply_class_balancing:
        weight = ops.add(ops.multiply(y_true, alpha), ops.multiply(not_true, 1.0 - alpha))
        focal = ops.multiply(weight, focal)
    return ops.mean(focal, axis=axis)


def categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: Any = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Any:
    """Categorical crossentropy of each class scaled by ``alpha * (1 - p) ** gamma`` (``alpha``
    a number or one weight per class), summed over ``axis``."""
    y_true = _lc._cast_like(ops.stop_gradient(y_true), y_pred)
    if label_smoothing:
        classes = float(ops.shape(y_true)[-1])
        y_true = ops.add(ops.multiply(y_true, 1.0 - label_smoothing), label_smoothing / classes)
    p = ops.softmax(y_pred, axis=axis) if from_logits else y_pred
    p = ops.divide(p, ops.sum(p, axis=axis, keepdims=True))
    eps = config.epsilon()
    p = ops.clip(p, eps, 1.0 - eps)
    cce = ops.neg(ops.multiply(y_true, ops.log(p)))
    if isinstance(alpha, (list, tuple)):
        alpha = _lc._as_array([float(a) for a in alpha], p)
    weight = ops.multiply(ops.power(ops.subtract(1.0, p), gamma), alpha)
    return ops.sum(ops.multiply(weight, cce), axis=axis)


def dice(y_true: Any, y_pred: Any, axis: Any = None) -> Any:
    """``1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + eps)``, the sums over
    ``axis`` (None: everything)."""
    y_true = _lc._cast_like(ops.stop_gradient(y_true), y_pred)
    axis = _axes(axis)
    overlap = ops.sum(ops.multiply(y_true, y_pred), axis=axis)
    total = ops.add(
        ops.add(ops.sum(y_true, axis=axis), ops.sum(y_pred, axis=axis)), config.epsilon()
    )
    return ops.subtract(1.0, ops.divide(ops.multiply(overlap, 2.0), total))


def tversky(
    y_true: Any, y_pred: Any, alpha: float = 0.5, beta: float = 0.5, axis: Any = None
) -> Any:
    """``1 - tp / (tp + alpha * sum(y_true * (1 - y_pred)) + beta * sum((1 - y_true) * y_pred)
    + eps)`` with ``tp = sum(y_true * y_pred)``, the sums over ``axis`` (as Keras 3)."""
    y_true = _lc._cast_like(ops.stop_gradient(y_true), y_pred)
    axis = _axes(axis)
    tp = ops.sum(ops.multiply(y_true, y_pred), axis=axis)
    missed = ops.sum(ops.multiply(ops.subtract(1.0, y_pred), y_true), axis=axis)
    extra = ops.sum(ops.multiply(y_pred, ops.subtract(1.0, y_true)), axis=axis)
    den = ops.add(
        ops.add(ops.add(tp, ops.multiply(missed, alpha)), ops.multiply(extra, beta)),
        config.epsilon(),
    )
    return ops.subtract(1.0, ops.divide(tp, den))


#: the functions by name (``losses.get("dice")``, ``compile(loss="tversky")``)
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "binary_focal_crossentropy": binary_focal_crossentropy,
    "categorical_focal_crossentropy": categorical_focal_crossentropy,
    "dice": dice,
    "tversky": tversky,
}
for _name, _fn in list(FUNCTIONS.items()):  # refuse symbolic tensors clearly
    FUNCTIONS[_name] = globals()[_name] = _fns.arrays_only(_fn)
del _name, _fn


# -- the classes --------------------------------------------------------------------------------


class BinaryFocalCrossentropy(LossFunctionWrapper):
    """Focal crossentropy of 0/1 labels (Lin et al., 2017): easy examples count less."""

    function_name = "binary_focal_crossentropy"

    def __init__(
        self,
        apply_class_balancing: bool = False,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: Any = "sum_over_batch_size",
        name: str = "binary_focal_crossentropy",
        dtype: str | None = None,
    ):
        owner = "BinaryFocalCrossentropy"
        super().__init__(
            FUNCTIONS["binary_focal_crossentropy"],
            reduction=reduction,
            name=name,
            dtype=dtype,
            apply_class_balancing=bool(apply_class_balancing),
            alpha=_check_alpha(alpha, owner),
            gamma=_check_gamma(gamma, owner),
            from_logits=bool(from_logits),
            label_smoothing=_lc._check_smoothing(label_smoothing, owner),
            axis=int(axis),
        )


class CategoricalFocalCrossentropy(LossFunctionWrapper):
    """Focal crossentropy of one-hot labels; ``alpha`` a number or one weight per class."""

    function_name = "categorical_focal_crossentropy"

    def __init__(
        self,
        alpha: Any = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: Any = "sum_over_batch_size",
        name: str = "categorical_focal_crossentropy",
        dtype: str | None = None,
    ):
        owner = "CategoricalFocalCrossentropy"
        super().__init__(
            FUNCTIONS["categorical_focal_crossentropy"],
            reduction=reduction,
            name=name,
            dtype=dtype,
            alpha=_check_alpha(alpha, owner, per_class=True),
            gamma=_check_gamma(gamma, owner),
            from_logits=bool(from_logits),
            label_smoothing=_lc._check_smoothing(label_smoothing, owner),
            axis=int(axis),
        )


class Dice(LossFunctionWrapper):
    """The Dice loss, ``1 - 2|A∩B| / (|A| + |B|)``, over ``axis`` (None: the whole batch
    gives one value)."""

    function_name = "dice"

    def __init__(
        self,
        reduction: Any = "sum_over_batch_size",
        name: str = "dice",
        axis: Any = None,
        dtype: str | None = None,
    ):
        super().__init__(FUNCTIONS["dice"], reduction, name, dtype, axis=_check_axis(axis, "Dice"))


class Tversky(LossFunctionWrapper):
    """The Tversky loss: Dice with the two kinds of error weighted by ``alpha`` and ``beta``
    (0.5 and 0.5 is Dice)."""

    function_name = "tversky"

    def __init__(
        self,
        alpha: float = 0.5,
        beta: float = 0.5,
        reduction: Any = "sum_over_batch_size",
        name: str = "tversky",
        axis: Any = None,
        dtype: str | None = None,
    ):
        super().__init__(
            FUNCTIONS["tversky"],
            reduction,
            name,
            dtype,
            alpha=_check_alpha(alpha, "Tversky"),
            beta=_check_alpha(beta, "Tversky"),
            axis=_check_axis(axis, "Tversky"),
        )


CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (BinaryFocalCrossentropy, CategoricalFocalCrossentropy, Dice, Tversky)
}
