"""The backend contract: everything a backend supplies to polykeras.

A backend is any object with the attributes and methods of :class:`Backend` below.  Its
arrays are its own ("native" arrays: ``numpy.ndarray``, ``cupy.ndarray``, ``torch.Tensor``);
the core never looks inside them, it only passes them back to the backend's methods.

Conventions every method follows:

- dtypes are named by NumPy's strings: ``"float32"``, ``"float64"``, ``"int32"``,
  ``"int64"``, ``"bool"``.
- ``shape`` arguments are tuples of ints; ``axis`` is an int, a tuple of ints or None.
- binary elementwise ops broadcast as NumPy does; python scalars are accepted as operands.
- images are 4-D, ``"channels_last"`` (N, H, W, C) or ``"channels_first"`` (N, C, H, W);
  conv kernels are always Keras' (kh, kw, in, out) whatever the data format.
- ``padding`` is ``"valid"`` or ``"same"`` (Keras' meaning: "same" pads so that
  out = ceil(in / stride), with the extra row/column at the bottom/right).

Differentiation: the core differentiates every primitive below itself (reverse mode,
see :mod:`polykeras.autodiff`).  A backend with its own differentiation may supply
``value_and_grad``; the core then uses it, and both must agree.

The tests in ``tests/test_backends.py`` and ``tests/test_gradients.py`` run against every
usable backend; a new backend that passes them, and the conformance matrix, is complete.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable
from collections.abc import Callable, Sequence

Array = Any
Shape = tuple[int, ...]
Axis = int | tuple[int, ...] | None

#: The primitive ops, by family.  The core calls nothing else on a backend.
PRIMITIVES: dict[str, tuple[str, ...]] = {
    "create": (
        "asarray",
        "to_numpy",
        "zeros",
        "ones",
        "cast",
        "dtype_name",
        "shape",
        "is_native",
        "stop_gradient",
    ),
    "random": ("seed", "random_uniform", "random_normal"),
    "unary": (
        "neg",
        "exp",
        "log",
        "tanh",
        "sigmoid",
        "relu",
        "sqrt",
        "abs",
        "sign",
        "square",
        "softplus",
    ),
    "binary": ("add", "subtract", "multiply", "divide", "maximum", "minimum", "power"),
    "compare": ("greater", "greater_equal", "less", "equal", "where", "clip"),
    "reduce": ("sum", "max", "argmax"),
    "linalg": ("matmul",),
    "shape_ops": (
        "reshape",
        "transpose",
        "concatenate",
        "getitem",
        "scatter_slice",
        "broadcast_to",
    ),
    "gather": ("take", "scatter_add", "index_update", "take_along_last"),
    "nn": ("softmax", "conv2d", "conv2d_input_grad", "conv2d_kernel_grad", "pool2d", "pool2d_grad"),
}


@runtime_checkable
class Backend(Protocol):
    """What a backend object provides.  See the module docstring for conventions."""

    #: short name, as selected ("numpy", "torch", "cupy")
    name: str
    #: where arrays live, in words ("cpu", "cuda:0")
    device: str

    # -- creation and conversion -------------------------------------------------------
    def asarray(self, x: Any, dtype: str | None = None) -> Array:
        """A native array from a NumPy array, a native array, a list or a scalar."""

    def to_numpy(self, x: Array) -> Any:
        """A NumPy array with the same values (a copy where memory is not shared)."""

    def zeros(self, shape: Shape, dtype: str) -> Array: ...
    def ones(self, shape: Shape, dtype: str) -> Array: ...
    def cast(self, x: Array, dtype: str) -> Array: ...
    def dtype_name(self, x: Array) -> str:
        """NumPy's name of the array's dtype."""

    def shape(self, x: Array) -> Shape: ...
    def is_native(self, x: Any) -> bool:
        """Whether ``x`` is one of this backend's arrays."""

    def stop_gradient(self, x: Array) -> Array:
        """``x`` detached from any differentiation the backend itself records."""

    # -- random numbers ------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """Re-seed the backend's generator: the same seed repeats the same numbers."""

    def random_uniform(self, shape: Shape, dtype: str) -> Array:
        """Uniform samples in [0, 1)."""

    def random_normal(self, shape: Shape, dtype: str) -> Array:
        """Standard normal samples."""

    # -- elementwise -----------------------------------------------------------------------
    def neg(self, x: Array) -> Array: ...
    def exp(self, x: Array) -> Array: ...
    def log(self, x: Array) -> Array: ...
    def tanh(self, x: Array) -> Array: ...
    def sigmoid(self, x: Array) -> Array: ...
    def relu(self, x: Array) -> Array: ...
    def sqrt(self, x: Array) -> Array: ...
    def abs(self, x: Array) -> Array: ...
    def sign(self, x: Array) -> Array: ...
    def square(self, x: Array) -> Array: ...
    def softplus(self, x: Array) -> Array:
        """log(1 + exp(x)), computed without overflow."""

    def add(self, a: Array, b: Array) -> Array: ...
    def subtract(self, a: Array, b: Array) -> Array: ...
    def multiply(self, a: Array, b: Array) -> Array: ...
    def divide(self, a: Array, b: Array) -> Array: ...
    def maximum(self, a: Array, b: Array) -> Array: ...
    def minimum(self, a: Array, b: Array) -> Array: ...
    def power(self, a: Array, b: Array) -> Array: ...

    def greater(self, a: Array, b: Array) -> Array:
        """Boolean array."""

    def greater_equal(self, a: Array, b: Array) -> Array: ...
    def less(self, a: Array, b: Array) -> Array: ...
    def equal(self, a: Array, b: Array) -> Array: ...
    def where(self, cond: Array, a: Array, b: Array) -> Array: ...
    def clip(self, x: Array, lo: float, hi: float) -> Array: ...

    # -- reductions --------------------------------------------------------------------------
    def sum(self, x: Array, axis: Axis = None, keepdims: bool = False) -> Array: ...
    def max(self, x: Array, axis: Axis = None, keepdims: bool = False) -> Array: ...
    def argmax(self, x: Array, axis: int = -1) -> Array: ...

    # -- linear algebra and shapes ----------------------------------------------------------
    def matmul(self, a: Array, b: Array) -> Array:
        """NumPy's matmul: batched over leading axes, broadcasting them."""

    def reshape(self, x: Array, shape: Shape) -> Array: ...
    def transpose(self, x: Array, axes: Sequence[int]) -> Array: ...
    def concatenate(self, xs: Sequence[Array], axis: int) -> Array: ...
    def getitem(self, x: Array, key: Any) -> Array:
        """Basic indexing only: a tuple of ints, slices, None and Ellipsis."""

    def scatter_slice(self, shape: Shape, key: Any, values: Array) -> Array:
        """Zeros of ``shape`` with ``values`` placed at basic index ``key``."""

    def broadcast_to(self, x: Array, shape: Shape) -> Array: ...

    # -- gather ------------------------------------------------------------------------------
    def take(self, x: Array, indices: Array) -> Array:
        """Rows of ``x`` (axis 0) at integer ``indices``.

        ``out.shape == indices.shape + x.shape[1:]``; indices outside [0, n) are an error
        (never wrapped)."""

    def scatter_add(self, shape: Shape, indices: Array, updates: Array) -> Array:
        """Zeros of ``shape`` with ``updates`` added at rows ``indices`` (repeats add up).

        The gradient of :meth:`take`."""

    def index_update(self, x: Array, indices: Array, values: Array) -> Array:
        """``x`` with rows ``indices`` (distinct) replaced by ``values``; may write ``x`` in
        place and return it.  Optimizers use it to update only the embedding rows a batch
        touched."""

    def take_along_last(self, x: Array, indices: Array) -> Array:
        """``x[..., indices]`` row by row: ``indices`` (integers) has the shape of ``x``
        without its last axis, and so has the result.  Indices outside [0, x.shape[-1]) are
        an error (never wrapped).  The sparse crossentropy picks the label's entry with it."""

    # -- neural-network kernels ------------------------------------------------------------
    def softmax(self, x: Array, axis: int = -1) -> Array: ...
    def conv2d(
        self,
        x: Array,
        kernel: Array,
        strides: tuple[int, int],
        padding: str,
        data_format: str,
        dilation_rate: tuple[int, int] = (1, 1),
        groups: int = 1,
    ) -> Array:
        """Cross-correlation as Keras' Conv2D computes it (kernel (kh, kw, in, out)).

        With ``groups`` > 1 the kernel is (kh, kw, in / groups, out): input channels and
        output channels are split into ``groups`` consecutive blocks and block ``i`` of the
        output sees only block ``i`` of the input (depthwise when ``in / groups == 1``).
        The core passes ``groups`` only when it is not 1, to the three conv2d kernels."""

    def conv2d_input_grad(
        self,
        grad: Array,
        kernel: Array,
        input_shape: Shape,
        strides: tuple[int, int],
        padding: str,
        data_format: str,
        dilation_rate: tuple[int, int] = (1, 1),
        groups: int = 1,
    ) -> Array:
        """d(loss)/d(x) of :meth:`conv2d` given d(loss)/d(output).

        It is also the transposed convolution (Conv2DTranspose's forward pass, ``grad`` its
        input): the core differentiates it with its VJP in ``ops.py``, and a backend that
        differentiates by itself must differentiate it too."""

    def conv2d_kernel_grad(
        self,
        x: Array,
        grad: Array,
        kernel_shape: Shape,
        strides: tuple[int, int],
        padding: str,
        data_format: str,
        dilation_rate: tuple[int, int] = (1, 1),
        groups: int = 1,
    ) -> Array:
        """d(loss)/d(kernel) of :meth:`conv2d` given d(loss)/d(output)."""

    def pool2d(
        self,
        x: Array,
        pool_size: tuple[int, int],
        strides: tuple[int, int],
        padding: str,
        data_format: str,
        mode: str,
    ) -> Array:
        """Max (``mode="max"``) or average (``"avg"``, padding not counted) pooling."""

    def pool2d_grad(
        self,
        x: Array,
        grad: Array,
        pool_size: tuple[int, int],
        strides: tuple[int, int],
        padding: str,
        data_format: str,
        mode: str,
    ) -> Array:
        """d(loss)/d(x) of :meth:`pool2d` given d(loss)/d(output)."""


class DifferentiatingBackend(Backend, Protocol):
    """Optional: a backend that differentiates with its own machinery."""

    def value_and_grad(
        self, fn: Callable[[list[Array]], tuple[Array, Any]], params: Sequence[Array]
    ) -> tuple[Array, Any, list[Array]]:
        """Call ``fn(params)`` -> ``(loss, aux)`` and return ``(loss, aux, grads)``.

        ``grads[i]`` is d(loss)/d(params[i]) (zeros where the loss does not depend on it).
        """


def out_and_pads(
    size: int, k: int, stride: int, dilation: int, padding: str
) -> tuple[int, int, int]:
    """Output length and (before, after) padding along one axis, as Keras/TensorFlow define
    them: "same" gives ceil(size / stride) with the extra padding after.  Backends use it
    so that every one pads alike."""
    ek = (k - 1) * dilation + 1
    if padding == "valid":
        return max((size - ek) // stride + 1, 0), 0, 0
    if padding != "same":
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    out = -(-size // stride)
    total = max((out - 1) * stride + ek - size, 0)
    return out, total // 2, total - total // 2


class FusedKernels(Protocol):
    """Optional kernels a backend may add for speed.  The core uses one only when the
    backend differentiates by itself (``value_and_grad``) and nothing is being recorded by
    the core's tape; otherwise it runs the same computation from the primitives above.
    Tests check that both paths give the same outputs and gradients."""

    def lstm_sequence(
        self,
        x: Array,
        h0: Array,
        c0: Array,
        kernel: Array,
        recurrent_kernel: Array,
        bias: Array | None,
        go_backwards: bool = False,
        return_sequences: bool = False,
    ) -> tuple[Array, Array, Array]:
        """A whole LSTM layer (Keras layout: gates i, f, c, o; tanh and sigmoid).

        ``x`` is (batch, steps, features); returns ``(sequence, h, c)`` where ``sequence`` is
        (batch, steps, units) when ``return_sequences`` (else the final ``h``), in the order
        the steps were processed (reversed when ``go_backwards``)."""

    def conv2d_bias(
        self,
        x: Array,
        kernel: Array,
        bias: Array,
        strides: tuple[int, int],
        padding: str,
        data_format: str,
        dilation_rate: tuple[int, int] = (1, 1),
    ) -> Array:
        """:meth:`Backend.conv2d` plus ``bias`` (one value per output channel), in one
        kernel."""

    def rmsprop_update(
        self,
        ws: Sequence[Array],
        gs: Sequence[Array],
        vs: Sequence[Array],
        lr: float,
        rho: float,
        epsilon: float,
    ) -> tuple[Sequence[Array], Sequence[Array]]:
        """One RMSprop step (no momentum, not centered) for several variables at once, Keras
        3's math: ``v = rho * v + (1 - rho) * g**2``; ``w = w - lr * g / sqrt(v + epsilon)``.
        May update the ``ws`` and ``vs`` in place; returns the new ``(ws, vs)``."""

    def adam_update(
        self,
        ws: Sequence[Array],
        gs: Sequence[Array],
        ms: Sequence[Array],
        vs: Sequence[Array],
        vhats: Sequence[Array] | None,
        alpha: float,
        beta_1: float,
        beta_2: float,
        epsilon: float,
    ) -> tuple[Sequence[Array], Sequence[Array], Sequence[Array], Sequence[Array] | None]:
        """One Adam step for several variables at once, Keras 3's math: ``m += (g - m) * (1 -
        beta_1)``; ``v += (g**2 - v) * (1 - beta_2)``; with ``vhats`` (amsgrad) ``vhat =
        max(vhat, v)`` and ``v = vhat``; ``w = w - alpha * m / (sqrt(v) + epsilon)``, where
        ``alpha`` is the bias-corrected learning rate (epsilon is added to the uncorrected
        ``sqrt(v)``, as Keras does; torch.optim's Adam places it after the correction).
        May update the ``ws`` in place, never the ``ms``/``vs``/``vhats`` given (arrays read
        back by ``get_weights`` may share their memory); returns the new ``(ws, ms, vs,
        vhats)``."""

    def layer_norm(
        self, x: Array, gamma: Array | None, beta: Array | None, num_axes: int, epsilon: float
    ) -> Array:
        """Layer normalization over the last ``num_axes`` axes of ``x``: ``(x - mean) /
        sqrt(var + epsilon) * gamma + beta`` (``gamma``/``beta`` shaped like those axes, or
        None), as Keras' LayerNormalization computes it."""

    # crossentropy from logits (issue 21): the core's ops.softmax_crossentropy and
    # ops.sigmoid_crossentropy call these when present (their VJPs are in ops.py, so they
    # serve the core's tape too); otherwise the same math from the primitives
    def softmax_crossentropy(self, target: Array, logits: Array) -> Array:
        """``-sum(target * log_softmax(logits), axis=-1)``, numerically stable."""

    def sigmoid_crossentropy(self, target: Array, logits: Array) -> Array:
        """Elementwise ``softplus(logits) - target * logits``, numerically stable."""

    def sparse_softmax_crossentropy(self, labels: Array, logits: Array) -> Array:
        """``-log_softmax(logits)[..., labels]`` (integer ``labels`` shaped like ``logits``
        without its last axis, in [0, classes): others are an error), numerically stable."""

    # attention (issue 21): ops.attend and ops.dot_product_attention use the first where the
    # backend differentiates by itself and nothing is traced by the core; the other two serve
    # the core's tape too (their VJPs are in ops.py)
    def scaled_dot_product_attention(
        self, q: Array, k: Array, v: Array, bias: Array | None, scale: float
    ) -> Array:
        """``softmax(scale * q @ k^T + bias, axis=-1) @ v`` in one kernel, for ``q`` (batch,
        heads, t, h), ``k`` (batch, heads, s, h) and ``v`` (batch, heads, s, hv); ``bias`` is
        None or a float array broadcastable to (batch, heads, t, s), added to the logits.
        Returns (batch, heads, t, hv)."""

    def attention_weights(self, q: Array, k: Array, bias: Array | None, scale: float) -> Array:
        """``softmax(scale * q @ k^T + bias, axis=-1)`` (shapes as above), the weights only;
        a kernel may work in place on its one (batch, heads, t, s) temporary."""

    def softmax_grad(self, y: Array, g: Array) -> Array:
        """``y * (g - sum(g * y, axis=-1, keepdims=True))``: the pullback of ``g`` through a
        softmax over the last axis whose output is ``y``."""

    def compile_step(
        self, fn: Callable[..., Any], args: Sequence[Any], write_back: bool = False
    ) -> Callable[..., Any]:
        """``compile(jit_compile=True)``: a compiled equivalent of ``fn(*args)`` for
        arguments like ``args`` (nested lists of arrays and None), or an exception saying
        why not.  With ``write_back`` (the core always asks for it), ``fn`` returns
        ``(new_state, outputs)``: every array of ``new_state`` that is not None is written
        in place into the same position of ``args[0]`` (the weights, the optimizer's
        slots, layer statistics) and the compiled function returns ``outputs``.  A backend
        whose hook takes only ``(fn, args)`` fails at the first trace, and the step then
        runs eagerly with a warning."""


class MathKernels(Protocol):
    """Optional elementwise and scan kernels behind ``keras.ops`` (issue 14).  Each has a
    VJP in the core and, where a backend lacks it, the same math composed from the
    primitives above (``erf``: a Chebyshev fit of erfc, 1.2e-7 relative; ``log1p`` and
    ``expm1``: Kahan's exact-to-rounding forms; ``cumsum``: log2(n) shifted additions;
    ``cumprod``: log2(n) shifted products; ``sin``, ``cos`` and ``argsort``: NumPy on the
    host).  Integer and bool inputs of the elementwise ones arrive as float32."""

    def erf(self, x: Array) -> Array: ...
    def log1p(self, x: Array) -> Array: ...
    def expm1(self, x: Array) -> Array: ...
    def sin(self, x: Array) -> Array: ...
    def cos(self, x: Array) -> Array: ...
    def cumsum(self, x: Array, axis: int) -> Array:
        """Inclusive cumulative sum along ``axis`` (an int); the dtype may widen."""

    def cumprod(self, x: Array, axis: int) -> Array:
        """Inclusive cumulative product along ``axis``, differentiable by the backend's own
        differentiation (the core uses it only when its tape records nothing)."""

    def argsort(self, x: Array, axis: int) -> Array:
        """Integer indices that sort ``x`` ascending along ``axis``, stable (equal values
        keep their order)."""


#: Optional methods a backend may supply (see :class:`FusedKernels`, :class:`MathKernels`).
OPTIONAL = (
    "value_and_grad",
    "lstm_sequence",
    "conv2d_bias",
    "rmsprop_update",
    "adam_update",
    "layer_norm",
    "softmax_crossentropy",
    "sigmoid_crossentropy",
    "sparse_softmax_crossentropy",
    "compile_step",
    "scaled_dot_product_attention",
    "attention_weights",
    "softmax_grad",
    "erf",
    "log1p",
    "expm1",
    "sin",
    "cos",
    "cumsum",
    "cumprod",
    "argsort",
)


def missing_methods(obj: Any) -> list[str]:
    """The contract methods ``obj`` lacks (empty when it implements the whole contract)."""
    names = [n for family in PRIMITIVES.values() for n in family]
    missing = [n for n in names if not callable(getattr(obj, n, None))]
    missing += [a for a in ("name", "device") if not hasattr(obj, a)]
    return missing
