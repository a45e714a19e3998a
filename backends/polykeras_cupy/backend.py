"""The CuPy backend: the NumPy backend's kernels with ``xp = cupy``, plus what must differ.

Overrides: transfers (NumPy <-> device, explicit), ``scatter_add`` (cupyx's atomic add),
``take``'s range check (one device reduction, no host copy of the indices), device choice
(``cupy:1``), the memory pool, ``argsort`` (CuPy's sort is always stable and takes no
``kind``) and the optional ``erf`` (cupyx.scipy.special; NumPy has none).  A NumPy array
reaching a kernel is an error, never a silent host round trip: data enter through
``asarray``.

GPU numerics need nothing here: CuPy's matrix products are float32-exact unless the user
sets CuPy's own ``CUPY_TF32=1`` (polykeras' ``POLYKERAS_ALLOW_TF32`` is the torch
backend's), and ``cupy.asarray`` of a NumPy array already stages the copy through CuPy's
pinned-memory pool and transfers it asynchronously on the current stream.
"""

from __future__ import annotations

import cupy
import cupyx

from polykeras_numpy.xp_backend import XpBackend


class CupyBackend(XpBackend):
    xp = cupy
    name = "cupy"

    def __init__(self, device: str | None = None) -> None:
        count = cupy.cuda.runtime.getDeviceCount()
        index = 0
        if device not in (None, ""):
            text = device[5:] if device.startswith("cuda:") else device
            if not text.isdigit():
                raise ValueError(
                    f"cupy backend: device {device!r} is not a GPU index such as "
                    "'cupy:0' or 'cupy:cuda:1'"
                )
            index = int(text)
        if not 0 <= index < count:
            raise ValueError(
                f"cupy backend: GPU {index} was asked for, but {count} CUDA device(s) are visible"
            )
        self._device = cupy.cuda.Device(index)
        self._device.use()
        self.device = f"cuda:{index}"
        self.pool = cupy.get_default_memory_pool()
        super().__init__()

    def asarray(self, x, dtype=None):
        with self._device:
            return cupy.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        return cupy.asnumpy(x)

    def is_native(self, x):
        return isinstance(x, cupy.ndarray)

    def _check_native(self, x, op):
        if not isinstance(x, cupy.ndarray) and hasattr(x, "__array__") and hasattr(x, "shape"):
            raise TypeError(
                f"cupy backend: {op} got a {type(x).__module__}.{type(x).__name__}"
                "; convert data with the backend's asarray first (no silent host "
                "round trips)"
            )

    def matmul(self, a, b):
        self._check_native(a, "matmul")
        self._check_native(b, "matmul")
        return cupy.matmul(a, b)

    def take(self, x, indices):
        if indices.dtype.kind not in "iu":
            raise TypeError(f"take: indices must be integers, got {indices.dtype.name}")
        if indices.size:
            lo, hi = (int(v) for v in cupy.asnumpy(cupy.stack([indices.min(), indices.max()])))
            if lo < 0 or hi >= x.shape[0]:
                raise IndexError(
                    f"take: indices must lie in [0, {x.shape[0]}); got values from {lo} to {hi}"
                )
        return cupy.take(x, indices, axis=0)

    def scatter_add(self, shape, indices, updates):
        out = cupy.zeros(shape, dtype=updates.dtype)
        flat = indices.reshape(-1)
        cupyx.scatter_add(out, flat, updates.reshape((flat.shape[0],) + tuple(shape[1:])))
        return out

    def sum(self, x, axis=None, keepdims=False):
        return cupy.sum(x, axis=axis, keepdims=keepdims)

    def max(self, x, axis=None, keepdims=False):
        return cupy.max(x, axis=axis, keepdims=keepdims)

    def softplus(self, x):
        return cupy.logaddexp(0, x).astype(x.dtype, copy=False)

    def argsort(self, x, axis):
        return cupy.argsort(x, axis=axis)  # always stable; CuPy takes no ``kind``

    def erf(self, x):
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)

    def free_memory(self) -> None:
        """Return cached blocks to the driver (e.g. between large models)."""
        self.pool.free_all_blocks()
