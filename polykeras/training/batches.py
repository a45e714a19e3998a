"""Batches from Python: generators, iterators, ``utils.Sequence`` and iterables of batches
(a torch ``DataLoader`` is one: an iterable with ``__len__`` that yields tensors or lists).

A :class:`BatchSource` wraps what the user passed and hands out one epoch's raw batches,
either in the calling thread (``workers=0``) or from a prefetching pool
(:class:`_Prefetch`): while the model trains on batch ``i``, worker threads already
prepare batches ``i+1 .. i+max_queue_size``. A ``Sequence`` is indexed, so several
workers prepare different batches at once and results are handed out in order; a
generator can only be advanced by one thread at a time, so it gets one producer thread
(it still runs ahead of training). With ``use_multiprocessing=True`` a Sequence's workers
are processes instead (for ``__getitem__`` code that holds the GIL): a fresh pool each
epoch, started after the Sequence's ``on_epoch_end``, so every worker sees its current
state (forked where the system can, else the Sequence is pickled to the workers); batches
come back pickled. An exception in a worker is raised in the calling thread as
:class:`BatchError`, naming the batch.

Nothing here names a framework: batch elements become NumPy arrays through
``np.asarray`` (which takes a CPU tensor) or, failing that, the active backend's
``to_numpy``.
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..utils import Sequence
from .data import DataError


class BatchError(RuntimeError):
    """Preparing a batch (in a worker or in the loop) raised; the message names the batch."""


def is_batch_source(data: Any) -> bool:
    """Whether ``data`` yields batches (rather than being one data set of arrays)."""
    if data is None or isinstance(
        data, (np.ndarray, list, tuple, dict, str, bytes, set, frozenset)
    ):
        return False
    if isinstance(data, Sequence):
        return True
    if any(hasattr(data, a) for a in ("__polykeras_data__", "__array__", "shape", "dtype")):
        return False  # an array of some library (a tensor is iterable too)
    return hasattr(data, "__next__") or hasattr(data, "__iter__")


def describe(data: Any) -> str:
    if isinstance(data, Sequence):
        return f"the Sequence {type(data).__name__}"
    if hasattr(data, "__next__"):
        name = getattr(data, "__name__", None) or type(data).__name__
        return f"the generator {name}" if hasattr(data, "gi_frame") else f"the iterator {name}"
    return f"the iterable {type(data).__name__}"


EXPECTED_DATA = (
    "expected a NumPy array (or a list of arrays, or a dict by input name), or batches "
    "from Python: a generator or iterator of (x, y) or (x, y, sample_weight) tuples, a "
    "keras.utils.Sequence, or an iterable of batches such as a torch DataLoader"
)


class PoolOptions:
    """``workers`` / ``use_multiprocessing`` / ``max_queue_size`` (Keras 2's names)."""

    def __init__(self, where: str, workers: Any, use_multiprocessing: Any, max_queue_size: Any):
        from ..utils import as_int

        self.workers = 1 if workers is None else as_int(workers, "workers", where, minimum=0)
        self.max_queue_size = (
            10 if max_queue_size is None else as_int(max_queue_size, "max_queue_size", where)
        )
        self.where = where
        self.processes = bool(use_multiprocessing) and self.workers > 0

    @staticmethod
    def refuse_for_arrays(where: str, **given: Any) -> None:
        named = [k for k, v in given.items() if v is not None]
        if named:
            raise ValueError(
                f"{where}: {', '.join(named)} apply only to batches from Python (a "
                "generator, a Sequence, a DataLoader); the data given are arrays, which "
                "need no workers: leave them None"
            )


class BatchSource:
    """One of the user's batch producers, epoch by epoch."""

    def __init__(self, data: Any, where: str, what: str = "x"):
        self.data = data
        self.where = where
        self.what = f"{describe(data)} given as {what}"
        self.indexed = isinstance(data, Sequence)
        self.length: int | None = None
        self.exhausted = False
        self._iterator: Iterator | None = None
        if self.indexed:
            self.length = int(len(data))
        elif hasattr(data, "__next__"):
            self._iterator = data  # one pass shared by all epochs
        else:
            try:
                self.length = int(len(data))
            except TypeError:
                self.length = None
        self._peeked: Any = None
        self._has_peek = False

    def check_pool(self, pool: PoolOptions | None) -> None:
        """Worker processes serve a Sequence only: a generator or iterator cannot be shared
        between processes (each would replay the same batches)."""
        if pool is not None and pool.processes and not self.indexed:
            raise ValueError(
                f"{pool.where}: use_multiprocessing=True needs a keras.utils.Sequence, whose "
                f"batches worker processes fetch by index; {self.what} can only be advanced "
                "in one process: pass use_multiprocessing=False (its worker thread still "
                "prepares batches ahead), or write it as a Sequence"
            )

    def steps(self, steps: Any, name: str) -> int | None:
        """Batches per epoch: ``steps`` when given, else the length (None: until exhausted)."""
        if steps is None:
            if self.length == 0:
                raise DataError(f"{self.where}: {self.what} has no batches (its length is 0)")
            return self.length
        from ..utils import as_int

        return as_int(steps, name, self.where)

    def peek(self) -> Any:
        """The first batch, fetched once (it is handed out again as batch 0)."""
        if self.indexed:
            return _fetch(self.data, 0, self.what)
        if not self._has_peek:
            it = self._iter_for_epoch()
            try:
                self._peeked = next(it)
            except StopIteration:
                raise DataError(f"{self.where}: {self.what} yielded no batches") from None
            except Exception as exc:
                raise BatchError(
                    f"{self.where}: batch 0 from {self.what} raised {_name(exc)}"
                ) from exc
            self._has_peek = True
        return self._peeked

    def _iter_for_epoch(self) -> Iterator:
        if self._iterator is not None:
            return self._iterator
        self._iterator = iter(self.data)
        return self._iterator

    def epoch(
        self, steps: int | None, shuffle: Any, pool: PoolOptions | None, rng: Any = None
    ) -> _Batches:
        """This epoch's raw batches (``(index, batch)``), prefetched when ``pool`` has workers.
        A Sequence is shuffled with ``rng`` (data parallel: a generator all ranks share), else
        with NumPy's global generator."""
        if self.indexed:
            n = self.length or 0
            order = np.arange(n)
            if shuffle:
                order = (np.random if rng is None else rng).permutation(n)
            if steps is not None:
                order = np.resize(order, steps) if n else order[:0]
            tasks: Any = [int(i) for i in order]
            return _Batches(self, tasks, None, pool)
        self.check_pool(pool)
        it = self._iter_for_epoch()
        first = []
        if self._has_peek:
            first = [self._peeked]
            self._has_peek, self._peeked = False, None
        return _Batches(self, None, _Chain(first, it), pool, steps)

    def end_epoch(self) -> None:
        if self.indexed:
            self.data.on_epoch_end()
        elif not hasattr(self.data, "__next__"):
            self._iterator = None  # an iterable (DataLoader) starts over every epoch


class _Chain:
    def __init__(self, first: list, it: Iterator):
        self.first, self.it = first, it

    def __next__(self) -> Any:
        if self.first:
            return self.first.pop()
        return next(self.it)


def _name(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _fetch(seq: Any, index: int, what: str) -> Any:
    try:
        return seq[index]
    except Exception as exc:
        raise BatchError(f"batch {index} from {what} raised {_name(exc)}") from exc


class _Batches:
    """Iterates ``(position, batch)`` for one epoch; ``close()`` stops any workers."""

    def __init__(
        self,
        source: BatchSource,
        indices: list[int] | None,
        stream: _Chain | None,
        pool: PoolOptions | None,
        steps: int | None = None,
    ):
        self.source, self.indices, self.stream, self.steps = source, indices, stream, steps
        self.ran_out = False
        workers = 0 if pool is None else pool.workers
        self._prefetch: _Prefetch | None = None
        if workers:
            assert pool is not None
            self._prefetch = _Prefetch(
                source, indices, stream, steps, workers, pool.max_queue_size, pool.processes
            )

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        where = self.source.where
        try:
            if self._prefetch is not None:
                for pos, batch in self._prefetch:
                    yield pos, batch
                self.ran_out = self._prefetch.ran_out
                return
            if self.indices is not None:
                for pos, index in enumerate(self.indices):
                    try:
                        yield pos, _fetch(self.source.data, index, self.source.what)
                    except BatchError as exc:
                        raise BatchError(f"{where}: {exc}") from exc.__cause__
                return
            assert self.stream is not None
            pos = 0
            while self.steps is None or pos < self.steps:
                try:
                    batch = next(self.stream)
                except StopIteration:
                    self.ran_out = self.steps is not None
                    if self.steps is None and pos == 0:
                        self.ran_out = True
                    self.source.exhausted = True
                    return
                except Exception as exc:
                    raise BatchError(
                        f"{where}: batch {pos} from {self.source.what} raised {_name(exc)}"
                    ) from exc
                yield pos, batch
                pos += 1
        finally:
            self.close()

    def close(self) -> None:
        if self._prefetch is not None:
            self._prefetch.close()


_END = object()


class _Prefetch:
    """Worker threads preparing the next batches while the current one trains.

    Indexed sources: a pool of ``workers`` threads, at most ``max_queue_size`` batches
    requested ahead, handed out in order. Streams: one producer thread filling a queue of
    ``max_queue_size`` batches."""

    def __init__(
        self,
        source: BatchSource,
        indices: list[int] | None,
        stream: _Chain | None,
        steps: int | None,
        workers: int,
        max_queue_size: int,
        processes: bool = False,
    ):
        self.source, self.indices, self.stream, self.steps = source, indices, stream, steps
        self.kind = "worker process" if processes else "worker thread"
        self.ahead = max(max_queue_size, workers)
        self.ran_out = False
        self._stop = threading.Event()
        self._executor: Executor | None = None
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue_size)
        if indices is not None and processes:
            self._executor = _process_pool(source.data, workers)
        elif indices is not None:
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix="polykeras-batches")
        else:
            self._thread = threading.Thread(
                target=self._produce, name="polykeras-batches", daemon=True
            )
            self._thread.start()

    # -- a Sequence: many workers, results in order ----------------------------------------
    def _indexed(self) -> Iterator[tuple[int, Any]]:
        assert self._executor is not None and self.indices is not None
        seq, what = self.source.data, self.source.what
        fetch = (
            _worker_fetch if isinstance(self._executor, ProcessPoolExecutor) else seq.__getitem__
        )
        pending: deque[tuple[int, Future]] = deque()
        todo = iter(enumerate(self.indices))
        for pos, index in todo:
            pending.append((pos, self._executor.submit(fetch, index)))
            if len(pending) >= self.ahead:
                break
        while pending:
            pos, fut = pending.popleft()
            try:
                batch = fut.result()
            except Exception as exc:
                index = self.indices[pos]
                raise BatchError(
                    f"{self.source.where}: batch {index} from {what} raised {_name(exc)} "
                    f"(in a {self.kind})"
                ) from exc
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt[0], self._executor.submit(fetch, nxt[1])))
            yield pos, batch

    # -- a stream: one producer thread --------------------------------------------------------
    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        assert self.stream is not None
        pos = 0
        while (self.steps is None or pos < self.steps) and not self._stop.is_set():
            try:
                batch = next(self.stream)
            except StopIteration:
                self._put((_END, pos, None))
                return
            except BaseException as exc:
                self._put((_END, pos, exc))
                return
            if not self._put((pos, batch, None)):
                return
            pos += 1
        self._put((_END, pos, None))

    def _streamed(self) -> Iterator[tuple[int, Any]]:
        while True:
            first, second, exc = self._queue.get()
            if first is _END:
                if exc is not None:
                    raise BatchError(
                        f"{self.source.where}: batch {second} from {self.source.what} raised "
                        f"{_name(exc)} (in the prefetching thread)"
                    ) from exc
                ended_early = self.steps is not None and second < self.steps
                if ended_early or (self.steps is None and second == 0):
                    self.ran_out = True
                if self.steps is None or ended_early:
                    self.source.exhausted = True
                return
            yield first, second

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return self._indexed() if self.indices is not None else self._streamed()

    def close(self) -> None:
        self._stop.set()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._thread is not None:
            while True:  # unblock a producer waiting on a full queue
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._thread.join(timeout=5.0)


# -- worker processes (use_multiprocessing=True) -------------------------------------------------
# Set once in each worker process by its initializer (never in the training process):
# the Sequence that process fetches from.
_WORKER_SEQUENCE: list = []


def _worker_init(seq: Any) -> None:
    _WORKER_SEQUENCE[:] = [seq]


def _worker_fetch(index: int) -> Any:
    return _WORKER_SEQUENCE[0][index]


def _process_pool(seq: Any, workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes holding ``seq``: forked (the Sequence is inherited
    as it is now) where the system has fork, else spawned (the Sequence is pickled)."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(seq,)
    )


# -- one raw batch -> (x, y, sample_weight) ------------------------------------------------------
def to_host(value: Any) -> Any:
    """A batch element (nested lists/tuples/dicts of arrays or tensors) as NumPy arrays."""
    if isinstance(value, dict):
        return {k: to_host(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and any(
        isinstance(v, dict) or (hasattr(v, "__array__") and not isinstance(v, (list, tuple)))
        for v in value
    ):  # a list of arrays or tensors (one per input); a nested list of numbers is one array
        return [to_host(v) for v in value]
    if value is None or isinstance(value, np.ndarray):
        return value
    try:
        arr = np.asarray(value)
        if arr.dtype != object:
            return arr
    except Exception:
        pass
    from .. import backend as _backend

    try:
        return np.asarray(_backend.current().to_numpy(value))
    except Exception:
        return value  # the data checks name what it is


def split_batch(batch: Any, pos: int, what: str, where: str, targets: bool) -> tuple:
    """``(x, y, sample_weight)`` from one batch (``targets=False``: ``(x, None, None)``)."""
    if targets:
        if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
            x, y, sw = (*batch, None)[:3]
            return to_host(x), to_host(y), to_host(sw)
        got = type(batch).__name__
        if isinstance(batch, (tuple, list)):
            got += f" of length {len(batch)}"
        raise DataError(
            f"{where}: batch {pos} from {what} is a {got}; each batch must be a tuple "
            "(x, y) or (x, y, sample_weight)"
        )
    if isinstance(batch, tuple) and len(batch) in (1, 2, 3):
        return to_host(batch[0]), None, None
    return to_host(batch), None, None


def ran_out_warning(where: str, what: str) -> None:
    warnings.warn(
        f"{where}: {what} ran out of data; interrupting training. Make sure it can "
        "generate at least steps_per_epoch * epochs batches (a generator is consumed "
        "once; a Sequence or a DataLoader starts over every epoch).",
        RuntimeWarning,
        stacklevel=4,
    )


__all__ = [
    "BatchError",
    "BatchSource",
    "EXPECTED_DATA",
    "PoolOptions",
    "is_batch_source",
    "split_batch",
    "to_host",
]
