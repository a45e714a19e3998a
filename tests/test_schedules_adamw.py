"""Learning-rate schedules, AdamW and Keras 3's weight_decay, the optimizer API of a custom
training step, the radial constraint and Keras' activations: against real Keras 3 (torch
backend) where it runs, and against hand-computed formulas."""

from __future__ import annotations

import json
import textwrap
import warnings
from math import erf, exp, pi, sqrt

import h5py
import numpy as np
import pytest
from helpers import run_keras3_script

import polykeras as keras
from polykeras import optimizers
from polykeras.engine.variables import Variable
from polykeras.models import load_model
from polykeras.optimizers import schedules

RNG = np.random.default_rng(11)
W0 = RNG.normal(size=(3, 4))
B0 = RNG.normal(size=(4,))
GRADS = [(RNG.normal(size=(3, 4)), RNG.normal(size=(4,))) for _ in range(5)]
X = RNG.normal(size=(40, 5)).astype("float32")
Y = RNG.normal(size=(40, 1)).astype("float32")
STEPS = np.arange(0, 60)

# name -> (class name, constructor arguments): the same text builds ours and Keras'
SCHEDULES = {
    "exp": ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.6)),
    "exp_stair": (
        "ExponentialDecay",
        dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.6, staircase=True),
    ),
    "inverse": ("InverseTimeDecay", dict(initial_learning_rate=0.2, decay_steps=5, decay_rate=0.5)),
    "inverse_stair": (
        "InverseTimeDecay",
        dict(initial_learning_rate=0.2, decay_steps=5, decay_rate=0.5, staircase=True),
    ),
    "piecewise": (
        "PiecewiseConstantDecay",
        dict(boundaries=[3, 10, 25], values=[0.5, 0.2, 0.1, 0.01]),
    ),
    "poly": (
        "PolynomialDecay",
        dict(initial_learning_rate=0.1, decay_steps=20, end_learning_rate=0.01, power=2.0),
    ),
    "poly_cycle": (
        "PolynomialDecay",
        dict(initial_learning_rate=0.1, decay_steps=20, power=0.5, cycle=True),
    ),
    "cosine": ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=30, alpha=0.1)),
    "cosine_warmup": (
        "CosineDecay",
        dict(initial_learning_rate=0.0, decay_steps=30, warmup_target=0.2, warmup_steps=10),
    ),
    "restarts": ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=5)),
    "restarts_t1": (
        "CosineDecayRestarts",
        dict(initial_learning_rate=0.1, first_decay_steps=6, t_mul=1.0, m_mul=0.5, alpha=0.1),
    ),
}

# name -> the optimizer, written once for both (``S`` is the schedules module)
OPTIMIZERS = {
    "adamw": "AdamW(learning_rate=0.01)",
    "adamw_amsgrad": "AdamW(learning_rate=0.01, weight_decay=0.1, amsgrad=True)",
    "sgd_wd": "SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.05)",
    "rmsprop_wd": "RMSprop(learning_rate=0.01, weight_decay=0.2)",
    "adam_exp": "Adam(learning_rate=S.ExponentialDecay(0.05, 2, 0.5))",
    "sgd_piecewise": "SGD(learning_rate=S.PiecewiseConstantDecay([1, 3], [0.3, 0.1, 0.01]))",
    "adamw_cosine": "AdamW(learning_rate=S.CosineDecay(0.0, 4, 0.0, 'c', 0.02, 2))",
    "adamw_clip": "AdamW(learning_rate=0.01, weight_decay=0.3, clipnorm=0.5)",
}

KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    S = keras.optimizers.schedules
    data = np.load(sys.argv[1])
    spec = json.loads(str(data["spec"]))
    out = {}
    configs = {}
    for name, (cls, kw) in spec["schedules"].items():
        sched = getattr(S, cls)(**kw)
        out["sched_" + name] = np.array(
            [float(keras.ops.convert_to_numpy(sched(int(s)))) for s in data["steps"]]
        )
        configs["sched_" + name] = S.serialize(sched)
    for name, expr in spec["optimizers"].items():
        opt = eval("keras.optimizers." + expr)
        kernel = keras.Variable(data["w0"], dtype="float64", name="kernel")
        bias = keras.Variable(data["b0"], dtype="float64", name="bias")
        if name.startswith("adamw"):
            opt.exclude_from_weight_decay(var_names=["bias"])
        for i in range(len(data["gk"])):
            grads = [keras.ops.convert_to_tensor(data["gk"][i], dtype="float64"),
                     keras.ops.convert_to_tensor(data["gb"][i], dtype="float64")]
            opt.apply_gradients(zip(grads, [kernel, bias]))
        out["opt_" + name + "_kernel"] = keras.ops.convert_to_numpy(kernel.value)
        out["opt_" + name + "_bias"] = keras.ops.convert_to_numpy(bias.value)
        out["opt_" + name + "_lr"] = np.array(float(keras.ops.convert_to_numpy(opt.learning_rate)))
        configs["opt_" + name] = opt.get_config()

    # a model trained by fit with AdamW on a schedule; its file, saved mid-way
    def model():
        inp = keras.Input((5,), name="x")
        h = keras.layers.Dense(4, activation="tanh", name="d1")(inp)
        m = keras.Model(inp, keras.layers.Dense(1, name="d2")(h))
        m.set_weights([data[f"m{i}"] for i in range(4)])
        return m
    m = model()
    m.compile(eval("keras.optimizers." + spec["fit"]), "mean_squared_error")
    m.fit(data["x"], data["y"], batch_size=8, epochs=2, shuffle=False, verbose=0)
    m.save(os.path.join(os.path.dirname(sys.argv[1]), "k3_adamw.h5"))
    configs["fit_optimizer"] = m.optimizer.get_config()
    out["fit_names"] = np.array(",".join(v.path for v in m.optimizer.variables))
    m.fit(data["x"], data["y"], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for i, w in enumerate(m.get_weights()):
        out[f"fit_{i}"] = w
    out["fit_lr"] = np.array(float(keras.ops.convert_to_numpy(m.optimizer.learning_rate)))

    # polykeras' file, trained 2 epochs there: Keras reads it and continues (its optimizer
    # state through Keras' own reader, as tests/test_saving_optimizer.py explains)
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    path = os.path.join(os.path.dirname(sys.argv[1]), "pk_adamw.h5")
    loaded = keras.models.load_model(path)
    configs["pk_loaded_optimizer"] = loaded.optimizer.get_config()
    with h5py.File(path, "r") as f:
        state = [np.asarray(v)
                 for v in legacy_h5_format.load_optimizer_weights_from_hdf5_group(f)]
    m2 = model()
    m2.set_weights(loaded.get_weights())
    opt = eval("keras.optimizers." + spec["fit"])
    m2.compile(opt, "mean_squared_error")
    opt.build(m2.trainable_variables)
    opt.set_weights(state)
    out["from_pk_iterations"] = np.array(int(keras.ops.convert_to_numpy(opt.iterations)))
    m2.fit(data["x"], data["y"], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for i, w in enumerate(m2.get_weights()):
        out[f"from_pk_{i}"] = w
    out["configs"] = np.array(json.dumps(configs, default=str))
    np.savez(sys.argv[2], **out)
""")

FIT_OPTIMIZER = "AdamW(learning_rate=S.ExponentialDecay(0.02, 3, 0.7), weight_decay=0.05)"


def _fit_model(optimizer, weights):
    inp = keras.Input((5,), name="x")
    hidden = keras.layers.Dense(4, activation="tanh", name="d1")(inp)
    model = keras.Model(inp, keras.layers.Dense(1, name="d2")(hidden))
    model.set_weights(weights)
    model.compile(optimizer, "mean_squared_error")
    return model


def _fit(model, epochs):
    model.fit(X, Y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)


def _weights0():
    rng = np.random.default_rng(5)
    return [
        rng.normal(size=(5, 4)).astype("float32") * 0.5,
        rng.normal(size=(4,)).astype("float32") * 0.1,
        rng.normal(size=(4, 1)).astype("float32") * 0.5,
        rng.normal(size=(1,)).astype("float32") * 0.1,
    ]


@pytest.fixture(scope="module")
def keras3(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras3_schedules")
    spec = {"schedules": SCHEDULES, "optimizers": OPTIMIZERS, "fit": FIT_OPTIMIZER}
    inputs = {
        "spec": np.array(json.dumps(spec)),
        "steps": STEPS,
        "w0": W0,
        "b0": B0,
        "gk": np.stack([g for g, _ in GRADS]),
        "gb": np.stack([g for _, g in GRADS]),
        "x": X,
        "y": Y,
    }
    inputs.update({f"m{i}": w for i, w in enumerate(_weights0())})
    # polykeras' file for Keras to continue, and where polykeras itself gets to
    model = _fit_model(_ours(FIT_OPTIMIZER), _weights0())
    _fit(model, 2)
    model.save(folder / "pk_adamw.h5")
    _fit(model, 1)
    out = run_keras3_script(folder, KERAS_SCRIPT, inputs)
    out["configs"] = json.loads(str(out["configs"]))
    out["pk_continued"] = model.get_weights()
    return folder, out


def _ours(expr: str):
    return eval("optimizers." + expr, {"optimizers": optimizers, "S": schedules})


# -- schedules ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_values_match_keras3(keras3, name):
    _, out = keras3
    cls, kw = SCHEDULES[name]
    sched = getattr(schedules, cls)(**kw)
    ours = np.array([sched(int(s)) for s in STEPS])
    np.testing.assert_allclose(ours, out["sched_" + name], rtol=2e-6, atol=1e-9)
    # an array of steps gives the same values at once
    np.testing.assert_allclose(sched(STEPS), ours, rtol=1e-12)
    # Keras 3's serialized form, and back
    assert schedules.serialize(sched) == out["configs"]["sched_" + name]
    again = schedules.deserialize(out["configs"]["sched_" + name])
    assert type(again) is type(sched) and again.get_config() == sched.get_config()


def test_schedule_formulas_by_hand():
    exp = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert exp(0) == 0.1 and exp(9) == 0.1 and exp(10) == 0.05 and exp(25) == 0.025
    pw = schedules.PiecewiseConstantDecay([5, 10], [1.0, 0.5, 0.1])
    assert [pw(s) for s in (0, 5, 6, 10, 11, 100)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    cos = schedules.CosineDecay(1.0, decay_steps=10)
    assert cos(0) == 1.0 and cos(5) == pytest.approx(0.5) and cos(10) == pytest.approx(0.0)
    assert cos(50) == pytest.approx(0.0)  # held at the end
    assert isinstance(cos(3), float)


def test_schedule_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="decay_steps` must be > 0"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="should be 1 less than the length of values"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="increasing"):
        schedules.PiecewiseConstantDecay([5, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="initial_learning_rate must be a number"):
        schedules.CosineDecay("0.1", 10)
    with pytest.raises(ValueError, match="Unknown learning rate schedule: 'Nope'"):
        schedules.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="step count"):
        schedules.ExponentialDecay(0.1, 2, 0.5)("three")


def test_keras2_form_and_custom_schedules_load():
    keras2 = {
        "class_name": "InverseTimeDecay",
        "config": {
            "initial_learning_rate": 0.3,
            "decay_steps": 2,
            "decay_rate": 1.0,
            "staircase": False,
            "name": "x",
        },
    }
    opt = optimizers.deserialize({"class_name": "SGD", "config": {"learning_rate": keras2}})
    assert isinstance(opt.schedule, schedules.InverseTimeDecay)
    assert opt.learning_rate == pytest.approx(0.3)

    class Halving(schedules.LearningRateSchedule):
        def __init__(self, start):
            self.start = start

        def __call__(self, step):
            return self.start / 2 ** int(step)

        def get_config(self):
            return {"start": self.start}

    cfg = optimizers.serialize(optimizers.SGD(learning_rate=Halving(0.8)))
    assert cfg["config"]["learning_rate"]["class_name"] == "Halving"
    with pytest.raises(ValueError, match="Unknown learning rate schedule: 'Halving'"):
        optimizers.deserialize(cfg)
    again = optimizers.deserialize(cfg, custom_objects={"Halving": Halving})
    assert again.learning_rate == 0.8


# -- optimizers against Keras 3 ------------------------------------------------------------------
def _run_ours(name):
    opt = _ours(OPTIMIZERS[name])
    kernel, bias = Variable(W0.copy(), "dense/kernel:0"), Variable(B0.copy(), "dense/bias:0")
    if name.startswith("adamw"):
        opt.exclude_from_weight_decay(var_names=["bias"])
    for gk, gb in GRADS:
        opt.apply_gradients(zip([gk, gb], [kernel, bias]))
    return opt, kernel.numpy(), bias.numpy()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_steps_match_keras3(keras3, name):
    _, out = keras3
    opt, kernel, bias = _run_ours(name)
    np.testing.assert_allclose(kernel, out[f"opt_{name}_kernel"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(bias, out[f"opt_{name}_bias"], rtol=1e-6, atol=1e-9)
    assert opt.learning_rate == pytest.approx(float(out[f"opt_{name}_lr"]), rel=1e-6)
    assert opt.iterations == len(GRADS)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_configs_read_keras3s(keras3, name):
    _, out = keras3
    theirs = out["configs"]["opt_" + name]
    ours = _ours(OPTIMIZERS[name])
    loaded = optimizers.deserialize({"class_name": type(ours).__name__, "config": theirs})
    assert type(loaded) is type(ours)
    assert loaded.weight_decay == ours.weight_decay
    if ours.schedule is not None:
        # the schedule is written as Keras 3 writes it
        assert ours.get_config()["learning_rate"] == theirs["learning_rate"]
        assert loaded.schedule.get_config() == ours.schedule.get_config()
    else:
        assert loaded.learning_rate == pytest.approx(ours.learning_rate)


def test_adamw_formula_by_hand():
    lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-7
    opt = optimizers.AdamW(learning_rate=lr, weight_decay=wd)
    var = Variable(W0.copy(), "w:0")
    w, m, v = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for t, (g, _) in enumerate(GRADS, start=1):
        opt.apply([g], [var])
        w = w * (1 - lr * wd)
        m = m + (1 - b1) * (g - m)
        v = v + (1 - b2) * (g * g - v)
        w = w - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        np.testing.assert_allclose(var.numpy(), w, rtol=1e-10, atol=1e-12)
    assert opt.get_config()["weight_decay"] == wd
    assert optimizers.get("adamw").weight_decay == 0.004
    assert optimizers.AdamW().name == "adam_w"


def test_schedule_sees_the_updates_done_so_far():
    seen = []

    class Record(schedules.LearningRateSchedule):
        def __call__(self, step):
            seen.append(int(step))
            return 0.1

        def get_config(self):
            return {}

    opt = optimizers.SGD(learning_rate=Record())
    var = Variable(W0.copy(), "w:0")
    for g, _ in GRADS[:3]:
        seen.clear()
        before = int(opt.iterations)
        opt.apply([g], [var])
        assert seen == [before]
    assert [int(opt.iterations), opt.learning_rate] == [3, 0.1]


# -- refused settings ----------------------------------------------------------------------------
def test_keras3_settings_not_implemented_are_refused_by_name():
    for kwargs, name in (
        (dict(use_ema=True), "use_ema"),
        (dict(loss_scale_factor=128.0), "loss_scale_factor"),
        (dict(gradient_accumulation_steps=4), "gradient_accumulation_steps"),
    ):
        with pytest.raises(ValueError, match=name):
            optimizers.Adam(**kwargs)
        with pytest.raises(ValueError, match=name):
            optimizers.deserialize({"class_name": "AdamW", "config": kwargs})
    # off, they are what Keras 3 writes into every config: accepted
    opt = optimizers.AdamW(use_ema=False, ema_momentum=0.99, loss_scale_factor=None)
    assert opt.weight_decay == 0.004
    with pytest.raises(ValueError, match="weight_decay` must be a float"):
        optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.SGD(weight_decay=-1.0)
    with pytest.raises(ValueError, match="cannot be combined with a learning-rate schedule"):
        optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, 2, 0.5), decay=0.01)
    with pytest.raises(ValueError, match="callable learning_rate"):
        optimizers.SGD(learning_rate=lambda: 0.1)


def test_learning_rate_of_a_schedule_reads_the_current_value_and_cannot_be_set():
    sched = schedules.ExponentialDecay(0.1, 1, 0.5)
    opt = optimizers.SGD(learning_rate=sched)
    var = Variable(W0.copy(), "w:0")
    assert opt.learning_rate == 0.1
    opt.apply([GRADS[0][0]], [var])
    assert opt.learning_rate == pytest.approx(0.05)
    with pytest.raises(TypeError, match="learning rate is not settable"):
        opt.learning_rate = 0.01
    opt.learning_rate = schedules.ExponentialDecay(0.2, 1, 0.5)  # another schedule: allowed
    assert opt.learning_rate == pytest.approx(0.1)


@pytest.mark.parametrize(
    "callback",
    [
        lambda: keras.callbacks.LearningRateScheduler(lambda epoch: 0.01),
        lambda: keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0),
    ],
)
def test_lr_callbacks_refuse_a_schedule(callback):
    model = _fit_model(
        optimizers.Adam(learning_rate=schedules.ExponentialDecay(0.01, 2, 0.5)), _weights0()
    )
    before = model.get_weights()
    with pytest.raises(TypeError, match="LearningRateSchedule.*not settable"):
        model.fit(X, Y, epochs=2, verbose=0, callbacks=[callback()])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # refused before any step


# -- fit and files --------------------------------------------------------------------------------
def test_fit_with_adamw_on_a_schedule_matches_keras3(keras3):
    _, out = keras3
    model = _fit_model(_ours(FIT_OPTIMIZER), _weights0())
    _fit(model, 3)
    assert model.optimizer.iterations == 15
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, out[f"fit_{i}"], rtol=1e-4, atol=1e-5)
    assert model.optimizer.learning_rate == pytest.approx(float(out["fit_lr"]), rel=1e-5)


def test_polykeras_resumes_keras3s_adamw_file(keras3):
    folder, out = keras3
    loaded = load_model(folder / "k3_adamw.h5")
    assert type(loaded.optimizer) is optimizers.AdamW
    assert isinstance(loaded.optimizer.schedule, schedules.ExponentialDecay)
    assert loaded.optimizer.iterations == 10
    _fit(loaded, 1)
    for i, w in enumerate(loaded.get_weights()):
        np.testing.assert_allclose(w, out[f"fit_{i}"], rtol=1e-4, atol=1e-5)


def test_keras3_resumes_polykeras_adamw_file(keras3):
    _, out = keras3
    loaded = out["configs"]["pk_loaded_optimizer"]
    assert loaded["weight_decay"] == 0.05
    assert loaded["learning_rate"]["class_name"] == "ExponentialDecay"
    assert int(out["from_pk_iterations"]) == 10
    for i, w in enumerate(out["pk_continued"]):
        np.testing.assert_allclose(out[f"from_pk_{i}"], w, rtol=1e-4, atol=1e-5)


def test_file_layout_of_adamw_with_a_schedule_is_keras3s(keras3, tmp_path):
    _, out = keras3
    model = _fit_model(_ours(FIT_OPTIMIZER), _weights0())
    _fit(model, 2)
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as f:
        names = [n.decode() for n in f["optimizer_weights"].attrs["weight_names"]]
        training = json.loads(f.attrs["training_config"])
    # Keras 3 keeps no learning_rate variable for a schedule
    assert [n.split("/", 1)[1] for n in names] == [
        n.split("/", 1)[1] for n in str(out["fit_names"]).split(",")
    ]
    lr = training["optimizer_config"]["config"]["learning_rate"]
    assert lr["module"] == "keras.optimizers.schedules" and lr["registered_name"] is None


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_adamw_with_a_schedule_resumes_exactly_after_save_and_load(tmp_path, suffix):
    model = _fit_model(_ours(FIT_OPTIMIZER), _weights0())
    model.optimizer.exclude_from_weight_decay(var_names=["bias"])
    _fit(model, 2)
    model.save(tmp_path / f"m{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model(tmp_path / f"m{suffix}")
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == 10
    loaded.optimizer.exclude_from_weight_decay(var_names=["bias"])  # not in configs (Keras)
    _fit(model, 1)
    _fit(loaded, 1)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- the API of a custom training step -----------------------------------------------------------
def test_custom_step_api_with_backend_arrays():
    B = keras.backend.current()
    kernel, bias = Variable(W0.copy(), "d/kernel:0"), Variable(B0.copy(), "d/bias:0")
    opt = optimizers.Adam(learning_rate=0.01)
    ref = optimizers.Adam(learning_rate=0.01)
    rk, rb = Variable(W0.copy(), "d/kernel:0"), Variable(B0.copy(), "d/bias:0")
    gk, gb = (B.asarray(g) for g in GRADS[0])
    assert opt.apply_gradients(zip([gk, gb], [kernel, bias])) == 1
    opt.apply([B.asarray(g) for g in GRADS[1]])  # the variables it was built with
    ref.apply(list(GRADS[0]), [rk, rb])
    ref.apply(list(GRADS[1]), [rk, rb])
    np.testing.assert_array_equal(kernel.numpy(), rk.numpy())
    np.testing.assert_array_equal(bias.numpy(), rb.numpy())
    it = opt.iterations
    assert it == 2 and int(it) == 2 and int(it.numpy()) == 2
    state = opt.variables  # iteration, learning_rate, then the slots in Keras 3's order
    assert len(state) == 2 + 2 * 2
    assert int(B.to_numpy(state[0])) == 2
    np.testing.assert_allclose(float(B.to_numpy(state[1])), 0.01, rtol=1e-6)
    assert tuple(B.shape(state[2])) == (3, 4) and tuple(B.shape(state[3])) == (3, 4)
    with pytest.raises(ValueError, match="must already be built"):
        optimizers.SGD().apply([gk])
    with pytest.raises(ValueError, match="1 gradients for 2 variables"):
        opt.apply([gk], [kernel, bias])
    with pytest.raises(ValueError, match=r"\(gradient, variable\) pairs"):
        opt.apply_gradients([gk, gb])


def test_a_missing_gradient_is_left_out_with_keras_warning():
    kernel, bias = Variable(W0.copy(), "d/kernel:0"), Variable(B0.copy(), "d/bias:0")
    opt = optimizers.SGD(learning_rate=0.1)
    with pytest.warns(UserWarning, match=r"Gradients do not exist for variables \['d/bias:0'\]"):
        opt.apply_gradients([(GRADS[0][0], kernel), (None, bias)])
    np.testing.assert_array_equal(bias.numpy(), B0)
    np.testing.assert_allclose(kernel.numpy(), W0 - 0.1 * GRADS[0][0])
    with pytest.raises(ValueError, match="No gradients provided for any variable"):
        opt.apply([None, None], [kernel, bias])


def test_weight_decay_decays_embedding_rows_without_gradient():
    """A row-sparse gradient (an embedding) still decays every row, as Keras 3 does."""
    ids = np.array([[1, 2], [2, 3]], dtype="int32")
    inp = keras.Input((2,), dtype="int32")
    out = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Embedding(6, 2)(inp)))
    model = keras.Model(inp, out)
    model.compile(optimizers.SGD(learning_rate=0.1, weight_decay=0.5), "mse")
    table = model.get_weights()[0].copy()
    model.fit(ids, np.zeros((2, 1), "float32"), batch_size=2, epochs=1, verbose=0)
    after = model.get_weights()[0]
    for row in (0, 4, 5):  # never looked up: only the decay moved them
        np.testing.assert_allclose(after[row], table[row] * (1 - 0.1 * 0.5), rtol=1e-6)


# -- the radial constraint ----------------------------------------------------------------------
def _radial_reference(kernel2d):
    """Built as tf.keras 2 builds it, from the centre block outward, ring after ring padded
    around it, ring d taking the diagonal entry (c+d, c+d) and the 2x2 centre of an even
    kernel the entry (c-1, c-1) (tf.keras 2's numbers for even k; for odd k tf.keras 2
    shifts each ring's source one ring inward, which makes it swap values at each step)."""
    k = kernel2d.shape[0]
    c = k // 2
    block = np.full((1, 1), kernel2d[c, c]) if k % 2 else np.full((2, 2), kernel2d[c - 1, c - 1])
    for d in range(1, (k + 1) // 2):
        block = np.pad(block, 1, constant_values=kernel2d[c + d, c + d])
    return block


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_radial_constraint_builds_tf_keras_rings(k):
    B = keras.backend.current()
    w = RNG.normal(size=(k, k, 2, 3)).astype("float32")
    out = B.to_numpy(keras.constraints.get("radial_constraint")(B.asarray(w)))
    assert out.shape == w.shape
    for i in range(2):
        for o in range(3):
            np.testing.assert_array_equal(out[:, :, i, o], _radial_reference(w[:, :, i, o]))
    # rings are constant and symmetric, ceil(k / 2) distinct values per slice
    assert len(set(out[..., 0, 0].ravel().tolist())) == (k + 1) // 2
    np.testing.assert_array_equal(out[..., 0, 0], out[::-1, ::-1, 0, 0])
    # a projection: applying it again changes nothing
    again = B.to_numpy(keras.constraints.RadialConstraint()(B.asarray(out)))
    np.testing.assert_array_equal(again, out)


def test_radial_constraint_by_name_object_and_file(tmp_path):
    from polykeras import constraints

    assert isinstance(constraints.get("RadialConstraint"), constraints.RadialConstraint)
    assert constraints.radial_constraint is constraints.RadialConstraint
    assert constraints.serialize(constraints.RadialConstraint()) == {
        "class_name": "RadialConstraint",
        "config": {},
    }
    with pytest.raises(ValueError, match="must have rank 4"):
        constraints.RadialConstraint()(np.ones((3, 3)))
    with pytest.raises(ValueError, match="must be square"):
        constraints.RadialConstraint()(np.ones((3, 2, 1, 1)))
    # applied after each update, and written to files
    inp = keras.Input((6, 6, 2))
    conv = keras.layers.Conv2D(3, 3, kernel_constraint="radial_constraint", name="c")
    model = keras.Model(inp, keras.layers.Flatten()(conv(inp)))
    model.compile(optimizers.SGD(0.1), "mse")
    model.fit(
        RNG.normal(size=(4, 6, 6, 2)).astype("float32"),
        np.zeros((4, 48), "float32"),
        epochs=1,
        verbose=0,
    )
    kernel = model.get_weights()[0]
    np.testing.assert_array_equal(kernel[..., 1, 2], _radial_reference(kernel[..., 1, 2]))
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert isinstance(loaded.get_layer("c").kernel_constraint, keras.constraints.RadialConstraint)


# -- activations against Keras 3 ----------------------------------------------------------------
ACTIVATIONS = {
    "relu": ("relu", {}),
    "relu_args": ("relu", dict(negative_slope=0.1, max_value=2.5, threshold=0.3)),
    "relu_max6": ("relu", dict(max_value=6.0)),
    "leaky_relu": ("leaky_relu", {}),
    "leaky_relu_slope": ("leaky_relu", dict(negative_slope=0.05)),
    "relu6": ("relu6", {}),
    "mish": ("mish", {}),
    "log_softmax": ("log_softmax", {}),
    "log_softmax_axis0": ("log_softmax", dict(axis=0)),
    "silu": ("silu", {}),
    "swish": ("swish", {}),
    "gelu": ("gelu", {}),
    "gelu_tanh": ("gelu", dict(approximate=True)),
    "hard_silu": ("hard_silu", {}),
    "hard_swish": ("hard_swish", {}),
    "selu": ("selu", {}),
    "elu": ("elu", {}),
    "elu_alpha": ("elu", dict(alpha=0.5)),
    "exponential": ("exponential", {}),
    "linear": ("linear", {}),
    "softsign": ("softsign", {}),
    "softplus": ("softplus", {}),
    "sigmoid": ("sigmoid", {}),
    "tanh": ("tanh", {}),
    "softmax": ("softmax", {}),
    "softmax_axis0": ("softmax", dict(axis=0)),
    "hard_tanh": ("hard_tanh", {}),
    "tanh_shrink": ("tanh_shrink", {}),
    "celu": ("celu", dict(alpha=0.7)),
    "squareplus": ("squareplus", dict(b=2)),
    "soft_shrink": ("soft_shrink", dict(threshold=0.4)),
    "hard_shrink": ("hard_shrink", {}),
    "sparse_plus": ("sparse_plus", {}),
    "log_sigmoid": ("log_sigmoid", {}),
}
ACT_X = np.concatenate([np.linspace(-7, 7, 57), [-1.0, 1.0, 0.0, -3.0, 3.0]]).reshape(31, 2)

ACT_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    data = np.load(sys.argv[1])
    x = keras.ops.convert_to_tensor(data["x"], dtype="float64")
    out = {}
    for key, (name, kw) in json.loads(str(data["spec"])).items():
        out[key] = keras.ops.convert_to_numpy(getattr(keras.activations, name)(x, **kw))
        out[key + "_str"] = keras.ops.convert_to_numpy(keras.activations.get(name)(x))
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def keras3_activations(tmp_path_factory):
    return run_keras3_script(
        tmp_path_factory.mktemp("keras3_act"),
        ACT_SCRIPT,
        {"x": ACT_X, "spec": np.array(json.dumps(ACTIVATIONS))},
    )


@pytest.mark.parametrize("key", sorted(ACTIVATIONS))
def test_activation_matches_keras3(keras3_activations, key):
    from polykeras import activations

    B = keras.backend.current()
    name, kw = ACTIVATIONS[key]
    x = B.asarray(ACT_X)
    ours = B.to_numpy(getattr(activations, name)(x, **kw))
    np.testing.assert_allclose(ours, keras3_activations[key], rtol=1e-6, atol=2e-7)
    by_name = B.to_numpy(activations.get(name)(x))  # the string means the same function
    np.testing.assert_allclose(by_name, keras3_activations[key + "_str"], rtol=1e-6, atol=2e-7)


def test_hard_sigmoid_keeps_keras2s_slope():
    """Keras 3 changed hard_sigmoid to relu6(x + 3) / 6; polykeras keeps Keras 2's
    clip(0.2 x + 0.5, 0, 1), which Keras 2 models (and ConvLSTM2D's default) were trained
    with."""
    from polykeras import activations

    B = keras.backend.current()
    out = B.to_numpy(activations.get("hard_sigmoid")(B.asarray(ACT_X)))
    np.testing.assert_allclose(out, np.clip(0.2 * ACT_X + 0.5, 0, 1), rtol=1e-12)


def test_exact_gelu_gradient_matches_finite_differences():
    from polykeras import activations, autodiff

    B = keras.backend.current()
    x = np.linspace(-4, 4, 33)
    with autodiff.core_differentiation():
        _, _, grads = autodiff.value_and_grad(
            lambda v: (keras.ops.sum(activations.gelu(v[0])), None), [B.asarray(x)]
        )

    want = [0.5 * (1 + erf(v / sqrt(2))) + v * exp(-v * v / 2) / sqrt(2 * pi) for v in x]
    np.testing.assert_allclose(B.to_numpy(grads[0]), want, rtol=1e-5, atol=1e-6)
