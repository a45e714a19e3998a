"""Keras 3's image augmentation layers: RandomFlip, RandomRotation, RandomZoom,
RandomTranslation, RandomContrast, RandomBrightness and RandomCrop.

Each draws one random transformation per image (RandomCrop: one window per batch, as
Keras does) and applies it only while training (inside ``fit``, or when called with
``training=True``); at inference they return their input unchanged, except RandomCrop,
which must still produce its (height, width): it resizes the largest centred window of the
target's aspect ratio, as Keras documents.

The warps (rotation, zoom, translation) go through :func:`affine_transform`, which follows
Keras 3's ``keras.ops.image.affine_transform``: a transform ``[a0, a1, a2, b0, b1, b2, c0,
c1]`` sends output pixel (x = column, y = row) to the input point (a0 x + a1 y + a2, b0 x +
b1 y + b2) (the projective c0, c1 must be 0 here). The point is interpolated from its
nearest pixel (ties to even) or bilinearly from its four neighbours; a neighbour outside the
image is brought back in by the fill mode, applied to that neighbour's integer index
("reflect": d c b a | a b c d | d c b a, "wrap": a b c d | a b c d, "nearest": a a | a b c
d | d d) or, for "constant", replaced by ``fill_value``. This is not SciPy's definition
(ImageDataGenerator's, in ``preprocessing/image.py``: there the fill mode moves the
coordinate, and "wrap" has period n - 1), so the two do not share their resampler; RandomCrop
does share that module's half-pixel linear resize taps.

All images and pixels are resampled at once (one gather per neighbour). The coordinates are
computed on the backend from the per-image matrices, so only a few numbers per image cross
to the device. The image values go through ``polykeras.ops``, so a warp after a trainable
layer is differentiated like any other op.

The random numbers come from the backend's generator, or, for a layer given ``seed=``, from
the layer's own NumPy generator (as Dropout's masks), so the same seed gives the same
augmentation on every backend.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend as _backend
from .. import ops
from ..config import floatx, normalize_data_format
from ..engine.base_layer import Layer
from ..preprocessing.image import _linear_taps
from .core import check_seed, uniform_noise

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("nearest", "bilinear")
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


# -- the resampler -------------------------------------------------------------------------------


def _fix_index(i: Any, n: int, fill_mode: str) -> Any:
    """Integer-valued (float) indices along an axis of length ``n`` brought inside [0, n)
    as ``fill_mode`` extends the image ("constant" clamps: those neighbours are replaced by
    the fill value afterwards)."""
    if fill_mode == "wrap":
        return ops.mod(i, float(n))
    if fill_mode == "reflect":  # period 2n, the second half mirrored: -1 -> 0, n -> n - 1
        m = ops.mod(i, float(2 * n))
        return ops.where(ops.greater_equal(m, float(n)), ops.subtract(float(2 * n - 1), m), m)
    return ops.clip(i, 0.0, float(n - 1))


def _inside(i: Any, n: int) -> Any:
    return ops.logical_and(ops.greater_equal(i, 0.0), ops.less(i, float(n)))


def affine_transform(
    images: Any,
    transform: Any,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
    data_format: str | None = None,
) -> Any:
    """Images (a batch, rank 4, or one image, rank 3) warped by ``transform``: one row of
    eight numbers per image (or one row for all), with Keras 3's meaning (see the module's
    docstring). Keras 3's defaults: bilinear, constant fill with 0."""
    owner = "affine_transform"
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"{owner}: interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}"
        )
    if fill_mode not in FILL_MODES:
        raise ValueError(f"{owner}: fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    data_format = normalize_data_format(data_format)
    x = ops.convert_to_tensor(images) if isinstance(images, np.ndarray) else images
    rank = len(ops.shape(x))
    if rank not in (3, 4):
        raise ValueError(
            f"{owner}: expected one image (rank 3) or a batch of images (rank 4), got shape "
            f"{tuple(ops.shape(x))}"
        )
    if rank == 3:
        x = ops.expand_dims(x, 0)
    if data_format == "channels_first":
        x = ops.transpose(x, (0, 2, 3, 1))
    if not ops.dtype_name(x).startswith("float"):
        x = ops.cast(x, floatx())
    n, h, w, c = (int(d) for d in ops.shape(x))
    if hasattr(transform, "shape") and not isinstance(transform, np.ndarray):
        transform = ops.convert_to_numpy(transform)  # a backend tensor: a few numbers
    m = np.asarray(transform, dtype=np.float64)
    if m.ndim == 1:
        m = m[None]
    if m.ndim != 2 or m.shape[1] != 8 or m.shape[0] not in (1, n):
        raise ValueError(
            f"{owner}: transform must have shape (8,) or ({n}, 8) for {n} image(s), got "
            f"{np.asarray(transform).shape}"
        )
    if np.any(m[:, 6:] != 0):
        raise NotImplementedError(
            f"{owner}: projective transforms (c0, c1 not 0) are not implemented by polykeras"
        )
    m = np.broadcast_to(m, (n, 8))
    out = _warp(x, m, interpolation, fill_mode, float(fill_value))
    if data_format == "channels_first":
        out = ops.transpose(out, (0, 3, 1, 2))
    return ops.squeeze(out, 0) if rank == 3 else out


def _warp(x: Any, m: np.ndarray, interpolation: str, fill_mode: str, fill_value: float) -> Any:
    """Images (N, H, W, C) resampled through per-image transforms ``m`` (N, 8)."""
    B = _backend.current()
    n, h, w, c = (int(d) for d in ops.shape(x))
    dt = ops.dtype_name(x)

    def column(k: int) -> Any:  # one coefficient per image, broadcast over (H, W)
        return B.asarray(m[:, k].astype(dt).reshape(n, 1, 1))

    rows = B.asarray(np.arange(h, dtype=dt).reshape(1, h, 1))
    cols = B.asarray(np.arange(w, dtype=dt).reshape(1, 1, w))
    # input row and column of every output pixel, (N, H, W)
    in_r = ops.add(ops.add(ops.multiply(rows, column(4)), ops.multiply(cols, column(3))), column(5))
    in_c = ops.add(ops.add(ops.multiply(rows, column(1)), ops.multiply(cols, column(0))), column(2))
    if interpolation == "nearest":
        taps_r = [(ops.round(in_r), None)]
        taps_c = [(ops.round(in_c), None)]
    else:
        r0, c0 = ops.floor(in_r), ops.floor(in_c)
        wr, wc = ops.subtract(in_r, r0), ops.subtract(in_c, c0)
        taps_r = [(r0, ops.subtract(1.0, wr)), (ops.add(r0, 1.0), wr)]
        taps_c = [(c0, ops.subtract(1.0, wc)), (ops.add(c0, 1.0), wc)]
    flat = ops.reshape(x, (n * h * w, c))
    base = B.asarray((np.arange(n, dtype=np.int64) * (h * w)).reshape(n, 1, 1))
    constant = fill_mode == "constant"
    # each tap's index along its axis, brought inside the image once: rows as offsets of
    # whole rows of the flattened batch, columns as offsets within a row
    rows_in = [
        (
            ops.add(base, ops.multiply(ops.cast(_fix_index(ri, h, fill_mode), "int64"), w)),
            _inside(ri, h) if constant else None,
            rw,
        )
        for ri, rw in taps_r
    ]
    cols_in = [
        (ops.cast(_fix_index(ci, w, fill_mode), "int64"), _inside(ci, w) if constant else None, cw)
        for ci, cw in taps_c
    ]
    out = None
    for row_at, row_ok, rw in rows_in:
        for col_at, col_ok, cw in cols_in:
            # the gather primitive (ops.take without its host range check: the indices
            # are inside the image by construction); differentiable in the images
            value = ops._take_rows(flat, ops.add(row_at, col_at))
            if row_ok is not None and col_ok is not None:
                keep = ops.expand_dims(ops.logical_and(row_ok, col_ok), -1)
                value = ops.where(keep, value, ops.cast(fill_value, dt))
            if rw is not None and cw is not None:
                value = ops.multiply(value, ops.expand_dims(ops.multiply(rw, cw), -1))
            out = value if out is None else ops.add(out, value)
    return out


def _resize_bilinear(x: Any, height: int, width: int) -> Any:
    """Images (N, H, W, C) resized to (height, width): half-pixel centres, no antialiasing
    (Keras' ``image.resize`` default)."""
    h, w = (int(d) for d in ops.shape(x)[1:3])
    if (h, w) == (height, width):
        return x
    i0, i1, t = _linear_taps(h, height)
    dt = ops.dtype_name(x)
    B = _backend.current()
    top = ops.take(x, i0, axis=1)
    x = ops.add(
        top,
        ops.multiply(
            ops.subtract(ops.take(x, i1, axis=1), top), B.asarray(t.astype(dt).reshape(1, -1, 1, 1))
        ),
    )
    j0, j1, u = _linear_taps(w, width)
    left = ops.take(x, j0, axis=2)
    return ops.add(
        left,
        ops.multiply(
            ops.subtract(ops.take(x, j1, axis=2), left),
            B.asarray(u.astype(dt).reshape(1, 1, -1, 1)),
        ),
    )


# -- argument checks -----------------------------------------------------------------------------


def _number(value: Any, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}")
    return float(value)


def _factor_range(
    value: Any, name: str, owner: str, low: float, high: float, low_open: bool = False
) -> tuple[float, float]:
    """A factor given as a number f (the range (-f, f)) or a pair (lower, upper), each end
    inside [low, high] (``low_open``: (low, high])."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    expected = f"a number or a pair (lower, upper) of numbers in {interval}"
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")
        lower, upper = sorted(_number(v, name, owner) for v in value)
    else:
        try:
            f = abs(_number(value, name, owner))
        except ValueError:
            raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}") from None
        lower, upper = -f, f
    for v in (lower, upper):
        if v > high or v < low or (low_open and v == low):
            raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")
    return lower, upper


def _choice(value: Any, name: str, allowed: tuple, owner: str) -> str:
    if value not in allowed:
        raise ValueError(
            f"{owner}: {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}"
        )
    return str(value)


def _as_config_value(value: Any) -> Any:
    """A factor as it was given (tuples as lists, the way JSON keeps them)."""
    return list(value) if isinstance(value, tuple) else value


# -- the layers ----------------------------------------------------------------------------------


class _ImageAugmentation(Layer):
    """Shared parts: ``seed``, ``data_format``, one image or a batch, active only while
    training."""

    _config_data_format = True
    # ``layer(images)`` on its own augments, as Keras' (its call's training defaults to
    # True); inside a model, predict and evaluate do not, and fit does
    _trains_when_called_alone = True

    def __init__(self, seed: Any = None, data_format: Any = None, **kwargs: Any):
        cls = type(self).__name__
        if kwargs.get("bounding_box_format") is not None:
            raise NotImplementedError(
                f"{cls}: bounding_box_format is not implemented by polykeras (its layers "
                "transform images only, not bounding boxes, labels or masks)"
            )
        kwargs.pop("bounding_box_format", None)
        super().__init__(**kwargs)
        self.owner = f"{cls} {self.name}"
        self.seed = check_seed(seed, self.owner)
        self.data_format = normalize_data_format(data_format)

    def check_input(self, input_shape: Any) -> None:
        if isinstance(input_shape, (list, dict)) or len(input_shape) not in (3, 4):
            got = input_shape if not isinstance(input_shape, list) else list(input_shape)
            raise ValueError(
                f"layer {self.name} ({type(self).__name__}) expects images: a batch (rank 4) "
                f"or one image (rank 3) in {self.data_format}, got shape {got}"
            )

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def _uniform(self, shape: tuple, low: float, high: float) -> np.ndarray:
        """Uniform draws in [low, high) as a float64 NumPy array (a few per image)."""
        u = uniform_noise(self, shape, "float32")
        u = np.asarray(_backend.current().to_numpy(u), dtype=np.float64)
        return low + u * (high - low)

    def _hw_axes(self) -> tuple[int, int]:
        return (1, 2) if self.data_format == "channels_last" else (2, 3)

    def call(self, inputs: Any, training: Any = None) -> Any:
        if not training:
            return self._inference(inputs)
        x = inputs
        rank = len(ops.shape(x))
        if rank == 3:
            x = ops.expand_dims(x, 0)
        if not ops.dtype_name(x).startswith("float"):
            x = ops.cast(x, floatx())
        out = self._augment(x)
        return ops.squeeze(out, 0) if rank == 3 else out

    def _inference(self, inputs: Any) -> Any:
        return inputs

    def _augment(self, x: Any) -> Any:  # x: a batch (rank 4), floating point
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


class RandomFlip(_ImageAugmentation):
    """Flips each image, with probability 1/2, left to right ("horizontal"), upside down
    ("vertical") or both at once ("horizontal_and_vertical", Keras' default: one draw per
    image decides both flips)."""

    def __init__(
        self,
        mode: str = "horizontal_and_vertical",
        seed: Any = None,
        data_format: Any = None,
        **kwargs: Any,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.mode = _choice(mode, "mode", FLIP_MODES, self.owner)

    def _augment(self, x: Any) -> Any:
        n = int(ops.shape(x)[0])
        flips = self._uniform((n, 1, 1, 1), 0.0, 1.0) <= 0.5
        flip = _backend.current().asarray(flips)
        row_axis, col_axis = self._hw_axes()
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            x = ops.where(flip, ops.flip(x, axis=col_axis), x)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            x = ops.where(flip, ops.flip(x, axis=row_axis), x)
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed, "mode": self.mode}


class _Warp(_ImageAugmentation):
    """Layers that warp images through :func:`affine_transform`."""

    def _set_warp(self, fill_mode: Any, interpolation: Any, fill_value: Any) -> None:
        self.fill_mode = _choice(fill_mode, "fill_mode", FILL_MODES, self.owner)
        self.interpolation = _choice(interpolation, "interpolation", INTERPOLATIONS, self.owner)
        self.fill_value = _number(fill_value, "fill_value", self.owner)

    def _size(self, x: Any) -> tuple[int, int, int]:
        shape = ops.shape(x)
        row_axis, col_axis = self._hw_axes()
        return int(shape[0]), int(shape[row_axis]), int(shape[col_axis])

    def _apply(self, x: Any, matrices: np.ndarray) -> Any:
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 3, 1))
        out = _warp(x, matrices, self.interpolation, self.fill_mode, self.fill_value)
        if self.data_format == "channels_first":
            out = ops.transpose(out, (0, 3, 1, 2))
        return out

    def _warp_config(self) -> dict[str, Any]:
        return {
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "interpolation": self.interpolation,
            "seed": self.seed,
        }


def rotation_matrices(angles_deg: np.ndarray, height: int, width: int) -> np.ndarray:
    """Keras 3's transforms (N, 8) rotating images by ``angles_deg`` (counter-clockwise for
    positive angles) about their centre; float32, computed in Keras' order so that pixels
    on a rounding tie fall the same way."""
    f32 = np.float32
    t = np.asarray(angles_deg, dtype=f32) * f32(math.pi / 180.0)
    cos, sin = np.cos(t), np.sin(t)
    cx, cy = f32(0.5) * f32(width - 1), f32(0.5) * f32(height - 1)
    a0, a1, b0, b1 = cos, -sin, sin, cos
    a2 = (cx - cx * a0) - cy * a1
    b2 = (cy - cx * b0) - cy * b1
    zero = np.zeros_like(t)
    return np.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=1)


class RandomRotation(_Warp):
    """Rotates each image by a random angle: ``factor`` is a fraction of a full turn, a
    number f (angles in [-f, f] * 360 degrees) or a pair (lower, upper); positive angles
    turn counter-clockwise."""

    def __init__(
        self,
        factor: Any,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: Any = None,
        fill_value: float = 0.0,
        data_format: Any = None,
        **kwargs: Any,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = _factor_range(factor, "factor", self.owner, -1.0, 1.0)
        self._set_warp(fill_mode, interpolation, fill_value)

    def _augment(self, x: Any) -> Any:
        n, h, w = self._size(x)
        low, high = self.factor
        angles = self._uniform((n,), low * 360.0, high * 360.0)
        return self._apply(x, rotation_matrices(angles, h, w))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": list(self.factor), **self._warp_config()}


class RandomZoom(_Warp):
    """Zooms each image by a random factor: ``height_factor`` (and ``width_factor``) a number
    f, for zooms in [1 - f, 1 + f], or a pair (lower, upper) for [1 + lower, 1 + upper], each
    in (-1, 1]; above 1 zooms out, below 1 zooms in. Without ``width_factor`` the image
    keeps its aspect ratio (one zoom for both axes)."""

    def __init__(
        self,
        height_factor: Any,
        width_factor: Any = None,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: Any = None,
        fill_value: float = 0.0,
        data_format: Any = None,
        **kwargs: Any,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        o = self.owner
        self.height_factor = _as_config_value(height_factor)
        self.height_range = _factor_range(height_factor, "height_factor", o, -1.0, 1.0, True)
        self.width_factor = _as_config_value(width_factor)
        self.width_range = (
            None
            if width_factor is None
            else _factor_range(width_factor, "width_factor", o, -1.0, 1.0, True)
        )
        self._set_warp(fill_mode, interpolation, fill_value)

    def _augment(self, x: Any) -> Any:
        n, h, w = self._size(x)
        lo, hi = self.height_range
        zy = self._uniform((n,), 1.0 + lo, 1.0 + hi)
        if self.width_range is None:
            zx = zy
        else:
            lo, hi = self.width_range
            zx = self._uniform((n,), 1.0 + lo, 1.0 + hi)
        return self._apply(x, zoom_matrices(zx, zy, h, w))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height_factor": self.height_factor,
            "width_factor": self.width_factor,
            **self._warp_config(),
        }


def zoom_matrices(zx: np.ndarray, zy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Keras 3's transforms (N, 8) zooming about the centre (factors above 1 zoom out)."""
    zx, zy = np.asarray(zx, dtype=np.float32), np.asarray(zy, dtype=np.float32)
    zero = np.zeros_like(zx)
    x_off = np.float32((width - 1) / 2.0) * (np.float32(1.0) - zx)
    y_off = np.float32((height - 1) / 2.0) * (np.float32(1.0) - zy)
    return np.stack([zx, zero, x_off, zero, zy, y_off, zero, zero], axis=1)


def translation_matrices(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Keras 3's transforms (N, 8) moving the image content by (dx, dy) pixels (right,
    down)."""
    dx, dy = np.asarray(dx, dtype=np.float32), np.asarray(dy, dtype=np.float32)
    one, zero = np.ones_like(dx), np.zeros_like(dx)
    return np.stack([one, zero, -dx, zero, one, -dy, zero, zero], axis=1)


class RandomTranslation(_Warp):
    """Moves each image by a random fraction of its size: ``height_factor`` and
    ``width_factor`` each a number f (shifts in [-f, f] times the height or width) or a pair
    (lower, upper), in [-1, 1]; positive values move the content down and right."""

    def __init__(
        self,
        height_factor: Any,
        width_factor: Any,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: Any = None,
        fill_value: float = 0.0,
        data_format: Any = None,
        **kwargs: Any,
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        o = self.owner
        self.height_factor = _as_config_value(height_factor)
        self.height_range = _factor_range(height_factor, "height_factor", o, -1.0, 1.0)
        self.width_factor = _as_config_value(width_factor)
        self.width_range = _factor_range(width_factor, "width_factor", o, -1.0, 1.0)
        self._set_warp(fill_mode, interpolation, fill_value)

    def _augment(self, x: Any) -> Any:
        n, h, w = self._size(x)
        dy = self._uniform((n,), *self.height_range) * h
        dx = self._uniform((n,), *self.width_range) * w
        return self._apply(x, translation_matrices(dx, dy))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height_factor": self.height_factor,
            "width_factor": self.width_factor,
            **self._warp_config(),
        }


def _value_range(value: Any, owner: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(
            f"{owner}: value_range must be a pair (low, high) of numbers, got {value!r}"
        )
    low, high = sorted(_number(v, "value_range", owner) for v in value)
    return [low, high]


class RandomContrast(_ImageAugmentation):
    """Scales each image's deviation from its mean (per channel) by a random factor in
    [1 - lower, 1 + upper] (``factor``: a number f for lower = upper = f, or a pair, in [0,
    1]) and clips the result to ``value_range``."""

    def __init__(self, factor: Any, value_range: Any = (0, 255), seed: Any = None, **kwargs: Any):
        super().__init__(seed=seed, data_format=kwargs.pop("data_format", None), **kwargs)
        o = self.owner
        expected = "a number or a pair (lower, upper) of numbers in [0, 1]"
        if isinstance(factor, (list, tuple)):
            if len(factor) != 2:
                raise ValueError(f"{o}: factor must be {expected}, got {factor!r}")
            lower, upper = sorted(_number(v, "factor", o) for v in factor)
        else:
            lower = upper = _number(factor, "factor", o)
        if not (0.0 <= lower <= 1.0 and 0.0 <= upper <= 1.0):
            raise ValueError(f"{o}: factor must be {expected}, got {factor!r}")
        self.factor = (lower, upper)
        self.value_range = _value_range(value_range, o)

    def _augment(self, x: Any) -> Any:
        n = int(ops.shape(x)[0])
        low, high = self.factor
        f = self._uniform((n, 1, 1, 1), 1.0 - low, 1.0 + high)
        factor = _backend.current().asarray(f.astype(ops.dtype_name(x)))
        mean = ops.mean(x, axis=self._hw_axes(), keepdims=True)
        out = ops.add(ops.multiply(ops.subtract(x, mean), factor), mean)
        return ops.clip(out, self.value_range[0], self.value_range[1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "value_range": list(self.value_range),
            "seed": self.seed,
        }


class RandomBrightness(_ImageAugmentation):
    """Adds to each image a random delta, ``factor`` times the width of ``value_range``
    (``factor``: a number f for [-f, f], or a pair (lower, upper), in [-1, 1]), and clips the
    result to ``value_range``."""

    def __init__(self, factor: Any, value_range: Any = (0, 255), seed: Any = None, **kwargs: Any):
        super().__init__(seed=seed, data_format=kwargs.pop("data_format", None), **kwargs)
        self.factor = _factor_range(factor, "factor", self.owner, -1.0, 1.0)
        self.value_range = _value_range(value_range, self.owner)

    def _augment(self, x: Any) -> Any:
        n = int(ops.shape(x)[0])
        low, high = self.value_range
        delta = self._uniform((n, 1, 1, 1), *self.factor) * (high - low)
        delta_b = _backend.current().asarray(delta.astype(ops.dtype_name(x)))
        return ops.clip(ops.add(x, delta_b), low, high)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "value_range": list(self.value_range),
            "seed": self.seed,
        }


class RandomCrop(_ImageAugmentation):
    """Crops a random (height, width) window, the same for every image of a batch, while
    training. At inference, and while training on images not larger than the target in
    both dimensions, it resizes a centred window instead (bilinear), so the output is
    always (height, width)."""

    def __init__(
        self, height: Any, width: Any, seed: Any = None, data_format: Any = None, **kwargs: Any
    ):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        for name, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not hasattr(v, "__index__") or int(v) < 1:
                raise ValueError(f"{self.owner}: {name} must be a positive int, got {v!r}")
        self.height, self.width = int(height), int(width)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = list(input_shape)
        row_axis, col_axis = self._hw_axes()
        if len(shape) == 3:
            row_axis, col_axis = row_axis - 1, col_axis - 1
        shape[row_axis], shape[col_axis] = self.height, self.width
        return tuple(shape)

    def _window(self, x: Any, top: int, left: int, h: int, w: int) -> Any:
        """The window of (h, w) pixels at (top, left) (clipped to the image), resized to
        (height, width)."""
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 2, 3, 1))
        n, ih, iw, c = (int(d) for d in ops.shape(x))
        h, w = min(h, ih - top), min(w, iw - left)
        x = ops.slice(x, (0, top, left, 0), (n, h, w, c))
        x = _resize_bilinear(x, self.height, self.width)
        if self.data_format == "channels_first":
            x = ops.transpose(x, (0, 3, 1, 2))
        return x

    def _centre(self, ih: int, iw: int) -> tuple[int, int, int, int]:
        """The largest centred window with the target's aspect ratio (Keras' rule)."""
        ch = max(min(ih, int(float(iw * self.height) / self.width)), 1)
        cw = max(min(iw, int(float(ih * self.width) / self.height)), 1)
        return int(float(ih - ch) / 2), int(float(iw - cw) / 2), ch, cw

    def _augment(self, x: Any) -> Any:
        row_axis, col_axis = self._hw_axes()
        ih, iw = int(ops.shape(x)[row_axis]), int(ops.shape(x)[col_axis])
        if ih > self.height and iw > self.width:
            top = int(self._uniform((), 0.0, float(ih - self.height + 1)))
            left = int(self._uniform((), 0.0, float(iw - self.width + 1)))
            return self._window(x, top, left, self.height, self.width)
        # too small to crop at random: Keras takes the target's size from the centred
        # window's corner (clipped to the image) and resizes it
        top, left, _, _ = self._centre(ih, iw)
        return self._window(x, top, left, self.height, self.width)

    def _inference(self, inputs: Any) -> Any:
        x = inputs
        rank = len(ops.shape(x))
        if rank == 3:
            x = ops.expand_dims(x, 0)
        if not ops.dtype_name(x).startswith("float"):
            x = ops.cast(x, floatx())
        row_axis, col_axis = self._hw_axes()
        ih, iw = int(ops.shape(x)[row_axis]), int(ops.shape(x)[col_axis])
        out = self._window(x, *self._centre(ih, iw))
        return ops.squeeze(out, 0) if rank == 3 else out

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "seed": self.seed,
        }


__all__ = [
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "affine_transform",
]
