"""The backend contract written once against an array module ``xp`` (NumPy or CuPy).

Every kernel here uses only functions NumPy and CuPy share, so the CuPy backend is this
class with ``xp = cupy`` and a handful of overrides.  Convolution and pooling are
vectorised: one pass per kernel position (kh * kw slices), never a loop over pixels.
"""

from __future__ import annotations

import threading
from typing import Any

from polykeras.contract import out_and_pads as _out_and_pads

#: Work on at most this many bytes of unfolded image patches at once (convolution).
_PATCH_BUDGET = 256 * 1024 * 1024
#: scatter_add: indices repeated more often than this are summed by add.reduceat
_MAX_REPEAT_LEVELS = 8


class XpBackend:
    """The whole backend contract over ``xp``; subclasses set ``xp``, ``name``, ``device``."""

    xp: Any = None
    name = "xp"
    device = "cpu"

    def __init__(self) -> None:
        self._rng = self.xp.random.default_rng(0)
        self._local = threading.local()

    # -- creation and conversion --------------------------------------------------------------
    def asarray(self, x, dtype=None):
        return self.xp.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        import numpy

        return numpy.asarray(x)

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=dtype)

    def ones(self, shape, dtype):
        return self.xp.ones(shape, dtype=dtype)

    def cast(self, x, dtype):
        x = self.xp.asarray(x)
        return x if x.dtype == dtype else x.astype(dtype)

    def dtype_name(self, x):
        return self.xp.asarray(x).dtype.name if not hasattr(x, "dtype") else x.dtype.name

    def shape(self, x):
        return tuple(x.shape)

    def is_native(self, x):
        return isinstance(x, self.xp.ndarray)

    def stop_gradient(self, x):
        return x

    # -- random ---------------------------------------------------------------------------------
    def seed(self, seed):
        self._rng = self.xp.random.default_rng(int(seed))

    def random_uniform(self, shape, dtype):
        return (
            self._rng.random(shape, dtype=dtype)
            if dtype in ("float32", "float64")
            else self._rng.random(shape).astype(dtype)
        )

    def random_normal(self, shape, dtype):
        return (
            self._rng.standard_normal(shape, dtype=dtype)
            if dtype in ("float32", "float64")
            else self._rng.standard_normal(shape).astype(dtype)
        )

    # -- elementwise ------------------------------------------------------------------------------
    def neg(self, x):
        return -x

    def exp(self, x):
        return self.xp.exp(x)

    def log(self, x):
        return self.xp.log(x)

    def tanh(self, x):
        return self.xp.tanh(x)

    def sigmoid(self, x):
        xp = self.xp
        z = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)

    def relu(self, x):
        return self.xp.maximum(x, 0)

    def sqrt(self, x):
        return self.xp.sqrt(x)

    def abs(self, x):
        return self.xp.abs(x)

    def sign(self, x):
        return self.xp.sign(x)

    def square(self, x):
        return self.xp.square(x)

    def softplus(self, x):
        return self.xp.logaddexp(0, x).astype(x.dtype, copy=False)

    def add(self, a, b):
        return a + b

    def subtract(self, a, b):
        return a - b

    def multiply(self, a, b):
        return a * b

    def divide(self, a, b):
        return a / b

    def maximum(self, a, b):
        return self.xp.maximum(a, b)

    def minimum(self, a, b):
        return self.xp.minimum(a, b)

    def power(self, a, b):
        return self.xp.power(a, b)

    def greater(self, a, b):
        return self.xp.greater(a, b)

    def greater_equal(self, a, b):
        return self.xp.greater_equal(a, b)

    def less(self, a, b):
        return self.xp.less(a, b)

    def equal(self, a, b):
        return self.xp.equal(a, b)

    def where(self, cond, a, b):
        return self.xp.where(cond, a, b)

    def clip(self, x, lo, hi):
        return self.xp.clip(x, lo, hi)

    # -- reductions -------------------------------------------------------------------------------
    def sum(self, x, axis=None, keepdims=False):
        return self.xp.asarray(self.xp.sum(x, axis=axis, keepdims=keepdims))

    def max(self, x, axis=None, keepdims=False):
        return self.xp.asarray(self.xp.max(x, axis=axis, keepdims=keepdims))

    def argmax(self, x, axis=-1):
        return self.xp.argmax(x, axis=axis)

    # -- linear algebra and shapes -------------------------------------------------------------
    def matmul(self, a, b):
        return self.xp.matmul(a, b)

    def reshape(self, x, shape):
        return self.xp.reshape(x, shape)

    def transpose(self, x, axes):
        return self.xp.transpose(x, axes)

    def concatenate(self, xs, axis):
        return self.xp.concatenate(xs, axis=axis)

    def getitem(self, x, key):
        return x[key]

    def scatter_slice(self, shape, key, values):
        out = self.xp.zeros(shape, dtype=values.dtype)
        out[key] = values
        return out

    def broadcast_to(self, x, shape):
        return self.xp.broadcast_to(x, shape)

    # -- gather
    def take(self, x, indices):
        xp = self.xp
        if indices.dtype.kind not in "iu":
            raise TypeError(f"take: indices must be integers, got {indices.dtype.name}")
        if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= x.shape[0]):
            raise IndexError(
                f"take: indices must lie in [0, {x.shape[0]}); got values from "
                f"{int(indices.min())} to {int(indices.max())}"
            )
        return xp.take(x, indices, axis=0)

    def scatter_add(self, shape, indices, updates):
        """Sums rows of ``updates`` into their indices (repeats add up).

        One stable sort groups equal indices.  The k-th repeat of every index is then
        added in one vectorised step (its targets are distinct), for k up to a few;
        indices repeated more often (padding, say) are summed with one ``add.reduceat``.
        ``ufunc.at`` would go row by row."""
        xp = self.xp
        out = xp.zeros(shape, dtype=updates.dtype)
        flat = indices.reshape(-1)
        n = flat.shape[0]
        if n == 0:
            return out
        rows = updates.reshape((n,) + tuple(shape[1:]))
        order = xp.argsort(flat, kind="stable")
        ordered = flat[order]
        rows = rows[order]
        first = xp.empty(n, dtype=bool)
        first[0] = True
        xp.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        starts = xp.flatnonzero(first)
        lengths = xp.diff(xp.append(starts, n))
        segment = xp.cumsum(first) - 1
        rank = xp.arange(n) - starts[segment]
        many = lengths > _MAX_REPEAT_LEVELS
        if bool(many.any()):
            in_many = many[segment]
            pos = xp.flatnonzero(in_many)
            sub_starts = xp.flatnonzero(first[pos])
            out[ordered[starts[many]]] = xp.add.reduceat(rows[pos], sub_starts, axis=0)
            rank = xp.where(in_many, -1, rank)
        few = starts[~many]
        out[ordered[few]] = rows[few]
        for k in range(1, int(rank.max()) + 1):
            at = xp.flatnonzero(rank == k)
            out[ordered[at]] += rows[at]
        return out

    def index_update(self, x, indices, values):
        x[indices] = values
        return x

    def take_along_last(self, x, indices):
        xp = self.xp
        if indices.dtype.kind not in "iu":
            raise TypeError(f"take_along_last: indices must be integers, got {indices.dtype.name}")
        if tuple(indices.shape) != tuple(x.shape[:-1]):
            raise ValueError(
                f"take_along_last: indices of shape {tuple(indices.shape)} for an array of "
                f"shape {tuple(x.shape)}; expected {tuple(x.shape[:-1])}"
            )
        n = x.shape[-1]
        if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= n):
            raise IndexError(
                f"take_along_last: indices must lie in [0, {n}); got values from "
                f"{int(indices.min())} to {int(indices.max())}"
            )
        return xp.take_along_axis(x, indices[..., None], axis=-1)[..., 0]

    # -- optional kernels (issue 14): keras.ops math beyond the required primitives ----------
    # (no ``erf``: NumPy has none; the core composes it, see polykeras.ops.erf)
    def log1p(self, x):
        return self.xp.log1p(x)

    def expm1(self, x):
        return self.xp.expm1(x)

    def sin(self, x):
        return self.xp.sin(x)

    def cos(self, x):
        return self.xp.cos(x)

    def cumsum(self, x, axis):
        return self.xp.cumsum(x, axis=axis)

    def cumprod(self, x, axis):
        return self.xp.cumprod(x, axis=axis)

    def argsort(self, x, axis):
        return self.xp.argsort(x, axis=axis, kind="stable")

    # -- optional fused kernel (issue 21): RMSprop for all variables in one call ------------
    def rmsprop_update(self, ws, gs, vs, lr, rho, epsilon):
        """RMSprop without momentum, every variable in one call (the same operations in the
        same order as the optimizer's own update, on fewer temporaries)."""
        new_ws, new_vs = [], []
        for w, g, v in zip(ws, gs, vs):
            v = v * rho
            v += (g * g) * (1.0 - rho)
            denom = v + epsilon
            self.xp.sqrt(denom, out=denom)
            step = g * lr
            step /= denom
            new_ws.append(w - step)
            new_vs.append(v)
        return new_ws, new_vs

    def adam_update(self, ws, gs, ms, vs, vhats, alpha, beta_1, beta_2, epsilon):
        """Adam, every variable in one call: the optimizer's own operations in its order,
        on fewer temporaries (new arrays; nothing given is changed)."""
        new_ws, new_ms, new_vs, new_vhats = [], [], [], []
        for k, (w, g, m, v) in enumerate(zip(ws, gs, ms, vs)):
            d = g - m
            d *= 1.0 - beta_1
            m = m + d
            d = g * g
            d -= v
            d *= 1.0 - beta_2
            v = v + d
            new_ms.append(m)
            new_vs.append(v)
            if vhats is not None:
                v = self.xp.maximum(vhats[k], v)
                new_vhats.append(v)
            denom = self.xp.sqrt(v)
            denom += epsilon
            step = m * alpha
            step /= denom
            new_ws.append(w - step)
        return new_ws, new_ms, new_vs, (new_vhats if vhats is not None else None)

    # -- nn
    def softmax(self, x, axis=-1):
        xp = self.xp
        e = x - xp.max(x, axis=axis, keepdims=True)
        if e.dtype.kind != "f" or not isinstance(e, xp.ndarray):  # ints; 0-d gives a scalar
            e = xp.exp(e)
            return e / xp.sum(e, axis=axis, keepdims=True)
        # in place on the one temporary: fewer large arrays (and page faults) per call
        xp.exp(e, out=e)
        e /= xp.sum(e, axis=axis, keepdims=True)
        return e

    def layer_norm(self, x, gamma, beta, num_axes, epsilon):
        """Layer normalization over the last ``num_axes`` axes, in place on one temporary."""
        xp = self.xp
        axes = tuple(range(x.ndim - num_axes, x.ndim))
        if x.dtype.kind != "f":
            x = x.astype("float32")
        out = x - xp.mean(x, axis=axes, keepdims=True)
        var = xp.mean(xp.square(out), axis=axes, keepdims=True)
        var += epsilon
        out *= 1.0 / xp.sqrt(var)  # (the reciprocal first: Keras' rounding)
        if gamma is not None:
            out *= gamma
        if beta is not None:
            out += beta
        return out

    def softmax_grad(self, y, g):
        """y * (g - sum(g * y, -1)) with one temporary (the row sums by einsum)."""
        xp = self.xp
        s = xp.einsum("...i,...i->...", g, y)[..., None]
        out = g - s
        out *= y
        return out

    def attention_weights(self, q, k, bias, scale):
        """softmax(scale * q k^T + bias) computed in place on the logits array."""
        xp = self.xp
        s = xp.matmul(q, xp.swapaxes(k, -1, -2))
        if s.dtype.kind != "f":
            s = s.astype("float32")
        if scale != 1.0:
            s *= scale
        if bias is not None:
            fits = bias.ndim <= s.ndim and all(
                b in (1, d) for b, d in zip(bias.shape[::-1], s.shape[::-1])
            )
            if fits:  # the logits keep their shape: added in place
                s += bias
            else:
                s = s + bias
        s -= xp.max(s, axis=-1, keepdims=True)
        xp.exp(s, out=s)
        s /= xp.sum(s, axis=-1, keepdims=True)
        return s

    def _nhwc(self, x, data_format):
        return x if data_format == "channels_last" else self.xp.transpose(x, (0, 2, 3, 1))

    def _from_nhwc(self, x, data_format):
        return x if data_format == "channels_last" else self.xp.transpose(x, (0, 3, 1, 2))

    def _geometry(self, h, w, kh, kw, strides, padding, dilation):
        oh, pt, pb = _out_and_pads(h, kh, strides[0], dilation[0], padding)
        ow, pl, pr = _out_and_pads(w, kw, strides[1], dilation[1], padding)
        return oh, ow, (pt, pb), (pl, pr)

    def _window(self, i, j, oh, ow, strides, dilation):
        """The slice of the padded input that kernel position (i, j) sees."""
        r0, c0 = i * dilation[0], j * dilation[1]
        return (
            slice(None),
            slice(r0, r0 + (oh - 1) * strides[0] + 1, strides[0]),
            slice(c0, c0 + (ow - 1) * strides[1] + 1, strides[1]),
            slice(None),
        )

    def _pad(self, x, ph, pw, value=0.0):
        if ph == (0, 0) and pw == (0, 0):
            return x
        return self.xp.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=value)

    def _chunks(self, n, per_sample_bytes):
        step = max(1, min(n, _PATCH_BUDGET // max(per_sample_bytes, 1)))
        return [(s, min(s + step, n)) for s in range(0, n, step)]

    def _scratch(self, shape, dtype):
        """A work array for patches, reused from call to call (per thread): each im2col
        is consumed by the matrix product that follows it, and a fresh array of this size
        (tens of MB) would cost a page fault per 4 KB on every training step."""
        dtype = self.xp.dtype(dtype)
        size = 1
        for d in shape:
            size *= int(d)
        nbytes = size * dtype.itemsize
        buf = getattr(self._local, "scratch", None)
        if buf is None or buf.nbytes < nbytes:
            buf = self.xp.empty(max(nbytes, 1), dtype=self.xp.uint8)
            self._local.scratch = buf
        return buf[:nbytes].view(dtype).reshape(shape)

    def _im2col(self, xpad, kh, kw, oh, ow, strides, dilation):
        """(n * oh * ow, kh * kw * c): every output position's receptive field, in the
        kernel's (kh, kw, c) order."""
        n, c = xpad.shape[0], xpad.shape[3]
        cols = self._scratch((n, oh, ow, kh * kw, c), xpad.dtype)
        for i in range(kh):
            for j in range(kw):
                cols[:, :, :, i * kw + j, :] = xpad[self._window(i, j, oh, ow, strides, dilation)]
        return cols.reshape(n * oh * ow, kh * kw * c)

    def conv2d(self, x, kernel, strides, padding, data_format, dilation_rate=(1, 1), groups=1):
        if groups != 1:
            return self._grouped_conv2d(
                x, kernel, strides, padding, data_format, dilation_rate, groups
            )
        xp = self.xp
        x = self._nhwc(x, data_format)
        n, h, w, c = x.shape
        kh, kw, _, o = kernel.shape
        oh, ow, ph, pw = self._geometry(h, w, kh, kw, strides, padding, dilation_rate)
        if (kh, kw) == (1, 1) and tuple(strides) == (1, 1):
            # one 2-D GEMM (a batched matmul over N*H slices would be many small ones)
            out = xp.matmul(x.reshape(-1, c), kernel.reshape(c, o)).reshape(n, h, w, o)
            return self._from_nhwc(out, data_format)
        xpad = self._pad(x, ph, pw)
        k2 = kernel.reshape(kh * kw * c, o)
        out = xp.empty((n, oh, ow, o), dtype=xp.result_type(x.dtype, kernel.dtype))
        per = oh * ow * kh * kw * c * x.itemsize
        for s, e in self._chunks(n, per):
            cols = self._im2col(xpad[s:e], kh, kw, oh, ow, strides, dilation_rate)
            out[s:e] = xp.matmul(cols, k2).reshape(e - s, oh, ow, o)
        return self._from_nhwc(out, data_format)

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
        if groups != 1:
            return self._grouped_input_grad(
                grad, kernel, input_shape, strides, padding, data_format, dilation_rate, groups
            )
        xp = self.xp
        g = self._nhwc(grad, data_format)
        if data_format == "channels_last":
            n, h, w, c = input_shape
        else:
            n, c, h, w = input_shape
        kh, kw, _, o = kernel.shape
        oh, ow, ph, pw = self._geometry(h, w, kh, kw, strides, padding, dilation_rate)
        g2 = g.reshape(-1, o)
        if (kh, kw) == (1, 1) and tuple(strides) == (1, 1):
            dx = xp.matmul(g2, kernel.reshape(c, o).T).reshape(n, h, w, c)
            return self._from_nhwc(dx, data_format)
        if oh == 0 or ow == 0:  # the kernel is larger than the input: nothing flowed
            return self._from_nhwc(xp.zeros((n, h, w, c), dtype=g.dtype), data_format)
        if tuple(strides) == (1, 1):
            # a "full" correlation of the gradient with the flipped kernel: one im2col and
            # one GEMM, where scattering patches back would be kh * kw strided additions
            ek = [(k - 1) * d + 1 for k, d in zip((kh, kw), dilation_rate)]
            gpad = self._pad(
                g, (ek[0] - 1 - ph[0], ek[0] - 1 - ph[1]), (ek[1] - 1 - pw[0], ek[1] - 1 - pw[1])
            )
            flipped = xp.ascontiguousarray(xp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2)))
            dx = self.conv2d(gpad, flipped, (1, 1), "valid", "channels_last", dilation_rate)
            return self._from_nhwc(dx, data_format)
        # strided: one GEMM for every kernel position at once, then scatter the patches back
        cols = xp.matmul(g2, kernel.reshape(kh * kw * c, o).T).reshape(n, oh, ow, kh * kw, c)
        dx = xp.zeros((n, h + ph[0] + ph[1], w + pw[0] + pw[1], c), dtype=g.dtype)
        for i in range(kh):
            for j in range(kw):
                win = self._window(i, j, oh, ow, strides, dilation_rate)
                dx[win] += cols[:, :, :, i * kw + j, :]
        dx = dx[:, ph[0] : ph[0] + h, pw[0] : pw[0] + w, :]
        return self._from_nhwc(xp.ascontiguousarray(dx), data_format)

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
        if groups != 1:
            return self._grouped_kernel_grad(
                x, grad, kernel_shape, strides, padding, data_format, dilation_rate, groups
            )
        xp = self.xp
        x = self._nhwc(x, data_format)
        g = self._nhwc(grad, data_format)
        n, h, w, c = x.shape
        kh, kw, _, o = kernel_shape
        oh, ow, ph, pw = self._geometry(h, w, kh, kw, strides, padding, dilation_rate)
        g2 = g.reshape(-1, o)
        if (kh, kw) == (1, 1) and tuple(strides) == (1, 1):
            return xp.matmul(x.reshape(-1, c).T, g2).reshape(kernel_shape)
        xpad = self._pad(x, ph, pw)
        # the forward pass's im2col, in chunks, each with one GEMM
        dk = xp.zeros((kh * kw * c, o), dtype=g.dtype)
        per = oh * ow * kh * kw * c * x.itemsize
        for s, e in self._chunks(n, per):
            cols = self._im2col(xpad[s:e], kh, kw, oh, ow, strides, dilation_rate)
            dk += xp.matmul(cols.T, g[s:e].reshape(-1, o))
        return dk.reshape(kernel_shape)

    # -- grouped convolutions (groups > 1; depthwise when each group has one channel): the
    # same unfold, then one batched matmul with a leading group axis
    def _group_kernel(self, kernel, groups):
        """(kh, kw, c/g, o) -> (g, kh * kw * c/g, o/g): output channels are group-major."""
        kh, kw, cg, o = kernel.shape
        k = kernel.reshape(kh, kw, cg, groups, o // groups)
        return self.xp.ascontiguousarray(self.xp.transpose(k, (3, 0, 1, 2, 4))).reshape(
            groups, kh * kw * cg, o // groups
        )

    def _group_cols(self, cols, kk, groups):
        """(p, kk * c) patches in (kernel position, channel) order -> (g, p, kk * c/g)."""
        p = cols.shape[0]
        c = cols.shape[1] // kk
        split = cols.reshape(p, kk, groups, c // groups)
        return self.xp.ascontiguousarray(self.xp.transpose(split, (2, 0, 1, 3))).reshape(
            groups, p, kk * (c // groups)
        )

    def _grouped_conv2d(self, x, kernel, strides, padding, data_format, dilation_rate, groups):
        xp = self.xp
        x = self._nhwc(x, data_format)
        n, h, w, c = x.shape
        kh, kw, _, o = kernel.shape
        oh, ow, ph, pw = self._geometry(h, w, kh, kw, strides, padding, dilation_rate)
        xpad = self._pad(x, ph, pw)
        kg = self._group_kernel(kernel, groups)
        out = xp.empty((n, oh, ow, o), dtype=xp.result_type(x.dtype, kernel.dtype))
        per = 2 * oh * ow * kh * kw * c * x.itemsize
        for s, e in self._chunks(n, per):
            cols = self._im2col(xpad[s:e], kh, kw, oh, ow, strides, dilation_rate)
            y = xp.matmul(self._group_cols(cols, kh * kw, groups), kg)  # (g, p, o/g)
            out[s:e] = xp.transpose(y, (1, 0, 2)).reshape(e - s, oh, ow, o)
        return self._from_nhwc(out, data_format)

    def _grouped_input_grad(
        self, grad, kernel, input_shape, strides, padding, data_format, dilation_rate, groups
    ):
        xp = self.xp
        g = self._nhwc(grad, data_format)
        if data_format == "channels_last":
            n, h, w, c = input_shape
        else:
            n, c, h, w = input_shape
        kh, kw, cg, o = kernel.shape
        oh, ow, ph, pw = self._geometry(h, w, kh, kw, strides, padding, dilation_rate)
        if oh == 0 or ow == 0:
            return self._from_nhwc(xp.zeros((n, h, w, c), dtype=g.dtype), data_format)
        kg = self._group_kernel(kernel, groups)  # (g, kk * cg, og)
        gg = xp.transpose(g.reshape(-1, groups, o // groups), (1, 0, 2))  # (g, p, og)
        cols = xp.matmul(gg, xp.transpose(kg, (0, 2, 1)))  # (g, p, kk * cg)
        cols = xp.transpose(cols.reshape(groups, -1, kh * kw, cg), (1, 2, 0, 3))
        cols = cols.reshape(n, oh, ow, kh * kw, c)
        dx = xp.zeros((n, h + ph[0] + ph[1], w + pw[0] + pw[1], c), dtype=g.dtype)
        for i in range(kh):
            for j in range(kw):
                win = self._window(i, j, oh, ow, strides, dilation_rate)
                dx[win] += cols[:, :, :, i * kw + j, :]
        dx = dx[:, ph[0] : ph[0] + h, pw[0] : pw[0] + w, :]
        return self._from_nhwc(xp.ascontiguousarray(dx), data_format)

    def _grouped_kernel_grad(
        self, x, grad, kernel_shape, strides, padding, data_format, dilation_rate, groups
    ):
        xp = self.xp
        x = self._nhwc(x, data_format)
        g = self._nhwc(grad, data_format)
        n, h, w, c = x.shape
        kh, kw, cg, o = kernel_shape
        og = o // groups
        oh, ow, ph, pw = self._geometry(h, w, kh, kw, strides, padding, dilation_rate)
        xpad = self._pad(x, ph, pw)
        dk = xp.zeros((groups, kh * kw * cg, og), dtype=g.dtype)
        per = 2 * oh * ow * kh * kw * c * x.itemsize
        for s, e in self._chunks(n, per):
            cols = self._group_cols(
                self._im2col(xpad[s:e], kh, kw, oh, ow, strides, dilation_rate), kh * kw, groups
            )
            gg = xp.transpose(g[s:e].reshape(-1, groups, og), (1, 0, 2))
            dk += xp.matmul(xp.transpose(cols, (0, 2, 1)), gg)
        dk = xp.transpose(dk.reshape(groups, kh, kw, cg, og), (1, 2, 3, 0, 4))
        return xp.ascontiguousarray(dk).reshape(kernel_shape)

    def _pool_windows(self, x, pool_size, strides, padding, mode):
        n, h, w, c = x.shape
        oh, ow, ph, pw = self._geometry(h, w, pool_size[0], pool_size[1], strides, padding, (1, 1))
        fill = -self.xp.inf if mode == "max" else 0.0
        xpad = self._pad(x, ph, pw, fill)
        wins = [
            xpad[self._window(i, j, oh, ow, strides, (1, 1))]
            for i in range(pool_size[0])
            for j in range(pool_size[1])
        ]
        return wins, (oh, ow, ph, pw, xpad.shape)

    def _avg_counts(self, h, w, pool_size, strides, padding, dtype):
        ones = self.xp.ones((1, h, w, 1), dtype=dtype)
        wins, _ = self._pool_windows(ones, pool_size, strides, padding, "avg")
        total = wins[0]
        for win in wins[1:]:
            total = total + win
        return total

    def pool2d(self, x, pool_size, strides, padding, data_format, mode):
        xp = self.xp
        x = self._nhwc(x, data_format)
        wins, _ = self._pool_windows(x, pool_size, strides, padding, mode)
        if mode == "max":
            out = wins[0]
            for win in wins[1:]:
                out = xp.maximum(out, win)
        elif mode == "avg":
            out = wins[0].copy()
            for win in wins[1:]:
                out += win
            out = out / self._avg_counts(
                x.shape[1], x.shape[2], pool_size, strides, padding, x.dtype
            )
        else:
            raise ValueError(f"pool2d mode must be 'max' or 'avg', got {mode!r}")
        return self._from_nhwc(xp.ascontiguousarray(out), data_format)

    def pool2d_grad(self, x, grad, pool_size, strides, padding, data_format, mode):
        xp = self.xp
        x = self._nhwc(x, data_format)
        g = self._nhwc(grad, data_format)
        n, h, w, c = x.shape
        wins, (oh, ow, ph, pw, pshape) = self._pool_windows(x, pool_size, strides, padding, mode)
        dx = xp.zeros(pshape, dtype=g.dtype)
        positions = [(i, j) for i in range(pool_size[0]) for j in range(pool_size[1])]
        # windows that do not overlap write each element once: assign, no read-modify-write
        disjoint = strides[0] >= pool_size[0] and strides[1] >= pool_size[1]
        if mode == "max":
            # the gradient goes to the first maximal element of each window
            best = wins[0]
            for win in wins[1:]:
                best = xp.maximum(best, win)
            unclaimed = xp.ones(best.shape, dtype=bool)
            for win, (i, j) in zip(wins, positions):
                first = (win == best) & unclaimed
                unclaimed &= ~first
                window = self._window(i, j, oh, ow, strides, (1, 1))
                if disjoint:
                    xp.multiply(g, first, out=dx[window])
                else:
                    dx[window] += g * first
        else:
            share = g / self._avg_counts(h, w, pool_size, strides, padding, g.dtype)
            for i, j in positions:
                dx[self._window(i, j, oh, ow, strides, (1, 1))] += share
        dx = dx[:, ph[0] : ph[0] + h, pw[0] : pw[0] + w, :]
        return self._from_nhwc(xp.ascontiguousarray(dx), data_format)
