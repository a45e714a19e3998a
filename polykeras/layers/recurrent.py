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
# (consume_less, implementation, use_cudnn: how the same math is computed; unroll, too;
# zero_output_for_mask: masks are not supported, so there is nothing to zero)
_IGNORED = ("consume_less", "implementation", "zero_output_for_mask", "use_cudnn")


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
        if kwargs.pop("time_major", False):
            raise ValueError(
                f"{cls}: time_major=True is not supported; inputs are (batch, timesteps, features)"
            )
        if stateful:
            raise ValueError(
                f"{cls}: stateful=True is not supported by polykeras (the "
                "layer always starts from a zero state, or from initial_state); "
                "pass stateful=False"
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
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)

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
        self._input_dim = int(x[-1])
        self._make_weights(self._input_dim)
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        x, _ = self._split_shapes(input_shape)
        batch = x[0]
        out = (batch, x[1], self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [out] + [(batch, self.units)] * self._n_states
        return out

    # -- weights ------------------------------------------------------------------------------
    def _add_kernels(self, input_dim: int, bias_shape: tuple, bias_initializer: Any) -> None:
        width = self._gates * self.units
        self.kernel = self.add_weight(
            "kernel",
            (input_dim, width),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            "recurrent_kernel",
            (self.units, width),
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

    def call(self, inputs: Any, training: Any = None) -> Any:
        return self._run(inputs, bool(training))

    def _run(self, inputs: Any, training: bool) -> Any:
        if isinstance(inputs, (list, tuple)):
            x, states = inputs[0], list(inputs[1:])
        else:
            x, states = inputs, []
        if ops.dtype_name(x) != self.dtype:  # e.g. float64 NumPy data on the numpy backend
            x = ops.cast(x, self.dtype)
        states = [s if ops.dtype_name(s) == self.dtype else ops.cast(s, self.dtype) for s in states]
        batch, steps, features = ops.shape(x)
        dtype = self.dtype
        units = self.units
        if not states:
            zero = ops.zeros((batch, units), dtype)
            states = [zero] * self._n_states

        if training and 0.0 < self.dropout < 1.0:
            mask = self._dropout_mask((batch, features), dtype, self.dropout)
            x = ops.multiply(x, ops.reshape(mask, (batch, 1, features)))
        rec_mask = None
        if training and 0.0 < self.recurrent_dropout < 1.0:
            rec_mask = self._dropout_mask((batch, units), dtype, self.recurrent_dropout)
        if rec_mask is None:
            fused = self._fused_sequence(x, states)
            if fused is not None:
                output, states = fused
                return [output] + list(states) if self.return_state else output

        # The input projection of every timestep at once.
        width = self._gates * units
        proj = ops.matmul(ops.reshape(x, (batch * steps, features)), self.kernel)
        bias = self._input_projection_bias()
        if bias is not None:
            proj = ops.add(proj, bias)
        proj = ops.reshape(proj, (batch, steps, width))

        self._prepare_step()
        outputs = []
        h = states[0]
        for x_t in _time_slices(proj, steps, self.go_backwards):
            h, states = self._step(x_t, states, rec_mask)
            if self.return_sequences:
                outputs.append(h)
        self._finish_step()
        output = ops.stack(outputs, axis=1) if self.return_sequences else h
        if self.return_state:
            return [output] + list(states)
        return output

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
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            **kwargs,
        )

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
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            **kwargs,
        )

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


__all__ = ["GRU", "LSTM", "SimpleRNN", "convert_keras1_weights"]
