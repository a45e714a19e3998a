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

import os
from typing import Any

import numpy as np

from .. import autodiff, config
from .. import backend as _backend
from .. import ops
from ..engine.base_layer import collect_activity_losses
from . import data as _data
from . import metrics as _metrics
from . import optimizers as _optimizers
from .callbacks import CallbackList, History, ProgbarLogger, check_callbacks
from .compiled import Compiled
from .data import DataError
from .progress import Progbar

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


def _check_batch_size(batch_size: Any) -> int:
    if batch_size is None:
        return 32
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size <= 0
    ):
        raise DataError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


class TrainingMixin:
    """compile, fit, evaluate, train_on_batch and test_on_batch (Keras 2 semantics)."""

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
        # polykeras always runs eagerly, and these change no result: accepted at any value
        for key in ("run_eagerly", "jit_compile"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(
                f"compile: keyword argument(s) not understood: {', '.join(sorted(kwargs))}"
            )
        opt = _optimizers.get(optimizer)
        if loss is None:
            raise ValueError(
                "compile needs a loss, e.g. loss='categorical_crossentropy' (see polykeras.losses)"
            )
        compiled = Compiled(opt, loss, metrics, loss_weights, sample_weight_mode, weighted_metrics)
        if getattr(self, "_is_graph_network", False):
            compiled.resolve(self)
        self._compiled = compiled
        self.optimizer = opt
        self.loss = loss
        self.loss_weights = loss_weights
        self.metrics = metrics
        self.sample_weight_mode = sample_weight_mode
        self.weighted_metrics = weighted_metrics

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
        targets = _data.standardize_targets(self, y, [_copy_spec(s) for s in c.specs], n)
        n = _data.check_sample_counts(inputs, targets, self.input_names, c.output_names)
        temporal = [c.temporal[i] for i in c.trained]
        weights = _data.standardize_sample_weights(sample_weight, c.output_names, n, temporal)
        from_classes = _data.class_weights_to_sample_weights(class_weight, targets, c.output_names)
        merged = [
            cw if w is None else (w if cw is None else w * cw)
            for w, cw in zip(weights, from_classes)
        ]
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
        self, c: Compiled, outs: list, ys: list, sws: list, activity: list = ()
    ) -> tuple[Any, list]:
        """The total loss (weighted outputs' losses + penalties, the layers' activity
        penalties among them) and each output's loss."""
        total = None
        per_output = []
        for k, i in enumerate(c.trained):
            values = c.loss_fns[i](ys[k], outs[i])
            if sws[k] is not None:
                values = ops.multiply(values, _expand_to(sws[k], values))
            value = ops.mean(values)
            per_output.append(value)
            term = value if c.weights[i] == 1.0 else ops.multiply(value, c.weights[i])
            total = term if total is None else ops.add(total, term)
        for var in c.regularized:
            total = ops.add(total, var.regularizer(var))
        for penalty in activity:
            total = ops.add(total, penalty)
        return total, per_output

    def _metric_values(self, c: Compiled, outs: list, ys: list, sws: list) -> list:
        values = []
        for k, i in enumerate(c.trained):
            for _name, fn in c.metric_fns[i]:
                values.append(ops.mean(fn(ys[k], outs[i])))
            for _name, fn in c.weighted_fns[i]:
                v = fn(ys[k], outs[i])
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
        """All of a batch's scalars in one host read."""
        dtype = B.dtype_name(scalars[0])
        flat = [
            B.reshape(B.cast(s, dtype) if B.dtype_name(s) != dtype else s, (1,)) for s in scalars
        ]
        return [float(v) for v in B.to_numpy(B.concatenate(flat, 0))]

    def _train_batch(self, c: Compiled, xs: list, ys: list, sws: list) -> list[float]:
        """One gradient step; returns the batch's loss and metrics (before the step)."""
        B = _backend.current()
        variables = c.trainable
        layers = c.update_layers

        def loss_fn(leaves):
            with autodiff.substitute(variables, leaves):
                for layer in layers:
                    layer._updates = []
                with collect_activity_losses() as activity:
                    outs = self._run_graph(xs, training=True)
                total, per_output = self._losses(c, outs, ys, sws, activity)
                updates = [
                    (var, autodiff.detach(value))
                    for layer in layers
                    for var, value in layer._updates
                ]
            aux = (
                [autodiff.detach(v) for v in per_output],
                [autodiff.detach(o) for o in outs],
                updates,
            )
            return total, aux

        values = [v.value for v in variables]
        rows = self._sparse_rows(B, c, xs, values) if c.row_sparse else None
        try:
            loss, (per_output, outs, updates), grads = autodiff.value_and_grad(loss_fn, values)
        finally:
            for _, layer, _ in c.row_sparse:
                layer._sparse_inverse = None
        c.optimizer.apply(grads, variables, rows)
        for var, value in updates:
            var.assign(value)
        for layer in layers:
            layer._updates = []
        scalars = [loss] + (per_output if len(self.outputs) > 1 else [])
        return self._read(B, scalars + self._metric_values(c, outs, ys, sws))

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
        with collect_activity_losses() as activity:
            outs = self._run_graph(xs, training=False)
        total, per_output = self._losses(c, outs, ys, sws, activity)
        scalars = [total] + (per_output if len(self.outputs) > 1 else [])
        scalars += self._metric_values(c, outs, ys, sws)
        return self._read(B, [autodiff.detach(s) for s in scalars])

    # -- the loops --------------------------------------------------------------------------------
    @config.holding
    def _evaluate_arrays(
        self,
        c: Compiled,
        data: _Arrays,
        batch_size: int,
        verbose: int = 0,
        callbacks: CallbackList | None = None,
    ) -> list[float]:
        B = _backend.current()
        totals = np.zeros(len(c.names))
        bar = Progbar(data.n, verbose=verbose) if verbose else None
        for batch, start in enumerate(range(0, data.n, batch_size)):
            index = slice(start, min(start + batch_size, data.n))
            size = index.stop - index.start
            if callbacks is not None:
                callbacks.call("on_test_batch_begin", batch, {"batch": batch, "size": size})
            values = self._test_batch(c, *data.batch(B, index))
            totals += np.asarray(values) * size
            if callbacks is not None:
                logs = {"batch": batch, "size": size, **dict(zip(c.names, values))}
                callbacks.call("on_test_batch_end", batch, logs)
            if bar is not None:
                bar.update(index.stop)
        return [float(v) for v in totals / max(data.n, 1)]

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
        **kwargs: Any,
    ) -> History:
        """Train for ``epochs`` epochs (Keras 1's ``nb_epoch`` works too); return a History.

        ``x``/``y`` are arrays, lists of arrays or dicts by input/output name.  The last
        ``validation_split`` fraction of the samples (taken before shuffling) is held out.
        The environment variable ``POLYKERAS_MAX_EPOCHS`` caps the number of epochs run.
        Every argument and array is checked before any weight changes.
        """
        if "nb_epoch" in kwargs:
            epochs = kwargs.pop("nb_epoch")
        if kwargs:
            raise TypeError(f"fit: keyword argument(s) not understood: {', '.join(sorted(kwargs))}")
        c = self._require_compiled()
        if validation_steps is not None:
            raise ValueError(
                f"fit: validation_steps={validation_steps!r} is not supported by "
                "polykeras (validation always covers all of validation_data or "
                "validation_split); leave it None"
            )
        batch_size = _check_batch_size(batch_size)
        epochs = _check_epochs(epochs, initial_epoch)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"shuffle must be True, False or 'batch', got {shuffle!r}")
        if steps_per_epoch is not None and (
            isinstance(steps_per_epoch, bool) or int(steps_per_epoch) <= 0
        ):
            raise ValueError(f"steps_per_epoch must be a positive int, got {steps_per_epoch!r}")
        user_callbacks = check_callbacks(callbacks)
        train = self._prepare_data(x, y, sample_weight, class_weight)
        val = None
        if validation_data is not None:
            val = self._validation_arrays(validation_data)
        elif validation_split:
            if not 0.0 < float(validation_split) < 1.0:
                raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
            train, val = train.split(
                int(train.n * (1.0 - float(validation_split))),
                f"validation_split={validation_split}",
            )
        if train.n == 0:
            raise DataError("fit got no samples (the arrays are empty)")

        c.refresh(self)
        self.history = History()
        cb = CallbackList(user_callbacks + [self.history])
        if verbose:
            cb.append(ProgbarLogger("steps" if steps_per_epoch else "samples"))
        cb.set_model(self)
        val_names = [f"val_{k}" for k in c.names] if val is not None else []
        cb.set_params(
            {
                "batch_size": batch_size,
                "epochs": epochs,
                "steps": steps_per_epoch or -(-train.n // batch_size),
                "samples": train.n,
                "verbose": verbose,
                "do_validation": val is not None,
                "metrics": list(c.names) + val_names,
            }
        )
        self.stop_training = False
        if verbose and val is not None:
            print(f"Train on {train.n} samples, validate on {val.n} samples")
        cb.call("on_train_begin", {})
        plan = _BatchPlan(train.n, batch_size, shuffle, steps_per_epoch)
        for epoch in range(int(initial_epoch), epochs):
            cb.call("on_epoch_begin", epoch, {})
            logs = self._train_epoch(c, train, plan.epoch(), cb)
            if val is not None and not self.stop_training:
                logs.update(zip(val_names, self._evaluate_arrays(c, val, batch_size)))
            cb.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        cb.call("on_train_end", {})
        return self.history

    @config.holding
    def _train_epoch(
        self, c: Compiled, data: _Arrays, batches: list, cb: CallbackList
    ) -> dict[str, float]:
        """Train on each batch; return the epoch's averages (weighted by batch size)."""
        B = _backend.current()
        totals = np.zeros(len(c.names))
        seen = 0
        for batch, index in enumerate(batches):
            size = (index.stop - index.start) if isinstance(index, slice) else len(index)
            logs = {"batch": batch, "size": size}
            cb.call("on_train_batch_begin", batch, logs)
            values = self._train_batch(c, *data.batch(B, index))
            totals += np.asarray(values) * size
            seen += size
            logs.update(zip(c.names, values))
            cb.call("on_train_batch_end", batch, logs)
            if self.stop_training:
                break
        return dict(zip(c.names, (totals / max(seen, 1)).tolist()))

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int = 1,
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The loss (and metrics) on ``x``/``y``: a scalar, or a list in ``metrics_names``
        order when there are metrics or several outputs (Keras 2)."""
        if kwargs:
            raise TypeError(
                f"evaluate: keyword argument(s) not understood: {', '.join(sorted(kwargs))}"
            )
        c = self._require_compiled()
        if steps is not None:
            raise ValueError(
                f"evaluate: steps={steps!r} is not supported by polykeras (it "
                "evaluates all of x in batches of batch_size); leave it None"
            )
        batch_size = _check_batch_size(batch_size)
        data = self._prepare_data(x, y, sample_weight)
        cb = CallbackList(check_callbacks(callbacks))
        cb.set_model(self)
        cb.set_params(
            {
                "batch_size": batch_size,
                "samples": data.n,
                "verbose": verbose,
                "metrics": list(c.names),
                "steps": -(-data.n // batch_size),
            }
        )
        cb.call("on_test_begin", {})
        values = self._evaluate_arrays(
            c, data, batch_size, verbose=1 if verbose == 1 else 0, callbacks=cb
        )
        cb.call("on_test_end", dict(zip(c.names, values)))
        return values[0] if len(values) == 1 else values

    def train_on_batch(
        self, x: Any, y: Any, sample_weight: Any = None, class_weight: Any = None
    ) -> Any:
        """One gradient step on one batch; returns the loss (and metrics) before the step."""
        c = self._require_compiled()
        data = self._prepare_data(x, y, sample_weight, class_weight)
        c.refresh(self)
        values = self._train_batch(c, *data.batch(_backend.current(), slice(0, data.n)))
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None) -> Any:
        """The loss (and metrics) on one batch, without training."""
        c = self._require_compiled()
        data = self._prepare_data(x, y, sample_weight)
        values = self._test_batch(c, *data.batch(_backend.current(), slice(0, data.n)))
        return values[0] if len(values) == 1 else values


#: Model methods through which Keras runs user code that polykeras does not call yet.
CUSTOM_STEPS = (
    "train_step",
    "test_step",
    "predict_step",
    "compute_loss",
    "compute_metrics",
    "call",
)


def check_custom_steps(model: Any, where: str) -> None:
    """Refuse a Model subclass (outside polykeras) that overrides a method polykeras' loops
    would silently pass over (``train_step``, ``call``...)."""
    for klass in type(model).__mro__:
        if klass.__module__.split(".")[0] == "polykeras":
            break
        for name in CUSTOM_STEPS:
            if name in klass.__dict__:
                raise NotImplementedError(
                    f"{where}: model {model.name} ({klass.__name__}) overrides {name}, which "
                    f"polykeras does not call yet (its fit/evaluate/predict run the layer "
                    f"graph); remove the override or use Keras for custom {name} code"
                )


def _check_epochs(epochs: Any, initial_epoch: int) -> int:
    """``epochs``, capped by ``POLYKERAS_MAX_EPOCHS`` (counted from ``initial_epoch``)."""
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    cap = max_epochs()
    return int(epochs) if cap is None else min(int(epochs), int(initial_epoch) + cap)


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

    def __init__(self, n: int, batch_size: int, shuffle: Any, steps: int | None):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.steps = None if steps is None else int(steps)
        self._order = np.arange(n)
        self._cursor = 0

    def _new_order(self) -> np.ndarray:
        n, size = self.n, self.batch_size
        if self.shuffle == "batch":  # Keras' batch shuffling: whole batches change places
            starts = np.random.permutation(-(-n // size)) * size
            return np.concatenate([np.arange(s, min(s + size, n)) for s in starts])
        return np.random.permutation(n) if self.shuffle else np.arange(n)

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


def _copy_spec(spec: _data.DataSpec) -> _data.DataSpec:
    return _data.DataSpec(
        spec.role, spec.name, spec.shape, spec.dtype, spec.num_samples, dict(spec.hints)
    )


__all__ = ["TrainingMixin", "ENV_MAX_EPOCHS", "NOT_COMPILED", "check_custom_steps", "max_epochs"]
