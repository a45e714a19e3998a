"""Keras 3's Ftrl, Lion, Lamb and Adafactor: the same numbers as Keras 3 over several steps,
their configs, their state in files, and their refusals."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import optimizers
from polykeras.engine.variables import Variable

from helpers import run_keras3_script

RNG = np.random.default_rng(11)
W0 = RNG.normal(size=(3, 4))
B0 = RNG.normal(size=(4,))
GRADS = [RNG.normal(size=(3, 4)) for _ in range(5)]
BGRADS = [RNG.normal(size=(4,)) for _ in range(5)]

CONFIGS = {
    "ftrl": ("Ftrl", dict(learning_rate=0.1)),
    "ftrl_reg": (
        "Ftrl",
        dict(
            learning_rate=0.05,
            learning_rate_power=-0.3,
            initial_accumulator_value=0.2,
            l1_regularization_strength=0.01,
            l2_regularization_strength=0.02,
            l2_shrinkage_regularization_strength=0.03,
            beta=0.1,
        ),
    ),
    "lion": ("Lion", dict(learning_rate=0.01)),
    "lion_wd": ("Lion", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.95, weight_decay=0.1)),
    "lamb": ("Lamb", dict(learning_rate=0.01)),
    "lamb_clip": ("Lamb", dict(learning_rate=0.02, clipnorm=0.5, beta_1=0.8)),
    "adafactor": ("Adafactor", dict(learning_rate=0.1)),
    "adafactor_abs": (
        "Adafactor",
        dict(learning_rate=0.05, relative_step=False, clip_threshold=0.5, epsilon_2=0.01),
    ),
    "adafactor_clipvalue": ("Adafactor", dict(learning_rate=0.1, clipvalue=0.4)),
}

KERAS_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import json
    import numpy as np
    import keras
    data = np.load(sys.argv[1])
    configs = json.loads(str(data["configs"]))
    out = {}
    for key, (cls, kw) in configs.items():
        w = keras.Variable(data["w0"], dtype="float64")
        b = keras.Variable(data["b0"], dtype="float64")
        opt = getattr(keras.optimizers, cls)(**kw)
        for g, gb in zip(data["grads"], data["bgrads"]):
            opt.apply_gradients([
                (keras.ops.convert_to_tensor(g, dtype="float64"), w),
                (keras.ops.convert_to_tensor(gb, dtype="float64"), b),
            ])
        out[key + "/w"] = keras.ops.convert_to_numpy(w.value)
        out[key + "/b"] = keras.ops.convert_to_numpy(b.value)
        out[key + "/state"] = np.concatenate(
            [np.ravel(keras.ops.convert_to_numpy(v.value)) for v in opt.variables[2:]]
        )
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def keras3_results(tmp_path_factory):
    import json

    return run_keras3_script(
        tmp_path_factory.mktemp("keras3_opt_extra"),
        KERAS_SCRIPT,
        {
            "w0": W0,
            "b0": B0,
            "grads": np.stack(GRADS),
            "bgrads": np.stack(BGRADS),
            "configs": np.asarray(json.dumps(CONFIGS)),
        },
    )


def _run(opt, dtype="float64"):
    w = Variable(W0.astype(dtype), "w:0")
    b = Variable(B0.astype(dtype), "b:0")
    for g, gb in zip(GRADS, BGRADS):
        opt.apply([g.astype(dtype), gb.astype(dtype)], [w, b])
    return w, b


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_matches_keras3_over_five_steps(keras3_results, key):
    cls, kw = CONFIGS[key]
    opt = getattr(optimizers, cls)(**kw)
    w, b = _run(opt)
    # Keras 3 keeps its learning rate as a float32 variable: relative 1e-7 differences
    np.testing.assert_allclose(w.numpy(), keras3_results[key + "/w"], rtol=2e-6, atol=1e-9)
    np.testing.assert_allclose(b.numpy(), keras3_results[key + "/b"], rtol=2e-6, atol=1e-9)
    state = np.concatenate([np.ravel(v) for _, v in opt.file_state([w, b])[2:]])
    np.testing.assert_allclose(state, keras3_results[key + "/state"], rtol=2e-6, atol=1e-9)
    assert opt.iterations == 5


def test_float32_weights_step_in_float32():
    opt = optimizers.Lamb(learning_rate=0.01)
    w, b = _run(opt, dtype="float32")
    assert w.numpy().dtype == np.float32
    want, _ = _run(optimizers.Lamb(learning_rate=0.01))
    np.testing.assert_allclose(w.numpy(), want.numpy(), rtol=1e-4)


@pytest.mark.parametrize("name", ["ftrl", "lion", "lamb", "adafactor", "Ftrl", "Adafactor"])
def test_get_by_name_and_config_roundtrip(name):
    opt = optimizers.get(name)
    assert type(opt).__name__.lower() == name.lower()
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert type(again) is type(opt) and again.get_config() == opt.get_config()
    assert opt.name == name.lower()


def test_defaults_and_configs_are_keras3s():
    assert optimizers.Ftrl().get_config()["learning_rate_power"] == -0.5
    assert optimizers.Ftrl().get_config()["initial_accumulator_value"] == 0.1
    lion = optimizers.Lion().get_config()
    assert (lion["learning_rate"], lion["beta_1"], lion["beta_2"]) == (0.001, 0.9, 0.99)
    lamb = optimizers.Lamb().get_config()
    assert (lamb["beta_1"], lamb["beta_2"], lamb["epsilon"]) == (0.9, 0.999, 1e-7)
    ada = optimizers.Adafactor().get_config()
    assert ada["beta_2_decay"] == -0.8 and ada["epsilon_1"] == 1e-30
    assert ada["epsilon_2"] == 1e-3 and ada["clip_threshold"] == 1.0 and ada["relative_step"]


def test_loads_a_keras3_config():
    keras3 = {
        "module": "keras.optimizers",
        "class_name": "Lion",
        "config": {
            "name": "lion",
            "learning_rate": 0.0010000000474974513,
            "weight_decay": None,
            "clipnorm": None,
            "global_clipnorm": None,
            "clipvalue": None,
            "use_ema": False,
            "ema_momentum": 0.99,
            "ema_overwrite_frequency": None,
            "loss_scale_factor": None,
            "gradient_accumulation_steps": None,
            "beta_1": 0.8,
            "beta_2": 0.99,
        },
        "registered_name": None,
    }
    opt = optimizers.get(keras3)
    assert isinstance(opt, optimizers.Lion) and opt.beta_1 == 0.8


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: optimizers.Ftrl(learning_rate_power=0.5), "learning_rate_power"),
        (lambda: optimizers.Ftrl(l1_regularization_strength=-1), "l1_regularization_strength"),
        (lambda: optimizers.Ftrl(initial_accumulator_value=-0.1), "initial_accumulator_value"),
        (lambda: optimizers.Lion(beta_1=0.0), "beta_1"),
        (lambda: optimizers.Lion(beta_1=1.5), "beta_1"),
        (lambda: optimizers.Lamb(beta_2=1.0), "beta_2"),
        (lambda: optimizers.Adafactor(beta_2_decay=0.5), "beta_2_decay"),
        (lambda: optimizers.Adafactor(clip_threshold=0.0), "clip_threshold"),
        (lambda: optimizers.Lion(use_ema=True), "use_ema"),
    ],
)
def test_bad_settings_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unknown_argument_is_refused():
    with pytest.raises(TypeError, match="momentum"):
        optimizers.Lamb(momentum=0.9)


def test_adafactor_state_layout_is_keras3s():
    import polykeras as keras

    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,), name="d1")])
    model.compile(optimizers.Adafactor(), "mse")
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)
    layout = [
        (n, tuple(np.shape(v))) for n, v in model.optimizer.file_state(model.trainable_weights)
    ]
    assert [s for _, s in layout] == [(), (), (3,), (2,), (3, 2), (), (), (2,)]
    assert layout[2][0] == "adafactor/kernel" and layout[5][0] == "bias"
    assert layout[4][0].endswith("d1_kernel_velocity")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", ["Ftrl", "Lion", "Lamb", "Adafactor"])
def test_state_survives_a_keras_file(tmp_path, name, suffix):
    import polykeras as keras

    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = np.random.default_rng(1).normal(size=(16, 2)).astype("float32")

    def model():
        polykeras.utils.set_random_seed(3)
        m = keras.Sequential([keras.layers.Dense(2, input_shape=(3,), name="d1")])
        m.compile(getattr(optimizers, name)(learning_rate=0.01), "mse")
        return m

    m = model()
    m.fit(x, y, batch_size=8, epochs=2, verbose=0)
    m.save(tmp_path / f"m{suffix}")
    loaded = keras.models.load_model(tmp_path / f"m{suffix}")
    assert type(loaded.optimizer).__name__ == name
    assert loaded.optimizer.iterations == m.optimizer.iterations == 4
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_exported_under_keras_paths():
    from polykeras.optimizers import Adafactor, Ftrl, Lamb, Lion  # noqa: F401

    assert optimizers.lion is optimizers.Lion


KERAS_FILES_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    data = np.load(sys.argv[1])
    folder = os.path.dirname(sys.argv[1])
    out = {}
    for name in ["Ftrl", "Lion", "Lamb", "Adafactor"]:
        # our file, read by Keras 3
        m = keras.models.load_model(os.path.join(folder, name + "_ours.keras"))
        out[name + "/iterations"] = np.asarray(int(m.optimizer.iterations))
        out[name + "/class"] = np.asarray(type(m.optimizer).__name__)
        out[name + "/state"] = np.concatenate(
            [np.ravel(keras.ops.convert_to_numpy(v.value)) for v in m.optimizer.variables]
        )
        # Keras 3's file, for us to read
        k = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d1")])
        k.compile(getattr(keras.optimizers, name)(learning_rate=0.01), "mse")
        k.fit(data["x"], data["y"], batch_size=8, epochs=2, verbose=0, shuffle=False)
        k.save(os.path.join(folder, name + "_keras3.keras"))
        out[name + "/keras3_state"] = np.concatenate(
            [np.ravel(keras.ops.convert_to_numpy(v.value)) for v in k.optimizer.variables]
        )
    np.savez(sys.argv[2], **out)
""")


def test_keras3_reads_our_state_and_we_read_its(tmp_path):
    import polykeras as keras

    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = 2 * x[:, :2]
    ours = {}
    for name in ["Ftrl", "Lion", "Lamb", "Adafactor"]:
        m = keras.Sequential([keras.layers.Dense(2, input_shape=(3,), name="d1")])
        m.compile(getattr(optimizers, name)(learning_rate=0.01), "mse")
        m.fit(x, y, batch_size=8, epochs=2, verbose=0)
        m.save(tmp_path / f"{name}_ours.keras")
        ours[name] = np.concatenate(
            [np.ravel(v) for _, v in m.optimizer.file_state(m.trainable_weights)]
        )
    ref = run_keras3_script(tmp_path, KERAS_FILES_SCRIPT, {"x": x, "y": y})
    for name, state in ours.items():
        assert str(ref[name + "/class"]) == name
        assert int(ref[name + "/iterations"]) == 4
        np.testing.assert_allclose(ref[name + "/state"], state, rtol=1e-6, err_msg=name)
        loaded = keras.models.load_model(tmp_path / f"{name}_keras3.keras")
        assert type(loaded.optimizer).__name__ == name and loaded.optimizer.iterations == 4
        got = np.concatenate(
            [np.ravel(v) for _, v in loaded.optimizer.file_state(loaded.trainable_weights)]
        )
        np.testing.assert_allclose(got, ref[name + "/keras3_state"], rtol=1e-6, err_msg=name)
