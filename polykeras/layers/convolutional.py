"""Convolutions: Conv1D and Conv2D (kernel (kh, kw, in, out) in both data formats).

Keras 1's spellings are accepted: ``Convolution2D(64, 3, 3, border_mode='same',
subsample=(1, 1), dim_ordering='th', init='glorot_uniform')``.
"""

from __future__ import annotations

from typing import Any

from .. import activations, initializers, ops
from ..config import normalize_data_format
from ..contract import out_and_pads
from ..engine.base_layer import Layer
from .core import (
    _constraint,
    _regularizer,
    _serialize_constraint,
    _serialize_reg,
    legacy,
    positive_int,
    shape_error,
)

_K1 = {
    "nb_filter": "filters",
    "border_mode": "padding",
    "subsample": "strides",
    "dim_ordering": "data_format",
    "init": "kernel_initializer",
    "bias": "use_bias",
    "W_regularizer": "kernel_regularizer",
    "b_regularizer": "bias_regularizer",
    "W_constraint": "kernel_constraint",
    "b_constraint": "bias_constraint",
    "subsample_length": "strides",
    "filter_length": "kernel_size",
    "atrous_rate": "dilation_rate",
}


def tuple_of(value: Any, n: int, what: str, owner: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)):
        value = (positive_int(value, what, owner),) * n
    out = tuple(positive_int(v, what, owner) for v in value)
    if len(out) != n:
        raise ValueError(f"{owner}: {what} must be an int or a tuple of {n} ints, got {value!r}")
    return out


def padding_of(value: Any, owner: str, allowed=("valid", "same")) -> str:
    value = str(value).lower()
    if value not in allowed:
        raise ValueError(f"{owner}: padding {value!r} is not one of {', '.join(allowed)}")
    return value


def conv_length(size, k, stride, padding, dilation=1):
    """Output length along one axis (None stays None); "causal" pads like "same"."""
    if size is None:
        return None
    return out_and_pads(size, k, stride, dilation, "same" if padding == "causal" else padding)[0]


class _Conv(Layer):
    rank = 2

    def __init__(
        self,
        filters: int | None = None,
        kernel_size: Any = None,
        *args: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        owner = type(self).__name__
        # Keras 1: Convolution2D(nb_filter, nb_row, nb_col, ...)
        if self.rank == 2 and args and isinstance(kernel_size, int):
            kernel_size, args = (kernel_size, args[0]), args[1:]
        if args:
            raise TypeError(f"{owner}: too many positional arguments {args!r}")
        if "nb_row" in kwargs or "nb_col" in kwargs:
            kernel_size = (kwargs.pop("nb_row"), kwargs.pop("nb_col"))
        kwargs = legacy(kwargs, _K1, owner)
        filters = kwargs.pop("filters", filters)
        kernel_size = kwargs.pop("kernel_size", kernel_size)
        strides = kwargs.pop("strides", strides)
        padding = kwargs.pop("padding", padding)
        data_format = kwargs.pop("data_format", data_format)
        dilation_rate = kwargs.pop("dilation_rate", dilation_rate)
        kernel_initializer = kwargs.pop("kernel_initializer", kernel_initializer)
        use_bias = kwargs.pop("use_bias", use_bias)
        kernel_regularizer = kwargs.pop("kernel_regularizer", kernel_regularizer)
        bias_regularizer = kwargs.pop("bias_regularizer", bias_regularizer)
        kernel_constraint = kwargs.pop("kernel_constraint", None)
        bias_constraint = kwargs.pop("bias_constraint", None)
        super().__init__(**kwargs)
        owner = f"{owner} {self.name}"
        self.filters = positive_int(filters, "filters", owner)
        if kernel_size is None:
            raise ValueError(f"{owner}: kernel_size is required")
        self.kernel_size = tuple_of(kernel_size, self.rank, "kernel_size", owner)
        self.strides = tuple_of(strides, self.rank, "strides", owner)
        self.padding = padding_of(
            padding, owner, ("valid", "same", "causal") if self.rank == 1 else ("valid", "same")
        )
        self.data_format = (
            normalize_data_format(data_format)
            if self.rank == 2
            else (normalize_data_format(data_format) if data_format else "channels_last")
        )
        self.dilation_rate = tuple_of(dilation_rate, self.rank, "dilation_rate", owner)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizer(kernel_regularizer)
        self.bias_regularizer = _regularizer(bias_regularizer)
        self.kernel_constraint = _constraint(kernel_constraint)
        self.bias_constraint = _constraint(bias_constraint)

    def _channel_axis(self):
        return 1 if self.data_format == "channels_first" else -1

    def check_input(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) != self.rank + 2:
            raise shape_error(self, f"a {self.rank + 2}-D tensor ({self.data_format})", input_shape)
        channels = input_shape[self._channel_axis()]
        if channels is None:
            raise ValueError(
                f"The channel dimension of the inputs to {self.name} should be "
                f"defined. Found `None` (input shape {tuple(input_shape)})."
            )
        if self.built and channels != self.kernel.shape[-2]:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: "
                f"expected {self.kernel.shape[-2]} channels on axis "
                f"{self._channel_axis()} ({self.data_format}), but received "
                f"input with shape {tuple(input_shape)}"
            )
        spatial = self._spatial(input_shape)
        out = self._out_spatial(spatial)
        if any(o == 0 for o in out):
            raise ValueError(
                f"layer {self.name}: input {tuple(input_shape)} is too small for "
                f"kernel {self.kernel_size} with padding '{self.padding}' "
                f"(output would be {tuple(out)})"
            )

    def _spatial(self, shape):
        return shape[2:] if self.data_format == "channels_first" else shape[1:-1]

    def _out_spatial(self, spatial):
        return [
            conv_length(s, k, st, self.padding, d)
            for s, k, st, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate)
        ]

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self.kernel = self.add_weight(
            "kernel",
            self.kernel_size + (channels, self.filters),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = (
            self.add_weight(
                "bias",
                (self.filters,),
                self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
            if self.use_bias
            else None
        )
        self.built = True

    def compute_output_shape(self, input_shape):
        out = tuple(self._out_spatial(self._spatial(input_shape)))
        if self.data_format == "channels_first":
            return (input_shape[0], self.filters) + out
        return (input_shape[0],) + out + (self.filters,)

    def _add_bias(self, y):
        if self.bias is None:
            return y
        if self.data_format == "channels_first":
            shape = (1, self.filters) + (1,) * self.rank
            return ops.add(y, ops.reshape(self.bias, shape))
        return ops.add(y, self.bias)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _serialize_reg(self.kernel_regularizer)
            if self.kernel_regularizer
            else None,
            "bias_regularizer": _serialize_reg(self.bias_regularizer)
            if self.bias_regularizer
            else None,
            "activity_regularizer": _serialize_reg(self.activity_regularizer),
            "kernel_constraint": _serialize_constraint(self.kernel_constraint),
            "bias_constraint": _serialize_constraint(self.bias_constraint),
        }


class Conv2D(_Conv):
    """2-D convolution; ``Conv2D(64, (3, 3), padding='same', activation='relu')``."""

    rank = 2

    def call(self, inputs):
        geometry = {
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
        }
        if self.bias is not None:
            found = ops.fused_kernel("conv2d_bias", inputs, self.kernel, self.bias)
            if found is not None:  # the backend adds the bias inside its convolution
                kernel, raws = found
                return self.activation(kernel(*raws, **geometry))
        y = ops.conv2d(inputs, self.kernel, **geometry)
        return self.activation(self._add_bias(y))


class Conv1D(_Conv):
    """1-D convolution over (batch, steps, channels); padding 'valid', 'same' or 'causal'."""

    rank = 1

    def build(self, input_shape):
        super().build(input_shape)

    def call(self, inputs):
        x = inputs
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 1))
        padding = self.padding
        if padding == "causal":
            left = (self.kernel_size[0] - 1) * self.dilation_rate[0]
            n, steps, c = ops.shape(x)
            if left:
                pad = ops.zeros((n, left, c), ops.dtype_name(x))
                x = ops.concatenate([pad, x], axis=1)
            padding = "valid"
        x4 = ops.expand_dims(x, 1)  # (N, 1, steps, C), channels_last
        k4 = ops.expand_dims(self.kernel, 0)  # (1, k, C, F)
        y = ops.conv2d(
            x4,
            k4,
            strides=(1, self.strides[0]),
            padding=padding,
            data_format="channels_last",
            dilation_rate=(1, self.dilation_rate[0]),
        )
        shape = ops.shape(y)
        y = ops.reshape(y, (shape[0], shape[2], shape[3]))
        y = ops.add(y, self.bias) if self.bias is not None else y
        if self.data_format == "channels_first":
            y = ops.transpose(y, (0, 2, 1))
        return self.activation(y)


Convolution2D = Conv2D
Convolution1D = Conv1D
