"""callbacks.TensorBoard (event files read back record by record) and RemoteMonitor
(posts received by a local HTTP server)."""

from __future__ import annotations

import json
import struct
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

import polykeras as keras


def small_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Dense(4, activation="relu", input_shape=(3,), name="hidden"),
            keras.layers.Dense(1, activation="sigmoid", name="out"),
        ]
    )
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def data(n=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def read_events(folder: Path) -> list:
    """Every event of the event files in ``folder`` (TFRecord framing, parsed here)."""
    from tensorboardX.proto import event_pb2

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        raw = path.read_bytes()
        at = 0
        while at < len(raw):
            (length,) = struct.unpack("<Q", raw[at : at + 8])
            events.append(event_pb2.Event.FromString(raw[at + 12 : at + 12 + length]))
            at += 12 + length + 4
    return events


def scalars(folder: Path) -> dict:
    out: dict = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_tensorboard_scalars_histograms_and_graph(tmp_path):
    pytest.importorskip("tensorboardX", reason="tensorboardX (the [tensorboard] extra) is absent")
    model = small_model()
    x, y = data()
    board = keras.callbacks.TensorBoard(log_dir=tmp_path, histogram_freq=1, update_freq=2)
    history = model.fit(
        x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0, callbacks=[board]
    )
    train = scalars(tmp_path / "train")
    assert [s for s, _ in train["epoch_loss"]] == [0, 1]
    np.testing.assert_allclose(
        [v for _, v in train["epoch_loss"]], history.history["loss"], rtol=1e-6
    )
    val = scalars(tmp_path / "validation")
    np.testing.assert_allclose(
        [v for _, v in val["epoch_accuracy"]], history.history["val_accuracy"], rtol=1e-6
    )
    # 3 batches per epoch (24 training samples), update_freq=2: batches 2, 4, 6
    assert [s for s, _ in train["batch_loss"]] == [2, 4, 6]
    events = read_events(tmp_path / "train")
    histograms = {v.tag for e in events for v in e.summary.value if v.HasField("histo")}
    assert {"hidden/kernel_0", "hidden/bias_0", "out/kernel_0"} <= histograms
    graph = [v for e in events for v in e.summary.value if v.tag == "keras"]
    assert graph and graph[0].metadata.plugin_data.plugin_name == "graph_keras_model"
    config = json.loads(graph[0].tensor.string_val[0])
    assert config["class_name"] == "Sequential"


def test_tensorboard_refuses_what_it_does_not_do(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX", reason="tensorboardX (the [tensorboard] extra) is absent")
    for kwargs, word in (
        ({"profile_batch": 2}, "profile_batch"),
        ({"write_images": True}, "write_images"),
        ({"embeddings_freq": 1}, "embeddings_freq"),
        ({"update_freq": 0}, "update_freq"),
        ({"nonsense": 1}, "nonsense"),
    ):
        with pytest.raises((NotImplementedError, ValueError, TypeError), match=word):
            keras.callbacks.TensorBoard(log_dir=tmp_path, **kwargs)


def test_tensorboard_names_its_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"\[tensorboard\]"):
        keras.callbacks.TensorBoard(log_dir=tmp_path)


class _Collect(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_remote_monitor_posts_each_epoch():
    _Collect.received = []
    server = HTTPServer(("127.0.0.1", 0), _Collect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        root = f"http://127.0.0.1:{server.server_address[1]}"
        model = small_model()
        x, y = data()
        form = keras.callbacks.RemoteMonitor(root=root)
        as_json = keras.callbacks.RemoteMonitor(root=root, path="/json/", send_as_json=True)
        model.fit(x, y, epochs=2, verbose=0, callbacks=[form, as_json])
    finally:
        server.shutdown()
    forms = [r for r in _Collect.received if r[0] == "/publish/epoch/end/"]
    bodies = [r for r in _Collect.received if r[0] == "/json/"]
    assert len(forms) == 2 and len(bodies) == 2
    sent = json.loads(urllib.parse.parse_qs(forms[1][2].decode())["data"][0])
    assert sent["epoch"] == 1 and set(sent) == {"epoch", "loss", "accuracy"}
    assert json.loads(bodies[0][2])["epoch"] == 0


def test_remote_monitor_unreachable_is_a_warning():
    model = small_model()
    x, y = data()
    monitor = keras.callbacks.RemoteMonitor(root="http://127.0.0.1:9", timeout=2)
    with pytest.warns(UserWarning, match="Could not reach RemoteMonitor"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
    with pytest.raises(ValueError, match="http"):
        keras.callbacks.RemoteMonitor(root="ftp://example")
