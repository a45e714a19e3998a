"""CIFAR's batch files: Python pickles of a dict holding ``data`` (N x 3072 uint8, the red,
green and blue planes of each 32x32 image) and the labels.  Read with
:class:`~._readers.SafeUnpickler`, so a batch file cannot run code."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..saving.errors import FileFormatError
from ._readers import safe_unpickle


def load_batch(fpath: Any, label_key: str = "labels") -> tuple[np.ndarray, list[int]]:
    """``(data, labels)`` of one batch file: data uint8 of shape (N, 3, 32, 32), labels a
    list of N ints (``label_key``: ``"labels"``, ``"fine_labels"`` or
    ``"coarse_labels"``)."""
    fpath = os.fspath(fpath)
    with open(fpath, "rb") as f:
        batch = safe_unpickle(f, fpath, encoding="bytes")
    if not isinstance(batch, dict):
        raise FileFormatError(f"{fpath}: expected a pickled dict, got {type(batch).__name__}")
    batch = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or label_key not in batch:
        raise FileFormatError(
            f"{fpath}: expected the keys 'data' and {label_key!r}, found {sorted(map(str, batch))}"
        )
    data, labels = batch["data"], batch[label_key]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise FileFormatError(
            f"{fpath}: 'data' must be an array of shape (N, 3072), got "
            f"{getattr(data, 'shape', type(data).__name__)}"
        )
    labels = [int(v) for v in labels]
    if len(labels) != len(data):
        raise FileFormatError(f"{fpath}: {len(data)} images but {len(labels)} labels")
    return data.reshape(data.shape[0], 3, 32, 32), labels


def fetch(name: str, origin: str, file_hash: str) -> str:
    """The folder of the unpacked archive ``<name>.tar.gz``: a copy Keras 3 unpacked (its
    archive ``~/.keras/datasets/<name>-target_archive`` matching ``file_hash``, the folder
    ``<name>-target/<name>`` beside it) is read where it lies; otherwise ``get_file`` with
    ``untar=True`` finds or downloads Keras 2's ``<name>.tar.gz``."""
    from ..utils_data import get_file, keras_cache_dir, validate_file

    kdir = os.path.join(keras_cache_dir(), "datasets")
    archive = os.path.join(kdir, f"{name}-target_archive")
    folder = os.path.join(kdir, f"{name}-target", name)
    if os.path.isfile(archive) and os.path.isdir(folder) and validate_file(archive, file_hash):
        return folder
    return get_file(name, origin=origin, untar=True, file_hash=file_hash)
