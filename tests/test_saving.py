"""Round trips of the guide's models through config, JSON, YAML, HDF5 weights and whole-model
files, on one backend and across backends; custom layers; compile settings."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

import polykeras as keras
from polykeras import plugins
from polykeras.layers import LSTM, Dense, Input, concatenate
from polykeras.models import (
    Model,
    Sequential,
    clone_model,
    load_model,
    model_from_config,
    model_from_json,
    model_from_yaml,
)
from polykeras.saving import SavingError, UnknownLayerError

FIXTURES = Path(__file__).parent / "fixtures"


def _load_guide_models():
    spec = importlib.util.spec_from_file_location("saving_models", FIXTURES / "saving_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sm = _load_guide_models()


def _predict(model, name):
    return sm.as_list(model.predict(sm.inputs(name)))


def _assert_same(a, b, exact=True):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if exact:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sm.NAMES)
def test_every_guide_model_round_trips_with_identical_predictions(name, tmp_path):
    keras.utils.set_random_seed(7)
    model = sm.build(name, keras)
    sm.perturb(model)
    expected = _predict(model, name)
    config = model.get_config()
    cls = Sequential if isinstance(model, Sequential) else Model

    from_config = cls.from_config(config)
    from_config.set_weights(model.get_weights())
    from_json = model_from_json(model.to_json())
    from_yaml = model_from_yaml(model.to_yaml())
    weights = tmp_path / "weights.h5"
    model.save_weights(weights)
    from_json.load_weights(weights)
    from_yaml.load_weights(str(weights))
    whole = tmp_path / "model.h5"
    model.save(whole)
    loaded = load_model(whole)

    for other in (from_config, from_json, from_yaml, loaded):
        assert type(other) is type(model)
        assert other.get_config() == config
        assert [lay.name for lay in other.layers] == [lay.name for lay in model.layers]
        _assert_same(_predict(other, name), expected)
        _assert_same(other.get_weights(), model.get_weights())


def test_json_is_keras2_format():
    inputs = Input(shape=(784,))
    x = Dense(64, activation="relu")(inputs)
    x = Dense(64, activation="relu")(x)
    predictions = Dense(10, activation="softmax")(x)
    model = Model(inputs=inputs, outputs=predictions)
    doc = json.loads(model.to_json())
    assert doc["class_name"] == "Model"
    assert doc["keras_version"].startswith("2.")
    assert doc["backend"] == keras.backend.backend()
    cfg = doc["config"]
    assert cfg["name"] == "model_1"
    assert [lay["name"] for lay in cfg["layers"]] == ["input_1", "dense_1", "dense_2", "dense_3"]
    assert cfg["layers"][0] == {
        "name": "input_1",
        "class_name": "InputLayer",
        "inbound_nodes": [],
        "config": {
            "batch_input_shape": [None, 784],
            "dtype": "float32",
            "sparse": False,
            "name": "input_1",
        },
    }
    assert cfg["layers"][1]["inbound_nodes"] == [[["input_1", 0, 0, {}]]]
    assert cfg["layers"][3]["config"]["units"] == 10
    assert cfg["input_layers"] == [["input_1", 0, 0]]
    assert cfg["output_layers"] == [["dense_3", 0, 0]]
    assert json.loads(model.to_json(indent=2)) == doc
    assert yaml.safe_load(model.to_yaml()) == doc


def test_node_indices_count_only_the_models_own_nodes():
    shared = Dense(3, name="shared")
    a = Input(shape=(4,))
    first = Model(a, shared(a))  # node 0 of `shared` belongs to `first` only
    b = Input(shape=(4,))
    out = Dense(2, name="head")(shared(b))  # node 1 of `shared`
    second = Model(b, out)
    layers = {lay["name"]: lay for lay in second.get_config()["layers"]}
    assert layers["shared"]["inbound_nodes"] == [[[second.input_names[0], 0, 0, {}]]]
    assert layers["head"]["inbound_nodes"] == [[["shared", 0, 0, {}]]]
    rebuilt = Model.from_config(second.get_config())
    rebuilt.set_weights(second.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    np.testing.assert_array_equal(rebuilt.predict(x), second.predict(x))
    assert len(first.layers) == 2


def test_nested_model_calls_count_from_one_as_in_keras2():
    model = sm.build("shared_vision", keras)
    layers = {lay["class_name"]: lay for lay in model.get_config()["layers"]}
    vision = layers["Model"]
    concat = layers["Concatenate"]
    assert [node[0][1] for node in vision["inbound_nodes"]] == [0, 0]
    assert [ref[1] for ref in concat["inbound_nodes"][0]] == [1, 2]
    loaded = model_from_json(model.to_json())
    nested = loaded.get_layer(vision["name"])
    assert len(nested._inbound_nodes) == 3  # its own, then the two calls


def test_shared_layer_keeps_its_nodes_and_order():
    tweet_a = Input(shape=(4, 3))
    tweet_b = Input(shape=(4, 3))
    lstm = LSTM(5)
    encoded_a = lstm(tweet_a)
    encoded_b = lstm(tweet_b)
    model = Model([tweet_a, tweet_b], Dense(1)(concatenate([encoded_a, encoded_b])))
    loaded = model_from_json(model.to_json())
    shared = loaded.get_layer(lstm.name)
    assert len(shared._inbound_nodes) == 2
    assert shared.get_input_at(0) is loaded.inputs[0]
    assert shared.get_input_at(1) is loaded.inputs[1]


def test_layer_shared_at_different_depths_is_rebuilt():
    # a layer whose second call depends on a layer listed after it: A(B(A(x)))
    a, b = Dense(4, name="a"), Dense(4, name="b")
    inp = Input(shape=(4,))
    model = Model(inp, a(b(a(inp))))
    cfg = model.get_config()
    cfg["layers"] = list(reversed(cfg["layers"]))  # any order must work
    rebuilt = Model.from_config(cfg)
    rebuilt.set_weights(model.get_weights())
    x = np.ones((2, 4), dtype="float32")
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))


def test_multi_output_model_keeps_output_order_and_names():
    model = sm.build("multi_io", keras)
    loaded = model_from_json(model.to_json())
    assert loaded.output_names == model.output_names == ["main_output", "aux_output"]
    assert loaded.input_names == ["main_input", "aux_input"]
    assert loaded.inputs[0].dtype == "int32"


def test_sequential_config_forms():
    model = Sequential([Dense(4, input_shape=(3,), activation="relu"), Dense(2)])
    cfg = model.get_config()
    assert cfg["name"] == model.name
    assert [lay["class_name"] for lay in cfg["layers"]] == ["InputLayer", "Dense", "Dense"]
    x = np.ones((2, 3), dtype="float32")
    for form in (cfg, cfg["layers"], cfg["layers"][1:]):  # Keras 2.2, Keras 1/2.0 list
        again = Sequential.from_config(form)
        again.set_weights(model.get_weights())
        np.testing.assert_array_equal(again.predict(x), model.predict(x))
        assert [lay.name for lay in again.layers] == [lay.name for lay in model.layers]
        assert again.layers[0].output.shape == (None, 4)  # one node per layer


def test_unbuilt_sequential_round_trips_and_builds_on_data():
    model = Sequential([Dense(4), Dense(2)])
    again = Sequential.from_config(model.get_config())
    assert [lay.name for lay in again.layers] == [lay.name for lay in model.layers]
    assert again.predict(np.ones((2, 5), dtype="float32")).shape == (2, 2)


def test_model_from_config_and_clone_model():
    model = sm.build("residual", keras)
    doc = json.loads(model.to_json())
    again = model_from_config({"class_name": doc["class_name"], "config": doc["config"]})
    assert again.get_config() == model.get_config()
    clone = clone_model(model)
    assert clone.get_config() == model.get_config()
    assert clone.weights[0] is not model.weights[0]
    with pytest.raises(SavingError, match="must describe a model"):
        model_from_config([doc])


def test_trainable_flags_survive():
    inp = Input(shape=(3,))
    frozen = Dense(2, name="frozen", trainable=False)
    model = Model(inp, Dense(1)(frozen(inp)))
    loaded = model_from_json(model.to_json())
    assert loaded.get_layer("frozen").trainable is False
    assert len(loaded.trainable_weights) == 2


class Scale(keras.layers.Layer):
    """A custom layer for the tests: multiplies by a factor."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return keras.ops.multiply(inputs, self.factor)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _scaled_model():
    inp = Input(shape=(2,))
    return Model(inp, Dense(2)(Scale(3.0, name="scale")(inp)))


def test_custom_layer_needs_custom_objects(tmp_path):
    model = _scaled_model()
    with pytest.raises(UnknownLayerError) as err:
        model_from_json(model.to_json())
    message = str(err.value)
    assert "'Scale'" in message and "custom_objects" in message
    assert "polykeras_register_layers" in message
    x = np.ones((1, 2), dtype="float32")
    again = model_from_json(model.to_json(), custom_objects={"Scale": Scale})
    assert again.get_layer("scale").factor == 3.0
    path = tmp_path / "m.h5"
    model.save(path)
    loaded = load_model(path, custom_objects={"Scale": Scale})
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    yaml_again = model_from_yaml(model.to_yaml(), custom_objects={"Scale": Scale})
    assert isinstance(yaml_again.get_layer("scale"), Scale)


class _LayerPlugin:
    @plugins.hookimpl
    def polykeras_register_layers(self, register):
        register(Scale)


def test_custom_layer_registered_by_plugin(tmp_path):
    model = _scaled_model()
    plugins.register_plugin(_LayerPlugin(), name="test-scale-layers")
    try:
        again = model_from_json(model.to_json())
        assert isinstance(again.get_layer("scale"), Scale)
        path = tmp_path / "m.h5"
        model.save(path)
        assert isinstance(load_model(path).get_layer("scale"), Scale)
    finally:
        plugins.unregister_plugin("test-scale-layers")
    with pytest.raises(UnknownLayerError):
        model_from_json(model.to_json())


def test_custom_objects_must_be_layer_classes():
    model = _scaled_model()
    with pytest.raises(SavingError, match="must be a Layer subclass"):
        model_from_json(model.to_json(), custom_objects={"Scale": print})


def test_compiled_model_restores_its_compile_settings(tmp_path):
    model = sm.build("mlp", keras)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    path = tmp_path / "m.h5"
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model(path)
    assert type(loaded.optimizer).__name__ == "Adam"
    assert loaded.optimizer.get_config()["learning_rate"] == pytest.approx(0.01)
    assert loaded.loss == "categorical_crossentropy"
    x = sm.inputs("mlp", n=8)[0]
    y = np.eye(4, dtype="float32")[np.arange(8) % 4]
    loaded.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert getattr(load_model(path, compile=False), "_compiled", None) is None
    model.save(path, include_optimizer=False)
    assert getattr(load_model(path), "_compiled", None) is None


def test_load_weights_by_name_and_skip_mismatch(tmp_path):
    inp = Input(shape=(4,))
    source = Model(inp, Dense(2, name="out")(Dense(3, name="hidden")(inp)))
    path = tmp_path / "w.h5"
    source.save_weights(path)

    inp2 = Input(shape=(4,))
    other = Model(inp2, Dense(5, name="out")(Dense(3, name="hidden")(Dense(4, name="new")(inp2))))
    before = other.get_weights()
    with pytest.raises(ValueError, match="out"):
        other.load_weights(path, by_name=True)
    for old, new in zip(before, other.get_weights()):
        np.testing.assert_array_equal(old, new)
    with pytest.warns(UserWarning, match="Skipping loading of weights"):
        other.load_weights(path, by_name=True, skip_mismatch=True)
    np.testing.assert_array_equal(
        other.get_layer("hidden").get_weights()[0], source.get_layer("hidden").get_weights()[0]
    )
    np.testing.assert_array_equal(other.get_layer("out").get_weights()[0], before[4])


def test_load_weights_reads_a_whole_model_file(tmp_path):
    model = sm.build("inception", keras)
    path = tmp_path / "m.h5"
    model.save(path)
    keras.utils.set_random_seed(99)
    fresh = sm.build("inception", keras)
    fresh.load_weights(path)
    _assert_same(_predict(fresh, "inception"), _predict(model, "inception"))


def test_save_and_load_accept_path_objects_and_strings(tmp_path):
    model = sm.build("residual", keras)
    model.save(str(tmp_path / "a.h5"))
    model.save_weights(tmp_path / "b.h5")
    load_model(tmp_path / "a.h5")
    model.load_weights(str(tmp_path / "b.h5"))


# -- across backends -----------------------------------------------------------------------------
def _torch_or_skip():
    try:
        keras.backend.load("torch")
    except keras.BackendError as exc:
        pytest.skip(f"the torch backend is not usable here: {exc}".splitlines()[0])


@pytest.mark.parametrize("name", ["mlp", "multi_io", "shared_vision", "time_distributed", "zoo"])
def test_file_saved_on_numpy_loads_on_torch_and_back(name, tmp_path):
    _torch_or_skip()
    with keras.use_backend("numpy"):
        model = sm.build(name, keras)
        expected = _predict(model, name)
        model.save(tmp_path / "numpy.h5")
    with keras.use_backend("torch"):
        on_torch = load_model(tmp_path / "numpy.h5")
        _assert_same(_predict(on_torch, name), expected, exact=False)
        on_torch.save(tmp_path / "torch.h5")
        on_torch.save_weights(tmp_path / "torch.w.h5")
    with keras.use_backend("numpy"):
        back = load_model(tmp_path / "torch.h5")
        _assert_same(_predict(back, name), expected, exact=False)
        fresh = model_from_json(model.to_json())
        fresh.load_weights(tmp_path / "torch.w.h5")
        _assert_same(fresh.get_weights(), model.get_weights())


def test_long_configs_load_in_linear_time():
    import time

    n = 1500
    seq = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 2], "name": "in"}}]
    seq += [{"class_name": "Dense", "config": {"units": 2, "name": f"d{i}"}} for i in range(n)]
    entries = [
        {
            "name": "in",
            "class_name": "InputLayer",
            "inbound_nodes": [],
            "config": {"batch_input_shape": [None, 2], "name": "in"},
        }
    ]
    entries += [
        {
            "name": f"d{i}",
            "class_name": "Dense",
            "config": {"units": 2, "name": f"d{i}"},
            "inbound_nodes": [[["in" if i == 0 else f"d{i - 1}", 0, 0, {}]]],
        }
        for i in range(n)
    ]
    functional = {
        "name": "m",
        "layers": entries[::-1],  # worst order for a naive loader
        "input_layers": [["in", 0, 0]],
        "output_layers": [[f"d{n - 1}", 0, 0]],
    }
    start = time.process_time()  # CPU time of this test: other processes do not count
    model = model_from_config({"class_name": "Sequential", "config": {"name": "s", "layers": seq}})
    assert len(model.layers) == n
    assert len(Model.from_config(functional).layers) == n + 1
    assert time.process_time() - start < 20
