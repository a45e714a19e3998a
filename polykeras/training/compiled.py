"""compile's arguments resolved against a model's outputs: losses, weights, metrics, names.

Keras 2 names the logged values ``loss``, then ``<output>_loss`` per output when there are
several, then each metric (``acc``/``accuracy`` as the user spelled it), prefixed by the
output name when there are several outputs (``main_output_acc``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from . import data as _data
from . import losses as _losses
from . import metrics as _metrics
from ..utils import as_float


def _by_output(value: Any, names: list[str], what: str, default: Any) -> list[Any]:
    """A compile argument (one value, a list, or a dict by output name) per output."""
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(
                f"Unknown entries in {what} dictionary: {unknown}. Only expected "
                f"the following keys: {names}"
            )
        return [value.get(n, default) for n in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(
                f"When passing a list as {what}, it should have one entry per "
                f"model output. The model has {len(names)} output(s) "
                f"({', '.join(names)}), but you passed {what}={list(value)!r}"
            )
        return list(value)
    return [value] * len(names)


def check_loss_weights(loss_weights: Any) -> None:
    """``loss_weights`` (one number, a list, or a dict by output name): each weight a
    finite, non-negative number, or a ValueError naming it."""
    if loss_weights is None:
        return
    if isinstance(loss_weights, dict):
        items = [(f"loss_weights[{k!r}]", v) for k, v in loss_weights.items()]
    elif isinstance(loss_weights, (list, tuple)):
        items = [(f"loss_weights[{i}]", v) for i, v in enumerate(loss_weights)]
    else:
        items = [("loss_weights", loss_weights)]
    for what, value in items:
        as_float(value, what, "compile", low=0.0)


def _loss_function(identifier: Any) -> Callable[..., Any]:
    """The per-sample loss function for compile's ``loss``; a loss object gives its
    ``call`` with its settings, reduced by the trainer as ``"sum_over_batch_size"``."""
    fn = _losses.get(identifier)
    if isinstance(fn, _losses.Loss):
        if fn.reduction not in ("sum_over_batch_size", "mean"):
            raise ValueError(
                f"compile: loss {fn.name} ({type(fn).__name__}) has reduction="
                f"{fn.reduction!r}; compile reduces each output's loss as "
                "'sum_over_batch_size' (the mean over the batch): leave the reduction at "
                "its default, or scale the loss with loss_weights"
            )
        return fn.per_sample()
    return fn


def _walk_layers(layers: list[Any], seen: set[int], out: list[Any]) -> None:
    for layer in layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        out.append(layer)
        inner = list(getattr(layer, "layers", None) or []) if hasattr(layer, "_execution") else []
        for attr in ("layer", "forward_layer", "backward_layer", "cell"):
            sub = getattr(layer, attr, None)
            if sub is not None and hasattr(sub, "_updates"):
                inner.append(sub)
        _walk_layers(inner, seen, out)


class Compiled:
    """What compile was given, resolved against the model's outputs."""

    def __init__(
        self, optimizer, loss, metrics, loss_weights, sample_weight_mode, weighted_metrics
    ):
        check_loss_weights(loss_weights)
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
        self.loss_weights = loss_weights
        self.sample_weight_mode = sample_weight_mode
        self.weighted_metrics = weighted_metrics
        self.resolved = False
        #: compile(jit_compile=True): the compiled training steps (see :class:`JitStep`)
        self.jit: JitStep | None = None
        self.dp: Any = None  # the data-parallel strategy of the running fit/evaluate, if any
        self.dp_synced = False  # whether train_on_batch's ranks started from rank 0's weights

    def resolve(self, model: Any) -> None:
        names = list(model.output_names)
        multi = len(names) > 1
        # loss=None: the loss comes from add_loss or the model's own train_step
        raw_losses = (
            [None] * len(names) if self.loss is None else _by_output(self.loss, names, "loss", None)
        )
        if isinstance(self.loss, dict):
            for n, fn in zip(names, raw_losses):
                if fn is None:
                    warnings.warn(
                        f"Output {n} missing from loss dictionary. We assume this "
                        "was done on purpose: it will not be trained or given "
                        "targets.",
                        stacklevel=4,
                    )
        self.trained = [i for i, fn in enumerate(raw_losses) if fn is not None]
        if not self.trained and self.loss is not None:
            raise ValueError(f"compile: no output of model {model.name} has a loss")
        self.loss_fns: list[Callable[..., Any] | None] = [
            _loss_function(fn) if fn is not None else None for fn in raw_losses
        ]
        self.loss_names: list[str | None] = [
            _losses.name_of(fn) if fn is not None else None for fn in self.loss_fns
        ]
        weights = _by_output(
            1.0 if self.loss_weights is None else self.loss_weights, names, "loss_weights", 1.0
        )
        self.weights = [
            as_float(w, f"loss_weights for output {n}", "compile", low=0.0)
            for w, n in zip(weights, names)
        ]
        modes = _by_output(self.sample_weight_mode, names, "sample_weight_mode", None)
        for m in modes:
            if m not in (None, "temporal"):
                raise ValueError(f"sample_weight_mode must be None or 'temporal', got {m!r}")
        self.temporal = [m == "temporal" for m in modes]
        self._held: list[Any] = []  # the metric objects of the tables below
        self.metric_fns = self._metric_table(model, self.metrics, "metrics", names)
        self.weighted_fns = self._metric_table(
            model, self.weighted_metrics, "weighted_metrics", names
        )
        # names as Keras 2 shows them
        self.names = ["loss"]
        if multi:
            self.names += [f"{names[i]}_loss" for i in self.trained]
        used = set(self.names)
        self.metric_keys: list[list[str]] = []
        self.weighted_keys: list[list[str]] = []
        for i in self.trained:
            prefix = f"{names[i]}_" if multi else ""
            for table, keys, extra in (
                (self.metric_fns, self.metric_keys, ""),
                (self.weighted_fns, self.weighted_keys, "weighted_"),
            ):
                row = []
                for display, _fn in table[i]:
                    key = base = prefix + extra + display
                    k = 1
                    while key in used:
                        key = f"{base}_{k}"
                        k += 1
                    used.add(key)
                    row.append(key)
                keys.append(row)
            self.names += self.metric_keys[-1] + self.weighted_keys[-1]
        # the columns whose value is a metric object's running result (not averaged)
        tables = ((self.metric_fns, self.metric_keys), (self.weighted_fns, self.weighted_keys))
        stateful = {
            key
            for table, keys in tables
            for row, key_row in zip((table[i] for i in self.trained), keys)
            for (_d, fn), key in zip(row, key_row)
            if isinstance(fn, _metrics.Metric)
        }
        self.stateful_columns = [j for j, n in enumerate(self.names) if n in stateful]
        self.output_names = [names[i] for i in self.trained]
        self.specs = _data.target_specs(
            model, self.trained, [self.loss_names[i] for i in self.trained]
        )
        self.refresh(model)
        self.resolved = True

    def _metric_table(self, model, given, what, names):
        if given is None:
            return [[] for _ in names]
        if isinstance(given, (str,)) or callable(given):
            given = [given]
        if isinstance(given, dict):
            per = _by_output(given, names, what, [])
        else:
            per = [list(given)] * len(names)
        table = []
        for i, items in enumerate(per):
            if isinstance(items, str) or callable(items):
                items = [items]
            fn_loss = self.loss_fns[i]
            row = []
            for item in items or []:
                if fn_loss is None:
                    continue
                fn = _metrics.resolve(item, fn_loss, model.outputs[i].shape)
                if isinstance(fn, _metrics.Metric):
                    if any(fn is m for m in self._held):  # one object per output and table
                        fn = type(fn).from_config(fn.get_config())
                    self._held.append(fn)
                    row.append((fn.name, fn))
                    continue
                row.append((_metrics.display_name(item), fn))
            table.append(row)
        return table

    def metric_objects(self) -> list[Any]:
        """Every stateful metric object compile was given (one per output and table)."""
        return list(getattr(self, "_held", []))

    def reset_metric_objects(self) -> None:
        """Reset every metric object's state (start of an epoch or an evaluation)."""
        for metric in self.metric_objects():
            metric.reset_state()

    def refresh(self, model: Any) -> None:
        """Re-read the variables to train, the regularized ones and the layers to update."""
        self.trainable = list(model.trainable_weights)
        self.row_sparse = row_sparse_plan(model, self.optimizer, self.trainable)
        self.regularized = [v for v in model.weights if getattr(v, "regularizer", None) is not None]
        layers: list[Any] = []
        _walk_layers(list(model.layers), set(), layers)
        self.update_layers = layers


#: Update embedding tables row by row where the optimizer's math allows (see
#: :func:`row_sparse_plan`); tests switch it off to compare with the dense update.
ROW_SPARSE_UPDATES = True


def row_sparse_plan(model: Any, optimizer: Any, trainable: list) -> list[tuple[int, Any, int]]:
    """``(variable position, Embedding layer, model input position)`` for each embedding table
    whose gradient is non-zero only on the rows a batch looks up, and whose update with a
    zero gradient can be skipped exactly (``optimizer.supports_row_updates``).

    The table must be read by one Embedding call fed straight from a model input, used by
    no other layer, and have no regularizer or constraint (those touch every row)."""
    if not ROW_SPARSE_UPDATES or not getattr(optimizer, "supports_row_updates", False):
        return []
    from ..layers.embeddings import Embedding

    position = {id(v): i for i, v in enumerate(trainable)}
    owners: dict[int, int] = {}
    for layer in model.layers:
        for v in layer.weights:
            owners[id(v)] = owners.get(id(v), 0) + 1
    plan = []
    for layer in model.layers:
        if not isinstance(layer, Embedding) or not getattr(layer, "built", False):
            continue
        var = layer.embeddings
        nodes = [n for n in model._execution if n.outbound_layer is layer]
        if len(nodes) != 1 or id(var) not in position or owners.get(id(var)) != 1:
            continue
        if (
            getattr(var, "regularizer", None) is not None
            or getattr(var, "constraint", None) is not None
        ):
            continue
        source = nodes[0].input_tensors[0]
        pos = next((i for i, t in enumerate(model.inputs) if t is source), None)
        if pos is not None:
            plan.append((position[id(var)], layer, pos))
    return plan


def _signature(B: Any, arrays: list) -> tuple:
    return tuple(None if a is None else (tuple(B.shape(a)), B.dtype_name(a)) for a in arrays)


def _split(B: Any, tree: Any, arrays: list, statics: list) -> Any:
    """``tree`` (nested lists/tuples) as a spec, its backend arrays appended to ``arrays``
    and every other leaf (variables, None) to ``statics``."""
    if isinstance(tree, (list, tuple)):
        return (type(tree), [_split(B, t, arrays, statics) for t in tree])
    if tree is not None and B.is_native(tree):
        arrays.append(tree)
        return ("array", len(arrays) - 1)
    statics.append(tree)
    return ("static", len(statics) - 1)


def _join(spec: Any, arrays: list, statics: list) -> Any:
    kind, body = spec
    if kind == "array":
        return arrays[body]
    if kind == "static":
        return statics[body]
    return kind(_join(s, arrays, statics) for s in body)


class JitStep:
    """``compile(jit_compile=True)``: a model's training steps run through the backend's
    optional ``compile_step`` hook (torch: the step traced into one graph, forward and
    backward, and handed to ``torch.compile``), one compiled function per batch signature
    (shapes and dtypes).  The first step of a signature runs eagerly (it reports errors as
    usual and fills the caches the layers keep); the second compiles.  Where the backend
    has no compiler, the model cannot be traced (seeded dropout masks come from NumPy and
    would be frozen into the graph), or compiling or the compiled step fails, the steps run
    eagerly, with one warning naming why.  Only the loss and its gradients are compiled;
    the optimizer's update runs as without ``jit_compile``."""

    def __init__(self) -> None:
        self.fns: dict[tuple, tuple[Any, list]] = {}
        self.seen: set[tuple] = set()
        self.failed: str | None = None
        self.warned: set[str] = set()

    def _give_up(self, why: str) -> None:
        self.failed = why
        self._warn(why)

    def _warn(self, why: str) -> None:
        if why not in self.warned:
            self.warned.add(why)
            warnings.warn(f"jit_compile=True: {why}; the training step runs eagerly", stacklevel=5)

    def run(
        self,
        B: Any,
        model: Any,
        step: Callable[..., Any],
        values: list,
        xs: list,
        ys: list,
        sws: list,
        rows: Any = None,
    ) -> tuple | None:
        """``step(values, xs, ys, sws) -> (loss, aux, grads)`` (the eager step) compiled and
        run, or None when the caller runs it eagerly.  ``rows``: the batch's row-sparse
        embedding updates (see :func:`row_sparse_plan`), which stay eager."""
        from .. import autodiff

        compiler = getattr(B, "compile_step", None)
        if compiler is None:
            self._warn(f"the {B.name} backend has no compiler")
            return None
        if self.failed is not None:
            return None
        if rows:
            self._warn(
                "embedding tables are updated row by row (different rows every batch), "
                "which is not compiled"
            )
            return None
        trainable = {id(v) for v in model.trainable_weights}
        frozen = [v for v in model.weights if id(v) not in trainable]
        frozen_values = [v.value for v in frozen]
        key = tuple(_signature(B, a) for a in (values, frozen_values, xs, ys, sws))
        key = (B.name,) + key
        entry = self.fns.get(key)
        if entry is None:
            if key not in self.seen:
                self.seen.add(key)
                return None
            seeded = [
                layer.name
                for layer in getattr(model._compiled, "update_layers", [])
                if getattr(layer, "seed", None) is not None
            ]
            if seeded:
                self._give_up(
                    f"layer(s) {', '.join(seeded)} draw their masks from a NumPy seed, which "
                    "a compiled graph would freeze"
                )
                return None
            layout: list[Any] = []  # (spec of aux, its non-array leaves), set by the trace

            def flat(values, frozen_values, xs, ys, sws):
                with autodiff.substitute(frozen, frozen_values):
                    loss, aux, grads = step(values, xs, ys, sws)
                arrays: list[Any] = []
                statics: list[Any] = []
                layout[:] = [_split(B, aux, arrays, statics), statics]
                return [loss, arrays, list(grads)]

            try:
                fn = compiler(flat, [values, frozen_values, xs, ys, sws])
            except Exception as exc:  # the trace failed: say why, train eagerly
                self._give_up(f"tracing the step failed ({type(exc).__name__}: {exc})")
                return None
            entry = (fn, layout)
        fn, layout = entry
        try:
            loss, arrays, grads = fn(values, frozen_values, xs, ys, sws)
        except Exception as exc:  # e.g. no C compiler; nothing has changed yet
            first = str(exc).strip().splitlines()
            self._give_up(
                f"the compiled step failed ({type(exc).__name__}: {first[0] if first else ''})"
            )
            return None
        self.fns[key] = entry
        return loss, _join(layout[0], arrays, layout[1]), grads
