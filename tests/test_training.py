"""Training: compile/fit/evaluate on the guides' models, Keras 2 names, weights, updates."""

from __future__ import annotations

import numpy as np
import pytest

import polykeras as keras
from polykeras import optimizers, regularizers
from polykeras.layers import (
    Conv2D,
    Dense,
    Embedding,
    Flatten,
    Input,
    MaxPooling2D,
    TimeDistributed,
    concatenate,
)
from polykeras.models import Model, Sequential
from polykeras.training.data import DataError

RNG = np.random.default_rng(0)


def _lstm():
    try:
        from polykeras.layers import LSTM
    except ImportError as exc:  # pragma: no cover - while recurrent layers are being written
        pytest.skip(f"LSTM is not available yet (polykeras.layers.LSTM: {exc})")
    return LSTM


def guide_mlp(features=20, hidden=16, classes=4):
    inputs = Input(shape=(features,))
    x = Dense(hidden, activation="relu")(inputs)
    x = Dense(hidden, activation="relu")(x)
    predictions = Dense(classes, activation="softmax")(x)
    return Model(inputs=inputs, outputs=predictions)


def classification_data(n=200, features=20, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features, classes))
    labels = np.argmax(x @ w, axis=1)
    return x, keras.utils.to_categorical(labels, classes), labels


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def falls(history, key="loss", factor=0.8):
    values = history.history[key]
    return values[-1] < factor * values[0]


# -- the guides' models learn ---------------------------------------------------------------------
def test_guide_mlp_learns_and_history_is_keras_shaped():
    keras.utils.set_random_seed(0)
    model = guide_mlp()
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    x, y, _ = classification_data()
    history = model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    assert falls(history)
    assert list(history.history) == ["loss", "accuracy"]
    assert history.epoch == list(range(20))
    assert history.model is model and model.history is history
    assert history.params["epochs"] == 20 and history.params["samples"] == 200
    assert history.params["batch_size"] == 32
    assert history.history["accuracy"][-1] > 0.6
    assert all(isinstance(v, float) for v in history.history["loss"])


def guide_multi_io(vocab=100, length=10):
    LSTM = _lstm()
    main_input = Input(shape=(length,), dtype="int32", name="main_input")
    x = Embedding(output_dim=8, input_dim=vocab, input_length=length)(main_input)
    lstm_out = LSTM(8)(x)
    auxiliary_output = Dense(1, activation="sigmoid", name="auxiliary_output")(lstm_out)
    auxiliary_input = Input(shape=(5,), name="aux_input")
    x = concatenate([lstm_out, auxiliary_input])
    x = Dense(16, activation="relu")(x)
    x = Dense(16, activation="relu")(x)
    main_output = Dense(1, activation="sigmoid", name="main_output")(x)
    return Model(inputs=[main_input, auxiliary_input], outputs=[main_output, auxiliary_output])


def multi_io_data(n=128, vocab=100, length=10, seed=1):
    rng = np.random.default_rng(seed)
    headline = rng.integers(0, vocab, size=(n, length))
    additional = rng.normal(size=(n, 5)).astype("float32")
    labels = (headline[:, -1] < vocab // 2).astype("float32")
    return headline, additional, labels


def test_guide_multi_input_multi_output_model():
    keras.utils.set_random_seed(0)
    model = guide_multi_io()
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", loss_weights=[1.0, 0.2])
    model.optimizer.learning_rate = 0.01  # few steps: learn faster than rmsprop's default
    headline, additional, labels = multi_io_data()
    history = model.fit(
        [headline, additional], [labels, labels], epochs=6, batch_size=32, verbose=0
    )
    assert list(history.history) == ["loss", "main_output_loss", "auxiliary_output_loss"]
    h = history.history
    np.testing.assert_allclose(
        h["loss"][0], h["main_output_loss"][0] + 0.2 * h["auxiliary_output_loss"][0], rtol=1e-5
    )
    assert falls(history, factor=0.95)

    # the 000 guide's dict compile, with the wrong key 'aux_output': Keras' error, names shown
    with pytest.raises(ValueError) as err:
        model.compile(
            optimizer="rmsprop",
            loss={"main_output": "binary_crossentropy", "aux_output": "binary_crossentropy"},
            loss_weights={"main_output": 1.0, "aux_output": 0.2},
        )
    assert str(err.value) == (
        "Unknown entries in loss dictionary: ['aux_output']. Only "
        "expected the following keys: ['main_output', "
        "'auxiliary_output']"
    )
    # with the right names, and dict data
    model.compile(
        optimizer="rmsprop",
        loss={"main_output": "binary_crossentropy", "auxiliary_output": "binary_crossentropy"},
        loss_weights={"main_output": 1.0, "auxiliary_output": 0.2},
        metrics=["acc"],
    )
    history = model.fit(
        {"main_input": headline, "aux_input": additional},
        {"main_output": labels, "auxiliary_output": labels},
        nb_epoch=2,
        batch_size=32,
        verbose=0,
    )
    assert list(history.history) == [
        "loss",
        "main_output_loss",
        "auxiliary_output_loss",
        "main_output_acc",
        "auxiliary_output_acc",
    ]
    result = model.evaluate([headline, additional], [labels, labels], verbose=0)
    assert model.metrics_names == list(history.history)
    assert isinstance(result, list) and len(result) == 5


def test_guide_shared_lstm_model():
    LSTM = _lstm()
    keras.utils.set_random_seed(0)
    tweet_a = Input(shape=(6, 8))
    tweet_b = Input(shape=(6, 8))
    shared_lstm = LSTM(8)
    merged = concatenate([shared_lstm(tweet_a), shared_lstm(tweet_b)], axis=-1)
    predictions = Dense(1, activation="sigmoid")(merged)
    model = Model(inputs=[tweet_a, tweet_b], outputs=predictions)
    model.compile(
        optimizer=optimizers.RMSprop(lr=0.01), loss="binary_crossentropy", metrics=["accuracy"]
    )
    a = RNG.normal(size=(96, 6, 8)).astype("float32")
    b = RNG.normal(size=(96, 6, 8)).astype("float32")
    labels = (a[:, -1, 0] > b[:, -1, 0]).astype("float32")
    history = model.fit([a, b], labels, epochs=10, verbose=0)
    assert list(history.history) == ["loss", "accuracy"]
    assert falls(history, factor=0.9)


def test_guide_shared_vision_model():
    keras.utils.set_random_seed(0)
    digit_input = Input(shape=(7, 7, 1))
    x = Conv2D(4, (3, 3))(digit_input)
    x = Conv2D(4, (3, 3))(x)
    x = MaxPooling2D((2, 2))(x)
    vision_model = Model(digit_input, Flatten()(x))
    digit_a, digit_b = Input(shape=(7, 7, 1)), Input(shape=(7, 7, 1))
    out = Dense(1, activation="sigmoid")(
        concatenate([vision_model(digit_a), vision_model(digit_b)])
    )
    model = Model([digit_a, digit_b], out)
    model.compile(optimizer=optimizers.Adam(lr=0.01), loss="binary_crossentropy", metrics=["acc"])
    a = RNG.normal(size=(128, 7, 7, 1)).astype("float32")
    b = RNG.normal(size=(128, 7, 7, 1)).astype("float32")
    labels = (a.mean(axis=(1, 2, 3)) > b.mean(axis=(1, 2, 3))).astype("float32")
    history = model.fit([a, b], labels, epochs=10, batch_size=16, verbose=0)
    assert list(history.history) == ["loss", "acc"]
    assert falls(history, factor=0.7)


def test_time_distributed_model():
    keras.utils.set_random_seed(0)
    frames = Input(shape=(5, 6))
    per_step = TimeDistributed(Dense(3, activation="tanh"))(frames)
    out = Dense(1)(Flatten()(per_step))
    model = Model(frames, out)
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    x = RNG.normal(size=(128, 5, 6)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None] * 0.1
    history = model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    assert list(history.history) == ["loss", "mae"]
    assert falls(history, factor=0.5)


def test_sequential_compiles_before_it_is_built():
    keras.utils.set_random_seed(0)
    model = Sequential([Dense(8, activation="relu"), Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["acc"])
    x, _, labels = classification_data(features=6)
    history = model.fit(x, labels, epochs=5, verbose=0)
    assert list(history.history) == ["loss", "acc"]
    assert falls(history, factor=0.95)


# -- evaluate / train_on_batch / test_on_batch ----------------------------------------------------
def test_evaluate_returns_scalar_or_list_like_keras2():
    model = guide_mlp()
    model.compile("sgd", "categorical_crossentropy")
    x, y, _ = classification_data(n=50)
    value = model.evaluate(x, y, verbose=0)
    assert isinstance(value, float)
    assert model.metrics_names == ["loss"]
    model.compile("sgd", "categorical_crossentropy", metrics=["acc", "mse"])
    values = model.evaluate(x, y, batch_size=7, verbose=0)
    assert model.metrics_names == ["loss", "acc", "mse"]
    assert len(values) == 3
    np.testing.assert_allclose(values[0], value, rtol=1e-6)
    pred = model.predict(x)
    np.testing.assert_allclose(values[1], np.mean(pred.argmax(1) == y.argmax(1)), rtol=1e-6)
    np.testing.assert_allclose(values[2], np.mean((pred - y) ** 2), rtol=1e-5)


def test_train_on_batch_and_test_on_batch():
    model = guide_mlp()
    model.compile(optimizers.SGD(lr=0.1), "categorical_crossentropy", metrics=["acc"])
    x, y, _ = classification_data(n=64)
    before = model.test_on_batch(x, y)
    first = model.train_on_batch(x, y)
    np.testing.assert_allclose(first, before, rtol=1e-6)  # values before the step
    for _ in range(20):
        model.train_on_batch(x, y)
    after = model.test_on_batch(x, y)
    assert after[0] < before[0]


def test_validation_split_holds_out_the_last_samples():
    model = guide_mlp()
    model.compile(optimizers.SGD(lr=0.0), "categorical_crossentropy", metrics=["acc"])
    x, y, _ = classification_data(n=100)
    history = model.fit(x, y, epochs=1, validation_split=0.2, verbose=0)
    assert list(history.history) == ["loss", "acc", "val_loss", "val_acc"]
    assert history.params["samples"] == 80
    expected = model.evaluate(x[80:], y[80:], verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][0], expected[0], rtol=1e-6)
    np.testing.assert_allclose(history.history["val_acc"][0], expected[1], rtol=1e-6)
    train = model.evaluate(x[:80], y[:80], verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], train[0], rtol=1e-5)


def test_validation_data_tuple():
    model = guide_mlp()
    model.compile("rmsprop", "categorical_crossentropy")
    x, y, _ = classification_data(n=60)
    history = model.fit(x, y, validation_data=(x[:10], y[:10]), epochs=2, verbose=0)
    assert list(history.history) == ["loss", "val_loss"]


# -- reproducibility and epochs -------------------------------------------------------------------
def _seeded_run():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = guide_mlp()
    model.compile("adam", "categorical_crossentropy", metrics=["acc"])
    x, y, _ = classification_data(n=100)
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, shuffle=True)
    return history.history, weights_of(model)


def test_set_random_seed_makes_fit_repeat_exactly():
    h1, w1 = _seeded_run()
    h2, w2 = _seeded_run()
    assert h1 == h2
    assert_same_weights(w1, w2)


def test_shuffle_changes_the_batches():
    keras.utils.set_random_seed(0)
    model = guide_mlp()
    model.compile("adam", "categorical_crossentropy")
    start = weights_of(model)
    x, y, _ = classification_data(n=100)
    a = model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False).history
    model.set_weights(start)
    b = model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=True).history
    assert a["loss"] != b["loss"]


def test_max_epochs_env_caps_fit(monkeypatch):
    monkeypatch.setenv("POLYKERAS_MAX_EPOCHS", "2")
    model = guide_mlp()
    model.compile("sgd", "categorical_crossentropy")
    x, y, _ = classification_data(n=40)
    assert len(model.fit(x, y, epochs=50, verbose=0).epoch) == 2
    assert len(model.fit(x, y, nb_epoch=50, verbose=0).epoch) == 2
    assert len(model.fit(x, y, epochs=1, verbose=0).epoch) == 1
    monkeypatch.setenv("POLYKERAS_MAX_EPOCHS", "zero")
    with pytest.raises(ValueError, match="POLYKERAS_MAX_EPOCHS"):
        model.fit(x, y, epochs=1, verbose=0)


def test_nb_epoch_and_initial_epoch():
    model = guide_mlp()
    model.compile("sgd", "categorical_crossentropy")
    x, y, _ = classification_data(n=40)
    assert model.fit(x, y, nb_epoch=3, verbose=0).epoch == [0, 1, 2]
    assert model.fit(x, y, epochs=5, initial_epoch=3, verbose=0).epoch == [3, 4]
    with pytest.raises(TypeError, match="not understood: nb_epochs"):
        model.fit(x, y, nb_epochs=3)


def test_steps_per_epoch():
    model = guide_mlp()
    model.compile("sgd", "categorical_crossentropy")
    x, y, _ = classification_data(n=40)
    seen = []
    cb = keras.callbacks.LambdaCallback(on_batch_end=lambda b, logs: seen.append(logs["size"]))
    model.fit(x, y, batch_size=16, steps_per_epoch=5, epochs=1, verbose=0, callbacks=[cb])
    assert seen == [16, 16, 8, 16, 16]


# -- weights, regularizers, frozen layers, layer updates ------------------------------------------
def test_sample_weight_and_class_weight():
    model = guide_mlp()
    model.compile(optimizers.SGD(lr=0.0), "categorical_crossentropy")
    x, y, labels = classification_data(n=8)
    per_sample = np.array([model.test_on_batch(x[i : i + 1], y[i : i + 1]) for i in range(8)])
    sw = np.array([1, 0, 2, 0, 1, 1, 0, 3], dtype=float)
    np.testing.assert_allclose(
        model.test_on_batch(x, y, sample_weight=sw), np.mean(per_sample * sw), rtol=1e-5
    )
    cw = {c: float(c + 1) for c in range(4)}
    expected = np.mean(per_sample * (labels + 1))
    np.testing.assert_allclose(
        model.fit(x, y, class_weight=cw, epochs=1, batch_size=8, verbose=0).history["loss"][0],
        expected,
        rtol=1e-5,
    )
    with pytest.raises(DataError, match="must contain all classes"):
        model.fit(x, y, class_weight={0: 1.0}, verbose=0)


def test_regularization_penalty_is_added_to_the_loss():
    inputs = Input(shape=(3,))
    out = Dense(2, kernel_regularizer=regularizers.l2(0.1))(inputs)
    model = Model(inputs, out)
    model.compile("sgd", "mse")
    x = RNG.normal(size=(5, 3)).astype("float32")
    y = RNG.normal(size=(5, 2)).astype("float32")
    pred = model.predict(x)
    kernel = model.get_weights()[0]
    expected = np.mean((pred - y) ** 2) + 0.1 * np.sum(kernel**2)
    np.testing.assert_allclose(model.test_on_batch(x, y), expected, rtol=1e-5)


def test_frozen_layers_are_not_trained():
    inputs = Input(shape=(4,))
    frozen = Dense(4, trainable=False)
    out = Dense(1)(frozen(inputs))
    model = Model(inputs, out)
    model.compile("sgd", "mse")
    before = frozen.get_weights()
    model.fit(RNG.normal(size=(20, 4)), RNG.normal(size=(20, 1)), epochs=2, verbose=0)
    assert_same_weights(before, frozen.get_weights())


class CountingLayer(keras.Layer):
    """Counts the samples it saw while training, through add_update."""

    def build(self, input_shape):
        self.count = self.add_weight("count", (), "zeros", trainable=False)
        self.built = True

    def call(self, inputs, training=None):
        if training:
            B = keras.backend.current()
            n = float(keras.ops.shape(inputs)[0])
            self.add_update(self.count, B.add(self.count.value, n))
        return inputs


def test_layer_updates_are_applied_after_each_step_even_when_nested():
    inner_in = Input(shape=(3,))
    counter = CountingLayer()
    inner = Model(inner_in, Dense(3)(counter(inner_in)))
    td_counter = CountingLayer()
    seq = Input(shape=(2, 3))
    per_step = TimeDistributed(td_counter)(seq)
    x = Flatten()(per_step)
    outer_in = Input(shape=(3,))
    out = Dense(1)(concatenate([inner(outer_in), x]))
    model = Model([outer_in, seq], out)
    model.compile("sgd", "mse")
    model.fit(
        [RNG.normal(size=(10, 3)), RNG.normal(size=(10, 2, 3))],
        RNG.normal(size=(10, 1)),
        batch_size=4,
        epochs=2,
        verbose=0,
    )
    assert float(counter.count.numpy()) == 20
    assert float(td_counter.count.numpy()) == 40  # 2 timesteps per sample
    model.evaluate(
        [RNG.normal(size=(10, 3)), RNG.normal(size=(10, 2, 3))], RNG.normal(size=(10, 1)), verbose=0
    )
    assert float(counter.count.numpy()) == 20  # not while testing


def test_batch_normalization_moving_statistics_update():
    try:
        from polykeras.layers import BatchNormalization
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"BatchNormalization is not available yet: {exc}")
    inputs = Input(shape=(3,))
    bn = BatchNormalization()
    model = Model(inputs, Dense(1)(bn(inputs)))
    model.compile("sgd", "mse")
    x = RNG.normal(loc=5.0, size=(64, 3)).astype("float32")
    model.fit(x, RNG.normal(size=(64, 1)), epochs=3, batch_size=16, verbose=0)
    moving_mean = bn.get_weights()[2]
    assert np.all(moving_mean > 0.5)


# -- both backends give the same training ---------------------------------------------------------
def _usable(name):
    return any(b.name == name and b.usable for b in keras.backends())


@pytest.mark.skipif(not _usable("torch"), reason="the torch backend is not usable here")
def test_numpy_and_torch_train_the_same():
    x, y, _ = classification_data(n=64)
    results = []
    for name in ("numpy", "torch"):
        with keras.use_backend(name):
            keras.backend.clear_session()
            keras.utils.set_random_seed(0)
            model = guide_mlp()
            model.compile("rmsprop", "categorical_crossentropy", metrics=["acc"])
            history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
            results.append((history.history, model.get_weights()))
    (h1, w1), (h2, w2) = results
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-4)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


# -- lazy data ------------------------------------------------------------------------------------
class LazyData:
    def __init__(self):
        self.specs = []

    def __polykeras_data__(self, spec):
        self.specs.append(spec)
        rng = np.random.default_rng(0)
        n = spec.num_samples or 12
        if spec.role == "target":
            classes = spec.hints["num_classes"]
            if spec.hints["loss"] == "sparse_categorical_crossentropy":
                return rng.integers(0, classes, size=(n,))
            return keras.utils.to_categorical(rng.integers(0, classes, size=n), classes)
        return rng.normal(size=(n,) + tuple(spec.shape[1:]))


def test_lazy_targets_get_a_target_spec_with_hints():
    model = guide_mlp()
    model.compile("rmsprop", "categorical_crossentropy", metrics=["accuracy"])
    data, labels = LazyData(), LazyData()
    model.fit(data, labels, verbose=0)
    spec = labels.specs[0]
    assert spec.role == "target" and spec.name == model.output_names[0]
    assert spec.shape == (None, 4) and spec.dtype == "float32" and spec.num_samples == 12
    assert spec.hints == {
        "loss": "categorical_crossentropy",
        "activation": "softmax",
        "num_classes": 4,
    }
    model.compile("rmsprop", "sparse_categorical_crossentropy")
    labels = LazyData()
    model.fit(data, labels, verbose=0)
    assert labels.specs[0].dtype == "int32"


def test_training_config_for_saving():
    model = guide_mlp()
    assert model._training_config() is None
    model.compile(
        optimizers.RMSprop(lr=0.01),
        loss={model.output_names[0]: "mse"},
        metrics=["acc"],
        loss_weights=[0.5],
    )
    cfg = model._training_config()
    assert cfg["optimizer_config"]["class_name"] == "RMSprop"
    assert cfg["optimizer_config"]["config"]["learning_rate"] == 0.01
    assert cfg["loss"] == {model.output_names[0]: "mse"}
    assert cfg["metrics"] == ["acc"] and cfg["loss_weights"] == [0.5]


def test_compiled_model_saves_and_loads_its_compile_settings(tmp_path):
    try:
        from polykeras.models import load_model
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"saving is not available yet: {exc}")
    if not hasattr(Model, "save"):  # pragma: no cover
        pytest.skip("Model.save is not available yet")
    model = guide_mlp()
    model.compile(
        optimizers.SGD(lr=0.3, momentum=0.5, nesterov=True),
        "categorical_crossentropy",
        metrics=["acc"],
    )
    x, y, _ = classification_data(n=20)
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "model.h5")
    model.save(path)
    loaded = load_model(path)
    opt = loaded.optimizer
    assert isinstance(opt, optimizers.SGD)
    assert (opt.learning_rate, opt.momentum, opt.nesterov) == (0.3, 0.5, True)
    assert loaded.metrics_names == ["loss", "acc"]
    np.testing.assert_allclose(
        loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6
    )
    loaded.fit(x, y, epochs=1, verbose=0)  # and it trains


def test_output_left_out_of_the_loss_dict_is_not_trained():
    inputs = Input(shape=(3,))
    a = Dense(1, activation="sigmoid", name="a")(inputs)
    b = Dense(2, name="b")(inputs)
    model = Model(inputs, [a, b])
    with pytest.warns(UserWarning, match="Output b missing from loss dictionary"):
        model.compile("sgd", loss={"a": "binary_crossentropy"}, metrics=["acc"])
    before = model.get_layer("b").get_weights()
    x = RNG.normal(size=(8, 3))
    history = model.fit(x, {"a": (x[:, :1] > 0).astype("float32")}, epochs=2, verbose=0)
    assert list(history.history) == ["loss", "a_loss", "a_acc"]
    assert_same_weights(before, model.get_layer("b").get_weights())


def test_weighted_metrics_and_temporal_sample_weights():
    inputs = Input(shape=(4, 2))
    out = TimeDistributed(Dense(1))(inputs)
    model = Model(inputs, out)
    model.compile(
        optimizers.SGD(lr=0.0),
        "mse",
        metrics=["mae"],
        weighted_metrics=["mae"],
        sample_weight_mode="temporal",
    )
    x = RNG.normal(size=(6, 4, 2)).astype("float32")
    y = RNG.normal(size=(6, 4, 1)).astype("float32")
    sw = RNG.integers(0, 2, size=(6, 4)).astype("float32")
    sw[0, 0] = 1.0
    pred = model.predict(x)
    err = np.abs(pred - y)[..., 0]
    loss, mae, wmae = model.test_on_batch(x, y, sample_weight=sw)
    assert model.metrics_names == ["loss", "mae", "weighted_mae"]
    np.testing.assert_allclose(loss, np.mean(err**2 * sw), rtol=1e-5)
    np.testing.assert_allclose(mae, np.mean(err), rtol=1e-5)
    np.testing.assert_allclose(wmae, np.sum(err * sw) / np.sum(sw), rtol=1e-5)
    with pytest.raises(DataError, match="2-D"):
        model.fit(x, y, sample_weight=np.ones(6), verbose=0)
