"""The NumPy backend object."""

from __future__ import annotations

import numpy

from .xp_backend import XpBackend

#: NumPy 1.x promotes by value: a 0-d float32 (or int32) array with a Python number gives
#: float64 (int64), where NumPy 2 (NEP 50) and Keras keep the array's dtype.
_VALUE_BASED = numpy.lib.NumpyVersion(numpy.__version__) < "2.0.0"


def _weak(a, b):
    """Give a Python number next to a 0-d array that array's dtype, as NumPy 2 treats it
    (floats next to a float array; ints next to a float or integer array)."""
    tb = type(b)
    if tb is float or tb is int:
        if isinstance(a, (numpy.ndarray, numpy.generic)) and a.ndim == 0:
            kind = a.dtype.kind
            if kind == "f" or (tb is int and kind in "iu"):
                return a, a.dtype.type(b)
        return a, b
    ta = type(a)
    if ta is float or ta is int:
        b_, a_ = _weak(b, a)
        return a_, b_
    return a, b


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

    if _VALUE_BASED:  # NumPy 1.x: the arithmetic keeps a 0-d array's dtype, as NumPy 2 does

        def add(self, a, b):
            a, b = _weak(a, b)
            return a + b

        def subtract(self, a, b):
            a, b = _weak(a, b)
            return a - b

        def multiply(self, a, b):
            a, b = _weak(a, b)
            return a * b

        def divide(self, a, b):
            a, b = _weak(a, b)
            return a / b

        def power(self, a, b):
            a, b = _weak(a, b)
            return numpy.power(a, b)

        def maximum(self, a, b):
            a, b = _weak(a, b)
            return numpy.maximum(a, b)

        def minimum(self, a, b):
            a, b = _weak(a, b)
            return numpy.minimum(a, b)
