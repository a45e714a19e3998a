"""Reading dataset files without running code from them.

NumPy stores ragged arrays (``dtype=object``) and Python stores CIFAR's batches as pickle
streams, and unpickling can call any function a file names.  :class:`SafeUnpickler` lets
a stream name only what a NumPy array needs to be rebuilt (``ndarray``, ``dtype`` and
``_reconstruct``); lists, dicts, tuples, numbers and strings need no names at all.  A file
that names anything else is refused before that thing is imported.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
from typing import Any

import numpy as np

from ..saving.errors import FileFormatError, UnsafeContentError


def _reconstruct() -> Any:
    try:
        from numpy._core import multiarray  # NumPy 2
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray._reconstruct


def _latin1_encode() -> Any:
    # Python 3 pickles bytes with protocol 2 as ``_codecs.encode(text, "latin1")``; only
    # that encoding is served
    def encode(text: str, encoding: str = "latin1") -> bytes:
        if encoding.replace("-", "").lower() != "latin1" or not isinstance(text, str):
            raise UnsafeContentError(
                f"a pickled _codecs.encode asks for the encoding {encoding!r}; only latin1 "
                "(how Python 3 pickles bytes) is allowed"
            )
        return text.encode("latin1")

    return encode


_ALLOWED = {
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds NumPy arrays and plain Python data, nothing else."""

    def __init__(self, file: Any, source: str, **kwargs: Any):
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        make = _ALLOWED.get((module, name))
        if make is None:
            raise UnsafeContentError(
                f"{self.source}: the file asks to load {module}.{name}, which a dataset file "
                "never needs (only NumPy arrays and plain Python data are read); refused "
                "without running it"
            )
        return make()


def safe_unpickle(data: Any, source: str, encoding: str = "bytes") -> Any:
    """Unpickle ``data`` (bytes or a binary file) with :class:`SafeUnpickler`."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        return SafeUnpickler(stream, source, encoding=encoding).load()
    except UnsafeContentError:
        raise
    except Exception as exc:
        raise FileFormatError(f"{source}: cannot be read ({type(exc).__name__}: {exc})") from None


def _read_npy_member(fp: Any, source: str) -> np.ndarray:
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        raise FileFormatError(f"{source}: .npy format version {version} is not supported")
    if not dtype.hasobject:
        count = int(np.prod(shape, dtype=np.int64))
        raw = fp.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise FileFormatError(f"{source}: the array data is truncated")
        flat = np.frombuffer(raw, dtype=dtype, count=count).copy()  # writable, as np.load's
        return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    array = safe_unpickle(fp, source, encoding="latin1")
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise FileFormatError(
            f"{source}: expected an object array of shape {tuple(shape)}, got "
            f"{type(array).__name__} {getattr(array, 'shape', '')}"
        )
    return array


def load_npz(path: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` file, object arrays included, read without
    ``allow_pickle`` (object arrays go through :class:`SafeUnpickler`)."""
    name = os.path.basename(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise FileFormatError(
            f"{path}: not a NumPy .npz file ({exc}); delete it to download it again"
        ) from None
    out: dict[str, np.ndarray] = {}
    with archive:
        present = set(archive.namelist())
        for key in keys:
            member = f"{key}.npy"
            if member not in present:
                raise FileFormatError(
                    f"{path}: has no array {key!r} (it holds "
                    f"{sorted(n[:-4] for n in present if n.endswith('.npy'))}); expected "
                    f"{list(keys)}"
                )
            with archive.open(member) as fp:
                out[key] = _read_npy_member(fp, f"{name}[{key}]")
    return out


def read_idx(path: str, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """A gzipped IDX file (Fashion-MNIST's format): big-endian magic number and sizes,
    then uint8 data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = len(item_shape) + 1
    header = 4 + 4 * ndim
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise FileFormatError(
            f"{path}: not an IDX file with magic number {magic} (a gzipped "
            f"{'label' if magic == 2049 else 'image'} file of the MNIST format)"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims[1:] != item_shape or len(data) - header != int(np.prod(dims)):
        raise FileFormatError(
            f"{path}: holds {len(data) - header} bytes for shape {dims}; expected "
            f"items of shape {item_shape}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()
