"""Host round trips per training step of polykeras on a torch device, by the profiler.

    python benchmarks/host_syncs.py                      # torch:cuda, every guide model
    python benchmarks/host_syncs.py --backend torch:cpu --models mlp

Trains each benchmark model (benchmarks/bench.py) for a few steps under torch.profiler and
counts, per step: scalar reads to the host (``aten::_local_scalar_dense``: ``.item()``,
``.tolist()``, ``float(t)``), device-to-host copies (``Memcpy DtoH``), and stream or device
synchronizations.  Each of these stops the host until the GPU catches up.  One scalar read a
step is the loss, which ``fit`` reads as Keras does; more is a round trip to remove.  Prints
one JSON object (model -> counts per step); benchmarks/gpu_check.py runs it on the GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402

WATCH = {
    "aten::_local_scalar_dense": "scalar_reads",
    "cudaStreamSynchronize": "stream_syncs",
    "cudaDeviceSynchronize": "device_syncs",
}


def count(backend: str, name: str, steps: int) -> dict[str, float]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    import polykeras

    polykeras.set_backend(backend)
    polykeras.utils.set_random_seed(0)
    batch = bench.MODELS[name][0]
    model = bench.keras_model(polykeras, name)
    xs, ys = bench.make_data(name, batch * (steps + 2))
    warm = slice(0, 2 * batch)
    model.fit([x[warm] for x in xs], [y[warm] for y in ys], batch_size=batch, verbose=0)
    rest = slice(2 * batch, None)
    activities = [ProfilerActivity.CPU]
    if backend.startswith("torch:cuda") or (backend == "torch" and torch.cuda.is_available()):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        model.fit(
            [x[rest] for x in xs], [y[rest] for y in ys], batch_size=batch, verbose=0, shuffle=False
        )
    found = dict.fromkeys([*WATCH.values(), "dtoh_copies"], 0)
    for event in prof.events():
        if event.name in WATCH:
            found[WATCH[event.name]] += 1
        elif event.name.startswith("Memcpy DtoH"):
            found["dtoh_copies"] += 1
    return {key: n / steps for key, n in found.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="torch:cuda")
    parser.add_argument("--models", nargs="*", default=list(bench.MODELS))
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    result = {name: count(args.backend, name, args.steps) for name in args.models}
    print(json.dumps({"backend": args.backend, "per_step": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
