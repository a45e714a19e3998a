"""One training step's gradients equal central finite differences (float64, small models).

The step is ``train_on_batch`` with ``SGD(lr=1)``, so the gradient is the weight change; the
finite differences use ``test_on_batch``.  Runs on every usable backend (NumPy: the core's
differentiation; PyTorch: autograd).
"""

from __future__ import annotations

import numpy as np
import pytest

import polykeras as keras
from polykeras import config, optimizers, regularizers
from polykeras.layers import (
    AveragePooling2D,
    Conv2D,
    Dense,
    Embedding,
    Flatten,
    Input,
    TimeDistributed,
    add,
    concatenate,
    multiply,
    subtract,
)
from polykeras.models import Model

BACKENDS = [b.name for b in keras.backends() if b.usable and b.name in ("numpy", "torch")]
RNG = np.random.default_rng(11)


def dense_model():
    inputs = Input(shape=(4,))
    x = Dense(3, activation="tanh")(inputs)
    return Model(inputs, Dense(2)(x)), RNG.normal(size=(5, 4)), RNG.normal(size=(5, 2)), "mse"


def conv_model():
    inputs = Input(shape=(5, 5, 2))
    x = Conv2D(3, (3, 3), padding="same", activation="tanh")(inputs)
    x = Conv2D(2, (2, 2), strides=(2, 2))(x)
    x = AveragePooling2D((2, 2))(x)
    out = Dense(1, activation="sigmoid")(Flatten()(x))
    y = RNG.integers(0, 2, size=(3, 1)).astype(float)
    return Model(inputs, out), RNG.normal(size=(3, 5, 5, 2)), y, "binary_crossentropy"


def embedding_model():
    inputs = Input(shape=(3,), dtype="int32")
    x = Flatten()(Embedding(6, 4)(inputs))
    out = Dense(3, activation="softmax")(x)
    y = np.eye(3)[RNG.integers(0, 3, 4)]
    return Model(inputs, out), RNG.integers(0, 6, size=(4, 3)), y, "categorical_crossentropy"


def merge_model():
    a, b = Input(shape=(3,)), Input(shape=(3,))
    da, db = Dense(3, activation="tanh")(a), Dense(3, activation="tanh")(b)
    x = concatenate([add([da, db]), multiply([da, db]), subtract([da, db])])
    out = Dense(1, activation="sigmoid")(x)
    y = RNG.integers(0, 2, size=(4, 1)).astype(float)
    return (
        Model([a, b], out),
        [RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))],
        y,
        "binary_crossentropy",
    )


def shared_model():
    a, b = Input(shape=(3,)), Input(shape=(3,))
    shared = Dense(2, activation="tanh")
    out = Dense(1)(concatenate([shared(a), shared(b)]))
    return (
        Model([a, b], out),
        [RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))],
        RNG.normal(size=(4, 1)),
        "mae",
    )


def time_distributed_model():
    inputs = Input(shape=(3, 4))
    x = TimeDistributed(Dense(2, activation="tanh"))(inputs)
    out = Dense(1)(Flatten()(x))
    return Model(inputs, out), RNG.normal(size=(4, 3, 4)), RNG.normal(size=(4, 1)), "logcosh"


def multi_output_model():
    inputs = Input(shape=(3,))
    h = Dense(3, activation="tanh", kernel_regularizer=regularizers.l1_l2(0.01, 0.02))(inputs)
    out_a = Dense(2, activation="softmax", name="a")(h)
    out_b = Dense(1, name="b")(h)
    model = Model(inputs, [out_a, out_b])
    x = RNG.normal(size=(4, 3))
    y = [RNG.integers(0, 2, size=(4,)), RNG.normal(size=(4, 1))]
    return model, x, y, {"a": "sparse_categorical_crossentropy", "b": "mse"}


MODELS = {
    f.__name__: f
    for f in (
        dense_model,
        conv_model,
        embedding_model,
        merge_model,
        shared_model,
        time_distributed_model,
        multi_output_model,
    )
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_step_gradient_matches_finite_differences(name, backend):
    with keras.use_backend(backend):
        config.set_floatx("float64")
        keras.utils.set_random_seed(0)
        model, x, y, loss = MODELS[name]()
        model.compile(
            optimizers.SGD(learning_rate=1.0),
            loss,
            loss_weights=[1.0, 0.3] if isinstance(loss, dict) else None,
        )
        w0 = [w.copy() for w in model.get_weights()]
        assert all(w.dtype == np.float64 for w in w0)
        model.train_on_batch(x, y)
        grads = [a - b for a, b in zip(w0, model.get_weights())]
        h = 1e-6
        rng = np.random.default_rng(0)
        for k, (w, g) in enumerate(zip(w0, grads)):
            flat = rng.choice(w.size, size=min(w.size, 5), replace=False)
            for f in flat:
                idx = np.unravel_index(f, w.shape)
                values = []
                for sign in (1, -1):
                    ws = [a.copy() for a in w0]
                    ws[k][idx] += sign * h
                    model.set_weights(ws)
                    value = model.test_on_batch(x, y)
                    values.append(value[0] if isinstance(value, list) else value)
                numeric = (values[0] - values[1]) / (2 * h)
                np.testing.assert_allclose(
                    g[idx], numeric, rtol=1e-5, atol=1e-8, err_msg=f"{name} weight {k} at {idx}"
                )
