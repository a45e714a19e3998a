"""Turning user data (arrays, lists, dicts by name) into checked NumPy arrays.

Data can also be an object with a ``__polykeras_data__(spec)`` method: the model calls it
with a :class:`DataSpec` describing the input or target it feeds and uses the NumPy array
it returns.  The conformance runner binds the guides' free data names (``data``,
``labels``...) to such objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.base_layer import is_symbolic


class DataError(ValueError):
    """Data given to a model does not fit it; nothing was changed."""


@dataclass
class DataSpec:
    """What a model expects for one input or target."""

    role: str  # "input" or "target"
    name: str  # the input or output layer's name
    shape: tuple  # with None for the batch dimension
    dtype: str
    num_samples: int | None = None  # fixed by other arrays given in the same call
    hints: dict[str, Any] = field(default_factory=dict)  # e.g. {"int_range": (0, 10000)}


def _describe(obj: Any) -> str:
    if is_symbolic(obj):
        return f"the symbolic tensor {obj.name} (shape {obj.shape})"
    return type(obj).__name__


def _is_lazy(obj: Any) -> bool:
    return hasattr(obj, "__polykeras_data__")


def _as_array(obj: Any, role: str, name: str) -> np.ndarray:
    if is_symbolic(obj):
        raise DataError(f"{role} {name!r} is {_describe(obj)}, which holds no data. Pass "
                        "NumPy arrays (or lists of them) as data, not the tensors used to "
                        "build the model.")
    try:
        arr = np.asarray(obj)
    except Exception as exc:
        raise DataError(f"{role} {name!r} could not be turned into an array: {exc}") from None
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise DataError(f"{role} {name!r} has dtype {arr.dtype}; expected numbers")
    return arr


def _split(model: Any, data: Any, names: list[str], role: str, what: str) -> list[Any]:
    """Data as a list in the order of ``names`` (from one array, a list or a dict)."""
    if isinstance(data, dict):
        unknown = [k for k in data if k not in names]
        if unknown:
            raise DataError(f"Unknown entries in {what} dictionary: {unknown}. Only expected "
                            f"the following keys: {names}")
        missing = [n for n in names if n not in data]
        if missing:
            raise DataError(f"No data provided for {missing}. Need data for each key in: "
                            f"{names}")
        return [data[n] for n in names]
    if isinstance(data, (list, tuple)):
        items = list(data)
        if len(names) == 1 and len(items) != 1 and not any(
                isinstance(i, np.ndarray) or _is_lazy(i) or is_symbolic(i) for i in items):
            return [data]  # a plain nested list is one array
        if len(items) != len(names):
            raise DataError(f"model {model.name} expects {len(names)} {what} array(s) "
                            f"({', '.join(names)}), but received {len(items)}")
        return items
    if len(names) != 1:
        raise DataError(f"model {model.name} has {len(names)} {what}s ({', '.join(names)}); "
                        f"pass a list of {len(names)} arrays or a dict keyed by name, not a "
                        f"single {_describe(data)}")
    return [data]


def _materialize(items: list, specs: list[DataSpec]) -> list[np.ndarray]:
    known = [np.asarray(i).shape[0] for i in items
             if not _is_lazy(i) and not is_symbolic(i) and np.ndim(i) > 0]
    n = known[0] if known else None
    out = []
    for item, spec in zip(items, specs):
        if _is_lazy(item):
            spec.num_samples = n
            item = item.__polykeras_data__(spec)
        out.append(_as_array(item, spec.role, spec.name))
    return out


def input_specs(model: Any) -> list[DataSpec]:
    specs = []
    for t, name in zip(model.inputs, model.input_names):
        hints = {}
        for node in t._keras_history[0]._outbound_nodes:
            rng = getattr(node.outbound_layer, "index_range", None)
            if rng is not None:
                hints["int_range"] = rng
        specs.append(DataSpec("input", name, t.shape, t.dtype, hints=hints))
    return specs


def standardize_inputs(model: Any, x: Any) -> list[np.ndarray]:
    if x is None:
        raise DataError(f"model {model.name}: no input data given (x is None)")
    build = getattr(model, "_build_from_data", None)
    if build is not None:
        build(x)
    specs = input_specs(model)
    arrays = _materialize(_split(model, x, model.input_names, "input", "input"), specs)
    return [check_input_array(a, s, model) for a, s in zip(arrays, specs)]


def check_input_array(arr: np.ndarray, spec: DataSpec, model: Any) -> np.ndarray:
    expected = spec.shape
    if arr.ndim == len(expected) - 1 and len(expected) == 2 and expected[1] == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != len(expected):
        raise DataError(f"Error when checking input: expected {spec.name} to have "
                        f"{len(expected)} dimensions (shape {expected}), but got array with "
                        f"shape {arr.shape}")
    for want, got in zip(expected[1:], arr.shape[1:]):
        if want is not None and want != got:
            raise DataError(f"Error when checking input: expected {spec.name} to have shape "
                            f"{expected[1:]} but got array with shape {arr.shape[1:]}")
    if spec.dtype.startswith("int") or "int_range" in spec.hints:
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise DataError(f"input {spec.name} has dtype {spec.dtype} (e.g. indices for "
                                f"an Embedding), but the data are {arr.dtype} with fractional "
                                "or non-finite values")
        elif arr.dtype.kind not in "iub":
            raise DataError(f"input {spec.name} expects integers, got {arr.dtype}")
        rng = spec.hints.get("int_range")
        if rng is not None and arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < rng[0] or hi >= rng[1]:
                raise DataError(f"input {spec.name} feeds an Embedding with input_dim "
                                f"{rng[1]}: indices must lie in [{rng[0]}, {rng[1]}), but the "
                                f"data range from {lo} to {hi}")
        return arr.astype(spec.dtype, copy=False)
    if arr.dtype.kind not in "fiub":
        raise DataError(f"input {spec.name} expects numbers, got {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataError(f"input {spec.name} contains NaN or infinite values")
    return arr.astype(spec.dtype, copy=False)


def predict_arrays(model: Any, x: Any, batch_size: int | None = None, verbose: int = 0) -> Any:
    from .. import backend as _backend

    if batch_size is None:
        batch_size = 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise DataError(f"batch_size must be a positive int, got {batch_size!r}")
    arrays = standardize_inputs(model, x)
    n = check_same_length(arrays, "input", model.input_names)
    B = _backend.current()
    chunks: list[list[np.ndarray]] = []
    for start in range(0, n, batch_size):
        batch = [B.asarray(a[start:start + batch_size]) for a in arrays]
        outs = model._run_graph(batch, training=False)
        chunks.append([B.to_numpy(o) for o in outs])
    if not chunks:
        outs = [np.zeros((0,) + tuple(d or 0 for d in t.shape[1:]), dtype=t.dtype)
                for t in model.outputs]
    else:
        outs = [np.concatenate([c[i] for c in chunks], axis=0)
                for i in range(len(model.outputs))]
    return outs[0] if len(outs) == 1 else outs


def check_same_length(arrays: list[np.ndarray], role: str, names: list[str]) -> int:
    lengths = {name: (a.shape[0] if a.ndim else 1) for name, a in zip(names, arrays)}
    if len(set(lengths.values())) > 1:
        raise DataError(f"All {role} arrays should have the same number of samples. Got "
                        f"array shapes: {[a.shape for a in arrays]} ({lengths})")
    return next(iter(lengths.values())) if lengths else 0
