"""Bugs found by running real Keras programs (issue 13): each test is a line a Keras 2
program writes, and what Keras does with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import polykeras
from polykeras import Input, Model, Sequential, losses, metrics, ops
from polykeras.layers import (
    Conv2D,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    InputLayer,
    Lambda,
    MaxPooling2D,
    RepeatVector,
)
from polykeras.training import compiled


# -- 1. an Embedding fed by a float Input trains with every optimizer ------------------------
OPTIMIZERS = {
    "sgd": lambda: polykeras.optimizers.SGD(learning_rate=0.5),
    "sgd_momentum": lambda: polykeras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
    "sgd_nesterov": lambda: polykeras.optimizers.SGD(
        learning_rate=0.1, momentum=0.9, nesterov=True
    ),
    "rmsprop": lambda: polykeras.optimizers.RMSprop(learning_rate=0.05),
    "rmsprop_centered": lambda: polykeras.optimizers.RMSprop(learning_rate=0.05, centered=True),
    "adam": lambda: polykeras.optimizers.Adam(learning_rate=0.05),
    "adagrad": lambda: polykeras.optimizers.Adagrad(learning_rate=0.1),
    "adadelta": lambda: polykeras.optimizers.Adadelta(learning_rate=1.0),
    "adamax": lambda: polykeras.optimizers.Adamax(learning_rate=0.05),
    "nadam": lambda: polykeras.optimizers.Nadam(learning_rate=0.05),
}


def _train_embedding(make_optimizer, dtype, sparse, monkeypatch, epochs=2):
    monkeypatch.setattr(compiled, "ROW_SPARSE_UPDATES", sparse)
    polykeras.backend.clear_session()
    polykeras.utils.set_random_seed(0)
    ids = Input(shape=(None,), dtype=dtype)  # dtype None: Keras' default float Input
    x = GlobalAveragePooling1D()(Embedding(20, 4)(ids))
    model = Model(ids, Dense(1, activation="sigmoid")(x))
    model.compile(make_optimizer(), "binary_crossentropy")
    rng = np.random.default_rng(1)
    data = rng.integers(0, 15, size=(24, 5))  # rows 15..19 never touched
    y = rng.integers(0, 2, size=(24, 1)).astype("float32")
    x_data = data.astype("float32") if dtype is None else data
    model.fit(x_data, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
    return model


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_embedding_with_float_input_trains_like_int_input(name, monkeypatch):
    as_float = _train_embedding(OPTIMIZERS[name], None, True, monkeypatch)
    assert as_float.inputs[0].dtype == "float32"
    as_int = _train_embedding(OPTIMIZERS[name], "int32", True, monkeypatch)
    dense = _train_embedding(OPTIMIZERS[name], None, False, monkeypatch)
    for a, b, c in zip(as_float.get_weights(), as_int.get_weights(), dense.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
    # training moved the rows the data looked up
    untrained = _train_embedding(OPTIMIZERS[name], None, True, monkeypatch, epochs=0)
    assert not np.allclose(as_float.get_weights()[0][:15], untrained.get_weights()[0][:15])


def test_rmsprop_takes_the_row_sparse_path_with_float_indices(monkeypatch):
    model = _train_embedding(OPTIMIZERS["rmsprop"], None, True, monkeypatch)
    assert model._compiled.row_sparse, "rmsprop without momentum updates rows only"


# -- 2. an int shape is a one-dimensional shape everywhere ----------------------------------
def test_int_input_shape_is_accepted_everywhere():
    model = Sequential([Dense(2, input_shape=3)])
    assert model.input_shape == (None, 3)
    assert model.predict(np.ones((4, 3), "float32"), verbose=0).shape == (4, 2)
    assert Input(shape=784).shape == (None, 784)
    assert Input(shape=np.int64(5)).shape == (None, 5)
    assert Input(shape=(np.int64(5), None)).shape == (None, 5, None)
    assert type(Input(shape=(np.int64(5),)).shape[1]) is int
    assert InputLayer(input_shape=4).get_config()["batch_input_shape"] == [None, 4]
    assert Dense(2, input_shape=3, batch_size=8)._batch_input_shape == (8, 3)
    config = Sequential([Dense(2, input_shape=np.int32(3))]).get_config()
    json.dumps(config)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Dense(2, batch_input_shape=3),
        lambda: Input(batch_shape=3),
        lambda: InputLayer(batch_input_shape=3),
        lambda: Sequential([Dense(2)]).build(3),
    ],
)
def test_int_batch_shape_is_refused_clearly(make):
    with pytest.raises(TypeError, match=r"batch dimension, e\.g\. \(None, 784\); got 3"):
        make()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Input(shape="ab"), "shape must be a tuple of ints"),
        (lambda: Input(shape=2.5), "shape must be a tuple of ints"),
        (lambda: Input(shape=(2.0,)), r"every dimension of shape \(2.0,\) must be a non-negative"),
        (lambda: Input(shape=(-1,)), "must be a non-negative integer, got -1"),
        (lambda: Dense(2, input_shape=(True,)), "input_shape.*got the bool True"),
    ],
)
def test_bad_shapes_are_refused_clearly(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()


# -- 3. Lambda without output_shape: the shape is found by running the function --------------
def test_lambda_infers_a_sliced_output_shape():
    inp = Input((4,))
    out = Lambda(lambda t: t[:, :2])(inp)
    assert out.shape == (None, 2)
    model = Model(inp, Dense(3)(out))
    assert model.predict(np.ones((5, 4), "float32"), verbose=0).shape == (5, 3)


def test_lambda_on_two_inputs_gives_one_output():
    a, b = Input((3,)), Input((3,))
    out = Lambda(lambda t: t[0] * t[1])([a, b])
    assert not isinstance(out, list) and out.shape == (None, 3)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(Model([a, b], out).predict([x, x + 1], verbose=0), x * (x + 1))


def test_lambda_keeps_unknown_dimensions_unknown_and_known_ones_known():
    seq = Input((None, 6))
    assert Lambda(lambda t: t[:, :, ::2])(seq).shape == (None, None, 3)
    assert Lambda(lambda t: ops.sum(t, axis=0))(seq).shape == (None, 6)  # batch summed away
    assert Lambda(lambda t: ops.sum(t, axis=1))(seq).shape == (None, 6)
    flat = Input((4,))
    assert Lambda(lambda t: ops.sum(t, axis=0))(flat).shape == (4,)
    assert Lambda(lambda t: ops.sum(t, axis=-1))(flat).shape == (None,)
    fixed = Input(batch_shape=(4, 3))
    assert Lambda(lambda t: t[:, :1])(fixed).shape == (4, 1)


def test_lambda_with_several_outputs():
    inp = Input((4,))
    first, second = Lambda(lambda t: [t, t[:, :1]])(inp)
    assert first.shape == (None, 4) and second.shape == (None, 1)
    model = Model(inp, [first, second])
    outs = model.predict(np.ones((2, 4), "float32"), verbose=0)
    assert [o.shape for o in outs] == [(2, 4), (2, 1)]


def test_lambda_probes_with_the_input_dtype():
    ids = Input((3,), dtype="int32")
    table = np.arange(10, dtype="float32")
    polykeras_table = polykeras.backend.current().asarray(table)
    out = Lambda(lambda t: ops.take(polykeras_table, t))(ids)
    assert out.shape == (None, 3)


def test_lambda_that_fails_on_the_probe_asks_for_output_shape():
    def broken(t):
        raise RuntimeError("needs a real batch")

    with pytest.raises(
        ValueError,
        match=r"Lambda layer lambda_\w+: could not infer its output "
        r"shape .*RuntimeError: needs a real batch.*Pass "
        r"output_shape=",
    ):
        Lambda(broken)(Input((4,)))


def test_loss_function_works_inside_a_lambda():
    a, b = Input((3,)), Input((3,))
    out = Lambda(lambda t: losses.mean_squared_error(t[0], t[1]))([a, b])
    assert out.shape == (None,)
    x = np.zeros((2, 3), "float32")
    np.testing.assert_allclose(Model([a, b], out).predict([x, x + 2], verbose=0), [4, 4])


# -- 4. Lambda with output_shape ----------------------------------------------------------------
def test_lambda_output_shape_on_two_inputs_takes_the_batch_from_the_first_input():
    a, b = Input((3,)), Input((3,))
    assert Lambda(lambda t: t[0][:, :2], output_shape=(2,))([a, b]).shape == (None, 2)
    assert Lambda(lambda t: t[:, :2], output_shape=2)(a).shape == (None, 2)
    fixed = Input(batch_shape=(8, 3))
    assert Lambda(lambda t: t, output_shape=(3,))(fixed).shape == (8, 3)


def test_lambda_output_shape_as_a_function_gets_the_batch_dimension():
    a, b = Input((3,)), Input((5,))
    seen = []

    def shape_of(shapes):
        seen.append(shapes)
        return (shapes[0][0], shapes[0][1] + shapes[1][1])

    out = Lambda(lambda t: ops.concatenate(t, axis=-1), output_shape=shape_of)([a, b])
    assert seen[0] == [(None, 3), (None, 5)]
    assert out.shape == (None, 8)
    assert Lambda(lambda t: t, output_shape=lambda s: [s[0], 3])(a).shape == (None, 3)
    two = Lambda(lambda t: t, output_shape=lambda s: s)([a, b])
    assert [t.shape for t in two] == [(None, 3), (None, 5)]


# -- 5. integer arguments: any integral type, stored as a plain int ---------------------------
@pytest.mark.parametrize(
    "value", [np.int64(46), np.int32(46), np.uint8(46), 46.0, np.float64(46.0)]
)
def test_integral_values_are_accepted_as_plain_ints(value):
    layer = Dense(value)
    assert layer.units == 46 and type(layer.units) is int
    json.dumps(layer.get_config())
    emb = Embedding(value, value, input_length=np.int64(7))
    assert (type(emb.input_dim), type(emb.output_dim)) == (int, int)
    assert type(emb.input_length) is int and emb._batch_input_shape == (None, 7)
    conv = Conv2D(value, (np.int64(3), 3), strides=np.int64(1))
    assert type(conv.filters) is int and all(type(k) is int for k in conv.kernel_size)
    assert all(type(k) is int for k in conv.strides)
    pool = MaxPooling2D(np.int64(2))
    assert pool.pool_size == (2, 2) and all(type(k) is int for k in pool.pool_size)
    assert type(RepeatVector(value).n) is int
    assert type(polykeras.layers.LSTM(value).units) is int


def test_dense_units_from_numpy_max_trains():
    y = np.array([0, 3, 1, 2])
    model = Sequential([Dense(np.max(y) + 1, input_shape=(2,), activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(np.ones((4, 2), "float32"), y, verbose=0)
    assert model.output_shape == (None, 4)
    json.dumps(json.loads(model.to_json()))


@pytest.mark.parametrize(
    "value, shown",
    [(2.5, "2.5"), (True, "True"), ("4", "'4'"), (0, "0"), (-3, "-3"), (float("nan"), "nan")],
)
def test_non_integral_values_are_refused_clearly(value, shown):
    with pytest.raises(
        ValueError,
        match=rf"Dense dense_\d+: units must be a positive "
        rf"integer, got .*{shown}",
    ):
        Dense(value)
    with pytest.raises(ValueError, match=r"MaxPooling2D .*pool_size must be a positive"):
        MaxPooling2D((2, value))


# -- 6. loss and metric functions on symbolic tensors -------------------------------------------
@pytest.mark.parametrize(
    "fn, kind",
    [
        (losses.binary_crossentropy, "loss"),
        (losses.mean_squared_error, "loss"),
        (losses.huber, "loss"),
        (losses.sparse_categorical_crossentropy, "loss"),
        (metrics.binary_accuracy, "metric"),
        (metrics.categorical_accuracy, "metric"),
    ],
)
def test_loss_on_symbolic_tensors_gives_a_clear_error(fn, kind):
    with pytest.raises(
        TypeError,
        match=rf"{kind} function {fn.__name__} was called on "
        r"symbolic tensors: y_true=input_\d+ \(shape "
        r"\(None, 3\)\).*wrap it in a Lambda layer",
    ):
        fn(Input((3,)), Input((3,)))
    with pytest.raises(TypeError, match=r"y_pred=input_\d+"):
        fn(np.ones((2, 3), "float32"), Input((3,)))


def test_losses_keep_their_identity_and_still_compute():
    assert losses.get("binary_crossentropy") is losses.binary_crossentropy
    assert losses.get("huber") is losses.huber
    assert metrics.binary_crossentropy is losses.binary_crossentropy
    assert losses.name_of(losses.mse) == "mean_squared_error"
    value = polykeras.backend.current().to_numpy(
        losses.mean_squared_error(np.zeros((2, 3), "float32"), np.ones((2, 3), "float32"))
    )
    np.testing.assert_allclose(value, [1, 1])


@pytest.mark.parametrize("optimizer", ["rmsprop", "sgd", "adam"])
def test_get_weights_is_a_snapshot_that_training_does_not_change(optimizer):
    """Keras' get_weights returns copies: a list kept for later (EarlyStopping's best
    weights, a user's checkpoint) must not follow in-place updates, row-sparse ones included."""
    words = Input(shape=(6,))
    model = Model(words, Dense(2)(GlobalAveragePooling1D()(Embedding(20, 4)(words))))
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(0).integers(0, 20, size=(8, 6)).astype("float32")
    kept = model.get_weights()
    copies = [w.copy() for w in kept]
    model.train_on_batch(x, np.ones((8, 2), "float32"))
    for a, b in zip(kept, copies):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(model.get_weights(), copies))
