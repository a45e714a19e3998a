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
- computes its gradients, and adds them to the other ranks' in buckets
  (:class:`GradientSum`: started during the backward pass where the backend
  differentiates by itself, after it otherwise), weighted by the number of samples each
  rank had, so the step equals the step of one process on the whole global batch; the
  batch's loss and metrics, and non-trainable updates (BatchNormalization's moving
  statistics), travel in the last bucket, with the state of the metric objects given to
  ``compile`` (:class:`SharedMetrics`: summed, so their results are over the global data).
  A model's own ``train_step`` has the gradients it gives its optimizer averaged the same
  way (:class:`_CustomStep`); its own ``test_step`` runs on each rank's part with global
  logs (:class:`_CustomTests`).

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

    # Optional: ``all_reduce_sum_start(B, x)`` starts the same sum without waiting and
    # returns a handle whose ``wait()`` gives the result; collectives started this way
    # complete in the order they were started.  Without it, buckets are summed one by one.

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
    collective waits for the other ranks before the run stops with an error; ``bucket_mb``:
    the size of the gradient buckets summed over ranks (MB, 25 like PyTorch's
    ``DistributedDataParallel``): where the backend differentiates by itself (torch), a
    bucket's all-reduce starts as soon as the backward pass has made all its gradients,
    while the backward pass goes on.
    """

    def __init__(
        self,
        communicator: str = "torch.distributed",
        timeout: float = 600.0,
        bucket_mb: float = 25.0,
    ):
        if not isinstance(communicator, str):
            raise TypeError(
                f"DataParallel: communicator must be a registered name, got {communicator!r}"
            )
        self.communicator = communicator
        self.timeout = as_float(timeout, "timeout", "DataParallel", low=0.0, low_open=True)
        self.bucket_mb = as_float(bucket_mb, "bucket_mb", "DataParallel", low=0.0, low_open=True)
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
                _shut_down_at_exit(self)
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

    def all_reduce_sum_start(self, B: Any, x: Any) -> Any:
        """Start summing ``x`` over ranks; the handle's ``wait()`` gives the sum."""
        comm = self.comm()
        start = getattr(comm, "all_reduce_sum_start", None)
        if start is None:
            return _Done(self.all_reduce_sum(B, x))
        return _Pending(self, self._collective(start, B, x))

    def broadcast(self, B: Any, x: Any, src: int = 0) -> Any:
        comm = self.comm()
        return self._collective(comm.broadcast, B, x, src)

    def gradient_sum(self, B: Any, values: list, dtype: str, weight: float) -> GradientSum:
        """The sum over ranks of this step's gradients of ``values`` (each times
        ``weight``), in buckets: see :class:`GradientSum`."""
        return GradientSum(self, B, values, dtype, weight)

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

    def custom_train_step(
        self, model: Any, run: Any, xs: list, ys: list, sws: list, size: int | None = None
    ) -> dict:
        """The model's own ``train_step`` on this rank's part of a global batch of ``size``
        samples (``run`` calls it on ``(xs, ys, sws)`` and returns its logs as floats): see
        :class:`_CustomStep`."""
        return _CustomStep(self, model).run(run, xs, ys, sws, size)

    def custom_tests(self, model: Any, each_step: bool) -> _CustomTests:
        """The model's own ``test_step`` over an evaluation: see :class:`_CustomTests`."""
        return _CustomTests(self, model, each_step)

    def report_failure(self, exc: BaseException) -> None:
        comm = self._comm
        if comm is None:
            return
        comm.report_failure(
            f"rank {comm.rank} of {comm.world_size} raised {type(exc).__name__}: {exc}"[:2000]
        )


class _Done:
    def __init__(self, value: Any):
        self.value = value

    def wait(self) -> Any:
        return self.value


class _Pending:
    def __init__(self, dp: DataParallel, handle: Any):
        self.dp, self.handle = dp, handle

    def wait(self) -> Any:
        return self.dp._collective(self.handle.wait)


class GradientSum:
    """One step's gradients summed over ranks in buckets of about ``dp.bucket_mb`` MB.

    The variables are taken in reverse order (the backward pass makes the last layers'
    gradients first) and cut into consecutive buckets.  A gradient arrives through
    :meth:`ready` (from the backend's backward pass as soon as it is made, or all at once
    after it); a full bucket is flattened (times ``weight``, cast to ``dtype``) and its
    all-reduce started at once, buckets strictly in order so that every rank starts the
    same collectives in the same order (a rank with no samples sends zeros).  The last
    bucket waits for :meth:`finish`, which adds the step's other numbers (loss, metrics,
    layers' updates) to it: a model smaller than one bucket makes one all-reduce per
    step."""

    def __init__(self, dp: DataParallel, B: Any, values: list, dtype: str, weight: float):
        self.dp, self.B, self.dtype, self.weight = dp, B, dtype, float(weight)
        self.shapes = [tuple(B.shape(v)) for v in values]
        self.dtypes = [B.dtype_name(v) for v in values]
        self.buckets: list[list[int]] = []
        limit = dp.bucket_mb * 1e6
        itemsize = np.dtype(dtype).itemsize
        size = 0.0
        for i in reversed(range(len(values))):
            if not self.buckets or size >= limit:
                self.buckets.append([])
                size = 0.0
            self.buckets[-1].append(i)
            size += float(np.prod(self.shapes[i], dtype=np.int64)) * itemsize
        self.bucket_of = {i: k for k, bucket in enumerate(self.buckets) for i in bucket}
        self.missing = [len(bucket) for bucket in self.buckets]
        self.flat: list[Any] = [None] * len(values)
        self.handles: list[Any] = []  # one per started bucket, in order

    def ready(self, i: int, grad: Any) -> None:
        """Variable ``i``'s gradient is made (called once per variable at most)."""
        if self.flat[i] is not None:
            return
        B = self.B
        g = B.multiply(grad, self.weight)
        if B.dtype_name(g) != self.dtype:
            g = B.cast(g, self.dtype)
        self.flat[i] = B.reshape(g, (-1,))
        self.missing[self.bucket_of[i]] -= 1
        last = len(self.buckets) - 1
        while len(self.handles) < last and not self.missing[len(self.handles)]:
            self._start(len(self.handles))

    def _start(self, k: int, extra: list | None = None) -> None:
        B = self.B
        pieces = [self.flat[i] for i in self.buckets[k]] + (extra or [])
        self.handles.append(self.dp.all_reduce_sum_start(B, B.concatenate(pieces, 0)))

    def value_and_grad(self, fn: Any, values: list) -> tuple[Any, Any, list]:
        """``autodiff.value_and_grad(fn, values)``, the gradients fed to :meth:`ready`:
        while the backward pass runs where the backend differentiates by itself and can
        say when each gradient is made (its ``value_and_grad`` takes ``grad_ready``),
        after it otherwise (the core's tape)."""
        from . import autodiff

        own = getattr(self.B, "value_and_grad", None)
        if own is not None and not autodiff._force_core.get() and _takes_grad_ready(own):
            loss, aux, grads = own(fn, list(values), grad_ready=self.ready)
        else:
            loss, aux, grads = autodiff.value_and_grad(fn, values)
        for i, g in enumerate(grads):  # gradients the backward pass did not announce
            self.ready(i, g)
        return loss, aux, grads

    def finish(self, extra: list) -> list:
        """Wait for every bucket; the gradients summed over ranks (in the variables'
        shapes and dtypes; zeros for those never given), then the arrays ``extra`` summed
        over ranks (sent as ``dtype``, given back in their own)."""
        B = self.B
        for i, shape in enumerate(self.shapes):
            if self.flat[i] is None:
                self.ready(i, B.zeros(shape, self.dtypes[i]))
        extra_shapes = [tuple(B.shape(a)) for a in extra]
        extra_dtypes = [B.dtype_name(a) for a in extra]
        extra_flat = [
            B.reshape(B.cast(a, self.dtype) if dt != self.dtype else a, (-1,))
            for a, dt in zip(extra, extra_dtypes)
        ]
        if not self.buckets:
            self.handles.append(self.dp.all_reduce_sum_start(B, B.concatenate(extra_flat, 0)))
        else:
            self._start(len(self.buckets) - 1, extra_flat)
        grads: list[Any] = [None] * len(self.shapes)
        rest: list = []
        for k, handle in enumerate(self.handles):
            done = handle.wait()
            at = 0
            for i in self.buckets[k] if k < len(self.buckets) else []:
                size = int(np.prod(self.shapes[i], dtype=np.int64))
                piece = B.reshape(B.getitem(done, (slice(at, at + size),)), self.shapes[i])
                grads[i] = B.cast(piece, self.dtypes[i]) if self.dtypes[i] != self.dtype else piece
                at += size
            if k == len(self.handles) - 1:
                for shape, dt in zip(extra_shapes, extra_dtypes):
                    size = int(np.prod(shape, dtype=np.int64))
                    piece = B.reshape(B.getitem(done, (slice(at, at + size),)), shape)
                    rest.append(B.cast(piece, dt) if dt != self.dtype else piece)
                    at += size
        return grads + rest


def metric_variables(metrics: Any) -> list:
    """The state variables of metric objects, each once (a metric that holds metrics, like
    the compiled metrics of a custom step, gives theirs), on the active backend."""
    from . import backend as _backend

    B = _backend.current()
    out: list = []
    seen: set[int] = set()

    def visit(metric: Any) -> None:
        held = getattr(metric, "variables", None)
        if held is not None and not callable(held):
            for var in held:
                if id(var) not in seen:
                    seen.add(id(var))
                    var.move_to(B)
                    out.append(var)
        for sub in getattr(metric, "metrics", None) or ():
            if sub is not metric:
                visit(sub)

    for metric in metrics:
        visit(metric)
    return out


def read_with_state(variables: list, values: list, read: Any) -> Any:
    """``read()`` while ``variables`` hold ``values`` (metric state summed over ranks); each
    variable gets its own (this rank's) value back afterwards, so that the next step adds to
    this rank's state only."""
    mine = [v.value for v in variables]
    for var, value in zip(variables, values):
        var.assign(value)
    try:
        return read()
    finally:
        for var, value in zip(variables, mine):
            var.assign(value)


class SharedMetrics:
    """Metric objects whose results are read over the global data: their state variables
    (counts, sums, AUC's confusion tables...) are summed over ranks, the results read from
    the sums, and each rank keeps adding to its own state afterwards.  The sums travel in
    an all-reduce that happens anyway (the last gradient bucket of a step, the totals at
    the end of an evaluation): sharing metric objects adds no collective."""

    def __init__(self, metrics: list):
        self.metrics = list(metrics)
        self.variables = metric_variables(self.metrics)

    def __bool__(self) -> bool:
        return bool(self.metrics)

    def local(self) -> list:
        """This rank's state, one backend array per variable."""
        return [v.value for v in self.variables]

    def local_host(self, B: Any) -> np.ndarray:
        """This rank's state as one float64 NumPy vector (for an all-reduce of host numbers)."""
        parts = [np.asarray(B.to_numpy(v.value), np.float64).reshape(-1) for v in self.variables]
        return np.concatenate(parts) if parts else np.zeros(0)

    def from_host(self, B: Any, flat: np.ndarray) -> list:
        """The inverse of :meth:`local_host` (summed numbers back into the variables' shapes
        and dtypes)."""
        out, at = [], 0
        for var in self.variables:
            shape = tuple(B.shape(var.value))
            size = int(np.prod(shape, dtype=np.int64))
            piece = np.asarray(flat[at : at + size]).reshape(shape)
            out.append(B.asarray(piece.astype(B.dtype_name(var.value))))
            at += size
        return out

    def results(self, summed: list) -> list:
        """Each metric's result (a backend scalar) with the state summed over ranks."""
        return read_with_state(self.variables, summed, lambda: [m.result() for m in self.metrics])


def _metric_leaves(metrics: Any) -> list:
    """The metric objects in ``metrics``, those a metric holds (compile_metrics) in its
    place, each once."""
    out: list = []

    def visit(metric: Any) -> None:
        subs = [m for m in getattr(metric, "metrics", None) or () if m is not metric]
        if subs:
            for sub in subs:
                visit(sub)
        elif not any(metric is m for m in out):
            out.append(metric)

    for metric in metrics:
        visit(metric)
    return out


class _ScalarMeans:
    """For the length of one custom step: a ``Mean`` among the model's metrics given one
    number without a sample weight (``tracker.update_state(loss)``, a batch's mean) counts
    this rank's share of the global batch (``n_local / size``) instead of 1, so that the
    ranks' updates add up to one update with the global batch's mean, as in one process.
    Per-sample values and explicit sample weights are left as they are."""

    def __init__(self, model: Any, share: float | None):
        from .training.metric_classes import Mean

        self.share = share
        self.means: list[Any] = (
            []
            if share is None
            else [m for m in _metric_leaves(model.metrics) if isinstance(m, Mean)]
        )
        self.own: list = []

    def __enter__(self) -> _ScalarMeans:
        for metric in self.means:
            self.own.append(metric.__dict__.get("update_state"))
            metric.update_state = self._wrap(metric.update_state)
        return self

    def _wrap(self, update: Any) -> Any:
        share = self.share

        def update_state(*args: Any, **kwargs: Any) -> Any:
            if len(args) == 1 and kwargs.get("sample_weight") is None and _is_scalar(args[0]):
                kwargs["sample_weight"] = share
            return update(*args, **kwargs)

        return update_state

    def __exit__(self, *exc: Any) -> None:
        for metric, own in zip(self.means, self.own):
            if own is None:
                del metric.update_state
            else:
                metric.update_state = own
        self.own = []


def _is_scalar(value: Any) -> bool:
    from . import autodiff
    from . import backend as _backend

    B = _backend.current()
    value = autodiff.raw(value)
    if B.is_native(value):
        return len(tuple(B.shape(value))) == 0
    return bool(np.ndim(value) == 0)


class _CustomStep:
    """A user's ``train_step`` under data parallelism.

    - The gradients it gives the model's optimizer (``self.optimizer.apply_gradients`` or
      ``apply``) are summed over ranks, each rank's weighted by its sample count, and
      divided by the global count before the update, so every rank makes the step of one
      process on the whole global batch.  The step must do so exactly once.
    - Afterwards one all-reduce shares the state of the model's metrics (``model.metrics``:
      the loss tracker, the compiled metrics, the metric objects it keeps), so the logs
      that are a metric's result are that metric's result over the whole global data; a log
      that is no metric's result is averaged over ranks, weighted by sample count.  The
      non-trainable weights (BatchNormalization's moving statistics) are averaged the same
      way.  A ``Mean`` given one number without a sample weight during the step (a loss
      tracker fed the batch's mean) weighs this rank's share of the global batch
      (:class:`_ScalarMeans`), so the ranks' updates add up to one process's.
    - A rank whose part of the batch is empty still runs the step (every rank must make the
      same collectives) on one row of zeros: its gradients and logs count for nothing, and
      its metrics' state and non-trainable weights are put back as they were.
    """

    def __init__(self, dp: DataParallel, model: Any):
        self.dp, self.model = dp, model

    def _metric_variables(self) -> list:
        return metric_variables(self.model.metrics)

    def run(self, run: Any, xs: list, ys: list, sws: list, size: int | None = None) -> dict:
        from . import autodiff
        from . import backend as _backend

        B = _backend.current()
        model, dp = self.model, self.dp
        n_local = int(B.shape(xs[0])[0]) if xs else 0
        weight = float(n_local)
        states = self._metric_variables()
        frozen = [v for v in model.non_trainable_weights if _is_float(B, v.value)]
        kept = None
        if not n_local:  # one row of zeros, counted for nothing
            kept = [v.value for v in states + frozen]
            xs = [_one_row(B, a, 0.0) for a in xs]
            ys = [_one_row(B, a, 0.0) for a in ys]
            sws = [_one_row(B, a, 1.0) for a in sws]
        optimizer = model.optimizer
        real_apply = optimizer.apply
        calls: list[int] = []

        def apply(grads: Any, variables: Any = None, *args: Any, **kwargs: Any) -> Any:
            if calls:
                raise DistributedError(
                    f"{type(model).__name__}.train_step updates the weights through "
                    "the optimizer more than once per step; under data parallelism the "
                    "gradients given to self.optimizer.apply_gradients are averaged over the "
                    "processes, once per step: give it all the gradients in one call, or set "
                    "POLYKERAS_DISTRIBUTE=off"
                )
            calls.append(1)
            grads = [None if g is None else autodiff.raw(g) for g in grads]
            present = [g for g in grads if g is not None]
            if not n_local:
                present = [B.zeros(tuple(B.shape(g)), B.dtype_name(g)) for g in present]
            dtype = B.dtype_name(present[0]) if present else "float32"
            summed = dp.gradient_sum(B, present, dtype, weight)
            for i, g in enumerate(present):
                summed.ready(i, g)
            got = summed.finish([B.asarray(np.asarray([weight], dtype))])
            total = float(np.asarray(B.to_numpy(got[-1])).reshape(-1)[0])
            averaged = iter(B.divide(g, total) for g in got[:-1])
            grads = [None if g is None else next(averaged) for g in grads]
            return real_apply(grads, variables, *args, **kwargs)

        own = optimizer.__dict__.get("apply")
        optimizer.apply = apply  # for this step only: the optimizer's apply, wrapped
        try:
            with _ScalarMeans(model, n_local / size if size else None):
                logs = run(xs, ys, sws)
        finally:
            if own is None:
                del optimizer.apply
            else:
                optimizer.apply = own
        if not calls:
            raise DistributedError(
                f"{type(model).__name__}.train_step did not update the weights through "
                "self.optimizer (apply_gradients or apply): under data parallelism that is "
                "where the gradients are averaged over the processes, and weights updated "
                "otherwise would drift apart. Update them with self.optimizer, or set "
                "POLYKERAS_DISTRIBUTE=off"
            )
        if kept is not None:
            for var, value in zip(states + frozen, kept):
                var.assign(value)
        return self._global_logs(B, logs, states, frozen, weight)

    def _global_logs(self, B: Any, logs: dict, states: list, frozen: list, weight: float) -> dict:
        from .training import custom_steps

        keys = sorted(logs)
        local = custom_steps.to_floats(custom_steps.metrics_result(self.model), "metrics")
        values = [logs[k] * weight if weight else 0.0 for k in keys]
        # a log is a metric's result where every rank with samples says so
        flags = [weight if key in local and local[key] == logs[key] else 0.0 for key in keys]
        head = np.asarray([*values, *flags, weight], np.float64)
        parts = [B.asarray(head)]
        parts += [B.multiply(v.value, weight) for v in frozen]
        parts += [v.value for v in states]
        got = self.dp.sum_flat(B, parts, "float64")
        head = np.asarray(B.to_numpy(got[0]), np.float64)
        total = float(head[-1])
        for var, value in zip(frozen, got[1 : 1 + len(frozen)]):
            var.assign(B.divide(value, total))
        shared = read_with_state(
            states,
            got[1 + len(frozen) :],
            lambda: custom_steps.to_floats(custom_steps.metrics_result(self.model), "metrics"),
        )
        out = {}
        for key, summed, flag in zip(keys, head[: len(keys)], head[len(keys) : -1]):
            out[key] = shared[key] if flag == total else float(summed) / total
        return out


class _CustomTests:
    """A user's ``test_step`` under data parallelism, for one evaluation (``evaluate``, or
    the validation of an epoch).

    Each rank runs the step on its part of every global batch (a rank whose part is empty
    runs it on one row of zeros and puts its metrics' state back, so that it counts for
    nothing).  The logs are made global as a custom ``train_step``'s are
    (:meth:`_CustomStep._global_logs`: a metric's result from the state summed over ranks,
    another log averaged over ranks by sample count): after every step when something sees
    each step's logs (``each_step``: callbacks), else once, after the last step
    (:meth:`finish`), so that a validation makes one all-reduce in all."""

    def __init__(self, dp: DataParallel, model: Any, each_step: bool):
        self.step = _CustomStep(dp, model)
        self.each_step = each_step
        self.weight = 0.0  # this rank's samples in the last step
        self.logs: dict | None = None  # the last step's logs, still this rank's own

    def run(self, run: Any, xs: list, ys: list, sws: list, size: int | None = None) -> dict:
        from . import backend as _backend

        B = _backend.current()
        n_local = int(B.shape(xs[0])[0]) if xs else 0
        states = self.step._metric_variables()
        kept = None
        if not n_local:
            kept = [v.value for v in states]
            xs = [_one_row(B, a, 0.0) for a in xs]
            ys = [_one_row(B, a, 0.0) for a in ys]
            sws = [_one_row(B, a, 1.0) for a in sws]
        with _ScalarMeans(self.step.model, n_local / size if size else None):
            logs = run(xs, ys, sws)
        if kept is not None:
            for var, value in zip(states, kept):
                var.assign(value)
        self.weight = float(n_local)
        if self.each_step:
            self.logs = None
            return self.step._global_logs(B, logs, states, [], self.weight)
        self.logs = logs
        return logs

    def finish(self, logs: dict) -> dict:
        """The evaluation's logs: the last step's, made global if they are not yet."""
        if self.logs is None:
            return logs
        from . import backend as _backend

        B = _backend.current()
        states = self.step._metric_variables()
        last, self.logs = self.logs, None
        return self.step._global_logs(B, last, states, [], self.weight)


def _is_float(B: Any, value: Any) -> bool:
    return B.dtype_name(value).startswith(("float", "bfloat"))


def _one_row(B: Any, a: Any, fill: float) -> Any:
    if a is None:
        return None
    shape = (1, *tuple(B.shape(a))[1:])
    return B.add(B.zeros(shape, B.dtype_name(a)), fill) if fill else B.zeros(shape, B.dtype_name(a))


def _takes_grad_ready(fn: Any) -> bool:
    import inspect

    try:
        return "grad_ready" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


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


def _shut_down_at_exit(dp: DataParallel) -> None:
    """Leave the process group before the interpreter tears down: an engine's threads left
    running then (gloo's) can abort the process at exit (``terminate called without an
    active exception``), so that a training script that ended well exits with an error."""
    import atexit
    import weakref

    ref = weakref.ref(dp)

    def leave() -> None:
        live = ref()
        if live is not None:
            live.shutdown()

    atexit.register(leave)


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
