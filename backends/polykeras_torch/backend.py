"""The PyTorch backend object: the whole backend contract on ``torch.Tensor``.

Methods follow the order of :mod:`polykeras.contract`.  Images are handed to torch's
kernels as NCHW *views* (a channels_last input becomes a permuted view, which torch treats
as its own channels_last memory format), so no layout copies are made.  Keras' asymmetric
"same" padding (the extra row/column at the bottom/right) is applied with ``F.pad`` only
when the two sides differ; otherwise torch's kernels pad by themselves.

The backend differentiates with torch's autograd (:meth:`TorchBackend.value_and_grad`);
the explicit gradient primitives (``conv2d_input_grad``...) serve the core's tape.

On a CUDA device (see :func:`configure_cuda`): TF32 is off, so that float32 results agree
with the other backends (``POLYKERAS_ALLOW_TF32=1`` turns it on); cuDNN is deterministic
when ``POLYKERAS_DETERMINISTIC=1``; NumPy batches of 64 KiB or more are copied through
pinned host memory with a non-blocking transfer.  On the CPU nothing of this applies.
"""

from __future__ import annotations

import contextvars
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .plugin import MIN_TORCH, _version_tuple

from polykeras.contract import out_and_pads as _out_and_pads

_Tensor = torch.Tensor
_NUMPY_TYPES = (np.ndarray, np.generic)
_conv_backward = torch.ops.aten.convolution_backward

# NumPy's dtype names <-> torch dtypes.  bfloat16 has no NumPy equivalent; it keeps its name.
_TORCH_DTYPES: dict[Any, torch.dtype] = {
    "bool": torch.bool,
    "uint8": torch.uint8,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "complex64": torch.complex64,
    "complex128": torch.complex128,
}
for _name in ("uint16", "uint32", "uint64"):  # torch >= 2.3
    if hasattr(torch, _name):
        _TORCH_DTYPES[_name] = getattr(torch, _name)
_DTYPE_NAMES: dict[torch.dtype, str] = {v: k for k, v in _TORCH_DTYPES.items()}
_TORCH_DTYPES.update({v: v for v in _DTYPE_NAMES})  # torch dtypes pass through
_INDEX_DTYPES = (torch.int32, torch.int64)

ENV_ALLOW_TF32 = "POLYKERAS_ALLOW_TF32"
ENV_DETERMINISTIC = "POLYKERAS_DETERMINISTIC"
# Host arrays at least this large go to a CUDA device through pinned memory (one host copy
# into the caching pinned allocator, then an asynchronous transfer); smaller ones are copied
# directly, where pinning costs more than it saves.
PIN_MIN_BYTES = 64 * 1024
#: True while compile_step traces a step (its arrays are fake: no host reads)
_TRACING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "polykeras_torch_tracing", default=False
)
#: whether torch.compile (Dynamo) or torch.export is tracing (torch >= 2.3 can say)
_torch_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)


def _leaves(tree: Any, out: list) -> list:
    """The tensors of nested lists/tuples, in order (None left out)."""
    for item in tree:
        if isinstance(item, (list, tuple)):
            _leaves(item, out)
        elif item is not None:
            out.append(item)
    return out


def _static_fakes(tensors: list) -> list | None:
    """Fake copies of ``tensors`` (static shapes, in a fake mode with a shape environment,
    which Inductor's on-disk graph cache needs), or None where this torch has no such API."""
    try:
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.fx.experimental.symbolic_shapes import ShapeEnv

        mode = FakeTensorMode(shape_env=ShapeEnv(), static_shapes=True)
        return [mode.from_tensor(t, static_shapes=True) for t in tensors]
    except (ImportError, TypeError):
        return None


def _refill(tree: Any, values: Any) -> list:
    """``tree``'s nesting (as lists) with each tensor replaced by the next of ``values``."""
    return [
        _refill(item, values)
        if isinstance(item, (list, tuple))
        else (None if item is None else next(values))
        for item in tree
    ]


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def env_flag(name: str) -> bool:
    """An on/off environment variable (unset: off); any other value is an error."""
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(
        f"torch backend: environment variable {name} is {os.environ[name]!r}; "
        "expected 1 or 0 (also true/false, yes/no, on/off)"
    )


def configure_cuda() -> None:
    """torch's process-wide CUDA numerics, set when a CUDA device is selected.

    TF32 matrix products and convolutions (cuBLAS, cuDNN, cuDNN's LSTM) round float32
    inputs to 10 mantissa bits: results then differ from the CPU backends by about 1e-3,
    beyond the float32 agreement polykeras promises (rtol 1e-4).  They are off unless
    ``POLYKERAS_ALLOW_TF32=1``.  ``POLYKERAS_DETERMINISTIC=1`` makes cuDNN choose only
    deterministic algorithms (and stop benchmarking them), so that a seeded run repeats
    exactly; it is off by default, as in torch, since it can be slower."""
    allow = env_flag(ENV_ALLOW_TF32)
    deterministic = env_flag(ENV_DETERMINISTIC)
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _window_counts(size: int, k: int, stride: int, before: int, out: int) -> list[int]:
    """How many real (unpadded) elements each pooling window covers along one axis."""
    return [min(i * stride - before + k, size) - max(i * stride - before, 0) for i in range(out)]


def _positive_key(shape, key):
    """A basic-index key without negative slice steps, and the result dims to flip.

    torch rejects negative steps; ``x[key] == x[positive].flip(flips)``."""
    key = key if type(key) is tuple else (key,)
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    out, flips, dim, rdim = [], [], 0, 0
    for k in key:
        if k is Ellipsis:
            extra = len(shape) - consumed
            out += [slice(None)] * extra
            dim += extra
            rdim += extra
        elif k is None:
            out.append(None)
            rdim += 1
        elif isinstance(k, slice):
            r = range(*k.indices(shape[dim]))
            if r.step > 0:
                out.append(k)
            elif len(r) == 0:
                out.append(slice(0, 0))
            else:
                out.append(slice(r[-1], r[0] + 1, -r.step))
                flips.append(rdim)
            dim += 1
            rdim += 1
        else:  # an integer
            out.append(k)
            dim += 1
    return tuple(out), flips


def _detach_tree(obj):
    """``obj`` with every tensor in it (through lists, tuples and dicts) detached."""
    if isinstance(obj, _Tensor):
        return obj.detach()
    if isinstance(obj, dict):
        return {k: _detach_tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_detach_tree(v) for v in obj]
    if isinstance(obj, tuple):
        items = [_detach_tree(v) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    return obj


def _resolve_device(device) -> torch.device:
    """The torch.device for a selection suffix ("cpu", "cuda", "cuda:1") or None (auto)."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(
            f"torch backend: device must be a string such as 'cpu' or 'cuda:0', got {device!r}"
        )
    try:
        dev = torch.device(device.strip().lower())
    except (RuntimeError, ValueError):
        raise ValueError(
            f"torch backend: cannot understand device {device!r}; use 'cpu', "
            "'cuda' or 'cuda:N' (selected as 'torch:cpu', 'torch:cuda:0')"
        ) from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise ValueError(
            f"torch backend: device {device!r} is not supported; use 'cpu', 'cuda' or 'cuda:N'"
        )
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"torch backend: device {device!r} was asked for, but "
            "torch.cuda.is_available() is False"
        )
    index = torch.cuda.current_device() if dev.index is None else dev.index
    count = torch.cuda.device_count()
    if index >= count:
        raise RuntimeError(
            f"torch backend: device {device!r} was asked for, but only "
            f"{count} CUDA device(s) are visible"
        )
    return torch.device("cuda", index)


class TorchBackend:
    """The backend contract on torch tensors, on one device ("cpu" or "cuda:N")."""

    name = "torch"

    def __init__(self, device: str | None = None) -> None:
        if _version_tuple(torch.__version__) < MIN_TORCH:
            raise RuntimeError(
                f"torch backend: torch {torch.__version__} is too old; "
                f"polykeras needs torch >= {'.'.join(map(str, MIN_TORCH))}"
            )
        self._device = _resolve_device(device)
        self.device = str(self._device)
        self._cuda = self._device.type == "cuda"
        if self._cuda:
            configure_cuda()
        self._gen = torch.Generator(device=self._device)
        self._gen.manual_seed(0)
        self._counts_cache: dict[tuple, _Tensor] = {}

    def __repr__(self) -> str:
        return f"TorchBackend(device={self.device!r})"

    # -- helpers ------------------------------------------------------------------------------
    def _dtype(self, dtype) -> torch.dtype:
        """torch's dtype for a NumPy name (or a NumPy/torch dtype, or a python type)."""
        try:
            return _TORCH_DTYPES[dtype]
        except (KeyError, TypeError):
            pass
        try:
            return _TORCH_DTYPES[np.dtype(dtype).name]
        except (KeyError, TypeError) as exc:
            raise TypeError(f"torch backend: unsupported dtype {dtype!r}") from exc

    def _from_numpy(self, arr: np.ndarray) -> _Tensor:
        """Shares memory with ``arr`` where torch can (native order, positive strides)."""
        if not arr.flags.writeable:
            arr = arr.copy()
        try:
            return torch.from_numpy(arr)
        except (TypeError, ValueError):  # negative strides, foreign byte order...
            if arr.dtype.kind not in "biufc":
                raise TypeError(
                    f"torch backend: cannot make a tensor of dtype {arr.dtype}"
                ) from None
            # a fresh C-ordered copy (ascontiguousarray keeps a negative stride on an axis
            # of size 1, which NumPy counts as contiguous and torch refuses)
            return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), order="C", copy=True))

    def _operands(self, a, b):
        """Binary-op operands as torch accepts them (NumPy arrays become tensors)."""
        if isinstance(a, np.ndarray):
            a = self.asarray(a)
        elif isinstance(a, np.generic):
            a = a.item()
        if isinstance(b, np.ndarray):
            b = self.asarray(b)
        elif isinstance(b, np.generic):
            b = b.item()
        return a, b

    @staticmethod
    def _nchw(x: _Tensor, data_format: str) -> _Tensor:
        if data_format == "channels_last":
            return x.permute(0, 3, 1, 2)
        if data_format == "channels_first":
            return x
        raise ValueError(
            f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
        )

    @staticmethod
    def _from_nchw(x: _Tensor, data_format: str) -> _Tensor:
        return x.permute(0, 2, 3, 1) if data_format == "channels_last" else x

    @staticmethod
    def _promote(a: _Tensor, b: _Tensor):
        if a.dtype != b.dtype:
            dt = torch.promote_types(a.dtype, b.dtype)
            a, b = a.to(dt), b.to(dt)
        return a, b

    # -- creation and conversion --------------------------------------------------------------
    def asarray(self, x, dtype=None):
        """A tensor on this backend's device; NumPy arrays are shared, not copied, on CPU."""
        dt = None if dtype is None else self._dtype(dtype)
        if not isinstance(x, _Tensor):
            if isinstance(x, (list, tuple)) and x and all(isinstance(e, _Tensor) for e in x):
                x = torch.stack([self.asarray(e) for e in x])
            else:
                x = self._from_numpy(np.asarray(x))
        if x.device != self._device or (dt is not None and x.dtype != dt):
            if (
                self._cuda
                and x.device.type == "cpu"
                and x.numel() * x.element_size() >= PIN_MIN_BYTES
            ):
                # one host pass (with the cast) into pinned memory, then a transfer that
                # does not block the host; the caching pinned allocator keeps the buffer
                # until the copy is done, so the caller may change its array at once
                pinned = torch.empty(x.shape, dtype=dt or x.dtype, pin_memory=True)
                x = pinned.copy_(x).to(self._device, non_blocking=True)
            else:
                x = x.to(device=self._device, dtype=dt)
        return x

    def to_numpy(self, x):
        if not isinstance(x, _Tensor):
            return np.asarray(x)
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.numpy(force=True)

    def zeros(self, shape, dtype):
        return torch.zeros(shape, dtype=self._dtype(dtype), device=self._device)

    def ones(self, shape, dtype):
        return torch.ones(shape, dtype=self._dtype(dtype), device=self._device)

    def cast(self, x, dtype):
        if not isinstance(x, _Tensor):
            return self.asarray(x, dtype)
        return x.to(self._dtype(dtype))

    def dtype_name(self, x):
        if isinstance(x, _Tensor):
            return _DTYPE_NAMES[x.dtype]
        return np.asarray(x).dtype.name

    def shape(self, x):
        return tuple(x.shape) if isinstance(x, _Tensor) else np.shape(x)

    def is_native(self, x):
        return isinstance(x, _Tensor)

    def stop_gradient(self, x):
        return x.detach() if isinstance(x, _Tensor) else x

    # -- random ---------------------------------------------------------------------------------
    def seed(self, seed):
        self._gen.manual_seed(int(seed))

    def random_uniform(self, shape, dtype):
        dt = self._dtype(dtype)
        if dt.is_floating_point:
            return torch.rand(shape, generator=self._gen, dtype=dt, device=self._device)
        return torch.rand(shape, generator=self._gen, dtype=torch.float64, device=self._device).to(
            dt
        )

    def random_normal(self, shape, dtype):
        dt = self._dtype(dtype)
        if dt.is_floating_point:
            return torch.randn(shape, generator=self._gen, dtype=dt, device=self._device)
        return torch.randn(shape, generator=self._gen, dtype=torch.float64, device=self._device).to(
            dt
        )

    # -- elementwise ------------------------------------------------------------------------------
    def neg(self, x):
        return torch.neg(x)

    def exp(self, x):
        return torch.exp(x)

    def log(self, x):
        return torch.log(x)

    def tanh(self, x):
        return torch.tanh(x)

    def sigmoid(self, x):
        return torch.sigmoid(x)

    def relu(self, x):
        return torch.relu(x)

    def sqrt(self, x):
        return torch.sqrt(x)

    def abs(self, x):
        return torch.abs(x)

    def sign(self, x):
        """NaN stays NaN, as in NumPy (torch.sign gives 0)."""
        s = torch.sign(x)
        return torch.where(torch.isnan(x), x, s) if x.is_floating_point() else s

    def square(self, x):
        return torch.square(x)

    def softplus(self, x):
        # torch switches to the identity above `threshold`; 40 is exact for float64 too
        return F.softplus(x, 1.0, 40.0 if x.dtype == torch.float64 else 20.0)

    def add(self, a, b):
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        return a + b

    def subtract(self, a, b):
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        return a - b

    def multiply(self, a, b):
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        return a * b

    def divide(self, a, b):
        """Integers divide to float64, as in NumPy (torch gives float32)."""
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        out = a / b
        if out.dtype == torch.float32 and not (
            (isinstance(a, _Tensor) and a.is_floating_point())
            or (isinstance(b, _Tensor) and b.is_floating_point())
        ):
            a = a.double() if isinstance(a, _Tensor) else a
            b = b.double() if isinstance(b, _Tensor) else b
            return a / b
        return out

    def maximum(self, a, b):
        """Ties send the whole gradient to ``a`` under autograd, as the core's VJP does."""
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        if not isinstance(a, _Tensor):
            a, b = b, a  # max is symmetric in value; a scalar `a` has no gradient anyway
        if not isinstance(b, _Tensor):
            return torch.clamp(a, min=b)
        if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
            return torch.where((a >= b) | torch.isnan(a), a, b)
        return torch.maximum(a, b)

    def minimum(self, a, b):
        """Ties send the whole gradient to ``a`` under autograd, as the core's VJP does."""
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        if not isinstance(a, _Tensor):
            a, b = b, a
        if not isinstance(b, _Tensor):
            return torch.clamp(a, max=b)
        if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
            return torch.where((a <= b) | torch.isnan(a), a, b)
        return torch.minimum(a, b)

    def power(self, a, b):
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        return a**b

    def greater(self, a, b):
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        return a > b

    def greater_equal(self, a, b):
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        return a >= b

    def less(self, a, b):
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        return a < b

    def equal(self, a, b):
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        return a == b

    def where(self, cond, a, b):
        if not isinstance(cond, _Tensor):
            cond = self.asarray(cond)
        if cond.dtype != torch.bool:
            cond = cond != 0
        if isinstance(a, _NUMPY_TYPES) or isinstance(b, _NUMPY_TYPES):
            a, b = self._operands(a, b)
        return torch.where(cond, a, b)

    def clip(self, x, lo, hi):
        return torch.clamp(x, lo, hi)

    # -- reductions -------------------------------------------------------------------------------
    def sum(self, x, axis=None, keepdims=False):
        if axis == ():  # NumPy reduces nothing; torch would reduce every axis
            exact = x.is_floating_point() or x.is_complex()
            return x.clone() if exact else x.to(torch.int64)
        return torch.sum(x, dim=axis, keepdim=keepdims)

    def max(self, x, axis=None, keepdims=False):
        if axis == ():  # torch would reduce every axis
            return x.clone()
        return torch.amax(x, dim=() if axis is None else axis, keepdim=keepdims)

    def argmax(self, x, axis=-1):
        return torch.argmax(x, dim=axis)

    # -- linear algebra and shapes -------------------------------------------------------------
    def matmul(self, a, b):
        if a.dtype != b.dtype:
            a, b = self._promote(a, b)
        return torch.matmul(a, b)

    def reshape(self, x, shape):
        return x.reshape(shape)

    def transpose(self, x, axes):
        return x.permute(*axes) if axes is not None else x.permute(*range(x.dim() - 1, -1, -1))

    def concatenate(self, xs, axis):
        return torch.cat(list(xs), dim=axis)

    def getitem(self, x, key):
        try:
            return x[key]
        except ValueError:  # a negative slice step, which torch does not take
            positive, flips = _positive_key(x.shape, key)
            return x[positive].flip(flips)

    def scatter_slice(self, shape, key, values):
        if not isinstance(values, _Tensor):
            values = self.asarray(values)
        out = torch.zeros(shape, dtype=values.dtype, device=values.device)
        try:
            out[key] = values
        except ValueError:  # a negative slice step
            positive, flips = _positive_key(out.shape, key)
            view = out[positive]
            view.copy_(values.broadcast_to(view.shape).flip(flips))
        return out

    def broadcast_to(self, x, shape):
        return torch.broadcast_to(x, shape)

    # -- gather
    def take(self, x, indices):
        """Rows of ``x`` at ``indices``; indices outside [0, n) raise (negatives never wrap)."""
        if not isinstance(indices, _Tensor):
            indices = self.asarray(indices)
        dt = indices.dtype
        if dt.is_floating_point or dt.is_complex or dt == torch.bool:
            raise TypeError(f"take: indices must be integers, got {_DTYPE_NAMES[dt]}")
        n = x.shape[0]
        if indices.numel():
            lo, hi = torch.stack(torch.aminmax(indices)).tolist()  # one host sync
            if lo < 0 or hi >= n:
                raise IndexError(
                    f"take: indices must lie in [0, {n}); got values from {lo} to {hi}"
                )
        if dt not in _INDEX_DTYPES:
            indices = indices.long()
        out = torch.index_select(x, 0, indices.reshape(-1))
        return out.reshape(tuple(indices.shape) + tuple(x.shape[1:]))

    def scatter_add(self, shape, indices, updates):
        if not isinstance(indices, _Tensor):
            indices = self.asarray(indices)
        if indices.dtype not in _INDEX_DTYPES:
            indices = indices.long()
        flat = indices.reshape(-1)
        out = torch.zeros(shape, dtype=updates.dtype, device=updates.device)
        return out.index_add_(0, flat, updates.reshape((flat.shape[0],) + tuple(shape[1:])))

    # -- optional kernels (issue 14): keras.ops math beyond the required primitives ----------
    def erf(self, x):
        return torch.erf(x)

    def log1p(self, x):
        return torch.log1p(x)

    def expm1(self, x):
        return torch.expm1(x)

    def sin(self, x):
        return torch.sin(x)

    def cos(self, x):
        return torch.cos(x)

    def cumsum(self, x, axis):
        return torch.cumsum(x, dim=axis)

    def cumprod(self, x, axis):
        return torch.cumprod(x, dim=axis)

    def argsort(self, x, axis):
        return torch.argsort(x, dim=axis, stable=True)

    # -- nn
    def softmax(self, x, axis=-1):
        if isinstance(axis, int):
            return torch.softmax(x, dim=axis)
        e = torch.exp(x - torch.amax(x, dim=axis, keepdim=True))
        return e / torch.sum(e, dim=axis, keepdim=True)

    def _conv_geometry(self, h, w, kh, kw, strides, padding, dilation):
        oh, pt, pb = _out_and_pads(h, kh, strides[0], dilation[0], padding)
        ow, pl, pr = _out_and_pads(w, kw, strides[1], dilation[1], padding)
        return oh, ow, (pt, pb, pl, pr)

    def conv2d(self, x, kernel, strides, padding, data_format, dilation_rate=(1, 1), groups=1):
        """Cross-correlation as Keras' Conv2D computes it (kernel (kh, kw, in/groups, out))."""
        return self._convolve(x, kernel, None, strides, padding, data_format, dilation_rate, groups)

    def conv2d_bias(
        self, x, kernel, bias, strides, padding, data_format, dilation_rate=(1, 1), groups=1
    ):
        """conv2d with the bias added by torch's convolution (a fused kernel: see
        polykeras.contract.FusedKernels)."""
        return self._convolve(x, kernel, bias, strides, padding, data_format, dilation_rate, groups)

    def _convolve(self, x, kernel, bias, strides, padding, data_format, dilation_rate, groups=1):
        x = self._nchw(x, data_format)
        n, _, h, w = x.shape
        kh, kw, _, o = kernel.shape
        oh, ow, (pt, pb, pl, pr) = self._conv_geometry(
            h, w, kh, kw, strides, padding, dilation_rate
        )
        if x.dtype != kernel.dtype:
            x, kernel = self._promote(x, kernel)
        if bias is not None and bias.dtype != kernel.dtype:
            bias = bias.to(kernel.dtype)
        if oh == 0 or ow == 0:
            out = x.new_zeros((n, o, oh, ow))
        elif pt == pb and pl == pr:
            out = F.conv2d(
                x, kernel.permute(3, 2, 0, 1), bias, strides, (pt, pl), dilation_rate, groups
            )
        else:
            out = F.conv2d(
                F.pad(x, (pl, pr, pt, pb)),
                kernel.permute(3, 2, 0, 1),
                bias,
                strides,
                0,
                dilation_rate,
                groups,
            )
        return self._from_nchw(out, data_format)

    def conv2d_input_grad(
        self,
        grad,
        kernel,
        input_shape,
        strides,
        padding,
        data_format,
        dilation_rate=(1, 1),
        groups=1,
    ):
        """The transposed convolution (also Conv2DTranspose's forward pass): written with
        ``conv_transpose2d`` so that torch's autograd differentiates it too."""
        g = self._nchw(grad, data_format)
        if data_format == "channels_last":
            n, h, w, c = input_shape
        else:
            n, c, h, w = input_shape
        kh, kw = kernel.shape[:2]
        oh, ow, (pt, pb, pl, pr) = self._conv_geometry(
            h, w, kh, kw, strides, padding, dilation_rate
        )
        if g.dtype != kernel.dtype:
            g, kernel = self._promote(g, kernel)
        if oh == 0 or ow == 0:
            return self.zeros(tuple(input_shape), _DTYPE_NAMES[g.dtype])
        # torch's output is (o - 1) * stride + effective kernel - 2 * padding + extra
        # (extra < stride): make it the padded input, then cut the padding off
        symmetric = pt == pb and pl == pr
        ph, pw = (pt, pl) if symmetric else (0, 0)
        full = [
            (oh - 1) * strides[0] + (kh - 1) * dilation_rate[0] + 1 - 2 * ph,
            (ow - 1) * strides[1] + (kw - 1) * dilation_rate[1] + 1 - 2 * pw,
        ]
        want = [h + pt + pb - 2 * ph, w + pl + pr - 2 * pw]
        dx = F.conv_transpose2d(
            g,
            kernel.permute(3, 2, 0, 1),
            None,
            tuple(strides),
            (ph, pw),
            (want[0] - full[0], want[1] - full[1]),
            groups,
            tuple(dilation_rate),
        )
        if not symmetric:
            dx = dx[:, :, pt : pt + h, pl : pl + w]
        return self._from_nchw(dx, data_format)

    def conv2d_kernel_grad(
        self,
        x,
        grad,
        kernel_shape,
        strides,
        padding,
        data_format,
        dilation_rate=(1, 1),
        groups=1,
    ):
        x = self._nchw(x, data_format)
        g = self._nchw(grad, data_format)
        _, _, h, w = x.shape
        kh, kw, c, o = kernel_shape
        oh, ow, (pt, pb, pl, pr) = self._conv_geometry(
            h, w, kh, kw, strides, padding, dilation_rate
        )
        if x.dtype != g.dtype:
            x, g = self._promote(x, g)
        if oh == 0 or ow == 0:
            return self.zeros(tuple(kernel_shape), _DTYPE_NAMES[g.dtype])
        symmetric = pt == pb and pl == pr
        if not symmetric:
            x = F.pad(x, (pl, pr, pt, pb))
        fake_kernel = g.new_empty(1).expand((o, c, kh, kw))  # only its shape is read
        dk = _conv_backward(
            g,
            x,
            fake_kernel,
            None,
            list(strides),
            [pt, pl] if symmetric else [0, 0],
            list(dilation_rate),
            False,
            [0, 0],
            groups,
            (False, True, False),
        )[1]
        return dk.permute(2, 3, 1, 0).contiguous()

    def _avg_counts(self, h, w, pool_size, strides, pads, oh, ow, x) -> _Tensor:
        """Real elements per window, (oh, ow), cached per geometry (asymmetric padding)."""
        key = (h, w, tuple(pool_size), tuple(strides), pads, x.dtype, x.device)
        counts = self._counts_cache.get(key)
        if counts is None:
            ch = _window_counts(h, pool_size[0], strides[0], pads[0], oh)
            cw = _window_counts(w, pool_size[1], strides[1], pads[2], ow)
            counts = torch.tensor(np.outer(ch, cw), dtype=x.dtype, device=x.device)
            if len(self._counts_cache) > 64:
                self._counts_cache.clear()
            self._counts_cache[key] = counts
        return counts

    def pool2d(self, x, pool_size, strides, padding, data_format, mode):
        """Max pooling pads with -inf; average pooling does not count padded positions."""
        x = self._nchw(x, data_format)
        n, c, h, w = x.shape
        oh, ow, pads = self._conv_geometry(
            h, w, pool_size[0], pool_size[1], strides, padding, (1, 1)
        )
        pt, pb, pl, pr = pads
        if mode not in ("max", "avg"):
            raise ValueError(f"pool2d mode must be 'max' or 'avg', got {mode!r}")
        if oh == 0 or ow == 0:
            out = x.new_zeros((n, c, oh, ow))
        elif mode == "max":
            if pt == pb and pl == pr:
                out = F.max_pool2d(x, pool_size, strides, (pt, pl))
            else:
                out = F.max_pool2d(
                    F.pad(x, (pl, pr, pt, pb), value=-float("inf")), pool_size, strides, 0
                )
        elif pt == pb and pl == pr:
            out = F.avg_pool2d(x, pool_size, strides, (pt, pl), count_include_pad=False)
        else:
            total = F.avg_pool2d(
                F.pad(x, (pl, pr, pt, pb)), pool_size, strides, 0, divisor_override=1
            )
            out = total / self._avg_counts(h, w, pool_size, strides, pads, oh, ow, total)
        return self._from_nchw(out, data_format)

    def pool2d_grad(self, x, grad, pool_size, strides, padding, data_format, mode):
        """Through autograd over :meth:`pool2d` (max: the first maximum of each window)."""
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            out = self.pool2d(leaf, pool_size, strides, padding, data_format, mode)
            if not out.requires_grad:  # an empty output
                return torch.zeros_like(x)
            (dx,) = torch.autograd.grad(out, leaf, grad.to(out.dtype))
        return dx

    @torch.no_grad()
    def index_update(self, x, indices, values):
        return x.index_copy_(0, indices.to(torch.int64), values.to(x.dtype))

    def _class_indices(self, x, indices, who):
        """``indices`` as int64 for the last axis of ``x``, checked (one host sync)."""
        if not isinstance(indices, _Tensor):
            indices = self.asarray(indices)
        dt = indices.dtype
        if dt.is_floating_point or dt.is_complex or dt == torch.bool:
            raise TypeError(f"{who}: indices must be integers, got {_DTYPE_NAMES[dt]}")
        if tuple(indices.shape) != tuple(x.shape[:-1]):
            raise ValueError(
                f"{who}: indices of shape {tuple(indices.shape)} for an array of shape "
                f"{tuple(x.shape)}; expected {tuple(x.shape[:-1])}"
            )
        n = x.shape[-1]
        # while a step is traced (compile_step) the values are fake: fit checked the labels
        if indices.numel() and not (_TRACING.get() or _torch_compiling()):
            lo, hi = torch.stack(torch.aminmax(indices)).tolist()
            if lo < 0 or hi >= n:
                raise IndexError(
                    f"{who}: indices must lie in [0, {n}); got values from {lo} to {hi}"
                )
        return indices.long()

    def take_along_last(self, x, indices):
        indices = self._class_indices(x, indices, "take_along_last")
        return torch.gather(x, -1, indices.unsqueeze(-1)).squeeze(-1)

    # -- fused kernels (optional part of the contract) -----------------------------------------
    def lstm_sequence(
        self, x, h0, c0, kernel, recurrent_kernel, bias, go_backwards=False, return_sequences=False
    ):
        """A Keras LSTM layer as torch's own LSTM kernel (same gate order i, f, c/g, o).

        Keras' kernel (in, 4u) is torch's weight_ih transposed; its single bias becomes
        bias_ih with a zero bias_hh.  Autograd differentiates through it."""
        if go_backwards:
            x = torch.flip(x, (1,))
        w_ih, w_hh = kernel.t(), recurrent_kernel.t()
        params = [w_ih, w_hh]
        if bias is not None:
            params += [bias, torch.zeros_like(bias)]
        seq, h, c = torch.lstm(
            x,
            (h0.unsqueeze(0), c0.unsqueeze(0)),
            params,
            bias is not None,
            1,
            0.0,
            torch.is_grad_enabled(),
            False,
            True,
        )
        h, c = h.squeeze(0), c.squeeze(0)
        return (seq if return_sequences else h), h, c

    @torch.no_grad()
    def rmsprop_update(self, ws, gs, vs, lr, rho, epsilon):
        """RMSprop without momentum for all variables at once, in place, with torch's
        multi-tensor ops: v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + epsilon)."""
        ws, gs, vs = list(ws), list(gs), list(vs)
        torch._foreach_mul_(vs, rho)
        torch._foreach_addcmul_(vs, gs, gs, value=1.0 - rho)
        denom = torch._foreach_add(vs, epsilon)
        torch._foreach_sqrt_(denom)
        torch._foreach_addcdiv_(ws, gs, denom, value=-lr)
        return ws, vs

    @torch.no_grad()
    def adam_update(self, ws, gs, ms, vs, vhats, alpha, beta_1, beta_2, epsilon):
        """Adam for all variables at once with torch's multi-tensor ops, Keras' epsilon
        placement: m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2); w -= alpha m /
        (sqrt(v) + epsilon).  The weights are updated in place; the slots are new tensors
        (the old ones may be shared with arrays from get_weights)."""
        ws, gs = list(ws), list(gs)
        ms = torch._foreach_lerp(list(ms), gs, 1.0 - beta_1)
        vs = torch._foreach_lerp(list(vs), torch._foreach_mul(gs, gs), 1.0 - beta_2)
        if vhats is not None:
            vhats = torch._foreach_maximum(list(vhats), vs)
        denom = torch._foreach_sqrt(vs if vhats is None else vhats)
        torch._foreach_add_(denom, epsilon)
        torch._foreach_addcdiv_(ws, ms, denom, value=-alpha)
        return ws, ms, vs, vhats

    def scaled_dot_product_attention(self, q, k, v, bias, scale):
        """softmax(scale q k^T + bias) v as torch's fused attention (flash or memory-efficient
        kernel where torch picks one), differentiated by autograd."""
        if bias is not None and bias.dtype != q.dtype:
            bias = bias.to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)

    def layer_norm(self, x, gamma, beta, num_axes, epsilon):
        """LayerNormalization over the last ``num_axes`` axes in one kernel (gamma and beta
        shaped like those axes, or None)."""
        return F.layer_norm(x, tuple(x.shape[-num_axes:]), gamma, beta, epsilon)

    # -- crossentropy from logits and compiled steps (optional; issue 21) ---------------------
    def softmax_crossentropy(self, target, logits):
        """-sum(target * log_softmax(logits), -1): torch's cross_entropy for 2-D logits."""
        target, logits = self._operands(target, logits)
        if logits.dim() == 2 and target.shape == logits.shape and target.dtype == logits.dtype:
            return F.cross_entropy(logits, target, reduction="none")
        return -(target * torch.log_softmax(logits, dim=-1)).sum(-1)

    def sparse_softmax_crossentropy(self, labels, logits):
        """-log_softmax(logits)[..., labels]: torch's cross_entropy with class indices."""
        if isinstance(logits, np.ndarray):
            logits = self.asarray(logits)
        labels = self._class_indices(logits, labels, "sparse_softmax_crossentropy")
        if logits.dim() == 2:
            return F.cross_entropy(logits, labels, reduction="none")
        n = logits.shape[-1]
        flat = F.cross_entropy(logits.reshape(-1, n), labels.reshape(-1), reduction="none")
        return flat.reshape(labels.shape)

    def sigmoid_crossentropy(self, target, logits):
        """softplus(logits) - target * logits, elementwise: binary_cross_entropy_with_logits."""
        target, logits = self._operands(target, logits)
        if target.shape != logits.shape:
            target, logits = torch.broadcast_tensors(target, logits)
        if target.dtype != logits.dtype:
            target = target.to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none")

    def compile_step(self, fn, args, write_back=False):
        """``fn(*args)`` traced once into one graph of aten ops (forward and backward,
        ``make_fx`` on fake tensors: Python runs once, host reads fail the trace) and
        compiled by Inductor straight from that graph (no Dynamo, so no guards to check
        per call: the caller keys its compiled steps by shapes and dtypes).  ``args`` are
        nested lists of tensors and None.  With ``write_back``, ``fn`` returns
        ``(new_state, outputs)``: each array of ``new_state`` that is not None is written
        into the same position of ``args[0]`` in place, inside the graph, and the compiled
        function returns ``outputs``.  Errors of the compiler itself (no C compiler, an
        unsupported op) show here or at the first call."""
        from torch.fx.experimental.proxy_tensor import make_fx

        n_state = len(args[0]) if write_back else 0
        template: list[Any] = []  # the outputs' nesting, as the trace returned them

        def flat(*arrays):
            out = fn(*_refill(list(args), iter(arrays)))
            if write_back:
                new_state, out = out
                for dst, src in zip(arrays[:n_state], new_state):
                    if src is not None:
                        dst.copy_(src)
            template[:] = [out]
            return _leaves(out, [])

        leaves = _leaves(args, [])
        token = _TRACING.set(True)
        try:
            fakes = _static_fakes(leaves)
            graph = make_fx(flat, tracing_mode="fake")(*(leaves if fakes is None else fakes))
        finally:
            _TRACING.reset(token)
        inductor = getattr(getattr(torch, "_inductor", None), "compile", None)
        if inductor is None:
            compiled = torch.compile(graph, dynamic=False)
        else:  # fake inputs with a shape environment let Inductor cache the graph on disk
            compiled = inductor(graph, leaves if fakes is None else fakes)

        def run(*call_args):
            return _refill(template[0], iter(compiled(*_leaves(call_args, []))))

        return run

    # -- own differentiation (optional part of the contract) ----------------------------------
    def value_and_grad(self, fn, params, grad_ready=None):
        """``fn(params) -> (loss, aux)`` differentiated by torch's autograd.

        Returns ``(loss, aux, grads)`` with the loss and aux detached; a parameter the loss
        does not depend on (or a non-float one) gets zeros.  ``grad_ready(i, grad)``, when
        given, is called during the backward pass as soon as parameter ``i``'s gradient is
        complete (data-parallel training starts summing it over processes then)."""
        leaves = []
        for p in params:
            if not isinstance(p, _Tensor):
                p = self.asarray(p)
            if p.is_floating_point() or p.is_complex():
                p = p.detach().requires_grad_(True)
            leaves.append(p)
        with torch.enable_grad():
            loss, aux = fn(leaves)
            if not isinstance(loss, _Tensor):
                loss = self.asarray(loss)
            wanted = [p for p in leaves if p.requires_grad]
            if wanted and loss.requires_grad:
                if grad_ready is not None:
                    for i, p in enumerate(leaves):
                        if p.requires_grad:
                            p.register_hook(lambda g, i=i: grad_ready(i, g))
                seed = None if loss.dim() == 0 else torch.ones_like(loss)
                found = torch.autograd.grad(loss, wanted, seed, allow_unused=True)
            else:
                found = [None] * len(wanted)
        it = iter(found)
        grads = []
        for p in leaves:
            g = next(it) if p.requires_grad else None
            grads.append(torch.zeros_like(p, requires_grad=False) if g is None else g)
        return loss.detach(), _detach_tree(aux), grads
