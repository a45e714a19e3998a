"""The optimizer's state goes into whole-model HDF5 files (``optimizer_weights``), named and
ordered as Keras 3 writes it, so that training resumes where it stopped: in polykeras, and
across polykeras and Keras 3 in both directions."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
from helpers import run_keras3_script

import polykeras as keras
from polykeras.models import load_model

OPTIMIZERS = {
    "rmsprop": lambda: keras.optimizers.RMSprop(),
    "rmsprop_centered_momentum": lambda: keras.optimizers.RMSprop(momentum=0.5, centered=True),
    "adam": lambda: keras.optimizers.Adam(),
    "adam_amsgrad": lambda: keras.optimizers.Adam(amsgrad=True),
    "sgd": lambda: keras.optimizers.SGD(),
    "sgd_momentum": lambda: keras.optimizers.SGD(momentum=0.9, nesterov=True),
    "adagrad": lambda: keras.optimizers.Adagrad(),
    "adadelta": lambda: keras.optimizers.Adadelta(learning_rate=1.0),
    "adamax": lambda: keras.optimizers.Adamax(),
    "nadam": lambda: keras.optimizers.Nadam(),
}

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 5)).astype("float32")
Y = RNG.normal(size=(48, 1)).astype("float32")


def _model(optimizer, weights=None):
    inp = keras.Input((5,), name="x")
    hidden = keras.layers.Dense(4, activation="tanh", name="d1")(inp)
    out = keras.layers.Dense(1, name="d2")(hidden)
    model = keras.Model(inp, out)
    if weights is not None:
        model.set_weights(weights)
    # "mean_squared_error", not "mse": Keras 3.15 cannot load its own HDF5 file compiled
    # with loss="mse" ("Could not deserialize 'keras.metrics.mse'")
    model.compile(optimizer, "mean_squared_error")
    return model


def _fit(model, epochs):
    model.fit(X, Y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_training_resumes_exactly_after_save_and_load(tmp_path, name):
    keras.utils.set_random_seed(3)
    model = _model(OPTIMIZERS[name]())
    _fit(model, 2)
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    _fit(model, 1)
    _fit(loaded, 1)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    if name == "sgd":
        return  # plain SGD has no state beyond the step count
    # and the state mattered: a fresh optimizer continues differently
    fresh = _model(OPTIMIZERS[name](), load_model(tmp_path / "m.h5", compile=False).get_weights())
    _fit(fresh, 1)
    assert any(not np.array_equal(a, b) for a, b in zip(model.get_weights(), fresh.get_weights()))


def test_file_layout_is_keras3s(tmp_path):
    model = _model(keras.optimizers.Adam(amsgrad=True))
    _fit(model, 1)
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        group = f["optimizer_weights"]
        names = [n.decode() for n in group.attrs["weight_names"]]
        assert names[:4] == [
            "adam/iteration",
            "adam/learning_rate",
            "adam/d1_kernel_momentum",
            "adam/d1_kernel_velocity",
        ]
        assert names[-1] == "adam/d2_bias_velocity_hat"
        assert len(names) == 2 + 3 * 4
        assert int(group["adam/iteration"][()]) == 3
        assert group["adam/d1_kernel_momentum"].shape == (5, 4)


def test_untrained_model_saves_a_fresh_state(tmp_path):
    model = _model("rmsprop")
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert loaded.optimizer.iterations == 0
    _fit(model, 1)
    _fit(loaded, 1)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_learning_rate_changed_in_training_is_restored(tmp_path):
    model = _model(keras.optimizers.SGD(learning_rate=0.1))
    _fit(model, 1)
    model.optimizer.learning_rate = 0.025  # as ReduceLROnPlateau would
    model.save(tmp_path / "m.h5")
    assert load_model(tmp_path / "m.h5").optimizer.learning_rate == pytest.approx(0.025)


def test_state_that_does_not_fit_warns_and_starts_fresh(tmp_path):
    model = _model("adam")
    _fit(model, 1)
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        del f["optimizer_weights/adam/d1_kernel_momentum"]
        f["optimizer_weights/adam/d1_kernel_momentum"] = np.zeros((3, 3), "float32")
    with pytest.warns(
        UserWarning,
        match="Error in loading the saved optimizer state.*d1_kernel_momentum has shape",
    ):
        loaded = load_model(tmp_path / "m.h5")
    assert loaded.optimizer.iterations == 0
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])


def test_compile_false_ignores_the_state(tmp_path):
    model = _model("adam")
    _fit(model, 1)
    model.save(tmp_path / "m.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model(tmp_path / "m.h5", compile=False)
    assert getattr(loaded, "optimizer", None) is None


def test_include_optimizer_false_writes_no_state(tmp_path):
    model = _model("adam")
    _fit(model, 1)
    model.save(tmp_path / "m.h5", include_optimizer=False)
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert "optimizer_weights" not in f and "training_config" not in f.attrs


def test_row_sparse_embedding_state_is_caught_up_before_saving(tmp_path):
    """RMSprop decays untouched embedding rows lazily; the file holds the exact state."""
    ids = RNG.integers(0, 50, size=(32, 4)).astype("int32")
    target = RNG.normal(size=(32, 1)).astype("float32")

    def build():
        inp = keras.Input((4,), dtype="int32")
        x = keras.layers.Embedding(50, 3, name="emb")(inp)
        out = keras.layers.Dense(1, name="d")(keras.layers.Flatten()(x))
        model = keras.Model(inp, out)
        model.compile("rmsprop", "mse")
        return model

    keras.utils.set_random_seed(0)
    model = build()
    model.fit(ids, target, batch_size=8, epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    for m in (model, loaded):
        m.fit(ids, target, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


KERAS_SCRIPT = r"""
import os, sys, traceback
os.environ["KERAS_BACKEND"] = "torch"
import h5py
import numpy as np
import keras
from keras.src.legacy.saving import legacy_h5_format

data = np.load(sys.argv[1])
folder = os.path.dirname(sys.argv[1])
x, y = data["x"], data["y"]
OPTIMIZERS = dict(zip(str(data["names"]).split(","), str(data["exprs"]).split(";")))
weights = [data[f"w{i}"] for i in range(4)]
out = {}


def model():
    inp = keras.Input((5,), name="x")
    h = keras.layers.Dense(4, activation="tanh", name="d1")(inp)
    m = keras.Model(inp, keras.layers.Dense(1, name="d2")(h))
    m.set_weights(weights)
    return m


def fit(m, epochs):
    m.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)


def run(name):
    m = model()
    m.compile(eval(OPTIMIZERS[name]), "mean_squared_error")
    fit(m, 2)
    m.save(os.path.join(folder, f"k3_{name}.h5"))
    fit(m, 1)
    for i, w in enumerate(m.get_weights()):
        out[f"{name}_k3_cont_{i}"] = w
    # polykeras' file, trained 2 epochs there: Keras reads it and continues.  Keras 3.15's
    # load_model reads the state but then fails to set it (its own files too: the optimizer
    # of the loaded model has no slots, set_weights raises, it warns "Error in loading the
    # saved optimizer state"), so this does what its loader means to: Keras' own reader of
    # optimizer_weights, then set_weights on the built optimizer of a fresh copy.
    path = os.path.join(folder, f"pk_{name}.h5")
    loaded = keras.models.load_model(path)
    with h5py.File(path, "r") as f:
        state = [np.asarray(v)
                 for v in legacy_h5_format.load_optimizer_weights_from_hdf5_group(f)]
    m2 = model()
    m2.set_weights(loaded.get_weights())
    opt = eval(OPTIMIZERS[name])
    m2.compile(opt, "mean_squared_error")
    opt.build(m2.trainable_variables)
    opt.set_weights(state)
    out[f"{name}_k3_iterations_from_pk"] = np.asarray(int(opt.iterations.numpy()))
    fit(m2, 1)
    for i, w in enumerate(m2.get_weights()):
        out[f"{name}_k3_from_pk_{i}"] = w


for name in OPTIMIZERS:
    try:
        run(name)
    except Exception:  # reported per optimizer, as a test failure
        out[f"{name}_error"] = np.array(traceback.format_exc()[-3000:])
np.savez(sys.argv[2], **out)
"""

KERAS_OPTIMIZERS = {
    "rmsprop": "keras.optimizers.RMSprop()",
    "rmsprop_centered_momentum": "keras.optimizers.RMSprop(momentum=0.5, centered=True)",
    "adam": "keras.optimizers.Adam()",
    "adam_amsgrad": "keras.optimizers.Adam(amsgrad=True)",
    "sgd_momentum": "keras.optimizers.SGD(momentum=0.9, nesterov=True)",
    "adagrad": "keras.optimizers.Adagrad()",
    "adadelta": "keras.optimizers.Adadelta(learning_rate=1.0)",
    "adamax": "keras.optimizers.Adamax()",
    "nadam": "keras.optimizers.Nadam()",
}


@pytest.fixture(scope="module")
def keras3_resumed(tmp_path_factory):
    """Both directions for every optimizer: Keras 3 continues polykeras' files, polykeras
    continues Keras 3's."""
    folder = tmp_path_factory.mktemp("keras3_optimizer_state")
    init = _model("sgd").get_weights()
    continued = {}
    for name in KERAS_OPTIMIZERS:
        model = _model(OPTIMIZERS[name](), init)
        _fit(model, 2)
        model.save(folder / f"pk_{name}.h5")
        _fit(model, 1)
        continued[name] = model.get_weights()
    inputs = {
        "x": X,
        "y": Y,
        "names": np.array(",".join(KERAS_OPTIMIZERS)),
        "exprs": np.array(";".join(KERAS_OPTIMIZERS.values())),
    }
    inputs.update({f"w{i}": w for i, w in enumerate(init)})
    outputs = run_keras3_script(folder, KERAS_SCRIPT, inputs)
    return folder, continued, outputs


@pytest.mark.parametrize("name", sorted(KERAS_OPTIMIZERS))
def test_keras3_resumes_polykeras_training(keras3_resumed, name):
    _, continued, outputs = keras3_resumed
    assert f"{name}_error" not in outputs, str(outputs.get(f"{name}_error"))
    assert int(outputs[f"{name}_k3_iterations_from_pk"]) == 6
    for i, w in enumerate(continued[name]):
        np.testing.assert_allclose(outputs[f"{name}_k3_from_pk_{i}"], w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(KERAS_OPTIMIZERS))
def test_polykeras_resumes_keras3_training(keras3_resumed, name):
    folder, _, outputs = keras3_resumed
    assert f"{name}_error" not in outputs, str(outputs.get(f"{name}_error"))
    loaded = load_model(folder / f"k3_{name}.h5")
    assert loaded.optimizer.iterations == 6
    _fit(loaded, 1)
    for i, w in enumerate(loaded.get_weights()):
        np.testing.assert_allclose(w, outputs[f"{name}_k3_cont_{i}"], rtol=1e-4, atol=1e-5)


def test_state_of_an_optimizer_that_never_stepped_loads_without_warning(tmp_path):
    """Keras writes only the step count (tf.keras 2: ``iteration:0``; Keras 3: also
    ``learning_rate``) for an optimizer that made no slots yet: the slots start afresh."""
    model = _model("adam")
    _fit(model, 1)
    for names in (["iteration:0"], ["adam/iteration", "adam/learning_rate"]):
        model.save(tmp_path / "m.h5")
        with h5py.File(tmp_path / "m.h5", "r+") as f:
            del f["optimizer_weights"]
            group = f.create_group("optimizer_weights")
            group.attrs["weight_names"] = [n.encode() for n in names]
            group[names[0]] = np.int64(7)
            if len(names) > 1:
                group[names[1]] = np.float32(0.001)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loaded = load_model(tmp_path / "m.h5")
        assert loaded.optimizer.iterations == 7
        fresh = _model("adam", loaded.get_weights())
        fresh.optimizer.iterations = 7
        _fit(loaded, 1)
        _fit(fresh, 1)
        for a, b in zip(loaded.get_weights(), fresh.get_weights()):
            np.testing.assert_array_equal(a, b)
