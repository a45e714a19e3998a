"""Keras 2's backend API: what ``from keras import backend as K`` gives.

Reached as ``polykeras.backend.<name>`` (``polykeras.backend`` forwards every name it does
not define itself here).  Each math function is a :mod:`polykeras.ops` function, so it
computes eagerly on arrays and variables, is recorded on the tape while a loss is
differentiated, and adds a node to the graph on symbolic tensors.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import activations, autodiff, ops
from . import backend as _backend
from .config import epsilon, floatx, image_data_format  # noqa: F401  (K.epsilon()...)
from .config import set_epsilon, set_floatx, set_image_data_format  # noqa: F401
from .engine.base_layer import KerasTensor
from .engine.variables import Variable

# -- the same functions as polykeras.ops ---------------------------------------------------
abs = ops.absolute  # noqa: A001
exp = ops.exp
log = ops.log
sqrt = ops.sqrt
square = ops.square
sign = ops.sign
round = ops.round  # noqa: A001
tanh = ops.tanh
sigmoid = ops.sigmoid
hard_sigmoid = ops.hard_sigmoid
softplus = ops.softplus
softsign = ops.softsign
maximum = ops.maximum
minimum = ops.minimum
equal = ops.equal
not_equal = ops.not_equal
greater = ops.greater
greater_equal = ops.greater_equal
less = ops.less
less_equal = ops.less_equal
cast = ops.cast
stop_gradient = ops.stop_gradient
zeros_like = ops.zeros_like
ones_like = ops.ones_like
one_hot = ops.one_hot
batch_dot = ops.batch_dot
logsumexp = ops.logsumexp
categorical_crossentropy = ops.categorical_crossentropy
sparse_categorical_crossentropy = ops.sparse_categorical_crossentropy
binary_crossentropy = ops.binary_crossentropy
permute_dimensions = ops.transpose
gather = ops.gather
relu = activations.relu
elu = activations.elu
softmax = activations.softmax


def sum(x, axis=None, keepdims=False):  # noqa: A001
    return ops.sum(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return ops.mean(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return ops.max(x, axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    return ops.min(x, axis=axis, keepdims=keepdims)


def prod(x, axis=None, keepdims=False):
    return ops.prod(x, axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    return ops.std(x, axis=axis, keepdims=keepdims)


def var(x, axis=None, keepdims=False):
    return ops.var(x, axis=axis, keepdims=keepdims)


def pow(x, a):  # noqa: A001
    return ops.power(x, a)


def clip(x, min_value, max_value):
    if max_value is not None and min_value is not None and max_value < min_value:
        max_value = min_value
    return ops.clip(x, min_value, max_value)


def argmax(x, axis=-1):
    return ops.argmax(x, axis=axis)


def argmin(x, axis=-1):
    return ops.argmin(x, axis=axis)


def dot(x, y):
    """Keras 2's ``dot``: a matrix product over the last axis of ``x``."""
    return ops.dot(x, y)


def transpose(x):
    return ops.transpose(x)


def reshape(x, shape):
    shape = tuple(-1 if d is None else d for d in shape)
    return ops.reshape(x, shape)


def expand_dims(x, axis=-1):
    return ops.expand_dims(x, axis)


def squeeze(x, axis):
    return ops.squeeze(x, axis)


def concatenate(tensors, axis=-1):
    return ops.concatenate(list(tensors), axis=axis)


def stack(x, axis=0):
    return ops.stack(list(x), axis=axis)


def repeat_elements(x, rep, axis):
    return ops.repeat(x, rep, axis=axis)


def tile(x, n):
    return ops.tile(x, n)


def flatten(x):
    return ops.reshape(x, (-1,))


def batch_flatten(x):
    s = ops.shape(x)
    n = 1
    for d in s[1:]:
        if d is None:
            raise ValueError(f"batch_flatten: every dimension but the batch must be known, got {s}")
        n *= d
    return ops.reshape(x, (-1, n))


def l2_normalize(x, axis=None):
    return ops.l2_normalize(x, axis=axis)


def switch(condition, then_expression, else_expression):
    """``then`` where ``condition`` holds, else ``else`` (callables are called first)."""
    then_v = then_expression() if callable(then_expression) else then_expression
    else_v = else_expression() if callable(else_expression) else else_expression
    if isinstance(condition, (bool, int, np.bool_)):
        return then_v if condition else else_v
    return ops.where(condition, then_v, else_v)


# -- Keras 2's spellings of more ops (issue 14) --------------------------------------------
def cumsum(x, axis=0):
    return ops.cumsum(x, axis=axis)


def cumprod(x, axis=0):
    return ops.cumprod(x, axis=axis)


sin = ops.sin
cos = ops.cos


def in_top_k(predictions, targets, k):
    """Keras 2's argument order (predictions first): whether each target is in its row's
    ``k`` largest predictions."""
    return ops.in_top_k(targets, predictions, k)


def reverse(x, axes):
    return ops.flip(x, axis=axes)


def arange(start, stop=None, step=1, dtype="int32"):
    return ops.arange(start, stop, step, dtype=dtype)


def cast_to_floatx(x):
    return np.asarray(x, dtype=floatx())


def __getattr__(name: str) -> Any:
    # K.any, K.all and K.slice are ops' own, reached without shadowing the builtins this
    # module uses
    if name in ("any", "all", "slice"):
        return getattr(ops, name)
    raise AttributeError(f"module 'polykeras.backend_api' has no attribute {name!r}")


def temporal_padding(x, padding=(1, 1)):
    """Zeros before and after the steps (axis 1) of a 3-D tensor."""
    if len(padding) != 2:
        raise ValueError(f"temporal_padding: padding must be a (before, after) pair, got {padding}")
    return ops.pad(x, [(0, 0), tuple(padding), (0, 0)])


def _spatial_padding(op: str, x, padding, data_format, dims: int):
    fmt = image_data_format() if data_format is None else data_format
    if fmt not in ("channels_last", "channels_first"):
        raise ValueError(
            f"{op}: data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
        )
    pairs = [tuple(p) for p in padding]
    if len(pairs) != dims or any(len(p) != 2 for p in pairs):
        raise ValueError(f"{op}: padding must be {dims} (before, after) pairs, got {padding}")
    widths = [(0, 0)] + pairs + [(0, 0)] if fmt == "channels_last" else [(0, 0), (0, 0)] + pairs
    return ops.pad(x, widths)


def spatial_2d_padding(x, padding=((1, 1), (1, 1)), data_format=None):
    return _spatial_padding("spatial_2d_padding", x, padding, data_format, 2)


def spatial_3d_padding(x, padding=((1, 1), (1, 1), (1, 1)), data_format=None):
    return _spatial_padding("spatial_3d_padding", x, padding, data_format, 3)


# -- tensors, variables and their values -----------------------------------------------------
def _unique_name(prefix: str) -> str:
    from .engine import naming

    return naming.unique(prefix)


def variable(value, dtype=None, name=None, constraint=None) -> Variable:
    """A variable holding ``value`` (Keras 2's ``K.variable``)."""
    arr = np.asarray(_numpy(value), dtype=dtype or floatx())
    var = Variable(arr, name or _unique_name("variable"))
    var.constraint = constraint
    return var


def constant(value, dtype=None, shape=None, name=None):
    arr = np.asarray(_numpy(value), dtype=dtype or floatx())
    if shape is not None:
        arr = np.broadcast_to(arr, tuple(shape)).copy()
    return _backend.current().asarray(arr)


def zeros(shape, dtype=None, name=None) -> Variable:
    return variable(np.zeros(tuple(shape)), dtype, name)


def ones(shape, dtype=None, name=None) -> Variable:
    return variable(np.ones(tuple(shape)), dtype, name)


def eye(size, dtype=None, name=None) -> Variable:
    n, m = (size, size) if isinstance(size, int) else tuple(size)
    return variable(np.eye(n, m), dtype, name)


def is_keras_tensor(x) -> bool:
    return isinstance(x, KerasTensor)


def is_tensor(x) -> bool:
    return isinstance(x, (KerasTensor, Variable, autodiff.Traced)) or _backend.current().is_native(
        x
    )


def _numpy(x) -> Any:
    if isinstance(x, KerasTensor):
        raise TypeError(
            f"{x.name} is a symbolic tensor: it has no value. Evaluate it with "
            "K.function([inputs], [outputs])(arrays), or call the model on data"
        )
    if isinstance(x, Variable):
        return x.numpy()
    x = autodiff.raw(x)
    B = _backend.current()
    return B.to_numpy(x) if B.is_native(x) else np.asarray(x)


def eval(x):  # noqa: A001
    """The value of a variable or tensor as a NumPy array."""
    return _numpy(x)


def get_value(x):
    return _numpy(x)


def batch_get_value(xs):
    return [_numpy(x) for x in xs]


def set_value(x: Variable, value) -> None:
    if not isinstance(x, Variable):
        raise TypeError(f"set_value: expected a variable, got {type(x).__name__}")
    x.assign(np.asarray(value, dtype=x.dtype))


def batch_set_value(tuples) -> None:
    for x, value in tuples:
        set_value(x, value)


def int_shape(x) -> tuple:
    if isinstance(x, (KerasTensor, Variable)):
        return tuple(x.shape)
    if isinstance(x, np.ndarray):
        return tuple(x.shape)
    return tuple(ops.shape(x))


def shape(x) -> tuple:
    """The shape (a tuple; on a symbolic tensor, None where unknown)."""
    return int_shape(x)


def ndim(x) -> int:
    return len(int_shape(x))


def dtype(x) -> str:
    if isinstance(x, (KerasTensor, Variable)):
        return x.dtype
    if isinstance(x, np.ndarray):
        return x.dtype.name
    return ops.dtype_name(x)


def count_params(x) -> int:
    n = 1
    for d in int_shape(x):
        n *= d
    return int(n)


# -- learning phase ------------------------------------------------------------------------------
_LEARNING_PHASE: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "polykeras_learning_phase", default=None
)


def learning_phase() -> int:
    """1 while a model runs in training mode (inside fit), 0 otherwise or as set."""
    value = _LEARNING_PHASE.get()
    return 0 if value is None else value


def set_learning_phase(value: int) -> None:
    if value not in (0, 1):
        raise ValueError(f"set_learning_phase: expected 0 or 1, got {value!r}")
    _LEARNING_PHASE.set(int(value))


@contextlib.contextmanager
def learning_phase_scope(value: int) -> Iterator[None]:
    if value not in (0, 1):
        raise ValueError(f"learning_phase_scope: expected 0 or 1, got {value!r}")
    token = _LEARNING_PHASE.set(int(value))
    try:
        yield
    finally:
        _LEARNING_PHASE.reset(token)


@contextlib.contextmanager
def training_phase() -> Iterator[None]:
    """The learning phase of a training step: 1, unless set by the user (Keras 2's
    ``set_learning_phase(0)`` holds inside ``fit`` too)."""
    if _LEARNING_PHASE.get() is not None:
        yield
        return
    token = _LEARNING_PHASE.set(1)
    try:
        yield
    finally:
        _LEARNING_PHASE.reset(token)


def in_train_phase(x, alt, training=None):
    """``x`` in training mode, ``alt`` otherwise (callables are called)."""
    if training is None:
        training = learning_phase()
    chosen = x if training else alt
    return chosen() if callable(chosen) else chosen


def in_test_phase(x, alt, training=None):
    return in_train_phase(alt, x, training=training)


# -- random numbers -----------------------------------------------------------------------------
def _random(kind: str, shape, dtype, seed) -> Any:
    B = _backend.current()
    dtype = dtype or floatx()
    shape = tuple(int(d) for d in shape)
    if seed is not None:  # NumPy's generator: the same numbers on every backend
        rng = np.random.default_rng(seed)
        draw = rng.standard_normal(shape) if kind == "normal" else rng.random(shape)
        return B.asarray(draw.astype(dtype))
    return B.random_normal(shape, dtype) if kind == "normal" else B.random_uniform(shape, dtype)


def random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return ops.add(ops.multiply(_random("normal", shape, dtype, seed), stddev), mean)


def random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    return ops.add(ops.multiply(_random("uniform", shape, dtype, seed), maxval - minval), minval)


def random_binomial(shape, p=0.0, dtype=None, seed=None):
    u = _random("uniform", shape, dtype, seed)
    return ops.cast(ops.less(u, p), dtype or floatx())


@ops.keras_op(name="backend.dropout")
def dropout(x, level, noise_shape=None, seed=None):
    """Zero each value with probability ``level`` and scale the rest by 1 / (1 - level)."""
    if not 0.0 <= level < 1.0:
        raise ValueError(f"dropout: level must be in [0, 1), got {level!r}")
    shape_ = tuple(noise_shape) if noise_shape is not None else ops.shape(x)
    keep = random_binomial(shape_, 1.0 - level, ops.dtype_name(x), seed)
    return ops.multiply(x, ops.multiply(keep, 1.0 / (1.0 - level)))


# -- K.function and K.gradients -------------------------------------------------------------------
class Function:
    """``K.function(inputs, outputs)``: call it with a list of arrays, get NumPy arrays."""

    def __init__(self, inputs: Sequence[KerasTensor], outputs: Any, updates: Any = None):
        from .engine.functional import Functional

        if updates:
            raise ValueError("K.function: updates= is not supported by polykeras")
        self._single = not isinstance(outputs, (list, tuple))
        ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        outs = [outputs] if self._single else list(outputs)
        for i, t in enumerate(ins + outs):
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"K.function: {'input' if i < len(ins) else 'output'} "
                    f"{i if i < len(ins) else i - len(ins)} is a {type(t).__name__}, not a "
                    "symbolic tensor (learning-phase inputs are not supported: pass "
                    "training= to the layers instead)"
                )
        self._model = Functional(ins, outs, name=_unique_name("function"))
        self._n_inputs = len(ins)

    def __call__(self, inputs: Sequence[Any]) -> Any:
        values = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(values) != self._n_inputs:
            raise ValueError(
                f"K.function expects {self._n_inputs} input array(s), got {len(values)}"
            )
        B = _backend.current()
        arrays = [
            B.asarray(np.asarray(v, dtype=t.dtype)) for v, t in zip(values, self._model.inputs)
        ]
        outs = self._model._run_graph(arrays, training=bool(learning_phase()))
        result = [B.to_numpy(autodiff.raw(o)) for o in outs]
        return result[0] if self._single else result


def function(inputs, outputs, updates=None, name=None, **kwargs) -> Function:
    if kwargs:
        raise TypeError(f"K.function: argument(s) not supported: {', '.join(sorted(kwargs))}")
    return Function(inputs, outputs, updates)


def gradients(loss, variables) -> list:
    """Symbolic gradients of ``loss`` (summed if not a scalar) with respect to tensors it is
    computed from: model inputs, or tensors inside the graph (a hidden layer's output);
    None for a tensor the loss does not depend on, as in Keras 2."""
    from .engine.gradients import symbolic_gradients

    wrt = list(variables) if isinstance(variables, (list, tuple)) else [variables]
    if not isinstance(loss, KerasTensor) or not all(isinstance(v, KerasTensor) for v in wrt):
        raise TypeError(
            "K.gradients(loss, variables) works on symbolic tensors (a loss built from a "
            "model's tensors, and Input tensors or tensors of the graph); to differentiate "
            "arrays, use polykeras.GradientTape"
        )
    return symbolic_gradients(loss, wrt)


# clear_session() and backend() are polykeras.backend's own functions.


def image_dim_ordering() -> str:
    return "tf" if image_data_format() == "channels_last" else "th"


def placeholder(*args, **kwargs):
    raise NotImplementedError(
        "K.placeholder is not supported by polykeras: use polykeras.Input(shape=...)"
    )
