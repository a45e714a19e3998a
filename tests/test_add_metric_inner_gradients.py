"""``add_metric`` (tf.keras 2: layer-level in ``call``, model-level on symbolic tensors) and
gradients with respect to tensors inside the graph (Grad-CAM, in its Keras 2 form with
``K.gradients`` + ``K.function`` and its Keras 3 form with a tape): on every usable
backend, against values computed by hand (real Keras 3 has no ``add_metric``), against
real Keras 3 with torch autograd, and against finite differences."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import polykeras as keras
from polykeras import backend as K
from polykeras import autodiff, layers, ops
from helpers import backend_params, run_keras3_script

BACKENDS = backend_params()

RNG = np.random.default_rng(16)
X = RNG.normal(size=(40, 4)).astype("float32")
Y = RNG.normal(size=(40, 1)).astype("float32")
XV = RNG.normal(size=(12, 4)).astype("float32")
YV = RNG.normal(size=(12, 1)).astype("float32")


# -- add_metric ---------------------------------------------------------------------------------
class ActivationMean(layers.Layer):
    """tf.keras 2's example: a pass-through layer that logs the mean of its input."""

    def call(self, x):
        self.add_metric(ops.mean(x), name="act_mean", aggregation="mean")
        return x


def _metric_model():
    inp = keras.Input((4,))
    hidden = layers.Dense(3, activation="tanh", name="hidden")(inp)
    out = layers.Dense(1, name="head")(ActivationMean()(hidden))
    model = keras.Model(inp, out)
    model.add_metric(ops.mean(ops.abs(out)), name="abs_out", aggregation="mean")
    return model


class RecordWeights(keras.callbacks.Callback):
    """The weights each training batch starts from (what its logged values are computed
    with)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append(self.model.get_weights())


def _by_hand(weights, x):
    """(mean of the hidden activations, mean |output|) of a batch, in float64."""
    w1, b1, w2, b2 = (np.asarray(w, np.float64) for w in weights)
    h = np.tanh(x.astype(np.float64) @ w1 + b1)
    return h.mean(), np.abs(h @ w2 + b2).mean()


def _batches(n, size):
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


@pytest.mark.parametrize("name", BACKENDS)
def test_add_metric_logs_the_epoch_mean_of_batch_values_train_and_validation(name):
    with keras.use_backend(name):
        keras.utils.set_random_seed(1)
        model = _metric_model()
        model.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"])
        record = RecordWeights()
        hist = model.fit(
            X,
            Y,
            batch_size=16,
            epochs=2,
            shuffle=False,
            verbose=0,
            validation_data=(XV, YV),
            callbacks=[record],
        ).history
        assert list(hist) == [
            "loss",
            "mae",
            "act_mean",
            "abs_out",
            "val_loss",
            "val_mae",
            "val_act_mean",
            "val_abs_out",
        ]
        assert model.metrics_names == ["loss", "mae", "act_mean", "abs_out"]
        # tf.keras 2: each batch's value counts once (a scalar), reset every epoch
        per_batch = _batches(len(X), 16)
        for epoch in range(2):
            starts = record.seen[epoch * len(per_batch) : (epoch + 1) * len(per_batch)]
            values = np.array([_by_hand(w, X[s]) for w, s in zip(starts, per_batch)])
            np.testing.assert_allclose(hist["act_mean"][epoch], values[:, 0].mean(), rtol=1e-4)
            np.testing.assert_allclose(hist["abs_out"][epoch], values[:, 1].mean(), rtol=1e-4)
        # validation: one batch of 12 with the weights at the end of the last epoch
        act, absout = _by_hand(model.get_weights(), XV)
        np.testing.assert_allclose(hist["val_act_mean"][-1], act, rtol=1e-4)
        np.testing.assert_allclose(hist["val_abs_out"][-1], absout, rtol=1e-4)
        assert hist["act_mean"][0] != hist["act_mean"][1]


@pytest.mark.parametrize("name", BACKENDS)
def test_add_metric_in_evaluate_return_dict_and_one_batch_methods(name):
    with keras.use_backend(name):
        keras.utils.set_random_seed(2)
        model = _metric_model()
        model.compile("sgd", "mse")
        weights = model.get_weights()
        logs = model.evaluate(X, Y, batch_size=16, verbose=0, return_dict=True)
        assert list(logs) == ["loss", "act_mean", "abs_out"]
        values = np.array([_by_hand(weights, X[s]) for s in _batches(len(X), 16)])
        np.testing.assert_allclose(logs["act_mean"], values[:, 0].mean(), rtol=1e-4)
        np.testing.assert_allclose(logs["abs_out"], values[:, 1].mean(), rtol=1e-4)
        # a second evaluation starts from fresh metrics
        again = model.evaluate(XV, YV, batch_size=16, verbose=0)
        np.testing.assert_allclose(again[1:], _by_hand(weights, XV), rtol=1e-4)
        # train_on_batch / test_on_batch: that batch's values, in metrics_names order
        out = model.test_on_batch(X[:8], Y[:8])
        np.testing.assert_allclose(out[1:], _by_hand(weights, X[:8]), rtol=1e-4)
        out = model.train_on_batch(X[:8], Y[:8])  # values before the step
        np.testing.assert_allclose(out[1:], _by_hand(weights, X[:8]), rtol=1e-4)
        assert len(out) == len(model.metrics_names) == 3


class SubclassedWithMetric(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(1)

    def call(self, inputs, training=None):
        out = self.dense(inputs)
        self.add_metric(ops.max(out), name="max_out")
        return out


@pytest.mark.parametrize("name", BACKENDS)
def test_add_metric_in_a_subclassed_models_call(name):
    with keras.use_backend(name):
        keras.utils.set_random_seed(3)
        model = SubclassedWithMetric()
        model.compile(keras.optimizers.SGD(0.0), "mse")  # weights stay: values by hand
        hist = model.fit(X, Y, batch_size=20, epochs=1, verbose=0, shuffle=False).history
        w, b = model.get_weights()
        expected = np.mean([(X[s] @ w + b).max() for s in _batches(len(X), 20)])
        np.testing.assert_allclose(hist["max_out"][0], expected, rtol=1e-5)


def test_add_metric_refuses_what_tf_keras_2_refuses_and_what_is_not_supported():
    model = _metric_model()
    inp = model.inputs[0]
    with pytest.raises(ValueError, match="provide a name"):
        model.add_metric(ops.mean(model.outputs[0]))
    with pytest.raises(ValueError, match="aggregation='sum'"):
        model.add_metric(ops.mean(model.outputs[0]), name="m", aggregation="sum")
    with pytest.raises(TypeError, match="unknown keyword"):
        model.add_metric(ops.mean(model.outputs[0]), name="m", sync=True)
    with pytest.raises(ValueError, match="already added"):
        model.add_metric(ops.mean(model.outputs[0]), name="abs_out")
    other = keras.Input((4,))
    with pytest.raises(ValueError, match="not computed from the model's inputs"):
        model.add_metric(ops.mean(layers.Dense(1)(other)), name="elsewhere")
    with pytest.raises(ValueError, match="for models built from Input"):
        layers.Dense(2).add_metric(ops.mean(inp), name="m")
    # a name compile already logs
    model.compile("sgd", "mse", metrics=["mae"])
    model.add_metric(ops.mean(model.outputs[0]), name="mae")
    with pytest.raises(ValueError, match="'mae'.*another name"):
        model.fit(X, Y, epochs=1, verbose=0)


def test_add_metric_under_jit_compile_and_only_in_training_are_refused_by_name():
    model = _metric_model()
    model.compile("sgd", "mse", jit_compile=True)
    with pytest.raises(NotImplementedError, match="jit_compile"):
        model.fit(X, Y, epochs=1, verbose=0)

    class OnlyWhenTraining(layers.Layer):
        def call(self, x, training=None):
            if training:
                self.add_metric(ops.mean(x), name="train_only")
            return x

    inp = keras.Input((4,))
    model = keras.Model(inp, layers.Dense(1)(OnlyWhenTraining()(inp)))
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="train_only.*every call"):
        model.fit(X, Y, epochs=1, verbose=0)


def test_symbolic_add_metric_is_saved_with_the_config():
    model = _metric_model()
    model.compile("sgd", "mse")
    want = model.evaluate(X, Y, verbose=0, return_dict=True)
    again = keras.Model.from_config(model.get_config(), {"ActivationMean": ActivationMean})
    again.set_weights(model.get_weights())
    again.compile("sgd", "mse")
    logs = again.evaluate(X, Y, verbose=0, return_dict=True)
    # the layer's metric lives in its call; the model's symbolic one in an AddMetric entry
    assert list(logs) == ["loss", "act_mean", "abs_out"]
    for key, value in want.items():
        np.testing.assert_allclose(logs[key], value, rtol=1e-6, err_msg=key)


# -- gradients with respect to tensors inside the graph (Grad-CAM) -----------------------------
def _conv_weights():
    rng = np.random.default_rng(5)
    shapes = [(3, 3, 3, 4), (4,), (3, 3, 4, 5), (5,), (5, 3), (3,)]
    return [rng.normal(scale=0.4, size=s).astype("float32") for s in shapes]


IMG = np.random.default_rng(6).normal(size=(2, 10, 10, 3)).astype("float32")


def _conv_net():
    inp = keras.Input((10, 10, 3))
    h = layers.Conv2D(4, 3, activation="relu", name="conv1")(inp)
    h = layers.Conv2D(5, 3, activation="relu", name="last_conv")(h)
    h = layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, layers.Dense(3, activation="softmax", name="preds")(h))
    model.set_weights(_conv_weights())
    return model


def _heatmap(conv_out, pooled):
    heat = np.maximum(conv_out @ pooled, 0)
    return heat / max(heat.max(), 1e-12)


KERAS3_GRAD_CAM = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    import torch

    d = np.load(sys.argv[1])
    inp = keras.Input((10, 10, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inp)
    h = keras.layers.Conv2D(5, 3, activation="relu", name="last_conv")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))
    model.set_weights([d[f"w{i}"] for i in range(6)])
    grad_model = keras.Model(model.inputs, [model.get_layer("last_conv").output, model.output])
    conv_out, preds = grad_model(torch.tensor(d["img"]))
    index = int(torch.argmax(preds[0]))
    (grads,) = torch.autograd.grad(preds[:, index].sum(), conv_out)
    np.savez(
        sys.argv[2],
        grads=grads.detach().cpu().numpy(),
        conv_out=conv_out.detach().cpu().numpy(),
        index=np.array(index),
    )
    """
)


@pytest.fixture(scope="module")
def keras3_grad_cam(tmp_path_factory):
    inputs = {f"w{i}": w for i, w in enumerate(_conv_weights())}
    return run_keras3_script(
        tmp_path_factory.mktemp("gradcam"), KERAS3_GRAD_CAM, {**inputs, "img": IMG}
    )


@pytest.mark.parametrize("name", BACKENDS)
def test_grad_cam_keras2_form_k_gradients_of_an_inner_tensor_matches_keras3(name, keras3_grad_cam):
    ref = keras3_grad_cam
    with keras.use_backend(name):
        model = _conv_net()
        last_conv = model.get_layer("last_conv")
        index = int(np.argmax(model.predict(IMG, verbose=0)[0]))
        assert index == int(ref["index"])
        class_score = model.output[:, index]
        grads = K.gradients(class_score, last_conv.output)[0]
        pooled_grads = K.mean(grads, axis=(0, 1, 2))
        iterate = K.function([model.input], [pooled_grads, last_conv.output[0], grads])
        pooled, conv_out, g = iterate([IMG])
    np.testing.assert_allclose(g, ref["grads"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(conv_out, ref["conv_out"][0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pooled, ref["grads"].mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-7)
    ref_heat = _heatmap(ref["conv_out"][0], ref["grads"].mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(_heatmap(conv_out, pooled), ref_heat, rtol=1e-3, atol=1e-5)


def test_grad_cam_gradient_matches_finite_differences_of_the_head():
    model = _conv_net()
    last_conv = model.get_layer("last_conv")
    index = 1
    grads = K.gradients(model.output[:, index], last_conv.output)[0]
    g, conv_out = K.function([model.input], [grads, last_conv.output])([IMG])
    w, b = (np.asarray(a, np.float64) for a in model.get_layer("preds").get_weights())

    def score(c):  # the head after the convolution, in float64: pooling, dense, softmax
        logits = c.mean(axis=(1, 2)) @ w + b
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return float((e / e.sum(axis=1, keepdims=True))[:, index].sum())

    c = conv_out.astype(np.float64)
    eps = 1e-4
    for idx in [(0, 0, 0, 0), (0, 3, 5, 2), (1, 5, 5, 4), (1, 2, 4, 1)]:
        up, down = c.copy(), c.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric = (score(up) - score(down)) / (2 * eps)
        np.testing.assert_allclose(g[idx], numeric, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("name", BACKENDS)
def test_grad_cam_keras3_form_tape_gradient_of_a_value_computed_inside_matches_keras3(
    name, keras3_grad_cam
):
    ref = keras3_grad_cam
    with keras.use_backend(name):
        B = keras.backend.current()
        model = _conv_net()
        grad_model = keras.Model(model.inputs, [model.get_layer("last_conv").output, model.output])
        with keras.GradientTape() as tape:
            conv_out, preds = grad_model(IMG)
            index = int(np.argmax(B.to_numpy(autodiff.raw(preds))[0]))
            class_channel = preds[:, index]
        grads = tape.gradient(class_channel, conv_out)
        pooled = ops.mean(grads, axis=(0, 1, 2))
        g = np.asarray(B.to_numpy(grads))
        p = np.asarray(B.to_numpy(pooled))
        heat = np.asarray(B.to_numpy(autodiff.raw(conv_out)))[0] @ p
    np.testing.assert_allclose(g, ref["grads"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        heat, ref["conv_out"][0] @ ref["grads"].mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-6
    )


@pytest.mark.parametrize("name", BACKENDS)
def test_inner_gradients_match_finite_differences_and_k_gradients_agrees_with_the_tape(name):
    with keras.use_backend(name):
        keras.utils.set_random_seed(4)
        inp = keras.Input((4,))
        hidden = layers.Dense(5, activation="tanh", name="hidden")
        second = layers.Dense(3, activation="tanh", name="second")
        head = layers.Dense(2, name="head")
        h = hidden(inp)
        h2 = second(h)
        out = head(layers.Concatenate()([h2, h]))  # a skip: two paths from h to the loss
        loss = K.sum(K.square(out))
        g_h, g_h2, g_in = K.gradients(loss, [h, h2, inp])
        values = K.function([inp], [g_h, g_h2, g_in, h, h2])(X[:3])
        # the tail from h (and h2) to the loss, run by hand with the same weights
        w2, b2 = second.get_weights()
        wh, bh = head.get_weights()

        def from_h(hv):
            return float(
                np.sum(np.square(np.concatenate([np.tanh(hv @ w2 + b2), hv], 1) @ wh + bh))
            )

        def from_h2(h2v, hv):
            return float(np.sum(np.square(np.concatenate([h2v, hv], 1) @ wh + bh)))

        hv, h2v = values[3].astype(np.float64), values[4].astype(np.float64)
        eps = 1e-3
        for idx in [(0, 0), (1, 3), (2, 4)]:
            up, down = hv.copy(), hv.copy()
            up[idx] += eps
            down[idx] -= eps
            numeric = (from_h(up) - from_h(down)) / (2 * eps)
            np.testing.assert_allclose(values[0][idx], numeric, rtol=2e-3, atol=1e-4)
        for idx in [(0, 1), (2, 2)]:
            up, down = h2v.copy(), h2v.copy()
            up[idx] += eps
            down[idx] -= eps
            numeric = (from_h2(up, hv) - from_h2(down, hv)) / (2 * eps)
            np.testing.assert_allclose(values[1][idx], numeric, rtol=2e-3, atol=1e-4)
        # the tape gives the same gradient with respect to the hidden value
        B = keras.backend.current()
        inner = keras.Model(inp, [h, out])
        with keras.GradientTape() as tape:
            hv_t, out_t = inner(X[:3])
            total = ops.sum(ops.square(out_t))
        g_tape = np.asarray(B.to_numpy(tape.gradient(total, hv_t)))
        np.testing.assert_allclose(g_tape, values[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", BACKENDS)
def test_unconnected_gradients_none_as_keras2_and_as_the_tape_default(name):
    with keras.use_backend(name):
        inp = keras.Input((4,))
        h = layers.Dense(3, name="h")(inp)
        side = layers.Dense(2, name="side")(inp)  # the loss does not depend on it
        out = layers.Dense(1)(h)
        keras.Model(inp, [out, side])
        grads = K.gradients(K.sum(out), [h, side, keras.Input((4,))])
        assert grads[1] is None and grads[2] is None
        assert tuple(grads[0].shape) == (None, 3)
        assert K.gradients(K.sum(out), side) == [None]
        B = keras.backend.current()
        model = keras.Model(inp, [h, side, out])
        with keras.GradientTape(persistent=True) as tape:
            hv, sv, ov = model(X[:2])
        assert tape.gradient(ops.sum(ov), sv) is None
        zeros = tape.gradient(ops.sum(ov), [sv, hv], unconnected_gradients="zero")
        np.testing.assert_array_equal(B.to_numpy(zeros[0]), np.zeros((2, 2), "float32"))
        assert np.abs(B.to_numpy(zeros[1])).sum() > 0


def test_a_symbolic_metric_added_after_fit_joins_the_logs_and_model_metrics():
    inp = keras.Input((4,))
    out = layers.Dense(1)(inp)
    model = keras.Model(inp, out)
    model.compile("sgd", "mse", metrics=["mae"])
    assert list(model.fit(X, Y, epochs=1, verbose=0).history) == ["loss", "mae"]
    model.add_metric(ops.mean(out), name="mean_out")
    hist = model.fit(X, Y, epochs=1, verbose=0, validation_split=0.25).history
    assert list(hist) == ["loss", "mae", "mean_out", "val_loss", "val_mae", "val_mean_out"]
    assert [m.name for m in model.metrics][-1] == "mean_out"
    w, b = model.get_weights()
    logs = model.evaluate(X, Y, batch_size=len(X), verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["mean_out"], (X @ w + b).mean(), rtol=1e-5)


class OwnStep(keras.Model):
    """A train_step of its own that reports every metric of model.metrics (Keras 3's way)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(1)
        self.stats = ActivationMean()

    def call(self, inputs, training=None):
        return self.dense(self.stats(inputs))

    def train_step(self, data):
        x, y = data
        with keras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
        return {m.name: m.result() for m in self.metrics}


@pytest.mark.parametrize("name", BACKENDS)
def test_add_metric_values_reach_model_metrics_in_a_train_step_of_its_own(name):
    with keras.use_backend(name):
        model = OwnStep()
        model.compile("sgd", "mse")
        hist = model.fit(X, Y, batch_size=16, epochs=2, verbose=0, shuffle=False).history
        assert sorted(hist) == ["act_mean", "loss"]
        expected = np.mean([X[s].mean() for s in _batches(len(X), 16)])
        np.testing.assert_allclose(hist["act_mean"], [expected, expected], rtol=1e-5)
