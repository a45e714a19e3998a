"""Python's math operators for variables, traced values and symbolic tensors.

``x * 2 + 1``, ``a @ b``, ``-x``, ``abs(x)``, ``x < y``, ``x[:, 0]`` and ``x.T`` call the
ops of :mod:`polykeras.ops`, so they compute eagerly on a variable, record on the tape on
a value being differentiated, and add a node to the graph on a symbolic tensor.

``==`` and ``!=`` keep Python's meaning (identity): variables sit in lists and symbolic
tensors are compared by identity (``lstm.output == encoded_a``).  Elementwise equality is
``ops.equal`` / ``K.equal``.
"""

from __future__ import annotations

from typing import Any


def _ops() -> Any:
    from .. import ops

    return ops


class TensorOperators:
    """Mixin: the operators, each one call of the matching op."""

    __slots__ = ()
    # NumPy arrays and scalars on the left hand the operation to our reflected methods
    __array_ufunc__ = None
    __array_priority__ = 100

    def __add__(self, other: Any) -> Any:
        return _ops().add(self, other)

    def __radd__(self, other: Any) -> Any:
        return _ops().add(other, self)

    def __sub__(self, other: Any) -> Any:
        return _ops().subtract(self, other)

    def __rsub__(self, other: Any) -> Any:
        return _ops().subtract(other, self)

    def __mul__(self, other: Any) -> Any:
        return _ops().multiply(self, other)

    def __rmul__(self, other: Any) -> Any:
        return _ops().multiply(other, self)

    def __truediv__(self, other: Any) -> Any:
        return _ops().divide(self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return _ops().divide(other, self)

    def __floordiv__(self, other: Any) -> Any:
        return _ops().floor_divide(self, other)

    def __rfloordiv__(self, other: Any) -> Any:
        return _ops().floor_divide(other, self)

    def __mod__(self, other: Any) -> Any:
        return _ops().mod(self, other)

    def __rmod__(self, other: Any) -> Any:
        return _ops().mod(other, self)

    def __pow__(self, other: Any) -> Any:
        return _ops().power(self, other)

    def __rpow__(self, other: Any) -> Any:
        return _ops().power(other, self)

    def __matmul__(self, other: Any) -> Any:
        return _ops().matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return _ops().matmul(other, self)

    def __neg__(self) -> Any:
        return _ops().negative(self)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return _ops().absolute(self)

    def __lt__(self, other: Any) -> Any:
        return _ops().less(self, other)

    def __le__(self, other: Any) -> Any:
        return _ops().less_equal(self, other)

    def __gt__(self, other: Any) -> Any:
        return _ops().greater(self, other)

    def __ge__(self, other: Any) -> Any:
        return _ops().greater_equal(self, other)

    def __getitem__(self, key: Any) -> Any:
        return _ops().getitem(self, key)

    @property
    def T(self) -> Any:  # noqa: N802  (NumPy's name)
        return _ops().transpose(self)
