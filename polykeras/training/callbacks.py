"""Callbacks: objects told about each stage of training, with Keras' hook names.

``fit`` calls, in order: ``on_train_begin``; per epoch ``on_epoch_begin``, per batch
``on_train_batch_begin``/``on_train_batch_end`` (which call Keras 2's ``on_batch_begin``/
``on_batch_end`` by default), ``on_epoch_end``; then ``on_train_end``.  ``evaluate`` (and
fit's validation) call ``on_test_begin``, ``on_test_batch_begin``/``_end``, ``on_test_end``.
Setting ``model.stop_training = True`` ends training after the current batch.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import warnings
from typing import Any
from collections.abc import Callable, Iterable

import numpy as np

from .progress import Progbar


class Callback:
    """Base class: every hook does nothing.  ``self.model`` and ``self.params`` are set."""

    #: data-parallel training runs this callback on rank 0 only (it writes files or prints)
    _chief_only = False

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}
        self.validation_data = None

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_begin(self, logs: dict | None = None) -> None: ...
    def on_predict_end(self, logs: dict | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


class CallbackList:
    """Calls a hook on every callback in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()):
        self.callbacks = list(callbacks)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def set_params(self, params: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.set_params(params)

    def set_model(self, model: Any) -> None:
        for cb in self.callbacks:
            cb.set_model(model)

    def call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)


def check_callbacks(callbacks: Any) -> list[Callback]:
    """The callbacks argument of fit/evaluate as a list, with a clear error for a bad one."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    out = list(callbacks)
    for i, cb in enumerate(out):
        if not isinstance(cb, Callback):
            raise TypeError(
                f"callbacks[{i}] is {type(cb).__name__}, not a polykeras.callbacks.Callback"
            )
    return out


class History(Callback):
    """Records the epoch logs: ``history.history['loss']`` and the epoch numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


class BaseLogger(Callback):
    """Kept for Keras 2 compatibility: the trainer itself averages metrics over an epoch."""


class ProgbarLogger(Callback):
    """Prints 'Epoch i/n' and the progress bar (``verbose`` 1) or a line per epoch (2)."""

    def __init__(
        self, count_mode: str = "samples", stateful_metrics: Any = None, stream: Any = None
    ):
        super().__init__()
        if count_mode not in ("samples", "steps"):
            raise ValueError(f"Unknown `count_mode`: {count_mode!r}")
        self.use_steps = count_mode == "steps"
        self.stateful_metrics = set(stateful_metrics or ())
        self.stream = stream
        self.progbar: Progbar | None = None

    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def on_train_begin(self, logs=None):
        self.verbose = self.params.get("verbose", 1)
        self.epochs = self.params.get("epochs", 1)

    def on_epoch_begin(self, epoch, logs=None):
        if not self.verbose:
            return
        out = self._out()
        out.write(f"Epoch {epoch + 1}/{self.epochs}\n")
        out.flush()
        self.target = self.params["steps"] if self.use_steps else self.params["samples"]
        self.progbar = Progbar(
            self.target, verbose=self.verbose, stateful_metrics=self.stateful_metrics, stream=out
        )
        self.seen = 0

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.seen += 1 if self.use_steps else int(logs.get("size", 0))
        if self.progbar is not None and (self.target is None or self.seen < self.target):
            values = [(k, logs[k]) for k in self.params.get("metrics", ()) if k in logs]
            self.progbar.update(self.seen, values)

    def on_epoch_end(self, epoch, logs=None):
        if self.progbar is None:
            return
        logs = logs or {}
        # the epoch's averages (and validation values) go on the final line, as in Keras 2
        self.progbar.stateful_metrics.update(logs)
        values = [(k, logs[k]) for k in self.params.get("metrics", ()) if k in logs]
        values += [
            (k, logs[k])
            for k in logs
            if k not in self.params.get("metrics", ()) and k.startswith("val_")
        ]
        if self.target is None:  # batches from Python of unknown count: now known
            self.progbar.target = self.seen
        self.progbar.update(max(self.seen, self.progbar.target), values, force=True)
        self.progbar = None


def _monitor_mode(monitor: str, mode: str, owner: str) -> str:
    if mode not in ("auto", "min", "max"):
        warnings.warn(
            f"{owner} mode {mode!r} is unknown, fallback to auto mode.",
            RuntimeWarning,
            stacklevel=3,
        )
        mode = "auto"
    if mode == "auto":
        return "max" if ("acc" in monitor or monitor.startswith("fmeasure")) else "min"
    return mode


def _warn_missing(owner: str, monitor: str, logs: dict) -> None:
    warnings.warn(
        f"{owner} conditioned on metric `{monitor}` which is not available. "
        f"Available metrics are: {','.join(sorted(logs))}",
        RuntimeWarning,
        stacklevel=3,
    )


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has stopped improving for ``patience`` epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
    ):
        super().__init__()
        self.monitor = monitor
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.mode = _monitor_mode(monitor, mode, "EarlyStopping")
        self.min_delta = abs(float(min_delta))
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None

    def _improved(self, current: float, best: float) -> bool:
        if self.mode == "max":
            return current - self.min_delta > best
        return current + self.min_delta < best

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        if self.baseline is not None:
            self.best = float(self.baseline)
        else:
            self.best = -np.inf if self.mode == "max" else np.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        current = logs.get(self.monitor)
        if current is None:
            _warn_missing("Early stopping", self.monitor, logs)
            return
        if self._improved(current, self.best):
            self.best = current
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose > 0:
                    print("Restoring model weights from the end of the best epoch")
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1:05d}: early stopping")


class BackupAndRestore(Callback):
    """Resume an interrupted ``fit`` where it stopped (Keras 3's callback).

    At the end of every epoch the model's weights and optimizer state go to
    ``backup_dir/latest.weights.h5`` and the epoch to ``backup_dir/training_metadata.json``
    (each written atomically).  A ``fit`` that starts with a backup in place loads it and
    continues with the epoch after the saved one.  With ``save_freq=N`` (an int) the backup
    is made every N batches instead (counted across epochs, as Keras 3 counts them); a
    backup made in the middle of an epoch resumes, as in Keras 3, at the start of that
    epoch, from the weights saved at its batch (the batches before it are seen again).
    Both files are Keras 3's (the metadata ``{"epoch": <the epoch to run next>, "batch":
    <the batch saved at, 0 at an epoch's end>}``), so either library resumes a folder the
    other wrote; a folder written by polykeras before it followed Keras 3 (``{"epoch": <the
    epoch finished>}``, or ``{"next_epoch": ..., "batch": ...}``) is still read as meant.
    A ``fit`` that completes removes the backup (``delete_checkpoint=True``).
    Data-parallel training: every rank loads the backup, rank 0 alone writes it (so
    ``backup_dir`` must be on a shared file system when ranks run on several machines).
    """

    def __init__(
        self,
        backup_dir: Any,
        save_freq: Any = "epoch",
        delete_checkpoint: bool = True,
        save_before_preemption: bool = False,
    ):
        super().__init__()
        if backup_dir is None or not str(backup_dir):
            raise ValueError("BackupAndRestore: backup_dir must be a folder path")
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                f"BackupAndRestore: save_freq must be 'epoch' or a positive number of "
                f"batches, got {save_freq!r}"
            )
        self.save_freq = save_freq
        self._since_saved = 0  # batches since the last backup (save_freq=N)
        self._last_batch = 0
        self._epoch = 0  # the epoch in progress
        if save_before_preemption:
            raise NotImplementedError(
                "BackupAndRestore: save_before_preemption=True needs TensorFlow's "
                "preemption watcher, which polykeras does not have"
            )
        self.backup_dir = os.fspath(backup_dir)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._weights_path = os.path.join(self.backup_dir, "latest.weights.h5")
        self._meta_path = os.path.join(self.backup_dir, "training_metadata.json")

    def _writes(self) -> bool:
        from .. import distribute

        dp = distribute.distribution()
        return dp is None or dp.world_size == 1 or dp.is_chief

    def on_train_begin(self, logs=None):
        if not (os.path.exists(self._weights_path) and os.path.exists(self._meta_path)):
            return
        import json

        with open(self._meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        # Keras 3 (and polykeras now): {"epoch": e, "batch": b}, e the epoch to run (again)
        # from its start; polykeras before: {"epoch": e} (epoch e finished) or
        # {"next_epoch": e, "batch": b}
        key = "next_epoch" if isinstance(meta, dict) and "next_epoch" in meta else "epoch"
        epoch = meta.get(key) if isinstance(meta, dict) else None
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(
                f"BackupAndRestore: {self._meta_path} does not name an epoch "
                f"({key}={epoch!r}); remove the backup folder to start afresh"
            )
        finished = key == "epoch" and "batch" not in meta  # polykeras' older epoch backup
        self.model.load_weights(self._weights_path)
        self.model._resume_epoch = epoch + 1 if finished else epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # Keras 3's count: a batch number not above the last one starts a new epoch
        batch = int(batch)
        self._since_saved += batch + 1 if batch <= self._last_batch else batch - self._last_batch
        self._last_batch = batch
        if self._since_saved >= self.save_freq:
            self._since_saved = 0
            self._save({"epoch": self._epoch, "batch": batch})

    def on_epoch_end(self, epoch, logs=None):
        self._last_batch = 0
        if self.save_freq == "epoch":
            self._save({"epoch": int(epoch) + 1, "batch": 0})

    def _save(self, meta: dict) -> None:
        if not self._writes():
            return
        import json

        from ..saving.files import atomic_path

        os.makedirs(self.backup_dir, exist_ok=True)
        self.model.save_weights(self._weights_path, overwrite=True)
        with atomic_path(self._meta_path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(meta, f)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and self._writes():  # only a completed fit gets here
            for path in (self._weights_path, self._meta_path):
                if os.path.exists(path):
                    os.remove(path)
            try:
                os.rmdir(self.backup_dir)
            except OSError:
                pass  # not empty (other files of the user's) or gone: leave it


class ModelCheckpoint(Callback):
    """Saves the model (``model.save``) or its weights (``model.save_weights``) each epoch.

    ``filepath`` may hold format fields: ``'weights.{epoch:02d}-{val_loss:.2f}.h5'``.
    """

    _chief_only = True

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        period: int = 1,
    ):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.period = max(int(period), 1)
        self.mode = _monitor_mode(monitor, mode, "ModelCheckpoint")
        self.best = -np.inf if self.mode == "max" else np.inf
        self.epochs_since_last_save = 0

    def _path(self, epoch: int, logs: dict) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as exc:
            raise KeyError(
                f"ModelCheckpoint: filepath {self.filepath!r} names {exc}, which "
                f"is not in the epoch logs ({', '.join(sorted(logs))})"
            ) from None

    def _save(self, path: str) -> None:
        method = "save_weights" if self.save_weights_only else "save"
        fn = getattr(self.model, method, None)
        if fn is None:
            raise NotImplementedError(
                f"ModelCheckpoint: model {self.model.name} has no {method}() method"
            )
        fn(path)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epochs_since_last_save += 1
        if self.epochs_since_last_save < self.period:
            return
        self.epochs_since_last_save = 0
        path = self._path(epoch, logs)
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1:05d}: saving model to {path}")
            self._save(path)
            return
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Can save best model only with {self.monitor} available, skipping.",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        better = current > self.best if self.mode == "max" else current < self.best
        if better:
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1:05d}: {self.monitor} improved from "
                    f"{self.best:.5f} to {current:.5f}, saving model to {path}"
                )
            self.best = current
            self._save(path)
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1:05d}: {self.monitor} did not improve from {self.best:.5f}")


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place (the
    same atomic write, and the same rules, as saved models)."""
    from ..saving.files import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)


class CSVLogger(Callback):
    """Writes one CSV row per epoch (``epoch`` then the logs' keys, sorted).

    The file is rewritten atomically after each epoch, so it is never half-written;
    with ``append=True`` the rows of an existing file are kept.
    """

    _chief_only = True

    def __init__(self, filename: str, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys: list[str] | None = None
        self._kept = ""
        self._rows: list[list[str]] = []

    def on_train_begin(self, logs=None):
        self._kept = ""
        self._rows = []
        self.keys = None
        self._header_written = False
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8", newline="") as f:
                self._kept = f.read()
            if self._kept and not self._kept.endswith("\n"):
                self._kept += "\n"
            self._header_written = bool(self._kept.strip())

    @staticmethod
    def _text(value: Any) -> str:
        if isinstance(value, (list, tuple, np.ndarray)):
            return '"[' + ", ".join(str(v) for v in np.ravel(value)) + ']"'
        return str(value)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        self._rows.append([str(epoch)] + [self._text(logs.get(k, "NA")) for k in self.keys])
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=self.sep, lineterminator="\n")
        if not self._header_written:
            writer.writerow(["epoch"] + self.keys)
        writer.writerows(self._rows)
        write_atomically(self.filename, self._kept + buf.getvalue())


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


def _set_lr(model: Any, value: float, owner: str) -> None:
    opt = getattr(model, "optimizer", None)
    if opt is None or not hasattr(opt, "learning_rate"):
        raise ValueError(f'{owner}: optimizer must have a "learning_rate" attribute.')
    if not isinstance(value, (float, int, np.floating, np.integer)) or not math.isfinite(value):
        raise ValueError(
            f'{owner}: the output of the "schedule" function should be a '
            f"finite float, got {value!r}"
        )
    opt.learning_rate = float(value)


def _refuse_schedule(model: Any, owner: str) -> None:
    """A learning rate that is a schedule cannot be set (Keras 3 raises this TypeError when
    the callback first sets it; polykeras says so before training starts)."""
    if getattr(getattr(model, "optimizer", None), "schedule", None) is not None:
        raise TypeError(
            f"{owner}: This optimizer was created with a `LearningRateSchedule` object as "
            "its `learning_rate` constructor argument, hence its learning rate is not "
            "settable. If you need the learning rate to be settable, you should "
            "instantiate the optimizer with a float `learning_rate` argument."
        )


class LearningRateScheduler(Callback):
    """Sets the learning rate at each epoch start: ``schedule(epoch)`` or
    ``schedule(epoch, lr)``."""

    def __init__(self, schedule: Callable[..., float], verbose: int = 0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        _refuse_schedule(self.model, "LearningRateScheduler")

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.model.optimizer.learning_rate
        try:
            value = self.schedule(epoch, lr)
        except TypeError:  # Keras 1/2 schedules take the epoch only
            value = self.schedule(epoch)
        _set_lr(self.model, value, "LearningRateScheduler")
        if self.verbose > 0:
            print(
                f"\nEpoch {epoch + 1:05d}: LearningRateScheduler setting learning rate to {value}."
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = self.model.optimizer.learning_rate


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` stops improving."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0,
        **kwargs: Any,
    ):
        super().__init__()
        if "epsilon" in kwargs:  # Keras 2.0's name for min_delta
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(
                f"ReduceLROnPlateau: keyword argument(s) not understood: "
                f"{', '.join(sorted(kwargs))}"
            )
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0.")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        self.min_delta = float(min_delta)
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self.mode = _monitor_mode(monitor, mode, "ReduceLROnPlateau")
        self._reset()

    def _reset(self) -> None:
        self.best = -np.inf if self.mode == "max" else np.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _improved(self, current: float) -> bool:
        if self.mode == "max":
            return current > self.best + self.min_delta
        return current < self.best - self.min_delta

    def on_train_begin(self, logs=None):
        _refuse_schedule(self.model, "ReduceLROnPlateau")
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["lr"] = self.model.optimizer.learning_rate
        current = logs.get(self.monitor)
        if current is None:
            _warn_missing("Reduce LR on plateau", self.monitor, logs)
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = self.model.optimizer.learning_rate
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose > 0:
                        print(
                            f"\nEpoch {epoch + 1:05d}: ReduceLROnPlateau reducing learning "
                            f"rate to {new}."
                        )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``."""

    _HOOKS = (
        "on_epoch_begin",
        "on_epoch_end",
        "on_batch_begin",
        "on_batch_end",
        "on_train_begin",
        "on_train_end",
    )

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_batch_begin=None,
        on_batch_end=None,
        on_train_begin=None,
        on_train_end=None,
        **kwargs: Any,
    ):
        super().__init__()
        given = dict(
            on_epoch_begin=on_epoch_begin,
            on_epoch_end=on_epoch_end,
            on_batch_begin=on_batch_begin,
            on_batch_end=on_batch_end,
            on_train_begin=on_train_begin,
            on_train_end=on_train_end,
            **kwargs,
        )
        for hook, fn in given.items():
            if fn is None:
                continue
            if not hasattr(Callback, hook):
                raise TypeError(f"LambdaCallback: unknown hook {hook!r}")
            setattr(self, hook, fn)


def __getattr__(name: str) -> Any:
    # the callbacks that report elsewhere live in monitoring.py (TensorBoard's library is
    # optional): served from here, where Keras has them
    if name in ("TensorBoard", "RemoteMonitor"):
        from . import monitoring

        return getattr(monitoring, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
