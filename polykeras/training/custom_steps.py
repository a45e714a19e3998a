"""Training steps users write: ``train_step``, ``test_step``, ``predict_step`` (Keras 3).

When a model class overrides ``train_step(data)``, ``fit`` calls it once per batch with
``data`` packed as Keras packs it (``x``; ``(x, y)``; ``(x, y, sample_weight)``), and the
step returns a dict of logs.  As in Keras 3, the logs of an epoch are those the last step
returned (the model's metrics are stateful: reset at the start of each epoch, each step
updates them and returns their running results).  ``test_step`` serves ``evaluate`` and
validation the same way; ``predict_step(data)`` returns the predictions of a batch.

A step gets its gradients from :class:`polykeras.GradientTape` (TensorFlow's spelling,
backed by the core's tape on every backend); ``model.compute_loss``, ``model.metrics``
(a ``loss`` tracker, the compiled metrics, and the metric objects the model keeps in its
attributes), ``model.compute_metrics``, ``compiled_loss`` and ``compiled_metrics`` (tf.keras
2's spellings) behave as in Keras.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import autodiff, ops
from .. import backend as _backend
from ..engine import base_layer, tracking
from ..engine.subclassing import defined_outside


def overrides(model: Any, name: str) -> bool:
    """Whether the model's class (written outside polykeras) defines ``name``."""
    return defined_outside(type(model), name)


# -- data packing (Keras' pack/unpack_x_y_sample_weight) -----------------------------------------
def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """``x`` alone (in a 1-tuple when ``x`` is itself a tuple or list), ``(x, y)`` or
    ``(x, y, sample_weight)``: the ``data`` a ``train_step`` receives."""
    if y is None:
        return (x,) if isinstance(x, (list, tuple)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` from what :func:`pack_x_y_sample_weight` packs."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data[0], data[1], data[2]
    raise ValueError(
        "Data is expected to be in format `x`, `(x,)`, `(x, y)`, or "
        f"`(x, y, sample_weight)`, found a tuple of {len(data)} elements: {str(data)[:200]}"
    )


def _pack(model: Any, arrays: list, role: str) -> Any:
    """A batch's arrays (one per model input or trained output) in the model's structure."""
    if not arrays:
        return None
    if role == "input":
        sub = getattr(model, "_subclass_inputs", None)
        if sub is not None:
            return sub[0].pack(list(arrays))
    return arrays[0] if len(arrays) == 1 else list(arrays)


def batch_data(model: Any, xs: list, ys: list, sws: list) -> Any:
    sw = None if all(w is None for w in sws) else _pack(model, list(sws), "target")
    return pack_x_y_sample_weight(_pack(model, xs, "input"), _pack(model, ys, "target"), sw)


# -- per-output lists from what a step passes ------------------------------------------------------
def _per_output(model: Any, value: Any, what: str) -> list:
    names = list(model.output_names)
    if value is None:
        return [None] * len(names)
    if isinstance(value, dict):
        missing = [n for n in names if n not in value]
        if missing:
            raise ValueError(f"{what} is a dict without the output(s) {missing}")
        return [value[n] for n in names]
    if isinstance(value, (list, tuple)) and len(names) > 1:
        if len(value) != len(names):
            raise ValueError(
                f"{what} holds {len(value)} values for a model with {len(names)} outputs"
            )
        return list(value)
    if (
        isinstance(value, (list, tuple))
        and len(value) == 1
        and not isinstance(value[0], (list, tuple, int, float, bool))
    ):
        # a one-output model's call gives [tensor] when it was built with outputs=[t]
        return [value[0]]
    return [value]


def _as_backend(B: Any, value: Any) -> Any:
    if value is None or B.is_native(value) or autodiff.is_traced(value):
        return value
    if hasattr(value, "_polykeras_read"):
        return value
    return B.asarray(np.asarray(value))


# -- the loss and the metrics of a step ------------------------------------------------------
def compute_loss(
    model: Any, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None
) -> Any:
    """The compiled loss of ``y_pred`` against ``y`` (weighted outputs' losses), plus the
    weights' regularization penalties, plus what ``add_loss`` added during the step (or,
    outside ``fit``, during the model's last call)."""
    B = _backend.current()
    c = getattr(model, "_compiled", None)
    total = None
    bucket = base_layer._ACTIVITY_COLLECTOR.get()
    extra = list(bucket) if bucket is not None else _eager_losses(model)
    if c is not None and c.loss is not None:
        if not c.resolved:
            c.resolve(model)
        outs = [_as_backend(B, v) for v in _per_output(model, y_pred, "y_pred")]
        ys_all = [_as_backend(B, v) for v in _per_output(model, y, "y")]
        sws_all = [_as_backend(B, v) for v in _per_output(model, sample_weight, "sample_weight")]
        ys = [ys_all[i] for i in c.trained]
        sws = [sws_all[i] for i in c.trained]
        if any(v is None for v in ys):
            raise ValueError(
                "compute_loss: the model was compiled with a loss, so it needs y (the targets)"
            )
        total, _ = model._losses(c, outs, ys, sws, extra)
    else:
        for reg_var in model.weights:
            reg = getattr(reg_var, "regularizer", None)
            if reg is not None:
                extra.append(reg(reg_var))
        for v in extra:
            total = v if total is None else ops.add(total, v)
    if total is None:
        raise ValueError(
            "No loss to compute: give compile() a loss, or add one with add_loss() (or "
            "compute the loss in your own train_step)"
        )
    return total


def _eager_losses(model: Any) -> list:
    """What ``add_loss`` added during the last call of the model and its layers."""
    out: list = []
    seen: set[int] = set()
    queue = [model]
    while queue:
        layer = queue.pop(0)
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        out.extend(layer.__dict__.get("_eager_losses", ()))
        if hasattr(layer, "_is_graph_network"):
            queue.extend(layer.layers)
        queue.extend(tracking.sublayers(layer))
    return out


class CompileMetrics:
    """The metrics given to ``compile``, as one stateful object (Keras 3's
    ``compile_metrics``): ``update_state(y, y_pred, sample_weight)``, ``result()`` (a dict
    by metric name), ``reset_state()``."""

    name = "compile_metrics"

    def __init__(self, model: Any):
        self._model = model
        self._items: list[tuple[int, str, Any, bool]] | None = None

    def _build(self) -> list[tuple[int, str, Any, bool]]:
        if self._items is not None:
            return self._items
        from . import metric_classes

        c = self._model._compiled
        if not c.resolved:
            c.resolve(self._model)
        items = []
        for k, i in enumerate(c.trained):
            for table, keys, weighted in (
                (c.metric_fns, c.metric_keys, False),
                (c.weighted_fns, c.weighted_keys, True),
            ):
                for (_display, fn), key in zip(table[i], keys[k]):
                    obj = (
                        fn if tracking.is_metric(fn) else metric_classes.MeanMetricWrapper(fn, key)
                    )
                    items.append((i, key, obj, weighted))
        self._items = items
        return items

    @property
    def metrics(self) -> list[Any]:
        return [obj for _, _, obj, _ in self._build()]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        B = _backend.current()
        model = self._model
        ys = _per_output(model, y_true, "y")
        outs = _per_output(model, y_pred, "y_pred")
        sws = _per_output(model, sample_weight, "sample_weight")
        for i, _key, obj, weighted in self._build():
            y, out = _as_backend(B, ys[i]), _as_backend(B, outs[i])
            if y is None:
                continue
            sw = _as_backend(B, sws[i]) if weighted else None
            obj.update_state(autodiff.detach(y), autodiff.detach(out), sample_weight=sw)

    def result(self) -> dict[str, Any]:
        return {key: obj.result() for _, key, obj, _ in self._build()}

    def reset_state(self) -> None:
        for _, _, obj, _ in self._build():
            obj.reset_state()

    def reset_states(self) -> None:
        self.reset_state()


class CompiledLoss:
    """tf.keras 2's ``model.compiled_loss(y, y_pred, sample_weight, regularization_losses)``."""

    def __init__(self, model: Any):
        self._model = model

    def __call__(
        self,
        y_true: Any,
        y_pred: Any,
        sample_weight: Any = None,
        regularization_losses: Iterable[Any] | None = None,
    ) -> Any:
        return compute_loss(self._model, None, y_true, y_pred, sample_weight)


def model_metrics(model: Any) -> list[Any]:
    """``model.metrics``: the loss tracker and the compiled metrics once compiled (and the
    ``Mean`` of each ``add_metric`` name, once fit or evaluate learned them), then the
    metric objects the model and its layers keep in attributes."""
    out: list[Any] = []
    c = getattr(model, "_compiled", None)
    if c is not None:
        state = _state(model)
        out.append(state["loss"])
        if state["compile"]._build():
            out.append(state["compile"])
        out.extend((c.added_metrics or {}).values())  # add_metric's
    seen = {id(m) for m in out}
    for m in tracking.tracked_metrics(model):
        if id(m) not in seen:
            seen.add(id(m))
            out.append(m)
    return out


def _state(model: Any) -> dict[str, Any]:
    """The loss tracker and compile metrics of the model's current compile."""
    c = model._compiled
    state = getattr(c, "_step_state", None)
    if state is None:
        from . import metric_classes

        state = {"loss": metric_classes.Mean(name="loss"), "compile": CompileMetrics(model)}
        c._step_state = state
    return state


def metrics_result(model: Any) -> dict[str, Any]:
    """``get_metrics_result()``: every metric's result, the compiled ones by name."""
    logs: dict[str, Any] = {}
    for m in model.metrics:
        value = m.result()
        if isinstance(value, dict):
            logs.update(value)
        else:
            logs[m.name] = value
    return logs


def to_floats(logs: Any, where: str) -> dict[str, float]:
    """A step's logs as Python floats (nested dicts flattened, as Keras does)."""
    if logs is None:
        return {}
    if not isinstance(logs, dict):
        raise TypeError(
            f"{where} must return a dict of logs (metric name -> value), got {type(logs).__name__}"
        )
    B = _backend.current()
    out: dict[str, float] = {}
    for key, value in logs.items():
        if isinstance(value, dict):
            out.update(to_floats(value, where))
            continue
        v = autodiff.raw(value)
        if B.is_native(v):
            v = B.to_numpy(v)
        arr = np.asarray(v)
        if arr.size != 1:
            raise ValueError(
                f"{where} returned the log {key!r} with {arr.size} values; a log is one number"
            )
        out[str(key)] = float(arr.reshape(-1)[0])
    return out


def run_step(model: Any, name: str, data: Any) -> dict[str, float]:
    """Call the model's ``train_step``/``test_step`` on ``data``; losses added during the
    step (``add_loss``, activity penalties) are collected for ``compute_loss``."""
    from ..engine.functional import weights_lock

    from .. import backend_api

    from . import added_metrics

    phase = backend_api.training_phase() if name == "train_step" else contextlib.nullcontext()
    with weights_lock(model), base_layer.collect_activity_losses(), phase:
        with added_metrics.live(model):  # add_metric's values update model.metrics at once
            logs = getattr(model, name)(data)
    return to_floats(logs, f"{type(model).__name__}.{name}")


def predict(model: Any, x: Any, batch_size: Any, steps: Any) -> Any:
    """``predict`` through the model's own ``predict_step``: its outputs, batch after
    batch, concatenated (one array, or a list/dict of arrays as the step returns them)."""
    from . import batches as _batches

    if _batches.is_batch_source(x):
        raise NotImplementedError(
            f"predict: model {model.name} has its own predict_step, which polykeras runs "
            "on arrays; pass x as arrays"
        )
    B = _backend.current()
    arrays = model._standardize_inputs(x)
    n = arrays[0].shape[0] if arrays else 0
    size = 32 if batch_size is None else int(batch_size)
    if size < 1:
        raise ValueError(f"predict: batch_size must be a positive integer, got {batch_size!r}")
    starts = list(range(0, n, size))
    if steps is not None:
        starts = starts[: int(steps)]
    parts: list[Any] = []
    for start in starts:
        batch = [B.asarray(a[start : start + size]) for a in arrays]
        out = model.predict_step(_pack(model, batch, "input"))
        parts.append(_to_numpy(B, out))
    if not parts:
        raise ValueError("predict got no samples (the arrays are empty)")
    return _concat(parts)


def _to_numpy(B: Any, out: Any) -> Any:
    if isinstance(out, dict):
        return {k: _to_numpy(B, v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return [_to_numpy(B, v) for v in out]
    v = autodiff.raw(out)
    return np.asarray(B.to_numpy(v)) if B.is_native(v) else np.asarray(v)


def _concat(parts: list) -> Any:
    first = parts[0]
    if isinstance(first, dict):
        return {k: _concat([p[k] for p in parts]) for k in first}
    if isinstance(first, list):
        return [_concat([p[i] for p in parts]) for i in range(len(first))]
    return np.concatenate(parts, axis=0)


def reset_metrics(model: Any) -> None:
    for m in model.metrics:
        m.reset_state()


__all__ = [
    "CompileMetrics",
    "CompiledLoss",
    "batch_data",
    "compute_loss",
    "metrics_result",
    "model_metrics",
    "overrides",
    "pack_x_y_sample_weight",
    "reset_metrics",
    "run_step",
    "to_floats",
    "unpack_x_y_sample_weight",
]
