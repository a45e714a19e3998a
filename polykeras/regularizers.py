"""Weight regularizers: penalties added to the training loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ops
from .utils import as_float


class L1L2:
    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = as_float(l1, "l1", "L1L2 regularizer", low=0.0)
        self.l2 = as_float(l2, "l2", "L1L2 regularizer", low=0.0)

    def __call__(self, x):
        total = 0.0
        if self.l1:
            total = ops.add(total, ops.multiply(ops.sum(ops.abs(x)), self.l1))
        if self.l2:
            total = ops.add(total, ops.multiply(ops.sum(ops.square(x)), self.l2))
        return total

    def get_config(self) -> dict[str, float]:
        return {"l1": self.l1, "l2": self.l2}


def l1(value: float = 0.01) -> L1L2:
    return L1L2(l1=value)


def l2(value: float = 0.01) -> L1L2:
    return L1L2(l2=value)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:  # noqa: F811
    return L1L2(l1=l1, l2=l2)


def get(identifier: Any) -> L1L2:
    if isinstance(identifier, L1L2):
        return identifier
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name not in ("L1L2", "L1", "L2"):
            raise ValueError(f"unknown regularizer class {name!r}")
        cfg = dict(identifier.get("config", {}))
        return L1L2(l1=cfg.get("l1", 0.0), l2=cfg.get("l2", 0.0))
    if isinstance(identifier, str) and identifier in ("l1", "l2", "l1_l2"):
        makers: dict[str, Callable[[], L1L2]] = {"l1": l1, "l2": l2, "l1_l2": l1_l2}
        return makers[identifier]()
    raise ValueError(f"cannot interpret {identifier!r} as a regularizer")


def serialize(reg: L1L2) -> dict[str, Any]:
    return {"class_name": "L1L2", "config": reg.get_config()}


def get_optional(identifier: Any) -> L1L2 | None:
    """``get``, with None meaning "no regularizer"."""
    return None if identifier is None else get(identifier)


def serialize_optional(reg: L1L2 | None) -> dict[str, Any] | None:
    return None if reg is None else serialize(reg)


def serialize_constraint(constraint: Any) -> Any:
    """Kept for older callers: see :func:`polykeras.constraints.serialize`."""
    from . import constraints

    return constraints.serialize(constraint)
