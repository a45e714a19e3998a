"""Keras 3's directory and splitting helpers of ``keras.utils``, served by
:mod:`polykeras.utils` on first use: ``image_dataset_from_directory``,
``text_dataset_from_directory`` and ``split_dataset``.

Keras returns ``tf.data.Dataset`` objects; polykeras has no TensorFlow, so the directory
helpers return a :class:`DirectoryDataset`, a :class:`~polykeras.utils.Sequence` of NumPy
batches that ``fit`` / ``evaluate`` / ``predict`` take and that iterates like Keras' dataset
(``(inputs, labels)`` per batch, inputs alone when there are no labels).  Files are found,
labelled, shuffled and split exactly as Keras does, so a seed selects the same files for
"training" and "validation"; Keras' extra per-epoch buffer shuffle of tf.data is replaced by
a per-epoch permutation of the files (same files per epoch, a different order)."""

from __future__ import annotations

import math
import os
import random
from typing import Any

import numpy as np

from . import config
from .utils import Sequence, as_int
from .utils_extra import batch_of

#: the image file extensions Keras indexes (lower-cased names are matched)
IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TEXT_FORMATS = (".txt",)

_LABEL_MODES = ("int", "categorical", "binary", None)
_COLOR_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
#: interpolations Keras accepts; only the first two are implemented here
_KERAS_INTERPOLATIONS = (
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)


# -- finding the files ----------------------------------------------------------------------------
def _walk_files(directory: str, follow_links: bool, formats: tuple) -> list[str]:
    """Paths relative to ``directory`` of the files with an allowed extension: folders in
    sorted order of their path, files sorted by name inside each (Keras' order)."""
    found = []
    for root, _dirs, files in sorted(
        os.walk(directory, followlinks=follow_links), key=lambda t: t[0]
    ):
        for name in sorted(files):
            if name.lower().endswith(formats):
                found.append(os.path.relpath(os.path.join(root, name), directory))
    return found


def _index_directory(
    owner: str,
    directory: Any,
    labels: Any,
    formats: tuple,
    class_names: Any,
    shuffle: bool,
    seed: int,
    follow_links: bool,
    verbose: bool,
) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    """(file paths, integer labels or None, class names or None), in Keras' order: class
    folders in ``class_names`` order (sorted when inferred), files walked in sorted order,
    then the paths and the labels each shuffled by ``RandomState(seed)`` when ``shuffle``."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"{owner}: directory {directory!r} does not exist or is not a folder")
    if labels == "inferred":
        subdirs = [
            d
            for d in sorted(os.listdir(directory))
            if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")
        ]
        if class_names is not None:
            if not set(class_names).issubset(subdirs):
                raise ValueError(
                    f"{owner}: the class_names passed do not match the names of the "
                    f"sub-folders of {directory!r}: expected {subdirs} (or a subset of it), "
                    f"got class_names={list(class_names)}"
                )
            subdirs = list(class_names)
    else:
        subdirs = [""]
    file_paths: list[str] = []
    label_list: list[int] = []
    for index, sub in enumerate(subdirs):
        folder = os.path.join(directory, sub) if sub else directory
        for rel in _walk_files(folder, follow_links, formats):
            file_paths.append(os.path.join(folder, rel))
            label_list.append(index)
    names: list[str] | None
    out_labels: np.ndarray | None
    if labels == "inferred":
        names = subdirs
        out_labels = np.asarray(label_list, dtype="int32")
    elif labels is None:
        names, out_labels = None, None
    else:
        if len(labels) != len(file_paths):
            raise ValueError(
                f"{owner}: expected as many labels as files in {directory!r}: got "
                f"{len(labels)} labels for {len(file_paths)} files"
            )
        names = [str(v) for v in sorted(set(labels))]
        out_labels = np.asarray(labels)
    if verbose:
        if names is None:
            print(f"Found {len(file_paths)} files.")
        else:
            print(f"Found {len(file_paths)} files belonging to {len(names)} classes.")
    if shuffle:
        np.random.RandomState(seed).shuffle(file_paths)
        if out_labels is not None:
            np.random.RandomState(seed).shuffle(out_labels)
    return file_paths, out_labels, names


def _check_common(
    owner: str,
    labels: Any,
    label_mode: Any,
    class_names: Any,
    batch_size: Any,
    validation_split: Any,
    subset: Any,
    shuffle: bool,
    seed: Any,
    format: Any,
) -> None:
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError(
                f"{owner}: labels must be 'inferred' (from the sub-folder names), None (no "
                f"labels) or a list/tuple of integer labels, one per file; got {labels!r}"
            )
        if class_names:
            raise ValueError(
                f"{owner}: class_names can only be passed with labels='inferred'; got "
                f"explicit labels and class_names={class_names!r}"
            )
    elif labels is None and class_names is not None:
        raise ValueError(f"{owner}: class_names cannot be passed with labels=None (no labels)")
    if label_mode not in _LABEL_MODES:
        raise ValueError(
            f'{owner}: label_mode must be "int", "categorical", "binary" or None; got '
            f"{label_mode!r}"
        )
    if batch_size is not None:
        as_int(batch_size, "batch_size", owner, minimum=1, allow_float=False)
    if format != "tf":
        raise ValueError(
            f"{owner}: format={format!r} is not implemented by polykeras (only the default "
            "'tf', which here gives a polykeras DirectoryDataset)"
        )
    if validation_split is not None and not isinstance(validation_split, (int, float)):
        raise ValueError(
            f"{owner}: validation_split must be a float in (0, 1), got {validation_split!r}"
        )
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(
            f"{owner}: validation_split must be between 0 and 1, got {validation_split}"
        )
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError(
            f"{owner}: subset and validation_split go together: set both or neither (got "
            f"validation_split={validation_split!r}, subset={subset!r})"
        )
    if subset not in ("training", "validation", "both", None):
        raise ValueError(
            f'{owner}: subset must be "training", "validation" or "both"; got {subset!r}'
        )
    if validation_split and shuffle and seed is None:
        raise ValueError(
            f"{owner}: with validation_split and shuffle=True, pass a seed, so that the "
            "training and validation subsets do not overlap"
        )


def _split(paths: list[str], labels: Any, validation_split: Any, subset: str) -> tuple:
    """The last ``int(validation_split * n)`` files are the validation subset (Keras' rule)."""
    if not validation_split:
        return paths, labels
    n_val = int(validation_split * len(paths))
    if subset == "training":
        print(f"Using {len(paths) - n_val} files for training.")
        return paths[: len(paths) - n_val], None if labels is None else labels[: len(paths) - n_val]
    print(f"Using {n_val} files for validation.")
    start = len(paths) - n_val
    return paths[start:], None if labels is None else labels[start:]


def _encode_labels(labels: np.ndarray, label_mode: str, num_classes: int) -> np.ndarray:
    if label_mode == "int":
        return labels.astype("int32")
    if label_mode == "binary":
        return labels.astype("float32").reshape(-1, 1)
    out = np.zeros((len(labels), num_classes), dtype="float32")
    out[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
    return out


# -- the dataset ----------------------------------------------------------------------------------
#: tf.data.Dataset methods that programs chain and that a DirectoryDataset does not offer
_TF_DATA_METHODS = (
    "map",
    "filter",
    "shuffle",
    "repeat",
    "batch",
    "unbatch",
    "rebatch",
    "skip",
    "shard",
    "zip",
    "concatenate",
    "interleave",
    "flat_map",
    "apply",
    "window",
    "padded_batch",
    "as_numpy_iterator",
    "cardinality",
    "element_spec",
)


class DirectoryDataset(Sequence):
    """Batches of files loaded on demand: ``(inputs, labels)`` or ``inputs`` alone.

    ``class_names`` and ``file_paths`` are Keras' attributes.  ``take(n)`` gives the first
    ``n`` batches; ``prefetch(...)`` and ``cache()`` return the dataset itself (batches are
    read when asked for); other ``tf.data.Dataset`` methods are refused by name.  When
    ``shuffle`` is set, each epoch (each iteration) visits the files in a new order."""

    def __init__(
        self,
        file_paths: list[str],
        labels: np.ndarray | None,
        class_names: list[str] | None,
        batch_size: int | None,
        load: Any,
        shuffle: bool,
        seed: int,
        limit: int | None = None,
    ):
        self.file_paths = list(file_paths)
        self.class_names = class_names
        self.batch_size = batch_size
        self._labels = labels
        self._load = load
        self._shuffle = shuffle
        self._rng = np.random.RandomState(seed)
        self._limit = limit
        self._order = np.arange(len(self.file_paths))
        if shuffle:
            self._order = self._rng.permutation(len(self.file_paths))

    def __len__(self) -> int:
        n = len(self.file_paths)
        batches = n if self.batch_size is None else math.ceil(n / self.batch_size)
        return batches if self._limit is None else min(batches, self._limit)

    def __getitem__(self, index: int) -> Any:
        rows = batch_of(self._order, index, len(self), self.batch_size)
        x = self._load([self.file_paths[i] for i in rows])
        y = None if self._labels is None else self._labels[rows]
        if self.batch_size is None:
            x = x[0]
            y = None if y is None else y[0]
        return x if y is None else (x, y)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        if self._shuffle:
            self._order = self._rng.permutation(len(self.file_paths))

    def take(self, count: int) -> DirectoryDataset:
        """The first ``count`` batches (all of them for ``count=-1``), as tf.data's ``take``."""
        count = as_int(count, "count", "DirectoryDataset.take", minimum=-1, allow_float=False)
        view = object.__new__(DirectoryDataset)
        view.__dict__.update(self.__dict__)
        if count >= 0:
            view._limit = count if self._limit is None else min(count, self._limit)
        return view

    def prefetch(self, buffer_size: Any = None) -> DirectoryDataset:
        """The dataset itself: batches are read when they are asked for."""
        return self

    def cache(self, filename: str = "") -> DirectoryDataset:
        """The dataset itself (the files are read again each epoch)."""
        if filename:
            raise ValueError(
                "DirectoryDataset.cache: caching to a file is a tf.data feature polykeras does "
                f"not implement (got filename={filename!r}); call cache() without one"
            )
        return self

    def __getattr__(self, name: str) -> Any:
        if name in _TF_DATA_METHODS:
            raise AttributeError(
                f"DirectoryDataset.{name}: this is a tf.data.Dataset method; polykeras returns "
                "a DirectoryDataset (a Sequence of NumPy batches) without TensorFlow, which "
                "offers take, prefetch, cache, class_names and file_paths"
            )
        raise AttributeError(f"'DirectoryDataset' object has no attribute {name!r}")


def _build(
    owner: str,
    directory: Any,
    labels: Any,
    label_mode: Any,
    class_names: Any,
    batch_size: Any,
    shuffle: bool,
    seed: Any,
    validation_split: Any,
    subset: Any,
    follow_links: bool,
    verbose: bool,
    formats: tuple,
    load: Any,
    what: str,
) -> Any:
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    if seed is None:
        seed = int(np.random.randint(1_000_000))
    paths, ints, names = _index_directory(
        owner, directory, labels, formats, class_names, shuffle, seed, follow_links, verbose
    )
    if label_mode == "binary" and len(names or ()) != 2:
        raise ValueError(
            f'{owner}: label_mode="binary" needs exactly 2 classes; got class_names={names}'
        )
    encoded = None
    if ints is not None and label_mode in ("categorical", "binary"):
        n_classes = len(names or ())
        bad = [v for v in np.unique(ints).tolist() if not 0 <= v < n_classes]
        if bad:
            raise ValueError(
                f'{owner}: label_mode="{label_mode}" needs labels in [0, {n_classes}) (one per '
                f"class); got {bad}"
            )
    if ints is not None and label_mode is not None:
        encoded = _encode_labels(ints, label_mode, len(names or ()))
    batch_size = None if batch_size is None else int(batch_size)

    def make(subset_name: str | None, shuffled: bool) -> DirectoryDataset:
        p, y = _split(paths, encoded, validation_split, subset_name or "")
        if not p:
            kind = {"training": "training ", "validation": "validation "}.get(subset_name or "", "")
            raise ValueError(
                f"{owner}: no {kind}{what} found in directory {os.fspath(directory)!r}; "
                f"allowed formats: {formats}"
            )
        return DirectoryDataset(p, y, names, batch_size, load, shuffled, seed)

    if subset == "both":
        return [make("training", shuffle), make("validation", False)]
    return make(subset, shuffle)


# -- images ---------------------------------------------------------------------------------------
def _resize_axis_taps(n_in: int, n_out: int, interpolation: str) -> tuple:
    if interpolation == "nearest":
        # half-pixel centres, as TensorFlow 2's resize
        idx = np.minimum(np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)), n_in - 1)
        i0 = idx.astype(np.int64)
        return i0, i0, np.zeros(n_out)
    from .preprocessing.image import _linear_taps

    return _linear_taps(n_in, n_out)


def _resize(img: np.ndarray, height: int, width: int, interpolation: str) -> np.ndarray:
    """(h, w, c) float image resized with half-pixel centres and no antialiasing."""
    r0, r1, tr = _resize_axis_taps(img.shape[0], height, interpolation)
    c0, c1, tc = _resize_axis_taps(img.shape[1], width, interpolation)
    rows = img[r0] + (img[r1] - img[r0]) * tr[:, None, None]
    return rows[:, c0] + (rows[:, c1] - rows[:, c0]) * tc[None, :, None]


def _image_loader(
    size: tuple[int, int], color_mode: str, interpolation: str, fit: str | None, data_format: str
) -> Any:
    from .preprocessing.image import _pil, load_img

    _pil("image_dataset_from_directory")
    height, width = size
    floatx = config.floatx()

    def load(paths: list[str]) -> np.ndarray:
        out = []
        for path in paths:
            img = np.asarray(load_img(path, color_mode=color_mode), dtype=np.float64)
            if img.ndim == 2:
                img = img[:, :, None]
            h, w = img.shape[:2]
            if fit == "crop":
                # the largest centred window with the target's aspect ratio (smart_resize)
                ch = max(min(h, int(float(w * height) / width)), 1)
                cw = max(min(w, int(float(h * width) / height)), 1)
                top, left = int(float(h - ch) / 2), int(float(w - cw) / 2)
                img = _resize(img[top : top + ch, left : left + cw], height, width, interpolation)
            elif fit == "pad":
                # TensorFlow's resize_with_pad: shrink (or grow) to fit inside the target,
                # keeping the aspect ratio, then pad with zeros, the floor of half the
                # slack on the top / left
                ratio = max(w / width, h / height)
                rh, rw = max(int(math.floor(h / ratio)), 1), max(int(math.floor(w / ratio)), 1)
                top = max(0, int(math.floor((height - h / ratio) / 2)))
                left = max(0, int(math.floor((width - w / ratio) / 2)))
                inner = _resize(img, rh, rw, interpolation)
                img = np.zeros((height, width, img.shape[2]), dtype=np.float64)
                img[top : top + rh, left : left + rw] = inner
            else:
                img = _resize(img, height, width, interpolation)
            if data_format == "channels_first":
                img = np.moveaxis(img, 2, 0)
            out.append(img)
        return np.stack(out).astype(floatx)

    return load


def image_dataset_from_directory(
    directory: Any,
    labels: Any = "inferred",
    label_mode: Any = "int",
    class_names: Any = None,
    color_mode: str = "rgb",
    batch_size: int | None = 32,
    image_size: Any = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    data_format: str | None = None,
    format: str = "tf",
    verbose: bool = True,
) -> Any:
    """A :class:`DirectoryDataset` of the images (.bmp .gif .jpeg .jpg .png) under
    ``directory``, one class per sub-folder when ``labels="inferred"``: batches of float
    images ``(batch, height, width, channels)`` and labels (int32 ``(batch,)`` for "int",
    float32 one-hot for "categorical", float32 ``(batch, 1)`` for "binary").  With
    ``subset="both"`` a [training, validation] pair.  Resizing is TensorFlow's (half-pixel
    centres, no antialiasing; "bilinear" or "nearest"), after a centred crop to the target's
    aspect ratio (``crop_to_aspect_ratio``) or before zero padding to it
    (``pad_to_aspect_ratio``, as ``tf.image.resize_with_pad``).  Needs Pillow (the ``image``
    extra)."""
    owner = "image_dataset_from_directory"
    _check_common(
        owner,
        labels,
        label_mode,
        class_names,
        batch_size,
        validation_split,
        subset,
        shuffle,
        seed,
        format,
    )
    if color_mode not in _COLOR_CHANNELS:
        raise ValueError(
            f'{owner}: color_mode must be "rgb", "rgba" or "grayscale"; got {color_mode!r}'
        )
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ValueError(f"{owner}: image_size must be (height, width), got {image_size!r}")
    size = (
        as_int(image_size[0], "image_size[0]", owner, minimum=1, allow_float=False),
        as_int(image_size[1], "image_size[1]", owner, minimum=1, allow_float=False),
    )
    interpolation = str(interpolation).lower()
    if interpolation not in _KERAS_INTERPOLATIONS:
        raise ValueError(
            f"{owner}: interpolation must be one of {_KERAS_INTERPOLATIONS}; got {interpolation!r}"
        )
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(
            f"{owner}: interpolation={interpolation!r} is not implemented by polykeras; "
            "use 'bilinear' or 'nearest'"
        )
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(
            f"{owner}: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True"
        )
    try:
        data_format = config.normalize_data_format(data_format)
    except config.ConfigError as exc:
        raise ValueError(f"{owner}: {exc}") from None
    fit = "crop" if crop_to_aspect_ratio else "pad" if pad_to_aspect_ratio else None
    load = _image_loader(size, color_mode, interpolation, fit, data_format)
    return _build(
        owner,
        directory,
        labels,
        label_mode,
        class_names,
        batch_size,
        shuffle,
        seed,
        validation_split,
        subset,
        follow_links,
        verbose,
        IMAGE_FORMATS,
        load,
        "images",
    )


# -- text -----------------------------------------------------------------------------------------
def text_dataset_from_directory(
    directory: Any,
    labels: Any = "inferred",
    label_mode: Any = "int",
    class_names: Any = None,
    batch_size: int | None = 32,
    max_length: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    follow_links: bool = False,
    format: str = "tf",
    verbose: bool = True,
) -> Any:
    """A :class:`DirectoryDataset` of the .txt files under ``directory``: batches of texts
    (a NumPy object array of ``str``, decoded as UTF-8; tf.data would give bytes) and labels
    as in :func:`image_dataset_from_directory`.  ``max_length`` keeps the first
    ``max_length`` bytes of each file, as Keras."""
    owner = "text_dataset_from_directory"
    _check_common(
        owner,
        labels,
        label_mode,
        class_names,
        batch_size,
        validation_split,
        subset,
        shuffle,
        seed,
        format,
    )
    if max_length is not None:
        max_length = as_int(max_length, "max_length", owner, minimum=0, allow_float=False)

    def load(paths: list[str]) -> np.ndarray:
        out = np.empty(len(paths), dtype=object)
        for i, path in enumerate(paths):
            with open(path, "rb") as f:
                data = f.read()
            if max_length is not None:
                data = data[:max_length]
            out[i] = data.decode("utf-8", errors="replace")
        return out

    return _build(
        owner,
        directory,
        labels,
        label_mode,
        class_names,
        batch_size,
        shuffle,
        seed,
        validation_split,
        subset,
        follow_links,
        verbose,
        TEXT_FORMATS,
        load,
        "text files",
    )


# -- split_dataset --------------------------------------------------------------------------------
def _split_sizes(left: Any, right: Any, total: int) -> tuple[int, int]:
    """Keras' rules: an int is a count (0 < n < total), a float a fraction (0 < f < 1,
    rounded), None the rest."""
    for name, v in (("left_size", left), ("right_size", right)):
        if v is not None and type(v) not in (int, float):
            raise TypeError(f"split_dataset: {name} must be an int, a float or None; got {v!r}")
    if left is None and right is None:
        raise ValueError("split_dataset: at least one of left_size and right_size must be given")
    if left == 0 and right == 0:
        raise ValueError("split_dataset: left_size and right_size are both zero")
    for name, v in (("left_size", left), ("right_size", right)):
        if (type(v) is int and not 0 < v < total) or (type(v) is float and not 0 < v < 1):
            raise ValueError(
                f"split_dataset: {name} must be a positive int smaller than {total} or a float "
                f"in (0, 1); got {name}={v}"
            )
    if type(left) is float and type(right) is float and left + right > 1:
        raise ValueError("split_dataset: left_size + right_size is greater than 1")
    lsize = round(left * total) if type(left) is float else left
    rsize = round(right * total) if type(right) is float else right
    if lsize is None:
        lsize = total - rsize
    elif rsize is None:
        rsize = total - lsize
    if lsize + rsize > total:
        raise ValueError(
            f"split_dataset: left_size + right_size ({lsize + rsize}) is greater than the "
            f"number of samples ({total})"
        )
    for n, side in ((lsize, "left"), (rsize, "right")):
        if n == 0:
            raise ValueError(
                f"split_dataset: with {total} samples, left_size={lsize} and right_size={rsize} "
                f"leave the {side} split empty"
            )
    return int(lsize), int(rsize)


def split_dataset(
    dataset: Any,
    left_size: Any = None,
    right_size: Any = None,
    shuffle: bool = False,
    seed: int | None = None,
) -> tuple[Any, Any]:
    """``dataset`` (a NumPy array, a list, or a tuple/list of arrays with the same number of
    samples) cut into (left, right) along the first axis: left the first ``left_size``
    samples, right the last ``right_size``, after shuffling the samples with Python's
    ``random`` seeded by ``seed`` when ``shuffle`` (Keras' order).  Gives arrays (or tuples
    / lists of arrays) where Keras gives tf.data datasets of samples."""
    if (
        isinstance(dataset, (tuple, list))
        and dataset
        and all(isinstance(a, np.ndarray) for a in dataset)
    ):
        parts = list(dataset)
        n = len(parts[0])
        if any(len(a) != n for a in parts):
            raise ValueError(
                "split_dataset: the arrays of the tuple/list must have the same number of "
                f"samples; got lengths {[len(a) for a in parts]}"
            )
    elif isinstance(dataset, (np.ndarray, list, tuple)):
        parts = [np.asarray(dataset)]
        if parts[0].ndim == 0:
            raise ValueError("split_dataset: dataset must have a first (samples) axis")
        n = len(parts[0])
    else:
        raise TypeError(
            "split_dataset: dataset must be a NumPy array, a list, or a tuple/list of NumPy "
            f"arrays (tf.data and torch datasets are not supported); got {type(dataset).__name__}"
        )
    lsize, rsize = _split_sizes(left_size, right_size, n)
    order = list(range(n))
    if shuffle:
        if seed is None:
            seed = random.randint(0, 1_000_000)
        random.Random(seed).shuffle(order)
    left_rows = np.asarray(order[:lsize], dtype=np.int64)
    right_rows = np.asarray(order[n - rsize :], dtype=np.int64)
    lefts = [a[left_rows] for a in parts]
    rights = [a[right_rows] for a in parts]
    if len(parts) == 1 and not (
        isinstance(dataset, (tuple, list)) and all(isinstance(a, np.ndarray) for a in dataset)
    ):
        return lefts[0], rights[0]
    kind = tuple if isinstance(dataset, tuple) else list
    return kind(lefts), kind(rights)
