"""Rescaling, Resizing, CenterCrop, Normalization and Discretization: Keras 3's numbers (eager
calls, adapt, configs, .keras files both ways), models on both backends, gradients through
them, and the errors for bad or unimplemented settings."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, config, ops
from polykeras import backend as K
from polykeras import layers as L
from polykeras.models import Model, Sequential, load_model, model_from_json
from polykeras.utils import Sequence

from helpers import backend_params, run_keras3_script

BACKENDS = backend_params()


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


# -- the data every comparison uses ----------------------------------------------------------------
def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {
        "img4": rng.uniform(0, 255, (2, 7, 10, 3)).astype("float32"),
        "img3": rng.uniform(0, 255, (6, 5, 2)).astype("float32"),
        "img4_cf": rng.uniform(0, 255, (2, 3, 7, 10)).astype("float32"),
        "img_u8": rng.integers(0, 256, (2, 5, 6, 3)).astype("uint8"),
        "tab": rng.normal(3.0, 2.0, (40, 4)).astype("float32"),
        "seq": rng.normal(-1.0, 0.5, (6, 5, 4)).astype("float32"),
        "num": rng.normal(0.0, 1.0, (8, 3)).astype("float32"),
        "skew": rng.exponential(2.0, (500, 1)).astype("float32"),
    }


# name -> (class, kwargs, input key, adapt: None | (data key, number of batches))
CASES: dict[str, tuple[str, dict, str, tuple | None]] = {
    "rescale": ("Rescaling", {"scale": 1 / 255.0}, "img4", None),
    "rescale_offset": ("Rescaling", {"scale": 1 / 127.5, "offset": -1.0}, "img3", None),
    "rescale_channels": (
        "Rescaling",
        {"scale": [0.5, 1.0, 2.0], "offset": [1, 2, 3]},
        "img4",
        None,
    ),
    "rescale_u8": ("Rescaling", {"scale": 0.5}, "img_u8", None),
    "resize_down": ("Resizing", {"height": 4, "width": 6}, "img4", None),
    "resize_up": ("Resizing", {"height": 11, "width": 13}, "img4", None),
    "resize_odd": ("Resizing", {"height": 5, "width": 3}, "img4", None),
    "resize_single": ("Resizing", {"height": 9, "width": 4}, "img3", None),
    "resize_cf": (
        "Resizing",
        {"height": 5, "width": 14, "data_format": "channels_first"},
        "img4_cf",
        None,
    ),
    "nearest_down": (
        "Resizing",
        {"height": 4, "width": 6, "interpolation": "nearest"},
        "img4",
        None,
    ),
    "nearest_up": (
        "Resizing",
        {"height": 15, "width": 23, "interpolation": "nearest"},
        "img4",
        None,
    ),
    "nearest_cf": (
        "Resizing",
        {"height": 3, "width": 7, "interpolation": "nearest", "data_format": "channels_first"},
        "img4_cf",
        None,
    ),
    "resize_crop": (
        "Resizing",
        {"height": 4, "width": 4, "crop_to_aspect_ratio": True},
        "img4",
        None,
    ),
    "resize_crop_wide": (
        "Resizing",
        {"height": 3, "width": 8, "crop_to_aspect_ratio": True, "interpolation": "nearest"},
        "img3",
        None,
    ),
    "resize_pad": (
        "Resizing",
        {"height": 6, "width": 6, "pad_to_aspect_ratio": True, "fill_value": 7.0},
        "img4",
        None,
    ),
    "resize_u8": ("Resizing", {"height": 3, "width": 8}, "img_u8", None),
    "crop": ("CenterCrop", {"height": 4, "width": 5}, "img4", None),
    "crop_single": ("CenterCrop", {"height": 3, "width": 2}, "img3", None),
    "crop_cf": (
        "CenterCrop",
        {"height": 6, "width": 3, "data_format": "channels_first"},
        "img4_cf",
        None,
    ),
    "crop_up": ("CenterCrop", {"height": 9, "width": 8}, "img4", None),
    "crop_up_one_side": ("CenterCrop", {"height": 3, "width": 12}, "img4", None),
    "norm_adapt": ("Normalization", {}, "tab", ("tab", 1)),
    "norm_batches": ("Normalization", {}, "tab", ("tab", 3)),
    "norm_none": ("Normalization", {"axis": None}, "tab", ("tab", 1)),
    "norm_seq": ("Normalization", {"axis": [1, 2]}, "seq", ("seq", 2)),
    "norm_seq_last": ("Normalization", {}, "seq", ("seq", 1)),
    "norm_invert": ("Normalization", {"invert": True}, "tab", ("tab", 1)),
    "norm_given": (
        "Normalization",
        {"mean": [1.0, 2.0, 3.0, 4.0], "variance": [1, 4, 9, 0]},
        "tab",
        None,
    ),
    "norm_given_scalar": ("Normalization", {"mean": 3.0, "variance": 2.0}, "seq", None),
    "disc_int": ("Discretization", {"bin_boundaries": [-1.0, 0.0, 0.5, 1.0]}, "num", None),
    "disc_one_hot": (
        "Discretization",
        {"bin_boundaries": [-1.0, 0.0, 1.0], "output_mode": "one_hot"},
        "num",
        None,
    ),
    "disc_multi_hot": (
        "Discretization",
        {"bin_boundaries": [-1.0, 0.0, 1.0], "output_mode": "multi_hot"},
        "num",
        None,
    ),
    "disc_count": (
        "Discretization",
        {"bin_boundaries": [-0.5, 0.0, 0.5], "output_mode": "count"},
        "num",
        None,
    ),
    "disc_adapt": ("Discretization", {"num_bins": 5}, "skew", ("skew", 1)),
    "disc_adapt_batches": ("Discretization", {"num_bins": 4, "epsilon": 0.05}, "skew", ("skew", 4)),
    "disc_adapt_small": ("Discretization", {"num_bins": 3}, "num", ("num", 1)),
}

EAGER_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    data = dict(np.load(sys.argv[1]))
    folder = os.path.dirname(sys.argv[1])
    cases = json.loads(open(os.path.join(folder, "cases.json")).read())
    out = {}
    for name, (cls, kwargs, key, adapt) in cases.items():
        layer = getattr(keras.layers, cls)(**kwargs)
        if adapt is not None:
            batches = np.array_split(data[adapt[0]], adapt[1])
            if cls == "Discretization":  # its adapt() wants tensorflow: the same steps
                layer.reset_state()
                for b in batches:
                    layer.update_state(b)
                layer.finalize_state()
            else:
                # (its adapt() of a list of batches wants tensorflow too: all at once)
                layer.adapt(data[adapt[0]])
        y = layer(data[key])
        out[name + "/y"] = keras.ops.convert_to_numpy(y)
        out[name + "/dtype"] = np.asarray(str(keras.ops.convert_to_numpy(y).dtype))
        for i, w in enumerate(layer.get_weights()):
            out[f"{name}/w{i}"] = np.asarray(w)
        out[name + "/config"] = np.asarray(json.dumps(layer.get_config()))
    np.savez(sys.argv[2], **out)
""")


def _make(name: str, data: dict):
    cls, kwargs, _, adapt = CASES[name]
    layer = getattr(L, cls)(**kwargs)
    if adapt is not None:
        batches = np.array_split(data[adapt[0]], adapt[1])
        layer.adapt(batches[0] if adapt[1] == 1 else batches)
    return layer


@pytest.fixture(scope="module")
def keras_eager(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_preprocessing")
    (folder / "cases.json").write_text(json.dumps(CASES))
    return run_keras3_script(folder, EAGER_SCRIPT, _data())


@pytest.mark.parametrize("name", list(CASES))
def test_matches_keras3(backend, keras_eager, name):
    data = _data()
    layer = _make(name, data)
    got = _np(layer(data[CASES[name][2]]))
    want = keras_eager[name + "/y"]
    assert got.shape == want.shape
    assert str(got.dtype) == str(keras_eager[name + "/dtype"])
    # float32 resampling weights are computed in float64 here (torch: float32), hence 2e-5
    if got.dtype.kind in "iu" and name.startswith("resize"):
        # a blend that lands within float32 rounding of .5 may round either way: the
        # integer image may differ by 1 where it does
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.02
    else:
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-4)
    kw = [np.asarray(keras_eager[f"{name}/w{i}"]) for i in range(len(layer.get_weights()))]
    assert f"{name}/w{len(kw)}" not in keras_eager  # the same number of weights
    for mine, theirs in zip(layer.get_weights(), kw):
        assert mine.shape == theirs.shape and mine.dtype == theirs.dtype
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    # the configs: the same keys and values (Keras' dtype is a policy dict)
    theirs = json.loads(str(keras_eager[name + "/config"]))
    mine = json.loads(json.dumps(layer.get_config()))
    assert set(mine) == set(theirs)
    for key in mine:
        if key not in ("dtype", "name"):
            if isinstance(mine[key], list) and mine[key] and isinstance(mine[key][0], float):
                np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-6)
            else:
                assert mine[key] == theirs[key], key
    # Keras 3's config builds a layer here that gives the same numbers
    again = getattr(L, CASES[name][0]).from_config({k: theirs[k] for k in theirs if k != "dtype"})
    if layer.get_weights():
        again(data[CASES[name][2]])
        again.set_weights(layer.get_weights())
    np.testing.assert_allclose(_np(again(data[CASES[name][2]])), got, rtol=1e-6)


# -- .keras files both ways ------------------------------------------------------------------------
def _image_model(data, lib):
    layers = lib.layers
    inp = lib.Input((7, 10, 3))
    h = layers.Rescaling(1 / 255.0, name="rescale")(inp)
    h = layers.Resizing(6, 8, name="resize")(h)
    h = layers.CenterCrop(4, 6, name="crop")(h)
    norm = layers.Normalization(name="norm")
    h = norm(h)
    h = layers.Flatten()(h)
    out = layers.Dense(2, name="dense")(h)
    return lib.Model(inp, out), norm


def _table_model(lib):
    layers = lib.layers
    inp = lib.Input((4,))
    h = layers.Normalization(mean=[3.0, 3.0, 2.0, 2.5], variance=[4.0, 1.0, 2.0, 9.0], name="n")(
        inp
    )
    h = layers.Discretization(bin_boundaries=[-1.0, 0.0, 1.0], output_mode="count", name="d")(h)
    return lib.Model(inp, layers.Dense(3, name="dense")(h))


KERAS_FILES_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    data = dict(np.load(sys.argv[1]))
    folder = os.path.dirname(sys.argv[1])
    out = {}
    rng = np.random.default_rng(3)
    # Keras writes: the image model with an adapted Normalization, the table model
    inp = keras.Input((7, 10, 3))
    h = keras.layers.Rescaling(1 / 255.0, name="rescale")(inp)
    h = keras.layers.Resizing(6, 8, name="resize")(h)
    h = keras.layers.CenterCrop(4, 6, name="crop")(h)
    norm = keras.layers.Normalization(name="norm")
    h = norm(h)
    h = keras.layers.Flatten()(h)
    model = keras.Model(inp, keras.layers.Dense(2, name="dense")(h))
    stats = keras.Model(inp, model.get_layer("crop").output).predict(data["img"], verbose=0)
    norm.adapt(stats)
    model.get_layer("dense").set_weights([data["dense_w"], data["dense_b"]])
    out["image"] = model.predict(data["img"], verbose=0)
    model.save(os.path.join(folder, "image.keras"))
    inp = keras.Input((4,))
    h = keras.layers.Normalization(
        mean=[3.0, 3.0, 2.0, 2.5], variance=[4.0, 1.0, 2.0, 9.0], name="n")(inp)
    h = keras.layers.Discretization(
        bin_boundaries=[-1.0, 0.0, 1.0], output_mode="count", name="d")(h)
    table = keras.Model(inp, keras.layers.Dense(3, name="dense")(h))
    table.get_layer("dense").set_weights([data["dense3_w"], data["dense3_b"]])
    out["table"] = table.predict(data["tab"], verbose=0)
    table.save(os.path.join(folder, "table.keras"))
    # Keras reads the files polykeras wrote
    for name, key in (("ours_image", "img"), ("ours_table", "tab")):
        path = os.path.join(folder, name + ".keras")
        if os.path.exists(path):
            out[name] = keras.models.load_model(path).predict(data[key], verbose=0)
    np.savez(sys.argv[2], **out)
""")


def test_keras_files_both_ways(backend, tmp_path):
    rng = np.random.default_rng(5)
    data = _data()
    arrays = {
        "img": data["img4"],
        "tab": data["tab"],
        "dense_w": rng.normal(size=(4 * 6 * 3, 2)).astype("float32"),
        "dense_b": rng.normal(size=(2,)).astype("float32"),
        "dense3_w": rng.normal(size=(4, 3)).astype("float32"),
        "dense3_b": rng.normal(size=(3,)).astype("float32"),
    }
    # polykeras writes the same two models
    model, norm = _image_model(data, polykeras)
    crop = Model(model.inputs, model.get_layer("crop").output)
    norm.adapt(crop.predict(data["img4"], verbose=0))
    model.get_layer("dense").set_weights([arrays["dense_w"], arrays["dense_b"]])
    model.save(str(tmp_path / "ours_image.keras"))
    table = _table_model(polykeras)
    table.get_layer("dense").set_weights([arrays["dense3_w"], arrays["dense3_b"]])
    table.save(str(tmp_path / "ours_table.keras"))
    results = run_keras3_script(tmp_path, KERAS_FILES_SCRIPT, arrays)

    mine_image = model.predict(data["img4"], verbose=0)
    mine_table = table.predict(data["tab"], verbose=0)
    np.testing.assert_allclose(mine_image, results["image"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mine_table, results["table"], rtol=1e-5, atol=1e-5)
    # Keras 3 loads our files and predicts the same
    np.testing.assert_allclose(results["ours_image"], mine_image, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(results["ours_table"], mine_table, rtol=1e-5, atol=1e-5)
    # we load Keras 3's files and predict the same
    loaded = load_model(str(tmp_path / "image.keras"), compile=False)
    np.testing.assert_allclose(
        loaded.predict(data["img4"], verbose=0), results["image"], rtol=1e-4, atol=1e-4
    )
    got = loaded.get_layer("norm").get_weights()
    assert [w.shape for w in got] == [(3,), (3,), ()]
    loaded = load_model(str(tmp_path / "table.keras"), compile=False)
    np.testing.assert_allclose(
        loaded.predict(data["tab"], verbose=0), results["table"], rtol=1e-5, atol=1e-5
    )


# -- models and files here -------------------------------------------------------------------------
def test_in_models_on_both_backends(backend):
    data = _data()
    x = data["img4"]
    seq = Sequential(
        [
            L.Rescaling(1 / 255.0, input_shape=(7, 10, 3)),
            L.Resizing(5, 5, interpolation="nearest"),
            L.CenterCrop(3, 3),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    assert seq.output_shape == (None, 2)
    out = seq.predict(x, verbose=0)
    assert out.shape == (2, 2) and np.all(np.isfinite(out))
    # eager layer by layer gives the same as the model
    h = x
    for layer in seq.layers:
        h = layer(h)
    np.testing.assert_allclose(_np(h), out, rtol=1e-5, atol=1e-6)
    # a functional model that trains with Normalization and Discretization in front
    inp = polykeras.Input((4,))
    norm = L.Normalization()
    norm.adapt(data["tab"])
    h = norm(inp)
    bins = L.Discretization(bin_boundaries=[-0.5, 0.5], output_mode="one_hot")(h)
    assert bins.shape == (None, 4, 3)
    h = L.Flatten()(bins)
    model = Model(inp, L.Dense(1)(L.Concatenate()([norm.output, h])))
    model.compile("sgd", "mse")
    before = [w.copy() for w in norm.get_weights()]
    hist = model.fit(data["tab"], data["tab"][:, :1], epochs=2, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    for a, b in zip(before, norm.get_weights()):  # the statistics are not trained
        np.testing.assert_array_equal(a, b)
    assert norm.trainable_weights == [] and len(norm.non_trainable_weights) == 3


def test_symbolic_shapes_and_dtypes():
    img = polykeras.Input((7, 10, 3))
    assert L.Resizing(3, 4)(img).shape == (None, 3, 4, 3)
    assert L.CenterCrop(2, 5)(img).shape == (None, 2, 5, 3)
    cf = polykeras.Input((3, 7, 10))
    assert L.Resizing(3, 4, data_format="channels_first")(cf).shape == (None, 3, 3, 4)
    x = polykeras.Input((5,))
    assert L.Discretization([0.0, 1.0])(x).dtype == "int32"
    assert L.Discretization([0.0, 1.0], output_mode="multi_hot")(x).shape == (None, 3)
    assert L.Discretization([0.0, 1.0], output_mode="count")(x).shape == (None, 3)
    assert L.Discretization([0.0], output_mode="one_hot")(x).shape == (None, 5, 2)
    one = polykeras.Input((1,))
    assert L.Discretization([0.0], output_mode="one_hot")(one).shape == (None, 2)
    seq = polykeras.Input((5, 6))
    assert L.Discretization([0.0], output_mode="count")(seq).shape == (None, 6, 2)
    assert L.Normalization(axis=None)(seq).shape == (None, 5, 6)


def test_config_json_and_h5_round_trip(tmp_path):
    data = _data()
    inp = polykeras.Input((4,))
    norm = L.Normalization(name="norm")
    norm.adapt(data["tab"])
    h = norm(inp)
    disc = L.Discretization(num_bins=3, name="disc", output_mode="multi_hot")
    disc.adapt(data["tab"])
    h = disc(h)
    h = L.Normalization(axis=None, mean=0.5, variance=0.25, invert=True, name="inv")(h)
    model = Model(inp, h)
    want = model.predict(data["tab"], verbose=0)
    again = model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again.predict(data["tab"], verbose=0), want, rtol=1e-6)
    assert again.get_layer("disc").bin_boundaries == disc.bin_boundaries
    for ext in ("h5", "keras"):
        path = str(tmp_path / f"m.{ext}")
        model.save(path)
        loaded = load_model(path)
        np.testing.assert_allclose(loaded.predict(data["tab"], verbose=0), want, rtol=1e-6)
        np.testing.assert_allclose(
            loaded.get_layer("norm").get_weights()[0], norm.get_weights()[0], rtol=1e-7
        )


# -- adapt -----------------------------------------------------------------------------------------
class _Batches(Sequence):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return 4

    def __getitem__(self, i):
        part = self.x[i * 10 : (i + 1) * 10]
        return part, np.zeros(len(part))


def test_normalization_adapt_sources(backend):
    x = _data()["tab"].astype("float64")
    want_mean, want_var = x.mean(0), x.var(0)
    sources = {
        "array": x,
        "backend array": backend.asarray(x),
        "list of batches": [x[:7], x[7:30], x[30:]],
        "generator": (x[i : i + 9] for i in range(0, 40, 9)),
        "Sequence of (x, y)": _Batches(x),
        "[x, y] lists": [[x[:25], x[:25, 0]], [x[25:], x[25:, 0]]],
    }
    for label, source in sources.items():
        layer = L.Normalization()
        layer.adapt(source)
        mean, var, count = layer.get_weights()
        np.testing.assert_allclose(mean, want_mean, rtol=1e-5, err_msg=label)
        np.testing.assert_allclose(var, want_var, rtol=1e-5, err_msg=label)
        assert count == 0 and count.dtype == np.int32  # as Keras 3 leaves it
        got = _np(layer(x))
        np.testing.assert_allclose(got.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(got.std(0), 1.0, rtol=1e-4)
    # adapting again replaces the statistics
    layer.adapt(x[:5] * 0 + 2.0)
    np.testing.assert_allclose(layer.get_weights()[0], 2.0)
    np.testing.assert_allclose(_np(layer(np.full((1, 4), 2.0))), 0.0)


def test_discretization_adapt_quantiles(backend):
    x = np.arange(1000, dtype="float32")
    layer = L.Discretization(num_bins=4)
    layer.adapt(x)
    np.testing.assert_allclose(layer.bin_boundaries, [250.0, 500.0, 750.0], atol=10.0)
    counts = np.bincount(_np(layer(x)), minlength=4)
    assert counts.min() >= 240 and counts.max() <= 260
    layer.adapt([x[:300], x[300:]], steps=1)  # only the first batch
    assert max(layer.bin_boundaries) < 300


def test_resizing_identity_and_constant(backend):
    x = _data()["img4"]
    for interpolation in ("bilinear", "nearest"):
        same = L.Resizing(7, 10, interpolation=interpolation)(x)
        np.testing.assert_array_equal(_np(same), x)
        flat = L.Resizing(13, 3, interpolation=interpolation)(np.full((1, 7, 10, 2), 4.5))
        np.testing.assert_allclose(_np(flat), 4.5, rtol=1e-6)
    # doubling with bilinear is UpSampling2D's bilinear
    up = L.UpSampling2D(2, interpolation="bilinear")(x)
    np.testing.assert_allclose(_np(L.Resizing(14, 20)(x)), _np(up), rtol=1e-5, atol=1e-4)


def test_channels_first_setting_for_rescaling(backend, channels_first):
    x = _data()["img4_cf"]
    got = _np(L.Rescaling([1.0, 10.0, 100.0], offset=[0.0, 1.0, 2.0])(x))
    scale = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    np.testing.assert_allclose(got, x * scale + np.arange(3.0).reshape(3, 1, 1), rtol=1e-6)
    assert L.Resizing(2, 3).data_format == "channels_first"


def _grad(layer, x, coeff):
    B = K.current()

    def fn(leaves):
        return ops.sum(ops.multiply(layer(leaves[0]), B.asarray(coeff))), None

    _, _, grads = autodiff.value_and_grad(fn, [B.asarray(x)])
    return _np(grads[0])


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: L.Resizing(5, 3, dtype="float64"), (2, 4, 6, 2)),
        (lambda: L.Resizing(5, 3, interpolation="nearest", dtype="float64"), (1, 4, 6, 2)),
        (lambda: L.Resizing(4, 4, crop_to_aspect_ratio=True, dtype="float64"), (1, 4, 6, 1)),
        (lambda: L.CenterCrop(2, 3, dtype="float64"), (1, 4, 6, 2)),
        (lambda: L.CenterCrop(5, 5, dtype="float64"), (1, 4, 6, 1)),
        (lambda: L.Rescaling(0.5, offset=2.0, dtype="float64"), (2, 3)),
        (lambda: L.Normalization(mean=1.0, variance=4.0, dtype="float64"), (2, 3)),
    ],
)
def test_gradients_flow(backend, make, shape):
    """The layers are linear in their input: the gradient of sum(out * c) is the finite
    difference along each input (exactly, up to rounding)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape)
    layer = make()
    coeff = rng.normal(size=_np(layer(x)).shape)
    got = _grad(layer, x, coeff)
    want = np.zeros_like(x)
    base = float((_np(layer(x)) * coeff).sum())
    for idx in np.ndindex(*x.shape):
        xp = x.copy()
        xp[idx] += 1.0
        want[idx] = float((_np(layer(xp)) * coeff).sum()) - base
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_discretization_of_integers(backend):
    layer = L.Discretization([0.5, 2.0])
    got = _np(layer(np.array([[0, 1, 2, 3]], dtype="int32")))
    np.testing.assert_array_equal(got, [[0, 1, 2, 2]])
    inp = polykeras.Input((4,), dtype="int32")
    model = Model(inp, L.Discretization([0.5, 2.0], output_mode="count")(inp))
    np.testing.assert_array_equal(model.predict(np.array([[0, 1, 2, 3]]), verbose=0), [[1, 1, 2]])


def test_discretization_under_a_gradient_is_constant(backend):
    layer = L.Discretization([0.0], output_mode="one_hot", dtype="float64")
    x = np.array([[-1.0], [1.0]])
    got = _grad(layer, x, np.ones((2, 2)))
    np.testing.assert_array_equal(got, 0.0)


# -- errors and refusals ---------------------------------------------------------------------------
def test_bad_and_unimplemented_settings():
    with pytest.raises(NotImplementedError, match="bicubic"):
        L.Resizing(2, 2, interpolation="bicubic")
    with pytest.raises(ValueError, match="interpolation='cubicle'"):
        L.Resizing(2, 2, interpolation="cubicle")
    with pytest.raises(NotImplementedError, match="antialias"):
        L.Resizing(2, 2, antialias=True)
    with pytest.raises(NotImplementedError, match="fill_mode='reflect'"):
        L.Resizing(2, 2, fill_mode="reflect")
    with pytest.raises(ValueError, match="cannot both"):
        L.Resizing(2, 2, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match="height"):
        L.Resizing(0, 2)
    with pytest.raises(ValueError, match="width"):
        L.CenterCrop(2, "wide")
    with pytest.raises(ValueError, match="4-D batch of images or one 3-D image"):
        L.CenterCrop(2, 2)(polykeras.Input((5,)))
    with pytest.raises(ValueError, match="scale"):
        L.Rescaling("big")
    with pytest.raises(ValueError, match="offset"):
        L.Rescaling(1.0, offset=[1.0, float("nan")])
    with pytest.raises(ValueError, match="mean and variance together"):
        L.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="same shape"):
        L.Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match="more dimensions"):
        L.Normalization(mean=[[1.0]], variance=[[1.0]])
    with pytest.raises(ValueError, match="axis"):
        L.Normalization(axis="last")
    with pytest.raises(ValueError, match="out of range"):
        L.Normalization(axis=3)(polykeras.Input((4,)))
    with pytest.raises(ValueError, match="known size"):
        L.Normalization(axis=0)(polykeras.Input((4,)))
    with pytest.raises(ValueError, match="without mean and variance"):
        L.Normalization(mean=1.0, variance=1.0).adapt(np.ones((2, 2)))
    with pytest.raises(TypeError, match="adapt"):
        L.Normalization().adapt("data")
    with pytest.raises(ValueError, match="no data"):
        L.Normalization().adapt([])
    adapted = L.Normalization()
    adapted.adapt(np.ones((3, 4)))
    with pytest.raises(ValueError, match="incompatible"):
        adapted(np.ones((3, 5)))
    with pytest.raises(ValueError, match="not both"):
        L.Discretization(bin_boundaries=[1.0], num_bins=2)
    with pytest.raises(ValueError, match="give bin_boundaries"):
        L.Discretization()
    with pytest.raises(ValueError, match="increasing"):
        L.Discretization([1.0, 0.0])
    with pytest.raises(ValueError, match="output_mode='tf_idf'"):
        L.Discretization([1.0], output_mode="tf_idf")
    with pytest.raises(NotImplementedError, match="sparse=True"):
        L.Discretization([1.0], output_mode="count", sparse=True)
    with pytest.raises(ValueError, match="num_bins"):
        L.Discretization([1.0]).adapt(np.ones(3))
    with pytest.raises(ValueError, match="call adapt"):
        L.Discretization(num_bins=3)(np.ones((2, 1)))


def test_discretization_config_has_no_trainable():
    cfg = L.Discretization([0.0]).get_config()
    assert "trainable" not in cfg  # Keras 3's Discretization takes no trainable=
    assert config.epsilon() == 1e-7
