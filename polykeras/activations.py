"""Activation functions by name, as Keras names them."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

from . import ops


def softmax(x, axis=-1):
    return ops.softmax(x, axis=axis)


def relu(x, alpha=0.0, negative_slope=None, max_value=None, threshold=0.0):
    """Keras' relu: ``x`` above ``threshold`` (capped at ``max_value``), ``alpha * (x -
    threshold)`` below (Keras 3 spells ``alpha`` as ``negative_slope``)."""
    if negative_slope is not None:
        alpha = negative_slope
    if not alpha and max_value is None and not threshold:
        return ops.relu(x)
    return _relu(x, float(alpha), None if max_value is None else float(max_value), float(threshold))


@ops.keras_op(name="activations.relu")
def _relu(x, alpha, max_value, threshold):
    above = ops.greater(x, threshold) if threshold else ops.greater(x, 0.0)
    y = ops.where(
        above,
        x,
        ops.zeros_like(x) if not alpha else ops.multiply(ops.subtract(x, threshold), alpha),
    )
    if max_value is not None:
        y = ops.minimum(y, max_value)
    return y


def exponential(x):
    return ops.exp(x)


def leaky_relu(x, negative_slope=0.2):
    return ops.leaky_relu(x, negative_slope=negative_slope)


def relu6(x):
    return ops.relu6(x)


def elu(x, alpha=1.0):
    return ops.elu(x, alpha)


def log_softmax(x, axis=-1):
    return ops.log_softmax(x, axis=axis)


def gelu(x, approximate=False):
    """Keras' gelu: ``x * P(X <= x)`` for a standard normal X (the erf form, Keras' default
    and what the name "gelu" means), or its tanh approximation with ``approximate=True``."""
    if approximate:
        return ops.gelu(x)
    return _gelu_erf(x)


@ops.keras_op(name="activations.gelu")
def _gelu_erf(x):
    return ops.multiply(ops.multiply(x, 0.5), ops.add(ops.erf(ops.multiply(x, 2.0**-0.5)), 1.0))


@ops.keras_op(name="activations.hard_silu")
def hard_silu(x):
    """Keras 3's ``x * relu6(x + 3) / 6``."""
    return ops.multiply(x, ops.divide(ops.clip(ops.add(x, 3.0), 0.0, 6.0), 6.0))


hard_swish = hard_silu


@ops.keras_op(name="activations.hard_tanh")
def hard_tanh(x):
    return ops.clip(x, -1.0, 1.0)


@ops.keras_op(name="activations.tanh_shrink")
def tanh_shrink(x):
    return ops.subtract(x, ops.tanh(x))


@ops.keras_op(name="activations.celu")
def celu(x, alpha=1.0):
    """``max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)``."""
    negative = ops.subtract(ops.exp(ops.divide(ops.minimum(x, 0.0), alpha)), 1.0)
    return ops.add(ops.maximum(x, 0.0), ops.multiply(negative, alpha))


@ops.keras_op(name="activations.squareplus")
def squareplus(x, b=4):
    """``(x + sqrt(x^2 + b)) / 2``."""
    return ops.multiply(ops.add(x, ops.sqrt(ops.add(ops.square(x), float(b)))), 0.5)


@ops.keras_op(name="activations.soft_shrink")
def soft_shrink(x, threshold=0.5):
    t = float(threshold)
    shrunk = ops.where(ops.greater(x, t), ops.subtract(x, t), ops.zeros_like(x))
    return ops.where(ops.less(x, -t), ops.add(x, t), shrunk)


@ops.keras_op(name="activations.hard_shrink")
def hard_shrink(x, threshold=0.5):
    return ops.where(ops.greater(ops.abs(x), float(threshold)), x, ops.zeros_like(x))


@ops.keras_op(name="activations.sparse_plus")
def sparse_plus(x):
    """0 below -1, x above 1, ``(x + 1)^2 / 4`` between."""
    middle = ops.multiply(ops.square(ops.add(x, 1.0)), 0.25)
    upper = ops.where(ops.greater_equal(x, 1.0), x, middle)
    return ops.where(ops.less_equal(x, -1.0), ops.zeros_like(x), upper)


log_sigmoid = ops.log_sigmoid


linear = ops.linear
sigmoid = ops.sigmoid
tanh = ops.tanh
softplus = ops.softplus
softsign = ops.softsign
selu = ops.selu
hard_sigmoid = ops.hard_sigmoid
swish = silu = ops.swish
mish = ops.mish

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "linear": ops.linear,
    "relu": relu,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "softmax": softmax,
    "softplus": ops.softplus,
    "softsign": ops.softsign,
    "elu": ops.elu,
    "selu": ops.selu,
    "hard_sigmoid": ops.hard_sigmoid,
    "exponential": exponential,
    "swish": ops.swish,
    "silu": ops.swish,
    "gelu": gelu,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
    "hard_tanh": hard_tanh,
    "tanh_shrink": tanh_shrink,
    "celu": celu,
    "squareplus": squareplus,
    "soft_shrink": soft_shrink,
    "hard_shrink": hard_shrink,
    "sparse_plus": sparse_plus,
    "log_sigmoid": ops.log_sigmoid,
    "leaky_relu": leaky_relu,
    "relu6": relu6,
    "mish": ops.mish,
    "log_softmax": log_softmax,
}


def get(identifier: Any) -> Callable[..., Any]:
    if identifier is None:
        return ops.linear
    if isinstance(identifier, str):
        fn = FUNCTIONS.get(identifier)
        if fn is None:
            raise ValueError(
                f"unknown activation {identifier!r}; expected one of {', '.join(sorted(FUNCTIONS))}"
            )
        return fn
    if callable(identifier):
        return identifier
    raise ValueError(f"cannot interpret {identifier!r} as an activation")


def serialize(fn: Callable[..., Any]) -> str:
    for name, f in FUNCTIONS.items():
        if f is fn:
            return name
    fn_name = getattr(fn, "__name__", None)
    if fn_name in FUNCTIONS:
        return str(fn_name)
    raise ValueError(f"activation {fn!r} is not a built-in and cannot be serialized by name")
