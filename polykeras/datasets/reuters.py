"""Reuters newswires: 11,228 newswires in 46 topics, each a list of word indices."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..utils_data import get_file
from . import _sequences as seq
from ._readers import load_npz

ORIGIN_FOLDER = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FILE_HASH = "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
WORD_INDEX_HASH = "4d44cc38712099c9e383dc6e5f11a921"

#: the 46 topics, in label order
LABEL_NAMES = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing",
    "money-supply", "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass",
    "crude", "nat-gas", "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum",
    "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail", "ipi",
    "iron-steel", "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem",
    "dlr", "gas", "silver", "wpi", "hog", "lead",
)  # fmt: skip


def load_data(
    path: Any = "reuters.npz",
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    test_split: float = 0.2,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
    **kwargs: Any,
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """``(x_train, y_train), (x_test, y_test)``: the newswires are shuffled with
    ``np.random.RandomState(seed)``, processed by IMDB's rules (see
    :func:`polykeras.datasets.imdb.load_data`) and split, the last ``test_split`` of them
    being the test part."""
    owner = "reuters.load_data"
    num_words = seq.legacy_kwargs(owner, num_words, kwargs)
    num_words, skip_top, maxlen, seed, start_char, oov_char, index_from = seq.check_arguments(
        owner, num_words, skip_top, maxlen, seed, start_char, oov_char, index_from
    )
    test_split = seq.check_split(owner, test_split)
    path = get_file(path, origin=ORIGIN_FOLDER + "reuters.npz", file_hash=FILE_HASH)
    f = load_npz(path, ("x", "y"))
    xs, labels = f["x"], f["y"]
    order = np.arange(len(xs))
    np.random.RandomState(seed).shuffle(order)
    flat, lengths = seq.flatten(xs[order])
    labels = labels[order]
    flat, lengths = seq.shift(flat, lengths, start_char, index_from)
    if maxlen:
        keep = lengths < maxlen
        flat, lengths = seq.keep_sequences(flat, lengths, keep)
        labels = labels[keep]
    flat, lengths = seq.limit_words(flat, lengths, num_words, skip_top, oov_char)
    xs = seq.to_object_array(flat, lengths)
    idx = int(len(xs) * (1 - test_split))
    return (xs[:idx], np.array(labels[:idx])), (xs[idx:], np.array(labels[idx:]))


def get_word_index(path: Any = "reuters_word_index.json") -> dict[str, int]:
    """The dict from words to their index in the data (before ``index_from`` is added)."""
    path = get_file(
        path, origin=ORIGIN_FOLDER + "reuters_word_index.json", file_hash=WORD_INDEX_HASH
    )
    with open(path, encoding="utf-8") as f:
        index: dict[str, int] = json.load(f)
    return index


def get_label_names() -> tuple[str, ...]:
    """The topic names; ``get_label_names()[y]`` names label ``y``."""
    return LABEL_NAMES
