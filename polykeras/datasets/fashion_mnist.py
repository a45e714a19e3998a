"""Fashion-MNIST: 60,000 training and 10,000 test images of clothing, 28x28 uint8, in
the gzipped IDX files of the original MNIST format."""

from __future__ import annotations

import os
from typing import Any

from ..utils_data import get_file
from ._readers import read_idx

ORIGIN_FOLDER = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)


def load_data() -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """``(x_train, y_train), (x_test, y_test)``: uint8 arrays of shapes (60000, 28, 28),
    (60000,), (10000, 28, 28), (10000,).  The files are kept in
    ``<cache>/datasets/fashion-mnist``, as Keras keeps them."""
    subdir = os.path.join("datasets", "fashion-mnist")
    paths = [
        get_file(name, origin=ORIGIN_FOLDER + name, cache_subdir=subdir, cache_dir=None)
        for name in FILES
    ]
    y_train = read_idx(paths[0], 2049, ())
    x_train = read_idx(paths[1], 2051, (28, 28))
    y_test = read_idx(paths[2], 2049, ())
    x_test = read_idx(paths[3], 2051, (28, 28))
    for x, y, part in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if len(x) != len(y):
            raise ValueError(
                f"fashion_mnist: the {part} files hold {len(x)} images but {len(y)} labels"
            )
    return (x_train, y_train), (x_test, y_test)
