"""Keras 3's deterministic preprocessing layers: Rescaling, Resizing, CenterCrop,
Normalization and Discretization.

Each runs through :mod:`polykeras.ops`, so it works on every backend, eagerly on arrays and
as a node of a model. Their statistics are worked out here in NumPy, once, when they are set:

- Resizing and CenterCrop resample with a constant (out, in) matrix per spatial axis
  (``bilinear``: half-pixel centres, each output pixel a blend of its two nearest input
  pixels, as ``torch.nn.functional.interpolate(..., align_corners=False)`` and Keras 3 on
  torch) or an index per output pixel (``nearest``: the pixel under the output pixel's
  centre, torch's ``nearest-exact``).
- ``Normalization.adapt`` measures per-feature mean and (biased) variance of its data, a
  NumPy array or an iterable of batches, and keeps them in Keras 3's weights ``mean``,
  ``variance`` and ``count`` (which Keras 3 leaves at 0), so ``.keras`` files move both ways.
- ``Discretization.adapt`` estimates quantiles with Keras 3's approximate summary (every
  batch thinned to about ``1 / epsilon`` weighted points, summaries merged and thinned again,
  boundaries read off the cumulative weights by linear interpolation).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend as _backend
from .. import config as _config
from .. import ops
from ..config import normalize_data_format
from ..engine.base_layer import Layer
from ..utils import as_float, as_int
from .core import shape_error

# -- Rescaling -----------------------------------------------------------------------------------


def _number_or_list(value: Any, what: str, owner: str) -> float | list[float]:
    """A float, or a (nested) list of floats for per-channel values."""
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.size == 0 or arr.dtype.kind not in "biuf" or not np.all(np.isfinite(arr)):
            raise ValueError(
                f"{owner}: {what} must be a finite number or a list of finite numbers "
                f"(one per channel), got {value!r}"
            )
        return np.asarray(arr, dtype=np.float64).tolist()
    return as_float(value, what, owner)


class Rescaling(Layer):
    """``inputs * scale + offset``, in the layer's dtype (integer images become floats):
    ``Rescaling(1. / 255)`` maps [0, 255] to [0, 1], ``Rescaling(1. / 127.5, offset=-1)`` to
    [-1, 1]. ``scale`` and ``offset`` may be lists, one value per channel; with the
    channels_first image_data_format setting they apply along axis -3, as in Keras 3."""

    supports_masking = True

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        owner = f"Rescaling {self.name}"
        self.scale = _number_or_list(scale, "scale", owner)
        self.offset = _number_or_list(offset, "offset", owner)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def check_input(self, input_shape: Any) -> None:
        if isinstance(input_shape, list):
            raise ValueError(  # noqa: TRY004
                f"layer {self.name} (Rescaling) takes one input, got {len(input_shape)}"
            )

    def _constant(self, value: Any) -> Any:
        arr = np.asarray(value, dtype=self.dtype)
        if arr.ndim and _config.image_data_format() == "channels_first":
            # one value per channel of a (..., channels, height, width) image
            arr = arr.reshape(arr.shape + (1,) * (3 - arr.ndim))
        return ops.asarray(arr)

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, self.dtype)
        return ops.add(ops.multiply(x, self._constant(self.scale)), self._constant(self.offset))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


# -- Resizing and CenterCrop ---------------------------------------------------------------------

#: interpolations Keras 3 knows that polykeras does not compute
_OTHER_INTERPOLATIONS = ("bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")
_INTERPOLATIONS = ("bilinear", "nearest")


def linear_resize_matrix(n_in: int, n_out: int, dtype: str = "float32") -> np.ndarray:
    """(n_out, n_in): output pixel i sits at input coordinate ``(i + 0.5) * n_in / n_out -
    0.5`` (half-pixel centres; below 0 it is 0) and blends the two input pixels around it
    (the last pixel repeats past the end)."""
    pos = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    return m.astype(dtype)


def nearest_resize_indices(n_in: int, n_out: int) -> np.ndarray:
    """For each output pixel, the input pixel under its centre: ``floor((i + 0.5) * n_in /
    n_out)``, in float32 arithmetic as torch's ``nearest-exact`` does it."""
    scale = np.float32(n_in / n_out)
    centres = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale
    return np.minimum(np.floor(centres).astype(np.int64), n_in - 1)


def _resample_axis(x: Any, axis: int, n_in: int, n_out: int, interpolation: str) -> Any:
    if n_in == n_out:
        return x
    if interpolation == "nearest":
        return ops.take(x, ops.asarray(nearest_resize_indices(n_in, n_out)), axis=axis)
    m = ops.asarray(linear_resize_matrix(n_in, n_out, ops.dtype_name(x)).T.copy())
    moved = ops.moveaxis(x, axis, -1)
    return ops.moveaxis(ops.matmul(moved, m), -1, axis)


def _crop_box(height: int, width: int, target_h: int, target_w: int) -> tuple[int, int, int, int]:
    """The centred box of the target's aspect ratio inside a (height, width) image: (top,
    left, box height, box width), as Keras 3 rounds them."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


def _spatial_axes(ndim: int, data_format: str) -> tuple[int, int]:
    """The (height, width) axes of a 3-D (single) or 4-D (batched) image."""
    return (ndim - 2, ndim - 1) if data_format == "channels_first" else (ndim - 3, ndim - 2)


def resize_images(
    x: Any,
    height: int,
    width: int,
    interpolation: str,
    data_format: str,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    fill_value: float = 0.0,
) -> Any:
    """Resize a float image or batch of images to (height, width)."""
    ndim = len(ops.shape(x))
    ha, wa = _spatial_axes(ndim, data_format)
    h, w = int(ops.shape(x)[ha]), int(ops.shape(x)[wa])
    if crop_to_aspect_ratio:
        top, left, ch, cw = _crop_box(h, w, height, width)
        key: list[Any] = [slice(None)] * ndim
        key[ha], key[wa] = slice(top, top + ch), slice(left, left + cw)
        x = ops.getitem(x, tuple(key))
        h, w = ch, cw
    elif pad_to_aspect_ratio:
        ph = max(h, int(float(w * height) / width))
        pw = max(w, int(float(h * width) / height))
        top, left = int(float(ph - h) / 2), int(float(pw - w) / 2)
        widths = [(0, 0)] * ndim
        # Keras 3 pads both sides by the same amount (the extra row of an odd difference
        # is dropped)
        widths[ha], widths[wa] = (top, top), (left, left)
        if top or left:
            x = ops.pad(x, widths, mode="constant", constant_values=fill_value)
        h, w = h + 2 * top, w + 2 * left
    x = _resample_axis(x, ha, h, height, interpolation)
    return _resample_axis(x, wa, w, width, interpolation)


class _ImageLayer(Layer):
    """A layer over images: (batch, height, width, channels), or one 3-D image; channels
    first with ``data_format='channels_first'``."""

    def _init_size(self, height: Any, width: Any, data_format: Any) -> None:
        owner = f"{type(self).__name__} {self.name}"
        self.height = as_int(height, "height", owner, minimum=1)
        self.width = as_int(width, "width", owner, minimum=1)
        self.data_format = normalize_data_format(data_format)

    def check_input(self, input_shape: Any) -> None:
        if isinstance(input_shape, list) or len(input_shape) not in (3, 4):
            raise shape_error(
                self,
                f"a 4-D batch of images or one 3-D image ({self.data_format})",
                input_shape,
            )

    def compute_output_shape(self, input_shape: Any) -> Any:
        out = list(input_shape)
        ha, wa = _spatial_axes(len(out), self.data_format)
        out[ha], out[wa] = self.height, self.width
        return tuple(out)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "data_format": self.data_format,
            "height": self.height,
            "width": self.width,
        }


def _is_int_dtype(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


class Resizing(_ImageLayer):
    """Resize images to (height, width): ``interpolation`` ``bilinear`` (default) or
    ``nearest``; ``crop_to_aspect_ratio=True`` first takes the largest centred box of the
    target's aspect ratio, ``pad_to_aspect_ratio=True`` first pads (with ``fill_value``) to
    it. Integer images come back rounded, in their own dtype (as Keras 3's)."""

    def __init__(
        self,
        height: Any,
        width: Any,
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        pad_to_aspect_ratio: bool = False,
        fill_mode: str = "constant",
        fill_value: float = 0.0,
        antialias: bool = False,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        owner = f"Resizing {self.name}"
        self._init_size(height, width, data_format)
        if not isinstance(interpolation, str):
            raise ValueError(f"{owner}: interpolation must be a string, got {interpolation!r}")
        if interpolation in _OTHER_INTERPOLATIONS:
            raise NotImplementedError(
                f"{owner}: interpolation={interpolation!r} is not implemented in polykeras; "
                f"expected one of {', '.join(_INTERPOLATIONS)}"
            )
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"{owner}: interpolation={interpolation!r} is not an interpolation; expected "
                f"one of {', '.join(_INTERPOLATIONS)}"
            )
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError(
                f"{owner}: crop_to_aspect_ratio and pad_to_aspect_ratio cannot both be True"
            )
        if fill_mode != "constant":
            raise NotImplementedError(
                f"{owner}: fill_mode={fill_mode!r} is not implemented (only 'constant', "
                "as Keras 3 on torch)"
            )
        self.fill_mode = fill_mode
        self.fill_value = as_float(fill_value, "fill_value", owner)
        if antialias:
            raise NotImplementedError(f"{owner}: antialias=True is not implemented in polykeras")
        self.antialias = False

    def compute_output_dtype(self, input_dtypes: list[str]) -> str:
        return input_dtypes[0] if _is_int_dtype(input_dtypes[0]) else self.dtype

    def call(self, inputs: Any) -> Any:
        in_dtype = ops.dtype_name(inputs)
        x = ops.cast(inputs, self.dtype) if _is_int_dtype(in_dtype) else inputs
        out = resize_images(
            x,
            self.height,
            self.width,
            self.interpolation,
            self.data_format,
            self.crop_to_aspect_ratio,
            self.pad_to_aspect_ratio,
            self.fill_value,
        )
        if _is_int_dtype(in_dtype):
            info = np.iinfo(in_dtype)
            out = ops.cast(ops.clip(ops.round(out), float(info.min), float(info.max)), in_dtype)
        return out

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "antialias": self.antialias,
        }


class CenterCrop(_ImageLayer):
    """The centred (height, width) part of each image. An image smaller than that along
    either side is instead cropped to the target's aspect ratio and resized up (bilinear),
    as Keras 3 does. The output is in the layer's dtype."""

    def __init__(self, height: Any, width: Any, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._init_size(height, width, data_format)

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, self.dtype)
        shape = ops.shape(x)
        ha, wa = _spatial_axes(len(shape), self.data_format)
        h, w = int(shape[ha]), int(shape[wa])
        if h >= self.height and w >= self.width:
            top, left = (h - self.height) // 2, (w - self.width) // 2
            key: list[Any] = [slice(None)] * len(shape)
            key[ha] = slice(top, top + self.height)
            key[wa] = slice(left, left + self.width)
            return ops.getitem(x, tuple(key))
        return resize_images(
            x, self.height, self.width, "bilinear", self.data_format, crop_to_aspect_ratio=True
        )


# -- Normalization -------------------------------------------------------------------------------


def _batches(data: Any, owner: str) -> Any:
    """The batches of ``adapt``'s data: one NumPy or backend array, or an iterable of batches
    (a list, a generator, a ``utils.Sequence``, a torch ``DataLoader``); an ``(x, y)``
    batch gives its x."""
    B = _backend.current()
    if isinstance(data, np.ndarray) or B.is_native(data):
        yield _host(data, owner)
        return
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise TypeError(
            f"{owner}: adapt() takes a NumPy or backend array, or an iterable of batches "
            f"(a list, a generator, a utils.Sequence); got {type(data).__name__}"
        )
    for batch in data:
        # (x, y) or (x, y, sample_weight); a torch DataLoader gives [x, y]
        if isinstance(batch, tuple) or (
            isinstance(batch, list) and batch and hasattr(batch[0], "shape")
        ):
            batch = batch[0]
        yield _host(batch, owner)


def _host(batch: Any, owner: str) -> np.ndarray:
    B = _backend.current()
    arr = np.asarray(B.to_numpy(batch)) if B.is_native(batch) else np.asarray(batch)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: adapt() needs numbers, got an array of dtype {arr.dtype}")
    return arr


class Normalization(Layer):
    """``(x - mean) / sqrt(variance)`` per feature (``invert=True``: back again), the
    statistics given as ``mean`` / ``variance`` or measured by :meth:`adapt`.

    ``axis`` names the axes that keep their own statistics (default -1: one per feature;
    ``None``: one mean and variance for everything); the statistics are taken over every
    other axis. ``sqrt(variance)`` is kept at least ``epsilon()``."""

    supports_masking = True

    def __init__(
        self,
        axis: Any = -1,
        mean: Any = None,
        variance: Any = None,
        invert: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        owner = f"Normalization {self.name}"
        if axis is None:
            axes: tuple[int, ...] = ()
        elif isinstance(axis, (list, tuple)):
            axes = tuple(axis)
        else:
            axes = (axis,)
        if not all(hasattr(a, "__index__") and not isinstance(a, bool) for a in axes):
            raise ValueError(f"{owner}: axis must be an int, a list of ints or None, got {axis!r}")
        self.axis = tuple(int(a) for a in axes)
        if (mean is None) != (variance is None):
            raise ValueError(
                f"{owner}: give mean and variance together (or neither, and call adapt()); "
                f"got mean={mean!r}, variance={variance!r}"
            )
        if mean is not None:
            m, v = np.asarray(mean), np.asarray(variance)
            if m.dtype.kind not in "biuf" or v.dtype.kind not in "biuf":
                raise ValueError(f"{owner}: mean and variance must be numbers")
            if m.shape != v.shape:
                raise ValueError(
                    f"{owner}: mean and variance must have the same shape, got {m.shape} "
                    f"and {v.shape}"
                )
            if m.ndim > len(self.axis):
                raise ValueError(
                    f"{owner}: mean of shape {m.shape} has more dimensions than there are "
                    f"axes in axis={self.axis}"
                )
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self.mean: Any = None  # made by build(): a weight, or NumPy constants
        self.variance: Any = None
        self.count: Any = None
        self._build_shape: tuple | None = None

    # -- shapes ----------------------------------------------------------------------------------
    def _layout(self, shape: tuple) -> tuple[tuple[int, ...], tuple[int, ...], list[int]]:
        """(kept axes, reduced axes, the broadcast shape of the statistics) for ``shape``."""
        ndim = len(shape)
        for a in self.axis:
            if not -ndim <= a < ndim:
                raise ValueError(
                    f"layer {self.name} (Normalization): axis {a} is out of range for an "
                    f"input of {ndim} dimensions (shape {tuple(shape)})"
                )
        keep = tuple(sorted(a % ndim for a in self.axis))
        reduce = tuple(d for d in range(ndim) if d not in keep)
        return keep, reduce, [shape[d] if d in keep else 1 for d in range(ndim)]

    def check_input(self, input_shape: Any) -> None:
        if isinstance(input_shape, list):
            raise ValueError(  # noqa: TRY004
                f"layer {self.name} (Normalization) takes one input, got {len(input_shape)}"
            )
        shape = tuple(input_shape)
        keep, _, _ = self._layout(shape)
        for d in keep:
            if shape[d] is None:
                raise ValueError(
                    f"layer {self.name} (Normalization): axis {d} keeps its own statistics, "
                    f"so it needs a known size; the input's shape is {shape}"
                )
        if self._build_shape is not None:
            built = self._build_shape
            b_keep, _, _ = self._layout(built)
            want = tuple(built[d] for d in b_keep)
            if tuple(shape[d] for d in keep) != want:
                raise ValueError(
                    f"Input 0 of layer {self.name} (Normalization) is incompatible with the "
                    f"layer: its statistics have shape {want} (built for inputs of shape "
                    f"{built}), but axes {list(keep)} of the input {shape} have sizes "
                    f"{tuple(shape[d] for d in keep)}"
                )

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        self._build_shape = shape
        keep, _, bshape = self._layout(shape)
        stat_shape = tuple(shape[d] for d in keep)
        if self.input_mean is None:
            self.mean = self.add_weight("mean", stat_shape, "zeros", trainable=False)
            self.variance = self.add_weight("variance", stat_shape, "ones", trainable=False)
            self.count = self.add_weight("count", (), "zeros", trainable=False, dtype="int32")
        else:
            self.mean = self._given(self.input_mean, keep, bshape, "mean")
            self.variance = self._given(self.input_variance, keep, bshape, "variance")
        self.built = True

    def _given(self, value: Any, keep: tuple, bshape: list, what: str) -> np.ndarray:
        """A given mean or variance, broadcast to the statistics' shape (its dimensions
        line up with the last kept axes)."""
        arr = np.asarray(value, dtype=np.float64)
        expanded = [1] * len(bshape)
        for i in range(1, arr.ndim + 1):
            expanded[keep[-i]] = arr.shape[-i]
        try:
            return np.broadcast_to(arr.reshape(expanded), bshape).astype(self.dtype)
        except ValueError:
            raise ValueError(
                f"layer {self.name} (Normalization): {what} of shape {arr.shape} does not fit "
                f"the kept axes {list(keep)} of an input of shape {self._build_shape}"
            ) from None

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    # -- adapt -------------------------------------------------------------------------------------
    def adapt(self, data: Any) -> None:
        """Measure the mean and variance of ``data`` (a NumPy or backend array, or an
        iterable of batches) over every axis but ``axis``, and keep them."""
        owner = f"Normalization {self.name}"
        if self.input_mean is not None:
            raise ValueError(f"{owner}: adapt() is for a layer made without mean and variance")
        total_mean: Any = None
        total_var: Any = None
        total_count = 0
        for batch in _batches(data, owner):
            batch = batch.astype(np.float64)
            if not self.built:
                self.check_input(batch.shape)
                self.build(batch.shape)
            else:
                self.check_input(batch.shape)
            _, reduce, _ = self._layout(batch.shape)
            count = math.prod(batch.shape[d] for d in reduce)
            b_mean = batch.mean(axis=reduce)
            b_var = batch.var(axis=reduce)
            if total_mean is None:
                total_mean, total_var, total_count = b_mean, b_var, count
                continue
            # pool the two groups: the new mean, and each group's variance about it
            new_count = total_count + count
            w_new = count / new_count
            mean = total_mean * (1.0 - w_new) + b_mean * w_new
            total_var = (total_var + (total_mean - mean) ** 2) * (1.0 - w_new) + (
                b_var + (b_mean - mean) ** 2
            ) * w_new
            total_mean, total_count = mean, new_count
        if total_mean is None:
            raise ValueError(f"{owner}: adapt() got no data (an empty iterable)")
        self.mean.assign(np.asarray(total_mean, dtype=self.dtype))
        self.variance.assign(np.asarray(total_var, dtype=self.dtype))

    # -- call ----------------------------------------------------------------------------------
    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, self.dtype)
        _, _, bshape = self._layout(tuple(ops.shape(x)))
        mean, variance = self.mean, self.variance
        if isinstance(mean, np.ndarray):
            mean, variance = ops.asarray(mean), ops.asarray(variance)
        else:
            mean, variance = ops.reshape(mean, bshape), ops.reshape(variance, bshape)
        std = ops.maximum(ops.sqrt(variance), _config.epsilon())
        if self.invert:
            return ops.add(mean, ops.multiply(x, std))
        return ops.divide(ops.subtract(x, mean), std)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "invert": self.invert,
            "mean": np.array(self.input_mean).tolist(),
            "variance": np.array(self.input_variance).tolist(),
        }


# -- Discretization ------------------------------------------------------------------------------

_OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count")


def _summarize(values: np.ndarray, epsilon: float) -> np.ndarray:
    """(2, k): about ``1 / epsilon`` evenly spaced order statistics of ``values`` and the
    number of values each stands for."""
    values = np.sort(values.reshape(-1))
    step = max(values.size * epsilon, 1)
    kept = values[int(step - 1) :: int(step)]
    return np.stack([kept, np.full(kept.shape, step, dtype=kept.dtype)])


def _compress(summary: np.ndarray, epsilon: float) -> np.ndarray:
    """Thin a sorted (2, k) summary to one point per ``epsilon`` of the cumulative weight
    (interpolating values and cumulative weights linearly); a small one is kept."""
    if summary.shape[1] * epsilon < 1:
        return summary
    targets = epsilon + np.arange(0.0, 1.0, epsilon)
    cum = summary[1].cumsum()
    fraction = cum / cum[-1]
    values = np.interp(targets, fraction, summary[0])
    cum_at = np.interp(targets, fraction, cum)
    weights = np.diff(cum_at, prepend=0.0)
    return np.stack([values, weights]).astype("float32")


def _merge(a: np.ndarray, b: np.ndarray, epsilon: float) -> np.ndarray:
    both = np.concatenate([a, b], axis=1)
    return _compress(both[:, np.argsort(both[0], kind="stable")], epsilon)


class Discretization(Layer):
    """Buckets numbers by ``bin_boundaries`` (bucket i: ``boundaries[i-1] <= x <
    boundaries[i]``), or by ``num_bins`` approximate quantiles that :meth:`adapt` estimates
    (within about ``epsilon``). ``output_mode``: ``int`` (the bucket indices, int32),
    ``one_hot``, ``multi_hot`` or ``count`` (floats over ``len(boundaries) + 1`` buckets)."""

    def __init__(
        self,
        bin_boundaries: Any = None,
        num_bins: Any = None,
        epsilon: float = 0.01,
        output_mode: str = "int",
        sparse: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        owner = f"Discretization {self.name}"
        if sparse:
            raise NotImplementedError(f"{owner}: sparse=True is not implemented in polykeras")
        self.sparse = False
        if output_mode not in _OUTPUT_MODES:
            raise ValueError(
                f"{owner}: output_mode={output_mode!r} is not valid; expected one of "
                f"{', '.join(_OUTPUT_MODES)}"
            )
        self.output_mode = output_mode
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError(
                f"{owner}: give bin_boundaries or num_bins (to adapt), not both; got "
                f"bin_boundaries={bin_boundaries!r}, num_bins={num_bins!r}"
            )
        if num_bins is None and bin_boundaries is None:
            raise ValueError(f"{owner}: give bin_boundaries, or num_bins and call adapt()")
        self.num_bins = None if num_bins is None else as_int(num_bins, "num_bins", owner, 0)
        self.epsilon = as_float(epsilon, "epsilon", owner, low=0.0, low_open=True, high=1.0)
        self.bin_boundaries = (
            None if bin_boundaries is None else self._check_boundaries(bin_boundaries)
        )

    def _check_boundaries(self, value: Any) -> list[float]:
        try:
            arr: np.ndarray | None = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.ndim != 1 or np.any(np.diff(arr) < 0) or np.any(np.isnan(arr)):
            raise ValueError(
                f"Discretization {self.name}: bin_boundaries must be a list of numbers in "
                f"increasing order, got {value!r}"
            )
        return arr.tolist()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        # an adapted layer's config holds num_bins and the boundaries it found
        config = dict(config)
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            boundaries = config.pop("bin_boundaries")
            layer = cls(**config)
            layer.bin_boundaries = layer._check_boundaries(boundaries)
            return layer
        return cls(**config)

    def adapt(self, data: Any, steps: Any = None) -> None:
        """Estimate ``num_bins`` quantile boundaries of ``data`` (a NumPy or backend array, or
        an iterable of batches; ``steps``: at most that many batches of an iterable)."""
        owner = f"Discretization {self.name}"
        if self.num_bins is None:
            raise ValueError(
                f"{owner}: a layer made with bin_boundaries cannot adapt; make it with "
                "num_bins instead"
            )
        if steps is not None:
            steps = as_int(steps, "steps", owner, minimum=1)
        summary = np.zeros((2, 0), dtype="float32")
        for i, batch in enumerate(_batches(data, owner)):
            if steps is not None and i >= steps:
                break
            part = _summarize(batch.astype("float32"), self.epsilon)
            summary = _merge(part, summary, self.epsilon)
        if summary.shape[1] == 0:
            raise ValueError(f"{owner}: adapt() got no data")
        self.bin_boundaries = _compress(summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def _depth(self) -> int:
        if self.bin_boundaries is not None:
            return len(self.bin_boundaries) + 1
        return int(self.num_bins or 0)

    def compute_output_dtype(self, input_dtypes: list[str]) -> str:
        return "int32" if self.output_mode == "int" else self.dtype

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        if self.output_mode == "int":
            return shape
        depth = self._depth()
        if self.output_mode == "one_hot":
            if len(shape) > 1 and shape[-1] == 1:
                return shape[:-1] + (depth,)
            return shape + (depth,)
        # multi_hot and count fold axis 1 into the buckets
        return (shape[0],) + shape[2:] + (depth,) if len(shape) >= 2 else (depth,)

    def check_input(self, input_shape: Any) -> None:
        if isinstance(input_shape, list):
            raise ValueError(  # noqa: TRY004
                f"layer {self.name} (Discretization) takes one input, got {len(input_shape)}"
            )

    def call(self, inputs: Any) -> Any:
        if self.bin_boundaries is None:
            raise ValueError(
                f"layer {self.name} (Discretization) has no bin boundaries yet: give "
                "bin_boundaries= or call adapt() first"
            )
        x = ops.stop_gradient(inputs)
        if not ops.dtype_name(x).startswith("float"):  # compared as floats, as in Keras 3
            x = ops.cast(x, self.dtype)
        if self.bin_boundaries:
            bounds = ops.asarray(np.asarray(self.bin_boundaries, dtype=ops.dtype_name(x)))
            above = ops.greater_equal(ops.expand_dims(x, -1), bounds)
            index = ops.sum(ops.cast(above, "int32"), axis=-1)
        else:
            index = ops.cast(ops.zeros_like(x), "int32")
        if self.output_mode == "int":
            return ops.cast(index, "int32")
        depth = self._depth()
        shape = tuple(ops.shape(index))
        if len(shape) == 0:
            index = ops.expand_dims(index, 0)
            shape = (1,)
        if self.output_mode == "one_hot":
            if len(shape) > 1 and shape[-1] == 1:
                index = ops.reshape(index, shape[:-1])
            return ops.one_hot(index, depth, dtype=self.dtype)
        hot = ops.one_hot(index, depth, dtype=self.dtype)
        axis = 1 if len(shape) > 1 else 0
        if self.output_mode == "multi_hot":
            return ops.max(hot, axis=axis)
        return ops.sum(hot, axis=axis)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if config.get("trainable") is True:
            # Keras 3's Discretization takes no trainable= and fails on the key; a layer
            # without weights is trainable or not to no effect, so True is left implied
            del config["trainable"]
        config.update(
            {
                "bin_boundaries": self.bin_boundaries,
                "num_bins": self.num_bins,
                "epsilon": self.epsilon,
                "output_mode": self.output_mode,
                "sparse": self.sparse,
            }
        )
        return config


__all__ = ["CenterCrop", "Discretization", "Normalization", "Rescaling", "Resizing"]
