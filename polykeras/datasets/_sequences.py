"""The word-index processing IMDB and Reuters share (Keras 2's rules), on flat NumPy
arrays: one pass over all words at once rather than a Python loop per word."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np

from ..utils import as_float, as_int


def legacy_kwargs(owner: str, num_words: Any, kwargs: dict[str, Any]) -> Any:
    """Keras 1's ``nb_words`` is ``num_words``; any other extra keyword is refused."""
    if "nb_words" in kwargs:
        warnings.warn(
            f"{owner}: the `nb_words` argument has been renamed `num_words`", stacklevel=3
        )
        num_words = kwargs.pop("nb_words")
    if kwargs:
        raise TypeError(f"{owner}: unrecognized keyword arguments: {sorted(kwargs)}")
    return num_words


def check_arguments(
    owner: str,
    num_words: Any,
    skip_top: Any,
    maxlen: Any,
    seed: Any,
    start_char: Any,
    oov_char: Any,
    index_from: Any,
) -> tuple[int | None, int, int | None, int, int | None, int | None, int]:
    return (
        as_int(num_words, "num_words", owner, minimum=0) if num_words else None,
        as_int(skip_top, "skip_top", owner, minimum=0),
        as_int(maxlen, "maxlen", owner, minimum=0) if maxlen else None,
        as_int(seed, "seed", owner, minimum=0, allow_float=False),
        None if start_char is None else as_int(start_char, "start_char", owner, minimum=0),
        None if oov_char is None else as_int(oov_char, "oov_char", owner, minimum=0),
        as_int(index_from, "index_from", owner, minimum=0),
    )


def check_split(owner: str, test_split: Any) -> float:
    return as_float(test_split, "test_split", owner, low=0.0, high=1.0, high_open=True)


def flatten(seqs: Any) -> tuple[np.ndarray, np.ndarray]:
    """All words of ``seqs`` (a sequence of lists) in one int64 array, and each one's
    length."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    flat = np.fromiter(
        itertools.chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum())
    )
    return flat, lengths


def shift(
    flat: np.ndarray, lengths: np.ndarray, start_char: int | None, index_from: int
) -> tuple[np.ndarray, np.ndarray]:
    """Add ``index_from`` to every word and put ``start_char`` before each sequence."""
    flat = flat + index_from
    if start_char is None:
        return flat, lengths
    new_lengths = lengths + 1
    starts = np.cumsum(new_lengths) - new_lengths
    out = np.empty(int(new_lengths.sum()), dtype=np.int64)
    is_start = np.zeros(out.shape, dtype=bool)
    is_start[starts] = True
    out[is_start] = start_char
    out[~is_start] = flat
    return out, new_lengths


def keep_sequences(
    flat: np.ndarray, lengths: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Only the sequences where ``keep`` is True."""
    segment = np.repeat(np.arange(len(lengths)), lengths)
    return flat[keep[segment]], lengths[keep]


def limit_words(
    flat: np.ndarray,
    lengths: np.ndarray,
    num_words: int | None,
    skip_top: int,
    oov_char: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Words outside ``[skip_top, num_words)`` become ``oov_char``, or are dropped when it
    is None.  Without ``num_words`` the bound is the largest index present (so, as in
    Keras, that one word is out of range too)."""
    if not num_words:
        num_words = int(flat.max()) if flat.size else 0
    inside = (flat >= skip_top) & (flat < num_words)
    if oov_char is not None:
        return np.where(inside, flat, oov_char), lengths
    segment = np.repeat(np.arange(len(lengths)), lengths)
    return flat[inside], np.bincount(segment[inside], minlength=len(lengths)).astype(np.int64)


def to_object_array(flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A 1-D object array of lists of Python ints, one list per sequence."""
    out = np.empty(len(lengths), dtype=object)
    for i, part in enumerate(np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []):
        out[i] = part.tolist()
    return out
