"""Weight constraints: projections applied to a variable after each optimizer update.

As in Keras, a layer's ``kernel_constraint=`` (``bias_constraint=``, ...) is applied to the
variable's new value after every training step: ``w = constraint(w)``.  The built-in ones,
with Keras' arguments and defaults (norms are taken along ``axis``, 0 by default, i.e. over
the inputs of each unit of a Dense kernel (in, units)):

- ``MaxNorm(max_value=2, axis=0)``: rescale so each norm is at most ``max_value``.
- ``NonNeg()``: negative values become 0.
- ``UnitNorm(axis=0)``: rescale to norm 1.
- ``MinMaxNorm(min_value=0.0, max_value=1.0, rate=1.0, axis=0)``: move each norm towards
  ``[min_value, max_value]``, by ``rate`` of the way.
- ``RadialConstraint()`` (tf.keras 2's; Keras 3 dropped it): a square 2-D convolution
  kernel ``(k, k, in, out)`` becomes, for each (in, out) pair, constant on each square
  ring around its centre (see the class for which entry each ring takes, and where odd
  sizes differ from tf.keras 2).

Rescaling divides by ``epsilon + norm`` (``polykeras.config.epsilon()``, 1e-7), as Keras
does.  Lower-case names (``max_norm``...) and Keras 1's (``maxnorm``, ``nonneg``,
``unitnorm``) name the same classes; any callable taking and returning an array works
too, but only the built-ins can be written to a file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import config, ops


class Constraint:
    """Base class: a stateless projection ``w -> w'`` (the base one changes nothing)."""

    def __call__(self, w: Any) -> Any:
        return w

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _axis(axis: Any, owner: str) -> Any:
    if isinstance(axis, (list, tuple)):
        if not axis or not all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
            raise ValueError(f"{owner}: axis must be an int or a list of ints, got {axis!r}")
        return list(axis)
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"{owner}: axis must be an int or a list of ints, got {axis!r}")
    return axis


def _number(value: Any, what: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{owner}: {what} must be a number, got {value!r}")
    return value


def _norms(w: Any, axis: Any) -> Any:
    axes = tuple(axis) if isinstance(axis, list) else axis
    return ops.sqrt(ops.sum(ops.square(w), axis=axes, keepdims=True))


class MaxNorm(Constraint):
    """Each weight vector along ``axis`` gets a norm of at most ``max_value``."""

    def __init__(self, max_value: float = 2, axis: Any = 0):
        self.max_value = _number(max_value, "max_value", "MaxNorm")
        self.axis = _axis(axis, "MaxNorm")

    def __call__(self, w: Any) -> Any:
        norms = _norms(w, self.axis)
        desired = ops.clip(norms, 0.0, float(self.max_value))
        return ops.multiply(w, ops.divide(desired, ops.add(norms, config.epsilon())))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Negative weights become zero."""

    def __call__(self, w: Any) -> Any:
        return ops.maximum(w, 0.0)


class UnitNorm(Constraint):
    """Each weight vector along ``axis`` gets norm 1."""

    def __init__(self, axis: Any = 0):
        self.axis = _axis(axis, "UnitNorm")

    def __call__(self, w: Any) -> Any:
        return ops.divide(w, ops.add(_norms(w, self.axis), config.epsilon()))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Each norm along ``axis`` moves to ``rate * clip(norm, min, max) + (1 - rate) * norm``."""

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Any = 0
    ):
        self.min_value = _number(min_value, "min_value", "MinMaxNorm")
        self.max_value = _number(max_value, "max_value", "MinMaxNorm")
        self.rate = _number(rate, "rate", "MinMaxNorm")
        self.axis = _axis(axis, "MinMaxNorm")
        if self.min_value > self.max_value:
            raise ValueError(
                f"MinMaxNorm: min_value ({min_value}) is greater than max_value ({max_value})"
            )

    def __call__(self, w: Any) -> Any:
        norms = _norms(w, self.axis)
        clipped = ops.clip(norms, float(self.min_value), float(self.max_value))
        desired = ops.add(
            ops.multiply(clipped, float(self.rate)), ops.multiply(norms, 1.0 - float(self.rate))
        )
        return ops.multiply(w, ops.divide(desired, ops.add(norms, config.epsilon())))

    def get_config(self) -> dict[str, Any]:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


class RadialConstraint(Constraint):
    """Makes each ``(k, k)`` slice of a 2-D convolution kernel ``(k, k, in, out)`` radially
    symmetric: constant on each square ring around the centre (the centre is one entry
    for odd k, a 2x2 block for even k).

    Each ring takes the value of its entry on the diagonal below and right of the centre:
    with ``c = k // 2``, ring d (the centre is ring 0) takes ``kernel[c+d, c+d]``, except
    the 2x2 centre of an even kernel, which takes ``kernel[c-1, c-1]``.  For even k these
    are tf.keras 2's numbers.  For odd k tf.keras 2 gives the centre the value at
    ``(c-1, c-1)``, which lies on the first ring, and each ring the value of the ring
    inside it, so applying it twice swaps values back; polykeras keeps every ring's own
    value, so the constraint is a projection (applying it again changes nothing).
    Kernels that are not square or not 4-D are refused."""

    def __call__(self, w: Any) -> Any:
        shape = tuple(ops.shape(w))
        if len(shape) != 4:
            raise ValueError(
                f"RadialConstraint: The weight tensor must have rank 4. Received weight "
                f"tensor with shape: {shape}"
            )
        k, width, n_in, n_out = shape
        if k != width:
            raise ValueError(
                f"RadialConstraint: the kernel must be square (rows == cols), got shape {shape}"
            )
        flat = ops.reshape(w, (k * k, n_in * n_out))
        source = ops.convert_to_tensor(_radial_sources(k))
        return ops.reshape(ops._take_rows(flat, source), shape)


def _radial_sources(k: int) -> np.ndarray:
    """For each of the k*k positions (row-major), the flat position whose value it takes."""
    c = k // 2
    index = np.arange(k)
    # each row's (and column's) ring: its distance from the centre row(s)
    ring = np.abs(index - c) if k % 2 else np.where(index < c, c - 1 - index, index - c)
    rings = np.maximum(ring[:, None], ring[None, :])
    # ring d takes diagonal entry c+d; the 2x2 centre of an even kernel entry c-1
    src = np.where(rings == 0, c - 1 + k % 2, c + rings)
    return (src * k + src).reshape(-1).astype(np.int64)


# Keras' function-style names and Keras 1's
max_norm = maxnorm = MaxNorm
non_neg = nonneg = NonNeg
unit_norm = unitnorm = UnitNorm
min_max_norm = MinMaxNorm
radial_constraint = RadialConstraint

CLASSES: dict[str, type[Constraint]] = {
    c.__name__: c for c in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm, RadialConstraint)
}
ALIASES: dict[str, type[Constraint]] = {
    "max_norm": MaxNorm,
    "maxnorm": MaxNorm,
    "non_neg": NonNeg,
    "nonneg": NonNeg,
    "unit_norm": UnitNorm,
    "unitnorm": UnitNorm,
    "min_max_norm": MinMaxNorm,
    "radial_constraint": RadialConstraint,
}
# Keras 1 spelled MaxNorm's max_value ``m``
_KERAS1_ARGS = {"m": "max_value"}


def _valid_names() -> str:
    return ", ".join(sorted(CLASSES) + sorted(ALIASES))


def _lookup(name: Any) -> type[Constraint]:
    cls = CLASSES.get(name) if isinstance(name, str) else None
    if cls is None and isinstance(name, str):
        cls = ALIASES.get(name) or ALIASES.get(name.lower())
    if cls is None:
        raise ValueError(
            f"Unknown constraint: {name!r}. Valid constraints are: "
            f"{_valid_names()} (or any callable)"
        )
    return cls


def deserialize(config: dict[str, Any]) -> Constraint:
    """A constraint from ``{"class_name": ..., "config": {...}}`` (Keras 2/3) or Keras 1's
    ``{"name": "MaxNorm", "m": 2, "axis": 0}``."""
    if not isinstance(config, dict):
        raise ValueError(f"a constraint config must be a dict, got {config!r:.100}")
    if "class_name" in config:
        cls = _lookup(config["class_name"])
        cfg = config.get("config") or {}
        if not isinstance(cfg, dict):
            raise ValueError(
                f"the config of constraint {config['class_name']!r} must be a "
                f"dict, got {cfg!r:.100}"
            )
        cfg = dict(cfg)
    elif "name" in config:  # Keras 1
        cls = _lookup(config["name"])
        cfg = {_KERAS1_ARGS.get(k, k): v for k, v in config.items() if k != "name"}
    else:
        raise ValueError(f"cannot read the constraint {config!r:.200}: it has no class_name")
    try:
        return cls.from_config(cfg)
    except TypeError as exc:
        raise ValueError(f"constraint {cls.__name__}: bad config {cfg!r:.200} ({exc})") from None


def get(identifier: Any) -> Any:
    """A constraint from None, a name, a config dict, a Constraint or any callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Constraint):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(
        f"Could not interpret constraint identifier: {identifier!r:.100}. "
        f"Expected None, a name ({_valid_names()}), a config dict or a callable"
    )


def serialize(constraint: Any) -> dict[str, Any] | None:
    """``{"class_name": "MaxNorm", "config": {...}}`` as Keras writes it (None stays None)."""
    if constraint is None:
        return None
    if (
        isinstance(constraint, Constraint)
        and type(constraint).__name__ in CLASSES
        and CLASSES[type(constraint).__name__] is type(constraint)
    ):
        return {"class_name": type(constraint).__name__, "config": constraint.get_config()}
    raise ValueError(
        f"the constraint {constraint!r:.100} cannot be serialized: polykeras "
        "writes no code to files; use a built-in constraint "
        f"({', '.join(sorted(CLASSES))}) or drop it before saving the "
        "architecture"
    )


__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "RadialConstraint",
    "UnitNorm",
    "deserialize",
    "get",
    "max_norm",
    "maxnorm",
    "min_max_norm",
    "non_neg",
    "nonneg",
    "radial_constraint",
    "serialize",
    "unit_norm",
    "unitnorm",
]
