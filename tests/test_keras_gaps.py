"""Known gaps between polykeras and what Keras programs meet (session 15, helper D): each
test fails without its fix and compares with real Keras 3 (torch) where it runs."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import Input, Model, Sequential, activations, layers, losses, metrics, ops
from polykeras import backend as _backend


def _np(x):
    return np.asarray(_backend.current().to_numpy(x))


def _ref(tmp_path, script, inputs):
    from helpers import run_keras3_script

    return run_keras3_script(tmp_path, textwrap.dedent(script), inputs)


# -- 1. get_weights()/set_weights() never share memory with live state ---------------------------
@pytest.mark.parametrize("opt", ["rmsprop", "adam", "sgd_momentum"])
def test_weights_given_and_taken_stay_the_callers(opt):
    polykeras.utils.set_random_seed(0)
    model = Sequential([layers.Dense(3, input_shape=(4,)), layers.Dense(2)])
    make = {
        "rmsprop": lambda: polykeras.optimizers.RMSprop(0.01),
        "adam": lambda: polykeras.optimizers.Adam(0.01),
        "sgd_momentum": lambda: polykeras.optimizers.SGD(0.01, momentum=0.9),
    }[opt]
    model.compile(make(), "mse")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.random.default_rng(1).normal(size=(16, 2)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    given = [w.copy() for w in model.get_weights()]
    model.set_weights(given)  # the caller's arrays are not taken as the weights
    taken = model.get_weights()
    layer_taken = model.layers[0].get_weights()
    opt_given = [np.array(w, copy=True) for w in model.optimizer.get_weights()]
    model.optimizer.set_weights(opt_given)
    opt_taken = model.optimizer.get_weights()
    kept = [[w.copy() for w in ws] for ws in (given, taken, layer_taken, opt_given, opt_taken)]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert not np.allclose(model.get_weights()[0], given[0])  # it did train
    for ws, was in zip((given, taken, layer_taken, opt_given, opt_taken), kept):
        for a, b in zip(ws, was):
            np.testing.assert_array_equal(a, b)


# -- 2. ops.gelu(x, approximate=...) -------------------------------------------------------------
GELU_X = np.concatenate([np.linspace(-6, 6, 49), [-0.5, 0.0, 0.5]]).astype("float32")

GELU_SCRIPT = """
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np, torch, keras
    x0 = np.load(sys.argv[1])["x"]
    out = {}
    for key, fn in {
        "ops_default": lambda v: keras.ops.gelu(v),
        "ops_tanh": lambda v: keras.ops.gelu(v, approximate=True),
        "ops_erf": lambda v: keras.ops.gelu(v, approximate=False),
        "act_default": lambda v: keras.activations.gelu(v),
        "act_tanh": lambda v: keras.activations.gelu(v, approximate=True),
    }.items():
        x = torch.tensor(x0, requires_grad=True)
        y = fn(x)
        (g,) = torch.autograd.grad((y * torch.linspace(0.5, 1.5, len(x0))).sum(), [x])
        out[key] = y.detach().numpy()
        out[key + "_grad"] = g.numpy()
    np.savez(sys.argv[2], **out)
"""

GELU_CASES = {
    "ops_default": lambda v: ops.gelu(v),
    "ops_tanh": lambda v: ops.gelu(v, approximate=True),
    "ops_erf": lambda v: ops.gelu(v, approximate=False),
    "act_default": lambda v: activations.gelu(v),
    "act_tanh": lambda v: activations.gelu(v, approximate=True),
}


@pytest.fixture(scope="module")
def keras3_gelu(tmp_path_factory):
    return _ref(tmp_path_factory.mktemp("gelu"), GELU_SCRIPT, {"x": GELU_X})


@pytest.mark.parametrize("key", sorted(GELU_CASES))
def test_gelu_values_and_gradients_match_keras3(keras3_gelu, key):
    from polykeras import autodiff

    B = _backend.current()
    fn = GELU_CASES[key]
    ramp = B.asarray(np.linspace(0.5, 1.5, len(GELU_X)).astype("float32"))
    _, _, grads = autodiff.value_and_grad(
        lambda v: (ops.sum(ops.multiply(fn(v[0]), ramp)), None), [B.asarray(GELU_X)]
    )
    np.testing.assert_allclose(_np(fn(B.asarray(GELU_X))), keras3_gelu[key], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(grads[0]), keras3_gelu[key + "_grad"], rtol=1e-4, atol=1e-5)


def test_gelu_forms_differ_and_approximate_is_checked():
    B = _backend.current()
    x = B.asarray(np.array([-1.5, 1.0], "float32"))
    tanh_form, erf_form = _np(ops.gelu(x)), _np(ops.gelu(x, approximate=False))
    assert np.abs(tanh_form - erf_form).max() > 1e-5  # the default is the tanh form
    with pytest.raises(TypeError, match="approximate"):
        ops.gelu(x, approximate="tanh")


def test_gelu_op_in_a_graph_saves_its_form(tmp_path):
    inp = Input((4,))
    model = Model(inp, [ops.gelu(inp), ops.gelu(inp, approximate=False)])
    x = np.linspace(-2, 2, 8).reshape(2, 4).astype("float32")
    want = [np.asarray(v) for v in model.predict(x, verbose=0)]
    model.save(tmp_path / "m.h5")
    again = polykeras.models.load_model(tmp_path / "m.h5")
    for a, b in zip(again.predict(x, verbose=0), want):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert np.abs(want[0] - want[1]).max() > 1e-5


# -- 3. a class's name gives an instance of the class --------------------------------------------
def test_get_by_class_name_gives_an_instance_and_by_function_name_the_function():
    loss = losses.get("CategoricalCrossentropy")
    assert isinstance(loss, losses.CategoricalCrossentropy)
    assert loss.get_config()["from_logits"] is False
    assert losses.get("categorical_crossentropy") is losses.categorical_crossentropy
    assert isinstance(losses.get("MeanSquaredError"), losses.MeanSquaredError)
    assert losses.get("mse") is losses.mean_squared_error
    assert losses.get("KLD") is losses.kullback_leibler_divergence  # an alias, as in Keras 3
    metric = metrics.get("CategoricalCrossentropy")
    assert isinstance(metric, metrics.CategoricalCrossentropy)
    assert metrics.get("categorical_crossentropy") is losses.categorical_crossentropy
    assert isinstance(metrics.get("AUC"), metrics.AUC)
    assert isinstance(metrics.get("MeanSquaredError"), metrics.MeanSquaredError)
    assert metrics.get("MeanSquaredError") is not metrics.get("MeanSquaredError")
    for get in (losses.get, metrics.get):
        with pytest.raises(ValueError, match="Unknown"):
            get("NoSuchThing")


CLASS_NAME_SCRIPT = """
    import os, sys, json
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np, keras
    d = np.load(sys.argv[1])
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.set_weights([d["k"], d["b"]])
    model.compile(
        keras.optimizers.SGD(0.1),
        loss="CategoricalCrossentropy",
        metrics=["CategoricalAccuracy", "MeanSquaredError", "categorical_crossentropy"],
    )
    h = model.fit(d["x"], d["y"], batch_size=4, epochs=2, shuffle=False, verbose=0)
    out = {"keys": np.array(json.dumps(sorted(h.history)))}
    out.update({"h_" + k: np.array(v) for k, v in h.history.items()})
    out["kernel"] = model.get_weights()[0]
    out["loss_class"] = np.array(type(keras.losses.get("CategoricalCrossentropy")).__name__)
    np.savez(sys.argv[2], **out)
"""


def _class_name_data():
    rng = np.random.default_rng(3)
    return {
        "k": rng.normal(size=(4, 3)).astype("float32") * 0.5,
        "b": np.zeros(3, "float32"),
        "x": rng.normal(size=(12, 4)).astype("float32"),
        "y": np.eye(3, dtype="float32")[rng.integers(0, 3, 12)],
    }


def _class_name_model(d):
    model = Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.set_weights([d["k"], d["b"]])
    model.compile(
        polykeras.optimizers.SGD(0.1),
        loss="CategoricalCrossentropy",
        metrics=["CategoricalAccuracy", "MeanSquaredError", "categorical_crossentropy"],
    )
    return model


def test_compile_with_class_names_matches_keras3(tmp_path):
    d = _class_name_data()
    ref = _ref(tmp_path, CLASS_NAME_SCRIPT, d)
    assert str(ref["loss_class"]) == "CategoricalCrossentropy"
    model = _class_name_model(d)
    h = model.fit(d["x"], d["y"], batch_size=4, epochs=2, shuffle=False, verbose=0)
    # a metric object named by its class's name logs under the object's own name, as in
    # tf.keras 2 (Keras 3 logs it under the string given: "CategoricalAccuracy")
    keras3_key = {"categorical_accuracy": "CategoricalAccuracy"}
    keras3_key["mean_squared_error"] = "MeanSquaredError"
    assert sorted(keras3_key.get(k, k) for k in h.history) == json.loads(str(ref["keys"]))
    for key, values in h.history.items():
        want = ref["h_" + keras3_key.get(key, key)]
        np.testing.assert_allclose(values, want, rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(model.get_weights()[0], ref["kernel"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", ["h5", "keras"])
def test_model_compiled_with_class_names_round_trips(tmp_path, fmt):
    d = _class_name_data()
    model = _class_name_model(d)
    model.fit(d["x"], d["y"], batch_size=4, epochs=1, shuffle=False, verbose=0)
    want = model.evaluate(d["x"], d["y"], verbose=0)
    path = tmp_path / f"m.{fmt}"
    model.save(path)
    again = polykeras.models.load_model(path)
    np.testing.assert_allclose(again.evaluate(d["x"], d["y"], verbose=0), want, rtol=1e-6)
    h = again.fit(d["x"], d["y"], batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert sorted(h.history) == sorted(
        ["loss", "categorical_accuracy", "mean_squared_error", "categorical_crossentropy"]
    )


# -- 4. loss objects with Keras 3's other reductions in compile ----------------------------------
REDUCTIONS = ["sum", "mean_with_sample_weight", "sum_over_batch_size", "mean"]

REDUCTION_SCRIPT = """
    import os, sys, json
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np, keras
    d = np.load(sys.argv[1])
    out = {}
    for red in json.loads(str(d["reductions"])):
        for weighted in (False, True):
            dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
            dense.set_weights([d["k"], d["b"]])
            dense.compile(keras.optimizers.SGD(0.05), keras.losses.MeanSquaredError(reduction=red))
            sw = d["sw"] if weighted else None
            h = dense.fit(d["x"], d["y"], sample_weight=sw, batch_size=4, epochs=2,
                          shuffle=False, verbose=0)
            key = f"dense_{red}_{weighted}"
            out[key + "_loss"] = np.array(h.history["loss"])
            out[key + "_kernel"] = dense.get_weights()[0]
            out[key + "_eval"] = np.array(dense.evaluate(d["x"], d["y"], sample_weight=sw,
                                                         batch_size=4, verbose=0))
        seq = keras.Sequential([
            keras.Input((5,), dtype="int32"),
            keras.layers.Embedding(6, 3, mask_zero=True),
            keras.layers.LSTM(2, return_sequences=True),
            keras.layers.Dense(1),
        ])
        seq.set_weights([d[f"s{i}"] for i in range(int(d["n_seq"]))])
        seq.compile(keras.optimizers.SGD(0.05), keras.losses.MeanSquaredError(reduction=red))
        h = seq.fit(d["ids"], d["t"], batch_size=3, epochs=2, shuffle=False, verbose=0)
        out[f"seq_{red}_loss"] = np.array(h.history["loss"])
        out[f"seq_{red}_kernel"] = seq.get_weights()[-2]
    np.savez(sys.argv[2], **out)
"""


def _seq_model():
    model = Sequential(
        [
            Input((5,), dtype="int32"),
            layers.Embedding(6, 3, mask_zero=True),
            layers.LSTM(2, return_sequences=True),
            layers.Dense(1),
        ]
    )
    return model


@pytest.fixture(scope="module")
def reduction_data():
    rng = np.random.default_rng(5)
    polykeras.utils.set_random_seed(0)
    seq = _seq_model()
    ids = rng.integers(1, 6, size=(6, 5))
    ids[:, 3:] = 0  # padded tails: masked
    ids[0, 1:] = 0
    d = {
        "k": rng.normal(size=(3, 2)).astype("float32"),
        "b": np.zeros(2, "float32"),
        "x": rng.normal(size=(8, 3)).astype("float32"),
        "y": rng.normal(size=(8, 2)).astype("float32"),
        "sw": rng.uniform(0.2, 2.0, size=8).astype("float32"),
        "ids": ids.astype("int32"),
        "t": rng.normal(size=(6, 5, 1)).astype("float32"),
        "n_seq": np.array(len(seq.get_weights())),
        "reductions": np.array(json.dumps(REDUCTIONS)),
    }
    d.update({f"s{i}": w for i, w in enumerate(seq.get_weights())})
    return d


@pytest.fixture(scope="module")
def keras3_reductions(tmp_path_factory, reduction_data):
    return _ref(tmp_path_factory.mktemp("reductions"), REDUCTION_SCRIPT, reduction_data)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_compiled_loss_reduction_matches_keras3(
    reduction_data, keras3_reductions, reduction, weighted
):
    d = reduction_data
    model = Sequential([layers.Dense(2, input_shape=(3,))])
    model.set_weights([d["k"], d["b"]])
    model.compile(polykeras.optimizers.SGD(0.05), losses.MeanSquaredError(reduction=reduction))
    sw = d["sw"] if weighted else None
    h = model.fit(
        d["x"], d["y"], sample_weight=sw, batch_size=4, epochs=2, shuffle=False, verbose=0
    )
    key = f"dense_{reduction}_{weighted}"
    np.testing.assert_allclose(h.history["loss"], keras3_reductions[key + "_loss"], rtol=1e-5)
    np.testing.assert_allclose(
        model.get_weights()[0], keras3_reductions[key + "_kernel"], rtol=1e-5, atol=1e-6
    )
    got = model.evaluate(d["x"], d["y"], sample_weight=sw, batch_size=4, verbose=0)
    np.testing.assert_allclose(got, keras3_reductions[key + "_eval"], rtol=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_compiled_loss_reduction_on_a_masked_output_matches_keras3(
    reduction_data, keras3_reductions, reduction
):
    d = reduction_data
    model = _seq_model()
    model.set_weights([d[f"s{i}"] for i in range(int(d["n_seq"]))])
    model.compile(polykeras.optimizers.SGD(0.05), losses.MeanSquaredError(reduction=reduction))
    h = model.fit(d["ids"], d["t"], batch_size=3, epochs=2, shuffle=False, verbose=0)
    want = keras3_reductions[f"seq_{reduction}_loss"]
    np.testing.assert_allclose(h.history["loss"], want, rtol=1e-5)
    np.testing.assert_allclose(
        model.get_weights()[-2], keras3_reductions[f"seq_{reduction}_kernel"], rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("reduction", [None, "none"])
def test_compile_refuses_a_loss_that_is_not_reduced(reduction):
    model = Sequential([layers.Dense(2, input_shape=(3,))])
    x = np.zeros((4, 3), "float32")
    with pytest.raises(ValueError, match="reduction='none'.*one number"):
        model.compile("sgd", losses.MeanSquaredError(reduction=reduction))
        model.fit(x, np.zeros((4, 2), "float32"), verbose=0)


def test_data_parallel_refuses_a_loss_reduced_other_than_by_the_mean(monkeypatch):
    from polykeras import distribute

    class TwoRanks:  # only what fit reads before it would start exchanging
        world_size = 2
        is_chief = True

    monkeypatch.setattr(distribute, "distribution", lambda: TwoRanks())
    model = Sequential([layers.Dense(2, input_shape=(3,))])
    model.compile("sgd", losses.MeanSquaredError(reduction="sum"))
    with pytest.raises(ValueError, match="reduction='sum' cannot train data-parallel"):
        model.fit(np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32"), verbose=0)


# -- 6. a Keras 3 .keras file whose graph holds ops (NotEqual, Cast, Sum...) ---------------------
OPS_FILE_SCRIPT = """
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np, keras
    d = np.load(sys.argv[1])
    folder = os.path.dirname(sys.argv[2])
    keras.utils.set_random_seed(0)
    inp = keras.Input((5,), dtype="int32")
    e = keras.layers.Embedding(7, 3)(inp)
    keep = keras.ops.cast(keras.ops.not_equal(inp, 0), "float32")
    h = keras.layers.LSTM(4, return_sequences=True)(e)
    w = keras.ops.multiply(h, keras.ops.expand_dims(keep, -1))
    out = keras.layers.Dense(1)(keras.ops.sum(w, axis=1))
    model = keras.Model(inp, out)
    model.save(os.path.join(folder, "ops.keras"))
    masked = keras.layers.LSTM(4)(e, mask=keras.ops.not_equal(inp, 0))
    mask_model = keras.Model(inp, masked)
    mask_model.save(os.path.join(folder, "mask_kwarg.keras"))
    np.savez(
        sys.argv[2],
        y=model.predict(d["ids"], verbose=0),
        y_mask=mask_model.predict(d["ids"], verbose=0),
    )
"""


def test_keras3_file_with_op_nodes_loads_with_keras3s_numbers(tmp_path):
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0], [6, 6, 6, 6, 6]], "int32")
    ref = _ref(tmp_path, OPS_FILE_SCRIPT, {"ids": ids})
    model = polykeras.models.load_model(tmp_path / "ops.keras")
    names = [layer.name for layer in model.layers]
    assert names[:2] == ["input_layer", "not_equal"] and "sum" in names  # the file's names
    np.testing.assert_allclose(model.predict(ids, verbose=0), ref["y"], rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "again.keras")  # and it saves and loads again
    again = polykeras.models.load_model(tmp_path / "again.keras")
    np.testing.assert_allclose(again.predict(ids, verbose=0), ref["y"], rtol=1e-5, atol=1e-6)
    # a tensor given as a layer's mask= in a graph: read, and used as Keras 3 uses it
    masked = polykeras.models.load_model(tmp_path / "mask_kwarg.keras")
    np.testing.assert_allclose(masked.predict(ids, verbose=0), ref["y_mask"], rtol=1e-5, atol=1e-6)


def test_keras3_op_that_polykeras_lacks_is_refused_by_name(tmp_path):
    from polykeras.saving.config import _Keras3Op
    from polykeras.saving.errors import SavingError

    with pytest.raises(SavingError, match="NoSuchOp"):
        _Keras3Op("NoSuchOp", {"name": "no_such_op"}, "test")


# -- 7. a Keras 1 HDF5 file with Bidirectional recurrent layers ----------------------------------
def _keras1_rnn_config(kind, name, units):
    cfg = {
        "name": name,
        "trainable": True,
        "return_sequences": kind == "LSTM",
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "consume_less": "cpu",
        "input_dim": 6 if kind == "LSTM" else 2 * 4,
        "input_length": None,
        "output_dim": units,
        "init": "glorot_uniform",
        "inner_init": "orthogonal",
        "activation": "tanh",
        "inner_activation": "hard_sigmoid",
        "W_regularizer": None,
        "U_regularizer": None,
        "b_regularizer": None,
        "dropout_W": 0.0,
        "dropout_U": 0.0,
    }
    if kind == "LSTM":
        cfg["forget_bias_init"] = "one"
    return {"class_name": kind, "config": cfg}


KERAS1_BIDIRECTIONAL = {
    "class_name": "Sequential",
    "config": [
        {
            "class_name": "Embedding",
            "config": {
                "name": "embedding_1",
                "trainable": True,
                "input_dim": 20,
                "output_dim": 6,
                "init": "uniform",
                "input_length": 5,
                "W_regularizer": None,
                "activity_regularizer": None,
                "W_constraint": None,
                "mask_zero": False,
                "dropout": 0.0,
                "batch_input_shape": [None, 5],
                "input_dtype": "int32",
            },
        },
        {
            "class_name": "Bidirectional",
            "config": {
                "name": "bidirectional_1",
                "trainable": True,
                "merge_mode": "concat",
                "layer": _keras1_rnn_config("LSTM", "lstm_1", 4),
            },
        },
        {
            "class_name": "Bidirectional",
            "config": {
                "name": "bidirectional_2",
                "trainable": True,
                "merge_mode": "sum",
                "layer": _keras1_rnn_config("GRU", "gru_1", 3),
            },
        },
    ],
}


def _keras1_rnn_arrays(layer, weights, prefix):
    """What Keras 1 stored for a recurrent layer: per gate W, U, b (LSTM gates i, c, f, o;
    GRU gates z, r, h), from today's kernel, recurrent kernel and bias."""
    kernel, rec, bias = weights
    u = layer.units
    gates = (
        (("i", 0), ("c", 2), ("f", 1), ("o", 3))
        if type(layer).__name__ == "LSTM"
        else (
            ("z", 0),
            ("r", 1),
            ("h", 2),
        )
    )
    out = []
    for gate, k in gates:
        cols = slice(k * u, (k + 1) * u)
        out += [
            (f"{prefix}_W_{gate}", kernel[:, cols]),
            (f"{prefix}_U_{gate}", rec[:, cols]),
            (f"{prefix}_b_{gate}", bias[cols]),
        ]
    return out


@pytest.mark.parametrize("whole_model", [False, True])
def test_keras1_bidirectional_weights_are_converted(tmp_path, whole_model):
    import h5py

    from polykeras.models import model_from_json

    text = json.dumps(KERAS1_BIDIRECTIONAL)
    model = model_from_json(text)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Embedding",
        "Bidirectional",
        "Bidirectional",
    ]
    rng = np.random.default_rng(0)
    model.set_weights(
        [rng.normal(scale=0.4, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    ids = rng.integers(0, 20, size=(3, 5)).astype("int32")
    expected = model.predict(ids, verbose=0)
    layer_arrays = [("embedding_1", [("embedding_1_W", model.layers[0].get_weights()[0])])]
    for bi in model.layers[1:]:
        inner = bi.forward_layer
        arrays = _keras1_rnn_arrays(inner, inner.get_weights(), f"forward_{inner.name}")
        inner = bi.backward_layer
        arrays += _keras1_rnn_arrays(inner, inner.get_weights(), f"backward_{inner.name}")
        assert len(arrays) == (24 if bi is model.layers[1] else 18)
        layer_arrays.append((bi.name, arrays))
    path = tmp_path / "keras1_bidirectional.h5"
    with h5py.File(path, "w") as f:  # Keras 1.2's layout: one group per layer
        root = f
        if whole_model:
            f.attrs["model_config"] = np.bytes_(text.encode())
            root = f.create_group("model_weights")
            f.attrs["keras_version"] = np.bytes_(b"1.2.2")
        root.attrs["layer_names"] = np.array([n.encode() for n, _ in layer_arrays])
        for name, arrays in layer_arrays:
            g = root.create_group(name)
            g.attrs["weight_names"] = np.array([w.encode() for w, _ in arrays])
            for wname, value in arrays:
                g.create_dataset(wname, data=value)
    if whole_model:
        fresh = polykeras.models.load_model(path)
    else:
        fresh = model_from_json(text)
        fresh.load_weights(path)
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(fresh.predict(ids, verbose=0), expected, rtol=1e-6)


# -- 5. function metrics on a masked output: epoch averages weighted by the mask ----------------
MASKED_METRICS_SCRIPT = """
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np, keras
    d = np.load(sys.argv[1])

    def abs_err(y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)

    model = keras.Sequential([
        keras.Input((6,), dtype="int32"),
        keras.layers.Embedding(8, 3, mask_zero=True),
        keras.layers.LSTM(2, return_sequences=True),
        keras.layers.Dense(1),
    ])
    model.set_weights([d[f"w{i}"] for i in range(int(d["n"]))])
    model.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae", abs_err])
    h = model.fit(d["ids"], d["t"], batch_size=3, epochs=2, shuffle=False, verbose=0)
    out = {"h_" + k: np.array(v) for k, v in h.history.items()}
    ev = model.evaluate(d["ids"], d["t"], batch_size=3, verbose=0, return_dict=True)
    out.update({"e_" + k: np.array(v) for k, v in ev.items()})
    np.savez(sys.argv[2], **out)
"""


def _abs_err(y_true, y_pred):
    return ops.mean(ops.abs(ops.subtract(y_true, y_pred)), axis=-1)


def test_masked_function_metrics_average_over_kept_positions_as_keras3(tmp_path):
    polykeras.utils.set_random_seed(0)
    model = Sequential(
        [
            Input((6,), dtype="int32"),
            layers.Embedding(8, 3, mask_zero=True),
            layers.LSTM(2, return_sequences=True),
            layers.Dense(1),
        ]
    )
    rng = np.random.default_rng(4)
    ids = rng.integers(1, 8, size=(9, 6))
    ids[0:3, 1:] = 0  # first batch: few kept positions; the others: many
    ids[3:6, 5:] = 0
    d = {
        "ids": ids.astype("int32"),
        "t": rng.normal(size=(9, 6, 1)).astype("float32"),
        "n": np.array(len(model.get_weights())),
    }
    d.update({f"w{i}": w for i, w in enumerate(model.get_weights())})
    ref = _ref(tmp_path, MASKED_METRICS_SCRIPT, d)
    # (Keras 3 fails on per-sample weights with a per-timestep mask: none given here)
    model.compile(polykeras.optimizers.SGD(0.05), "mse", metrics=["mae", _abs_err])
    h = model.fit(d["ids"], d["t"], batch_size=3, epochs=2, shuffle=False, verbose=0)
    keys = {"_abs_err": "abs_err"}  # Keras 3 names it by the function's name too
    for key, values in h.history.items():
        want = ref["h_" + keys.get(key, key)]
        np.testing.assert_allclose(values, want, rtol=2e-5, atol=1e-6, err_msg=key)
    ev = model.evaluate(d["ids"], d["t"], batch_size=3, verbose=0, return_dict=True)
    for key, value in ev.items():
        want = ref["e_" + keys.get(key, key)]
        np.testing.assert_allclose(value, want, rtol=2e-5, atol=1e-6, err_msg=key)
