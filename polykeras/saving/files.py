"""Atomic file writes: a temporary file in the same folder, fsync, then ``os.replace``.

A crash or an error part-way through a save leaves the previous file as it was and no
temporary file behind; a save killed outright (SIGKILL) may leave its temporary file, which
the next save of the same target removes.
"""

from __future__ import annotations

import contextlib
import os
import signal
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


_TMP_TAG = ".polykeras-tmp-"


def _temp_prefix(target: str) -> str:
    """Temporary files of ``target`` are ``.<name>.polykeras-tmp-<pid>-<random>``: hidden,
    and named so that a later save can tell whose they are."""
    return f".{os.path.basename(target)}{_TMP_TAG}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's), or we cannot tell: leave its file alone
    return True


def remove_stale_temporaries(target: str) -> list[str]:
    """Remove temporary files a killed save of ``target`` left behind (their process is
    gone); returns the paths removed.  Called before every save of ``target``."""
    directory = os.path.dirname(os.path.abspath(target))
    prefix = _temp_prefix(target)
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            os.unlink(path)
            removed.append(path)
    return removed


@contextlib.contextmanager
def _interrupts_kept() -> Iterator[list]:
    """Within the block, a Ctrl-C still raises KeyboardInterrupt, and is also remembered:
    h5py calls some of its code from weakref callbacks, where Python prints and drops an
    exception, so an interrupt during a save could be lost and the half-made file renamed
    into place.  The list is non-empty after the block when an interrupt came.  Only the
    main thread can handle signals, and a handler the program installed is left alone."""
    hits: list = []
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield hits
        return

    def handler(signum: int, frame: Any) -> None:
        hits.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield hits
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def atomic_path(path: Any, overwrite: bool = True) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    - The temporary file lies in the target's folder (a rename within one file system is
      atomic), so that folder must be writable.  A save killed outright (SIGKILL, power
      loss) can leave its temporary file behind; the next save of the same target
      removes it.
    - A read-only target is refused, as h5py and Keras refuse it: nothing is written.
    - A symbolic link is written through: the file it points to is replaced (atomically,
      beside itself) and the link stays a link."""
    target = os.fspath(path)
    if not isinstance(target, str):
        target = os.fsdecode(target)
    if os.path.islink(target):
        target = os.path.realpath(target)
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
    if os.path.exists(target) and (
        not os.access(target, os.W_OK) or not os.stat(target).st_mode & 0o222
    ):  # the mode bits too: root may write anywhere, but a file marked read-only stays so
        raise PermissionError(
            f"cannot save to {target!r}: the file is read-only; nothing was written "
            "(make it writable, or save under another name)"
        )
    remove_stale_temporaries(target)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f"{_temp_prefix(target)}{os.getpid()}-", suffix=".tmp", dir=directory
        )
    except PermissionError:
        raise PermissionError(
            f"cannot save to {target!r}: the folder {directory!r} is not writable. polykeras "
            "writes a temporary file beside the target and renames it into place, so that "
            "a failed save never leaves a half-written file; the folder must be writable"
        ) from None
    os.close(fd)
    try:
        with _interrupts_kept() as interrupted:
            yield tmp
        if interrupted:  # Ctrl-C hit the write, and a library swallowed it: honour it now
            raise KeyboardInterrupt
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


def file_to_read(path: Any, what: str, kind: str) -> str:
    """``path`` as a string naming an existing regular file, or the error that says what it
    is instead: missing (FileNotFoundError), a folder, or a pipe, device or socket (reading
    one can block forever).  ``kind`` completes "is a folder, not ...", e.g. "an HDF5 file"."""
    from .errors import FileFormatError

    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if not os.path.exists(target):
        raise FileNotFoundError(f"{what}: no such file: {target!r}")
    if os.path.isdir(target):
        raise FileFormatError(f"{what}: {target!r} is a folder, not {kind}")
    if not os.path.isfile(target):
        raise FileFormatError(
            f"{what}: {target!r} is not a regular file (a pipe, device or socket?); "
            "polykeras reads model files only from regular files"
        )
    return target
