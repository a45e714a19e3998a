"""``utils.get_file``: fetch a file once, keep it in a cache folder, check its hash, and
unpack archives without letting them write outside the cache.

Where files go (``cache_dir`` not given): ``$POLYKERAS_HOME/<cache_subdir>`` (by default
``~/.polykeras/datasets``), the folder that also holds polykeras' config file.  When that
folder cannot be created or written, ``<tempdir>/.polykeras/<cache_subdir>`` is used, as
Keras falls back to ``/tmp/.keras``.  A copy Keras already downloaded
(``$KERAS_HOME/<cache_subdir>`` or ``~/.keras/<cache_subdir>``) is read where it lies and
never modified.

A download goes to a temporary file beside its target and is renamed into place only once
it is complete (and its hash matches, when one is given), so an interrupted download
never looks like a finished one.  Archives are checked member by member before anything is
written: absolute paths, ``..`` components, links that point outside the destination,
devices and FIFOs are refused, and so is an archive whose members add up to more than
:data:`MAX_EXTRACT_RATIO` times its own size (and more than :data:`MIN_EXTRACT_LIMIT`).
Members are unpacked into a temporary ``.polykeras-extract-*`` folder first and moved
into the cache afterwards.  While a process works in such a folder it holds a lock on a
file inside it (``.in-use``; the operating system drops the lock when the process ends,
however it ends).  A folder that a killed process left behind, unlocked and unchanged for
:data:`STALE_EXTRACTION_SECONDS`, is removed by the next ``get_file`` into the same cache
folder; a folder another process is still working in is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import posixpath
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any, BinaryIO

if sys.platform != "win32":
    import fcntl

#: an archive may unpack to at most this many times its own size ...
MAX_EXTRACT_RATIO = 200
#: ... unless the total stays under this many bytes (small archives compress well)
MIN_EXTRACT_LIMIT = 64 * 2**20
#: seconds a blocked network read may wait before the download fails
DOWNLOAD_TIMEOUT = 60.0
#: a temporary extraction folder unchanged for this many seconds was left by a killed
#: process: the next ``get_file`` into its cache folder removes it
STALE_EXTRACTION_SECONDS = 3600.0

_STAGING_PREFIX = ".polykeras-extract-"
_IN_USE = ".in-use"  # the locked file inside a temporary extraction folder

_CHUNK = 2**20
_HASH_ALGORITHMS = ("auto", "sha256", "md5")
_ARCHIVE_FORMATS = ("tar", "zip")


class DownloadError(OSError):
    """A file could not be fetched from its origin.  Nothing was saved in the cache."""


class UnsafeArchiveError(ValueError):
    """An archive holds a member that could write outside its folder (absolute path, '..',
    a link out, a device), or unpacks to far more than its own size.  Nothing was
    extracted."""


def default_cache_dir() -> str:
    """``$POLYKERAS_HOME`` or ``~/.polykeras``: ``get_file`` keeps files in its
    ``datasets`` subfolder by default."""
    from .config import config_path

    return str(config_path().parent)


def keras_cache_dir() -> str:
    """Where Keras keeps its downloads: ``$KERAS_HOME`` or ``~/.keras``."""
    home = os.environ.get("KERAS_HOME")
    return os.path.expanduser(home) if home else os.path.join(os.path.expanduser("~"), ".keras")


def _writable_folder(folder: str) -> bool:
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def resolve_hash_algorithm(file_hash: str, hash_algorithm: str = "auto") -> str:
    """``"sha256"`` or ``"md5"``: ``auto`` picks sha256 for a 64-digit hash, as Keras."""
    if hash_algorithm not in _HASH_ALGORITHMS:
        raise ValueError(
            f"get_file: hash_algorithm must be one of {', '.join(map(repr, _HASH_ALGORITHMS))},"
            f" got {hash_algorithm!r}"
        )
    if hash_algorithm == "auto":
        return "sha256" if len(file_hash) == 64 else "md5"
    return hash_algorithm


def hash_file(fpath: str, algorithm: str = "sha256", chunk_size: int = 65535) -> str:
    """The hex digest of a file (``algorithm``: ``"sha256"``, ``"md5"`` or ``"auto"``,
    which means sha256 here, as in Keras' ``_hash_file``)."""
    hasher = hashlib.md5() if algorithm == "md5" else hashlib.sha256()
    with open(fpath, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            hasher.update(block)
    return hasher.hexdigest()


def validate_file(
    fpath: str, file_hash: str, algorithm: str = "auto", chunk_size: int = 65535
) -> bool:
    """Whether the file's hash is ``file_hash`` (compared without regard to case)."""
    algorithm = resolve_hash_algorithm(str(file_hash), algorithm)
    return hash_file(fpath, algorithm, chunk_size) == str(file_hash).strip().lower()


def get_file(
    fname: Any = None,
    origin: Any = None,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: Any = "datasets",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format: Any = "auto",
    cache_dir: Any = None,
    force_download: bool = False,
) -> str:
    """Download ``origin`` into the cache unless it is there already; return its path.

    Keras 2's arguments: the file is ``<cache_dir>/<cache_subdir>/<fname>`` (``fname``
    defaults to the last part of the URL).  With Keras 1's ``untar=True`` the download is
    ``<fname>.tar.gz``, it is unpacked beside itself (as Keras 2 did), and the unpacked
    ``<fname>`` is returned.  With ``extract=True`` the archive (``archive_format``:
    ``"auto"``, ``"tar"``, ``"zip"``, a list of those, or None) is unpacked into a folder of
    its own and that folder is returned, as Keras 3 does: a ``fname`` with a dot
    (``"photos.tar.gz"``) is the archive's name and the folder is ``photos_extracted``;
    otherwise (and when ``fname`` is not given) the folder is ``<fname>`` and the archive
    ``<fname>_archive``.  The folder is unpacked when the archive is downloaded, or when it
    is missing; it is replaced whole, never left half-written.  ``file_hash`` (or Keras 1's
    ``md5_hash``) is checked after a download and on every later use: a cached file that
    does not match is downloaded again, a download that does not match is deleted and
    refused.  ``force_download`` (Keras 3) downloads even when a cached copy exists.
    ``origin`` may be any URL urllib opens, ``file://`` included.  See the module
    docstring for where the cache is and how archives are checked."""
    if origin is None or not isinstance(origin, str) or not origin.strip():
        raise ValueError(f"get_file: origin must be the URL of the file, got {origin!r}")
    if hash_algorithm not in _HASH_ALGORITHMS:
        resolve_hash_algorithm("", hash_algorithm)  # raises, naming the choices
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    if file_hash is not None:
        if not isinstance(file_hash, str) or not file_hash.strip():
            raise ValueError(f"get_file: file_hash must be a hex digest, got {file_hash!r}")
        file_hash = file_hash.strip().lower()
    formats = _archive_formats(archive_format)
    fname_given = bool(fname)
    if not fname:
        fname = posixpath.basename(urllib.parse.urlparse(origin).path)
        if not fname:
            raise ValueError(
                f"get_file: cannot tell a file name from the URL {origin!r}; pass fname="
            )
    fname = os.fspath(fname)
    if not isinstance(fname, str):
        fname = os.fsdecode(fname)
    if (
        os.sep in fname
        or "/" in fname
        or (os.altsep and os.altsep in fname)
        or fname in (".", "..")
    ):
        raise ValueError(
            f"get_file: fname must be a file name, not a path (got {fname!r}): the file goes "
            "into the cache folder; to choose the folder, pass cache_dir= (and "
            "cache_subdir=)"
        )
    subdir = os.fspath(cache_subdir) if cache_subdir is not None else ""

    keras_copy_allowed = cache_dir is None
    if cache_dir is None:
        base = default_cache_dir()
        datadir = os.path.join(base, subdir)
        if not _writable_folder(datadir):
            datadir = os.path.join(tempfile.gettempdir(), ".polykeras", subdir)
    else:
        datadir = os.path.join(os.path.expanduser(os.fspath(cache_dir)), subdir)
    if not _writable_folder(datadir):
        raise PermissionError(
            f"get_file: cannot create or write the cache folder {datadir!r}; pass "
            "cache_dir= a writable folder"
        )

    _remove_stale_extractions(datadir)

    extract_dir = ""
    if untar:
        untar_fpath = os.path.join(datadir, fname)
        fpath = untar_fpath + ".tar.gz"
    elif extract:
        if fname_given and "." in fname:
            archive_name, folder_name = fname, fname[: fname.index(".")] + "_extracted"
        else:
            archive_name, folder_name = fname + "_archive", fname
        fpath = os.path.join(datadir, archive_name)
        extract_dir = os.path.join(datadir, folder_name)
        if os.path.isfile(extract_dir) and not os.path.lexists(fpath):
            # an archive kept under the folder's name (Keras 2's layout, which earlier
            # polykeras releases used): it becomes the archive, checked as usual
            os.replace(extract_dir, fpath)
    else:
        fpath = os.path.join(datadir, fname)
    algorithm = resolve_hash_algorithm(file_hash, hash_algorithm) if file_hash else "sha256"

    def matches(path: str) -> bool:
        return file_hash is None or hash_file(path, algorithm) == file_hash

    download = force_download or not os.path.isfile(fpath)
    if not download and not matches(fpath):
        print(
            "A local file was found, but it seems to be incomplete or outdated because the "
            f"{algorithm} file hash does not match the original value of {file_hash} so we "
            "will re-download the data.",
            file=sys.stderr,
        )
        download = True

    kdir = os.path.join(keras_cache_dir(), subdir)
    knames = [os.path.basename(fpath)]
    if extract and not untar and fname != knames[0]:
        knames.append(fname)  # Keras 2 kept the archive under its own name
    kpaths = [os.path.join(kdir, name) for name in knames]
    if not keras_copy_allowed or os.path.abspath(kpaths[0]) == os.path.abspath(fpath):
        kpaths = []
    kpath = kpaths[0] if kpaths else None
    fresh = download
    if download and not force_download:
        for candidate in kpaths:
            if not os.path.isfile(candidate):
                continue
            if not matches(candidate):
                print(
                    f"Keras' copy {candidate} does not match the {algorithm} hash "
                    f"{file_hash}; it is left alone and the file is downloaded.",
                    file=sys.stderr,
                )
                continue
            if untar:
                kdone = os.path.join(kdir, fname)
                if os.path.isdir(kdone):
                    return kdone
                if not os.path.exists(untar_fpath):
                    _extract_archive(candidate, datadir, ["tar"])
                return untar_fpath
            if not extract:
                return candidate
            kfolder = os.path.join(kdir, os.path.basename(extract_dir))
            if os.path.isdir(kfolder):  # Keras 3 unpacked it there
                return kfolder
            # our extraction writes into our cache: the archive is copied here first
            _copy_atomically(candidate, fpath)
            download = False
            break

    if download:
        _download(origin, fpath, file_hash, algorithm, kpath)

    if untar:
        if not os.path.exists(untar_fpath):
            _extract_archive(fpath, datadir, ["tar"])
        return untar_fpath
    if extract:
        if (fresh or not os.path.isdir(extract_dir)) and not _extract_into_folder(
            fpath, extract_dir, formats
        ):
            warnings.warn(
                f"get_file: {fpath} is not a {' or '.join(formats) or 'known'} archive "
                f"(archive_format={archive_format!r}); nothing was extracted into {extract_dir}",
                stacklevel=2,
            )
        return extract_dir
    return fpath


def _archive_formats(archive_format: Any) -> list[str]:
    if archive_format is None:
        return []
    if archive_format == "auto":
        return list(_ARCHIVE_FORMATS)
    chosen = [archive_format] if isinstance(archive_format, str) else list(archive_format)
    bad = [f for f in chosen if f not in _ARCHIVE_FORMATS]
    if bad:
        raise ValueError(
            f"get_file: archive_format must be 'auto', 'tar', 'zip', a list of those, or "
            f"None; got {archive_format!r}"
        )
    return chosen


def _copy_atomically(source: str, target: str) -> None:
    from .saving.files import atomic_path

    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _offline_help(fpath: str, file_hash: str | None, algorithm: str, kpath: str | None) -> str:
    check = f" (its {algorithm} hash must be {file_hash})" if file_hash else ""
    also = f"; a copy at {kpath} (Keras' cache) is used too" if kpath else ""
    return (
        "Nothing was saved. Without network access, download the file on another machine "
        f"and place it at {fpath}{check}{also}."
    )


def _download(
    origin: str, fpath: str, file_hash: str | None, algorithm: str, kpath: str | None
) -> None:
    """Fetch ``origin`` into a temporary file beside ``fpath``; rename it into place only
    when it is complete and its hash matches."""
    from .saving.files import atomic_path
    from .training.progress import Progbar

    print(f"Downloading data from {origin}")
    failure: str | None = None
    try:
        with contextlib.ExitStack() as stack:
            response = stack.enter_context(
                urllib.request.urlopen(origin, timeout=DOWNLOAD_TIMEOUT)  # noqa: S310
            )
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.strip().isdigit() else None
            tmp = stack.enter_context(atomic_path(fpath))
            bar = Progbar(expected)
            received = 0
            with open(tmp, "wb") as out:
                while True:
                    block = response.read(_CHUNK)
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    bar.update(received)
            if expected is not None and received != expected:
                raise http.client.IncompleteRead(b"", expected - received)
            if file_hash is not None and hash_file(tmp, algorithm) != file_hash:
                raise ValueError(
                    f"Incomplete or corrupted file detected. The {algorithm} file hash of "
                    f"{origin} does not match the provided value of {file_hash}; the "
                    f"download was discarded and {fpath} was not written."
                )
    except urllib.error.HTTPError as exc:
        failure = f"HTTP {exc.code} -- {exc.reason}"
    except urllib.error.URLError as exc:
        failure = f"{exc.reason}"
    except http.client.IncompleteRead as exc:
        failure = (
            "the connection closed before the whole file arrived "
            f"({len(exc.partial)} + {exc.expected} bytes missing)"
            if exc.partial
            else f"the connection closed with {exc.expected} bytes still to come"
        )
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, PermissionError):
            raise
        failure = f"{type(exc).__name__}: {exc}"
    if failure is not None:
        raise DownloadError(
            f"get_file: URL fetch failure on {origin}: {failure}. "
            + _offline_help(fpath, file_hash, algorithm, kpath)
        )


# -- archives ----------------------------------------------------------------------------


def _extraction_limit(archive: str) -> int:
    return max(MIN_EXTRACT_LIMIT, MAX_EXTRACT_RATIO * os.path.getsize(archive))


def _refuse(archive: str, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"get_file: refusing to extract {archive!r}: member {member!r} {why}; nothing was extracted"
    )


def _checked_name(archive: str, name: str) -> str:
    """The member's path relative to the destination, or an error if it could leave it."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise _refuse(archive, name, "has an absolute path")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(archive, name, "has a '..' component (it would write outside the folder)")
    return "/".join(parts)


def _inside(relative: str) -> bool:
    """Whether a relative path, once normalised, stays inside its folder."""
    norm = posixpath.normpath(relative)
    return not (norm.startswith("/") or norm == ".." or norm.startswith("../"))


def _checked_tar_members(archive: str, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    limit = _extraction_limit(archive)
    total = 0
    members = tar.getmembers()
    links: set[str] = set()
    for m in members:
        rel = _checked_name(archive, m.name)
        parts = rel.split("/")
        through = next(
            ("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in links),
            None,
        )
        if through is not None:
            raise _refuse(archive, m.name, f"lies behind the link {through!r} in the archive")
        if m.issym() or m.islnk():
            links.add(rel)
        if m.issym():
            target = m.linkname.replace("\\", "/")
            if target.startswith("/") or not _inside(
                posixpath.join(posixpath.dirname(rel), target)
            ):
                raise _refuse(archive, m.name, f"is a link pointing outside ({m.linkname!r})")
        elif m.islnk():
            target = m.linkname.replace("\\", "/")
            if target.startswith("/") or not _inside(target):
                raise _refuse(archive, m.name, f"is a hard link outside ({m.linkname!r})")
        elif not (m.isfile() or m.isdir()):
            raise _refuse(archive, m.name, "is a device, FIFO or other special file")
        if m.isfile():
            total += m.size
            if total > limit:
                raise _refuse(
                    archive,
                    m.name,
                    f"takes the unpacked size past {limit} bytes ({MAX_EXTRACT_RATIO} times "
                    "the archive's size): a decompression bomb?",
                )
    return members


def _checked_zip_members(archive: str, zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    limit = _extraction_limit(archive)
    total = 0
    infos = zf.infolist()
    for info in infos:
        _checked_name(archive, info.filename)
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            raise _refuse(archive, info.filename, "is a symbolic link")
        total += info.file_size
        if total > limit:
            raise _refuse(
                archive,
                info.filename,
                f"takes the unpacked size past {limit} bytes ({MAX_EXTRACT_RATIO} times the "
                "archive's size): a decompression bomb?",
            )
    return infos


def _move_into(source: str, target: str) -> None:
    """Move ``source`` to ``target``, merging folders into an existing folder and replacing
    files; a link found at ``target`` is replaced, never followed."""
    if os.path.isdir(source) and os.path.isdir(target) and not os.path.islink(target):
        for name in os.listdir(source):
            _move_into(os.path.join(source, name), os.path.join(target, name))
        return
    if os.path.islink(target) or os.path.isfile(target):
        os.unlink(target)
    elif os.path.isdir(target):
        shutil.rmtree(target)
    os.replace(source, target)


def extract_archive(file_path: Any, path: Any = ".", archive_format: Any = "auto") -> bool:
    """Unpack a tar or zip archive into ``path`` safely; True if it was one of the formats
    asked for (``archive_format`` as in :func:`get_file`), False if not."""
    return _extract_archive(os.fspath(file_path), os.fspath(path), _archive_formats(archive_format))


@contextlib.contextmanager
def _unpacked(file_path: str, parent: str, formats: list[str]) -> Iterator[str | None]:
    """Unpack the archive, checked member by member, into a new folder inside a temporary
    ``.polykeras-extract-*`` folder of ``parent``; yields that folder (None when the file is
    none of ``formats``) and removes the temporary folder afterwards."""
    for kind in formats:
        if kind == "tar" and tarfile.is_tarfile(file_path):
            opener: Any = tarfile.open
        elif kind == "zip" and zipfile.is_zipfile(file_path):
            opener = zipfile.ZipFile
        else:
            continue
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=parent)
        in_use = _mark_in_use(staging)
        try:
            out = os.path.join(staging, "unpacked")
            os.mkdir(out)  # made with the usual permissions, unlike mkdtemp's 0o700
            try:
                with opener(file_path) as archive:
                    if kind == "tar":
                        members = _checked_tar_members(file_path, archive)
                        if hasattr(tarfile, "data_filter"):
                            try:
                                archive.extractall(out, members=members, filter="data")
                            except tarfile.FilterError as exc:
                                raise UnsafeArchiveError(
                                    f"get_file: refusing to extract {file_path!r}: {exc}; "
                                    "nothing was extracted"
                                ) from None
                        else:  # the members were checked above
                            archive.extractall(out, members=members)
                    else:
                        archive.extractall(out, members=_checked_zip_members(file_path, archive))
            except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
                raise ValueError(
                    f"get_file: {file_path!r} is a damaged {kind} archive ({exc}); nothing was "
                    "extracted. Delete it and call get_file again to download it afresh."
                ) from None
            yield out
        finally:
            in_use.close()  # drops the lock
            shutil.rmtree(staging, ignore_errors=True)
        return
    yield None


def _extract_archive(file_path: str, path: str, formats: list[str]) -> bool:
    """Unpack into ``path``, merging with what is there (Keras 2's extraction)."""
    with _unpacked(file_path, path, formats) as out:
        if out is None:
            return False
        for name in os.listdir(out):
            _move_into(os.path.join(out, name), os.path.join(path, name))
    return True


def _extract_into_folder(file_path: str, folder: str, formats: list[str]) -> bool:
    """Unpack into ``folder``, which then holds the archive's members and nothing else
    (Keras 3's ``extract=True``).  The folder is renamed into place whole: a killed
    extraction leaves no half-written folder, only a temporary one."""
    parent = os.path.dirname(os.path.abspath(folder))
    with _unpacked(file_path, parent, formats) as out:
        if out is None:
            return False
        if os.path.lexists(folder):  # replaced: the old one goes to a temporary folder first
            old = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=parent)
            os.replace(folder, os.path.join(old, "previous"))
            try:
                os.replace(out, folder)
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(out, folder)
            except OSError:
                if not os.path.isdir(folder):  # not another process's finished extraction
                    raise
    return True


def _mark_in_use(staging: str) -> BinaryIO:
    """Create ``staging``'s ``.in-use`` file and hold it: locked on POSIX (``flock``: the
    kernel drops the lock when the process dies), open on Windows (where an open file
    cannot be deleted).  Closing the returned file ends the mark."""
    handle = open(os.path.join(staging, _IN_USE), "wb")  # held until the work ends
    try:
        if sys.platform != "win32":
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a file system without locks: its folders are then kept
                pass  # (_in_use cannot lock them either)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
    except BaseException:
        handle.close()
        raise
    return handle


def _in_use(staging: str) -> bool:
    """Whether a live process holds ``staging``'s ``.in-use`` mark.  A folder without the
    mark (left by an older release, or made a moment ago) is judged by its age alone."""
    path = os.path.join(staging, _IN_USE)
    if sys.platform == "win32":
        try:
            os.remove(path)  # refused while the owner holds it open
        except FileNotFoundError:
            return False
        except OSError:
            return True
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return False
    except OSError:  # a link or unreadable: cannot tell, so keep the folder
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the lock just taken
    return False


def _now() -> float:
    return time.time()


def _changed_since(path: str, cutoff: float) -> bool:
    """Whether ``path`` or anything under it (links not followed) changed after ``cutoff``.
    The inode change time counts too: extraction gives files the archive's old mtimes."""
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            try:
                st = os.lstat(name)
            except OSError:
                continue
            if max(st.st_mtime, st.st_ctime) > cutoff:
                return True
    return False


def _remove_stale_extractions(folder: str) -> None:
    """Remove the temporary extraction folders (``.polykeras-extract-*``, real folders only,
    never a link or a file) directly in ``folder`` in which nothing changed for
    :data:`STALE_EXTRACTION_SECONDS` and which no live process marks as in use: a killed
    process left them."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    cutoff = _now() - STALE_EXTRACTION_SECONDS
    for name in names:
        if not name.startswith(_STAGING_PREFIX):
            continue
        path = os.path.join(folder, name)
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                continue
        except OSError:
            continue
        if not _changed_since(path, cutoff) and not _in_use(path):
            shutil.rmtree(path, ignore_errors=True)
