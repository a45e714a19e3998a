"""Every numeric setting is checked once, when its object is made: NaN, infinity and values
out of range are refused by name, directly and when they come from a file's config."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from polykeras import initializers as I
from polykeras import regularizers as R
from polykeras.layers import BatchNormalization, Dense, Input
from polykeras.models import Model, model_from_json
from polykeras.utils import as_float

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: I.RandomUniform(minval=-1e309, maxval=1e309), "minval"),
        (lambda: I.RandomUniform(minval=1.0, maxval=0.0), "maxval"),
        (lambda: I.RandomNormal(stddev=INF), "stddev"),
        (lambda: I.RandomNormal(stddev=-1.0), "stddev"),
        (lambda: I.TruncatedNormal(mean=NAN), "mean"),
        (lambda: I.VarianceScaling(scale=NAN), "scale"),
        (lambda: I.VarianceScaling(scale=0.0), "scale"),
        (lambda: I.Orthogonal(gain=NAN), "gain"),
        (lambda: I.Identity(gain=INF), "gain"),
        (lambda: I.Constant(value=NAN), "value"),
        (lambda: R.L1L2(l1=NAN), "l1"),
        (lambda: R.L1L2(l2=-0.1), "l2"),
        (lambda: BatchNormalization(momentum=NAN), "momentum"),
        (lambda: BatchNormalization(momentum=1.5), "momentum"),
        (lambda: BatchNormalization(epsilon=INF), "epsilon"),
    ],
)
def test_bad_numbers_are_refused_by_name(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_good_numbers_still_work():
    assert I.RandomUniform(-1, 1).get_config()["maxval"] == 1.0
    assert I.VarianceScaling(scale=2).scale == 2.0
    assert R.L1L2(l1=0, l2=np.float32(0.5)).l2 == 0.5
    assert BatchNormalization(momentum=0.0).momentum == 0.0


@pytest.mark.parametrize(
    "initializer",
    [
        {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": math.inf}},
        {"class_name": "VarianceScaling", "config": {"scale": math.nan}},
        {"class_name": "Orthogonal", "config": {"gain": math.nan}},
    ],
)
def test_a_config_with_non_finite_numbers_is_refused_not_loaded_with_nan_weights(initializer):
    inp = Input(shape=(3,))
    doc = json.loads(Model(inp, Dense(2)(inp)).to_json())
    for layer in doc["config"]["layers"]:
        if layer["class_name"] == "Dense":
            layer["config"]["kernel_initializer"] = initializer
    text = json.dumps(doc)  # Python's json writes Infinity / NaN, as a hostile file would
    with pytest.raises(Exception, match="finite") as err:
        model_from_json(text)
    assert "dense" in str(err.value).lower()


def test_as_float_messages():
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got 1"):
        as_float(1, "rate", "Dropout", low=0.0, high=1.0, high_open=True)
    with pytest.raises(ValueError, match="must be a number"):
        as_float(True, "rate", "Dropout")
    with pytest.raises(ValueError, match="must be a number"):
        as_float("0.5", "rate", "Dropout")
    assert as_float(np.float64(0.25), "rate", "Dropout") == 0.25


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda O: O.Adam(beta_1=NAN), "beta_1"),
        (lambda O: O.Adam(beta_2=1.0), "beta_2"),
        (lambda O: O.SGD(clipnorm=NAN), "clipnorm"),
        (lambda O: O.SGD(clipvalue=-1.0), "clipvalue"),
        (lambda O: O.SGD(momentum=2.0), "momentum"),
        (lambda O: O.RMSprop(rho=NAN), "rho"),
        (lambda O: O.RMSprop(epsilon=INF), "epsilon"),
        (lambda O: O.Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda O: O.Adam(learning_rate=NAN), "learning_rate"),
        (lambda O: O.Adam(decay=NAN), "decay"),
    ],
)
def test_bad_optimizer_hyperparameters_are_refused_by_name(make, name):
    from polykeras.training import optimizers as O

    with pytest.raises(ValueError, match=name):
        make(O)


def test_a_nan_hyperparameter_in_a_config_is_refused():
    from polykeras.training import optimizers as O

    with pytest.raises(ValueError, match="rho"):
        O.deserialize({"class_name": "RMSprop", "config": {"lr": 0.001, "rho": NAN}})
