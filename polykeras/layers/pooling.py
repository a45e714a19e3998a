"""Pooling: Max/Average 1D and 2D, and the global poolings."""

from __future__ import annotations

from typing import Any

from .. import ops
from ..config import normalize_data_format
from ..engine.base_layer import Layer
from .convolutional import conv_length, padding_of, tuple_of
from .core import legacy, shape_error

_K1 = {
    "border_mode": "padding",
    "dim_ordering": "data_format",
    "pool_length": "pool_size",
    "stride": "strides",
}


class _Pool2D(Layer):
    mode = "max"

    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ):
        kwargs = legacy(kwargs, _K1, type(self).__name__)
        pool_size = kwargs.pop("pool_size", pool_size)
        strides = kwargs.pop("strides", strides)
        padding = kwargs.pop("padding", padding)
        data_format = kwargs.pop("data_format", data_format)
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} {self.name}"
        self.pool_size = tuple_of(pool_size, 2, "pool_size", owner)
        self.strides = tuple_of(
            strides if strides is not None else self.pool_size, 2, "strides", owner
        )
        self.padding = padding_of(padding, owner)
        self.data_format = normalize_data_format(data_format)

    def check_input(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) != 4:
            raise shape_error(self, f"a 4-D tensor ({self.data_format})", input_shape)
        out = self.compute_output_shape(input_shape)
        if any(d == 0 for d in out[1:]):
            raise ValueError(
                f"layer {self.name}: input {tuple(input_shape)} is too small for "
                f"pool_size {self.pool_size} (output would be {out})"
            )

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_first":
            n, c, h, w = input_shape
        else:
            n, h, w, c = input_shape
        oh = conv_length(h, self.pool_size[0], self.strides[0], self.padding)
        ow = conv_length(w, self.pool_size[1], self.strides[1], self.padding)
        return (n, c, oh, ow) if self.data_format == "channels_first" else (n, oh, ow, c)

    def call(self, inputs):
        return ops.pool2d(
            inputs,
            pool_size=self.pool_size,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            mode=self.mode,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "padding": self.padding,
            "strides": list(self.strides),
            "data_format": self.data_format,
        }


class MaxPooling2D(_Pool2D):
    mode = "max"


class AveragePooling2D(_Pool2D):
    mode = "avg"


class _Pool1D(Layer):
    mode = "max"

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        data_format: str = "channels_last",
        **kwargs: Any,
    ):
        kwargs = legacy(kwargs, _K1, type(self).__name__)
        pool_size = kwargs.pop("pool_size", pool_size)
        strides = kwargs.pop("strides", strides)
        padding = kwargs.pop("padding", padding)
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} {self.name}"
        self.pool_size = tuple_of(pool_size, 1, "pool_size", owner)
        self.strides = tuple_of(
            strides if strides is not None else self.pool_size, 1, "strides", owner
        )
        self.padding = padding_of(padding, owner)
        self.data_format = normalize_data_format(data_format)

    def check_input(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) != 3:
            raise shape_error(self, "a 3-D tensor (batch, steps, channels)", input_shape)

    def compute_output_shape(self, input_shape):
        n, a, b = input_shape
        if self.data_format == "channels_first":
            return (n, a, conv_length(b, self.pool_size[0], self.strides[0], self.padding))
        return (n, conv_length(a, self.pool_size[0], self.strides[0], self.padding), b)

    def call(self, inputs):
        x = inputs
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 1))
        y = ops.pool2d(
            ops.expand_dims(x, 1),
            pool_size=(1, self.pool_size[0]),
            strides=(1, self.strides[0]),
            padding=self.padding,
            data_format="channels_last",
            mode=self.mode,
        )
        s = ops.shape(y)
        y = ops.reshape(y, (s[0], s[2], s[3]))
        return ops.transpose(y, (0, 2, 1)) if self.data_format == "channels_first" else y

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "padding": self.padding,
            "strides": list(self.strides),
            "data_format": self.data_format,
        }


class MaxPooling1D(_Pool1D):
    mode = "max"


class AveragePooling1D(_Pool1D):
    mode = "avg"


class _GlobalPool(Layer):
    rank = 2
    mode = "avg"

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        kwargs = legacy(kwargs, {"dim_ordering": "data_format"}, type(self).__name__)
        data_format = kwargs.pop("data_format", data_format)
        super().__init__(**kwargs)
        self.data_format = (
            normalize_data_format(data_format) if self.rank == 2 or data_format else "channels_last"
        )

    def _axes(self):
        if self.data_format == "channels_first":
            return tuple(range(2, 2 + self.rank))
        return tuple(range(1, 1 + self.rank))

    def check_input(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) != self.rank + 2:
            raise shape_error(self, f"a {self.rank + 2}-D tensor", input_shape)

    def compute_output_shape(self, input_shape):
        channel = input_shape[1] if self.data_format == "channels_first" else input_shape[-1]
        return (input_shape[0], channel)

    def call(self, inputs):
        if self.mode == "avg":
            return ops.mean(inputs, axis=self._axes())
        return ops.max(inputs, axis=self._axes())

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class GlobalAveragePooling2D(_GlobalPool):
    rank, mode = 2, "avg"


class GlobalMaxPooling2D(_GlobalPool):
    rank, mode = 2, "max"


class GlobalAveragePooling1D(_GlobalPool):
    rank, mode = 1, "avg"


class GlobalMaxPooling1D(_GlobalPool):
    rank, mode = 1, "max"


MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D = (
    MaxPooling2D,
    AveragePooling2D,
    MaxPooling1D,
    AveragePooling1D,
)
