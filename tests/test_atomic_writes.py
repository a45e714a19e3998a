"""Saving writes atomically, and never silently: read-only targets, symbolic links,
read-only folders and temporary files left by killed saves."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from polykeras.layers import Dense, Input
from polykeras.models import Model, load_model
from polykeras.saving import files


def _mlp():
    inp = Input(shape=(4,), name="x")
    return Model(inp, Dense(3, name="out")(inp))


def test_a_read_only_target_is_refused_and_kept(tmp_path):
    path = tmp_path / "m.h5"
    path.write_bytes(b"keep me")
    path.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only"):
        _mlp().save(path)
    assert path.read_bytes() == b"keep me"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_a_symlink_is_written_through(tmp_path):
    real = tmp_path / "store" / "m.h5"
    real.parent.mkdir()
    link = tmp_path / "latest.h5"
    link.symlink_to(real)
    model = _mlp()
    model.save(link)
    assert link.is_symlink() and real.is_file()
    np.testing.assert_array_equal(load_model(link).get_weights()[0], model.get_weights()[0])
    model2 = _mlp()
    model2.save(link)  # again, over an existing target: still a link, to the new file
    assert link.is_symlink()
    np.testing.assert_array_equal(load_model(real).get_weights()[0], model2.get_weights()[0])


def test_a_read_only_folder_says_the_folder_must_be_writable(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".m.h5.tmp"))

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match="folder .* is not writable"):
        _mlp().save(tmp_path / "m.h5")


def test_temporaries_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    target = tmp_path / "m.h5"
    # a save that is killed while it writes: it leaves its temporary file behind
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from polykeras.saving import files
        with files.atomic_path({str(target)!r}) as tmp:
            open(tmp, "wb").write(b"partial")
            print(tmp, flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    tmp = proc.stdout.readline().strip()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert os.path.exists(tmp) and ".polykeras-tmp-" in tmp
    time.sleep(0.1)
    _mlp().save(target)
    assert not os.path.exists(tmp)
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]


def test_temporaries_of_a_live_save_are_left_alone(tmp_path):
    target = tmp_path / "m.h5"
    alive = tmp_path / f".m.h5.polykeras-tmp-{os.getppid()}-abc.tmp"
    alive.write_bytes(b"in progress")
    assert files.remove_stale_temporaries(str(target)) == []
    assert alive.exists()


def test_an_interrupt_a_library_swallowed_still_stops_the_save(tmp_path):
    """Ctrl-C during a write that some library code catches and drops (h5py's weakref
    callbacks do): the save still ends with KeyboardInterrupt and the old file stays."""
    import os
    import signal
    import time

    from polykeras.saving import files

    target = tmp_path / "model.h5"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("half new")
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
            except KeyboardInterrupt:
                pass  # swallowed, as in a weakref callback
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.h5"]  # no temporary left
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
