"""Data-parallel training on an existing process-group engine (``torch.distributed``).

An unchanged training script runs under ``torchrun --nproc_per_node=N train.py``: ``fit``
finds torchrun's environment (``WORLD_SIZE`` > 1) and trains data-parallel, or a script
chooses it explicitly with ``set_distribution(DataParallel())``.  Each process (rank)

- starts from rank 0's weights (one broadcast when ``fit`` starts),
- takes its own part of every global batch (``batch_size`` is the global batch, as in
  Keras 3's ``DataParallel``; the parts are disjoint and cover the batch, an uneven last
  batch included), shuffled each epoch with a seed all ranks share; batches from Python
  (a generator, Sequence, DataLoader) are global batches too: every rank reads the same
  ones and keeps its part, and a small all-reduce before each step checks that the ranks
  hold the same batch (and that none ran out before the others),
- computes its gradients, and adds them to the other ranks' in one all-reduce per step,
  weighted by the number of samples each rank had, so the step equals the step of one
  process on the whole global batch; the batch's loss and metrics, and non-trainable
  updates (BatchNormalization's moving statistics), travel in the same all-reduce.

Only rank 0 prints and runs the callbacks that write (ModelCheckpoint, CSVLogger...);
callbacks that decide (EarlyStopping, ReduceLROnPlateau) see the same global logs on every
rank and so decide alike.  A rank that raises tells the others through the process
group's store before it leaves; they stop with :class:`DistributedError` naming it.

The core never imports the engine: a plugin registers it through the
``polykeras_register_communicators`` hook (the torch plugin registers
``"torch.distributed"``: Gloo on CPU, NCCL on CUDA), and this module talks to it through
:class:`Communicator`.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

import numpy as np

from .utils import as_float

ENV_SWITCH = "POLYKERAS_DISTRIBUTE"  # "off" keeps a torchrun-launched script single-process


class DistributedError(RuntimeError):
    """Data-parallel training cannot go on: a rank failed, or the process group did."""


class Communicator(Protocol):
    """What a process-group engine supplies.  Arrays are native arrays of the backend
    ``B`` that training runs on, always 1-D and floating point."""

    rank: int
    world_size: int
    #: the rank within this machine (torchrun's LOCAL_RANK): which GPU this process uses
    local_rank: int
    #: the device a backend should put this rank's arrays on, e.g. "cuda:1", or None
    device: str | None

    def all_reduce_sum(self, B: Any, x: Any) -> Any:
        """The elementwise sum of ``x`` over all ranks (every rank gets it)."""

    def broadcast(self, B: Any, x: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``x`` on every rank."""

    def report_failure(self, message: str) -> None:
        """Tell the other ranks that this rank failed, and why (best effort, never raises)."""

    def failure(self) -> str | None:
        """What another rank reported with ``report_failure``, or None."""

    def shutdown(self) -> None:
        """Leave the process group."""


class DataParallel:
    """Train on several processes, each with a full copy of the model (data parallelism).

    ``communicator``: the registered engine (``"torch.distributed"``); ``timeout``: seconds a
    collective waits for the other ranks before the run stops with an error.
    """

    def __init__(self, communicator: str = "torch.distributed", timeout: float = 600.0):
        if not isinstance(communicator, str):
            raise TypeError(
                f"DataParallel: communicator must be a registered name, got {communicator!r}"
            )
        self.communicator = communicator
        self.timeout = as_float(timeout, "timeout", "DataParallel", low=0.0, low_open=True)
        self._comm: Communicator | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = (
            f"rank {self._comm.rank} of {self._comm.world_size}"
            if self._comm is not None
            else "not started"
        )
        return f"DataParallel({self.communicator!r}, {where})"

    # -- the process group -------------------------------------------------------------------
    def comm(self) -> Communicator:
        """The communicator, joining the process group on first use."""
        with self._lock:
            if self._comm is None:
                from . import plugins

                engines = plugins.registered_communicators()
                if self.communicator not in engines:
                    known = ", ".join(sorted(engines)) or "none"
                    hint = (
                        " (the torch plugin registers 'torch.distributed' when torch is "
                        "installed: pip install -e '.[torch]')"
                        if self.communicator == "torch.distributed"
                        else ""
                    )
                    raise DistributedError(
                        f"DataParallel: no process-group engine named {self.communicator!r} is "
                        f"registered; registered: {known}{hint}"
                    )
                factory = engines[self.communicator][0]
                self._comm = factory(timeout_s=self.timeout)
            return self._comm

    @property
    def rank(self) -> int:
        return self.comm().rank

    @property
    def world_size(self) -> int:
        return self.comm().world_size

    @property
    def is_chief(self) -> bool:
        """Whether this process is rank 0 (the one that prints and writes files)."""
        return self.rank == 0

    def shutdown(self) -> None:
        with self._lock:
            if self._comm is not None:
                self._comm.shutdown()
                self._comm = None

    # -- what training asks of it -----------------------------------------------------------------
    def _collective(self, fn, *args):
        comm = self.comm()
        try:
            return fn(*args)
        except DistributedError:
            raise
        except Exception as exc:
            other = comm.failure()
            if other:
                raise DistributedError(f"data-parallel training stopped: {other}") from exc
            raise DistributedError(
                f"data-parallel training stopped on rank {comm.rank} of {comm.world_size}: the "
                f"process group failed ({type(exc).__name__}: {exc}); another rank may have "
                f"died, or not reached this step within the timeout ({self.timeout:g} s)"
            ) from exc

    def all_reduce_sum(self, B: Any, x: Any) -> Any:
        comm = self.comm()
        return self._collective(comm.all_reduce_sum, B, x)

    def broadcast(self, B: Any, x: Any, src: int = 0) -> Any:
        comm = self.comm()
        return self._collective(comm.broadcast, B, x, src)

    def shared_seed(self) -> int:
        """A seed drawn on rank 0 (from NumPy's global generator, which
        ``set_random_seed`` seeds) and given to every rank: the shuffle all ranks share."""
        from . import backend as _backend

        B = _backend.current()
        seed = float(np.random.randint(0, 2**24))  # exact in float32
        got = self.broadcast(B, B.asarray(np.asarray([seed], "float32")))
        return int(np.asarray(B.to_numpy(got))[0])

    def shard(self, index: Any, n: int) -> np.ndarray:
        """This rank's part of a global batch (a slice or an index array into ``n``
        samples): contiguous, disjoint parts as even as possible, lower ranks one larger."""
        if isinstance(index, slice):
            index = np.arange(*index.indices(n))
        index = np.asarray(index)
        comm = self.comm()
        return np.array_split(index, comm.world_size)[comm.rank]

    def _flat_collective(self, B: Any, arrays: list, dtype: str, collective: Any) -> list:
        """``collective`` (an all-reduce or a broadcast) on ``arrays`` in one call: flattened
        into one buffer (cast to ``dtype``), then cut back into the original shapes and
        dtypes."""
        if not arrays:
            return []
        shapes = [tuple(B.shape(a)) for a in arrays]
        dtypes = [B.dtype_name(a) for a in arrays]
        flat = [
            B.reshape(B.cast(a, dtype) if B.dtype_name(a) != dtype else a, (-1,)) for a in arrays
        ]
        done = collective(B, B.concatenate(flat, 0))
        out, at = [], 0
        for shape, dt in zip(shapes, dtypes):
            size = int(np.prod(shape, dtype=np.int64))
            piece = B.reshape(B.getitem(done, (slice(at, at + size),)), shape)
            out.append(B.cast(piece, dt) if dt != dtype else piece)
            at += size
        return out

    def sum_flat(self, B: Any, arrays: list, dtype: str) -> list:
        """``arrays`` summed over ranks in one all-reduce."""
        return self._flat_collective(B, arrays, dtype, self.all_reduce_sum)

    def sync_weights(self, B: Any, variables: list) -> None:
        """Every rank takes rank 0's values of ``variables`` (one broadcast, in float64 so
        that every float and integer value travels exactly)."""
        if not variables or self.world_size == 1:
            return
        got = self._flat_collective(B, [v.value for v in variables], "float64", self.broadcast)
        for var, value in zip(variables, got):
            var.assign(value)

    # -- batches from Python: every rank reads the same global batches --------------------------
    def census(self, B: Any, mine: list[float], summed: Any = None) -> tuple[np.ndarray, Any]:
        """One all-reduce that gives every rank a table of what each rank holds (``mine``:
        a few numbers, row ``r`` of the table is rank ``r``'s) and, optionally, the sum of
        ``summed`` (a NumPy vector) over ranks."""
        world, rank = self.world_size, self.rank
        extra = np.zeros(0) if summed is None else np.asarray(summed, np.float64).reshape(-1)
        table = np.zeros((world, len(mine)))
        table[rank] = mine
        flat = np.concatenate([extra, table.reshape(-1)])
        got = np.asarray(B.to_numpy(self.all_reduce_sum(B, B.asarray(flat))), np.float64)
        got = got.reshape(-1)
        total = None if summed is None else got[: len(extra)]
        return got[len(extra) :].reshape(world, len(mine)), total

    def step_census(
        self, B: Any, size: int | None, fingerprint: int, where: str, what: str, pos: int
    ) -> str:
        """Before each training step on batches from Python: whether every rank has batch
        ``pos`` ("all"), no rank has ("none": the epoch ends), or only some have ("some":
        a warning names the ranks; the caller ends the training on every rank).  Ranks whose
        batches differ in size or content stop with :class:`DistributedError`."""
        has = size is not None
        table, _ = self.census(B, [float(has), float(size or 0), float(fingerprint)])
        holders = [r for r in range(len(table)) if table[r, 0]]
        if not holders:
            return "none"
        _check_same_batches(table[holders], holders, where, what, f"batch {pos}")
        if len(holders) == len(table):
            return "all"
        empty = [r for r in range(len(table)) if r not in holders]
        import warnings

        warnings.warn(
            f"{where}: {what} ran out of batches on {_ranks(empty, len(table))} at batch "
            f"{pos} while {_ranks(holders, len(table))} still had one; under data "
            "parallelism every rank must read the same batches (a generator must yield the "
            "same batches in every process). Ending the training on every rank.",
            RuntimeWarning,
            stacklevel=4,
        )
        return "some"

    def check_same_stream(self, table: np.ndarray, where: str, what: str) -> None:
        """After evaluate/predict on batches from Python: every rank must have read the
        same batches (a table from :meth:`census` with rows [batches, samples,
        fingerprint])."""
        _check_same_batches(table, list(range(len(table))), where, what, "its batches")

    def report_failure(self, exc: BaseException) -> None:
        comm = self._comm
        if comm is None:
            return
        comm.report_failure(
            f"rank {comm.rank} of {comm.world_size} raised {type(exc).__name__}: {exc}"[:2000]
        )


def _ranks(ranks: list[int], world: int) -> str:
    if len(ranks) == 1:
        return f"rank {ranks[0]} of {world}"
    return f"ranks {', '.join(str(r) for r in ranks)} of {world}"


def _check_same_batches(
    table: np.ndarray, ranks: list[int], where: str, what: str, which: str
) -> None:
    """``table``: one row per rank in ``ranks``, [count or flag, samples, fingerprint]."""
    first = table[0]
    differ = [r for r, row in zip(ranks, table) if not np.array_equal(row, first)]
    if not differ:
        return
    rows = "; ".join(
        f"rank {r}: {int(row[1])} samples, fingerprint {int(row[2])}"
        + (f", {int(row[0])} batches" if which == "its batches" else "")
        for r, row in zip(ranks, table)
    )
    raise DistributedError(
        f"{where}: under data parallelism every rank reads the same global batches from "
        f"{what} and takes its own part of each, but the ranks read different data in "
        f"{which} ({rows}). Make the batches the same in every process (a generator "
        "seeded alike, a DataLoader given a torch.Generator seeded alike or shuffle=False), or "
        "set POLYKERAS_DISTRIBUTE=off and train each process on its own data"
    )


def batch_fingerprint(arrays: list) -> int:
    """A cheap fingerprint of a batch's host arrays (a CRC of their first, middle and last
    rows and shapes) that tells ranks reading different batches apart."""
    import zlib

    crc = 0
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a)
        crc = zlib.crc32(repr((a.shape, a.dtype.str)).encode(), crc)
        if a.ndim and len(a) and a.dtype != object:
            for i in sorted({0, len(a) // 2, len(a) - 1}):
                crc = zlib.crc32(np.ascontiguousarray(a[i]).tobytes(), crc)
    return crc & 0xFFFFFF  # exact in float32, whatever precision the all-reduce uses


def reports_failures(method):
    """Wrap a training entry point: when it raises on a data-parallel rank, the other ranks
    are told which rank failed and why before the error goes on."""
    import functools

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except BaseException as exc:
            dp = _started()
            if dp is not None and not isinstance(exc, DistributedError):
                dp.report_failure(exc)
            raise

    return wrapper


def _started() -> DataParallel | None:
    with _state_lock:
        for dp in [*_explicit, *_auto]:
            if dp is not None and dp._comm is not None:
                return dp
    return None


_explicit: list[DataParallel | None] = []  # [choice] once set_distribution was called
_auto: list[DataParallel] = []
_state_lock = threading.Lock()


def set_distribution(value: DataParallel | None) -> None:
    """Train data-parallel with ``value`` from now on in this process (``None``: train in
    one process, even under torchrun).  Like Keras 3's ``keras.distribution.set_distribution``."""
    if value is not None and not isinstance(value, DataParallel):
        raise TypeError(
            f"set_distribution takes a DataParallel or None, got {type(value).__name__}"
        )
    with _state_lock:
        _explicit[:] = [value]


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that torchrun (or another launcher setting
    the same variables) started: ``WORLD_SIZE`` > 1 and ``RANK`` set."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return False
    return world > 1 and "RANK" in os.environ


def distribution() -> DataParallel | None:
    """The distribution ``fit`` uses now: the one set with :func:`set_distribution`, else a
    ``DataParallel()`` when torchrun launched several processes (unless
    ``POLYKERAS_DISTRIBUTE=off``), else None."""
    with _state_lock:
        if _explicit:
            return _explicit[0]
        if os.environ.get(ENV_SWITCH, "").strip().lower() in ("off", "0", "false", "no"):
            return None
        if not launched_by_torchrun():
            return None
        if not _auto:
            _auto.append(DataParallel())
        return _auto[0]


__all__ = [
    "Communicator",
    "DataParallel",
    "DistributedError",
    "distribution",
    "launched_by_torchrun",
    "set_distribution",
]
