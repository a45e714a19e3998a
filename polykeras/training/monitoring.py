"""Callbacks that report training elsewhere: ``TensorBoard`` (event files, written with the
tensorboardX library: the ``[tensorboard]`` extra) and ``RemoteMonitor`` (HTTP POSTs, with
the standard library).

TensorBoard writes what Keras writes, where Keras writes it: ``log_dir/train`` and
``log_dir/validation``, scalars ``epoch_<metric>`` at each epoch end (the validation values
under their names without ``val_``), ``batch_<metric>`` every ``update_freq`` batches,
weight histograms ``<layer>/<weight>`` every ``histogram_freq`` epochs, and the model's
Keras config as the conceptual graph TensorBoard's graph tab draws ("keras" with the
``graph_keras_model`` plugin).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any

import numpy as np

from ..utils import as_int
from .callbacks import Callback

TENSORBOARD_EXTRA = "pip install -e '.[tensorboard]' (tensorboardX)"


def _writer_class() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError(
            "callbacks.TensorBoard writes event files with tensorboardX, which is not "
            f"installed: {TENSORBOARD_EXTRA}"
        ) from None
    return SummaryWriter


def _short(name: str) -> str:
    """``dense_1/kernel:0`` -> ``kernel_0`` (the part after the layer, no colon)."""
    return name.rpartition("/")[2].replace(":", "_")


class TensorBoard(Callback):
    """Event files for TensorBoard (Keras 2's arguments; the TensorFlow-only ones, the
    profiler, image and embedding summaries, are refused when turned on)."""

    _chief_only = True

    def __init__(
        self,
        log_dir: Any = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: Any = "epoch",
        profile_batch: Any = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: Any = None,
        **kwargs: Any,
    ):
        super().__init__()
        for old in ("batch_size", "write_grads", "embeddings_layer_names", "embeddings_data"):
            if old in kwargs and kwargs.pop(old) not in (None, False, 32):
                raise NotImplementedError(
                    f"TensorBoard: {old} (Keras 2.2's TensorFlow-1 argument) is not supported"
                )
        if kwargs:
            raise TypeError(
                f"TensorBoard: keyword argument(s) not understood: {', '.join(sorted(kwargs))}"
            )
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = as_int(histogram_freq, "histogram_freq", "TensorBoard", minimum=0)
        self.write_graph = bool(write_graph)
        if write_images:
            raise NotImplementedError(
                "TensorBoard: write_images=True (kernels drawn as images) is not supported"
            )
        if profile_batch not in (0, None, (0, 0), [0, 0]):
            raise NotImplementedError(
                f"TensorBoard: profile_batch={profile_batch!r} asks for TensorFlow's profiler, "
                "which polykeras does not have; use torch.profiler around fit on the torch "
                "backend, or leave profile_batch at 0"
            )
        if embeddings_freq or embeddings_metadata is not None:
            raise NotImplementedError(
                "TensorBoard: embeddings_freq / embeddings_metadata (the projector) are not "
                "supported"
            )
        if update_freq in ("epoch", "batch"):
            self.update_freq: Any = update_freq if update_freq == "epoch" else 1
        else:
            self.update_freq = as_int(update_freq, "update_freq", "TensorBoard", minimum=1)
        self.write_steps_per_second = bool(write_steps_per_second)
        self._writer_class = _writer_class()  # a missing library is an error at once
        self._writers: dict[str, Any] = {}
        self._batches = 0
        self._epoch_start = 0.0
        self._epoch_batches = 0

    # -- writers -----------------------------------------------------------------------------------
    def _writer(self, which: str) -> Any:
        if which not in self._writers:
            self._writers[which] = self._writer_class(os.path.join(self.log_dir, which))
        return self._writers[which]

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _write_graph(self) -> None:
        from tensorboardX.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

        config = json.dumps(
            {"class_name": type(self.model).__name__, "config": self.model.get_config()},
            default=str,
        )
        meta = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(
                plugin_name="graph_keras_model", content=b"1"
            )
        )
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            string_val=[config.encode("utf-8")],
        )
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="keras", metadata=meta, tensor=tensor)]
        )
        writer = self._writer("train")
        writer._get_file_writer().add_summary(summary, 0)
        writer.flush()

    # -- hooks -------------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._batches = 0
        if self.write_graph:
            self._write_graph()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._epoch_batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        self._epoch_batches += 1
        if self.update_freq == "epoch" or self._batches % self.update_freq:
            return
        writer = self._writer("train")
        for name, value in (logs or {}).items():
            if name in ("batch", "size"):
                continue
            writer.add_scalar(f"batch_{name}", float(value), self._batches)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train, val = self._writer("train"), None
        for name, value in logs.items():
            if name.startswith("val_"):
                val = val or self._writer("validation")
                val.add_scalar(f"epoch_{name[4:]}", float(value), epoch)
            else:
                train.add_scalar(f"epoch_{name}", float(value), epoch)
        if self.write_steps_per_second and self._epoch_batches:
            seconds = max(time.perf_counter() - self._epoch_start, 1e-9)
            train.add_scalar("epoch_steps_per_second", self._epoch_batches / seconds, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for layer in self.model.layers:
                for weight in layer.weights:
                    values = np.asarray(weight.numpy(), dtype=np.float64).reshape(-1)
                    if values.size and np.all(np.isfinite(values)):
                        train.add_histogram(f"{layer.name}/{_short(weight.name)}", values, epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        self._close()


class RemoteMonitor(Callback):
    """POSTs each epoch's logs to a server (Keras 2's arguments): as the form field
    ``field`` holding JSON, or with ``send_as_json=True`` as a JSON body.  An unreachable
    server is a warning, not an error, as in Keras."""

    _chief_only = True

    def __init__(
        self,
        root: str = "http://localhost:9000",
        path: str = "/publish/epoch/end/",
        field: str = "data",
        headers: dict | None = None,
        send_as_json: bool = False,
        timeout: float = 10.0,
    ):
        super().__init__()
        scheme = urllib.parse.urlsplit(str(root)).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"RemoteMonitor: root must be an http(s) URL, got {root!r}")
        self.root, self.path, self.field = str(root), str(path), str(field)
        self.headers = dict(headers or {})
        self.send_as_json = bool(send_as_json)
        self.timeout = float(timeout)

    def on_epoch_end(self, epoch, logs=None):
        send: dict[str, Any] = {"epoch": epoch}
        for name, value in (logs or {}).items():
            send[name] = float(value) if isinstance(value, (int, float, np.number)) else value
        if self.send_as_json:
            body = json.dumps(send).encode("utf-8")
            headers = {"Content-Type": "application/json", **self.headers}
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode("utf-8")
            headers = {"Content-Type": "application/x-www-form-urlencoded", **self.headers}
        request = urllib.request.Request(self.root + self.path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            warnings.warn(
                f"Could not reach RemoteMonitor root server at {self.root} ({exc})",
                stacklevel=2,
            )


__all__ = ["RemoteMonitor", "TensorBoard"]
