"""Callbacks: hook order, EarlyStopping, ReduceLROnPlateau, CSVLogger, TerminateOnNaN,
ModelCheckpoint, LearningRateScheduler, LambdaCallback."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

import polykeras
from polykeras import callbacks, optimizers
from polykeras.layers import Dense, Input
from polykeras.models import Model

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3)).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5]])).astype("float32")


def model(lr=0.05, optimizer=None):
    inputs = Input(shape=(3,))
    m = Model(inputs, Dense(1)(inputs))
    m.compile(optimizer or optimizers.SGD(lr=lr), "mse", metrics=["mae"])
    return m


def test_module_is_polykeras_callbacks():
    assert polykeras.callbacks is callbacks


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin {epoch}")

    def on_batch_begin(self, batch, logs=None):
        self.calls.append(f"batch_begin {batch}")

    def on_batch_end(self, batch, logs=None):
        self.calls.append(f"batch_end {batch} {sorted(logs)}")

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, logs=None):
        self.calls.append("train_end")


def test_hook_order_and_logs():
    rec = Recorder()
    m = model()
    m.fit(X, Y, batch_size=20, epochs=2, verbose=0, callbacks=[rec], validation_data=(X[:5], Y[:5]))
    assert rec.model is m
    assert rec.params["epochs"] == 2 and rec.params["samples"] == 40
    assert rec.params["metrics"] == ["loss", "mae", "val_loss", "val_mae"]
    assert rec.calls == [
        "train_begin",
        "epoch_begin 0",
        "batch_begin 0",
        "batch_end 0 ['batch', 'loss', 'mae', 'size']",
        "batch_begin 1",
        "batch_end 1 ['batch', 'loss', 'mae', 'size']",
        "epoch_end 0 ['loss', 'mae', 'val_loss', 'val_mae']",
        "epoch_begin 1",
        "batch_begin 0",
        "batch_end 0 ['batch', 'loss', 'mae', 'size']",
        "batch_begin 1",
        "batch_end 1 ['batch', 'loss', 'mae', 'size']",
        "epoch_end 1 ['loss', 'mae', 'val_loss', 'val_mae']",
        "train_end",
    ]


def test_test_hooks_on_evaluate():
    seen = []

    class TestRecorder(callbacks.Callback):
        def on_test_begin(self, logs=None):
            seen.append("begin")

        def on_test_batch_end(self, batch, logs=None):
            seen.append(batch)

        def on_test_end(self, logs=None):
            seen.append(sorted(logs))

    model().evaluate(X, Y, batch_size=16, verbose=0, callbacks=[TestRecorder()])
    assert seen == ["begin", 0, 1, 2, ["loss", "mae"]]


def test_early_stopping_stops_when_nothing_improves():
    m = model(lr=0.0)  # the loss never changes (beyond float32 rounding: the shuffled
    # batches are summed in a different order each epoch)
    stop = callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=1e-3)
    history = m.fit(X, Y, epochs=20, verbose=0, callbacks=[stop])
    assert history.epoch == [0, 1, 2]
    assert stop.stopped_epoch == 2


def test_early_stopping_restores_best_weights_and_baseline():
    m = model(lr=0.05)
    stop = callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)

    class Worsen(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                self.model.optimizer.learning_rate = 10.0  # the loss blows up from here

    history = m.fit(X, Y, epochs=20, verbose=0, callbacks=[Worsen(), stop])
    best = int(np.argmin(history.history["loss"]))
    assert len(history.epoch) < 20
    np.testing.assert_allclose(
        m.evaluate(X, Y, verbose=0)[0], min(history.history["loss"]), rtol=0.5
    )
    assert best == 2

    m = model(lr=0.0)
    stop = callbacks.EarlyStopping(monitor="loss", patience=3, baseline=0.0)
    assert len(m.fit(X, Y, epochs=10, verbose=0, callbacks=[stop]).epoch) == 3


def test_early_stopping_warns_on_missing_monitor():
    m = model()
    with pytest.warns(RuntimeWarning, match="val_loss"):
        m.fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping()])


def test_reduce_lr_on_plateau_reduces():
    m = model(lr=1e-6)
    reduce = callbacks.ReduceLROnPlateau(
        monitor="loss", factor=0.5, patience=1, min_delta=10.0, min_lr=1e-7
    )
    history = m.fit(X, Y, epochs=5, verbose=0, callbacks=[reduce])
    # epoch 0 sets the best; every later epoch fails to improve by 10 -> halve each epoch
    # (the logs show the rate the epoch ran with)
    assert history.history["lr"] == pytest.approx([1e-6, 1e-6, 5e-7, 2.5e-7, 1.25e-7])
    assert m.optimizer.learning_rate == pytest.approx(1e-7)


def test_learning_rate_scheduler_both_signatures():
    m = model()
    sched = callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))
    history = m.fit(X, Y, epochs=3, verbose=0, callbacks=[sched])
    assert history.history["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    m = model(lr=0.2)
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    m.fit(X, Y, epochs=2, verbose=0, callbacks=[sched])
    assert m.optimizer.lr == pytest.approx(0.05)
    bad = callbacks.LearningRateScheduler(lambda epoch: "fast")
    with pytest.raises(ValueError, match="schedule"):
        m.fit(X, Y, epochs=1, verbose=0, callbacks=[bad])


def test_csv_logger_writes_and_appends(tmp_path):
    path = tmp_path / "log.csv"
    m = model()
    m.fit(
        X, Y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(str(path))], validation_split=0.25
    )
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [r[0] for r in rows[1:]] == ["0", "1"]
    assert all(math.isfinite(float(v)) for v in rows[1][1:])
    m.fit(
        X,
        Y,
        epochs=1,
        verbose=0,
        callbacks=[callbacks.CSVLogger(str(path), append=True)],
        validation_split=0.25,
    )
    rows = list(csv.reader(path.open()))
    assert len(rows) == 4 and rows[3][0] == "0"
    m.fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(str(path), separator=";")])
    lines = path.read_text().splitlines()
    assert lines == [lines[0], lines[1]] and lines[0] == "epoch;loss;mae"
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]  # no temporary files left


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan():
    m = model()
    weights = m.get_weights()
    weights[0][:] = np.inf
    m.set_weights(weights)
    history = m.fit(
        X, Y, epochs=5, batch_size=10, verbose=0, callbacks=[callbacks.TerminateOnNaN()]
    )
    assert history.epoch == [0]
    assert m.stop_training


def test_model_checkpoint_calls_save(tmp_path):
    m = model()
    saved = []
    m.save_weights = lambda path: saved.append(("weights", path))
    m.save = lambda path: saved.append(("model", path))
    pattern = str(tmp_path / "weights.{epoch:02d}-{val_loss:.2f}.h5")
    history = m.fit(
        X,
        Y,
        epochs=3,
        verbose=0,
        validation_split=0.25,
        callbacks=[callbacks.ModelCheckpoint(pattern, save_weights_only=True)],
    )
    assert [kind for kind, _ in saved] == ["weights"] * 3
    vl = history.history["val_loss"]
    assert saved[0][1] == str(tmp_path / f"weights.01-{vl[0]:.2f}.h5")

    saved.clear()
    m2 = model(lr=0.0)
    m2.save = lambda path: saved.append(("model", path))
    m2.fit(
        X,
        Y,
        epochs=3,
        verbose=0,
        validation_split=0.25,
        callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "best.h5"), save_best_only=True)],
    )
    assert saved == [("model", str(tmp_path / "best.h5"))]  # only the first epoch improved
    with pytest.raises(KeyError, match="val_acc"):
        model().fit(
            X, Y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint("{val_acc}.h5")]
        )


def test_lambda_callback():
    seen = []
    cb = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(epoch),
        on_train_end=lambda logs: seen.append("end"),
    )
    model().fit(X, Y, epochs=2, verbose=0, callbacks=[cb])
    assert seen == [0, 1, "end"]
    with pytest.raises(TypeError, match="unknown hook"):
        callbacks.LambdaCallback(on_epoch_middle=print)


def test_history_callback_object():
    m = model()
    history = m.fit(X, Y, epochs=2, verbose=0)
    assert isinstance(history, callbacks.History)
    assert set(history.history) == {"loss", "mae"} and history.epoch == [0, 1]


def test_model_checkpoint_with_real_saving(tmp_path):
    m = model()
    if not hasattr(m, "save_weights"):  # pragma: no cover
        pytest.skip("Model.save_weights is not available yet")
    pattern = str(tmp_path / "w.{epoch:02d}.h5")
    m.fit(
        X,
        Y,
        epochs=2,
        verbose=0,
        callbacks=[callbacks.ModelCheckpoint(pattern, monitor="loss", save_weights_only=True)],
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.01.h5", "w.02.h5"]
    fresh = model()
    fresh.load_weights(str(tmp_path / "w.02.h5"))
    for a, b in zip(fresh.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_backup_and_restore_resumes_where_fit_stopped(tmp_path):
    """A fit interrupted after epoch 2 and run again with the same backup folder ends with
    the weights (and the Adam state behind them) of an uninterrupted fit."""
    import polykeras as keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype("float32")
    y = (x[:, :2].sum(axis=1) > 0).astype("float32")

    def model():
        keras.utils.set_random_seed(3)
        m = keras.Sequential(
            [
                keras.layers.Dense(4, activation="tanh", input_shape=(5,)),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        m.compile(optimizer="adam", loss="binary_crossentropy")
        return m

    whole = model()
    whole.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0)

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("the machine went away")

    backup = tmp_path / "backup"
    first = model()
    with pytest.raises(RuntimeError, match="went away"):
        first.fit(
            x,
            y,
            batch_size=8,
            epochs=5,
            shuffle=False,
            verbose=0,
            callbacks=[keras.callbacks.BackupAndRestore(backup), Crash()],
        )
    assert (backup / "latest.weights.h5").exists()
    second = model()  # a fresh process would build the model again
    history = second.fit(
        x,
        y,
        batch_size=8,
        epochs=5,
        shuffle=False,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(backup)],
    )
    assert history.epoch == [3, 4]
    for a, b in zip(second.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not backup.exists()  # a completed fit removes its backup
    with pytest.raises(ValueError, match="save_freq"):  # save_freq=N: tests/test_distributed.py
        keras.callbacks.BackupAndRestore(backup, save_freq=0)
