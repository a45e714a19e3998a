"""Activation functions by name, as Keras names them."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

from . import ops


def softmax(x, axis=-1):
    return ops.softmax(x, axis=axis)


def relu(x):
    return ops.relu(x)


def exponential(x):
    return ops.exp(x)


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
    name = getattr(fn, "__name__", None)
    if name in FUNCTIONS:
        return name
    raise ValueError(f"activation {fn!r} is not a built-in and cannot be serialized by name")
