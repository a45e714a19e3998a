"""Optimizers with Keras 2 names and arguments, computing as tf.keras 2 / Keras 3 do.

An optimizer updates variables in place from their gradients, through the active backend's
primitives on raw arrays (nothing here is differentiated).  Every optimizer takes
``learning_rate`` (Keras 1/2 alias ``lr``), ``decay`` (Keras 2's time-based decay:
``lr / (1 + decay * iterations)``), ``clipnorm`` (per gradient), ``clipvalue`` and
``global_clipnorm``.  Formulas (g is the gradient, t the step counted from 1):

- SGD: ``v = momentum * v - lr * g``; ``w += v`` (nesterov: ``w += momentum * v - lr * g``)
- RMSprop: ``a = rho * a + (1 - rho) * g^2``; ``w -= lr * g / sqrt(a + epsilon)``
- Adam: ``m += (1 - beta_1) (g - m)``; ``v += (1 - beta_2) (g^2 - v)``;
  ``w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)``
- Adagrad: ``a += g^2`` (a starts at initial_accumulator_value); ``w -= lr g / sqrt(a + eps)``
- Adadelta, Adamax, Nadam: as Keras 3.
- AdamW: Adam with decoupled weight decay (``weight_decay=0.004`` by default).
- Ftrl, Lion, Lamb, Adafactor: Keras 3's, in :mod:`.optimizers_extra` (registered here).

Keras 3's additions, on every optimizer:

- ``weight_decay`` (None by default): before each update, ``w -= lr * weight_decay * w``
  (decoupled from the gradient, as Keras 3 applies it); ``exclude_from_weight_decay(
  var_list=None, var_names=None)`` exempts variables (or those whose name contains one of
  ``var_names``, searched as regular expressions) from the next step on.
- ``learning_rate`` may be a schedule (``polykeras.optimizers.schedules``): update t
  (counted from 1) uses ``schedule(t - 1)``, and ``optimizer.learning_rate`` reads
  ``schedule(iterations)``; such a learning rate cannot be assigned a number
  (``TypeError``, as in Keras 3), nor combined with Keras 2's ``decay``.
- ``use_ema``, ``loss_scale_factor``, ``gradient_accumulation_steps`` are refused by
  name unless they are off (``use_ema=False``, None); a callable learning rate that is not
  a schedule is refused.

The API for a custom training step (Keras 3's):

- ``optimizer.apply(grads, trainable_variables=None)``: one update; ``grads`` are backend
  arrays (or NumPy arrays) in the order of ``trainable_variables`` (polykeras
  ``Variable`` objects); without variables, those of an earlier ``build``/``apply``.  A None
  gradient leaves its variable out of the step with Keras' warning ("Gradients do not
  exist for variables ..."); all None is an error.
- ``optimizer.apply_gradients(zip(grads, variables))``: the same from pairs; returns
  ``iterations``.
- ``optimizer.build(variables)``: creates the slots (``apply`` does it on first use).
- ``optimizer.iterations``: the number of updates done (an int that also has ``numpy()``).
- ``optimizer.variables``: the state as backend arrays, in Keras 3's order (iteration,
  learning_rate unless it is a schedule, then the slots): a snapshot, not live variables.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
from typing import Any
from collections.abc import Sequence

from .. import backend as _backend
from ..utils import as_float
from . import schedules
from .schedules import LearningRateSchedule

#: Keras' path ``keras.optimizers.schedules`` (an import of it is served by ``_aliases``)
__path__: list[str] = []


class _StepCount(int):
    """The step count: an int that also answers ``numpy()``, as Keras' variable does."""

    def numpy(self) -> np.ndarray:
        return np.asarray(int(self), dtype=np.int64)


class Optimizer:
    """Base class: holds the learning rate, the step count and per-variable slots."""

    _slot_names: tuple[str, ...] = ()
    _defaults: dict[str, Any] = {}
    #: How Keras 3 orders the slots in an optimizer's variables (and so in an HDF5 file's
    #: ``optimizer_weights``): groups of slot names, each group created for one variable
    #: after another (its names interleaved per variable), the groups one after another.
    #: None: one group per slot name (all variables' first slot, then the second...).
    _keras_groups: tuple[tuple[str, ...], ...] | None = None
    #: Our slot names that Keras 3 spells differently.
    _keras_slot_names: dict[str, str] = {}

    def __init__(
        self,
        learning_rate: float = 0.001,
        decay: float = 0.0,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        weight_decay: float | None = None,
        **kwargs: Any,
    ):
        if "lr" in kwargs:
            learning_rate = kwargs.pop("lr")
        for key in [k for k in kwargs if k in _HARMLESS_CONFIG]:
            value, harmless = kwargs.pop(key), _HARMLESS_CONFIG[key]
            if not (harmless is _ANY or value in harmless):
                raise ValueError(
                    f"{type(self).__name__}: {key}={value!r:.60} is not supported by polykeras "
                    f"(Keras 3's {key} is accepted only when off)"
                )
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: keyword argument(s) not understood: "
                f"{', '.join(sorted(kwargs))}"
            )
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set")
        self._learning_rate: Any = None
        self.learning_rate = learning_rate
        self.decay = _non_negative(decay, "decay", self)
        if self.decay and isinstance(learning_rate, LearningRateSchedule):
            raise ValueError(
                f"{type(self).__name__}: decay={decay!r} (Keras 2's time-based decay) cannot "
                "be combined with a learning-rate schedule; put the decay in the schedule "
                "(e.g. optimizers.schedules.InverseTimeDecay)"
            )
        self.weight_decay = (
            None if weight_decay is None else _non_negative(weight_decay, "weight_decay", self)
        )
        self._exclude_from_weight_decay: set[int] = set()
        self._exclude_from_weight_decay_names: Any = None
        self.clipnorm = None if clipnorm is None else _non_negative(clipnorm, "clipnorm", self)
        self.clipvalue = None if clipvalue is None else _non_negative(clipvalue, "clipvalue", self)
        self.global_clipnorm = (
            None
            if global_clipnorm is None
            else _non_negative(global_clipnorm, "global_clipnorm", self)
        )
        self.name = name or _snake(type(self).__name__)
        self.iterations = 0
        self._slots: dict[int, list[Any]] = {}
        self._order: list[Any] = []  # variables with slots, in the order they were seen
        # per row-sparse variable: the step at which each row was last updated
        self._last_update: dict[int, np.ndarray] = {}

    # -- the step count ------------------------------------------------------------------------
    @property
    def iterations(self) -> int:
        """The number of updates done so far."""
        return _StepCount(self._iterations)

    @iterations.setter
    def iterations(self, value: Any) -> None:
        self._iterations = int(value)

    # -- the learning rate ---------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The learning rate: the number given, or the schedule's value at this step."""
        if isinstance(self._learning_rate, LearningRateSchedule):
            return float(self._learning_rate(self._iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not "
                "settable. If you need the learning rate to be settable, you should "
                "instantiate the optimizer with a float `learning_rate` argument."
            )
        if callable(value):
            raise ValueError(
                f"{type(self).__name__}: a callable learning_rate that is not a "
                "LearningRateSchedule is not supported by polykeras; subclass "
                "optimizers.schedules.LearningRateSchedule (__call__(step), get_config)"
            )
        if hasattr(value, "numpy"):
            value = value.numpy()
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{type(self).__name__}: learning_rate must be a non-negative number, got {value!r}"
            )
        self._learning_rate = value

    lr = learning_rate  # Keras 1/2 spelling, same property

    @property
    def schedule(self) -> LearningRateSchedule | None:
        """The learning-rate schedule given as ``learning_rate``, or None."""
        lr = self._learning_rate
        return lr if isinstance(lr, LearningRateSchedule) else None

    def current_learning_rate(self) -> float:
        """The learning rate this step uses (after Keras 2's time-based ``decay``, or the
        schedule's value at the number of updates done so far)."""
        if isinstance(self._learning_rate, LearningRateSchedule):
            return float(self._learning_rate(self._iterations))
        if self.decay:
            return self._learning_rate / (1.0 + self.decay * self.iterations)
        return self._learning_rate

    # -- slots ----------------------------------------------------------------------------------
    def _initial_slot(self, B, var, name: str):
        return B.zeros(var.shape, var.dtype)

    def build(self, variables: Sequence[Any]) -> None:
        """Create the slots (accumulators...) of ``variables`` if they have none yet."""
        B = _backend.current()
        for var in variables:
            if id(var) not in self._slots:
                self._slots[id(var)] = [self._initial_slot(B, var, n) for n in self._slot_names]
                self._order.append(var)

    @property
    def weights(self) -> list[Any]:
        """The optimizer's state as arrays: iterations, then each variable's slots."""
        B = _backend.current()
        out = [B.asarray(self.iterations, "int64")]
        for var in self._order:
            out.extend(self._slots[id(var)])
        return out

    def get_weights(self) -> list[Any]:
        B = _backend.current()
        for var in self._order:
            self._catch_up(B, var)
        # copies: a backend's array may share memory with a slot a fused kernel updates in
        # place, and a snapshot must not change at the next step
        return [np.array(B.to_numpy(w), copy=True) for w in self.weights]

    # -- state in files (Keras 3's layout of ``optimizer_weights``) ------------------------------
    def _slot_order(self) -> list[tuple[str, ...]]:
        if self._keras_groups is None:
            return [(name,) for name in self._slot_names]
        return [tuple(n for n in group if n in self._slot_names) for group in self._keras_groups]

    def _file_layout(self, variables: Sequence[Any]) -> list[tuple[str, tuple, Any]]:
        """``(name, shape, (variable, slot index) or None)`` for each array of the state,
        as Keras 3 names and orders its optimizer variables: iteration, learning_rate (none
        with a schedule: Keras 3 keeps no variable for it), then the slots of ``variables``
        (``<optimizer>/<layer>_<weight>_<slot>``), then any extra state."""
        rows: list[tuple[str, tuple, Any]] = [(f"{self.name}/iteration", (), None)]
        if self.schedule is None:
            rows.append((f"{self.name}/learning_rate", (), None))
        for group in self._slot_order():
            for var in variables:
                for slot in group:
                    keras_slot = self._keras_slot_names.get(slot, slot)
                    rows.append(
                        (
                            f"{self.name}/{_variable_key(var)}_{keras_slot}",
                            tuple(var.shape),
                            (var, self._slot_names.index(slot)),
                        )
                    )
        rows += [(name, np.shape(value), None) for name, value in self._extra_file_state()]
        return rows

    def file_state(self, variables: Sequence[Any]) -> list[tuple[str, Any]]:
        """``(name, NumPy array)`` for the whole state, laid out by :meth:`_file_layout`.
        Builds the slots of variables that have none yet (zeros, as a fresh optimizer
        has)."""
        B = _backend.current()
        self.build(variables)
        for var in variables:
            self._catch_up(B, var)
        extra = dict(self._extra_file_state())
        out = []
        for name, _, where in self._file_layout(variables):
            if where is not None:
                var, i = where
                value = np.asarray(B.to_numpy(self._slots[id(var)][i]))
            elif name == f"{self.name}/iteration":
                value = np.asarray(self.iterations, dtype=np.int64)
            elif name == f"{self.name}/learning_rate":
                value = np.asarray(self._learning_rate, dtype=np.float32)
            else:
                value = extra[name]
            out.append((name, value))
        return out

    def _extra_file_state(self) -> list[tuple[str, Any]]:
        return []

    def restore_file_state(
        self, variables: Sequence[Any], entries: Sequence[tuple[str, Any]]
    ) -> None:
        """Restore what :meth:`file_state` (or Keras 3) wrote.  Entries are matched by name
        (the optimizer's own prefix before the first "/" is ignored: Keras 3 names its
        RMSprop "rm_sprop"), else by position when the names are unknown but the count
        matches.  Raises ValueError, changing nothing, when the state does not fit."""
        self.build(variables)
        expected = self._file_layout(variables)

        def key(name: str) -> str:
            name = name.split("/", 1)[1] if "/" in name else name
            name = name[:-2] if name.endswith(":0") else name
            return {"iter": "iteration"}.get(name, name)

        found = {key(n): a for n, a in entries}
        wanted = [key(n) for n, _, _ in expected]
        n_head = 1 if self.schedule is not None else 2  # iteration[, learning_rate]
        if (
            entries
            and set(found) <= {"iteration", "learning_rate"}
            and len(found) == len(entries)
            and "iteration" in found
        ):
            # an optimizer saved before it made any slots (compiled, never trained)
            values = [found["iteration"], found.get("learning_rate")][:n_head]
            expected = expected[:n_head]
        elif (
            len(found) == len(entries)
            and all(k in found for k in wanted[n_head:])
            and "iteration" in found
        ):
            values = [found.get(k) for k in wanted]
        elif len(entries) == len(expected):
            values = [a for _, a in entries]
        else:
            raise ValueError(
                f"the file holds {len(entries)} optimizer arrays, "
                f"{type(self).__name__} on this model has {len(expected)} "
                f"({', '.join(wanted[:4])}{', ...' if len(wanted) > 4 else ''})"
            )
        arrays: list[np.ndarray | None] = []
        for (name, shape, where), got in zip(expected, values):
            if got is None:
                if where is not None:  # a slot's array (learning_rate may be missing)
                    raise ValueError(f"optimizer array {name} is missing from the file")
                arrays.append(None)
                continue
            got = np.asarray(got)
            if got.shape != shape:
                raise ValueError(
                    f"optimizer array {name} has shape {got.shape} in the file, {shape} here"
                )
            if not np.all(np.isfinite(got)):
                raise ValueError(f"optimizer array {name} holds NaN or infinite values")
            arrays.append(got)
        B = _backend.current()
        first = arrays[0]
        if first is None:
            raise ValueError("optimizer array iteration is missing from the file")
        iterations = int(first)
        if iterations < 0:
            raise ValueError(f"the optimizer's iteration count is negative ({iterations})")
        self.iterations = iterations
        lr = arrays[1] if n_head == 2 and len(arrays) > 1 else None
        if lr is not None and np.float32(self._learning_rate) != np.float32(lr):
            self.learning_rate = float(lr)  # changed during training (a callback, say)
        self._last_update.clear()
        if len(arrays) == n_head:  # no slots in the file: they start afresh
            for var in variables:
                self._slots[id(var)] = [self._initial_slot(B, var, n) for n in self._slot_names]
        for (_, _, where), array in zip(expected, arrays):
            if where is not None and array is not None:  # (a slot's is never None: above)
                var, i = where
                self._slots[id(var)][i] = B.asarray(array.astype(var.dtype, copy=False))
        self._after_restore()

    def _after_restore(self) -> None:
        """Hook: recompute state derived from the step count."""

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Restore the state from :meth:`get_weights` (call :meth:`build` first)."""
        B = _backend.current()
        expected = 1 + len(self._order) * len(self._slot_names)
        if len(weights) != expected:
            raise ValueError(
                f"{type(self).__name__}: expected {expected} weight arrays "
                f"(iterations + {len(self._slot_names)} per variable for "
                f"{len(self._order)} variables), got {len(weights)}"
            )
        self.iterations = int(B.to_numpy(B.asarray(weights[0])))
        self._last_update.clear()
        k = 1
        for var in self._order:
            slots = []
            for _ in self._slot_names:
                slots.append(B.asarray(np.array(weights[k], copy=True), var.dtype))
                k += 1
            self._slots[id(var)] = slots
        self._after_restore()

    # -- applying gradients ---------------------------------------------------------------------
    def _clip(self, B, grads: list[Any]) -> list[Any]:
        if self.clipvalue is not None:
            v = float(self.clipvalue)
            return [B.clip(g, -v, v) for g in grads]
        if self.clipnorm is not None:
            c = float(self.clipnorm)
            return [
                B.divide(B.multiply(g, c), B.maximum(B.sqrt(B.sum(B.square(g))), c)) for g in grads
            ]
        if self.global_clipnorm is not None:
            c = float(self.global_clipnorm)
            total = None
            for g in grads:
                s = B.sum(B.square(g))
                total = s if total is None else B.add(total, s)
            if total is None:
                return grads
            scale = B.divide(c, B.maximum(B.sqrt(total), c))
            return [B.multiply(g, scale) for g in grads]
        return grads

    def apply_gradients(self, grads_and_vars: Any) -> int:
        """Keras' spelling: (gradient, variable) pairs, e.g. ``zip(grads, variables)``.
        Returns :attr:`iterations`."""
        pairs = list(grads_and_vars)
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(
                    f"{type(self).__name__}.apply_gradients takes (gradient, variable) pairs, "
                    f"e.g. zip(grads, model.trainable_variables); got an item {pair!r:.80}"
                )
        self.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self.iterations

    def _known_variables(self, grads: Sequence[Any]) -> list[Any]:
        if not self._order:
            raise ValueError(
                "When passing `grads` without `variables`, the optimizer must already be "
                "built on a list of variables. Call `optimizer.build(trainable_variables)` "
                "first."
            )
        if len(grads) != len(self._order):
            raise ValueError(
                f"{type(self).__name__}.apply: {len(grads)} gradients for the "
                f"{len(self._order)} variables the optimizer was built with"
            )
        return list(self._order)

    def _drop_missing(self, grads: list[Any], variables: list[Any], rows: Any) -> tuple:
        """Leave out the variables whose gradient is None (Keras 3's warning)."""
        keep = [k for k, g in enumerate(grads) if g is not None]
        if not keep:
            raise ValueError("No gradients provided for any variable.")
        missing = [str(getattr(v, "name", v)) for g, v in zip(grads, variables) if g is None]
        warnings.warn(
            f"Gradients do not exist for variables {missing} when minimizing the loss. "
            "If using `model.compile()`, did you forget to provide a `loss` argument?",
            stacklevel=3,
        )
        if rows is not None:
            rows = {keep.index(k): r for k, r in rows.items() if k in keep}
        return [grads[k] for k in keep], [variables[k] for k in keep], rows

    def apply(
        self,
        grads: Sequence[Any],
        variables: Sequence[Any] | None = None,
        rows: dict[int, tuple[Any, np.ndarray]] | None = None,
    ) -> None:
        """One step: update every variable from its gradient, then count the step.

        ``variables`` default to those the optimizer was built with (Keras 3's
        ``trainable_variables=None``).  ``rows`` maps a variable's position to ``(indices,
        indices_as_numpy)``: its gradient then holds only those (distinct) rows, and only
        they are updated (see :attr:`supports_row_updates`)."""
        B = _backend.current()
        grads = list(grads)
        variables = self._known_variables(grads) if variables is None else list(variables)
        if len(grads) != len(variables):
            raise ValueError(
                f"{type(self).__name__}.apply: {len(grads)} gradients for "
                f"{len(variables)} variables"
            )
        if any(g is None for g in grads):
            grads, variables, rows = self._drop_missing(grads, variables, rows)
        self.build(variables)
        grads = self._clip(
            B,
            [
                g if type(g) is type(var.value) or B.is_native(g) else B.asarray(g)
                for g, var in zip(grads, variables)
            ],
        )
        lr = self.current_learning_rate()
        self._before_step(B)
        decay = self._decay_factor(lr)
        dense = []
        for k, (g, var) in enumerate(zip(grads, variables)):
            # the same array type with the same dtype object needs no cast (no backend call)
            same = type(g) is type(var.value) and getattr(g, "dtype", 0) == getattr(
                var.value, "dtype", 1
            )
            if not same and B.dtype_name(g) != var.dtype:
                g = B.cast(g, var.dtype)
            slots = self._slots[id(var)]
            if decay is not None and self._use_weight_decay(var):
                if rows is not None and k in rows:  # every row decays: a dense step
                    g = B.scatter_add(tuple(var.shape), rows[k][0], g)
                # decoupled weight decay, before the update (Keras 3's order)
                var.value = B.multiply(var.value, decay)
            elif rows is not None and k in rows:
                self._update_rows(B, var, g, slots, lr, *rows[k])
                continue
            self._catch_up(B, var)
            dense.append((var, g, slots))
        if not dense:
            self.iterations += 1
            return
        fused = self._fused_update(B)
        if fused is not None:  # every variable in one call of the backend's kernel
            news = fused(
                [var.value for var, _, _ in dense],
                [g for _, g, _ in dense],
                [slots for _, _, slots in dense],
                lr,
            )
        else:
            news = [self._update(B, var.value, g, slots, lr) for var, g, slots in dense]
        for (var, _, _), new in zip(dense, news):
            constraint = getattr(var, "constraint", None)
            if constraint is not None and callable(constraint):
                new = constraint(new)
            var.value = new
        self.iterations += 1

    # -- weight decay (Keras 3's, decoupled from the gradient) -----------------------------------
    def _decay_factor(self, lr: float) -> float | None:
        """``1 - lr * weight_decay``, the factor every decayed weight is multiplied by."""
        if not self.weight_decay:
            return None
        return 1.0 - lr * self.weight_decay

    def exclude_from_weight_decay(
        self, var_list: Sequence[Any] | None = None, var_names: Sequence[str] | None = None
    ) -> None:
        """No weight decay for the variables of ``var_list``, nor for those whose name
        contains a match of one of ``var_names`` (regular expressions, searched in the
        weight's own name, e.g. "bias").  It holds from the next step on (Keras 3 asks for
        it before the optimizer is built, but its check never fires); it is not part of the
        config, so a loaded optimizer needs it again, as in Keras."""
        self._exclude_from_weight_decay = {id(v) for v in (var_list or ())}
        names = [str(n) for n in (var_names or ())]
        self._exclude_from_weight_decay_names = re.compile("|".join(names)) if names else None

    def _use_weight_decay(self, var: Any) -> bool:
        if id(var) in self._exclude_from_weight_decay:
            return False
        pattern = self._exclude_from_weight_decay_names
        if pattern is not None:
            # Keras 3 searches the weight's own name ("kernel"), not its layer's
            name = str(getattr(var, "name", "")).rsplit("/", 1)[-1]
            if name.endswith(":0"):
                name = name[:-2]
            if pattern.search(name) is not None:
                return False
        return True

    @property
    def variables(self) -> list[Any]:
        """The state as backend arrays, in Keras 3's order (see :meth:`_file_layout`)."""
        B = _backend.current()
        return [B.asarray(value) for _, value in self.file_state(list(self._order))]

    # -- row-sparse updates (embedding tables) ---------------------------------------------------
    @property
    def supports_row_updates(self) -> bool:
        """Whether rows with a zero gradient can be left untouched with the same result:
        true where a zero gradient leaves the weight unchanged and the state changes in a
        way that can be applied later, exactly (plain SGD; RMSprop without momentum)."""
        return False

    def _update_rows(self, B, var, g, slots, lr, indices, indices_np) -> None:
        """Update only rows ``indices`` of ``var`` (its gradient ``g`` has just those)."""
        w_rows = B.take(var.value, indices)
        row_slots = [B.take(s, indices) for s in slots]
        self._decay_rows(B, var, row_slots, indices_np)
        fused = self._fused_update(B)
        if fused is not None:
            new_rows = fused([w_rows], [g], [row_slots], lr)[0]
        else:
            new_rows = self._update(B, w_rows, g, row_slots, lr)
        var.value = B.index_update(var.value, indices, new_rows)
        for i, s in enumerate(row_slots):
            slots[i] = B.index_update(slots[i], indices, s)

    def _decay_rows(self, B, var, row_slots, indices_np) -> None:
        """Bring the rows' state up to date (the steps they skipped had zero gradient)."""

    def _catch_up(self, B, var) -> None:
        """Bring every row's state up to date before a dense update or a read."""

    def _before_step(self, B) -> None:
        """Hook for state shared by all variables in a step (Nadam's momentum product)."""

    def _fused_update(self, B):
        """The same math from the backend's optional fused kernel, or None: a function
        ``(weights, grads, slots per variable, lr) -> new weights`` for all variables."""
        return None

    def _update(self, B, w, g, slots: list[Any], lr: float):  # pragma: no cover
        raise NotImplementedError

    # -- config ----------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = schedules.serialize(lr)  # Keras 3's form
        cfg = {"name": self.name, "learning_rate": lr, "decay": self.decay}
        if self.weight_decay is not None:
            cfg["weight_decay"] = self.weight_decay
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, key) is not None:
                cfg[key] = getattr(self, key)
        for key in self._defaults:
            cfg[key] = getattr(self, key)
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None):
        config = dict(config)
        for key in ("learning_rate", "lr"):
            if isinstance(config.get(key), dict):  # a schedule, Keras 3's or Keras 2's form
                config[key] = schedules.deserialize(config[key], custom_objects)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} learning_rate={self._learning_rate}>"


def _variable_key(var: Any) -> str:
    """A variable as Keras 3 names it in slot names: ``dense_1/kernel:0`` -> ``dense_1_kernel``."""
    name = str(getattr(var, "path", None) or var.name)
    if name.endswith(":0"):
        name = name[:-2]
    return name.replace("/", "_")


def _non_negative(value: Any, what: str, owner: Any) -> float:
    return as_float(value, what, type(owner).__name__, low=0.0)


def _snake(name: str) -> str:
    return {"RMSprop": "rmsprop", "SGD": "sgd", "AdamW": "adam_w"}.get(name, name.lower())


# The range of each numeric hyperparameter (low, high, high excluded): NaN, infinity and
# values outside are refused when the optimizer is made, not found later as NaN weights.
_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "momentum": (0.0, 1.0, False),
    "rho": (0.0, 1.0, False),
    "beta_1": (0.0, 1.0, True),
    "beta_2": (0.0, 1.0, True),
    "epsilon": (0.0, None, False),
    "initial_accumulator_value": (0.0, None, False),
}


def _setup(opt: Optimizer, given: dict[str, Any], ranges: dict[str, tuple] | None = None) -> None:
    """Check and set each hyperparameter of ``opt._defaults`` from ``given``: a bool
    default takes any truth value, a number must lie in its range, ``(low, high,
    high_open)`` from :data:`_RANGES` or ``(low, high, low_open, high_open)`` from
    ``ranges`` (a class's own; None: no bound)."""
    owner = type(opt).__name__
    for key, default in opt._defaults.items():
        value = given.get(key, default)
        if isinstance(default, bool):
            setattr(opt, key, bool(value))
            continue
        spec = (ranges or {}).get(key) or _RANGES.get(key, (0.0, None, False))
        low, high, low_open, high_open = spec if len(spec) == 4 else (*spec[:2], False, spec[2])
        setattr(
            opt,
            key,
            as_float(value, key, owner, low=low, high=high, low_open=low_open, high_open=high_open),
        )


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum. lr 0.01."""

    momentum: float
    nesterov: bool

    _defaults = {"momentum": 0.0, "nesterov": False}

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(self, {"momentum": momentum, "nesterov": bool(nesterov)})
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum!r}")
        self._slot_names = ("momentum",) if self.momentum else ()

    @property
    def supports_row_updates(self) -> bool:
        return not self.momentum  # momentum keeps moving rows whose gradient is zero

    def _update(self, B, w, g, slots, lr):
        step = B.multiply(g, lr)
        if not self.momentum:
            return B.subtract(w, step)
        v = B.subtract(B.multiply(slots[0], self.momentum), step)
        slots[0] = v
        if self.nesterov:
            return B.add(w, B.subtract(B.multiply(v, self.momentum), step))
        return B.add(w, v)


class RMSprop(Optimizer):
    """Divides the step by a running root mean square of gradients. lr 0.001, rho 0.9."""

    rho: float
    momentum: float
    epsilon: float
    centered: bool

    _defaults = {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False}

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float | None = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(
            self,
            {
                "rho": rho,
                "momentum": momentum,
                "epsilon": 1e-7 if epsilon is None else epsilon,
                "centered": bool(centered),
            },
        )
        names = ["velocity"]
        if self.momentum:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        self._slot_names = tuple(names)

    @property
    def supports_row_updates(self) -> bool:
        # a zero gradient leaves w unchanged and multiplies v by rho: k skipped steps are
        # one multiplication by rho**k, applied when the row is next touched or read
        return not self.momentum and not self.centered

    def _rows_last(self, var) -> np.ndarray:
        last = self._last_update.get(id(var))
        if last is None:
            # every row's state is current as of the previous step
            last = np.full(var.shape[0], self.iterations - 1, dtype=np.int64)
            self._last_update[id(var)] = last
        return last

    def _decay_rows(self, B, var, row_slots, indices_np) -> None:
        last = self._rows_last(var)
        skipped = (self.iterations - 1) - last[indices_np]
        if skipped.any():
            decay = np.power(self.rho, skipped).astype(var.dtype)
            shape = (-1,) + (1,) * (len(var.shape) - 1)
            row_slots[0] = B.multiply(row_slots[0], B.asarray(decay.reshape(shape)))
        last[indices_np] = self.iterations

    def _catch_up(self, B, var) -> None:
        last = self._last_update.pop(id(var), None)
        if last is None:
            return
        skipped = (self.iterations - 1) - last
        if skipped.any():
            decay = np.power(self.rho, skipped).astype(var.dtype)
            shape = (-1,) + (1,) * (len(var.shape) - 1)
            slots = self._slots[id(var)]
            slots[0] = B.multiply(slots[0], B.asarray(decay.reshape(shape)))

    def _fused_update(self, B):
        kernel = getattr(B, "rmsprop_update", None)
        if kernel is None or self.centered or self.momentum:
            return None

        def update(ws, gs, slots, lr):
            ws, vs = kernel(ws, gs, [s[0] for s in slots], lr, self.rho, self.epsilon)
            for s, v in zip(slots, vs):
                s[0] = v
            return ws

        return update

    def _update(self, B, w, g, slots, lr):
        rho = self.rho
        v = B.add(B.multiply(slots[0], rho), B.multiply(B.square(g), 1.0 - rho))
        slots[0] = v
        if self.centered:
            i = len(slots) - 1
            avg = B.add(B.multiply(slots[i], rho), B.multiply(g, 1.0 - rho))
            slots[i] = avg
            denom = B.add(B.subtract(v, B.square(avg)), self.epsilon)
        else:
            denom = B.add(v, self.epsilon)
        step = B.divide(B.multiply(g, lr), B.sqrt(denom))
        if self.momentum:
            m = B.add(B.multiply(slots[1], self.momentum), step)
            slots[1] = m
            step = m
        return B.subtract(w, step)


class Adam(Optimizer):
    """Adaptive moment estimation. lr 0.001, beta_1 0.9, beta_2 0.999, epsilon 1e-7."""

    beta_1: float
    beta_2: float
    epsilon: float
    amsgrad: bool

    _keras_groups = (("momentum", "velocity"), ("velocity_hat",))
    _defaults = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False}

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(
            self,
            {
                "beta_1": beta_1,
                "beta_2": beta_2,
                "epsilon": 1e-7 if epsilon is None else epsilon,
                "amsgrad": bool(amsgrad),
            },
        )
        self._slot_names = ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def _fused_update(self, B):
        # the backend's multi-tensor kernel (same math as _update), unless a subclass
        # changes the update
        kernel = getattr(B, "adam_update", None)
        if kernel is None or type(self)._update is not Adam._update:
            return None

        def update(ws, gs, slots, lr):
            alpha = self._alpha(lr)
            vhats = [s[2] for s in slots] if self.amsgrad else None
            ws, ms, vs, vhats = kernel(
                ws,
                gs,
                [s[0] for s in slots],
                [s[1] for s in slots],
                vhats,
                alpha,
                self.beta_1,
                self.beta_2,
                self.epsilon,
            )
            for k, s in enumerate(slots):
                s[0], s[1] = ms[k], vs[k]
                if vhats is not None:
                    s[2] = vhats[k]
            return ws

        return update

    def _alpha(self, lr: float) -> float:
        """The coming step's size: ``lr`` with Adam's two bias corrections."""
        t = self.iterations + 1
        return lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)

    def _update(self, B, w, g, slots, lr):
        return self._scaled_update(B, w, g, slots, self._alpha(lr))

    def _scaled_update(self, B, w, g, slots, alpha):
        """The update with the step size ``alpha`` given (a number, or an array: a
        compiled step takes it as an input, see training.compiled)."""
        m = B.add(slots[0], B.multiply(B.subtract(g, slots[0]), 1.0 - self.beta_1))
        v = B.add(slots[1], B.multiply(B.subtract(B.square(g), slots[1]), 1.0 - self.beta_2))
        slots[0], slots[1] = m, v
        if self.amsgrad:
            v = B.maximum(slots[2], v)
            slots[2] = v
        return B.subtract(w, B.divide(B.multiply(m, alpha), B.add(B.sqrt(v), self.epsilon)))


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras 3's AdamW): before each update, ``w -= lr *
    weight_decay * w``.  lr 0.001, weight_decay 0.004."""

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            weight_decay=weight_decay,
            **kwargs,
        )


class Adagrad(Optimizer):
    """Per-coordinate rates from accumulated squared gradients. lr 0.001."""

    initial_accumulator_value: float
    epsilon: float

    _defaults = {"initial_accumulator_value": 0.1, "epsilon": 1e-7}

    def __init__(
        self,
        learning_rate: float = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float | None = 1e-7,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(
            self,
            {
                "initial_accumulator_value": initial_accumulator_value,
                "epsilon": 1e-7 if epsilon is None else epsilon,
            },
        )
        self._slot_names = ("accumulator",)

    def _initial_slot(self, B, var, name):
        return B.add(B.zeros(var.shape, var.dtype), self.initial_accumulator_value)

    def _update(self, B, w, g, slots, lr):
        acc = B.add(slots[0], B.square(g))
        slots[0] = acc
        return B.subtract(w, B.divide(B.multiply(g, lr), B.sqrt(B.add(acc, self.epsilon))))


class Adadelta(Optimizer):
    """Step sizes from running averages of squared gradients and updates. lr 0.001."""

    rho: float
    epsilon: float

    _keras_groups = (("accumulated_grad", "accumulated_delta_var"),)
    _defaults = {"rho": 0.95, "epsilon": 1e-7}

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.95,
        epsilon: float | None = 1e-7,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(self, {"rho": rho, "epsilon": 1e-7 if epsilon is None else epsilon})
        self._slot_names = ("accumulated_grad", "accumulated_delta_var")

    def _update(self, B, w, g, slots, lr):
        rho, eps = self.rho, self.epsilon
        acc_g = B.add(B.multiply(slots[0], rho), B.multiply(B.square(g), 1.0 - rho))
        delta = B.neg(
            B.divide(B.multiply(B.sqrt(B.add(slots[1], eps)), g), B.sqrt(B.add(acc_g, eps)))
        )
        slots[0] = acc_g
        slots[1] = B.add(B.multiply(slots[1], rho), B.multiply(B.square(delta), 1.0 - rho))
        return B.add(w, B.multiply(delta, lr))


class Adamax(Optimizer):
    """Adam with the infinity norm. lr 0.001."""

    beta_1: float
    beta_2: float
    epsilon: float

    _keras_groups = (("m", "u"),)
    _keras_slot_names = {"m": "momentum", "u": "norm"}
    _defaults = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(
            self,
            {"beta_1": beta_1, "beta_2": beta_2, "epsilon": 1e-7 if epsilon is None else epsilon},
        )
        self._slot_names = ("m", "u")

    def _update(self, B, w, g, slots, lr):
        t = self.iterations + 1
        m = B.add(slots[0], B.multiply(B.subtract(g, slots[0]), 1.0 - self.beta_1))
        u = B.maximum(B.multiply(slots[1], self.beta_2), B.abs(g))
        slots[0], slots[1] = m, u
        scale = lr / (1.0 - self.beta_1**t)
        return B.subtract(w, B.divide(B.multiply(m, scale), B.add(u, self.epsilon)))


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Keras 3's momentum schedule). lr 0.001."""

    beta_1: float
    beta_2: float
    epsilon: float

    _keras_groups = (("momentum", "velocity"),)
    _defaults = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(
            self,
            {"beta_1": beta_1, "beta_2": beta_2, "epsilon": 1e-7 if epsilon is None else epsilon},
        )
        self._slot_names = ("momentum", "velocity")
        self._u_product = 1.0

    def _mu(self, t: int) -> float:
        return self.beta_1 * (1.0 - 0.5 * 0.96**t)

    def _before_step(self, B) -> None:
        self._u_product *= self._mu(self.iterations + 1)

    def _after_restore(self) -> None:
        self._u_product = math.prod(self._mu(t) for t in range(1, self.iterations + 1))

    def _extra_file_state(self):
        # Keras 3 keeps the product of the momentum schedule as a variable (the last one)
        return [(f"{self.name}/u_product", np.asarray(self._u_product, dtype=np.float32))]

    def _update(self, B, w, g, slots, lr):
        t = self.iterations + 1
        u_t, u_next = self._mu(t), self._mu(t + 1)
        prod, prod_next = self._u_product, self._u_product * u_next
        m = B.add(slots[0], B.multiply(B.subtract(g, slots[0]), 1.0 - self.beta_1))
        v = B.add(slots[1], B.multiply(B.subtract(B.square(g), slots[1]), 1.0 - self.beta_2))
        slots[0], slots[1] = m, v
        m_hat = B.add(
            B.multiply(m, u_next / (1.0 - prod_next)), B.multiply(g, (1.0 - u_t) / (1.0 - prod))
        )
        v_hat = B.divide(v, 1.0 - self.beta_2**t)
        return B.subtract(w, B.divide(B.multiply(m_hat, lr), B.add(B.sqrt(v_hat), self.epsilon)))


CLASSES: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "adamax": Adamax,
    "nadam": Nadam,
}


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``{"class_name": "RMSprop", "config": {...}}`` as Keras stores it."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict | None = None) -> Optimizer:
    name = config.get("class_name")
    cls = (custom_objects or {}).get(name) or CLASSES.get(str(name).lower())
    if cls is None:
        raise ValueError(
            f"Unknown optimizer: {name!r}. Known optimizers: "
            f"{', '.join(c.__name__ for c in CLASSES.values())}"
        )
    cfg = dict(config.get("config", {}))
    if not cfg.get("name"):
        cfg.pop("name", None)
    allowed = {
        "learning_rate",
        "lr",
        "decay",
        "clipnorm",
        "clipvalue",
        "global_clipnorm",
        "name",
        "weight_decay",
    } | set(cls._defaults)
    for key, value in cfg.items():
        if key in allowed:
            continue
        harmless = _HARMLESS_CONFIG.get(key)
        if harmless is None or not (harmless is _ANY or value in harmless):
            raise ValueError(
                f"optimizer {name}: {key}={value!r:.60} is not supported by "
                f"polykeras' {cls.__name__} (it takes "
                f"{', '.join(sorted(allowed))})"
            )
    kept = {k: v for k, v in cfg.items() if k in allowed}
    for key in ("learning_rate", "lr"):
        if isinstance(kept.get(key), dict):  # a schedule, Keras 3's or Keras 2's form
            kept[key] = schedules.deserialize(kept[key], custom_objects)
    return cls.from_config(kept)


_ANY = object()
#: Keras 2.11+/Keras 3 optimizer settings that change nothing at these values (any value:
#: how the step is compiled, or a setting that only matters when another is on).
_HARMLESS_CONFIG: dict[str, Any] = {
    "use_ema": (False, None),
    "ema_momentum": _ANY,
    "ema_overwrite_frequency": _ANY,
    "loss_scale_factor": (None, 1, 1.0),
    "gradient_accumulation_steps": (None, 1),
    "jit_compile": _ANY,
    "is_legacy_optimizer": _ANY,
    # Keras 2's Nadam wrote its default schedule_decay into every file; at that default it
    # is the momentum schedule whose later form (tf.keras 2.11+/Keras 3) this Nadam computes,
    # as GUIDE.md asks where Keras versions differ. Another value is refused.
    "schedule_decay": (0.004,),
}


def get(identifier: Any) -> Optimizer:
    """An optimizer from a name (``'rmsprop'``, ``'Adam'``), a config dict, or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = CLASSES.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"Unknown optimizer: {identifier!r}. Known optimizers: {', '.join(sorted(CLASSES))}"
            )
        return cls()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}")


# Keras' lower-case aliases
sgd, rmsprop, adam, adamw, adagrad, adadelta, adamax, nadam = (
    SGD,
    RMSprop,
    Adam,
    AdamW,
    Adagrad,
    Adadelta,
    Adamax,
    Nadam,
)


# Keras 3's later optimizers live in their own module; registered here by name
from .optimizers_extra import EXTRA_CLASSES, Adafactor, Ftrl, Lamb, Lion  # noqa: E402

CLASSES.update(EXTRA_CLASSES)
ftrl, lion, lamb, adafactor = Ftrl, Lion, Lamb, Adafactor
