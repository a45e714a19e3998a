"""Differentiable ops over the active backend, with each primitive's VJP written once.

Layers, losses and optimizers are written with these functions.  Each accepts backend
arrays, :class:`~polykeras.autodiff.Traced` values, variables, and python scalars where a
number makes sense, and returns a backend array (or a Traced value while a loss is being
differentiated by the core).
"""

from __future__ import annotations

import builtins as _builtins  # sum, max, min, abs, round, any, all are ops here
import contextlib as _contextlib
import contextvars as _contextvars
import math
from typing import Any
from collections.abc import Callable, Sequence

import numpy as _np

from . import backend as _backend
from .autodiff import Traced, _resolve
from .engine.base_layer import KerasTensor as _KerasTensor
from .engine.variables import Variable as _Variable

VJP = Callable[..., tuple]


class Primitive:
    """One backend primitive with its VJP: ``vjp(B, g, node) -> grads per input``."""

    __slots__ = ("name", "vjp", "fwd", "differentiable", "n_inputs", "keywords")

    def __init__(
        self,
        name: str,
        vjp: VJP | None = None,
        fwd: Callable | None = None,
        keywords: tuple[str, ...] = (),
    ):
        self.name = name
        self.vjp = vjp
        self.fwd = fwd
        self.differentiable = vjp is not None
        #: the op's arguments after its ``n_inputs`` array inputs, by name: given by
        #: position, they are passed (and recorded for the VJP) as keywords
        self.n_inputs = 1
        self.keywords = keywords

    def __call__(self, *args, **kwargs):
        # hot path: every layer computation goes through here once per op
        if self.keywords and len(args) > self.n_inputs:
            args, kwargs = self._as_keywords(args, kwargs)
        B = _backend.current()
        args = [a._polykeras_read() if type(a) is _Variable else a for a in args]
        raws = args
        traced = False
        for a in args:
            ta = type(a)
            if ta is Traced:
                traced = True
                raws = [x.value if type(x) is Traced else x for x in args]
                break
            if ta is _KerasTensor:  # a symbolic call: a node of the graph, computed later
                return _symbolic(self.name, args, kwargs)
        fwd = self.fwd
        try:
            out = (
                fwd(B, *raws, **kwargs)
                if fwd is not None
                else getattr(B, self.name)(*raws, **kwargs)
            )
        except Exception as err:
            if any(type(r) is _np.ndarray and not B.is_native(r) for r in raws):
                # NumPy arrays given to a backend that has other arrays: convert, retry
                args = [B.asarray(a) if type(a) is _np.ndarray else a for a in args]
                return self(*args, **kwargs)
            clear = _operand_error(B, self.name, raws, err)
            if clear is None:
                raise
            raise clear from err
        if traced and self.vjp is not None:
            return Traced(out, tuple(args), raws, kwargs, self.vjp)
        return out

    def _as_keywords(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        extra = args[self.n_inputs :]
        if len(extra) > len(self.keywords):
            raise TypeError(
                f"{self.name}() takes {self.n_inputs + len(self.keywords)} positional "
                f"arguments but {len(args)} were given"
            )
        kwargs = dict(kwargs)
        for key, value in zip(self.keywords, extra):
            if key in kwargs:
                raise TypeError(f"{self.name}() got multiple values for argument {key!r}")
            kwargs[key] = value
        return args[: self.n_inputs], kwargs


PRIMITIVES: dict[str, Primitive] = {}

#: Every op a graph node may name (see polykeras.engine.op_layer): name -> the function
#: called on concrete values.  A saved node names its op here and nothing else.
OPS: dict[str, Callable[..., Any]] = {}

_BROADCASTING = frozenset(
    "add subtract multiply divide maximum minimum power greater greater_equal less "
    "equal where".split()
)


def _operand_error(B, name: str, raws, err: Exception) -> Exception | None:
    """A clear error for an op between operands whose shapes do not fit, naming both."""
    if name not in _BROADCASTING and name != "matmul":
        return None
    shapes = [tuple(B.shape(x)) if B.is_native(x) else None for x in raws]
    known = [s for s in shapes if s is not None]
    if len(known) < 2:
        return None
    if name == "matmul":
        a, b = shapes[0], shapes[1]
        if a is not None and b is not None and a and b and a[-1] != b[-2 if len(b) > 1 else 0]:
            return ValueError(
                f"matmul: shapes {a} and {b} do not fit (the last dimension of the first, "
                f"{a[-1]}, must equal the second-to-last of the second)"
            )
        return None
    try:
        broadcast_shapes(*known)
    except ValueError as clear:
        return ValueError(f"{name}: {clear}")
    return None


def broadcast_shapes(*shapes):
    """The broadcast of shapes (None for an unknown size), or a ValueError naming them."""
    nd = 0
    for s in shapes:
        nd = len(s) if len(s) > nd else nd
    out = []
    for i in range(nd):
        dim: Any = 1
        for s in shapes:
            k = i - (nd - len(s))
            if k < 0:
                continue
            d = s[k]
            if d == 1:
                continue
            if dim == 1:
                dim = d
            elif d is None or dim is None:
                dim = None if (d is None and dim is None) else (dim if d is None else d)
            elif d != dim:
                raise ValueError(
                    "cannot broadcast shapes "
                    + " and ".join(str(tuple(x)) for x in shapes)
                    + f" (dimension {i - nd} is {dim} in one and {d} in the other)"
                )
        out.append(dim)
    return tuple(out)


def _symbolic(name: str, args, kwargs):
    from .engine.op_layer import symbolic_call

    return symbolic_call(name, args, kwargs)


def _has_symbolic(args, kwargs) -> bool:
    for a in args:
        ta = type(a)
        if ta is _KerasTensor:
            return True
        if ta is list or ta is tuple:
            for b in a:
                if type(b) is _KerasTensor:
                    return True
    for a in kwargs.values():
        if type(a) is _KerasTensor:
            return True
    return False


def keras_op(fn: Callable | None = None, *, name: str | None = None) -> Any:
    """Make ``fn`` a public op: registered in :data:`OPS` under ``name`` (its own name by
    default), and a graph node when called on symbolic tensors."""

    def deco(f: Callable) -> Callable:
        opname = name or f.__name__
        OPS[opname] = f

        def op(*args, **kwargs):
            if _has_symbolic(args, kwargs):
                return _symbolic(opname, args, kwargs)
            return f(*args, **kwargs)

        op.__name__ = f.__name__
        op.__qualname__ = f.__qualname__
        op.__doc__ = f.__doc__
        op.__wrapped__ = f  # type: ignore[attr-defined]
        op._polykeras_op = opname  # type: ignore[attr-defined]
        return op

    return deco(fn) if fn is not None else deco


def _prim(
    name: str,
    vjp: VJP | None = None,
    fwd: Callable | None = None,
    keywords: tuple[str, ...] = (),
    n_inputs: int = 1,
) -> Primitive:
    p = Primitive(name, vjp, fwd, keywords)
    p.n_inputs = n_inputs
    PRIMITIVES[name] = p
    OPS[name] = p
    return p


# -- helpers used by the VJPs ---------------------------------------------------------------
def _shape(B, x) -> tuple[int, ...] | None:
    return tuple(B.shape(x)) if B.is_native(x) else None


def unbroadcast(B, g, shape):
    """Sum ``g`` down to ``shape`` (undo NumPy broadcasting); None for python scalars."""
    if shape is None:
        return None
    gshape = tuple(B.shape(g))
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    if lead > 0:
        g = B.sum(g, axis=tuple(range(lead)))
    axes = tuple(i for i, (s, gs) in enumerate(zip(shape, B.shape(g))) if s == 1 and gs != 1)
    if axes:
        g = B.sum(g, axis=axes, keepdims=True)
    return B.reshape(g, shape)


def _both(B, node, ga, gb):
    a, b = node.args
    return unbroadcast(B, ga, _shape(B, a)), unbroadcast(B, gb, _shape(B, b))


def _float_mask(B, cond, like):
    return B.cast(cond, B.dtype_name(like))


# -- elementwise ------------------------------------------------------------------------------
neg = _prim("neg", lambda B, g, n: (B.neg(g),))
exp = _prim("exp", lambda B, g, n: (B.multiply(g, B.exp(n.args[0])),))
log = _prim("log", lambda B, g, n: (B.divide(g, n.args[0]),))
tanh = _prim("tanh", lambda B, g, n: (B.multiply(g, B.subtract(1.0, B.square(B.tanh(n.args[0])))),))


def _sigmoid_vjp(B, g, n):
    s = B.sigmoid(n.args[0])
    return (B.multiply(g, B.multiply(s, B.subtract(1.0, s))),)


sigmoid = _prim("sigmoid", _sigmoid_vjp)
relu = _prim("relu", lambda B, g, n: (B.multiply(g, _float_mask(B, B.greater(n.args[0], 0), g)),))
sqrt = _prim("sqrt", lambda B, g, n: (B.divide(B.multiply(g, 0.5), B.sqrt(n.args[0])),))
abs = _prim("abs", lambda B, g, n: (B.multiply(g, B.sign(n.args[0])),))  # noqa: A001
sign = _prim("sign")
square = _prim("square", lambda B, g, n: (B.multiply(g, B.multiply(n.args[0], 2.0)),))
softplus = _prim("softplus", lambda B, g, n: (B.multiply(g, B.sigmoid(n.args[0])),))

add = _prim("add", lambda B, g, n: _both(B, n, g, g))
subtract = _prim("subtract", lambda B, g, n: _both(B, n, g, B.neg(g)))


def _mul_vjp(B, g, n):
    a, b = n.args
    return _both(B, n, B.multiply(g, b), B.multiply(g, a))


multiply = _prim("multiply", _mul_vjp)


def _div_vjp(B, g, n):
    a, b = n.args
    ga = B.divide(g, b)
    gb = B.neg(B.divide(B.multiply(ga, a), b))
    return _both(B, n, ga, gb)


divide = _prim("divide", _div_vjp)


def _max_vjp(B, g, n):
    a, b = n.args
    mask = _float_mask(B, B.greater_equal(a, b), g)
    return _both(B, n, B.multiply(g, mask), B.multiply(g, B.subtract(1.0, mask)))


def _min_vjp(B, g, n):
    a, b = n.args
    mask = _float_mask(B, B.greater_equal(b, a), g)
    return _both(B, n, B.multiply(g, mask), B.multiply(g, B.subtract(1.0, mask)))


maximum = _prim("maximum", _max_vjp)
minimum = _prim("minimum", _min_vjp)


def _pow_vjp(B, g, n):
    a, b = n.args
    b_minus_1 = B.subtract(b, 1.0) if B.is_native(b) else b - 1.0
    ga = unbroadcast(B, B.multiply(g, B.multiply(b, B.power(a, b_minus_1))), _shape(B, a))
    gb = None
    if B.is_native(b):
        safe = B.where(B.greater(a, 0), a, B.ones((), B.dtype_name(a)))
        gb = unbroadcast(B, B.multiply(g, B.multiply(B.power(a, b), B.log(safe))), _shape(B, b))
    return ga, gb


power = _prim("power", _pow_vjp)

# comparisons are not differentiable: their results are masks
greater = _prim("greater")
greater_equal = _prim("greater_equal")
less = _prim("less")
equal = _prim("equal")


def _where_vjp(B, g, n):
    cond, a, b = n.args
    zero = B.zeros((), B.dtype_name(g))
    return (
        None,
        unbroadcast(B, B.where(cond, g, zero), _shape(B, a)),
        unbroadcast(B, B.where(cond, zero, g), _shape(B, b)),
    )


where = _prim("where", _where_vjp)


def _clip_vjp(B, g, n):
    x = n.args[0]
    lo, hi = n.args[1], n.args[2]
    inside = B.multiply(
        _float_mask(B, B.greater_equal(x, lo), g), _float_mask(B, B.greater_equal(hi, x), g)
    )
    return (B.multiply(g, inside), None, None)


clip = _prim("clip", _clip_vjp)


def _cast_vjp(B, g, n):
    src, dst = B.dtype_name(n.args[0]), n.args[1] if len(n.args) > 1 else n.kwargs["dtype"]
    if not (src.startswith("float") and str(dst).startswith("float")):
        return (None, None)  # through an integer cast nothing flows back
    return (B.cast(g, src), None)


cast = _prim("cast", _cast_vjp)

# -- reductions ---------------------------------------------------------------------------------


def _norm_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim for a in axis)


def _keep_shape(shape, axis):
    axes = _norm_axes(axis, len(shape))
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _sum_vjp(B, g, n):
    x = n.args[0]
    shape = tuple(B.shape(x))
    g = B.reshape(g, _keep_shape(shape, n.kwargs.get("axis")))
    return (B.broadcast_to(g, shape),)


def _max_reduce_vjp(B, g, n):
    x = n.args[0]
    shape = tuple(B.shape(x))
    axis = n.kwargs.get("axis")
    keep = _keep_shape(shape, axis)
    m = B.reshape(B.max(x, axis=axis, keepdims=True), keep)
    mask = _float_mask(B, B.equal(x, m), g)
    count = B.sum(mask, axis=_norm_axes(axis, len(shape)), keepdims=True)
    return (B.multiply(B.reshape(g, keep), B.divide(mask, count)),)


sum = _prim("sum", _sum_vjp, keywords=("axis", "keepdims"))  # noqa: A001
max = _prim("max", _max_reduce_vjp, keywords=("axis", "keepdims"))  # noqa: A001


def _argmax_fwd(B, x, axis=None):
    if axis is None:  # Keras 3 / NumPy: the index in the flattened array
        return B.argmax(B.reshape(x, (-1,)), axis=0)
    return B.argmax(x, axis=axis)


argmax = _prim("argmax", fwd=_argmax_fwd)


@keras_op
def mean(x, axis=None, keepdims=False):
    B = _backend.current()
    shape = B.shape(_value(x))
    axes = _norm_axes(axis, len(shape))
    count = 1
    for a in axes:
        count *= shape[a]
    return multiply(sum(x, axis=axis, keepdims=keepdims), 1.0 / builtins_max(count, 1))


def builtins_max(a, b):
    return a if a > b else b


# -- linear algebra and shapes -------------------------------------------------------------------
def _swap_last(B, x):
    nd = len(B.shape(x))
    axes = list(range(nd))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return B.transpose(x, axes)


def _matmul_vjp(B, g, n):
    a, b = n.args
    sa, sb = tuple(B.shape(a)), tuple(B.shape(b))
    if len(sa) == 1 or len(sb) == 1:  # a vector operand: as a (1, n) / (n, 1) matrix
        gs = tuple(B.shape(g))
        if len(sa) == 1 and len(sb) == 1:
            g = B.reshape(g, (1, 1))
        elif len(sa) == 1:
            g = B.reshape(g, gs[:-1] + (1,) + gs[-1:])
        else:
            g = B.reshape(g, gs + (1,))
        a = B.reshape(a, (1,) + sa) if len(sa) == 1 else a
        b = B.reshape(b, sb + (1,)) if len(sb) == 1 else b
    ga = gb = None
    if type(n.parents[0]) is Traced:
        ga = unbroadcast(B, B.matmul(g, _swap_last(B, b)), tuple(B.shape(a)))
        ga = B.reshape(ga, sa) if len(sa) == 1 else ga
    if type(n.parents[1]) is Traced:
        gb = unbroadcast(B, B.matmul(_swap_last(B, a), g), tuple(B.shape(b)))
        gb = B.reshape(gb, sb) if len(sb) == 1 else gb
    return ga, gb


matmul = _prim("matmul", _matmul_vjp)
reshape = _prim("reshape", lambda B, g, n: (B.reshape(g, tuple(B.shape(n.args[0]))), None))


def _transpose_vjp(B, g, n):
    axes = n.args[1] if len(n.args) > 1 else n.kwargs.get("axes")
    if axes is None:
        axes = tuple(reversed(range(len(B.shape(n.args[0])))))
    inverse = [0] * len(axes)
    for i, a in enumerate(axes):
        inverse[a] = i
    return (B.transpose(g, inverse), None)


def _transpose_fwd(B, x, axes=None):
    if axes is None:  # reverse the axes, as NumPy and Keras do
        axes = tuple(reversed(range(len(B.shape(x)))))
    return B.transpose(x, axes)


transpose = _prim("transpose", _transpose_vjp, fwd=_transpose_fwd)


def _concat_vjp(B, g, n):
    axis = n.kwargs["axis"]
    nd = len(B.shape(g))
    axis %= nd
    grads, start = [], 0
    for x in n.args:
        size = B.shape(x)[axis]
        key = (slice(None),) * axis + (slice(start, start + size),)
        grads.append(B.getitem(g, key))
        start += size
    return tuple(grads)


_concatenate = _prim(
    "concatenate", _concat_vjp, fwd=lambda B, *xs, axis: B.concatenate(list(xs), axis)
)


@keras_op
def concatenate(xs: Sequence[Any], axis: int = 0):
    return _concatenate(*xs, axis=axis)


getitem = _prim(
    "getitem", lambda B, g, n: (B.scatter_slice(tuple(B.shape(n.args[0])), n.args[1], g), None)
)
scatter_slice = _prim(
    "scatter_slice",
    lambda B, g, n: (None, None, unbroadcast(B, B.getitem(g, n.args[1]), _shape(B, n.args[2]))),
)
broadcast_to = _prim(
    "broadcast_to", lambda B, g, n: (unbroadcast(B, g, tuple(B.shape(n.args[0]))), None)
)

# -- gather
#: rows of an array (axis 0) at integer indices; the public ``take`` (below) adds ``axis``
_take_rows = _prim(
    "take", lambda B, g, n: (B.scatter_add(tuple(B.shape(n.args[0])), n.args[1], g), None)
)
scatter_add = _prim("scatter_add", lambda B, g, n: (None, None, B.take(g, n.args[1])))

# -- neural-network kernels -----------------------------------------------------------------------


def _softmax_grad(B, y, g, axis=-1):
    """``y * (g - sum(g * y, axis))``: the pullback of ``g`` through a softmax whose output
    is ``y`` (the backend's optional ``softmax_grad`` kernel along the last axis)."""
    if axis == -1 or axis == len(B.shape(y)) - 1:
        kernel = getattr(B, "softmax_grad", None)
        if kernel is not None:
            return kernel(y, g)
    s = B.sum(B.multiply(g, y), axis=axis, keepdims=True)
    return B.multiply(y, B.subtract(g, s))


def _softmax_vjp(B, g, n):
    # the forward output, kept on the tape, is not computed again
    return (_softmax_grad(B, n.value, g, n.kwargs.get("axis", -1)),)


softmax = _prim("softmax", _softmax_vjp, keywords=("axis",))


# -- attention (issue 21) ------------------------------------------------------------------------
# softmax(scale * q k^T + bias) is one op whose output (the weights) stays on the tape: its
# VJP needs nothing else, and a backend may compute it with one large temporary (the optional
# ``attention_weights`` kernel) instead of the four or five of the composition.
def _attention_weights_fwd(B, q, k, bias=None, scale=1.0):
    kernel = getattr(B, "attention_weights", None)
    if kernel is not None:
        return kernel(q, k, bias, scale)
    s = B.matmul(q, _swap_last(B, k))
    if scale != 1.0:
        s = B.multiply(s, scale)
    if bias is not None:
        s = B.add(s, bias)
    return B.softmax(s, axis=-1)


def _attention_weights_vjp(B, g, n):
    q, k, bias = n.args
    scale = n.kwargs.get("scale", 1.0)
    dz = _softmax_grad(B, n.value, g)  # d(loss)/d(scale * q k^T + bias)
    gq = gk = gb = None
    if type(n.parents[0]) is Traced:
        gq = B.matmul(dz, k)
        gq = unbroadcast(B, gq if scale == 1.0 else B.multiply(gq, scale), _shape(B, q))
    if type(n.parents[1]) is Traced:
        gk = B.matmul(_swap_last(B, dz), q)
        gk = unbroadcast(B, gk if scale == 1.0 else B.multiply(gk, scale), _shape(B, k))
    if type(n.parents[2]) is Traced:
        gb = unbroadcast(B, dz, _shape(B, bias))
    return gq, gk, gb


#: ``softmax(scale * q @ swapaxes(k, -1, -2) + bias, axis=-1)``: attention weights of
#: queries ``q`` (..., t, h) over keys ``k`` (..., s, h), with an optional additive ``bias``
#: broadcastable to (..., t, s).
attention_weights = _prim(
    "attention_weights",
    _attention_weights_vjp,
    _attention_weights_fwd,
    keywords=("scale",),
    n_inputs=3,
)


# -- layer normalization over the trailing axes (issue 21) ---------------------------------------
# One op instead of about ten: the forward is the backend's optional ``layer_norm`` kernel
# (FusedKernels) or the composition below; the VJP recomputes the statistics from the input.
def _ln_centered(B, x, num_axes, epsilon):
    """``x - mean`` and ``1 / sqrt(var + epsilon)`` over the last ``num_axes`` axes."""
    nd = len(B.shape(x))
    axes = tuple(range(nd - num_axes, nd))
    inv_n = 1.0 / math.prod(B.shape(x)[nd - num_axes :])
    xc = B.subtract(x, B.multiply(B.sum(x, axis=axes, keepdims=True), inv_n))
    var = B.multiply(B.sum(B.square(xc), axis=axes, keepdims=True), inv_n)
    return xc, B.divide(1.0, B.sqrt(B.add(var, epsilon))), axes, inv_n


def _layer_norm_fwd(B, x, gamma, beta, num_axes=1, epsilon=1e-3):
    kernel = getattr(B, "layer_norm", None)
    if kernel is not None:
        return kernel(x, gamma, beta, num_axes, epsilon)
    xc, r, _, _ = _ln_centered(B, x, num_axes, epsilon)
    y = B.multiply(xc, r if gamma is None else B.multiply(r, gamma))
    return y if beta is None else B.add(y, beta)


def _layer_norm_vjp(B, g, n):
    x, gamma, beta = n.args
    num_axes = n.kwargs.get("num_axes", 1)
    xc, r, axes, inv_n = _ln_centered(B, x, num_axes, n.kwargs.get("epsilon", 1e-3))
    xh = B.multiply(xc, r)
    lead = tuple(range(len(B.shape(x)) - num_axes))
    gx = ggamma = gbeta = None
    if type(n.parents[2]) is Traced:
        gbeta = B.sum(g, axis=lead)
    if type(n.parents[1]) is Traced:
        ggamma = B.sum(B.multiply(g, xh), axis=lead)
    if type(n.parents[0]) is Traced:
        gh = g if gamma is None else B.multiply(g, gamma)
        m1 = B.multiply(B.sum(gh, axis=axes, keepdims=True), inv_n)
        m2 = B.multiply(B.sum(B.multiply(gh, xh), axis=axes, keepdims=True), inv_n)
        gx = B.multiply(r, B.subtract(B.subtract(gh, m1), B.multiply(xh, m2)))
    return gx, ggamma, gbeta


#: Layer normalization over the last ``num_axes`` axes of ``x``: ``(x - mean) / sqrt(var +
#: epsilon) * gamma + beta``, with ``gamma``/``beta`` shaped like those axes (or None).
layer_norm = _prim(
    "layer_norm", _layer_norm_vjp, _layer_norm_fwd, keywords=("num_axes", "epsilon"), n_inputs=3
)


def attend(q, k, v, bias=None, scale: float = 1.0):
    """``attention_weights(q, k, bias, scale) @ v`` in the (batch, heads, positions, size)
    layout: the backend's fused ``scaled_dot_product_attention`` kernel where it has one and
    differentiates by itself (torch's SDPA), else the weights op and a matmul."""
    found = fused_kernel("scaled_dot_product_attention", q, k, v, bias)
    if found is not None:
        kernel, raws = found
        return kernel(*raws, scale=scale)
    return matmul(attention_weights(q, k, bias, scale=scale), v)


def _conv_vjp(B, g, n):
    x, k = n.args
    kw = n.kwargs
    gx = gk = None
    # the expensive halves are computed only for inputs that are recorded (need gradients)
    if type(n.parents[0]) is Traced:
        gx = B.conv2d_input_grad(
            g,
            k,
            tuple(B.shape(x)),
            kw["strides"],
            kw["padding"],
            kw["data_format"],
            kw.get("dilation_rate", (1, 1)),
            **_groups(kw),
        )
    if type(n.parents[1]) is Traced:
        gk = B.conv2d_kernel_grad(
            x,
            g,
            tuple(B.shape(k)),
            kw["strides"],
            kw["padding"],
            kw["data_format"],
            kw.get("dilation_rate", (1, 1)),
            **_groups(kw),
        )
    return gx, gk


def _groups(kw) -> dict:
    """``groups=`` for a backend's convolution kernels, only where it is not 1 (a backend
    written before grouped convolutions need not take the keyword)."""
    groups = kw.get("groups", 1)
    return {} if groups == 1 else {"groups": groups}


conv2d = _prim("conv2d", _conv_vjp)


def _conv_input_grad_vjp(B, g, n):
    # conv2d_input_grad(y, k) is the adjoint of the convolution x -> conv2d(x, k), linear in
    # y and in k: it is the transposed convolution (Conv2DTranspose), and so
    # d/dy = conv2d(g, k) and d/dk = conv2d_kernel_grad(g, y) with the same geometry
    y, k = n.args[0], n.args[1]
    kw = n.kwargs
    geometry = (kw["strides"], kw["padding"], kw["data_format"], kw.get("dilation_rate", (1, 1)))
    gy = gk = None
    if type(n.parents[0]) is Traced:
        gy = B.conv2d(g, k, *geometry, **_groups(kw))
    if type(n.parents[1]) is Traced:
        gk = B.conv2d_kernel_grad(g, y, tuple(B.shape(k)), *geometry, **_groups(kw))
    return gy, gk, None


conv2d_input_grad = _prim("conv2d_input_grad", _conv_input_grad_vjp)
conv2d_kernel_grad = _prim("conv2d_kernel_grad")


def _pool_vjp(B, g, n):
    x = n.args[0]
    kw = n.kwargs
    return (
        B.pool2d_grad(
            x, g, kw["pool_size"], kw["strides"], kw["padding"], kw["data_format"], kw["mode"]
        ),
    )


pool2d = _prim("pool2d", _pool_vjp)
pool2d_grad = _prim("pool2d_grad")


# -- not differentiated: plain passthroughs
def _value(x):
    x = _resolve(x)
    return x.value if type(x) is Traced else x


def fused_kernel(name: str, *args):
    """The backend's optional fused kernel ``name`` (see polykeras.contract.FusedKernels) and
    the raw arrays of ``args``, or None: where the backend has no such kernel, or the core's
    tape is recording one of ``args`` (the kernel has no VJP; the caller then composes the
    same computation from primitives).  ``None`` arguments stay None."""
    kernel = getattr(_backend.current(), name, None)
    if kernel is None:
        return None
    raws = []
    for a in args:
        a = _resolve(a)
        if type(a) is Traced:
            return None
        raws.append(a)
    return kernel, raws


def raw_or_none(x):
    """The backend array behind ``x``, or None while the core's tape records ``x``."""
    x = _resolve(x)
    return None if type(x) is Traced else x


def shape(x) -> tuple[int, ...]:
    if type(x) is _KerasTensor:
        return x.shape
    return tuple(_backend.current().shape(_value(x)))


def ndim(x) -> int:
    return len(shape(x))


def dtype_name(x) -> str:
    if type(x) is _KerasTensor:
        return x.dtype
    return _backend.current().dtype_name(_value(x))


@keras_op
def stop_gradient(x):
    return _backend.current().stop_gradient(_value(x))


def asarray(x, dtype: str | None = None):
    return _backend.current().asarray(x, dtype)


def to_numpy(x):
    return _backend.current().to_numpy(_value(x))


def convert_to_numpy(x):
    """A NumPy copy of a backend array, a variable or a value being differentiated (Keras
    3's ``keras.ops.convert_to_numpy``); anything else goes through ``np.asarray``."""
    x = _resolve(x)
    if type(x) is _KerasTensor:
        raise ValueError(
            "convert_to_numpy: a symbolic tensor (from keras.Input or a layer called on "
            "one) has no value yet; call the model on data and convert its output"
        )
    B = _backend.current()
    if type(x) is Traced or B.is_native(x):
        return _np.array(B.to_numpy(_value(x)))
    return _np.array(x)


def zeros(shape, dtype: str = "float32"):
    return _backend.current().zeros(tuple(shape), dtype)


def ones(shape, dtype: str = "float32"):
    return _backend.current().ones(tuple(shape), dtype)


# -- composites
@keras_op
def expand_dims(x, axis: int):
    s = list(shape(x))
    axis = axis if axis >= 0 else len(s) + axis + 1
    s.insert(axis, 1)
    return reshape(x, tuple(s))


@keras_op
def stack(xs: Sequence[Any], axis: int = 0):
    return concatenate([expand_dims(x, axis) for x in xs], axis=axis)


@keras_op
def square_sum(x, axis=None, keepdims=False):
    return sum(square(x), axis=axis, keepdims=keepdims)


@keras_op
def l2_normalize(x, axis=-1, eps=1e-12):
    norm = sqrt(maximum(square_sum(x, axis=axis, keepdims=True), eps))
    return divide(x, norm)


@keras_op
def log_sigmoid(x):
    return neg(softplus(neg(x)))


@keras_op
def elu(x, alpha=1.0):
    return where(greater(_value(x), 0), x, multiply(subtract(exp(minimum(x, 0.0)), 1.0), alpha))


@keras_op
def hard_sigmoid(x):
    return clip(add(multiply(x, 0.2), 0.5), 0.0, 1.0)


@keras_op
def selu(x):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return multiply(elu(x, alpha), scale)


def linear(x):
    return x


@keras_op
def softsign(x):
    return divide(x, add(abs(x), 1.0))


@keras_op
def swish(x):
    return multiply(x, sigmoid(x))


@keras_op
def gelu(x, approximate=True):
    """Keras 3's ``ops.gelu``: the tanh approximation by default (``approximate=True``, as
    ``keras.ops.gelu``), the exact erf form with ``approximate=False`` (the default of
    ``activations.gelu``)."""
    if not isinstance(approximate, bool):
        raise TypeError(f"gelu: approximate must be True or False, got {approximate!r}")
    if not approximate:
        from .activations import _gelu_erf  # activations imports this module

        return _gelu_erf(x)
    c = math.sqrt(2.0 / math.pi)
    inner = multiply(add(x, multiply(power(x, 3.0), 0.044715)), c)
    return multiply(multiply(x, 0.5), add(tanh(inner), 1.0))


# -- Keras 3's public names (``keras.ops``), composed from the primitives above ----------------
# Each is registered in OPS, so on symbolic tensors it is one node of the graph, saved by name.
absolute = abs
negative = neg


@keras_op
def less_equal(x1, x2):
    return greater_equal(x2, x1)


@keras_op
def not_equal(x1, x2):
    return logical_not(equal(x1, x2))


@keras_op
def logical_not(x):
    return equal(cast(x, "bool"), False)


@keras_op
def logical_and(x1, x2):
    return greater(multiply(cast(x1, "float32"), cast(x2, "float32")), 0.0)


@keras_op
def logical_or(x1, x2):
    return greater(add(cast(x1, "float32"), cast(x2, "float32")), 0.0)


@keras_op
def convert_to_tensor(x, dtype: str | None = None):
    x = _resolve(x)
    B = _backend.current()
    if type(x) is Traced or B.is_native(x):
        return x if dtype is None or dtype_name(x) == dtype else cast(x, dtype)
    return B.asarray(x, dtype)


def _float_dtype(x) -> str:
    if isinstance(x, (int, float)):
        return "float32"
    d = dtype_name(x)
    return d if d.startswith("float") else "float32"


@keras_op
def floor(x):
    """Largest integer <= x (through an int64 cast: exact for |x| < 2**53)."""
    dt = _float_dtype(x)
    t = cast(cast(x, "int64"), dt)
    return where(greater(t, x), subtract(t, 1.0), t)


@keras_op
def ceil(x):
    return neg(floor(neg(x)))


@keras_op
def round(x, decimals: int = 0):  # noqa: A001
    """Round half to even, as NumPy and Keras do."""
    if decimals:
        scale = 10.0**decimals
        return divide(round(multiply(x, scale)), scale)
    dt = _float_dtype(x)
    r = floor(add(x, 0.5))
    # halfway and odd: step down to the even neighbour
    tie = equal(subtract(r, x), 0.5)
    odd = equal(subtract(r, multiply(floor(multiply(r, 0.5)), 2.0)), 1.0)
    return where(logical_and(tie, odd), subtract(r, 1.0), cast(r, dt))


@keras_op
def floor_divide(x1, x2):
    return floor(divide(x1, x2))


@keras_op
def mod(x1, x2):
    return subtract(x1, multiply(floor_divide(x1, x2), x2))


@keras_op
def min(x, axis=None, keepdims: bool = False):  # noqa: A001
    return neg(max(neg(x), axis=axis, keepdims=keepdims))


@keras_op
def argmin(x, axis: int | None = None):
    return argmax(neg(x), axis=axis)


@keras_op
def var(x, axis=None, keepdims: bool = False):
    centred = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(centred), axis=axis, keepdims=keepdims)


@keras_op
def std(x, axis=None, keepdims: bool = False):
    return sqrt(var(x, axis=axis, keepdims=keepdims))


@keras_op
def prod(x, axis=None, keepdims: bool = False):
    """Product over ``axis`` by pairwise halving (log2(n) products): exact to rounding,
    with the true gradient where a factor is zero."""
    x = convert_to_tensor(x)
    s = tuple(shape(x))
    nd = len(s)
    axes = tuple(sorted(_norm_axes(axis, nd))) if nd else ()
    if not axes:
        return x
    kept = tuple(i for i in range(nd) if i not in axes)
    if axes != tuple(range(nd - len(axes), nd)):
        x = transpose(x, kept + axes)
    lead = tuple(s[i] for i in kept)
    n = 1
    for a in axes:
        n *= s[a]
    y = reshape(x, lead + (n,))
    if n == 0:
        y = ones(lead + (1,), dtype_name(x))
    while shape(y)[-1] > 1:
        m = shape(y)[-1]
        if m % 2:
            y = _concatenate(y, ones(lead + (1,), dtype_name(y)), axis=len(lead))
            m += 1
        half = m // 2
        y = multiply(
            getitem(y, (Ellipsis, _builtins.slice(0, half))),
            getitem(y, (Ellipsis, _builtins.slice(half, m))),
        )
    return reshape(y, _keep_shape(s, axes) if keepdims else lead)


@keras_op
def logsumexp(x, axis=None, keepdims: bool = False):
    m = stop_gradient(max(x, axis=axis, keepdims=True))
    out = add(log(sum(exp(subtract(x, m)), axis=axis, keepdims=True)), m)
    if not keepdims:
        out = reshape(out, _reduced_shape(shape(x), axis))
    return out


def _reduced_shape(shape_, axis):
    axes = _norm_axes(axis, len(shape_))
    return tuple(s for i, s in enumerate(shape_) if i not in axes)


@keras_op
def log_softmax(x, axis: int = -1):
    return subtract(x, logsumexp(x, axis=axis, keepdims=True))


@keras_op
def leaky_relu(x, negative_slope: float = 0.2):
    return where(greater(x, 0.0), x, multiply(x, negative_slope))


@keras_op
def relu6(x):
    return clip(x, 0.0, 6.0)


silu = swish


@keras_op
def mish(x):
    return multiply(x, tanh(softplus(x)))


@keras_op
def squeeze(x, axis=None):
    s = shape(x)
    if axis is None:
        keep = tuple(d for d in s if d != 1)
    else:
        axes = _norm_axes(axis, len(s))
        for a in axes:
            if s[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {tuple(s)} has size {s[a]}, not 1")
        keep = tuple(d for i, d in enumerate(s) if i not in axes)
    return reshape(x, keep)


@keras_op
def tile(x, repeats):
    s = shape(x)
    repeats = (repeats,) if isinstance(repeats, int) else tuple(repeats)
    if len(repeats) > len(s):
        x = reshape(x, (1,) * (len(repeats) - len(s)) + tuple(s))
        s = shape(x)
    repeats = (1,) * (len(s) - len(repeats)) + repeats
    for axis, r in enumerate(repeats):
        if r != 1:
            x = _concatenate(*([x] * r), axis=axis)
    return x


@keras_op
def repeat(x, repeats: int, axis=None):
    """Each element ``repeats`` times along ``axis`` (flattened first when None)."""
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    s = shape(x)
    axis %= len(s)
    y = expand_dims(x, axis + 1)
    y = broadcast_to(y, tuple(s[: axis + 1]) + (repeats,) + tuple(s[axis + 1 :]))
    return reshape(y, tuple(s[:axis]) + (s[axis] * repeats,) + tuple(s[axis + 1 :]))


@keras_op
def arange(start, stop=None, step=1, dtype: str | None = None):
    import numpy as np

    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None:
        dtype = "int32" if values.dtype.kind in "iu" else "float32"
    return _backend.current().asarray(values.astype(dtype))


@keras_op
def eye(N: int, M: int | None = None, k: int = 0, dtype: str = "float32"):  # noqa: N803
    import numpy as np

    return _backend.current().asarray(np.eye(N, M, k, dtype=dtype))


@keras_op
def full(shape, fill_value, dtype: str = "float32"):
    return multiply(ones(shape, dtype), fill_value)


@keras_op
def zeros_like(x, dtype: str | None = None):
    return zeros(shape(x), dtype or dtype_name(x))


@keras_op
def ones_like(x, dtype: str | None = None):
    return ones(shape(x), dtype or dtype_name(x))


@keras_op
def full_like(x, fill_value, dtype: str | None = None):
    return full(shape(x), fill_value, dtype or dtype_name(x))


@keras_op
def one_hot(x, num_classes: int, axis: int = -1, dtype: str = "float32"):
    classes = arange(num_classes, dtype="int64")
    hot = cast(equal(expand_dims(cast(x, "int64"), -1), classes), dtype)
    if axis != -1:
        nd = ndim(hot)
        axis %= nd
        order = list(range(nd - 1))
        order.insert(axis, nd - 1)
        hot = transpose(hot, tuple(order))
    return hot


@keras_op
def dot(x1, x2):
    """NumPy's dot for the common cases: a scalar, 1-D vectors, or matrix-like operands."""
    n1, n2 = ndim(x1), ndim(x2)
    if n1 == 0 or n2 == 0:
        return multiply(x1, x2)
    if n1 == 1 and n2 == 1:
        return sum(multiply(x1, x2))
    if n2 <= 2:
        return matmul(x1, x2)
    raise ValueError(
        f"dot: an operand of {n2} dimensions on the right (shapes {shape(x1)} and "
        f"{shape(x2)}) is not supported; use matmul or einsum-free reshapes"
    )


@keras_op
def swapaxes(x, axis1: int, axis2: int):
    nd = ndim(x)
    order = list(range(nd))
    order[axis1 % nd], order[axis2 % nd] = order[axis2 % nd], order[axis1 % nd]
    return transpose(x, tuple(order))


@keras_op
def categorical_crossentropy(target, output, from_logits: bool = False, axis: int = -1):
    """Per-sample crossentropy of probabilities (or logits) ``output`` against ``target``."""
    if from_logits:
        return neg(sum(multiply(target, log_softmax(output, axis=axis)), axis=axis))
    output = divide(output, sum(output, axis=axis, keepdims=True))
    eps = _epsilon()
    output = clip(output, eps, 1.0 - eps)
    return neg(sum(multiply(target, log(output)), axis=axis))


@keras_op
def sparse_categorical_crossentropy(target, output, from_logits: bool = False, axis: int = -1):
    if axis == -1 or axis == ndim(output) - 1:  # the label's entry only, no one-hot rows
        return sparse_crossentropy(target, output, from_logits=from_logits)
    n = shape(output)[axis]
    t = target
    if ndim(t) == ndim(output):  # labels of shape (..., 1)
        t = squeeze(t, axis=-1)
    return categorical_crossentropy(
        one_hot(t, n, dtype=dtype_name(output)), output, from_logits=from_logits, axis=axis
    )


@keras_op
def binary_crossentropy(target, output, from_logits: bool = False):
    """Elementwise crossentropy of probabilities (or logits) ``output`` against ``target``."""
    if from_logits:
        # max(x, 0) - x * t + log(1 + exp(-|x|)), the stable form
        return add(subtract(relu(output), multiply(output, target)), softplus(neg(abs(output))))
    eps = _epsilon()
    output = clip(output, eps, 1.0 - eps)
    return neg(
        add(
            multiply(target, log(output)),
            multiply(subtract(1.0, target), log(subtract(1.0, output))),
        )
    )


def _epsilon() -> float:
    from . import config

    return config.epsilon()


@keras_op
def batch_dot(x, y, axes=None):
    """Keras 2's ``batch_dot`` for 2-D and 3-D operands (the cases real code uses)."""
    nx, ny = ndim(x), ndim(y)
    if isinstance(axes, int):
        axes = (axes, axes)
    if axes is None:
        axes = (nx - 1, ny - 2 if ny > 2 else ny - 1)
    ax, ay = axes[0] % nx, axes[1] % ny
    if nx == 2 and ny == 2:
        if ax != 1 or ay != 1:
            raise ValueError(f"batch_dot: axes {axes} over the batch axis are not supported")
        return sum(multiply(x, y), axis=1, keepdims=True)
    if nx > 3 or ny > 3 or 0 in (ax, ay):
        raise ValueError(
            f"batch_dot: operands of shapes {shape(x)} and {shape(y)} with axes={axes} are "
            "not supported (2-D or 3-D operands, contracting a non-batch axis)"
        )
    if nx == 2:
        x = expand_dims(x, 1)
        ax = 2
    squeeze_y = ny == 2
    if squeeze_y:
        y = expand_dims(y, 2)
        ay = 1
    if ax == 1:
        x = swapaxes(x, 1, 2)
    if ay == 2:
        y = swapaxes(y, 1, 2)
    out = matmul(x, y)
    if nx == 2:
        out = squeeze(out, axis=1)
    if squeeze_y:
        out = squeeze(out, axis=-1)
    return out


# -- crossentropy on logits (helper F, issue 21) ----------------------------------------------
# tf.keras 2 computes a crossentropy from the logits when the prediction is the output of a
# softmax or sigmoid op.  While a trainer computes its losses it opens a table
# (:func:`logits_scope`, per thread); the softmax and sigmoid primitives then note each
# output with its input, and the losses ask :func:`logits_of` for the logits of y_pred.
_logits_table: _contextvars.ContextVar[dict[int, tuple] | None] = _contextvars.ContextVar(
    "polykeras_logits_table", default=None
)


class _NotingPrimitive(Primitive):
    """A primitive whose outputs are noted with their input while a logits table is open."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        if self.keywords and len(args) > self.n_inputs:
            args, kwargs = self._as_keywords(args, kwargs)
        out = Primitive.__call__(self, *args, **kwargs)
        table = _logits_table.get()
        if table is not None and args and (self.name != "softmax" or _last_axis(out, kwargs)):
            table[id(out)] = (self.name, args[0], out)
        return out


def _last_axis(out, kwargs) -> bool:
    axis = kwargs.get("axis", -1)
    return isinstance(axis, int) and (axis == -1 or axis == len(shape(out)) - 1)


# the same primitives (name, VJP), now noting their outputs
sigmoid = PRIMITIVES["sigmoid"] = OPS["sigmoid"] = _NotingPrimitive("sigmoid", _sigmoid_vjp)
softmax = PRIMITIVES["softmax"] = OPS["softmax"] = _NotingPrimitive(
    "softmax", _softmax_vjp, keywords=("axis",)
)


@_contextlib.contextmanager
def logits_scope():
    """While open (in this thread), softmax and sigmoid outputs can be traced back to
    their logits by :func:`logits_of`."""
    token = _logits_table.set({})
    try:
        yield
    finally:
        _logits_table.reset(token)


def logits_of(y_pred, activation: str):
    """The input of the ``activation`` ("softmax" or "sigmoid") op whose output is exactly
    ``y_pred``, inside a :func:`logits_scope`; None otherwise."""
    table = _logits_table.get()
    if table is None:
        return None
    entry = table.get(id(y_pred))
    if entry is None or entry[0] != activation or entry[2] is not y_pred:
        return None
    return entry[1]


def _log_softmax_raw(B, x):
    z = B.subtract(x, B.stop_gradient(B.max(x, axis=-1, keepdims=True)))
    return B.subtract(z, B.log(B.sum(B.exp(z), axis=-1, keepdims=True)))


def _softmax_xent_fwd(B, target, logits):
    kernel = getattr(B, "softmax_crossentropy", None)
    if kernel is not None:
        return kernel(target, logits)
    return B.neg(B.sum(B.multiply(target, _log_softmax_raw(B, logits)), axis=-1))


def _softmax_xent_vjp(B, g, n):
    t, x = n.args
    ge = B.reshape(g, tuple(B.shape(g)) + (1,))
    gt = gx = None
    if type(n.parents[1]) is Traced:
        p = B.softmax(x, axis=-1)
        gx = B.multiply(ge, B.subtract(B.multiply(p, B.sum(t, axis=-1, keepdims=True)), t))
        gx = unbroadcast(B, gx, _shape(B, x))
    if type(n.parents[0]) is Traced:
        gt = unbroadcast(B, B.neg(B.multiply(ge, _log_softmax_raw(B, x))), _shape(B, t))
    return gt, gx


#: ``-sum(target * log_softmax(logits), axis=-1)``, one op (backends may fuse it:
#: the optional ``softmax_crossentropy`` kernel).
softmax_crossentropy = _prim("softmax_crossentropy", _softmax_xent_vjp, _softmax_xent_fwd)


def _sigmoid_xent_fwd(B, target, logits):
    kernel = getattr(B, "sigmoid_crossentropy", None)
    if kernel is not None:
        return kernel(target, logits)
    # -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) = softplus(x) - t x, stable
    return B.subtract(B.softplus(logits), B.multiply(target, logits))


def _sigmoid_xent_vjp(B, g, n):
    t, x = n.args
    gt = gx = None
    if type(n.parents[1]) is Traced:
        gx = unbroadcast(B, B.multiply(g, B.subtract(B.sigmoid(x), t)), _shape(B, x))
    if type(n.parents[0]) is Traced:
        gt = unbroadcast(B, B.neg(B.multiply(g, x)), _shape(B, t))
    return gt, gx


#: Elementwise ``-(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))`` from the logits ``x``,
#: one op (backends may fuse it: the optional ``sigmoid_crossentropy`` kernel).
sigmoid_crossentropy = _prim("sigmoid_crossentropy", _sigmoid_xent_vjp, _sigmoid_xent_fwd)


# -- sparse crossentropy without one-hot targets (issue 21) ------------------------------------
# The label's entry of each row is picked (``take_along_last``) instead of multiplying by a
# one-hot matrix: one gather forward; the VJPs build the one-hot rows only on the core's tape.
def _label_rows(B, labels, like):
    """``labels`` as one-hot rows in ``like``'s dtype (the scatter along the last axis)."""
    n = B.shape(like)[-1]
    classes = B.asarray(_np.arange(n, dtype=_np.int64))
    hot = B.equal(B.reshape(labels, tuple(B.shape(labels)) + (1,)), classes)
    return B.cast(hot, B.dtype_name(like))


def _take_along_last_vjp(B, g, n):
    x, labels = n.args
    rows = _label_rows(B, labels, x)
    return B.multiply(rows, B.reshape(g, tuple(B.shape(g)) + (1,))), None


#: ``x[..., indices]`` row by row: ``indices`` (integers in [0, x.shape[-1])) has the shape of
#: ``x`` without its last axis, and so has the result.
take_along_last = _prim("take_along_last", _take_along_last_vjp)


def _sparse_xent_fwd(B, labels, logits):
    kernel = getattr(B, "sparse_softmax_crossentropy", None)
    if kernel is not None:
        return kernel(labels, logits)
    m = B.stop_gradient(B.max(logits, axis=-1, keepdims=True))
    lse = B.add(B.log(B.sum(B.exp(B.subtract(logits, m)), axis=-1, keepdims=True)), m)
    lse = B.reshape(lse, tuple(B.shape(labels)))
    return B.subtract(lse, B.take_along_last(logits, labels))


def _sparse_xent_vjp(B, g, n):
    labels, x = n.args
    ge = B.reshape(g, tuple(B.shape(g)) + (1,))
    return None, B.multiply(ge, B.subtract(B.softmax(x, axis=-1), _label_rows(B, labels, x)))


#: ``-log_softmax(logits)[..., labels]``: the sparse crossentropy from logits, one op
#: (backends may fuse it: the optional ``sparse_softmax_crossentropy`` kernel, e.g. torch's
#: ``cross_entropy`` with class indices); :func:`sparse_crossentropy` calls it.
sparse_softmax_crossentropy = _prim(
    "sparse_softmax_crossentropy", _sparse_xent_vjp, _sparse_xent_fwd
)


def class_labels(labels, y_pred):
    """Integer class labels for ``y_pred`` (probabilities or logits, classes on the last
    axis): shaped like ``y_pred`` without its last axis (a trailing axis of 1 is dropped, as
    Keras does), cast to int64 when given as floats.  Never differentiated."""
    B = _backend.current()
    t = _value(labels)
    t = B.stop_gradient(t if B.is_native(t) else B.asarray(t))
    pred_shape = tuple(shape(y_pred))
    t_shape = tuple(B.shape(t))
    if len(t_shape) == len(pred_shape) and t_shape and t_shape[-1] == 1:
        t_shape = t_shape[:-1]
        t = B.reshape(t, t_shape)
    if t_shape != pred_shape[:-1]:
        raise ValueError(
            f"sparse categorical crossentropy: labels of shape {tuple(B.shape(labels))} do "
            f"not fit predictions of shape {pred_shape}; expected one integer class label per "
            f"prediction row, shape {pred_shape[:-1]} (or {pred_shape[:-1] + (1,)})"
        )
    if not B.dtype_name(t).startswith(("int", "uint")):
        t = B.cast(t, "int64")
    return t


def sparse_crossentropy(labels, y_pred, from_logits: bool = False):
    """Per-row crossentropy of integer class ``labels`` (see :func:`class_labels`) against
    probabilities ``y_pred``, or logits with ``from_logits``.  Probabilities: ``-log(p[label])``
    with ``p = y_pred / sum(y_pred)`` clipped to [eps, 1 - eps], the same numbers as the
    one-hot form ``-sum(one_hot * log(clip(p)))`` from the label's entry only."""
    t = class_labels(labels, y_pred)
    try:
        if from_logits:
            return sparse_softmax_crossentropy(t, y_pred)
        eps = _epsilon()
        picked = divide(take_along_last(y_pred, t), sum(y_pred, axis=-1))
        return neg(log(clip(picked, eps, 1.0 - eps)))
    except IndexError as err:
        raise IndexError(
            f"sparse categorical crossentropy: class labels must lie in "
            f"[0, {shape(y_pred)[-1]}) for predictions of shape {tuple(shape(y_pred))} ({err})"
        ) from err


# -- Keras 3's ops beyond the basics (issue 14) ----------------------------------------------
# New primitives (erf, log1p, expm1, sin, cos, the cumulative sum, argsort) run the backend's
# optional kernel of the same name where it has one (contract.OPTIONAL) and otherwise the same
# math composed from the required primitives; their VJPs are here, as for every primitive.
# Everything else is composed from primitives, so the core's tape differentiates it as is.


def _axis_index(op: str, axis, nd: int) -> int:
    """``axis`` as a non-negative int for an array of ``nd`` dimensions, or a clear error."""
    if isinstance(axis, bool) or not isinstance(axis, (int, _np.integer)):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -nd <= axis < _builtins.max(nd, 1):
        raise ValueError(
            f"{op}: axis {axis} is out of range for an array of {nd} dimension(s) "
            f"(expected an int from {-nd} to {nd - 1})"
        )
    return int(axis) % _builtins.max(nd, 1)


def _axes_tuple(op: str, axis, nd: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a sequence of ints) as distinct non-negative axes, in the
    order given (every axis for None)."""
    if axis is None:
        return tuple(range(nd))
    items = (axis,) if isinstance(axis, (int, _np.integer)) else tuple(axis)
    axes = tuple(_axis_index(op, a, nd) for a in items)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: axis {axis!r} names an axis twice")
    return axes


def _raw_key(nd: int, axis: int, part):
    return (_builtins.slice(None),) * axis + (part,) + (_builtins.slice(None),) * (nd - axis - 1)


def _kernel_or(name: str, fallback: Callable) -> Callable:
    """A primitive's forward pass: the backend's optional kernel ``name``, else ``fallback``
    composed from required primitives.  Python numbers become backend arrays first."""

    def fwd(B, x, *rest, **kwargs):
        if not B.is_native(x):
            x = B.asarray(_np.asarray(x, dtype=_np.result_type(x, _np.float32)))
        x = _float_input(B, x)
        kernel = getattr(B, name, None)
        return kernel(x, *rest, **kwargs) if kernel is not None else fallback(B, x, *rest, **kwargs)

    return fwd


def _float_input(B, x):
    """Integer and bool arrays as float32 (Keras' floatx), as the float ops of Keras 3 do."""
    return x if B.dtype_name(x).startswith(("float", "complex")) else B.cast(x, "float32")


# erfc on [0, inf) as a Chebyshev-fitted exponential (Numerical Recipes' erfcc): relative
# error below 1.2e-7 everywhere, i.e. float32 precision, for backends without an erf kernel
_ERFC_COEFFS = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def _erf_fallback(B, x):
    c = _ERFC_COEFFS
    x = _float_input(B, x)
    z = B.abs(x)
    t = B.divide(1.0, B.add(B.multiply(z, 0.5), 1.0))
    poly = B.multiply(t, c[-1])
    for ci in reversed(c[1:-1]):
        poly = B.multiply(t, B.add(poly, ci))
    erfc = B.multiply(t, B.exp(B.add(B.subtract(poly, B.square(z)), c[0])))
    return B.where(B.greater_equal(x, 0.0), B.subtract(1.0, erfc), B.subtract(erfc, 1.0))


def _log1p_fallback(B, x):
    # Kahan's form: log(u) * x / (u - 1) with u = 1 + x is exact to rounding where u != 1
    x = _float_input(B, x)
    u = B.add(x, 1.0)
    one = B.equal(u, 1.0)
    safe = B.where(one, 2.0, u)
    return B.where(one, x, B.divide(B.multiply(B.log(safe), x), B.subtract(safe, 1.0)))


def _expm1_fallback(B, x):
    # Kahan's form: (u - 1) * x / log(u) with u = exp(x), where u is neither 1 nor 0
    x = _float_input(B, x)
    u = B.exp(x)
    one, zero = B.equal(u, 1.0), B.equal(u, 0.0)
    safe = B.where(one, 2.0, B.where(zero, 2.0, u))
    body = B.divide(B.multiply(B.subtract(safe, 1.0), x), B.log(safe))
    return B.where(one, x, B.where(zero, -1.0, body))


def _host_fallback(fn_name: str) -> Callable:
    """A kernel computed by NumPy on the host, for a backend without the optional kernel
    (differentiated by the core's VJP; a backend that differentiates by itself should
    supply the kernel)."""

    def fallback(B, x, *rest):
        return B.asarray(getattr(_np, fn_name)(B.to_numpy(x), *rest))

    return fallback


def _erf_vjp(B, g, n):
    x = n.args[0]
    return (B.multiply(g, B.multiply(B.exp(B.neg(B.square(x))), 2.0 / math.sqrt(math.pi))),)


erf = _prim("erf", _erf_vjp, _kernel_or("erf", _erf_fallback))
log1p = _prim(
    "log1p",
    lambda B, g, n: (B.divide(g, B.add(n.args[0], 1.0)),),
    _kernel_or("log1p", _log1p_fallback),
)
expm1 = _prim(
    "expm1",
    lambda B, g, n: (B.multiply(g, B.exp(n.args[0])),),
    _kernel_or("expm1", _expm1_fallback),
)
sin = _prim(
    "sin",
    lambda B, g, n: (B.multiply(g, _cos_raw(B, n.args[0])),),
    _kernel_or("sin", _host_fallback("sin")),
)
cos = _prim(
    "cos",
    lambda B, g, n: (B.neg(B.multiply(g, _sin_raw(B, n.args[0]))),),
    _kernel_or("cos", _host_fallback("cos")),
)


def _sin_raw(B, x):
    return PRIMITIVES["sin"].fwd(B, x)


def _cos_raw(B, x):
    return PRIMITIVES["cos"].fwd(B, x)


def _scan_add(B, x, axis):
    """Inclusive cumulative sum along ``axis`` from slices and additions (log2(n) steps)."""
    nd = len(B.shape(x))
    n = B.shape(x)[axis]
    step = 1
    while step < n:
        head = B.getitem(x, _raw_key(nd, axis, _builtins.slice(0, step)))
        tail = B.add(
            B.getitem(x, _raw_key(nd, axis, _builtins.slice(step, None))),
            B.getitem(x, _raw_key(nd, axis, _builtins.slice(0, n - step))),
        )
        x = B.concatenate([head, tail], axis)
        step *= 2
    return x


def _cumsum_raw(B, x, axis):
    kernel = getattr(B, "cumsum", None)
    return kernel(x, axis) if kernel is not None else _scan_add(B, x, axis)


def _cumsum_vjp(B, g, n):
    axis = n.args[1] if len(n.args) > 1 else n.kwargs["axis"]
    nd = len(B.shape(g))
    rev = _raw_key(nd, axis, _builtins.slice(None, None, -1))
    return (B.getitem(_cumsum_raw(B, B.getitem(g, rev), axis), rev), None)


#: the inclusive cumulative sum along one int axis (the backend's optional ``cumsum``)
_cumsum_along = _prim("cumsum_along", _cumsum_vjp, lambda B, x, axis: _cumsum_raw(B, x, axis))


def _argsort_fwd(B, x, axis):
    kernel = getattr(B, "argsort", None)
    if kernel is not None:
        return kernel(x, axis)
    return B.asarray(_np.argsort(B.to_numpy(x), axis=axis, kind="stable"))


#: stable ascending argsort along one int axis (the backend's optional ``argsort``); integer
#: results, so no gradient path (as argmax)
_argsort_along = _prim("argsort_along", fwd=_argsort_fwd)


def _native(x):
    """A NumPy array as the active backend's array (Keras 3's ops return backend tensors);
    anything else as it is."""
    return _backend.current().asarray(x) if type(x) is _np.ndarray else x


def _int_indices(op: str, indices, size: int, where: str):
    """``indices`` as a backend int64 array with negatives wrapped (Keras 3 and NumPy count
    them from the end); values outside [-size, size) are an error naming ``op``."""
    B = _backend.current()
    raw = _value(indices)
    if type(raw) is _KerasTensor:
        raise TypeError(f"{op}: indices must be concrete here, got a symbolic tensor")
    if not B.is_native(raw):
        raw = B.asarray(_np.asarray(raw))
    dt = B.dtype_name(raw)
    if not dt.startswith(("int", "uint")):
        raise TypeError(f"{op}: indices must be integers, got {dt}")
    host = _np.asarray(B.to_numpy(raw))
    if host.size and (int(host.min()) < -size or int(host.max()) >= size):
        raise IndexError(
            f"{op}: indices must lie in [{-size}, {size}) for {where} of size {size}; got "
            f"values from {int(host.min())} to {int(host.max())}"
        )
    raw = B.cast(raw, "int64")
    if host.size and int(host.min()) < 0:
        raw = B.where(B.less(raw, 0), B.add(raw, size), raw)
    return raw


@keras_op(name="take")
def take(x, indices, axis=None):
    """Keras 3's ``ops.take``: entries of ``x`` at integer ``indices`` along ``axis``
    (negative indices count from the end); ``axis=None``, the default, takes from the
    flattened ``x``.  Keras 2's ``K.gather`` (rows, axis 0) is :func:`gather`."""
    x = _native(x)
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    s = shape(x)
    axis = _axis_index("take", axis, len(s))
    idx = _int_indices("take", indices, s[axis], f"axis {axis} of an array of shape {tuple(s)}")
    out = _take_rows(moveaxis(x, axis, 0) if axis else x, idx)
    if axis == 0:
        return out
    k = len(_backend.current().shape(idx))
    order = tuple(range(k, k + axis)) + tuple(range(k)) + tuple(range(k + axis, len(s) - 1 + k))
    return transpose(out, order)


@keras_op
def gather(reference, indices):
    """Keras 2's ``K.gather``: the rows (axis 0) of ``reference`` at integer ``indices``;
    the result has shape ``indices.shape + reference.shape[1:]``."""
    return take(reference, indices, axis=0)


@keras_op
def take_along_axis(x, indices, axis=None):
    """NumPy's ``take_along_axis``: ``indices`` has as many dimensions as ``x`` (sizes
    broadcast except along ``axis``); ``axis=None`` works on both flattened."""
    x = _native(x)
    B = _backend.current()
    idx = _value(indices)
    if not B.is_native(idx):
        idx = B.asarray(_np.asarray(idx))
    if axis is None:
        x = reshape(x, (-1,))
        idx = B.reshape(idx, (-1,))
        axis = 0
    s = tuple(shape(x))
    axis = _axis_index("take_along_axis", axis, len(s))
    ishape = tuple(B.shape(idx))
    if len(ishape) != len(s):
        raise ValueError(
            f"take_along_axis: indices of shape {ishape} for an array of shape {s}; expected "
            f"indices with as many dimensions ({len(s)}) as the array"
        )
    n = s[axis]
    idx = _int_indices("take_along_axis", idx, n, f"axis {axis} of an array of shape {s}")
    xm = moveaxis(x, axis, -1)
    im = B.transpose(idx, _moved_order(len(s), axis, len(s) - 1))
    try:
        lead = broadcast_shapes(tuple(shape(xm))[:-1], tuple(B.shape(im))[:-1])
    except ValueError as err:
        raise ValueError(
            f"take_along_axis: indices of shape {ishape} do not fit array of shape {s} ({err})"
        ) from None
    k = B.shape(im)[-1]
    xm = broadcast_to(xm, lead + (n,))
    im = B.broadcast_to(im, lead + (k,))
    rows = 1
    for d in lead:
        rows *= d
    offsets = B.asarray((_np.arange(rows, dtype=_np.int64) * n).reshape(lead + (1,)))
    out = _take_rows(reshape(xm, (-1,)), B.add(im, offsets))
    return moveaxis(out, -1, axis)


def _moved_order(nd: int, source: int, destination: int) -> tuple[int, ...]:
    order = [a for a in range(nd) if a != source]
    order.insert(destination, source)
    return tuple(order)


@keras_op
def moveaxis(x, source, destination):
    x = _native(x)
    nd = ndim(x)
    src = (source,) if isinstance(source, (int, _np.integer)) else tuple(source)
    dst = (destination,) if isinstance(destination, (int, _np.integer)) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError(
            f"moveaxis: source {source!r} and destination {destination!r} must name as many axes"
        )
    src = tuple(_axis_index("moveaxis", a, nd) for a in src)
    dst = tuple(_axis_index("moveaxis", a, nd) for a in dst)
    order = [a for a in range(nd) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    if order == list(range(nd)):
        return x
    return transpose(x, tuple(order))


def _flat_axis(x, axis, op: str):
    """``(x, axis)`` with ``axis=None`` meaning the flattened ``x`` along axis 0."""
    if axis is None:
        return reshape(x, (-1,)), 0
    return x, _axis_index(op, axis, ndim(x))


@keras_op
def cumsum(x, axis=None, dtype=None):
    """Cumulative sum along ``axis`` (the flattened ``x`` when None); bools count as int32."""
    x = _native(x)
    x, axis = _flat_axis(x, axis, "cumsum")
    if dtype is not None:
        x = cast(x, dtype)
    elif dtype_name(x) == "bool":
        x = cast(x, "int32")
    out = _cumsum_along(x, axis)
    return out if dtype_name(out) == dtype_name(x) else cast(out, dtype_name(x))


def _scan_multiply(x, axis):
    """Inclusive cumulative product from slices and products (differentiable as composed)."""
    s = shape(x)
    nd, n = len(s), s[axis]
    step = 1
    while step < n:
        head = getitem(x, _raw_key(nd, axis, _builtins.slice(0, step)))
        tail = multiply(
            getitem(x, _raw_key(nd, axis, _builtins.slice(step, None))),
            getitem(x, _raw_key(nd, axis, _builtins.slice(0, n - step))),
        )
        x = _concatenate(head, tail, axis=axis)
        step *= 2
    return x


@keras_op
def cumprod(x, axis=None, dtype=None):
    """Cumulative product along ``axis`` (the flattened ``x`` when None)."""
    x, axis = _flat_axis(convert_to_tensor(x), axis, "cumprod")
    if dtype is not None:
        x = cast(x, dtype)
    elif dtype_name(x) == "bool":
        x = cast(x, "int32")
    found = fused_kernel("cumprod", x)
    if found is not None:
        kernel, (raw,) = found
        out = kernel(raw, axis)
        return out if dtype_name(out) == dtype_name(x) else cast(out, dtype_name(x))
    return _scan_multiply(x, axis)


@keras_op
def argsort(x, axis=-1):
    """Indices that sort ``x`` ascending along ``axis`` (stable; flattened when None)."""
    x = _native(x)
    x, axis = _flat_axis(x, axis, "argsort")
    return _argsort_along(x, axis)


@keras_op
def sort(x, axis=-1):
    """``x`` sorted ascending along ``axis``; the gradient goes back to each entry's place."""
    x = _native(x)
    x, axis = _flat_axis(x, axis, "sort")
    return take_along_axis(x, _argsort_along(stop_gradient(x), axis), axis=axis)


def top_k(x, k, sorted=True):  # noqa: A002
    """``(values, indices)`` of the ``k`` largest entries along the last axis, largest
    first (equal values: the lower index first).  On symbolic tensors: two graph nodes."""
    x = _native(x)
    if isinstance(k, bool) or not isinstance(k, (int, _np.integer)) or k < 1:
        raise ValueError(f"top_k: k must be a positive int, got {k!r}")
    if not isinstance(sorted, bool):
        raise TypeError(f"top_k: sorted must be True or False, got {sorted!r}")
    n = shape(x)[-1]
    if n is not None and k > n:
        raise ValueError(f"top_k: k={k} is larger than the last axis ({n}) of shape {shape(x)}")
    order = argsort(neg(x), axis=-1)
    indices = getitem(order, (Ellipsis, _builtins.slice(0, int(k))))
    return take_along_axis(x, indices, axis=-1), indices


@keras_op
def in_top_k(targets, predictions, k):
    """Whether each row's target class is among its ``k`` largest predictions (ties at the
    boundary count as in, as Keras does)."""
    predictions = _native(predictions)
    t = cast(targets, "int64")
    picked = take_along_axis(predictions, expand_dims(t, -1), axis=-1)
    above = sum(cast(greater(predictions, picked), "int32"), axis=-1)
    return less(above, int(k))


@keras_op
def median(x, axis=None, keepdims=False):
    x = _native(x)
    x0 = x
    if axis is None:
        x, ax = reshape(x, (-1,)), 0
    else:
        ax = _axis_index("median", axis, ndim(x))
    n = shape(x)[ax]
    s = sort(x, axis=ax)
    nd = ndim(s)
    lo = getitem(s, _raw_key(nd, ax, _builtins.slice((n - 1) // 2, (n - 1) // 2 + 1)))
    hi = getitem(s, _raw_key(nd, ax, _builtins.slice(n // 2, n // 2 + 1)))
    out = multiply(add(lo, hi), 0.5)
    if keepdims:
        return reshape(out, _keep_shape(shape(x0), axis))
    return reshape(out, _reduced_shape(shape(x0), axis))


def _reduce_bool(x, axis, keepdims, op: str):
    x = _native(x)
    hits = cast(cast(stop_gradient(x), "bool"), "float32")  # a count: nothing to differentiate
    axes = _axes_tuple(op, axis, ndim(x))
    if op == "all":
        misses = sum(subtract(1.0, hits), axis=axes, keepdims=keepdims)
        return equal(misses, 0.0)
    return greater(sum(hits, axis=axes, keepdims=keepdims), 0.0)


@keras_op(name="any")
def _any(x, axis=None, keepdims=False):
    """Whether any entry along ``axis`` is non-zero (True)."""
    return _reduce_bool(x, axis, keepdims, "any")


@keras_op(name="all")
def _all(x, axis=None, keepdims=False):
    """Whether every entry along ``axis`` is non-zero (True)."""
    return _reduce_bool(x, axis, keepdims, "all")


@keras_op
def count_nonzero(x, axis=None):
    x = _native(x)
    axes = _axes_tuple("count_nonzero", axis, ndim(x))
    return cast(sum(cast(cast(stop_gradient(x), "bool"), "int32"), axis=axes), "int32")


@keras_op
def logical_xor(x1, x2):
    return not_equal(cast(x1, "bool"), cast(x2, "bool"))


@keras_op
def isnan(x):
    return logical_not(equal(x, x))


@keras_op
def isinf(x):
    return equal(abs(x), math.inf)


@keras_op
def isfinite(x):
    return less(abs(x), math.inf)


@keras_op
def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    x = _native(x)
    dt = dtype_name(x)
    if not dt.startswith("float"):
        return x
    info = _np.finfo(dt)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    x = where(isnan(x), nan, x)
    x = where(equal(x, math.inf), posinf, x)
    return where(equal(x, -math.inf), neginf, x)


@keras_op
def log2(x):
    return divide(log(x), math.log(2.0))


@keras_op
def log10(x):
    return divide(log(x), math.log(10.0))


@keras_op
def reciprocal(x):
    return divide(1.0, x)


@keras_op
def rsqrt(x):
    return divide(1.0, sqrt(x))


amax = max
amin = min


def moments(x, axes, keepdims=False):
    """``(mean, variance)`` over ``axes`` (the biased variance, as Keras computes it)."""
    axes = _axes_tuple("moments", axes, ndim(x))
    return mean(x, axis=axes, keepdims=keepdims), var(x, axis=axes, keepdims=keepdims)


@keras_op
def normalize(x, axis=-1, order=2):
    if order != 2:
        raise ValueError(f"normalize: order={order!r} is not implemented (only order=2)")
    return l2_normalize(x, axis=axis, eps=1e-12)


@keras_op
def outer(x1, x2):
    x1 = _native(x1)
    return multiply(reshape(x1, (-1, 1)), reshape(x2, (1, -1)))


def _tri_mask(s, k, lower: bool):
    rows, cols = s[-2], s[-1]
    i = _np.arange(rows)[:, None]
    j = _np.arange(cols)[None, :]
    keep = (j - i <= k) if lower else (j - i >= k)
    return _backend.current().asarray(keep)


@keras_op
def tril(x, k=0):
    """The lower triangle (``j - i <= k``) of the last two axes; zeros above."""
    x = _native(x)
    s = shape(x)
    if len(s) < 2:
        raise ValueError(f"tril: expected an array of at least 2 dimensions, got shape {s}")
    return where(_tri_mask(s, int(k), True), x, zeros_like(x))


@keras_op
def triu(x, k=0):
    """The upper triangle (``j - i >= k``) of the last two axes; zeros below."""
    x = _native(x)
    s = shape(x)
    if len(s) < 2:
        raise ValueError(f"triu: expected an array of at least 2 dimensions, got shape {s}")
    return where(_tri_mask(s, int(k), False), x, zeros_like(x))


@keras_op
def diag(x, k=0):
    """A 1-D ``x`` on the ``k``-th diagonal of a square matrix, or the ``k``-th diagonal of a
    2-D ``x``."""
    x = _native(x)
    s = shape(x)
    k = int(k)
    if len(s) == 1:
        m = s[0] + _builtins.abs(k)
        vec = _pad_constant(x, [(_builtins.max(-k, 0), _builtins.max(k, 0))], 0)
        mask = _backend.current().asarray(_np.eye(m, k=k, dtype=bool))
        return where(mask, expand_dims(vec, 1), zeros((m, m), dtype_name(x)))
    if len(s) == 2:
        rows, cols = s
        i = _np.arange(_builtins.max(-k, 0), rows)
        i = i[i + k < cols]
        flat = _backend.current().asarray((i * cols + i + k).astype(_np.int64))
        return _take_rows(reshape(x, (-1,)), flat)
    raise ValueError(f"diag: expected a 1-D or 2-D array, got shape {s}")


@keras_op
def flip(x, axis=None):
    x = _native(x)
    axes = _axes_tuple("flip", axis, ndim(x))
    key = tuple(
        _builtins.slice(None, None, -1) if a in axes else _builtins.slice(None)
        for a in range(ndim(x))
    )
    return getitem(x, key)


@keras_op
def roll(x, shift, axis=None):
    x = _native(x)
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shift, axis=0), shape(x))
    shifts = (shift,) if isinstance(shift, (int, _np.integer)) else tuple(shift)
    axes = (axis,) if isinstance(axis, (int, _np.integer)) else tuple(axis)
    if len(shifts) != len(axes):
        raise ValueError(f"roll: shift {shift!r} and axis {axis!r} must have the same length")
    nd = ndim(x)
    for sh, ax in zip(shifts, axes):
        ax = _axis_index("roll", ax, nd)
        n = shape(x)[ax]
        sh = int(sh) % n if n else 0
        if sh:
            x = _concatenate(
                getitem(x, _raw_key(nd, ax, _builtins.slice(n - sh, None))),
                getitem(x, _raw_key(nd, ax, _builtins.slice(0, n - sh))),
                axis=ax,
            )
    return x


def split(x, indices_or_sections, axis=0):
    """A list of pieces of ``x`` along ``axis``: ``indices_or_sections`` equal pieces (it
    must divide the axis), or the pieces between the given split points.  On symbolic
    tensors each piece is its own graph node (a slice)."""
    x = _native(x)
    s = shape(x)
    axis = _axis_index("split", axis, len(s))
    n = s[axis]
    if n is None:
        raise ValueError(f"split: axis {axis} of shape {s} must have a known size")
    if isinstance(indices_or_sections, (int, _np.integer)):
        parts = int(indices_or_sections)
        if parts < 1 or n % parts:
            raise ValueError(
                f"split: {parts} equal pieces do not divide axis {axis} of size {n} "
                f"(shape {s}); give a divisor of {n} or a list of split points"
            )
        points = [n // parts * i for i in range(1, parts)]
    else:
        points = [int(p) for p in indices_or_sections]
    bounds = [0] + points + [n]
    nd = len(s)
    return [
        getitem(x, _raw_key(nd, axis, _builtins.slice(a, _builtins.max(a, b))))
        for a, b in zip(bounds[:-1], bounds[1:])
    ]


def unstack(x, num=None, axis=0):
    """The slices of ``x`` along ``axis``, each without that axis (a list)."""
    x = _native(x)
    s = shape(x)
    axis = _axis_index("unstack", axis, len(s))
    n = s[axis]
    if num is not None and n is not None and num != n:
        raise ValueError(f"unstack: num={num} but axis {axis} of shape {s} has size {n}")
    n = n if n is not None else num
    if n is None:
        raise ValueError(f"unstack: axis {axis} of shape {s} has no known size; pass num=")
    return [getitem(x, _raw_key(len(s), axis, i)) for i in range(n)]


def _pad_widths(op: str, pad_width, nd: int) -> list[tuple[int, int]]:
    """NumPy's forms: an int, a ``(before, after)`` pair for every axis, or one pair per axis."""

    def is_int(v) -> bool:
        return isinstance(v, (int, _np.integer)) and not isinstance(v, bool)

    def pair(w):
        w = (w, w) if is_int(w) else tuple(w)
        return (w[0], w[0]) if len(w) == 1 else w

    try:
        if is_int(pad_width):
            widths = [pair(pad_width)] * nd
        else:
            items = list(pad_width)
            if items and _builtins.all(is_int(v) for v in items):
                widths = [pair(items)] * nd
            elif len(items) == 1:
                widths = [pair(items[0])] * nd
            elif len(items) == nd:
                widths = [pair(w) for w in items]
            else:
                raise ValueError
        ok = _builtins.all(len(w) == 2 and is_int(w[0]) and is_int(w[1]) for w in widths)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"{op}: pad_width {pad_width!r} does not fit an array of {nd} dimension(s); "
            f"expected an int, a (before, after) pair, or {nd} such pairs"
        )
    if _builtins.any(w[0] < 0 or w[1] < 0 for w in widths):
        raise ValueError(f"{op}: pad widths must not be negative, got {pad_width!r}")
    return [(int(w[0]), int(w[1])) for w in widths]


def _pad_constant(x, widths, value):
    dt = dtype_name(x)
    for ax, (before, after) in enumerate(widths):
        if not (before or after):
            continue
        s = list(shape(x))
        pieces = []
        if before:
            pieces.append(full(tuple(s[:ax]) + (before,) + tuple(s[ax + 1 :]), value, dt))
        pieces.append(x)
        if after:
            pieces.append(full(tuple(s[:ax]) + (after,) + tuple(s[ax + 1 :]), value, dt))
        x = _concatenate(*pieces, axis=ax)
    return x


@keras_op
def pad(x, pad_width, mode="constant", constant_values=None):
    """NumPy's ``pad`` in its ``"constant"``, ``"reflect"`` and ``"symmetric"`` modes."""
    x = _native(x)
    s = shape(x)
    widths = _pad_widths("pad", pad_width, len(s))
    if mode not in ("constant", "reflect", "symmetric"):
        raise ValueError(
            f"pad: mode {mode!r} is not implemented; expected 'constant', 'reflect' or 'symmetric'"
        )
    if mode == "constant":
        return _pad_constant(x, widths, 0 if constant_values is None else constant_values)
    if constant_values is not None:
        raise ValueError(
            f"pad: constant_values can only be given with mode='constant', not {mode!r}"
        )
    nd = len(s)
    for ax, (before, after) in enumerate(widths):
        n = s[ax]
        limit = n - 1 if mode == "reflect" else n
        if before > limit or after > limit:
            raise ValueError(
                f"pad: {mode} padding of ({before}, {after}) on axis {ax} of size {n} (shape "
                f"{s}) does not fit; at most {limit} on each side"
            )
        skip = 1 if mode == "reflect" else 0
        pieces = []
        if before:  # reflect: x[before], ..., x[1]; symmetric: x[before - 1], ..., x[0]
            part = _builtins.slice(before - 1 + skip, skip - 1 if skip else None, -1)
            pieces.append(getitem(x, _raw_key(nd, ax, part)))
        pieces.append(x)
        if after:  # reflect: x[n - 2], ...; symmetric: x[n - 1], ...
            start = n - 1 - skip
            stop = start - after
            part = _builtins.slice(start, stop if stop >= 0 else None, -1)
            pieces.append(getitem(x, _raw_key(nd, ax, part)))
        if len(pieces) > 1:
            x = _concatenate(*pieces, axis=ax)
    return x


_shape_of = shape


@keras_op(name="slice")
def _slice(inputs, start_indices, shape):  # noqa: A002
    """``inputs[start : start + shape]`` on every axis (Keras 3's ``ops.slice``)."""
    inputs = _native(inputs)
    s = tuple(_shape_of(inputs))
    starts, sizes = tuple(start_indices), tuple(shape)
    if len(starts) != len(s) or len(sizes) != len(s):
        raise ValueError(
            f"slice: start_indices {starts} and shape {sizes} must each have one entry per "
            f"dimension of the input, shape {s}"
        )
    key = []
    for ax, (a, size, n) in enumerate(zip(starts, sizes, s)):
        a, size = int(a), int(size)
        if size == -1:
            size = n - a
        if a < 0 or size < 0 or (n is not None and a + size > n):
            raise ValueError(
                f"slice: start {a} and size {size} on axis {ax} do not fit the input's size "
                f"{n} (shape {s})"
            )
        key.append(_builtins.slice(a, a + size))
    return getitem(inputs, tuple(key))


@keras_op
def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    """Vector and matrix norms, as NumPy's ``linalg.norm`` (the matrix norms of ``ord`` 2,
    -2 and ``"nuc"`` need singular values and are refused)."""
    x = _native(x)
    s = tuple(shape(x))
    nd = len(s)
    if axis is None:
        if ord is None:  # the 2-norm of the flattened array
            return sqrt(sum(square(x), axis=tuple(range(nd)), keepdims=keepdims))
        if nd not in (1, 2):
            raise ValueError(
                f"norm: ord={ord!r} with axis=None needs a 1-D or 2-D input, got shape {s}"
            )
        axes = tuple(range(nd))
    else:
        axes = _axes_tuple("norm", axis, nd)
    if len(axes) == 1:
        ax = axes[0]
        if isinstance(ord, str):
            raise ValueError(f"norm: ord={ord!r} is a matrix norm; give two axes")
        if ord is None or ord == 2:
            return sqrt(sum(square(x), axis=ax, keepdims=keepdims))
        if ord == math.inf:
            return max(abs(x), axis=ax, keepdims=keepdims)
        if ord == -math.inf:
            return min(abs(x), axis=ax, keepdims=keepdims)
        if ord == 0:
            return sum(cast(cast(x, "bool"), _float_dtype(x)), axis=ax, keepdims=keepdims)
        if ord == 1:
            return sum(abs(x), axis=ax, keepdims=keepdims)
        p = float(ord)
        return power(sum(power(abs(x), p), axis=ax, keepdims=keepdims), 1.0 / p)
    if len(axes) != 2:
        raise ValueError(f"norm: axis {axis!r} must name one or two axes")
    row, col = axes
    if ord is None or ord == "fro":
        return sqrt(sum(square(x), axis=axes, keepdims=keepdims))
    if ord in (1, -1, math.inf, -math.inf):
        # 1: the largest column sum of |x|; inf: the largest row sum (-1, -inf: smallest)
        inner, outer_ax = (row, col) if ord in (1, -1) else (col, row)
        red = max if ord in (1, math.inf) else min
        out = red(sum(abs(x), axis=inner, keepdims=True), axis=outer_ax, keepdims=True)
        return out if keepdims else reshape(out, _reduced_shape(s, axes))
    raise ValueError(
        f"norm: matrix ord={ord!r} is not implemented (it needs singular values); expected "
        "None, 'fro', 1, -1, inf or -inf"
    )


@keras_op
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """``num`` evenly spaced values from ``start`` to ``stop`` (NumPy's ``linspace``)."""
    if isinstance(num, bool) or not isinstance(num, (int, _np.integer)) or num < 0:
        raise ValueError(f"linspace: num must be a non-negative int, got {num!r}")
    div = (num - 1) if endpoint else num
    if isinstance(start, (int, float)) and isinstance(stop, (int, float)):
        values, step = _np.linspace(start, stop, num, endpoint=endpoint, retstep=True)
        out = _backend.current().asarray(values.astype(dtype or "float32"))
        return (out, step) if retstep else out
    start = convert_to_tensor(start)
    stop = convert_to_tensor(stop)
    base = broadcast_shapes(tuple(shape(start)), tuple(shape(stop)))
    step = divide(subtract(stop, start), float(div) if div > 0 else math.nan)
    ramp = _backend.current().asarray(
        _np.arange(num, dtype=_np.float64).reshape((num,) + (1,) * len(base))
    )
    ramp = cast(ramp, dtype_name(step))
    out = add(start, multiply(ramp, step))
    if endpoint and num > 1:  # the last value is exactly stop
        last = _np.zeros((num,) + (1,) * len(base), dtype=bool)
        last[-1] = True
        out = where(
            _backend.current().asarray(last), broadcast_to(stop, tuple(shape(out))[1:]), out
        )
    if dtype is not None:
        out = cast(out, dtype)
    out = moveaxis(out, 0, axis) if axis != 0 else out
    return (out, step) if retstep else out


@keras_op
def segment_sum(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Rows of ``data`` summed by segment (``segment_ids`` integers, one per row)."""
    data = _native(data)
    B = _backend.current()
    ids = _value(segment_ids)
    if not B.is_native(ids):
        ids = B.asarray(_np.asarray(ids))
    host = _np.asarray(B.to_numpy(ids))
    if host.dtype.kind not in "iu":
        raise TypeError(f"segment_sum: segment_ids must be integers, got {host.dtype.name}")
    if num_segments is None:
        num_segments = int(host.max()) + 1 if host.size else 0
    if host.size and (int(host.min()) < 0 or int(host.max()) >= num_segments):
        raise ValueError(
            f"segment_sum: segment_ids must lie in [0, {num_segments}); got values from "
            f"{int(host.min())} to {int(host.max())}"
        )
    s = tuple(shape(data))
    if host.shape != s[: host.ndim]:
        raise ValueError(
            f"segment_sum: segment_ids of shape {host.shape} do not match the leading axes of "
            f"data of shape {s}"
        )
    return scatter_add((int(num_segments),) + s[host.ndim :], ids, data)


def cond(pred, true_fn, false_fn):
    """``true_fn()`` if ``pred`` holds, else ``false_fn()``: decided now, on a concrete
    value (Keras 3 also runs both branches' tracing only where a backend compiles)."""
    p = _resolve(pred)
    if type(p) is _KerasTensor:
        raise ValueError(
            "cond: the predicate is a symbolic tensor, whose value is known only when the "
            "model runs; compute both branches and pick with ops.where, or call cond inside "
            "a layer's call() on concrete values"
        )
    if not (callable(true_fn) and callable(false_fn)):
        raise TypeError("cond: true_fn and false_fn must be callables taking no arguments")
    B = _backend.current()
    value = _value(p)
    if B.is_native(value):
        host = _np.asarray(B.to_numpy(value))
        if host.size != 1:
            raise ValueError(f"cond: the predicate must be a single value, got shape {host.shape}")
        value = bool(host.reshape(()))
    return true_fn() if value else false_fn()


def unique(
    x,
    sorted=True,  # noqa: A002
    return_index=False,
    return_inverse=False,
    return_counts=False,
    axis=None,
    size=None,
    fill_value=None,
):
    """NumPy's ``unique`` on a concrete array (its size depends on the values, so it is
    computed now and has no gradient)."""
    x = _resolve(x)
    if type(x) is _KerasTensor:
        raise ValueError(
            "unique: the result's size depends on the values, so it cannot be part of a "
            "graph; call it on concrete arrays"
        )
    if type(x) is Traced:
        raise ValueError(
            "unique: no gradient flows through unique; apply it to ops.stop_gradient(x)"
        )
    if size is not None or fill_value is not None:
        raise ValueError("unique: size= and fill_value= are not implemented")
    if not isinstance(sorted, bool):
        raise TypeError(f"unique: sorted must be True or False, got {sorted!r}")
    B = _backend.current()
    host = _np.asarray(B.to_numpy(x) if B.is_native(x) else x)
    found = _np.unique(
        host,
        return_index=return_index,
        return_inverse=return_inverse,
        return_counts=return_counts,
        axis=axis,
    )
    if not (return_index or return_inverse or return_counts):
        return B.asarray(found)
    return tuple(B.asarray(a) for a in found)


def identity(n, dtype="float32"):
    return eye(n, dtype=dtype)


def size(x) -> int:
    n = 1
    for d in shape(x):
        n *= d
    return n


def _flat_rows(op: str, indices, dims: tuple) -> tuple[_np.ndarray, int]:
    """Host int64 offsets of the ``indices`` (..., k) into the first k ``dims`` flattened
    (negative coordinates count from the end), and k; coordinates out of range are an
    error."""
    B = _backend.current()
    raw = _value(indices)
    host = _np.asarray(B.to_numpy(raw) if B.is_native(raw) else raw)
    if host.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got {host.dtype.name}")
    k = host.shape[-1] if host.ndim else 0
    if host.ndim < 1 or k > len(dims) or k == 0:
        raise ValueError(
            f"{op}: indices of shape {host.shape} must end in an axis of 1 to {len(dims)} "
            f"coordinates for shape {tuple(dims)}"
        )
    bounds = _np.asarray(dims[:k], dtype=_np.int64)
    coords = host.reshape(-1, k).astype(_np.int64)
    if coords.size and ((coords < -bounds).any() or (coords >= bounds).any()):
        raise IndexError(
            f"{op}: indices out of range for shape {tuple(dims)}: coordinates must lie in "
            f"[-size, size) of their axis"
        )
    coords = _np.where(coords < 0, coords + bounds, coords)
    flat = _np.ravel_multi_index(tuple(coords.T), tuple(int(d) for d in dims[:k]))
    return flat.reshape(host.shape[:-1]), k


@keras_op
def scatter(indices, values, shape):  # noqa: A002
    """Zeros of ``shape`` with ``values`` added at ``indices`` (..., k): each index row names
    the first k coordinates; repeated indices add up (Keras 3's ``ops.scatter``)."""
    shape = tuple(int(d) for d in shape)
    flat, k = _flat_rows("scatter", indices, shape)
    rows = 1
    for d in shape[:k]:
        rows *= d
    values = _native(values)
    expected = flat.shape + shape[k:]
    if tuple(_shape_of(values)) != expected:
        raise ValueError(
            f"scatter: values of shape {tuple(_shape_of(values))} for indices of shape "
            f"{flat.shape + (k,)} into shape {shape}; expected values of shape {expected}"
        )
    idx = _backend.current().asarray(flat.reshape(-1))
    out = scatter_add((rows,) + shape[k:], idx, reshape(values, (-1,) + shape[k:]))
    return reshape(out, shape)


@keras_op
def scatter_update(inputs, indices, updates, reduction=None):
    """``inputs`` with the entries (or slices) at ``indices`` (..., k) replaced by
    ``updates`` (a repeated index: the last update wins); ``reduction="add"`` adds them."""
    inputs = _native(inputs)
    s = tuple(_shape_of(inputs))
    if reduction == "add":
        return add(inputs, scatter(indices, updates, s))
    if reduction is not None:
        raise ValueError(
            f"scatter_update: reduction={reduction!r} is not implemented; expected None or 'add'"
        )
    flat, k = _flat_rows("scatter_update", indices, s)
    flat = flat.reshape(-1)
    rows = 1
    for d in s[:k]:
        rows *= d
    tail = s[k:]
    updates = reshape(_native(updates), (-1,) + tail)
    # the last update of each index wins, as in NumPy's assignment
    _, first_from_end = _np.unique(flat[::-1], return_index=True)
    keep = (len(flat) - 1 - first_from_end).astype(_np.int64)
    B = _backend.current()
    placed = scatter_add(
        (rows,) + tail, B.asarray(flat[keep]), take(updates, B.asarray(keep), axis=0)
    )
    hit = _np.zeros((rows,) + (1,) * len(tail), dtype=bool)
    hit[flat] = True
    out = where(B.asarray(hit), placed, reshape(inputs, (rows,) + tail))
    return reshape(out, s)


@keras_op
def slice_update(inputs, start_indices, updates):
    """``inputs`` with the block starting at ``start_indices`` replaced by ``updates``."""
    inputs, updates = _native(inputs), _native(updates)
    s, u = tuple(_shape_of(inputs)), tuple(_shape_of(updates))
    starts = tuple(int(a) for a in start_indices)
    if len(starts) != len(s) or len(u) != len(s):
        raise ValueError(
            f"slice_update: start_indices {starts} and updates of shape {u} must have one "
            f"entry per dimension of the input, shape {s}"
        )
    if _builtins.any(a < 0 or a + n > d for a, n, d in zip(starts, u, s)):
        raise ValueError(
            f"slice_update: updates of shape {u} at {starts} do not fit the input's shape {s}"
        )
    key = tuple(_builtins.slice(a, a + n) for a, n in zip(starts, u))
    mask = _np.zeros(s, dtype=bool)
    mask[key] = True
    placed = scatter_slice(s, key, cast(updates, dtype_name(inputs)))
    return where(_backend.current().asarray(mask), placed, inputs)


@keras_op
def tensordot(x1, x2, axes=2):
    """Sum of products over ``axes``: the last ``axes`` axes of ``x1`` with the first of
    ``x2`` (an int), or the axes of each given as two sequences."""
    x1, x2 = _native(x1), _native(x2)
    s1, s2 = tuple(shape(x1)), tuple(shape(x2))
    if isinstance(axes, (int, _np.integer)):
        a1 = tuple(range(len(s1) - int(axes), len(s1)))
        a2 = tuple(range(int(axes)))
    else:
        first, second = axes
        first = (first,) if isinstance(first, (int, _np.integer)) else tuple(first)
        second = (second,) if isinstance(second, (int, _np.integer)) else tuple(second)
        a1 = tuple(_axis_index("tensordot", a, len(s1)) for a in first)
        a2 = tuple(_axis_index("tensordot", a, len(s2)) for a in second)
    if len(a1) != len(a2) or _builtins.any(s1[i] != s2[j] for i, j in zip(a1, a2)):
        raise ValueError(
            f"tensordot: axes {axes!r} do not pair up dimensions of equal size in shapes "
            f"{s1} and {s2}"
        )
    free1 = [i for i in range(len(s1)) if i not in a1]
    free2 = [j for j in range(len(s2)) if j not in a2]
    n = 1
    for i in a1:
        n *= s1[i]
    left = reshape(transpose(x1, tuple(free1) + a1), (-1, n))
    right = reshape(transpose(x2, a2 + tuple(free2)), (n, -1))
    return reshape(matmul(left, right), tuple(s1[i] for i in free1) + tuple(s2[j] for j in free2))


@keras_op
def average(x, axis=None, weights=None):
    """The mean over ``axis``, weighted by ``weights`` (shaped like ``x``, or 1-D along
    ``axis``), as NumPy's ``average``."""
    x = _native(x)
    if weights is None:
        return mean(x, axis=axis)
    w = _native(weights)
    if ndim(w) == 1 and ndim(x) > 1:
        if axis is None or not isinstance(axis, (int, _np.integer)):
            raise ValueError("average: 1-D weights need an int axis")
        ax = _axis_index("average", axis, ndim(x))
        w = reshape(w, tuple(-1 if i == ax else 1 for i in range(ndim(x))))
    return divide(sum(multiply(x, w), axis=axis), sum(multiply(ones_like(x), w), axis=axis))


# -- einsum: one contraction per pair of operands, as transposes, reshapes and one matmul ------
_EINSUM_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_parse(subscripts: str, shapes: list[tuple]) -> tuple[list[str], str, dict[str, int]]:
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a string, got {subscripts!r}")
    spec = subscripts.replace(" ", "")
    lhs, arrow, out = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s), but "
            f"{len(shapes)} were given"
        )
    used = set(c for c in spec if c.isalpha())
    spare = [c for c in _EINSUM_LETTERS if c not in used]
    ell_rank = 0
    for t, s in zip(terms, shapes):
        if "..." in t:
            ell_rank = _builtins.max(ell_rank, len(s) - (len(t) - 3))
    ell = "".join(spare[:ell_rank])
    expanded = []
    for t, s in zip(terms, shapes):
        if "..." in t:
            rank = len(s) - (len(t) - 3)
            t = t.replace("...", ell[ell_rank - rank :] if rank else "")
        bad = [c for c in t if not c.isalpha()]
        if bad or len(t) != len(s):
            raise ValueError(
                f"einsum: term {t!r} of {subscripts!r} does not fit an operand of shape "
                f"{tuple(s)} (one letter per dimension, '...' for the rest)"
            )
        if len(set(t)) != len(t):
            raise ValueError(
                f"einsum: a letter repeated within one term ({t!r} in {subscripts!r}, a "
                "diagonal) is not implemented"
            )
        expanded.append(t)
    if arrow:
        out = out.replace("...", ell)
        letters = set("".join(expanded))
        missing = [c for c in out if c not in letters]
        if missing or len(set(out)) != len(out):
            raise ValueError(
                f"einsum: output {out!r} of {subscripts!r} must name distinct letters of the inputs"
            )
    else:
        counts: dict[str, int] = {}
        for c in "".join(expanded):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    sizes: dict[str, int] = {}
    for t, s in zip(expanded, shapes):
        for c, d in zip(t, s):
            if d == 1 and c in sizes:
                continue
            if c in sizes and sizes[c] != 1 and d != sizes[c]:
                raise ValueError(
                    f"einsum: dimension {c!r} of {subscripts!r} has size {sizes[c]} in one "
                    f"operand and {d} in another (shapes {[tuple(x) for x in shapes]})"
                )
            sizes[c] = d
    return expanded, out, sizes


def _einsum_pair(a, ta: str, b, tb: str, keep: set[str], sizes: dict[str, int]):
    """Contract ``a`` (letters ``ta``) with ``b`` (``tb``), keeping the letters in ``keep``:
    one batched matrix product.  ``sizes`` holds each letter's (broadcast) size."""
    only_a = tuple(i for i, c in enumerate(ta) if c not in keep and c not in tb)
    if only_a:  # a letter of one operand only, not kept: summed away first
        a = sum(a, axis=only_a)
        ta = "".join(c for i, c in enumerate(ta) if i not in only_a)
    only_b = tuple(i for i, c in enumerate(tb) if c not in keep and c not in ta)
    if only_b:
        b = sum(b, axis=only_b)
        tb = "".join(c for i, c in enumerate(tb) if i not in only_b)
    batch = [c for c in ta if c in tb and c in keep]
    contract = [c for c in ta if c in tb and c not in keep]
    a_free = [c for c in ta if c not in tb]
    b_free = [c for c in tb if c not in ta]

    def total(cs) -> int:
        n = 1
        for c in cs:
            n *= sizes[c]
        return n

    a = transpose(a, tuple(ta.index(c) for c in batch + a_free + contract))
    b = transpose(b, tuple(tb.index(c) for c in batch + contract + b_free))
    a = broadcast_to(a, tuple(sizes[c] for c in batch + a_free + contract))
    b = broadcast_to(b, tuple(sizes[c] for c in batch + contract + b_free))
    out = matmul(
        reshape(a, (total(batch), total(a_free), total(contract))),
        reshape(b, (total(batch), total(contract), total(b_free))),
    )
    out = reshape(out, tuple(sizes[c] for c in batch + a_free + b_free))
    return out, "".join(batch + a_free + b_free)


@keras_op
def einsum(subscripts, *operands):
    """Einstein summation over any number of operands, contracted left to right (each
    pair one matrix product); ``...`` stands for the leading dimensions."""
    if not operands:
        raise ValueError("einsum: at least one operand is required")
    shapes = [tuple(shape(op)) for op in operands]
    terms, out, sizes = _einsum_parse(subscripts, shapes)
    x, tx = operands[0], terms[0]
    rest = list(zip(operands[1:], terms[1:]))
    for i, (y, ty) in enumerate(rest):
        later = set(out) | set("".join(t for _, t in rest[i + 1 :]))
        x, tx = _einsum_pair(x, tx, y, ty, later, sizes)
    gone = tuple(i for i, c in enumerate(tx) if c not in out)
    if gone:
        x = sum(x, axis=gone)
        tx = "".join(c for c in tx if c in out)
    if tx != out:
        x = transpose(x, tuple(tx.index(c) for c in out))
    return x


# -- dot_product_attention (Keras 3's op, issue 21) ------------------------------------------
@keras_op
def dot_product_attention(
    query,
    key,
    value,
    bias=None,
    mask=None,
    scale=None,
    is_causal=False,
    flash_attention=None,
    attn_logits_soft_cap=None,
):
    """Keras 3's ``ops.dot_product_attention``: ``softmax(scale * Q K^T + bias) V`` per
    head, for ``query`` (B, T, N, H), ``key`` (B, S, K, H) and ``value`` (B, S, K, Hv) with N
    a multiple of K (grouped-query attention when K < N).  ``mask`` (bool, True = take
    part, broadcastable to (B, N, T, S)) and ``is_causal`` replace the logits they leave out
    by a large negative number; ``scale`` defaults to 1 / sqrt(H).  Returns (B, T, N, Hv)."""
    if flash_attention:
        raise NotImplementedError(
            "dot_product_attention: flash_attention=True is not supported by polykeras "
            "(the backend's own fused kernel is used where it has one; pass None or False)"
        )
    if attn_logits_soft_cap is not None:
        raise NotImplementedError(
            "dot_product_attention: attn_logits_soft_cap is not supported by polykeras "
            f"(got {attn_logits_soft_cap!r}; only None)"
        )
    # NumPy arrays given to another backend become its arrays (the fused kernel takes them raw)
    query, key, value, bias, mask = (
        asarray(a) if type(a) is _np.ndarray else a for a in (query, key, value, bias, mask)
    )
    sq, sk, sv = tuple(shape(query)), tuple(shape(key)), tuple(shape(value))
    if len(sq) != 4 or len(sk) != 4 or len(sv) != 4:
        raise ValueError(
            "dot_product_attention: query, key and value must be 4-D, (batch, positions, "
            f"heads, head size); got shapes {sq}, {sk} and {sv}"
        )
    if sk[:3] != sv[:3] or sq[0] != sk[0] or sq[3] != sk[3]:
        raise ValueError(
            f"dot_product_attention: shapes query {sq}, key {sk} and value {sv} do not fit: "
            "expected query (B, T, N, H), key (B, S, K, H) and value (B, S, K, Hv)"
        )
    n, kh = sq[2], sk[2]
    if n % kh:
        raise ValueError(
            f"dot_product_attention: the query's {n} heads are not a multiple of the key's "
            f"{kh} heads"
        )
    if kh != n:  # grouped-query attention: each key/value head serves n // kh query heads
        key, value = repeat(key, n // kh, axis=2), repeat(value, n // kh, axis=2)
    t, s = sq[1], sk[1]
    if scale is None:
        scale = 1.0 / math.sqrt(sq[3])
    dtype = dtype_name(query)
    q = transpose(query, (0, 2, 1, 3))
    k = transpose(key, (0, 2, 1, 3))
    v = transpose(value, (0, 2, 1, 3))
    if bias is not None:
        bias = cast(bias, dtype) if dtype_name(bias) != dtype else bias
        broadcast_shapes(tuple(shape(bias)), (sq[0], n, t, s))
    keep = None
    if mask is not None:
        broadcast_shapes(tuple(shape(mask)), (sq[0], n, t, s))
        keep = cast(mask, "bool") if dtype_name(mask) != "bool" else mask
    if is_causal:
        causal = asarray(_np.tril(_np.ones((t, s), dtype=bool)))
        keep = causal if keep is None else logical_and(keep, causal)
    if keep is not None:  # as Keras: the left-out logits become a large negative number
        large = -0.7 * (65500.0 if dtype == "float16" else 3.38953e38)
        bias = where(keep, 0.0 if bias is None else bias, large)
        bias = cast(bias, dtype) if dtype_name(bias) != dtype else bias
    out = attend(q, k, v, bias, scale=float(scale))
    return transpose(out, (0, 2, 1, 3))


_LATE_NAMES = {"any": _any, "all": _all, "slice": _slice}


def __getattr__(name: str) -> Any:
    # ``any``, ``all`` and ``slice`` are reached as ops.any... without shadowing the builtins
    # this module itself uses
    try:
        return _LATE_NAMES[name]
    except KeyError:
        raise AttributeError(f"module 'polykeras.ops' has no attribute {name!r}") from None
