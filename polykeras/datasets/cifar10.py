"""CIFAR-10: 50,000 training and 10,000 test colour images of 32x32, in 10 classes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..config import image_data_format
from .cifar import fetch, load_batch

ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FILE_HASH = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"


def load_data() -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """``(x_train, y_train), (x_test, y_test)``: uint8 images of shape (50000, 32, 32, 3)
    and (10000, 32, 32, 3) (channels first, (N, 3, 32, 32), when
    ``image_data_format()`` is ``"channels_first"``) and uint8 labels of shape (N, 1)."""
    path = fetch("cifar-10-batches-py", ORIGIN, FILE_HASH)
    parts = [load_batch(os.path.join(path, f"data_batch_{i}")) for i in range(1, 6)]
    x_train = np.concatenate([x for x, _ in parts]).astype("uint8", copy=False)
    y_train = np.array([v for _, labels in parts for v in labels], dtype="uint8")
    x_test, test_labels = load_batch(os.path.join(path, "test_batch"))
    y_test = np.array(test_labels, dtype="uint8")
    y_train = y_train.reshape(len(y_train), 1)
    y_test = y_test.reshape(len(y_test), 1)
    if image_data_format() == "channels_last":
        x_train = x_train.transpose(0, 2, 3, 1)
        x_test = x_test.transpose(0, 2, 3, 1)
    return (x_train, y_train), (x_test.astype(x_train.dtype, copy=False), y_test)
