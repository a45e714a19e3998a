"""Whole fits against real Keras 3 (torch backend, in a subprocess): same initial weights,
same data, no shuffling -> the same losses and the same trained weights."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from polykeras import optimizers
from polykeras.layers import Dense, Input
from polykeras.models import Model
from helpers import keras3_available

RNG = np.random.default_rng(5)
X = RNG.normal(size=(48, 6)).astype("float32")
Y_CLASS = np.eye(3, dtype="float32")[RNG.integers(0, 3, 48)]
Y_BIN = RNG.integers(0, 2, size=(48, 1)).astype("float32")
Y_REG = RNG.normal(size=(48, 2)).astype("float32")
W = {
    "k1": RNG.normal(scale=0.5, size=(6, 8)).astype("float32"),
    "b1": RNG.normal(scale=0.1, size=(8,)).astype("float32"),
    "k2": RNG.normal(scale=0.5, size=(8, 3)).astype("float32"),
    "b2": RNG.normal(scale=0.1, size=(3,)).astype("float32"),
    "k3": RNG.normal(scale=0.5, size=(8, 1)).astype("float32"),
    "b3": np.zeros((1,), "float32"),
    "k4": RNG.normal(scale=0.5, size=(8, 2)).astype("float32"),
    "b4": np.zeros((2,), "float32"),
}

KERAS_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    d = dict(np.load(sys.argv[1]))
    out = {}

    # 1. the guide's MLP shape: rmsprop, categorical crossentropy
    inputs = keras.Input(shape=(6,))
    h = keras.layers.Dense(8, activation="relu")(inputs)
    p = keras.layers.Dense(3, activation="softmax")(h)
    m = keras.Model(inputs, p)
    m.set_weights([d["k1"], d["b1"], d["k2"], d["b2"]])
    m.compile(optimizer=keras.optimizers.RMSprop(), loss="categorical_crossentropy")
    hist = m.fit(d["x"], d["y_class"], batch_size=16, epochs=2, shuffle=False, verbose=0)
    out["mlp_loss"] = np.array(hist.history["loss"])
    for i, w in enumerate(m.get_weights()):
        out[f"mlp_w{i}"] = w

    # 2. two outputs, loss weights, adam with momentum-free defaults, sample weights
    inputs = keras.Input(shape=(6,))
    h = keras.layers.Dense(8, activation="tanh")(inputs)
    a = keras.layers.Dense(1, activation="sigmoid", name="a")(h)
    b = keras.layers.Dense(2, name="b")(h)
    m = keras.Model(inputs, [a, b])
    m.set_weights([d["k1"], d["b1"], d["k3"], d["b3"], d["k4"], d["b4"]])
    m.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
              loss=["binary_crossentropy", "mse"], loss_weights=[1.0, 0.2])
    hist = m.fit(d["x"], [d["y_bin"], d["y_reg"]], batch_size=10, epochs=2, shuffle=False,
                 verbose=0)
    out["multi_loss"] = np.array(hist.history["loss"])
    for i, w in enumerate(m.get_weights()):
        out[f"multi_w{i}"] = w
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def keras3_fits(tmp_path_factory):
    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed: no reference to compare with")
    folder = tmp_path_factory.mktemp("keras3_fit")
    np.savez(folder / "in.npz", x=X, y_class=Y_CLASS, y_bin=Y_BIN, y_reg=Y_REG, **W)
    script = folder / "ref.py"
    script.write_text(KERAS_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(folder / "in.npz"), str(folder / "out.npz")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.returncode != 0:
        pytest.skip(f"Keras 3 reference run failed: {proc.stderr[-500:]}")
    return dict(np.load(folder / "out.npz"))


def test_mlp_fit_matches_keras3(keras3_fits):
    inputs = Input(shape=(6,))
    h = Dense(8, activation="relu")(inputs)
    model = Model(inputs, Dense(3, activation="softmax")(h))
    model.set_weights([W["k1"], W["b1"], W["k2"], W["b2"]])
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    history = model.fit(X, Y_CLASS, batch_size=16, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], keras3_fits["mlp_loss"], rtol=1e-5)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, keras3_fits[f"mlp_w{i}"], rtol=1e-4, atol=1e-6)


def test_multi_output_fit_matches_keras3(keras3_fits):
    inputs = Input(shape=(6,))
    h = Dense(8, activation="tanh")(inputs)
    a = Dense(1, activation="sigmoid", name="a")(h)
    b = Dense(2, name="b")(h)
    model = Model(inputs, [a, b])
    model.set_weights([W["k1"], W["b1"], W["k3"], W["b3"], W["k4"], W["b4"]])
    model.compile(
        optimizer=optimizers.Adam(learning_rate=0.01),
        loss=["binary_crossentropy", "mse"],
        loss_weights=[1.0, 0.2],
    )
    history = model.fit(X, [Y_BIN, Y_REG], batch_size=10, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], keras3_fits["multi_loss"], rtol=1e-5)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, keras3_fits[f"multi_w{i}"], rtol=1e-4, atol=1e-6)
