"""Training and backend selection from several threads at once (issue: silent wrong results).

Each test shortens the interpreter's switch interval so that threads change places between
almost every bytecode, which makes a shared-state race show up in nearly every run."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import polykeras
from polykeras.layers import LSTM, Dense, Input
from polykeras.models import Model

from helpers import torch_unusable_reason

BACKENDS = ["numpy", "torch"]


@pytest.fixture(autouse=True)
def _tiny_switch_interval():
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(saved)


def _usable(name):
    if name == "torch":
        reason = torch_unusable_reason()
        if reason:
            pytest.skip(reason)


def _lstm_model(seed, units):
    polykeras.utils.set_random_seed(seed)
    inp = Input(shape=(5, 3))
    model = Model(inp, Dense(2)(LSTM(units)(inp)))
    model.compile(optimizer="rmsprop", loss="mse")
    return model


def _data(seed):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(32, 5, 3)).astype("float32"),
        rng.normal(size=(32, 2)).astype("float32"),
    )


def _run_together(jobs):
    errors = []

    def wrap(job):
        try:
            job()
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_threads_fitting_two_models_match_solo_runs(backend):
    _usable(backend)
    with polykeras.use_backend(backend):
        specs = [(1, 8), (2, 4)]  # different sizes: a mixed-up weight fails loudly too
        data = [_data(seed) for seed, _ in specs]
        solo = []
        for (seed, units), (x, y) in zip(specs, data):
            model = _lstm_model(seed, units)
            model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
            solo.append(model.get_weights())

    def fit(model, x, y):
        def job():
            with polykeras.use_backend(backend):
                model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)

        return job

    for _trial in range(3):
        with polykeras.use_backend(backend):  # initial weights drawn here, in one thread
            models = [_lstm_model(seed, units) for seed, units in specs]
        _run_together([fit(m, x, y) for m, (x, y) in zip(models, data)])
        for model, expected in zip(models, solo):
            for got, want in zip(model.get_weights(), expected):
                np.testing.assert_array_equal(got, want)


def test_use_backend_in_one_thread_does_not_change_another():
    _usable("torch")
    seen = {"numpy": set(), "torch": set()}
    barrier = threading.Barrier(2)

    def worker(name):
        def job():
            with polykeras.use_backend(name):
                barrier.wait(30)  # both blocks are open at once
                for _ in range(200):
                    seen[name].add(polykeras.backend.backend())
                    x = polykeras.backend.current().asarray(np.ones((2, 2), "float32"))
                    seen[name].add(type(x).__module__.split(".")[0])

        return job

    _run_together([worker("numpy"), worker("torch")])
    assert seen["numpy"] == {"numpy"}
    assert seen["torch"] == {"torch"}


def test_set_backend_is_one_choice_for_the_process():
    _usable("torch")
    got = []
    try:
        polykeras.set_backend("torch")
        t = threading.Thread(target=lambda: got.append(polykeras.backend.backend()))
        t.start()
        t.join(30)
    finally:
        polykeras.backend.reset_backend()
    assert got == ["torch"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_while_the_same_model_fits_sees_whole_steps(backend):
    """predict in one thread while fit runs in another: every prediction is the model's
    output for the weights between two training steps (a consistent snapshot)."""
    _usable(backend)
    from polykeras.callbacks import LambdaCallback
    from polykeras.layers import Embedding, GlobalAveragePooling1D

    with polykeras.use_backend(backend):
        polykeras.utils.set_random_seed(3)
        words = Input(shape=(6,))  # a float input feeding an Embedding: row-sparse updates
        seq = Input(shape=(5, 3))
        pooled = GlobalAveragePooling1D()(Embedding(20, 4)(words))
        merged = polykeras.layers.concatenate([pooled, LSTM(4)(seq)])
        model = Model([words, seq], Dense(2)(merged))
        model.compile(optimizer="rmsprop", loss="mse")
    rng = np.random.default_rng(0)
    w = rng.integers(0, 20, size=(32, 6)).astype("float32")
    s = rng.normal(size=(32, 5, 3)).astype("float32")
    y = rng.normal(size=(32, 2)).astype("float32")
    probe = [w[:3], s[:3]]
    snapshots = [model.get_weights()]
    seen = []
    done = threading.Event()
    record = LambdaCallback(on_batch_end=lambda b, logs: snapshots.append(model.get_weights()))

    def fit():
        try:
            with polykeras.use_backend(backend):
                model.fit([w, s], y, batch_size=4, epochs=2, verbose=0, callbacks=[record])
        finally:
            done.set()

    def predict():
        with polykeras.use_backend(backend):
            while not done.is_set():
                seen.append(model.predict(probe, verbose=0))

    _run_together([fit, predict])
    assert len(seen) > 3
    with polykeras.use_backend(backend):
        expected = []
        for weights in snapshots:
            model.set_weights(weights)
            expected.append(model.predict(probe, verbose=0))
    for got in seen:
        best = min(float(np.max(np.abs(got - e))) for e in expected)
        assert best == 0.0, f"a half-updated model was read (nearest snapshot differs by {best})"
