"""Prefetching: fit on slow Python batch sources (5 ms of sleep per batch) with
workers=0 (batches made in the training thread), 1 and 2.

    python benchmarks/prefetch.py                      # numpy backend, 3 rounds
    python benchmarks/prefetch.py --backend torch --steps 200 --rounds 5

Two sources make the same batches: a ``keras.utils.Sequence`` (batches by index, so
several workers prepare different batches at once) and a plain generator (advanced by one
thread at a time whatever ``workers`` says, as in Keras 2, so a second worker cannot
help it; its one prefetching thread still overlaps making batches with training).
The runs of a round are interleaved and the best round is kept. This prints numbers; it
is never a timed test.

A third source, ``CpuSequence``, spends about 5 ms per batch in pure Python (it holds the
GIL, as decoding in Python does), with ``workers=1`` and ``2`` in threads and with
``use_multiprocessing=True`` (a process pool per epoch): threads cannot run it in
parallel, processes can, where the machine has a core free for each.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import polykeras as keras
from polykeras import layers as L

SLEEP = 0.005
BATCH = 32


def make_data(steps: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * BATCH, 64)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, steps * BATCH)]
    return x, y


class SlowSequence(keras.utils.Sequence):
    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x) // BATCH

    def __getitem__(self, i: int):
        time.sleep(SLEEP)  # reading and decoding a batch
        part = slice(i * BATCH, (i + 1) * BATCH)
        return self.x[part], self.y[part]


def spin(n: int) -> int:
    """Pure-Python work that holds the GIL."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def spins_for(seconds: float) -> int:
    """How many ``spin`` iterations take ``seconds`` here (the best of a few tries)."""
    n = 20_000
    best = min(_timed(spin, n) for _ in range(5))
    return max(1, int(n * seconds / best))


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


class CpuSequence(keras.utils.Sequence):
    def __init__(self, x: np.ndarray, y: np.ndarray, spins: int):
        self.x, self.y, self.spins = x, y, spins

    def __len__(self) -> int:
        return len(self.x) // BATCH

    def __getitem__(self, i: int):
        spin(self.spins)  # decoding a batch in Python
        part = slice(i * BATCH, (i + 1) * BATCH)
        return self.x[part], self.y[part]


def slow_generator(x: np.ndarray, y: np.ndarray):
    for start in range(0, len(x), BATCH):
        time.sleep(SLEEP)
        yield x[start : start + BATCH], y[start : start + BATCH]


def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inp = keras.Input((64,))
    h = L.Dense(128, activation="relu")(inp)
    out = L.Dense(10, activation="softmax")(h)
    m = keras.Model(inp, out)
    m.compile("rmsprop", "categorical_crossentropy")
    return m


def run(kind: str, workers: int, x: np.ndarray, y: np.ndarray, spins: int = 0) -> float:
    m = model()
    m.fit(x[:BATCH], y[:BATCH], verbose=0)  # warm-up: first-call costs out of the timing
    processes = kind == "cpu-processes"
    if kind.startswith("cpu"):
        source = CpuSequence(x, y, spins)
    else:
        source = SlowSequence(x, y) if kind == "sequence" else slow_generator(x, y)
    start = time.perf_counter()
    m.fit(source, workers=workers, use_multiprocessing=processes, shuffle=False, verbose=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only-cpu", action="store_true", help="only the CPU-bound Sequence (threads, processes)"
    )
    args = parser.parse_args()
    x, y = make_data(args.steps)
    keras.set_backend(args.backend)
    # the training step alone, for reference
    m = model()
    m.fit(x[:BATCH], y[:BATCH], verbose=0)
    start = time.perf_counter()
    m.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
    step_ms = (time.perf_counter() - start) / args.steps * 1e3
    print(
        f"backend {args.backend}: {args.steps} batches of {BATCH}; training step alone "
        f"{step_ms:.2f} ms; making a batch sleeps {SLEEP * 1e3:.0f} ms"
    )
    spins = spins_for(SLEEP)
    kinds = () if args.only_cpu else ("sequence", "generator")
    best: dict[tuple[str, int], float] = {}
    for _ in range(args.rounds):
        for kind in kinds:
            for workers in (0, 1, 2):
                t = run(kind, workers, x, y)
                key = (kind, workers)
                best[key] = min(best.get(key, float("inf")), t)
        for kind in ("cpu-threads", "cpu-processes"):
            for workers in (1, 2):
                t = run(kind, workers, x, y, spins)
                key = (kind, workers)
                best[key] = min(best.get(key, float("inf")), t)
    for kind in kinds:
        w0, w1, w2 = (best[(kind, w)] for w in (0, 1, 2))
        print(
            f"{kind:9s}  workers=0 {w0 / args.steps * 1e3:6.2f} ms/step   "
            f"workers=1 {w1 / args.steps * 1e3:6.2f} ms/step   "
            f"workers=2 {w2 / args.steps * 1e3:6.2f} ms/step   "
            f"workers=1 / workers=2 = {w1 / w2:.2f}   workers=0 / workers=1 = {w0 / w1:.2f}"
        )
    print(f"CPU-bound Sequence: {spins} Python iterations per batch (about 5 ms here)")
    for kind in ("cpu-threads", "cpu-processes"):
        w1, w2 = (best[(kind, w)] for w in (1, 2))
        print(
            f"{kind:13s}  workers=1 {w1 / args.steps * 1e3:6.2f} ms/step   "
            f"workers=2 {w2 / args.steps * 1e3:6.2f} ms/step   "
            f"workers=1 / workers=2 = {w1 / w2:.2f}"
        )
    threads, processes = best[("cpu-threads", 2)], best[("cpu-processes", 2)]
    print(f"workers=2: threads / processes = {threads / processes:.2f}")


if __name__ == "__main__":
    main()
