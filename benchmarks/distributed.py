"""Data-parallel scaling of the guide models: samples/s on 1 and 2 processes (Gloo, CPU),
the share of a step spent in the all-reduce, and an estimate for 8 and 64 GPUs.

    python benchmarks/distributed.py                      # torch backend, every model
    python benchmarks/distributed.py --backend numpy --models mlp --steps 100
    python benchmarks/distributed.py --models mlp --data sequence   # batches from Python
    DP_BENCH_BUCKET_MB=0.05 python benchmarks/distributed.py --models mlp  # 50 kB buckets
    DP_BENCH_METRICS=1 python benchmarks/distributed.py --models mlp  # compile(metrics=[AUC()])

Each run launches its processes with the environment variables torchrun sets (as
tests/test_distributed.py does) and times ``fit`` over a fixed number of global batches
after a warm-up fit.  This prints numbers; it is never a timed test.  On a machine with
fewer cores than processes x threads the processes compete for the CPU: the figures then
show the cost of the communication, not the speed-up a machine with free cores gives.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = {"mlp": 128, "multi_io": 32, "siamese": 64}

# All-reduce estimate (each GPU sends and receives 2 (n-1)/n of the gradient bytes, as in
# a ring): bus bandwidth per GPU in bytes/s and a per-step latency, typical of
# NCCL on H100 nodes (NVLink inside a node; 400 Gb/s InfiniBand per GPU between nodes).
LINKS = {
    "8 GPUs, one node (NVLink)": (8, 350e9, 30e-6),
    "64 GPUs, 8 nodes (IB 400 Gb/s per GPU)": (64, 40e9, 80e-6),
}


def _sequence(keras, xs: list, ys: list, batch: int):
    """The arrays as a Sequence of global batches (every rank reads every batch)."""

    class Batches(keras.utils.Sequence):
        def __len__(self):
            return -(-len(xs[0]) // batch)

        def __getitem__(self, i):
            rows = slice(i * batch, (i + 1) * batch)
            return [x[rows] for x in xs], [y[rows] for y in ys]

    return Batches()


def _rank_main(model_name: str, steps: int, warmup: int, out: str, data: str = "arrays") -> None:
    sys.path.insert(0, HERE)
    import bench
    import polykeras as keras
    from polykeras import distribute

    # the time fit spends blocked in collectives: starting them, and waiting for those it
    # started during the backward pass (gradient buckets) or needs now (the census, the
    # last bucket); an all-reduce running while the backward pass goes on costs nothing here
    spent = [0.0]
    original = distribute.DataParallel._collective

    def timed(self, fn, *args):
        t0 = time.perf_counter()
        try:
            return original(self, fn, *args)
        finally:
            spent[0] += time.perf_counter() - t0

    distribute.DataParallel._collective = timed  # type: ignore[method-assign]
    if os.environ.get("DP_BENCH_BUCKET_MB") and distribute.launched_by_torchrun():
        mb = float(os.environ["DP_BENCH_BUCKET_MB"])
        distribute.set_distribution(distribute.DataParallel(bucket_mb=mb))
    census_spent = [0.0, 0]  # batches from Python: the per-step census all-reduce
    census = distribute.DataParallel.census

    def timed_census(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return census(self, *args, **kwargs)
        finally:
            census_spent[0] += time.perf_counter() - t0
            census_spent[1] += 1

    distribute.DataParallel.census = timed_census  # type: ignore[method-assign]
    batch = BATCH[model_name]
    xs, ys = bench.make_data(model_name, batch * (steps + warmup), seed=0)
    keras.utils.set_random_seed(0)
    model = bench.keras_model(keras, model_name)
    if os.environ.get("DP_BENCH_METRICS"):  # metric objects: their state rides in the last bucket
        auc = keras.metrics.AUC()  # 4 x 200 numbers of state
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=[auc, "accuracy"])
    n_warm = batch * warmup

    def fit(part: slice) -> None:
        x, y = [a[part] for a in xs], [a[part] for a in ys]
        if data == "sequence":
            model.fit(_sequence(keras, x, y, batch), shuffle=False, workers=0, verbose=0)
        else:
            model.fit(x, y, batch_size=batch, verbose=0)

    fit(slice(0, n_warm))
    spent[0] = census_spent[0] = 0.0
    census_spent[1] = 0
    t0 = time.perf_counter()
    fit(slice(n_warm, None))
    elapsed = time.perf_counter() - t0
    dp = distribute.distribution()
    result = {
        "rank": dp.rank if dp else 0,
        "world": dp.world_size if dp else 1,
        "seconds": elapsed,
        "allreduce_seconds": spent[0],
        "census_seconds": census_spent[0],
        "census_calls": census_spent[1],
        "samples_per_s": batch * steps / elapsed,
        "params": int(model.count_params()),
    }
    with open(os.path.join(out, f"rank{result['rank']}.json"), "w") as f:
        json.dump(result, f)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(
    model: str, world: int, backend: str, steps: int, warmup: int, tmp: str, data: str = "arrays"
) -> dict:
    port = str(_free_port())
    procs = []
    for rank in range(world):
        env = dict(os.environ, POLYKERAS_BACKEND=backend)
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // world))
        if world > 1:
            env.update(
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE=str(world),
            )
        else:
            env["POLYKERAS_DISTRIBUTE"] = "off"
        cmd = [sys.executable, __file__, "--rank-main", model, str(steps), str(warmup), tmp, data]
        procs.append(subprocess.Popen(cmd, env=env))
    for p in procs:
        if p.wait(timeout=900) != 0:
            raise SystemExit(f"{model} on {world} process(es) failed")
    with open(os.path.join(tmp, "rank0.json")) as f:
        return json.load(f)


def estimate(params: int, step_s: float) -> list[str]:
    """Per step: the ring all-reduce time of the float32 gradients on the LINKS above,
    against the compute time of one process's step (measured here, on a CPU)."""
    rows = []
    for label, (n, bandwidth, latency) in LINKS.items():
        volume = 2 * (n - 1) / n * params * 4
        # NCCL's tree algorithm keeps the latency term logarithmic in the GPU count
        t = volume / bandwidth + 2 * math.ceil(math.log2(n)) * latency
        rows.append(
            f"{label}: {volume / 1e6:.2f} MB per GPU per step, all-reduce ~{t * 1e3:.3f} ms"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--models", default="mlp,multi_io,siamese")
    parser.add_argument("--steps", type=int, default=0, help="timed global batches")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--data",
        choices=("arrays", "sequence"),
        default="arrays",
        help="fit on arrays, or on a Sequence of the same global batches",
    )
    args = parser.parse_args(argv)
    import tempfile

    default_steps = {"mlp": 200, "multi_io": 20, "siamese": 20}
    print("| model | processes | samples/s | x 1 process | blocked in collectives | params |")
    print("|---|---|---|---|---|---|")
    notes = []
    for model in args.models.split(","):
        steps = args.steps or default_steps[model]
        one = None
        for world in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                r = run(model, world, args.backend, steps, args.warmup, tmp, args.data)
            one = one or r
            share = r["allreduce_seconds"] / r["seconds"]
            if r["census_calls"]:
                notes.append(
                    f"- {model}, {world} processes: {r['census_calls']} census all-reduces, "
                    f"{r['census_seconds'] / r['census_calls'] * 1e6:.0f} us each, "
                    f"{r['census_seconds'] / r['seconds']:.1%} of fit"
                )
            print(
                f"| {model} (global batch {BATCH[model]}) | {world} | {r['samples_per_s']:.1f} | "
                f"{r['samples_per_s'] / one['samples_per_s']:.2f} | {share:.0%} | {r['params']} |"
            )
        assert one is not None
        notes.append(
            f"- {model} ({one['params']} parameters): "
            + "; ".join(estimate(one["params"], one["seconds"] / steps))
        )
    print()
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--rank-main":
        _rank_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], *sys.argv[6:7])
    else:
        raise SystemExit(main())
