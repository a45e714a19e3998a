"""Data-parallel training on torch.distributed (Gloo, 2 CPU processes).

Each run launches real processes: with torchrun (the launcher users run) and with the
environment variables torchrun sets, started by hand (so that a failing rank does not make
torchrun kill its peers, and the peers' own error can be read).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import polykeras
from polykeras import distribute

from helpers import torch_unusable_reason

HERE = Path(__file__).parent
SCRIPT = HERE / "fixtures" / "dp_train.py"

pytestmark = pytest.mark.skipif(
    torch_unusable_reason() is not None, reason=f"torch.distributed: {torch_unusable_reason()}"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(backend: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE"))}
    env.update(POLYKERAS_BACKEND=backend, OMP_NUM_THREADS="1", PYTHONPATH=str(HERE))
    env.update(extra)
    return env


def _by_hand(out: Path, mode: str, backend: str, world: int = 2, timeout: float = 120):
    """Start ``world`` ranks with torchrun's variables; their (returncode, stderr)."""
    port = str(_free_port())
    procs = []
    for rank in range(world):
        env = _env(
            backend,
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(world),
            LOCAL_WORLD_SIZE=str(world),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(SCRIPT), str(out), mode],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError(f"a rank did not finish within {timeout} s (a hang)") from None
        results.append((p.returncode, err))
    return results


def _single_process(backend: str) -> dict:
    sys.path.insert(0, str(HERE / "fixtures"))
    try:
        import dp_train
    finally:
        sys.path.pop(0)
    ref = {}
    with polykeras.use_backend(backend):
        for opt in ("sgd", "adam"):
            model, history = dp_train.train(opt, seed=1)
            for i, w in enumerate(model.get_weights()):
                ref[f"{opt}_w{i}"] = w
            ref[f"{opt}_loss"] = np.asarray(history["loss"])
            ref[f"{opt}_accuracy"] = np.asarray(history["accuracy"])
            ref[f"{opt}_evaluate"] = np.asarray(history["evaluate"])
            ref[f"{opt}_predict"] = history["predict"]
            ref[f"{opt}_predict_one"] = history["predict_one"]
    return ref


def _check_equal(out: Path, ref: dict) -> None:
    ranks = [dict(np.load(out / f"rank{rank}.npz")) for rank in (0, 1)]
    shuffled = sorted(k for k in ranks[0] if k.startswith("shuffled_"))
    assert shuffled, "the shuffled run wrote no weights"
    for key in shuffled:  # ranks stay identical through shuffled epochs
        np.testing.assert_array_equal(ranks[1][key], ranks[0][key], err_msg=key)
    for rank, got in enumerate(ranks):
        assert "DataError" in str(got.pop("generator_error")), "a generator must be refused"
        for key in shuffled:
            got.pop(key)
        assert sorted(got) == sorted(ref)
        for key, want in ref.items():
            np.testing.assert_allclose(
                got[key], want, rtol=1e-5, atol=1e-6, err_msg=f"rank {rank}: {key}"
            )


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_two_ranks_equal_one_process(tmp_path, backend):
    """One epoch on 2 ranks (global batch 16, an uneven last batch that leaves rank 1
    empty) gives the weights, loss and accuracy of one process, for SGD and Adam; rank 1
    starts from other weights, which fit replaces by rank 0's."""
    results = _by_hand(tmp_path, "train", backend)
    for rank, (code, err) in enumerate(results):
        assert code == 0, f"rank {rank} failed:\n{err[-3000:]}"
    _check_equal(tmp_path, _single_process(backend))


def test_under_torchrun(tmp_path):
    """The unchanged script under the real launcher (torchrun --standalone)."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(SCRIPT),
        str(tmp_path),
        "train",
    ]
    proc = subprocess.run(cmd, env=_env("torch"), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_equal(tmp_path, _single_process("torch"))


def test_a_failing_rank_is_named(tmp_path):
    """Rank 1 raises at its second batch: it fails with its own error, and rank 0 stops
    (no hang) with a DistributedError naming rank 1 and the error."""
    (code0, err0), (code1, err1) = _by_hand(tmp_path, "fail", "numpy", timeout=90)
    assert code1 != 0 and "boom on purpose" in err1
    assert code0 != 0
    assert "DistributedError" in err0, err0[-2000:]
    assert "rank 1 of 2 raised RuntimeError: boom on purpose" in err0, err0[-2000:]


def test_single_process_by_default(monkeypatch):
    for key in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    assert distribute.distribution() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("POLYKERAS_DISTRIBUTE", "off")
    assert distribute.distribution() is None


def test_unknown_engine_is_named():
    dp = distribute.DataParallel("mpi")
    with pytest.raises(distribute.DistributedError, match="no process-group engine named 'mpi'"):
        dp.comm()


def test_set_distribution_checks_its_argument():
    with pytest.raises(TypeError, match="DataParallel or None"):
        distribute.set_distribution("torch")


def test_without_a_launcher_the_error_says_how(monkeypatch):
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    dp = distribute.DataParallel()
    with pytest.raises(distribute.DistributedError, match="torchrun"):
        dp.comm()
