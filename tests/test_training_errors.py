"""Bad input to compile/fit/evaluate: a clear error, raised before any weight changes."""

from __future__ import annotations

import numpy as np
import pytest

from polykeras.layers import Dense, Embedding, Flatten, Input, concatenate
from polykeras.models import Model
from polykeras.training.data import DataError

RNG = np.random.default_rng(0)


def two_in_two_out():
    main_input = Input(shape=(4,), dtype="int32", name="main_input")
    x = Flatten()(Embedding(input_dim=10, output_dim=3)(main_input))
    aux_input = Input(shape=(5,), name="aux_input")
    x = concatenate([x, aux_input])
    main_output = Dense(1, activation="sigmoid", name="main_output")(x)
    aux_output = Dense(1, activation="sigmoid", name="auxiliary_output")(x)
    model = Model([main_input, aux_input], [main_output, aux_output])
    model.compile("sgd", "binary_crossentropy")
    return model


def classifier(classes=10):
    inputs = Input(shape=(6,))
    model = Model(inputs, Dense(classes, activation="softmax")(inputs))
    model.compile("rmsprop", "categorical_crossentropy", metrics=["accuracy"])
    return model


def good_data(n=8):
    return (
        RNG.integers(0, 10, size=(n, 4)),
        RNG.normal(size=(n, 5)),
        RNG.integers(0, 2, size=(n,)).astype("float32"),
    )


def unchanged(model, call, error=DataError, match=None):
    """``call()`` raises ``error`` (matching ``match``) and leaves every weight as it was."""
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(error, match=match) as info:
        call()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    return str(info.value)


def test_mismatched_sample_counts():
    model = two_in_two_out()
    h, a, y = good_data()
    unchanged(
        model, lambda: model.fit([h, a[:7]], [y, y], verbose=0), match="same number of samples"
    )
    msg = unchanged(
        model, lambda: model.fit([h, a], [y, y[:5]], verbose=0), match="same number of samples"
    )
    assert "(5, 1)" in msg and "auxiliary_output" in msg
    unchanged(
        model,
        lambda: model.fit([h, a], [y[:6], y[:6]], verbose=0),
        match="Found 8 input samples and 6 target samples",
    )


def test_wrong_number_of_arrays():
    model = two_in_two_out()
    h, a, y = good_data()
    unchanged(model, lambda: model.fit(h, [y, y], verbose=0), match="2 inputs")
    unchanged(model, lambda: model.fit([h, a, a], [y, y], verbose=0), match="expects 2 input array")
    unchanged(
        model, lambda: model.fit([h, a], [y, y, y], verbose=0), match="expects 2 target array"
    )


def test_dict_keys_that_are_not_names():
    model = two_in_two_out()
    h, a, y = good_data()
    msg = unchanged(model, lambda: model.fit({"main_input": h, "aux": a}, [y, y], verbose=0))
    assert "['aux']" in msg and "['main_input', 'aux_input']" in msg
    msg = unchanged(
        model,
        lambda: model.fit(
            {"main_input": h, "aux_input": a}, {"main_output": y, "aux_output": y}, verbose=0
        ),
    )
    assert "Unknown entries in target dictionary: ['aux_output']" in msg
    assert "['main_output', 'auxiliary_output']" in msg


def test_compile_errors_name_the_outputs():
    model = two_in_two_out()
    with pytest.raises(ValueError) as err:
        model.compile(
            "rmsprop",
            loss={"main_output": "binary_crossentropy", "aux_output": "binary_crossentropy"},
        )
    assert str(err.value) == (
        "Unknown entries in loss dictionary: ['aux_output']. Only "
        "expected the following keys: ['main_output', "
        "'auxiliary_output']"
    )
    with pytest.raises(ValueError, match="Unknown entries in loss_weights dictionary"):
        model.compile("rmsprop", "mse", loss_weights={"aux_output": 0.2})
    with pytest.raises(ValueError, match="one entry per model output. The model has 2"):
        model.compile("rmsprop", ["mse"])
    with pytest.raises(ValueError, match="one entry per model output"):
        model.compile("rmsprop", "mse", loss_weights=[1.0, 0.5, 0.1])
    with pytest.raises(ValueError, match="Unknown loss function"):
        model.compile("rmsprop", "binary_crossentropyy")
    with pytest.raises(ValueError, match="Unknown optimizer"):
        model.compile("rmsprob", "mse")
    with pytest.raises(ValueError, match="Unknown metric"):
        model.compile("rmsprop", "mse", metrics=["acuracy"])
    with pytest.raises(ValueError, match="needs a loss"):
        model.compile("rmsprop")


def test_symbolic_tensor_as_targets():
    # the 000 guide: model.fit([data_a, data_b], predictions) with predictions a KerasTensor
    a_in, b_in = Input(shape=(3,)), Input(shape=(3,))
    predictions = Dense(1, activation="sigmoid")(concatenate([a_in, b_in]))
    model = Model([a_in, b_in], predictions)
    model.compile("rmsprop", "binary_crossentropy", metrics=["accuracy"])
    msg = unchanged(
        model,
        lambda: model.fit(
            [RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))], predictions, epochs=10, verbose=0
        ),
    )
    assert "symbolic tensor" in msg and "holds no data" in msg and "arrays" in msg
    msg = unchanged(model, lambda: model.fit([a_in, b_in], np.zeros((4, 1)), verbose=0))
    assert "holds no data" in msg


def test_integer_labels_with_categorical_crossentropy():
    model = classifier()
    x = RNG.normal(size=(8, 6))
    labels = RNG.integers(0, 10, size=(8, 1))
    msg = unchanged(model, lambda: model.fit(x, labels, verbose=0))
    assert "sparse_categorical_crossentropy" in msg and "to_categorical" in msg
    unchanged(
        model,
        lambda: model.fit(x, labels[:, 0], verbose=0),
        match="sparse_categorical_crossentropy",
    )
    unchanged(
        model, lambda: model.fit(x, np.zeros((8, 3)), verbose=0), match="expected .* to have shape"
    )
    model.compile("rmsprop", "sparse_categorical_crossentropy")
    unchanged(model, lambda: model.fit(x, labels + 10, verbose=0), match=r"\[0, 10\)")
    unchanged(
        model,
        lambda: model.fit(x, np.eye(10)[labels[:, 0]], verbose=0),
        match="use the loss `categorical_crossentropy`",
    )
    unchanged(model, lambda: model.fit(x, labels + 0.5, verbose=0), match="fractional")


def test_embedding_indices_out_of_range():
    model = two_in_two_out()
    h, a, y = good_data()
    h[3, 2] = 10
    unchanged(
        model, lambda: model.fit([h, a], [y, y], verbose=0), match=r"indices must lie in \[0, 10\)"
    )


def test_nan_and_inf_in_data():
    model = two_in_two_out()
    h, a, y = good_data()
    bad = a.copy()
    bad[0, 0] = np.nan
    unchanged(model, lambda: model.fit([h, bad], [y, y], verbose=0), match="NaN")
    bad_y = y.copy()
    bad_y[2] = np.inf
    unchanged(model, lambda: model.fit([h, a], [y, bad_y], verbose=0), match="NaN or infinite")
    unchanged(
        model,
        lambda: model.fit([h, a], [y, y], validation_data=([h, bad], [y, y]), verbose=0),
        match="validation_data.*NaN",
    )
    unchanged(
        model,
        lambda: model.fit([h, a], [y, y], sample_weight=[np.full(8, np.nan), None], verbose=0),
        match="finite",
    )


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_bad_batch_size(batch_size):
    model = classifier()
    x, y = RNG.normal(size=(8, 6)), np.eye(10)[RNG.integers(0, 10, 8)]
    unchanged(
        model,
        lambda: model.fit(x, y, batch_size=batch_size, verbose=0),
        match="batch_size must be a positive int",
    )
    with pytest.raises(DataError, match="batch_size"):
        model.evaluate(x, y, batch_size=batch_size, verbose=0)


def test_uncompiled_model():
    inputs = Input(shape=(3,))
    model = Model(inputs, Dense(1)(inputs))
    message = (
        "You must compile your model before training/testing. Use `model.compile(optimizer, loss)`."
    )
    x, y = np.zeros((4, 3)), np.zeros((4, 1))
    for call in (
        lambda: model.fit(x, y),
        lambda: model.evaluate(x, y),
        lambda: model.train_on_batch(x, y),
        lambda: model.test_on_batch(x, y),
    ):
        with pytest.raises(RuntimeError) as err:
            call()
        assert str(err.value) == message


def test_other_bad_arguments():
    model = classifier()
    x, y = RNG.normal(size=(8, 6)), np.eye(10)[RNG.integers(0, 10, 8)]
    unchanged(
        model,
        lambda: model.fit(x, y, validation_split=1.5, verbose=0),
        ValueError,
        match="validation_split",
    )
    unchanged(
        model,
        lambda: model.fit(x, y, validation_data=x, verbose=0),
        match="validation_data must be a tuple",
    )
    unchanged(model, lambda: model.fit(x, None, verbose=0), match="no target data")
    unchanged(
        model, lambda: model.fit(x, y, callbacks=[object()], verbose=0), TypeError, match="Callback"
    )
    unchanged(model, lambda: model.fit(x, y, epochs=-1, verbose=0), ValueError, match="epochs")
    unchanged(
        model, lambda: model.fit(x, y, sample_weight=np.ones(5), verbose=0), match="8 samples"
    )
    unchanged(
        model, lambda: model.fit(x, y, shuffle="sometimes", verbose=0), ValueError, match="shuffle"
    )
