"""Differentiable ops over the active backend, with each primitive's VJP written once.

Layers, losses and optimizers are written with these functions.  Each accepts backend
arrays, :class:`~polykeras.autodiff.Traced` values, variables, and python scalars where a
number makes sense, and returns a backend array (or a Traced value while a loss is being
differentiated by the core).
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Callable, Sequence

from . import backend as _backend
from .autodiff import Traced, _resolve
from .engine.variables import Variable as _Variable

VJP = Callable[..., tuple]


class Primitive:
    """One backend primitive with its VJP: ``vjp(B, g, node) -> grads per input``."""

    __slots__ = ("name", "vjp", "fwd", "differentiable")

    def __init__(self, name: str, vjp: VJP | None = None, fwd: Callable | None = None):
        self.name = name
        self.vjp = vjp
        self.fwd = fwd
        self.differentiable = vjp is not None

    def __call__(self, *args, **kwargs):
        # hot path: every layer computation goes through here once per op
        B = _backend.current()
        args = [a._polykeras_read() if type(a) is _Variable else a for a in args]
        raws = args
        traced = False
        for a in args:
            if type(a) is Traced:
                traced = True
                raws = [x.value if type(x) is Traced else x for x in args]
                break
        fwd = self.fwd
        out = fwd(B, *raws, **kwargs) if fwd is not None else getattr(B, self.name)(*raws, **kwargs)
        if traced and self.vjp is not None:
            return Traced(out, tuple(args), raws, kwargs, self.vjp)
        return out


PRIMITIVES: dict[str, Primitive] = {}


def _prim(name: str, vjp: VJP | None = None, fwd: Callable | None = None) -> Primitive:
    p = Primitive(name, vjp, fwd)
    PRIMITIVES[name] = p
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


sum = _prim("sum", _sum_vjp)  # noqa: A001
max = _prim("max", _max_reduce_vjp)  # noqa: A001
argmax = _prim("argmax")


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
    ga = gb = None
    if type(n.parents[0]) is Traced:
        ga = unbroadcast(B, B.matmul(g, _swap_last(B, b)), _shape(B, a))
    if type(n.parents[1]) is Traced:
        gb = unbroadcast(B, B.matmul(_swap_last(B, a), g), _shape(B, b))
    return ga, gb


matmul = _prim("matmul", _matmul_vjp)
reshape = _prim("reshape", lambda B, g, n: (B.reshape(g, tuple(B.shape(n.args[0]))), None))


def _transpose_vjp(B, g, n):
    axes = n.args[1] if len(n.args) > 1 else n.kwargs["axes"]
    inverse = [0] * len(axes)
    for i, a in enumerate(axes):
        inverse[a] = i
    return (B.transpose(g, inverse), None)


transpose = _prim("transpose", _transpose_vjp)


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


def concatenate(xs: Sequence[Any], axis: int = -1):
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
take = _prim("take", lambda B, g, n: (B.scatter_add(tuple(B.shape(n.args[0])), n.args[1], g), None))
scatter_add = _prim("scatter_add", lambda B, g, n: (None, None, B.take(g, n.args[1])))

# -- neural-network kernels -----------------------------------------------------------------------


def _softmax_vjp(B, g, n):
    axis = n.kwargs.get("axis", -1)
    y = B.softmax(n.args[0], axis=axis)
    s = B.sum(B.multiply(g, y), axis=axis, keepdims=True)
    return (B.multiply(y, B.subtract(g, s)),)


softmax = _prim("softmax", _softmax_vjp)


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
        )
    return gx, gk


conv2d = _prim("conv2d", _conv_vjp)
conv2d_input_grad = _prim("conv2d_input_grad")
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
    return tuple(_backend.current().shape(_value(x)))


def ndim(x) -> int:
    return len(shape(x))


def dtype_name(x) -> str:
    return _backend.current().dtype_name(_value(x))


def stop_gradient(x):
    return _backend.current().stop_gradient(_value(x))


def asarray(x, dtype: str | None = None):
    return _backend.current().asarray(x, dtype)


def to_numpy(x):
    return _backend.current().to_numpy(_value(x))


def zeros(shape, dtype: str = "float32"):
    return _backend.current().zeros(tuple(shape), dtype)


def ones(shape, dtype: str = "float32"):
    return _backend.current().ones(tuple(shape), dtype)


# -- composites
def expand_dims(x, axis: int):
    s = list(shape(x))
    axis = axis if axis >= 0 else len(s) + axis + 1
    s.insert(axis, 1)
    return reshape(x, tuple(s))


def stack(xs: Sequence[Any], axis: int = 0):
    return concatenate([expand_dims(x, axis) for x in xs], axis=axis)


def square_sum(x, axis=None, keepdims=False):
    return sum(square(x), axis=axis, keepdims=keepdims)


def l2_normalize(x, axis=-1, eps=1e-12):
    norm = sqrt(maximum(square_sum(x, axis=axis, keepdims=True), eps))
    return divide(x, norm)


def log_sigmoid(x):
    return neg(softplus(neg(x)))


def elu(x, alpha=1.0):
    return where(greater(_value(x), 0), x, multiply(subtract(exp(minimum(x, 0.0)), 1.0), alpha))


def hard_sigmoid(x):
    return clip(add(multiply(x, 0.2), 0.5), 0.0, 1.0)


def selu(x):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return multiply(elu(x, alpha), scale)


def linear(x):
    return x


def softsign(x):
    return divide(x, add(abs(x), 1.0))


def swish(x):
    return multiply(x, sigmoid(x))


def gelu(x):
    # tanh approximation is Keras' approximate=True; exact erf form matches Keras' default
    c = math.sqrt(2.0 / math.pi)
    inner = multiply(add(x, multiply(power(x, 3.0), 0.044715)), c)
    return multiply(multiply(x, 0.5), add(tanh(inner), 1.0))
