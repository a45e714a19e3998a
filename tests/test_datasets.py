"""keras.datasets and utils.get_file, never on the internet.

Every file is synthetic and tiny but in its dataset's real format (the same file names,
keys and layout), served from a local HTTP server on 127.0.0.1 or a file:// URL, with the
dataset modules' URLs and hashes pointed at them.  Results are compared with a plain
reference of Keras 2's rules and with real Keras 3 reading the very same files."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile

import numpy as np
import pytest
from helpers import run_keras3_script

from polykeras import config, datasets
from polykeras.datasets import (
    boston_housing,
    cifar10,
    cifar100,
    fashion_mnist,
    imdb,
    mnist,
    reuters,
)
from polykeras.saving.errors import FileFormatError, UnsafeContentError
from polykeras.utils import get_file
from polykeras.utils_data import DownloadError, UnsafeArchiveError, extract_archive


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- a local HTTP server -----------------------------------------------------------------


class Server:
    """Serves ``files`` (path -> bytes); ``/cut/<name>`` sends the header of the whole
    file but only half its bytes, then closes (an interrupted download)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.hits.append(self.path)
                cut = self.path.startswith("/cut/")
                name = self.path[len("/cut") :] if cut else self.path
                body = server.files.get(name)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)
                self.wfile.flush()
                if cut:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, name: str, data: bytes) -> str:
        self.files["/" + name] = data
        return f"{self.url}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """POLYKERAS_HOME and KERAS_HOME in tmp_path: the caches the tests see."""
    monkeypatch.setenv("POLYKERAS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path


def leftovers(folder) -> list[str]:
    """Temporary files or folders left in ``folder`` (there should be none)."""
    return [n for n in os.listdir(folder) if "polykeras" in n or n.endswith(".tmp")]


# -- get_file ----------------------------------------------------------------------------


def test_get_file_downloads_once_into_polykeras_home(home, server):
    data = b"some bytes" * 100
    url = server.add("a.bin", data)
    path = get_file("a.bin", origin=url, file_hash=sha256(data))
    assert path == str(home / "home" / "datasets" / "a.bin")
    assert open(path, "rb").read() == data
    assert get_file("a.bin", origin=url, file_hash=sha256(data)) == path
    assert server.hits == ["/a.bin"]  # the second call used the cache
    # the file name defaults to the URL's last part; md5 and an explicit algorithm work
    md5 = hashlib.md5(data).hexdigest()
    assert get_file(origin=url, md5_hash=md5) == path
    assert get_file(origin=url, file_hash=md5.upper(), hash_algorithm="md5") == path
    assert server.hits == ["/a.bin"]
    assert leftovers(home / "home" / "datasets") == []


def test_get_file_cache_dir_and_subdir(tmp_path, server):
    url = server.add("b.txt", b"b")
    path = get_file("b.txt", url, cache_dir=tmp_path / "c", cache_subdir="sub")
    assert path == str(tmp_path / "c" / "sub" / "b.txt")


def test_get_file_reads_file_urls(home, tmp_path):
    src = tmp_path / "src.txt"
    src.write_bytes(b"local")
    path = get_file("copy.txt", src.as_uri(), file_hash=sha256(b"local"))
    assert open(path, "rb").read() == b"local"


def test_hash_mismatch_after_download_is_refused_and_nothing_is_kept(home, server):
    url = server.add("c.bin", b"real contents")
    with pytest.raises(ValueError, match="file hash .* does not match the provided value"):
        get_file("c.bin", url, file_hash="0" * 64)
    folder = home / "home" / "datasets"
    assert not (folder / "c.bin").exists() and leftovers(folder) == []


def test_cached_file_with_wrong_hash_is_downloaded_again(home, server, capsys):
    good = b"the right contents"
    url = server.add("d.bin", good)
    folder = home / "home" / "datasets"
    folder.mkdir(parents=True)
    (folder / "d.bin").write_bytes(b"stale")
    path = get_file("d.bin", url, file_hash=sha256(good))
    assert open(path, "rb").read() == good and server.hits == ["/d.bin"]
    assert "hash does not match" in capsys.readouterr().err


def test_force_download_fetches_again(home, server):
    url = server.add("e.bin", b"e")
    get_file("e.bin", url)
    get_file("e.bin", url, force_download=True)
    assert server.hits == ["/e.bin", "/e.bin"]


def test_interrupted_download_never_looks_complete(home, server):
    data = bytes(range(256)) * 64
    server.add("f.bin", data)
    folder = home / "home" / "datasets"
    with pytest.raises(DownloadError, match="connection closed") as info:
        get_file("f.bin", f"{server.url}/cut/f.bin")
    assert str(folder / "f.bin") in str(info.value)
    assert not (folder / "f.bin").exists() and leftovers(folder) == []
    # without a hash too, the next call downloads (nothing half-written was kept)
    assert open(get_file("f.bin", f"{server.url}/f.bin"), "rb").read() == data


def test_http_error_and_no_network_name_the_url_and_the_place_for_the_file(home, server):
    missing = f"{server.url}/nothing.npz"
    with pytest.raises(DownloadError) as info:
        get_file("nothing.npz", missing, file_hash="ab" * 32)
    text = str(info.value)
    target = str(home / "home" / "datasets" / "nothing.npz")
    assert missing in text and "404" in text and f"place it at {target}" in text
    assert "ab" * 32 in text  # the hash the placed file must have
    assert str(home / "keras_home" / "datasets" / "nothing.npz") in text
    # a port nobody listens on: what a machine without network sees
    closed = "http://127.0.0.1:9/mnist.npz"
    with pytest.raises(DownloadError, match="URL fetch failure on http://127.0.0.1:9/mnist.npz"):
        get_file("mnist.npz", closed)
    with pytest.raises(OSError):  # DownloadError is an OSError
        get_file("z.npz", (home / "absent").as_uri())
    assert leftovers(home / "home" / "datasets") == []


def test_keras_copy_is_used_in_place_and_never_modified(home, server):
    data = b"downloaded by Keras"
    kfolder = home / "keras_home" / "datasets"
    kfolder.mkdir(parents=True)
    (kfolder / "g.bin").write_bytes(data)
    url = server.add("g.bin", data)
    assert get_file("g.bin", url, file_hash=sha256(data)) == str(kfolder / "g.bin")
    assert server.hits == []
    # a Keras copy that does not match is left alone and ours is downloaded
    (kfolder / "h.bin").write_bytes(b"corrupt")
    url = server.add("h.bin", data)
    path = get_file("h.bin", url, file_hash=sha256(data))
    assert path == str(home / "home" / "datasets" / "h.bin") and server.hits == ["/h.bin"]
    assert (kfolder / "h.bin").read_bytes() == b"corrupt"
    # an explicit cache_dir never looks at Keras' cache
    (kfolder / "i.bin").write_bytes(data)
    url = server.add("i.bin", data)
    path = get_file("i.bin", url, cache_dir=home / "mine")
    assert path == str(home / "mine" / "datasets" / "i.bin") and server.hits[-1] == "/i.bin"


def test_keras_copy_of_an_archive(home, server):
    archive = make_tar([("pk", None), ("pk/a.txt", b"a")])
    url = server.add("pk.tar.gz", archive)
    kfolder = home / "keras_home" / "datasets"
    kfolder.mkdir(parents=True)
    (kfolder / "pk.tar.gz").write_bytes(archive)
    # not unpacked by Keras: unpacked into our cache, Keras' folder untouched
    path = get_file("pk", url, untar=True, file_hash=sha256(archive))
    assert path == str(home / "home" / "datasets" / "pk") and os.listdir(kfolder) == ["pk.tar.gz"]
    assert (home / "home" / "datasets" / "pk" / "a.txt").read_bytes() == b"a"
    # unpacked by Keras: its folder is used
    (home / "home" / "datasets" / "pk").rename(kfolder / "pk")
    assert get_file("pk", url, untar=True, file_hash=sha256(archive)) == str(kfolder / "pk")
    # extract=True copies the archive into our cache first (extraction writes beside it)
    (kfolder / "q.zip").write_bytes(make_zip([("q/b.txt", b"b")]))
    path = get_file("q.zip", server.add("q.zip", b"unused"), extract=True)
    assert path == str(home / "home" / "datasets" / "q_extracted")
    assert (home / "home" / "datasets" / "q_extracted" / "q" / "b.txt").read_bytes() == b"b"
    assert sorted(os.listdir(kfolder)) == ["pk", "pk.tar.gz", "q.zip"] and server.hits == []
    # a folder Keras 3 unpacked beside its archive is used where it lies
    (kfolder / "r_archive").write_bytes(make_zip([("c.txt", b"c")]))
    (kfolder / "r").mkdir()
    assert get_file("r", server.add("r", b"unused"), extract=True) == str(kfolder / "r")
    # Keras 2 kept the archive under fname itself: found too
    (kfolder / "s").write_bytes(make_zip([("d.txt", b"d")]))
    path = get_file("s", server.add("s", b"unused"), extract=True)
    assert path == str(home / "home" / "datasets" / "s")
    assert (home / "home" / "datasets" / "s" / "d.txt").read_bytes() == b"d"
    assert server.hits == [] and (kfolder / "s").read_bytes() == make_zip([("d.txt", b"d")])


def test_unwritable_home_falls_back_to_the_temporary_folder(tmp_path, monkeypatch, server):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("POLYKERAS_HOME", str(blocker / "home"))  # cannot be created
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = get_file("t.txt", server.add("t.txt", b"t"))
    assert path == str(tmp_path / "tmp" / ".polykeras" / "datasets" / "t.txt")


def test_keras_home_default_is_dot_keras(monkeypatch, tmp_path):
    from polykeras.utils_data import default_cache_dir, keras_cache_dir

    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("POLYKERAS_HOME", raising=False)
    assert keras_cache_dir() == str(tmp_path / ".keras")
    assert default_cache_dir() == str(tmp_path / ".polykeras")


def make_tar(members: list[tuple[str, bytes | None]], links=()) -> bytes:
    """A tar.gz with files (bytes) and folders (None), plus (name, type, target) links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for name, kind, target in links:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def make_zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def test_untar_and_extract(home, server):
    archive = make_tar([("pack", None), ("pack/one.txt", b"1"), ("pack/sub/two.txt", b"2")])
    url = server.add("pack.tar.gz", archive)
    path = get_file("pack", url, untar=True, file_hash=sha256(archive))
    folder = home / "home" / "datasets"
    assert path == str(folder / "pack")
    assert (folder / "pack.tar.gz").read_bytes() == archive
    assert (folder / "pack" / "sub" / "two.txt").read_bytes() == b"2"
    assert get_file("pack", url, untar=True, file_hash=sha256(archive)) == path
    assert server.hits == ["/pack.tar.gz"]

    # extract=True returns the folder it unpacked into (Keras 3)
    zipped = make_zip([("z/a.txt", b"a"), ("z/b.txt", b"b")])
    url = server.add("z.zip", zipped)
    path = get_file("z.zip", url, extract=True)
    assert path == str(folder / "z_extracted")
    assert (folder / "z.zip").read_bytes() == zipped
    assert (folder / "z_extracted" / "z" / "b.txt").read_bytes() == b"b"
    assert get_file("z.zip", url, extract=True) == path and server.hits.count("/z.zip") == 1
    # archive_format limits what is unpacked
    url = server.add("y.zip", make_zip([("y/a.txt", b"a")]))
    with pytest.warns(UserWarning, match="is not a tar archive.*nothing was extracted"):
        path = get_file("y.zip", url, extract=True, archive_format="tar")
    assert path == str(folder / "y_extracted") and not os.path.exists(path)
    assert leftovers(folder) == []


_KERAS3_GET_FILE = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import keras

data = dict(np.load(sys.argv[1]))
cache = str(data["cache"])
out = {}
for name, fname, uri, kwargs in json.loads(str(data["cases"])):
    path = keras.utils.get_file(fname, origin=uri, cache_dir=cache, **kwargs)
    files = sorted(
        os.path.relpath(os.path.join(root, f), path) for root, _, fs in os.walk(path) for f in fs
    )
    out[name] = np.array(json.dumps([os.path.relpath(path, cache), files]))
np.savez(sys.argv[2], **out)
"""


def _tree(path):
    return sorted(
        os.path.relpath(os.path.join(root, f), path) for root, _, fs in os.walk(path) for f in fs
    )


def test_extract_returns_the_folder_keras3_returns(tmp_path):
    tarred = tmp_path / "src" / "pack.tar.gz"
    zipped = tmp_path / "src" / "bundle.zip"
    tarred.parent.mkdir()
    tarred.write_bytes(make_tar([("pack", None), ("pack/a.txt", b"a"), ("pack/s/b.txt", b"b")]))
    zipped.write_bytes(make_zip([("top.txt", b"t"), ("dir/c.txt", b"c")]))
    cases = [
        ("dotted", "pack.tar.gz", tarred.as_uri(), {"extract": True}),
        ("plain", "pack", tarred.as_uri(), {"extract": True}),
        ("from_url", None, zipped.as_uri(), {"extract": True}),
        ("zip_named", "bundle", zipped.as_uri(), {"extract": True, "archive_format": "zip"}),
    ]
    (tmp_path / "k3").mkdir()  # Keras falls back to /tmp/.keras when it is missing
    inputs = {"cases": np.array(json.dumps(cases)), "cache": np.array(str(tmp_path / "k3"))}
    ref = run_keras3_script(tmp_path, _KERAS3_GET_FILE, inputs)
    cache = tmp_path / "pk"
    for name, fname, uri, kwargs in cases:
        path = get_file(fname, origin=uri, cache_dir=cache, **kwargs)
        assert [os.path.relpath(path, cache), _tree(path)] == json.loads(str(ref[name])), name
    assert leftovers(cache / "datasets") == []


def test_untar_keeps_keras2s_layout(tmp_path):
    """untar=True returns <fname> as Keras 2 and 3 both do; its content is Keras 2's (the
    archive unpacked beside itself), where Keras 3 unpacks into <fname> itself, so an
    archive's top folder appears twice there (pack/pack/a.txt)."""
    archive = tmp_path / "pack.tar.gz"
    archive.write_bytes(make_tar([("pack", None), ("pack/a.txt", b"a")]))
    path = get_file("pack", archive.as_uri(), untar=True, cache_dir=tmp_path / "c")
    assert path == str(tmp_path / "c" / "datasets" / "pack") and _tree(path) == ["a.txt"]
    assert (tmp_path / "c" / "datasets" / "pack.tar.gz").is_file()


def test_extraction_folder_is_replaced_whole_and_never_half_written(home, server, monkeypatch):
    from polykeras import utils_data

    first = make_zip([("old.txt", b"1"), ("both.txt", b"1")])
    url = server.add("data.zip", first)
    folder = home / "home" / "datasets"
    path = get_file("data.zip", url, extract=True, file_hash=sha256(first))
    assert _tree(path) == ["both.txt", "old.txt"]
    # a new archive (its hash changes): downloaded again, and the folder holds it alone
    second = make_zip([("new.txt", b"2"), ("both.txt", b"2")])
    url = server.add("data.zip", second)
    assert get_file("data.zip", url, extract=True, file_hash=sha256(second)) == path
    assert _tree(path) == ["both.txt", "new.txt"]
    assert (folder / "data_extracted" / "both.txt").read_bytes() == b"2"
    # killed before the folder is renamed into place: no folder, no temporary folder left
    other = make_zip([("x.txt", b"x")])
    url = server.add("other.zip", other)
    real_replace = os.replace

    def interrupted(src, dst):
        if str(dst).endswith("other_extracted"):
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(utils_data.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        get_file("other.zip", url, extract=True)
    monkeypatch.setattr(utils_data.os, "replace", real_replace)
    assert not (folder / "other_extracted").exists() and leftovers(folder) == []
    # the next call finds the archive and unpacks it, without downloading it again
    assert _tree(get_file("other.zip", url, extract=True)) == ["x.txt"]
    assert server.hits.count("/other.zip") == 1


def test_an_archive_in_keras2s_place_becomes_the_archive(home, server):
    """Earlier releases kept get_file("m", extract=True)'s archive at datasets/m, where the
    folder now goes: it is taken as the archive (and checked), not downloaded again."""
    archive = make_zip([("m.txt", b"m")])
    folder = home / "home" / "datasets"
    folder.mkdir(parents=True)
    (folder / "m").write_bytes(archive)
    path = get_file("m", server.add("m", archive), extract=True, file_hash=sha256(archive))
    assert path == str(folder / "m") and _tree(path) == ["m.txt"]
    assert (folder / "m_archive").read_bytes() == archive and server.hits == []


def test_stale_extraction_folders_are_removed_and_nothing_else(home, server, monkeypatch):
    from polykeras import utils_data

    folder = home / "home" / "datasets"
    stale = folder / ".polykeras-extract-crashed"
    (stale / "deep").mkdir(parents=True)
    (stale / "deep" / "member.bin").write_bytes(b"partial")
    hours_ago = os.path.getmtime(stale) - 7200
    for p in (stale / "deep" / "member.bin", stale / "deep", stale):
        os.utime(p, (hours_ago, hours_ago))  # as extraction sets an archive's old times
    kept_file = folder / ".polykeras-extract-a-file"
    kept_file.write_bytes(b"not a folder")
    outside = home / "outside"
    (outside / "inner").mkdir(parents=True)
    (outside / "inner" / "precious.txt").write_bytes(b"keep")
    os.symlink(outside, folder / ".polykeras-extract-link")
    (folder / "mine").mkdir()
    elsewhere = home / "other_cache" / "datasets" / ".polykeras-extract-elsewhere"
    elsewhere.mkdir(parents=True)
    url = server.add("f.bin", b"f")

    # the inode change times are recent, so this could be an extraction still running
    get_file("f.bin", url)
    assert stale.is_dir()
    # an hour later, nothing in it having changed: it is removed on the next call
    later = utils_data._now() + utils_data.STALE_EXTRACTION_SECONDS + 60
    monkeypatch.setattr(utils_data, "_now", lambda: later)
    get_file("f.bin", url)
    assert not stale.exists()
    assert kept_file.read_bytes() == b"not a folder"
    assert (folder / ".polykeras-extract-link").is_symlink()
    assert (outside / "inner" / "precious.txt").read_bytes() == b"keep"
    assert (folder / "mine").is_dir() and elsewhere.is_dir()
    assert sorted(os.listdir(folder)) == [
        ".polykeras-extract-a-file",
        ".polykeras-extract-link",
        "f.bin",
        "mine",
    ]


_HOLD_EXTRACTION = """
import sys
from polykeras import utils_data
with utils_data._unpacked(sys.argv[1], sys.argv[2], ["zip"]) as out:
    print(out, flush=True)
    sys.stdin.read()  # works in the folder until killed
"""


@pytest.mark.skipif(sys.platform == "win32", reason="kills a process with SIGKILL")
def test_an_extraction_in_use_is_never_removed_however_old(home, server, monkeypatch):
    """A temporary extraction folder that a live process works in (another process, or
    this one) is kept even when nothing in it changed for longer than the bound; once its
    process is killed, the next get_file removes it."""
    from polykeras import utils_data

    folder = home / "home" / "datasets"
    folder.mkdir(parents=True)
    archive = home / "a.zip"
    archive.write_bytes(make_zip([("member.txt", b"m")]))
    url = server.add("f.bin", b"f")
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_EXTRACTION, str(archive), str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        held = os.path.dirname(proc.stdout.readline().strip())
        assert os.path.basename(held).startswith(".polykeras-extract-")
        assert os.path.isfile(os.path.join(held, "unpacked", "member.txt"))
        later = utils_data._now() + utils_data.STALE_EXTRACTION_SECONDS + 60
        monkeypatch.setattr(utils_data, "_now", lambda: later)
        # in this process too: a second extraction still running in a thread
        with utils_data._unpacked(str(archive), str(folder), ["zip"]) as mine:
            get_file("f.bin", url)
            assert os.path.isdir(held) and os.path.isdir(mine)
        assert not os.path.exists(os.path.dirname(mine))  # its own work cleans up
        get_file("f.bin", url)
        assert os.path.isfile(os.path.join(held, "unpacked", "member.txt"))
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stdin.close()
    # killed: the lock went with the process, and the folder goes with the next call
    assert os.path.isdir(held)
    get_file("f.bin", url)
    assert not os.path.exists(held)
    assert sorted(os.listdir(folder)) == ["f.bin"]
    # the bound still holds for an unlocked folder: a fresh one stays
    monkeypatch.setattr(utils_data, "_now", time.time)
    fresh = folder / ".polykeras-extract-fresh"
    fresh.mkdir()
    (fresh / ".in-use").write_bytes(b"12345\n")  # its owner gone, but changed just now
    get_file("f.bin", url)
    assert fresh.is_dir()


@pytest.mark.parametrize(
    "members, links, why",
    [
        ([("../evil.txt", b"x")], (), "'..'"),
        ([("ok/../../evil.txt", b"x")], (), "'..'"),
        ([("/tmp/polykeras-evil.txt", b"x")], (), "absolute"),
        ([], [("link", tarfile.SYMTYPE, "/etc/passwd")], "link pointing outside"),
        ([], [("a/link", tarfile.SYMTYPE, "../../x")], "link pointing outside"),
        ([], [("hard", tarfile.LNKTYPE, "../outside")], "hard link"),
        ([], [("dev", tarfile.CHRTYPE, "")], "device"),
        ([], [("l1", tarfile.SYMTYPE, "."), ("l1/l2", tarfile.SYMTYPE, "..")], "behind the link"),
    ],
)
def test_archives_that_could_write_outside_are_refused(tmp_path, members, links, why):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(make_tar([("good.txt", b"fine")] + members, links))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match=why):
        extract_archive(archive, dest)
    assert os.listdir(dest) == []  # nothing at all was written, not even good.txt
    assert not (tmp_path / "evil.txt").exists()


def test_checks_hold_on_pythons_without_the_data_filter(tmp_path, monkeypatch):
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(
        make_tar([("d", None), ("d/f.txt", b"x")], [("d/l", tarfile.SYMTYPE, "f.txt")])
    )
    assert extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "l").read_bytes() == b"x"
    archive.write_bytes(
        make_tar([], [("l1", tarfile.SYMTYPE, "."), ("l1/l2", tarfile.SYMTYPE, "..")])
    )
    with pytest.raises(UnsafeArchiveError, match="behind the link"):
        extract_archive(archive, tmp_path / "out2")


def test_zip_with_dotdot_is_refused(home, server):
    url = server.add("bad.zip", make_zip([("fine.txt", b"f"), ("../../evil.txt", b"x")]))
    with pytest.raises(UnsafeArchiveError, match="'..'"):
        get_file("bad.zip", url, extract=True)
    assert not (home / "evil.txt").exists() and not (home / "home" / "evil.txt").exists()
    assert sorted(os.listdir(home / "home" / "datasets")) == ["bad.zip"]


def test_symlink_inside_the_archive_is_kept(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    archive.write_bytes(
        make_tar([("d", None), ("d/f.txt", b"x")], [("d/l", tarfile.SYMTYPE, "f.txt")])
    )
    assert extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "l").read_bytes() == b"x"


def test_extraction_is_bounded_relative_to_the_archive(tmp_path, monkeypatch):
    from polykeras import utils_data

    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(make_tar([("zeros.bin", bytes(2_000_000))]))
    assert os.path.getsize(archive) < 20_000
    monkeypatch.setattr(utils_data, "MIN_EXTRACT_LIMIT", 100_000)
    with pytest.raises(UnsafeArchiveError, match="decompression bomb"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "zeros.bin").exists()
    zipped = tmp_path / "bomb.zip"
    zipped.write_bytes(make_zip([("zeros.bin", bytes(2_000_000))]))
    with pytest.raises(UnsafeArchiveError, match="decompression bomb"):
        extract_archive(zipped, tmp_path / "out2")


def test_damaged_archive_is_a_clear_error(tmp_path):
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(make_tar([("f.bin", os.urandom(50_000))])[:-3000])
    with pytest.raises(ValueError, match="damaged tar archive"):
        extract_archive(archive, tmp_path / "out", archive_format="tar")


def test_bad_arguments_are_refused_by_name(home):
    with pytest.raises(ValueError, match="origin"):
        get_file("x")
    with pytest.raises(ValueError, match="hash_algorithm"):
        get_file("x", "file:///x", hash_algorithm="sha1")
    with pytest.raises(ValueError, match="archive_format"):
        get_file("x", "file:///x", extract=True, archive_format="rar")
    with pytest.raises(ValueError, match="file name"):
        get_file(origin="http://127.0.0.1:9/")


# -- dataset files in their real formats -------------------------------------------------


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def ragged(rng, n, vocab=40, longest=12) -> np.ndarray:
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = [int(w) for w in rng.integers(1, vocab, size=int(rng.integers(1, longest)))]
    return out


def idx_gz(array: np.ndarray) -> bytes:
    magic = 2049 if array.ndim == 1 else 2051
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def cifar_batch(rng, n, labels: dict[str, list[int]]) -> bytes:
    batch = {b"batch_label": b"synthetic", b"data": rng.integers(0, 256, (n, 3072), np.uint8)}
    batch.update({k.encode(): v for k, v in labels.items()})
    batch[b"filenames"] = [b"img_%d.png" % i for i in range(n)]
    return pickle.dumps(batch, protocol=4)  # Keras 3's reader refuses protocol 2's _codecs


@pytest.fixture
def files(home, server, monkeypatch):
    """Synthetic dataset files on the local server, each module pointed at them."""
    rng = np.random.default_rng(0)
    made: dict[str, object] = {"dir": home / "files"}
    (home / "files").mkdir()

    def serve(module, name, data, hash_attr="FILE_HASH", origin_attr="ORIGIN_FOLDER"):
        (home / "files" / name).write_bytes(data)
        url = server.add(name, data)
        if origin_attr == "ORIGIN":
            monkeypatch.setattr(module, "ORIGIN", url)
        else:
            monkeypatch.setattr(module, "ORIGIN_FOLDER", server.url + "/")
        if hash_attr:
            monkeypatch.setattr(module, hash_attr, sha256(data))
        made[name] = data

    m = dict(
        x_train=rng.integers(0, 256, (6, 28, 28), np.uint8),
        y_train=rng.integers(0, 10, 6).astype(np.uint8),
        x_test=rng.integers(0, 256, (4, 28, 28), np.uint8),
        y_test=rng.integers(0, 10, 4).astype(np.uint8),
    )
    made["mnist"] = m
    serve(mnist, "mnist.npz", npz_bytes(**m))

    f = dict(
        x_train=rng.integers(0, 256, (5, 28, 28), np.uint8),
        y_train=rng.integers(0, 10, 5).astype(np.uint8),
        x_test=rng.integers(0, 256, (3, 28, 28), np.uint8),
        y_test=rng.integers(0, 10, 3).astype(np.uint8),
    )
    made["fashion"] = f
    for name, arr in zip(
        fashion_mnist.FILES, (f["y_train"], f["x_train"], f["y_test"], f["x_test"])
    ):
        serve(fashion_mnist, name, idx_gz(arr), hash_attr=None)

    members: list[tuple[str, bytes | None]] = [("cifar-10-batches-py", None)]
    for i in range(1, 6):
        labels = [int(v) for v in rng.integers(0, 10, 3)]
        members.append(
            (f"cifar-10-batches-py/data_batch_{i}", cifar_batch(rng, 3, {"labels": labels}))
        )
    members.append(("cifar-10-batches-py/test_batch", cifar_batch(rng, 2, {"labels": [1, 9]})))
    members.append(("cifar-10-batches-py/batches.meta", pickle.dumps({b"label_names": []}, 2)))
    serve(cifar10, "cifar-10-python.tar.gz", make_tar(members), origin_attr="ORIGIN")

    def labels100(n):
        return {
            "fine_labels": [int(v) for v in rng.integers(0, 100, n)],
            "coarse_labels": [int(v) for v in rng.integers(0, 20, n)],
        }

    members = [
        ("cifar-100-python", None),
        ("cifar-100-python/train", cifar_batch(rng, 5, labels100(5))),
        ("cifar-100-python/test", cifar_batch(rng, 3, labels100(3))),
    ]
    serve(cifar100, "cifar-100-python.tar.gz", make_tar(members), origin_attr="ORIGIN")

    i = dict(
        x_train=ragged(rng, 30), y_train=rng.integers(0, 2, 30),
        x_test=ragged(rng, 20), y_test=rng.integers(0, 2, 20),
    )  # fmt: skip
    made["imdb"] = i
    serve(imdb, "imdb.npz", npz_bytes(**i))
    serve(
        imdb, "imdb_word_index.json", json.dumps({"the": 1, "film": 2}).encode(), "WORD_INDEX_HASH"
    )

    r = dict(x=ragged(rng, 40), y=rng.integers(0, 46, 40))
    made["reuters"] = r
    serve(reuters, "reuters.npz", npz_bytes(**r))
    serve(reuters, "reuters_word_index.json", json.dumps({"said": 1}).encode(), "WORD_INDEX_HASH")

    b = dict(x=rng.normal(size=(20, 13)), y=rng.normal(size=20) * 10 + 20)
    made["boston"] = b
    serve(boston_housing, "boston_housing.npz", npz_bytes(**b))
    return made


def test_mnist(files):
    (x, y), (xt, yt) = mnist.load_data()
    m = files["mnist"]
    for got, want in ((x, m["x_train"]), (y, m["y_train"]), (xt, m["x_test"]), (yt, m["y_test"])):
        assert got.dtype == np.uint8 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert x.flags.writeable


def test_fashion_mnist_keeps_its_own_subfolder(files, home):
    (x, y), (xt, yt) = fashion_mnist.load_data()
    f = files["fashion"]
    assert x.shape == (5, 28, 28) and y.shape == (5,) and x.dtype == y.dtype == np.uint8
    np.testing.assert_array_equal(x, f["x_train"])
    np.testing.assert_array_equal(yt, f["y_test"])
    assert sorted(os.listdir(home / "home" / "datasets" / "fashion-mnist")) == sorted(
        fashion_mnist.FILES
    )


def test_cifar10_channels_last_and_first(files, home):
    (x, y), (xt, yt) = cifar10.load_data()
    assert x.shape == (15, 32, 32, 3) and x.dtype == np.uint8
    assert y.shape == (15, 1) and y.dtype == np.uint8
    assert xt.shape == (2, 32, 32, 3) and yt.tolist() == [[1], [9]]
    assert (home / "home" / "datasets" / "cifar-10-batches-py" / "data_batch_5").is_file()
    config.set_image_data_format("channels_first")
    (x2, _), _ = cifar10.load_data()
    assert x2.shape == (15, 3, 32, 32)
    np.testing.assert_array_equal(x2.transpose(0, 2, 3, 1), x)
    # a pixel's red, green and blue come from the three 1024-value planes of its row
    first = pickle.loads(
        tarfile.open(fileobj=io.BytesIO(files["cifar-10-python.tar.gz"]))
        .extractfile("cifar-10-batches-py/data_batch_1")
        .read()
    )[b"data"][0]
    np.testing.assert_array_equal(x[0, 0, 1], first[[1, 1025, 2049]])


def test_cifar_reads_a_copy_keras3_unpacked_where_it_lies(files, home, server):
    """Keras 3 keeps CIFAR-10 as datasets/cifar-10-batches-py-target_archive, unpacked into
    datasets/cifar-10-batches-py-target/ (its extract=True layout)."""
    archive = files["cifar-10-python.tar.gz"]
    kfolder = home / "keras_home" / "datasets"
    target = kfolder / "cifar-10-batches-py-target"
    target.mkdir(parents=True)
    (kfolder / "cifar-10-batches-py-target_archive").write_bytes(archive)
    assert extract_archive(kfolder / "cifar-10-batches-py-target_archive", target)
    before = sorted(p for p in kfolder.rglob("*"))
    (x, y), (xt, yt) = cifar10.load_data()
    assert server.hits == [] and not (home / "home" / "datasets" / "cifar-10-batches-py").exists()
    assert sorted(p for p in kfolder.rglob("*")) == before
    # the same arrays as from our own download
    (kfolder / "cifar-10-batches-py-target_archive").write_bytes(b"not the archive")
    (x2, y2), (xt2, yt2) = cifar10.load_data()
    assert server.hits == ["/cifar-10-python.tar.gz"]
    for a, b in ((x, x2), (y, y2), (xt, xt2), (yt, yt2)):
        np.testing.assert_array_equal(a, b)


def test_cifar100_label_modes(files):
    (x, y), (xt, yt) = cifar100.load_data()
    assert x.shape == (5, 32, 32, 3) and y.shape == (5, 1) and y.dtype == np.int64
    assert y.max() < 100
    (_, yc), _ = cifar100.load_data(label_mode="coarse")
    assert yc.max() < 20 and yc.shape == (5, 1)
    with pytest.raises(ValueError, match='label_mode must be "fine" or "coarse"'):
        cifar100.load_data("medium")


def test_boston_housing(files):
    (x, y), (xt, yt) = boston_housing.load_data()
    assert x.shape == (16, 13) and xt.shape == (4, 13) and x.dtype == np.float64
    order = np.arange(20)
    np.random.RandomState(113).shuffle(order)
    np.testing.assert_array_equal(np.concatenate([x, xt]), files["boston"]["x"][order])
    np.testing.assert_array_equal(np.concatenate([y, yt]), files["boston"]["y"][order])
    (x, _), (xt, _) = boston_housing.load_data(test_split=0.5, seed=1)
    assert len(x) == len(xt) == 10
    with pytest.raises(ValueError, match="test_split"):
        boston_housing.load_data(test_split=1.0)


def keras2_rules(xs, labels, num_words, skip_top, maxlen, start_char, oov_char, index_from):
    """Keras 2's word processing, written plainly, for one part (already shuffled)."""
    if start_char is not None:
        xs = [[start_char] + [w + index_from for w in x] for x in xs]
    else:
        xs = [[w + index_from for w in x] for x in xs]
    if maxlen:
        kept = [(x, y) for x, y in zip(xs, labels) if len(x) < maxlen]
        xs, labels = [x for x, _ in kept], [y for _, y in kept]
    return xs, list(labels)


def limit(xs, num_words, skip_top, oov_char):
    if not num_words:
        num_words = max(max(x) for x in xs if x)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


IMDB_CASES = [
    dict(),
    dict(num_words=20, skip_top=3),
    dict(num_words=25, oov_char=None, maxlen=8),
    dict(start_char=None, index_from=0, seed=7),
    dict(index_from=10, start_char=5, oov_char=4, skip_top=2, num_words=30),
]


@pytest.mark.parametrize("kwargs", IMDB_CASES)
def test_imdb_arguments_follow_keras2_rules(files, kwargs):
    i = files["imdb"]
    args = dict(num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2,
                index_from=3) | kwargs  # fmt: skip
    (x, y), (xt, yt) = imdb.load_data(**kwargs)
    rng = np.random.RandomState(args["seed"])
    parts = []
    for xs, ys in ((i["x_train"], i["y_train"]), (i["x_test"], i["y_test"])):
        order = np.arange(len(xs))
        rng.shuffle(order)
        parts.append(
            keras2_rules(list(xs[order]), ys[order], args["num_words"], args["skip_top"],
                         args["maxlen"], args["start_char"], args["oov_char"],
                         args["index_from"])
        )  # fmt: skip
    want = limit(parts[0][0] + parts[1][0], args["num_words"], args["skip_top"], args["oov_char"])
    n = len(parts[0][0])
    assert x.dtype == object and x.ndim == 1 and isinstance(x[0], list)
    assert [list(s) for s in x] == want[:n] and [list(s) for s in xt] == want[n:]
    assert y.tolist() == list(parts[0][1]) and yt.tolist() == list(parts[1][1])
    if args["num_words"]:
        assert max(max(s) for s in list(x) + list(xt) if s) < args["num_words"]
    if args["maxlen"]:
        assert max(len(s) for s in list(x) + list(xt)) < args["maxlen"]


def test_imdb_nb_words_unknown_keywords_and_maxlen_too_short(files):
    with pytest.warns(UserWarning, match="nb_words"):
        (x, _), _ = imdb.load_data(nb_words=15)
    assert max(max(s) for s in x) < 15
    with pytest.raises(TypeError, match="unrecognized keyword arguments: \\['nb_word'\\]"):
        imdb.load_data(nb_word=15)
    with pytest.raises(ValueError, match="no sequence was kept"):
        imdb.load_data(maxlen=1)
    with pytest.raises(ValueError, match="skip_top"):
        imdb.load_data(skip_top=-1)


def test_word_indexes_and_label_names(files):
    assert imdb.get_word_index() == {"the": 1, "film": 2}
    assert reuters.get_word_index() == {"said": 1}
    names = reuters.get_label_names()
    assert len(names) == 46 and names[3] == "earn"


def test_reuters_split_and_arguments(files):
    r = files["reuters"]
    (x, y), (xt, yt) = reuters.load_data(num_words=30, skip_top=4)
    assert len(x) == 32 and len(xt) == 8 and x.dtype == object
    order = np.arange(40)
    np.random.RandomState(113).shuffle(order)
    xs, labels = keras2_rules(list(r["x"][order]), r["y"][order], 30, 4, None, 1, 2, 3)
    assert [list(s) for s in list(x) + list(xt)] == limit(xs, 30, 4, 2)
    assert y.tolist() + yt.tolist() == list(labels)
    (x, _), (xt, _) = reuters.load_data(test_split=0.5, maxlen=10)
    assert abs(len(x) - len(xt)) <= 1 and all(len(s) < 10 for s in x)


# -- nothing in a dataset file runs ------------------------------------------------------


class Boom:
    def __reduce__(self):
        return (os.system, ("touch polykeras-was-run",))


def test_a_cifar_batch_cannot_run_code(tmp_path, monkeypatch):
    from polykeras.datasets.cifar import load_batch

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Boom(), b"labels": [1]}, protocol=2))
    with pytest.raises(UnsafeContentError, match="posix.system|os.system"):
        load_batch(path)
    assert not (tmp_path / "polykeras-was-run").exists()
    # protocol 0 (how the real files were written, by Python 2) and protocol 2 both read
    data = np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072)
    for protocol in (0, 2):
        path.write_bytes(pickle.dumps({"data": data, "labels": [3, 4]}, protocol=protocol))
        x, labels = load_batch(path)
        assert labels == [3, 4] and x.shape == (2, 3, 32, 32)
        np.testing.assert_array_equal(x.reshape(2, 3072), data)
    path.write_bytes(pickle.dumps({b"data": b"x"}, protocol=2).replace(b"latin1", b"rot13 "))
    with pytest.raises(UnsafeContentError, match="only latin1"):
        load_batch(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(FileFormatError, match="cannot be read"):
        load_batch(path)


def test_an_npz_object_array_cannot_run_code(tmp_path, monkeypatch):
    from polykeras.datasets._readers import load_npz

    monkeypatch.chdir(tmp_path)
    evil = np.empty(1, dtype=object)
    evil[0] = Boom()
    path = tmp_path / "imdb.npz"
    np.savez(path, x_train=evil)
    with pytest.raises(UnsafeContentError, match="refused without running it"):
        load_npz(str(path), ("x_train",))
    assert not (tmp_path / "polykeras-was-run").exists()
    with pytest.raises(FileFormatError, match="has no array 'y'"):
        load_npz(str(path), ("y",))


def test_import_polykeras_does_not_import_datasets():
    code = "import sys, polykeras; print('polykeras.datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
    import polykeras

    assert polykeras.datasets is datasets and polykeras.datasets.mnist is mnist
    from polykeras.utils.data_utils import get_file as old_path

    assert old_path is get_file


# -- real Keras 3 on the same files ------------------------------------------------------

KERAS3_SCRIPT = """
import os, sys, json
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import keras
from keras.src.datasets import (boston_housing, cifar10, cifar100, fashion_mnist, imdb,
                                mnist, reuters)
folder = {folder!r}
cases = json.loads({cases!r})
for mod in (boston_housing, imdb, mnist, reuters):
    mod.get_file = lambda fname=None, *a, **k: os.path.join(folder, "files", fname)
fashion_mnist.get_file = lambda fname, *a, **k: os.path.join(folder, "files", fname)
cifar10.get_file = lambda *a, **k: os.path.join(folder, "home", "datasets")
cifar100.get_file = lambda *a, **k: os.path.join(folder, "home", "datasets")
out = {{}}
def put(name, value):
    if value.dtype == object:
        out[name + "_len"] = np.array([len(s) for s in value])
        out[name + "_flat"] = np.array([w for s in value for w in s], dtype="int64")
    else:
        out[name] = value
for i, kw in enumerate(cases):
    (x, y), (xt, yt) = imdb.load_data(**kw)
    for n, v in zip("x y xt yt".split(), (x, y, xt, yt)):
        put(f"imdb{{i}}_{{n}}", v)
for name, mod, kw in [("reuters", reuters, dict(num_words=30, skip_top=4)),
                      ("reuters2", reuters, dict(test_split=0.5, maxlen=10, oov_char=None)),
                      ("mnist", mnist, {{}}), ("fashion", fashion_mnist, {{}}),
                      ("cifar100", cifar100, {{}}),
                      ("cifar100c", cifar100, dict(label_mode="coarse")),
                      ("boston", boston_housing, dict(test_split=0.3, seed=5))]:
    (x, y), (xt, yt) = mod.load_data(**kw)
    for n, v in zip("x y xt yt".split(), (x, y, xt, yt)):
        put(f"{{name}}_{{n}}", np.asarray(v))
# Keras 3's cifar10 assumes 10,000 images per batch: its batch reader is compared instead
from keras.src.datasets.cifar import load_batch
for b in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
    x, y = load_batch(os.path.join(folder, "home", "datasets", "cifar-10-batches-py", b))
    out["cifar10_" + b + "_x"], out["cifar10_" + b + "_y"] = x, np.array(y)
np.savez(sys.argv[2], **out)
"""


def test_same_results_as_keras3_on_the_same_files(files, home):
    cifar10.load_data()  # unpacks the archives where the Keras 3 run reads them
    cifar100.load_data()
    script = KERAS3_SCRIPT.format(folder=str(home), cases=json.dumps(IMDB_CASES))
    ref = run_keras3_script(home, script, {"unused": np.zeros(1)})
    ours = {}

    def put(name, value):
        if value.dtype == object:
            ours[name + "_len"] = np.array([len(s) for s in value])
            ours[name + "_flat"] = np.array([w for s in value for w in s], dtype="int64")
        else:
            ours[name] = value

    for i, kw in enumerate(IMDB_CASES):
        for n, v in zip("x y xt yt".split(), np.array(imdb.load_data(**kw), dtype=object).ravel()):
            put(f"imdb{i}_{n}", v)
    for name, fn in [
        ("reuters", lambda: reuters.load_data(num_words=30, skip_top=4)),
        ("reuters2", lambda: reuters.load_data(test_split=0.5, maxlen=10, oov_char=None)),
        ("mnist", mnist.load_data),
        ("fashion", fashion_mnist.load_data),
        ("cifar100", cifar100.load_data),
        ("cifar100c", lambda: cifar100.load_data(label_mode="coarse")),
        ("boston", lambda: boston_housing.load_data(test_split=0.3, seed=5)),
    ]:
        (x, y), (xt, yt) = fn()
        for n, v in zip("x y xt yt".split(), (x, y, xt, yt)):
            put(f"{name}_{n}", np.asarray(v))
    from polykeras.datasets.cifar import load_batch

    for b in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x, y = load_batch(home / "home" / "datasets" / "cifar-10-batches-py" / b)
        ours[f"cifar10_{b}_x"], ours[f"cifar10_{b}_y"] = x, np.array(y)
    assert sorted(ours) == sorted(ref)
    for key in ref:
        assert ours[key].shape == ref[key].shape, key
        assert ours[key].dtype == ref[key].dtype or key.endswith(("_len", "_flat")), key
        np.testing.assert_array_equal(ours[key], ref[key], err_msg=key)


@pytest.mark.parametrize("fname", ["../escape.txt", "/tmp/abs.txt", "sub/file.txt", ".."])
def test_get_file_refuses_a_path_as_fname(tmp_path, fname):
    from polykeras.utils_data import get_file

    with pytest.raises(ValueError, match="fname must be a file name"):
        get_file(fname, origin="file:///nonexistent", cache_dir=str(tmp_path))
