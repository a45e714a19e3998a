"""Keras 2's ``keras.preprocessing.sequence``: padding, time-series windows, skip-grams.

Results match Keras 2 (the keras-preprocessing package) for the same arguments; random
draws use Python's and NumPy's global generators, as Keras does, so
``polykeras.utils.set_random_seed`` makes them repeat.
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np

from ..utils import Sequence


def pad_sequences(
    sequences: Any,
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Sequences (a list of lists/arrays) as one array ``(len(sequences), maxlen, ...)``.

    Longer sequences lose their start (``truncating='pre'``) or end (``'post'``); shorter
    ones are filled with ``value`` before (``padding='pre'``) or after (``'post'``).
    ``maxlen=None`` pads to the longest sequence."""
    if not hasattr(sequences, "__len__"):
        raise ValueError(
            f"pad_sequences: sequences must be a list of sequences, got {type(sequences).__name__}"
        )
    if padding not in ("pre", "post"):
        raise ValueError(f'pad_sequences: padding type "{padding}" not understood (pre or post)')
    if truncating not in ("pre", "post"):
        raise ValueError(
            f'pad_sequences: truncating type "{truncating}" not understood (pre or post)'
        )
    lengths = []
    sample_shape: tuple = ()
    found_shape = False
    for i, s in enumerate(sequences):
        try:
            lengths.append(len(s))
        except TypeError:
            raise ValueError(
                f"pad_sequences: sequences must be a list of iterables; sequence {i} is "
                f"{type(s).__name__} ({s!r})"
            ) from None
        if not found_shape and len(s):
            sample_shape = np.asarray(s).shape[1:]
            found_shape = True
    n = len(lengths)
    if maxlen is None:
        maxlen = max(lengths, default=0)
    maxlen = int(maxlen)
    if maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen must be >= 0, got {maxlen}")
    is_str = np.issubdtype(np.dtype(dtype), np.str_)
    if isinstance(value, str) and dtype is not object and not is_str:
        raise ValueError(
            f"pad_sequences: dtype {dtype} is not compatible with the padding value "
            f"{value!r}; use dtype=object for variable-length strings"
        )
    x = np.full((n, maxlen) + tuple(sample_shape), value, dtype=dtype)
    if n == 0 or maxlen == 0:
        return x
    lens = np.asarray(lengths, dtype=np.int64)
    kept = np.minimum(lens, maxlen)
    nonempty = [s for s in sequences if len(s)]
    if not nonempty:
        return x
    try:
        flat = np.concatenate([np.asarray(s, dtype=dtype) for s in nonempty], axis=0)
    except ValueError:
        shapes = {np.asarray(s).shape[1:] for s in nonempty}
        raise ValueError(
            f"pad_sequences: the sequences' elements have different shapes {sorted(shapes)}; "
            f"expected {sample_shape} for all (from the first non-empty sequence)"
        ) from None
    if flat.shape[1:] != tuple(sample_shape):
        raise ValueError(
            f"pad_sequences: shape of sample {flat.shape[1:]} is different from expected "
            f"shape {sample_shape}"
        )
    # where each kept element comes from (in flat) and goes to (row, column): one gather
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    rows = np.repeat(np.arange(n), kept)
    offset = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
    skip = (lens - kept) if truncating == "pre" else np.zeros_like(lens)
    source = np.repeat(starts + skip, kept) + offset
    cols = offset if padding == "post" else np.repeat(maxlen - kept, kept) + offset
    x[rows, cols] = flat[source]
    return x


def make_sampling_table(size: int, sampling_factor: float = 1e-5) -> np.ndarray:
    """Keras' word-rank sampling probabilities (Zipf's law, as word2vec subsamples):
    entry i is the probability of keeping the i-th most common word."""
    gamma = 0.577
    rank = np.arange(size)
    rank[0] = 1
    inv_fq = rank * (np.log(rank) + gamma) + 0.5 - 1.0 / (12.0 * rank)
    f = sampling_factor * inv_fq
    return np.minimum(1.0, f / np.sqrt(f))


def skipgrams(
    sequence: Any,
    vocabulary_size: int,
    window_size: int = 4,
    negative_samples: float = 1.0,
    shuffle: bool = True,
    categorical: bool = False,
    sampling_table: Any = None,
    seed: int | None = None,
) -> tuple[list, list]:
    """Word pairs ``[w, context]`` labelled 1 (within ``window_size``) and
    ``negative_samples`` times as many random pairs labelled 0 (index 0 is skipped)."""
    couples: list[list[int]] = []
    labels: list[Any] = []
    seq = list(sequence)
    for i, wi in enumerate(seq):
        if not wi:
            continue
        if sampling_table is not None and sampling_table[wi] < random.random():
            continue
        for j in range(max(0, i - window_size), min(len(seq), i + window_size + 1)):
            if j != i and seq[j]:
                couples.append([wi, seq[j]])
                labels.append([0, 1] if categorical else 1)
    if negative_samples > 0 and couples:
        count = int(len(labels) * negative_samples)
        words = [c[0] for c in couples]
        random.shuffle(words)
        couples += [
            [words[i % len(words)], random.randint(1, vocabulary_size - 1)] for i in range(count)
        ]
        labels += [[1, 0] if categorical else 0 for _ in range(count)]
    if shuffle:
        if seed is None:
            seed = random.randint(0, 10**7)
        random.Random(seed).shuffle(couples)
        random.Random(seed).shuffle(labels)
    return couples, labels


class TimeseriesGenerator(Sequence):
    """Batches of windows over a time series: sample k of a batch is
    ``data[row - length:row:sampling_rate]`` with target ``targets[row]``.

    Rows run from ``start_index + length`` to ``end_index`` (default the last) in steps of
    ``stride``; ``shuffle=True`` draws rows at random; ``reverse=True`` reverses each
    window in time."""

    def __init__(
        self,
        data: Any,
        targets: Any,
        length: int,
        sampling_rate: int = 1,
        stride: int = 1,
        start_index: int = 0,
        end_index: int | None = None,
        shuffle: bool = False,
        reverse: bool = False,
        batch_size: int = 128,
    ):
        if len(data) != len(targets):
            raise ValueError(
                f"TimeseriesGenerator: data and targets have to be of same length. Data "
                f"length is {len(data)} while target length is {len(targets)}"
            )
        self.data = data
        self.targets = targets
        self.length = length
        self.sampling_rate = sampling_rate
        self.stride = stride
        self.start_index = start_index + length
        self.end_index = len(data) - 1 if end_index is None else end_index
        self.shuffle = shuffle
        self.reverse = reverse
        self.batch_size = batch_size
        if self.start_index > self.end_index:
            raise ValueError(
                f"TimeseriesGenerator: `start_index+length={self.start_index} > "
                f"end_index={self.end_index}` is disallowed, as no part of the sequence "
                "would be left to be used as current step."
            )

    def __len__(self) -> int:
        span = self.batch_size * self.stride
        return (self.end_index - self.start_index + span) // span

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self.shuffle:
            rows = np.random.randint(self.start_index, self.end_index + 1, size=self.batch_size)
        else:
            i = self.start_index + self.batch_size * self.stride * index
            rows = np.arange(
                i, min(i + self.batch_size * self.stride, self.end_index + 1), self.stride
            )
        data = np.asarray(self.data)
        # every window at once: (rows, steps) indices into data
        steps = np.arange(-self.length, 0, self.sampling_rate)
        samples = data[rows[:, None] + steps[None, :]]
        targets = np.asarray(self.targets)[rows]
        if self.reverse:
            return samples[:, ::-1, ...], targets
        return samples, targets

    def get_config(self) -> dict[str, Any]:
        def plain(v):
            return v.tolist() if isinstance(v, np.ndarray) else v

        return {
            "data": plain(self.data),
            "targets": plain(self.targets),
            "length": self.length,
            "sampling_rate": self.sampling_rate,
            "stride": self.stride,
            "start_index": self.start_index,
            "end_index": self.end_index,
            "shuffle": self.shuffle,
            "reverse": self.reverse,
            "batch_size": self.batch_size,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(
            {"class_name": type(self).__name__, "config": self.get_config()}, **kwargs
        )


__all__ = ["TimeseriesGenerator", "make_sampling_table", "pad_sequences", "skipgrams"]
