"""Data-parallel training on torch.distributed (Gloo, 2 CPU processes).

Each run launches real processes: with torchrun (the launcher users run) and with the
environment variables torchrun sets, started by hand (so that a failing rank does not make
torchrun kill its peers, and the peers' own error can be read).
"""

from __future__ import annotations

import os
import signal
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
            ref.update(dp_train.results_of(f"batches_{opt}", *dp_train.train_batches(opt, seed=1)))
    return ref


def _check_equal(out: Path, ref: dict) -> None:
    ranks = [dict(np.load(out / f"rank{rank}.npz")) for rank in (0, 1)]
    same = sorted(k for k in ranks[0] if k.startswith(("shuffled_", "runout_w", "runout_ep")))
    assert "shuffled_w0" in same and "shuffled_seq_w0" in same and "runout_w0" in same
    for key in same:  # ranks stay identical through shuffled epochs and a run-out source
        np.testing.assert_array_equal(ranks[1][key], ranks[0][key], err_msg=key)
    for rank, got in enumerate(ranks):
        # rank 1's generator ran out at batch 2: every rank ended the training there
        np.testing.assert_array_equal(got["runout_epochs"], [0])
        warned = str(got.pop("warning_runout"))
        assert "ran out of batches on rank 1 of 2 at batch 2" in warned, warned
        mismatch = str(got.pop("mismatch_error"))
        assert mismatch.startswith("DistributedError") and "batch 0" in mismatch, mismatch
        assert "rank 1: 16 samples" in mismatch, mismatch
        for key in ("mismatch_evaluate", "mismatch_predict"):  # 4 batches on rank 0, 2 on 1
            told = str(got.pop(key))
            assert told.startswith("DistributedError") and "in its batches" in told, told
            assert "rank 0: 49 samples" in told and "rank 1: 32 samples" in told, told
        for key in same:
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
    starts from other weights, which fit replaces by rank 0's.  The same on batches from
    Python: a Sequence with worker threads and validation_data, an endless generator with
    steps_per_epoch, evaluate and predict on generators.  A generator that runs out on one
    rank ends the training on both with a warning; one that yields other data on rank 1
    stops both with an error naming the ranks."""
    results = _by_hand(tmp_path, "train", backend)
    for rank, (code, err) in enumerate(results):
        assert code == 0, f"rank {rank} failed:\n{err[-3000:]}"
    _check_equal(tmp_path, _single_process(backend))


def test_under_torchrun(tmp_path):
    """The unchanged script under the real launcher (torchrun --standalone).

    ``--local-addr=127.0.0.1``: without it torchrun hands its workers the machine's fully
    qualified host name as ``MASTER_ADDR``, and on a machine whose name does not resolve
    to a reachable address (a CI container) the workers wait for the store until the
    timeout.  The test is about our script under torchrun, not about the host's DNS."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "--local-addr=127.0.0.1",
        str(SCRIPT),
        str(tmp_path),
        "train",
    ]
    proc = subprocess.Popen(
        cmd,
        env=_env("torch"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # torchrun and its workers in one group, killed together
    )
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(f"torchrun did not finish within 180 s:\n{err[-3000:]}") from None
    assert proc.returncode == 0, err[-3000:]
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


class _FakeRank:
    """Rank 1 of 2 without a process group: every rank has every batch."""

    rank, world_size, is_chief = 1, 2, False
    shard = distribute.DataParallel.shard
    censuses = 0

    def comm(self):
        return self

    def step_census(self, B, size, fingerprint, where, what, pos):
        self.censuses += 1
        return "all" if size is not None else "none"


def test_each_rank_takes_its_part_of_each_batch_from_python():
    """Rank 1 of 2 gets the second half of each global batch (the array path's split),
    nothing of a 1-row batch, and the size of the whole batch; one census per batch and
    one at the end."""
    sys.path.insert(0, str(HERE / "fixtures"))
    try:
        import dp_train
    finally:
        sys.path.pop(0)
    from polykeras.training import batches as _batches

    x, y = dp_train.data()
    model = dp_train.build(1)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    source = _batches.BatchSource(dp_train.Batches(x, y, 16), "fit")
    fake = _FakeRank()
    got = list(
        model._source_batches_dp(model._compiled, source, source.epoch(None, False, None), fake)
    )
    assert [size for *_, size in got] == [16, 16, 16, 1]
    assert [len(xs[0]) for xs, *_ in got] == [8, 8, 8, 0]
    np.testing.assert_array_equal(np.asarray(got[0][0][0]), x[8:16])
    np.testing.assert_array_equal(np.asarray(got[2][1][0]), y[40:48])
    assert fake.censuses == 5


def test_batch_fingerprint_tells_batches_apart():
    x = np.arange(12, dtype="float32").reshape(6, 2)
    assert distribute.batch_fingerprint([x]) == distribute.batch_fingerprint([x.copy()])
    assert distribute.batch_fingerprint([x]) != distribute.batch_fingerprint([x[::-1]])
    assert distribute.batch_fingerprint([x]) != distribute.batch_fingerprint([x[:5]])
    assert distribute.batch_fingerprint([x]) < 2**24
