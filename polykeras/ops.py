"""Differentiable ops over the active backend, with each primitive's VJP written once.

Layers, losses and optimizers are written with these functions.  Each accepts backend
arrays, :class:`~polykeras.autodiff.Traced` values, variables, and python scalars where a
number makes sense, and returns a backend array (or a Traced value while a loss is being
differentiated by the core).
"""

from __future__ import annotations

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


def _prim(name: str, vjp: VJP | None = None, fwd: Callable | None = None) -> Primitive:
    p = Primitive(name, vjp, fwd)
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


sum = _prim("sum", _sum_vjp)  # noqa: A001
max = _prim("max", _max_reduce_vjp)  # noqa: A001


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
    """Product over ``axis``: sign and magnitude (a sum of logs) apart; 0 where a factor is."""
    zero = equal(x, 0.0)
    safe = where(zero, 1.0, abs(x))
    magnitude = exp(sum(log(safe), axis=axis, keepdims=keepdims))
    negatives = sum(cast(less(x, 0.0), _float_dtype(x)), axis=axis, keepdims=keepdims)
    sign_ = subtract(1.0, multiply(mod(negatives, 2.0), 2.0))
    zeros_ = sum(cast(zero, _float_dtype(x)), axis=axis, keepdims=keepdims)
    return where(greater(zeros_, 0.0), 0.0, multiply(sign_, magnitude))


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
softmax = PRIMITIVES["softmax"] = OPS["softmax"] = _NotingPrimitive("softmax", _softmax_vjp)


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
