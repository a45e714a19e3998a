"""Image augmentation layers (RandomFlip, RandomRotation, RandomZoom, RandomTranslation,
RandomContrast, RandomBrightness, RandomCrop): Keras 3's ``affine_transform`` and Keras 3's
layers applied with the same forced draws, training-only behaviour (and fit), seeds across
backends, shapes, configs, files both ways, gradients and bad arguments."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import autodiff
from polykeras import backend as K
from polykeras import layers as L
from polykeras.layers import augmentation as A
from polykeras.models import Model, Sequential, load_model, model_from_json

from helpers import run_keras3_script
from test_layers_normalization import _TORCH_REASON, BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


RNG = np.random.default_rng(3)
X = RNG.uniform(0, 255, (2, 7, 9, 3)).astype("float32")  # channels_last
X_CF = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
X_SMALL = RNG.uniform(0, 255, (2, 4, 5, 3)).astype("float32")
X_BIG = RNG.uniform(0, 255, (2, 12, 11, 3)).astype("float32")
# the draws forced on both sides: per image
ANGLES = [30.0, -75.0]  # degrees
ZOOM_Y, ZOOM_X = [0.8, 1.3], [1.1, 0.7]
SHIFT_Y, SHIFT_X = [1.5, -2.25], [-3.0, 2.5]  # pixels
FLIPS = [0.3, 0.7]  # uniform draws: <= 0.5 flips
CONTRAST = [0.7, 1.4]
BRIGHTNESS = [20.0, -30.0]  # added values (value_range (0, 255))
CROP_AT = (2, 1)  # top, left
FILL = 3.0
# zero-preserving atol for pixels up to 255 in float32 (eps * 255 is about 3e-5)
TOL = {"rtol": 1e-5, "atol": 1e-4}

KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    from keras import ops

    arrays = dict(np.load(sys.argv[1]))
    # a fresh tensor for every call: Keras 3.15.1 on torch changes some arguments in place
    # (affine_transform swaps the entries of its transform, RandomBrightness adds to its input)
    def t(name):
        return ops.convert_to_tensor(arrays[name].copy())

    out = {}
    fill_modes = ["reflect", "wrap", "constant", "nearest"]
    n = 2

    def rotation_matrix(layer, h, w):
        zeros, ones = ops.zeros([n]), ops.ones([n])
        return layer._compute_affine_matrix(
            center_x=0.5, center_y=0.5, angle=t("angles"),
            translate_x=zeros, translate_y=zeros, scale=ones, shear_x=zeros, shear_y=zeros,
            height=h, width=w,
        )

    for fm in fill_modes:
        for it in ["nearest", "bilinear"]:
            key = fm + "/" + it
            common = dict(fill_mode=fm, interpolation=it, fill_value=3.0)
            rot = keras.layers.RandomRotation(0.5, **common)
            out["matrix/rot"] = np.asarray(rotation_matrix(rot, 7, 9))
            out["op/" + key] = np.asarray(ops.image.affine_transform(
                t("x"), rotation_matrix(rot, 7, 9), it, fm, 3.0))
            out["rot/" + key] = np.asarray(rot.transform_images(
                t("x"), {"rotation_matrix": rotation_matrix(rot, 7, 9)}, training=True))
            zoom = keras.layers.RandomZoom(0.5, 0.5, **common)
            out["zoom/" + key] = np.asarray(zoom.transform_images(t("x"), {
                "height_zoom": t("zy")[:, None], "width_zoom": t("zx")[:, None],
                "input_shape": (2, 7, 9, 3)}, training=True))
            tr = keras.layers.RandomTranslation(0.5, 0.5, **common)
            shifts = ops.stack([t("dx"), t("dy")], 1)
            out["trans/" + key] = np.asarray(tr.transform_images(
                t("x"), {"translations": shifts, "input_shape": (2, 7, 9, 3)}, training=True))
    rot_cf = keras.layers.RandomRotation(0.5, data_format="channels_first")
    out["rot_cf"] = np.asarray(rot_cf.transform_images(
        t("x_cf"), {"rotation_matrix": rotation_matrix(rot_cf, 7, 9)}, training=True))
    flips = ops.reshape(ops.less_equal(t("flips"), 0.5), (2, 1, 1, 1))
    for mode in ["horizontal", "vertical", "horizontal_and_vertical"]:
        layer = keras.layers.RandomFlip(mode)
        out["flip/" + mode] = np.asarray(layer.transform_images(
            t("x"), {"flips": flips, "input_shape": (2, 7, 9, 3)}, training=True))
    layer = keras.layers.RandomContrast(0.5)
    out["contrast"] = np.asarray(layer.transform_images(
        t("x"), {"contrast_factor": ops.reshape(t("contrast"), (2, 1, 1, 1))}, training=True))
    layer = keras.layers.RandomBrightness(0.5)
    out["brightness"] = np.asarray(layer.transform_images(
        t("x"), {"rgb_delta": ops.reshape(t("brightness"), (2, 1, 1, 1))}, training=True))
    layer = keras.layers.RandomCrop(4, 5)
    out["crop"] = np.asarray(layer.transform_images(t("x"), (2, 1), training=True))
    # too small to crop at random: Keras' deterministic path
    out["crop_small"] = np.asarray(keras.layers.RandomCrop(5, 6)(t("x_small"), training=True))
    out["crop_equal"] = np.asarray(keras.layers.RandomCrop(7, 6)(t("x"), training=True))
    # inference: the documented centred crop and resize (smart_resize)
    out["crop_infer"] = np.asarray(
        keras.preprocessing.image.smart_resize(arrays["x_big"].copy(), (5, 8)))

    # a model with every layer whose inference is the identity, saved as .keras
    inp = keras.Input((7, 9, 3))
    h = inp
    for layer in [
        keras.layers.RandomFlip("vertical", seed=1),
        keras.layers.RandomRotation((-0.2, 0.1), fill_mode="constant", fill_value=2.0,
                                    interpolation="nearest", seed=2),
        keras.layers.RandomZoom((-0.2, 0.3), (0.1, 0.2), fill_mode="wrap"),
        keras.layers.RandomTranslation((-0.1, 0.2), 0.3, fill_mode="nearest"),
        keras.layers.RandomContrast((0.1, 0.3), value_range=(0, 1)),
        keras.layers.RandomBrightness(0.3, value_range=(-1, 1)),
    ]:
        h = layer(h)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    model.save(sys.argv[2] + ".model.keras")
    out["model/pred"] = np.asarray(model.predict(arrays["x"].copy(), verbose=0))
    out["model/configs"] = np.array(json.dumps(
        [layer.get_config() for layer in model.layers[1:7]]))
    out["crop/config"] = np.array(json.dumps(keras.layers.RandomCrop(4, 5, seed=9).get_config()))
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def keras_ref(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_aug")
    inputs = {
        "x": X,
        "x_cf": X_CF,
        "x_small": X_SMALL,
        "x_big": X_BIG,
        "angles": np.array(ANGLES, "float32"),
        "zy": np.array(ZOOM_Y, "float32"),
        "zx": np.array(ZOOM_X, "float32"),
        "dy": np.array(SHIFT_Y, "float32"),
        "dx": np.array(SHIFT_X, "float32"),
        "flips": np.array(FLIPS, "float32"),
        "contrast": np.array(CONTRAST, "float32"),
        "brightness": np.array(BRIGHTNESS, "float32"),
    }
    results = run_keras3_script(folder, KERAS_SCRIPT, inputs)
    return results, folder / "out.npz.model.keras"


def _force(layer, *draws):
    """Make the layer's next draws ``draws`` (each what ``_uniform`` would return)."""
    queue = [np.asarray(d, dtype=np.float64) for d in draws]
    layer._uniform = lambda shape, low, high: queue.pop(0).reshape(shape)
    return layer


WARPS = [(fm, it) for fm in A.FILL_MODES for it in A.INTERPOLATIONS]


# -- against Keras 3 --------------------------------------------------------------------------
@pytest.mark.parametrize("fill_mode, interpolation", WARPS)
def test_affine_transform_matches_keras(backend, keras_ref, fill_mode, interpolation):
    results, _ = keras_ref
    matrix = A.rotation_matrices(np.array(ANGLES), 7, 9)
    np.testing.assert_allclose(matrix, results["matrix/rot"], rtol=1e-6, atol=1e-5)
    out = A.affine_transform(X, results["matrix/rot"], interpolation, fill_mode, FILL)
    np.testing.assert_allclose(_np(out), results[f"op/{fill_mode}/{interpolation}"], **TOL)


@pytest.mark.parametrize("fill_mode, interpolation", WARPS)
def test_warp_layers_match_keras_for_the_same_draws(backend, keras_ref, fill_mode, interpolation):
    results, _ = keras_ref
    key = f"{fill_mode}/{interpolation}"
    common = {"fill_mode": fill_mode, "interpolation": interpolation, "fill_value": FILL}
    rot = _force(L.RandomRotation(0.5, **common), ANGLES)
    np.testing.assert_allclose(_np(rot(X, training=True)), results["rot/" + key], **TOL)
    zoom = _force(L.RandomZoom(0.5, 0.5, **common), ZOOM_Y, ZOOM_X)
    np.testing.assert_allclose(_np(zoom(X, training=True)), results["zoom/" + key], **TOL)
    shift = _force(
        L.RandomTranslation(0.5, 0.5, **common),
        np.array(SHIFT_Y) / 7,
        np.array(SHIFT_X) / 9,
    )
    np.testing.assert_allclose(_np(shift(X, training=True)), results["trans/" + key], **TOL)


def test_channels_first_rotation_matches_keras(backend, keras_ref):
    results, _ = keras_ref
    layer = _force(L.RandomRotation(0.5, data_format="channels_first"), ANGLES)
    np.testing.assert_allclose(_np(layer(X_CF, training=True)), results["rot_cf"], **TOL)


@pytest.mark.parametrize("mode", A.FLIP_MODES)
def test_flip_matches_keras(backend, keras_ref, mode):
    results, _ = keras_ref
    layer = _force(L.RandomFlip(mode), FLIPS)
    np.testing.assert_array_equal(_np(layer(X, training=True)), results["flip/" + mode])


def test_contrast_and_brightness_match_keras(backend, keras_ref):
    results, _ = keras_ref
    contrast = _force(L.RandomContrast(0.5), CONTRAST)
    np.testing.assert_allclose(_np(contrast(X, training=True)), results["contrast"], **TOL)
    bright = _force(L.RandomBrightness(0.5), np.array(BRIGHTNESS) / 255.0)
    np.testing.assert_allclose(_np(bright(X, training=True)), results["brightness"], **TOL)


def test_crop_matches_keras(backend, keras_ref):
    results, _ = keras_ref
    crop = _force(L.RandomCrop(4, 5), float(CROP_AT[0]), float(CROP_AT[1]))
    np.testing.assert_array_equal(_np(crop(X, training=True)), results["crop"])
    # the deterministic paths: an input not larger than the target, in training
    small = L.RandomCrop(5, 6)(X_SMALL, training=True)
    np.testing.assert_allclose(_np(small), results["crop_small"], **TOL)
    equal = L.RandomCrop(7, 6)(X, training=True)
    np.testing.assert_allclose(_np(equal), results["crop_equal"], **TOL)
    # inference: the largest centred window of the target's aspect ratio, resized (Keras'
    # documented behaviour; Keras 3.15.1's layer itself returns its input unchanged there)
    infer = L.RandomCrop(5, 8)(X_BIG, training=False)
    np.testing.assert_allclose(_np(infer), results["crop_infer"], rtol=1e-5, atol=3e-4)


def test_keras_file_loads_here(backend, keras_ref):
    results, path = keras_ref
    model = load_model(str(path), compile=False)
    np.testing.assert_allclose(model.predict(X, verbose=0), results["model/pred"], **TOL)
    theirs = json.loads(str(results["model/configs"]))
    for layer, cfg in zip(model.layers[1:7], theirs):
        mine = layer.get_config()
        for key in ("fill_mode", "interpolation", "fill_value", "seed", "mode", "data_format"):
            if key in cfg:
                assert mine[key] == cfg[key], (type(layer).__name__, key)
        for key in ("factor", "height_factor", "width_factor", "value_range"):
            if key in cfg:
                want = cfg[key]
                assert np.allclose(np.ravel(mine[key]), np.ravel(want)), (key, mine, cfg)
    cfg = json.loads(str(results["crop/config"]))
    crop = L.RandomCrop.from_config(cfg)
    assert (crop.height, crop.width, crop.seed) == (4, 5, 9)


KERAS_LOAD_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    d = dict(np.load(sys.argv[1]))
    model = keras.saving.load_model(str(d["path"]), compile=False)
    out = {"pred": np.asarray(model.predict(d["x"], verbose=0)),
           "configs": np.array(json.dumps([l.get_config() for l in model.layers]))}
    np.savez(sys.argv[2], **out)
""")


def test_our_keras_file_loads_in_keras3(tmp_path):
    inp = polykeras.Input((7, 9, 3))
    layers = [
        L.RandomFlip("horizontal", seed=1),
        L.RandomRotation(0.1, fill_mode="constant", fill_value=1.0, seed=2),
        L.RandomZoom(0.2, (0.1, 0.3), interpolation="nearest", seed=3),
        L.RandomTranslation(0.1, (-0.2, 0.1), fill_mode="wrap", seed=4),
        L.RandomContrast(0.2, value_range=(0, 1), seed=5),
        L.RandomBrightness((-0.1, 0.3), seed=6),
    ]
    h = inp
    for layer in layers:
        h = layer(h)
    model = Model(inp, L.Dense(2)(L.Flatten()(h)))
    path = tmp_path / "aug.keras"
    model.save(str(path))
    out = run_keras3_script(tmp_path, KERAS_LOAD_SCRIPT, {"path": np.array(str(path)), "x": X})
    np.testing.assert_allclose(out["pred"], model.predict(X, verbose=0), **TOL)
    theirs = {c["name"]: c for c in json.loads(str(out["configs"]))}
    for layer in layers:
        cfg, mine = theirs[layer.name], layer.get_config()
        assert cfg["seed"] == mine["seed"]
        for key in ("factor", "height_factor", "width_factor", "value_range"):
            if key in mine:
                assert np.allclose(np.ravel(cfg[key]), np.ravel(mine[key])), (key, cfg, mine)


# -- training only ----------------------------------------------------------------------------
def _all_layers(seed=None):
    return [
        L.RandomFlip(seed=seed),
        L.RandomRotation(0.2, seed=seed),
        L.RandomZoom(0.2, seed=seed),
        L.RandomTranslation(0.2, 0.2, seed=seed),
        L.RandomContrast(0.3, seed=seed),
        L.RandomBrightness(0.3, seed=seed),
    ]


def test_inference_returns_the_input(backend):
    x = K.current().asarray(X)
    for layer in _all_layers(seed=2):  # a seed that flips at least one of the two images
        assert layer(x, training=False) is x
        # called alone without training=, a layer augments (Keras' call defaults to True)
        alone = _np(layer(X))
        assert alone.shape == X.shape and not np.allclose(alone, X)
        model = Sequential([polykeras.Input((7, 9, 3)), layer])
        np.testing.assert_array_equal(model.predict(X, verbose=0), X)
        changed = _np(layer(X, training=True))
        assert changed.shape == X.shape and not np.allclose(changed, X)


def test_fit_applies_the_augmentation(backend):
    # a fixed brightness shift: the training loss sees it, evaluate does not
    model = Sequential(
        [polykeras.Input((7, 9, 3)), L.RandomBrightness((0.5, 0.5), value_range=(0, 1000))]
    )
    model.compile(polykeras.optimizers.SGD(0.0), "mse")
    loss_train = model.train_on_batch(X, X)
    loss_eval = model.evaluate(X, X, verbose=0)
    assert loss_eval == 0.0
    np.testing.assert_allclose(loss_train, 500.0**2, rtol=1e-5)


def test_warp_inside_a_trained_model_has_gradients(backend):
    # Conv2D -> RandomRotation -> Dense: the rotation is differentiated like any op
    model = Sequential(
        [
            polykeras.Input((7, 9, 3)),
            L.Conv2D(2, 3, padding="same"),
            L.RandomRotation(0.2, fill_mode="constant", seed=0),
            L.Flatten(),
            L.Dense(1),
        ]
    )
    model.compile(polykeras.optimizers.SGD(0.01), "mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(X / 255.0, np.ones((2, 1), "float32"), epochs=1, verbose=0)
    after = model.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert np.abs(after[0] - before[0]).max() > 1e-4  # the conv kernel got a gradient


def test_warp_gradient_is_the_adjoint(backend):
    # the warp is linear in the image: <g, A x> == <A^T g, x> with A^T g from autodiff
    m = A.rotation_matrices(np.array([23.0, -51.0]), 7, 9)
    g = RNG.normal(size=X.shape).astype("float32")
    B = K.current()
    for fill_mode, interpolation in WARPS:
        if fill_mode == "constant":
            fv = 0.0  # a non-zero fill is affine, not linear
        else:
            fv = FILL

        def fn(params, fill_mode=fill_mode, interpolation=interpolation, fv=fv):
            y = A.affine_transform(params[0], m, interpolation, fill_mode, fv)
            return polykeras.ops.sum(polykeras.ops.multiply(y, B.asarray(g))), None

        loss, _, grads = autodiff.value_and_grad(fn, [B.asarray(X / 255.0)])
        np.testing.assert_allclose(
            float(_np(loss)), float(np.sum(_np(grads[0]) * (X / 255.0))), rtol=1e-4
        )


# -- seeds ------------------------------------------------------------------------------------
def _seeded_outputs(seed):
    outs = [_np(layer(X, training=True)) for layer in _all_layers(seed=seed)]
    return [*outs, _np(L.RandomCrop(4, 5, seed=seed)(X, training=True))]


def test_a_seed_repeats_and_other_seeds_differ(backend):
    first = _seeded_outputs(11)
    for a, b in zip(first, _seeded_outputs(11)):
        np.testing.assert_array_equal(a, b)
    other = _seeded_outputs(12)
    assert not any(np.allclose(a, b) for a, b in zip(first, other))
    # a second call of the same layer draws new numbers (its generator moves on)
    layer = L.RandomRotation(0.3, seed=5)
    assert not np.allclose(_np(layer(X, training=True)), _np(layer(X, training=True)))


@pytest.mark.skipif(_TORCH_REASON is not None, reason=str(_TORCH_REASON))
def test_same_seed_same_augmentation_on_numpy_and_torch():
    with polykeras.use_backend("numpy"):
        on_numpy = _seeded_outputs(11)
    with polykeras.use_backend("torch"):
        on_torch = _seeded_outputs(11)
    for a, b in zip(on_numpy, on_torch):
        np.testing.assert_allclose(a, b, **TOL)


# -- shapes, graphs, configs, files -----------------------------------------------------------
def test_symbolic_unbatched_and_channels_first(backend):
    inp = polykeras.Input((7, 9, 3))
    h = inp
    for layer in [*_all_layers(seed=1), L.RandomCrop(5, 6, seed=1)]:
        h = layer(h)
    assert tuple(h.shape) == (None, 5, 6, 3)
    model = Model(inp, h)
    assert model.predict(X, verbose=0).shape == (2, 5, 6, 3)
    # one image (rank 3)
    for layer in [*_all_layers(seed=2), L.RandomCrop(5, 6, seed=2)]:
        out = _np(layer(X[0], training=True))
        assert out.shape == ((5, 6, 3) if isinstance(layer, L.RandomCrop) else X[0].shape)
    # channels_first everywhere
    cf = {"data_format": "channels_first"}
    for layer in [
        L.RandomFlip(seed=3, **cf),
        L.RandomZoom(0.2, seed=3, **cf),
        L.RandomTranslation(0.2, 0.1, seed=3, **cf),
        L.RandomContrast(0.3, seed=3, **cf),
        L.RandomBrightness(0.3, seed=3, **cf),
    ]:
        assert _np(layer(X_CF, training=True)).shape == X_CF.shape
    crop = L.RandomCrop(5, 6, seed=3, **cf)
    assert crop.compute_output_shape((None, 3, 7, 9)) == (None, 3, 5, 6)
    assert _np(crop(X_CF, training=True)).shape == (2, 3, 5, 6)
    # contrast keeps each image's per-channel mean where nothing is clipped
    layer = L.RandomContrast(0.3, value_range=(-1e6, 1e6), seed=4)
    out = _np(layer(X, training=True))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), X.mean(axis=(1, 2)), rtol=1e-4)
    # integer images become floatx while training, as in Keras
    assert _np(L.RandomFlip(seed=1)(X.astype("int32"), training=True)).dtype == np.float32


def test_configs_round_trip(tmp_path):
    layers = [
        *_all_layers(seed=7),
        L.RandomCrop(5, 6, seed=7),
        L.RandomZoom((-0.2, 0.3), (0.1, 0.2), fill_mode="constant", fill_value=2.5),
    ]
    for layer in layers:
        cfg = layer.get_config()
        again = type(layer).from_config(json.loads(json.dumps(cfg)))
        assert again.get_config() == cfg
    model = Sequential([polykeras.Input((7, 9, 3)), *layers])
    clone = model_from_json(model.to_json())
    assert [c.get_config() for c in clone.layers] == [c.get_config() for c in model.layers]
    model.save(str(tmp_path / "m.h5"))
    loaded = load_model(str(tmp_path / "m.h5"))
    assert [c.get_config() for c in loaded.layers] == [c.get_config() for c in model.layers]
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))


def test_keras_defaults_and_config_keys():
    cfg = L.RandomRotation(0.1).get_config()
    assert cfg["factor"] == [-0.1, 0.1]
    assert (cfg["fill_mode"], cfg["interpolation"], cfg["fill_value"]) == (
        "reflect",
        "bilinear",
        0.0,
    )
    assert L.RandomFlip().mode == "horizontal_and_vertical"
    assert L.RandomZoom(0.1).get_config()["width_factor"] is None
    assert L.RandomBrightness(0.2).get_config()["value_range"] == [0.0, 255.0]
    # RandomContrast(f): factors in [1 - f, 1 + f], as Keras documents
    assert L.RandomContrast(0.2).get_config()["factor"] == [0.2, 0.2]
    assert set(L.RandomCrop(2, 3).get_config()) >= {"height", "width", "seed", "data_format"}


# -- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: L.RandomFlip("diagonal"), ["RandomFlip", "mode", "horizontal"]),
        (lambda: L.RandomRotation(1.5), ["RandomRotation", "factor", "[-1, 1]"]),
        (lambda: L.RandomRotation((0.1, 0.2, 0.3)), ["RandomRotation", "factor"]),
        (lambda: L.RandomRotation("big"), ["RandomRotation", "factor"]),
        (lambda: L.RandomRotation(0.1, fill_mode="mirror"), ["fill_mode", "reflect"]),
        (lambda: L.RandomRotation(0.1, interpolation="bicubic"), ["interpolation", "bilinear"]),
        (lambda: L.RandomRotation(0.1, fill_value="x"), ["fill_value", "number"]),
        (lambda: L.RandomZoom(-1.0), ["RandomZoom", "height_factor", "(-1, 1]"]),
        (lambda: L.RandomZoom(0.1, 2.0), ["RandomZoom", "width_factor"]),
        (lambda: L.RandomTranslation(0.1, -1.5), ["RandomTranslation", "width_factor"]),
        (lambda: L.RandomContrast(1.5), ["RandomContrast", "factor", "[0, 1]"]),
        (lambda: L.RandomContrast(0.1, value_range=5), ["RandomContrast", "value_range"]),
        (lambda: L.RandomBrightness(0.1, value_range=(0, 1, 2)), ["value_range", "pair"]),
        (lambda: L.RandomCrop(0, 3), ["RandomCrop", "height", "positive int"]),
        (lambda: L.RandomCrop(3, 2.5), ["RandomCrop", "width"]),
        (lambda: L.RandomFlip(seed="a"), ["RandomFlip", "seed"]),
    ],
)
def test_bad_arguments_are_named(make, words):
    with pytest.raises(ValueError) as err:
        make()
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_unimplemented_settings_are_refused():
    with pytest.raises(NotImplementedError, match="bounding_box_format"):
        L.RandomFlip(bounding_box_format="xyxy")
    with pytest.raises(NotImplementedError, match="projective"):
        A.affine_transform(X, [1, 0, 0, 0, 1, 0, 0.1, 0])
    with pytest.raises(ValueError, match="images"):
        L.RandomRotation(0.1)(polykeras.Input((5,)))
    with pytest.raises(ValueError, match="transform must have shape"):
        A.affine_transform(X, np.zeros((3, 8)))


def test_affine_transform_one_image_and_a_tensor_transform(backend):
    matrix = A.rotation_matrices(np.array([40.0]), 7, 9)
    batch = _np(A.affine_transform(X[:1], matrix, fill_mode="reflect"))
    one = A.affine_transform(backend.asarray(X[0]), backend.asarray(matrix[0]), fill_mode="reflect")
    np.testing.assert_array_equal(_np(one), batch[0])
    # the identity transform leaves the image as it is, in every mode
    for fill_mode, interpolation in WARPS:
        same = A.affine_transform(X, [1, 0, 0, 0, 1, 0, 0, 0], interpolation, fill_mode)
        np.testing.assert_array_equal(_np(same), X)
