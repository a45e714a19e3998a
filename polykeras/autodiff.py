"""The core's reverse-mode differentiation: small enough to read in one sitting.

Every op in :mod:`polykeras.ops` computes its value with the active backend.  When one of
its inputs is a :class:`Traced` value, the result is a :class:`Traced` too, remembering its
inputs and its vector-Jacobian product (VJP).  :func:`gradients` walks those records back
from the loss.  VJPs are written once, in :mod:`polykeras.ops`, in terms of the backend's
primitives, so every backend that supplies the primitives is differentiable.

A backend that differentiates by itself (it has ``value_and_grad``) is used instead; the
tests check that both give the same gradients.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any
from collections.abc import Callable, Iterator, Sequence

from . import backend as _backend
from .engine.operators import TensorOperators


class Traced(TensorOperators):
    """A backend array recorded on the tape: its value, its inputs, and how to pull back.

    Python's math operators work on it (``x * 2 + b``) and are recorded too."""

    __slots__ = ("value", "parents", "args", "kwargs", "vjp", "__weakref__")

    def __init__(self, value, parents=(), args=(), kwargs=None, vjp=None):
        self.value = value
        self.parents = parents  # the op's positional inputs (Traced or raw)
        self.args = args  # the same inputs as raw arrays
        self.kwargs = kwargs or {}
        self.vjp = vjp  # vjp(B, g, node) -> one gradient (or None) per positional input

    @property
    def shape(self):
        return _backend.current().shape(self.value)

    @property
    def dtype(self) -> str:
        return _backend.current().dtype_name(self.value)

    def __repr__(self) -> str:
        return f"Traced(shape={self.shape})"


def is_traced(x: Any) -> bool:
    return type(x) is Traced


def raw(x: Any) -> Any:
    """The backend array behind ``x`` (a Traced, a Variable or an array)."""
    x = _resolve(x)
    return x.value if type(x) is Traced else x


# -- variables stand in for traced leaves while a loss is differentiated ----------------
# Per thread (a ContextVar): two models differentiated at once in two threads, or a predict
# in one thread while another trains, never read each other's stand-ins.
_substitutions: contextvars.ContextVar[dict[int, Any] | None] = contextvars.ContextVar(
    "polykeras_substitutions", default=None
)


def _resolve(x: Any) -> Any:
    read = getattr(x, "_polykeras_read", None)
    return read() if read is not None else x


@contextlib.contextmanager
def substitute(variables: Sequence[Any], values: Sequence[Any]) -> Iterator[None]:
    """While active, each variable reads as the matching value (a Traced leaf, say)."""
    table = dict(_substitutions.get() or {})  # a fresh table: the outer one stays as it was
    for var, val in zip(variables, values):
        table[id(var)] = val
    token = _substitutions.set(table)
    try:
        yield
    finally:
        _substitutions.reset(token)


def detach(x: Any) -> Any:
    """A plain backend array with no record of how it was computed."""
    B = _backend.current()
    return B.stop_gradient(raw(x))


def gradients(loss: Any, leaves: Sequence[Traced]) -> list[Any]:
    """d(loss)/d(leaf) for each leaf; zeros where the loss does not depend on a leaf."""
    B = _backend.current()
    if type(loss) is not Traced:
        return [B.zeros(B.shape(leaf.value), B.dtype_name(leaf.value)) for leaf in leaves]
    # Topological order of the traced nodes behind the loss (iterative DFS).
    order: list[Traced] = []
    seen: set[int] = set()
    stack: list[tuple[Traced, bool]] = [(loss, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in node.parents:
            if type(p) is Traced and id(p) not in seen:
                stack.append((p, False))
    grads: dict[int, Any] = {id(loss): B.ones(B.shape(loss.value), B.dtype_name(loss.value))}
    for node in reversed(order):
        g = grads.get(id(node))
        if g is None or node.vjp is None:
            continue
        del grads[id(node)]
        for parent, pg in zip(node.parents, node.vjp(B, g, node)):
            if pg is None or type(parent) is not Traced:
                continue
            prev = grads.get(id(parent))
            grads[id(parent)] = pg if prev is None else B.add(prev, pg)
    out = []
    for leaf in leaves:
        g = grads.get(id(leaf))
        out.append(g if g is not None else B.zeros(B.shape(leaf.value), B.dtype_name(leaf.value)))
    return out


def value_and_grad(
    fn: Callable[[list[Any]], tuple[Any, Any]], params: Sequence[Any]
) -> tuple[Any, Any, list[Any]]:
    """Call ``fn(params) -> (loss, aux)``; return ``(loss, aux, d loss / d params)``.

    Uses the backend's own differentiation when it has one, the core's otherwise.
    """
    B = _backend.current()
    own = getattr(B, "value_and_grad", None)
    if own is not None and not _force_core.get():
        return own(fn, list(params))
    leaves = [Traced(p) for p in params]
    loss, aux = fn(leaves)
    grads = gradients(loss, leaves)
    return raw(loss), aux, grads


_force_core: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "polykeras_force_core_differentiation", default=False
)


@contextlib.contextmanager
def core_differentiation() -> Iterator[None]:
    """Use the core's differentiation even where the backend has its own (for tests)."""
    token = _force_core.set(True)
    try:
        yield
    finally:
        _force_core.reset(token)
