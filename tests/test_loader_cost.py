"""A small config cannot ask for a huge cost (issue 20): initializers are charged against
a budget when a model is built from a config alone, never run when the file holds the
weights, and JSON/YAML texts of millions of tiny values are refused before parsing."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import polykeras as keras
from polykeras import initializers
from polykeras.saving import LimitExceededError, formats, limits


def sequential_json(layer_config: dict, input_shape: list) -> str:
    layer_config = dict(layer_config)
    layer_config["config"] = {**layer_config["config"], "batch_input_shape": input_shape}
    return json.dumps(
        {"class_name": "Sequential", "config": {"name": "s", "layers": [layer_config]}}
    )


def test_orthogonal_lstm_4096_from_a_tiny_json_is_refused_before_the_qr():
    text = sequential_json(
        {"class_name": "LSTM", "config": {"name": "big", "units": 4096}}, [None, 3, 8]
    )
    assert len(text) < 400
    start = time.process_time()  # CPU time of this test: other processes do not count
    with pytest.raises(LimitExceededError, match="MAX_INIT_FLOPS"):
        keras.models.model_from_json(text)
    assert time.process_time() - start < 5  # refused before the cubic QR (60 s and more)


def test_a_config_asking_for_12_gigabytes_of_draws_is_refused():
    text = sequential_json(
        {"class_name": "Dense", "config": {"name": "wide", "units": 32767}}, [None, 32768]
    )
    with pytest.raises(LimitExceededError, match="MAX_INIT_BYTES"):
        keras.models.model_from_json(text)


def test_the_budget_is_a_setting(monkeypatch):
    text = sequential_json(
        {"class_name": "LSTM", "config": {"name": "l", "units": 64}}, [None, 3, 8]
    )
    keras.models.model_from_json(text)  # well within the default budget
    monkeypatch.setattr(limits, "MAX_INIT_FLOPS", 1000)
    with pytest.raises(LimitExceededError, match="MAX_INIT_FLOPS"):
        keras.models.model_from_json(text)
    # code that builds models is never charged: only loads are
    keras.Sequential([keras.layers.LSTM(64, input_shape=(3, 8))])


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_load_model_never_runs_the_initializers(tmp_path, monkeypatch, suffix):
    model = keras.Sequential(
        [keras.layers.LSTM(16, input_shape=(3, 8)), keras.layers.Dense(2, activation="softmax")]
    )
    path = tmp_path / f"m{suffix}"
    model.save(path)

    def refuse(self, shape, dtype="float32"):
        raise AssertionError("an initializer ran while the file held the weights")

    for cls in (initializers.Orthogonal, initializers.GlorotUniform, initializers.Zeros):
        monkeypatch.setattr(cls, "__call__", refuse)
    loaded = keras.models.load_model(path)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_json_of_millions_of_tiny_values_is_refused_before_parsing():
    text = "[" + ",".join(["{}"] * (2 * limits.MAX_ITEMS + 10)) + "]"
    start = time.process_time()
    with pytest.raises(LimitExceededError, match="MAX_ITEMS"):
        formats.loads_json(text)
    assert time.process_time() - start < 20  # one vectorised pass; json.loads took 70 s


def test_yaml_has_its_own_lower_item_cap(monkeypatch):
    monkeypatch.setattr(limits, "MAX_YAML_ITEMS", 1000)
    text = "\n".join(f"- {i}" for i in range(2000))
    with pytest.raises(LimitExceededError, match="MAX_YAML_ITEMS"):
        formats.loads_yaml(text)
    assert formats.loads_yaml("\n".join(f"- {i}" for i in range(500)))[-1] == 499
