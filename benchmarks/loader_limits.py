"""What the worst input just under each loader limit costs: peak memory and CPU time.

    python benchmarks/loader_limits.py                # every case, heavy ones scaled 1/8
    python benchmarks/loader_limits.py --full         # MAX_PARAMS / MAX_INIT_BYTES at full size
    python benchmarks/loader_limits.py --cases yaml_items,vlen_shared_heap

For each limit in polykeras/saving/limits.py it builds the most expensive file or text it
can that still passes that limit (or, where a later check refuses it, is refused only after
the work the limit allows), loads it in a fresh child process, and prints a markdown table
of the outcome, the child's CPU time for the load, and its resident memory before the load
and at its peak during the load (the peak is reset through /proc/self/clear_refs first).  The
cases that allocate gigabytes (the parameter and initializer-memory budgets) run at 1/8
of the limit unless ``--full``.

It measures; it is never a test.  On a shared machine CPU times are noisy upward; each
case has a time limit (``--timeout``) and the whole run is meant to stay within minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import textwrap
import time

CHILD = """
import json, resource, sys, time
import numpy as np
import polykeras
from polykeras.saving import SavingError, formats, limits
{setup}
def _status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) // 1024 for line in fh if line.startswith(key))
before = _status("VmRSS:")
with open("/proc/self/clear_refs", "w") as fh:  # restart the peak (VmHWM) from here
    fh.write("5")
start, wall = time.process_time(), time.perf_counter()
outcome = "loaded"
try:
{body}
except SavingError as exc:
    outcome = "refused: " + type(exc).__name__ + ": " + str(exc)[:90]
print(json.dumps({{"cpu": time.process_time() - start, "wall": time.perf_counter() - wall,
    "before_mb": before, "peak_mb": _status("VmHWM:"),
    "outcome": outcome}}))
"""


def _run(setup: str, body: str, timeout: float) -> dict:
    code = CHILD.format(
        setup=textwrap.dedent(setup), body=textwrap.indent(textwrap.dedent(body), "    ")
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"outcome": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"outcome": "crashed: " + proc.stderr.strip().splitlines()[-1][:120]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the inputs ----------------------------------------------------------------------------------
def _sequential(layers: list) -> str:
    return json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": layers}})


def _share_heap(path: str, length: int, per: int) -> None:
    """Point every element of each vlen attribute written as ``["A" * length, "", ...]``
    at its first element's heap object (see tests/test_loader_heap.py)."""
    data = bytearray(open(path, "rb").read())
    key, start = struct.pack("<I", length), 0
    while (p := data.find(key, start)) >= 0:
        addr, index = struct.unpack("<QI", data[p + 4 : p + 16])
        if 0 < addr < len(data) and 0 < index < 2**20 and data[p + 16 : p + 20] == bytes(4):
            data[p + 16 : p + 16 * per] = bytes(data[p : p + 16]) * (per - 1)
            start = p + 16 * per
        else:
            start = p + 1
    open(path, "wb").write(bytes(data))


def cases(folder: str, scale: int) -> list[tuple[str, str, str, str, str]]:
    """(case, limit, input, setup, body) for each case; writes the inputs into folder."""
    import h5py
    import numpy as np

    from polykeras.saving import limits

    out = []

    def text_file(name: str, text: str) -> str:
        path = os.path.join(folder, name)
        with open(path, "w") as fh:
            fh.write(text)
        return path

    def size(path: str) -> str:
        return f"{os.path.getsize(path) / 2**20:.2f} MiB"

    out.append(("import only", "-", "-", "", "pass"))

    # MAX_CONFIG_BYTES: the largest text, one long string (cheap to parse per byte)
    p = text_file("bytes.json", json.dumps({"a": "x" * (limits.MAX_CONFIG_BYTES - 20)}))
    out.append(
        (
            "config_bytes",
            "MAX_CONFIG_BYTES",
            f"JSON, {size(p)}",
            "",
            f"formats.loads_json(open({p!r}).read())",
        )
    )
    # MAX_ITEMS: the most values JSON may hold, as the cheapest text per value
    n = limits.MAX_ITEMS - 1
    p = text_file("items.json", "[" + ",".join(["0"] * n) + "]")
    out.append(
        (
            "json_items",
            "MAX_ITEMS",
            f"JSON [0,...] {n:,} items, {size(p)}",
            "",
            f"formats.loads_json(open({p!r}).read())",
        )
    )
    n = (2 * limits.MAX_ITEMS - 2) // 3  # the pre-scan counts a {} as up to 3 values
    p = text_file("dicts.json", "[" + ",".join(["{}"] * n) + "]")
    out.append(
        (
            "json_dicts",
            "MAX_ITEMS (pre-scan)",
            f"JSON [{{}},...] {n:,} items, {size(p)}",
            "",
            f"formats.loads_json(open({p!r}).read())",
        )
    )
    # MAX_DEPTH
    d = limits.MAX_DEPTH - 1
    p = text_file("depth.json", "[" * d + "]" * d)
    out.append(
        (
            "json_depth",
            "MAX_DEPTH",
            f"JSON nested {d} deep",
            "",
            f"formats.loads_json(open({p!r}).read())",
        )
    )
    # MAX_YAML_ITEMS
    n = limits.MAX_YAML_ITEMS - 10  # the scan counts parser events: stream, document...
    p = text_file("items.yaml", "".join("- 0\n" for _ in range(n)))
    out.append(
        (
            "yaml_items",
            "MAX_YAML_ITEMS",
            f"YAML list of {n:,} scalars, {size(p)}",
            "",
            f"formats.loads_yaml(open({p!r}).read())",
        )
    )
    # MAX_LAYERS: a Sequential of the most (cheapest) layers
    n = limits.MAX_LAYERS - 1
    layers = [
        {"class_name": "Activation", "config": {"name": f"a{i}", "activation": "linear"}}
        for i in range(n)
    ]
    layers[0]["config"]["batch_input_shape"] = [None, 4]
    p = text_file("layers.json", _sequential(layers))
    out.append(
        (
            "layers",
            "MAX_LAYERS",
            f"Sequential of {n:,} Activation, {size(p)}",
            "",
            f"polykeras.models.model_from_json(open({p!r}).read())",
        )
    )
    # MAX_NODES_PER_LAYER: one Dense called on the input that many times
    n = limits.MAX_NODES_PER_LAYER - 1
    cfg = {
        "class_name": "Model",
        "config": {
            "name": "m",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "x",
                    "inbound_nodes": [],
                    "config": {"name": "x", "batch_input_shape": [None, 4]},
                },
                {
                    "class_name": "Dense",
                    "name": "d",
                    "config": {"name": "d", "units": 2},
                    "inbound_nodes": [[["x", 0, 0, {}]] for _ in range(n)],
                },
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["d", n - 1, 0]],
        },
    }
    p = text_file("nodes.json", json.dumps(cfg))
    out.append(
        (
            "nodes_per_layer",
            "MAX_NODES_PER_LAYER",
            f"one Dense called {n:,} times",
            "",
            f"polykeras.models.model_from_json(open({p!r}).read())",
        )
    )
    # MAX_INIT_BYTES (and MAX_PARAMS below it): uniform draws just under the byte budget
    budget = limits.MAX_INIT_BYTES // scale
    from polykeras import initializers

    def dense_cost(u: int) -> int:
        kernel = initializers.cost(initializers.GlorotUniform(), (4096, u))[0]
        return kernel + initializers.cost(initializers.Zeros(), (u,))[0]

    units = budget // 12 // 4097
    while dense_cost(units + 1) <= budget:
        units += 1
    p = text_file(
        "init_bytes.json",
        _sequential(
            [
                {
                    "class_name": "Dense",
                    "config": {
                        "name": "wide",
                        "units": int(units),
                        "batch_input_shape": [None, 4096],
                    },
                }
            ]
        ),
    )
    setup = f"limits.MAX_INIT_BYTES = {budget}" if scale > 1 else ""
    out.append(
        (
            f"init_bytes{'' if scale == 1 else f' (1/{scale})'}",
            "MAX_INIT_BYTES",
            f"Dense({units:,}) on 4096 inputs",
            setup,
            f"polykeras.models.model_from_json(open({p!r}).read())",
        )
    )
    # MAX_INIT_FLOPS: the largest orthogonal LSTM under the work budget
    units = 64
    while True:
        step = units + 1 + units // 200
        _, flops = initializers.cost(initializers.Orthogonal(), (step, 4 * step))
        if flops > limits.MAX_INIT_FLOPS:
            break
        units = step
    p = text_file(
        "flops.json",
        _sequential(
            [
                {
                    "class_name": "LSTM",
                    "config": {"name": "l", "units": units, "batch_input_shape": [None, 3, 8]},
                }
            ]
        ),
    )
    out.append(
        (
            "init_flops",
            "MAX_INIT_FLOPS",
            f"LSTM({units}), orthogonal",
            "",
            f"polykeras.models.model_from_json(open({p!r}).read())",
        )
    )
    # MAX_PARAMS via a file holding the weights (no initializer runs): zeros, gzip-compressed
    params = limits.MAX_PARAMS // scale
    units = params // 4097
    from polykeras.layers import Dense, Input
    from polykeras.models import Sequential

    model = Sequential([Input((4096,)), Dense(2, name="big")])  # small; then made big
    p = os.path.join(folder, "params.h5")
    model.save(p)
    with h5py.File(p, "r+") as f:
        text = f.attrs["model_config"].decode().replace('"units": 2', f'"units": {units}')
        f.attrs["model_config"] = np.bytes_(text.encode())
        group = f["model_weights/big"]
        names = [n.decode() for n in group.attrs["weight_names"]]
        for name, shape in zip(names, [(4096, units), (units,)]):
            del group[name]
            group.create_dataset(
                name,
                shape,
                "float32",
                compression="gzip",
                chunks=(min(shape[0], 256),) + shape[1:],
                fillvalue=0.0,
            )
            ds = group[name]
            block = np.zeros((256,) + shape[1:], "float32")
            for i in range(0, shape[0], 256):  # written, so gzip's ~1000x stays under the cap
                ds[i : i + 256] = block[: shape[0] - i]
    setup = f"limits.MAX_PARAMS = {params}" if scale > 1 else ""
    out.append(
        (
            f"params_h5{'' if scale == 1 else f' (1/{scale})'}",
            "MAX_PARAMS, MAX_COMPRESSION_RATIO",
            f"load_model, Dense({units:,}) on 4096, gzip zeros, {size(p)}",
            setup,
            f"polykeras.models.load_model({p!r})",
        )
    )
    # MAX_NAMES: the most names, fixed-length as Keras writes them (split in parts)
    n = limits.MAX_NAMES
    names = np.array([f"n{i}".encode() for i in range(n)])
    p = os.path.join(folder, "names.h5")
    with h5py.File(p, "w") as f:
        from polykeras.saving.hdf5 import write_attr_list

        write_attr_list(f, "layer_names", [v.decode() for v in names])
    out.append(
        (
            "names",
            "MAX_NAMES",
            f"{n:,} names in layer_names0.., {size(p)}",
            "",
            f"from polykeras.saving.hdf5 import read_list_attr\n"
            f"import h5py\nwith h5py.File({p!r}) as f: read_list_attr(f, 'layer_names', 'b')",
        )
    )
    # MAX_NAME_LENGTH and the decoding budget: names as long as allowed, up to the budget
    length = limits.MAX_NAME_LENGTH
    per = 4000  # elements per part (64 KB object-header messages)
    parts = limits.MAX_CONFIG_BYTES // (length * per)
    p = os.path.join(folder, "long_names.h5")
    with h5py.File(p, "w") as f:
        for k in range(parts):
            f.attrs.create(
                f"layer_names{k}",
                ["A" * length] + [""] * (per - 1),
                dtype=h5py.string_dtype("utf-8"),
            )
    _share_heap(p, length, per)
    out.append(
        (
            "vlen_shared_heap",
            "MAX_CONFIG_BYTES (decoded), MAX_NAME_LENGTH",
            f"{parts * per:,} vlen names of {length} sharing heap objects, {size(p)}",
            "",
            f"from polykeras.saving.hdf5 import read_list_attr\n"
            f"import h5py\nwith h5py.File({p!r}) as f: read_list_attr(f, 'layer_names', 'b')",
        )
    )
    # ...and the same file with elements 100 times longer: refused from the lengths
    p2 = os.path.join(folder, "bomb.h5")
    with h5py.File(p2, "w") as f:
        for k in range(5):
            f.attrs.create(
                f"layer_names{k}",
                ["A" * 100_000] + [""] * (per - 1),
                dtype=h5py.string_dtype("utf-8"),
            )
    _share_heap(p2, 100_000, per)
    out.append(
        (
            "vlen_heap_bomb",
            "MAX_CONFIG_BYTES (decoded)",
            f"20,000 vlen names on one 100 KB object (2 GB decoded), {size(p2)}",
            "",
            f"from polykeras.saving.hdf5 import read_list_attr\n"
            f"import h5py\nwith h5py.File({p2!r}) as f: read_list_attr(f, 'layer_names', 'b')",
        )
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="gigabyte cases at full size")
    parser.add_argument("--cases", default="", help="comma-separated case names")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    scale = 1 if args.full else 8
    wanted = {c for c in args.cases.split(",") if c}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        rows = cases(folder, scale)
        print(f"built the inputs in {time.perf_counter() - started:.0f} s\n", file=sys.stderr)
        print("| case | limit | input | outcome | CPU s | wall s | RSS before / peak MiB |")
        print("|---|---|---|---|---|---|---|")
        for name, limit, what, setup, body in rows:
            if wanted and name.split(" ")[0] not in wanted and name != "import only":
                continue
            r = _run(setup, body, args.timeout)
            cpu = f"{r['cpu']:.2f}" if "cpu" in r else "-"
            wall = f"{r['wall']:.2f}" if "wall" in r else "-"
            rss = f"{r['before_mb']} / {r['peak_mb']}" if "peak_mb" in r else "-"
            outcome = r["outcome"].replace("|", "/")
            print(f"| {name} | {limit} | {what} | {outcome} | {cpu} | {wall} | {rss} |", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
