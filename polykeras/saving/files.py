"""Atomic file writes: a temporary file in the same folder, fsync, then ``os.replace``.

A crash or an error part-way through a save leaves the previous file as it was and no
temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

_umask_lock = threading.Lock()
_umask: list[int] = []


def _current_umask() -> int:
    with _umask_lock:
        if not _umask:
            old = os.umask(0o022)
            os.umask(old)
            _umask.append(old)
        return _umask[0]


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Any, overwrite: bool = True) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically."""
    target = os.fspath(path)
    if not isinstance(target, str):
        target = os.fsdecode(target)
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise IsADirectoryError(
            f"cannot save to {target!r}: it is a folder; give a file name such as model.h5"
        )
    if not overwrite and os.path.exists(target):
        raise FileExistsError(f"{target!r} exists and overwrite=False; nothing was written")
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"cannot save to {target!r}: the folder {directory!r} does not exist"
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        _fsync_path(tmp)
        try:
            mode = os.stat(target).st_mode & 0o777
        except OSError:
            mode = 0o666 & ~_current_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
