"""Variables: a layer's weights, held as arrays of the backend that created them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import autodiff
from .. import backend as _backend
from .operators import TensorOperators


class Variable(TensorOperators):
    """A named, assignable backend array (``dense_1/kernel:0``); Python's math operators
    compute with its value (``self.w * 2 + 1``), differentiated while a loss is."""

    def __init__(
        self,
        value: Any,
        name: str | None = None,
        trainable: bool = True,
        dtype: str | None = None,
        shape: Any = None,
    ):
        """``Variable(array)``, or Keras 3's ``Variable(initializer, shape=..., dtype=...)``
        (an initializer name or object, drawn once)."""
        B = _backend.current()
        if isinstance(value, str) or (callable(value) and not hasattr(value, "shape")):
            if shape is None:
                raise ValueError(
                    f"Variable: an initializer ({value!r:.40}) needs shape= to draw a value"
                )
            from .. import config, initializers

            init = initializers.get(value)
            value = initializers.draw(init, tuple(int(d) for d in shape), dtype or config.floatx())
        elif shape is not None and tuple(np.shape(value)) != tuple(shape):
            raise ValueError(
                f"Variable: the value has shape {tuple(np.shape(value))}, not shape={tuple(shape)}"
            )
        self.value = B.asarray(value)
        if dtype is not None and B.dtype_name(self.value) != dtype:
            self.value = B.cast(self.value, dtype)
        self.backend = B
        self.name = name if name is not None else "variable"
        self.trainable = trainable
        # set by Layer.add_weight: a penalty added to the loss, a projection after each step
        self.regularizer: Callable[[Any], Any] | None = None
        self.constraint: Callable[[Any], Any] | None = None

    def _polykeras_read(self):
        sub = autodiff._substitutions.get()
        if sub:
            v = sub.get(id(self))
            if v is not None:
                return v
        tapes = autodiff._tapes.get()
        if tapes and self.trainable:  # a GradientTape is open: read as its leaf
            return autodiff.tape_leaf(self, tapes)
        return self.value

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.backend.shape(self.value))

    @property
    def dtype(self) -> str:
        return self.backend.dtype_name(self.value)

    def numpy(self):
        """A NumPy copy of the value: it never changes when the variable does (the NumPy
        backend's array, or a CPU tensor's memory, would otherwise be shared with the live
        weights that optimizers update in place)."""
        import numpy as np

        return np.array(self.backend.to_numpy(self.value), copy=True)

    def assign(self, value: Any) -> None:
        """Replace the value (a NumPy or backend array of the same shape)."""
        B = self.backend
        arr = B.asarray(value) if not B.is_native(value) else value
        if tuple(B.shape(arr)) != self.shape:
            raise ValueError(
                f"cannot assign a value of shape {tuple(B.shape(arr))} to "
                f"variable {self.name} of shape {self.shape}"
            )
        self.value = B.cast(arr, self.dtype)

    def move_to(self, B: Any) -> None:
        """Re-home the value on backend ``B`` (a copy through NumPy)."""
        if B is not self.backend:
            self.value = B.asarray(self.backend.to_numpy(self.value))
            self.backend = B

    def __repr__(self) -> str:
        return f"<Variable {self.name} shape={self.shape} dtype={self.dtype}>"
