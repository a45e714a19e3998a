"""get_custom_objects, custom_object_scope and register_keras_serializable: custom classes
found by name when a model is loaded, in every format."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import polykeras as keras
from polykeras import saving
from polykeras.saving.custom_objects import _GLOBAL


class Scale(keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@pytest.fixture
def clean_registry():
    saved = dict(_GLOBAL)
    yield
    _GLOBAL.clear()
    _GLOBAL.update(saved)


def model_with(layer_cls):
    inp = keras.Input(shape=(3,))
    return keras.Model(inp, layer_cls(factor=3.0, name="scale")(keras.layers.Dense(2)(inp)))


def test_scope_makes_the_class_known_inside_only():
    model = model_with(Scale)
    text = model.to_json()
    with pytest.raises(saving.UnknownLayerError, match="custom_objects"):
        keras.models.model_from_json(text)
    with keras.utils.custom_object_scope({"Scale": Scale}):
        loaded = keras.models.model_from_json(text)
        with keras.utils.custom_object_scope({"Other": Scale}):  # nested scopes add up
            keras.models.model_from_json(text)
    assert loaded.get_layer("scale").factor == 3.0
    with pytest.raises(saving.UnknownLayerError):
        keras.models.model_from_json(text)


def test_scope_is_per_thread():
    text = model_with(Scale).to_json()
    seen = []

    def other_thread():
        try:
            keras.models.model_from_json(text)
            seen.append("loaded")
        except saving.UnknownLayerError:
            seen.append("unknown")

    with keras.utils.custom_object_scope({"Scale": Scale}):
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert seen == ["unknown"]


def test_global_dictionary(clean_registry, tmp_path):
    model = model_with(Scale)
    path = tmp_path / "m.h5"
    model.save(path)
    keras.utils.get_custom_objects()["Scale"] = Scale
    loaded = keras.models.load_model(path)
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_registered_class_round_trips_in_every_format(clean_registry, tmp_path):
    @keras.utils.register_keras_serializable(package="Mine")
    class Shift(Scale):
        def call(self, inputs):
            return inputs + self.factor

    assert keras.utils.get_custom_objects()["Mine>Shift"] is Shift
    assert keras.saving.get_registered_name(Shift) == "Mine>Shift"
    model = model_with(Shift)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    want = model.predict(x, verbose=0)
    assert '"class_name": "Mine>Shift"' in model.to_json()  # Keras 2's spelling
    for name in ("m.h5", "m.keras"):
        model.save(tmp_path / name)
        loaded = keras.models.load_model(tmp_path / name)
        assert type(loaded.get_layer("scale")) is Shift
        np.testing.assert_allclose(loaded.predict(x, verbose=0), want)
    # a config naming the class alone (as Keras 3 writes it) finds the registered class
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "Mine>Shift":
            layer["class_name"] = "Shift"
    assert type(keras.Model.from_config(config).get_layer("scale")) is Shift


def test_registration_errors(clean_registry):
    keras.utils.register_keras_serializable("Pkg")(Scale)
    keras.utils.register_keras_serializable("Pkg")(Scale)  # the same class again is fine

    class Scale2(Scale):
        pass

    with pytest.raises(ValueError, match="already been registered"):
        keras.utils.register_keras_serializable("Pkg", name="Scale")(Scale2)
    with pytest.raises(ValueError, match="without '>'"):
        keras.utils.register_keras_serializable("a>b")
    with pytest.raises(TypeError, match="dict"):
        keras.utils.custom_object_scope(["Scale"])
    # a registered function is not a layer class: named as such when a config asks for it
    keras.utils.get_custom_objects()["NotALayer"] = len
    config = model_with(Scale).get_config()
    config["layers"][-1]["class_name"] = "NotALayer"
    with pytest.raises(saving.SavingError, match="must be a Layer subclass"):
        keras.Model.from_config(config)
