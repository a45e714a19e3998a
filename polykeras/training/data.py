"""Turning user data (arrays, lists, dicts by name) into checked NumPy arrays.

Data can also be an object with a ``__polykeras_data__(spec)`` method: the model calls it
with a :class:`DataSpec` describing the input or target it feeds and uses the NumPy array
it returns.  The conformance runner binds the guides' free data names (``data``,
``labels``...) to such objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.base_layer import is_symbolic
from ..utils import as_int as _as_int


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
        raise DataError(
            f"{role} {name!r} is {_describe(obj)}, which holds no data. Pass "
            "NumPy arrays (or lists of them) as data, not the tensors used to "
            "build the model."
        )
    try:
        arr = np.asarray(obj)
    except Exception as exc:
        raise DataError(f"{role} {name!r} could not be turned into an array: {_why(exc)}") from None
    if arr.dtype == object or arr.dtype.kind in "USV":
        if arr.dtype == object and arr.ndim == 0:
            from .batches import EXPECTED_DATA

            raise DataError(
                f"{role} {name!r} got {_describe(obj)} ({obj!r:.80}), which is not data: "
                f"{EXPECTED_DATA}"
            )
        raise DataError(f"{role} {name!r} has dtype {arr.dtype}; expected numbers")
    return arr


def _why(exc: Exception) -> str:
    """NumPy's reason an object is no array, in the user's terms for ragged lists."""
    text = str(exc)
    if "inhomogeneous" in text or "setting an array element with a sequence" in text:
        return (
            "it is ragged (nested lists or arrays of different lengths); every sample "
            f"must have the same shape (NumPy: {text})"
        )
    return text


def _sample_count(obj: Any) -> int | None:
    """The first dimension of array-like ``obj`` (None for scalars, lazy or unreadable data:
    the checks of each array name the problem)."""
    if _is_lazy(obj) or is_symbolic(obj):
        return None
    try:
        arr = np.asarray(obj)
    except Exception:
        return None
    return arr.shape[0] if arr.ndim > 0 else None


def _overflows(arr: np.ndarray, dtype: Any) -> bool:
    """Whether finite ``arr`` holds values that ``dtype`` (a float type) cannot hold."""
    if arr.dtype.kind != "f" or np.dtype(dtype).kind != "f" or not arr.size:
        return False
    if np.dtype(dtype).itemsize >= arr.dtype.itemsize:  # as wide: every finite value fits
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        return not bool(np.all(np.isfinite(arr.astype(dtype))))


def check_finite(arr: np.ndarray, dtype: Any, where: str) -> np.ndarray:
    """``arr`` cast to ``dtype``, or a DataError naming ``where`` if it holds NaN or
    infinite values, or values too large for ``dtype`` (finite in float64, infinite in
    float32): the check runs on what the model will see."""
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataError(f"{where} contains NaN or infinite values")
    if _overflows(arr, dtype):
        limit = float(np.finfo(np.dtype(dtype)).max)
        raise DataError(
            f"{where} has values that overflow {np.dtype(dtype).name} (largest magnitude "
            f"{float(np.max(np.abs(arr))):.3g}, the most {np.dtype(dtype).name} holds is "
            f"{limit:.3g}): they would become infinite; rescale the data"
        )
    return arr.astype(dtype, copy=False)


def _split(model: Any, data: Any, names: list[str], role: str, what: str) -> list[Any]:
    """Data as a list in the order of ``names`` (from one array, a list or a dict)."""
    if isinstance(data, dict):
        unknown = [k for k in data if k not in names]
        if unknown:
            raise DataError(
                f"Unknown entries in {what} dictionary: {unknown}. Only expected "
                f"the following keys: {names}"
            )
        missing = [n for n in names if n not in data]
        if missing:
            raise DataError(f"No data provided for {missing}. Need data for each key in: {names}")
        return [data[n] for n in names]
    if isinstance(data, (list, tuple)):
        items = list(data)
        if (
            len(names) == 1
            and len(items) != 1
            and not any(isinstance(i, np.ndarray) or _is_lazy(i) or is_symbolic(i) for i in items)
        ):
            return [data]  # a plain nested list is one array
        if len(items) != len(names):
            raise DataError(
                f"model {model.name} expects {len(names)} {what} array(s) "
                f"({', '.join(names)}), but received {len(items)}"
            )
        return items
    if len(names) != 1:
        raise DataError(
            f"model {model.name} has {len(names)} {what}s ({', '.join(names)}); "
            f"pass a list of {len(names)} arrays or a dict keyed by name, not a "
            f"single {_describe(data)}"
        )
    return [data]


def _materialize(items: list, specs: list[DataSpec]) -> list[np.ndarray]:
    known = [k for k in (_sample_count(i) for i in items) if k is not None]
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
        raise DataError(
            f"Error when checking input: expected {spec.name} to have "
            f"{len(expected)} dimensions (shape {expected}), but got array with "
            f"shape {arr.shape}"
        )
    for want, got in zip(expected[1:], arr.shape[1:]):
        if want is not None and want != got:
            raise DataError(
                f"Error when checking input: expected {spec.name} to have shape "
                f"{expected[1:]} but got array with shape {arr.shape[1:]}"
            )
    if spec.dtype.startswith("int") or "int_range" in spec.hints:
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise DataError(
                    f"input {spec.name} has dtype {spec.dtype} (e.g. indices for "
                    f"an Embedding), but the data are {arr.dtype} with fractional "
                    "or non-finite values"
                )
        elif arr.dtype.kind not in "iub":
            raise DataError(f"input {spec.name} expects integers, got {arr.dtype}")
        rng = spec.hints.get("int_range")
        if rng is not None and arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < rng[0] or hi >= rng[1]:
                raise DataError(
                    f"input {spec.name} feeds an Embedding with input_dim "
                    f"{rng[1]}: indices must lie in [{rng[0]}, {rng[1]}), but the "
                    f"data range from {lo} to {hi}"
                )
        return arr.astype(spec.dtype, copy=False)
    if arr.dtype.kind not in "fiub":
        raise DataError(f"input {spec.name} expects numbers, got {arr.dtype}")
    return check_finite(arr, spec.dtype, f"input {spec.name}")


def check_verbose(verbose: Any, owner: str) -> int:
    """``verbose``: 0 (silent), 1 (progress bar) or 2 (one line per epoch)."""
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    try:
        value = _as_int(verbose, "verbose", owner, minimum=0)
    except ValueError:
        value = -1
    if value not in (0, 1, 2):
        raise ValueError(f"{owner}: verbose must be 0, 1 or 2, got {verbose!r}")
    return value


def check_steps(steps: Any, what: str, owner: str) -> int | None:
    """A number of batches: None (all) or a positive integer."""
    return None if steps is None else _as_int(steps, what, owner)


def predict_arrays(
    model: Any,
    x: Any,
    batch_size: int | None = None,
    verbose: int = 0,
    steps: Any = None,
    distributed: bool = True,
) -> Any:
    """Outputs for all of ``x``, or for its first ``steps`` batches (as Keras 3 counts).
    Data parallel (``distributed``, under torchrun): each rank predicts its contiguous part
    of the samples and every rank gets all the outputs, in order."""
    from .. import backend as _backend
    from .. import distribute

    from ..utils import as_int

    if batch_size is None:
        batch_size = 32
    try:
        batch_size = as_int(batch_size, "batch_size", "predict")
    except ValueError as exc:
        raise DataError(str(exc)) from None
    steps = check_steps(steps, "steps", "predict")
    verbose = check_verbose(verbose, "predict")
    arrays = standardize_inputs(model, x)
    n = check_same_length(arrays, "input", model.input_names)
    if steps is not None and int(steps) * batch_size < n:
        arrays = [a[: int(steps) * batch_size] for a in arrays]
        n = int(steps) * batch_size
    B = _backend.current()
    dp = distribute.distribution() if distributed else None
    if dp is not None and dp.world_size == 1:
        dp = None
    total, lo = n, 0
    if dp is not None:  # this rank's rows: [lo, lo + n)
        part = np.array_split(np.arange(total), dp.world_size)[dp.rank]
        lo, n = (int(part[0]) if len(part) else 0), len(part)
        shapes_from = [a[:1] for a in arrays]  # a rank with no rows learns the output shapes
        arrays = [a[lo : lo + n] for a in arrays]
        verbose = verbose if dp.is_chief else 0
    bar = None
    if verbose == 1 and n:
        from .progress import Progbar

        bar = Progbar(n, verbose=1)
    chunks: list[list[np.ndarray]] = []
    for start in range(0, n, batch_size):
        batch = [B.asarray(a[start : start + batch_size]) for a in arrays]
        outs = model._run_graph(batch, training=False)
        chunks.append([B.to_numpy(o) for o in outs])
        if bar is not None:
            bar.update(min(start + batch_size, n))
    if dp is not None:
        if not chunks and total:
            probe = model._run_graph([B.asarray(a) for a in shapes_from], training=False)
            chunks_like = [[B.to_numpy(o)[:0] for o in probe]]
            return _gather_rows(dp, B, model, chunks_like, lo, 0, total)
        return _gather_rows(dp, B, model, chunks, lo, n, total)
    if not chunks:
        outs = [
            np.zeros((0,) + tuple(d or 0 for d in t.shape[1:]), dtype=t.dtype)
            for t in model.outputs
        ]
    else:
        outs = [np.concatenate([c[i] for c in chunks], axis=0) for i in range(len(model.outputs))]
    return outs[0] if len(outs) == 1 else outs


def _gather_rows(dp: Any, B: Any, model: Any, chunks: list, lo: int, n: int, total: int) -> Any:
    """Every rank's predicted rows, in order, on every rank: each rank writes its rows into
    zeros of the full size and one all-reduce sums them (each row is non-zero on one rank
    only, so the sum is exact)."""
    outs = []
    for i in range(len(model.outputs)):
        tail = tuple(int(d) for d in chunks[0][i].shape[1:])
        full = np.zeros((total,) + tail, dtype=np.float64)
        full[lo : lo + n] = np.concatenate([c[i] for c in chunks], axis=0)
        summed = dp.all_reduce_sum(B, B.asarray(full.reshape(-1)))
        dtype = chunks[0][i].dtype
        outs.append(np.asarray(B.to_numpy(summed)).reshape(full.shape).astype(dtype))
    return outs[0] if len(outs) == 1 else outs


def predict_batches(model: Any, data: Any, steps: Any, pool: Any, verbose: int = 0) -> Any:
    """Outputs for every batch that ``data`` (a generator, Sequence, DataLoader) yields, or
    its first ``steps``, concatenated."""
    from .batches import BatchSource
    from .progress import Progbar

    from .. import distribute

    verbose = check_verbose(verbose, "predict")
    source = BatchSource(data, "predict")
    n_steps = source.steps(steps, "steps")
    dp = distribute.distribution()
    if dp is not None and dp.world_size == 1:
        dp = None
    if dp is not None:
        verbose = verbose if dp.is_chief else 0
    bar = Progbar(n_steps, verbose=1) if verbose == 1 else None
    epoch_batches = source.epoch(n_steps, False, pool)
    try:
        if dp is not None:
            return _predict_batches_dp(model, source, epoch_batches, bar, dp)
        chunks = _predict_chunks(model, source, epoch_batches, bar)
    finally:
        epoch_batches.close()
    source.end_epoch()
    if not chunks:
        raise DataError(f"predict: {source.what} yielded no batches")
    if bar is not None and bar.target is None:
        bar.finish()
    outs = [np.concatenate([c[i] for c in chunks], axis=0) for i in range(len(model.outputs))]
    return outs[0] if len(outs) == 1 else outs


def _predict_chunks(model: Any, source: Any, epoch_batches: Any, bar: Any) -> list:
    from .. import backend as _backend

    B = _backend.current()
    chunks: list[list[np.ndarray]] = []
    for pos, raw in epoch_batches:
        x = split_predict_batch(model, raw)
        try:
            arrays = standardize_inputs(model, x)
            check_same_length(arrays, "input", model.input_names)
        except DataError as exc:
            raise DataError(f"predict: in batch {pos} from {source.what}: {exc}") from None
        outs = model._run_graph([B.asarray(a) for a in arrays], training=False)
        chunks.append([B.to_numpy(o) for o in outs])
        if bar is not None:
            bar.update(pos + 1)
    return chunks


def _predict_batches_dp(model: Any, source: Any, epoch_batches: Any, bar: Any, dp: Any) -> Any:
    """Data parallel: every rank reads every batch and predicts its contiguous part of it
    (as a global batch of arrays is split); every rank gets all the outputs, in order."""
    from .. import backend as _backend
    from .. import distribute

    B = _backend.current()
    mine: list[tuple[int, list[np.ndarray]]] = []  # (first row in the whole output, outputs)
    total = batches_read = fingerprint = 0
    probe: list[np.ndarray] | None = None  # one input row: the output shapes, for any rank
    for pos, raw in epoch_batches:
        x = split_predict_batch(model, raw)
        try:
            arrays = standardize_inputs(model, x)
            n = check_same_length(arrays, "input", model.input_names)
        except DataError as exc:
            raise DataError(f"predict: in batch {pos} from {source.what}: {exc}") from None
        fingerprint = distribute.batch_fingerprint([np.asarray([fingerprint]), *arrays])
        part = dp.shard(slice(0, n), n)
        if len(part):
            lo, hi = int(part[0]), int(part[-1]) + 1
            outs = model._run_graph([B.asarray(a[lo:hi]) for a in arrays], training=False)
            mine.append((total + lo, [np.asarray(B.to_numpy(o)) for o in outs]))
        elif probe is None and n:
            probe = [a[:1] for a in arrays]
        total += n
        batches_read += 1
        if bar is not None:
            bar.update(pos + 1)
    source.end_epoch()
    table, _ = dp.census(B, [batches_read, total, fingerprint])
    dp.check_same_stream(table, "predict", source.what)
    if not batches_read:
        raise DataError(f"predict: {source.what} yielded no batches")
    if bar is not None and bar.target is None:
        bar.finish()
    if not mine:  # this rank had no rows: it still learns the outputs' shapes and dtypes
        if probe is None:
            like = [
                np.zeros((0,) + tuple(d or 0 for d in t.shape[1:]), t.dtype) for t in model.outputs
            ]
        else:
            outs = model._run_graph([B.asarray(a) for a in probe], training=False)
            like = [np.asarray(B.to_numpy(o))[:0] for o in outs]
        mine = [(0, like)]
    results = []
    for i in range(len(model.outputs)):
        tail = mine[0][1][i].shape[1:]
        full = np.zeros((total,) + tail, dtype=np.float64)
        for start, outs in mine:
            full[start : start + len(outs[i])] = outs[i]
        summed = dp.all_reduce_sum(B, B.asarray(full.reshape(-1)))
        results.append(
            np.asarray(B.to_numpy(summed)).reshape(full.shape).astype(mine[0][1][i].dtype)
        )
    return results[0] if len(results) == 1 else results


def split_predict_batch(model: Any, raw: Any) -> Any:
    """A batch's inputs: the batch itself, or the first of a tuple ``(x,)``/``(x, y[, sw])``
    (a list, as a DataLoader yields, counts as such a tuple when the model does not take
    that many inputs)."""
    from .batches import to_host

    if isinstance(raw, tuple) and len(raw) in (1, 2, 3):
        return to_host(raw[0])
    if (
        isinstance(raw, list)
        and len(raw) in (2, 3)
        and len(model.input_names) != len(raw)
        and all(hasattr(v, "__array__") and not isinstance(v, list) for v in raw)
    ):
        return to_host(raw[0])
    return to_host(raw)


def check_same_length(arrays: list[np.ndarray], role: str, names: list[str]) -> int:
    lengths = {name: (a.shape[0] if a.ndim else 1) for name, a in zip(names, arrays)}
    if len(set(lengths.values())) > 1:
        raise DataError(
            f"All {role} arrays should have the same number of samples. Got "
            f"array shapes: {[a.shape for a in arrays]} ({lengths})"
        )
    return next(iter(lengths.values())) if lengths else 0


# -- targets and sample weights (training) ---------------------------------------------------
def _activation_name(layer: Any) -> str | None:
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    from .. import activations

    try:
        return activations.serialize(fn)
    except ValueError:
        return getattr(fn, "__name__", None)


def target_specs(
    model: Any, output_indices: list[int], loss_names: Sequence[str | None]
) -> list[DataSpec]:
    """One target DataSpec per trained output: shape and dtype of the output, with hints
    ``{"loss", "activation", "num_classes"}`` (sparse crossentropy targets are int32)."""
    specs = []
    for i, loss in zip(output_indices, loss_names):
        t = model.outputs[i]
        sparse = loss == "sparse_categorical_crossentropy"
        hints = {
            "loss": loss,
            "activation": _activation_name(model.output_layers[i]),
            "num_classes": t.shape[-1] if len(t.shape) > 1 else None,
        }
        specs.append(
            DataSpec(
                "target",
                model.output_names[i],
                t.shape,
                "int32" if sparse else t.dtype,
                hints=hints,
            )
        )
    return specs


def standardize_targets(
    model: Any, y: Any, specs: list[DataSpec], num_samples: int | None
) -> list[np.ndarray]:
    """Targets as checked NumPy arrays in the order of ``specs`` (array, list or dict)."""
    if y is None:
        raise DataError(
            f"model {model.name}: no target data given (y is None); fit and evaluate need targets"
        )
    names = [s.name for s in specs]
    items = _split(model, y, names, "target", "target")
    out = []
    for item, spec in zip(items, specs):
        if _is_lazy(item):
            spec.num_samples = num_samples
            item = item.__polykeras_data__(spec)
        out.append(check_target_array(_as_array(item, spec.role, spec.name), spec))
    return out


def _shape_mismatch(arr: np.ndarray, expected: tuple) -> bool:
    if arr.ndim != len(expected):
        return True
    return any(w is not None and w != g for w, g in zip(expected[1:], arr.shape[1:]))


def check_target_array(arr: np.ndarray, spec: DataSpec) -> np.ndarray:
    """Check one target against its output's shape and loss; return it in the right dtype."""
    loss = spec.hints.get("loss")
    out = tuple(spec.shape)
    where = f"target {spec.name!r} (loss {loss})"
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{where} has dtype {arr.dtype}; expected numbers")
    if arr.ndim == 0:
        raise DataError(f"{where} is a scalar; expected an array with one row per sample")
    if loss == "sparse_categorical_crossentropy":
        return _check_sparse_target(arr, spec, out, where)
    if arr.ndim == len(out) - 1 and out[-1] == 1:
        arr = arr.reshape(arr.shape + (1,))
    classes = out[-1] if len(out) > 1 else None
    if (
        loss == "categorical_crossentropy"
        and classes not in (None, 1)
        and (arr.ndim == len(out) - 1 or (arr.ndim == len(out) and arr.shape[-1] == 1))
    ):
        raise DataError(
            f"You are passing a target array of shape {arr.shape} for output {spec.name!r}, "
            f"which has {classes} classes, while using as loss `categorical_crossentropy`. "
            "`categorical_crossentropy` expects targets to be one-hot rows of shape "
            f"(samples, {classes}). If your targets are integer classes, convert them with "
            "`polykeras.utils.to_categorical(y, num_classes)`, or use the loss "
            "`sparse_categorical_crossentropy`, which expects integer targets."
        )
    if _shape_mismatch(arr, out):
        raise DataError(
            f"Error when checking target: expected {spec.name} to have shape "
            f"{out[1:]} (output shape {out}), but got array with shape "
            f"{arr.shape[1:]} (full shape {arr.shape})"
        )
    return check_finite(arr, spec.dtype, where)


def _check_sparse_target(arr: np.ndarray, spec: DataSpec, out: tuple, where: str) -> np.ndarray:
    classes = out[-1]
    want = out[:-1]
    if arr.ndim == len(out) and arr.shape[-1] == 1:
        arr = arr.reshape(arr.shape[:-1])
    if _shape_mismatch(arr, want):
        hint = ""
        if arr.ndim == len(out) and arr.shape[-1] == classes:
            hint = (
                " These look like one-hot rows: use the loss `categorical_crossentropy` for them."
            )
        raise DataError(
            f"{where} expects integer class labels of shape {want[1:] or '(n,)'} "
            f"per sample (or with a trailing 1) for output shape {out}, but got "
            f"an array of shape {arr.shape}.{hint}"
        )
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise DataError(
                f"{where} expects integer class labels, but the data are "
                f"{arr.dtype} with fractional or non-finite values"
            )
    if arr.size and classes is not None:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= classes:
            raise DataError(
                f"{where}: class labels must lie in [0, {classes}) for output "
                f"{spec.name} with {classes} units, but range from {lo} to {hi}"
            )
    return arr.astype("int32", copy=False)


def check_sample_counts(
    inputs: list[np.ndarray],
    targets: list[np.ndarray],
    input_names: list[str],
    target_names: list[str],
) -> int:
    """The common number of samples; an error naming every array's count otherwise."""
    n_in = check_same_length(inputs, "input", input_names)
    if targets:
        n_out = check_same_length(targets, "target", target_names)
        if n_in != n_out:
            raise DataError(
                f"Input arrays should have the same number of samples as target "
                f"arrays. Found {n_in} input samples and {n_out} target samples "
                f"(inputs {[a.shape for a in inputs]}, targets "
                f"{[a.shape for a in targets]})"
            )
    return n_in


def standardize_sample_weights(
    weights: Any,
    names: list[str],
    num_samples: int,
    temporal: list[bool],
    what: str = "sample_weight",
    float_dtype: str = "float32",
) -> list[np.ndarray | None]:
    """Per-output sample weights (None where not given) as checked float arrays (finite,
    non-negative, and finite as ``float_dtype``, the model's float type)."""
    if weights is None:
        return [None] * len(names)
    if isinstance(weights, dict):
        unknown = [k for k in weights if k not in names]
        if unknown:
            raise DataError(
                f"Unknown entries in {what} dictionary: {unknown}. Only expected "
                f"the following keys: {names}"
            )
        items = [weights.get(n) for n in names]
    elif isinstance(weights, (list, tuple)) and len(names) > 1:
        if len(weights) != len(names):
            raise DataError(
                f"{what} must have one entry per output ({len(names)}: "
                f"{', '.join(names)}), got {len(weights)}"
            )
        items = list(weights)
    else:
        items = [weights] * len(names)
    out: list[np.ndarray | None] = []
    for item, name, temp in zip(items, names, temporal):
        if item is None:
            out.append(None)
            continue
        arr = _as_array(item, what, name)
        want = 2 if temp else 1
        if arr.ndim != want:
            extra = (
                " (sample_weight_mode='temporal' needs (samples, timesteps))"
                if temp
                else " (use sample_weight_mode='temporal' in compile for 2-D weights)"
            )
            raise DataError(
                f"{what} for output {name} must be {want}-D, got shape {arr.shape}{extra}"
            )
        if arr.shape[0] != num_samples:
            raise DataError(
                f"{what} for output {name} has {arr.shape[0]} entries, but the "
                f"data have {num_samples} samples"
            )
        if arr.dtype.kind not in "fiub":
            raise DataError(f"{what} for output {name} has dtype {arr.dtype}; expected numbers")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise DataError(f"{what} for output {name} must be finite and non-negative")
        check_finite(arr, float_dtype, f"{what} for output {name}")
        out.append(arr.astype("float64", copy=False))
    return out


def check_class_weight(cw: Any, where: str, float_dtype: str = "float32") -> dict[int, float]:
    """``{class index: weight}`` checked as ``sample_weight`` is: keys integral class
    indices (>= 0), weights finite, non-negative numbers that ``float_dtype`` holds."""
    from ..utils import as_float, as_int

    if not isinstance(cw, dict):
        raise DataError(f"{where} must be a dict {{class index: weight}}, got {type(cw).__name__}")
    table: dict[int, float] = {}
    limit = float(np.finfo(np.dtype(float_dtype)).max)
    for key, value in cw.items():
        try:
            index = as_int(key, f"the key {key!r}", where, minimum=0)
        except ValueError:
            raise DataError(
                f"{where}: the key {key!r} is not a class index; keys must be integers "
                ">= 0 (the class indices of the targets)"
            ) from None
        if index in table:
            raise DataError(f"{where}: class {index} is given twice (as the key {key!r})")
        try:
            weight = as_float(value, f"the weight of class {key!r}", where, low=0.0)
        except ValueError as exc:
            raise DataError(f"{exc} (weights must be finite and non-negative)") from None
        if weight > limit:
            raise DataError(
                f"{where}: the weight of class {key!r} ({weight:.3g}) overflows "
                f"{np.dtype(float_dtype).name} (at most {limit:.3g})"
            )
        table[index] = weight
    return table


def class_weights_to_sample_weights(
    class_weight: Any, targets: list[np.ndarray], names: list[str], float_dtype: str = "float32"
) -> list[np.ndarray | None]:
    """Per-sample weights from ``class_weight`` ({class: weight}, or by output name)."""
    if class_weight is None:
        return [None] * len(names)
    if not isinstance(class_weight, dict):
        raise DataError(
            f"class_weight must be a dict {{class index: weight}}, got "
            f"{type(class_weight).__name__}"
        )
    per_output = {k: class_weight[k] for k in class_weight if k in names}
    if per_output and len(per_output) == len(class_weight):
        maps = [per_output.get(n) for n in names]
        wheres = [f"class_weight[{n!r}]" for n in names]
    else:
        maps = [class_weight] * len(names)
        wheres = ["class_weight"] * len(names)
    out: list[np.ndarray | None] = []
    for cw, y, name, where in zip(maps, targets, names, wheres):
        if cw is None:
            out.append(None)
            continue
        table = check_class_weight(cw, where, float_dtype)
        if y.ndim >= 2 and y.shape[-1] > 1:
            classes = np.argmax(y, axis=-1)
        else:
            classes = np.round(y.reshape(y.shape[0], -1)[:, 0]).astype(np.int64)
        classes = classes.reshape(classes.shape[0], -1)[:, 0] if classes.ndim > 1 else classes
        missing = sorted(set(np.unique(classes).tolist()) - set(table))
        if missing:
            raise DataError(
                f"`class_weight` must contain all classes in the data. The classes "
                f"{missing} exist in the data of output {name} but not in "
                "`class_weight`."
            )
        out.append(np.array([table[int(c)] for c in classes], dtype="float64"))
    return out
