"""Nothing is accepted and silently ignored: every setting works (with Keras' numbers) or is
refused by name.

Reference numbers marked "Keras 3.15.1" were computed with keras 3.15.1 on its torch
backend, with the same weights, data and optimizer.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import polykeras as keras
from polykeras import constraints as C
from polykeras import layers as L
from polykeras import regularizers as R
from polykeras.engine.base_layer import Layer
from polykeras.models import Model, Sequential, model_from_json
from polykeras.saving.config import deserialize_layer

# -- the same small problem as the Keras 3 run -------------------------------------------------
X = np.linspace(-1, 1, 18, dtype="float32").reshape(6, 3)
Y = np.linspace(0, 2, 12, dtype="float32").reshape(6, 2)
K0 = np.array([[2.0, -1.0], [0.5, 3.0], [-2.0, 1.0]], "float32")
B0 = np.array([0.5, -0.5], "float32")

# name: (evaluate loss before training, kernel and bias after one epoch of SGD(0.1) in
# batches of 3, unshuffled) -- Keras 3.15.1
KERAS = {
    "activity": (
        2.1488046646118164,
        [[2.015307, -1.182002], [0.535754, 2.849913], [-1.943799, 0.881829]],
        [0.673799, -0.228717],
    ),
    "max_norm": (
        2.0616419315338135,
        [[1.080548, -0.482406], [0.30906, 1.341048], [-0.987254, 0.467842]],
        [0.662352, -0.145349],
    ),
    "min_max_norm": (
        2.0616419315338135,
        [[1.145626, -0.627719], [0.266744, 1.343312], [-1.138269, 0.578097]],
        [0.669601, -0.166556],
    ),
    "unit_norm": (
        2.0616419315338135,
        [[0.736987, -0.283419], [0.225136, 0.896136], [-0.637309, 0.341488]],
        [0.658021, -0.120402],
    ),
    "non_neg": (
        2.0616419315338135,
        [[1.947163, 0.0], [0.452268, 2.810406], [0.0, 0.833345]],
        [0.543395, 0.0],
    ),
}

CASES = {
    "activity": lambda: dict(activity_regularizer=R.L1L2(l1=0.01, l2=0.02)),
    # as config dicts and names, which Keras takes too
    "max_norm": lambda: dict(
        kernel_constraint={"class_name": "MaxNorm", "config": {"max_value": 1.5}}
    ),
    "min_max_norm": lambda: dict(
        kernel_constraint={
            "class_name": "MinMaxNorm",
            "config": {"min_value": 0.5, "max_value": 1.2, "rate": 0.7, "axis": 1},
        }
    ),
    "unit_norm": lambda: dict(kernel_constraint="unit_norm"),
    "non_neg": lambda: dict(kernel_constraint="non_neg", bias_constraint="non_neg"),
}


def _train(**kwargs):
    inp = keras.Input((3,))
    dense = L.Dense(2, **kwargs)
    model = Model(inp, dense(inp))
    dense.set_weights([K0, B0])
    model.compile(keras.optimizers.SGD(learning_rate=0.1), "mse")
    loss = model.evaluate(X, Y, batch_size=6, verbose=0)
    model.fit(X, Y, batch_size=3, epochs=1, verbose=0, shuffle=False)
    return model, dense, loss


@pytest.mark.parametrize("case", sorted(CASES))
def test_regularizers_and_constraints_match_keras(case):
    _, dense, loss = _train(**CASES[case]())
    want_loss, want_kernel, want_bias = KERAS[case]
    assert loss == pytest.approx(want_loss, rel=1e-5)
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(kernel, want_kernel, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bias, want_bias, rtol=1e-4, atol=1e-5)


# -- activity_regularizer ----------------------------------------------------------------------
def test_activity_regularizer_is_divided_by_the_batch_size_and_counted_in_evaluate():
    inp = keras.Input((3,))
    dense = L.Dense(2, activity_regularizer=R.l2(0.5))
    model = Model(inp, dense(inp))
    dense.set_weights([K0, B0])
    model.compile("sgd", "mse")
    out = model.predict(X)
    mse = float(np.mean((out - Y) ** 2))
    want = mse + 0.5 * float(np.sum(out**2)) / len(X)
    assert model.evaluate(X, Y, batch_size=6, verbose=0) == pytest.approx(want, rel=1e-5)
    assert model.test_on_batch(X, Y) == pytest.approx(want, rel=1e-5)


def test_activity_regularizer_in_nested_model_and_other_layers():
    inner_in = keras.Input((3,))
    inner = Model(inner_in, L.Dense(2, activity_regularizer="l1")(inner_in))
    inp = keras.Input((3,))
    model = Model(inp, inner(inp))
    model.compile("sgd", "mse")
    out = model.predict(X)
    want = float(np.mean((out - Y) ** 2)) + 0.01 * float(np.abs(out).sum()) / len(X)
    assert model.evaluate(X, Y, batch_size=6, verbose=0) == pytest.approx(want, rel=1e-5)
    # any layer takes it, through the base class
    act = L.Activation("relu", activity_regularizer="l2")
    assert act.get_config()["activity_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}


def test_activity_regularizer_survives_json_and_hdf5(tmp_path):
    model, _, loss = _train(**CASES["activity"]())
    cfg = model.get_layer(index=1).get_config()
    assert cfg["activity_regularizer"] == {"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.02}}
    again = model_from_json(model.to_json())
    assert again.get_layer(index=1).activity_regularizer.get_config() == {"l1": 0.01, "l2": 0.02}
    path = str(tmp_path / "m.h5")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.evaluate(X, Y, verbose=0) == pytest.approx(
        model.evaluate(X, Y, verbose=0), rel=1e-6
    )


def test_activity_regularizer_inside_time_distributed_is_refused():
    with pytest.raises(ValueError, match="activity_regularizer"):
        L.TimeDistributed(L.Dense(2, activity_regularizer="l2"))


# -- constraints ---------------------------------------------------------------------------------
def test_constraint_names_and_aliases():
    for name, cls in [
        ("max_norm", C.MaxNorm),
        ("maxnorm", C.MaxNorm),
        ("MaxNorm", C.MaxNorm),
        ("non_neg", C.NonNeg),
        ("nonneg", C.NonNeg),
        ("unit_norm", C.UnitNorm),
        ("unitnorm", C.UnitNorm),
        ("min_max_norm", C.MinMaxNorm),
    ]:
        assert type(C.get(name)) is cls
    assert C.MaxNorm().get_config() == {"max_value": 2, "axis": 0}
    assert C.MinMaxNorm().get_config() == {
        "min_value": 0.0,
        "max_value": 1.0,
        "rate": 1.0,
        "axis": 0,
    }
    assert C.UnitNorm().get_config() == {"axis": 0}
    assert C.max_norm is C.MaxNorm and C.non_neg is C.NonNeg


def test_unknown_constraint_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match=r"'maxx_norm'.*MaxNorm.*non_neg"):
        L.Dense(2, kernel_constraint="maxx_norm")
    with pytest.raises(ValueError, match="constraint"):
        L.Dense(2, kernel_constraint=3)


def test_constraint_math_matches_the_formulas():
    w = np.array([[3.0, 0.1], [4.0, -0.2]], "float32")  # column norms 5 and ~0.2236
    eps = keras.config.epsilon()
    norms = np.sqrt((w**2).sum(axis=0, keepdims=True))
    got = np.asarray(keras.ops.to_numpy(C.MaxNorm(2)(keras.ops.asarray(w))))
    np.testing.assert_allclose(got, w * np.clip(norms, 0, 2) / (eps + norms), rtol=1e-6)
    got = np.asarray(keras.ops.to_numpy(C.UnitNorm(axis=1)(keras.ops.asarray(w))))
    rows = np.sqrt((w**2).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(got, w / (eps + rows), rtol=1e-6)
    got = np.asarray(keras.ops.to_numpy(C.NonNeg()(keras.ops.asarray(w))))
    np.testing.assert_allclose(got, np.maximum(w, 0))


def test_callable_constraint_is_applied_after_each_update():
    seen = []

    def halve(w):
        seen.append(1)
        return w * 0.5

    _, dense, _ = _train(kernel_constraint=halve)
    assert len(seen) == 2  # two batches
    assert np.abs(dense.get_weights()[0]).max() < np.abs(K0).max() / 3


def test_constraints_survive_json_and_hdf5(tmp_path):
    model, dense, _ = _train(kernel_constraint=C.MaxNorm(1.5, axis=[0]), bias_constraint="non_neg")
    cfg = dense.get_config()
    assert cfg["kernel_constraint"] == {
        "class_name": "MaxNorm",
        "config": {"max_value": 1.5, "axis": [0]},
    }
    assert cfg["bias_constraint"] == {"class_name": "NonNeg", "config": {}}
    again = model_from_json(model.to_json()).get_layer(index=1)
    assert again.kernel_constraint.get_config() == {"max_value": 1.5, "axis": [0]}
    assert type(again.bias_constraint) is C.NonNeg
    path = str(tmp_path / "m.h5")
    model.save(path)
    loaded = keras.models.load_model(path).get_layer(index=1)
    assert loaded.kernel_constraint.get_config() == {"max_value": 1.5, "axis": [0]}
    # a callable that is not a built-in cannot be written
    with pytest.raises(ValueError, match="cannot be serialized"):
        L.Dense(2, kernel_constraint=lambda w: w).get_config()


def test_keras1_constraint_config_loads():
    layer = deserialize_layer(
        {
            "class_name": "Dense",
            "config": {
                "name": "d1",
                "output_dim": 2,
                "W_constraint": {"name": "MaxNorm", "m": 3, "axis": 0},
                "b_constraint": None,
            },
        }
    )
    assert layer.kernel_constraint.get_config() == {"max_value": 3, "axis": 0}


@pytest.mark.parametrize(
    "make, attr",
    [
        (lambda c: L.Conv2D(2, 2, kernel_constraint=c), "kernel"),
        (lambda c: L.Conv1D(2, 2, bias_constraint=c), "bias"),
        (lambda c: L.Embedding(5, 3, embeddings_constraint=c), "embeddings"),
        (lambda c: L.LSTM(2, recurrent_constraint=c), "recurrent_kernel"),
        (lambda c: L.BatchNormalization(gamma_constraint=c), "gamma"),
    ],
)
def test_every_layer_applies_its_constraints(make, attr):
    layer = make("non_neg")
    shapes = {
        "kernel": (4, 4, 2),
        "bias": (5, 2),
        "embeddings": (3,),
        "recurrent_kernel": (3, 2),
        "gamma": (3,),
    }
    inp = keras.Input(shapes[attr], dtype="int32" if attr == "embeddings" else None)
    out = layer(inp)
    out = L.Flatten()(out) if len(out.shape) > 2 else out
    model = Model(inp, L.Dense(1)(out))
    var = getattr(layer, attr)
    var.assign(-np.abs(np.asarray(var.numpy())) - 0.5)
    model.compile("sgd", "mse")
    x = (
        np.random.RandomState(0).randint(0, 5, (4,) + shapes[attr])
        if attr == "embeddings"
        else np.random.RandomState(0).randn(4, *shapes[attr]).astype("float32")
    )
    model.fit(x, np.ones((4, 1), "float32"), epochs=1, verbose=0)
    assert (np.asarray(var.numpy()) >= 0).all()
    key = {
        "kernel": "kernel_constraint",
        "bias": "bias_constraint",
        "embeddings": "embeddings_constraint",
        "recurrent_kernel": "recurrent_constraint",
        "gamma": "gamma_constraint",
    }[attr]
    assert layer.get_config()[key] == {"class_name": "NonNeg", "config": {}}


# -- Embedding(mask_zero=True) (masking itself: tests/test_masking.py) -------------------------
def test_mask_zero_reaches_the_config_and_the_mask():
    layer = L.Embedding(10, 3, mask_zero=True, name="emb")
    assert layer.get_config()["mask_zero"] is True and layer.supports_masking
    assert L.Embedding(10, 3, mask_zero=False).get_config()["mask_zero"] is False
    with pytest.raises(TypeError, match="mask_zero"):
        L.Embedding(10, 3, mask_zero="yes")


def test_keras_file_with_mask_zero_loads():
    cfg = {
        "class_name": "Embedding",
        "config": {"name": "words", "input_dim": 10, "output_dim": 3, "mask_zero": False},
    }
    assert deserialize_layer(cfg).mask_zero is False
    cfg["config"]["mask_zero"] = True
    assert deserialize_layer(cfg).mask_zero is True


def test_embedding_regularizer_is_kept_in_the_config():
    cfg = L.Embedding(10, 3, embeddings_regularizer="l2").get_config()
    # tf.keras 2 and Keras 3 make "l2" an L2 with factor 0.01
    assert cfg["embeddings_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}


def test_keras1_embedding_dropout_is_refused():
    with pytest.raises(ValueError, match="dropout"):
        L.Embedding(10, 3, dropout=0.2)


# -- Model subclasses with their own steps -------------------------------------------------------
def test_a_graph_model_with_its_own_call_is_refused():
    """A model built from Input tensors runs its graph: a call of its own would be
    silently passed over, so it is refused (train_step & co. are run: test_subclassing)."""
    cls = type("MyModel", (Model,), {"call": lambda self, *a, **k: None, "__module__": "user"})
    inp = keras.Input((3,))
    model = cls(inp, L.Dense(2)(inp))
    with pytest.raises(NotImplementedError, match="overrides call"):
        model.compile("sgd", "mse")
    with pytest.raises(NotImplementedError, match="call"):
        model.predict(X)


def test_compute_metrics_without_a_step_that_calls_it_is_refused():
    body = {"compute_metrics": lambda self, *a, **k: {}, "__module__": "user_code"}
    cls = type("MyModel", (Model,), body)
    inp = keras.Input((3,))
    model = cls(inp, L.Dense(2)(inp))
    with pytest.raises(NotImplementedError, match="compute_metrics"):
        model.compile("sgd", "mse")


def test_a_subclass_without_overrides_still_works():
    cls = type("Plain", (Model,), {"__module__": "user_code"})
    inp = keras.Input((3,))
    model = cls(inp, L.Dense(2)(inp))
    model.compile("sgd", "mse")
    model.fit(X, Y, epochs=1, verbose=0)


# -- keyword arguments of a layer call -----------------------------------------------------------
def test_unknown_call_keyword_names_the_layer_and_the_argument():
    inp = keras.Input((3,))
    dense = L.Dense(2, name="d")
    with pytest.raises(TypeError, match=r"layer d \(Dense\).*foo=1"):
        dense(inp, foo=1)
    with pytest.raises(TypeError, match="foo"):
        dense(X, foo=1)
    with pytest.raises(TypeError, match="foo"):
        L.Layer()(inp, foo=1)


def test_call_keywords_the_layer_takes_are_passed():
    class Scale(Layer):
        def call(self, inputs, factor=1.0):
            return keras.ops.multiply(inputs, factor)

    inp = keras.Input((3,))
    model = Model(inp, Scale()(inp, factor=3.0))
    np.testing.assert_allclose(model.predict(X), 3 * X, rtol=1e-6)
    # training is dropped for a layer that does not depend on it
    assert L.Dense(2)(inp, training=True).shape == (None, 2)


def test_a_mask_in_a_graph_must_fit_its_input():
    # an explicit symbolic mask= is used (tests/test_explicit_masks.py); one that cannot be
    # the input's mask is refused by name, never ignored
    inp = keras.Input((3,))
    with pytest.raises(ValueError, match="mask has shape"):
        L.Dense(2)(inp, mask=inp)


def test_training_fixed_at_the_call_is_honoured():
    inp = keras.Input((200,))
    model = Model(inp, L.Dropout(0.5)(inp, training=True))
    out = model.predict(np.ones((4, 200), "float32"))
    assert (out == 0).mean() > 0.2  # dropout stays on at inference, as in Keras


# -- dtypes ------------------------------------------------------------------------------------
def test_mixed_precision_policy_is_refused_at_construction():
    with pytest.raises(ValueError, match="mixed precision policies are not supported"):
        L.Dense(2, dtype="mixed_float16")
    with pytest.raises(ValueError, match="dtype"):
        L.Dense(2, dtype="floaty")
    with pytest.raises(ValueError, match="dtype"):
        L.Dense(2, dtype="int32")
    assert L.Dense(2, dtype=np.float64).dtype == "float64"
    assert keras.Input((3,), dtype="int32").dtype == "int32"


# -- graph -------------------------------------------------------------------------------------
def test_unused_input_is_warned_about_by_name():
    a = keras.Input((3,), name="used")
    b = keras.Input((2,), name="forgotten")
    with pytest.warns(UserWarning, match="forgotten"):
        Model([a, b], L.Dense(1)(a))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Model(a, L.Dense(1)(a))


def test_input_options_without_effect_are_refused():
    with pytest.raises(ValueError, match="sparse"):
        keras.Input((3,), sparse=True)
    with pytest.raises(ValueError, match="tensor"):
        keras.Input((3,), tensor=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="ragged"):
        L.InputLayer(input_shape=(3,), ragged=True)
    with pytest.raises(ValueError, match="activity_regularizer"):
        L.InputLayer(input_shape=(3,), activity_regularizer="l2")
    with pytest.raises(ValueError, match="input_length"):
        L.Dense(2, input_shape=(3,), input_length=4)
    with pytest.raises(ValueError, match="batch_size"):
        L.Dense(2, batch_size=4)


# -- compile / fit / evaluate / predict ------------------------------------------------------------
def _compiled():
    inp = keras.Input((3,))
    model = Model(inp, L.Dense(2)(inp))
    model.compile("sgd", "mse")
    return model


def test_training_arguments_without_effect_are_refused():
    model = _compiled()
    with pytest.raises(ValueError, match="target_tensors"):
        model.compile("sgd", "mse", target_tensors=[np.zeros((1, 2))])
    with pytest.raises(ValueError, match="steps_per_execution"):
        model.compile("sgd", "mse", steps_per_execution=4)
    # steps / validation_steps on arrays take the first batches, as Keras 3 does
    # (tests/test_batches_from_python.py); workers & co. have no effect on arrays
    with pytest.raises(ValueError, match="workers"):
        model.fit(X, Y, workers=2, verbose=0)
    with pytest.raises(ValueError, match="max_queue_size"):
        model.evaluate(X, Y, max_queue_size=3, verbose=0)
    with pytest.raises(ValueError, match="use_multiprocessing"):
        model.predict(X, use_multiprocessing=False)
    model.compile("sgd", "mse", run_eagerly=True, jit_compile=False)  # change no result


def test_predict_verbose_shows_progress(capsys):
    _compiled().predict(X, verbose=1)
    assert "6/6" in capsys.readouterr().out
    _compiled().predict(X, verbose=0)
    assert capsys.readouterr().out == ""


def test_optimizer_config_settings_are_not_dropped():
    from polykeras.training.optimizers import deserialize

    ok = deserialize(
        {
            "class_name": "Adam",
            "config": {
                "learning_rate": 0.01,
                "weight_decay": None,
                "use_ema": False,
                "ema_momentum": 0.99,
                "jit_compile": True,
                "is_legacy_optimizer": False,
            },
        }
    )
    assert ok.learning_rate == 0.01
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        deserialize({"class_name": "Adam", "config": {"gradient_accumulation_steps": 4}})
    with pytest.raises(ValueError, match="use_ema"):
        deserialize({"class_name": "SGD", "config": {"use_ema": True}})


# -- seeds -------------------------------------------------------------------------------------
def test_dropout_and_rnn_seeds_repeat_their_masks():
    def masks(layer_factory):
        inp = keras.Input((50,))
        model = Model(inp, layer_factory()(inp, training=True))
        return [model.predict(np.ones((2, 50), "float32")) for _ in range(2)]

    a = masks(lambda: L.Dropout(0.5, seed=7))
    b = masks(lambda: L.Dropout(0.5, seed=7))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])  # a sequence of masks, not one mask
    assert L.LSTM(2, seed=3).get_config()["seed"] == 3
    with pytest.raises(ValueError, match="seed"):
        L.Dropout(0.5, seed="x")


# -- Keras 1 merge ---------------------------------------------------------------------------------
def test_keras1_merge_arguments_without_effect_are_refused():
    a, b = keras.Input((3,)), keras.Input((3,))
    with pytest.raises(ValueError, match="output_shape"):
        L.merge([a, b], mode="sum", output_shape=(3,))
    with pytest.raises(ValueError, match="node_indices"):
        L.merge([a, b], mode="concat", node_indices=[0, 0])
    with pytest.raises(ValueError, match="output_mask"):
        L.Merge(mode="sum", output_mask=lambda x: x)
    with pytest.raises(TypeError, match="bogus"):
        L.Merge(mode="sum", bogus=1)
    assert L.Merge(mode="sum", trainable=False).trainable is False


# -- every public layer, every documented keyword ----------------------------------------------
def _inner():
    return L.Dense(2, name="inner")


CONV = {
    "strides": 2,
    "padding": "same",
    "data_format": "channels_first",
    "dilation_rate": 2,
    "groups": 2,
    "activation": "relu",
    "use_bias": False,
    "kernel_initializer": "ones",
    "bias_initializer": "ones",
    "kernel_regularizer": "l2",
    "bias_regularizer": "l2",
    "kernel_constraint": "non_neg",
    "bias_constraint": "non_neg",
}
TCONV = {k: v for k, v in CONV.items() if k != "groups"} | {"output_padding": 0}
DEPTHWISE = {
    **{k: v for k, v in CONV.items() if not k.startswith("kernel_") and k != "groups"},
    "depth_multiplier": 2,
    "depthwise_initializer": "ones",
    "depthwise_regularizer": "l2",
    "depthwise_constraint": "non_neg",
}
POINTWISE = {
    "pointwise_initializer": "ones",
    "pointwise_regularizer": "l2",
    "pointwise_constraint": "non_neg",
}
RNN = {
    "activation": "relu",
    "use_bias": False,
    "kernel_initializer": "ones",
    "recurrent_initializer": "ones",
    "bias_initializer": "ones",
    "kernel_regularizer": "l2",
    "recurrent_regularizer": "l2",
    "bias_regularizer": "l2",
    "kernel_constraint": "non_neg",
    "recurrent_constraint": "non_neg",
    "bias_constraint": "non_neg",
    "dropout": 0.2,
    "recurrent_dropout": 0.2,
    "return_sequences": True,
    "return_state": True,
    "go_backwards": True,
    "stateful": True,
    "unroll": True,
    "zero_output_for_mask": True,
}
GATED = dict(RNN, recurrent_activation="tanh", implementation=1, time_major=True)
_RNN_ONLY = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll")
CELL = {k: v for k, v in RNN.items() if k not in _RNN_ONLY + ("zero_output_for_mask",)}
POOL1 = {"pool_size": 3, "strides": 1, "padding": "same", "data_format": "channels_first"}
POOL2 = {"pool_size": (3, 3), "strides": (1, 1), "padding": "same", "data_format": "channels_first"}
GLOBAL = {"data_format": "channels_first", "keepdims": True}

# class: (positional arguments or a factory of them, documented keywords with a non-default
# value).  The keywords are those of the Keras 2 (tf.keras 2) docs for each layer.
DOCUMENTED = {
    "Dense": (
        (2,),
        {
            "activation": "relu",
            "use_bias": False,
            "kernel_initializer": "ones",
            "bias_initializer": "ones",
            "kernel_regularizer": "l2",
            "bias_regularizer": "l2",
            "kernel_constraint": "non_neg",
            "bias_constraint": "non_neg",
        },
    ),
    "Activation": (("relu",), {"activation": "tanh"}),
    "Dropout": ((0.5,), {"noise_shape": (None, 1), "seed": 3, "rate": 0.2}),
    "Flatten": ((), {"data_format": "channels_first"}),
    "Reshape": (((2, 2),), {"target_shape": (4,)}),
    "Permute": (((2, 1),), {"dims": (1, 2)}),
    "RepeatVector": ((3,), {"n": 4}),
    "Masking": ((), {"mask_value": 1.0}),
    "Identity": ((), {}),
    # preprocessing
    "Rescaling": ((0.5,), {"scale": 2.0, "offset": 1.0}),
    "Resizing": (
        (4, 5),
        {
            "height": 3,
            "width": 2,
            "interpolation": "nearest",
            "crop_to_aspect_ratio": True,
            "pad_to_aspect_ratio": True,
            "fill_mode": "reflect",
            "fill_value": 1.0,
            "antialias": True,
            "data_format": "channels_first",
        },
    ),
    "CenterCrop": ((4, 5), {"height": 3, "width": 2, "data_format": "channels_first"}),
    "Normalization": ((), {"axis": 1, "mean": 1.0, "variance": 2.0, "invert": True}),
    "Discretization": (
        ([0.0],),
        {
            "bin_boundaries": [1.0],
            "num_bins": 3,
            "epsilon": 0.1,
            "output_mode": "count",
            "sparse": True,
        },
    ),
    # categorical and text
    "CategoryEncoding": ((3,), {"num_tokens": 5, "output_mode": "count", "sparse": True}),
    "Hashing": (
        (3,),
        {"num_bins": 5, "mask_value": "", "salt": 7, "output_mode": "count", "sparse": True},
    ),
    "IntegerLookup": (
        (),
        {
            "max_tokens": 10,
            "num_oov_indices": 2,
            "mask_token": 0,
            "oov_token": -7,
            "vocabulary": [3, 1, 4],
            "vocabulary_dtype": "int32",
            "idf_weights": [1.0, 2.0, 3.0],
            "invert": True,
            "output_mode": "count",
            "sparse": True,
            "pad_to_max_tokens": True,
            "oov_method": "farmhash",
            "salt": 7,
        },
    ),
    "StringLookup": (
        (),
        {
            "max_tokens": 10,
            "num_oov_indices": 2,
            "mask_token": "",
            "oov_token": "?",
            "vocabulary": ["a", "b"],
            "idf_weights": [1.0, 2.0],
            "invert": True,
            "output_mode": "count",
            "pad_to_max_tokens": True,
            "sparse": True,
            "encoding": "latin-1",
            "salt": 7,
        },
    ),
    "TextVectorization": (
        (),
        {
            "max_tokens": 10,
            "standardize": "lower",
            "split": "character",
            "ngrams": 2,
            "output_mode": "count",
            "output_sequence_length": 4,
            "pad_to_max_tokens": True,
            "vocabulary": ["a", "b"],
            "idf_weights": [1.0, 2.0],
            "sparse": True,
            "ragged": True,
            "encoding": "latin-1",
        },
    ),
    # augmentation
    "RandomFlip": ((), {"mode": "vertical", "seed": 3, "data_format": "channels_first"}),
    "RandomRotation": (
        (0.1,),
        {
            "fill_mode": "constant",
            "interpolation": "nearest",
            "seed": 3,
            "fill_value": 1.0,
            "data_format": "channels_first",
            "bounding_box_format": "xyxy",
        },
    ),
    "RandomZoom": (
        (0.1,),
        {
            "width_factor": 0.2,
            "fill_mode": "wrap",
            "interpolation": "nearest",
            "seed": 3,
            "fill_value": 1.0,
            "data_format": "channels_first",
        },
    ),
    "RandomTranslation": (
        (0.1, 0.1),
        {
            "fill_mode": "nearest",
            "interpolation": "nearest",
            "seed": 3,
            "fill_value": 1.0,
            "data_format": "channels_first",
        },
    ),
    "RandomContrast": ((0.2,), {"value_range": (0, 1), "seed": 3, "data_format": "channels_first"}),
    "RandomBrightness": (
        (0.2,),
        {"value_range": (0, 1), "seed": 3, "data_format": "channels_first"},
    ),
    "RandomCrop": ((2, 3), {"seed": 3, "data_format": "channels_first"}),
    "OpLayer": (("add",), {"args": [{"__tensor__": 0}, 1.0], "kwargs": {"axis": 1}}),
    "Lambda": ((abs,), {"output_shape": (3,), "mask": abs, "arguments": {"k": 1}}),
    "Embedding": (
        (10, 3),
        {
            "embeddings_initializer": "ones",
            "embeddings_regularizer": "l2",
            "embeddings_constraint": "non_neg",
            "mask_zero": True,
            "input_length": 5,
        },
    ),
    "Conv1D": ((4, 3), CONV),
    "Conv2D": ((4, 3), CONV),
    "MaxPooling1D": ((), POOL1),
    "AveragePooling1D": ((), POOL1),
    "MaxPooling2D": ((), POOL2),
    "AveragePooling2D": ((), POOL2),
    "GlobalAveragePooling1D": ((), GLOBAL),
    "GlobalMaxPooling1D": ((), GLOBAL),
    "GlobalAveragePooling2D": ((), GLOBAL),
    "GlobalMaxPooling2D": ((), GLOBAL),
    # [convolution] transposed convolutions, up-sampling, padding, cropping
    "Conv1DTranspose": ((4, 3), {**TCONV}),
    "Conv2DTranspose": ((4, 3), {**TCONV}),
    "Deconvolution2D": ((4, 3, 3), {**TCONV, "output_shape": (None, 8, 8, 4)}),
    "DepthwiseConv2D": ((3,), {**DEPTHWISE}),
    "DepthwiseConv1D": ((3,), {**DEPTHWISE}),
    "EinsumDense": (
        ("ab,bc->ac", 4),
        {
            "equation": "ab,bc->ab",
            "output_shape": 3,
            "activation": "relu",
            "bias_axes": "c",
            "kernel_initializer": "ones",
            "bias_initializer": "ones",
            "kernel_regularizer": "l2",
            "bias_regularizer": "l2",
            "kernel_constraint": "non_neg",
            "bias_constraint": "non_neg",
        },
    ),
    "SeparableConv1D": ((4, 3), {**DEPTHWISE, **POINTWISE, "padding": "causal"}),
    "SeparableConv2D": ((4, 3), {**DEPTHWISE, **POINTWISE}),
    "Conv3D": ((4, 3), {**CONV}),
    "Conv3DTranspose": ((4, 3), {**TCONV}),
    "MaxPooling3D": ((), {**POOL2, "pool_size": (3, 3, 3), "strides": (1, 1, 1)}),
    "AveragePooling3D": ((), {**POOL2, "pool_size": (3, 3, 3), "strides": (1, 1, 1)}),
    "GlobalAveragePooling3D": ((), GLOBAL),
    "GlobalMaxPooling3D": ((), GLOBAL),
    "UpSampling1D": ((), {"size": 3}),
    "UpSampling2D": (
        (),
        {"size": (3, 3), "data_format": "channels_first", "interpolation": "bilinear"},
    ),
    "UpSampling3D": ((), {"size": (3, 3, 3), "data_format": "channels_first"}),
    "ZeroPadding1D": ((), {"padding": 2, "data_format": "channels_first"}),
    "ZeroPadding2D": ((), {"padding": 2, "data_format": "channels_first"}),
    "ZeroPadding3D": ((), {"padding": 2, "data_format": "channels_first"}),
    "Cropping1D": ((), {"cropping": 2}),
    "Cropping2D": ((), {"cropping": 2, "data_format": "channels_first"}),
    "Cropping3D": ((), {"cropping": 2, "data_format": "channels_first"}),
    "BatchNormalization": (
        (),
        {
            "axis": 1,
            "momentum": 0.9,
            "epsilon": 0.01,
            "center": False,
            "scale": False,
            "beta_initializer": "ones",
            "gamma_initializer": "zeros",
            "moving_mean_initializer": "ones",
            "moving_variance_initializer": "zeros",
            "beta_regularizer": "l2",
            "gamma_regularizer": "l2",
            "beta_constraint": "non_neg",
            "gamma_constraint": "non_neg",
            "renorm": True,
            "renorm_clipping": {"rmax": 2.0},
            "renorm_momentum": 0.5,
            "fused": False,
            "virtual_batch_size": 2,
            "adjustment": abs,
        },
    ),
    "SimpleRNN": ((2,), RNN),
    "LSTM": ((2,), dict(GATED, unit_forget_bias=False)),
    "GRU": ((2,), dict(GATED, reset_after=False)),
    "TimeDistributed": (lambda: (_inner(),), {}),
    "RNN": (
        lambda: (L.LSTMCell(2),),
        {**{k: True for k in _RNN_ONLY}, "zero_output_for_mask": True, "time_major": True},
    ),
    "SimpleRNNCell": ((2,), CELL),
    "LSTMCell": ((2,), dict(CELL, recurrent_activation="tanh", unit_forget_bias=False)),
    "GRUCell": ((2,), dict(CELL, recurrent_activation="tanh", reset_after=False)),
    "StackedRNNCells": (lambda: ([L.LSTMCell(2)],), {}),
    "ConvLSTM2D": (
        (2, 3),
        {
            **{k: v for k, v in RNN.items() if k != "zero_output_for_mask"},
            "strides": 2,
            "padding": "same",
            "data_format": "channels_first",
            "dilation_rate": 2,
            "recurrent_activation": "sigmoid",
            "unit_forget_bias": False,
        },
    ),
    "Bidirectional": (
        lambda: (L.LSTM(2),),
        {"merge_mode": "sum", "backward_layer": L.GRU(2, go_backwards=True)},
    ),
    "Add": ((), {}),
    "Subtract": ((), {}),
    "Multiply": ((), {}),
    "Average": ((), {}),
    "Maximum": ((), {}),
    "Minimum": ((), {}),
    "Concatenate": ((), {"axis": 1}),
    "Dot": ((1,), {"axes": 2, "normalize": True}),
    "MultiHeadAttention": (
        (2, 3),
        {
            "num_heads": 4,
            "key_dim": 5,
            "value_dim": 4,
            "dropout": 0.5,
            "use_bias": False,
            "output_shape": 5,
            "attention_axes": (1,),
            "kernel_initializer": "ones",
            "bias_initializer": "ones",
            "kernel_regularizer": "l2",
            "bias_regularizer": "l2",
            "kernel_constraint": "non_neg",
            "bias_constraint": "non_neg",
            "seed": 3,
        },
    ),
    "Attention": ((), {"use_scale": True, "score_mode": "concat", "dropout": 0.5, "causal": True}),
    "AdditiveAttention": ((), {"use_scale": False, "dropout": 0.5, "causal": True}),
    # [activation] [noise] [normalization]
    "LeakyReLU": ((), {"alpha": 0.1}),
    "PReLU": (
        (),
        {
            "alpha_initializer": "ones",
            "alpha_regularizer": "l2",
            "alpha_constraint": "non_neg",
            "shared_axes": [1],
        },
    ),
    "ELU": ((), {"alpha": 0.5}),
    "ReLU": ((), {"max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5}),
    "Softmax": ((), {"axis": 1}),
    "ThresholdedReLU": ((), {"theta": 0.5}),
    "GaussianNoise": ((0.1,), {"stddev": 0.3, "seed": 1}),
    "GaussianDropout": ((0.1,), {"rate": 0.3, "seed": 1}),
    "AlphaDropout": ((0.1,), {"rate": 0.3, "noise_shape": (None, 1), "seed": 1}),
    "SpatialDropout1D": ((0.1,), {"rate": 0.3, "seed": 1}),
    "SpatialDropout2D": ((0.1,), {"rate": 0.3, "data_format": "channels_first", "seed": 1}),
    "SpatialDropout3D": ((0.1,), {"rate": 0.3, "data_format": "channels_first", "seed": 1}),
    "ActivityRegularization": ((), {"l1": 0.1, "l2": 0.2}),
    "LayerNormalization": (
        (),
        {
            "axis": 1,
            "epsilon": 0.01,
            "center": False,
            "scale": False,
            "beta_initializer": "ones",
            "gamma_initializer": "zeros",
            "beta_regularizer": "l2",
            "gamma_regularizer": "l2",
            "beta_constraint": "non_neg",
            "gamma_constraint": "non_neg",
            "rms_scaling": True,
        },
    ),
    "GroupNormalization": (
        (),
        {
            "groups": 4,
            "axis": 1,
            "epsilon": 0.01,
            "center": False,
            "scale": False,
            "beta_initializer": "ones",
            "gamma_initializer": "zeros",
            "beta_regularizer": "l2",
            "gamma_regularizer": "l2",
            "beta_constraint": "non_neg",
            "gamma_constraint": "non_neg",
        },
    ),
    "UnitNormalization": ((), {"axis": 1}),
    "InputLayer": (
        (),
        {
            "batch_size": 4,
            "sparse": True,
            "ragged": True,
            "input_tensor": np.zeros((1, 3)),
            "type_spec": "spec",
        },
    ),
}
# Keywords of every layer (the Keras 2 base Layer's)
COMMON = {
    "name": "custom_name",
    "trainable": False,
    "dtype": "float64",
    "activity_regularizer": "l2",
}
# Keywords Keras itself documents as changing how the same result is computed, not what it
# is: accepted, with the reason.
INERT = {
    ("BatchNormalization", "fused"): "whether a fused kernel computes the same math",
    ("LSTM", "implementation"): "how the same matmuls are batched",
    ("GRU", "implementation"): "how the same matmuls are batched",
}


def _public_layer_classes():
    seen = {}
    for name in L.__all__:
        obj = getattr(L, name)
        if isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer:
            seen.setdefault(obj, obj.__name__)
    return sorted(seen.items(), key=lambda kv: kv[1])


def test_every_public_layer_is_in_the_table():
    missing = [name for _, name in _public_layer_classes() if name not in DOCUMENTED]
    assert not missing, f"add these layers' documented keywords to DOCUMENTED: {missing}"


def _make(cls, **kwargs):
    args, _ = DOCUMENTED[cls.__name__]
    args = args() if callable(args) else args
    if cls.__name__ == "InputLayer":
        kwargs.setdefault("input_shape", (3,))
    return cls(*args, **kwargs)


def _describe(layer):
    try:
        cfg = dict(layer.get_config())
    except ValueError:  # Lambda holds Python code and has no config: compare its state
        cfg = {k: repr(v) for k, v in vars(layer).items() if not k.startswith("_inbound")}
    return cfg


def _cases():
    for cls, name in _public_layer_classes():
        if name not in DOCUMENTED:
            continue
        common = COMMON if name != "InputLayer" else {k: COMMON[k] for k in ("name", "dtype")}
        for key, value in {**common, **DOCUMENTED[name][1]}.items():
            yield pytest.param(cls, key, value, id=f"{name}-{key}")


@pytest.mark.parametrize("cls, key, value", list(_cases()))
def test_no_documented_keyword_is_swallowed(cls, key, value):
    base = _describe(_make(cls, name="same"))
    try:
        layer = _make(cls, **{"name": "same", **{key: value}})
    except (TypeError, ValueError, NotImplementedError) as exc:
        assert key in str(exc), f"{cls.__name__}({key}=...) was refused without naming it: {exc}"
        return
    if (cls.__name__, key) in INERT:
        return
    got = _describe(layer)
    assert got != base, f"{cls.__name__}({key}={value!r}) was accepted and changed nothing"
    if key in base and key in got:
        assert got[key] != base[key], f"{cls.__name__}: {key} did not reach get_config()"
    # and the config builds the same layer again
    if key != "name" and cls.__name__ not in ("Lambda", "InputLayer"):
        again = (
            type(layer).from_config(layer.get_config())
            if "custom_objects" not in inspect.signature(type(layer).from_config).parameters
            else type(layer).from_config(layer.get_config(), custom_objects=None)
        )
        assert _describe(again) == got


def test_base_layer_shape_keywords_work():
    dense = L.Dense(2, input_shape=(3,), batch_size=4)
    assert dense.get_config()["batch_input_shape"] == [4, 3]
    assert L.Dense(2, input_dim=3).get_config()["batch_input_shape"] == [None, 3]
    assert L.Dense(2, batch_input_shape=(5, 3)).get_config()["batch_input_shape"] == [5, 3]
    model = Sequential([L.Dense(2, input_dim=3, weights=[K0, B0])])
    np.testing.assert_array_equal(model.get_weights()[0], K0)


def test_keras2_nadam_default_schedule_decay_loads_and_another_is_refused():
    from polykeras.training import optimizers as opt_mod

    cfg = {
        "class_name": "Nadam",
        "config": {
            "lr": 0.002,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-7,
            "schedule_decay": 0.004,
        },
    }
    assert type(opt_mod.deserialize(cfg)).__name__ == "Nadam"
    cfg["config"]["schedule_decay"] = 0.01
    with pytest.raises(ValueError, match="schedule_decay"):
        opt_mod.deserialize(cfg)


def test_activity_penalties_stay_in_their_own_thread():
    import threading

    from polykeras.engine.base_layer import collect_activity_losses, record_activity

    layer = L.Dense(2, activity_regularizer="l2")
    out = keras.backend.current().asarray(np.ones((4, 2), dtype="float32"))
    opened, done = threading.Event(), threading.Event()
    seen = {}

    def trainer_thread():
        with collect_activity_losses() as bucket:
            opened.set()
            done.wait(10)
            seen["a"] = len(bucket)

    t = threading.Thread(target=trainer_thread)
    t.start()
    opened.wait(10)
    record_activity(layer, [out])  # another thread, with no collector open: goes nowhere
    with collect_activity_losses() as mine:
        record_activity(layer, [out])
    done.set()
    t.join()
    assert seen["a"] == 0
    assert len(mine) == 1
