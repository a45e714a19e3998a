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


def gelu(x, approximate=True):
    if not approximate:
        raise ValueError(
            "gelu(approximate=False) (the erf form) is not supported by polykeras; use "
            "approximate=True"
        )
    return ops.gelu(x)


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
    "gelu": ops.gelu,
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
