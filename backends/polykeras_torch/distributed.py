"""polykeras' communicator on ``torch.distributed``: Gloo for host arrays, NCCL for CUDA ones.

Joins the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``), or uses the one the script already initialised.
Arrays of any polykeras backend travel: torch tensors as they are, NumPy arrays through
``torch.from_numpy`` (no copy), CuPy arrays through DLPack (no copy).
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import numpy as np

FAILURE_KEY = "polykeras/failure"
_NEEDED = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")


class TorchCommunicator:
    def __init__(self, timeout_s: float = 600.0):
        import torch
        import torch.distributed as dist

        from polykeras.distribute import DistributedError

        if not dist.is_available():
            raise DistributedError(
                "DataParallel: this torch build has no torch.distributed support"
            )
        self._torch, self._dist = torch, dist
        self._owned = False
        if not dist.is_initialized():
            missing = [k for k in _NEEDED if k not in os.environ]
            if missing:
                raise DistributedError(
                    "DataParallel: no process group to join: the environment lacks "
                    f"{', '.join(missing)}. Launch the script with torchrun "
                    "(torchrun --nproc_per_node=2 train.py), or initialise "
                    "torch.distributed yourself before fit"
                )
            self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            use_nccl = _wants_cuda()
            if use_nccl:
                torch.cuda.set_device(self.local_rank)
            try:
                dist.init_process_group(
                    "nccl" if use_nccl else "gloo",
                    timeout=datetime.timedelta(seconds=float(timeout_s)),
                )
            except Exception as exc:
                raise DistributedError(_cannot_join(exc, timeout_s)) from exc
            self._owned = True
        else:
            self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self._nccl = dist.get_backend() == "nccl"
        self.device = f"cuda:{self.local_rank}" if self._nccl else None

    # -- arrays in and out -----------------------------------------------------------------------
    def _to_torch(self, x: Any) -> tuple[Any, str]:
        torch = self._torch
        if isinstance(x, torch.Tensor):
            t = x.detach()
            if self._nccl and not t.is_cuda:
                return t.to(self.device), "torch-host"
            if not self._nccl and t.is_cuda:
                return t.cpu(), "torch-cuda"
            return t.contiguous(), "torch"
        if isinstance(x, np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(x))
            return (t.to(self.device), "numpy") if self._nccl else (t, "numpy")
        if hasattr(x, "__dlpack__"):  # CuPy and other DLPack producers
            t = torch.from_dlpack(x)
            return (t if self._nccl else t.cpu()), "dlpack"
        raise TypeError(f"the communicator cannot send a {type(x).__name__}")

    def _back(self, t: Any, kind: str, like: Any) -> Any:
        if kind == "torch":
            return t
        if kind == "torch-host":
            return t.cpu()
        if kind == "torch-cuda":
            return t.to(like.device)
        if kind == "numpy":
            return t.cpu().numpy()
        import importlib

        cupy = importlib.import_module("cupy")  # a DLPack array here is a CuPy one
        return cupy.from_dlpack(t if t.is_cuda else t.cuda())

    def all_reduce_sum(self, B: Any, x: Any) -> Any:
        t, kind = self._to_torch(x)
        if kind == "torch" and t is x:
            t = t.clone()  # never change the caller's array
        with self._torch.no_grad():
            self._dist.all_reduce(t, op=self._dist.ReduceOp.SUM)
        return self._back(t, kind, x)

    def all_reduce_sum_start(self, B: Any, x: Any) -> _Started:
        """Start the sum of ``x`` over ranks without waiting (the backward pass goes on
        while Gloo or NCCL works); ``wait()`` on the handle gives it."""
        t, kind = self._to_torch(x)
        if kind == "torch" and t is x:
            t = t.clone()
        with self._torch.no_grad():
            work = self._dist.all_reduce(t, op=self._dist.ReduceOp.SUM, async_op=True)
        return _Started(self, work, t, kind, x)

    def broadcast(self, B: Any, x: Any, src: int = 0) -> Any:
        t, kind = self._to_torch(x)
        if kind == "torch" and t is x:
            t = t.clone()
        with self._torch.no_grad():
            self._dist.broadcast(t, src=src)
        return self._back(t, kind, x)

    # -- failures ----------------------------------------------------------------------------------
    def _store(self) -> Any:
        try:
            from torch.distributed import distributed_c10d

            return distributed_c10d._get_default_store()
        except Exception:
            return None

    def report_failure(self, message: str) -> None:
        store = self._store()
        if store is None:
            return
        try:
            if not store.check([FAILURE_KEY]):
                store.set(FAILURE_KEY, message)
        except Exception:
            pass

    def failure(self) -> str | None:
        store = self._store()
        if store is None:
            return None
        try:
            if store.check([FAILURE_KEY]):
                return bytes(store.get(FAILURE_KEY)).decode("utf-8", "replace")
        except Exception:
            return None
        return None

    def shutdown(self) -> None:
        if self._owned and self._dist.is_initialized():
            try:
                self._dist.destroy_process_group()
            except Exception:
                pass
        self._owned = False


class _Started:
    """An all-reduce in flight."""

    def __init__(self, comm: TorchCommunicator, work: Any, t: Any, kind: str, like: Any):
        self._comm, self._work, self._t, self._kind, self._like = comm, work, t, kind, like

    def wait(self) -> Any:
        self._work.wait()
        return self._comm._back(self._t, self._kind, self._like)


def _cannot_join(exc: BaseException, timeout_s: float) -> str:
    """Why this rank could not join the process group, and what to do about it."""
    rank = os.environ.get("RANK", "?")
    world = os.environ.get("WORLD_SIZE", "?")
    where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    return (
        f"DataParallel: rank {rank} of {world} could not join the process group at "
        f"MASTER_ADDR:MASTER_PORT = {where} within the timeout ({float(timeout_s):g} s): "
        f"{type(exc).__name__}: {first}. Every rank must reach that address (rank 0 "
        "listens there; check the host name resolves to that machine on every rank and the "
        "port is open). On one machine whose host name does not resolve to itself, start "
        "with torchrun --local-addr=127.0.0.1 (or --master-addr=127.0.0.1); a longer "
        "DataParallel(timeout=...) helps when some ranks start late"
    )


def _wants_cuda() -> bool:
    """NCCL when the active polykeras backend keeps its arrays on a CUDA device."""
    from polykeras import backend

    try:
        device = str(backend.current().device)
    except Exception:
        return False
    return device.startswith("cuda")


def factory(timeout_s: float = 600.0) -> TorchCommunicator:
    return TorchCommunicator(timeout_s)
