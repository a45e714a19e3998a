"""compile / fit / evaluate / train_on_batch / test_on_batch for Model (a mixin).

One training step: the model runs on a batch with its trainable variables substituted by
differentiable leaves (:func:`polykeras.autodiff.substitute`), the weighted sum of the
outputs' losses plus the variables' regularization penalties is differentiated
(:func:`polykeras.autodiff.value_and_grad`: the backend's own differentiation where it has
one, the core's otherwise), the optimizer updates the variables in place, and then the
layers' requested updates (``Layer.add_update``, e.g. moving statistics) are applied.

Environment: ``POLYKERAS_MAX_EPOCHS`` (a positive integer) caps the number of epochs any
``fit`` runs, whatever ``epochs`` says (the conformance runner sets it: the guides ask for
50 epochs).
"""

from __future__ import annotations

import contextvars
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import autodiff, config
from .. import backend_api as _K
from .. import distribute as _distribute
from .. import backend as _backend
from .. import ops
from ..engine.base_layer import collect_activity_losses, collect_added_metrics
from . import added_metrics as _added
from . import batches as _batches
from . import custom_steps as _custom
from . import data as _data
from . import metrics as _metrics
from . import optimizers as _optimizers
from .loss_classes import reduce_in_compile
from .callbacks import CallbackList, History, ProgbarLogger, check_callbacks
from .compiled import Compiled, JitStep
from .data import DataError, check_steps, check_verbose
from .progress import Progbar
from ..utils import as_float, as_int

ENV_MAX_EPOCHS = "POLYKERAS_MAX_EPOCHS"

NOT_COMPILED = (
    "You must compile your model before training/testing. Use `model.compile(optimizer, loss)`."
)


def max_epochs() -> int | None:
    """The cap from ``POLYKERAS_MAX_EPOCHS`` (None when unset)."""
    raw = os.environ.get(ENV_MAX_EPOCHS, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{ENV_MAX_EPOCHS} must be a positive integer, got {raw!r}")
    return value


def _check_batch_size(batch_size: Any, owner: str = "fit") -> int:
    """``batch_size``: a positive integer (32 when None); a DataError naming it otherwise."""
    if batch_size is None:
        return 32
    try:
        return as_int(batch_size, "batch_size", owner)
    except ValueError as exc:
        raise DataError(str(exc)) from None


def _has_symbolic_losses(model: Any, seen: set[int] | None = None) -> bool:
    """Whether ``model`` or a model nested in it (at any depth) was given a symbolic tensor
    with ``add_loss``: its loss joins the outer model's when it runs (tf.keras 2)."""
    seen = set() if seen is None else seen
    if id(model) in seen:
        return False
    seen.add(id(model))
    if getattr(model, "_symbolic_losses", None):
        return True
    if not getattr(model, "_is_graph_network", False):
        return False
    return any(_has_symbolic_losses(layer, seen) for layer in model.layers)


class TrainingMixin:
    """compile, fit, evaluate, train_on_batch and test_on_batch (Keras 2 semantics)."""

    # provided by the Model this is mixed into
    _compiled: Compiled | None
    outputs: list[Any]
    input_names: list[str]
    if TYPE_CHECKING:

        def _run_graph(self, values: list, training: bool = False) -> list: ...

        def _run_graph_masked(
            self, values: list, training: bool = False, masks: list | None = None
        ) -> tuple[list, list]: ...

        weights: list  # Layer.weights

    # -- compile ----------------------------------------------------------------------------------
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        loss_weights: Any = None,
        sample_weight_mode: Any = None,
        weighted_metrics: Any = None,
        **kwargs: Any,
    ) -> None:
        """Configure training: ``compile(optimizer, loss, metrics=None, loss_weights=None)``.

        ``loss`` (and ``loss_weights``, ``metrics``) may be one value for all outputs, a list
        in output order, or a dict by output name.
        """
        check_custom_steps(self, "compile")
        if kwargs.pop("target_tensors", None) is not None:
            raise ValueError(
                "compile: target_tensors is not supported by polykeras; pass the "
                "targets to fit() as arrays"
            )
        steps = kwargs.pop("steps_per_execution", 1)
        if steps not in (1, None):
            raise ValueError(
                f"compile: steps_per_execution={steps!r} is not supported by "
                "polykeras (it runs one batch per step, calling the batch "
                "callbacks after each); pass steps_per_execution=1"
            )
        # run_eagerly: polykeras always runs eagerly, so it changes no result
        run_eagerly = kwargs.pop("run_eagerly", None)
        jit = kwargs.pop("jit_compile", "auto")
        if jit not in (True, False, "auto", None):
            raise ValueError(f"compile: jit_compile must be True, False or 'auto', got {jit!r}")
        if jit is True and run_eagerly:
            warnings.warn(
                "compile: run_eagerly=True and jit_compile=True: jit_compile is switched off "
                "(as Keras does)",
                stacklevel=2,
            )
            jit = False
        if kwargs:
            raise TypeError(
                f"compile: keyword argument(s) not understood: {', '.join(sorted(kwargs))}"
            )
        opt = _optimizers.get(optimizer)
        if loss is None and not self._may_train_without_loss():
            raise ValueError(
                "compile needs a loss, e.g. loss='categorical_crossentropy' (see polykeras.losses)"
            )
        compiled = Compiled(opt, loss, metrics, loss_weights, sample_weight_mode, weighted_metrics)
        if jit is True:  # "auto" runs eagerly: compiling pays only on long runs (docs)
            compiled.jit = JitStep()
        if getattr(self, "_is_graph_network", False):
            compiled.resolve(self)
        self._compiled = compiled
        self.optimizer = opt
        self.loss = loss
        self.loss_weights = loss_weights
        self.sample_weight_mode = sample_weight_mode
        self.weighted_metrics = weighted_metrics

    def _may_train_without_loss(self) -> bool:
        """compile(loss=None) is for models whose loss comes from elsewhere: add_loss, a
        subclassed model's call, or a train_step of their own."""
        return bool(
            _has_symbolic_losses(self)
            or _custom.overrides(self, "train_step")
            or _custom.overrides(self, "call")
        )

    # -- what custom training steps use (Keras 3; see training.custom_steps) ----------------------
    @property
    def metrics(self) -> list[Any]:
        """The model's metric objects: a ``loss`` tracker and the compiled metrics (one
        ``compile_metrics`` object) once compiled, then the metrics kept in attributes."""
        return _custom.model_metrics(self)

    def reset_metrics(self) -> None:
        _custom.reset_metrics(self)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """The loss of a step: the compiled loss of ``y_pred`` against ``y``, the weights'
        penalties and what ``add_loss`` added (Keras 3)."""
        return _custom.compute_loss(self, x, y, y_pred, sample_weight)

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> dict:
        """Update the compiled metrics with a batch; return every metric's result."""
        self._require_compiled()
        _custom._state(self)["compile"].update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    def get_metrics_result(self) -> dict:
        return _custom.metrics_result(self)

    @property
    def compiled_loss(self) -> Any:
        """tf.keras 2: ``self.compiled_loss(y, y_pred, sample_weight)``."""
        self._require_compiled()
        return _custom.CompiledLoss(self)

    @property
    def compiled_metrics(self) -> Any:
        """tf.keras 2: ``self.compiled_metrics.update_state(y, y_pred, sample_weight)``."""
        self._require_compiled()
        return _custom._state(self)["compile"]

    def train_step(self, data: Any) -> dict:
        """One training step on ``data`` (``x``, ``(x, y)`` or ``(x, y, sample_weight)``);
        returns the logs.  This is what ``fit`` does for each batch; a subclass may
        override it (and call ``super().train_step(data)``)."""
        c = self._require_compiled()
        xs, ys, sws = self._step_arrays(c, data)
        _added.prepare(self, c, lambda: xs, "train_step")
        values = self._train_batch_unlocked(c, xs, ys, sws)
        return dict(zip(c.names, values))

    def test_step(self, data: Any) -> dict:
        """The loss and metrics of one batch, without training (``evaluate``'s step)."""
        c = self._require_compiled()
        xs, ys, sws = self._step_arrays(c, data)
        _added.prepare(self, c, lambda: xs, "test_step")
        values = self._test_batch(c, xs, ys, sws)
        return dict(zip(c.names, values))

    def predict_step(self, data: Any) -> Any:
        """The model's outputs for one batch (``predict``'s step)."""
        x, _, _ = _custom.unpack_x_y_sample_weight(data)
        return self(x, training=False)  # type: ignore[operator]  # a Model is callable

    def _step_arrays(self, c: Compiled, data: Any) -> tuple[list, list, list]:
        x, y, sw = _custom.unpack_x_y_sample_weight(data)
        B = _backend.current()

        def host(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: host(i) for k, i in v.items()}
            if isinstance(v, (list, tuple)):
                return [host(i) for i in v]
            if v is None:
                return None
            v = autodiff.raw(v)
            return np.asarray(B.to_numpy(v)) if B.is_native(v) else v

        arrays = self._prepare_data(host(x), host(y), host(sw))
        return arrays.batch(B, slice(0, arrays.n))

    def _custom_step_batches(self, c: Compiled, batches: Any, cb: Any, train: bool) -> dict:
        """Run the model's own train_step (or test_step) on each ``(xs, ys, sws, size)``
        batch; the logs are those of the last step (Keras 3)."""
        name = "train_step" if train else "test_step"
        logs: dict[str, float] = {}
        self.reset_metrics()
        tests = None  # data-parallel test_step: see distribute._CustomTests
        if not train and c.dp is not None:
            tests = c.dp.custom_tests(self, each_step=cb is not None and bool(cb.callbacks))
        for batch, (xs, ys, sws, size) in enumerate(batches):
            begin = "on_train_batch_begin" if train else "on_test_batch_begin"
            if cb is not None:
                cb.call(begin, batch, {"batch": batch, "size": size})
            if train and c.dp is not None:  # data-parallel: see distribute._CustomStep
                logs = c.dp.custom_train_step(
                    self,
                    lambda *arrays: _custom.run_step(self, name, _custom.batch_data(self, *arrays)),
                    xs,
                    ys,
                    sws,
                    size,
                )
            elif tests is not None:
                logs = tests.run(
                    lambda *arrays: _custom.run_step(self, name, _custom.batch_data(self, *arrays)),
                    xs,
                    ys,
                    sws,
                    size,
                )
            else:
                logs = _custom.run_step(self, name, _custom.batch_data(self, xs, ys, sws))
            if cb is not None:
                end = "on_train_batch_end" if train else "on_test_batch_end"
                cb.call(end, batch, {"batch": batch, "size": size, **logs})
            if train and self.stop_training:
                break
        return logs if tests is None else tests.finish(logs)

    @property
    def metrics_names(self) -> list[str]:
        c = getattr(self, "_compiled", None)
        if c is None or not c.resolved:
            return []
        return list(c.names)

    def _training_config(self) -> dict[str, Any] | None:
        """compile's arguments as Keras stores them (``training_config`` in HDF5 files)."""
        c = getattr(self, "_compiled", None)
        if c is None:
            return None

        def names(value):
            if isinstance(value, dict):
                return {k: names(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [names(v) for v in value]
            if value is None or isinstance(value, (str, int, float)):
                return value
            if isinstance(value, _metrics.Loss):  # loss and metric objects keep settings
                return _metrics._losses.serialize(value)
            if isinstance(value, _metrics.Metric):
                return _metrics.serialize(value)
            return _metrics.display_name(value)

        return {
            "optimizer_config": _optimizers.serialize(c.optimizer),
            "loss": names(c.loss),
            "metrics": names(c.metrics),
            "weighted_metrics": names(c.weighted_metrics),
            "loss_weights": c.loss_weights,
            "sample_weight_mode": c.sample_weight_mode,
        }

    def _require_compiled(self) -> Compiled:
        c = getattr(self, "_compiled", None)
        if c is None:
            raise RuntimeError(NOT_COMPILED)
        return c

    # -- data -------------------------------------------------------------------------------------
    def _prepare_data(
        self, x: Any, y: Any, sample_weight: Any = None, class_weight: Any = None
    ) -> _Arrays:
        """Inputs, targets and per-output sample weights as checked NumPy arrays."""
        c = self._require_compiled()
        inputs = self._standardize_inputs(x)
        if not c.resolved:
            c.resolve(self)
        n = _data.check_same_length(inputs, "input", self.input_names)
        if not c.trained:  # no compiled loss: targets (if any) go to the model's own step
            targets = _loose_arrays(y, n, "y")
            return _Arrays(inputs, targets, _loose_arrays(sample_weight, n, "sample_weight"), n)
        targets = _data.standardize_targets(self, y, [_copy_spec(s) for s in c.specs], n)
        n = _data.check_sample_counts(inputs, targets, self.input_names, c.output_names)
        temporal = [c.temporal[i] for i in c.trained]
        floatx = config.floatx()
        weights = _data.standardize_sample_weights(
            sample_weight, c.output_names, n, temporal, float_dtype=floatx
        )
        from_classes = _data.class_weights_to_sample_weights(
            class_weight, targets, c.output_names, float_dtype=floatx
        )
        merged = []
        for w, cw, name in zip(weights, from_classes, c.output_names):
            if w is not None and cw is not None:
                w = _data.check_finite(
                    w * _expand_to_np(cw, w),
                    floatx,
                    f"sample_weight times class_weight for output {name}",
                ).astype("float64")
            merged.append(cw if w is None else w)
        return _Arrays(inputs, targets, merged, n)

    def _validation_arrays(self, validation_data: Any) -> _Arrays:
        if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
            got = type(validation_data).__name__
            if isinstance(validation_data, (list, tuple)):
                got += f" of length {len(validation_data)}"
            raise DataError(
                "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                f"val_sample_weight), got {got}"
            )
        vsw = validation_data[2] if len(validation_data) == 3 else None
        try:
            return self._prepare_data(validation_data[0], validation_data[1], vsw)
        except DataError as exc:
            raise DataError(f"in validation_data: {exc}") from None

    # -- one batch --------------------------------------------------------------------------------
    def _losses(
        self,
        c: Compiled,
        outs: list,
        ys: list,
        sws: list,
        activity: Sequence[Any] = (),
        masks: Sequence[Any] | None = None,
    ) -> tuple[Any, list]:
        """The total loss (weighted outputs' losses + penalties, the layers' activity
        penalties among them) and each output's loss; a masked output's loss counts its
        kept positions only (``masks``: one per output, None where unmasked)."""
        total = None
        per_output = []
        # data parallel: a masked output's mean as a share of the global batch's
        scales = _masked_scales(self, c, masks) if masks is not None else {}
        for k, i in enumerate(c.trained):
            loss_fn = c.loss_fns[i]
            assert loss_fn is not None  # c.trained lists the outputs that have a loss
            values = loss_fn(ys[k], outs[i])
            reduction = c.loss_reductions[i]  # a loss object's "sum"... (None: the mean)
            if reduction is not None:
                mask = None if masks is None else masks[i]
                what = f"the loss of output {c.output_names[k]}"
                value = reduce_in_compile(values, sws[k], mask, reduction, what)
            elif masks is not None and masks[i] is not None:
                what = f"the loss of output {c.output_names[k]}"
                value = _metrics.masked_loss(values, sws[k], masks[i], what)
                if i in scales:
                    value = ops.multiply(value, scales[i])
            elif sws[k] is not None:
                values = ops.multiply(values, _expand_to(sws[k], values))
                value = ops.mean(values)
            else:
                value = ops.mean(values)
            per_output.append(value)
            term = value if c.weights[i] == 1.0 else ops.multiply(value, c.weights[i])
            total = term if total is None else ops.add(total, term)
        for var in c.regularized:
            penalty = var.regularizer(var)
            total = penalty if total is None else ops.add(total, penalty)
        for penalty in activity:
            total = penalty if total is None else ops.add(total, penalty)
        if total is None:
            raise ValueError(
                f"No loss to compute for model {getattr(self, 'name', '?')}: compile() was "
                "given no loss and nothing was added with add_loss(); give compile a loss, "
                "or add one with add_loss() (or compute it in a train_step of your own)"
            )
        return total, per_output

    def _metric_values(
        self, c: Compiled, outs: list, ys: list, sws: list, masks: Sequence[Any] | None = None
    ) -> list:
        values = []
        for k, i in enumerate(c.trained):
            mask = None if masks is None else masks[i]
            what = f"a metric of output {c.output_names[k]}"
            for _name, fn in c.metric_fns[i]:
                if isinstance(fn, _metrics.Metric):  # stateful: update, report the running result
                    values.append(_update_metric(fn, ys[k], outs[i], None, mask))
                    continue
                v = fn(ys[k], outs[i])
                values.append(
                    ops.mean(v) if mask is None else _metrics.masked_mean(v, None, mask, what)
                )
            for _name, fn in c.weighted_fns[i]:
                if isinstance(fn, _metrics.Metric):
                    values.append(_update_metric(fn, ys[k], outs[i], sws[k], mask))
                    continue
                v = fn(ys[k], outs[i])
                if mask is not None:
                    values.append(_metrics.masked_mean(v, sws[k], mask, what))
                    continue
                if sws[k] is None:
                    values.append(ops.mean(v))
                    continue
                sw = ops.broadcast_to(_expand_to(sws[k], v), tuple(ops.shape(v)))
                values.append(
                    ops.divide(ops.sum(ops.multiply(v, sw)), ops.maximum(ops.sum(sw), 1e-12))
                )
        return values

    @staticmethod
    def _read(B, scalars: list) -> list[float]:
        """All of a batch's scalars in one host read (a lone loss is read as it is: no
        reshape and concatenation on the hot path)."""
        if len(scalars) == 1:
            v = B.to_numpy(scalars[0])
            return [float(v if getattr(v, "ndim", 0) == 0 else np.reshape(v, (1,))[0])]
        dtype = B.dtype_name(scalars[0])
        flat = [
            B.reshape(B.cast(s, dtype) if B.dtype_name(s) != dtype else s, (1,)) for s in scalars
        ]
        return [float(v) for v in B.to_numpy(B.concatenate(flat, 0))]

    def _train_batch(self, c: Compiled, xs: list, ys: list, sws: list) -> list[float]:
        """One gradient step; returns the batch's loss and metrics (before the step).  The
        whole step holds the model's weights lock (see ``engine.functional.weights_lock``)."""
        from ..engine.functional import weights_lock

        with weights_lock(self):
            if c.dp is not None:
                return self._train_batch_dp(c, xs, ys, sws, c.dp)
            return self._train_batch_unlocked(c, xs, ys, sws)

    def _loss_fn(self, c: Compiled, xs: list, ys: list, sws: list) -> Any:
        """The function of the trainable values that a training step differentiates: the
        total loss, and (per-output losses, outputs, the layers' updates, the outputs'
        masks) as auxiliaries."""
        variables = c.trainable
        layers = c.update_layers
        own_loss = _custom.overrides(self, "compute_loss")

        def loss_fn(leaves):
            with (
                autodiff.substitute(variables, leaves),
                ops.logits_scope(),
                _K.training_phase(),
            ):
                for layer in layers:
                    if layer._updates:  # (an empty list stays: no attribute write per step)
                        layer._updates = []
                with collect_activity_losses() as activity:
                    outs, masks = self._run_graph_masked(xs, training=True)
                    if own_loss:  # the model's compute_loss (Keras 3) decides the loss
                        total = self.compute_loss(
                            _custom._pack(self, xs, "input"),
                            self._all_outputs(c, ys),
                            outs[0] if len(outs) == 1 else outs,
                            self._all_outputs(c, sws),
                        )
                        per_output = [total] * len(c.trained)
                if not own_loss:
                    total, per_output = self._losses(c, outs, ys, sws, activity, masks)
                updates = [
                    (var, autodiff.detach(value))
                    for layer in layers
                    for var, value in layer._updates
                ]
            aux = (
                [autodiff.detach(v) for v in per_output],
                [autodiff.detach(o) for o in outs],
                updates,
                masks,  # the outputs' masks (bool arrays or None): metrics count kept positions
            )
            return total, aux

        return loss_fn

    def _all_outputs(self, c: Compiled, values: list) -> Any:
        """Per trained output values, spread over all outputs (None where untrained)."""
        full: list[Any] = [None] * len(self.outputs)
        for k, i in enumerate(c.trained):
            full[i] = values[k]
        return full[0] if len(full) == 1 else full

    def _train_batch_unlocked(self, c: Compiled, xs: list, ys: list, sws: list) -> list[float]:
        B = _backend.current()
        if c.jit is not None:  # compile(jit_compile=True): the step compiled, where it can be
            logged = c.jit.train(B, self, c, xs, ys, sws)
            if logged is not None:
                return logged
        variables = c.trainable
        layers = c.update_layers
        loss_fn = self._loss_fn(c, xs, ys, sws)
        values = [v.value for v in variables]
        rows = self._sparse_rows(B, c, xs, values) if c.row_sparse else None
        try:
            with collect_added_metrics() as given:  # add_metric's values (added_metrics.py)
                loss, (per_output, outs, updates, masks), grads = autodiff.value_and_grad(
                    loss_fn, values
                )
        finally:
            for _, layer, _ in c.row_sparse:
                layer._sparse_inverse = None
        c.optimizer.apply(grads, variables, rows)
        for var, value in updates:
            var.assign(value)
        for layer in layers:
            if layer._updates:
                layer._updates = []
        scalars = [loss] + (per_output if len(self.outputs) > 1 else [])
        scalars += self._metric_values(c, outs, ys, sws, masks)
        return self._read(B, scalars + _added.fold(self, c, given))

    def _train_batch_dp(self, c: Compiled, xs: list, ys: list, sws: list, dp: Any) -> list[float]:
        """One data-parallel step: this rank's part of the global batch; the gradients, the
        batch's loss and metrics and the layers' updates, each weighted by this rank's
        sample count (a rank with no samples adds zeros), are summed over ranks in buckets
        (``distribute.GradientSum``: started during the backward pass where the backend
        allows, the loss and the rest in the last one), so that the step equals one
        process's step on the whole global batch."""
        B = _backend.current()
        columns, shared = _shared_metrics(c)
        variables = c.trainable
        values = [v.value for v in variables]
        update_vars = [v for layer in c.update_layers for v in layer.non_trainable_weights]
        n_local = int(B.shape(xs[0])[0]) if xs else 0
        dtype = B.dtype_name(values[0]) if values else "float32"
        weight = float(n_local)
        # gradients summed over ranks in buckets, during the backward pass where it can
        gradient_sum = dp.gradient_sum(B, values, dtype, weight)
        if n_local:
            token = _MASKED_DP.set((dp, n_local))
            try:
                with collect_added_metrics() as given:  # add_metric's values
                    loss, (per_output, outs, updates, masks), grads = gradient_sum.value_and_grad(
                        self._loss_fn(c, xs, ys, sws), values
                    )
            finally:
                _MASKED_DP.reset(token)
            for layer in c.update_layers:
                layer._updates = []
            scalars = [loss] + (per_output if len(self.outputs) > 1 else [])
            scalars += self._metric_values(c, outs, ys, sws, masks)
            scalars += _added.fold(self, c, given)
            new = {id(var): value for var, value in updates}
            update_values = [new.get(id(v), v.value) for v in update_vars]
        else:  # the global batch had too few samples to give this rank any: zeros
            _join_masked_dp(self, c, dp, train=True)
            scalars = [B.zeros((), dtype) for _ in c.names]
            update_values = [v.value for v in update_vars]
        parts = [B.multiply(a, weight) for a in [*scalars, *update_values]]
        # the metric objects' state (this rank's, since the epoch began) in the same bucket
        n_states = len(shared.variables)
        parts += shared.local()
        parts.append(B.asarray(np.asarray([weight], dtype)))
        summed = gradient_sum.finish(parts)
        total = float(np.asarray(B.to_numpy(summed[-1])).reshape(-1)[0])
        states = summed[len(summed) - 1 - n_states : -1]
        summed = [B.divide(a, total) for a in summed[: len(summed) - 1 - n_states]]
        grads = summed[: len(values)]
        scalars = summed[len(values) : len(values) + len(scalars)]
        c.optimizer.apply(grads, variables, None)
        for var, value in zip(update_vars, summed[len(values) + len(scalars) :]):
            var.assign(value)
        if shared:  # a metric object's running result over the global data so far
            for j, result in zip(columns, shared.results(states)):
                scalars[j] = result
        return self._read(B, scalars)

    def _data_parallel(self, c: Compiled, where: str, sync: bool = True) -> Any:
        """The data-parallel strategy this call trains under (torchrun, or
        ``distribute.set_distribution``), stored as ``c.dp``; None in one process.  With
        ``sync``, every rank first takes rank 0's weights."""
        dp = _distribute.distribution()
        if dp is not None and dp.world_size == 1:
            dp = None
        c.dp = dp
        if dp is None:
            return None
        reduced = [r for r in c.loss_reductions if r is not None]
        if reduced:  # ranks' losses are combined as shares of a mean over the global batch
            raise ValueError(
                f"{where}: a loss with reduction={reduced[0]!r} cannot train data-parallel "
                "here: each rank's loss counts as its share of the mean over the global "
                "batch; use the default reduction ('sum_over_batch_size'), scaled with "
                "loss_weights if needed"
            )
        if sync:
            dp.sync_weights(_backend.current(), self.weights)
            c.dp_synced = True
        return dp

    def _source_batches_dp(
        self,
        c: Compiled,
        source: _batches.BatchSource,
        raw_batches: Any,
        dp: Any,
        class_weight: Any = None,
    ) -> Any:
        """Data parallel: ``(xs, ys, sws, size)`` per global batch from Python, ``xs`` being
        this rank's part of it (split as the array path splits) and ``size`` the whole
        batch's.  Every rank reads the same batches; before each step one small all-reduce
        checks that all ranks have the batch and that the batches match, so a source that
        runs out on one rank only ends the training on every rank instead of hanging."""
        B = _backend.current()
        batches = iter(raw_batches)
        pos = 0
        while True:
            raw = next(batches, None)
            data = None
            if raw is not None:
                pos = raw[0]
                data = self._prepare_batch(c, source, pos, raw[1], True, class_weight)
            fingerprint = 0
            if data is not None:
                fingerprint = _distribute.batch_fingerprint(
                    [*data.inputs, *data.targets, *data.weights]
                )
            agreed = dp.step_census(
                B, None if data is None else data.n, fingerprint, source.where, source.what, pos
            )
            if agreed != "all" or data is None:
                if agreed == "some":
                    self.stop_training = True
                return
            yield (*data.batch(B, dp.shard(slice(0, data.n), data.n)), data.n)
            pos += 1

    @config.holding
    def _evaluate_source_dp(
        self,
        c: Compiled,
        source: _batches.BatchSource,
        steps: int | None,
        pool: _batches.PoolOptions | None,
        verbose: int = 0,
        callbacks: CallbackList | None = None,
    ) -> list[float]:
        """Data parallel: the loss and metrics over batches from Python, each rank
        evaluating its part of every batch; one all-reduce at the end sums the totals and
        checks that every rank read the same batches."""
        B = _backend.current()
        dp = c.dp
        c.reset_metric_objects()
        totals = np.zeros(len(c.names))
        seen = batches_read = 0
        fingerprint = 0
        bar = Progbar(steps, verbose=verbose) if verbose and dp.is_chief else None
        epoch_batches = source.epoch(steps, False, pool)
        try:
            for batch, raw in epoch_batches:
                data = self._prepare_batch(c, source, batch, raw, True)
                fingerprint = _distribute.batch_fingerprint(
                    [np.asarray([fingerprint]), *data.inputs, *data.targets, *data.weights]
                )
                size = data.n
                if callbacks is not None:
                    callbacks.call("on_test_batch_begin", batch, {"batch": batch, "size": size})
                part = dp.shard(slice(0, size), size)
                count = len(part)
                values = self._test_batch_dp(c, dp, data, part)
                totals += np.asarray(values) * count
                seen += size
                batches_read += 1
                if callbacks is not None:
                    logs = {"batch": batch, "size": size, **dict(zip(c.names, values))}
                    callbacks.call("on_test_batch_end", batch, logs)
                if bar is not None:
                    bar.update(batch + 1)
        finally:
            epoch_batches.close()
        source.end_epoch()
        columns, shared = _shared_metrics(c)
        # the totals and the metric objects' state summed in the same all-reduce
        summed_in = np.concatenate([totals, shared.local_host(B)])
        table, summed = dp.census(B, [batches_read, seen, fingerprint], summed_in)
        dp.check_same_stream(table, source.where, source.what)
        if not seen:
            raise DataError(f"{source.where}: {source.what} yielded no batches to evaluate on")
        if bar is not None and bar.target is None:
            bar.finish()
        out = [float(v) for v in summed[: len(totals)] / seen]
        if shared:
            results = shared.results(shared.from_host(B, summed[len(totals) :]))
            for j, value in zip(columns, results):
                out[j] = _as_number(B, value)
        return out

    @staticmethod
    def _sparse_rows(B, c: Compiled, xs: list, values: list) -> dict:
        """For each row-sparse embedding table: differentiate with respect to the batch's
        distinct rows only (``values[k]`` becomes those rows, the layer looks up positions
        among them), so the gradient and the optimizer touch nothing else."""
        rows = {}
        for k, layer, pos in c.row_sparse:
            idx = np.asarray(B.to_numpy(xs[pos]))
            if idx.dtype.kind not in "iu":  # a float Input (Keras' default): cast once, as
                idx = idx.astype(np.int64)  # the Embedding's own lookup does
            distinct, inverse = np.unique(idx, return_inverse=True)
            indices = B.asarray(distinct.astype(np.int64))
            layer._sparse_inverse = B.asarray(inverse.reshape(idx.shape).astype(np.int64))
            values[k] = B.take(values[k], indices)
            rows[k] = (indices, distinct)
        return rows

    def _test_batch(self, c: Compiled, xs: list, ys: list, sws: list) -> list[float]:
        B = _backend.current()
        with ops.logits_scope():  # crossentropy from logits (see training.losses)
            with collect_activity_losses() as activity, collect_added_metrics() as given:
                outs, masks = self._run_graph_masked(xs, training=False)
            total, per_output = self._losses(c, outs, ys, sws, activity, masks)
        scalars = [total] + (per_output if len(self.outputs) > 1 else [])
        scalars += self._metric_values(c, outs, ys, sws, masks)
        scalars += _added.fold(self, c, given)
        return self._read(B, [autodiff.detach(s) for s in scalars])

    def _test_batch_dp(self, c: Compiled, dp: Any, data: _Arrays, part: Any) -> list[float]:
        """Data parallel: the loss and metrics of this rank's ``part`` of a batch (zeros
        when it is empty; a masked output's loss as this rank's share: see
        :func:`_masked_scales`)."""
        count = len(part)
        if not count:
            _join_masked_dp(self, c, dp, train=False)
            return [0.0] * len(c.names)
        token = _MASKED_DP.set((dp, count))
        try:
            return self._test_batch(c, *data.batch(_backend.current(), part))
        finally:
            _MASKED_DP.reset(token)

    # -- the loops --------------------------------------------------------------------------------
    @config.holding
    def _evaluate_arrays(
        self,
        c: Compiled,
        data: _Arrays,
        batch_size: int,
        verbose: int = 0,
        callbacks: CallbackList | None = None,
        steps: int | None = None,
    ) -> list[float]:
        """Averages over the first ``steps`` batches (all when None), as Keras 3 counts."""
        B = _backend.current()
        dp = c.dp  # data parallel: each rank evaluates its part of each batch
        c.reset_metric_objects()
        totals = np.zeros(len(c.names))
        values: list[float] = []
        n = data.n if steps is None else min(data.n, int(steps) * batch_size)
        bar = Progbar(n, verbose=verbose) if verbose and (dp is None or dp.is_chief) else None
        for batch, start in enumerate(range(0, n, batch_size)):
            index = slice(start, min(start + batch_size, n))
            size = index.stop - index.start
            if callbacks is not None:
                callbacks.call("on_test_batch_begin", batch, {"batch": batch, "size": size})
            part: Any = index if dp is None else dp.shard(index, data.n)
            count = size if dp is None else len(part)
            if dp is None:
                values = self._test_batch(c, *data.batch(B, part))
            else:
                values = self._test_batch_dp(c, dp, data, part)
            totals += np.asarray(values) * count
            if callbacks is not None:
                logs = {"batch": batch, "size": size, **dict(zip(c.names, values))}
                callbacks.call("on_test_batch_end", batch, logs)
            if bar is not None:
                bar.update(index.stop)
        if dp is not None:  # the totals and the metric objects' state, in one all-reduce
            columns, shared = _shared_metrics(c)
            local = np.concatenate([totals, shared.local_host(B)])
            summed = np.asarray(B.to_numpy(dp.all_reduce_sum(B, B.asarray(local))), np.float64)
            totals = summed[: len(totals)]
            values = [0.0] * len(c.names)
            if shared:
                results = shared.results(shared.from_host(B, summed[len(totals) :]))
                for j, value in zip(columns, results):
                    values[j] = _as_number(B, value)
        return _final_values(c, totals / max(n, 1), values)

    @_distribute.reports_failures
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int = 1,
        callbacks: Any = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: Any = True,
        class_weight: Any = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_freq: Any = 1,
        max_queue_size: int | None = None,
        workers: int | None = None,
        use_multiprocessing: bool | None = None,
        **kwargs: Any,
    ) -> History:
        """Train for ``epochs`` epochs (Keras 1's ``nb_epoch`` works too); return a History.

        ``x``/``y`` are arrays, lists of arrays or dicts by input/output name; or ``x``
        yields batches (a generator of ``(x, y[, sample_weight])``, a ``utils.Sequence``,
        a DataLoader; ``y`` is then None), prepared ahead by ``workers`` threads.  The last
        ``validation_split`` fraction of the samples (taken before shuffling) is held out;
        ``validation_data`` may be arrays or batches, checked every ``validation_freq``
        epochs (an int, or a list of epoch numbers counted from 1).
        The environment variable ``POLYKERAS_MAX_EPOCHS`` caps the number of epochs run.
        Every argument and array is checked before any weight changes.
        """
        if "nb_epoch" in kwargs:
            epochs = kwargs.pop("nb_epoch")
        if kwargs:
            raise TypeError(f"fit: keyword argument(s) not understood: {', '.join(sorted(kwargs))}")
        c = self._require_compiled()
        initial_epoch = as_int(initial_epoch, "initial_epoch", "fit", minimum=0)
        epochs = _check_epochs(epochs, initial_epoch)
        verbose = check_verbose(verbose, "fit")
        if isinstance(shuffle, str) and shuffle == "batch":
            shuffle = "batch"
        elif isinstance(shuffle, (bool, np.bool_)) or (
            isinstance(shuffle, (int, np.integer)) and shuffle in (0, 1)
        ):
            shuffle = bool(shuffle)
        else:
            raise ValueError(f"fit: shuffle must be True, False or 'batch', got {shuffle!r}")
        validation_split = as_float(
            validation_split, "validation_split", "fit", low=0.0, high=1.0, high_open=True
        )
        steps_per_epoch = check_steps(steps_per_epoch, "steps_per_epoch", "fit")
        validation_steps = check_steps(validation_steps, "validation_steps", "fit")
        val_freq = _check_validation_freq(validation_freq)
        user_callbacks = check_callbacks(callbacks)
        source = None
        if _batches.is_batch_source(x):
            source = _batches.BatchSource(x, "fit")
            _refuse_beside_batches(
                "fit", source, y=y, sample_weight=sample_weight, batch_size=batch_size
            )
            if validation_split:
                raise DataError(
                    f"fit: validation_split={validation_split!r} splits arrays only; x is "
                    f"{_batches.describe(x)}: pass validation_data instead"
                )
            steps_per_epoch = source.steps(steps_per_epoch, "steps_per_epoch")
            if not c.resolved:  # a model built from its data: build it from the first batch
                self._prepare_batch(c, source, 0, source.peek(), True, class_weight)
        else:
            batch_size = _check_batch_size(batch_size, "fit")
        val_source = None
        if validation_data is not None and _batches.is_batch_source(validation_data):
            val_source = _batches.BatchSource(validation_data, "fit", "validation_data")
            validation_steps = val_source.steps(validation_steps, "validation_steps")
            runs = _count_validations(int(initial_epoch), epochs, val_freq)
            if validation_steps is None and val_source.length is None and runs > 1:
                raise DataError(
                    f"fit: validation_data is {_batches.describe(validation_data)}, which is "
                    f"consumed once, but {runs} epochs validate: pass validation_steps (the "
                    "batches per validation), or a Sequence or DataLoader"
                )
        pool = None
        if source is not None or val_source is not None:
            pool = _batches.PoolOptions("fit", workers, use_multiprocessing, max_queue_size)
            for s in (source, val_source):
                if s is not None:
                    s.check_pool(pool)
        else:
            _batches.PoolOptions.refuse_for_arrays(
                "fit",
                workers=workers,
                use_multiprocessing=use_multiprocessing,
                max_queue_size=max_queue_size,
            )
        train = val = None
        if source is None:
            train = self._prepare_data(x, y, sample_weight, class_weight)
        if validation_data is not None and val_source is None:
            val = self._validation_arrays(validation_data)
        elif validation_split and train is not None:
            train, val = train.split(
                int(train.n * (1.0 - float(validation_split))),
                f"validation_split={validation_split}",
            )
        if train is not None and train.n == 0:
            raise DataError("fit got no samples (the arrays are empty)")
        do_validation = val is not None or val_source is not None

        c.refresh(self)
        custom_train = _custom.overrides(self, "train_step")
        custom_test = _custom.overrides(self, "test_step")
        dp = self._data_parallel(c, "fit")
        if dp is not None:
            verbose = verbose if dp.is_chief else 0
            user_callbacks = [
                k for k in user_callbacks if dp.is_chief or not getattr(k, "_chief_only", False)
            ]
        if not custom_train:  # the names add_metric logs (added_metrics.py)
            _added.prepare(self, c, self._first_inputs(c, train, source), "fit")
        self.history = History()
        cb = CallbackList(user_callbacks + [self.history])
        if verbose:
            running = [c.names[j] for j in getattr(c, "stateful_columns", [])]  # metric objects
            cb.append(ProgbarLogger("steps" if steps_per_epoch or source else "samples", running))
        cb.set_model(self)
        val_names = [f"val_{k}" for k in c.names] if do_validation else []
        steps: int | None
        if train is not None:
            assert batch_size is not None
            steps = steps_per_epoch or -(-train.n // batch_size)
        else:
            steps = steps_per_epoch
        cb.set_params(
            {
                "batch_size": batch_size,
                "epochs": epochs,
                "steps": steps,
                "samples": train.n if train is not None else None,
                "verbose": verbose,
                "do_validation": do_validation,
                "metrics": list(c.names) + val_names,
            }
        )
        self.stop_training = False
        if verbose and val is not None and train is not None:
            print(f"Train on {train.n} samples, validate on {val.n} samples")
        self._resume_epoch = None
        cb.call("on_train_begin", {})
        if self._resume_epoch is not None:  # BackupAndRestore found a finished epoch
            initial_epoch = max(int(initial_epoch), self._resume_epoch)
            self._resume_epoch = None
        plan = None
        rng = np.random.default_rng(dp.shared_seed()) if dp is not None else None
        if train is not None:
            plan = _BatchPlan(train.n, batch_size or 32, shuffle, steps_per_epoch, rng)
        for epoch in range(int(initial_epoch), epochs):
            cb.call("on_epoch_begin", epoch, {})
            if source is not None:
                epoch_batches = source.epoch(steps_per_epoch, shuffle, pool, rng)
                batches = (
                    self._source_batches(c, source, epoch_batches, True, class_weight)
                    if dp is None
                    else self._source_batches_dp(c, source, epoch_batches, dp, class_weight)
                )
                try:
                    logs, seen = self._epoch(c, batches, cb, custom_train)
                finally:
                    epoch_batches.close()  # no worker outlives its epoch, even on errors
                source.end_epoch()
                if epoch_batches.ran_out:
                    _batches.ran_out_warning("fit", source.what)
                    self.stop_training = True
                    if not seen:
                        break
            else:
                assert train is not None and plan is not None
                batches = _array_batches(train, plan.epoch(), dp)
                logs, _ = self._epoch(c, batches, cb, custom_train)
            if do_validation and not self.stop_training and _validates(epoch, val_freq):
                if custom_test:  # the model's own test_step: its logs, as val_<name>
                    val_logs = self._custom_validation(
                        c, val, val_source, batch_size or 32, validation_steps, pool
                    )
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                    values = []
                elif val_source is not None:
                    evaluate = self._evaluate_source if dp is None else self._evaluate_source_dp
                    values = evaluate(c, val_source, validation_steps, pool)
                else:
                    assert val is not None
                    values = self._evaluate_arrays(c, val, batch_size or 32, steps=validation_steps)
                logs.update(zip(val_names, values))
            cb.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        cb.call("on_train_end", {})
        return self.history

    def _epoch(self, c: Compiled, batches: Any, cb: CallbackList, custom: bool) -> tuple:
        """One epoch: polykeras' step, or the model's own ``train_step`` (its last logs)."""
        if not custom:
            return self._train_epoch(c, batches, cb)
        seen = 0

        def counted() -> Any:
            nonlocal seen
            for batch in batches:
                seen += batch[3]
                yield batch

        return self._custom_step_batches(c, counted(), cb, True), seen

    def _custom_validation(
        self, c: Compiled, val: Any, val_source: Any, batch_size: int, steps: Any, pool: Any
    ) -> dict:
        """Validation through the model's own ``test_step`` (data parallel: each rank its
        part of every batch)."""
        if val_source is None:
            plan = _BatchPlan(val.n, batch_size, False, steps)
            batches = _array_batches(val, plan.epoch(), c.dp)
            return self._custom_step_batches(c, batches, None, False)
        epoch_batches = val_source.epoch(steps, False, pool)
        try:
            batches = (
                self._source_batches(c, val_source, epoch_batches, True)
                if c.dp is None
                else self._source_batches_dp(c, val_source, epoch_batches, c.dp)
            )
            return self._custom_step_batches(c, batches, None, False)
        finally:
            epoch_batches.close()

    def _prepare_batch(
        self,
        c: Compiled,
        source: _batches.BatchSource,
        pos: int,
        raw: Any,
        targets: bool,
        class_weight: Any = None,
    ) -> _Arrays:
        """One batch from Python as checked arrays; errors name the batch and its source."""
        x, y, sw = _batches.split_batch(raw, pos, source.what, source.where, targets)
        try:
            if not targets:
                inputs = self._standardize_inputs(x)
                n = _data.check_same_length(inputs, "input", self.input_names)
                return _Arrays(inputs, [], [], n)
            return self._prepare_data(x, y, sw, class_weight)
        except DataError as exc:
            raise DataError(f"{source.where}: in batch {pos} from {source.what}: {exc}") from None

    def _source_batches(
        self,
        c: Compiled,
        source: _batches.BatchSource,
        raw_batches: Any,
        targets: bool = True,
        class_weight: Any = None,
    ) -> Any:
        """``(xs, ys, sws, size)`` per batch from Python, as backend arrays."""
        B = _backend.current()
        for pos, raw in raw_batches:
            data = self._prepare_batch(c, source, pos, raw, targets, class_weight)
            yield (*data.batch(B, slice(0, data.n)), data.n)

    @config.holding
    def _evaluate_source(
        self,
        c: Compiled,
        source: _batches.BatchSource,
        steps: int | None,
        pool: _batches.PoolOptions | None,
        verbose: int = 0,
        callbacks: CallbackList | None = None,
    ) -> list[float]:
        """The loss and metrics over batches from Python, averaged weighting by batch size
        (a metric object's value: its result after the last batch)."""
        c.reset_metric_objects()
        totals = np.zeros(len(c.names))
        values: list[float] = []
        seen = 0
        bar = Progbar(steps, verbose=verbose) if verbose else None
        epoch_batches = source.epoch(steps, False, pool)
        batches = self._source_batches(c, source, epoch_batches, True)
        try:
            for batch, (xs, ys, sws, size) in enumerate(batches):
                if callbacks is not None:
                    callbacks.call("on_test_batch_begin", batch, {"batch": batch, "size": size})
                values = self._test_batch(c, xs, ys, sws)
                totals += np.asarray(values) * size
                seen += size
                if callbacks is not None:
                    logs = {"batch": batch, "size": size, **dict(zip(c.names, values))}
                    callbacks.call("on_test_batch_end", batch, logs)
                if bar is not None:
                    bar.update(batch + 1)
        finally:
            epoch_batches.close()
        source.end_epoch()
        if not seen:
            raise DataError(f"{source.where}: {source.what} yielded no batches to evaluate on")
        if bar is not None and bar.target is None:
            bar.finish()
        return _final_values(c, totals / seen, values)

    @config.holding
    def _train_epoch(
        self, c: Compiled, batches: Any, cb: CallbackList
    ) -> tuple[dict[str, float], int]:
        """Train on each ``(xs, ys, sws, size)`` batch; return the epoch's averages (weighted
        by batch size; a metric object's value is its result after the last batch) and the
        number of samples seen."""
        c.reset_metric_objects()
        totals = np.zeros(len(c.names))
        values: list[float] = []
        seen = 0
        for batch, (xs, ys, sws, size) in enumerate(batches):
            logs = {"batch": batch, "size": size}
            cb.call("on_train_batch_begin", batch, logs)
            values = self._train_batch(c, xs, ys, sws)
            totals += np.asarray(values) * size
            seen += size
            logs.update(zip(c.names, values))
            cb.call("on_train_batch_end", batch, logs)
            if self.stop_training:
                break
        return dict(zip(c.names, _final_values(c, totals / max(seen, 1), values))), seen

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int = 1,
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Any = None,
        max_queue_size: int | None = None,
        workers: int | None = None,
        use_multiprocessing: bool | None = None,
        return_dict: bool = False,
        **kwargs: Any,
    ) -> Any:
        """The loss (and metrics) on ``x``/``y``: a scalar, or a list in ``metrics_names``
        order when there are metrics or several outputs (Keras 2); a dict by metric name
        with ``return_dict=True``.  ``x`` may yield batches (as for ``fit``); ``steps``
        limits the batches evaluated."""
        if kwargs:
            raise TypeError(
                f"evaluate: keyword argument(s) not understood: {', '.join(sorted(kwargs))}"
            )
        c = self._require_compiled()
        verbose = check_verbose(verbose, "evaluate")
        steps = check_steps(steps, "steps", "evaluate")
        cb = CallbackList(check_callbacks(callbacks))
        cb.set_model(self)
        if _custom.overrides(self, "test_step"):
            logs = self._evaluate_custom(
                c,
                x,
                y,
                sample_weight,
                batch_size,
                steps,
                cb,
                (workers, use_multiprocessing, max_queue_size),
            )
            if return_dict:
                return logs
            values = list(logs.values())
            return values[0] if len(values) == 1 else values
        if _batches.is_batch_source(x):
            source = _batches.BatchSource(x, "evaluate")
            _refuse_beside_batches(
                "evaluate", source, y=y, sample_weight=sample_weight, batch_size=batch_size
            )
            pool = _batches.PoolOptions("evaluate", workers, use_multiprocessing, max_queue_size)
            source.check_pool(pool)
            n_steps = source.steps(steps, "steps")
            if not c.resolved:
                self._prepare_batch(c, source, 0, source.peek(), True)
            _added.prepare(self, c, self._first_inputs(c, None, source), "evaluate")
            params = {"batch_size": None, "samples": None, "steps": n_steps}
            cb.set_params({**params, "verbose": verbose, "metrics": list(c.names)})
            cb.call("on_test_begin", {})
            dp = self._data_parallel(c, "evaluate", sync=False)
            evaluate = self._evaluate_source if dp is None else self._evaluate_source_dp
            values = evaluate(
                c, source, n_steps, pool, verbose=1 if verbose == 1 else 0, callbacks=cb
            )
        else:
            _batches.PoolOptions.refuse_for_arrays(
                "evaluate",
                workers=workers,
                use_multiprocessing=use_multiprocessing,
                max_queue_size=max_queue_size,
            )
            batch_size = _check_batch_size(batch_size, "evaluate")
            data = self._prepare_data(x, y, sample_weight)
            if data.n == 0:
                raise DataError("evaluate got no samples (the arrays are empty)")
            all_steps = -(-data.n // batch_size)
            _added.prepare(self, c, self._first_inputs(c, data, None), "evaluate")
            cb.set_params(
                {
                    "batch_size": batch_size,
                    "samples": data.n,
                    "verbose": verbose,
                    "metrics": list(c.names),
                    "steps": all_steps if steps is None else min(int(steps), all_steps),
                }
            )
            cb.call("on_test_begin", {})
            self._data_parallel(c, "evaluate", sync=False)
            values = self._evaluate_arrays(
                c, data, batch_size, verbose=1 if verbose == 1 else 0, callbacks=cb, steps=steps
            )
        cb.call("on_test_end", dict(zip(c.names, values)))
        if return_dict:
            return dict(zip(c.names, values))
        return values[0] if len(values) == 1 else values

    def _evaluate_custom(
        self,
        c: Compiled,
        x: Any,
        y: Any,
        sample_weight: Any,
        batch_size: Any,
        steps: Any,
        cb: CallbackList,
        pool_options: tuple,
    ) -> dict:
        """``evaluate`` through the model's own ``test_step``: the logs of its last step
        (data parallel: each rank runs it on its part of every batch, the logs are global)."""
        dp = self._data_parallel(c, "evaluate", sync=False)
        cb.set_params({"verbose": 0, "steps": steps, "metrics": []})
        cb.call("on_test_begin", {})
        if _batches.is_batch_source(x):
            source = _batches.BatchSource(x, "evaluate")
            _refuse_beside_batches(
                "evaluate", source, y=y, sample_weight=sample_weight, batch_size=batch_size
            )
            pool = _batches.PoolOptions("evaluate", *pool_options)
            source.check_pool(pool)
            n_steps = source.steps(steps, "steps")
            epoch_batches = source.epoch(n_steps, False, pool)
            try:
                batches = (
                    self._source_batches(c, source, epoch_batches, True)
                    if dp is None
                    else self._source_batches_dp(c, source, epoch_batches, dp)
                )
                logs = self._custom_step_batches(c, batches, cb, False)
            finally:
                epoch_batches.close()
            source.end_epoch()
        else:
            batch_size = _check_batch_size(batch_size, "evaluate")
            data = self._prepare_data(x, y, sample_weight)
            if data.n == 0:
                raise DataError("evaluate got no samples (the arrays are empty)")
            plan = _BatchPlan(data.n, batch_size, False, steps)
            batches = _array_batches(data, plan.epoch(), dp)
            logs = self._custom_step_batches(c, batches, cb, False)
        cb.call("on_test_end", dict(logs))
        return logs

    # -- Keras 2's generator methods ----------------------------------------------------------
    def fit_generator(
        self,
        generator: Any,
        steps_per_epoch: int | None = None,
        epochs: int = 1,
        verbose: int = 1,
        callbacks: Any = None,
        validation_data: Any = None,
        validation_steps: int | None = None,
        validation_freq: Any = 1,
        class_weight: Any = None,
        max_queue_size: int = 10,
        workers: int = 1,
        use_multiprocessing: bool = False,
        shuffle: bool = True,
        initial_epoch: int = 0,
    ) -> History:
        """Keras 2's ``fit_generator``: ``fit`` on batches from a generator or Sequence."""
        _require_batches("fit_generator", generator)
        return self.fit(
            generator,
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_data=validation_data,
            validation_steps=validation_steps,
            validation_freq=validation_freq,
            class_weight=class_weight,
            max_queue_size=max_queue_size,
            workers=workers,
            use_multiprocessing=use_multiprocessing,
            shuffle=shuffle,
            initial_epoch=initial_epoch,
        )

    def evaluate_generator(
        self,
        generator: Any,
        steps: int | None = None,
        callbacks: Any = None,
        max_queue_size: int = 10,
        workers: int = 1,
        use_multiprocessing: bool = False,
        verbose: int = 0,
    ) -> Any:
        """Keras 2's ``evaluate_generator``: ``evaluate`` on batches from Python."""
        _require_batches("evaluate_generator", generator)
        return self.evaluate(
            generator,
            steps=steps,
            callbacks=callbacks,
            max_queue_size=max_queue_size,
            workers=workers,
            use_multiprocessing=use_multiprocessing,
            verbose=verbose,
        )

    def predict_generator(
        self,
        generator: Any,
        steps: int | None = None,
        callbacks: Any = None,
        max_queue_size: int = 10,
        workers: int = 1,
        use_multiprocessing: bool = False,
        verbose: int = 0,
    ) -> Any:
        """Keras 2's ``predict_generator``: ``predict`` on batches from Python."""
        _require_batches("predict_generator", generator)
        if callbacks is not None:
            raise ValueError(
                "predict_generator: callbacks are not supported by polykeras' predict; "
                "leave them None"
            )
        return self.predict(
            generator,
            steps=steps,
            max_queue_size=max_queue_size,
            workers=workers,
            use_multiprocessing=use_multiprocessing,
            verbose=verbose,
        )

    # -- predict (the engine runs the graph; the loop, the checks and the batches are here) --
    def _standardize_inputs(self, x: Any) -> list[np.ndarray]:
        """Model inputs as NumPy arrays in input order, from an array, a list or a dict,
        checked against the inputs' shapes and dtypes."""
        return _data.standardize_inputs(self, x)

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: int = 0,
        steps: int | None = None,
        max_queue_size: int | None = None,
        workers: int | None = None,
        use_multiprocessing: bool | None = None,
    ) -> Any:
        """Outputs for ``x`` (NumPy in, NumPy out), computed in batches (default 32);
        ``verbose=1`` shows a progress bar.  ``x`` may yield batches (a generator, a
        ``utils.Sequence``, a DataLoader: each batch ``x``, or a tuple whose first element
        is ``x``); ``steps`` limits the batches predicted."""
        check_custom_steps(self, "predict")
        if _custom.overrides(self, "predict_step"):
            return _custom.predict(self, x, batch_size, steps)
        if _batches.is_batch_source(x):
            if batch_size is not None:
                raise ValueError(
                    f"predict: x is {_batches.describe(x)}, whose batches have their own "
                    "size; leave batch_size None"
                )
            pool = _batches.PoolOptions("predict", workers, use_multiprocessing, max_queue_size)
            _batches.BatchSource(x, "predict").check_pool(pool)
            return _data.predict_batches(self, x, steps, pool, verbose=verbose)
        _batches.PoolOptions.refuse_for_arrays(
            "predict",
            workers=workers,
            use_multiprocessing=use_multiprocessing,
            max_queue_size=max_queue_size,
        )
        return _data.predict_arrays(self, x, batch_size=batch_size, verbose=verbose, steps=steps)

    def predict_on_batch(self, x: Any) -> Any:
        check_custom_steps(self, "predict_on_batch")
        arrays = self._standardize_inputs(x)
        n = arrays[0].shape[0] if arrays else 0
        return _data.predict_arrays(
            self, arrays, batch_size=max(n, 1), verbose=0, distributed=False
        )

    def _first_inputs(self, c: Compiled, data: Any, source: Any) -> Any:
        """A function giving the first samples' inputs as backend arrays (for
        ``added_metrics.prepare``), from arrays or from a batch source."""

        def first() -> list:
            arrays = data
            if arrays is None:
                arrays = self._prepare_batch(c, source, 0, source.peek(), True)
            return arrays.batch(_backend.current(), slice(0, 2))[0]

        return first

    def _custom_one_batch(self, name: str, data: _Arrays) -> Any:
        """``train_on_batch``/``test_on_batch`` through the model's own step: its logs'
        values (one, or a list), from freshly reset metrics."""
        self.reset_metrics()
        xs, ys, sws = data.batch(_backend.current(), slice(0, data.n))
        logs = _custom.run_step(self, name, _custom.batch_data(self, xs, ys, sws))
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def train_on_batch(
        self, x: Any, y: Any, sample_weight: Any = None, class_weight: Any = None
    ) -> Any:
        """One gradient step on one batch; returns the loss (and metrics) before the step."""
        c = self._require_compiled()
        data = self._prepare_data(x, y, sample_weight, class_weight)
        if data.n == 0:
            raise DataError("train_on_batch got no samples (the arrays are empty)")
        c.refresh(self)
        if not _custom.overrides(self, "train_step"):
            _added.prepare(self, c, self._first_inputs(c, data, None), "train_on_batch")
        self._data_parallel(c, "train_on_batch", sync=not c.dp_synced)
        c.reset_metric_objects()  # as Keras' reset_metrics=True: this batch's result only
        if _custom.overrides(self, "train_step"):  # the model's own step (Keras 3)
            return self._custom_one_batch("train_step", data)
        values = self._train_batch(c, *data.batch(_backend.current(), slice(0, data.n)))
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> Any:
        """The loss (and metrics) on one batch, without training."""
        c = self._require_compiled()
        data = self._prepare_data(x, y, sample_weight)
        if data.n == 0:
            raise DataError("test_on_batch got no samples (the arrays are empty)")
        if not _custom.overrides(self, "test_step"):
            _added.prepare(self, c, self._first_inputs(c, data, None), "test_on_batch")
        c.reset_metric_objects()  # as Keras' reset_metrics=True: this batch's result only
        if _custom.overrides(self, "test_step"):  # the model's own step (Keras 3)
            return self._custom_one_batch("test_step", data)
        values = self._test_batch(c, *data.batch(_backend.current(), slice(0, data.n)))
        return values[0] if len(values) == 1 else values


def check_custom_steps(model: Any, where: str) -> None:
    """Refuse user code polykeras' loops would silently pass over: a ``call`` of its own on
    a model built from Input tensors (its graph runs, not the method), and a
    ``compute_metrics`` of its own without a ``train_step``/``test_step`` that calls it."""
    if getattr(model, "_is_graph_network", False) and _custom.overrides(model, "call"):
        raise NotImplementedError(
            f"{where}: model {model.name} ({type(model).__name__}) was built from Input "
            "tensors and also overrides call; polykeras runs the graph of such a model, "
            "never its call: build it either from tensors or with a call of its own"
        )
    if _custom.overrides(model, "compute_metrics") and not (
        _custom.overrides(model, "train_step") or _custom.overrides(model, "test_step")
    ):
        raise NotImplementedError(
            f"{where}: model {model.name} ({type(model).__name__}) overrides "
            "compute_metrics, which polykeras' own training step does not call; override "
            "train_step/test_step too and call it there"
        )


def _refuse_beside_batches(where: str, source: Any, **given: Any) -> None:
    """``y``, ``sample_weight``, ``batch_size`` come with the batches, never beside them."""
    named = [k for k, v in given.items() if v is not None]
    if named:
        raise DataError(
            f"{where}: x is {source.what.split(' given as ')[0]}, whose batches carry the "
            f"targets (x, y) or (x, y, sample_weight) and their own size; leave "
            f"{', '.join(named)} None"
        )


def _require_batches(where: str, data: Any) -> None:
    if not _batches.is_batch_source(data):
        raise DataError(
            f"{where} takes batches from Python (a generator of (x, y) tuples, a "
            f"keras.utils.Sequence, a DataLoader), got {type(data).__name__}; for "
            f"arrays use {where.split('_')[0]}()"
        )


def _check_validation_freq(freq: Any) -> Any:
    """``validation_freq``: a positive int (every n epochs) or a collection of epochs (from 1)."""
    if isinstance(freq, (int, np.integer)) and not isinstance(freq, bool):
        if freq < 1:
            raise ValueError(f"fit: validation_freq must be >= 1, got {freq!r}")
        return int(freq)
    if isinstance(freq, (list, tuple, set, range)) and all(
        isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in freq
    ):
        if any(e < 1 for e in freq):
            raise ValueError(
                f"fit: validation_freq lists epoch numbers counted from 1, got {freq!r}"
            )
        return {int(e) for e in freq}
    raise ValueError(
        f"fit: validation_freq must be an int (validate every n epochs) or a list of "
        f"epoch numbers (counted from 1), got {freq!r}"
    )


def _validates(epoch: int, freq: Any) -> bool:
    """Whether epoch ``epoch`` (counted from 0) runs validation (Keras 2.3's rule)."""
    return (epoch + 1) % freq == 0 if isinstance(freq, int) else (epoch + 1) in freq


def _count_validations(first: int, epochs: int, freq: Any) -> int:
    return sum(1 for e in range(first, epochs) if _validates(e, freq))


def _array_batches(data: _Arrays, indices: list, dp: Any = None) -> Any:
    """``(xs, ys, sws, size)`` per batch of ``data`` (slices or index arrays).  Data
    parallel: this rank's part of each batch, with the size of the whole (global) batch."""
    B = _backend.current()
    for index in indices:
        size = (index.stop - index.start) if isinstance(index, slice) else len(index)
        if dp is not None:
            index = dp.shard(index, data.n)
        yield (*data.batch(B, index), size)


def _loose_arrays(value: Any, n: int, what: str) -> list[np.ndarray]:
    """Targets or weights for a model without a compiled loss: arrays (one, a list, or a
    dict's values), each with ``n`` samples, passed on as they are."""
    if value is None:
        return []
    items = list(value.values()) if isinstance(value, dict) else value
    if not isinstance(items, (list, tuple)) or (items and np.isscalar(items[0])):
        items = [items]
    out = []
    for a in items:
        arr = np.asarray(a)
        if arr.dtype == object or arr.ndim == 0 or arr.shape[0] != n:
            raise DataError(
                f"{what} must hold arrays with one row per sample ({n}), got "
                f"{arr.dtype} of shape {arr.shape}"
            )
        out.append(arr)
    return out


def _check_epochs(epochs: Any, initial_epoch: int) -> int:
    """``epochs``, capped by ``POLYKERAS_MAX_EPOCHS`` (counted from ``initial_epoch``)."""
    epochs = as_int(epochs, "epochs", "fit", minimum=0)
    cap = max_epochs()
    return epochs if cap is None else min(epochs, int(initial_epoch) + cap)


def _expand_to_np(weights: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Per-sample ``weights`` (1-D) reshaped to broadcast against ``like``."""
    return weights.reshape(weights.shape + (1,) * (like.ndim - weights.ndim))


def _expand_to(weights: Any, values: Any) -> Any:
    """Sample weights reshaped to broadcast against per-sample values of more dimensions."""
    extra = len(ops.shape(values)) - len(ops.shape(weights))
    if extra <= 0:
        return weights
    return ops.reshape(weights, tuple(ops.shape(weights)) + (1,) * extra)


class _Arrays:
    """A data set as checked NumPy arrays: inputs, targets, sample weights (or None)."""

    def __init__(self, inputs: list, targets: list, weights: list, n: int):
        self.inputs, self.targets, self.weights, self.n = inputs, targets, weights, n

    def split(self, at: int, what: str) -> tuple[_Arrays, _Arrays]:
        """The samples before ``at`` and from ``at`` on (validation_split's last part)."""
        if at <= 0 or at >= self.n:
            raise DataError(f"{what} leaves no training or no validation samples out of {self.n}")

        def cut(arrays, part):
            return [None if a is None else (a[:at] if part == 0 else a[at:]) for a in arrays]

        return (
            _Arrays(cut(self.inputs, 0), cut(self.targets, 0), cut(self.weights, 0), at),
            _Arrays(cut(self.inputs, 1), cut(self.targets, 1), cut(self.weights, 1), self.n - at),
        )

    def batch(self, B: Any, index: Any) -> tuple[list, list, list]:
        """One batch as backend arrays (one conversion per array)."""

        def conv(arrays):
            return [None if a is None else B.asarray(a[index]) for a in arrays]

        return conv(self.inputs), conv(self.targets), conv(self.weights)


class _BatchPlan:
    """The batches of each epoch: slices in order, or index arrays when shuffling (numpy's
    global generator, which ``set_random_seed`` seeds).  With ``steps_per_epoch``, epochs
    take that many batches, going through the data cyclically."""

    def __init__(self, n: int, batch_size: int, shuffle: Any, steps: int | None, rng: Any = None):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self._rng = np.random if rng is None else rng  # data parallel: a generator all ranks share
        self.steps = None if steps is None else int(steps)
        self._order = np.arange(n)
        self._cursor = 0

    def _new_order(self) -> np.ndarray:
        n, size = self.n, self.batch_size
        if self.shuffle == "batch":  # Keras' batch shuffling: whole batches change places
            starts = self._rng.permutation(-(-n // size)) * size
            return np.concatenate([np.arange(s, min(s + size, n)) for s in starts])
        return self._rng.permutation(n) if self.shuffle else np.arange(n)

    def epoch(self) -> list:
        n, size = self.n, self.batch_size
        if self.steps is None:
            if not self.shuffle:
                return [slice(s, min(s + size, n)) for s in range(0, n, size)]
            order = self._new_order()
            return [order[s : s + size] for s in range(0, n, size)]
        out = []
        for _ in range(self.steps):
            if self._cursor == 0 or self._cursor >= n:
                self._order = self._new_order()
                self._cursor = 0
            out.append(self._order[self._cursor : self._cursor + size])
            self._cursor += size
        return out


# -- metric objects (stateful metrics given to compile) -----------------------------------------
def _update_metric(metric: Any, y_true: Any, y_pred: Any, sample_weight: Any, mask: Any) -> Any:
    """Update a metric object with a batch (the mask, as Keras 3 does, a weight of each
    position, times the sample weights) and return its running result."""
    weight = sample_weight
    if mask is not None:
        weight = _metrics._times(ops.cast(mask, ops.dtype_name(y_pred)), sample_weight)
    metric.update_state(y_true, y_pred, sample_weight=weight)
    result = metric.result()
    if tuple(ops.shape(result)) != ():
        raise ValueError(
            f"metric {metric.name} ({type(metric).__name__}) gives a result of shape "
            f"{tuple(ops.shape(result))}; compile's logs hold one number per metric: give it "
            "one threshold (e.g. thresholds=0.5), or use it outside compile"
        )
    return result


def _final_values(c: Compiled, averages: Any, last: list[float]) -> list[float]:
    """The epoch's values: batch-size-weighted averages, except a metric object's, which is
    its result after the last batch (``last``: that batch's values)."""
    out = [float(v) for v in averages]
    if last:
        for j in c.stateful_columns:
            out[j] = float(last[j])
    return out


def _shared_metrics(c: Compiled) -> tuple[list[int], _distribute.SharedMetrics]:
    """Data parallel: the columns of ``c.names`` that are a metric object's running result,
    and those metric objects, whose state is summed over ranks where results are read
    (each step of fit, the end of an evaluation: see ``distribute.SharedMetrics``)."""
    # the metric columns follow the losses, in the order _metric_values computes them, and
    # add_metric's means follow them (added_metrics.prepare)
    fns = [
        fn for i in c.trained for table in (c.metric_fns, c.weighted_fns) for _name, fn in table[i]
    ]
    fns += list((c.added_metrics or {}).values())
    first = len(c.names) - len(fns)
    pairs = [(first + k, fn) for k, fn in enumerate(fns) if isinstance(fn, _metrics.Metric)]
    assert [j for j, _ in pairs] == list(c.stateful_columns), "metric columns out of step"
    return [j for j, _ in pairs], _distribute.SharedMetrics([m for _, m in pairs])


def _masked_trained(model: Any, c: Compiled) -> list[int]:
    """The trained outputs that carry a mask (known from the model's symbolic outputs)."""
    from .compiled import _masked_output

    return [i for i in c.trained if _masked_output(model, i)]


#: Data parallel, while a rank runs the loss of its part of a batch: (dp, its samples).
#: A masked output's loss is a mean over the batch's kept positions, and each rank's part
#: keeps its own number of them: ``_masked_scales`` shares those counts (one small
#: all-reduce) so that each rank's loss is its share of the global batch's.
_MASKED_DP: contextvars.ContextVar[tuple[Any, int] | None] = contextvars.ContextVar(
    "polykeras_masked_dp", default=None
)


def _masked_scales(model: Any, c: Compiled, masks: Sequence[Any]) -> dict[int, float]:
    """Data parallel: for each masked output ``i``, the factor that makes this rank's
    masked mean (its loss summed over its kept positions, over their count ``k``) its share
    of the global batch's (the same sum over the global count ``K``), counted as ranks'
    losses are, by sample count (``n`` here, ``N`` in all):
    ``max(k, 1) / max(K, 1) * N / n``."""
    share = _MASKED_DP.get()
    if share is None:
        return {}
    masked = _masked_trained(model, c)
    if not masked:
        return {}
    dp, n_local = share
    B = _backend.current()
    kept = [
        0.0
        if masks[i] is None
        else float(np.asarray(B.to_numpy(autodiff.raw(masks[i]))).astype(bool).sum())
        for i in masked
    ]
    local = np.asarray([float(n_local), *kept], np.float64)
    summed = np.asarray(B.to_numpy(dp.all_reduce_sum(B, B.asarray(local))), np.float64)
    total = float(summed[0])
    return {
        i: max(k, 1.0) / max(float(big), 1.0) * total / max(float(n_local), 1.0)
        for i, k, big in zip(masked, kept, summed[1:])
    }


def _join_masked_dp(model: Any, c: Compiled, dp: Any, train: bool) -> None:
    """Data parallel: a rank with no samples in a batch still joins the all-reduce of
    :func:`_masked_scales` (with zeros), so that no rank waits for it.  (A training step
    whose loss is the model's own ``compute_loss`` makes none.)"""
    if train and _custom.overrides(model, "compute_loss"):
        return
    masked = _masked_trained(model, c)
    if masked:
        B = _backend.current()
        dp.all_reduce_sum(B, B.asarray(np.zeros(1 + len(masked), np.float64)))


def _as_number(B: Any, scalar: Any) -> float:
    return float(np.asarray(B.to_numpy(scalar)).reshape(-1)[0])


def _copy_spec(spec: _data.DataSpec) -> _data.DataSpec:
    return _data.DataSpec(
        spec.role, spec.name, spec.shape, spec.dtype, spec.num_samples, dict(spec.hints)
    )


__all__ = ["TrainingMixin", "ENV_MAX_EPOCHS", "NOT_COMPILED", "check_custom_steps", "max_epochs"]
