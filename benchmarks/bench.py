"""Training speed and memory of the guide models: polykeras vs hand-written PyTorch vs Keras 3.

    python benchmarks/bench.py                  # every model x every available implementation
    python benchmarks/bench.py --steps 30 --models mlp
    python benchmarks/bench.py --out benchmarks/results.md
    python benchmarks/bench.py --device cuda --quick --json bench.json   # on a GPU
    python benchmarks/bench.py --threads 1 --clock cpu   # on a busy shared machine

With ``--device cuda`` the implementations are the GPU ones: hand-written PyTorch on CUDA
(batches copied from pinned host memory, as a DataLoader with ``pin_memory`` does),
polykeras on ``torch:cuda`` and on ``cupy``, and Keras 3 (torch backend) on CUDA; the table
adds each one's peak GPU memory (torch's ``max_memory_allocated``, or the CuPy memory
pool's size).  ``--quick`` is the short mode of benchmarks/gpu_check.py: one round, two
timed passes, fewer steps.  ``--json`` writes the rows after every run, so a run cut short
keeps what it measured.

Each (model, implementation) runs in its own process, so peak memory (ru_maxrss) and
import time are its own.  Every implementation trains the same architecture with the same
optimizer (RMSprop, lr 1e-3) and loss on the same random data, for a fixed number of steps
after warm-up steps.  The implementations of a model run in interleaved rounds (five by
default, each in a rotated order), so that a slow spell of the shared machine hits all of
them.  Other processes only ever slow a run down, so the table's main figure is each
implementation's best round and the ratio of best rounds; beside it, the ratio to the
hand-written loop of the same round (median and range over the rounds) shows the spread.
With ``--clock cpu`` the timed passes are measured in the process's CPU time
(``time.process_time``, all its threads) instead of wall-clock time: on a machine that
other work keeps busy, time spent waiting for a core then does not count, so the ratios
move far less with the load (with ``--threads 1`` each implementation runs on one core;
page faults and cache contention still count).  Wall-clock time is the default and what a
user sees.  This prints numbers; it is never a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

MODELS = {
    # name: (batch size, description, timed steps per repeat)
    "mlp": (128, "MLP 784-64-64-10", 1000),
    "multi_io": (32, "000 multi-input: Embedding 10000x512 + LSTM(32)", 30),
    "siamese": (64, "shared-vision siamese 27x27x1", 30),
    "bilstm": (32, "Embedding 20000x128 + Bidirectional(LSTM(64)), 100 steps", 20),
    "transformer": (32, "Embedding 5000x64, 64 steps + Transformer block (4 heads)", 30),
}
QUICK_STEPS = {  # --quick
    "mlp": 200,
    "multi_io": 20,
    "siamese": 20,
    "bilstm": 10,
    "transformer": 10,
}
REPEATS = 3  # timed passes per measurement; the best one counts (the machine is shared)
IMPLS = [
    "torch-handwritten",
    "torch-handwritten-keras-loss",
    "polykeras-torch",
    "polykeras-numpy",
    "keras3-torch",
    "polykeras-torch-jit",  # compile(jit_compile=True); compiles during the warm-up steps
]
GPU_IMPLS = [
    "torch-handwritten",
    "torch-handwritten-keras-loss",
    "polykeras-torch",
    "polykeras-cupy",
    "keras3-torch",
]
BASE = "torch-handwritten"  # the ratios' denominator
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter  # the timed passes' clock; a child process sets it (--clock)


def make_data(model: str, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    if model == "mlp":
        x = rng.normal(size=(n, 784)).astype("float32")
        y = np.eye(10, dtype="float32")[rng.integers(0, 10, n)]
        return [x], [y]
    if model == "multi_io":
        ids = rng.integers(1, 10000, size=(n, 100)).astype("int32")
        extra = rng.normal(size=(n, 5)).astype("float32")
        y = rng.integers(0, 2, size=(n, 1)).astype("float32")
        return [ids, extra], [y, y]
    if model == "transformer":
        ids = rng.integers(1, 5000, size=(n, 64)).astype("int32")
        return [ids], [rng.integers(0, 2, size=(n, 1)).astype("float32")]
    if model == "bilstm":
        ids = rng.integers(1, 20000, size=(n, 100)).astype("int32")
        return [ids], [rng.integers(0, 2, size=(n, 1)).astype("float32")]
    a = rng.normal(size=(n, 27, 27, 1)).astype("float32")
    b = rng.normal(size=(n, 27, 27, 1)).astype("float32")
    y = rng.integers(0, 2, size=(n, 1)).astype("float32")
    return [a, b], [y]


# -- Keras-style implementations (polykeras and Keras 3 share the code) --------------------
def keras_model(keras, name: str):
    L = keras.layers
    if name == "mlp":
        inputs = L.Input(shape=(784,))
        x = L.Dense(64, activation="relu")(inputs)
        x = L.Dense(64, activation="relu")(x)
        out = L.Dense(10, activation="softmax")(x)
        model = keras.Model(inputs, out)
        model.compile(
            optimizer=keras.optimizers.RMSprop(learning_rate=1e-3), loss="categorical_crossentropy"
        )
        return model
    if name == "multi_io":
        main_input = L.Input(shape=(100,), dtype="int32", name="main_input")
        x = L.Embedding(output_dim=512, input_dim=10000)(main_input)
        lstm_out = L.LSTM(32)(x)
        aux_out = L.Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
        aux_in = L.Input(shape=(5,), name="aux_input")
        x = L.concatenate([lstm_out, aux_in])
        for _ in range(3):
            x = L.Dense(64, activation="relu")(x)
        main_out = L.Dense(1, activation="sigmoid", name="main_output")(x)
        model = keras.Model([main_input, aux_in], [main_out, aux_out])
        model.compile(
            optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
            loss=["binary_crossentropy", "binary_crossentropy"],
            loss_weights=[1.0, 0.2],
        )
        return model
    if name == "transformer":  # one encoder block: attention and feed-forward, post-norm
        ids = L.Input(shape=(64,), dtype="int32")
        x = L.Embedding(5000, 64)(ids)
        x = L.LayerNormalization()(L.Add()([x, L.MultiHeadAttention(4, 16)(x, x)]))
        ff = L.Dense(64)(L.Dense(128, activation="relu")(x))
        x = L.GlobalAveragePooling1D()(L.LayerNormalization()(L.Add()([x, ff])))
        model = keras.Model(ids, L.Dense(1, activation="sigmoid")(x))
        model.compile(
            optimizer=keras.optimizers.RMSprop(learning_rate=1e-3), loss="binary_crossentropy"
        )
        return model
    if name == "bilstm":
        ids = L.Input(shape=(100,), dtype="int32")
        x = L.Bidirectional(L.LSTM(64))(L.Embedding(20000, 128)(ids))
        model = keras.Model(ids, L.Dense(1, activation="sigmoid")(x))
        model.compile(
            optimizer=keras.optimizers.RMSprop(learning_rate=1e-3), loss="binary_crossentropy"
        )
        return model
    digit_input = L.Input(shape=(27, 27, 1))
    x = L.Conv2D(64, (3, 3))(digit_input)
    x = L.Conv2D(64, (3, 3))(x)
    x = L.MaxPooling2D((2, 2))(x)
    vision = keras.Model(digit_input, L.Flatten()(x))
    a, b = L.Input(shape=(27, 27, 1)), L.Input(shape=(27, 27, 1))
    merged = L.concatenate([vision(a), vision(b)])
    out = L.Dense(1, activation="sigmoid")(merged)
    model = keras.Model([a, b], out)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-3), loss="binary_crossentropy"
    )
    return model


def _no_sync():
    pass


def run_keras_like(keras, name, batch, steps, warmup, repeats=REPEATS, sync=_no_sync):
    model = keras_model(keras, name)
    xs, ys = make_data(name, batch * (steps + warmup))
    wx = [x[: batch * warmup] for x in xs]
    wy = [y[: batch * warmup] for y in ys]
    model.fit(wx, wy, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    mx = [x[batch * warmup :] for x in xs]
    my = [y[batch * warmup :] for y in ys]
    elapsed = float("inf")
    for _ in range(repeats):
        sync()
        start = _clock()
        model.fit(mx, my, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        sync()
        elapsed = min(elapsed, _clock() - start)
    # single-sample latency of model(x)
    sample = [x[:1] for x in xs]
    model.predict(sample, verbose=0)
    sync()
    t0 = time.perf_counter()
    for _ in range(20):
        model(sample if len(sample) > 1 else sample[0])
    sync()
    latency = (time.perf_counter() - t0) / 20
    return batch * steps / elapsed, latency


# -- hand-written PyTorch ---------------------------------------------------------------------
def run_torch(name, batch, steps, warmup, keras_loss=False, device="cpu", repeats=REPEATS):
    """The model in plain PyTorch.  By default with the losses a PyTorch programmer writes
    (on logits: cross_entropy, BCEWithLogitsLoss); with ``keras_loss`` with Keras' math on
    the probabilities (softmax/sigmoid, then clip to [eps, 1 - eps] and log), which is what
    a Keras model computes, and the loss read back every step, as fit does.  On CUDA the
    data stay in pinned host memory and each batch is copied without blocking, as a
    DataLoader with ``pin_memory=True`` does."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    eps = 1e-7

    def keras_cce(logits, target):
        p = torch.softmax(logits, -1)
        p = (p / p.sum(-1, keepdim=True)).clamp(eps, 1 - eps)
        return (-(target * p.log()).sum(-1)).mean()

    def keras_bce(logits, target):
        p = torch.sigmoid(logits).clamp(eps, 1 - eps)
        return (-(target * p.log() + (1 - target) * (1 - p).log())).mean()

    if name == "mlp":
        net = nn.Sequential(
            nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
        )

        def loss_fn(xs, ys):
            if keras_loss:
                return keras_cce(net(xs[0]), ys[0])
            return nn.functional.cross_entropy(net(xs[0]), ys[0].argmax(1))
    elif name == "multi_io":

        class MultiIO(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(10000, 512)
                self.lstm = nn.LSTM(512, 32, batch_first=True)
                self.aux = nn.Linear(32, 1)
                self.mlp = nn.Sequential(
                    nn.Linear(37, 64),
                    nn.ReLU(),
                    nn.Linear(64, 64),
                    nn.ReLU(),
                    nn.Linear(64, 64),
                    nn.ReLU(),
                    nn.Linear(64, 1),
                )

            def forward(self, ids, extra):
                _, (h, _) = self.lstm(self.emb(ids))
                h = h[-1]
                return self.mlp(torch.cat([h, extra], 1)), self.aux(h)

        net = MultiIO()
        bce = keras_bce if keras_loss else nn.BCEWithLogitsLoss()

        def loss_fn(xs, ys):
            main, aux = net(xs[0].long(), xs[1])
            return bce(main, ys[0]) + 0.2 * bce(aux, ys[1])
    elif name == "transformer":

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(5000, 64)
                self.att = nn.MultiheadAttention(64, 4, batch_first=True)
                self.norm1 = nn.LayerNorm(64, eps=1e-3)
                self.ff = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64))
                self.norm2 = nn.LayerNorm(64, eps=1e-3)
                self.head = nn.Linear(64, 1)

            def forward(self, ids):
                x = self.emb(ids)
                x = self.norm1(x + self.att(x, x, x, need_weights=False)[0])
                x = self.norm2(x + self.ff(x))
                return self.head(x.mean(1))

        net = Block()
        bce = keras_bce if keras_loss else nn.BCEWithLogitsLoss()

        def loss_fn(xs, ys):
            return bce(net(xs[0].long()), ys[0])
    elif name == "bilstm":

        class BiLSTM(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(20000, 128)
                self.lstm = nn.LSTM(128, 64, batch_first=True, bidirectional=True)
                self.head = nn.Linear(128, 1)

            def forward(self, ids):
                _, (h, _) = self.lstm(self.emb(ids))
                return self.head(torch.cat([h[0], h[1]], 1))

        net = BiLSTM()
        bce = keras_bce if keras_loss else nn.BCEWithLogitsLoss()

        def loss_fn(xs, ys):
            return bce(net(xs[0].long()), ys[0])
    else:

        class Siamese(nn.Module):
            def __init__(self):
                super().__init__()
                self.vision = nn.Sequential(
                    nn.Conv2d(1, 64, 3), nn.Conv2d(64, 64, 3), nn.MaxPool2d(2), nn.Flatten()
                )
                self.head = nn.Linear(2 * 64 * 11 * 11, 1)

            def forward(self, a, b):
                return self.head(torch.cat([self.vision(a), self.vision(b)], 1))

        net = Siamese()
        bce = keras_bce if keras_loss else nn.BCEWithLogitsLoss()

        def loss_fn(xs, ys):
            a = xs[0].permute(0, 3, 1, 2)
            b = xs[1].permute(0, 3, 1, 2)
            return bce(net(a, b), ys[0])

    dev = torch.device(device)
    net.to(dev)
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    xs, ys = make_data(name, batch * (steps + warmup))
    txs = [torch.from_numpy(x) for x in xs]
    tys = [torch.from_numpy(y) for y in ys]
    on_gpu = dev.type == "cuda"
    if on_gpu:
        txs = [t.pin_memory() for t in txs]
        tys = [t.pin_memory() for t in tys]

    def batch_of(tensors, sl):
        if on_gpu:
            return [t[sl].to(dev, non_blocking=True) for t in tensors]
        return [t[sl] for t in tensors]

    def step(i):
        sl = slice(i * batch, (i + 1) * batch)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(batch_of(txs, sl), batch_of(tys, sl))
        loss.backward()
        opt.step()
        if keras_loss:
            loss.item()
        return loss

    for i in range(warmup):
        step(i)
    elapsed = float("inf")
    for _ in range(repeats):
        start = _clock()
        for i in range(warmup, warmup + steps):
            loss = step(i)
        float(loss)  # waits for the device
        elapsed = min(elapsed, _clock() - start)
    return batch * steps / elapsed, None


def _gpu_sync():
    """Wait for every queued GPU kernel (of torch and CuPy, whichever this process uses)."""
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()
    if "cupy" in sys.modules:
        sys.modules["cupy"].cuda.runtime.deviceSynchronize()


def _peak_gpu_mb() -> float | None:
    """Peak GPU memory of this process: torch's max_memory_allocated, plus what the CuPy
    memory pool holds (the pool keeps freed blocks, so its size is its peak)."""
    total, seen = 0.0, False
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_initialized():
            total += torch.cuda.max_memory_allocated() / 2**20
            seen = True
    if "cupy" in sys.modules:
        total += sys.modules["cupy"].get_default_memory_pool().total_bytes() / 2**20
        seen = True
    return total if seen else None


def polykeras_backend_name(impl: str, device: str) -> str:
    name = impl.split("-", 1)[1].removesuffix("-jit")
    return "torch:cuda" if name == "torch" and device == "cuda" else name


def child(
    impl: str,
    name: str,
    steps: int | None,
    warmup: int,
    device: str = "cpu",
    repeats: int = REPEATS,
    clock: str = "wall",
) -> dict:
    global _clock
    _clock = CLOCKS[clock]
    batch = MODELS[name][0]
    steps = steps or MODELS[name][2]
    sync = _gpu_sync if device == "cuda" else _no_sync
    t0 = time.perf_counter()
    if impl.startswith("torch-handwritten"):
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
        import_s = time.perf_counter() - t0
        sps, latency = run_torch(
            name,
            batch,
            steps,
            warmup,
            keras_loss=impl.endswith("keras-loss"),
            device=device,
            repeats=repeats,
        )
    elif impl.startswith("polykeras-"):
        import polykeras

        import_s = time.perf_counter() - t0
        polykeras.set_backend(polykeras_backend_name(impl, device))
        polykeras.utils.set_random_seed(0)
        if impl.endswith("-jit"):  # the same models, compiled with jit_compile=True
            compile_ = polykeras.Model.compile
            polykeras.Model.compile = lambda self, *a, **k: compile_(  # type: ignore[method-assign]
                self, *a, **{**k, "jit_compile": True}
            )
        sps, latency = run_keras_like(polykeras, name, batch, steps, warmup, repeats, sync)
    else:
        os.environ["KERAS_BACKEND"] = "torch"  # Keras 3 on torch takes CUDA where visible
        import keras

        import_s = time.perf_counter() - t0
        keras.utils.set_random_seed(0)
        sps, latency = run_keras_like(keras, name, batch, steps, warmup, repeats, sync)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "impl": impl,
        "model": name,
        "device": device,
        "samples_per_s": sps,
        "peak_mb": peak_mb,
        "peak_gpu_mb": _peak_gpu_mb() if device == "cuda" else None,
        "import_s": import_s,
        "latency_ms": None if latency is None else latency * 1e3,
        "clock": clock,
    }


def available(impl: str, device: str = "cpu") -> str | None:
    """None when ``impl`` can run here on ``device``, else why not."""
    import importlib.util

    need = {
        "torch-handwritten": "torch",
        "torch-handwritten-keras-loss": "torch",
        "polykeras-torch": "torch",
        "polykeras-torch-jit": "torch",
        "polykeras-numpy": "numpy",
        "polykeras-cupy": "cupy",
        "keras3-torch": "keras",
    }[impl]
    if importlib.util.find_spec(need) is None:
        return f"{need} is not installed"
    if impl == "keras3-torch" and importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    if device == "cuda":
        if impl == "polykeras-numpy":
            return "NumPy runs on the CPU only"
        if impl == "polykeras-cupy":
            import polykeras

            info = next((b for b in polykeras.backends() if b.name == "cupy"), None)
            if info is None or not info.usable:
                return "cupy backend: " + (info.reason if info else "not discovered")
            return None
        import torch

        if not torch.cuda.is_available():
            return "torch.cuda.is_available() is False"
    elif impl == "polykeras-cupy":
        return "CuPy runs on a GPU only (--device cuda)"
    return None


def cold_start() -> dict:
    """import polykeras, and the first MLP prediction on NumPy, from a fresh process."""
    code = (
        "import time; t=time.perf_counter(); import polykeras as k; t1=time.perf_counter();"
        "import numpy as np; i=k.Input(shape=(784,));"
        "x=k.layers.Dense(64,activation='relu')(i);"
        "x=k.layers.Dense(64,activation='relu')(x);"
        "o=k.layers.Dense(10,activation='softmax')(x);"
        "m=k.Model(i,o); m.predict(np.zeros((1,784),'float32')); t2=time.perf_counter();"
        "print(t1-t, t2-t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "POLYKERAS_BACKEND": "numpy"},
    )
    imp, first = (float(v) for v in out.stdout.split())
    return {"import_s": imp, "first_predict_s": first}


def make_table(
    runs: dict[tuple[str, str], list[dict]],
    skipped: dict[tuple[str, str], str],
    models: list[str],
    impls: list[str],
    device: str = "cpu",
) -> str:
    """The Markdown table of the best rounds and ratios (and, on CUDA, peak GPU memory and
    each polykeras implementation against Keras 3)."""
    gpu = device == "cuda"
    head = (
        "| model | implementation | samples/s (best round) | x hand-written torch (best "
        "rounds) | x hand-written, same round: median (range) | peak MB | x torch memory "
        "| model(x) latency ms |"
    )
    rule = "|---|---|---|---|---|---|---|---|"
    if gpu:
        head += " peak GPU MB |"
        rule += "---|"
    lines = [head, rule]
    blank = " | | | | | |" + (" |" if gpu else "")
    for name in models:
        base = {row["round"]: row for row in runs.get((name, BASE), [])}
        base_best = max((row["samples_per_s"] for row in base.values()), default=None)
        base_mb = max((row["peak_mb"] for row in base.values()), default=None)
        label = f"{name} (batch {MODELS[name][0]})"
        for impl in impls:
            if (name, impl) not in runs:
                why = skipped.get((name, impl), "not run")
                lines.append(f"| {label} | {impl} | skipped: {why}{blank}")
                continue
            rows = runs[(name, impl)]
            best = max(row["samples_per_s"] for row in rows)
            ratio = f"{best / base_best:.2f}" if base_best else "n/a"
            same = [
                row["samples_per_s"] / base[row["round"]]["samples_per_s"]
                for row in rows
                if row["round"] in base
            ]
            spread = (
                f"{statistics.median(same):.2f} ({min(same):.2f}-{max(same):.2f})" if same else ""
            )
            peak = max(row["peak_mb"] for row in rows)
            mem = f"{peak / base_mb:.2f}" if base_mb else "n/a"
            lat = [row["latency_ms"] for row in rows if row.get("latency_ms") is not None]
            lat_s = f"{min(lat):.2f}" if lat else ""
            line = (
                f"| {label} | {impl} | {best:.1f} | {ratio} | {spread} | {peak:.0f} "
                f"| {mem} | {lat_s} |"
            )
            if gpu:
                gpu_mb = [row["peak_gpu_mb"] for row in rows if row.get("peak_gpu_mb") is not None]
                line += f" {max(gpu_mb):.0f} |" if gpu_mb else " |"
            lines.append(line)
    versus = []
    for name in models:
        k3 = [row["samples_per_s"] for row in runs.get((name, "keras3-torch"), [])]
        for impl in impls:
            if impl.startswith("polykeras-") and k3 and (name, impl) in runs:
                best = max(row["samples_per_s"] for row in runs[(name, impl)])
                versus.append(f"- {name}: {impl} is {best / max(k3):.2f}x Keras 3")
    if versus:
        lines += ["", "Against Keras 3 (best rounds):", *versus]
    return "\n".join(lines)


def _save_json(path, args, runs, skipped, done: bool) -> None:
    data = {
        "device": args.device,
        "models": args.models,
        "impls": args.impls,
        "clock": args.clock,
        "complete": done,
        "runs": [row for rows in runs.values() for row in rows],
        "skipped": [{"model": m, "impl": i, "reason": r} for (m, i), r in skipped.items()],
    }
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def table_from_json(path) -> str:
    """The table of a --json file (also of a run that was cut short)."""
    with open(path) as f:
        data = json.load(f)
    runs: dict[tuple[str, str], list[dict]] = {}
    for row in data["runs"]:
        runs.setdefault((row["model"], row["impl"]), []).append(row)
    skipped = {(s["model"], s["impl"]): s["reason"] for s in data["skipped"]}
    table = make_table(runs, skipped, data["models"], data["impls"], data["device"])
    if data.get("clock") == "cpu":
        table = "Clock: CPU time of each process (samples per CPU-second)\n\n" + table
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps per repeat (default: per model)"
    )
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="interleaved rounds (the table shows the best and the spread)",
    )
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed passes per run")
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="where the models train"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short mode: 1 round, 2 passes, 3 warm-up steps, fewer steps (mlp 200, others 20)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for every implementation (OMP/OpenBLAS/MKL); 1 on a busy shared "
        "machine, where spinning thread pools of other processes slow 2 threads down 10x",
    )
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="time the passes in wall-clock time (default) or in the process's CPU time, "
        "which waiting for a core on a busy machine does not inflate (CPU runs only)",
    )
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--impls", nargs="*", default=None)
    parser.add_argument("--out", default=None, help="also write the Markdown table here")
    parser.add_argument("--json", default=None, help="also write the rows here (as they come)")
    parser.add_argument("--child", nargs=2, metavar=("IMPL", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.impls is None:
        args.impls = GPU_IMPLS if args.device == "cuda" else IMPLS
    if args.clock == "cpu" and args.device == "cuda":
        parser.error("--clock cpu times CPU work only; GPU kernels run outside it")
    if args.child:
        row = child(
            args.child[0],
            args.child[1],
            args.steps,
            args.warmup,
            args.device,
            args.repeats,
            args.clock,
        )
        print(json.dumps(row))
        return 0
    if args.quick:
        args.rounds, args.repeats, args.warmup = 1, 2, 3

    env = dict(os.environ)
    if args.threads:  # every implementation's BLAS/OpenMP pool (see --threads)
        for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[key] = str(args.threads)
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # torch and Keras 3 would otherwise take a GPU
    runs: dict[tuple[str, str], list[dict]] = {}
    skipped: dict[tuple[str, str], str] = {}
    for name in args.models:
        impls = []
        for impl in args.impls:
            reason = available(impl, args.device)
            if reason:
                skipped[(name, impl)] = reason
            else:
                impls.append(impl)
        steps = args.steps or (QUICK_STEPS[name] if args.quick else None)
        for r in range(args.rounds):
            # interleaved rounds, each in a rotated order: a slow spell of the (shared)
            # machine then hits every implementation, not one
            shift = r % max(len(impls), 1)
            for impl in impls[shift:] + impls[:shift]:
                if (name, impl) in skipped:
                    continue
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    impl,
                    name,
                    "--warmup",
                    str(args.warmup),
                    "--device",
                    args.device,
                    "--repeats",
                    str(args.repeats),
                    "--clock",
                    args.clock,
                ] + (["--steps", str(steps)] if steps else [])
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if proc.returncode != 0:
                    err = proc.stderr.strip().splitlines() or ["(no output)"]
                    skipped[(name, impl)] = "failed: " + err[-1]
                    print(f"  {name} {impl} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
                    continue
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                row["round"] = r
                runs.setdefault((name, impl), []).append(row)
                print(
                    f"  round {r + 1}: {name:9s} {impl:18s} {row['samples_per_s']:10.1f} samples/s",
                    file=sys.stderr,
                )
                if args.json:
                    _save_json(args.json, args, runs, skipped, done=False)

    table = make_table(runs, skipped, args.models, args.impls, args.device)
    if args.clock == "cpu":
        table = "Clock: CPU time of each process (samples per CPU-second)\n\n" + table
    if args.json:
        _save_json(args.json, args, runs, skipped, done=True)
    cs = cold_start()
    table += (
        "\n\n"
        f"`import polykeras`: {cs['import_s']:.3f} s; first MLP prediction on NumPy "
        f"from a cold start: {cs['first_predict_s']:.3f} s"
    )
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
