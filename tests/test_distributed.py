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


def _by_hand(
    out: Path, mode: str, backend: str, world: int = 2, timeout: float = 120, **extra: str
):
    """Start ``world`` ranks with torchrun's variables; their (returncode, stderr)."""
    port = str(_free_port())
    procs = []
    for rank in range(world):
        env = _env(
            backend,
            **extra,
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
    stops both with an error naming the ranks.  Gradient buckets of 10 bytes (3 here): the
    gradients are summed in several all-reduces per step (started during the backward
    pass on torch); under torchrun below, the default 25 MB bucket: one per step."""
    results = _by_hand(tmp_path, "train", backend, DP_TEST_BUCKET_MB="0.00001")
    for rank, (code, err) in enumerate(results):
        assert code == 0, f"rank {rank} failed:\n{err[-3000:]}"
    _check_equal(tmp_path, _single_process(backend))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_own_train_step_on_two_ranks(tmp_path, backend):
    """A model's own train_step (Keras 3 style) on 2 ranks, 2 epochs whose last
    batch leaves rank 1 nothing: the gradients given to apply_gradients are averaged over
    the ranks, so the weights equal one process's, and the logs (metric results over the
    global data, a plain value averaged by sample count) too, for SGD and Adam; a loss
    tracker given each batch's mean alone counts each step once, as in one process (each
    rank's update weighs its share of the batch).  A step that applies gradients in two
    calls is refused on every rank."""
    results = _by_hand(tmp_path, "own_step", backend)
    for rank, (code, err) in enumerate(results):
        assert code == 0, f"rank {rank} failed:\n{err[-3000:]}"
    sys.path.insert(0, str(HERE / "fixtures"))
    try:
        import dp_train
    finally:
        sys.path.pop(0)
    ref: dict = {}
    with polykeras.use_backend(backend):
        for opt in ("sgd", "adam"):
            ref.update(dp_train.results_of(f"own_{opt}", *dp_train.train_own_step(opt, seed=1)))
        plain = dp_train.train_own_step("sgd", 1, plain=True)
        ref.update(dp_train.results_of("own_plain", *plain))
    for rank in (0, 1):
        got = dict(np.load(tmp_path / f"rank{rank}.npz"))
        told = str(got.pop("twice_error"))
        assert told.startswith("DistributedError") and "more than once per step" in told, told
        assert sorted(got) == sorted(ref)
        assert "own_sgd_accuracy" in got and "own_sgd_batch_loss" in got
        for key, want in ref.items():
            np.testing.assert_allclose(
                got[key], want, rtol=1e-5, atol=1e-6, err_msg=f"rank {rank}: {key}"
            )


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_metric_objects_and_own_test_step_on_two_ranks(tmp_path, backend):
    """On 2 ranks, the logs equal one process's on the whole data (rtol 1e-5): metric
    objects given to compile (AUC, Precision, Recall, TruePositives, CategoricalAccuracy,
    MeanSquaredError) at every batch and at the end of each epoch, in validation on arrays
    and on a Sequence, in evaluate on arrays and on a generator; a model's own test_step
    in validation and evaluate (with callbacks: global logs at each step; without: once at
    the end); a masked output, whose loss is a mean over the batch's kept positions (each
    rank's part keeps its own number): weights, loss and accuracy in fit, validation and
    evaluate; add_metric with one value per sample, in a layer and on the model's output.
    Every last batch leaves rank 1 nothing."""
    results = _by_hand(tmp_path, "metrics", backend)
    for rank, (code, err) in enumerate(results):
        assert code == 0, f"rank {rank} failed:\n{err[-3000:]}"
    sys.path.insert(0, str(HERE / "fixtures"))
    try:
        import dp_train
    finally:
        sys.path.pop(0)
    ref: dict = {}
    with polykeras.use_backend(backend):
        ref.update(dp_train.results_of("objects", *dp_train.train_metric_objects(seed=1)))
        ref.update(dp_train.results_of("masked", *dp_train.train_masked(seed=1)))
        ref.update(dp_train.results_of("own_test", *dp_train.train_own_test(seed=1)))
        ref.update(dp_train.results_of("added", *dp_train.train_added_metrics(seed=1)))
    for key in ("added_row_sum", "added_val_top_prob", "added_evaluate_row_sum"):
        assert key in ref, sorted(ref)
    for key in ("objects_val_auc", "objects_batch_true_positives", "objects_evaluate_gen_auc"):
        assert key in ref, sorted(ref)
    for key in ("own_test_val_auc", "own_test_test_batch_auc", "own_test_more_val_batch_loss"):
        assert key in ref, sorted(ref)
    assert "masked_val_accuracy" in ref and "masked_evaluate_gen_loss" in ref
    for rank in (0, 1):
        got = dict(np.load(tmp_path / f"rank{rank}.npz"))
        assert sorted(got) == sorted(ref)
        for key, want in ref.items():
            np.testing.assert_allclose(
                got[key], want, rtol=1e-5, atol=1e-6, err_msg=f"rank {rank}: {key}"
            )


def test_backup_every_n_batches_resumes_alike(tmp_path):
    """BackupAndRestore(save_freq=3) on 2 ranks: rank 0 writes a backup every 3 batches;
    after a stop at batch 1 of epoch 1 every rank resumes from it (epoch 1 again from its
    start, as Keras 3 does) and ends with one process's weights and losses."""
    results = _by_hand(tmp_path, "resume", "torch")
    for rank, (code, err) in enumerate(results):
        assert code == 0, f"rank {rank} failed:\n{err[-3000:]}"
    sys.path.insert(0, str(HERE / "fixtures"))
    try:
        import dp_train
    finally:
        sys.path.pop(0)
    with polykeras.use_backend("torch"):
        ref = dp_train.results_of(
            "resumed", *dp_train.train_resumed(str(tmp_path / "single"), seed=1)
        )
    np.testing.assert_array_equal(ref["resumed_epochs"], [1, 2])
    assert not (tmp_path / "backup").exists()  # the completed fit removed it
    for rank in (0, 1):
        got = dict(np.load(tmp_path / f"rank{rank}.npz"))
        assert sorted(got) == sorted(ref)
        for key, want in ref.items():
            np.testing.assert_allclose(
                got[key], want, rtol=1e-5, atol=1e-6, err_msg=f"rank {rank}: {key}"
            )


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


def test_a_rank_that_cannot_join_is_told_why(tmp_path):
    """A rank whose MASTER_ADDR:MASTER_PORT does not answer (nothing listens on the port)
    stops after the timeout with an error naming the rank, the address, the timeout and
    the way out, instead of waiting for the store for ever."""
    port = str(_free_port())  # closed again: nothing listens there
    code = (
        "from polykeras import distribute\n"
        "try:\n"
        "    distribute.DataParallel(timeout=1).comm()\n"
        "except distribute.DistributedError as exc:\n"
        "    print('TOLD:', exc)\n"
    )
    env = _env("numpy", MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK="1", WORLD_SIZE="2")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    told = proc.stdout
    assert "TOLD:" in told, proc.stderr[-2000:]
    where = f"MASTER_ADDR:MASTER_PORT = 127.0.0.1:{port}"
    assert f"rank 1 of 2 could not join the process group at {where}" in told, told
    assert "within the timeout (1 s)" in told and "DistNetworkError" in told, told
    assert "torchrun --local-addr=127.0.0.1" in told, told


class _OneRank:
    """A DataParallel of one rank without a process group: each started all-reduce is
    recorded (with how far the backward pass had got) and returns its input."""

    def __init__(self, bucket_mb: float):
        self.bucket_mb = bucket_mb
        self.started: list[int] = []

    def all_reduce_sum_start(self, B, x):
        self.started.append(int(B.shape(x)[0]))
        return distribute._Done(x)


class _Spy:
    """The backend ``B``, noting when its own backward pass returns."""

    def __init__(self, B, on_return):
        self._B, self._on_return = B, on_return

    def __getattr__(self, name):
        return getattr(self._B, name)

    def value_and_grad(self, fn, params, grad_ready=None):
        out = self._B.value_and_grad(fn, params, grad_ready=grad_ready)
        self._on_return()
        return out


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_gradient_buckets_start_during_the_backward_pass(backend):
    """Buckets are cut in reverse variable order; on torch (autograd) every bucket but
    the last starts while the backward pass runs, on the core's tape after it; the sums
    are the gradients times the weight, the extras come back in their own dtype."""
    with polykeras.use_backend(backend):
        B = polykeras.backend.current()
        values = [B.asarray(np.full(shape, 0.5, "float32")) for shape in ((6, 8), (8,), (8, 2))]
        fake = _OneRank(bucket_mb=30e-6)  # 30 bytes: [(8, 2)], [(8,)], [(6, 8)]
        sums = distribute.GradientSum(fake, B, values, "float32", 3.0)
        assert sums.buckets == [[2], [1], [0]]
        during: list[int] = []  # buckets started when the backend's backward pass ended

        def loss_fn(leaves):
            from polykeras import ops

            h = ops.matmul(ops.ones((4, 6)), leaves[0]) + leaves[1]
            return ops.sum(ops.square(ops.matmul(h, leaves[2]))), None

        if hasattr(B, "value_and_grad"):
            sums.B = _Spy(B, lambda: during.append(len(fake.started)))
        _, _, grads = sums.value_and_grad(loss_fn, values)
        sums.B = B
        got = sums.finish([B.asarray(np.asarray([2.0], "float64"))])
        assert during == ([2] if backend == "torch" else [])
        assert fake.started == [16, 8, 48 + 1]  # the last bucket carries the extra
        for g, want in zip(got[:3], grads):
            np.testing.assert_allclose(B.to_numpy(g), 3.0 * B.to_numpy(want), rtol=1e-6)
        assert B.dtype_name(got[3]) == "float64"
        np.testing.assert_array_equal(B.to_numpy(got[3]), [2.0])


def test_bucket_mb_is_checked():
    assert distribute.DataParallel(bucket_mb=1).bucket_mb == 1.0
    with pytest.raises(ValueError, match="bucket_mb"):
        distribute.DataParallel(bucket_mb=0)


KERAS3_RESUME = """
import os, sys, tempfile
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import keras

data = np.load(sys.argv[1])
x, y = data["x"], data["y"]


class CrashAt(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epoch = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (1, 1):
            raise RuntimeError("the machine went away")


class Count(keras.callbacks.Callback):
    seen = 0

    def on_train_batch_end(self, batch, logs=None):
        Count.seen += 1


def model():
    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(2, activation="softmax")])
    m.set_weights([data[f"w{i}"] for i in range(4)])
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    return m


folder = tempfile.mkdtemp()
try:
    model().fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(folder, save_freq=3), CrashAt()])
except RuntimeError:
    pass
m = model()
h = m.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
          callbacks=[keras.callbacks.BackupAndRestore(folder, save_freq=3), Count()])
out = {f"w{i}": w for i, w in enumerate(m.get_weights())}
np.savez(sys.argv[2], epochs=np.asarray(h.epoch), batches=np.asarray(Count.seen), **out)
"""


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_backup_every_n_batches_resumes_as_keras3(tmp_path, backend):
    """One process, BackupAndRestore(save_freq=3), a stop at batch 1 of epoch 1 (just
    after a backup): like Keras 3, the new fit runs epoch 1 again from its first batch
    with the weights saved at batch 1, then epoch 2; the same weights as Keras 3."""
    from helpers import run_keras3_script

    sys.path.insert(0, str(HERE / "fixtures"))
    try:
        import dp_train
    finally:
        sys.path.pop(0)
    x, y = dp_train.data()
    with polykeras.use_backend(backend):
        start = dp_train.build(1).get_weights()
        seen = []

        class Count(polykeras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                seen.append(batch)

        def model():
            m = dp_train.build(1)
            m.set_weights(start)
            m.compile(optimizer="sgd", loss="categorical_crossentropy")
            return m

        folder = tmp_path / "backup"
        with pytest.raises(RuntimeError, match="went away"):
            model().fit(
                x,
                y,
                batch_size=16,
                epochs=3,
                shuffle=False,
                verbose=0,
                callbacks=[
                    polykeras.callbacks.BackupAndRestore(folder, save_freq=3),
                    dp_train.CrashAt(1, 1),
                ],
            )
        resumed = model()
        history = resumed.fit(
            x,
            y,
            batch_size=16,
            epochs=3,
            shuffle=False,
            verbose=0,
            callbacks=[polykeras.callbacks.BackupAndRestore(folder, save_freq=3), Count()],
        )
    assert history.epoch == [1, 2] and seen == [0, 1, 2, 3] * 2
    ref = run_keras3_script(
        tmp_path, KERAS3_RESUME, {"x": x, "y": y, **{f"w{i}": w for i, w in enumerate(start)}}
    )
    np.testing.assert_array_equal(ref["epochs"], history.epoch)
    assert int(ref["batches"]) == len(seen)
    for i, w in enumerate(resumed.get_weights()):
        np.testing.assert_allclose(w, ref[f"w{i}"], rtol=1e-4, atol=1e-5)


KERAS3_FOLDERS = """
import os, shutil, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import keras

data = np.load(sys.argv[1])
x, y, top = data["x"], data["y"], str(data["top"])


class CrashAt(keras.callbacks.Callback):
    epoch = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (1, 1):
            raise RuntimeError("the machine went away")


def fit(folder, freq, *callbacks):
    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(2, activation="softmax")])
    m.set_weights([data[f"w{i}"] for i in range(4)])
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    backup = keras.callbacks.BackupAndRestore(folder, save_freq=freq)
    h = m.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
              callbacks=[backup, *callbacks])
    return m, h


out = {}
for freq in ("epoch", 3):
    theirs = os.path.join(top, f"theirs_{freq}")
    try:
        fit(theirs, freq, CrashAt())
    except RuntimeError:
        pass
    shutil.copytree(theirs, theirs + "_k")
    m, h = fit(theirs + "_k", freq)  # Keras resuming its own folder: the reference
    out[f"{freq}_ref_epochs"] = np.asarray(h.epoch)
    out.update({f"{freq}_ref_w{i}": w for i, w in enumerate(m.get_weights())})
    m, h = fit(os.path.join(top, f"mine_{freq}"), freq)  # Keras resuming polykeras' folder
    out[f"{freq}_cross_epochs"] = np.asarray(h.epoch)
    out.update({f"{freq}_cross_w{i}": w for i, w in enumerate(m.get_weights())})
np.savez(sys.argv[2], **out)
"""


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_backup_folders_resume_in_keras3_and_back(tmp_path, backend):
    """BackupAndRestore folders are Keras 3's: a folder polykeras wrote (a stop at batch 1
    of epoch 1; backups at each epoch's end, or every 3 batches) resumes in Keras 3, and
    one Keras 3 wrote resumes in polykeras, at the same epoch and with the same weights
    (Adam's state included) as Keras 3 resuming its own folder.  A folder from polykeras'
    older format ({"epoch": finished}) still resumes after the finished epoch."""
    import json

    from helpers import run_keras3_script

    sys.path.insert(0, str(HERE / "fixtures"))
    try:
        import dp_train
    finally:
        sys.path.pop(0)
    x, y = dp_train.data()
    keras = polykeras

    def fit(folder, freq, *callbacks):
        m = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )
        m.set_weights(start)
        m.compile(optimizer="adam", loss="categorical_crossentropy")
        backup = keras.callbacks.BackupAndRestore(folder, save_freq=freq)
        h = m.fit(
            x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[backup, *callbacks]
        )
        return m, h

    with polykeras.use_backend(backend):
        start = dp_train.build(1).get_weights()
        for freq in ("epoch", 3):
            with pytest.raises(RuntimeError, match="went away"):
                fit(tmp_path / f"mine_{freq}", freq, dp_train.CrashAt(1, 1))
        meta = json.loads((tmp_path / "mine_epoch" / "training_metadata.json").read_text())
        assert meta == {"epoch": 1, "batch": 0}, meta  # Keras 3's: the epoch to run next
        meta = json.loads((tmp_path / "mine_3" / "training_metadata.json").read_text())
        assert meta == {"epoch": 1, "batch": 1}, meta
        ref = run_keras3_script(
            tmp_path,
            KERAS3_FOLDERS,
            {"x": x, "y": y, "top": str(tmp_path), **{f"w{i}": w for i, w in enumerate(start)}},
        )
        for freq in ("epoch", 3):
            np.testing.assert_array_equal(ref[f"{freq}_ref_epochs"], [1, 2])
            np.testing.assert_array_equal(ref[f"{freq}_cross_epochs"], [1, 2])
            resumed, history = fit(tmp_path / f"theirs_{freq}", freq)
            assert history.epoch == [1, 2]
            assert not (tmp_path / f"theirs_{freq}").exists()  # the completed fit removed it
            for i, w in enumerate(resumed.get_weights()):
                want = ref[f"{freq}_ref_w{i}"]
                np.testing.assert_allclose(w, want, rtol=1e-4, atol=1e-5, err_msg=f"{freq} w{i}")
                got = ref[f"{freq}_cross_w{i}"]
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{freq} w{i}")
        # polykeras' older epoch backup: {"epoch": e} meant "epoch e finished"
        old = tmp_path / "old"
        with pytest.raises(RuntimeError, match="went away"):
            fit(old, "epoch", dp_train.CrashAt(1, 1))
        (old / "training_metadata.json").write_text(json.dumps({"epoch": 0}))
        _, history = fit(old, "epoch")
        assert history.epoch == [1, 2]
