"""Lazy random data for a guide's free names (``data``, ``labels``...).

A :class:`FreeData` object is what the name is bound to.  Given to fit/evaluate/predict, it
is asked for an array through ``__polykeras_data__(spec)`` and answers from its
:class:`DataPool`, which makes arrays by :func:`synthesize` (the rule is in the package
docstring) and remembers them, so the same name asked with the same spec gets the same
array.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np


def _name_of(obj: Any) -> str:
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj.lower()
    name = getattr(obj, "__name__", None) or type(obj).__name__
    return name.lower()


def target_kind(hints: dict[str, Any]) -> str:
    """ "binary", "onehot", "sparse" or "normal", by the loss hint first, then activation."""
    loss = _name_of(hints.get("loss")).replace("_", "")
    if "sparsecategorical" in loss:
        return "sparse"
    if "categoricalcrossentropy" in loss:
        return "onehot"
    if "binarycrossentropy" in loss:
        return "binary"
    activation = _name_of(hints.get("activation"))
    if activation == "softmax":
        return "onehot"
    if activation == "sigmoid":
        return "binary"
    return "normal"


def synthesize(
    spec: Any,
    rng: np.random.Generator,
    num_samples: int = 64,
    int_range: tuple[int, int] = (0, 1000),
    unknown_dim: int = 8,
) -> np.ndarray:
    """A random array for ``spec`` (a polykeras.training.data.DataSpec)."""
    n = spec.num_samples if spec.num_samples is not None else num_samples
    dims = tuple(unknown_dim if d is None else int(d) for d in tuple(spec.shape)[1:])
    shape = (n,) + dims
    dtype = np.dtype(spec.dtype or "float32")
    hints = dict(spec.hints or {})
    if spec.role == "target":
        kind = target_kind(hints)
        float_dtype = dtype if dtype.kind == "f" else np.dtype("float32")
        if kind == "binary":
            return rng.integers(0, 2, size=shape).astype(float_dtype)
        if kind == "onehot":
            k = dims[-1] if dims else 1
            idx = rng.integers(0, k, size=shape[:-1] if dims else shape)
            return np.eye(k, dtype=float_dtype)[idx].reshape(shape)
        if kind == "sparse":
            k = int(hints.get("num_classes") or (dims[-1] if dims else 2))
            label_shape = shape[:-1] + (1,) if dims and dims[-1] == k else shape
            return rng.integers(0, k, size=label_shape).astype("int32")
        return rng.standard_normal(shape).astype(float_dtype)
    if dtype.kind in "iu" or "int_range" in hints:
        lo, hi = hints.get("int_range", int_range)
        return rng.integers(int(lo), int(hi), size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    return rng.standard_normal(shape).astype(dtype)


def _spec_key(name: str, spec: Any) -> str:
    hints = {
        k: _name_of(v) if k in ("loss", "activation") else v
        for k, v in sorted(dict(spec.hints or {}).items())
    }
    return repr((name, spec.role, tuple(spec.shape), str(spec.dtype), spec.num_samples, hints))


class DataPool:
    """Makes and remembers the arrays of one document run."""

    def __init__(
        self,
        seed: int = 1234,
        num_samples: int = 64,
        int_range: tuple[int, int] = (0, 1000),
        unknown_dim: int = 8,
    ):
        self.seed = int(seed)
        self.num_samples = int(num_samples)
        self.int_range = (int(int_range[0]), int(int_range[1]))
        self.unknown_dim = int(unknown_dim)
        self.made: dict[str, np.ndarray] = {}
        self.log: list[tuple[str, str, tuple, str]] = []  # (name, role, shape, dtype) made

    def array(self, name: str, spec: Any) -> np.ndarray:
        key = _spec_key(name, spec)
        if key not in self.made:
            rng = np.random.default_rng([self.seed, zlib.crc32(key.encode())])
            arr = synthesize(spec, rng, self.num_samples, self.int_range, self.unknown_dim)
            self.made[key] = arr
            self.log.append((name, spec.role, arr.shape, str(arr.dtype)))
        return self.made[key]

    def bindings(self, names: list[str]) -> dict[str, FreeData]:
        return {n: FreeData(n, self) for n in names}


class FreeData:
    """A free data name of a guide, answering the lazy-data protocol."""

    def __init__(self, name: str, pool: DataPool):
        self.name = name
        self.pool = pool

    def __polykeras_data__(self, spec: Any) -> np.ndarray:
        return self.pool.array(self.name, spec)

    def __repr__(self) -> str:
        return f"<conformance data {self.name!r}: random, shaped for the model it feeds>"
