"""Batches from Python (generators, Sequence, DataLoader-like iterables, the prefetch pool)
give the same results as the equivalent arrays; Keras 2's generator methods and
predict_classes / return_dict / validation_freq."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import polykeras as keras
from polykeras import layers as L
from polykeras.callbacks import Callback
from polykeras.training.batches import BatchError
from polykeras.training.data import DataError
from helpers import backend_params, torch_unusable_reason

RNG = np.random.default_rng(3)
X = RNG.normal(size=(40, 4)).astype("float32")
Y = RNG.normal(size=(40, 2)).astype("float32")
SW = RNG.uniform(0.5, 2.0, size=40).astype("float32")
BACKENDS = backend_params()


@pytest.fixture(params=BACKENDS)
def backend(request):
    with keras.use_backend(request.param):
        yield request.param


def _model():
    keras.utils.set_random_seed(1)
    inp = keras.Input((4,))
    model = keras.Model(inp, L.Dense(2)(inp))
    model.compile("sgd", "mse", metrics=["mae"])
    return model


def _batches(size=8, weights=False):
    for s in range(0, len(X), size):
        part = (X[s : s + size], Y[s : s + size])
        yield part + (SW[s : s + size],) if weights else part


class Batches(keras.utils.Sequence):
    def __init__(self, size=8):
        self.size = size
        self.epoch_ends = 0
        self.fetched: list[int] = []

    def __len__(self):
        return -(-len(X) // self.size)

    def __getitem__(self, i):
        self.fetched.append(i)
        return X[i * self.size : (i + 1) * self.size], Y[i * self.size : (i + 1) * self.size]

    def on_epoch_end(self):
        self.epoch_ends += 1


class Loader:
    """What a torch DataLoader looks like to polykeras: an iterable with __len__ whose
    batches are lists of array-likes, starting over every epoch."""

    def __init__(self, size=8):
        self.size = size

    def __len__(self):
        return -(-len(X) // self.size)

    def __iter__(self):
        for x, y in _batches(self.size):
            yield [_ArrayLike(x), _ArrayLike(y)]


class _ArrayLike:
    """A tensor-like object that only converts through __array__ (as a CPU tensor does)."""

    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)

    def __len__(self):
        return len(self._a)


def _forever():
    while True:
        yield from _batches()


@pytest.mark.parametrize(
    "make, kwargs",
    [
        (lambda: _forever(), {"steps_per_epoch": 5}),
        (lambda: Batches(), {"shuffle": False}),
        (lambda: Batches(), {"shuffle": False, "workers": 3}),
        (lambda: Batches(), {"shuffle": False, "workers": 0}),
        (lambda: Loader(), {}),
    ],
    ids=["generator", "sequence", "sequence-3-workers", "sequence-no-workers", "loader"],
)
def test_fit_evaluate_predict_on_batches_equal_arrays(backend, make, kwargs):
    ref = _model()
    expected = ref.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    model = _model()
    got = model.fit(make(), epochs=2, verbose=0, **kwargs).history
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5)
    steps = {"steps": 5} if "steps_per_epoch" in kwargs else {}
    np.testing.assert_allclose(
        model.evaluate(make(), verbose=0, **steps),
        ref.evaluate(X, Y, batch_size=8, verbose=0),
        rtol=1e-5,
    )
    np.testing.assert_allclose(model.predict(make(), **steps), ref.predict(X), rtol=1e-5, atol=1e-6)


def test_sample_weights_from_the_generator_equal_array_weights(backend):
    ref = _model()
    expected = ref.fit(X, Y, sample_weight=SW, batch_size=8, shuffle=False, verbose=0)
    got = _model().fit(_batches(weights=True), verbose=0)
    np.testing.assert_allclose(got.history["loss"], expected.history["loss"], rtol=1e-5)


def test_sequence_on_epoch_end_and_shuffled_batch_order():
    seq = Batches()
    keras.utils.set_random_seed(0)
    _model().fit(seq, epochs=3, verbose=0, workers=0)  # shuffle=True: batch order permuted
    assert seq.epoch_ends == 3
    epochs = [seq.fetched[i * 5 : (i + 1) * 5] for i in range(3)]
    assert all(sorted(e) == [0, 1, 2, 3, 4] for e in epochs)
    assert any(e != [0, 1, 2, 3, 4] for e in epochs)


def test_steps_per_epoch_limits_a_sequence_and_validation_steps_a_generator():
    seq = Batches()
    model = _model()
    history = model.fit(
        seq,
        steps_per_epoch=2,
        shuffle=False,
        workers=0,
        validation_data=_forever(),
        validation_steps=5,
        verbose=0,
    )
    assert seq.fetched == [0, 1]
    ref = _model()
    ref.fit(X[:16], Y[:16], batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(
        history.history["val_loss"], [ref.evaluate(X, Y, batch_size=8, verbose=0)[0]], rtol=1e-5
    )


def test_a_generator_that_runs_out_stops_training_with_a_warning():
    with pytest.warns(RuntimeWarning, match="ran out of data"):
        history = _model().fit(_batches(), epochs=3, verbose=0)
    assert len(history.history["loss"]) == 1


def test_validation_from_a_one_pass_generator_needs_validation_steps():
    with pytest.raises(DataError, match="validation_steps"):
        _model().fit(X, Y, epochs=2, validation_data=_batches(), verbose=0)


def test_prefetch_pool_prepares_later_batches_while_the_first_trains():
    ready = threading.Event()

    class Watched(Batches):
        def __getitem__(self, i):
            if i == 3:
                ready.set()
            return super().__getitem__(i)

    seen = {}

    class Check(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:  # batch 0 has not trained yet; batch 3 comes from the pool
                seen["ahead"] = ready.wait(timeout=10)

    _model().fit(
        Watched(), shuffle=False, workers=2, max_queue_size=4, callbacks=[Check()], verbose=0
    )
    assert seen["ahead"] is True


def test_prefetching_thread_runs_ahead_of_a_generator():
    produced = threading.Event()

    def gen():
        for i, batch in enumerate(_batches()):
            if i == 2:
                produced.set()
            yield batch

    seen = {}

    class Check(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                seen["ahead"] = produced.wait(timeout=10)

    _model().fit(gen(), workers=1, max_queue_size=3, callbacks=[Check()], verbose=0)
    assert seen["ahead"] is True


def test_without_workers_nothing_runs_ahead():
    seq = Batches()
    seen = {}

    class Check(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                seen["fetched"] = list(seq.fetched)

    _model().fit(seq, shuffle=False, workers=0, callbacks=[Check()], verbose=0)
    assert seen["fetched"] == [0]


def test_worker_error_surfaces_naming_the_batch():
    class Broken(Batches):
        def __getitem__(self, i):
            if i == 3:
                raise KeyError("no such record")
            return super().__getitem__(i)

    with pytest.raises(BatchError, match=r"batch 3 from the Sequence Broken.*no such record"):
        _model().fit(Broken(), shuffle=False, workers=2, verbose=0)


def test_generator_error_in_the_prefetching_thread_names_the_batch():
    def gen():
        yield X[:8], Y[:8]
        raise OSError("disk unplugged")

    with pytest.raises(BatchError, match=r"batch 1 from the generator gen.*disk unplugged") as e:
        _model().fit(gen(), verbose=0)
    assert isinstance(e.value.__cause__, OSError)


def test_unusable_data_gets_a_clear_error():
    with pytest.raises(DataError, match=r"not data: expected a NumPy array.*generator"):
        _model().fit(object(), Y, verbose=0)
    with pytest.raises(DataError, match=r"batch 1 from the generator .*each batch must be a tuple"):
        _model().fit((b if i == 0 else b[0] for i, b in enumerate(_batches())), verbose=0)
    with pytest.raises(DataError, match="leave y None"):
        _model().fit(_batches(), Y, verbose=0)
    with pytest.raises(ValueError, match="use_multiprocessing=True needs a keras.utils.Sequence"):
        _model().fit(_batches(), use_multiprocessing=True, workers=2, verbose=0)
    with pytest.raises(ValueError, match="workers apply only to batches from Python"):
        _model().fit(X, Y, workers=2, verbose=0)


def test_keras2_generator_methods():
    model = _model()
    ref = _model()
    ref.fit(X, Y, batch_size=8, shuffle=False, verbose=0)
    model.fit_generator(_forever(), steps_per_epoch=5, workers=2, max_queue_size=2, verbose=0)
    np.testing.assert_allclose(
        model.evaluate_generator(Batches(), workers=2), ref.evaluate(X, Y, verbose=0), rtol=1e-5
    )
    np.testing.assert_allclose(
        model.predict_generator((x for x, _ in _batches()), steps=5), ref.predict(X), rtol=1e-5
    )
    with pytest.raises(DataError, match="fit_generator takes batches"):
        model.fit_generator(X)


def test_progress_shows_steps_when_known_and_an_open_count_when_not(capsys):
    model = _model()
    model.fit(Batches(), verbose=1, workers=0)
    out = capsys.readouterr().out
    assert "5/5 [" in out
    model.fit(_batches(), verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "5/5" in out  # the open count is closed at the end


def test_steps_on_arrays_take_the_first_batches_as_keras_does():
    model = _model()
    np.testing.assert_allclose(
        model.evaluate(X, Y, batch_size=8, steps=2, verbose=0),
        model.evaluate(X[:16], Y[:16], batch_size=8, verbose=0),
    )
    assert model.predict(X, batch_size=8, steps=2).shape == (16, 2)
    history = model.fit(X, Y, validation_data=(X, Y), validation_steps=1, verbose=0)
    np.testing.assert_allclose(
        history.history["val_loss"], [model.evaluate(X[:32], Y[:32], verbose=0)[0]], rtol=1e-6
    )


def test_evaluate_return_dict():
    model = _model()
    values = model.evaluate(X, Y, verbose=0)
    assert model.evaluate(X, Y, verbose=0, return_dict=True) == dict(
        zip(model.metrics_names, values)
    )


@pytest.mark.parametrize(
    "freq, epochs_validated", [(2, [2, 4]), ([1, 3], [1, 3]), (1, [1, 2, 3, 4])]
)
def test_validation_freq(freq, epochs_validated):
    validated = []

    class Record(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if "val_loss" in logs:
                validated.append(epoch + 1)

    history = _model().fit(
        X,
        Y,
        epochs=4,
        validation_data=(X, Y),
        validation_freq=freq,
        callbacks=[Record()],
        verbose=0,
    )
    assert validated == epochs_validated
    assert len(history.history["val_loss"]) == len(epochs_validated)
    with pytest.raises(ValueError, match="validation_freq"):
        _model().fit(X, Y, validation_freq=0, verbose=0)


def test_sequential_predict_classes_and_proba():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([L.Dense(3, activation="softmax", input_shape=(4,))])
    proba = model.predict_proba(X[:6])
    np.testing.assert_array_equal(model.predict_classes(X[:6]), proba.argmax(-1))
    binary = keras.Sequential([L.Dense(1, activation="sigmoid", input_shape=(4,))])
    got = binary.predict_classes(X[:6])
    assert got.dtype == np.int32 and got.shape == (6, 1)
    np.testing.assert_array_equal(got, (binary.predict(X[:6]) > 0.5).astype("int32"))
    linear = keras.Sequential([L.Dense(2, input_shape=(4,))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        linear.predict_proba(X * 100)
    assert any("invalid probability" in str(w.message) for w in caught)


def test_sequential_without_input_shape_builds_from_the_first_batch():
    model = keras.Sequential([L.Dense(2)])
    model.compile("sgd", "mse")
    model.fit(_batches(), verbose=0)
    assert model.predict(Batches()).shape == (40, 2)


def test_torch_dataloader_batches_equal_arrays():
    torch = pytest.importorskip("torch", reason="needs torch for a real DataLoader")
    if torch_unusable_reason() is not None:
        pytest.skip(str(torch_unusable_reason()))
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(Y)), batch_size=8)
    for name in ("numpy", "torch"):
        with keras.use_backend(name):
            ref = _model()
            expected = ref.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
            model = _model()
            got = model.fit(loader, epochs=2, validation_data=loader, verbose=0)
            np.testing.assert_allclose(got.history["loss"], expected.history["loss"], rtol=1e-5)
            np.testing.assert_allclose(model.predict(loader), ref.predict(X), rtol=1e-5, atol=1e-6)


def test_no_worker_outlives_fit_stopped_early_or_failing():
    class StopAtOne(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    def alive():
        return [t for t in threading.enumerate() if t.name.startswith("polykeras-batches")]

    _model().fit(_forever(), steps_per_epoch=5, epochs=3, callbacks=[StopAtOne()], verbose=0)
    assert alive() == []

    class Fail(Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        _model().fit(_forever(), steps_per_epoch=5, callbacks=[Fail()], verbose=0)
    assert alive() == []


class EpochSequence(keras.utils.Sequence):
    """A Sequence whose batches depend on its epoch counter (changed by on_epoch_end), so
    worker processes must see the current state, and whose batch 3 fails on request."""

    def __init__(self, fail_at=None):
        self.epoch = 0
        self.fail_at = fail_at

    def __len__(self):
        return 5

    def __getitem__(self, i):
        import os

        if i == self.fail_at:
            raise RuntimeError(f"bad record in batch {i} (process {os.getpid()})")
        scale = 1.0 + self.epoch
        return X[i * 8 : (i + 1) * 8] * scale, Y[i * 8 : (i + 1) * 8]

    def on_epoch_end(self):
        self.epoch += 1


def test_worker_processes_give_the_batches_of_the_sequence():
    """use_multiprocessing=True: a Sequence's batches come from worker processes, each epoch
    from a pool started after on_epoch_end (so the workers see the new state); the result
    equals training in the calling thread."""
    ref = _model()
    ref.fit(EpochSequence(), epochs=3, shuffle=False, verbose=0)
    model = _model()
    model.fit(
        EpochSequence(), epochs=3, shuffle=False, workers=2, use_multiprocessing=True, verbose=0
    )
    for a, b in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(
        model.predict(EpochSequence(), workers=2, use_multiprocessing=True, verbose=0),
        model.predict(EpochSequence(), verbose=0),
        rtol=1e-6,
    )
    with pytest.raises(BatchError, match=r"batch 3 .*bad record in batch 3.*worker process"):
        _model().fit(EpochSequence(fail_at=3), workers=2, use_multiprocessing=True, verbose=0)
