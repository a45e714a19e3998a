"""Weight regularizers: penalties added to the training loss.

Keras 3's classes: ``L1(l1=0.01)``, ``L2(l2=0.01)``, ``L1L2(l1=0.0, l2=0.0)`` and
``OrthogonalRegularizer(factor=0.01, mode="rows")``, each serialized under its class name
with Keras 3's config keys.  ``L1`` and ``L2`` are ``L1L2`` with one factor, so code that
checks for ``L1L2`` accepts them.  The strings ``"l1"``, ``"l2"``, ``"l1_l2"`` give an
``L1L2`` with Keras' default factor 0.01, as Keras 2.2 did (the penalty is the same as
Keras 3's ``L1``/``L2``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ops
from .utils import as_float


class Regularizer:
    """Base class: ``__call__(weight)`` returns the penalty; ``get_config``/``from_config``."""

    def __call__(self, x):  # pragma: no cover - subclasses define it
        raise NotImplementedError(f"{type(self).__name__} must define __call__(x)")

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} must define get_config()")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        return cls(**config)


class L1L2(Regularizer):
    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = as_float(l1, "l1", f"{type(self).__name__} regularizer", low=0.0)
        self.l2 = as_float(l2, "l2", f"{type(self).__name__} regularizer", low=0.0)

    def __call__(self, x):
        total = 0.0
        if self.l1:
            total = ops.add(total, ops.multiply(ops.sum(ops.abs(x)), self.l1))
        if self.l2:
            total = ops.add(total, ops.multiply(ops.sum(ops.square(x)), self.l2))
        return total

    def get_config(self) -> dict[str, float]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(abs(x))``; config ``{"l1": ...}``."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self) -> dict[str, float]:
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(square(x))``; config ``{"l2": ...}``."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self) -> dict[str, float]:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or columns (``"columns"``) of a rank-2 weight
    towards orthogonality: ``factor * 0.5 * sum(|off-diagonal cosines|) / (n (n-1) / 2)``
    over the n rows (columns), each L2-normalized."""

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        self.factor = as_float(factor, "factor", "OrthogonalRegularizer", low=0.0)
        if mode not in ("rows", "columns"):
            raise ValueError(
                f'OrthogonalRegularizer: mode must be one of "rows", "columns", got {mode!r}'
            )
        self.mode = mode

    def __call__(self, x):
        shape = tuple(ops.shape(x))
        if len(shape) != 2:
            raise ValueError(
                f"OrthogonalRegularizer: the weight must have rank 2, got shape {shape}"
            )
        if self.mode == "rows":
            unit = ops.l2_normalize(x, axis=1)
            product, n = ops.matmul(unit, ops.transpose(unit)), shape[0]
        else:
            unit = ops.l2_normalize(x, axis=0)
            product, n = ops.matmul(ops.transpose(unit), unit), shape[1]
        if n < 2:
            raise ValueError(
                f"OrthogonalRegularizer: a weight of shape {shape} has fewer than 2 "
                f"{self.mode} (mode={self.mode!r}): no pairs to make orthogonal"
            )
        off = ops.multiply(product, ops.subtract(1.0, ops.eye(n, dtype=ops.dtype_name(x))))
        pairs = n * (n - 1) / 2.0
        return ops.multiply(ops.sum(ops.abs(off)), self.factor * 0.5 / pairs)

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}


#: class name -> class, for configs (Keras 3's snake_case export names too)
CLASSES: dict[str, type[Regularizer]] = {
    "L1L2": L1L2,
    "L1": L1,
    "L2": L2,
    "OrthogonalRegularizer": OrthogonalRegularizer,
    "l1_l2": L1L2,
    "orthogonal_regularizer": OrthogonalRegularizer,
}


def l1(value: float = 0.01) -> L1:
    """Keras' ``regularizers.l1(0.01)``: an :class:`L1`."""
    return L1(value)


def l2(value: float = 0.01) -> L2:
    """Keras' ``regularizers.l2(0.01)``: an :class:`L2`."""
    return L2(value)


def orthogonal_regularizer(factor: float = 0.01, mode: str = "rows") -> OrthogonalRegularizer:
    return OrthogonalRegularizer(factor=factor, mode=mode)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:  # noqa: F811
    return L1L2(l1=l1, l2=l2)


def get(identifier: Any) -> Regularizer:
    if isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        cls = CLASSES.get(name) if isinstance(name, str) else None
        if cls is None and isinstance(name, str):
            from .saving.custom_objects import effective

            found = effective().get(name)  # a user's class, registered or in scope
            cls = found if isinstance(found, type) and issubclass(found, Regularizer) else None
        if cls is None:
            raise ValueError(
                f"unknown regularizer class {name!r}; known: L1, L2, L1L2, OrthogonalRegularizer"
            )
        cfg = dict(identifier.get("config") or {})
        if cls is L1L2:  # Keras 2 files may leave out a zero factor
            cfg = {"l1": cfg.pop("l1", 0.0), "l2": cfg.pop("l2", 0.0), **cfg}
        try:
            return cls.from_config(cfg)
        except TypeError as exc:
            raise ValueError(
                f"regularizer {name}: cannot use the config {cfg!r:.200} ({exc})"
            ) from None
    if isinstance(identifier, str) and identifier in ("l1", "l2", "l1_l2"):
        # the default factor, as tf.keras 2 and Keras 3 make them: L1, L2, L1L2
        makers: dict[str, Callable[[], L1L2]] = {"l1": L1, "l2": L2, "l1_l2": l1_l2}
        return makers[identifier]()
    raise ValueError(f"cannot interpret {identifier!r} as a regularizer")


def serialize(reg: Regularizer) -> dict[str, Any]:
    return {"class_name": type(reg).__name__, "config": reg.get_config()}


def deserialize(config: dict[str, Any]) -> Regularizer:
    """A regularizer from ``{"class_name": ..., "config": ...}`` (Keras 2's or 3's)."""
    if not isinstance(config, dict):
        raise ValueError(f"deserialize: expected a dict with class_name, got {config!r:.80}")
    return get(config)


def get_optional(identifier: Any) -> Regularizer | None:
    """``get``, with None meaning "no regularizer"."""
    return None if identifier is None else get(identifier)


def serialize_optional(reg: Regularizer | None) -> dict[str, Any] | None:
    return None if reg is None else serialize(reg)


def serialize_constraint(constraint: Any) -> Any:
    """Kept for older callers: see :func:`polykeras.constraints.serialize`."""
    from . import constraints

    return constraints.serialize(constraint)
