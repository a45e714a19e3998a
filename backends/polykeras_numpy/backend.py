"""The NumPy backend object."""

from __future__ import annotations

import numpy

from .xp_backend import XpBackend


class NumpyBackend(XpBackend):
    xp = numpy
    name = "numpy"

    def __init__(self, device: str | None = None) -> None:
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend runs on 'cpu' only, not {device!r}")
        self.device = "cpu"
        super().__init__()

    def is_native(self, x):
        return isinstance(x, (numpy.ndarray, numpy.generic))

    def asarray(self, x, dtype=None):
        return numpy.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        return numpy.asarray(x)
