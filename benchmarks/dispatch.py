"""Python dispatch in a training step: backend calls per step, and what each costs.

    python benchmarks/dispatch.py                 # numpy and torch, the guide's MLP
    python benchmarks/dispatch.py --backends torch --steps 300

For the guide's MLP (784-64-64-10, batch 128, RMSprop, categorical crossentropy) on each
backend it prints:

- the backend methods one training step calls, by name (the core's ops and the
  optimizer both end in them; on torch the backward pass is autograd's, in C++, and is
  counted by the profiler's aten ops instead),
- the time per step (best of several runs of ``--steps`` steps, ``train_on_batch``-like:
  the trainer's ``_train_batch`` on prepared batches, no callbacks),
- the cost of one tiny op through ``polykeras.ops`` against the backend's method called
  directly (1-element arrays), so the Python overhead per op can be multiplied out.

It prints numbers; it is never a timed test.  Keep runs short on a shared machine.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np


def mlp(polykeras):
    L = polykeras.layers
    inp = L.Input((784,))
    x = L.Dense(64, activation="relu")(inp)
    x = L.Dense(64, activation="relu")(x)
    model = polykeras.Model(inp, L.Dense(10, activation="softmax")(x))
    model.compile(polykeras.optimizers.RMSprop(learning_rate=1e-3), "categorical_crossentropy")
    return model


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


def measure(backend: str, steps: int, rounds: int) -> dict:
    import polykeras
    from polykeras import backend as K
    from polykeras import ops

    polykeras.set_backend(backend)
    B = K.current()
    rng = np.random.default_rng(0)
    model = mlp(polykeras)
    x = rng.normal(size=(128, 784)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 128)]
    model.train_on_batch(x, y)
    c = model._compiled
    xs, ys, sws = [B.asarray(x)], [B.asarray(y)], [None]
    for _ in range(20):
        model._train_batch(c, xs, ys, sws)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps):
            model._train_batch(c, xs, ys, sws)
        best = min(best, (time.perf_counter() - t0) / steps)

    # calls per step, through a counting stand-in for the backend
    with Counting(B) as counting:
        model._train_batch(c, xs, ys, sws)
    aten = None
    if backend.startswith("torch"):
        import torch

        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            model._train_batch(c, xs, ys, sws)
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
        "backend_calls": sum(counting.calls.values()),
        "by_name": dict(counting.calls.most_common()),
        "aten_ops": aten,
        "us_backend_add": direct,
        "us_ops_add": through_ops,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*", default=["numpy", "torch"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    for backend in args.backends:
        r = measure(backend, args.steps, args.rounds)
        print(f"## {backend}: MLP 784-64-64-10, batch 128, RMSprop")
        print(f"- {r['ms_per_step']:.3f} ms per training step (best of {args.rounds})")
        print(f"- {r['backend_calls']} backend calls per step: {r['by_name']}")
        if r["aten_ops"] is not None:
            print(f"- {r['aten_ops']} aten ops per step (forward, backward, update)")
        print(
            f"- one tiny add: {r['us_ops_add']:.2f} us through polykeras.ops, "
            f"{r['us_backend_add']:.2f} us as the backend's method "
            f"(ops' dispatch: {r['us_ops_add'] - r['us_backend_add']:.2f} us per op)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
