"""Activation layers (LeakyReLU, PReLU, ELU, ReLU, Softmax, ThresholdedReLU) and noise layers
(GaussianNoise, GaussianDropout, AlphaDropout, SpatialDropout1D/2D/3D,
ActivityRegularization): Keras 3's numbers, NumPy references, gradients, noise statistics and
seeds, configs and files, Keras 1 spellings and bad arguments."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import backend as K
from polykeras import layers as L
from polykeras.models import Model, Sequential, load_model, model_from_json
from polykeras.saving.config import deserialize_layer

from helpers import run_keras3_script
from test_layers_normalization import (
    _TORCH_REASON,
    BACKENDS,
    _grad_check,
    _np,
    check_against_keras,
    keras_reference,
)


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


# -- against Keras 3: forward, one SGD step, Keras' .keras file and config ------------------------
ACT_CASES = {
    "leaky_keras2": {"cls": "LeakyReLU", "kwargs": {"alpha": 0.2}, "shape": [3, 4], "units": 4},
    "leaky_keras3": {
        "cls": "LeakyReLU",
        "kwargs": {"negative_slope": 0.1},
        "shape": [5],
        "units": 4,
    },
    "prelu": {"cls": "PReLU", "kwargs": {}, "shape": [3, 4], "units": 4},
    "prelu_shared": {"cls": "PReLU", "kwargs": {"shared_axes": [1]}, "shape": [3, 4], "units": 5},
    "elu": {"cls": "ELU", "kwargs": {"alpha": 0.7}, "shape": [6], "units": 5},
    "relu": {"cls": "ReLU", "kwargs": {}, "shape": [6], "units": 5},
    "relu_options": {
        "cls": "ReLU",
        "kwargs": {"max_value": 0.5, "negative_slope": 0.1, "threshold": 0.2},
        "shape": [3, 4],
        "units": 6,
    },
    "relu6": {"cls": "ReLU", "kwargs": {"max_value": 6.0}, "shape": [4], "units": 3},
    "softmax": {"cls": "Softmax", "kwargs": {}, "shape": [3, 4], "units": 5},
    "softmax_axis1": {"cls": "Softmax", "kwargs": {"axis": 1}, "shape": [3, 4], "units": 5},
    "softmax_axes": {"cls": "Softmax", "kwargs": {"axis": [1, 2]}, "shape": [3, 4], "units": 2},
    "activity": {
        "cls": "ActivityRegularization",
        "kwargs": {"l1": 0.01, "l2": 0.02},
        "shape": [5],
        "units": 3,
    },
}


@pytest.fixture(scope="module")
def keras_act(tmp_path_factory):
    return keras_reference(tmp_path_factory, ACT_CASES, "keras_act")


@pytest.mark.parametrize("name", list(ACT_CASES))
def test_matches_keras3(backend, keras_act, name):
    inputs, results, folder = keras_act
    check_against_keras(ACT_CASES[name], inputs[name], results, folder, name)


SOFTMAX_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    d = dict(np.load(sys.argv[1]))
    out = {}
    layer = keras.layers.Softmax()
    for key in ("full", "rows", "float"):
        out[key] = keras.ops.convert_to_numpy(layer(d["x"], mask=d[key]))
    out["axis1"] = keras.ops.convert_to_numpy(keras.layers.Softmax(axis=1)(d["x"], mask=d["full"]))
    np.savez(sys.argv[2], **out)
""")


def _softmax_masks():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    full = rng.random((2, 3, 4)) > 0.4
    full[0, 1] = False  # a fully masked row: all zeros
    rows = rng.random((2, 1, 4)) > 0.3
    rows[1, 0, 0] = False
    return {
        "x": x,
        "full": full,
        "rows": rows,
        "float": rows.astype("float32"),
    }


@pytest.fixture(scope="module")
def keras_softmax(tmp_path_factory):
    data = _softmax_masks()
    return data, run_keras3_script(tmp_path_factory.mktemp("softmax"), SOFTMAX_SCRIPT, data)


def test_softmax_mask_matches_keras3(backend, keras_softmax):
    data, want = keras_softmax
    layer = L.Softmax()
    x = data["x"]
    # through the layer call (a mask of the input's full shape) and through call() with
    # masks that broadcast (batch, 1, keys) as attention's do
    np.testing.assert_allclose(_np(layer(x, mask=data["full"])), want["full"], rtol=1e-5, atol=1e-6)
    assert not _np(layer(x, mask=data["full"]))[0, 1].any()
    B = K.current()
    for key in ("rows", "float"):
        got = _np(layer.call(B.asarray(x), mask=B.asarray(data[key])))
        np.testing.assert_allclose(got, want[key], rtol=1e-5, atol=1e-6)
    got = _np(L.Softmax(axis=1).call(B.asarray(x), mask=B.asarray(data["full"])))
    np.testing.assert_allclose(got, want["axis1"], rtol=1e-5, atol=1e-6)


def test_softmax_mask_shaped_like_the_start_of_the_input(backend):
    # a (batch, timesteps) mask, as masks travel between layers: masked timesteps are zeros
    x = np.random.default_rng(12).normal(size=(2, 3, 4)).astype("float32")
    mask = np.array([[True, False, True], [False, True, True]])
    got = _np(L.Softmax()(x, mask=mask))
    e = np.exp(x - x.max(-1, keepdims=True))
    want = e / e.sum(-1, keepdims=True) * mask[..., None]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"sm_a \(Softmax\).*mask of shape \(3, 2\)"):
        L.Softmax(name="sm_a").call(K.current().asarray(x), mask=np.ones((3, 2), bool))


def test_softmax_passes_a_mask_through_a_model():
    inp = polykeras.Input((3,))
    masked = L.Masking(0.0)(L.Reshape((3, 1))(inp))
    dense = L.Dense(4, kernel_initializer="ones")(masked)
    out = L.Softmax()(dense)
    assert out._keras_mask is not None  # the mask goes on
    model = Model(inp, out)
    pred = model.predict(np.array([[1.0, 0.0, 2.0]], "float32"), verbose=0)
    np.testing.assert_allclose(pred[0, 1], 0.0)  # the masked timestep
    np.testing.assert_allclose(pred[0, 0], 0.25, rtol=1e-6)


# -- NumPy references ------------------------------------------------------------------------------
def _refs():
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    return {
        "LeakyReLU": (dict(alpha=0.3), lambda x: np.where(x > 0, x, 0.3 * x)),
        "ELU": (dict(alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
        "ThresholdedReLU": (dict(theta=0.4), lambda x: np.where(x > 0.4, x, 0.0)),
        "ThresholdedReLU_default": (dict(), lambda x: np.where(x > 1.0, x, 0.0)),
        "ReLU": (
            dict(max_value=1.0, negative_slope=0.2, threshold=0.3),
            lambda x: np.where(x >= 1.0, 1.0, np.where(x > 0.3, x, 0.2 * (x - 0.3))),
        ),
        "Softmax": (dict(axis=[1, 2]), lambda x: np.exp(x) / np.exp(x).sum((1, 2), keepdims=True)),
        "alpha_p": alpha_p,
    }


@pytest.mark.parametrize(
    "name", ["LeakyReLU", "ELU", "ThresholdedReLU", "ThresholdedReLU_default", "ReLU", "Softmax"]
)
def test_activations_match_numpy(backend, name):
    kwargs, ref = _refs()[name]
    x = np.random.default_rng(13).normal(scale=1.5, size=(4, 3, 5)).astype("float32")
    layer = getattr(L, name.split("_")[0])(**kwargs)
    np.testing.assert_allclose(_np(layer(x)), ref(x.astype("float64")), rtol=1e-5, atol=1e-6)


def test_prelu_weights_and_formula(backend):
    layer = L.PReLU(shared_axes=[1, 2])
    layer(polykeras.Input((4, 5, 3)))
    assert [(v.name.split("/")[1], v.shape) for v in layer.weights] == [("alpha:0", (1, 1, 3))]
    np.testing.assert_array_equal(layer.get_weights()[0], np.zeros((1, 1, 3)))  # zeros
    alpha = np.array([0.1, 0.5, -0.2], "float32").reshape(1, 1, 3)
    layer.set_weights([alpha])
    x = np.random.default_rng(14).normal(size=(2, 4, 5, 3)).astype("float32")
    np.testing.assert_allclose(_np(layer(x)), np.where(x > 0, x, alpha * x), rtol=1e-6)
    assert L.PReLU(shared_axes=2).shared_axes == [2]
    layer = L.PReLU(alpha_initializer="ones", alpha_constraint="non_neg", alpha_regularizer="l2")
    layer(polykeras.Input((2, 3)))
    assert layer.get_weights()[0].shape == (2, 3)
    assert layer.alpha.constraint is not None and layer.alpha.regularizer is not None


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: L.LeakyReLU(0.2, dtype="float64"), (3, 4)),
        (lambda: L.ELU(0.7, dtype="float64"), (3, 4)),
        (lambda: L.ReLU(1.0, 0.1, 0.2, dtype="float64"), (3, 4)),
        (lambda: L.ThresholdedReLU(0.3, dtype="float64"), (3, 4)),
        (lambda: L.Softmax(dtype="float64"), (2, 3, 4)),
        (lambda: L.Softmax(axis=[1, 2], dtype="float64"), (2, 3, 2)),
        (lambda: L.PReLU(shared_axes=[1], dtype="float64"), (2, 3, 4)),
    ],
)
def test_gradients_match_finite_differences(backend, make, shape):
    rng = np.random.default_rng(15)
    x = rng.normal(size=shape)
    layer = make()
    layer(x)
    if layer.weights:
        layer.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in layer.get_weights()])
    _grad_check(layer, x)


# -- noise: inference, statistics, seeds ---------------------------------------------------------
NOISE = [
    lambda: L.GaussianNoise(0.5),
    lambda: L.GaussianDropout(0.3),
    lambda: L.AlphaDropout(0.2),
    lambda: L.SpatialDropout1D(0.4),
    lambda: L.ActivityRegularization(0.1, 0.1),
]


@pytest.mark.parametrize("make", NOISE)
def test_noise_is_off_at_inference(backend, make):
    layer = make()
    x = np.random.default_rng(16).normal(size=(4, 3, 5)).astype("float32")
    inp = polykeras.Input((3, 5))
    model = Model(inp, layer(inp))
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    np.testing.assert_array_equal(_np(layer(x)), x)
    np.testing.assert_array_equal(_np(layer(x, training=False)), x)
    assert layer.supports_masking


def test_gaussian_noise_statistics(backend):
    x = np.zeros((400, 500), "float32")
    y = _np(L.GaussianNoise(0.5)(x, training=True))
    assert abs(y.mean()) < 0.005 and y.std() == pytest.approx(0.5, rel=0.01)
    y = _np(L.GaussianNoise(0.5, seed=3)(x, training=True))
    assert abs(y.mean()) < 0.005 and y.std() == pytest.approx(0.5, rel=0.01)
    np.testing.assert_array_equal(_np(L.GaussianNoise(0.0)(x, training=True)), x)


def test_gaussian_dropout_statistics(backend):
    x = np.full((400, 500), 2.0, "float32")
    for seed in (None, 4):
        y = _np(L.GaussianDropout(0.3, seed=seed)(x, training=True))
        assert y.mean() == pytest.approx(2.0, abs=0.01)
        assert y.std() == pytest.approx(2.0 * np.sqrt(0.3 / 0.7), rel=0.01)


def test_alpha_dropout_keeps_mean_and_variance(backend):
    x = np.random.default_rng(17).normal(size=(400, 500)).astype("float32")
    layer = L.AlphaDropout(0.2)
    y = _np(layer(x, training=True))
    alpha_p, a, b = layer.affine()
    dropped = np.isclose(y, a * alpha_p + b, atol=1e-6)
    assert dropped.mean() == pytest.approx(0.2, abs=0.005)
    assert abs(y.mean()) < 0.01 and y.var() == pytest.approx(1.0, abs=0.01)


def test_alpha_dropout_affine_correction_is_keras(backend):
    # with a seed, the uniform draws are NumPy's: the mask can be rebuilt here
    rate, seed = 0.3, 21
    x = np.random.default_rng(18).normal(size=(5, 7)).astype("float32")
    y = _np(L.AlphaDropout(rate, seed=seed)(x, training=True))
    keep = (np.random.default_rng(seed).random((5, 7)).astype("float32") >= rate).astype("f")
    # Keras' constants and formulas (keras/src/layers/regularization/alpha_dropout.py)
    alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    np.testing.assert_allclose(y, a * (x * keep + alpha_p * (1 - keep)) + b, rtol=1e-5, atol=1e-6)
    # noise_shape: one draw shared along the axes of size 1 (whole rows here)
    layer = L.AlphaDropout(0.5, noise_shape=(None, 1), seed=2)
    _, a2, b2 = layer.affine()
    y = _np(layer(x, training=True))
    kept_rows = np.isclose(y, a2 * x + b2, atol=1e-5).all(axis=1)
    dropped_rows = np.isclose(y, a2 * alpha_p + b2, atol=1e-5).all(axis=1)
    assert (kept_rows | dropped_rows).all() and kept_rows.any() and dropped_rows.any()


@pytest.mark.parametrize(
    "make, shape, channel_axis",
    [
        (lambda: L.SpatialDropout1D(0.5), (8, 6, 40), 2),
        (lambda: L.SpatialDropout2D(0.5), (8, 3, 4, 40), 3),
        (lambda: L.SpatialDropout2D(0.5, data_format="channels_first"), (8, 40, 3, 4), 1),
        (lambda: L.SpatialDropout3D(0.5), (8, 2, 3, 2, 40), 4),
        (
            lambda: L.SpatialDropout3D(0.5, data_format="channels_first", seed=5),
            (8, 40, 2, 2, 2),
            1,
        ),
    ],
)
def test_spatial_dropout_drops_whole_channels(backend, make, shape, channel_axis):
    x = np.ones(shape, "float32")
    y = _np(make()(x, training=True))
    assert set(np.unique(y)) <= {0.0, 2.0}
    # every (sample, channel) map is all kept or all dropped
    maps = np.moveaxis(y, channel_axis, 1).reshape(shape[0], shape[channel_axis], -1)
    assert (maps.min(axis=2) == maps.max(axis=2)).all()
    assert (maps[:, :, 0] == 0).mean() == pytest.approx(0.5, abs=0.1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.GaussianNoise(1.0, seed=7),
        lambda: L.GaussianDropout(0.4, seed=7),
        lambda: L.AlphaDropout(0.4, seed=7),
        lambda: L.SpatialDropout1D(0.4, seed=7),
    ],
)
def test_seed_repeats_the_noise_on_every_backend(make):
    x = np.random.default_rng(19).normal(size=(4, 6, 8)).astype("float32")

    def run(name):
        with polykeras.use_backend(name):
            layer = make()
            return [_np(layer(x, training=True)) for _ in range(2)]

    first = run("numpy")
    again = run("numpy")
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])  # a sequence of draws, not one draw
    if _TORCH_REASON is not None:
        return
    other = run("torch")
    np.testing.assert_allclose(other[0], first[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(other[1], first[1], rtol=1e-6, atol=1e-6)


def test_noise_is_on_while_fitting():
    inp = polykeras.Input((50,))
    out = L.Dense(1, kernel_initializer="ones")(L.GaussianDropout(0.5, seed=1)(inp))
    model = Model(inp, out)
    model.compile("sgd", "mse")
    x = np.ones((8, 50), "float32")
    y = np.full((8, 1), 50.0, "float32")
    assert model.evaluate(x, y, verbose=0) == pytest.approx(0.0, abs=1e-6)
    assert model.test_on_batch(x, y) == pytest.approx(0.0, abs=1e-6)
    assert model.train_on_batch(x, y) > 1.0  # the noisy forward pass of the training step


def test_activity_regularization_adds_its_penalty():
    inp = polykeras.Input((3,))
    model = Model(inp, L.ActivityRegularization(l1=0.1, l2=0.2)(inp))
    model.compile("sgd", "mse")
    x = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0]], "float32")
    y = np.zeros_like(x)
    mse = float((x**2).mean())
    penalty = (0.1 * np.abs(x).sum() + 0.2 * (x**2).sum()) / 2
    assert model.evaluate(x, y, verbose=0) == pytest.approx(mse + penalty, rel=1e-5)


# -- configs and files -----------------------------------------------------------------------------
def _all_layers_model():
    inp = polykeras.Input((4, 6))
    h = L.Dense(6)(inp)
    for layer in (
        L.LeakyReLU(0.2),
        L.PReLU(shared_axes=[1], alpha_initializer="ones"),
        L.ELU(0.5),
        L.ReLU(max_value=3.0, negative_slope=0.05, threshold=0.1),
        L.ThresholdedReLU(0.05),
        L.Softmax(axis=1),
        L.GaussianNoise(0.1, seed=1),
        L.GaussianDropout(0.2),
        L.AlphaDropout(0.1, noise_shape=[None, 1, None], seed=2),
        L.SpatialDropout1D(0.3, seed=3),
        L.ActivityRegularization(l1=0.01),
    ):
        h = layer(h)
    return Model(inp, h)


@pytest.mark.parametrize("how", ["json", "h5", "keras"])
def test_model_files_round_trip(tmp_path, how):
    model = _all_layers_model()
    rng = np.random.default_rng(20)
    model.set_weights([rng.uniform(-1, 1, w.shape) for w in model.get_weights()])
    x = rng.normal(size=(3, 4, 6)).astype("float32")
    want = model.predict(x, verbose=0)
    if how == "json":
        again = model_from_json(model.to_json())
        again.set_weights(model.get_weights())
    else:
        path = str(tmp_path / f"m.{how}")
        model.save(path)
        again = load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), want, rtol=1e-6)
    for a, b in zip(model.layers, again.layers):
        assert type(a) is type(b) and a.get_config() == b.get_config()


def test_spatial_dropout_images_round_trip(tmp_path):
    model = Sequential(
        [
            L.SpatialDropout2D(0.3, data_format="channels_first", input_shape=(3, 4, 4)),
            L.Reshape((3, 4, 4, 1)),
            L.SpatialDropout3D(0.2),
        ]
    )
    model.save(str(tmp_path / "m.h5"))
    again = load_model(str(tmp_path / "m.h5"))
    assert again.layers[0].data_format == "channels_first"
    assert again.layers[2].data_format == "channels_last"
    x = np.ones((2, 3, 4, 4), "float32")
    np.testing.assert_array_equal(again.predict(x, verbose=0), x.reshape(2, 3, 4, 4, 1))


def test_configs_are_keras2s():
    assert L.LeakyReLU().get_config()["alpha"] == 0.3
    assert "negative_slope" not in L.LeakyReLU(negative_slope=0.1).get_config()
    assert L.LeakyReLU(negative_slope=0.1).alpha == 0.1
    assert L.ELU().get_config()["alpha"] == 1.0
    assert L.ThresholdedReLU().get_config()["theta"] == 1.0
    cfg = L.ReLU().get_config()
    assert (cfg["max_value"], cfg["negative_slope"], cfg["threshold"]) == (None, 0.0, 0.0)
    assert L.Softmax().get_config()["axis"] == -1
    cfg = L.PReLU().get_config()
    assert cfg["alpha_initializer"] == {"class_name": "Zeros", "config": {}}
    assert cfg["shared_axes"] is None
    assert L.GaussianNoise(0.2).get_config()["stddev"] == 0.2
    assert L.GaussianDropout(0.2, seed=3).get_config()["seed"] == 3
    cfg = L.AlphaDropout(0.2).get_config()
    assert (cfg["rate"], cfg["noise_shape"], cfg["seed"]) == (0.2, None, None)
    cfg = L.SpatialDropout2D(0.2).get_config()
    assert cfg["data_format"] == "channels_last" and "noise_shape" not in cfg
    assert "data_format" not in L.SpatialDropout1D(0.2).get_config()
    cfg = L.ActivityRegularization(l1=0.5).get_config()
    assert (cfg["l1"], cfg["l2"]) == (0.5, 0.0) and "activity_regularizer" not in cfg
    for layer in (L.SpatialDropout3D(0.2, seed=1), L.ActivityRegularization(0.1, 0.2)):
        cfg = json.loads(json.dumps(layer.get_config()))
        assert type(layer).from_config(cfg).get_config() == cfg


def test_keras1_spellings():
    assert L.GaussianNoise(sigma=0.2).stddev == 0.2
    assert L.GaussianDropout(p=0.2).rate == 0.2
    assert L.SpatialDropout1D(p=0.25).rate == 0.25
    layer = L.SpatialDropout2D(p=0.25, dim_ordering="th")
    assert layer.data_format == "channels_first"
    prelu = L.PReLU(init="one")
    prelu(polykeras.Input((3,)))
    np.testing.assert_array_equal(prelu.get_weights()[0], np.ones(3))
    with pytest.raises(TypeError, match="either init"):
        L.PReLU(init="one", alpha_initializer="zeros2")
    with pytest.raises(TypeError, match="either sigma"):
        L.GaussianNoise(0.1, sigma=0.2)
    # Keras 1 and tf.keras 2 configs load
    layer = deserialize_layer(
        {"class_name": "GaussianNoise", "config": {"name": "gn", "sigma": 0.1, "trainable": True}}
    )
    assert layer.stddev == 0.1
    layer = deserialize_layer(
        {
            "class_name": "SpatialDropout1D",
            "config": {"name": "sd", "rate": 0.2, "noise_shape": None, "seed": None},
        }
    )
    assert layer.rate == 0.2
    layer = deserialize_layer({"class_name": "LeakyReLU", "config": {"negative_slope": 0.05}})
    assert layer.alpha == 0.05


def test_keras2_import_paths():
    from polykeras.layers.advanced_activations import (
        ELU,
        LeakyReLU,
        PReLU,
        ReLU,
        Softmax,
        ThresholdedReLU,
    )
    from polykeras.layers.noise import AlphaDropout, GaussianDropout, GaussianNoise

    assert (ELU, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU) == (
        L.ELU,
        L.LeakyReLU,
        L.PReLU,
        L.ReLU,
        L.Softmax,
        L.ThresholdedReLU,
    )
    assert (AlphaDropout, GaussianDropout, GaussianNoise) == (
        L.AlphaDropout,
        L.GaussianDropout,
        L.GaussianNoise,
    )


# -- bad arguments ---------------------------------------------------------------------------------
def test_bad_arguments_are_refused_clearly():
    for cls in (L.GaussianDropout, L.AlphaDropout, L.SpatialDropout1D, L.SpatialDropout2D):
        for rate in (1.0, -0.1, 1.5, "x", None):
            with pytest.raises(ValueError, match=rf"{cls.__name__}.*rate"):
                cls(rate)
    with pytest.raises(ValueError, match=r"GaussianNoise.*stddev must be a non-negative"):
        L.GaussianNoise(-0.1)
    with pytest.raises(ValueError, match=r"GaussianNoise.*seed"):
        L.GaussianNoise(0.1, seed=1.5)
    with pytest.raises(ValueError, match=r"ReLU.*max_value"):
        L.ReLU(max_value=-1)
    with pytest.raises(ValueError, match=r"ReLU.*negative_slope"):
        L.ReLU(negative_slope=-0.1)
    with pytest.raises(ValueError, match=r"ReLU.*threshold"):
        L.ReLU(threshold=-0.1)
    with pytest.raises(ValueError, match=r"ThresholdedReLU.*theta"):
        L.ThresholdedReLU(theta=-1.0)
    with pytest.raises(ValueError, match=r"LeakyReLU.*alpha"):
        L.LeakyReLU(alpha=float("nan"))
    with pytest.raises(TypeError, match="either alpha or negative_slope"):
        L.LeakyReLU(alpha=0.1, negative_slope=0.2)
    with pytest.raises(ValueError, match=r"ActivityRegularization.*l1"):
        L.ActivityRegularization(l1=-1)
    with pytest.raises(TypeError, match="activity_regularizer"):
        L.ActivityRegularization(activity_regularizer="l2")
    with pytest.raises(ValueError, match=r"sm_b \(Softmax\): axis 3 is out of range"):
        L.Softmax(axis=3, name="sm_b")(polykeras.Input((4, 5)))
    with pytest.raises(TypeError, match=r"Softmax.*axis must be an int"):
        L.Softmax(axis="last")
    with pytest.raises(ValueError, match=r"PReLU.*shared_axes"):
        L.PReLU(shared_axes=[0])
    with pytest.raises(ValueError, match=r"pr_a \(PReLU\): shared_axes \[3\] names axis 3"):
        L.PReLU(shared_axes=[3], name="pr_a")(polykeras.Input((4, 5)))
    with pytest.raises(ValueError, match=r"pr_b \(PReLU\): axis 1 .*no fixed size"):
        L.PReLU(name="pr_b")(polykeras.Input((None, 5)))
    L.PReLU(shared_axes=[1])(polykeras.Input((None, 5)))  # shared: fine
    with pytest.raises(ValueError, match=r"sd_a \(SpatialDropout2D\).*expected ndim=4"):
        L.SpatialDropout2D(0.2, name="sd_a")(polykeras.Input((4, 5)))
    with pytest.raises(ValueError, match="noise_shape"):
        L.SpatialDropout1D(0.2, noise_shape=(None, 1, None))
    with pytest.raises(TypeError, match="SpatialDropout1D takes no data_format"):
        L.SpatialDropout1D(0.2, data_format="channels_first")
    with pytest.raises(ValueError, match=r"ad_a \(AlphaDropout\): noise_shape"):
        L.AlphaDropout(0.2, noise_shape=(None, 1), name="ad_a")(polykeras.Input((4, 5)))
    with pytest.raises(ValueError, match=r"AlphaDropout.*noise_shape must be"):
        L.AlphaDropout(0.2, noise_shape=(None, 0))
    with pytest.raises(ValueError, match="data_format"):
        L.SpatialDropout2D(0.2, data_format="channels_middle")


LOAD_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    d = dict(np.load(sys.argv[1]))
    try:  # a refused file is a failure of the test, not a reason to skip it
        model = keras.models.load_model(os.path.join(os.path.dirname(sys.argv[1]), "m.keras"))
    except Exception as err:
        np.savez(sys.argv[2], error=np.asarray(f"{type(err).__name__}: {err}"[-2000:]))
        sys.exit(0)
    np.savez(sys.argv[2], pred=model.predict(d["x"], verbose=0),
             names=np.asarray([type(layer).__name__ for layer in model.layers]))
""")


def test_real_keras3_loads_our_keras_file(tmp_path):
    """A .keras file written here, with every layer of this family Keras 3 has, loads in
    Keras 3 and predicts the same."""
    inp = polykeras.Input((4, 6))
    h = L.Dense(6)(inp)
    for layer in (
        L.LeakyReLU(0.2),
        L.PReLU(shared_axes=[1]),
        L.ELU(0.5),
        L.ReLU(3.0, 0.05, 0.1),
        L.Softmax(axis=1),
        L.GaussianNoise(0.1, seed=1),
        L.GaussianDropout(0.2),
        L.AlphaDropout(0.1, noise_shape=[None, 1, None]),
        L.SpatialDropout1D(0.3),
        L.ActivityRegularization(l1=0.01),
        L.LayerNormalization(),
        L.GroupNormalization(3),
        L.UnitNormalization(),
    ):
        h = layer(h)
    model = Model(inp, h)
    rng = np.random.default_rng(22)
    model.set_weights([rng.uniform(-1, 1, w.shape) for w in model.get_weights()])
    x = rng.normal(size=(3, 4, 6)).astype("float32")
    model.save(str(tmp_path / "m.keras"))
    got = run_keras3_script(tmp_path, LOAD_SCRIPT, {"x": x})
    assert "error" not in got, f"Keras 3 refused the file: {got.get('error')}"
    np.testing.assert_allclose(got["pred"], model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    assert list(got["names"])[2:] == [type(lay).__name__ for lay in model.layers[2:]]


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.LeakyReLU(),
        lambda: L.PReLU(shared_axes=[1]),
        lambda: L.ELU(),
        lambda: L.ReLU(),
        lambda: L.ThresholdedReLU(0.1),
        lambda: L.Softmax(),
        lambda: L.GaussianNoise(0.1),
        lambda: L.GaussianDropout(0.1),
        lambda: L.AlphaDropout(0.1),
        lambda: L.SpatialDropout1D(0.1),
        lambda: L.ActivityRegularization(0.1),
        lambda: L.LayerNormalization(),
        lambda: L.GroupNormalization(2),
        lambda: L.UnitNormalization(),
    ],
)
def test_masks_pass_through(make):
    """Each layer passes its input's mask on unchanged (supports_masking, as in Keras): a
    masked, padded sequence gives the same mean over its kept steps as the unpadded one.
    (GroupNormalization's statistics span the steps and, as in Keras, include padded
    ones: only the mask's passage is checked there.)"""
    inp = polykeras.Input((None, 4))
    layer = make()
    h = layer(L.Masking(0.0)(inp))
    assert layer.supports_masking and h._keras_mask is not None
    if isinstance(layer, L.GroupNormalization):
        return
    model = Model(inp, L.GlobalAveragePooling1D()(h))
    x = np.random.default_rng(23).normal(size=(2, 3, 4)).astype("float32")
    padded = np.concatenate([x, np.zeros((2, 2, 4), "float32")], axis=1)
    np.testing.assert_allclose(
        model.predict(padded, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
