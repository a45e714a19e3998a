"""Spatial reshaping: UpSampling, ZeroPadding and Cropping in 1, 2 and 3 dimensions.

Each is one or two differentiable ops: up-sampling repeats rows (``nearest``) or multiplies
by a constant interpolation matrix per axis (``bilinear``, the half-pixel rule of Keras 3
and of ``torch.nn.functional.interpolate``); padding places the input inside zeros
(``scatter_slice``) and cropping slices it (``getitem``).

Keras 1's spellings are accepted: ``UpSampling1D(length=2)``, ``dim_ordering='th'``, and
ZeroPadding2D's 4-tuple or ``{'top_pad': ..}`` dict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..config import normalize_data_format
from ..engine.base_layer import Layer
from ..utils import as_int
from .convolutional import tuple_of
from .core import legacy, shape_error

_K1 = {"dim_ordering": "data_format"}


class _Spatial(Layer):
    """A layer over the ``rank`` spatial axes of a (batch, *spatial, channels) tensor, or
    (batch, channels, *spatial) with ``channels_first``."""

    rank = 2
    has_data_format = True

    def _set_data_format(self, data_format):
        self.data_format = (
            normalize_data_format(data_format) if self.has_data_format else "channels_last"
        )

    def _axes(self) -> tuple[int, ...]:
        first = 2 if self.data_format == "channels_first" else 1
        return tuple(range(first, first + self.rank))

    def check_input(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) != self.rank + 2:
            where = f" ({self.data_format})" if self.has_data_format else ""
            raise shape_error(self, f"a {self.rank + 2}-D tensor{where}", input_shape)

    def get_config(self):
        config = super().get_config()
        # ZeroPadding1D's data_format is Keras 3's (Keras 2 had none): written only when
        # it says something other than the default
        if self.has_data_format and (self.rank > 1 or self.data_format == "channels_first"):
            config["data_format"] = self.data_format
        return config


# -- up-sampling ------------------------------------------------------------------------------


def _bilinear_matrix(n: int, factor: int, dtype: str) -> np.ndarray:
    """(n * factor, n): output row i reads input position (i + 0.5) / factor - 0.5, clamped
    to the edges, interpolating between its two neighbours."""
    out = n * factor
    src = np.maximum((np.arange(out) + 0.5) / factor - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    frac = src - lo
    m = np.zeros((out, n), dtype=np.float64)
    np.add.at(m, (np.arange(out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(out), hi), frac)
    return m.astype(dtype)


class _UpSampling(_Spatial):
    interpolations: tuple[str, ...] = ("nearest",)

    def __init__(self, size: Any = 2, data_format: str | None = None, **kwargs: Any):
        owner = type(self).__name__
        kwargs = legacy(kwargs, {**_K1, "length": "size"} if self.rank == 1 else _K1, owner)
        size = kwargs.pop("size", size)
        data_format = kwargs.pop("data_format", data_format)
        interpolation = kwargs.pop("interpolation", "nearest")
        super().__init__(**kwargs)
        owner = f"{owner} {self.name}"
        self.size = tuple_of(size, self.rank, "size", owner)
        self._set_data_format(data_format)
        interpolation = str(interpolation).lower()
        if interpolation not in self.interpolations:
            raise NotImplementedError(
                f"{owner}: interpolation={interpolation!r} is not implemented; "
                f"expected one of {', '.join(self.interpolations)}"
            )
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        out = list(input_shape)
        for axis, factor in zip(self._axes(), self.size):
            out[axis] = None if out[axis] is None else out[axis] * factor
        return tuple(out)

    def call(self, inputs):
        if self.interpolation == "bilinear":
            return self._bilinear(inputs)
        x = inputs
        for axis, factor in zip(self._axes(), self.size):
            if factor != 1:
                x = ops.repeat(x, factor, axis=axis)
        return x

    def _bilinear(self, x):
        n, *rest = ops.shape(x)
        dtype = ops.dtype_name(x)
        if self.data_format == "channels_first":
            c, h, w = rest
            mh = ops.asarray(_bilinear_matrix(h, self.size[0], dtype))
            mw = ops.asarray(_bilinear_matrix(w, self.size[1], dtype).T.copy())
            y = ops.matmul(ops.reshape(x, (n * c * h, w)), mw)  # (n c h, ow)
            y = ops.matmul(mh, ops.reshape(y, (n * c, h, w * self.size[1])))
            return ops.reshape(y, (n, c, h * self.size[0], w * self.size[1]))
        h, w, c = rest
        mh = ops.asarray(_bilinear_matrix(h, self.size[0], dtype))
        mw = ops.asarray(_bilinear_matrix(w, self.size[1], dtype))
        y = ops.matmul(mh, ops.reshape(x, (n, h, w * c)))  # (n, oh, w c)
        y = ops.matmul(mw, ops.reshape(y, (n * h * self.size[0], w, c)))  # (n oh, ow, c)
        return ops.reshape(y, (n, h * self.size[0], w * self.size[1], c))

    def get_config(self):
        config = {
            **super().get_config(),
            "size": self.size[0] if self.rank == 1 else list(self.size),
        }
        if self.rank == 2:
            config["interpolation"] = self.interpolation
        return config


class UpSampling1D(_UpSampling):
    """Repeats each step ``size`` times: (batch, steps, features) -> (batch, steps * size,
    features)."""

    rank, has_data_format = 1, False

    def __init__(self, size: Any = 2, **kwargs: Any):
        if "data_format" in kwargs:
            raise TypeError("UpSampling1D: data_format is not an argument of UpSampling1D")
        if "interpolation" in kwargs:
            raise TypeError("UpSampling1D: interpolation is not an argument of UpSampling1D")
        super().__init__(size, **kwargs)


class UpSampling2D(_UpSampling):
    """``UpSampling2D(size=(2, 2), interpolation='nearest' | 'bilinear')``."""

    rank = 2
    interpolations = ("nearest", "bilinear")


class UpSampling3D(_UpSampling):
    """Repeats each voxel ``size`` times along depth, height and width."""

    rank = 3

    def __init__(self, size: Any = (2, 2, 2), data_format: str | None = None, **kwargs: Any):
        if "interpolation" in kwargs:
            raise TypeError("UpSampling3D: interpolation is not an argument of UpSampling3D")
        super().__init__(size, data_format, **kwargs)


# -- padding and cropping ---------------------------------------------------------------------


def _pairs(value: Any, rank: int, what: str, owner: str) -> tuple[tuple[int, int], ...]:
    """Keras' forms: an int (every side), ``rank`` ints (both sides of each axis), or
    ``rank`` pairs; Keras 1's ZeroPadding2D also took 4 ints (top, bottom, left, right) or a
    dict with ``top_pad``, ``bottom_pad``, ``left_pad``, ``right_pad``."""

    def count(v):
        return as_int(v, what, owner, minimum=0)

    if isinstance(value, dict) and rank == 2:
        keys = ("top_pad", "bottom_pad", "left_pad", "right_pad")
        unknown = set(value) - set(keys)
        if unknown:
            raise ValueError(
                f"{owner}: {what} dict keys must be among {keys}, got {sorted(unknown)}"
            )
        t, b, l_, r = (count(value.get(k, 0)) for k in keys)
        return ((t, b), (l_, r))
    if not isinstance(value, (tuple, list)):
        n = count(value)
        return ((n, n),) * rank
    value = tuple(value)
    if rank == 1 and len(value) == 2 and not any(isinstance(v, (tuple, list)) for v in value):
        return ((count(value[0]), count(value[1])),)
    if rank == 2 and len(value) == 4 and not any(isinstance(v, (tuple, list)) for v in value):
        return ((count(value[0]), count(value[1])), (count(value[2]), count(value[3])))
    if len(value) == rank:
        out = []
        for v in value:
            if isinstance(v, (tuple, list)):
                if len(v) != 2:
                    break
                out.append((count(v[0]), count(v[1])))
            else:
                out.append((count(v), count(v)))
        else:
            return tuple(out)
    forms = "an int" + (
        ", 2 ints" if rank == 1 else f", {rank} ints, or {rank} (before, after) pairs"
    )
    raise ValueError(f"{owner}: {what} must be {forms}; got {value!r}")


class _PadOrCrop(_Spatial):
    keyword = "padding"
    default: Any = 1

    def __init__(self, *args: Any, **kwargs: Any):
        owner = type(self).__name__
        kwargs = legacy(kwargs, _K1, owner)
        if len(args) > 1:
            raise TypeError(f"{owner}: too many positional arguments {args!r}")
        value = kwargs.pop(self.keyword, args[0] if args else self.default)
        data_format = kwargs.pop("data_format", None) if self.has_data_format else None
        super().__init__(**kwargs)
        self._set_data_format(data_format)
        self.amounts = _pairs(value, self.rank, self.keyword, f"{owner} {self.name}")

    def _config_value(self):
        if self.rank == 1:
            return list(self.amounts[0])
        return [list(p) for p in self.amounts]

    def get_config(self):
        return {**super().get_config(), self.keyword: self._config_value()}


class _ZeroPadding(_PadOrCrop):
    keyword = "padding"

    def compute_output_shape(self, input_shape):
        out = list(input_shape)
        for axis, (a, b) in zip(self._axes(), self.amounts):
            out[axis] = None if out[axis] is None else out[axis] + a + b
        return tuple(out)

    def call(self, inputs):
        shape = list(ops.shape(inputs))
        key: list[Any] = [slice(None)] * len(shape)
        for axis, (a, b) in zip(self._axes(), self.amounts):
            key[axis] = slice(a, a + shape[axis])
            shape[axis] += a + b
        return ops.scatter_slice(tuple(shape), tuple(key), inputs)


class ZeroPadding1D(_ZeroPadding):
    """Zeros before and after the steps: ``ZeroPadding1D(padding=1 | (before, after))``."""

    rank, default = 1, 1


class ZeroPadding2D(_ZeroPadding):
    """``ZeroPadding2D(padding=1 | (rows, cols) | ((top, bottom), (left, right)))``."""

    rank, default = 2, (1, 1)


class ZeroPadding3D(_ZeroPadding):
    """Zeros around depth, height and width: an int, 3 ints or 3 (before, after) pairs."""

    rank, default = 3, (1, 1, 1)


class _Cropping(_PadOrCrop):
    keyword = "cropping"

    def check_input(self, input_shape):
        super().check_input(input_shape)
        for axis, (a, b) in zip(self._axes(), self.amounts):
            size = input_shape[axis]
            if size is not None and size - a - b <= 0:
                raise ValueError(
                    f"layer {self.name}: cropping {self._config_value()} removes all of "
                    f"axis {axis} (size {size}) of input {tuple(input_shape)}; it must leave "
                    "at least one element"
                )

    def compute_output_shape(self, input_shape):
        out = list(input_shape)
        for axis, (a, b) in zip(self._axes(), self.amounts):
            out[axis] = None if out[axis] is None else out[axis] - a - b
        return tuple(out)

    def call(self, inputs):
        shape = ops.shape(inputs)
        key: list[Any] = [slice(None)] * len(shape)
        for axis, (a, b) in zip(self._axes(), self.amounts):
            if shape[axis] - a - b <= 0:
                raise ValueError(
                    f"layer {self.name}: cropping {self._config_value()} removes all of "
                    f"axis {axis} of an input shaped {tuple(shape)}"
                )
            key[axis] = slice(a, shape[axis] - b)
        return ops.getitem(inputs, tuple(key))


class Cropping1D(_Cropping):
    """Removes steps at the start and end: ``Cropping1D(cropping=(1, 1))``."""

    rank, default, has_data_format = 1, (1, 1), False


class Cropping2D(_Cropping):
    """``Cropping2D(cropping=((top, bottom), (left, right)))`` (or an int, or 2 ints)."""

    rank, default = 2, ((0, 0), (0, 0))


class Cropping3D(_Cropping):
    """Crops depth, height and width: an int, 3 ints or 3 (before, after) pairs."""

    rank, default = 3, ((1, 1), (1, 1), (1, 1))
