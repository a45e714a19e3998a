"""Custom code as Keras users write it: ``K.*``, ``ops.*`` and math operators in custom
layers, Lambdas, losses, on symbolic tensors (graph nodes that save and load), and
``K.gradients`` + ``K.function``; on every usable backend, against Keras 3 where it runs."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras as keras
from polykeras import backend as K
from polykeras import layers, ops
from helpers import backend_params, run_keras3_script, torch_unusable_reason

BACKENDS = backend_params()

RNG = np.random.default_rng(14)
X = RNG.normal(size=(16, 3)).astype("float32")
Y = RNG.normal(size=(16, 1)).astype("float32")
W = {
    "w": RNG.normal(scale=0.5, size=(3, 4)).astype("float32"),
    "b": RNG.normal(scale=0.1, size=(4,)).astype("float32"),
    "s": RNG.uniform(0.5, 1.5, size=(4,)).astype("float32"),
    "k": RNG.normal(scale=0.5, size=(4, 1)).astype("float32"),
    "kb": np.zeros((1,), "float32"),
}


class Mixed(layers.Layer):
    """A custom layer computing with K.*, ops.* and plain operators on its weights."""

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(input_shape[-1], 4))
        self.b = self.add_weight(name="b", shape=(4,), initializer="zeros")
        self.s = self.add_weight(name="s", shape=(4,), initializer="ones")

    def call(self, x):
        h = ops.matmul(x, self.w) + self.b
        h = K.tanh(h) * self.s - 0.1 * K.square(h) + (self.w[0] @ self.w.T) @ self.w / 10
        h = h / (1.0 + abs(self.s)) + ops.mean(h, axis=-1, keepdims=True)
        return K.maximum(h, -(self.s**2)) + (h > 0.5) * 0.25

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (4,)


KERAS3_MIXED = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np, keras
    from keras import ops
    d = dict(np.load(sys.argv[1]))

    class Mixed(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(name="w", shape=(input_shape[-1], 4))
            self.b = self.add_weight(name="b", shape=(4,), initializer="zeros")
            self.s = self.add_weight(name="s", shape=(4,), initializer="ones")

        def call(self, x):
            h = ops.matmul(x, self.w) + self.b
            wtw = (self.w[0] @ ops.transpose(self.w)) @ self.w
            h = ops.tanh(h) * self.s - 0.1 * ops.square(h) + wtw / 10
            h = h / (1.0 + abs(self.s)) + ops.mean(h, axis=-1, keepdims=True)
            return ops.maximum(h, -(self.s**2)) + ops.cast(h > 0.5, "float32") * 0.25

    inp = keras.Input((3,))
    out = keras.layers.Dense(1)(Mixed()(inp))
    m = keras.Model(inp, out)
    m.set_weights([d["w"], d["b"], d["s"], d["k"], d["kb"]])
    o = {"before": m.predict(d["x"], verbose=0)}
    m.compile(keras.optimizers.SGD(0.05), "mse")
    h = m.fit(d["x"], d["y"], batch_size=8, epochs=3, shuffle=False, verbose=0)
    o["loss"] = np.array(h.history["loss"])
    o["after"] = m.predict(d["x"], verbose=0)
    for i, w in enumerate(m.get_weights()):
        o[f"w{i}"] = w
    np.savez(sys.argv[2], **o)
""")


def _train_mixed():
    inp = keras.Input((3,))
    m = keras.Model(inp, layers.Dense(1)(Mixed()(inp)))
    m.set_weights([W["w"], W["b"], W["s"], W["k"], W["kb"]])
    out = {"before": m.predict(X)}
    m.compile(keras.optimizers.SGD(0.05), "mse")
    h = m.fit(X, Y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    out["loss"] = np.array(h.history["loss"])
    out["after"] = m.predict(X)
    for i, w in enumerate(m.get_weights()):
        out[f"w{i}"] = w
    return out


@pytest.fixture(scope="module")
def keras3_mixed(tmp_path_factory):
    return run_keras3_script(tmp_path_factory.mktemp("mixed"), KERAS3_MIXED, {"x": X, "y": Y, **W})


@pytest.mark.parametrize("name", BACKENDS)
def test_custom_layer_with_k_ops_and_operators_trains_as_keras3(name, keras3_mixed):
    ref = keras3_mixed
    with keras.use_backend(name):
        got = _train_mixed()
    for key, value in ref.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5, err_msg=key)


def test_custom_layer_gradients_agree_between_core_and_torch():
    if torch_unusable_reason():
        pytest.skip(str(torch_unusable_reason()))
    from polykeras import autodiff

    with keras.use_backend("torch"):
        own = _train_mixed()
        with autodiff.core_differentiation():
            core = _train_mixed()
    for key in own:
        np.testing.assert_allclose(core[key], own[key], rtol=1e-4, atol=1e-5, err_msg=key)


class Antirectifier(layers.Layer):
    """Keras 2's antirectifier example: centre, normalise, keep both signs."""

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[-1] *= 2
        return tuple(shape)

    def call(self, inputs):
        inputs -= K.mean(inputs, axis=1, keepdims=True)
        inputs = K.l2_normalize(inputs, axis=1)
        pos = K.relu(inputs)
        neg = K.relu(-inputs)
        return K.concatenate([pos, neg], axis=1)


@pytest.mark.parametrize("name", BACKENDS)
def test_antirectifier_pattern(name):
    with keras.use_backend(name):
        keras.utils.set_random_seed(1)
        model = keras.Sequential(
            [layers.Dense(8, input_shape=(3,)), Antirectifier(), layers.Dense(1)]
        )
        assert model.output_shape == (None, 1)
        hidden = keras.Model(model.input, model.layers[1].output).predict(X)
        h = X @ model.layers[0].get_weights()[0] + model.layers[0].get_weights()[1]
        h = h - h.mean(1, keepdims=True)
        h = h / np.linalg.norm(h, axis=1, keepdims=True)
        np.testing.assert_allclose(
            hidden, np.concatenate([np.maximum(h, 0), np.maximum(-h, 0)], 1), atol=1e-5
        )
        model.compile("adam", "mse")
        loss = model.fit(X, Y, epochs=5, verbose=0).history["loss"]
        assert loss[-1] < loss[0]


def euclidean_distance(vects):
    x, y = vects
    sum_square = K.sum(K.square(x - y), axis=1, keepdims=True)
    return K.sqrt(K.maximum(sum_square, K.epsilon()))


def contrastive_loss(y_true, y_pred):
    margin = 1
    square_pred = K.square(y_pred)
    margin_square = K.square(K.maximum(margin - y_pred, 0))
    return K.mean(y_true * square_pred + (1 - y_true) * margin_square)


def _siamese():
    keras.utils.set_random_seed(3)
    base_in = keras.Input((3,))
    base = keras.Model(base_in, layers.Dense(4, activation="relu")(base_in))
    a, b = keras.Input((3,)), keras.Input((3,))
    dist = layers.Lambda(euclidean_distance)([base(a), base(b)])
    model = keras.Model([a, b], dist)
    model.compile(keras.optimizers.SGD(0.1), loss=contrastive_loss)
    xa, xb = X, X[::-1].copy()
    same = (np.abs(Y - Y[::-1]) < 0.5).astype("float32")
    hist = model.fit([xa, xb], same, batch_size=8, epochs=3, shuffle=False, verbose=0)
    return hist.history["loss"], model.predict([xa, xb]), model.get_weights()


@pytest.mark.parametrize("name", BACKENDS)
def test_siamese_contrastive_loss_with_k_in_a_lambda(name):
    with keras.use_backend(name):
        loss, pred, weights = _siamese()
    assert pred.shape == (16, 1) and np.all(pred > 0)
    assert loss[-1] < loss[0]
    with keras.use_backend("numpy"):
        ref_loss, ref_pred, _ = _siamese()
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pred, ref_pred, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", BACKENDS)
def test_filter_visualisation_with_k_gradients_and_k_function(name):
    with keras.use_backend(name):
        keras.utils.set_random_seed(2)
        inp = keras.Input((8, 8, 1))
        conv = layers.Conv2D(3, (3, 3), activation="relu", name="block1_conv1")(inp)
        model = keras.Model(inp, layers.Flatten()(conv))
        layer_dict = {layer.name: layer for layer in model.layers}
        out = layer_dict["block1_conv1"].output
        loss = K.mean(out[:, :, :, 1])
        grads = K.gradients(loss, inp)[0]
        grads /= K.sqrt(K.mean(K.square(grads))) + 1e-5
        iterate = K.function([inp], [loss, grads])
        img = np.random.default_rng(0).random((1, 8, 8, 1)).astype("float32") + 0.5
        first, g = iterate([img])
        assert g.shape == (1, 8, 8, 1)
        # the gradient matches central differences of the loss
        f = K.function([inp], loss)
        kernel, bias = layer_dict["block1_conv1"].get_weights()
        raw_g = K.function([inp], K.gradients(loss, [inp])[0])([img])
        eps = 1e-2
        for idx in [(0, 3, 4, 0), (0, 1, 1, 0)]:
            up, down = img.copy(), img.copy()
            up[idx] += eps
            down[idx] -= eps
            numeric = (f([up]) - f([down])) / (2 * eps)
            assert abs(raw_g[idx] - numeric) < 1e-3
        for _ in range(5):
            value, g = iterate([img])
            img += g * 0.1
        assert value > first


@pytest.mark.parametrize("name", BACKENDS)
def test_operators_on_symbolic_tensors_build_train_save_and_load(name, tmp_path):
    with keras.use_backend(name):
        keras.utils.set_random_seed(4)
        inp = keras.Input((3,))
        h = layers.Dense(4)(inp) * 2 + 1
        out = K.sum(h[:, 1:] ** 2, axis=1, keepdims=True) / 10 - abs(-h[:, :1]) + ops.mean(h)
        model = keras.Model(inp, out)
        w, b = model.get_weights()
        ref = (X @ w + b) * 2 + 1
        ref = (ref[:, 1:] ** 2).sum(1, keepdims=True) / 10 - np.abs(ref[:, :1]) + ref.mean()
        np.testing.assert_allclose(model.predict(X), ref, rtol=1e-4, atol=1e-5)
        model.compile("sgd", "mse")
        loss = model.fit(X, Y, epochs=3, verbose=0).history["loss"]
        assert loss[-1] < loss[0]
        config = json.loads(model.to_json())
        ops_named = [
            entry["config"]["op"]
            for entry in config["config"]["layers"]
            if entry["class_name"] == "OpLayer"
        ]
        assert {"multiply", "add", "getitem", "power", "sum", "mean"} <= set(ops_named)
        again = keras.models.model_from_json(model.to_json())
        again.set_weights(model.get_weights())
        np.testing.assert_allclose(again.predict(X), model.predict(X), rtol=1e-5, atol=1e-6)
        path = str(tmp_path / "ops.h5")
        model.save(path)
        loaded = keras.models.load_model(path)
        np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-5, atol=1e-6)


def test_an_op_node_names_only_ops_from_the_table():
    from polykeras.engine.op_layer import OpLayer

    with pytest.raises(ValueError, match="unknown op 'os.system'"):
        OpLayer.from_config({"name": "evil", "op": "os.system", "args": ["ls"], "kwargs": {}})


def test_operator_between_incompatible_shapes_names_both():
    v, u = K.variable(np.ones((2, 3))), K.variable(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 4\)"):
        v + u
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 4\)"):
        v @ u
    a, b = layers.Dense(4)(keras.Input((3,))), layers.Dense(5)(keras.Input((3,)))
    with pytest.raises(ValueError, match=r"\(None, 4\) and \(None, 5\)"):
        a * b
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(a)


def test_operators_on_variables_and_traced_values():
    from polykeras import autodiff

    v = K.variable(np.array([[1.0, -2.0], [3.0, 4.0]]))
    x = K.get_value(v)
    cases = [
        (v + 1, x + 1),
        (1 - v, 1 - x),
        (v * v, x * x),
        (2 / v, 2 / x),
        (v // 2, x // 2),
        (v % 3, x % 3),
        (v**2, x**2),
        (2**v, 2**x),
        (v @ v, x @ x),
        (-v, -x),
        (abs(v), abs(x)),
        (v < 2, x < 2),
        (v >= 3, x >= 3),
        (v[:, 1], x[:, 1]),
        (v.T, x.T),
        (np.float32(3) * v, 3 * x),
        (x + v, x + x),
    ]
    for got, want in cases:
        np.testing.assert_allclose(K.eval(got), want, rtol=1e-6)
    assert v.shape == (2, 2) and v.dtype == "float32"
    # on traced values the same expressions are differentiated
    leaf = autodiff.Traced(K.constant(x))
    loss = K.sum((leaf * 2 + 1) ** 2 / leaf.T[0] - leaf[1])
    (g,) = autodiff.gradients(loss, [leaf])
    eps = 1e-3

    def f(a):
        return np.sum((a * 2 + 1) ** 2 / a.T[0] - a[1])

    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (f(up) - f(down)) / (2 * eps)
    np.testing.assert_allclose(K.eval(g), numeric, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("name", BACKENDS)
def test_k_functions_eagerly_match_numpy(name):
    x = np.arange(12, dtype="float32").reshape(3, 4) - 5
    soft = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    with keras.use_backend(name):
        cases = {
            "sum": (K.sum(x, axis=1), x.sum(1)),
            "mean": (K.mean(x), x.mean()),
            "max": (K.max(x, 0), x.max(0)),
            "min": (K.min(x, 1, keepdims=True), x.min(1, keepdims=True)),
            "prod": (K.prod(x[:, :3] + 0.5, 1), np.prod(x[:, :3] + 0.5, 1)),
            "std": (K.std(x, 1), x.std(1)),
            "var": (K.var(x), x.var()),
            "pow": (K.pow(np.abs(x), 1.5), np.abs(x) ** 1.5),
            "clip": (K.clip(x, -1, 2), np.clip(x, -1, 2)),
            "dot": (K.dot(x, x.T), x @ x.T),
            "batch_dot": (K.batch_dot(x, x, axes=1), (x * x).sum(1, keepdims=True)),
            "permute": (K.permute_dimensions(x, (1, 0)), x.T),
            "reshape": (K.reshape(x, (2, 6)), x.reshape(2, 6)),
            "expand_dims": (K.expand_dims(x), x[..., None]),
            "squeeze": (K.squeeze(x[:, :1], 1), x[:, 0]),
            "concatenate": (K.concatenate([x, x]), np.concatenate([x, x], -1)),
            "stack": (K.stack([x, x]), np.stack([x, x])),
            "repeat_elements": (K.repeat_elements(x, 2, 1), np.repeat(x, 2, 1)),
            "tile": (K.tile(x, (2, 1)), np.tile(x, (2, 1))),
            "flatten": (K.flatten(x), x.ravel()),
            "batch_flatten": (K.batch_flatten(x[None]), x.reshape(1, -1)),
            "gather": (K.gather(x, np.array([2, 0])), x[[2, 0]]),
            "one_hot": (K.one_hot(np.array([1, 0]), 3), np.eye(3)[[1, 0]]),
            "argmax": (K.argmax(x), x.argmax(-1)),
            "argmin": (K.argmin(x, 0), x.argmin(0)),
            "round": (K.round(x / 2), np.round(x / 2)),
            "sign": (K.sign(x), np.sign(x)),
            "switch": (K.switch(K.greater(x, 0), x, -x), np.abs(x)),
            "relu": (
                K.relu(x, alpha=0.1, max_value=3.0),
                np.minimum(np.where(x > 0, x, 0.1 * x), 3),
            ),
            "elu": (K.elu(x), np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1)),
            "hard_sigmoid": (K.hard_sigmoid(x), np.clip(0.2 * x + 0.5, 0, 1)),
            "l2_normalize": (
                K.l2_normalize(x, axis=1),
                x / np.linalg.norm(x, axis=1, keepdims=True),
            ),
            "softmax": (K.softmax(x), soft),
            "categorical_crossentropy": (
                K.categorical_crossentropy(np.eye(4, dtype="float32")[:3], K.softmax(x)),
                -np.log(soft[[0, 1, 2], [0, 1, 2]]),
            ),
            "sparse_categorical_crossentropy": (
                K.sparse_categorical_crossentropy(np.array([0, 1, 2]), x, from_logits=True),
                -np.log(soft[[0, 1, 2], [0, 1, 2]]),
            ),
            "binary_crossentropy": (
                K.binary_crossentropy(np.ones_like(x), K.sigmoid(x)),
                -np.log(np.clip(1 / (1 + np.exp(-x)), 1e-7, 1 - 1e-7)),
            ),
            "zeros_like": (K.zeros_like(x), np.zeros_like(x)),
            "eye": (K.eye(3), np.eye(3)),
        }
        for key, (got, want) in cases.items():
            np.testing.assert_allclose(K.eval(got), want, rtol=1e-5, atol=1e-5, err_msg=key)
        assert K.backend() == name
        v = K.variable(np.ones((2, 2)), name="v")
        K.set_value(v, np.full((2, 2), 3.0))
        assert K.get_value(v).sum() == 12 and K.int_shape(v) == (2, 2)
        assert K.count_params(v) == 4 and K.ndim(v) == 2 and K.dtype(v) == "float32"
        K.batch_set_value([(v, np.zeros((2, 2)))])
        assert K.batch_get_value([v])[0].sum() == 0
        r = K.eval(K.random_normal((2000,), 1.0, 2.0, seed=1))
        assert abs(r.mean() - 1) < 0.2 and abs(r.std() - 2) < 0.2
        u = K.eval(K.random_uniform((100,), -1, 1, seed=2))
        assert u.min() >= -1 and u.max() < 1
        assert set(np.unique(K.eval(K.random_binomial((100,), 0.5, seed=3)))) <= {0.0, 1.0}
        d = K.eval(K.dropout(np.ones((1000,), "float32"), 0.5, seed=4))
        assert set(np.unique(d)) <= {0.0, 2.0}


def test_k_functions_on_symbolic_tensors_become_nodes():
    inp = keras.Input((4,))
    out = K.concatenate([K.softmax(inp), K.expand_dims(K.max(inp, axis=1))], axis=-1)
    out = K.batch_flatten(K.reshape(out, (-1, 5, 1)))
    assert K.int_shape(out) == (None, 5) and K.is_keras_tensor(out)
    model = keras.Model(inp, out)
    x = X[:, :2].repeat(2, 1)
    soft = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    np.testing.assert_allclose(
        model.predict(x), np.concatenate([soft, x.max(1, keepdims=True)], 1), rtol=1e-5
    )
    with pytest.raises(TypeError, match="symbolic tensor"):
        K.eval(inp)


def test_learning_phase_settings():
    assert K.learning_phase() == 0
    assert K.in_train_phase("train", "test") == "test"
    assert K.in_train_phase(lambda: "train", "test", training=True) == "train"
    assert K.in_test_phase("test", "train", training=False) == "test"
    with K.learning_phase_scope(1):
        assert K.learning_phase() == 1
    with pytest.raises(ValueError, match="expected 0 or 1"):
        K.set_learning_phase(2)


def test_backend_selection_stays_reachable_next_to_the_keras_api():
    for name in ("set_backend", "use_backend", "reset_backend", "current", "load", "backends"):
        assert callable(getattr(K, name))
    assert K.backend() == K.current().name
    with pytest.raises(AttributeError, match="no attribute 'not_a_function'"):
        K.not_a_function  # noqa: B018


def test_keras_import_paths():
    import importlib

    from polykeras.activations import leaky_relu, log_softmax, mish, relu, relu6
    from polykeras.callbacks import EarlyStopping  # noqa: F401
    from polykeras.constraints import max_norm  # noqa: F401
    from polykeras.initializers import glorot_uniform, he_normal
    from polykeras.losses import categorical_crossentropy  # noqa: F401
    from polykeras.metrics import categorical_accuracy  # noqa: F401
    from polykeras.optimizers import Adam  # noqa: F401
    from polykeras.regularizers import l2  # noqa: F401
    from polykeras.utils.np_utils import to_categorical

    assert isinstance(he_normal(), keras.initializers.HeNormal)
    assert isinstance(glorot_uniform(), keras.initializers.GlorotUniform)
    assert to_categorical([1], 2).tolist() == [[0.0, 1.0]]
    for mod, name in [
        ("core", "Dense"),
        ("convolutional", "Conv2D"),
        ("recurrent", "LSTM"),
        ("merge", "concatenate"),
        ("normalization", "BatchNormalization"),
        ("embeddings", "Embedding"),
        ("pooling", "MaxPooling2D"),
        ("wrappers", "TimeDistributed"),
    ]:
        assert hasattr(importlib.import_module(f"polykeras.layers.{mod}"), name)
    for mod in ("advanced_activations", "noise"):
        module = importlib.import_module(f"polykeras.layers.{mod}")
        assert all(getattr(module, n) is getattr(keras.layers, n) for n in module.__all__)
    importlib.import_module("polykeras.utils.generic_utils")
    x = np.array([-2.0, -0.5, 0.5, 2.0, 8.0], "float32")
    np.testing.assert_allclose(
        K.eval(relu(x, alpha=0.1, max_value=6.0, threshold=1.0)),
        [-0.3, -0.15, -0.05, 2, 6],
        rtol=1e-6,
    )
    np.testing.assert_allclose(K.eval(leaky_relu(x)), np.where(x > 0, x, 0.2 * x), rtol=1e-6)
    np.testing.assert_allclose(K.eval(relu6(x)), np.clip(x, 0, 6))
    np.testing.assert_allclose(K.eval(mish(x)), x * np.tanh(np.log1p(np.exp(x))), rtol=1e-5)
    np.testing.assert_allclose(
        K.eval(log_softmax(x)), x - np.log(np.exp(x).sum()), rtol=1e-5, atol=1e-6
    )
    assert layers.Dense(2, activation="leaky_relu").get_config()["activation"] == "leaky_relu"


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: K.prod(x + 3.0, axis=1),
        lambda x: K.std(x, axis=0),
        lambda x: K.var(x),
        lambda x: ops.logsumexp(x, axis=1),
        lambda x: ops.log_softmax(x),
        lambda x: K.repeat_elements(x, 2, 0) * K.tile(x, (2, 1)),
        lambda x: K.batch_dot(x, x * x, axes=1),
        lambda x: K.categorical_crossentropy(K.softmax(x * 0.0 + 1.0), K.softmax(x)),
        lambda x: K.binary_crossentropy(K.sigmoid(x * 0.0), K.sigmoid(x)),
        lambda x: K.l2_normalize(x, axis=1),
        lambda x: K.min(x, axis=1) + K.max(x) + K.mean(K.abs(x)),
        lambda x: ops.mish(x) + ops.leaky_relu(x) + K.relu(x, alpha=0.3, max_value=0.5),
        lambda x: K.switch(x > 0.1, K.square(x), x**3) + K.batch_flatten(x[:, None]),
        lambda x: K.squeeze(K.expand_dims(x, 1), 1) / (2.0 + x) - 1.0 / (3.0 - x),
        lambda x: K.round(x) * x + x // 0.5,
    ],
)
def test_core_gradients_of_k_functions_match_finite_differences(fn):
    from polykeras import autodiff

    x = np.random.default_rng(7).normal(size=(3, 4))
    with keras.use_backend("numpy"):
        leaf = autodiff.Traced(K.constant(x, dtype="float64"))
        (g,) = autodiff.gradients(K.sum(fn(leaf)), [leaf])
        eps = 1e-6
        numeric = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            up, down = x.copy(), x.copy()
            up[i] += eps
            down[i] -= eps
            f_up = K.eval(K.sum(fn(K.constant(up, dtype="float64"))))
            f_down = K.eval(K.sum(fn(K.constant(down, dtype="float64"))))
            numeric[i] = (f_up - f_down) / (2 * eps)
    np.testing.assert_allclose(K.eval(g), numeric, rtol=1e-4, atol=1e-6)


class Linear(layers.Layer):
    """Keras 3's guide layer: unnamed weights, shape first."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True
        )
        self.b = self.add_weight((self.units,), "zeros", regularizer="l2", constraint="non_neg")

    def call(self, inputs):
        return inputs @ self.w + self.b

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)


@pytest.mark.parametrize("name", BACKENDS)
def test_keras3_style_add_weight_and_operators_train(name, tmp_path):
    with keras.use_backend(name):
        inp = keras.Input((3,))
        layer = Linear(2)
        model = keras.Model(inp, layer(inp))
        assert [v.name for v in layer.weights] == [
            f"{layer.name}/variable:0",
            f"{layer.name}/variable_1:0",
        ]
        assert layer.b.constraint is not None and layer.b.regularizer is not None
        np.testing.assert_allclose(model.predict(X), X @ layer.w.numpy(), rtol=1e-5, atol=1e-6)
        model.compile("sgd", "mse")
        loss = model.fit(X, np.repeat(Y, 2, 1), epochs=4, verbose=0).history["loss"]
        assert loss[-1] < loss[0]
        path = str(tmp_path / "w.h5")
        model.save_weights(path)
        model.load_weights(path)
    with pytest.raises(TypeError, match="synchronization"):
        layers.Layer().add_weight("w", (2,), synchronization="on_read")


@pytest.mark.parametrize("backend", BACKENDS)
def test_convert_to_numpy(backend):
    """Keras 3's ``keras.ops.convert_to_numpy``: a NumPy copy of a backend array or a
    variable; a symbolic tensor is refused with a message saying why."""
    with keras.use_backend(backend):
        t = ops.convert_to_tensor(np.arange(6, dtype="float32").reshape(2, 3))
        got = ops.convert_to_numpy(t)
        assert type(got) is np.ndarray and got.dtype == np.float32
        np.testing.assert_array_equal(got, np.arange(6).reshape(2, 3))
        v = K.variable(np.ones((2,), "float32"))
        snap = ops.convert_to_numpy(v)
        K.set_value(v, np.zeros((2,), "float32"))
        np.testing.assert_array_equal(snap, [1.0, 1.0])  # a copy, not a view
        np.testing.assert_array_equal(ops.convert_to_numpy([1, 2]), [1, 2])
        with pytest.raises(ValueError, match="symbolic tensor"):
            ops.convert_to_numpy(keras.Input((3,)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_compute_loss_takes_the_list_a_one_output_model_returns(backend):
    """``Model(inp, [out])`` returns ``[tensor]`` when called; ``compute_loss`` takes that
    as Keras does, with the same loss as for the bare tensor."""
    with keras.use_backend(backend):
        inp = keras.Input((3,))
        model = keras.Model(inp, [layers.Dense(1, kernel_initializer="ones")(inp)])
        model.compile(loss="mse", optimizer="sgd")
        pred = model(X)
        assert isinstance(pred, list) and len(pred) == 1
        from_list = ops.convert_to_numpy(model.compute_loss(x=X, y=Y, y_pred=pred))
        bare = ops.convert_to_numpy(model.compute_loss(x=X, y=Y, y_pred=pred[0]))
        want = np.mean((X.sum(axis=1, keepdims=True) - Y) ** 2)
        np.testing.assert_allclose(from_list, bare)
        np.testing.assert_allclose(from_list, want, rtol=1e-5)
