"""IMDB movie reviews: 25,000 training and 25,000 test reviews labelled by sentiment, each
a list of word indices (words numbered by how often they occur)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..utils_data import get_file
from . import _sequences as seq
from ._readers import load_npz

ORIGIN_FOLDER = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FILE_HASH = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
WORD_INDEX_HASH = "bfafd718b763782e994055a2d397834f"


def load_data(
    path: Any = "imdb.npz",
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
    **kwargs: Any,
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """``(x_train, y_train), (x_test, y_test)``, with Keras 2's arguments and rules:

    - each part is shuffled with ``np.random.RandomState(seed)`` (train first, then test);
    - word ``w`` becomes ``w + index_from``, and ``start_char`` opens each review;
    - with ``maxlen``, reviews of ``maxlen`` words or more are dropped;
    - words outside ``[skip_top, num_words)`` become ``oov_char``, or are removed when
      ``oov_char`` is None.

    ``x_*`` are 1-D object arrays of lists of ints, ``y_*`` int arrays of 0/1.  Keras 1's
    ``nb_words`` is read as ``num_words``."""
    owner = "imdb.load_data"
    num_words = seq.legacy_kwargs(owner, num_words, kwargs)
    num_words, skip_top, maxlen, seed, start_char, oov_char, index_from = seq.check_arguments(
        owner, num_words, skip_top, maxlen, seed, start_char, oov_char, index_from
    )
    path = get_file(path, origin=ORIGIN_FOLDER + "imdb.npz", file_hash=FILE_HASH)
    f = load_npz(path, ("x_train", "y_train", "x_test", "y_test"))
    rng = np.random.RandomState(seed)
    parts = []
    for x, y in ((f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])):
        order = np.arange(len(x))
        rng.shuffle(order)
        flat, lengths = seq.flatten(x[order])
        flat, lengths = seq.shift(flat, lengths, start_char, index_from)
        labels = y[order]
        if maxlen:
            keep = lengths < maxlen
            flat, lengths = seq.keep_sequences(flat, lengths, keep)
            labels = labels[keep]
            if not len(lengths):
                raise ValueError(
                    f"{owner}: after filtering for sequences shorter than maxlen={maxlen}, no "
                    "sequence was kept. Increase maxlen."
                )
        parts.append((flat, lengths, labels))
    n_train = len(parts[0][1])
    flat = np.concatenate([parts[0][0], parts[1][0]])
    lengths = np.concatenate([parts[0][1], parts[1][1]])
    flat, lengths = seq.limit_words(flat, lengths, num_words, skip_top, oov_char)
    xs = seq.to_object_array(flat, lengths)
    labels = np.concatenate([parts[0][2], parts[1][2]])
    return (xs[:n_train], labels[:n_train]), (xs[n_train:], labels[n_train:])


def get_word_index(path: Any = "imdb_word_index.json") -> dict[str, int]:
    """The dict from words to their index in the data (before ``index_from`` is added)."""
    path = get_file(path, origin=ORIGIN_FOLDER + "imdb_word_index.json", file_hash=WORD_INDEX_HASH)
    with open(path, encoding="utf-8") as f:
        index: dict[str, int] = json.load(f)
    return index
