"""Keras 2's ``keras.preprocessing.image``: image files, augmentation and image batches.

``load_img`` / ``img_to_array`` / ``array_to_img`` / ``save_img`` read and write files on
Pillow (the ``image`` extra: ``pip install 'polykeras[image]'``), imported only when one of
them (or a directory of files) is used. ``ImageDataGenerator`` draws random rotations,
shifts, shears, zooms, channel shifts, flips and brightness changes with Keras 2's
parameters and draws, and yields batches from arrays (``flow``), class folders
(``flow_from_directory``) or a pandas DataFrame (``flow_from_dataframe``).

The math is Keras 2's (tf.keras 2.x / Keras 3's legacy module, which resamples with
``scipy.ndimage.affine_transform``): the same transform matrix, the same boundary modes
("nearest", "constant", "reflect", "wrap" as SciPy defines them) and linear (order 1) or
nearest (order 0) interpolation, written here in NumPy. A batch is resampled at once: one
gather of the four neighbours of every output pixel of every image, no loop over pixels.

Random draws follow Keras: with ``seed=None`` they come from NumPy's global generator (so
``np.random.seed`` / ``polykeras.utils.set_random_seed`` repeats them); with a seed,
batch ``i`` of epoch ``e`` draws from its own ``RandomState(seed + e * len + i)`` (and
epoch ``e`` shuffles with ``RandomState(seed + e * len)``). That gives Keras' numbers for
the first epoch when its batches are asked for in order (Keras re-seeds the global
generator with ``seed + batches seen``; its later shuffles come from the unseeded global
generator), and the same numbers whatever thread prepares a batch and in whatever order,
without touching the global generator.
"""

from __future__ import annotations

import io
import math
import os
import pathlib
import threading
import warnings
from typing import Any

import numpy as np

from .. import config
from ..utils import Sequence

#: the file extensions read from a folder (Keras' list)
WHITE_LIST_FORMATS = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")
_FILL_MODES = ("constant", "nearest", "reflect", "wrap")
_COLOR_MODES = ("grayscale", "rgb", "rgba")


def _pil(what: str) -> Any:
    """Pillow's Image module, or an ImportError that names the extra to install."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            f"{what} needs Pillow, which is not installed: pip install 'polykeras[image]' "
            "(from a checkout: pip install -e '.[image]')"
        ) from None
    return Image


def _data_format(value: Any, owner: str) -> str:
    try:
        return config.normalize_data_format(value)
    except config.ConfigError as exc:
        raise ValueError(f"{owner}: {exc}") from None


def _floatx(dtype: Any) -> str:
    return config.floatx() if dtype is None else str(np.dtype(dtype))


# --------------------------------------------------------------------------- files


def load_img(
    path: Any,
    grayscale: bool = False,
    color_mode: str = "rgb",
    target_size: Any = None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
) -> Any:
    """An image file (a path or a file object such as ``io.BytesIO``) as a Pillow image.

    ``color_mode`` "grayscale" / "rgb" / "rgba" converts it (``grayscale=True`` is Keras 1's
    spelling of "grayscale"); ``target_size=(height, width)`` resizes it with
    ``interpolation`` (nearest, bilinear, bicubic, hamming, box, lanczos), after cropping
    the centre to the target's aspect ratio when ``keep_aspect_ratio``."""
    image = _pil("load_img")
    if grayscale:
        warnings.warn('load_img: grayscale is deprecated, use color_mode="grayscale"', stacklevel=2)
        color_mode = "grayscale"
    if color_mode not in _COLOR_MODES:
        raise ValueError(
            f'load_img: color_mode must be "grayscale", "rgb" or "rgba", got {color_mode!r}'
        )
    if isinstance(path, (io.IOBase, io.BytesIO)) or hasattr(path, "read"):
        img = image.open(path)
    elif isinstance(path, (str, bytes, pathlib.Path, os.PathLike)):
        with open(path, "rb") as f:
            img = image.open(io.BytesIO(f.read()))
    else:
        raise TypeError(
            f"load_img: path should be a path (str, bytes, pathlib.Path) or a file object "
            f"such as io.BytesIO, got {type(path).__name__}"
        )
    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode == "rgba":
        if img.mode != "RGBA":
            img = img.convert("RGBA")
    elif img.mode != "RGB":
        img = img.convert("RGB")
    if target_size is None:
        return img
    try:
        height, width = (int(v) for v in target_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"load_img: target_size must be (height, width) or None, got {target_size!r}"
        ) from None
    if img.size == (width, height):
        return img
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"load_img: invalid interpolation method {interpolation!r}; supported methods "
            f"are {', '.join(_INTERPOLATIONS)}"
        )
    resampling = getattr(image, "Resampling", image)
    resample = getattr(resampling, interpolation.upper())
    if not keep_aspect_ratio:
        return img.resize((width, height), resample)
    w, h = img.size
    crop_h = min(h, (w * height) // width)
    crop_w = min(w, (h * width) // height)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    return img.resize((width, height), resample, box=(left, top, left + crop_w, top + crop_h))


def img_to_array(img: Any, data_format: str | None = None, dtype: Any = None) -> np.ndarray:
    """A Pillow image as a float array (height, width, channels), or channels first."""
    data_format = _data_format(data_format, "img_to_array")
    x = np.asarray(img, dtype=_floatx(dtype))
    if x.ndim == 2:
        x = x[None] if data_format == "channels_first" else x[..., None]
    elif x.ndim == 3:
        if data_format == "channels_first":
            x = x.transpose(2, 0, 1)
    else:
        raise ValueError(
            f"img_to_array: unsupported image shape {x.shape}; expected (height, width) "
            "or (height, width, channels)"
        )
    return x


def array_to_img(
    x: Any, data_format: str | None = None, scale: bool = True, dtype: Any = None
) -> Any:
    """A rank-3 array (one image) as a Pillow image: 1 channel -> "L" (or "I" above 255),
    3 -> "RGB", 4 -> "RGBA". ``scale=True`` stretches the values to 0..255 first."""
    image = _pil("array_to_img")
    data_format = _data_format(data_format, "array_to_img")
    x = np.array(x, dtype=_floatx(dtype))
    if x.ndim != 3:
        raise ValueError(
            f"array_to_img: expected an image array of rank 3 (one image), got shape {x.shape}"
        )
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = _stretch_to_255(x)
    channels = x.shape[2]
    if channels == 4:
        return image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:
            return image.fromarray(x[:, :, 0].astype("int32"), "I")
        return image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(
        f"array_to_img: unsupported channel number {channels} (image shape {x.shape}); "
        "expected 1, 3 or 4"
    )


def save_img(
    path: Any,
    x: Any,
    data_format: str | None = None,
    file_format: str | None = None,
    scale: bool = True,
    **kwargs: Any,
) -> None:
    """Write one image array to a path or file object (``file_format`` from the extension
    when None; extra keywords go to Pillow's ``Image.save``)."""
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower() or None
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn(
            "save_img: JPEG has no alpha channel; the image is saved as RGB", stacklevel=2
        )
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source pixels and weights of a half-pixel-centred linear resize along one axis (as
    TensorFlow's and PyTorch's bilinear resize without antialiasing)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    lower = np.floor(src)
    i0 = np.minimum(lower.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - lower


def smart_resize(
    x: Any, size: Any, interpolation: str = "bilinear", data_format: str = "channels_last"
) -> np.ndarray:
    """Images (rank 3, or rank 4 for a batch) resized to ``size=(height, width)`` without
    distorting them: the largest centred crop with the target's aspect ratio is resized
    (bilinear, half-pixel centres, no antialiasing). Only "bilinear" is implemented; other
    interpolations are refused by name."""
    owner = "smart_resize"
    if interpolation != "bilinear":
        raise ValueError(
            f"{owner}: interpolation={interpolation!r} is not implemented by polykeras; "
            "only 'bilinear' is"
        )
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"{owner}: data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
        )
    try:
        target_h, target_w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: size must be (height, width), got {size!r}") from None
    img = np.asarray(x)
    if img.ndim not in (3, 4):
        raise ValueError(
            f"{owner}: expected an image (height, width, channels) or a batch (batch, "
            f"height, width, channels), got shape {img.shape}"
        )
    batch = img if img.ndim == 4 else img[None]
    if data_format == "channels_first":
        batch = np.moveaxis(batch, 1, 3)
    height, width = batch.shape[1], batch.shape[2]
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    top, left = int(float(height - crop_h) / 2), int(float(width - crop_w) / 2)
    crop = batch[:, top : top + crop_h, left : left + crop_w].astype(np.float64)
    r0, r1, tr = _linear_taps(crop_h, target_h)
    c0, c1, tc = _linear_taps(crop_w, target_w)
    rows = crop[:, r0] + (crop[:, r1] - crop[:, r0]) * tr[None, :, None, None]
    out = rows[:, :, c0] + (rows[:, :, c1] - rows[:, :, c0]) * tc[None, None, :, None]
    out = out.astype(config.floatx())
    if data_format == "channels_first":
        out = np.moveaxis(out, 3, 1)
    return out if img.ndim == 4 else out[0]


# --------------------------------------------------------------------------- resampling


def _stretch_to_255(x: np.ndarray) -> np.ndarray:
    x = x - np.min(x)
    top = np.max(x)
    if top != 0:
        x /= top
    x *= 255
    return x


def transform_matrix_offset_center(matrix: Any, x: Any, y: Any) -> np.ndarray:
    """``matrix`` moved to act about the centre of an ``x`` by ``y`` grid (Keras' helper)."""
    o_x = float(x) / 2 - 0.5
    o_y = float(y) / 2 - 0.5
    offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return offset @ np.asarray(matrix) @ reset


def _affine_matrix(
    theta: float, tx: float, ty: float, shear: float, zx: float, zy: float, h: int, w: int
) -> np.ndarray | None:
    """The 2x3 map from output (row, col) to input (row, col) pixel coordinates that Keras
    hands to scipy for these parameters, or None for the identity (nothing to resample).

    As in Keras, the matrix is composed as rotation @ shift @ shear @ zoom, centred with
    (h, w) in that order, then its two coordinates are swapped."""
    matrix = None
    if theta != 0:
        t = np.deg2rad(theta)
        matrix = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    if tx != 0 or ty != 0:
        shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
        matrix = shift if matrix is None else matrix @ shift
    if shear != 0:
        s = np.deg2rad(shear)
        shear_m = np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
        matrix = shear_m if matrix is None else matrix @ shear_m
    if zx != 1 or zy != 1:
        zoom = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
        matrix = zoom if matrix is None else matrix @ zoom
    if matrix is None:
        return None
    matrix = transform_matrix_offset_center(matrix, h, w)
    matrix = matrix[[1, 0]][:, [1, 0, 2]]  # Keras' x/y swap: now (row, col) coordinates
    return np.asarray(matrix[:2], dtype=np.float64)


def _map_coordinates(c: np.ndarray, n: int, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Coordinates along one axis of length ``n`` brought inside it as SciPy's ndimage does
    for ``mode``; for "constant", also the mask of coordinates outside [0, n - 1]."""
    if mode == "constant":
        return c, (c < 0) | (c > n - 1)
    if n == 1:
        return np.zeros_like(c), None
    if mode == "nearest":
        return np.clip(c, 0, n - 1), None
    if mode == "reflect":  # half-sample symmetric: d c b a | a b c d | d c b a
        period = 2.0 * n
        m = np.mod(c + 0.5, period)
        m = np.where(m >= n, period - m, m)
        return m - 0.5, None
    # "wrap" is SciPy's: period n - 1, so the first and last samples coincide
    size = n - 1
    below = c < 0
    above = c > n - 1
    out = c.copy()
    out[below] += size * (np.trunc(-c[below] / size) + 1)
    out[above] -= size * np.trunc(c[above] / size)
    return out, None


def _resample(
    images: np.ndarray, matrices: np.ndarray, fill_mode: str, cval: float, order: int
) -> np.ndarray:
    """Images (N, H, W, C) resampled through per-image 2x3 matrices (N, 2, 3): output pixel
    (r, c) of image k takes input coordinate ``matrices[k] @ (r, c, 1)``, interpolated
    linearly (order 1) or to the nearest pixel (order 0); all images and pixels at once."""
    n, h, w = images.shape[:3]
    rows = np.arange(h, dtype=np.float64)[None, :, None]
    cols = np.arange(w, dtype=np.float64)[None, None, :]
    m = matrices[:, :, :, None, None]
    # the sum in SciPy's order (offset first), so points on an edge fall the same way
    cr = (m[:, 0, 2] + rows * m[:, 0, 0]) + cols * m[:, 0, 1]
    cc = (m[:, 1, 2] + rows * m[:, 1, 0]) + cols * m[:, 1, 1]
    cr, out_r = _map_coordinates(cr, h, fill_mode)
    cc, out_c = _map_coordinates(cc, w, fill_mode)
    # one gather per neighbour from the images as rows of channels: (N*H*W, C)
    dtype = images.dtype if images.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    flat = np.ascontiguousarray(images, dtype=dtype).reshape(n * h * w, -1)
    base = (np.arange(n, dtype=np.int64) * (h * w))[:, None, None]
    if order == 0:
        ir = np.clip(np.floor(cr + 0.5).astype(np.int64), 0, h - 1)
        ic = np.clip(np.floor(cc + 0.5).astype(np.int64), 0, w - 1)
        out = np.take(flat, base + ir * w + ic, axis=0)
    else:
        fr, fc = np.floor(cr), np.floor(cc)
        tr = (cr - fr).astype(dtype)[..., None]
        tc = (cc - fc).astype(dtype)[..., None]
        ir, ic = fr.astype(np.int64), fc.astype(np.int64)
        # past an edge a neighbour is the edge itself (the other weight is 0 there, or the
        # coordinate was mapped inside [-1, n] by the fill mode)
        r0 = base + np.clip(ir, 0, h - 1) * w
        r1 = base + np.clip(ir + 1, 0, h - 1) * w
        c0, c1 = np.clip(ic, 0, w - 1), np.clip(ic + 1, 0, w - 1)
        top = np.take(flat, r0 + c0, axis=0)
        top += (np.take(flat, r0 + c1, axis=0) - top) * tc
        bottom = np.take(flat, r1 + c0, axis=0)
        bottom += (np.take(flat, r1 + c1, axis=0) - bottom) * tc
        out = top + (bottom - top) * tr
    if out_r is not None and out_c is not None:
        out[out_r | out_c] = cval
    return out.astype(images.dtype, copy=False)


def _check_axes(x: np.ndarray, row_axis: int, col_axis: int, channel_axis: int) -> None:
    if len({row_axis, col_axis, channel_axis}) != 3:
        raise ValueError(
            "apply_affine_transform: row_axis, col_axis and channel_axis must be distinct"
        )
    if {row_axis, col_axis, channel_axis} != {0, 1, 2}:
        raise ValueError(
            f"apply_affine_transform: invalid axis indices "
            f"{sorted({row_axis, col_axis, channel_axis} - {0, 1, 2})}; expected 0, 1 and 2"
        )
    if x.ndim != 3:
        raise ValueError(
            f"apply_affine_transform: expected one image with channels (a rank-3 array), "
            f"got shape {x.shape}"
        )
    if channel_axis not in (0, 2):
        raise ValueError(
            "apply_affine_transform: channels must be the first or the last axis, got "
            f"channel_axis={channel_axis}"
        )


def _check_fill(fill_mode: str, order: Any, owner: str) -> int:
    if fill_mode not in _FILL_MODES:
        raise ValueError(
            f"{owner}: fill_mode must be one of {', '.join(_FILL_MODES)}, got {fill_mode!r}"
        )
    if isinstance(order, bool) or order not in (0, 1):
        raise ValueError(
            f"{owner}: interpolation_order={order!r} is not supported by polykeras; it "
            "implements 0 (nearest pixel) and 1 (linear, Keras' default)"
        )
    return int(order)


def apply_affine_transform(
    x: Any,
    theta: float = 0,
    tx: float = 0,
    ty: float = 0,
    shear: float = 0,
    zx: float = 1,
    zy: float = 1,
    row_axis: int = 1,
    col_axis: int = 2,
    channel_axis: int = 0,
    fill_mode: str = "nearest",
    cval: float = 0.0,
    order: int = 1,
) -> np.ndarray:
    """One image (rank 3) rotated by ``theta`` degrees, shifted by ``tx``/``ty`` pixels,
    sheared by ``shear`` degrees and zoomed by ``zx``/``zy``, as Keras does."""
    x = np.asarray(x)
    _check_axes(x, row_axis, col_axis, channel_axis)
    order = _check_fill(fill_mode, order, "apply_affine_transform")
    matrix = _affine_matrix(theta, tx, ty, shear, zx, zy, x.shape[row_axis], x.shape[col_axis])
    if matrix is None:
        return x
    hwc = np.moveaxis(x, (row_axis, col_axis, channel_axis), (0, 1, 2))
    if not np.issubdtype(hwc.dtype, np.floating):
        hwc = hwc.astype(np.float64)
    out = _resample(hwc[None], matrix[None], fill_mode, cval, order)[0]
    return np.moveaxis(out, (0, 1, 2), (row_axis, col_axis, channel_axis))


def flip_axis(x: Any, axis: int) -> np.ndarray:
    return np.flip(np.asarray(x), axis)


def apply_channel_shift(x: Any, intensity: float, channel_axis: int = 0) -> np.ndarray:
    """Add ``intensity`` to every channel, clipped to the image's own min and max."""
    x = np.asarray(x)
    return np.clip(x + intensity, np.min(x), np.max(x))


def random_channel_shift(x: Any, intensity_range: float, channel_axis: int = 0) -> np.ndarray:
    intensity = np.random.uniform(-intensity_range, intensity_range)
    return apply_channel_shift(x, intensity, channel_axis=channel_axis)


def _brightness(x: np.ndarray, factors: np.ndarray, scale: bool) -> np.ndarray:
    """Pillow's ``ImageEnhance.Brightness`` as Keras applies it, on a batch (N, H, W, C)
    with one factor per image: each image becomes 8-bit (stretched to 0..255 first when
    ``scale`` or when it lies outside 0..255), is multiplied by its factor in single
    precision and truncated, and goes back to its range when it was stretched only
    because it lay outside 0..255. A fourth channel (alpha) keeps its values."""
    axes = (1, 2, 3)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(config.floatx())
    lo = np.min(x, axis=axes, keepdims=True)
    hi = np.max(x, axis=axes, keepdims=True)
    local = (lo < 0) | (hi > 255)
    stretch = local | scale
    shifted = (x - lo).astype(dtype)
    top = np.max(shifted, axis=axes, keepdims=True)
    stretched = np.where(top != 0, shifted / np.where(top != 0, top, 1), shifted) * dtype.type(255)
    pixels = np.where(stretch, stretched, x).astype(dtype)
    eight = pixels.astype(np.uint8).astype(np.float32)
    f = np.asarray(factors, dtype=np.float32).reshape(-1, 1, 1, 1)
    bright = np.trunc(np.clip(f * eight, 0, 255))
    if x.shape[-1] == 4:
        bright[..., 3] = eight[..., 3]
    out = bright.astype(dtype)
    if not scale:
        back = out / dtype.type(255) * (hi - lo) + lo
        out = np.where(local, back, out)
    return out.astype(dtype)


def apply_brightness_shift(x: Any, brightness: float, scale: bool = True) -> np.ndarray:
    """One channels-last image with its brightness multiplied by ``brightness`` through an
    8-bit image, as Keras does with Pillow (see ``_brightness``)."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(
            f"apply_brightness_shift: expected one image (rank 3), got shape {x.shape}"
        )
    return _brightness(x[None], np.array([brightness]), scale)[0]


def random_brightness(x: Any, brightness_range: Any, scale: bool = True) -> np.ndarray:
    if len(brightness_range) != 2:
        raise ValueError(
            f"random_brightness: brightness_range should be a tuple or list of two floats, "
            f"got {brightness_range!r}"
        )
    u = np.random.uniform(brightness_range[0], brightness_range[1])
    return apply_brightness_shift(x, u, scale)


def random_rotation(
    x: Any,
    rg: float,
    row_axis: int = 1,
    col_axis: int = 2,
    channel_axis: int = 0,
    fill_mode: str = "nearest",
    cval: float = 0.0,
    interpolation_order: int = 1,
) -> np.ndarray:
    theta = np.random.uniform(-rg, rg)
    return apply_affine_transform(
        x, theta=theta, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
        fill_mode=fill_mode, cval=cval, order=interpolation_order,
    )  # fmt: skip


def random_shift(
    x: Any,
    wrg: float,
    hrg: float,
    row_axis: int = 1,
    col_axis: int = 2,
    channel_axis: int = 0,
    fill_mode: str = "nearest",
    cval: float = 0.0,
    interpolation_order: int = 1,
) -> np.ndarray:
    x = np.asarray(x)
    h, w = x.shape[row_axis], x.shape[col_axis]
    tx = np.random.uniform(-hrg, hrg) * h
    ty = np.random.uniform(-wrg, wrg) * w
    return apply_affine_transform(
        x, tx=tx, ty=ty, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
        fill_mode=fill_mode, cval=cval, order=interpolation_order,
    )  # fmt: skip


def random_shear(
    x: Any,
    intensity: float,
    row_axis: int = 1,
    col_axis: int = 2,
    channel_axis: int = 0,
    fill_mode: str = "nearest",
    cval: float = 0.0,
    interpolation_order: int = 1,
) -> np.ndarray:
    shear = np.random.uniform(-intensity, intensity)
    return apply_affine_transform(
        x, shear=shear, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
        fill_mode=fill_mode, cval=cval, order=interpolation_order,
    )  # fmt: skip


def random_zoom(
    x: Any,
    zoom_range: Any,
    row_axis: int = 1,
    col_axis: int = 2,
    channel_axis: int = 0,
    fill_mode: str = "nearest",
    cval: float = 0.0,
    interpolation_order: int = 1,
) -> np.ndarray:
    if len(zoom_range) != 2:
        raise ValueError(
            f"random_zoom: zoom_range should be a tuple or list of two floats, got {zoom_range!r}"
        )
    if zoom_range[0] == 1 and zoom_range[1] == 1:
        zx, zy = 1.0, 1.0
    else:
        zx, zy = np.random.uniform(zoom_range[0], zoom_range[1], 2)
    return apply_affine_transform(
        x, zx=zx, zy=zy, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
        fill_mode=fill_mode, cval=cval, order=interpolation_order,
    )  # fmt: skip


# --------------------------------------------------------------------------- iterators


def _global_rng() -> Any:
    return np.random  # NumPy's global generator, as Keras draws from it


class Iterator(Sequence):
    """Batches of ``n`` samples by index (a ``keras.utils.Sequence``, so ``fit`` takes it),
    and an endless iterator as in Keras 2 (``next(it)``, ``for x, y in it: ... break``).

    ``on_epoch_end`` reshuffles when ``shuffle``. Subclasses define
    ``_get_batches_of_transformed_samples(index_array, rng)``."""

    white_list_formats = WHITE_LIST_FORMATS

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int | None):
        from ..utils import as_int

        owner = type(self).__name__
        self.n = int(n)
        self.batch_size = as_int(batch_size, "batch_size", owner)
        self.seed = None if seed is None else as_int(seed, "seed", owner, minimum=0)
        self.shuffle = bool(shuffle)
        self.batch_index = 0
        self.total_batches_seen = 0
        self.lock = threading.Lock()
        self.index_array: np.ndarray | None = None
        self._epoch = 0

    def _set_index_array(self, rng: Any) -> None:
        self.index_array = rng.permutation(self.n) if self.shuffle else np.arange(self.n)

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __getitem__(self, idx: int) -> Any:
        length = len(self)
        if not 0 <= idx < length:
            raise ValueError(
                f"{type(self).__name__}: asked for batch {idx}, but the Sequence has "
                f"length {length}"
            )
        with self.lock:
            if self.seed is None:
                rng = _global_rng()
                if self.index_array is None:
                    self._set_index_array(rng)
            else:
                first = self.seed + self._epoch * length
                if self.index_array is None:
                    self._set_index_array(np.random.RandomState(first % 2**32))
                rng = np.random.RandomState((first + idx) % 2**32)
                if self.shuffle and idx == 0:
                    rng.permutation(self.n)  # batch 0 draws after the shuffle, as in Keras
            assert self.index_array is not None
            index_array = self.index_array[self.batch_size * idx : self.batch_size * (idx + 1)]
        return self._get_batches_of_transformed_samples(index_array, rng)

    def on_epoch_end(self) -> None:
        with self.lock:
            self._epoch += 1
            if self.seed is None:
                self._set_index_array(_global_rng())
            else:
                self.index_array = None  # drawn again from the next epoch's seed

    def reset(self) -> None:
        self.batch_index = 0

    def __iter__(self) -> Iterator:
        return self

    def __next__(self) -> Any:
        with self.lock:
            if self.seed is None:
                rng = _global_rng()
            else:
                rng = np.random.RandomState((self.seed + self.total_batches_seen) % 2**32)
            if self.batch_index == 0 or self.index_array is None:
                self._set_index_array(rng)
            assert self.index_array is not None
            current = (self.batch_index * self.batch_size) % self.n if self.n else 0
            if self.n > current + self.batch_size:
                self.batch_index += 1
            else:
                self.batch_index = 0
            self.total_batches_seen += 1
            index_array = self.index_array[current : current + self.batch_size]
        return self._get_batches_of_transformed_samples(index_array, rng)

    next = __next__

    def _get_batches_of_transformed_samples(self, index_array: np.ndarray, rng: Any) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must define _get_batches_of_transformed_samples"
        )

    def _save_batch(self, batch_x: np.ndarray, index_array: np.ndarray, rng: Any) -> None:
        save_to_dir = getattr(self, "save_to_dir", None)
        if not save_to_dir:
            return
        for i, j in enumerate(index_array):
            img = array_to_img(batch_x[i], self.data_format, scale=True)  # type: ignore[attr-defined]
            name = f"{self.save_prefix}_{j}_{rng.randint(10**4)}.{self.save_format}"  # type: ignore[attr-defined]
            img.save(os.path.join(save_to_dir, name))


class NumpyArrayIterator(Iterator):
    """Batches of (augmented) images from a rank-4 array, with labels and sample weights."""

    def __init__(
        self,
        x: Any,
        y: Any,
        image_data_generator: ImageDataGenerator,
        batch_size: int = 32,
        shuffle: bool = False,
        sample_weight: Any = None,
        seed: int | None = None,
        data_format: str | None = None,
        save_to_dir: str | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        subset: str | None = None,
        ignore_class_split: bool = False,
        dtype: Any = None,
    ):
        owner = "NumpyArrayIterator"
        self.dtype = _floatx(dtype)
        data_format = _data_format(data_format, owner)
        x_misc: list[np.ndarray] = []
        if isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise ValueError(
                    f"{owner}: x given as a tuple/list must be (images, other inputs), got "
                    f"{len(x)} elements"
                )
            misc = x[1] if isinstance(x[1], list) else [x[1]]
            x_misc = [np.asarray(m) for m in misc]
            x = x[0]
            for m in x_misc:
                if len(m) != len(x):
                    raise ValueError(
                        f"{owner}: all the arrays in x should have the same length; found "
                        f"len(x[0]) = {len(x)} and an array of length {len(m)}"
                    )
        if y is not None and len(x) != len(y):
            raise ValueError(
                f"{owner}: x (images) and y (labels) should have the same length; found "
                f"x.shape = {np.shape(x)}, y.shape = {np.shape(y)}"
            )
        if sample_weight is not None and len(x) != len(sample_weight):
            raise ValueError(
                f"{owner}: x (images) and sample_weight should have the same length; found "
                f"x.shape = {np.shape(x)}, sample_weight.shape = {np.shape(sample_weight)}"
            )
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(
                    f'{owner}: invalid subset name {subset!r}; expected "training" or "validation"'
                )
            split = int(len(x) * image_data_generator._validation_split)
            if (
                y is not None
                and not ignore_class_split
                and not np.array_equal(
                    np.unique(np.asarray(y)[:split]), np.unique(np.asarray(y)[split:])
                )
            ):
                raise ValueError(
                    f"{owner}: the training and validation subsets have different classes "
                    "after the split; if the arrays are sorted by label, shuffle them "
                    "first (or pass ignore_class_split=True)"
                )
            part = slice(None, split) if subset == "validation" else slice(split, None)
            x = x[part]
            x_misc = [m[part] for m in x_misc]
            if y is not None:
                y = y[part]
            if sample_weight is not None:
                sample_weight = sample_weight[part]
        self.x = np.asarray(x, dtype=self.dtype)
        if self.x.ndim != 4:
            raise ValueError(
                f"{owner}: the images should be an array of rank 4 (samples, rows, cols, "
                f"channels) or channels first; got shape {self.x.shape}"
            )
        channel_axis = 3 if data_format == "channels_last" else 1
        if self.x.shape[channel_axis] not in (1, 3, 4):
            warnings.warn(
                f'{owner} is set to the data format "{data_format}" (channels on axis '
                f"{channel_axis}), i.e. 1, 3 or 4 channels on axis {channel_axis}, but the "
                f"array has shape {self.x.shape} ({self.x.shape[channel_axis]} channels)",
                stacklevel=2,
            )
        self.x_misc = x_misc
        self.y = None if y is None else np.asarray(y)
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        self.image_data_generator = image_data_generator
        self.data_format = data_format
        self.save_to_dir = save_to_dir
        self.save_prefix = save_prefix
        self.save_format = save_format
        super().__init__(self.x.shape[0], batch_size, shuffle, seed)

    def _get_batches_of_transformed_samples(self, index_array: np.ndarray, rng: Any) -> Any:
        batch_x = self.image_data_generator._augment_batch(self.x[index_array], rng)
        self._save_batch(batch_x, index_array, rng)
        misc = [m[index_array] for m in self.x_misc]
        inputs: Any = [batch_x] + misc if misc else batch_x
        if self.y is None:
            return inputs
        if self.sample_weight is None:
            return inputs, self.y[index_array]
        return inputs, self.y[index_array], self.sample_weight[index_array]


def _inside(path: str, root: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _image_files(directory: str, follow_links: bool, root: str) -> list[str]:
    """Image files under ``directory`` (Keras' extensions, sorted by folder then name),
    relative to it. Without ``follow_links`` nothing that resolves outside ``root`` is
    listed; with it, each real folder is walked once (a link loop ends)."""
    seen: set[str] = set()
    folders: list[tuple[str, list[str]]] = []
    for folder, subfolders, files in os.walk(directory, followlinks=follow_links):
        seen.add(os.path.realpath(folder))
        keep = []
        for name in subfolders:
            path = os.path.join(folder, name)
            real = os.path.realpath(path)
            if real in seen or (not follow_links and not _inside(path, root)):
                continue
            seen.add(real)
            keep.append(name)
        subfolders[:] = keep  # os.walk descends only into these
        folders.append((folder, files))
    found: list[str] = []
    for folder, files in sorted(folders, key=lambda entry: entry[0]):
        for name in sorted(files):
            if not name.lower().endswith(WHITE_LIST_FORMATS):
                continue
            path = os.path.join(folder, name)
            if not follow_links and not _inside(path, root):
                continue
            if name.lower().endswith(".tiff"):
                warnings.warn(
                    '".tiff" files with several bands may come out distorted: check them',
                    stacklevel=3,
                )
            found.append(os.path.relpath(path, directory))
    return found


class _FilesMixin:
    """What DirectoryIterator and DataFrameIterator share: reading files into batches."""

    image_data_generator: Any
    data_format: str
    dtype: str
    class_mode: Any
    classes: Any
    class_indices: dict

    def _set_processing(
        self,
        owner: str,
        image_data_generator: Any,
        target_size: Any,
        color_mode: str,
        data_format: Any,
        save_to_dir: Any,
        save_prefix: str,
        save_format: str,
        subset: Any,
        interpolation: str,
        keep_aspect_ratio: bool,
    ) -> None:
        self.image_data_generator = image_data_generator
        try:
            self.target_size = tuple(int(v) for v in target_size)
        except (TypeError, ValueError):
            raise ValueError(
                f"{owner}: target_size must be (height, width), got {target_size!r}"
            ) from None
        if len(self.target_size) != 2:
            raise ValueError(f"{owner}: target_size must be (height, width), got {target_size!r}")
        if color_mode not in _COLOR_MODES:
            raise ValueError(
                f'{owner}: invalid color_mode {color_mode!r}; expected "rgb", "rgba" or "grayscale"'
            )
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"{owner}: invalid interpolation {interpolation!r}; supported methods are "
                f"{', '.join(_INTERPOLATIONS)}"
            )
        self.color_mode = color_mode
        self.data_format = _data_format(data_format, owner)
        channels = {"rgba": 4, "rgb": 3, "grayscale": 1}[color_mode]
        if self.data_format == "channels_last":
            self.image_shape = self.target_size + (channels,)
        else:
            self.image_shape = (channels,) + self.target_size
        self.save_to_dir = save_to_dir
        self.save_prefix = save_prefix
        self.save_format = save_format
        self.interpolation = interpolation
        self.keep_aspect_ratio = bool(keep_aspect_ratio)
        self.split: tuple[float, float] | None = None
        if subset is not None:
            fraction = image_data_generator._validation_split if image_data_generator else 0.0
            if subset == "validation":
                self.split = (0.0, fraction)
            elif subset == "training":
                self.split = (fraction, 1.0)
            else:
                raise ValueError(
                    f'{owner}: invalid subset name {subset!r}; expected "training" or "validation"'
                )
        self.subset = subset

    @property
    def filepaths(self) -> list[str]:
        return self._filepaths  # type: ignore[attr-defined]

    @property
    def labels(self) -> Any:
        return self.classes

    @property
    def sample_weight(self) -> Any:
        return None

    def _get_batches_of_transformed_samples(self, index_array: np.ndarray, rng: Any) -> Any:
        paths = self.filepaths
        batch_x = np.zeros((len(index_array),) + self.image_shape, dtype=self.dtype)
        for i, j in enumerate(index_array):
            img = load_img(
                paths[j],
                color_mode=self.color_mode,
                target_size=self.target_size,
                interpolation=self.interpolation,
                keep_aspect_ratio=self.keep_aspect_ratio,
            )
            batch_x[i] = img_to_array(img, data_format=self.data_format, dtype=self.dtype)
            if hasattr(img, "close"):
                img.close()
        if self.image_data_generator:
            batch_x = self.image_data_generator._augment_batch(batch_x, rng)
        self._save_batch(batch_x, index_array, rng)  # type: ignore[attr-defined]
        mode = self.class_mode
        if mode == "input":
            batch_y: Any = batch_x.copy()
        elif mode in ("binary", "sparse"):
            batch_y = np.asarray(self.classes, dtype=self.dtype)[index_array]
        elif mode == "categorical":
            batch_y = np.zeros((len(batch_x), len(self.class_indices)), dtype=self.dtype)
            for i, j in enumerate(index_array):
                batch_y[i, self.classes[j]] = 1.0  # one index, or a list (multi-label)
        elif mode == "multi_output":
            batch_y = [output[index_array] for output in self.labels]
        elif mode == "raw":
            batch_y = self.labels[index_array]
        else:
            return batch_x
        if self.sample_weight is None:
            return batch_x, batch_y
        return batch_x, batch_y, self.sample_weight[index_array]


class DirectoryIterator(_FilesMixin, Iterator):
    """Batches of images read from class subfolders of ``directory`` (one class per folder,
    classes sorted by name unless ``classes`` names them)."""

    allowed_class_modes = ("categorical", "binary", "sparse", "input", None)

    def __init__(
        self,
        directory: Any,
        image_data_generator: Any,
        target_size: Any = (256, 256),
        color_mode: str = "rgb",
        classes: Any = None,
        class_mode: Any = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        data_format: str | None = None,
        save_to_dir: Any = None,
        save_prefix: str = "",
        save_format: str = "png",
        follow_links: bool = False,
        subset: Any = None,
        interpolation: str = "nearest",
        keep_aspect_ratio: bool = False,
        dtype: Any = None,
    ):
        owner = "flow_from_directory"
        self._set_processing(
            owner, image_data_generator, target_size, color_mode, data_format, save_to_dir,
            save_prefix, save_format, subset, interpolation, keep_aspect_ratio,
        )  # fmt: skip
        if class_mode not in self.allowed_class_modes:
            raise ValueError(
                f"{owner}: invalid class_mode {class_mode!r}; expected one of "
                "'categorical', 'binary', 'sparse', 'input' or None"
            )
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise ValueError(f"{owner}: {directory!r} is not a directory")
        self.directory = directory
        self.class_mode = class_mode
        self.dtype = _floatx(dtype)
        root = os.path.realpath(directory)
        if not classes:
            classes = [
                d
                for d in sorted(os.listdir(directory))
                if os.path.isdir(os.path.join(directory, d))
                and (follow_links or _inside(os.path.join(directory, d), root))
            ]
        else:
            classes = list(classes)
            for name in classes:
                folder = os.path.join(directory, name)
                if not os.path.isdir(folder):
                    raise ValueError(f"{owner}: class folder {folder!r} does not exist")
                if not follow_links and not _inside(folder, root):
                    raise ValueError(
                        f"{owner}: class folder {folder!r} leads outside {directory!r}; "
                        "pass follow_links=True to read it"
                    )
        self.num_classes = len(classes)
        self.class_indices = {name: i for i, name in enumerate(classes)}
        self.filenames: list[str] = []
        labels: list[int] = []
        for name in classes:
            folder = os.path.join(directory, name)
            files = _image_files(folder, follow_links, root)
            if self.split is not None:
                start, stop = int(self.split[0] * len(files)), int(self.split[1] * len(files))
                files = files[start:stop]
            self.filenames += [os.path.join(name, f) for f in files]
            labels += [self.class_indices[name]] * len(files)
        self.samples = len(self.filenames)
        self.classes = np.asarray(labels, dtype="int32")
        print(f"Found {self.samples} images belonging to {self.num_classes} classes.")
        self._filepaths = [os.path.join(directory, f) for f in self.filenames]
        super().__init__(self.samples, batch_size, shuffle, seed)


class DataFrameIterator(_FilesMixin, Iterator):
    """Batches of images named in a pandas DataFrame column, with labels from others."""

    allowed_class_modes = ("binary", "categorical", "input", "multi_output", "raw", "sparse", None)

    def __init__(
        self,
        dataframe: Any,
        directory: Any = None,
        image_data_generator: Any = None,
        x_col: str = "filename",
        y_col: Any = "class",
        weight_col: Any = None,
        target_size: Any = (256, 256),
        color_mode: str = "rgb",
        classes: Any = None,
        class_mode: Any = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        data_format: str = "channels_last",
        save_to_dir: Any = None,
        save_prefix: str = "",
        save_format: str = "png",
        subset: Any = None,
        interpolation: str = "nearest",
        keep_aspect_ratio: bool = False,
        dtype: Any = "float32",
        validate_filenames: bool = True,
    ):
        owner = "flow_from_dataframe"
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise ImportError(
                f"{owner} needs pandas, which is not installed: pip install "
                "'polykeras[dataframe]' (from a checkout: pip install -e '.[dataframe]')"
            ) from None
        self._set_processing(
            owner, image_data_generator, target_size, color_mode, data_format, save_to_dir,
            save_prefix, save_format, subset, interpolation, keep_aspect_ratio,
        )  # fmt: skip
        df = dataframe.copy()
        self.directory = "" if directory is None else os.fspath(directory)
        self.class_mode = class_mode
        self.dtype = _floatx(dtype)
        self._check(df, x_col, y_col, weight_col, classes, owner)
        if validate_filenames:
            paths = df[x_col].map(lambda name: os.path.join(self.directory, name))
            valid = paths.map(
                lambda p: p.lower().endswith(WHITE_LIST_FORMATS) and os.path.isfile(p)
            ).astype(bool)
            if (~valid).sum():
                warnings.warn(
                    f"{owner}: found {int((~valid).sum())} invalid image filename(s) in "
                    f'x_col="{x_col}"; they are left out',
                    stacklevel=3,
                )
            df = df[valid]
        with_classes = class_mode not in ("input", "multi_output", "raw", None)
        if with_classes:
            df, classes = self._filter_classes(df, y_col, classes)
            self.class_indices = {name: i for i, name in enumerate(classes)}
        if self.split is not None:
            start, stop = int(self.split[0] * len(df)), int(self.split[1] * len(df))
            df = df.iloc[start:stop, :]
        if with_classes:
            self.classes = [
                [self.class_indices[v] for v in label]
                if isinstance(label, (list, tuple))
                else self.class_indices[label]
                for label in df[y_col]
            ]
        self.filenames = df[x_col].tolist()
        self._sample_weight = df[weight_col].values if weight_col else None
        if class_mode == "multi_output":
            self._targets = [np.array(df[col].tolist()) for col in y_col]
        if class_mode == "raw":
            self._targets = df[y_col].values
        self.samples = len(self.filenames)
        checked = "validated" if validate_filenames else "non-validated"
        if with_classes:
            print(
                f"Found {self.samples} {checked} image filenames belonging to "
                f"{len(self.class_indices)} classes."
            )
        else:
            print(f"Found {self.samples} {checked} image filenames.")
        self._filepaths = [os.path.join(self.directory, f) for f in self.filenames]
        super().__init__(self.samples, batch_size, shuffle, seed)

    def _check(self, df: Any, x_col: str, y_col: Any, weight_col: Any, classes: Any, owner: str):
        mode = self.class_mode
        if mode not in self.allowed_class_modes:
            raise ValueError(
                f"{owner}: invalid class_mode {mode!r}; expected one of 'binary', "
                "'categorical', 'input', 'multi_output', 'raw', 'sparse' or None"
            )
        if mode == "multi_output" and not isinstance(y_col, list):
            raise TypeError(
                f'{owner}: with class_mode="multi_output", y_col must be a list of columns, '
                f"got {type(y_col).__name__}"
            )
        if not all(isinstance(v, str) for v in df[x_col]):
            raise TypeError(f"{owner}: all values in column x_col={x_col!r} must be strings")
        if mode in ("binary", "sparse") and not all(isinstance(v, str) for v in df[y_col]):
            raise TypeError(
                f'{owner}: with class_mode="{mode}", the values of column y_col={y_col!r} '
                "must be strings"
            )
        if mode == "binary":
            count = len(set(classes)) if classes else df[y_col].nunique()
            if count != 2:
                raise ValueError(
                    f'{owner}: class_mode="binary" needs exactly 2 classes, found {count}'
                )
        if mode == "categorical" and not all(isinstance(v, (str, list, tuple)) for v in df[y_col]):
            raise TypeError(
                f'{owner}: with class_mode="categorical", the values of column '
                f"y_col={y_col!r} must be strings, lists or tuples"
            )
        if classes and mode in ("input", "multi_output", "raw", None):
            raise ValueError(
                f"{owner}: classes are not used with class_mode={mode!r}; leave classes=None"
            )
        if weight_col and not np.issubdtype(df[weight_col].dtype, np.number):
            raise TypeError(f"{owner}: column weight_col={weight_col!r} must be numeric")

    @staticmethod
    def _filter_classes(df: Any, y_col: str, classes: Any) -> tuple[Any, list]:
        df = df.copy()
        if classes:
            keep = list(dict.fromkeys(classes))

            def only_known(labels: Any) -> Any:
                if isinstance(labels, (list, tuple)):
                    return [c for c in labels if c in keep] or None
                return labels if labels in keep else None

            df[y_col] = df[y_col].apply(only_known)
            return df.dropna(subset=[y_col]), keep
        found: set = set()
        for v in df[y_col]:
            found.update(v if isinstance(v, (list, tuple)) else [v])
        return df.dropna(subset=[y_col]), sorted(found)

    @property
    def labels(self) -> Any:
        if self.class_mode in ("multi_output", "raw"):
            return self._targets
        return self.classes

    @property
    def sample_weight(self) -> Any:
        return self._sample_weight


# --------------------------------------------------------------------------- generator


def _shift_range(value: Any, name: str) -> Any:
    """A shift range as Keras reads it: a float (fraction below 1, pixels from 1), an int
    (whole pixels in the open interval), or a 1-D list/array of allowed values."""
    if isinstance(value, bool):
        raise ValueError(f"ImageDataGenerator: {name} must be a number or a list, got {value!r}")
    if isinstance(value, (int, np.integer, float, np.floating)):
        return value
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"ImageDataGenerator: {name} must be a float, an int or a 1-D list of values, "
            f"got {value!r}"
        ) from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"ImageDataGenerator: {name} given as a list must be 1-D and non-empty, got {value!r}"
        )
    return list(value)


class ImageDataGenerator:
    """Keras 2's image augmentation and batching (see the module's documentation)."""

    def __init__(
        self,
        featurewise_center: bool = False,
        samplewise_center: bool = False,
        featurewise_std_normalization: bool = False,
        samplewise_std_normalization: bool = False,
        zca_whitening: bool = False,
        zca_epsilon: float = 1e-6,
        rotation_range: float = 0,
        width_shift_range: Any = 0.0,
        height_shift_range: Any = 0.0,
        brightness_range: Any = None,
        shear_range: float = 0.0,
        zoom_range: Any = 0.0,
        channel_shift_range: float = 0.0,
        fill_mode: str = "nearest",
        cval: float = 0.0,
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        rescale: Any = None,
        preprocessing_function: Any = None,
        data_format: str | None = None,
        validation_split: float = 0.0,
        interpolation_order: int = 1,
        dtype: Any = None,
        dim_ordering: Any = None,
    ):
        owner = "ImageDataGenerator"
        if dim_ordering is not None:  # Keras 1's name: "th" (channels first), "tf", "default"
            if data_format is not None:
                raise ValueError(f"{owner}: give data_format or Keras 1's dim_ordering, not both")
            data_format = dim_ordering
        self.featurewise_center = bool(featurewise_center)
        self.samplewise_center = bool(samplewise_center)
        self.featurewise_std_normalization = bool(featurewise_std_normalization)
        self.samplewise_std_normalization = bool(samplewise_std_normalization)
        self.zca_whitening = bool(zca_whitening)
        self.zca_epsilon = float(zca_epsilon)
        self.rotation_range = rotation_range
        self.width_shift_range = _shift_range(width_shift_range, "width_shift_range")
        self.height_shift_range = _shift_range(height_shift_range, "height_shift_range")
        self.shear_range = shear_range
        self.channel_shift_range = channel_shift_range
        self.interpolation_order = _check_fill(fill_mode, interpolation_order, owner)
        self.fill_mode = fill_mode
        self.cval = cval
        self.horizontal_flip = horizontal_flip
        self.vertical_flip = vertical_flip
        self.rescale = rescale
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise TypeError(
                f"{owner}: preprocessing_function must be callable (one image in, one out), "
                f"got {type(preprocessing_function).__name__}"
            )
        self.preprocessing_function = preprocessing_function
        self.dtype = _floatx(dtype)
        self.data_format = _data_format(data_format, owner)
        if self.data_format == "channels_first":
            self.channel_axis, self.row_axis, self.col_axis = 1, 2, 3
        else:
            self.channel_axis, self.row_axis, self.col_axis = 3, 1, 2
        if validation_split and not 0 < validation_split < 1:
            raise ValueError(
                f"{owner}: validation_split must be strictly between 0 and 1, got "
                f"{validation_split!r}"
            )
        self._validation_split = validation_split
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.zca_whitening_matrix: np.ndarray | None = None
        if isinstance(zoom_range, (float, int)) and not isinstance(zoom_range, bool):
            self.zoom_range = [1 - zoom_range, 1 + zoom_range]
        elif (
            isinstance(zoom_range, (list, tuple))
            and len(zoom_range) == 2
            and all(isinstance(v, (float, int)) for v in zoom_range)
        ):
            self.zoom_range = [zoom_range[0], zoom_range[1]]
        else:
            raise ValueError(
                f"{owner}: zoom_range should be a float or a tuple or list of two floats, "
                f"got {zoom_range!r}"
            )
        if zca_whitening:
            if not featurewise_center:
                self.featurewise_center = True
                warnings.warn(f"{owner}: zca_whitening turns featurewise_center on", stacklevel=2)
            if featurewise_std_normalization:
                self.featurewise_std_normalization = False
                warnings.warn(
                    f"{owner}: zca_whitening turns featurewise_std_normalization off",
                    stacklevel=2,
                )
        if self.featurewise_std_normalization and not self.featurewise_center:
            self.featurewise_center = True
            warnings.warn(
                f"{owner}: featurewise_std_normalization turns featurewise_center on",
                stacklevel=2,
            )
        if samplewise_std_normalization and not samplewise_center:
            self.samplewise_center = True
            warnings.warn(
                f"{owner}: samplewise_std_normalization turns samplewise_center on",
                stacklevel=2,
            )
        if brightness_range is not None and (
            not isinstance(brightness_range, (tuple, list)) or len(brightness_range) != 2
        ):
            raise ValueError(
                f"{owner}: brightness_range should be a tuple or list of two floats, got "
                f"{brightness_range!r}"
            )
        self.brightness_range = brightness_range

    @property
    def principal_components(self) -> np.ndarray | None:
        """Keras 1's name for the ZCA whitening matrix."""
        return self.zca_whitening_matrix

    # ---- batches

    def flow(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        sample_weight: Any = None,
        seed: int | None = None,
        save_to_dir: Any = None,
        save_prefix: str = "",
        save_format: str = "png",
        ignore_class_split: bool = False,
        subset: Any = None,
    ) -> NumpyArrayIterator:
        """Batches ``(x, y)`` (``x`` alone when ``y`` is None; ``(x, y, sample_weight)``
        with weights) of augmented, standardized images from arrays."""
        return NumpyArrayIterator(
            x, y, self, batch_size=batch_size, shuffle=shuffle, sample_weight=sample_weight,
            seed=seed, data_format=self.data_format, save_to_dir=save_to_dir,
            save_prefix=save_prefix, save_format=save_format, subset=subset,
            ignore_class_split=ignore_class_split, dtype=self.dtype,
        )  # fmt: skip

    def flow_from_directory(
        self,
        directory: Any,
        target_size: Any = (256, 256),
        color_mode: str = "rgb",
        classes: Any = None,
        class_mode: Any = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        save_to_dir: Any = None,
        save_prefix: str = "",
        save_format: str = "png",
        follow_links: bool = False,
        subset: Any = None,
        interpolation: str = "nearest",
        keep_aspect_ratio: bool = False,
    ) -> DirectoryIterator:
        """Batches of images from one subfolder per class of ``directory``."""
        return DirectoryIterator(
            directory, self, target_size=target_size, color_mode=color_mode,
            keep_aspect_ratio=keep_aspect_ratio, classes=classes, class_mode=class_mode,
            data_format=self.data_format, batch_size=batch_size, shuffle=shuffle, seed=seed,
            save_to_dir=save_to_dir, save_prefix=save_prefix, save_format=save_format,
            follow_links=follow_links, subset=subset, interpolation=interpolation,
            dtype=self.dtype,
        )  # fmt: skip

    def flow_from_dataframe(
        self,
        dataframe: Any,
        directory: Any = None,
        x_col: str = "filename",
        y_col: Any = "class",
        weight_col: Any = None,
        target_size: Any = (256, 256),
        color_mode: str = "rgb",
        classes: Any = None,
        class_mode: Any = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        save_to_dir: Any = None,
        save_prefix: str = "",
        save_format: str = "png",
        subset: Any = None,
        interpolation: str = "nearest",
        validate_filenames: bool = True,
        **kwargs: Any,
    ) -> DataFrameIterator:
        """Batches of images named in ``dataframe[x_col]`` (paths relative to ``directory``)
        with labels from ``y_col`` (needs pandas)."""
        for name in ("has_ext", "sort", "drop_duplicates"):
            if name in kwargs:
                raise ValueError(
                    f"flow_from_dataframe: {name}= is a removed Keras 2 setting that "
                    "polykeras does not accept (filenames must match the files exactly, "
                    "batches follow the DataFrame's order when shuffle=False, and "
                    "DataFrame.drop_duplicates drops duplicates)"
                )
        if kwargs:
            raise TypeError(f"flow_from_dataframe: unexpected keyword arguments {sorted(kwargs)}")
        if class_mode == "other":
            warnings.warn('class_mode="other" is deprecated; use class_mode="raw"', stacklevel=2)
            class_mode = "raw"
        return DataFrameIterator(
            dataframe, directory, self, x_col=x_col, y_col=y_col, weight_col=weight_col,
            target_size=target_size, color_mode=color_mode, classes=classes,
            class_mode=class_mode, data_format=self.data_format, batch_size=batch_size,
            shuffle=shuffle, seed=seed, save_to_dir=save_to_dir, save_prefix=save_prefix,
            save_format=save_format, subset=subset, interpolation=interpolation,
            validate_filenames=validate_filenames, dtype=self.dtype,
        )  # fmt: skip

    # ---- normalisation

    def standardize(self, x: Any) -> Any:
        """``x`` (an image or a batch, changed in place where it can be) through
        preprocessing_function, rescale, sample-wise then feature-wise normalisation and
        ZCA whitening, as Keras does (sample-wise statistics are over all of ``x``)."""
        if self.preprocessing_function:
            x = self.preprocessing_function(x)
        if self.rescale:
            x *= self.rescale
        if self.samplewise_center:
            x -= np.mean(x, keepdims=True)
        if self.samplewise_std_normalization:
            x /= np.std(x, keepdims=True) + 1e-6
        return self._featurewise(x)

    def _featurewise(self, x: Any) -> Any:
        not_fit = "but it has not been fit on any data: call .fit(numpy_data) first"
        if self.featurewise_center:
            if self.mean is not None:
                x -= self.mean
            else:
                warnings.warn(
                    f"ImageDataGenerator specifies featurewise_center, {not_fit}", stacklevel=3
                )
        if self.featurewise_std_normalization:
            if self.std is not None:
                x /= self.std + 1e-6
            else:
                warnings.warn(
                    f"ImageDataGenerator specifies featurewise_std_normalization, {not_fit}",
                    stacklevel=3,
                )
        if self.zca_whitening:
            if self.zca_whitening_matrix is not None:
                flat = np.reshape(x, (-1, math.prod(x.shape[-3:])))
                x = np.reshape(flat @ self.zca_whitening_matrix, x.shape)
            else:
                warnings.warn(
                    f"ImageDataGenerator specifies zca_whitening, {not_fit}", stacklevel=3
                )
        return x

    def _standardize_batch(self, batch: np.ndarray) -> np.ndarray:
        """``standardize`` of each image of a batch; the statistics are per image."""
        if self.preprocessing_function:
            batch = np.stack([np.asarray(self.preprocessing_function(im)) for im in batch])
            batch = batch.astype(self.dtype, copy=False)
        if self.rescale:
            batch *= self.rescale
        axes = tuple(range(1, batch.ndim))
        if self.samplewise_center:
            batch -= np.mean(batch, axis=axes, keepdims=True)
        if self.samplewise_std_normalization:
            batch /= np.std(batch, axis=axes, keepdims=True) + 1e-6
        return self._featurewise(batch)

    # ---- random transforms

    def _draw(self, img_shape: Any, rng: Any) -> dict[str, Any]:
        """One image's parameters, drawn in Keras' order (the flips draw even when off)."""
        row, col = self.row_axis - 1, self.col_axis - 1

        def shift(value: Any, size: int) -> float:
            if not value:  # as Keras: 0 draws nothing, a non-empty list always draws
                return 0
            if isinstance(value, list) or isinstance(value, (int, np.integer)):
                amount = rng.choice(value) * rng.choice([-1, 1])
            else:
                amount = rng.uniform(-value, value)
            if np.max(value) < 1:
                amount *= size
            return amount

        theta = rng.uniform(-self.rotation_range, self.rotation_range) if self.rotation_range else 0
        tx = shift(self.height_shift_range, img_shape[row])
        ty = shift(self.width_shift_range, img_shape[col])
        shear = rng.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0
        if self.zoom_range[0] == 1 and self.zoom_range[1] == 1:
            zx, zy = 1, 1
        else:
            zx, zy = rng.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_h = bool(rng.random() < 0.5) and bool(self.horizontal_flip)
        flip_v = bool(rng.random() < 0.5) and bool(self.vertical_flip)
        channel_shift = None
        if self.channel_shift_range != 0:
            channel_shift = rng.uniform(-self.channel_shift_range, self.channel_shift_range)
        brightness = None
        if self.brightness_range is not None:
            brightness = rng.uniform(self.brightness_range[0], self.brightness_range[1])
        return {
            "theta": theta,
            "tx": tx,
            "ty": ty,
            "shear": shear,
            "zx": zx,
            "zy": zy,
            "flip_horizontal": flip_h,
            "flip_vertical": flip_v,
            "channel_shift_intensity": channel_shift,
            "brightness": brightness,
        }

    def get_random_transform(self, img_shape: Any, seed: int | None = None) -> dict[str, Any]:
        """Random parameters for one image of ``img_shape`` (Keras' draws; ``seed`` draws
        from ``RandomState(seed)``, the numbers Keras draws after ``np.random.seed(seed)``)."""
        rng = _global_rng() if seed is None else np.random.RandomState(seed)
        return self._draw(tuple(img_shape), rng)

    def apply_transform(self, x: Any, transform_parameters: dict[str, Any]) -> np.ndarray:
        """One image (rank 3) transformed by the parameters ``get_random_transform`` gives
        (missing keys are the identity)."""
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(
                f"ImageDataGenerator.apply_transform: expected one image (rank 3), got shape "
                f"{x.shape}"
            )
        return self._apply_batch(x[None], [transform_parameters])[0]

    def random_transform(self, x: Any, seed: int | None = None) -> np.ndarray:
        """One image with a random transformation applied."""
        x = np.asarray(x)
        return self.apply_transform(x, self.get_random_transform(x.shape, seed))

    def _apply_batch(self, batch: np.ndarray, params: list[dict[str, Any]]) -> np.ndarray:
        """Each image of ``batch`` transformed by its parameters: the affine part of all of
        them in one resampling, then channel shift, flips and brightness, in Keras' order."""
        if self.data_format == "channels_first":
            batch = np.moveaxis(batch, 1, 3)
        if not np.issubdtype(batch.dtype, np.floating):
            batch = batch.astype(self.dtype)
        h, w = batch.shape[1], batch.shape[2]
        matrices: list[Any] = [
            _affine_matrix(
                p.get("theta", 0), p.get("tx", 0), p.get("ty", 0), p.get("shear", 0),
                p.get("zx", 1), p.get("zy", 1), h, w,
            )
            for p in params
        ]  # fmt: skip
        moved = [i for i, m in enumerate(matrices) if m is not None]
        out = batch.copy()
        if moved:
            stack = np.stack([matrices[i] for i in moved])
            out[moved] = _resample(
                batch[moved], stack, self.fill_mode, self.cval, self.interpolation_order
            )
        intensities = [p.get("channel_shift_intensity") for p in params]
        shift = np.array([np.nan if v is None else float(v) for v in intensities])
        shifted = ~np.isnan(shift)
        if shifted.any():
            part = out[shifted]
            lo = np.min(part, axis=(1, 2, 3), keepdims=True)
            hi = np.max(part, axis=(1, 2, 3), keepdims=True)
            step = shift[shifted].reshape(-1, 1, 1, 1)
            out[shifted] = np.clip(part + step, lo, hi)
        flip_h = np.array([bool(p.get("flip_horizontal", False)) for p in params])
        if flip_h.any():
            out[flip_h] = out[flip_h][:, :, ::-1]
        flip_v = np.array([bool(p.get("flip_vertical", False)) for p in params])
        if flip_v.any():
            out[flip_v] = out[flip_v][:, ::-1]
        bright = np.array([p.get("brightness") is not None for p in params])
        if bright.any():
            factors = np.array([p["brightness"] for p in params if p.get("brightness") is not None])
            out[bright] = _brightness(out[bright], factors, scale=False)
        if self.data_format == "channels_first":
            out = np.moveaxis(out, 3, 1)
        return out

    def _augment_batch(self, images: np.ndarray, rng: Any) -> np.ndarray:
        """A batch as the iterators yield it: parameters drawn image by image (in Keras'
        order), applied to the whole batch, then standardized."""
        images = np.asarray(images, dtype=self.dtype)
        params = [self._draw(im.shape, rng) for im in images]
        out = self._apply_batch(images, params) if len(images) else images.copy()
        return self._standardize_batch(np.ascontiguousarray(out, dtype=self.dtype))

    def fit(self, x: Any, augment: bool = False, rounds: int = 1, seed: int | None = None) -> None:
        """Feature-wise statistics (mean, std, ZCA matrix) from sample images ``x`` (rank
        4), after ``rescale`` and, with ``augment``, ``rounds`` random transforms of each."""
        from ..utils import as_int

        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 4:
            raise ValueError(
                f"ImageDataGenerator.fit: the input should have rank 4, got an array of "
                f"shape {x.shape}"
            )
        if x.shape[self.channel_axis] not in (1, 3, 4):
            warnings.warn(
                f'ImageDataGenerator.fit: expected images in the data format "{self.data_format}"'
                f" (1, 3 or 4 channels on axis {self.channel_axis}), got an array of shape "
                f"{x.shape}",
                stacklevel=2,
            )
        rounds = as_int(rounds, "rounds", "ImageDataGenerator.fit")
        rng = _global_rng() if seed is None else np.random.RandomState(seed)
        x = np.copy(x)
        if self.rescale:
            x *= self.rescale
        if augment:
            parts = []
            for _ in range(rounds):
                params = [self._draw(im.shape, rng) for im in x]
                parts.append(self._apply_batch(x, params))
            x = np.concatenate(parts).astype(self.dtype, copy=False)
        shape = [1, 1, 1]
        shape[self.channel_axis - 1] = x.shape[self.channel_axis]
        axes = (0, self.row_axis, self.col_axis)
        if self.featurewise_center:
            self.mean = np.reshape(np.mean(x, axis=axes), shape)
            x -= self.mean
        if self.featurewise_std_normalization:
            self.std = np.reshape(np.std(x, axis=axes), shape)
            x /= self.std + 1e-6
        if self.zca_whitening:
            n = len(x)
            flat = np.reshape(x, (n, -1))
            u, s, _ = np.linalg.svd(flat.T, full_matrices=False)
            s_inv = np.sqrt(n) / (s + self.zca_epsilon)
            self.zca_whitening_matrix = (u * s_inv) @ u.T


__all__ = [
    "DataFrameIterator",
    "DirectoryIterator",
    "ImageDataGenerator",
    "Iterator",
    "NumpyArrayIterator",
    "apply_affine_transform",
    "apply_brightness_shift",
    "apply_channel_shift",
    "array_to_img",
    "img_to_array",
    "load_img",
    "random_brightness",
    "random_channel_shift",
    "random_rotation",
    "random_shear",
    "random_shift",
    "random_zoom",
    "save_img",
    "smart_resize",
]
