"""Recurrent layers: ``SimpleRNN``, ``LSTM`` and ``GRU``.

Keras 2 / tf.keras semantics and weight layouts, so that weights copied from Keras give the
same outputs:

- ``SimpleRNN``: kernel (in, u), recurrent_kernel (u, u), bias (u,).
- ``LSTM``: kernel (in, 4u), recurrent_kernel (u, 4u), bias (4u,), gates ordered i, f, c, o.
- ``GRU``: gates ordered z, r, h; kernel (in, 3u), recurrent_kernel (u, 3u); bias (2, 3u)
  (input bias, recurrent bias) with ``reset_after=True`` (the default), (3u,) without.

Keras 1's argument names (``output_dim``, ``init``, ``inner_init``, ``inner_activation``,
``forget_bias_init``, ``dropout_W``, ``dropout_U``, ``W_regularizer``...) are accepted.

The input projection of every timestep is one matmul over (batch * time, features); the
Python loop over timesteps only does ``h @ recurrent_kernel`` and the gate arithmetic.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import activations, constraints, fused, initializers, ops, regularizers
from ..fused import _ALL, _cols
from ..engine.base_layer import Layer
from ..engine.variables import Variable
from ..utils import as_int
from .core import check_seed, uniform_noise


def _check_rate(layer: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{layer}: {name} must be a float in [0, 1], got {value!r}")
    return float(value)


class _UnitForgetBias(initializers.Initializer):
    """The LSTM bias with its forget-gate slice set to ones (``unit_forget_bias=True``)."""

    def __init__(self, base: Any, units: int):
        self.base = initializers.get(base)
        self.units = units

    def __call__(self, shape, dtype="float32"):
        u = self.units
        return np.concatenate(
            [
                np.asarray(self.base((u,), dtype), dtype=dtype),
                np.ones((u,), dtype=dtype),
                np.asarray(self.base((2 * u,), dtype), dtype=dtype),
            ]
        )


# Keras 1 argument names shared by every recurrent layer.
_RNN_LEGACY: dict[str, str] = {
    "output_dim": "units",
    "init": "kernel_initializer",
    "inner_init": "recurrent_initializer",
    "inner_activation": "recurrent_activation",
    "dropout_W": "dropout",
    "dropout_U": "recurrent_dropout",
    "W_regularizer": "kernel_regularizer",
    "U_regularizer": "recurrent_regularizer",
    "b_regularizer": "bias_regularizer",
    "W_constraint": "kernel_constraint",
    "U_constraint": "recurrent_constraint",
    "b_constraint": "bias_constraint",
}

_SIMPLE_RNN_LEGACY = {k: v for k, v in _RNN_LEGACY.items() if k != "inner_activation"}

# Arguments only Keras 1 had: a layer built with one of them is a Keras 1 layer.
_KERAS1_ONLY = (
    "output_dim",
    "init",
    "inner_init",
    "inner_activation",
    "dropout_W",
    "dropout_U",
    "W_regularizer",
    "U_regularizer",
    "b_regularizer",
    "W_constraint",
    "U_constraint",
    "b_constraint",
    "consume_less",
)

# Accepted for compatibility with Keras 1/2/3 configs, and without effect here.
# (consume_less, implementation, use_cudnn: how the same math is computed; unroll, too)
_IGNORED = ("consume_less", "implementation", "use_cudnn")


class _RNN(Layer):
    """What SimpleRNN, LSTM and GRU share: arguments, shapes, dropout and the time loop.

    A subclass sets ``_gates`` (gate blocks in the kernel) and ``_n_states``, and writes
    ``_make_weights(input_dim)``, ``_input_projection_bias()`` and ``_step``.
    """

    _gates = 1
    _n_states = 1
    _has_recurrent_activation = True
    _legacy_kwargs = _RNN_LEGACY

    def __init__(
        self,
        units: Any = None,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        **kwargs: Any,
    ):
        cls = type(self).__name__
        # Keras 1 names -> Keras 2 names
        given = {
            "units": units,
            "kernel_initializer": kernel_initializer,
            "recurrent_initializer": recurrent_initializer,
            "recurrent_activation": recurrent_activation,
            "dropout": dropout,
            "recurrent_dropout": recurrent_dropout,
            "kernel_regularizer": kernel_regularizer,
            "recurrent_regularizer": recurrent_regularizer,
            "bias_regularizer": bias_regularizer,
            "kernel_constraint": kernel_constraint,
            "recurrent_constraint": recurrent_constraint,
            "bias_constraint": bias_constraint,
        }
        for old, new in self._legacy_kwargs.items():
            if old in kwargs:
                if new == "units" and units is not None:
                    raise TypeError(f"{cls}: got both units and its Keras 1 name output_dim")
                given[new] = kwargs.pop(old)
        for name in _IGNORED:
            kwargs.pop(name, None)
        seed = kwargs.pop("seed", None)
        zero_output_for_mask = kwargs.pop("zero_output_for_mask", False)
        if kwargs.pop("time_major", False):
            raise ValueError(
                f"{cls}: time_major=True is not supported; inputs are (batch, timesteps, features)"
            )
        # Keras 1: input_dim / input_length describe a 3-D input (timesteps, features)
        if (
            kwargs.get("input_dim") is not None
            and kwargs.get("input_shape") is None
            and kwargs.get("batch_input_shape") is None
        ):
            kwargs["input_shape"] = (kwargs.pop("input_length", None), kwargs.pop("input_dim"))
        else:
            if (
                kwargs.get("input_length") is not None
                and kwargs.get("input_shape") is None
                and kwargs.get("batch_input_shape") is None
            ):
                raise ValueError(
                    f"{cls}: input_length needs input_dim (or pass "
                    "input_shape=(timesteps, features))"
                )
            kwargs.pop("input_dim", None)
            kwargs.pop("input_length", None)
        super().__init__(**kwargs)

        units = given["units"]
        if units is None:
            raise TypeError(
                f"{cls}: missing the number of units (units=, or Keras 1's output_dim=)"
            )
        self.units = as_int(units, "units", cls)
        self.activation = activations.get(activation)
        if self._has_recurrent_activation:
            self.recurrent_activation = activations.get(given["recurrent_activation"])
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(given["kernel_initializer"])
        self.recurrent_initializer = initializers.get(given["recurrent_initializer"])
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get_optional(given["kernel_regularizer"])
        self.recurrent_regularizer = regularizers.get_optional(given["recurrent_regularizer"])
        self.bias_regularizer = regularizers.get_optional(given["bias_regularizer"])
        self.kernel_constraint = constraints.get(given["kernel_constraint"])
        self.recurrent_constraint = constraints.get(given["recurrent_constraint"])
        self.bias_constraint = constraints.get(given["bias_constraint"])
        self.dropout = _check_rate(cls, "dropout", given["dropout"])
        self.recurrent_dropout = _check_rate(cls, "recurrent_dropout", given["recurrent_dropout"])
        self.seed = check_seed(seed, f"{cls} {self.name}")
        self._init_running(
            return_sequences, return_state, go_backwards, stateful, unroll, zero_output_for_mask
        )

    def _init_running(
        self,
        return_sequences: Any,
        return_state: Any,
        go_backwards: Any,
        stateful: Any,
        unroll: Any,
        zero_output_for_mask: Any,
    ) -> None:
        """How the layer runs over time, shared by the built-in layers and RNN(cell)."""
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        # masked steps output zeros instead of the previous output (Bidirectional sets it)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        # stateful=True: the batch size the states are for, and the states themselves
        # (backend arrays, None until the first run or after reset_states)
        self._state_batch: int | None = None
        self._states: list | None = None
        self._eager_batch: int | None = None

    # -- calling with initial_state ---------------------------------------------------------
    def __call__(self, inputs: Any, initial_state: Any = None, **kwargs: Any) -> Any:
        """``layer(x)``, ``layer(x, initial_state=[h, c])`` or ``layer([x, h, c])``."""
        if initial_state is not None:
            states = (
                list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            )
            inputs = [inputs] + states
        elif isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]
        if self.stateful and not self.built:
            # an eager first call: the data's batch size is the one the states are for
            first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            if not hasattr(first, "_keras_history") and hasattr(first, "shape"):
                self._eager_batch = int(first.shape[0])
        return super().__call__(inputs, **kwargs)

    # -- shapes ---------------------------------------------------------------------------
    def _split_shapes(self, input_shape: Any) -> tuple[tuple, list]:
        if isinstance(input_shape, list):
            if not input_shape:
                raise ValueError(f"layer {self.name} ({type(self).__name__}) got no input")
            return tuple(input_shape[0]), [tuple(s) for s in input_shape[1:]]
        return tuple(input_shape), []

    def check_input(self, input_shape: Any) -> None:
        cls = type(self).__name__
        x, states = self._split_shapes(input_shape)
        if len(x) != 3:
            raise ValueError(
                f"Input 0 of layer {self.name} ({cls}) is incompatible with the "
                f"layer: expected ndim=3 (batch, timesteps, features), found "
                f"ndim={len(x)}. Full shape received: {x}"
            )
        if x[-1] is None:
            raise ValueError(
                f"layer {self.name} ({cls}): the feature dimension (last axis) "
                f"of the input must be known; got shape {x}"
            )
        if self.built and x[-1] != self._input_dim:
            raise ValueError(
                f"Input 0 of layer {self.name} ({cls}) is incompatible with the "
                f"layer: expected axis -1 of input shape to have value "
                f"{self._input_dim}, but received input with shape {x}"
            )
        if x[1] == 0:
            raise ValueError(f"layer {self.name} ({cls}): the input has 0 timesteps (shape {x})")
        if states:
            if len(states) != self._n_states:
                raise ValueError(
                    f"layer {self.name} ({cls}) expects {self._n_states} "
                    f"initial state tensor(s), got {len(states)}"
                )
            for i, s in enumerate(states):
                if len(s) != 2 or s[-1] != self.units:
                    raise ValueError(
                        f"layer {self.name} ({cls}): initial state {i} must "
                        f"have shape (batch, {self.units}), got {s}"
                    )

    def build(self, input_shape: Any) -> None:
        x, _ = self._split_shapes(input_shape)
        if self.stateful:
            self._state_batch = self._fixed_batch_size(x)
            self._states = None
        self._input_dim = int(self._input_features(x))
        self._make_weights(self._input_dim)
        self.built = True

    def _input_features(self, x: tuple) -> Any:
        """The size of the input's feature axis (what the kernel's rows see)."""
        return x[-1]

    def _fixed_batch_size(self, x: tuple) -> int:
        """The batch size a stateful layer keeps states for, or Keras' error without one."""
        batch = x[0]
        if batch is None and self._batch_input_shape is not None:
            batch = self._batch_input_shape[0]
        if batch is None:
            batch = self._eager_batch
        if batch is None:
            raise ValueError(
                f"layer {self.name} ({type(self).__name__}): If a RNN is stateful, it needs "
                "to know its batch size. Specify the batch size of your input tensors: \n"
                "- If using a Sequential model, specify the batch size by passing a "
                "`batch_input_shape` argument to your first layer.\n"
                "- If using the functional API, specify the batch size by passing a "
                "`batch_shape` argument to your Input layer."
            )
        return int(batch)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The input's timestep mask with ``return_sequences`` (else None); states get None."""
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        out = mask if self.return_sequences else None
        if self.return_state:
            return [out] + [None] * self._n_states
        return out

    # -- stateful=True ---------------------------------------------------------------------
    def reset_states(self, states: Any = None) -> None:
        """Zero the kept states of a stateful layer (or set them to ``states``)."""
        cls = type(self).__name__
        if not self.stateful:
            raise AttributeError(
                f"layer {self.name} ({cls}): reset_states() needs a stateful layer (built "
                "with stateful=True); this one starts every batch from zero states"
            )
        if states is None or not self.built:
            if states is not None:
                raise ValueError(
                    f"layer {self.name} ({cls}): it is not built yet, so its states cannot "
                    "be set; call it on data (or build the model) first"
                )
            self._states = None
            return
        given = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(given) != self._n_states:
            raise ValueError(
                f"layer {self.name} ({cls}) has {self._n_states} state(s), but "
                f"reset_states got {len(given)}"
            )
        sizes = getattr(self, "_sizes", [self.units] * self._n_states)
        values = []
        for i, s in enumerate(given):
            expected = (self._state_batch, sizes[i])
            arr = np.asarray(s, dtype=self.dtype)
            if arr.shape != expected:
                raise ValueError(
                    f"layer {self.name} ({cls}): state {i} must have shape {expected} "
                    f"(batch size, units), got {arr.shape}"
                )
            values.append(ops.asarray(arr, self.dtype))
        self._states = values

    def _stateful_start(self, batch: int) -> list:
        """The states a stateful layer starts this batch from (zeros after a reset)."""
        if batch != self._state_batch:
            raise ValueError(
                f"layer {self.name} ({type(self).__name__}) is stateful with batch size "
                f"{self._state_batch} (its states hold that many sequences), but got a batch "
                f"of {batch}; feed batches of exactly {self._state_batch} samples (pass "
                f"batch_size={self._state_batch} to fit/predict/evaluate and use a sample "
                "count divisible by it)"
            )
        if self._states is None:
            return [ops.zeros((batch, self.units), self.dtype)] * self._n_states
        return [
            s if ops.dtype_name(s) == self.dtype else ops.cast(s, self.dtype) for s in self._states
        ]

    def compute_output_shape(self, input_shape: Any) -> Any:
        x, _ = self._split_shapes(input_shape)
        batch = x[0]
        out = (batch, x[1], self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [out] + [(batch, self.units)] * self._n_states
        return out

    # -- weights ------------------------------------------------------------------------------
    def _add_kernels(
        self,
        input_dim: int,
        bias_shape: tuple,
        bias_initializer: Any,
        kernel_window: tuple = (),
    ) -> None:
        """kernel, recurrent_kernel and (with use_bias) bias, in Keras' order; a
        convolutional layer's kernels have the ``kernel_window`` (kh, kw) in front."""
        width = self._gates * self.units
        self.kernel = self.add_weight(
            "kernel",
            kernel_window + (input_dim, width),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel",
            kernel_window + (self.units, width),
            self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias: Variable | None
        if self.use_bias:
            self.bias = self.add_weight(
                "bias",
                bias_shape,
                bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None

    def _make_weights(self, input_dim: int) -> None:
        self._add_kernels(input_dim, (self._gates * self.units,), self.bias_initializer)

    def _input_projection_bias(self) -> Any:
        """The bias added to ``x @ kernel`` (all timesteps at once), or None."""
        return self.bias

    # -- running ---------------------------------------------------------------------------
    def _dropout_mask(self, shape: tuple, dtype: str, rate: float) -> Any:
        """Inverted-dropout mask: 0 with probability ``rate``, else 1 / (1 - rate)."""
        u = uniform_noise(self, shape, dtype)
        keep = ops.cast(ops.greater_equal(u, rate), dtype)
        return ops.multiply(keep, 1.0 / (1.0 - rate))

    def call(
        self, inputs: Any, mask: Any = None, training: Any = None, initial_state: Any = None
    ) -> Any:
        if initial_state is not None:
            extra = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
            inputs = [inputs[0] if isinstance(inputs, (list, tuple)) else inputs, *extra]
        if isinstance(mask, (list, tuple)):  # one entry per input: the sequence's counts
            mask = mask[0] if mask else None
        output, states = self._run(inputs, bool(training), mask)
        if self.stateful:
            self._states = [ops.stop_gradient(s) for s in states]
        return [output] + list(states) if self.return_state else output

    def _check_mask(self, mask: Any, batch: int, steps: int) -> Any:
        shape = ops.shape(mask)
        if tuple(shape) != (batch, steps):
            raise ValueError(
                f"layer {self.name} ({type(self).__name__}): the mask must have shape "
                f"(batch, timesteps) = {(batch, steps)}, like the input without its feature "
                f"axis; got a mask of shape {tuple(shape)}"
            )
        if ops.dtype_name(mask) != "bool":
            mask = ops.not_equal(mask, 0)
        return mask

    def _split_inputs(self, inputs: Any) -> tuple[Any, list]:
        """``x`` (in the layer's dtype) and the initial states given with it."""
        if isinstance(inputs, (list, tuple)):
            x, states = inputs[0], list(inputs[1:])
        else:
            x, states = inputs, []
        if ops.dtype_name(x) != self.dtype:  # e.g. float64 NumPy data on the numpy backend
            x = ops.cast(x, self.dtype)
        return x, states

    def _run(self, inputs: Any, training: bool, mask: Any = None) -> tuple[Any, list]:
        """The output (the last one, or every step's) and the final states."""
        x, states = self._split_inputs(inputs)
        states = [s if ops.dtype_name(s) == self.dtype else ops.cast(s, self.dtype) for s in states]
        batch, steps, features = ops.shape(x)
        dtype = self.dtype
        units = self.units
        if mask is not None:
            mask = self._check_mask(mask, batch, steps)
        if not states:
            if self.stateful:
                states = self._stateful_start(batch)
            else:
                zero = ops.zeros((batch, units), dtype)
                states = [zero] * self._n_states

        if training and 0.0 < self.dropout < 1.0:
            drop = self._dropout_mask((batch, features), dtype, self.dropout)
            x = ops.multiply(x, ops.reshape(drop, (batch, 1, features)))
        rec_mask = None
        if training and 0.0 < self.recurrent_dropout < 1.0:
            rec_mask = self._dropout_mask((batch, units), dtype, self.recurrent_dropout)
        if rec_mask is None and mask is None:
            fused = self._fused_sequence(x, states)
            if fused is not None:
                return fused

        # The input projection of every timestep at once.
        width = self._gates * units
        proj = ops.matmul(ops.reshape(x, (batch * steps, features)), self.kernel)
        bias = self._input_projection_bias()
        if bias is not None:
            proj = ops.add(proj, bias)
        proj = ops.reshape(proj, (batch, steps, width))

        self._prepare_step()
        try:
            return self._time_loop(
                lambda x_t, s: self._step(x_t, s, rec_mask),
                proj,
                None if mask is None else ops.reshape(mask, (batch, steps, 1)),
                states,
                ops.zeros((batch, units), dtype),
            )
        finally:
            self._finish_step()

    def _time_loop(self, step: Any, proj: Any, keep: Any, states: list, zeros: Any) -> tuple:
        """Run ``step(x_t, states) -> (output, new_states)`` over the timesteps of ``proj``
        (in reverse with ``go_backwards``); returns (the last output or every step's, the
        final states).

        ``keep`` (the mask, shaped to broadcast against an output; None: every step counts):
        where ``keep[:, t]`` is False the states are kept and the previous output repeated
        (``zeros`` before the first kept step), as Keras does; with
        ``zero_output_for_mask`` a masked step outputs ``zeros``."""
        steps = ops.shape(proj)[1]
        keeps = (
            _time_slices(keep, steps, self.go_backwards)
            if keep is not None
            else iter(lambda: None, 0)
        )
        prev, outputs, m_t = zeros, [], None
        for x_t, m_t in zip(_time_slices(proj, steps, self.go_backwards), keeps):
            out, new = step(x_t, states)
            if m_t is None:
                states, prev = new, out
                if self.return_sequences:
                    outputs.append(out)
                continue
            states = [ops.where(m_t, n, o) for n, o in zip(new, states)]
            prev = ops.where(m_t, out, prev)
            if self.return_sequences:
                outputs.append(ops.where(m_t, out, zeros) if self.zero_output_for_mask else prev)
        last = prev
        if m_t is not None and self.zero_output_for_mask:
            last = ops.where(m_t, prev, zeros)
        output = ops.stack(outputs, axis=1) if self.return_sequences else last
        return output, list(states)

    def _fused_sequence(self, x: Any, states: list) -> tuple[Any, list] | None:
        """Hook: the whole sequence in one backend kernel, or None to run the time loop."""
        return None

    def _prepare_step(self) -> None:
        """Hook: precompute per-call values (weight slices) before the time loop."""

    def _finish_step(self) -> None:
        """Hook: drop what _prepare_step cached."""

    def _step(self, x_t: Any, states: list, rec_mask: Any) -> tuple[Any, list]:
        raise NotImplementedError

    # -- config -------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update(
            {
                "units": self.units,
                "activation": activations.serialize(self.activation),
            }
        )
        if self._has_recurrent_activation:
            cfg["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        cfg.update(
            {
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
            }
        )
        cfg.update(self._extra_config())
        cfg.update(
            {
                "kernel_regularizer": regularizers.serialize_optional(self.kernel_regularizer),
                "recurrent_regularizer": regularizers.serialize_optional(
                    self.recurrent_regularizer
                ),
                "bias_regularizer": regularizers.serialize_optional(self.bias_regularizer),
                "kernel_constraint": regularizers.serialize_constraint(self.kernel_constraint),
                "recurrent_constraint": regularizers.serialize_constraint(
                    self.recurrent_constraint
                ),
                "bias_constraint": regularizers.serialize_constraint(self.bias_constraint),
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "unroll": self.unroll,
            }
        )
        if self.zero_output_for_mask:
            cfg["zero_output_for_mask"] = True
        if self.seed is not None:
            cfg["seed"] = self.seed
        return cfg

    def _extra_config(self) -> dict[str, Any]:
        return {}


def _time_slices(proj: Any, steps: int, backwards: bool):
    """Yield ``proj[:, t]`` for each timestep (in reverse with ``backwards``).

    Slices are taken through chunks of about sqrt(steps) timesteps: each slice's gradient
    is a zero-padded array of its parent's size, so slicing the whole sequence directly
    would cost O(steps^2) in the backward pass; through chunks it is O(steps^1.5).
    """
    order = range(steps - 1, -1, -1) if backwards else range(steps)
    if steps <= 16:
        for t in order:
            yield ops.getitem(proj, (_ALL, t))
        return
    size = math.ceil(math.sqrt(steps))
    starts = list(range(0, steps, size))
    if backwards:
        starts.reverse()
    for start in starts:
        stop = min(start + size, steps)
        chunk = ops.getitem(proj, (_ALL, slice(start, stop)))
        inner = range(stop - start - 1, -1, -1) if backwards else range(stop - start)
        for j in inner:
            yield ops.getitem(chunk, (_ALL, j))


class SimpleRNN(_RNN):
    """Fully-connected RNN: ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + b)``."""

    _gates = 1
    _n_states = 1
    _has_recurrent_activation = False
    _legacy_kwargs = _SIMPLE_RNN_LEGACY

    def __init__(
        self,
        units: Any = None,
        activation: Any = "tanh",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ):
        if "recurrent_activation" in kwargs:
            raise TypeError(
                "SimpleRNN: keyword argument(s) not understood: "
                "recurrent_activation (SimpleRNN has no gates)"
            )
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            **kwargs,
        )

    def _step(self, x_t, states, rec_mask):
        h_prev = states[0]
        if rec_mask is not None:
            h_prev = ops.multiply(h_prev, rec_mask)
        h = self.activation(ops.add(x_t, ops.matmul(h_prev, self.recurrent_kernel)))
        return h, [h]


class LSTM(_RNN):
    """Long short-term memory (Hochreiter 1997), Keras' layout: gates i, f, c, o."""

    _gates = 4
    _n_states = 2

    def __init__(
        self,
        units: Any = None,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        **kwargs: Any,
    ):
        self.unit_forget_bias = bool(unit_forget_bias)
        if "forget_bias_init" in kwargs:  # Keras 1: forget_bias_init='one'
            fbi = kwargs.pop("forget_bias_init")
            if fbi in ("one", "ones", "One", "Ones"):
                self.unit_forget_bias = True
            elif fbi in ("zero", "zeros", "Zero", "Zeros"):
                self.unit_forget_bias = False
            else:
                raise ValueError(
                    f"LSTM: forget_bias_init={fbi!r} is not supported; use "
                    "'one' (unit_forget_bias=True) or 'zero'"
                )
        super().__init__(
            units, activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, **kwargs,
        )  # fmt: skip

    def _make_weights(self, input_dim):
        init = self.bias_initializer
        if self.unit_forget_bias:
            init = _UnitForgetBias(self.bias_initializer, self.units)
        self._add_kernels(input_dim, (4 * self.units,), init)

    def _step(self, x_t, states, rec_mask):
        h_prev, c_prev = states
        u = self.units
        if rec_mask is not None:
            h_prev = ops.multiply(h_prev, rec_mask)
        z = ops.add(x_t, ops.matmul(h_prev, self.recurrent_kernel))
        gates = self.recurrent_activation(z)  # i, f, o use it; the c block is unused
        i = ops.getitem(gates, _cols(0, u))
        f = ops.getitem(gates, _cols(u, 2 * u))
        o = ops.getitem(gates, _cols(3 * u, 4 * u))
        g = self.activation(ops.getitem(z, _cols(2 * u, 3 * u)))
        c = ops.add(ops.multiply(f, c_prev), ops.multiply(i, g))
        h = ops.multiply(o, self.activation(c))
        return h, [h, c]

    def _fused_sequence(self, x, states):
        """The whole sequence as one op, for the standard cell (tanh, sigmoid).

        The backend's optional ``lstm_sequence`` kernel (see polykeras.contract) when it
        differentiates by itself and nothing is traced by the core; otherwise
        :func:`polykeras.fused.lstm_sequence`, one node on the core's tape."""
        if (
            self.activation is not ops.tanh
            or self.recurrent_activation is not ops.sigmoid
            or ops.shape(x)[1] == 0
        ):
            return None
        args = [
            x,
            states[0],
            states[1],
            self.kernel,
            self.recurrent_kernel,
            self.bias if self.use_bias else None,
        ]
        found = ops.fused_kernel("lstm_sequence", *args)
        if found is not None:
            kernel, values = found
            seq, h, c = kernel(
                *values, go_backwards=self.go_backwards, return_sequences=self.return_sequences
            )
            return (seq if self.return_sequences else h), [h, c]
        if not fused.ENABLED:
            return None
        u = self.units
        packed = fused.lstm_sequence(*args, go_backwards=self.go_backwards)
        last = ops.getitem(packed, (_ALL, -1))
        h = ops.getitem(last, (_ALL, slice(0, u)))
        c = ops.getitem(last, (_ALL, slice(u, 2 * u)))
        if self.return_sequences:
            return ops.getitem(packed, (_ALL, _ALL, slice(0, u))), [h, c]
        return h, [h, c]

    def _extra_config(self):
        return {"unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Gated recurrent unit (Cho et al. 2014), Keras' layout: gates z, r, h.

    ``reset_after=True`` (the default of tf.keras 2 and Keras 3) applies the reset gate after
    the recurrent matmul and has two biases, stored as ``bias`` of shape (2, 3 * units);
    ``reset_after=False`` (Keras 1 and early Keras 2) applies it before, with one bias.

    A GRU written with Keras 1's argument names (``output_dim``, ``inner_activation``...)
    and no ``reset_after`` is a Keras 1 GRU: it gets ``reset_after=False``, Keras 1's
    equations and weight shapes (and its parameter count).
    """

    _gates = 3
    _n_states = 1

    def __init__(
        self,
        units: Any = None,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        reset_after: Any = None,
        **kwargs: Any,
    ):
        if reset_after is None:
            reset_after = not any(name in kwargs for name in _KERAS1_ONLY)
        self.reset_after = bool(reset_after)
        super().__init__(
            units, activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, **kwargs,
        )  # fmt: skip

    def _make_weights(self, input_dim):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        self._add_kernels(input_dim, shape, self.bias_initializer)

    def _input_projection_bias(self):
        if self.bias is None:
            return None
        return ops.getitem(self.bias, 0) if self.reset_after else self.bias

    def _prepare_step(self):
        u = self.units
        rk = self.recurrent_kernel
        if self.reset_after:
            self._rec_bias = ops.getitem(self.bias, 1) if self.bias is not None else None
        else:
            self._rk_zr = ops.getitem(rk, _cols(0, 2 * u))
            self._rk_h = ops.getitem(rk, _cols(2 * u, 3 * u))

    def _finish_step(self):
        self._rec_bias = self._rk_zr = self._rk_h = None

    def _step(self, x_t, states, rec_mask):
        h_prev = states[0]
        u = self.units
        h_in = h_prev if rec_mask is None else ops.multiply(h_prev, rec_mask)
        x_zr = ops.getitem(x_t, _cols(0, 2 * u))
        x_h = ops.getitem(x_t, _cols(2 * u, 3 * u))
        if self.reset_after:
            inner = ops.matmul(h_in, self.recurrent_kernel)
            if self._rec_bias is not None:
                inner = ops.add(inner, self._rec_bias)
            zr = self.recurrent_activation(ops.add(x_zr, ops.getitem(inner, _cols(0, 2 * u))))
            r = ops.getitem(zr, _cols(u, 2 * u))
            rec_h = ops.multiply(r, ops.getitem(inner, _cols(2 * u, 3 * u)))
        else:
            zr = self.recurrent_activation(ops.add(x_zr, ops.matmul(h_in, self._rk_zr)))
            r = ops.getitem(zr, _cols(u, 2 * u))
            rec_h = ops.matmul(ops.multiply(r, h_in), self._rk_h)
        z = ops.getitem(zr, _cols(0, u))
        hh = self.activation(ops.add(x_h, rec_h))
        # h = z * h_prev + (1 - z) * hh, with one multiply fewer
        h = ops.add(hh, ops.multiply(z, ops.subtract(h_prev, hh)))
        return h, [h]

    def _extra_config(self):
        return {"reset_after": self.reset_after}


# -- cells and RNN(cell) ------------------------------------------------------------------------
_RNN_ONLY = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
    "time_major",
)


class _Cell:
    """One timestep of a built-in recurrent layer, as a Keras cell: ``call(inputs, states)``
    returns ``(output, new_states)``.  The weights, their names and the step's math are the
    layer's (the cell is the layer's class with this mixin in front)."""

    def __init__(self, *args: Any, **kwargs: Any):
        cls = type(self).__name__
        given = [k for k in _RNN_ONLY if k in kwargs]
        if given:
            raise TypeError(
                f"{cls}: keyword argument(s) not understood: {', '.join(given)} (a cell "
                "computes one timestep; give them to the RNN layer that runs it)"
            )
        for key in ("dropout", "recurrent_dropout"):
            if kwargs.get(key):
                raise ValueError(
                    f"{cls}: {key}={kwargs[key]!r} in a cell is not supported by polykeras; "
                    f"use the {cls[: -len('Cell')]} layer's {key}, or leave it at 0"
                )
        super().__init__(*args, **kwargs)

    @property
    def state_size(self) -> list[int]:
        return [self.units] * self._n_states  # type: ignore[attr-defined]

    @property
    def output_size(self) -> int:
        return self.units  # type: ignore[attr-defined]

    def check_input(self, input_shape: Any) -> None:
        pass

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (tuple(input_shape)[0], self.units)  # type: ignore[attr-defined]

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        x_t = ops.matmul(inputs, self.kernel)  # type: ignore[attr-defined]
        bias = self._input_projection_bias()  # type: ignore[attr-defined]
        if bias is not None:
            x_t = ops.add(x_t, bias)
        self._prepare_step()  # type: ignore[attr-defined]
        try:
            h, new_states = self._step(x_t, states, None)  # type: ignore[attr-defined]
        finally:
            self._finish_step()  # type: ignore[attr-defined]
        return h, new_states

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()  # type: ignore[misc]
        for key in _RNN_ONLY:
            cfg.pop(key, None)
        return cfg


class SimpleRNNCell(_Cell, SimpleRNN):  # type: ignore[misc]
    """The cell of ``SimpleRNN``: ``h = activation(x @ kernel + h_prev @ recurrent_kernel + b)``."""


class LSTMCell(_Cell, LSTM):  # type: ignore[misc]
    """The cell of ``LSTM`` (gates i, f, c, o; states [h, c])."""


class GRUCell(_Cell, GRU):  # type: ignore[misc]
    """The cell of ``GRU`` (gates z, r, h; ``reset_after`` as the layer)."""


def _state_sizes(cell: Any) -> list[int]:
    size = getattr(cell, "state_size", None)
    if size is None:
        raise ValueError(
            f"RNN: the cell {cell!r} has no state_size (an int, or a list of ints: the size "
            "of each state it carries from one step to the next)"
        )
    sizes = list(size) if isinstance(size, (list, tuple)) else [size]
    return [as_int(s, "state_size", f"cell {getattr(cell, 'name', cell)}") for s in sizes]


def _output_size(cell: Any) -> int:
    size = getattr(cell, "output_size", None)
    return int(size) if size is not None else _state_sizes(cell)[0]


def _call_cell(cell: Any, x_t: Any, states: list, training: Any) -> tuple[Any, list]:
    kwargs = {"training": training} if cell._accepts_training else {}
    out, new = cell.call(x_t, states, **kwargs)
    new = list(new) if isinstance(new, (list, tuple)) else [new]
    return out, new


class StackedRNNCells(Layer):
    """Several cells as one: each step runs them in order, each feeding the next; the
    states are every cell's, in order."""

    def __init__(self, cells: Any, **kwargs: Any):
        cells = list(cells) if isinstance(cells, (list, tuple)) else [cells]
        if not cells:
            raise ValueError("StackedRNNCells: needs at least one cell")
        for cell in cells:
            if not isinstance(cell, Layer) or not hasattr(cell, "call"):
                raise ValueError(f"StackedRNNCells: every cell must be a Layer; got {cell!r}")
            _state_sizes(cell)
        super().__init__(**kwargs)
        self.cells = cells

    @property
    def state_size(self) -> list[int]:
        return [s for cell in self.cells for s in _state_sizes(cell)]

    @property
    def output_size(self) -> int:
        return _output_size(self.cells[-1])

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        for cell in self.cells:
            cell._maybe_build(shape)
            shape = (shape[0], _output_size(cell))
        self.built = True

    def call(self, inputs: Any, states: Any, training: Any = None) -> Any:
        states = list(states)
        new_states: list = []
        x = inputs
        for cell in self.cells:
            n = len(_state_sizes(cell))
            x, new = _call_cell(cell, x, states[:n], training)
            states = states[n:]
            new_states += new
        return x, new_states

    @property
    def trainable_weights(self):
        return [w for c in self.cells for w in c.trainable_weights] if self.trainable else []

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [w for c in self.cells for w in c.non_trainable_weights]

    @property
    def weights(self):
        return [w for c in self.cells for w in c.weights]

    def get_config(self) -> dict[str, Any]:
        from ..saving.config import serialize_layer

        return {**super().get_config(), "cells": [serialize_layer(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> Layer:
        from ..saving.config import deserialize_layer

        config = dict(config)
        cells = [deserialize_layer(c, custom_objects) for c in config.pop("cells")]
        return cls(cells, **config)


class RNN(_RNN):
    """``RNN(cell)``: runs a cell over the timesteps (Keras' base recurrent layer).

    The cell is a built-in cell (``SimpleRNNCell``, ``LSTMCell``, ``GRUCell``), a list of
    cells (made into ``StackedRNNCells``) or any Layer with a ``state_size`` and
    ``call(inputs, states) -> (output, new_states)``.  Masks, ``return_sequences``,
    ``return_state``, ``go_backwards``, ``stateful`` and ``initial_state`` work as in the
    built-in layers; the weights are the cell's (named ``rnn/<cell>/kernel:0``...).
    """

    def __init__(
        self,
        cell: Any,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        **kwargs: Any,
    ):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not isinstance(cell, Layer) or not hasattr(cell, "call"):
            raise ValueError(
                "RNN: cell must be a Layer with a state_size and call(inputs, states) "
                f"(or a list of such cells); got {cell!r}"
            )
        sizes = _state_sizes(cell)
        if kwargs.pop("time_major", False):
            raise ValueError(
                "RNN: time_major=True is not supported; inputs are (batch, timesteps, features)"
            )
        zero_output_for_mask = kwargs.pop("zero_output_for_mask", False)
        Layer.__init__(self, **kwargs)
        self.cell = cell
        self.units = _output_size(cell)
        self._sizes = sizes
        self._n_states = len(sizes)
        self._init_running(
            return_sequences, return_state, go_backwards, stateful, unroll, zero_output_for_mask
        )
        self.dropout = self.recurrent_dropout = 0.0

    @property
    def state_size(self) -> list[int]:
        return list(self._sizes)

    def check_input(self, input_shape: Any) -> None:
        x, states = self._split_shapes(input_shape)
        if len(x) != 3:
            raise ValueError(
                f"Input 0 of layer {self.name} (RNN) is incompatible with the layer: expected "
                f"ndim=3 (batch, timesteps, features), found ndim={len(x)}. Full shape "
                f"received: {x}"
            )
        if states and len(states) != self._n_states:
            raise ValueError(
                f"layer {self.name} (RNN) expects {self._n_states} initial state tensor(s), "
                f"got {len(states)}"
            )

    def build(self, input_shape: Any) -> None:
        x, _ = self._split_shapes(input_shape)
        if self.stateful:
            self._state_batch = self._fixed_batch_size(x)
            self._states = None
        self.cell._maybe_build((x[0],) + tuple(x[2:]))
        for var in self.cell.weights:  # Keras' names: rnn/lstm_cell/kernel:0
            if not var.name.startswith(f"{self.name}/"):
                var.name = f"{self.name}/{var.name}"
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        x, _ = self._split_shapes(input_shape)
        out = (x[0], x[1], self.units) if self.return_sequences else (x[0], self.units)
        if self.return_state:
            return [out] + [(x[0], s) for s in self._sizes]
        return out

    def _zero_states(self, batch: int) -> list:
        return [ops.zeros((batch, s), self.dtype) for s in self._sizes]

    def _stateful_start(self, batch: int) -> list:
        states = super()._stateful_start(batch)
        return self._zero_states(batch) if self._states is None else states

    def _run(self, inputs: Any, training: bool, mask: Any = None) -> tuple[Any, list]:
        x, states = self._split_inputs(inputs)
        batch, steps = ops.shape(x)[:2]
        if mask is not None:
            mask = self._check_mask(mask, batch, steps)
        if not states:
            states = self._stateful_start(batch) if self.stateful else self._zero_states(batch)
        return self._time_loop(
            lambda x_t, s: _call_cell(self.cell, x_t, s, training),
            x,
            None if mask is None else ops.reshape(mask, (batch, steps, 1)),
            states,
            ops.zeros((batch, self.units), self.dtype),
        )

    @property
    def trainable_weights(self):
        return self.cell.trainable_weights if self.trainable else []

    @property
    def non_trainable_weights(self):
        return self.cell.non_trainable_weights if self.trainable else self.cell.weights

    @property
    def weights(self):
        return self.cell.weights

    def get_config(self) -> dict[str, Any]:
        from ..saving.config import serialize_layer

        cfg = Layer.get_config(self)
        cfg.update(
            {
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "unroll": self.unroll,
                "cell": serialize_layer(self.cell),
            }
        )
        if self.zero_output_for_mask:
            cfg["zero_output_for_mask"] = True
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> Layer:
        from ..saving.config import deserialize_layer

        config = dict(config)
        cell = config.pop("cell")
        if isinstance(cell, dict):
            cell = deserialize_layer(cell, custom_objects)
        return cls(cell, **config)


class ConvLSTM2D(_RNN):
    """An LSTM whose input and recurrent transformations are 2-D convolutions.

    Inputs (batch, time, rows, cols, channels) (``channels_first``: (batch, time, channels,
    rows, cols)).  Weights as Keras: kernel (kh, kw, channels, 4 filters), recurrent_kernel
    (kh, kw, filters, 4 filters), bias (4 filters), gates i, f, c, o.  The input
    convolution uses ``strides``, ``padding`` and ``dilation_rate``; the recurrent one is
    always stride 1, "same".  Keras 2's default ``recurrent_activation`` is
    ``hard_sigmoid``.  The input convolution of every timestep is one convolution over
    (batch * time) images; the Python loop over timesteps only does the recurrent one.
    """

    _gates = 4
    _n_states = 2

    def __init__(
        self,
        filters: Any = None,
        kernel_size: Any = None,
        strides: Any = (1, 1),
        padding: str = "valid",
        data_format: Any = None,
        dilation_rate: Any = (1, 1),
        activation: Any = "tanh",
        recurrent_activation: Any = "hard_sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        **kwargs: Any,
    ):
        from ..config import normalize_data_format
        from .convolutional import padding_of, tuple_of

        owner = "ConvLSTM2D"
        # Keras 1's spellings (keywords): nb_filter, nb_row/nb_col, border_mode, subsample,
        # dim_ordering, forget_bias_init; init, inner_init... are translated by _RNN
        for old, new in (
            ("nb_filter", "filters"),
            ("border_mode", "padding"),
            ("subsample", "strides"),
            ("dim_ordering", "data_format"),
        ):
            if old in kwargs:
                value = kwargs.pop(old)
                if new == "filters":
                    filters = value
                elif new == "padding":
                    padding = value
                elif new == "strides":
                    strides = value
                else:
                    data_format = value
        if "nb_row" in kwargs or "nb_col" in kwargs:
            kernel_size = (kwargs.pop("nb_row", None), kwargs.pop("nb_col", None))
        if "forget_bias_init" in kwargs:
            fbi = kwargs.pop("forget_bias_init")
            if fbi not in ("one", "ones", "zero", "zeros"):
                raise ValueError(
                    f"{owner}: forget_bias_init={fbi!r} is not supported; use 'one' or 'zero'"
                )
            unit_forget_bias = fbi in ("one", "ones")
        if filters is None or kernel_size is None:
            raise TypeError(f"{owner}: filters and kernel_size are required")
        self.unit_forget_bias = bool(unit_forget_bias)
        super().__init__(
            filters, activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, **kwargs,
        )  # fmt: skip
        for key in ("dropout", "recurrent_dropout"):
            if getattr(self, key):
                raise ValueError(
                    f"{owner}: {key}={getattr(self, key)!r} (Keras 1: dropout_W / dropout_U) "
                    "is not supported by polykeras for ConvLSTM2D; leave it at 0 (or add a "
                    "SpatialDropout3D before the layer)"
                )
        self.filters = self.units
        self.kernel_size = tuple_of(kernel_size, 2, "kernel_size", owner)
        self.strides = tuple_of(strides, 2, "strides", owner)
        self.padding = padding_of(padding, owner)
        self.data_format = normalize_data_format(data_format)
        self.dilation_rate = tuple_of(dilation_rate, 2, "dilation_rate", owner)
        if self.dilation_rate != (1, 1) and self.strides != (1, 1):
            raise ValueError(
                f"{owner}: dilation_rate {self.dilation_rate} and strides {self.strides} "
                "cannot both differ from 1 (as in Keras)"
            )

    def _image_shape(self, x: tuple) -> tuple:
        """(rows, cols, channels) of one timestep's image."""
        if self.data_format == "channels_first":
            return (x[3], x[4], x[2])
        return (x[2], x[3], x[4])

    def _out_hw(self, rows: Any, cols: Any) -> tuple:
        from .convolutional import conv_length

        return tuple(
            conv_length(n, k, s, self.padding, d)
            for n, k, s, d in zip((rows, cols), self.kernel_size, self.strides, self.dilation_rate)
        )

    def check_input(self, input_shape: Any) -> None:
        x, states = self._split_shapes(input_shape)
        if len(x) != 5:
            raise ValueError(
                f"Input 0 of layer {self.name} (ConvLSTM2D) is incompatible with the layer: "
                f"expected ndim=5 (batch, time, rows, cols, channels), found ndim={len(x)}. "
                f"Full shape received: {x}"
            )
        channels = self._image_shape(x)[2]
        if channels is None:
            raise ValueError(f"layer {self.name} (ConvLSTM2D): the channel axis must be known")
        if self.built and channels != self._input_dim:
            raise ValueError(
                f"Input 0 of layer {self.name} (ConvLSTM2D) is incompatible with the layer: "
                f"expected {self._input_dim} channels, but received input with shape {x}"
            )
        if states and len(states) != 2:
            raise ValueError(
                f"layer {self.name} (ConvLSTM2D) expects 2 initial state tensors, got {len(states)}"
            )

    def _input_features(self, x: tuple) -> Any:
        return self._image_shape(x)[2]  # the channels

    def _make_weights(self, input_dim: int) -> None:
        init = self.bias_initializer
        if self.unit_forget_bias:
            init = _UnitForgetBias(self.bias_initializer, self.filters)
        self._add_kernels(input_dim, (4 * self.filters,), init, tuple(self.kernel_size))

    def _state_shape(self, x: tuple) -> tuple:
        rows, cols, _ = self._image_shape(x)
        oh, ow = self._out_hw(rows, cols)
        if self.data_format == "channels_first":
            return (x[0], self.filters, oh, ow)
        return (x[0], oh, ow, self.filters)

    def compute_output_shape(self, input_shape: Any) -> Any:
        x, _ = self._split_shapes(input_shape)
        state = self._state_shape(x)
        out = (state[0], x[1]) + state[1:] if self.return_sequences else state
        if self.return_state:
            return [out, state, state]
        return out

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return super().compute_mask(inputs, mask)

    def _stateful_start(self, batch: int) -> list:
        if batch != self._state_batch:
            super()._stateful_start(batch)  # raises, naming both sizes
        if self._states is None:
            return []
        return list(self._states)

    def reset_states(self, states: Any = None) -> None:
        if states is not None and self.stateful:
            raise ValueError(
                f"layer {self.name} (ConvLSTM2D): reset_states(states) is not supported; "
                "call reset_states() to zero the states"
            )
        super().reset_states()

    def _run(self, inputs: Any, training: bool, mask: Any = None) -> tuple[Any, list]:
        x, states = self._split_inputs(inputs)
        first = self.data_format == "channels_first"
        if first:  # compute channels_last; Keras' kernel layout is the same for both
            x = ops.transpose(x, (0, 1, 3, 4, 2))
            states = [ops.transpose(s, (0, 2, 3, 1)) for s in states]
        batch, steps, rows, cols, channels = ops.shape(x)
        if mask is not None:
            mask = self._check_mask(mask, batch, steps)
        if not states and self.stateful:
            states = self._stateful_start(batch)
            if first:
                states = [ops.transpose(s, (0, 2, 3, 1)) for s in states]
        geometry = {
            "strides": self.strides,
            "padding": self.padding,
            "data_format": "channels_last",
            "dilation_rate": self.dilation_rate,
        }
        proj = ops.conv2d(
            ops.reshape(x, (batch * steps, rows, cols, channels)), self.kernel, **geometry
        )
        if self.bias is not None:
            proj = ops.add(proj, self.bias)
        _, oh, ow, width = ops.shape(proj)
        proj = ops.reshape(proj, (batch, steps, oh, ow, width))
        f = self.filters
        zeros = ops.zeros((batch, oh, ow, f), self.dtype)
        if not states:
            states = [zeros, zeros]
        recurrent = {"strides": (1, 1), "padding": "same", "data_format": "channels_last"}

        def block(z: Any, k: int) -> Any:
            return ops.getitem(z, (_ALL, _ALL, _ALL, slice(k * f, (k + 1) * f)))

        def step(x_t: Any, states: list) -> tuple[Any, list]:
            h_prev, c_prev = states
            z = ops.add(x_t, ops.conv2d(h_prev, self.recurrent_kernel, **recurrent))
            i = self.recurrent_activation(block(z, 0))
            fg = self.recurrent_activation(block(z, 1))
            g = self.activation(block(z, 2))
            o = self.recurrent_activation(block(z, 3))
            c = ops.add(ops.multiply(fg, c_prev), ops.multiply(i, g))
            h = ops.multiply(o, self.activation(c))
            return h, [h, c]

        keep = None if mask is None else ops.reshape(mask, (batch, steps, 1, 1, 1))
        output, states = self._time_loop(step, proj, keep, states, zeros)
        if first:
            states = [ops.transpose(s, (0, 3, 1, 2)) for s in states]
            output = ops.transpose(
                output, (0, 1, 4, 2, 3) if self.return_sequences else (0, 3, 1, 2)
            )
        return output, list(states)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        units = cfg.pop("units")
        head = {
            "filters": units,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
        }
        return {**{k: cfg[k] for k in ("name", "trainable", "dtype") if k in cfg}, **head, **cfg}

    def _extra_config(self) -> dict[str, Any]:
        return {"unit_forget_bias": self.unit_forget_bias}


def convert_keras1_weights(class_name: str, weights: list) -> list:
    """Keras 1 weight lists of a recurrent layer in Keras 2's layout (as Keras 2 loads them).

    Keras 1 saved an LSTM built with ``consume_less`` "cpu" or "mem" as 12 arrays
    (W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o, b_o: gates i, c, f, o) and a GRU
    as 9 (W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h); with "gpu" they were already
    (kernel, recurrent_kernel, bias).  A Keras 1 GRU is ``reset_after=False``.  Other lists
    are returned unchanged.
    """
    weights = list(weights)
    if class_name == "LSTM" and len(weights) == 12:
        order = (0, 2, 1, 3)  # i, c, f, o -> i, f, c, o
        return [
            np.concatenate([np.asarray(weights[3 * g + k]) for g in order], axis=-1)
            for k in range(3)
        ]
    if class_name == "GRU" and len(weights) == 9:
        return [
            np.concatenate([np.asarray(weights[3 * g + k]) for g in range(3)], axis=-1)
            for k in range(3)
        ]
    return weights


__all__ = [
    "ConvLSTM2D",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "RNN",
    "SimpleRNN",
    "SimpleRNNCell",
    "StackedRNNCells",
    "convert_keras1_weights",
]
