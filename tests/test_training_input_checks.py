"""Training input checked before any weight changes (issue 20, "Training input"): values
that overflow the model's float type, empty and ragged data, class_weight, every numeric
argument of fit/evaluate/predict, and loss_weights; on numpy and torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import polykeras as keras
from polykeras.layers import Dense, Input
from polykeras.models import Model
from polykeras.training.data import DataError
from helpers import backend_params

BACKENDS = backend_params()

RNG = np.random.default_rng(20)
X = RNG.normal(size=(8, 4))
Y = RNG.normal(size=(8, 1))
LABELS = np.eye(3)[RNG.integers(0, 3, 8)]


@pytest.fixture(params=BACKENDS)
def backend(request):
    with keras.use_backend(request.param):
        yield request.param


def regressor(**compile_kwargs):
    inputs = Input(shape=(4,), name="features")
    model = Model(inputs, Dense(1, name="value")(inputs))
    model.compile("sgd", "mse", **compile_kwargs)
    return model


def classifier():
    inputs = Input(shape=(4,), name="features")
    model = Model(inputs, Dense(3, activation="softmax", name="probs")(inputs))
    model.compile("sgd", "categorical_crossentropy")
    return model


def unchanged(model, call, error=DataError, match=None):
    """``call()`` raises ``error`` (matching ``match``) and leaves every weight as it was."""
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(error, match=match) as info:
        call()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    return str(info.value)


# -- 1. finite in float64, infinite in float32 ---------------------------------------------
def test_inputs_overflowing_float32_are_refused(backend):
    model = regressor()
    big = np.full((8, 4), 1e39)
    for call in (
        lambda: model.fit(big, Y, verbose=0),
        lambda: model.evaluate(big, Y, verbose=0),
        lambda: model.train_on_batch(big, Y),
    ):
        msg = unchanged(model, call, match="overflow float32")
        assert "input features" in msg
    with pytest.raises(DataError, match="input features has values that overflow float32"):
        model.predict(big, verbose=0)


def test_targets_and_sample_weights_overflowing_float32_are_refused(backend):
    model = regressor()
    msg = unchanged(
        model, lambda: model.fit(X, np.full((8, 1), -1e39), verbose=0), match="overflow float32"
    )
    assert "target 'value'" in msg
    msg = unchanged(
        model,
        lambda: model.fit(X, Y, sample_weight=np.full(8, 1e39), verbose=0),
        match="overflow float32",
    )
    assert "sample_weight for output value" in msg
    # each fits float32, their product does not
    model = classifier()
    msg = unchanged(
        model,
        lambda: model.fit(
            X,
            LABELS,
            sample_weight=np.full(8, 1e20),
            class_weight={0: 1e20, 1: 1e20, 2: 1e20},
            verbose=0,
        ),
        match="overflow float32",
    )
    assert "sample_weight times class_weight" in msg


def test_values_within_float32_still_train(backend):
    model = regressor()
    model.fit(np.full((8, 4), 1e3), Y, sample_weight=np.full(8, 2.0), verbose=0)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


# -- 2. empty and ragged data -----------------------------------------------------------------
def test_evaluate_on_empty_arrays_is_refused_like_fit(backend):
    model = regressor()
    empty_x, empty_y = np.zeros((0, 4)), np.zeros((0, 1))
    with pytest.raises(DataError, match="no samples"):
        model.fit(empty_x, empty_y, verbose=0)
    with pytest.raises(DataError, match="evaluate got no samples"):
        model.evaluate(empty_x, empty_y, verbose=0)
    unchanged(model, lambda: model.train_on_batch(empty_x, empty_y), match="no samples")
    with pytest.raises(DataError, match="test_on_batch got no samples"):
        model.test_on_batch(empty_x, empty_y)


def test_ragged_lists_raise_a_data_error_naming_the_input(backend):
    inputs = Input(shape=(2,), name="pair")
    model = Model(inputs, Dense(1, name="out")(inputs))
    model.compile("sgd", "mse")
    ragged = [[1, 2], [3]]
    msg = unchanged(model, lambda: model.fit(ragged, np.zeros((2, 1)), verbose=0), match="ragged")
    assert "input 'pair'" in msg
    with pytest.raises(DataError, match="input 'pair'.*ragged"):
        model.evaluate(ragged, np.zeros((2, 1)), verbose=0)
    with pytest.raises(DataError, match="input 'pair'.*ragged"):
        model.predict(ragged, verbose=0)
    with pytest.raises(DataError, match="target 'out'.*ragged"):
        model.fit(np.zeros((2, 2)), [[1], [2, 3]], verbose=0)
    with pytest.raises(DataError, match="sample_weight 'out'.*ragged"):
        model.fit(np.zeros((2, 2)), np.zeros((2, 1)), sample_weight=[[1], [2, 3]], verbose=0)


# -- 3. class_weight ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "class_weight, match",
    [
        ({0: 1.0, 1: math.nan, 2: 1.0}, r"class_weight: the weight of class 1 must be a finite"),
        ({0: 1.0, 1: -2.0, 2: 1.0}, r"class_weight: the weight of class 1 must be a non-neg"),
        ({0: 1.0, 1: math.inf, 2: 1.0}, r"the weight of class 1 must be a finite"),
        ({0: 1.0, 1: "heavy", 2: 1.0}, r"the weight of class 1 must be a number"),
        ({0: 1.0, 1: 1e39, 2: 1.0}, r"the weight of class 1 .*overflows float32"),
        ({0: 1.0, "one": 1.0, 2: 1.0}, r"class_weight: the key 'one' is not a class index"),
        ({0: 1.0, 1.5: 1.0, 2: 1.0}, r"class_weight: the key 1.5 is not a class index"),
        ({0: 1.0, -1: 1.0, 2: 1.0}, r"class_weight: the key -1 is not a class index"),
        ([1.0, 1.0, 1.0], r"class_weight must be a dict"),
    ],
)
def test_bad_class_weight_is_refused(backend, class_weight, match):
    model = classifier()
    unchanged(
        model, lambda: model.fit(X, LABELS, class_weight=class_weight, verbose=0), match=match
    )
    unchanged(
        model, lambda: model.train_on_batch(X, LABELS, class_weight=class_weight), match=match
    )


def test_class_weight_by_output_name_names_the_output(backend):
    model = classifier()
    unchanged(
        model,
        lambda: model.fit(X, LABELS, class_weight={"probs": {0: 1, 1: -1, 2: 1}}, verbose=0),
        match=r"class_weight\['probs'\]: the weight of class 1",
    )


def test_good_class_weight_still_trains(backend):
    model = classifier()
    model.fit(X, LABELS, class_weight={0: 1, 1: 2.5, np.int64(2): 0.0}, verbose=0)
    model.fit(X, LABELS, class_weight={"probs": {0: 1, 1: 2, 2: 3}}, verbose=0)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


# -- 4. the arguments of fit / evaluate / predict -------------------------------------------
FIT_BAD = [
    ({"epochs": 2, "initial_epoch": -3}, r"fit: initial_epoch must be a non-negative integer"),
    ({"initial_epoch": None}, r"fit: initial_epoch must be a non-negative integer"),
    ({"initial_epoch": 1.5}, r"fit: initial_epoch must be"),
    ({"epochs": "2"}, r"fit: epochs must be a non-negative integer"),
    ({"epochs": 2.5}, r"fit: epochs must be"),
    ({"epochs": -1}, r"fit: epochs must be a non-negative integer"),
    ({"steps_per_epoch": "abc"}, r"fit: steps_per_epoch must be a positive integer"),
    ({"steps_per_epoch": 1.5}, r"fit: steps_per_epoch must be a positive integer"),
    ({"steps_per_epoch": 0}, r"fit: steps_per_epoch must be a positive integer"),
    ({"steps_per_epoch": True}, r"fit: steps_per_epoch must be a positive integer"),
    ({"validation_split": "0.2x"}, r"fit: validation_split must be a number"),
    ({"validation_split": math.nan}, r"fit: validation_split must be a finite number"),
    ({"validation_split": 1.0}, r"fit: validation_split must be in \[0, 1\)"),
    ({"validation_split": -0.1}, r"fit: validation_split must be in \[0, 1\)"),
    ({"validation_steps": 0.5}, r"fit: validation_steps must be a positive integer"),
    ({"validation_steps": "2"}, r"fit: validation_steps must be a positive integer"),
    ({"validation_freq": [0, 2]}, r"fit: validation_freq"),
    ({"validation_freq": 0}, r"fit: validation_freq must be >= 1"),
    ({"verbose": 3}, r"fit: verbose must be 0, 1 or 2"),
    ({"verbose": "loud"}, r"fit: verbose must be 0, 1 or 2"),
    ({"shuffle": "yes"}, r"fit: shuffle must be True, False or 'batch'"),
    ({"shuffle": None}, r"fit: shuffle must be True, False or 'batch'"),
]


@pytest.mark.parametrize("kwargs, match", FIT_BAD)
def test_bad_fit_arguments_name_the_argument(backend, kwargs, match):
    model = regressor()
    unchanged(model, lambda: model.fit(X, Y, **kwargs), error=ValueError, match=match)


def test_bad_batch_size_is_a_data_error_naming_the_call(backend):
    model = regressor()
    for bad in ("32", 1.5, [4], -1):
        unchanged(
            model,
            lambda bad=bad: model.fit(X, Y, batch_size=bad, verbose=0),
            match="fit: batch_size must be a positive integer",
        )
        with pytest.raises(DataError, match="evaluate: batch_size must be a positive integer"):
            model.evaluate(X, Y, batch_size=bad, verbose=0)
        with pytest.raises(DataError, match="predict: batch_size must be a positive integer"):
            model.predict(X, batch_size=bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": "abc"}, r"steps must be a positive integer"),
        ({"steps": 1.5}, r"steps must be a positive integer"),
        ({"steps": 0}, r"steps must be a positive integer"),
        ({"verbose": 5}, r"verbose must be 0, 1 or 2"),
        ({"verbose": None}, r"verbose must be 0, 1 or 2"),
    ],
)
def test_bad_evaluate_and_predict_arguments_name_the_argument(backend, kwargs, match):
    model = regressor()
    with pytest.raises(ValueError, match="evaluate: " + match):
        model.evaluate(X, Y, **kwargs)
    with pytest.raises(ValueError, match="predict: " + match):
        model.predict(X, **kwargs)


def test_bad_arguments_with_batches_from_python(backend):
    model = regressor()

    def batches():
        while True:
            yield X, Y

    with pytest.raises(ValueError, match="fit: steps_per_epoch must be a positive integer"):
        model.fit(batches(), steps_per_epoch=1.5, verbose=0)
    with pytest.raises(ValueError, match="fit: workers must be a non-negative integer"):
        model.fit(batches(), steps_per_epoch=1, workers="2", verbose=0)
    with pytest.raises(ValueError, match="fit: max_queue_size must be a positive integer"):
        model.fit(batches(), steps_per_epoch=1, max_queue_size=0.5, verbose=0)
    with pytest.raises(ValueError, match="evaluate: steps must be a positive integer"):
        model.evaluate(batches(), steps="1")
    with pytest.raises(ValueError, match="predict: steps must be a positive integer"):
        model.predict(batches(), steps=-2)
    with pytest.raises(ValueError, match="fit: validation_split must be"):
        model.fit(batches(), steps_per_epoch=1, validation_split="0.2x", verbose=0)


def test_valid_arguments_keep_working(backend):
    model = regressor()
    history = model.fit(
        X,
        Y,
        batch_size=np.int64(4),
        epochs=np.int32(3),
        initial_epoch=1,
        steps_per_epoch=2.0,  # an integral float reads as 2, as Keras 2 read it
        validation_split=0.25,
        validation_steps=1,
        validation_freq=[2, 3],
        shuffle="batch",
        verbose=0,
    )
    assert history.epoch == [1, 2]
    assert "val_loss" in history.history
    assert model.fit(X, Y, epochs=0, verbose=False).epoch == []
    assert model.fit(X, Y, epochs=2, initial_epoch=2, verbose=0).epoch == []
    assert np.isfinite(model.evaluate(X, Y, batch_size=3, steps=2, verbose=0))
    assert model.predict(X, batch_size=3, steps=np.int64(2)).shape == (6, 1)


# -- 5. loss_weights ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "loss_weights, match",
    [
        ([math.nan], r"compile: loss_weights\[0\] must be a finite number"),
        ({"value": math.inf}, r"compile: loss_weights\['value'\] must be a finite number"),
        (-1.0, r"compile: loss_weights must be a non-negative number"),
        (["1"], r"compile: loss_weights\[0\] must be a number"),
    ],
)
def test_bad_loss_weights_are_refused_in_compile(backend, loss_weights, match):
    inputs = Input(shape=(4,), name="features")
    model = Model(inputs, Dense(1, name="value")(inputs))
    with pytest.raises(ValueError, match=match):
        model.compile("sgd", "mse", loss_weights=loss_weights)


def test_good_loss_weights_still_train(backend):
    for loss_weights in ([0.5], {"value": 2}, 0.0, np.float32(1.5)):
        model = regressor(loss_weights=loss_weights)
        model.fit(X, Y, verbose=0)
        assert all(np.all(np.isfinite(w)) for w in model.get_weights())
