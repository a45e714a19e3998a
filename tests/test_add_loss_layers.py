"""Layers that only a symbolic ``add_loss`` / ``add_metric`` tensor reads are the model's
(tf.keras 2 inserts them into ``model.layers``): their weights are trained, counted and
saved with it; and a model nested in another brings its symbolic losses along, so the
outer model compiles without a loss."""

from __future__ import annotations

import numpy as np
import pytest

import polykeras as keras
from polykeras import layers, ops
from helpers import backend_params

BACKENDS = backend_params()
RNG = np.random.default_rng(17)
X = RNG.normal(size=(16, 4)).astype("float32")
Y = RNG.normal(size=(16, 1)).astype("float32")


def _model():
    inp = keras.Input((4,))
    out = layers.Dense(1, name="head")(layers.Dense(3, name="body")(inp))
    side = layers.Dense(2, name="side")(inp)  # read only by the loss
    model = keras.Model(inp, out)
    model.add_loss(ops.multiply(ops.mean(ops.square(side)), 0.5))
    model.add_metric(layers.Dense(1, name="probe")(inp), name="probe_mean")
    return model


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_layers_only_the_loss_reads_are_trained_and_counted(backend):
    with keras.use_backend(backend):
        model = _model()
        names = [layer.name for layer in model.layers]
        # after the graph's own layers, in graph order
        assert names[:3] == ["input_1", "body", "head"]
        assert [n for n in names[3:] if n in ("side", "probe")] == ["side", "probe"]
        assert model.count_params() == 4 * 3 + 3 + 3 + 1 + 4 * 2 + 2 + 4 + 1
        side = model.get_layer("side")
        assert all(any(v is w for w in model.trainable_weights) for v in side.weights)
        before = side.get_weights()[0].copy()
        probe_before = model.get_layer("probe").get_weights()[0].copy()
        model.compile(keras.optimizers.SGD(0.1), "mse")
        kernel = side.get_weights()[0]
        # the loss's own gradient for the side kernel: d/dW 0.5 * mean((xW + b)^2)
        pred = X @ kernel + side.get_weights()[1]
        want = before - 0.1 * (X.T @ pred) / pred.size
        model.fit(X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        np.testing.assert_allclose(side.get_weights()[0], want, rtol=1e-5, atol=1e-6)
        # the metric's layer gets no gradient from the loss: unchanged
        np.testing.assert_allclose(model.get_layer("probe").get_weights()[0], probe_before)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["h5", "keras", "json"])
def test_they_are_saved_and_loaded_with_the_model(backend, how, tmp_path):
    with keras.use_backend(backend):
        model = _model()
        model.compile(keras.optimizers.SGD(0.05), "mse")
        model.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        if how == "json":
            again = keras.models.model_from_json(model.to_json())
            again.set_weights(model.get_weights())
        else:
            path = tmp_path / f"m.{how}"
            model.save(str(path))
            again = keras.models.load_model(str(path), compile=False)
        assert [lay.name for lay in again.layers] == [lay.name for lay in model.layers]
        for a, b in zip(again.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        again.compile(keras.optimizers.SGD(0.05), "mse")
        want = model.evaluate(X, Y, verbose=0, return_dict=True)
        got = again.evaluate(X, Y, verbose=0, return_dict=True)
        assert sorted(got) == sorted(want) == ["loss", "probe_mean"]
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6)
        # training goes on alike
        model.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        again.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        for a, b in zip(again.get_weights(), model.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nested_models_symbolic_loss_lets_the_outer_model_compile_without_one(backend):
    with keras.use_backend(backend):
        inner_in = keras.Input((4,))
        code = layers.Dense(2, name="code")(inner_in)
        inner = keras.Model(inner_in, code, name="inner")
        inner.add_loss(ops.mean(ops.square(code)))
        outer_in = keras.Input((4,))
        outer = keras.Model(outer_in, layers.Dense(1, name="top")(inner(outer_in)))
        expected = float(np.mean(np.square(inner.predict(X, verbose=0))))
        outer.compile(keras.optimizers.SGD(0.1))  # no loss: the inner model brings one
        hist = outer.fit(X, None, batch_size=16, epochs=2, shuffle=False, verbose=0).history
        np.testing.assert_allclose(hist["loss"][0], expected, rtol=1e-5)
        assert hist["loss"][1] < hist["loss"][0]
        # a model with no loss anywhere is still refused at compile
        plain = keras.Model(outer_in, layers.Dense(1)(outer_in))
        with pytest.raises(ValueError, match="compile needs a loss"):
            plain.compile("sgd")
