"""Subclassed models and layers, custom training steps, GradientTape and add_loss: on every
usable backend, against the functional equivalent and against real Keras 3."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import polykeras as keras
from polykeras import layers, ops
from helpers import backend_params, run_keras3_script

BACKENDS = backend_params()

RNG = np.random.default_rng(21)
X = RNG.normal(size=(32, 5)).astype("float32")
Y = RNG.normal(size=(32, 2)).astype("float32")


class Block(layers.Layer):
    """A custom layer holding a layer of its own and a weight."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.inner = layers.Dense(units)

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(self.units,), initializer="ones")

    def call(self, x):
        return ops.tanh(self.inner(x)) * self.scale


class Net(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense1 = layers.Dense(4, activation="relu")
        self.blocks = [Block(3), Block(3)]
        self.out = layers.Dense(2)

    def call(self, inputs, training=None):
        h = self.dense1(inputs)
        for block in self.blocks:
            h = block(h)
        return self.out(h)


def _weights(n_in=5):
    rng = np.random.default_rng(3)
    shapes = [(n_in, 4), (4,), (3,), (4, 3), (3,), (3,), (3, 3), (3,), (3, 2), (2,)]
    return [rng.normal(scale=0.5, size=s).astype("float32") for s in shapes]


def _functional():
    inp = keras.Input((5,))
    h = layers.Dense(4, activation="relu")(inp)
    for _ in range(2):
        h = Block(3)(h)
    return keras.Model(inp, layers.Dense(2)(h))


@pytest.mark.parametrize("name", BACKENDS)
def test_subclassed_model_equals_functional_model_in_predict_and_training(name):
    with keras.use_backend(name):
        sub = Net()
        sub.build((None, 5))
        fun = _functional()
        # Keras 3's order: a layer's own weights first, then its parts'
        assert [tuple(v.shape) for v in sub.weights] == [w.shape for w in _weights()]
        sub.set_weights(_weights())
        fun.set_weights(_weights())
        np.testing.assert_allclose(sub.predict(X), fun.predict(X), rtol=1e-6, atol=1e-6)
        for m in (sub, fun):
            m.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"])
        h1 = sub.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        h2 = fun.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-5)
        np.testing.assert_allclose(h1.history["mae"], h2.history["mae"], rtol=1e-5)
        for a, b in zip(sub.get_weights(), fun.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            sub.evaluate(X, Y, verbose=0), fun.evaluate(X, Y, verbose=0), rtol=1e-5
        )
        assert [layer.name for layer in sub.layers] == [
            sub.dense1.name,
            sub.blocks[0].name,
            sub.blocks[1].name,
            sub.out.name,
        ]


def test_subclassed_model_is_built_by_its_first_call_and_says_how_before():
    m = Net()
    with pytest.raises(AttributeError, match="not built yet.*build\\(input_shape\\)"):
        m.inputs  # noqa: B018
    assert m.weights == []
    out = m(X[:3])
    assert tuple(ops.shape(out)) == (3, 2)
    assert len(m.weights) == 10 and m.built
    assert m.name.startswith("net")
    m.summary(print_fn=lambda line: None)
    assert m.count_params() == sum(w.size for w in _weights())
    with pytest.raises(NotImplementedError, match="subclassed model.*get_config"):
        m.get_config()


def test_subclassed_model_with_dict_inputs_and_two_outputs():
    class Two(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = layers.Dense(3)
            self.b = layers.Dense(1)

        def call(self, inputs):
            h = self.a(ops.concatenate([inputs["left"], inputs["right"]], axis=-1))
            return [h, self.b(h)]

    m = Two()
    data = {"left": X[:, :2], "right": X[:, 2:]}
    m.compile("sgd", ["mse", "mse"])
    hist = m.fit(data, [Y[:, :1].repeat(3, 1), Y[:, :1]], epochs=1, verbose=0)
    assert set(hist.history) == {"loss", "output_1_loss", "output_2_loss"}
    p = m.predict(data)
    assert [a.shape for a in p] == [(32, 3), (32, 1)]


def test_user_layer_without_compute_output_shape_gets_its_shape_by_running_call():
    inp = keras.Input((7, 5))
    out = Block(6)(inp)
    assert out.shape == (None, 7, 6)
    seq = keras.Input((None, 5))
    assert Block(2)(seq).shape == (None, None, 2)

    class Broken(layers.Layer):
        def call(self, x):
            raise RuntimeError("boom")

    with pytest.raises(ValueError, match="compute_output_shape.*RuntimeError: boom"):
        Broken()(inp)


@pytest.mark.parametrize("name", BACKENDS)
def test_weights_file_of_subclassed_model_loads_into_keras3(name, tmp_path):
    script = textwrap.dedent("""
        import os, sys
        os.environ["KERAS_BACKEND"] = "torch"
        import numpy as np, keras
        from keras import layers, ops
        class Block(layers.Layer):
            def __init__(self, units=3, **kwargs):
                super().__init__(**kwargs)
                self.units = units
                self.inner = layers.Dense(units)
            def build(self, input_shape):
                self.scale = self.add_weight(name="scale", shape=(self.units,),
                                             initializer="ones")
            def call(self, x):
                return ops.tanh(self.inner(x)) * self.scale
        class Net(keras.Model):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.dense1 = layers.Dense(4, activation="relu")
                self.blocks = [Block(3), Block(3)]
                self.out = layers.Dense(2)
            def call(self, inputs, training=None):
                h = self.dense1(inputs)
                for block in self.blocks:
                    h = block(h)
                return self.out(h)
        d = np.load(sys.argv[1])
        m = Net()
        m(d["x"][:2])
        m.load_weights(os.path.join(os.path.dirname(sys.argv[1]), "net.weights.h5"))
        pred = m.predict(d["x"], verbose=0)
        m.save_weights(os.path.join(os.path.dirname(sys.argv[1]), "k3.weights.h5"))
        np.savez(sys.argv[2], pred=pred)
    """)
    with keras.use_backend(name):
        m = Net()
        m.build((None, 5))
        m.set_weights(_weights())
        m.save_weights(tmp_path / "net.weights.h5")
        ref = run_keras3_script(tmp_path, script, {"x": X})
        np.testing.assert_allclose(m.predict(X), ref["pred"], rtol=1e-5, atol=1e-6)
        # and Keras 3's own file loads back here
        again = Net()
        again.build((None, 5))
        again.load_weights(tmp_path / "k3.weights.h5")
        for a, b in zip(again.get_weights(), _weights()):
            np.testing.assert_allclose(a, b)


def test_legacy_h5_weights_round_trip_and_unbuilt_model_is_refused(tmp_path):
    m = Net()
    m.build((None, 5))
    m.set_weights(_weights())
    m.save_weights(tmp_path / "w.h5")
    other = Net()
    with pytest.raises(Exception, match="(?i)not built|build"):
        other.load_weights(tmp_path / "w.h5")
    other.build((None, 5))
    other.load_weights(tmp_path / "w.h5")
    for a, b in zip(other.get_weights(), _weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(Exception, match="(?i)subclass"):
        m.save(tmp_path / "m.h5")


# -- custom training steps --------------------------------------------------------------------
class StepNet(Net):
    """Keras 3's "customizing fit" pattern, with polykeras.GradientTape."""

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
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


@pytest.mark.parametrize("name", BACKENDS)
def test_custom_train_step_with_gradient_tape_equals_builtin_step(name):
    with keras.use_backend(name):
        own, ref = StepNet(), Net()
        for m in (own, ref):
            m.build((None, 5))
            m.set_weights(_weights())
            m.compile(keras.optimizers.Adam(0.01), "mse", metrics=["mae"])
        h_own = own.fit(X, Y, batch_size=32, epochs=3, shuffle=False, verbose=0)
        h_ref = ref.fit(X, Y, batch_size=32, epochs=3, shuffle=False, verbose=0)
        for a, b in zip(own.get_weights(), ref.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        # one batch per epoch: the running means are the batch values
        np.testing.assert_allclose(h_own.history["loss"], h_ref.history["loss"], rtol=1e-5)
        np.testing.assert_allclose(h_own.history["mae"], h_ref.history["mae"], rtol=1e-5)
        logs = own.evaluate(X, Y, verbose=0, return_dict=True)
        np.testing.assert_allclose(
            [logs["loss"], logs["mae"]], ref.evaluate(X, Y, verbose=0), rtol=1e-5
        )


def test_custom_step_logs_are_the_running_results_of_the_last_step():
    m = StepNet()
    m.compile("sgd", "mse", metrics=["mae"])
    hist = m.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0, validation_data=(X, Y))
    assert set(hist.history) == {"loss", "mae", "val_loss", "val_mae"}
    # the loss tracker is the first metric; after the validation its state holds the
    # validation batches (4 of them, reset at the start of the validation)
    assert [x.name for x in m.metrics] == ["loss", "compile_metrics"]
    val_pred = m.predict(X)
    np.testing.assert_allclose(hist.history["val_loss"][0], np.mean((val_pred - Y) ** 2), rtol=1e-5)


def test_gan_style_two_tapes_update_only_their_variables():
    gen = keras.Sequential([layers.Dense(4, input_shape=(2,)), layers.Dense(3)])
    disc = keras.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(1)])
    g_opt, d_opt = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1)
    z = RNG.normal(size=(8, 2)).astype("float32")
    real = RNG.normal(size=(8, 3)).astype("float32")
    g_before, d_before = gen.get_weights(), disc.get_weights()
    with keras.GradientTape() as g_tape, keras.GradientTape() as d_tape:
        fake = gen(z, training=True)
        d_fake = disc(fake, training=True)
        d_real = disc(real, training=True)
        d_loss = ops.mean(ops.softplus(d_fake)) + ops.mean(ops.softplus(-d_real))
        g_loss = ops.mean(ops.softplus(-d_fake))
    g_grads = g_tape.gradient(g_loss, gen.trainable_variables)
    d_grads = d_tape.gradient(d_loss, disc.trainable_variables)
    assert all(g is not None for g in g_grads) and all(g is not None for g in d_grads)
    g_opt.apply_gradients(zip(g_grads, gen.trainable_variables))
    d_opt.apply_gradients(zip(d_grads, disc.trainable_variables))
    assert all(not np.allclose(a, b) for a, b in zip(g_before, gen.get_weights()))
    assert all(not np.allclose(a, b) for a, b in zip(d_before, disc.get_weights()))


def test_gradient_tape_matches_finite_differences_and_refuses_reuse():
    layer = layers.Dense(2)
    x = RNG.normal(size=(4, 3)).astype("float64")
    layer(x.astype("float32"))
    with keras.GradientTape() as tape:
        loss = ops.sum(ops.square(layer(x.astype("float32"))))
    (gk, gb) = tape.gradient(loss, [layer.kernel, layer.bias])
    k, b = layer.kernel.numpy().astype("float64"), layer.bias.numpy().astype("float64")
    out = x @ k + b
    np.testing.assert_allclose(np.asarray(keras.backend.eval(gk)), 2 * x.T @ out, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(keras.backend.eval(gb)), 2 * out.sum(0), rtol=1e-4)
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(loss, [layer.kernel])
    other = layers.Dense(1)
    other.build((None, 3))
    with keras.GradientTape(persistent=True) as tape:
        loss = ops.sum(layer(x.astype("float32")))
    assert tape.gradient(loss, other.kernel) is None
    zeros = tape.gradient(loss, other.kernel, unconnected_gradients="zero")
    assert np.all(np.asarray(keras.backend.eval(zeros)) == 0)
    with pytest.raises(TypeError, match="variables"):
        tape.watch(x)


def test_predict_step_override_is_used():
    class Doubled(Net):
        def predict_step(self, data):
            return self(data, training=False) * 2.0

    m = Doubled()
    plain = Net()
    for net in (m, plain):
        net.build((None, 5))
        net.set_weights(_weights())
    np.testing.assert_allclose(m.predict(X), 2.0 * plain.predict(X), rtol=1e-6)


# -- add_loss and model.losses ---------------------------------------------------------------
class Penalised(layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(input_shape[-1], 2))

    def call(self, x):
        h = ops.matmul(x, self.w)
        self.add_loss(0.5 * ops.mean(ops.square(h)))
        return h


@pytest.mark.parametrize("name", BACKENDS)
def test_add_loss_inside_call_joins_the_training_loss(name):
    with keras.use_backend(name):
        inp = keras.Input((5,))
        layer = Penalised()
        model = keras.Model(inp, layer(inp))
        w = RNG.normal(size=(5, 2)).astype("float32")
        model.set_weights([w])
        model.compile(keras.optimizers.SGD(0.0), "mse")
        loss = model.evaluate(X, Y, batch_size=32, verbose=0)
        h = X @ w
        expected = np.mean((h - Y) ** 2) + 0.5 * np.mean(h**2)
        np.testing.assert_allclose(loss, expected, rtol=1e-5)
        model(X)
        assert len(model.losses) == 1
        np.testing.assert_allclose(
            float(np.asarray(keras.backend.eval(model.losses[0]))), 0.5 * np.mean(h**2), rtol=1e-5
        )


@pytest.mark.parametrize("name", BACKENDS)
def test_symbolic_add_loss_trains_a_model_compiled_without_a_loss(name):
    with keras.use_backend(name):
        inp = keras.Input((5,))
        dense = layers.Dense(5)
        out = dense(inp)
        model = keras.Model(inp, out)
        model.add_loss(ops.mean(ops.square(out - inp)))  # an autoencoder's loss, Keras 2 style
        model.compile(keras.optimizers.SGD(0.05))
        first = model.evaluate(X, None, verbose=0)
        hist = model.fit(X, None, batch_size=8, epochs=5, verbose=0)
        pred = model.predict(X)
        np.testing.assert_allclose(
            hist.history["loss"][-1],
            float(np.mean((model.predict(X) - X) ** 2)),
            rtol=0.2,
        )
        assert hist.history["loss"][-1] < first
        assert pred.shape == (32, 5)
        assert len(model.losses) == 1 and model.losses[0] is model._symbolic_losses[0]


def test_add_loss_of_a_tensor_from_another_graph_is_refused():
    a = keras.Input((3,))
    b = keras.Input((3,))
    model = keras.Model(a, layers.Dense(2)(a))
    with pytest.raises(ValueError, match="not computed from the model's inputs"):
        model.add_loss(ops.mean(layers.Dense(1)(b)))


def test_compile_without_a_loss_then_fit_with_nothing_to_minimise_says_so():
    inp = keras.Input((5,))
    model = keras.Model(inp, layers.Dense(2)(inp))
    with pytest.raises(ValueError, match="needs a loss"):
        model.compile("sgd")
    net = Net()
    net.compile("sgd")
    with pytest.raises(ValueError, match="No loss to compute|nothing"):
        net.fit(X, Y, verbose=0)


def test_learning_phase_is_one_inside_fit_unless_set():
    from polykeras import backend as K

    seen = []

    class Probe(layers.Layer):
        def call(self, x):
            seen.append(K.learning_phase())
            return K.in_train_phase(x * 0.0, x)

    inp = keras.Input((5,))
    model = keras.Model(inp, layers.Dense(2)(Probe()(inp)))
    model.compile("sgd", "mse")
    seen.clear()
    model.fit(X, Y, batch_size=32, epochs=1, verbose=0)
    assert seen == [1]
    seen.clear()
    model.predict(X[:2])
    assert seen == [0]
    with K.learning_phase_scope(0):
        seen.clear()
        model.fit(X, Y, batch_size=32, epochs=1, verbose=0)
        assert seen == [0]


class Configured(keras.Model):
    """A subclassed model with get_config: saved whole in a .keras file."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(units, activation="tanh")
        self.head = layers.Dense(2)

    def call(self, inputs):
        return self.head(self.hidden(inputs))

    def get_config(self):
        return {"units": self.units, "name": self.name}


KERAS3_CONFIGURED = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np, keras
    from keras import layers
    class Configured(keras.Model):
        def __init__(self, units=3, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.hidden = layers.Dense(units, activation="tanh")
            self.head = layers.Dense(2)
        def call(self, inputs):
            return self.head(self.hidden(inputs))
        def get_config(self):
            return {"units": self.units, "name": self.name}
    d = np.load(sys.argv[1])
    folder = os.path.dirname(sys.argv[1])
    m = keras.models.load_model(os.path.join(folder, "ours.keras"),
                                custom_objects={"Configured": Configured})
    pred = m.predict(d["x"], verbose=0)
    m2 = Configured(4)
    m2(d["x"][:2])
    m2.save(os.path.join(folder, "theirs.keras"))
    np.savez(sys.argv[2], pred=pred, theirs=m2.predict(d["x"], verbose=0))
""")


def test_subclassed_model_with_get_config_saves_whole_as_keras3_does(tmp_path):
    m = Configured(3)
    m.compile("sgd", "mse")
    m.fit(X, Y, epochs=1, verbose=0)
    m.save(tmp_path / "ours.keras")
    again = keras.models.load_model(
        tmp_path / "ours.keras", custom_objects={"Configured": Configured}
    )
    assert type(again) is Configured and again.units == 3
    np.testing.assert_allclose(again.predict(X), m.predict(X), rtol=1e-6)
    plain = Net()
    plain(X[:2])
    with pytest.raises(NotImplementedError, match="get_config"):
        plain.save(tmp_path / "net.keras")
    ref = run_keras3_script(tmp_path, KERAS3_CONFIGURED, {"x": X})
    np.testing.assert_allclose(ref["pred"], m.predict(X), rtol=1e-5, atol=1e-6)
    theirs = keras.models.load_model(
        tmp_path / "theirs.keras", custom_objects={"Configured": Configured}
    )
    assert theirs.units == 4
    np.testing.assert_allclose(theirs.predict(X), ref["theirs"], rtol=1e-5, atol=1e-6)
