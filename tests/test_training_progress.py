"""Progress output in Keras 2's format: bar on a terminal, final lines in logs, verbose 2."""

from __future__ import annotations

import io
import re
import sys

import numpy as np

from polykeras import optimizers
from polykeras.layers import Dense, Input
from polykeras.models import Model
from polykeras.training.progress import Progbar, format_value

RNG = np.random.default_rng(0)
X = RNG.normal(size=(100, 5)).astype("float32")
Y = (X[:, :1] > 0).astype("float32")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def model(metrics=("acc",)):
    inputs = Input(shape=(5,))
    m = Model(inputs, Dense(1, activation="sigmoid")(inputs))
    m.compile(optimizers.SGD(lr=0.1), "binary_crossentropy", metrics=list(metrics))
    return m


FINAL = re.compile(
    r"^100/100 \[={30}\] - \d+s \d+(us|ms|s)/step - loss: \d\.\d{4} - "
    r"acc: \d\.\d{4}$"
)


def test_progbar_bar_string():
    out = Terminal()
    bar = Progbar(100, stream=out, interval=0)
    bar.update(32, [("loss", 0.6931), ("acc", 0.5)])
    text = out.getvalue()
    assert text.startswith(
        "\r 32/100 [========>.....................] - ETA: 0s - loss: 0.6931 - acc: 0.5000"
    )
    bar.update(100, [("loss", 0.5), ("acc", 1.0)])
    last = out.getvalue().split("\r")[-1]
    assert last.endswith("\n")
    assert re.match(
        r"^100/100 \[={30}\] - \d+s \d+(us|ms|s)/step - loss: 0\.5618 - "
        r"acc: 0\.8400",
        last,
    )  # averaged over the samples seen


def test_format_value_like_keras():
    assert format_value(0.69314718) == "0.6931"
    assert format_value(0.00012) == "1.2000e-04"


def test_fit_not_a_terminal_prints_only_epoch_lines(capsys):
    model().fit(X, Y, epochs=2, batch_size=32, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert FINAL.match(lines[1]) and FINAL.match(lines[3]), lines
    assert "\r" not in "".join(lines)


def test_fit_on_a_terminal_redraws_in_place(monkeypatch):
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    model().fit(X, Y, epochs=1, batch_size=10, verbose=1)
    text = out.getvalue()
    assert text.startswith("Epoch 1/1\n\r")
    assert "ETA:" in text
    final = text.split("\r")[-1]
    assert FINAL.match(final.rstrip("\n").rstrip())


def test_fit_verbose_2_one_line_per_epoch_with_validation(capsys):
    model().fit(X, Y, epochs=2, verbose=2, validation_split=0.2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Train on 80 samples, validate on 20 samples"
    assert lines[1] == "Epoch 1/2"
    pattern = re.compile(
        r"^ - \d+s - loss: \d\.\d{4} - acc: \d\.\d{4} - val_loss: \d\.\d{4} - "
        r"val_acc: \d\.\d{4}$"
    )
    assert pattern.match(lines[2]) and pattern.match(lines[4]), lines
    assert len(lines) == 5


def test_final_line_shows_epoch_averages(capsys):
    m = model()
    history = m.fit(X, Y, epochs=1, batch_size=32, verbose=1)
    line = capsys.readouterr().out.splitlines()[1]
    assert f"loss: {format_value(history.history['loss'][0])}" in line
    assert f"acc: {format_value(history.history['acc'][0])}" in line


def test_verbose_0_is_silent_and_evaluate_prints_a_bar(capsys):
    m = model()
    m.fit(X, Y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    m.evaluate(X, Y, verbose=0)
    assert capsys.readouterr().out == ""
    m.evaluate(X, Y)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and re.match(r"^100/100 \[={30}\] - \d+s \d+(us|ms|s)/step$", out[0])
