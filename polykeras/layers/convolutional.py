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
from ..utils import as_int
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
    takes_groups = True

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
        # Keras 1: Convolution3D(nb_filter, kernel_dim1, kernel_dim2, kernel_dim3, ...)
        if self.rank == 3 and len(args) >= 2 and isinstance(kernel_size, int):
            kernel_size, args = (kernel_size, args[0], args[1]), args[2:]
        if args:
            raise TypeError(f"{owner}: too many positional arguments {args!r}")
        if "nb_row" in kwargs or "nb_col" in kwargs:
            kernel_size = (kwargs.pop("nb_row"), kwargs.pop("nb_col"))
        if self.rank == 3 and "kernel_dim1" in kwargs:
            kernel_size = tuple(kwargs.pop(f"kernel_dim{i}", None) for i in (1, 2, 3))
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
        groups = kwargs.pop("groups", 1)
        if not self.takes_groups and groups not in (1, None):
            # tf.keras 2 wrote groups=1 into these layers' configs; any other value is refused
            raise ValueError(
                f"{owner}: groups={groups!r} is not an argument of {owner} (only groups=1, "
                "which tf.keras 2 writes into its configs, is accepted)"
            )
        groups = groups if self.takes_groups else 1
        super().__init__(**kwargs)
        owner = f"{owner} {self.name}"
        self.filters = positive_int(filters, "filters", owner)
        self.groups = positive_int(groups, "groups", owner)
        if self.filters % self.groups:
            raise ValueError(
                f"{owner}: the number of filters must be evenly divisible by the number of "
                f"groups; received groups={self.groups}, filters={self.filters}"
            )
        if kernel_size is None:
            raise ValueError(f"{owner}: kernel_size is required")
        self.kernel_size = tuple_of(kernel_size, self.rank, "kernel_size", owner)
        self.strides = tuple_of(strides, self.rank, "strides", owner)
        self.padding = padding_of(
            padding, owner, ("valid", "same", "causal") if self.rank == 1 else ("valid", "same")
        )
        self.data_format = (
            normalize_data_format(data_format)
            if self.rank != 1
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
        self._checked_channels(input_shape)
        self._check_output_size(input_shape)

    def _built_channels(self):
        """The input channels the built kernel takes."""
        return self.kernel.shape[-2] * self.groups

    def _checked_channels(self, input_shape):
        """The input's channels, after checking its rank, that the channels are known,
        divide into the groups and match the built kernel."""
        if isinstance(input_shape, list) or len(input_shape) != self.rank + 2:
            raise shape_error(self, f"a {self.rank + 2}-D tensor ({self.data_format})", input_shape)
        channels = input_shape[self._channel_axis()]
        if channels is None:
            raise ValueError(
                f"The channel dimension of the inputs to {self.name} should be "
                f"defined. Found `None` (input shape {tuple(input_shape)})."
            )
        if channels % self.groups:
            raise ValueError(
                f"layer {self.name}: the number of input channels must be evenly divisible "
                f"by the number of groups; received groups={self.groups}, but the input has "
                f"{channels} channels (full input shape {tuple(input_shape)})"
            )
        if self.built and channels != self._built_channels():
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: "
                f"expected {self._built_channels()} channels on axis "
                f"{self._channel_axis()} ({self.data_format}), but received "
                f"input with shape {tuple(input_shape)}"
            )
        return channels

    def _check_output_size(self, input_shape):
        out = self._out_spatial(self._spatial(input_shape))
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

    def _build_bias(self) -> None:
        """The bias (one value per filter) when ``use_bias``, else None; every
        convolution builds it the same way."""
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

    def _add_kernel(self, name, shape):
        """A kernel weight with the layer's kernel initializer, regularizer and constraint."""
        return self.add_weight(
            name,
            shape,
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self.kernel = self._add_kernel(
            "kernel", self.kernel_size + (channels // self.groups, self.filters)
        )
        self._build_bias()
        self.built = True

    def compute_output_shape(self, input_shape):
        out = tuple(self._out_spatial(self._spatial(input_shape)))
        if self.data_format == "channels_first":
            return (input_shape[0], self.filters) + out
        return (input_shape[0],) + out + (self.filters,)

    def _finish_1d(self, y):
        """A 1-D layer's output computed as a 2-D one, (batch, 1, steps, filters), as
        (batch, steps, filters) in the layer's data format, with the bias and activation."""
        shape = ops.shape(y)
        y = ops.reshape(y, (shape[0], shape[2], shape[3]))
        y = ops.add(y, self.bias) if self.bias is not None else y
        if self.data_format == "channels_first":
            y = ops.transpose(y, (0, 2, 1))
        return self.activation(y)

    def _add_bias(self, y):
        if self.bias is None:
            return y
        if self.data_format == "channels_first":
            shape = (1, self.filters) + (1,) * self.rank
            return ops.add(y, ops.reshape(self.bias, shape))
        return ops.add(y, self.bias)

    def get_config(self):
        groups = {"groups": self.groups} if self.groups != 1 else {}
        return {
            **super().get_config(),
            **groups,
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
        if self.groups != 1:
            geometry["groups"] = self.groups
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
            **({"groups": self.groups} if self.groups != 1 else {}),
        )
        return self._finish_1d(y)


Convolution2D = Conv2D
Convolution1D = Conv1D


# -- transposed convolutions -------------------------------------------------------------------


def transpose_length(size, k, stride, padding, output_padding=None, dilation=1):
    """Output length of a transposed convolution along one axis (Keras' rule; None stays
    None): "valid" gives (size - 1) * stride + max(kernel, stride), "same" size * stride,
    and an explicit ``output_padding`` is added to (size - 1) * stride + kernel (valid) or
    (size - 1) * stride + kernel % 2 (same)."""
    if size is None:
        return None
    ek = (k - 1) * dilation + 1
    if padding == "valid":
        extra = max(ek, stride) - ek if output_padding is None else output_padding
        return (size - 1) * stride + ek + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + ek % 2 + output_padding


def transpose_crops(size, k, stride, padding, output_padding=None, dilation=1):
    """(cut before, cut after) to take from the full transposed output, of length
    (size - 1) * stride + kernel, to reach Keras' output; a negative cut is zero padding.
    The padding Keras places before is as much of the total as fits in kernel - 1."""
    ek = (k - 1) * dilation + 1
    if padding == "valid":
        extra = max(ek, stride) - ek if output_padding is None else output_padding
        before, after = ek - 1, ek - 1 + extra
    else:
        total = stride + ek - 2 if output_padding is None else ek + ek % 2 - 2 + output_padding
        before = min(total // 2 + total % 2, ek - 1)
        after = total - before
    return ek - 1 - before, ek - 1 - after


class _ConvTranspose(_Conv):
    """Shared by the transposed convolutions (1-D, 2-D, 3-D): the kernel is (*kernel_size,
    filters, channels), as Keras keeps it, and the forward pass is the input gradient of
    the convolution with that kernel (``ops.conv2d_input_grad``), cut or padded to Keras'
    size."""

    takes_groups = False  # Keras' transposed convolutions have no groups

    def __init__(self, filters: int | None = None, kernel_size: Any = None, *args: Any, **kwargs):
        owner = type(self).__name__
        output_padding = kwargs.pop("output_padding", None)
        output_shape = kwargs.pop("output_shape", None)  # Keras 1's Deconvolution2D
        if output_shape is not None and not getattr(self, "_keras1", False):
            raise TypeError(
                f"{owner}: output_shape is an argument of Keras 1's Deconvolution2D; "
                "Keras 2 computes the output size from padding and output_padding"
            )
        super().__init__(filters, kernel_size, *args, **kwargs)
        owner = f"{owner} {self.name}"
        self.output_shape_k1 = tuple(output_shape) if output_shape is not None else None
        if self.padding not in ("valid", "same"):
            raise ValueError(f"{owner}: padding {self.padding!r} is not one of valid, same")
        if output_padding is None:
            self.output_padding = None
        else:
            if not isinstance(output_padding, (tuple, list)):
                output_padding = (output_padding,) * self.rank
            self.output_padding = tuple(
                as_int(v, "output_padding", owner, minimum=0) for v in output_padding
            )
            if len(self.output_padding) != self.rank:
                raise ValueError(
                    f"{owner}: output_padding must be an int or a tuple of {self.rank} ints, "
                    f"got {output_padding!r}"
                )
            for i, (op, s) in enumerate(zip(self.output_padding, self.strides)):
                if op >= s:
                    raise ValueError(
                        f"{owner}: output_padding must be strictly less than strides in "
                        f"every dimension; at dimension {i} output_padding is {op} but "
                        f"strides is {s} (output_padding={self.output_padding}, "
                        f"strides={self.strides})"
                    )
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{owner}: strides > 1 are not supported together with dilation_rate > 1 "
                f"(strides={self.strides}, dilation_rate={self.dilation_rate}), as in Keras"
            )

    def _out_spatial(self, spatial):
        ops_ = self.output_padding or (None,) * self.rank
        return [
            transpose_length(s, k, st, self.padding, op, d)
            for s, k, st, op, d in zip(
                spatial, self.kernel_size, self.strides, ops_, self.dilation_rate
            )
        ]

    def _built_channels(self):
        return self.kernel.shape[-1]

    def check_input(self, input_shape):
        self._checked_channels(input_shape)
        if self.output_shape_k1 is not None:
            got = self.compute_output_shape(input_shape)
            want = self.output_shape_k1
            if len(want) != len(got) or any(
                w is not None and g is not None and w != g for w, g in zip(want[1:], got[1:])
            ):
                raise ValueError(
                    f"layer {self.name}: output_shape={want} does not match the output "
                    f"{tuple(got)} that input {tuple(input_shape)} gives with padding "
                    f"'{self.padding}' and strides {self.strides}"
                )

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self.kernel = self._add_kernel("kernel", self.kernel_size + (self.filters, channels))
        self._build_bias()
        self.built = True

    def _transpose2d(self, x, kernel, strides, output_padding, dilation, data_format):
        """The transposed 2-D convolution of ``x`` (4-D, ``data_format``) with ``kernel``
        (kh, kw, filters, channels), at Keras' output size."""
        shape = ops.shape(x)
        n = shape[0]
        spatial = shape[2:] if data_format == "channels_first" else shape[1:3]
        ksize = ops.shape(kernel)[:2]
        filters = ops.shape(kernel)[2]
        full = [
            (s - 1) * st + (k - 1) * d + 1 for s, k, st, d in zip(spatial, ksize, strides, dilation)
        ]
        full_shape = (n, filters, *full) if data_format == "channels_first" else (n, *full, filters)
        y = ops.conv2d_input_grad(
            x,
            kernel,
            input_shape=full_shape,
            strides=tuple(strides),
            padding="valid",
            data_format=data_format,
            dilation_rate=tuple(dilation),
        )
        cuts = [
            transpose_crops(s, k, st, self.padding, op, d)
            for s, k, st, op, d in zip(spatial, ksize, strides, output_padding, dilation)
        ]
        first = 2 if data_format == "channels_first" else 1
        grow = [(max(-a, 0), max(-b, 0)) for a, b in cuts]
        if any(a or b for a, b in grow):  # Keras' output reaches past the full one: zeros
            padded = list(full_shape)
            key: list[Any] = [slice(None)] * 4
            for i, (a, b) in enumerate(grow):
                padded[first + i] += a + b
                key[first + i] = slice(a, a + full[i])
            y = ops.scatter_slice(tuple(padded), tuple(key), y)
            full = [f + a + b for f, (a, b) in zip(full, grow)]
        cut = [(max(a, 0), max(b, 0)) for a, b in cuts]
        if any(a or b for a, b in cut):
            key = [slice(None)] * 4
            for i, (a, b) in enumerate(cut):
                key[first + i] = slice(a, full[i] - b)
            y = ops.getitem(y, tuple(key))
        return y

    def get_config(self):
        config = super().get_config()
        config["output_padding"] = (
            list(self.output_padding) if self.output_padding is not None else None
        )
        if self.output_shape_k1 is not None:
            config["output_shape"] = list(self.output_shape_k1)
        return config


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution (kernel (kh, kw, filters, channels));
    ``Conv2DTranspose(32, 3, strides=2, padding='same')`` doubles height and width."""

    rank = 2

    def call(self, inputs):
        y = self._transpose2d(
            inputs,
            self.kernel,
            self.strides,
            self.output_padding or (None, None),
            self.dilation_rate,
            self.data_format,
        )
        return self.activation(self._add_bias(y))


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution over (batch, steps, channels) (kernel (k, filters,
    channels))."""

    rank = 1

    def call(self, inputs):
        x = inputs
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 1))
        y = self._transpose2d(
            ops.expand_dims(x, 1),
            ops.expand_dims(self.kernel, 0),
            (1,) + self.strides,
            (None,) + (self.output_padding or (None,)),
            (1,) + self.dilation_rate,
            "channels_last",
        )
        return self._finish_1d(y)


class Deconvolution2D(Conv2DTranspose):
    """Keras 1's spelling: ``Deconvolution2D(nb_filter, nb_row, nb_col, output_shape, ...)``.
    ``output_shape`` is checked against the output Keras 2 computes (Keras 2 dropped it)."""

    _keras1 = True

    def __init__(self, filters=None, kernel_size=None, *args, **kwargs):
        if len(args) >= 2 and isinstance(kernel_size, int):  # nb_row, nb_col, output_shape
            kwargs.setdefault("output_shape", args[1])
            args = (args[0],) + tuple(args[2:])
        super().__init__(filters, kernel_size, *args, **kwargs)


Convolution2DTranspose = Conv2DTranspose


# -- depthwise and separable convolutions ---------------------------------------------------


def _depthwise(x, kernel, strides, padding, data_format, dilation):
    """Each input channel convolved with its own ``depth_multiplier`` filters: a grouped
    conv2d with one group per channel (``kernel`` (kh, kw, channels, multiplier); output
    channel c * multiplier + m, as Keras orders them)."""
    kh, kw, c, m = ops.shape(kernel)
    return ops.conv2d(
        x,
        ops.reshape(kernel, (kh, kw, 1, c * m)),
        strides=tuple(strides),
        padding=padding,
        data_format=data_format,
        dilation_rate=tuple(dilation),
        **({"groups": c} if c != 1 else {}),
    )


def _renamed(kwargs: dict, owner: str, names: dict[str, str]) -> dict:
    """Keras' own names for the depthwise layers' kernel arguments (``depthwise_...``)
    where the shared convolution code says ``kernel_...``; the ``kernel_...`` spellings
    are not arguments of these layers."""
    for theirs in names.values():
        if theirs in kwargs:
            raise TypeError(f"{owner}: {theirs} is not an argument of {owner}")
    for ours, theirs in names.items():
        if ours in kwargs:
            kwargs[theirs] = kwargs.pop(ours)
    return kwargs


_DEPTHWISE_NAMES = {
    "depthwise_initializer": "kernel_initializer",
    "depthwise_regularizer": "kernel_regularizer",
    "depthwise_constraint": "kernel_constraint",
}


class _Depthwise(_Conv):
    """Shared by DepthwiseConv2D and the separable convolutions: ``depthwise_kernel``
    (*kernel_size, channels, depth_multiplier)."""

    takes_groups = False

    def _init_depthwise(self, kwargs: dict) -> tuple[dict, int]:
        owner = type(self).__name__
        depth_multiplier = kwargs.pop("depth_multiplier", 1)
        kwargs.setdefault("depthwise_initializer", "glorot_uniform")
        return _renamed(kwargs, owner, _DEPTHWISE_NAMES), depth_multiplier

    def _built_channels(self):
        return self.depthwise_kernel.shape[-2]

    def _build_depthwise(self, channels):
        self.depthwise_kernel = self._add_kernel(
            "depthwise_kernel", self.kernel_size + (channels, self.depth_multiplier)
        )

    def _depthwise_call(self, inputs):
        """The depthwise convolution of ``inputs`` (no bias), in the layer's data format."""
        if self.rank == 2:
            return _depthwise(
                inputs,
                self.depthwise_kernel,
                self.strides,
                self.padding,
                self.data_format,
                self.dilation_rate,
            )
        x = inputs
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 1))
        if self.padding == "causal":
            left = (self.kernel_size[0] - 1) * self.dilation_rate[0]
            if left:
                n, _, c = ops.shape(x)
                x = ops.concatenate([ops.zeros((n, left, c), ops.dtype_name(x)), x], axis=1)
        y = _depthwise(
            ops.expand_dims(x, 1),
            ops.expand_dims(self.depthwise_kernel, 0),
            (1, self.strides[0]),
            "valid" if self.padding == "causal" else self.padding,
            "channels_last",
            (1, self.dilation_rate[0]),
        )
        shape = ops.shape(y)
        y = ops.reshape(y, (shape[0], shape[2], shape[3]))
        return ops.transpose(y, (0, 2, 1)) if self.data_format == "channels_first" else y

    def _depthwise_config(self, config):
        for ours, theirs in _DEPTHWISE_NAMES.items():
            config[ours] = config.pop(theirs)
        config["depth_multiplier"] = self.depth_multiplier
        return config


class DepthwiseConv2D(_Depthwise):
    """``DepthwiseConv2D(kernel_size, strides=(1, 1), padding='valid', depth_multiplier=1,
    ...)``: weights ``depthwise_kernel`` (kh, kw, channels, depth_multiplier) and ``bias``
    (channels * depth_multiplier)."""

    rank = 2

    def __init__(self, kernel_size: Any = None, strides: Any = (1, 1), *args: Any, **kwargs: Any):
        owner = type(self).__name__
        if args:
            names = ("padding", "depth_multiplier", "data_format", "dilation_rate", "activation")
            if len(args) > len(names):
                raise TypeError(f"{owner}: too many positional arguments {args!r}")
            for name, value in zip(names, args):
                if name in kwargs:
                    raise TypeError(f"{owner}: {name} given twice")
                kwargs[name] = value
        kwargs, depth_multiplier = self._init_depthwise(kwargs)
        if "filters" in kwargs:
            raise TypeError(f"{owner}: filters is not an argument of {owner}")
        super().__init__(1, kernel_size, strides=strides, **kwargs)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier", owner)

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self.filters = channels * self.depth_multiplier
        self._build_depthwise(channels)
        self._build_bias()
        self.built = True

    def compute_output_shape(self, input_shape):
        channels = input_shape[self._channel_axis()]
        out = tuple(self._out_spatial(self._spatial(input_shape)))
        c = None if channels is None else channels * self.depth_multiplier
        if self.data_format == "channels_first":
            return (input_shape[0], c) + out
        return (input_shape[0],) + out + (c,)

    def call(self, inputs):
        return self.activation(self._add_bias(self._depthwise_call(inputs)))

    def get_config(self):
        config = self._depthwise_config(super().get_config())
        config.pop("filters")
        return config


_POINTWISE_NAMES = {
    "pointwise_initializer": "glorot_uniform",
    "pointwise_regularizer": None,
    "pointwise_constraint": None,
}
_K1_SEPARABLE = {"init": "depthwise_initializer"}


class _SeparableConv(_Depthwise):
    """A depthwise convolution followed by a 1x1 ``pointwise_kernel`` (1.., channels *
    depth_multiplier, filters), and the bias (filters), as Keras computes it."""

    def __init__(self, filters: int | None = None, kernel_size: Any = None, *args: Any, **kwargs):
        owner = type(self).__name__
        init = kwargs.pop("init", None)  # Keras 1: one initializer for both kernels
        if init is not None:
            for key in ("depthwise_initializer", "pointwise_initializer"):
                if key in kwargs:
                    raise TypeError(f"{owner}: give either init (Keras 1) or {key}, not both")
                kwargs[key] = init
        pointwise = {k: kwargs.pop(k, default) for k, default in _POINTWISE_NAMES.items()}
        kwargs, depth_multiplier = self._init_depthwise(kwargs)
        super().__init__(filters, kernel_size, *args, **kwargs)
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier", owner)
        self.pointwise_initializer = initializers.get(pointwise["pointwise_initializer"])
        self.pointwise_regularizer = _regularizer(pointwise["pointwise_regularizer"])
        self.pointwise_constraint = _constraint(pointwise["pointwise_constraint"])

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self._build_depthwise(channels)
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel",
            (1,) * self.rank + (channels * self.depth_multiplier, self.filters),
            self.pointwise_initializer,
            regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint,
        )
        self._build_bias()
        self.built = True

    def call(self, inputs):
        y = self._depthwise_call(inputs)
        mid = ops.shape(self.pointwise_kernel)[-2]
        kernel = ops.reshape(self.pointwise_kernel, (1, 1, mid, self.filters))
        if self.rank == 1:
            y = ops.expand_dims(y, 2 if self.data_format == "channels_first" else 1)
        y = ops.conv2d(y, kernel, strides=(1, 1), padding="valid", data_format=self.data_format)
        if self.rank == 1:
            shape = ops.shape(y)
            axis = 2 if self.data_format == "channels_first" else 1
            y = ops.reshape(y, tuple(d for i, d in enumerate(shape) if i != axis))
        return self.activation(self._add_bias(y))

    def get_config(self):
        config = self._depthwise_config(super().get_config())
        config["pointwise_initializer"] = initializers.serialize(self.pointwise_initializer)
        config["pointwise_regularizer"] = (
            _serialize_reg(self.pointwise_regularizer) if self.pointwise_regularizer else None
        )
        config["pointwise_constraint"] = _serialize_constraint(self.pointwise_constraint)
        return config


class SeparableConv2D(_SeparableConv):
    """``SeparableConv2D(filters, kernel_size, depth_multiplier=1, ...)``; Keras 1's
    ``SeparableConvolution2D(nb_filter, nb_row, nb_col, init=...)`` too."""

    rank = 2


class SeparableConv1D(_SeparableConv):
    """``SeparableConv1D(filters, kernel_size, ...)`` over (batch, steps, channels)."""

    rank = 1


SeparableConvolution2D = SeparableConv2D
SeparableConvolution1D = SeparableConv1D


# -- 3-D convolutions: one 2-D convolution per kernel depth position ----------------------------


def _to_last(x, data_format):
    return ops.transpose(x, (0, 2, 3, 4, 1)) if data_format == "channels_first" else x


def _from_last(y, data_format):
    return ops.transpose(y, (0, 4, 1, 2, 3)) if data_format == "channels_first" else y


def _depth_pad(x, before, after):
    """Zeros before and after the depth axis (1) of a channels_last 5-D tensor."""
    if not (before or after):
        return x
    n, d, h, w, c = ops.shape(x)
    key = (slice(None), slice(before, before + d))
    return ops.scatter_slice((n, d + before + after, h, w, c), key, x)


def conv3d(x, kernel, strides, padding, dilation, groups=1):
    """Keras' 3-D convolution of a channels_last (n, d, h, w, c) tensor with kernel
    (kd, kh, kw, c / groups, f): for each depth position of the kernel, a 2-D convolution of
    the depth slices it sees (stacked into the batch), summed."""
    n, d, h, w, c = ops.shape(x)
    kd = ops.shape(kernel)[0]
    od, before, after = out_and_pads(d, kd, strides[0], dilation[0], padding)
    x = _depth_pad(x, before, after)
    extra = {"groups": groups} if groups != 1 else {}
    total = None
    for a in range(kd):
        start = a * dilation[0]
        key = (slice(None), slice(start, start + (od - 1) * strides[0] + 1, strides[0]))
        part = ops.reshape(ops.getitem(x, key), (n * od, h, w, c))
        y = ops.conv2d(
            part,
            ops.getitem(kernel, (a,)),
            strides=tuple(strides[1:]),
            padding=padding,
            data_format="channels_last",
            dilation_rate=tuple(dilation[1:]),
            **extra,
        )
        total = y if total is None else ops.add(total, y)
    _, oh, ow, f = ops.shape(total)
    return ops.reshape(total, (n, od, oh, ow, f))


class Conv3D(_Conv):
    """3-D convolution over (batch, depth, height, width, channels), kernel (kd, kh, kw,
    channels / groups, filters); Keras 1's ``Convolution3D(nb_filter, kernel_dim1,
    kernel_dim2, kernel_dim3, ...)`` too."""

    rank = 3

    def call(self, inputs):
        y = conv3d(
            _to_last(inputs, self.data_format),
            self.kernel,
            self.strides,
            self.padding,
            self.dilation_rate,
            self.groups,
        )
        if self.bias is not None:
            y = ops.add(y, self.bias)
        return self.activation(_from_last(y, self.data_format))


class Conv3DTranspose(_ConvTranspose):
    """Transposed 3-D convolution, kernel (kd, kh, kw, filters, channels): for each depth
    position of the kernel, a transposed 2-D convolution placed at the depths it reaches."""

    rank = 3

    def call(self, inputs):
        x = _to_last(inputs, self.data_format)
        n, d, h, w, c = ops.shape(x)
        kd, kh, kw = self.kernel_size
        sd, sh, sw = self.strides
        dd, dh, dw = self.dilation_rate
        full = [
            (s - 1) * st + (k - 1) * dl + 1
            for s, k, st, dl in zip((d, h, w), self.kernel_size, self.strides, self.dilation_rate)
        ]
        flat = ops.reshape(x, (n * d, h, w, c))
        shape5 = (n, full[0], full[1], full[2], self.filters)
        y = None
        for a in range(kd):
            part = ops.conv2d_input_grad(
                flat,
                ops.getitem(self.kernel, (a,)),
                input_shape=(n * d, full[1], full[2], self.filters),
                strides=(sh, sw),
                padding="valid",
                data_format="channels_last",
                dilation_rate=(dh, dw),
            )
            part = ops.reshape(part, (n, d, full[1], full[2], self.filters))
            start = a * dd
            key = (slice(None), slice(start, start + (d - 1) * sd + 1, sd))
            placed = ops.scatter_slice(shape5, key, part)
            y = placed if y is None else ops.add(y, placed)
        ops_ = self.output_padding or (None,) * 3
        cuts = [
            transpose_crops(s, k, st, self.padding, op, dl)
            for s, k, st, op, dl in zip(
                (d, h, w), self.kernel_size, self.strides, ops_, self.dilation_rate
            )
        ]
        grow = [(max(-a, 0), max(-b, 0)) for a, b in cuts]
        if any(a or b for a, b in grow):
            padded = [n, *(f + a + b for f, (a, b) in zip(full, grow)), self.filters]
            key5: list[Any] = [slice(None)] * 5
            for i, (a, _) in enumerate(grow):
                key5[1 + i] = slice(a, a + full[i])
            y = ops.scatter_slice(tuple(padded), tuple(key5), y)
            full = padded[1:4]
        cut = [(max(a, 0), max(b, 0)) for a, b in cuts]
        if any(a or b for a, b in cut):
            key5 = [slice(None)] * 5
            for i, (a, b) in enumerate(cut):
                key5[1 + i] = slice(a, full[i] - b)
            y = ops.getitem(y, tuple(key5))
        if self.bias is not None:
            y = ops.add(y, self.bias)
        return self.activation(_from_last(y, self.data_format))


Convolution3D = Conv3D
Convolution3DTranspose = Deconvolution3D = Conv3DTranspose
