"""Weights stored by older Keras versions, converted to today's layouts on loading.

What Keras 2's loader did for Keras 1 files (the ``keras_version`` root attribute starts
with "1", or is missing), written anew here:

- LSTM stored as 12 arrays ``W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o, b_o``
  (gates i, c, f, o): joined into kernel, recurrent_kernel, bias with gates i, f, c, o.
- GRU stored as 9 arrays ``W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h``: joined into
  kernel, recurrent_kernel, bias (gates z, r, h; a ``reset_after=False`` GRU).
- Conv2D with ``dim_ordering='th'`` (channels_first) stored its kernel as
  (filters, in, rows, cols): transposed to (rows, cols, in, filters).
- Conv1D stored its kernel as (length, 1, in, filters) (or (filters, in, length, 1) in
  Keras 1.1): reshaped to (length, in, filters).
- TimeDistributed and nested models: converted layer by layer.
- Bidirectional stored its forward layer's arrays, then its backward layer's (a Keras 1
  LSTM inside: 12 + 12): the first half is converted for the forward layer, the second
  for the backward one, as Keras 2 split them.

And, for a file of any version written with the Theano backend (the ``backend`` root
attribute): Theano convolved where the other backends correlate, so convolution kernels
are flipped along their spatial axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def legacy_weights(layer: Any) -> list:
    """A layer's variables in the order Keras' HDF5 files hold them: trainable first."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _kind(layer: Any) -> str:
    return type(layer).__name__


def _is_model(layer: Any) -> bool:
    from ..engine.functional import Functional

    return isinstance(layer, Functional)


def keras1_count(layer: Any) -> int:
    """How many arrays a Keras 1 file holds for ``layer``."""
    n = len(legacy_weights(layer))
    kind = _kind(layer)
    if kind == "LSTM" and n == 3:
        return 12
    if kind == "GRU" and n == 3 and not getattr(layer, "reset_after", False):
        return 9
    if kind == "TimeDistributed":
        return keras1_count(layer.layer)
    if kind == "Bidirectional":
        return keras1_count(layer.forward_layer) + keras1_count(layer.backward_layer)
    if _is_model(layer):
        return sum(keras1_count(sub) for sub in layer.layers if legacy_weights(sub))
    return n


def accepted_counts(layer: Any, keras_major: int) -> set[int]:
    counts = {len(legacy_weights(layer))}
    if keras_major == 1:
        counts.add(keras1_count(layer))
    return counts


def _join(arrays: list, order: list[int]) -> np.ndarray:
    return np.concatenate([arrays[i] for i in order], axis=-1)


def _flip_spatial(kernel: np.ndarray) -> np.ndarray:
    """Flip every axis but the last two (in, out): Theano's convolution <-> correlation."""
    index = tuple([slice(None, None, -1)] * (kernel.ndim - 2) + [slice(None), slice(None)])
    return np.ascontiguousarray(kernel[index])


def convert(layer: Any, arrays: list, keras_major: int, backend: str | None) -> list:
    """``arrays`` as read from a file, in the layout ``layer`` uses now."""
    arrays = list(arrays)
    if keras_major != 1 and backend != "theano":
        return arrays
    kind = _kind(layer)
    if kind == "TimeDistributed":
        return convert(layer.layer, arrays, keras_major, backend)
    if kind == "Bidirectional" and len(arrays) % 2 == 0:
        half = len(arrays) // 2
        return convert(layer.forward_layer, arrays[:half], keras_major, backend) + convert(
            layer.backward_layer, arrays[half:], keras_major, backend
        )
    if _is_model(layer):
        return _convert_model(layer, arrays, keras_major, backend)
    if keras_major == 1:
        if kind == "LSTM" and len(arrays) == 12:
            arrays = [
                _join(arrays, [0, 6, 3, 9]),
                _join(arrays, [1, 7, 4, 10]),
                _join(arrays, [2, 8, 5, 11]),
            ]
        elif kind == "GRU" and len(arrays) == 9:
            arrays = [_join(arrays, [0, 3, 6]), _join(arrays, [1, 4, 7]), _join(arrays, [2, 5, 8])]
        elif (
            kind == "Conv2D"
            and arrays
            and np.ndim(arrays[0]) == 4
            and getattr(layer, "data_format", None) == "channels_first"
        ):
            arrays[0] = np.transpose(arrays[0], (2, 3, 1, 0))
        elif kind == "Conv1D" and arrays and np.ndim(arrays[0]) == 4:
            k = arrays[0]
            length, filters = layer.kernel_size[0], layer.filters
            if k.shape[:2] != (length, 1) or k.shape[3] != filters:
                k = np.transpose(k, (2, 3, 1, 0))  # Keras 1.1: (filters, in, length, 1)
            arrays[0] = k[:, 0, :, :]
    if backend == "theano" and kind in ("Conv1D", "Conv2D") and arrays and np.ndim(arrays[0]) >= 3:
        arrays[0] = _flip_spatial(np.asarray(arrays[0]))
    return arrays


def _convert_model(model: Any, arrays: list, keras_major: int, backend: str | None) -> list:
    subs = [sub for sub in model.layers if legacy_weights(sub)]
    if keras_major == 1 and len(arrays) == sum(keras1_count(s) for s in subs):
        counts = [keras1_count(s) for s in subs]
    elif (
        len(arrays) == sum(len(legacy_weights(s)) for s in subs)
        and all(s.trainable for s in subs)
        and model.trainable
        and not any(s.non_trainable_weights for s in subs)
    ):
        counts = [len(legacy_weights(s)) for s in subs]
    else:
        return arrays  # leave as is; the shape check will report any mismatch
    out: list = []
    start = 0
    for sub, n in zip(subs, counts):
        out.extend(convert(sub, arrays[start : start + n], keras_major, backend))
        start += n
    return out
