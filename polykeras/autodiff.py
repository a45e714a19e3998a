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
    found = _backprop(loss, leaves)
    return [
        g if g is not None else B.zeros(B.shape(leaf.value), B.dtype_name(leaf.value))
        for g, leaf in zip(found, leaves)
    ]


def _backprop(loss: Any, leaves: Sequence[Traced]) -> list[Any]:
    """d(loss)/d(leaf) for each leaf; None where the loss does not depend on a leaf.  A
    leaf may be any recorded value, one computed from others too (its gradient is kept
    as it is reached; the walk goes on past it)."""
    B = _backend.current()
    if type(loss) is not Traced:
        return [None for _ in leaves]
    wanted = {id(leaf) for leaf in leaves}
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
        if id(node) not in wanted:
            del grads[id(node)]
        for parent, pg in zip(node.parents, node.vjp(B, g, node)):
            if pg is None or type(parent) is not Traced:
                continue
            prev = grads.get(id(parent))
            grads[id(parent)] = pg if prev is None else B.add(prev, pg)
    return [grads.get(id(leaf)) for leaf in leaves]


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


# -- GradientTape: gradients for a training step the user writes -------------------------
# While a tape is open, every trainable variable read for the first time becomes a Traced
# leaf (the same leaf in every open tape), so what is computed from it is recorded; the
# tape then differentiates a result with respect to the variables it saw.
_tapes: contextvars.ContextVar[tuple[GradientTape, ...]] = contextvars.ContextVar(
    "polykeras_tapes", default=()
)


def tape_leaf(var: Any, tapes: tuple[GradientTape, ...]) -> Any:
    """What ``var`` reads as while ``tapes`` are open: its Traced leaf, created on the
    first read and shared by every open tape that watches it."""
    leaf = None
    for tape in reversed(tapes):
        entry = tape._leaves.get(id(var))
        if entry is not None:
            leaf = entry[1]
            break
    watching = [t for t in tapes if t._watch_all or id(var) in t._leaves]
    if not watching:
        return var.value
    if leaf is None:
        leaf = Traced(var.value)
    for tape in watching:
        tape._leaves.setdefault(id(var), (var, leaf))
    return leaf


class GradientTape:
    """Record computations for differentiation, as TensorFlow's ``tf.GradientTape``
    (the custom ``train_step`` pattern of Keras)::

        with polykeras.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x, y, y_pred)
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))

    Every trainable variable read inside the block is watched
    (``watch_accessed_variables=False`` watches only what :meth:`watch` was given).  The
    core's tape records the operations, on every backend; ``gradient`` gives backend
    arrays, and None for a variable the result does not depend on (as TensorFlow does;
    ``unconnected_gradients="zero"`` gives zeros).  A tape answers one ``gradient`` call
    unless ``persistent=True``.
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True):
        self._persistent = bool(persistent)
        self._watch_all = bool(watch_accessed_variables)
        self._leaves: dict[int, tuple[Any, Traced]] = {}
        self._token: Any = None
        self._used = False

    def __enter__(self) -> GradientTape:
        if self._token is not None:
            raise RuntimeError("this GradientTape is already open; use a new one")
        self._token = _tapes.set(_tapes.get() + (self,))
        return self

    def __exit__(self, *exc: Any) -> None:
        _tapes.reset(self._token)
        self._token = None

    def watch(self, variables: Any) -> None:
        """Watch variables (one, or a list) that are not read inside the block yet."""
        for var in _flatten(variables):
            if not hasattr(var, "_polykeras_read") or not hasattr(var, "assign"):
                raise TypeError(
                    f"GradientTape.watch takes polykeras variables (layer weights, "
                    f"polykeras.Variable), got {type(var).__name__}; to differentiate with "
                    "respect to a model input use K.gradients, or hold the input in a "
                    "Variable"
                )
            if id(var) not in self._leaves:
                self._leaves[id(var)] = (var, Traced(var.value))

    def watched_variables(self) -> list[Any]:
        return [var for var, _ in self._leaves.values()]

    def gradient(
        self,
        target: Any,
        sources: Any,
        output_gradients: Any = None,
        unconnected_gradients: str = "none",
    ) -> Any:
        """d(target)/d(source) for each source (a variable or a value computed inside the
        block, or a list/tuple/dict of them, answered in the same structure).  ``target``
        is a scalar, or a tensor whose sum is differentiated (as TensorFlow does)."""
        if self._used and not self._persistent:
            raise RuntimeError(
                "this GradientTape already gave its gradients; a tape answers one "
                "gradient() call unless made with GradientTape(persistent=True)"
            )
        if output_gradients is not None:
            raise NotImplementedError(
                "GradientTape.gradient(output_gradients=...) is not supported by polykeras"
            )
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(
                f"unconnected_gradients must be 'none' or 'zero', got {unconnected_gradients!r}"
            )
        self._used = True
        flat = _flatten(sources)
        # a source is a watched variable, or a value computed inside the block (Grad-CAM's
        # ``tape.gradient(score, conv_outputs)``): any recorded value is a leaf of its own
        leaves = [(v, v) if type(v) is Traced else self._leaves.get(id(v)) for v in flat]
        target = _resolve(target)
        if type(target) is Traced and _backend.current().shape(target.value):
            from . import ops

            target = _resolve(ops.sum(target))
        known = [entry[1] for entry in leaves if entry is not None]
        found = iter(_backprop(target, known))
        B = _backend.current()
        grads = []
        for var, entry in zip(flat, leaves):
            g = next(found) if entry is not None else None
            if g is None and unconnected_gradients == "zero":
                value = raw(var)
                g = B.zeros(B.shape(value), B.dtype_name(value))
            grads.append(g)
        return _unflatten(sources, grads)


def _flatten(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [v for item in x.values() for v in _flatten(item)]
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in _flatten(item)]
    return [x]


def _unflatten(structure: Any, flat: list[Any]) -> Any:
    it = iter(flat)

    def build(s: Any) -> Any:
        if isinstance(s, dict):
            return {k: build(v) for k, v in s.items()}
        if isinstance(s, (list, tuple)):
            return type(s)(build(v) for v in s) if isinstance(s, tuple) else [build(v) for v in s]
        return next(it)

    return build(structure)
