"""Python dispatch in a training step: backend calls per step, and what each costs.

    python benchmarks/dispatch.py                 # numpy and torch, the guide's MLP, RMSprop
    python benchmarks/dispatch.py --backends torch --steps 300
    python benchmarks/dispatch.py --model multi_io --optimizer adam
    python benchmarks/dispatch.py --fit            # also fit's one-time data checks

For a guide model (``--model``: the MLP 784-64-64-10 at batch 128, the multi-input model
at 32, the shared-vision model at 64, as ``benchmarks/bench.py`` builds them) with
``--optimizer`` (RMSprop as in the guide, or Adam) on each backend it prints:

- the backend methods one training step calls, by name (the core's ops and the
  optimizer both end in them; on torch the backward pass is autograd's, in C++, and is
  counted by the profiler's aten ops instead),
- the Python function calls of one step (``cProfile``'s count: our functions, the
  backend's and the builtins they call), the structural measure of Python work,
- the time per step, wall and CPU (best of several runs of ``--steps`` steps,
  ``train_on_batch``-like: the trainer's ``_train_batch`` on prepared batches, no
  callbacks; ``--threads`` BLAS/OpenMP threads, one by default),
- the cost of one tiny op through ``polykeras.ops`` against the backend's method called
  directly (1-element arrays), so the Python overhead per op can be multiplied out,
- with ``--fit``: what one ``fit`` call costs before its first step (``_prepare_data``:
  the data checks over all the samples) for the data of one ``bench.py`` pass
  (``--fit-steps`` batches), and that cost spread over those steps.

It prints numbers; it is never a timed test (``tests/test_dispatch.py`` checks the call
counts, which do not depend on the machine's load).  Keep runs short on a shared machine.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import sys
import time
import types

import numpy as np

BATCH = {"mlp": 128, "multi_io": 32, "siamese": 64}


def make_optimizer(polykeras, optimizer: str, learning_rate: float = 1e-3):
    if optimizer == "rmsprop":
        return polykeras.optimizers.RMSprop(learning_rate=learning_rate)
    if optimizer == "adam":
        return polykeras.optimizers.Adam(learning_rate=learning_rate)
    raise ValueError(f"optimizer must be 'rmsprop' or 'adam', got {optimizer!r}")


def mlp(polykeras, optimizer: str = "rmsprop"):
    """The guide's MLP: 784-64-64-10, softmax, categorical crossentropy."""
    L = polykeras.layers
    inp = L.Input((784,))
    x = L.Dense(64, activation="relu")(inp)
    x = L.Dense(64, activation="relu")(x)
    model = polykeras.Model(inp, L.Dense(10, activation="softmax")(x))
    model.compile(make_optimizer(polykeras, optimizer), "categorical_crossentropy")
    return model


def guide_model(polykeras, name: str, optimizer: str = "rmsprop"):
    """``name`` as bench.py builds it, with ``optimizer`` in place of its RMSprop."""
    if name == "mlp":
        return mlp(polykeras, optimizer)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench

    shim = types.SimpleNamespace(
        layers=polykeras.layers,
        Model=polykeras.Model,
        optimizers=types.SimpleNamespace(
            RMSprop=lambda learning_rate: make_optimizer(polykeras, optimizer, learning_rate)
        ),
    )
    return bench.keras_model(shim, name)


def guide_data(name: str, n: int, seed: int = 0):
    """``n`` samples of ``name``'s data (bench.py's generator for the other models)."""
    if name == "mlp":
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 784)).astype("float32")
        return [x], [np.eye(10, dtype="float32")[rng.integers(0, 10, n)]]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench

    return bench.make_data(name, n, seed)


class Counting:
    """Counts the backend's method calls (by name) while open: each method is shadowed by a
    counting wrapper on the instance, so the backend stays the same object."""

    def __init__(self, backend):
        self.backend = backend
        self.calls: collections.Counter = collections.Counter()

    def __enter__(self):
        B, calls = self.backend, self.calls
        self.names = [
            n for n in dir(type(B)) if not n.startswith("_") and callable(getattr(B, n, None))
        ]
        for name in self.names:
            method = getattr(B, name)

            def counted(*args, _name=name, _method=method, **kwargs):
                calls[_name] += 1
                return _method(*args, **kwargs)

            setattr(B, name, counted)
        return self

    def __exit__(self, *exc):
        for name in self.names:
            delattr(self.backend, name)
        return False


def prepared_step(polykeras, model_name: str = "mlp", optimizer: str = "rmsprop", seed: int = 0):
    """``(model, step)``: ``step()`` runs one training step of the model on one prepared
    batch (after one ``train_on_batch``, which builds the optimizer's state)."""
    from polykeras import backend as K

    B = K.current()
    model = guide_model(polykeras, model_name, optimizer)
    xs, ys = guide_data(model_name, BATCH[model_name], seed)
    model.train_on_batch(xs if len(xs) > 1 else xs[0], ys if len(ys) > 1 else ys[0])
    c = model._compiled
    bxs, bys, bsws = [B.asarray(x) for x in xs], [B.asarray(y) for y in ys], [None] * len(ys)

    def step():
        return model._train_batch(c, bxs, bys, bsws)

    return model, step


def backend_calls(B, step) -> collections.Counter:
    """The backend methods one ``step()`` calls, by name."""
    with Counting(B) as counting:
        step()
    return counting.calls


def python_calls(step, n: int = 20) -> float:
    """Python function calls per ``step()`` (cProfile's count, builtins included)."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(n):
        step()
    profile.disable()
    return pstats.Stats(profile).total_calls / n  # type: ignore[attr-defined]


def measure(backend: str, steps: int, rounds: int, model_name: str, optimizer: str) -> dict:
    import polykeras
    from polykeras import backend as K
    from polykeras import ops

    polykeras.set_backend(backend)
    B = K.current()
    model, step = prepared_step(polykeras, model_name, optimizer)
    for _ in range(20 if model_name == "mlp" else 3):
        step()
    best = best_cpu = float("inf")
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t0) / steps)
        best_cpu = min(best_cpu, (time.process_time() - c0) / steps)

    counted = backend_calls(B, step)
    py_calls = python_calls(step, 20 if model_name == "mlp" else 3)
    aten = None
    if backend.startswith("torch"):
        import torch

        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step()
        aten = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))

    # one tiny op through polykeras.ops against the backend's own method
    a = B.asarray(np.ones((1,), "float32"))
    n = 20000

    def per_call(fn):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(a, a)
        return (time.perf_counter() - t0) / n * 1e6

    direct = min(per_call(B.add) for _ in range(3))
    through_ops = min(per_call(ops.add) for _ in range(3))
    return {
        "backend": backend,
        "ms_per_step": best * 1e3,
        "cpu_ms_per_step": best_cpu * 1e3,
        "backend_calls": sum(counted.values()),
        "by_name": dict(counted.most_common()),
        "python_calls": py_calls,
        "aten_ops": aten,
        "us_backend_add": direct,
        "us_ops_add": through_ops,
    }


def measure_fit_checks(backend: str, model_name: str, fit_steps: int, rounds: int = 3) -> dict:
    """What one fit call spends before its first step on ``fit_steps`` batches of data."""
    import polykeras

    polykeras.set_backend(backend)
    model = guide_model(polykeras, model_name)
    xs, ys = guide_data(model_name, BATCH[model_name] * fit_steps)
    x = xs if len(xs) > 1 else xs[0]
    y = ys if len(ys) > 1 else ys[0]
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        model._prepare_data(x, y, None)
        best = min(best, time.perf_counter() - t0)
    mb = sum(a.nbytes for a in [*xs, *ys]) / 2**20
    return {"s_per_fit": best, "ms_per_step": best / fit_steps * 1e3, "mb": mb}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*", default=["numpy", "torch"])
    parser.add_argument("--model", choices=sorted(BATCH), default="mlp")
    parser.add_argument("--optimizer", choices=["rmsprop", "adam"], default="rmsprop")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads")
    parser.add_argument("--fit", action="store_true", help="also fit's one-time data checks")
    parser.add_argument("--fit-steps", type=int, default=1000, help="batches of data per fit")
    args = parser.parse_args(argv)
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    steps = args.steps if args.model == "mlp" else max(1, args.steps // 20)
    for backend in args.backends:
        if backend.startswith("torch") and args.threads:
            import torch

            torch.set_num_threads(args.threads)
        r = measure(backend, steps, args.rounds, args.model, args.optimizer)
        print(f"## {backend}: {args.model}, batch {BATCH[args.model]}, {args.optimizer}")
        print(
            f"- {r['ms_per_step']:.3f} ms per training step, {r['cpu_ms_per_step']:.3f} ms CPU "
            f"(best of {args.rounds} x {steps} steps, {args.threads or 'default'} thread(s))"
        )
        print(f"- {r['backend_calls']} backend calls per step: {r['by_name']}")
        print(f"- {r['python_calls']:.0f} Python function calls per step (cProfile)")
        if r["aten_ops"] is not None:
            print(f"- {r['aten_ops']} aten ops per step (forward, backward, update)")
        print(
            f"- one tiny add: {r['us_ops_add']:.2f} us through polykeras.ops, "
            f"{r['us_backend_add']:.2f} us as the backend's method "
            f"(ops' dispatch: {r['us_ops_add'] - r['us_backend_add']:.2f} us per op)"
        )
        if args.fit:
            f = measure_fit_checks(backend, args.model, args.fit_steps)
            print(
                f"- fit's data checks: {f['s_per_fit']:.3f} s per fit call on "
                f"{args.fit_steps} batches ({f['mb']:.0f} MB), {f['ms_per_step']:.3f} ms per step"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
