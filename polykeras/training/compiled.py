"""compile's arguments resolved against a model's outputs: losses, weights, metrics, names.

Keras 2 names the logged values ``loss``, then ``<output>_loss`` per output when there are
several, then each metric (``acc``/``accuracy`` as the user spelled it), prefixed by the
output name when there are several outputs (``main_output_acc``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

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


def _loss_function(identifier: Any) -> tuple[Callable[..., Any], str | None]:
    """The per-sample loss function for compile's ``loss``, and the reduction the trainer
    applies to it: None for the mean over the batch (a function, or a loss object reducing
    by ``"sum_over_batch_size"``/``"mean"``), else a loss object's ``"sum"`` or
    ``"mean_with_sample_weight"``, reduced as Keras 3 reduces it."""
    fn = _losses.get(identifier)
    if isinstance(fn, _losses.Loss):
        if fn.reduction == "none":
            raise ValueError(
                f"compile: loss {fn.name} ({type(fn).__name__}) has reduction="
                f"{fn.reduction!r}, which leaves one value per sample, but training needs "
                "one number to differentiate (Keras 3 fails at the first step); use "
                "'sum_over_batch_size' (the default), 'sum', 'mean' or "
                "'mean_with_sample_weight'"
            )
        reduction = None if fn.reduction in ("sum_over_batch_size", "mean") else fn.reduction
        return fn.per_sample(), reduction
    return fn, None


def _masked_output(model: Any, i: int) -> bool:
    """Whether output ``i`` of ``model`` carries a mask (known from its symbolic tensor)."""
    outputs = getattr(model, "outputs", None) or []
    return i < len(outputs) and getattr(outputs[i], "_keras_mask", None) is not None


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
        self.loss_reductions: list[str | None] = []  # per output, set by resolve
        #: compile(jit_compile=True): the compiled training steps (see :class:`JitStep`)
        self.jit: JitStep | None = None
        self.dp: Any = None  # the data-parallel strategy of the running fit/evaluate, if any
        self.dp_synced = False  # whether train_on_batch's ranks started from rank 0's weights
        #: add_metric's running means by name; None until ``added_metrics.prepare`` runs
        #: (or a custom step first logs one)
        self.added_metrics: dict[str, Any] | None = None
        #: what ``added_metrics.prepare`` last saw: (symbolic names, the columns before it)
        self._added_state: tuple | None = None

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
        resolved = [_loss_function(fn) if fn is not None else (None, None) for fn in raw_losses]
        self.loss_fns: list[Callable[..., Any] | None] = [fn for fn, _r in resolved]
        #: per output: None (the mean over the batch) or a loss object's other reduction
        self.loss_reductions = [r for _fn, r in resolved]
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
                if not isinstance(fn, _metrics.Metric) and _masked_output(model, i):
                    # as Keras 2 and 3: a function metric of a masked output is a mean over
                    # the epoch's kept positions (each batch weighted by its mask), not an
                    # average of the batches' means
                    fn = _metrics.MeanMetricWrapper(fn, name=_metrics.display_name(item))
                if isinstance(fn, _metrics.Metric):
                    if any(fn is m for m in self._held):  # one object per output and table
                        fn = type(fn).from_config(fn.get_config())
                    self._held.append(fn)
                    build = getattr(fn, "build_for_output", None)
                    if build is not None:  # state sized by the output (F1Score, R2Score)
                        build(model.outputs[i].shape)
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


def update_rule(optimizer: Any, variables: list) -> tuple[Any, str]:
    """How ``optimizer``'s update joins a compiled step: ``((rate, update), "")`` where
    ``rate(lr)`` is the step's scalar (computed on the host each step and given to the
    graph as an input, so that schedules and Adam's bias corrections never recompile) and
    ``update(B, w, g, slots, rate)`` the optimizer's own math on the traced arrays; or
    ``(None, why)`` where the update stays eager (after the compiled loss and gradients)."""
    from . import optimizers as _opt

    kind = type(optimizer)
    if kind._update in (_opt.SGD._update, _opt.RMSprop._update):
        rule: Any = (lambda lr: lr, optimizer._update)
    elif kind._update is _opt.Adam._update and kind._alpha is _opt.Adam._alpha:
        rule = (optimizer._alpha, optimizer._scaled_update)
    else:
        return None, f"{kind.__name__}'s update is not compiled (SGD, RMSprop and Adam are)"
    if kind._before_step is not _opt.Optimizer._before_step:
        return None, f"{kind.__name__} keeps state shared by all variables"
    if optimizer.weight_decay:
        return None, "weight decay is not compiled"
    if getattr(optimizer, "_last_update", None):
        return None, "the optimizer has rows updated lazily"
    constrained = [v.name for v in variables if getattr(v, "constraint", None) is not None]
    if constrained:
        return None, f"variable(s) {', '.join(constrained)} have constraints"
    return rule, ""


class JitStep:
    """``compile(jit_compile=True)``: a model's training steps run through the backend's
    optional ``compile_step`` hook, one compiled function per batch signature (shapes and
    dtypes).  On torch the whole step is one graph: the forward pass, the loss, the
    backward pass, the metrics (gathered with the loss into one vector: one host read per
    step, which the batch callbacks' logs need) and the optimizer's update (SGD, RMSprop,
    Adam), with the weights, the optimizer's slots and the layers' updated statistics
    written in place; the learning rate (Adam: its step size) is an input, so a schedule
    never recompiles (the optimizer's other settings are read when the step compiles).
    Another optimizer (or one with weight decay, or constrained weights) updates eagerly
    after the compiled loss and gradients; metric objects (stateful) are updated eagerly
    from the compiled outputs.

    The first step of a signature runs eagerly (it reports errors as usual, builds the
    optimizer's slots and fills the caches the layers keep); the second compiles.  Where
    the backend has no compiler, the model cannot be traced (seeded dropout masks come
    from NumPy and would be frozen into the graph), embedding tables are updated row by
    row, or compiling or the compiled step fails, the steps run eagerly, with one warning
    naming why."""

    def __init__(self) -> None:
        self.fns: dict[tuple, tuple[Any, dict]] = {}
        self.seen: set[tuple] = set()
        self.failed: str | None = None
        self.warned: set[str] = set()
        #: why the optimizer's update runs outside the compiled graph ("" when inside)
        self.update_eager = ""

    def _give_up(self, why: str) -> None:
        self.failed = why
        self._warn(why)

    def _warn(self, why: str) -> None:
        if why not in self.warned:
            self.warned.add(why)
            warnings.warn(f"jit_compile=True: {why}; the training step runs eagerly", stacklevel=5)

    def train(self, B: Any, model: Any, c: Any, xs: list, ys: list, sws: list) -> list | None:
        """One compiled training step on a batch: the logged values (loss, per-output
        losses, metrics) as floats; or None when the caller runs the step eagerly."""
        if self.failed is not None:
            return None
        compiler = getattr(B, "compile_step", None)
        if compiler is None:
            self._warn(f"the {B.name} backend has no compiler")
            return None
        if c.row_sparse:
            self._warn(
                "embedding tables are updated row by row (different rows every batch), "
                "which is not compiled"
            )
            return None
        variables = c.trainable
        opt = c.optimizer
        key = (
            B.name,
            tuple(map(id, variables)),
            _signature(B, xs),
            _signature(B, ys),
            _signature(B, sws),
        )
        entry = self.fns.get(key)
        if entry is None:
            if key not in self.seen:
                self.seen.add(key)
                return None
            entry = self._compile(B, compiler, model, c, xs, ys, sws)
            if entry is None:
                return None
        fn, plan = entry
        values = [v.value for v in variables]
        frozen_values = [v.value for v in plan["frozen"]]
        rule = plan["rule"]
        if rule is not None:
            opt.build(variables)
            slots = [s for v in variables for s in opt._slots[id(v)]]
            value = rule[0](opt.current_learning_rate())
            if plan.get("rate_value") != value:  # a new array only when the rate changes
                plan["rate"] = [B.asarray(np.asarray(value, dtype=plan["rate_dtype"]))]
                plan["rate_value"] = value
            rate = plan["rate"]
        else:
            slots, rate = [], []
        try:
            out = fn([*values, *slots, *frozen_values], rate, [xs, ys, sws])
        except Exception as exc:  # e.g. no C compiler; nothing has changed yet
            first = str(exc).strip().splitlines()
            self._give_up(
                f"the compiled step failed ({type(exc).__name__}: {first[0] if first else ''})"
            )
            return None
        self.fns[key] = entry
        vector, grads, arrays, loose = out
        if rule is not None:
            opt.iterations += 1
        else:
            opt.apply(grads, variables)
        for var, value in zip(plan["loose"], loose):  # updated variables outside the graph
            var.assign(value)
        logged = [float(v) for v in B.to_numpy(vector)]
        if plan["metrics"]:
            return logged
        outs, masks = _join(plan["aux"], arrays, plan["aux_statics"])
        metrics = model._metric_values(c, outs, ys, sws, masks)
        return logged + (model._read(B, metrics) if metrics else [])

    def _compile(
        self, B: Any, compiler: Any, model: Any, c: Any, xs: list, ys: list, sws: list
    ) -> tuple[Any, dict] | None:
        """Trace and compile the step for this batch signature (None: it cannot be)."""
        from .. import autodiff

        seeded = [
            layer.name for layer in c.update_layers if getattr(layer, "seed", None) is not None
        ]
        if seeded:
            self._give_up(
                f"layer(s) {', '.join(seeded)} draw their masks from a NumPy seed, which "
                "a compiled graph would freeze"
            )
            return None
        variables = list(c.trainable)
        opt = c.optimizer
        rule, self.update_eager = update_rule(opt, variables)
        trainable = {id(v) for v in variables}
        frozen = [v for v in model.weights if id(v) not in trainable]
        frozen_at = {id(v): k for k, v in enumerate(frozen)}
        n_vars = len(variables)
        if rule is not None:
            opt.build(variables)
        counts = [len(opt._slots[id(v)]) if rule is not None else 0 for v in variables]
        n_slots = sum(counts)
        plan: dict[str, Any] = {
            "rule": rule,
            "frozen": frozen,
            "metrics": not c.metric_objects(),  # metric objects keep state: eager
            "rate_dtype": variables[0].dtype if variables else "float32",
            "loose": [],
        }
        multi = len(model.outputs) > 1

        def step(state: list, rate: list, data: list) -> tuple[list, list]:
            xs, ys, sws = data
            values = state[:n_vars]
            frozen_values = state[n_vars + n_slots :]
            with autodiff.substitute(frozen, frozen_values):
                loss, aux, grads = autodiff.value_and_grad(model._loss_fn(c, xs, ys, sws), values)
                per_output, outs, updates, masks = aux
                scalars = [loss] + (per_output if multi else [])
                if plan["metrics"]:
                    scalars += model._metric_values(c, outs, ys, sws, masks)
            dtype = B.dtype_name(scalars[0])
            vector = B.concatenate(
                [
                    B.reshape(s if B.dtype_name(s) == dtype else B.cast(s, dtype), (1,))
                    for s in scalars
                ],
                0,
            )
            new_state: list[Any] = [None] * len(state)
            if rule is not None:
                grads = opt._clip(B, list(grads))
                at = n_vars
                for k, (w, g, count) in enumerate(zip(values, grads, counts)):
                    slot_list = list(state[at : at + count])
                    if B.dtype_name(g) != B.dtype_name(w):
                        g = B.cast(g, B.dtype_name(w))
                    new_state[k] = rule[1](B, w, g, slot_list, rate[0])
                    new_state[at : at + count] = slot_list
                    at += count
                grads = []
            loose: list[Any] = []
            plan["loose"] = []
            for var, value in updates:
                at_frozen = frozen_at.get(id(var))
                if at_frozen is None:
                    plan["loose"].append(var)
                    loose.append(value)
                else:
                    new_state[n_vars + n_slots + at_frozen] = value
            arrays: list[Any] = []
            statics: list[Any] = []
            if not plan["metrics"]:
                plan["aux"] = _split(B, (outs, masks), arrays, statics)
                plan["aux_statics"] = statics
            return new_state, [vector, list(grads), arrays, loose]

        values = [v.value for v in variables]
        slots = [s for v in variables for s in opt._slots[id(v)]] if rule is not None else []
        rate = []
        if rule is not None:
            rate = [B.asarray(np.asarray(0.0, dtype=plan["rate_dtype"]))]
        args = [[*values, *slots, *[v.value for v in frozen]], rate, [xs, ys, sws]]
        try:
            fn = compiler(step, args, write_back=True)
        except Exception as exc:  # the trace failed: say why, train eagerly
            self._give_up(f"tracing the step failed ({type(exc).__name__}: {exc})")
            return None
        finally:
            for layer in c.update_layers:  # the trace left fake arrays there
                layer._updates = []
        return fn, plan
