"""Boston housing prices: 506 samples of 13 attributes and the median value of homes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..utils_data import get_file
from ._readers import load_npz
from ._sequences import check_split

ORIGIN_FOLDER = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FILE_HASH = "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5"


def load_data(
    path: Any = "boston_housing.npz", test_split: float = 0.2, seed: int = 113
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """``(x_train, y_train), (x_test, y_test)``: float64 arrays of shapes (404, 13),
    (404,), (102, 13), (102,) with the default ``test_split``; the samples are shuffled
    with ``np.random.RandomState(seed)`` before the split."""
    test_split = check_split("boston_housing.load_data", test_split)
    path = get_file(path, origin=ORIGIN_FOLDER + "boston_housing.npz", file_hash=FILE_HASH)
    f = load_npz(path, ("x", "y"))
    x, y = f["x"], f["y"]
    order = np.arange(len(x))
    np.random.RandomState(seed).shuffle(order)
    x, y = x[order], y[order]
    idx = int(len(x) * (1 - test_split))
    return (x[:idx], y[:idx]), (x[idx:], y[idx:])
