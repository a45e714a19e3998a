"""A loader's cost is bounded by the file it reads, not by what the file declares, and
every way a file can be broken ends in one of our errors, naming the file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from polykeras.layers import Dense, Input
from polykeras.models import Model, load_model
from polykeras.saving import SavingError, UnsafeContentError
from polykeras.saving.hdf5 import _repeated


def _mlp():
    inp = Input(shape=(4,), name="x")
    return Model(inp, Dense(3, name="out")(inp))


def _run_isolated(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("call", ["load_model(p)", "_mlp().load_weights(p)"])
def test_a_named_pipe_is_refused_not_waited_on(tmp_path, call):
    fifo = tmp_path / "model.h5"
    os.mkfifo(fifo)
    result = _run_isolated(
        f"""
        from polykeras.layers import Dense, Input
        from polykeras.models import Model, load_model
        from polykeras.saving import SavingError
        def _mlp():
            inp = Input(shape=(4,), name="x")
            return Model(inp, Dense(3, name="out")(inp))
        p = {str(fifo)!r}
        try:
            {call}
        except SavingError as exc:
            assert "regular file" in str(exc), exc
            print("refused")
        """,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused" in result.stdout


def test_chunks_larger_than_the_data_are_refused(tmp_path):
    model = _mlp()
    path = tmp_path / "w.h5"
    model.save_weights(path)
    with h5py.File(path, "r+") as f:
        group = f["out/out"] if "out/out" in f else f["out"]
        name = next(k for k in group if k.startswith("kernel"))
        del group[name]
        group.create_dataset(
            name,
            data=np.zeros((4, 3), "float32"),
            chunks=(4096, 4096),
            maxshape=(None, None),
            compression="gzip",
        )
    before = model.get_weights()
    with pytest.raises(UnsafeContentError, match="chunks"):
        model.load_weights(path)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_repeated_names_are_found_in_linear_time():
    names = [f"layer_{i}" for i in range(200_000)] + ["layer_7", "layer_9"]
    assert _repeated(names) == ["layer_7", "layer_9"]  # 200k names: instant, not minutes


def test_every_flipped_byte_is_our_error_or_a_clean_load(tmp_path):
    """Damage a saved model one byte at a time: each load either works or raises a
    SavingError (never h5py's RuntimeError/OSError or a crash)."""
    model = _mlp()
    model.compile(optimizer="adam", loss="mse")
    path = tmp_path / "m.h5"
    model.save(path)
    clean = path.read_bytes()
    rng = np.random.default_rng(7)
    bad = tmp_path / "bad.h5"
    outcomes = {"loaded": 0, "refused": 0}
    for pos in rng.choice(len(clean), size=120, replace=False):
        data = bytearray(clean)
        data[pos] ^= 0xFF
        bad.write_bytes(bytes(data))
        try:
            load_model(bad)
            outcomes["loaded"] += 1
        except SavingError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0
