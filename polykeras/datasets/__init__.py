"""Keras' datasets: ``keras.datasets.mnist.load_data()`` and the others, in Keras 2's
file formats, arguments and results.

Files are fetched once by :func:`polykeras.utils.get_file` into
``$POLYKERAS_HOME/datasets`` (``~/.polykeras/datasets`` by default); a copy that Keras
already downloaded into ``~/.keras/datasets`` is used where it lies.  Every file is
checked against the hash Keras publishes for it, and read without running code: pickled
parts (CIFAR's batches, IMDB's and Reuters' ragged sequences) go through an unpickler that
builds NumPy arrays, lists, numbers and strings only.
"""

from __future__ import annotations

from . import (
    boston_housing,
    cifar,
    cifar10,
    cifar100,
    fashion_mnist,
    imdb,
    mnist,
    reuters,
)

__all__ = [
    "boston_housing",
    "cifar",
    "cifar10",
    "cifar100",
    "fashion_mnist",
    "imdb",
    "mnist",
    "reuters",
]
