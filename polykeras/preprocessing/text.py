"""Keras 2's ``keras.preprocessing.text``: word splitting, hashing and the ``Tokenizer``.

Results match Keras 2 (the keras-preprocessing package): word indices start at 1 and are
ordered by count (most frequent first; ties keep the order of first occurrence), the
``oov_token`` (when given) takes index 1, ``num_words`` keeps indices below it, and
``tfidf`` scores a word seen ``c`` times in a text as
``(1 + log c) * log(1 + documents / (1 + documents containing it))``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
MODES = ("binary", "count", "tfidf", "freq")


def text_to_word_sequence(
    text: str, filters: str = DEFAULT_FILTERS, lower: bool = True, split: str = " "
) -> list[str]:
    """The words of ``text``: lower-cased, each filter character made a separator, split on
    ``split``, empty words dropped."""
    if not isinstance(text, str):
        raise TypeError(f"text_to_word_sequence: text must be a str, got {type(text).__name__}")
    if lower:
        text = text.lower()
    table: dict[str, str | int | None] = {c: split for c in filters}
    text = text.translate(str.maketrans(table))
    return [w for w in text.split(split) if w]


def hashing_trick(
    text: str,
    n: int,
    hash_function: Callable[[str], int] | str | None = None,
    filters: str = DEFAULT_FILTERS,
    lower: bool = True,
    split: str = " ",
) -> list[int]:
    """Each word of ``text`` as ``hash(word) % (n - 1) + 1`` (indices 1..n-1; 0 is never
    used). ``hash_function='md5'`` gives a hash stable across runs (Python's ``hash`` of
    a str changes between processes unless PYTHONHASHSEED is set)."""
    if hash_function is None:
        hash_function = hash
    elif hash_function == "md5":

        def hash_function(w: str) -> int:
            return int(hashlib.md5(w.encode()).hexdigest(), 16)

    if not callable(hash_function):
        raise ValueError(
            f"hashing_trick: hash_function must be None, 'md5' or a callable, got {hash_function!r}"
        )
    words = text_to_word_sequence(text, filters=filters, lower=lower, split=split)
    return [hash_function(w) % (n - 1) + 1 for w in words]


def one_hot(
    text: str, n: int, filters: str = DEFAULT_FILTERS, lower: bool = True, split: str = " "
) -> list[int]:
    """``hashing_trick`` with Python's ``hash``: word indices in 1..n-1 (not unique)."""
    return hashing_trick(text, n, hash_function=hash, filters=filters, lower=lower, split=split)


class Tokenizer:
    """Turns texts into sequences of word indices or into (samples, num_words) matrices."""

    def __init__(
        self,
        num_words: int | None = None,
        filters: str = DEFAULT_FILTERS,
        lower: bool = True,
        split: str = " ",
        char_level: bool = False,
        oov_token: str | None = None,
        document_count: int = 0,
        **kwargs: Any,
    ):
        if "nb_words" in kwargs:  # Keras 1
            num_words = kwargs.pop("nb_words")
        if kwargs:
            raise TypeError(
                f"Tokenizer: keyword argument(s) not understood: {', '.join(sorted(kwargs))}"
            )
        self.word_counts: OrderedDict[str, int] = OrderedDict()
        self.word_docs: defaultdict[str, int] = defaultdict(int)
        self.filters = filters
        self.split = split
        self.lower = lower
        self.num_words = num_words
        self.document_count = document_count
        self.char_level = char_level
        self.oov_token = oov_token
        self.index_docs: defaultdict[int, int] = defaultdict(int)
        self.word_index: dict[str, int] = {}
        self.index_word: dict[int, str] = {}

    def _words(self, text: Any) -> list[str]:
        if self.char_level or isinstance(text, list):
            if self.lower:
                text = [t.lower() for t in text] if isinstance(text, list) else text.lower()
            return list(text)
        if not isinstance(text, str):
            raise TypeError(
                f"Tokenizer: each text must be a str (or a list of words), got "
                f"{type(text).__name__} ({text!r:.60})"
            )
        return text_to_word_sequence(text, self.filters, self.lower, self.split)

    def fit_on_texts(self, texts: Iterable[Any]) -> None:
        """Count words and documents; (re)build ``word_index`` from all counts so far."""
        if isinstance(texts, str):
            raise TypeError("Tokenizer.fit_on_texts takes a list of texts, not one str")
        for text in texts:
            self.document_count += 1
            seq = self._words(text)
            for w in seq:
                self.word_counts[w] = self.word_counts.get(w, 0) + 1
            for w in set(seq):
                self.word_docs[w] += 1
        counts = sorted(self.word_counts.items(), key=lambda kv: kv[1], reverse=True)  # stable
        vocab = ([] if self.oov_token is None else [self.oov_token]) + [w for w, _ in counts]
        self.word_index = dict(zip(vocab, range(1, len(vocab) + 1)))
        self.index_word = {i: w for w, i in self.word_index.items()}
        self.index_docs = defaultdict(int)
        for w, c in self.word_docs.items():
            self.index_docs[self.word_index[w]] += c

    def fit_on_sequences(self, sequences: Iterable[Any]) -> None:
        """Count documents per index (what ``tfidf`` needs) from sequences of indices."""
        for seq in sequences:
            self.document_count += 1
            for i in set(seq):
                self.index_docs[i] += 1

    def texts_to_sequences(self, texts: Iterable[Any]) -> list[list[int]]:
        """Each text as its words' indices (unknown or >= num_words: the oov index, or
        dropped when there is no oov_token)."""
        return list(self.texts_to_sequences_generator(texts))

    def texts_to_sequences_generator(self, texts: Iterable[Any]) -> Iterator[list[int]]:
        if isinstance(texts, str):
            raise TypeError("Tokenizer.texts_to_sequences takes a list of texts, not one str")
        num_words = self.num_words
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        for text in texts:
            out = []
            for w in self._words(text):
                i = self.word_index.get(w)
                if i is not None and not (num_words and i >= num_words):
                    out.append(i)
                elif oov is not None:
                    out.append(oov)
            yield out

    def sequences_to_texts(self, sequences: Iterable[Any]) -> list[str]:
        return list(self.sequences_to_texts_generator(sequences))

    def sequences_to_texts_generator(self, sequences: Iterable[Any]) -> Iterator[str]:
        num_words = self.num_words
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        for seq in sequences:
            words = []
            for i in seq:
                word = self.index_word.get(i)
                if word is not None and not (num_words and i >= num_words):
                    words.append(word)
                elif oov is not None:
                    words.append(self.index_word[oov])
            yield " ".join(words)

    def texts_to_matrix(self, texts: Iterable[Any], mode: str = "binary") -> np.ndarray:
        return self.sequences_to_matrix(self.texts_to_sequences(texts), mode=mode)

    def sequences_to_matrix(self, sequences: Any, mode: str = "binary") -> np.ndarray:
        """A (len(sequences), num_words) float64 matrix: per text and index, ``binary``
        (present: 1), ``count``, ``freq`` (count / length of the text) or ``tfidf``."""
        if mode not in MODES:
            raise ValueError(f"Unknown vectorization mode: {mode!r} (expected one of {MODES})")
        if self.num_words:
            width = int(self.num_words)
        elif self.word_index:
            width = len(self.word_index) + 1
        else:
            raise ValueError(
                "Specify a dimension (`num_words` argument), or fit on some text data first."
            )
        if mode == "tfidf" and not self.document_count:
            raise ValueError("Fit the Tokenizer on some data before using tfidf mode.")
        seqs = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
        x = np.zeros((len(seqs), width))
        if not seqs:
            return x
        lengths = np.array([len(s) for s in seqs])
        rows = np.repeat(np.arange(len(seqs)), lengths)
        cols = np.concatenate(seqs) if rows.size else np.zeros(0, dtype=np.int64)
        keep = (cols < width) & (cols >= 0)
        counts = np.bincount(rows[keep] * width + cols[keep], minlength=x.size).reshape(x.shape)
        present = counts > 0
        if mode == "count":
            x[present] = counts[present]
        elif mode == "binary":
            x[present] = 1.0
        elif mode == "freq":
            x = counts / np.maximum(lengths, 1)[:, None]
        else:
            docs = np.zeros(width)
            for j, c in self.index_docs.items():
                if 0 <= j < width:
                    docs[j] = c
            idf = np.log(1 + self.document_count / (1 + docs))
            rr, cc = np.nonzero(present)
            x[rr, cc] = (1 + np.log(counts[rr, cc])) * idf[cc]
        return x

    def get_config(self) -> dict[str, Any]:
        return {
            "num_words": self.num_words,
            "filters": self.filters,
            "lower": self.lower,
            "split": self.split,
            "char_level": self.char_level,
            "oov_token": self.oov_token,
            "document_count": self.document_count,
            "word_counts": json.dumps(self.word_counts),
            "word_docs": json.dumps(self.word_docs),
            "index_docs": json.dumps(self.index_docs),
            "index_word": json.dumps(self.index_word),
            "word_index": json.dumps(self.word_index),
        }

    def to_json(self, **kwargs: Any) -> str:
        """The tokenizer's configuration and vocabulary as JSON (``tokenizer_from_json``)."""
        return json.dumps(
            {"class_name": type(self).__name__, "config": self.get_config()}, **kwargs
        )


def tokenizer_from_json(json_string: str) -> Tokenizer:
    """A Tokenizer from ``Tokenizer.to_json()`` output (Keras 2's format)."""
    try:
        config = dict(json.loads(json_string)["config"])
        word_counts = json.loads(config.pop("word_counts"))
        word_docs = json.loads(config.pop("word_docs"))
        index_docs = json.loads(config.pop("index_docs"))
        index_word = json.loads(config.pop("index_word"))
        word_index = json.loads(config.pop("word_index"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"tokenizer_from_json: not a Tokenizer's JSON ({exc!r})") from None
    tokenizer = Tokenizer(**config)
    tokenizer.word_counts = OrderedDict(word_counts)
    tokenizer.word_docs = defaultdict(int, word_docs)
    tokenizer.index_docs = defaultdict(int, {int(k): v for k, v in index_docs.items()})
    tokenizer.index_word = {int(k): v for k, v in index_word.items()}
    tokenizer.word_index = word_index
    return tokenizer


__all__ = [
    "Tokenizer",
    "hashing_trick",
    "one_hot",
    "text_to_word_sequence",
    "tokenizer_from_json",
]
