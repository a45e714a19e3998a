"""Pooling: Max/Average 1D and 2D, and the global poolings."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..config import normalize_data_format
from ..engine.base_layer import Layer, check_mask
from .convolutional import conv_length, padding_of, tuple_of
from .core import legacy, shape_error

_K1 = {
    "border_mode": "padding",
    "dim_ordering": "data_format",
    "pool_length": "pool_size",
    "stride": "strides",
}


class _PoolND(Layer):
    """What 1-D, 2-D and 3-D pooling share: the arguments (Keras 1's spellings too), the
    config and the input check; ``_rank`` is the number of pooled axes."""

    mode = "max"
    _rank = 2

    def _init_pool(self, pool_size: Any, strides: Any, padding: str, data_format: Any, kwargs):
        if self._rank == 1 and "dim_ordering" in kwargs:  # Keras 1's 1-D poolings had none
            raise TypeError(
                f"{type(self).__name__}: keyword argument(s) not understood: dim_ordering "
                "(a 1-D pooling takes Keras 2's data_format='channels_last' or "
                "'channels_first')"
            )
        kwargs = legacy(kwargs, _K1, type(self).__name__)
        pool_size = kwargs.pop("pool_size", pool_size)
        strides = kwargs.pop("strides", strides)
        padding = kwargs.pop("padding", padding)
        if self._rank > 1:  # Keras 1's dim_ordering, renamed by legacy()
            data_format = kwargs.pop("data_format", data_format)
        Layer.__init__(self, **kwargs)
        owner = f"{type(self).__name__} {self.name}"
        n = self._rank
        self.pool_size = tuple_of(pool_size, n, "pool_size", owner)
        self.strides = tuple_of(
            strides if strides is not None else self.pool_size, n, "strides", owner
        )
        self.padding = padding_of(padding, owner)
        self.data_format = normalize_data_format(data_format)

    def check_input(self, input_shape):
        ndim = self._rank + 2
        if isinstance(input_shape, list) or len(input_shape) != ndim:
            raise shape_error(self, f"a {ndim}-D tensor ({self.data_format})", input_shape)
        out = self.compute_output_shape(input_shape)
        if any(d == 0 for d in out[1:]):
            raise ValueError(
                f"layer {self.name}: input {tuple(input_shape)} is too small for "
                f"pool_size {self.pool_size} (output would be {out})"
            )

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "padding": self.padding,
            "strides": list(self.strides),
            "data_format": self.data_format,
        }


class _Pool2D(_PoolND):
    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ):
        self._init_pool(pool_size, strides, padding, data_format, kwargs)

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


class MaxPooling2D(_Pool2D):
    mode = "max"


class AveragePooling2D(_Pool2D):
    mode = "avg"


class _Pool1D(_PoolND):
    _rank = 1

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: str = "valid",
        data_format: str = "channels_last",
        **kwargs: Any,
    ):
        self._init_pool(pool_size, strides, padding, data_format, kwargs)

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


class MaxPooling1D(_Pool1D):
    mode = "max"


class AveragePooling1D(_Pool1D):
    mode = "avg"


class _Pool3D(_PoolND):
    """Max or average pooling over (depth, height, width): a 2-D pooling over height and
    width, then one over depth (both poolings separate into per-axis steps; "same" average
    pooling's window counts are per-axis products, so they separate too)."""

    _rank = 3

    def __init__(
        self,
        pool_size: Any = (2, 2, 2),
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ):
        self._init_pool(pool_size, strides, padding, data_format, kwargs)

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_first":
            n, c, *spatial = input_shape
        else:
            n, *spatial, c = input_shape
        out = tuple(
            conv_length(s, p, st, self.padding)
            for s, p, st in zip(spatial, self.pool_size, self.strides)
        )
        return (n, c) + out if self.data_format == "channels_first" else (n,) + out + (c,)

    def call(self, inputs):
        x = inputs
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 3, 4, 1))
        n, d, h, w, c = ops.shape(x)
        y = ops.pool2d(
            ops.reshape(x, (n * d, h, w, c)),
            pool_size=self.pool_size[1:],
            strides=self.strides[1:],
            padding=self.padding,
            data_format="channels_last",
            mode=self.mode,
        )
        _, oh, ow, _ = ops.shape(y)
        y = ops.pool2d(
            ops.reshape(y, (n, d, oh * ow, c)),
            pool_size=(self.pool_size[0], 1),
            strides=(self.strides[0], 1),
            padding=self.padding,
            data_format="channels_last",
            mode=self.mode,
        )
        y = ops.reshape(y, (n, ops.shape(y)[1], oh, ow, c))
        return ops.transpose(y, (0, 4, 1, 2, 3)) if self.data_format == "channels_first" else y


class MaxPooling3D(_Pool3D):
    mode = "max"


class AveragePooling3D(_Pool3D):
    mode = "avg"


class _GlobalPool(Layer):
    rank = 2
    mode = "avg"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        kwargs = legacy(kwargs, {"dim_ordering": "data_format"}, type(self).__name__)
        data_format = kwargs.pop("data_format", data_format)
        keepdims = kwargs.pop("keepdims", keepdims)
        super().__init__(**kwargs)
        self.data_format = (
            normalize_data_format(data_format) if self.rank != 1 or data_format else "channels_last"
        )
        if not isinstance(keepdims, (bool, int)) or keepdims not in (0, 1):
            raise ValueError(
                f"{type(self).__name__} {self.name}: keepdims must be True or False, "
                f"got {keepdims!r}"
            )
        self.keepdims = bool(keepdims)

    def _axes(self):
        if self.data_format == "channels_first":
            return tuple(range(2, 2 + self.rank))
        return tuple(range(1, 1 + self.rank))

    def check_input(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) != self.rank + 2:
            raise shape_error(self, f"a {self.rank + 2}-D tensor", input_shape)

    def compute_output_shape(self, input_shape):
        if self.keepdims:
            return tuple(1 if i in self._axes() else d for i, d in enumerate(input_shape))
        channel = input_shape[1] if self.data_format == "channels_first" else input_shape[-1]
        return (input_shape[0], channel)

    def call(self, inputs):
        if self.mode == "avg":
            return ops.mean(inputs, axis=self._axes(), keepdims=self.keepdims)
        return ops.max(inputs, axis=self._axes(), keepdims=self.keepdims)

    def get_config(self):
        config = {**super().get_config(), "data_format": self.data_format}
        if self.keepdims:  # Keras 2 before tf.keras 2.6 had no keepdims: written only when set
            config["keepdims"] = True
        return config


class _GlobalPool1D(_GlobalPool):
    """The 1-D global poolings take a mask (batch, steps): masked steps do not count."""

    rank = 1
    supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None  # the steps are pooled away

    def _eager_mask(self, mask, inputs, B, arrays):
        # channels_first puts the steps last: the mask (batch, steps) fits the input with
        # its axes in channels_last order
        if self.data_format == "channels_first" and mask is not None and len(arrays) == 1:
            n, c, t = tuple(B.shape(arrays[0]))
            return check_mask(self, mask, (n, t, c))
        return super()._eager_mask(mask, inputs, B, arrays)

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        axis = self._axes()[0]
        keep = ops.expand_dims(mask, 1 if self.data_format == "channels_first" else 2)
        if self.mode == "avg":
            total = ops.sum(ops.where(keep, inputs, 0.0), axis=axis, keepdims=self.keepdims)
            count = ops.sum(
                ops.cast(keep, ops.dtype_name(inputs)), axis=axis, keepdims=self.keepdims
            )
            return ops.divide(total, count)  # no step kept: 0/0 = nan, as Keras 3
        lowest = float(np.finfo(ops.dtype_name(inputs)).min)
        best = ops.max(ops.where(keep, inputs, lowest), axis=axis, keepdims=self.keepdims)
        any_kept = ops.greater(
            ops.sum(ops.cast(keep, "float32"), axis=axis, keepdims=self.keepdims), 0.0
        )
        return ops.where(any_kept, best, 0.0)  # no step kept: 0


class GlobalAveragePooling2D(_GlobalPool):
    rank, mode = 2, "avg"


class GlobalMaxPooling2D(_GlobalPool):
    rank, mode = 2, "max"


class GlobalAveragePooling1D(_GlobalPool1D):
    mode = "avg"


class GlobalMaxPooling1D(_GlobalPool1D):
    """Masked steps are left out of the maximum (Keras 3 ignores the mask here)."""

    mode = "max"


class GlobalAveragePooling3D(_GlobalPool):
    rank, mode = 3, "avg"


class GlobalMaxPooling3D(_GlobalPool):
    rank, mode = 3, "max"


MaxPool3D, AvgPool3D = MaxPooling3D, AveragePooling3D
MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D = (
    MaxPooling2D,
    AveragePooling2D,
    MaxPooling1D,
    AveragePooling1D,
)
