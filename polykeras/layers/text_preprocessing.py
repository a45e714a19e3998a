"""Keras 3's categorical and text preprocessing layers: CategoryEncoding, IntegerLookup,
StringLookup and TextVectorization.

Strings live on the host. The lookup layers keep their vocabulary as a Python dict (token ->
index) and work on NumPy arrays or (nested) lists of ``str``/``bytes``; they return backend
arrays (int64 indices, or floatx encodings). They are meant for data, before the model (on
arrays, or in a generator), as Keras 3 uses them on its non-TensorFlow backends. A symbolic
tensor given to StringLookup or TextVectorization is refused, since a model's tensors hold
numbers only. CategoryEncoding and IntegerLookup take numbers, so they also run inside a
model: there they compute through :mod:`polykeras.ops` (a lookup is a comparison with every
vocabulary entry, so its cost grows with the vocabulary).

An index vocabulary is laid out as Keras lays it out: the mask token first (``output_mode
="int"`` only), then ``num_oov_indices`` out-of-vocabulary slots, then the tokens.
``adapt`` orders the tokens by how often they occur, most frequent first, ties broken by
the token itself in descending order (Keras sorts by (count, token) and reverses).

Saving: an adapted vocabulary (and its IDF weights) is written into the layer's config
(``vocabulary``, ``idf_weights``), so ``get_config``, JSON, ``.h5`` and ``.keras`` files all
bring it back. Keras 3 itself keeps an adapted vocabulary in the ``.keras`` file's assets,
which polykeras does not read: such a layer loads without a vocabulary and says so when
called.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend as _backend
from .. import ops
from ..engine.base_layer import Layer, is_symbolic, to_list
from ..utils import as_int

_LOOKUP_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")
_INT64_MAX = np.iinfo(np.int64).max

# -- host helpers --------------------------------------------------------------------------------


def _to_host(x: Any) -> np.ndarray:
    """``x`` (a list, a NumPy array, a backend array) as a NumPy array."""
    B = _backend.current()
    if B.is_native(x):
        return np.asarray(B.to_numpy(x))
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x, dtype=object if _holds_text(x) else None)


def _holds_text(x: Any) -> bool:
    while isinstance(x, (list, tuple)) and x:
        x = x[0]
    return isinstance(x, (str, bytes, np.str_, np.bytes_))


def _text_array(x: Any, owner: str, encoding: str) -> np.ndarray:
    """``x`` as an object array of Python ``str`` (bytes decoded with ``encoding``)."""
    if isinstance(x, (str, bytes)):
        x = np.asarray(x, dtype=object)
    if is_symbolic(x):
        raise TypeError(
            f"{owner} works on strings on the host and cannot be part of a model: a "
            "model's tensors hold numbers only. Apply the layer to your data first (to the "
            "arrays, or inside the generator that feeds fit) and give the model its output"
        )
    B = _backend.current()
    if not isinstance(x, np.ndarray) and B.is_native(x):
        raise TypeError(
            f"{owner} takes strings (a list or NumPy array of str or bytes), "
            f"got a backend array of numbers"
        )
    arr = np.asarray(x, dtype=object) if not isinstance(x, np.ndarray) else x
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, encoding)
    flat = arr.reshape(-1)
    out = np.empty(flat.shape, dtype=object)
    for i, v in enumerate(flat):
        if isinstance(v, (bytes, np.bytes_)):
            v = bytes(v).decode(encoding)
        elif not isinstance(v, str):
            raise TypeError(
                f"{owner} takes strings (a list or NumPy array of str or bytes); found "
                f"{type(v).__name__} {v!r:.40}"
            )
        out[i] = str(v)
    return out.reshape(arr.shape)


def _int_array(x: Any, owner: str) -> np.ndarray:
    """``x`` as an int64 NumPy array (floats holding whole numbers are accepted)."""
    if is_symbolic(x):
        raise TypeError(f"{owner}: expected data, got a symbolic tensor")
    arr = _to_host(x)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    raise TypeError(f"{owner} takes integers, got an array of dtype {arr.dtype}")


def _encode_host(
    indices: np.ndarray,
    mode: str,
    depth: int,
    owner: str,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Keras' categorical encoding of int64 ``indices`` (values outside [0, depth) count
    for nothing): ``one_hot`` adds an axis (or replaces a last axis of size 1);
    ``multi_hot`` and ``count`` fold the last axis of a rank-1 or rank-2 input."""
    if indices.ndim == 0:
        indices = indices.reshape(1)
        if weights is not None:
            weights = np.asarray(weights).reshape(1)
    if mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices.reshape(indices.shape[:-1])
        hot = indices[..., None] == np.arange(depth)
        return hot.astype(np.float64)
    if indices.ndim > 2:
        raise ValueError(
            f"{owner}: output_mode={mode!r} takes inputs of rank 1 or 2 (as Keras), got an "
            f"input of shape {indices.shape}"
        )
    rows = indices.reshape(1, -1) if indices.ndim == 1 else indices
    w = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(rows.shape)
    out = np.zeros((rows.shape[0], depth), dtype=np.float64)
    ok = (rows >= 0) & (rows < depth)
    r = np.nonzero(ok)
    np.add.at(out, (r[0], rows[r]), 1.0 if w is None else w[r])
    if mode == "multi_hot":
        out = (out > 0).astype(np.float64)
    return out[0] if indices.ndim == 1 else out


def _encode_ragged(rows: list[np.ndarray], mode: str, depth: int) -> np.ndarray:
    """multi_hot / count of one index list per row (rows of different lengths)."""
    out = np.zeros((len(rows), depth), dtype=np.float64)
    for i, row in enumerate(rows):
        row = row[(row >= 0) & (row < depth)]
        np.add.at(out[i], row, 1.0)
    return (out > 0).astype(np.float64) if mode == "multi_hot" else out


def _encode_symbolic(x: Any, mode: str, depth: int, dtype: str, weights: Any = None) -> Any:
    """:func:`_encode_host` through ops, on backend arrays or symbolic tensors."""
    x = ops.cast(x, "int64")
    shape = tuple(ops.shape(x))
    if len(shape) == 0:
        x = ops.expand_dims(x, 0)
        shape = (1,)
    if mode == "one_hot":
        if len(shape) > 1 and shape[-1] == 1:
            x = ops.squeeze(x, -1)
        return ops.one_hot(x, depth, dtype=dtype)
    hot = ops.one_hot(x, depth, dtype=dtype)
    axis = 1 if len(shape) > 1 else 0
    if mode == "multi_hot":
        return ops.max(hot, axis=axis)
    if weights is not None:
        hot = ops.multiply(hot, ops.expand_dims(ops.cast(weights, dtype), -1))
    return ops.sum(hot, axis=axis)


def _check_mode(value: Any, allowed: tuple[str, ...], owner: str) -> str:
    if value == "binary":  # Keras' old name
        value = "multi_hot"
    if value == "tf-idf":
        value = "tf_idf"
    if value not in allowed:
        raise ValueError(
            f"{owner}: output_mode={value!r} is not valid; expected one of {', '.join(allowed)}"
        )
    return str(value)


def _no_sparse(sparse: Any, owner: str, what: str = "sparse") -> None:
    if sparse:
        raise NotImplementedError(
            f"{owner}: {what}=True is not implemented in polykeras (outputs are dense arrays)"
        )


def _no_activity_regularizer(kwargs: dict, owner: str) -> None:
    if kwargs.get("activity_regularizer") is not None:
        raise NotImplementedError(
            f"{owner}: activity_regularizer is not implemented for a preprocessing layer "
            "(its outputs are data, not activations; Keras' lookups refuse it too)"
        )


class _HostLayer(Layer):
    """A layer whose eager calls run on the host (``_call_host``); calls on symbolic
    tensors build a node as usual (``call`` then computes through ops)."""

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        flat = to_list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if any(is_symbolic(t) for t in flat):
            self._check_symbolic(kwargs)
            return super().__call__(inputs, **kwargs)
        kwargs = self._check_call_kwargs(kwargs)
        kwargs.pop("training", None)
        if kwargs.pop("mask", None) is not None:
            raise NotImplementedError(f"{self._owner()}: mask= is not supported")
        return self._call_host(inputs, **kwargs)

    def _owner(self) -> str:
        return f"layer {self.name} ({type(self).__name__})"

    def _check_symbolic(self, kwargs: dict) -> None:
        """Raise where the layer cannot run on symbolic tensors."""
        for key, value in kwargs.items():
            if is_symbolic(value):
                raise NotImplementedError(
                    f"{self._owner()}: {key}= cannot be a symbolic tensor in polykeras; "
                    "give it as an array when calling the layer on data"
                )

    #: the eager call on data (each layer takes its own keywords)
    _call_host: Callable[..., Any]

    def _out(self, arr: np.ndarray, dtype: str) -> Any:
        return ops.asarray(np.asarray(arr).astype(dtype))


# -- FarmHash Fingerprint64 ----------------------------------------------------------------------
# TensorFlow's ``strings.to_hash_bucket_fast`` (behind Keras' Hashing and the lookups' extra OOV
# indices) is ``Fingerprint64(utf-8 bytes) % buckets``: FarmHash's ``farmhashna::Hash64``,
# written here on Python ints kept to 64 bits. Checked against published fingerprints,
# including Guava's test that hashes every length up to 3,200 bytes.

_MASK64 = (1 << 64) - 1
_FK0, _FK1, _FK2 = 0xC3A5C85C97CB3127, 0xB492B66FBE98F273, 0x9AE16A3B2F90404F


def _word(b: bytes, at: int, size: int = 8) -> int:
    return int.from_bytes(b[at : at + size], "little")


def _rotr(v: int, by: int) -> int:
    return ((v >> by) | (v << (64 - by))) & _MASK64


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def _mix16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _MASK64
    a ^= a >> 47
    b = ((v ^ a) * mul) & _MASK64
    b ^= b >> 47
    return (b * mul) & _MASK64


def _mix32(b: bytes, at: int, a: int, c: int) -> tuple[int, int]:
    w, x, y, z = (_word(b, at + k) for k in (0, 8, 16, 24))
    a = (a + w) & _MASK64
    c = _rotr((c + a + z) & _MASK64, 21)
    first = a
    a = (a + x + y) & _MASK64
    c = (c + _rotr(a, 44)) & _MASK64
    return (a + z) & _MASK64, (c + first) & _MASK64


def _fingerprint_short(b: bytes) -> int:
    n = len(b)
    mul = _FK2 + 2 * n
    if n >= 8:
        a = (_word(b, 0) + _FK2) & _MASK64
        tail = _word(b, n - 8)
        c = (_rotr(tail, 37) * mul + a) & _MASK64
        d = ((_rotr(a, 25) + tail) * mul) & _MASK64
        return _mix16(c, d, mul)
    if n >= 4:
        return _mix16((n + (_word(b, 0, 4) << 3)) & _MASK64, _word(b, n - 4, 4), mul)
    if n:
        y = b[0] + (b[n >> 1] << 8)
        z = n + (b[n - 1] << 2)
        return (_shift_mix(((y * _FK2) ^ (z * _FK0)) & _MASK64) * _FK2) & _MASK64
    return _FK2


def _fingerprint_medium(b: bytes) -> int:
    """17 to 64 bytes."""
    n = len(b)
    mul = _FK2 + 2 * n
    first = _FK1 if n <= 32 else _FK2
    a = (_word(b, 0) * first) & _MASK64
    second = _word(b, 8)
    c = (_word(b, n - 8) * mul) & _MASK64
    d = (_word(b, n - 16) * _FK2) & _MASK64
    y = (_rotr((a + second) & _MASK64, 43) + _rotr(c, 30) + d) & _MASK64
    z = (a + _rotr((second + _FK2) & _MASK64, 18) + c) & _MASK64
    if n <= 32:
        return _mix16(y, z, mul)
    z = _mix16(y, z, mul)
    e = (_word(b, 16) * mul) & _MASK64
    f = _word(b, 24)
    g = ((y + _word(b, n - 32)) * mul) & _MASK64
    h = ((z + _word(b, n - 24)) * mul) & _MASK64
    return _mix16(
        (_rotr((e + f) & _MASK64, 43) + _rotr(g, 30) + h) & _MASK64,
        (e + _rotr((f + a) & _MASK64, 18) + g) & _MASK64,
        mul,
    )


def fingerprint64(data: bytes) -> int:
    """FarmHash's Fingerprint64 of ``data`` (an unsigned 64-bit int), as TensorFlow's."""
    n = len(data)
    if n <= 16:
        return _fingerprint_short(data)
    if n <= 64:
        return _fingerprint_medium(data)
    b = data
    x = 81
    y = (81 * _FK1 + 113) & _MASK64
    z = (_shift_mix((y * _FK2 + 113) & _MASK64) * _FK2) & _MASK64
    v0 = v1 = w0 = w1 = 0
    x = (x * _FK2 + _word(b, 0)) & _MASK64
    end = ((n - 1) // 64) * 64
    at = 0
    while True:  # 64 bytes a round; the last 64 bytes are mixed in after
        x = (_rotr((x + y + v0 + _word(b, at + 8)) & _MASK64, 37) * _FK1) & _MASK64
        y = (_rotr((y + v1 + _word(b, at + 48)) & _MASK64, 42) * _FK1) & _MASK64
        x ^= w1
        y = (y + v0 + _word(b, at + 40)) & _MASK64
        z = (_rotr((z + w0) & _MASK64, 33) * _FK1) & _MASK64
        v0, v1 = _mix32(b, at, (v1 * _FK1) & _MASK64, (x + w0) & _MASK64)
        w0, w1 = _mix32(b, at + 32, (z + w1) & _MASK64, (y + _word(b, at + 16)) & _MASK64)
        x, z = z, x
        at += 64
        if at == end:
            break
    mul = _FK1 + ((z & 0xFF) << 1)
    at = end + ((n - 1) & 63) - 63
    w0 = (w0 + ((n - 1) & 63)) & _MASK64
    v0 = (v0 + w0) & _MASK64
    w0 = (w0 + v0) & _MASK64
    x = (_rotr((x + y + v0 + _word(b, at + 8)) & _MASK64, 37) * mul) & _MASK64
    y = (_rotr((y + v1 + _word(b, at + 48)) & _MASK64, 42) * mul) & _MASK64
    x ^= (w1 * 9) & _MASK64
    y = (y + v0 * 9 + _word(b, at + 40)) & _MASK64
    z = (_rotr((z + w0) & _MASK64, 33) * mul) & _MASK64
    v0, v1 = _mix32(b, at, (v1 * mul) & _MASK64, (x + w0) & _MASK64)
    w0, w1 = _mix32(b, at + 32, (z + w1) & _MASK64, (y + _word(b, at + 16)) & _MASK64)
    x, z = z, x
    return _mix16(
        (_mix16(v0, w0, mul) + _shift_mix(y) * _FK0 + z) & _MASK64,
        (_mix16(v1, w1, mul) + x) & _MASK64,
        mul,
    )


def _rotl(v: int, by: int) -> int:
    return ((v << by) | (v >> (64 - by))) & _MASK64


def siphash24(k0: int, k1: int, data: bytes) -> int:
    """SipHash-2-4 of ``data`` under the 128-bit key (k0, k1), as TensorFlow's keyed
    ``to_hash_bucket_strong`` computes it (checked on the SipHash paper's test vector)."""
    v = [
        k0 ^ 0x736F6D6570736575,
        k1 ^ 0x646F72616E646F6D,
        k0 ^ 0x6C7967656E657261,
        k1 ^ 0x7465646279746573,
    ]

    def sip_round() -> None:
        v[0] = (v[0] + v[1]) & _MASK64
        v[1] = _rotl(v[1], 13) ^ v[0]
        v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & _MASK64
        v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & _MASK64
        v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & _MASK64
        v[1] = _rotl(v[1], 17) ^ v[2]
        v[2] = _rotl(v[2], 32)

    n = len(data)
    whole = n - n % 8
    blocks = [_word(data, at) for at in range(0, whole, 8)]
    blocks.append(((n & 0xFF) << 56) | int.from_bytes(data[whole:], "little"))
    for m in blocks:
        v[3] ^= m
        sip_round()
        sip_round()
        v[0] ^= m
    v[2] ^= 0xFF
    for _ in range(4):
        sip_round()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def hash_bucket(value: Any, buckets: int, salt: list[int] | None = None) -> int:
    """TensorFlow's ``to_hash_bucket_fast`` of one string (or an integer, as its decimal
    text), ``Fingerprint64(utf-8) % buckets``; with a ``salt`` (two ints), its keyed
    ``to_hash_bucket_strong``, ``SipHash-2-4(utf-8) % buckets``."""
    text = value if isinstance(value, str) else str(int(value))
    data = text.encode("utf-8")
    if salt is not None:
        return siphash24(salt[0], salt[1], data) % buckets
    return fingerprint64(data) % buckets


def _check_salt(salt: Any, owner: str) -> list[int] | None:
    """Keras' salt: None, one int (used twice) or two ints, each in [0, 2**64)."""
    if salt is None:
        return None
    pair = [salt, salt] if not isinstance(salt, (list, tuple)) else list(salt)
    if len(pair) != 2 or not all(
        isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 0 <= k <= _MASK64
        for k in pair
    ):
        raise ValueError(
            f"{owner}: salt must be an integer or a pair of integers in [0, 2**64), got {salt!r}"
        )
    return [int(k) for k in pair]


# -- CategoryEncoding ----------------------------------------------------------------------------


class CategoryEncoding(_HostLayer):
    """Integers in ``[0, num_tokens)`` encoded as ``one_hot`` rows, or folded per sample
    (the last axis) into ``multi_hot`` or ``count`` vectors of ``num_tokens`` floats;
    ``count_weights`` (``count`` only) weights each input's contribution."""

    def __init__(
        self,
        num_tokens: Any = None,
        output_mode: str = "multi_hot",
        sparse: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        owner = f"CategoryEncoding {self.name}"
        self.output_mode = _check_mode(output_mode, ("count", "one_hot", "multi_hot"), owner)
        if num_tokens is None:
            raise ValueError(
                f"{owner}: num_tokens must be set (the number of categories); when it is not "
                "known beforehand, use IntegerLookup"
            )
        self.num_tokens = as_int(num_tokens, "num_tokens", owner, minimum=1)
        _no_sparse(sparse, owner)
        self.sparse = False

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        if len(shape) == 0:
            return (self.num_tokens,)
        if self.output_mode == "one_hot" and (len(shape) == 1 or shape[-1] != 1):
            return shape + (self.num_tokens,)
        return shape[:-1] + (self.num_tokens,)

    def check_input(self, input_shape: Any) -> None:
        if isinstance(input_shape, list):
            raise ValueError(  # noqa: TRY004
                f"{self._owner()} takes one input, got {len(input_shape)}"
            )
        if self.output_mode != "one_hot" and len(input_shape) > 2:
            raise ValueError(
                f"{self._owner()}: output_mode={self.output_mode!r} takes inputs of rank 1 or "
                f"2 (as Keras), got shape {tuple(input_shape)}"
            )

    def _check_weights(self, count_weights: Any) -> None:
        if count_weights is not None and self.output_mode != "count":
            raise ValueError(
                f"{self._owner()}: count_weights is used only with output_mode='count', "
                f"not {self.output_mode!r}"
            )

    def _call_host(self, inputs: Any, count_weights: Any = None) -> Any:
        self._check_weights(count_weights)
        x = _int_array(inputs, self._owner())
        if x.size and (x.min() < 0 or x.max() >= self.num_tokens):
            raise ValueError(
                f"{self._owner()}: inputs must be integers in [0, {self.num_tokens}) "
                f"(num_tokens={self.num_tokens}); got values from {x.min()} to {x.max()}"
            )
        w = None
        if count_weights is not None:
            w = _to_host(count_weights).astype(np.float64)
            if w.shape != x.shape:
                raise ValueError(
                    f"{self._owner()}: count_weights must have the inputs' shape {x.shape}, "
                    f"got {w.shape}"
                )
        return self._out(
            _encode_host(x, self.output_mode, self.num_tokens, self._owner(), w), self.dtype
        )

    def call(self, inputs: Any, count_weights: Any = None) -> Any:
        self._check_weights(count_weights)
        return _encode_symbolic(
            inputs, self.output_mode, self.num_tokens, self.dtype, count_weights
        )

    def get_config(self) -> dict[str, Any]:
        # Keras 3 writes num_tokens and output_mode (sparse is taken, not written)
        return {
            **super().get_config(),
            "num_tokens": self.num_tokens,
            "output_mode": self.output_mode,
        }


# -- the index lookups ---------------------------------------------------------------------------


class _IndexLookup(_HostLayer):
    """What StringLookup and IntegerLookup share: the vocabulary, ``adapt``, the lookup
    and the encodings."""

    _text = True  # strings (StringLookup) or integers (IntegerLookup)
    oov_method = "floormod"  # how unknown integers spread over several OOV indices

    def __init__(
        self,
        max_tokens: Any,
        num_oov_indices: Any,
        mask_token: Any,
        oov_token: Any,
        vocabulary: Any = None,
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        sparse: bool = False,
        pad_to_max_tokens: bool = False,
        salt: Any = None,
        vocabulary_size: Any = None,
        has_input_vocabulary: Any = None,
        **kwargs: Any,
    ):
        _no_activity_regularizer(kwargs, type(self).__name__)
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} {self.name}"
        if max_tokens is not None:
            max_tokens = as_int(max_tokens, "max_tokens", owner, minimum=2)
        self.max_tokens = max_tokens
        self.num_oov_indices = as_int(num_oov_indices, "num_oov_indices", owner, minimum=0)
        self.output_mode = _check_mode(output_mode, _LOOKUP_MODES, owner)
        self.invert = bool(invert)
        if self.invert and self.output_mode != "int":
            raise ValueError(
                f"{owner}: invert=True needs output_mode='int', got {self.output_mode!r}"
            )
        _no_sparse(sparse, owner)
        self.sparse = False
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.salt = _check_salt(salt, owner)
        hashes = self.num_oov_indices > 1 and not self.invert
        hashes = hashes and (self._text or self.oov_method == "farmhash")
        if self.salt is not None and not hashes:
            raise ValueError(
                f"{owner}: salt={salt!r} has no effect here: it keys the hash of unknown "
                "values over several OOV indices (num_oov_indices > 1"
                + (")" if self._text else ", oov_method='farmhash')")
            )
        self.mask_token = self._token_or_none(mask_token, "mask_token")
        self.oov_token = self._token_or_none(oov_token, "oov_token")
        if idf_weights is not None and self.output_mode != "tf_idf":
            raise ValueError(
                f"{owner}: idf_weights is used only with output_mode='tf_idf', not "
                f"{self.output_mode!r}"
            )
        if self.output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError(
                f"{owner}: with output_mode='tf_idf', a vocabulary needs its idf_weights too"
            )
        self.input_vocabulary = None if isinstance(vocabulary, str) else _listify(vocabulary)
        self.input_idf_weights = _listify(idf_weights)
        self._has_input_vocabulary = (
            vocabulary is not None if has_input_vocabulary is None else bool(has_input_vocabulary)
        )
        self._tokens: list | None = None  # the vocabulary, special tokens left out
        self._index: dict = {}
        self._idf: np.ndarray | None = None  # one weight per output index (tf_idf)
        self._idf_config: list | None = None  # the idf weights an adapted config writes
        self._frozen_size: int | None = None
        self._stored_size = None if vocabulary_size is None else int(vocabulary_size)
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # -- tokens ----------------------------------------------------------------------------------
    def _token_or_none(self, value: Any, what: str) -> Any:
        if value is None:
            return None
        if self._text:
            if isinstance(value, bytes):
                value = value.decode(getattr(self, "encoding", "utf-8"))
            if not isinstance(value, str):
                raise ValueError(
                    f"{type(self).__name__} {self.name}: {what} must be a string or None, "
                    f"got {value!r}"
                )
            return value
        return as_int(value, what, f"{type(self).__name__} {self.name}", minimum=None)

    def _tokens_of(self, data: Any) -> np.ndarray:
        if self._text:
            return _text_array(data, self._owner(), getattr(self, "encoding", "utf-8"))
        return _int_array(data, self._owner())

    def _oov_start(self) -> int:
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self) -> int:
        return self._oov_start() + self.num_oov_indices

    def vocabulary_size(self) -> int:
        """The number of indices: mask (``int`` mode) and OOV slots included."""
        return self._token_start() + len(self._tokens or [])

    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        """The vocabulary in index order (with the mask and OOV tokens first, unless
        ``include_special_tokens=False``)."""
        specials = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        tokens = list(self._tokens or [])
        return specials + tokens if include_special_tokens else tokens

    def _depth(self) -> int:
        if self.pad_to_max_tokens and self.max_tokens is not None:
            return self.max_tokens
        if self._tokens is None:
            raise RuntimeError(
                f"{self._owner()}: with output_mode={self.output_mode!r} and "
                "pad_to_max_tokens=False the vocabulary must be set before the layer is "
                "called: pass vocabulary=, call set_vocabulary() or adapt()" + self._stored_note()
            )
        return self.vocabulary_size()

    def _stored_note(self) -> str:
        if self._stored_size is not None and self._tokens is None:
            return (
                f" (this layer was loaded with vocabulary_size={self._stored_size} but no "
                "vocabulary: Keras 3 keeps an adapted vocabulary in a .keras file's assets, "
                "which polykeras does not read; set it with set_vocabulary())"
            )
        return ""

    def _record_size(self) -> None:
        if self.output_mode != "int" and not self.pad_to_max_tokens:
            size = self.vocabulary_size()
            if self._frozen_size is not None and size != self._frozen_size:
                raise RuntimeError(
                    f"{self._owner()}: with output_mode={self.output_mode!r} and "
                    "pad_to_max_tokens=False the vocabulary size cannot change once set (it "
                    f"fixes the output size): it was {self._frozen_size}, the new one is {size}"
                )
        self._frozen_size = self.vocabulary_size()

    def _install(self, tokens: list) -> None:
        self._tokens = tokens
        start = self._token_start()
        self._index = {t: start + i for i, t in enumerate(tokens)}
        self._record_size()

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Set the vocabulary (a list, a 1-D array, or the path of a text file with one token
        per line) and, for ``tf_idf``, its IDF weights; this replaces any vocabulary."""
        owner = self._owner()
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError(f"{owner}: idf_weights must be given with output_mode='tf_idf'")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(
                f"{owner}: idf_weights is used only with output_mode='tf_idf', not "
                f"{self.output_mode!r}"
            )
        if isinstance(vocabulary, (str, os.PathLike)):
            path = os.fspath(vocabulary)
            if not os.path.isfile(path):
                raise ValueError(f"{owner}: vocabulary file {path!r} does not exist")
            if self.output_mode == "tf_idf":
                raise ValueError(
                    f"{owner}: output_mode='tf_idf' cannot read its vocabulary from a file; "
                    "give it as a list with idf_weights"
                )
            with open(path, encoding=getattr(self, "encoding", "utf-8")) as f:
                lines = f.read().splitlines()
            while lines and lines[-1] == "":
                lines.pop()
            vocabulary = lines
        arr = self._tokens_of(np.asarray(vocabulary, dtype=object) if self._text else vocabulary)
        if arr.ndim != 1:
            raise ValueError(f"{owner}: the vocabulary must be 1-D, got shape {arr.shape}")
        given = arr.tolist()
        if not given:
            raise ValueError(f"{owner}: cannot set an empty vocabulary")
        start = self._token_start()
        specials = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        found_specials = given[:start] == specials
        tokens = given[start:] if found_specials else given
        repeated = [t for t, c in collections.Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError(
                f"{owner}: the vocabulary repeats {repeated!r}; each term may appear once"
            )
        for special, what, check in (
            (self.mask_token, "mask_token", True),
            (self.oov_token, "oov_token", self.invert),
        ):
            if check and special is not None and special in tokens:
                raise ValueError(
                    f"{owner}: the vocabulary holds the {what} {special!r} among its terms; "
                    "leave the mask and OOV tokens out of it, or put them first in exactly "
                    f"this order: {specials!r}"
                )
        if self.max_tokens is not None and start + len(tokens) > self.max_tokens:
            raise ValueError(
                f"{owner}: a vocabulary of {start + len(tokens)} indices (special tokens "
                f"included) is larger than max_tokens={self.max_tokens}"
            )
        weights = None
        if self.output_mode == "tf_idf":
            w = np.asarray(idf_weights, dtype=np.float64)
            if w.ndim != 1 or len(w) != len(given):
                raise ValueError(
                    f"{owner}: idf_weights must be 1-D with one weight per vocabulary term "
                    f"({len(given)}), got shape {w.shape}"
                )
            front = 0 if found_specials else start
            fill = 0.0 if found_specials else float(np.mean(w))
            back = 0
            if self.pad_to_max_tokens and self.max_tokens is not None:
                back = self.max_tokens - front - len(w)
            weights = np.pad(w, (front, back), constant_values=(fill, 0.0))
        self._install(tokens)
        if weights is not None:
            self._idf = weights.astype(self.dtype)
            self._idf_config = None

    # -- adapt -----------------------------------------------------------------------------------
    def adapt(self, data: Any, steps: Any = None) -> None:
        """Learn the vocabulary from ``data`` (a list, a NumPy array, or an iterable of
        batches; ``steps``: at most that many batches): the terms by descending count,
        ties by descending term, cut to ``max_tokens``; ``tf_idf`` also learns each term's
        inverse document frequency ``log(1 + documents / (1 + documents with the term))``."""
        owner = self._owner()
        if self._has_input_vocabulary:
            raise ValueError(
                f"{owner}: cannot adapt a layer given a fixed vocabulary (vocabulary=)"
            )
        if steps is not None:
            steps = as_int(steps, "steps", owner, minimum=1)
        state = _Counts()
        for rows in self._adapt_rows(data, steps):
            state.add(rows, self.output_mode == "tf_idf")
        self._finish_adapt(state)

    def _adapt_rows(self, data: Any, steps: int | None) -> Any:
        """Each batch of ``data`` as a list of documents (lists of tokens)."""
        B = _backend.current()
        whole = isinstance(data, (list, tuple, np.ndarray, str, bytes)) or B.is_native(data)
        if whole:
            arr = self._tokens_of(data)
            if arr.ndim <= 1:
                arr = arr.reshape(-1, 1)  # one document per element
            yield [r.reshape(-1).tolist() for r in arr]
            return
        if not hasattr(data, "__iter__"):
            raise TypeError(
                f"{self._owner()}: adapt() takes a list, a NumPy array or an iterable of "
                f"batches, got {type(data).__name__}"
            )
        for i, batch in enumerate(data):
            if steps is not None and i >= steps:
                break
            arr = self._tokens_of(batch)
            if arr.ndim <= 1:
                arr = arr.reshape(1, -1)  # a 1-D batch is one document
            yield [r.reshape(-1).tolist() for r in arr]

    def _finish_adapt(self, state: _Counts) -> None:
        counts = state.counts
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        if not counts:
            return
        order = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        if self.max_tokens:
            order = order[: self.max_tokens - self._token_start()]
        tokens = [t for t, _ in order]
        self._install(tokens)
        if self.output_mode == "tf_idf":
            df = np.asarray([state.documents[t] for t in tokens], dtype=np.float64)
            idf = np.log1p(state.n_documents / (1.0 + df)).astype(self.dtype)
            self._idf_config = idf.tolist()
            back = 0
            if self.pad_to_max_tokens and self.max_tokens is not None:
                back = self.max_tokens - self._token_start() - len(idf)
            self._idf = np.concatenate(
                [
                    np.full(self._token_start(), idf.mean(), dtype=idf.dtype),
                    idf,
                    np.zeros(back, dtype=idf.dtype),
                ]
            )

    # -- lookup ----------------------------------------------------------------------------------
    def _lookup_host(self, tokens: np.ndarray) -> np.ndarray:
        """int64 indices of ``tokens`` (any shape); a mask token becomes 0 (``int`` mode)
        or an index past every output (other modes)."""
        flat = tokens.reshape(-1).tolist()
        n_oov, oov_start = self.num_oov_indices, self._oov_start()
        out = np.empty(len(flat), dtype=np.int64)
        missing = []
        mask_value = 0 if self.output_mode == "int" else _INT64_MAX
        for i, t in enumerate(flat):
            if self.mask_token is not None and t == self.mask_token:
                out[i] = mask_value
                continue
            j = self._index.get(t)
            if j is None:
                if n_oov == 0:
                    missing.append(t)
                    j = -1
                elif n_oov == 1:
                    j = oov_start
                elif self._text or self.oov_method == "farmhash":
                    j = oov_start + hash_bucket(t, n_oov, self.salt)
                else:
                    j = oov_start + int(t) % n_oov
            out[i] = j
        if missing:
            raise ValueError(
                f"{self._owner()}: with num_oov_indices=0 every input must be in the "
                f"vocabulary; found {sorted(set(missing))[:10]!r}; set num_oov_indices=1 "
                "to map unknown terms to an OOV index"
            )
        return out.reshape(tokens.shape)

    def _invert_host(self, indices: np.ndarray) -> list:
        vocab = self.get_vocabulary()
        return [vocab[i] if 0 <= i < len(vocab) else self.oov_token for i in indices.tolist()]

    def _encode_indices(self, idx: np.ndarray) -> Any:
        if self.output_mode == "int":
            return self._out(idx, "int64")
        depth = self._depth()
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        enc = _encode_host(idx, mode, depth, self._owner())
        if self.output_mode == "tf_idf":
            enc = enc.astype(self.dtype) * self._idf_weights()
        return self._out(enc, self.dtype)

    def _idf_weights(self) -> np.ndarray:
        if self._idf is None:
            raise ValueError(
                f"{self._owner()}: output_mode='tf_idf' needs idf_weights: adapt() the layer "
                "or give them with the vocabulary" + self._stored_note()
            )
        return self._idf

    def _check_loaded(self) -> None:
        """A layer loaded from a config that names a vocabulary size but holds no vocabulary
        (Keras 3 keeps an adapted one in the .keras assets) refuses to run without it."""
        if self._tokens is None and self._stored_size is not None:
            raise RuntimeError(f"{self._owner()} has no vocabulary" + self._stored_note())

    def _call_host(self, inputs: Any) -> Any:
        self._check_loaded()
        if self.invert:
            idx = _int_array(inputs, self._owner())
            values = self._invert_host(idx.reshape(-1))
            if self._text:
                return np.asarray(values, dtype=object).reshape(idx.shape)
            return self._out(np.asarray(values, dtype=np.int64).reshape(idx.shape), "int64")
        return self._encode_indices(self._lookup_host(self._tokens_of(inputs)))

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        if self.output_mode == "int":
            return shape
        depth = self._depth()
        if self.output_mode == "one_hot" and not (len(shape) > 1 and shape[-1] == 1):
            return shape + (depth,)
        return shape[:-1] + (depth,)

    def compute_output_dtype(self, input_dtypes: list[str]) -> str:
        return "int64" if self.output_mode == "int" else self.dtype

    # -- config ----------------------------------------------------------------------------------
    def _vocabulary_config(self) -> tuple[Any, Any]:
        """(vocabulary, idf_weights) for the config: the ones given, else the learned ones."""
        if self.input_vocabulary is not None or self._tokens is None:
            return self.input_vocabulary, self.input_idf_weights
        idf = self._idf_config if self._idf_config is not None else self.input_idf_weights
        return list(self._tokens), idf

    def _lookup_config(self) -> dict[str, Any]:
        vocabulary, idf = self._vocabulary_config()
        return {
            "invert": self.invert,
            "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices,
            "oov_token": self.oov_token,
            "mask_token": self.mask_token,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "idf_weights": idf,
            "vocabulary": vocabulary,
            "vocabulary_size": self.vocabulary_size() if self._tokens is not None else None,
        }


class _Counts:
    """Token and document counts gathered by ``adapt``."""

    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()
        self.documents: collections.Counter = collections.Counter()
        self.n_documents = 0

    def add(self, rows: list[list], documents: bool) -> None:
        for row in rows:
            self.counts.update(row)
            if documents:
                self.documents.update(set(row))
        self.n_documents += len(rows)


def _listify(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [v.item() if isinstance(v, np.generic) else v for v in value]
    B = _backend.current()
    if B.is_native(value):
        return np.asarray(B.to_numpy(value)).tolist()
    return value


class StringLookup(_IndexLookup):
    """Strings to integer indices through a vocabulary (given, or learned by ``adapt``), or
    with ``invert=True`` indices back to strings; ``output_mode`` ``one_hot``,
    ``multi_hot``, ``count`` or ``tf_idf`` encodes the indices. Works on the host: give it
    lists or NumPy arrays of ``str``/``bytes``; the output is a backend array (a NumPy array
    of ``str`` when inverting)."""

    _text = True

    def __init__(
        self,
        max_tokens: Any = None,
        num_oov_indices: Any = 1,
        mask_token: Any = None,
        oov_token: Any = "[UNK]",
        vocabulary: Any = None,
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        pad_to_max_tokens: bool = False,
        sparse: bool = False,
        encoding: str = "utf-8",
        name: str | None = None,
        salt: Any = None,
        oov_method: Any = "floormod",
        **kwargs: Any,
    ):
        if not isinstance(encoding, str):
            raise ValueError(f"StringLookup: encoding must be a codec name, got {encoding!r}")
        "".encode(encoding)  # an unknown codec raises LookupError naming it
        self.encoding = encoding
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(
                f"StringLookup: oov_method must be 'floormod' or 'farmhash', got {oov_method!r}"
            )
        self.oov_method = oov_method  # strings are always hashed, as in Keras
        super().__init__(
            max_tokens,
            num_oov_indices,
            mask_token,
            oov_token,
            vocabulary=vocabulary,
            idf_weights=idf_weights,
            invert=invert,
            output_mode=output_mode,
            sparse=sparse,
            pad_to_max_tokens=pad_to_max_tokens,
            salt=salt,
            name=name,
            **kwargs,
        )

    def _check_symbolic(self, kwargs: dict) -> None:
        raise TypeError(
            f"{self._owner()} works on strings on the host and cannot be part of a model: a "
            "model's tensors hold numbers only. Apply the layer to your data first (to the "
            "arrays, or inside the generator that feeds fit) and give the model its output"
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            **self._lookup_config(),
            "oov_method": self.oov_method,
            "salt": self.salt,
            "encoding": self.encoding,
        }


class IntegerLookup(_IndexLookup):
    """Integers to indices through a vocabulary (given, or learned by ``adapt``), or with
    ``invert=True`` indices back to integers; ``output_mode`` ``one_hot``, ``multi_hot``,
    ``count`` or ``tf_idf`` encodes the indices. Runs on data, and inside a model (through
    ops; there an unknown value with ``num_oov_indices=0`` gives -1 instead of an error)."""

    _text = False

    def __init__(
        self,
        max_tokens: Any = None,
        num_oov_indices: Any = 1,
        mask_token: Any = None,
        oov_token: Any = -1,
        vocabulary: Any = None,
        vocabulary_dtype: str = "int64",
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        sparse: bool = False,
        pad_to_max_tokens: bool = False,
        oov_method: str = "floormod",
        salt: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        if vocabulary_dtype != "int64":
            raise ValueError(
                f"IntegerLookup: vocabulary_dtype must be 'int64' (the only one Keras "
                f"supports), got {vocabulary_dtype!r}"
            )
        self.vocabulary_dtype = "int64"
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(
                f"IntegerLookup: oov_method must be 'floormod' or 'farmhash', got {oov_method!r}"
            )
        self.oov_method = oov_method
        super().__init__(
            max_tokens,
            num_oov_indices,
            mask_token,
            oov_token,
            vocabulary=vocabulary,
            idf_weights=idf_weights,
            invert=invert,
            output_mode=output_mode,
            sparse=sparse,
            pad_to_max_tokens=pad_to_max_tokens,
            salt=salt,
            name=name,
            **kwargs,
        )

    def _check_symbolic(self, kwargs: dict) -> None:
        if self.oov_method == "farmhash" and self.num_oov_indices > 1 and not self.invert:
            raise NotImplementedError(
                f"{self._owner()}: oov_method='farmhash' hashes on the host and cannot run "
                "inside a model in polykeras; apply the layer to the data first, or use "
                "oov_method='floormod'"
            )
        super()._check_symbolic(kwargs)

    def check_input(self, input_shape: Any) -> None:
        if isinstance(input_shape, list):
            raise ValueError(  # noqa: TRY004
                f"{self._owner()} takes one input, got {len(input_shape)}"
            )
        if self.output_mode in ("multi_hot", "count", "tf_idf") and len(input_shape) > 2:
            raise ValueError(
                f"{self._owner()}: output_mode={self.output_mode!r} takes inputs of rank 1 "
                f"or 2 (as Keras), got shape {tuple(input_shape)}"
            )

    def call(self, inputs: Any) -> Any:
        """The lookup through ops (inside a model)."""
        self._check_loaded()
        x = ops.cast(inputs, "int64")
        size = self.vocabulary_size()
        if self.invert:
            vocab = self.get_vocabulary()
            table = ops.asarray(np.asarray(vocab if vocab else [self.oov_token], dtype=np.int64))
            inside = ops.logical_and(ops.greater_equal(x, 0), ops.less(x, size))
            got = ops.take(table, ops.clip(x, 0, max(size - 1, 0)))
            return ops.where(inside, got, ops.cast(ops.full_like(x, self.oov_token), "int64"))
        start = self._token_start()
        n_oov = self.num_oov_indices
        if n_oov == 0:
            default = ops.cast(ops.full_like(x, -1), "int64")
        elif n_oov == 1:
            default = ops.cast(ops.full_like(x, self._oov_start()), "int64")
        else:
            default = ops.cast(ops.add(ops.mod(x, n_oov), self._oov_start()), "int64")
        if self._tokens:
            keys = ops.asarray(np.asarray(self._tokens, dtype=np.int64))
            hit = ops.cast(ops.equal(ops.expand_dims(x, -1), keys), "int64")
            where = ops.asarray(np.arange(start, size, dtype=np.int64))
            found = ops.greater(ops.max(hit, axis=-1), 0)
            idx = ops.where(found, ops.sum(ops.multiply(hit, where), axis=-1), default)
        else:
            idx = default
        if self.mask_token is not None:
            mask_value = 0 if self.output_mode == "int" else -1  # -1: counts for nothing
            idx = ops.where(
                ops.equal(x, self.mask_token), ops.cast(ops.full_like(x, mask_value), "int64"), idx
            )
        if self.output_mode == "int":
            return idx
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        dtype = self.dtype
        out = _encode_symbolic(idx, mode, self._depth(), dtype)
        if self.output_mode == "tf_idf":
            out = ops.multiply(out, ops.asarray(self._idf_weights()))
        return out

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), **self._lookup_config()}
        config["vocabulary_dtype"] = self.vocabulary_dtype
        config["oov_method"] = self.oov_method
        config["salt"] = self.salt
        return config


# -- TextVectorization ---------------------------------------------------------------------------

#: what ``strip_punctuation`` removes: ASCII punctuation, as Keras' regular expression
_PUNCTUATION = re.compile(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']")
#: ``whitespace`` splits on runs of ASCII whitespace, as TensorFlow's string split
_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
_ASCII_UPPER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _lower_ascii(text: str) -> str:
    """TensorFlow's ``strings.lower`` without an encoding: ASCII letters only."""
    return text.translate(_ASCII_UPPER)


def _ngrams(tokens: list[str], widths: tuple[int, ...]) -> list[str]:
    """All n-grams of each width in turn (words joined by a space); a sequence shorter than
    a width has none of that width."""
    out: list[str] = []
    for n in widths:
        out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return out


class TextVectorization(_HostLayer):
    """Text to integer sequences (``output_mode="int"``) or to vectors over a vocabulary
    (``multi_hot``, ``count``, ``tf_idf``): each string is standardized, split into tokens,
    optionally grouped into n-grams, and looked up (index 0: padding, 1: OOV). Works on the
    host: give it a list or 1-D NumPy array of strings (or a column of shape (n, 1)); the
    output is a backend array. ``adapt`` learns the vocabulary.

    A callable ``standardize`` gets a NumPy array of ``str`` and returns one of the same
    shape; a callable ``split`` gets the 1-D array of standardized documents and returns one
    sequence of tokens per document."""

    def __init__(
        self,
        max_tokens: Any = None,
        standardize: Any = "lower_and_strip_punctuation",
        split: Any = "whitespace",
        ngrams: Any = None,
        output_mode: str = "int",
        output_sequence_length: Any = None,
        pad_to_max_tokens: bool = False,
        vocabulary: Any = None,
        idf_weights: Any = None,
        sparse: bool = False,
        ragged: bool = False,
        encoding: str = "utf-8",
        name: str | None = None,
        vocabulary_size: Any = None,
        has_input_vocabulary: Any = None,
        **kwargs: Any,
    ):
        _no_activity_regularizer(kwargs, "TextVectorization")
        super().__init__(name=name, **kwargs)
        owner = f"TextVectorization {self.name}"
        _no_sparse(sparse, owner)
        _no_sparse(ragged, owner, "ragged")
        self.sparse = False
        self.ragged = False
        if not (standardize is None or callable(standardize)) and standardize not in (
            "lower_and_strip_punctuation",
            "lower",
            "strip_punctuation",
        ):
            raise ValueError(
                f"{owner}: standardize={standardize!r} is not valid; expected "
                "'lower_and_strip_punctuation', 'lower', 'strip_punctuation', None or a callable"
            )
        if not (split is None or callable(split)) and split not in ("whitespace", "character"):
            raise ValueError(
                f"{owner}: split={split!r} is not valid; expected 'whitespace', 'character', "
                "None or a callable"
            )
        self.standardize = standardize
        self.split = split
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if ngrams is None:
            self._widths: tuple[int, ...] | None = None
        elif isinstance(ngrams, int) and not isinstance(ngrams, bool) and ngrams >= 1:
            self._widths = tuple(range(1, ngrams + 1))
        elif (
            isinstance(ngrams, tuple)
            and ngrams
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in ngrams)
        ):
            self._widths = ngrams
        else:
            raise ValueError(
                f"{owner}: ngrams must be None, a positive integer or a tuple of positive "
                f"integers, got {ngrams!r}"
            )
        self.ngrams = ngrams
        self.output_mode = _check_mode(output_mode, _LOOKUP_MODES, owner)
        if output_sequence_length is not None:
            if self.output_mode != "int":
                raise ValueError(
                    f"{owner}: output_sequence_length is used only with output_mode='int', "
                    f"not {self.output_mode!r}"
                )
            output_sequence_length = as_int(
                output_sequence_length, "output_sequence_length", owner, minimum=1
            )
        self.output_sequence_length = output_sequence_length
        self.encoding = encoding
        self._lookup = StringLookup(
            max_tokens=max_tokens,
            vocabulary=vocabulary,
            idf_weights=idf_weights,
            pad_to_max_tokens=pad_to_max_tokens,
            mask_token="",
            output_mode=self.output_mode,
            encoding=encoding,
            vocabulary_size=vocabulary_size,
            has_input_vocabulary=has_input_vocabulary,
            name=f"{self.name}_lookup",
            dtype=self.dtype,
        )

    @property
    def max_tokens(self) -> Any:
        return self._lookup.max_tokens

    @property
    def pad_to_max_tokens(self) -> bool:
        return self._lookup.pad_to_max_tokens

    def _check_symbolic(self, kwargs: dict) -> None:
        raise TypeError(
            f"{self._owner()} works on strings on the host and cannot be part of a model: a "
            "model's tensors hold numbers only. Apply the layer to your data first (to the "
            "arrays, or inside the generator that feeds fit) and give the model its output"
        )

    # -- text to tokens --------------------------------------------------------------------------
    def _standardized(self, text: np.ndarray) -> np.ndarray:
        if callable(self.standardize):
            out = np.asarray(self.standardize(text.astype(str)))
            if out.shape != text.shape:
                raise ValueError(
                    f"{self._owner()}: the standardize callable must return an array of the "
                    f"shape it was given {text.shape}, got {out.shape}"
                )
            return _text_array(out, self._owner(), self.encoding)
        if self.standardize is None:
            return text
        lower = self.standardize in ("lower", "lower_and_strip_punctuation")
        strip = self.standardize in ("strip_punctuation", "lower_and_strip_punctuation")
        flat = text.reshape(-1).copy()
        for i, s in enumerate(flat):
            if lower:
                s = _lower_ascii(s)
            if strip:
                s = _PUNCTUATION.sub("", s)
            flat[i] = s
        return flat.reshape(text.shape)

    def _documents(self, data: Any) -> tuple[Any, bool]:
        """(tokens, ragged): one token list per document when splitting, else the
        standardized array itself."""
        text = self._standardized(_text_array(data, self._owner(), self.encoding))
        if self.split is None:
            if self._widths is not None:
                grid = text.reshape(-1, text.shape[-1]) if text.ndim else text.reshape(1, 1)
                return [_ngrams(list(r), self._widths) for r in grid], True
            return text, False
        if text.ndim > 1:
            if text.shape[-1] != 1:
                raise ValueError(
                    f"{self._owner()}: to split strings the input must be 1-D or have a last "
                    f"axis of size 1, got shape {text.shape}"
                )
            text = text.reshape(text.shape[:-1])
        scalar = text.ndim == 0
        docs = text.reshape(-1)
        rows: list[list[str]]
        if self.split == "whitespace":
            rows = [[t for t in _WHITESPACE.split(d) if t] for d in docs]
        elif self.split == "character":
            rows = [list(d) for d in docs]
        else:
            got = self.split(docs.astype(str))
            rows = [[str(t) for t in _to_host(r).reshape(-1).tolist()] for r in got]
            if len(rows) != len(docs):
                raise ValueError(
                    f"{self._owner()}: the split callable must return one token sequence "
                    f"per document ({len(docs)}), got {len(rows)}"
                )
        if self._widths is not None:
            rows = [_ngrams(r, self._widths) for r in rows]
        if scalar:
            return rows[:1], True
        return rows, True

    # -- adapt and vocabulary --------------------------------------------------------------------
    def adapt(self, data: Any, batch_size: Any = None, steps: Any = None) -> None:
        """Learn the vocabulary from ``data`` (a list or NumPy array of strings, or an
        iterable of such batches; ``steps``: at most that many batches): tokens by
        descending count, ties by descending token, cut to ``max_tokens``."""
        owner = self._owner()
        if batch_size is not None:
            raise NotImplementedError(
                f"{owner}: adapt(batch_size=...) is not implemented in polykeras; give the "
                "data whole or as an iterable of batches"
            )
        lookup = self._lookup
        if lookup._has_input_vocabulary:
            raise ValueError(f"{owner}: cannot adapt a layer given a fixed vocabulary")
        if steps is not None:
            steps = as_int(steps, "steps", owner, minimum=1)
        B = _backend.current()
        if isinstance(data, (list, tuple, np.ndarray, str, bytes)) or B.is_native(data):
            batches: Any = [data]
        elif hasattr(data, "__iter__"):
            batches = data
        else:
            raise TypeError(
                f"{owner}: adapt() takes a list, a NumPy array or an iterable of batches of "
                f"strings, got {type(data).__name__}"
            )
        state = _Counts()
        for i, batch in enumerate(batches):
            if steps is not None and i >= steps:
                break
            docs, ragged = self._documents(batch)
            if ragged:
                rows = docs
            else:
                arr = np.asarray(docs, dtype=object)
                rows = [
                    r.reshape(-1).tolist() for r in (arr.reshape(-1, 1) if arr.ndim <= 1 else arr)
                ]
            state.add(rows, self.output_mode == "tf_idf")
        lookup._finish_adapt(state)

    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        """The vocabulary in index order ('' for padding and '[UNK]' first, unless
        ``include_special_tokens=False``)."""
        return self._lookup.get_vocabulary(include_special_tokens)

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Set the vocabulary (a list, a 1-D array or a file path) and, for ``tf_idf``, its
        IDF weights."""
        self._lookup.set_vocabulary(vocabulary, idf_weights)

    def vocabulary_size(self) -> int:
        """The number of indices, padding and OOV included."""
        return self._lookup.vocabulary_size()

    # -- calling ---------------------------------------------------------------------------------
    def _call_host(self, inputs: Any) -> Any:
        docs, ragged = self._documents(inputs)
        lookup = self._lookup
        lookup._check_loaded()
        single = ragged and _text_array(inputs, self._owner(), self.encoding).ndim == 0
        if not ragged:
            idx = lookup._lookup_host(docs)
            if self.output_mode != "int":
                return lookup._encode_indices(idx)
            if self.output_sequence_length is not None and idx.ndim:
                idx = idx[..., : self.output_sequence_length]
                short = self.output_sequence_length - idx.shape[-1]
                idx = np.pad(idx, [(0, 0)] * (idx.ndim - 1) + [(0, short)])
            return self._out(idx, "int64")
        rows = [lookup._lookup_host(np.asarray(r, dtype=object)) for r in docs]
        if self.output_mode == "int":
            width = self.output_sequence_length
            if width is None:
                width = max((len(r) for r in rows), default=0)
            out = np.zeros((len(rows), width), dtype=np.int64)
            for i, r in enumerate(rows):
                r = r[:width]
                out[i, : len(r)] = r
            return self._out(out[0] if single else out, "int64")
        depth = lookup._depth()
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        if mode == "one_hot":
            raise ValueError(
                f"{self._owner()}: output_mode='one_hot' cannot encode split text (each "
                "document has many tokens); use multi_hot or count, or split=None"
            )
        enc = _encode_ragged(rows, mode, depth).astype(self.dtype)
        if self.output_mode == "tf_idf":
            enc = enc * lookup._idf_weights()
        return self._out(enc, self.dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        if self.output_mode == "int":
            return (shape[0] if shape else None, self.output_sequence_length)
        if self.split is None:
            shape = shape + (1,) if len(shape) <= 1 else shape
        else:
            shape = shape + (None,)
        return self._lookup.compute_output_shape(shape)

    # -- config ----------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        vocabulary, idf = self._lookup._vocabulary_config()
        has_vocab = self._lookup._tokens is not None
        return {
            **super().get_config(),
            "max_tokens": self.max_tokens,
            "standardize": self.standardize,
            "split": self.split,
            "ngrams": self.ngrams,
            "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "sparse": self.sparse,
            "ragged": self.ragged,
            "vocabulary": vocabulary,
            "idf_weights": idf,
            "encoding": self.encoding,
            "vocabulary_size": self.vocabulary_size() if has_vocab else None,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        config = dict(config)
        for key in ("standardize", "split"):
            value = config.get(key)
            if isinstance(value, dict):
                raise NotImplementedError(
                    f"TextVectorization: a serialized {key} function ({value.get('config')!r:.60}) "
                    "cannot be loaded by polykeras; pass the callable again with "
                    f"from_config({{..., '{key}': my_function}})"
                )
        if isinstance(config.get("ngrams"), list):
            config["ngrams"] = tuple(config["ngrams"])
        return cls(**config)


# -- Hashing -------------------------------------------------------------------------------------


class Hashing(_HostLayer):
    """Strings or integers hashed into ``num_bins`` bins with TensorFlow's FarmHash
    Fingerprint64 (so the bins are Keras' own); integers are hashed as their decimal text,
    floats are truncated to integers first. With ``mask_value``, that value goes to bin 0
    and the others to bins 1 to ``num_bins - 1``. ``output_mode`` ``one_hot``,
    ``multi_hot`` or ``count`` encodes the bins. Works on the host, on data."""

    def __init__(
        self,
        num_bins: Any,
        mask_value: Any = None,
        salt: Any = None,
        output_mode: str = "int",
        sparse: bool = False,
        **kwargs: Any,
    ):
        _no_activity_regularizer(kwargs, "Hashing")
        dtype = kwargs.pop("dtype", None)
        if isinstance(dtype, dict):  # a Keras 3 dtype policy
            inner = dtype.get("config")
            dtype = inner.get("name") if isinstance(inner, dict) else dtype
        mode = _check_mode(output_mode, ("int", "one_hot", "multi_hot", "count"), "Hashing")
        int_dtype = None
        if mode == "int":
            int_dtype = "int64" if dtype is None else dtype
            if int_dtype not in ("int32", "int64"):
                raise ValueError(
                    f"Hashing: with output_mode='int' the dtype must be 'int32' or 'int64', "
                    f"got {dtype!r}"
                )
            dtype = None
        super().__init__(dtype=dtype, **kwargs)
        owner = f"Hashing {self.name}"
        self.output_mode = mode
        if int_dtype is not None:
            self.dtype = int_dtype
        self.num_bins = as_int(num_bins, "num_bins", owner, minimum=1)
        self.salt = _check_salt(salt, owner)  # SipHash-2-4 keyed by it, else FarmHash
        _no_sparse(sparse, owner)
        self.sparse = False
        if mask_value is not None and not isinstance(mask_value, (str, bytes, int, np.integer)):
            raise ValueError(f"{owner}: mask_value must be a string, an integer or None")
        self.mask_value = mask_value.decode() if isinstance(mask_value, bytes) else mask_value

    def _check_symbolic(self, kwargs: dict) -> None:
        raise TypeError(
            f"{self._owner()} hashes on the host and cannot be part of a model in polykeras "
            "(as in Keras 3 outside TensorFlow). Apply the layer to your data first and give "
            "the model its output"
        )

    def _values(self, inputs: Any) -> np.ndarray:
        """The inputs as an object array of ``str`` or of Python ints."""
        if isinstance(inputs, (str, bytes)):
            return _text_array(inputs, self._owner(), "utf-8")
        arr = _to_host(inputs)
        if arr.dtype.kind in "USO":
            return _text_array(arr, self._owner(), "utf-8")
        if arr.dtype.kind == "f":
            arr = arr.astype(np.int64)  # truncated, as Keras casts floats
        if arr.dtype.kind not in "iub":
            raise TypeError(
                f"{self._owner()} takes strings or integers, got an array of dtype {arr.dtype}"
            )
        return arr.astype(np.int64).astype(object)

    def _call_host(self, inputs: Any) -> Any:
        values = self._values(inputs)
        bins = self.num_bins
        masked = self.mask_value is not None and bins > 1
        if masked:
            bins -= 1
        flat = values.reshape(-1).tolist()
        out = np.empty(len(flat), dtype=np.int64)
        for i, v in enumerate(flat):
            if masked and v == self.mask_value:
                out[i] = 0
            else:
                out[i] = hash_bucket(v, bins, self.salt) + (1 if masked else 0)
        idx = out.reshape(values.shape)
        if self.output_mode == "int":
            return self._out(idx, self.dtype)
        return self._out(
            _encode_host(idx, self.output_mode, self.num_bins, self._owner()), self.dtype
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        if self.output_mode == "int":
            return shape
        if not shape:
            return (self.num_bins,)
        return shape[:-1] + (self.num_bins,)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "salt": self.salt,
            "mask_value": self.mask_value,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }


__all__ = [
    "CategoryEncoding",
    "Hashing",
    "IntegerLookup",
    "StringLookup",
    "TextVectorization",
    "fingerprint64",
]
