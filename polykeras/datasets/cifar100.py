"""CIFAR-100: 50,000 training and 10,000 test colour images of 32x32, with 100 fine and
20 coarse classes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..config import image_data_format
from .cifar import fetch, load_batch

ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
FILE_HASH = "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"


def load_data(label_mode: str = "fine") -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """``(x_train, y_train), (x_test, y_test)``: uint8 images as in ``cifar10`` and int64
    labels of shape (N, 1); ``label_mode``: ``"fine"`` (100 classes) or ``"coarse"`` (20)."""
    if label_mode not in ("fine", "coarse"):
        raise ValueError(
            f'cifar100.load_data: label_mode must be "fine" or "coarse", got {label_mode!r}'
        )
    path = fetch("cifar-100-python", ORIGIN, FILE_HASH)
    key = f"{label_mode}_labels"
    x_train, train_labels = load_batch(os.path.join(path, "train"), label_key=key)
    x_test, test_labels = load_batch(os.path.join(path, "test"), label_key=key)
    y_train = np.array(train_labels, dtype="int64").reshape(-1, 1)
    y_test = np.array(test_labels, dtype="int64").reshape(-1, 1)
    if image_data_format() == "channels_last":
        x_train = x_train.transpose(0, 2, 3, 1)
        x_test = x_test.transpose(0, 2, 3, 1)
    return (x_train, y_train), (x_test, y_test)
