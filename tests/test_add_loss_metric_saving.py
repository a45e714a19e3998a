"""A functional model's ``add_loss`` / ``add_metric`` on symbolic tensors survive saving:
written as tf.keras 2 writes them (``AddLoss`` / ``AddMetric`` layer entries whose one
inbound node is the tensor), read back from polykeras' files and from tf.keras 2-shaped
configs, in every format (config, JSON, YAML, .h5, .keras); a .keras file keeps them
beside the model's config, where real Keras 3 (which has no such layers) ignores them."""

from __future__ import annotations

import copy
import json
import textwrap

import numpy as np
import pytest

import polykeras as keras
from polykeras import backend as K
from polykeras import layers
from polykeras.saving.errors import SavingError
from helpers import backend_params, run_keras3_script

BACKENDS = backend_params()

RNG = np.random.default_rng(14)
X = RNG.normal(size=(32, 4)).astype("float32")
W_ENC = RNG.normal(size=(4, 3)).astype("float32") * 0.5
W_DEC = RNG.normal(size=(3, 4)).astype("float32") * 0.5


def _autoencoder():
    """An autoencoder trained only by its add_loss (reconstruction + a penalty on the code,
    as the Keras 2 VAE adds its KL term), with the code's mean magnitude as a metric."""
    inp = keras.Input((4,), name="x")
    code = layers.Dense(3, activation="tanh", name="enc")(inp)
    out = layers.Dense(4, name="dec")(code)
    model = keras.Model(inp, out, name="ae")
    model.add_loss(K.mean(K.sum(K.square(out - inp), axis=-1)) + 0.1 * K.mean(K.square(code)))
    model.add_metric(K.mean(K.abs(code)), name="code_abs", aggregation="mean")
    model.get_layer("enc").set_weights([W_ENC, np.zeros(3, "float32")])
    model.get_layer("dec").set_weights([W_DEC, np.zeros(4, "float32")])
    return model


def _train(model):
    model.compile(keras.optimizers.SGD(0.05))
    hist = model.fit(X, None, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    return hist, [np.asarray(w) for w in model.get_weights()]


def _reload(model, how, tmp_path):
    if how == "config":
        return keras.Model.from_config(copy.deepcopy(model.get_config()))
    if how == "json":
        return keras.models.model_from_json(model.to_json())
    if how == "yaml":
        return keras.models.model_from_yaml(model.to_yaml())
    path = tmp_path / f"m.{how}"
    model.save(str(path))
    return keras.models.load_model(str(path), compile=False)


def _entries(config, class_name):
    return [e for e in config["layers"] if e["class_name"] == class_name]


# -- what is written --------------------------------------------------------------------------
def test_config_holds_tf_keras_2_addloss_and_addmetric_entries():
    model = _autoencoder()
    config = model.get_config()
    (loss,) = _entries(config, "AddLoss")
    (metric,) = _entries(config, "AddMetric")
    assert loss["name"] == "add_loss"
    assert loss["config"] == {
        "name": "add_loss",
        "trainable": True,
        "dtype": "float32",
        "unconditional": False,
    }
    assert metric["config"] == {
        "name": "add_metric",
        "trainable": True,
        "dtype": "float32",
        "aggregation": "mean",
        "metric_name": "code_abs",
    }
    # one inbound node: the loss tensor, the output of the last op of the loss expression
    (node,) = loss["inbound_nodes"]
    assert len(node) == 1 and node[0][1:] == [0, 0, {}]
    names = [e["name"] for e in config["layers"]]
    assert node[0][0] in names and names.index(node[0][0]) < names.index("add_loss")
    # the AddLoss / AddMetric entries come last; outputs are unchanged
    assert names[-2:] == ["add_loss", "add_metric"]
    assert config["output_layers"] == [["dec", 0, 0]]
    json.dumps(config)  # plain data


def test_models_without_them_keep_the_same_config():
    inp = keras.Input((4,))
    out = layers.Dense(2, name="d")(layers.Dense(3, name="h")(inp) * 2.0)
    model = keras.Model(inp, out)
    config = model.get_config()
    assert not _entries(config, "AddLoss") and not _entries(config, "AddMetric")
    again = keras.Model.from_config(copy.deepcopy(config))
    assert again.get_config() == config
    assert not again.losses and not again.__dict__.get("_symbolic_metrics")


# -- round trips ------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["config", "json", "yaml", "h5", "keras"])
@pytest.mark.parametrize("name", BACKENDS)
def test_round_trip_keeps_the_loss_and_metric_and_trains_the_same(name, how, tmp_path):
    with keras.use_backend(name):
        original = _autoencoder()
        again = _reload(original, how, tmp_path)
        if how in ("config", "json", "yaml"):
            again.set_weights(original.get_weights())
        assert len(again.losses) == 1
        assert [n for _t, n in again._symbolic_metrics] == ["code_abs"]
        # the config written again is the one read
        assert again.get_config()["layers"][-2:] == original.get_config()["layers"][-2:]
        want_hist, want_w = _train(original)
        got_hist, got_w = _train(again)
        assert list(got_hist) == ["loss", "code_abs"] == list(want_hist)
        np.testing.assert_allclose(got_hist["loss"], want_hist["loss"], rtol=1e-5)
        np.testing.assert_allclose(got_hist["code_abs"], want_hist["code_abs"], rtol=1e-5)
        for g, w in zip(got_w, want_w):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        # and it did train: the loss went down, the weights moved
        assert want_hist["loss"][1] < want_hist["loss"][0]
        assert not np.allclose(want_w[0], W_ENC)


def test_a_reloaded_model_without_its_loss_would_not_train():
    """Guards the test above: a model with no add_loss cannot be compiled without a loss,
    so a round trip that dropped the loss fails there."""
    inp = keras.Input((4,))
    model = keras.Model(inp, layers.Dense(4)(inp))
    with pytest.raises(ValueError, match="compile needs a loss"):
        model.compile(keras.optimizers.SGD(0.05))


# -- tf.keras 2-shaped configs ----------------------------------------------------------------
def _tf_keras2_config():
    """What tf.keras 2 writes for ``Model(x, dense)`` given ``add_loss`` on a Multiply of the
    Dense output with itself and ``add_metric(dense, name='dense_out')``."""

    def dense(name, units, node):
        return {
            "class_name": "Dense",
            "config": {
                "name": name,
                "trainable": True,
                "dtype": "float32",
                "units": units,
                "activation": "linear",
                "use_bias": True,
                "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                "bias_initializer": {"class_name": "Zeros", "config": {}},
                "kernel_regularizer": None,
                "bias_regularizer": None,
                "activity_regularizer": None,
                "kernel_constraint": None,
                "bias_constraint": None,
            },
            "name": name,
            "inbound_nodes": [[[node, 0, 0, {}]]],
        }

    return {
        "name": "model",
        "layers": [
            {
                "class_name": "InputLayer",
                "config": {
                    "batch_input_shape": [None, 4],
                    "dtype": "float32",
                    "sparse": False,
                    "ragged": False,
                    "name": "input_1",
                },
                "name": "input_1",
                "inbound_nodes": [],
            },
            dense("dense", 2, "input_1"),
            {
                "class_name": "Multiply",
                "config": {"name": "multiply", "trainable": True, "dtype": "float32"},
                "name": "multiply",
                "inbound_nodes": [[["dense", 0, 0, {}], ["dense", 0, 0, {}]]],
            },
            {
                "class_name": "AddLoss",
                "config": {
                    "name": "add_loss",
                    "trainable": True,
                    "dtype": "float32",
                    "unconditional": False,
                },
                "name": "add_loss",
                "inbound_nodes": [[["multiply", 0, 0, {}]]],
            },
            {
                "class_name": "AddMetric",
                "config": {
                    "name": "add_metric",
                    "trainable": True,
                    "dtype": "float32",
                    "aggregation": "mean",
                    "metric_name": "dense_out",
                },
                "name": "add_metric",
                "inbound_nodes": [[["dense", 0, 0, {}]]],
            },
        ],
        "input_layers": [["input_1", 0, 0]],
        "output_layers": [["dense", 0, 0]],
    }


@pytest.mark.parametrize("name", BACKENDS)
def test_a_tf_keras_2_config_with_addloss_and_addmetric_loads(name, tmp_path):
    with keras.use_backend(name):
        text = json.dumps({"class_name": "Functional", "config": _tf_keras2_config()})
        loaded = keras.models.model_from_json(text)
        # the layer only the loss reads comes last, as tf.keras 2 inserts it
        assert [lay.name for lay in loaded.layers] == ["input_1", "dense", "multiply"]
        assert len(loaded.losses) == 1
        assert [n for _t, n in loaded._symbolic_metrics] == ["dense_out"]
        # the same model built directly trains the same from the same weights
        inp = keras.Input((4,))
        d = layers.Dense(2)(inp)
        direct = keras.Model(inp, d)
        direct.add_loss(layers.Multiply()([d, d]))
        direct.add_metric(d, name="dense_out", aggregation="mean")
        direct.set_weights(loaded.get_weights())
        want_hist, want_w = _train(direct)
        got_hist, got_w = _train(loaded)
        assert list(got_hist) == ["loss", "dense_out"]
        np.testing.assert_allclose(got_hist["loss"], want_hist["loss"], rtol=1e-5)
        np.testing.assert_allclose(got_hist["dense_out"], want_hist["dense_out"], rtol=1e-5)
        for g, w in zip(got_w, want_w):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        # written back in the same shape
        again = loaded.get_config()
        assert [e["class_name"] for e in again["layers"]][-3:] == [
            "Multiply",
            "AddLoss",
            "AddMetric",
        ]
        assert again["layers"][-2:] == _tf_keras2_config()["layers"][-2:]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"unconditional": True}, "unconditional=True"),
        ({"mystery": 1}, "mystery"),
    ],
)
def test_addloss_settings_we_do_not_implement_are_refused(change, message):
    config = _tf_keras2_config()
    config["layers"][3]["config"].update(change)
    with pytest.raises(SavingError, match=message):
        keras.Model.from_config(config)


def test_bad_addloss_and_addmetric_entries_are_refused():
    config = _tf_keras2_config()
    config["layers"][4]["config"]["metric_name"] = None
    with pytest.raises(SavingError, match="metric_name must be a non-empty string"):
        keras.Model.from_config(config)
    config = _tf_keras2_config()
    config["layers"][4]["config"]["aggregation"] = "sum"
    with pytest.raises(SavingError, match="add_metric"):
        keras.Model.from_config(config)
    config = _tf_keras2_config()
    config["layers"][3]["inbound_nodes"] = [[["dense", 0, 0, {}]], [["dense", 0, 0, {}]]]
    with pytest.raises(SavingError, match="exactly one inbound node"):
        keras.Model.from_config(config)
    config = _tf_keras2_config()
    config["layers"][3]["inbound_nodes"] = [[["nowhere", 0, 0, {}]]]
    with pytest.raises(SavingError, match="nowhere"):
        keras.Model.from_config(config)


# -- .keras files and real Keras 3 ------------------------------------------------------------
def test_keras_file_keeps_them_beside_the_models_config(tmp_path):
    import zipfile

    model = _autoencoder()
    model.save(str(tmp_path / "m.keras"))
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        config = json.loads(zf.read("config.json"))
    inner = config["config"]
    assert not _entries(inner, "AddLoss") and "polykeras_added_layers" not in inner
    added = config["polykeras_added_layers"]
    assert [a["class_name"] for a in added] == ["AddLoss", "AddMetric"]
    (node,) = added[0]["inbound_nodes"]
    assert node["args"][0]["class_name"] == "__keras_tensor__"


def test_nested_model_with_symbolic_loss_is_refused_in_a_keras_file(tmp_path):
    inner = _autoencoder()
    inp = keras.Input((4,))
    outer = keras.Model(inp, inner(inp))
    with pytest.raises(SavingError, match="nested model ae"):
        outer.save(str(tmp_path / "m.keras"))


KERAS3_LOAD = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    d = np.load(sys.argv[1])
    model = keras.saving.load_model(str(d["path"]), compile=False)
    names = " ".join(layer.name for layer in model.layers)
    np.savez(sys.argv[2], pred=np.asarray(model.predict(d["x"], verbose=0)),
             n_losses=len(model.losses), names=np.array(names))
    """
)


def test_real_keras3_loads_the_keras_file_without_them(tmp_path):
    # layers only (Keras 3 does not read polykeras' OpLayer entries): the loss reads a
    # Multiply layer no output depends on, which Keras 3 builds and leaves out of the model
    inp = keras.Input((4,), name="x")
    d = layers.Dense(4, name="d")(inp)
    model = keras.Model(inp, d)
    model.add_loss(layers.Multiply(name="square")([d, d]))
    model.add_metric(d, name="d_mean", aggregation="mean")
    path = tmp_path / "m.keras"
    model.save(str(path))
    out = run_keras3_script(tmp_path, KERAS3_LOAD, {"path": np.array(str(path)), "x": X[:5]})
    np.testing.assert_allclose(out["pred"], model.predict(X[:5], verbose=0), rtol=1e-5, atol=1e-6)
    assert int(out["n_losses"]) == 0  # Keras 3 has no symbolic add_loss: it is left out
    assert str(out["names"]).split() == ["x", "d"]
    again = keras.models.load_model(str(path), compile=False)  # polykeras keeps them
    assert len(again.losses) == 1 and [n for _t, n in again._symbolic_metrics] == ["d_mean"]


def test_what_cannot_be_saved_is_refused_by_name():
    # a Sequential config is a list of layers: no room for them (tf.keras 2 lost them)
    seq = keras.Sequential([keras.Input((4,)), layers.Dense(4, name="d")])
    seq.add_loss(K.mean(K.square(seq.output)))
    with pytest.raises(SavingError, match="Sequential model .* add_loss"):
        seq.get_config()


@pytest.mark.parametrize("how", ["json", "h5"])
def test_a_nested_models_loss_and_metric_survive_in_keras_2_formats(how, tmp_path):
    inner = _autoencoder()
    inp = keras.Input((4,))
    outer = keras.Model(inp, inner(inp))
    again = _reload(outer, how, tmp_path)
    if how == "json":
        again.set_weights(outer.get_weights())
    assert len(again.get_layer("ae")._symbolic_losses) == 1

    def train(model):
        model.compile(keras.optimizers.SGD(0.05), "mse")
        hist = model.fit(X, X, batch_size=8, epochs=2, shuffle=False, verbose=0).history
        return hist, model.get_weights()

    want_hist, want_w = train(outer)
    got_hist, got_w = train(again)
    assert list(got_hist) == ["loss", "code_abs"]
    np.testing.assert_allclose(got_hist["loss"], want_hist["loss"], rtol=1e-5)
    for g, w in zip(got_w, want_w):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
