"""Reading a string attribute costs what the file holds (issue 20, "shared-heap strings").

A variable-length string element is stored as a length plus the ID of a global-heap
object, and nothing stops many elements from naming the same object: h5py then decodes
that object once per element.  These tests build such files with h5py (writing an
attribute, then pointing all its elements at its one long string) and check that the
loader refuses them from the lengths alone, under a memory cap, while the files Keras,
h5py and polykeras write keep loading."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from polykeras.layers import Dense, Input
from polykeras.models import Model, load_model
from polykeras.saving import FileFormatError, LimitExceededError, limits
from polykeras.saving.hdf5 import read_list_attr, read_text_attr

FIXTURES = Path(__file__).parent / "fixtures"
VLEN = h5py.string_dtype("utf-8")


def _mlp():
    inp = Input(shape=(4,), name="x")
    return Model(inp, Dense(3, name="out")(inp))


def share_one_heap_object(path: Path, length: int, count: int) -> int:
    """Point every element of each vlen attribute written as ``["A" * length, "", "",
    ...]`` (``count`` elements) at its first element's heap object, in place.  Returns how
    many attributes were rewritten.  On disk an element is its length (4 bytes), the heap
    collection's address (8) and the object's index (4)."""
    data = bytearray(path.read_bytes())
    key = struct.pack("<I", length)
    start = rewritten = 0
    while (p := data.find(key, start)) >= 0:
        addr, index = struct.unpack("<QI", data[p + 4 : p + 16])
        follows_empty = data[p + 16 : p + 20] == bytes(4)
        if 0 < addr < len(data) and 0 < index < 2**20 and follows_empty:
            element = bytes(data[p : p + 16])
            data[p + 16 : p + 16 * count] = element * (count - 1)
            rewritten += 1
            start = p + 16 * count
        else:
            start = p + 1
    path.write_bytes(bytes(data))
    return rewritten


def write_bomb(
    path: Path,
    *,
    length: int = 100_000,
    total: int = 20_000,
    parts: int = 1,
    libver: str = "earliest",
    attr: str = "layer_names",
    group: str | None = None,
) -> None:
    """A weights file whose ``attr`` (at the root, or on ``group``) lists ``total`` names
    that all decode to one ``length``-byte string; split into ``attr0``, ``attr1``...
    when ``parts`` > 1 (as Keras splits long lists)."""
    per = total // parts
    with h5py.File(path, "w", libver=libver) as f:
        obj = f.create_group(group) if group else f
        if group:
            f.attrs["layer_names"] = np.array([group.encode()])
        for k in range(parts):
            name = attr if parts == 1 else f"{attr}{k}"
            obj.attrs.create(name, ["A" * length] + [""] * (per - 1), dtype=VLEN)
    assert share_one_heap_object(path, length, per) == parts


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_the_bomb_is_real(tmp_path, libver):
    """What the loader must refuse: h5py decodes the shared object once per element
    (here 4,000 x 3,000 bytes from a file of 100 KB; the refused files decode 2 GB)."""
    path = tmp_path / "small_bomb.h5"
    total = 4_000 if libver == "earliest" else 5_000  # 64 KB header messages; dense storage
    write_bomb(path, length=3_000, total=total, libver=libver)
    with h5py.File(path, "r") as f:
        values = f.attrs["layer_names"]
    assert [len(v) for v in values] == [3_000] * total
    assert sum(len(v) for v in values) > 50 * path.stat().st_size


BOMBS = {
    # 20,000 names in layer_names0..4 (Keras' split form), object headers of version 1
    "split_layer_names": dict(parts=5),
    # one attribute of 20,000 names in dense attribute storage (libver="latest")
    "dense_layer_names": dict(libver="latest"),
    # a layer's weight_names, 4,000 names of 100 KB (400 MB)
    "weight_names": dict(total=4_000, attr="weight_names", group="out"),
}


@pytest.mark.parametrize("kind", sorted(BOMBS))
@pytest.mark.parametrize("call", ["load_weights", "load_model"])
def test_a_shared_heap_bomb_is_refused_under_a_memory_cap(tmp_path, kind, call):
    path = tmp_path / "bomb.h5"
    write_bomb(path, **BOMBS[kind])
    assert path.stat().st_size < 1_300_000
    if call == "load_model":  # the same weights group inside a whole-model file
        with h5py.File(path, "r+") as f:
            f.attrs["model_config"] = np.bytes_(_mlp().to_json().encode())
    attr = BOMBS[kind].get("attr", "layer_names")
    load = "_mlp().load_weights(p)" if call == "load_weights" else "load_model(p)"
    code = f"""
        import resource, time
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
        from polykeras.layers import Dense, Input
        from polykeras.models import Model, load_model
        from polykeras.saving import LimitExceededError
        def _mlp():
            inp = Input(shape=(4,), name="x")
            return Model(inp, Dense(3, name="out")(inp))
        p = {str(path)!r}
        start = time.process_time()
        try:
            {load}
        except LimitExceededError as exc:
            print("refused:", exc)
        print("cpu", time.process_time() - start)
        # VmHWM: this process's own peak (ru_maxrss keeps the parent's peak across exec)
        try:
            with open("/proc/self/status") as status:
                peak = [ln.split()[1] for ln in status if ln.startswith("VmHWM:")][0]
        except (OSError, IndexError):
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print("maxrss_kb", peak)
        """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "refused:" in out, out
    assert repr(attr) in out or f"'{attr}0'" in out, out  # names the attribute
    assert "MemoryError" not in proc.stderr
    cpu = float(out.split("cpu ")[1].split()[0])
    rss_mb = int(out.split("maxrss_kb ")[1].split()[0]) / 1024
    assert cpu < 10, out  # refused from the lengths; decoding took 2 GB and many seconds
    assert rss_mb < 600, out


def _vlen_weights_file(
    tmp_path, libver="earliest", extra_attrs=0, parts=1, config_size=0
) -> tuple[Model, Path]:
    """A file our save wrote, with its name lists rewritten as h5py writes Python str lists
    (variable-length strings), optionally in a version-2 object header (libver latest),
    behind ``extra_attrs`` other attributes (continuation blocks), split in ``parts``."""
    model = _mlp()
    path = tmp_path / f"vlen_{libver}_{extra_attrs}_{parts}.h5"
    model.save(path)
    src = h5py.File(path, "r")
    out = tmp_path / f"copy_{path.name}"
    with h5py.File(out, "w", libver=libver) as f:
        for k in range(extra_attrs):
            f.attrs[f"note{k}"] = np.bytes_(b"x" * 200)
        for key, value in src.attrs.items():
            f.attrs[key] = value
        if config_size:  # a long model_config is a vlen string (write_attr_text)
            text = src.attrs["model_config"].decode()
            f.attrs.create("model_config", text + " " * config_size, dtype=VLEN)
        src.copy(src["model_weights"], f, "model_weights")
        group = f["model_weights"]
        names = [n.decode() for n in group.attrs["layer_names"]]
        del group.attrs["layer_names"]
        chunks = np.array_split(np.array(names, dtype=object), parts)
        for k, chunk in enumerate(chunks):
            name = "layer_names" if parts == 1 else f"layer_names{k}"
            group.attrs.create(name, [str(n) for n in chunk], dtype=VLEN)
        for lname in names:
            layer = group[lname]
            weights = [n.decode() for n in layer.attrs["weight_names"]]
            del layer.attrs["weight_names"]
            layer.attrs.create("weight_names", weights, dtype=VLEN)
    src.close()
    return model, out


@pytest.mark.parametrize(
    "layout",
    [
        dict(),
        dict(libver="latest"),
        dict(extra_attrs=200),  # attributes spill into continuation blocks
        dict(libver="latest", extra_attrs=5),
        dict(parts=2),
        dict(config_size=70_000),
    ],
    ids=["v1", "v2", "v1_continued", "v2_with_others", "split", "long_config"],
)
@pytest.mark.parametrize("budget", ["default", "tiny"])
def test_h5py_str_lists_still_load(tmp_path, monkeypatch, layout, budget):
    """Variable-length name lists load; with a budget smaller than ``count x file size``
    the lengths are read from the object header (the exact path) and still fit."""
    model, path = _vlen_weights_file(tmp_path, **layout)
    if budget == "tiny":  # every vlen attribute: count x file size > budget
        monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", path.stat().st_size - 1)
    loaded = load_model(path)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    fresh = _mlp()
    fresh.load_weights(path)
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_exact_sizes_are_the_lengths_of_the_names(tmp_path, monkeypatch):
    names = ["a" * 10, "b" * 300, "ccc"]
    path = tmp_path / "names.h5"
    with h5py.File(path, "w") as f:
        f.attrs.create("layer_names", names, dtype=VLEN)
    size = path.stat().st_size
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 313)  # forces the header path
    assert 3 * size > 313
    with h5py.File(path, "r") as f:
        assert read_list_attr(f, "layer_names", "t") == names
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 312)
    with h5py.File(path, "r") as f:
        with pytest.raises(LimitExceededError, match="313 bytes"):
            read_list_attr(f, "layer_names", "t")


def test_a_long_name_is_refused_from_its_length(tmp_path, monkeypatch):
    path = tmp_path / "long.h5"
    with h5py.File(path, "w") as f:
        f.attrs.create("layer_names", ["x" * 5000, "y"], dtype=VLEN)
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 6000)
    with h5py.File(path, "r") as f:
        with pytest.raises(LimitExceededError, match="5,000 bytes long"):
            read_list_attr(f, "layer_names", "t")


def test_split_parts_share_one_budget(tmp_path, monkeypatch):
    path = tmp_path / "parts.h5"
    with h5py.File(path, "w") as f:
        for k in range(4):
            f.attrs.create(f"layer_names{k}", [f"p{k}_" + "n" * 996] * 2, dtype=VLEN)
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 6000)  # each part fits, all do not
    with h5py.File(path, "r") as f:
        with pytest.raises(LimitExceededError, match="layer_names"):
            read_list_attr(f, "layer_names", "t")
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 8000)
    with h5py.File(path, "r") as f:
        assert len(read_list_attr(f, "layer_names", "t")) == 8


def test_attributes_of_other_types_are_refused_before_decoding(tmp_path):
    path = tmp_path / "types.h5"
    vlen_ints = h5py.vlen_dtype(np.dtype("int32"))
    with h5py.File(path, "w") as f:
        f.attrs.create("layer_names", [np.arange(3), np.arange(2)], dtype=vlen_ints)
        pair = np.array([(b"ab", "cd")], dtype=[("a", "S4"), ("b", VLEN)])
        f.attrs.create("keras_version", pair)
        f.attrs["backend"] = np.asarray([])  # Keras' empty list: float64, no values
    with h5py.File(path, "r") as f:
        with pytest.raises(FileFormatError, match="'layer_names'.*expected strings"):
            read_list_attr(f, "layer_names", "t")
        with pytest.raises(FileFormatError, match="'keras_version'"):
            read_text_attr(f, "keras_version", "t")
        assert read_list_attr(f, "backend", "t") == []


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.h5")))
def test_files_written_by_keras_still_load(name, monkeypatch):
    """tf.keras 2 and Keras 3 write fixed-length names: never decoded differently, and
    untouched by a small decoding budget (their names are far below it)."""
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 2**20)
    try:
        model = load_model(FIXTURES / name, compile=False)
    except Exception as exc:  # a fixture needing custom objects: its weights still load
        pytest.skip(f"{name} needs more than load_model: {exc}")
    assert model.get_weights()


def test_thousands_of_split_parts_are_refused_quickly(tmp_path):
    """8,000 parts of one name each: HDF5's lookups by name made this quadratic (8 s);
    Keras never writes more than about 2,000 parts within the decoding budget."""
    import time

    path = tmp_path / "parts.h5"
    with h5py.File(path, "w") as f:
        for k in range(8000):
            f.attrs[f"layer_names{k}"] = np.array([f"n{k}".encode()])
    start = time.process_time()
    with h5py.File(path, "r") as f:
        with pytest.raises(LimitExceededError, match="8,000 attributes"):
            read_list_attr(f, "layer_names", "t")
    assert time.process_time() - start < 1


def test_too_many_parts_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 100 * 32256)  # at most 101 parts
    path = tmp_path / "parts.h5"
    with h5py.File(path, "w") as f:
        for k in range(102):
            f.attrs[f"weight_names{k}"] = np.array([f"w{k}".encode()])
    with h5py.File(path, "r") as f:
        with pytest.raises(LimitExceededError, match="more than 101 parts"):
            read_list_attr(f, "weight_names", "t")
