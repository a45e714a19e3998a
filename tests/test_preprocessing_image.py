"""keras.preprocessing.image: image files, ImageDataGenerator and its iterators.

Hand-computed expectations (flips, whole-pixel shifts, rescale, feature-wise statistics,
batch order and count, seeds), SciPy's ``ndimage.affine_transform`` for the resampling
(Keras resamples with it), and real Keras 3 (its legacy ImageDataGenerator and
keras.utils image functions) on the same arrays, files and seeds."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import polykeras as keras
from helpers import backend_params, run_keras3_script
from polykeras.preprocessing import image as pimage
from polykeras.preprocessing.image import ImageDataGenerator

try:
    import PIL.Image  # noqa: F401

    HAS_PIL = True
except ImportError:
    HAS_PIL = False
HAS_PANDAS = importlib.util.find_spec("pandas") is not None
HAS_SCIPY = importlib.util.find_spec("scipy") is not None
needs_pil = pytest.mark.skipif(not HAS_PIL, reason="Pillow is not installed (the image extra)")
needs_pandas = pytest.mark.skipif(not HAS_PANDAS, reason="pandas is not installed")

RNG = np.random.RandomState(1)
X = (RNG.rand(10, 7, 9, 3) * 255).astype("float32")  # not square: Keras' centring shows
Y = np.arange(10)
AUGMENT = dict(
    rotation_range=25,
    width_shift_range=0.2,
    height_shift_range=3,
    shear_range=10,
    zoom_range=0.2,
    channel_shift_range=20.0,
    horizontal_flip=True,
    vertical_flip=True,
    brightness_range=(0.5, 1.5),
    rescale=1 / 255.0,
    cval=7.0,
)
FILL_MODES = ("nearest", "constant", "reflect", "wrap")

BACKENDS = backend_params()


def _write_folder(root, sizes=((6, 5), (8, 8), (5, 9)), per_class=(3, 2)):
    """root/cats/*.png and root/dogs/*.png (+ files that are not images), deterministic."""
    from PIL import Image

    rng = np.random.RandomState(7)
    names = []
    for cls, count in zip(("cats", "dogs"), per_class):
        os.makedirs(root / cls, exist_ok=True)
        for i in range(count):
            h, w = sizes[i % len(sizes)]
            pixels = rng.randint(0, 256, size=(h, w, 3)).astype("uint8")
            Image.fromarray(pixels, "RGB").save(root / cls / f"img{i}.png")
            names.append(f"{cls}/img{i}.png")
        (root / cls / "notes.txt").write_text("not an image")
    return names


# --------------------------------------------------------------------------- imports


def test_import_polykeras_loads_neither_pillow_nor_the_image_module():
    code = (
        "import sys, polykeras as keras\n"
        "assert 'PIL' not in sys.modules, 'PIL'\n"
        "assert 'polykeras.preprocessing.image' not in sys.modules\n"
        "from polykeras.preprocessing import image\n"
        "assert 'PIL' not in sys.modules, 'PIL after importing the module'\n"
        "assert keras.utils.load_img is image.load_img\n"
        "from polykeras.utils.image_utils import save_img\n"
        "assert save_img is image.save_img\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_missing_pillow_is_an_error_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=r"load_img needs Pillow.*polykeras\[image\]"):
        pimage.load_img(tmp_path / "x.png")
    with pytest.raises(ImportError, match=r"array_to_img needs Pillow.*\.\[image\]"):
        pimage.array_to_img(np.zeros((2, 2, 3)))
    # arrays alone need no Pillow
    out = ImageDataGenerator(horizontal_flip=True).flow(X, Y, seed=0, batch_size=4)[0]
    assert out[0].shape == (4, 7, 9, 3)


def test_missing_pandas_is_an_error_naming_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"needs pandas.*install 'polykeras\[dataframe\]'"):
        ImageDataGenerator().flow_from_dataframe(object())


# --------------------------------------------------------------------------- files


@needs_pil
def test_save_and_load_round_trip_exact_pixels(tmp_path):
    pixels = RNG.randint(0, 256, size=(5, 7, 3)).astype("float32")
    pimage.save_img(tmp_path / "a.png", pixels, scale=False)
    img = pimage.load_img(tmp_path / "a.png")
    assert img.size == (7, 5) and img.mode == "RGB"
    np.testing.assert_array_equal(pimage.img_to_array(img), pixels)
    first = pimage.img_to_array(img, data_format="channels_first")
    assert first.shape == (3, 5, 7) and first.dtype == np.float32
    gray = pimage.img_to_array(pimage.load_img(str(tmp_path / "a.png"), color_mode="grayscale"))
    assert gray.shape == (5, 7, 1)
    with pytest.warns(UserWarning, match="grayscale is deprecated"):
        legacy = pimage.load_img(tmp_path / "a.png", grayscale=True)
    assert legacy.mode == "L"
    rgba = pimage.load_img(tmp_path / "a.png", color_mode="rgba")
    assert pimage.img_to_array(rgba).shape == (5, 7, 4)
    small = pimage.load_img(tmp_path / "a.png", target_size=(3, 4), interpolation="bilinear")
    assert pimage.img_to_array(small).shape == (3, 4, 3)
    square = pimage.load_img(tmp_path / "a.png", target_size=(5, 5), keep_aspect_ratio=True)
    # the centre 5x5 crop at its own size: columns 1..5 unchanged
    np.testing.assert_array_equal(pimage.img_to_array(square), pixels[:, 1:6])


@needs_pil
def test_array_to_img_scales_to_0_255_and_picks_the_mode():
    x = np.linspace(-1, 1, 2 * 3 * 3).reshape(2, 3, 3)
    img = pimage.array_to_img(x)
    values = np.asarray(img)
    assert img.mode == "RGB" and values.min() == 0 and values.max() == 255
    assert pimage.array_to_img(np.ones((2, 3, 1)) * 3, scale=False).mode == "L"
    assert pimage.array_to_img(np.ones((2, 3, 1)) * 300, scale=False).mode == "I"
    assert pimage.array_to_img(np.ones((4, 2, 3)), data_format="channels_first").size == (3, 2)
    with pytest.raises(ValueError, match="unsupported channel number 2"):
        pimage.array_to_img(np.ones((2, 3, 2)))
    with pytest.raises(ValueError, match="rank 3"):
        pimage.array_to_img(np.ones((2, 3)))


@needs_pil
def test_file_arguments_are_checked(tmp_path):
    pimage.save_img(tmp_path / "a.png", np.ones((2, 2, 3)))
    with pytest.raises(ValueError, match="color_mode must be"):
        pimage.load_img(tmp_path / "a.png", color_mode="cmyk")
    with pytest.raises(ValueError, match="invalid interpolation method 'cubic'"):
        pimage.load_img(tmp_path / "a.png", target_size=(3, 3), interpolation="cubic")
    with pytest.raises(TypeError, match="load_img: path should be"):
        pimage.load_img(3)
    with pytest.raises(ValueError, match="interpolation='bicubic' is not implemented"):
        pimage.smart_resize(np.ones((2, 2, 3)), (3, 3), interpolation="bicubic")
    with open(tmp_path / "a.png", "rb") as f:  # a file object works too
        assert pimage.load_img(f).size == (2, 2)


# --------------------------------------------------------------------------- transforms


def test_flips_and_whole_pixel_shifts_by_hand():
    x = np.arange(20, dtype="float32").reshape(4, 5, 1)
    gen = ImageDataGenerator()
    np.testing.assert_array_equal(gen.apply_transform(x, {"flip_horizontal": True}), x[:, ::-1])
    np.testing.assert_array_equal(gen.apply_transform(x, {"flip_vertical": True}), x[::-1])
    # Keras' matrix (tf.keras 2.x, Keras 3): ``tx`` moves along the columns, ``ty`` along
    # the rows; output pixel (r, c) reads input (r + ty, c + tx)
    right = gen.apply_transform(x, {"tx": 1})
    np.testing.assert_array_equal(right[:, :4], x[:, 1:])
    np.testing.assert_array_equal(right[:, 4], x[:, 4])  # "nearest" repeats the edge
    down = gen.apply_transform(x, {"ty": -2})
    np.testing.assert_array_equal(down[2:], x[:2])
    np.testing.assert_array_equal(down[:2], np.repeat(x[:1], 2, axis=0))
    constant = ImageDataGenerator(fill_mode="constant", cval=-1.0).apply_transform(x, {"ty": 1})
    np.testing.assert_array_equal(constant[:3], x[1:])
    np.testing.assert_array_equal(constant[3], -np.ones((5, 1)))
    wrap = ImageDataGenerator(fill_mode="wrap").apply_transform(x, {"tx": 2})
    # SciPy's "wrap" has period n - 1 (the first and last columns coincide)
    np.testing.assert_array_equal(wrap[:, :3], x[:, 2:])
    np.testing.assert_array_equal(wrap[:, 3:], x[:, 1:3])
    # a half turn about the centre of a square image is both flips (Keras centres with
    # (rows, cols) before its x/y swap, so a non-square image turns about another point)
    sq = np.arange(25, dtype="float32").reshape(5, 5, 1)
    np.testing.assert_allclose(gen.apply_transform(sq, {"theta": 180}), sq[::-1, ::-1], atol=1e-4)
    # the identity resamples nothing
    assert gen.apply_transform(x, {}) is not x
    np.testing.assert_array_equal(gen.apply_transform(x, {}), x)


def test_channels_first_is_the_same_image_moved():
    x = X[0]
    last = ImageDataGenerator(rotation_range=30, zoom_range=0.3, horizontal_flip=True)
    first = ImageDataGenerator(
        rotation_range=30, zoom_range=0.3, horizontal_flip=True, data_format="channels_first"
    )
    p = last.get_random_transform(x.shape, seed=4)
    out_first = first.apply_transform(np.moveaxis(x, 2, 0), p)
    np.testing.assert_allclose(np.moveaxis(out_first, 0, 2), last.apply_transform(x, p))


@pytest.mark.skipif(not HAS_SCIPY, reason="SciPy is not installed: no resampling reference")
@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("mode", FILL_MODES)
def test_resampling_equals_scipy_affine_transform(mode, order):
    from scipy import ndimage

    rng = np.random.RandomState(0)
    for trial in range(25):
        h, w = rng.randint(1, 9), rng.randint(1, 9)
        x = rng.rand(h, w, 2).astype("float32")
        m = np.concatenate([rng.randn(2, 2) * 1.5, rng.randn(2, 1) * 4], axis=1)
        if trial % 3 == 0:  # whole numbers: points exactly on the edges
            m = np.round(m)
        expected = np.stack(
            [
                ndimage.affine_transform(
                    x[..., c], m[:, :2], m[:, 2], order=order, mode=mode, cval=-3.0
                )
                for c in range(2)
            ],
            axis=-1,
        )
        got = pimage._resample(x[None], m[None], mode, -3.0, order)[0]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=f"{m}")


def test_brightness_equals_pillow_enhance():
    if not HAS_PIL:
        pytest.skip("Pillow is not installed (the image extra)")
    from PIL import Image, ImageEnhance

    x = RNG.randint(0, 256, size=(6, 5, 3)).astype("float32")
    for factor in (0.3, 1.0, 1.7):
        enhanced = ImageEnhance.Brightness(Image.fromarray(x.astype("uint8"))).enhance(factor)
        expected = np.asarray(enhanced, dtype="float32")
        got = pimage.apply_brightness_shift(x, factor, scale=False)  # 0..255: no stretch
        np.testing.assert_array_equal(got, expected)
    stretched = pimage.apply_brightness_shift(x / 1000.0, 1.0)  # scale=True: to 0..255
    assert stretched.min() == 0 and stretched.max() == 255
    outside = pimage.apply_brightness_shift(x * 2 - 100, 1.0, scale=False)  # back to its range
    np.testing.assert_allclose(outside, x * 2 - 100, atol=(x.max() * 2) / 255 + 1e-3)


def test_rescale_and_featurewise_statistics_by_hand():
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
    gen.fit(X)
    np.testing.assert_allclose(gen.mean.ravel(), X.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(gen.std.ravel(), X.std(axis=(0, 1, 2)), rtol=1e-4)
    assert gen.mean.shape == (1, 1, 3)
    batch = gen.flow(X, shuffle=False, batch_size=10)[0]
    expected = (X - X.mean(axis=(0, 1, 2))) / (X.std(axis=(0, 1, 2)) + 1e-6)
    np.testing.assert_allclose(batch, expected, rtol=1e-4, atol=1e-4)
    scaled = ImageDataGenerator(rescale=0.5).flow(X, Y, shuffle=False, batch_size=4)
    np.testing.assert_array_equal(scaled[1][0], X[4:8] * 0.5)
    with pytest.warns(UserWarning, match="turns samplewise_center on"):
        samplewise = ImageDataGenerator(samplewise_std_normalization=True)
    out = samplewise.flow(X, batch_size=10, shuffle=False)[0]
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1, atol=1e-3)
    with pytest.warns(UserWarning, match="has not been fit"):
        ImageDataGenerator(featurewise_center=True).flow(X, batch_size=2)[0]


def test_zca_whitening_decorrelates():
    x = RNG.rand(40, 3, 3, 1).astype("float32")
    with pytest.warns(UserWarning, match="zca_whitening turns featurewise_center on"):
        gen = ImageDataGenerator(zca_whitening=True, zca_epsilon=1e-9)
    gen.fit(x)
    assert gen.principal_components is gen.zca_whitening_matrix
    white = gen.flow(x, batch_size=40, shuffle=False)[0].reshape(40, -1)
    # Keras centres per channel, so the second moment (not the covariance) is the identity
    np.testing.assert_allclose(white.T @ white / 40, np.eye(9), atol=1e-3)


def test_preprocessing_function_runs_per_image_after_augmentation():
    seen = []

    def fn(im):
        seen.append(im.shape)
        return im * 0 + 1.0

    out = ImageDataGenerator(preprocessing_function=fn, rescale=2.0).flow(X, batch_size=4)[0]
    assert seen == [(7, 9, 3)] * 4
    np.testing.assert_array_equal(out, np.full((4, 7, 9, 3), 2.0))


# --------------------------------------------------------------------------- batches


def test_flow_batch_order_count_and_shuffle():
    it = ImageDataGenerator().flow(X, Y, batch_size=4, shuffle=False)
    assert len(it) == 3 and isinstance(it, keras.utils.Sequence)
    assert [list(it[i][1]) for i in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    shuffled = ImageDataGenerator().flow(X, Y, batch_size=4, seed=3)
    epoch1 = np.concatenate([shuffled[i][1] for i in range(3)])
    assert sorted(epoch1) == list(range(10)) and list(epoch1) != list(range(10))
    np.testing.assert_array_equal(shuffled[0][0], X[epoch1[:4]])  # images follow labels
    shuffled.on_epoch_end()
    epoch2 = np.concatenate([shuffled[i][1] for i in range(3)])
    assert sorted(epoch2) == list(range(10)) and list(epoch2) != list(epoch1)
    # Keras 2's endless iterator: a short last batch, then the next pass
    endless = ImageDataGenerator().flow(X, Y, batch_size=4, shuffle=False)
    sizes = [len(next(endless)[1]) for _ in range(5)]
    assert sizes == [4, 4, 2, 4, 4]
    with pytest.raises(ValueError, match="asked for batch 3, but the Sequence has length 3"):
        it[3]


def test_flow_outputs_weights_extra_inputs_and_x_alone():
    w = np.linspace(0.1, 1, 10)
    xb, yb, wb = ImageDataGenerator().flow(X, Y, sample_weight=w, shuffle=False, batch_size=3)[1]
    np.testing.assert_array_equal(wb, w[3:6])
    (images, extra), yb = ImageDataGenerator().flow(
        (X, np.arange(10) * 2), Y, shuffle=False, batch_size=3
    )[1]
    np.testing.assert_array_equal(extra, [6, 8, 10])
    assert ImageDataGenerator().flow(X, batch_size=3)[0].shape == (3, 7, 9, 3)
    with pytest.raises(ValueError, match="should have the same length"):
        ImageDataGenerator().flow(X, Y[:5])
    with pytest.raises(ValueError, match="rank 4"):
        ImageDataGenerator().flow(X[0])


def test_seeds_repeat_in_any_order_and_threads_do_not_matter():
    gen = ImageDataGenerator(rotation_range=40, zoom_range=0.3, horizontal_flip=True)
    a = gen.flow(X, Y, batch_size=4, seed=5)
    b = gen.flow(X, Y, batch_size=4, seed=5)
    late = b[2]  # asked for first: the same numbers as when asked for in order
    for i in range(3):
        np.testing.assert_array_equal(a[i][0], (late if i == 2 else b[i])[0])
    other = gen.flow(X, Y, batch_size=4, seed=6)[0][0]
    assert not np.allclose(other, a[0][0])
    p1 = gen.get_random_transform((7, 9, 3), seed=1)
    assert p1 == gen.get_random_transform((7, 9, 3), seed=1)
    np.random.seed(0)
    g1 = gen.flow(X, Y, batch_size=4)[0][0]
    np.random.seed(0)
    g2 = gen.flow(X, Y, batch_size=4)[0][0]
    np.testing.assert_array_equal(g1, g2)  # without a seed: NumPy's global generator


def test_shift_ranges_as_keras_reads_them():
    img = (7, 9, 3)
    ints = ImageDataGenerator(width_shift_range=3)
    drawn = {ints.get_random_transform(img, seed=s)["ty"] for s in range(200)}
    assert drawn == {-2, -1, 0, 1, 2}  # whole pixels in the open interval
    listed = ImageDataGenerator(height_shift_range=[2, 4])
    assert {listed.get_random_transform(img, seed=s)["tx"] for s in range(200)} == {-4, -2, 2, 4}
    fraction = ImageDataGenerator(width_shift_range=0.5)
    ty = [fraction.get_random_transform(img, seed=s)["ty"] for s in range(200)]
    assert -4.5 <= min(ty) < -3 and 3 < max(ty) <= 4.5  # a fraction of the 9 columns
    pixels = ImageDataGenerator(width_shift_range=2.0)
    ty = [pixels.get_random_transform(img, seed=s)["ty"] for s in range(200)]
    assert -2 <= min(ty) < -1.5 and 1.5 < max(ty) <= 2


def test_validation_split_subsets():
    gen = ImageDataGenerator(validation_split=0.3)
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    val = gen.flow(X, y, subset="validation", shuffle=False, batch_size=10)[0]
    train = gen.flow(X, y, subset="training", shuffle=False, batch_size=10)[0]
    np.testing.assert_array_equal(val[0], X[:3])
    np.testing.assert_array_equal(train[0], X[3:])
    with pytest.raises(ValueError, match="different classes after the split"):
        gen.flow(X, np.sort(y), subset="training")
    assert len(gen.flow(X, np.sort(y), subset="training", ignore_class_split=True)) == 1
    with pytest.raises(ValueError, match='invalid subset name "train"|invalid subset name'):
        gen.flow(X, y, subset="train")
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        ImageDataGenerator(validation_split=1.5)


def test_keras1_dim_ordering():
    assert ImageDataGenerator(dim_ordering="th").data_format == "channels_first"
    assert ImageDataGenerator(dim_ordering="tf").data_format == "channels_last"
    with pytest.raises(ValueError, match="not both"):
        ImageDataGenerator(dim_ordering="th", data_format="channels_first")


def test_unsupported_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="interpolation_order=3 is not supported"):
        ImageDataGenerator(interpolation_order=3)
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        ImageDataGenerator(fill_mode="mirror")
    with pytest.raises(ValueError, match="zoom_range should be"):
        ImageDataGenerator(zoom_range=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="brightness_range should be"):
        ImageDataGenerator(brightness_range=0.5)
    with pytest.raises(TypeError, match="preprocessing_function must be callable"):
        ImageDataGenerator(preprocessing_function=3)
    with pytest.raises(ValueError, match="data_format"):
        ImageDataGenerator(data_format="channels_middle")
    with pytest.raises(ValueError, match="has_ext= is a removed Keras 2 setting"):
        ImageDataGenerator().flow_from_dataframe(None, has_ext=True)
    with pytest.raises(ValueError, match="rank 4"):
        ImageDataGenerator().fit(X[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_trains_a_conv2d_model_on_flow(backend):
    from polykeras.layers import Conv2D, Dense, Flatten

    x = RNG.rand(16, 8, 8, 1).astype("float32") * 255
    y = keras.utils.to_categorical(np.arange(16) % 2, 2)
    gen = ImageDataGenerator(rescale=1 / 255.0, rotation_range=10, horizontal_flip=True)
    histories = []
    for name in ("numpy", backend):
        with keras.use_backend(name):
            keras.utils.set_random_seed(2)
            model = keras.Sequential(
                [Conv2D(3, 3, activation="relu", input_shape=(8, 8, 1)), Flatten(), Dense(2)]
            )
            model.compile("sgd", "mse")
            before = model.get_weights()[0].copy()
            flow = gen.flow(x, y, batch_size=4, seed=1)
            h = model.fit(flow, epochs=2, shuffle=False, verbose=0, workers=2)
            assert len(h.history["loss"]) == 2 and np.isfinite(h.history["loss"]).all()
            assert not np.allclose(model.get_weights()[0], before)
            histories.append(h.history["loss"])
    # the same seeded batches on every backend (and with two worker threads): same losses
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- folders


@needs_pil
def test_flow_from_directory_by_hand(tmp_path, capsys):
    _write_folder(tmp_path)
    gen = ImageDataGenerator()
    it = gen.flow_from_directory(tmp_path, target_size=(4, 4), batch_size=2, shuffle=False)
    assert "Found 5 images belonging to 2 classes." in capsys.readouterr().out
    assert it.class_indices == {"cats": 0, "dogs": 1}
    assert it.filenames == [
        os.path.join("cats", "img0.png"),
        os.path.join("cats", "img1.png"),
        os.path.join("cats", "img2.png"),
        os.path.join("dogs", "img0.png"),
        os.path.join("dogs", "img1.png"),
    ]
    assert list(it.classes) == [0, 0, 0, 1, 1] and len(it) == 3
    xb, yb = it[1]
    assert xb.shape == (2, 4, 4, 3) and xb.dtype == np.float32
    np.testing.assert_array_equal(yb, [[1, 0], [0, 1]])
    direct = pimage.img_to_array(
        pimage.load_img(tmp_path / "cats" / "img2.png", target_size=(4, 4))
    )
    np.testing.assert_array_equal(xb[0], direct)
    modes = {
        "binary": [0.0, 1.0],
        "sparse": [0.0, 1.0],
    }
    for mode, expected in modes.items():
        b = gen.flow_from_directory(tmp_path, (4, 4), class_mode=mode, batch_size=2, shuffle=False)
        np.testing.assert_array_equal(b[1][1], expected)
    same = gen.flow_from_directory(tmp_path, (4, 4), class_mode="input", shuffle=False)[0]
    np.testing.assert_array_equal(same[0], same[1])
    alone = gen.flow_from_directory(tmp_path, (4, 4), color_mode="grayscale", class_mode=None)
    assert alone[0].shape == (5, 4, 4, 1)
    only = gen.flow_from_directory(tmp_path, (4, 4), classes=["dogs"], shuffle=False)
    assert only.samples == 2 and only.class_indices == {"dogs": 0}
    with pytest.raises(ValueError, match="invalid class_mode 'other'"):
        gen.flow_from_directory(tmp_path, class_mode="other")
    with pytest.raises(ValueError, match="is not a directory"):
        gen.flow_from_directory(tmp_path / "missing")


@needs_pil
def test_flow_from_directory_subsets_split_each_class(tmp_path):
    _write_folder(tmp_path, per_class=(4, 2))
    gen = ImageDataGenerator(validation_split=0.5)
    val = gen.flow_from_directory(tmp_path, (3, 3), subset="validation", shuffle=False)
    train = gen.flow_from_directory(tmp_path, (3, 3), subset="training", shuffle=False)
    assert val.filenames == [os.path.join("cats", f"img{i}.png") for i in (0, 1)] + [
        os.path.join("dogs", "img0.png")
    ]
    assert train.samples == 3 and list(train.classes) == [0, 0, 1]


@needs_pil
@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_flow_from_directory_reads_nothing_outside_unless_follow_links(tmp_path):
    inside = tmp_path / "data"
    _write_folder(inside)
    outside = tmp_path / "elsewhere"
    _write_folder(outside, per_class=(1, 1))
    try:
        os.symlink(outside / "cats" / "img0.png", inside / "cats" / "linked.png")
        os.symlink(outside / "dogs", inside / "dogs" / "more")
        os.symlink(outside / "cats", inside / "birds")
        os.symlink(inside, inside / "cats" / "loop")
    except OSError as exc:
        pytest.skip(f"cannot make symbolic links here: {exc}")
    gen = ImageDataGenerator()
    closed = gen.flow_from_directory(inside, (3, 3))
    assert closed.samples == 5 and sorted(closed.class_indices) == ["cats", "dogs"]
    opened = gen.flow_from_directory(inside, (3, 3), follow_links=True)
    assert sorted(opened.class_indices) == ["birds", "cats", "dogs"]
    assert os.path.join("cats", "linked.png") in opened.filenames
    assert os.path.join("dogs", "more", "img0.png") in opened.filenames
    # the loop back to the top is walked once, not forever
    assert opened.samples < 40


@needs_pil
@needs_pandas
def test_flow_from_dataframe(tmp_path):
    import pandas as pd

    names = _write_folder(tmp_path)
    df = pd.DataFrame(
        {
            "filename": names + ["cats/missing.png"],
            "class": ["cat"] * 3 + ["dog"] * 3,
            "score": np.arange(6, dtype="float32"),
            "w": np.linspace(1, 2, 6),
        }
    )
    gen = ImageDataGenerator()
    with pytest.warns(UserWarning, match="1 invalid image filename"):
        it = gen.flow_from_dataframe(
            df, tmp_path, target_size=(4, 4), batch_size=5, shuffle=False, weight_col="w"
        )
    assert it.samples == 5 and it.class_indices == {"cat": 0, "dog": 1}
    xb, yb, wb = it[0]
    assert xb.shape == (5, 4, 4, 3)
    np.testing.assert_array_equal(yb.argmax(axis=1), [0, 0, 0, 1, 1])
    np.testing.assert_allclose(wb, df["w"][:5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = gen.flow_from_dataframe(
            df, str(tmp_path), y_col="score", class_mode="raw", target_size=(4, 4), shuffle=False
        )
    np.testing.assert_array_equal(raw[0][1], np.arange(5))
    with pytest.raises(TypeError, match="must be strings"):
        gen.flow_from_dataframe(df.assign(filename=1), tmp_path)
    with pytest.raises(ValueError, match='class_mode="binary" needs exactly 2 classes'):
        gen.flow_from_dataframe(df.assign(**{"class": "x"}), tmp_path, class_mode="binary")


# --------------------------------------------------------------------------- Keras 3

_KERAS3 = r"""
import os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
from keras.src.legacy.preprocessing.image import ImageDataGenerator
import keras

data = dict(np.load(sys.argv[1]))
x, y = data["x"], data["y"]
augment = eval(str(data["augment"]))
out = {}
for mode in ["nearest", "constant", "reflect", "wrap"]:
    gen = ImageDataGenerator(fill_mode=mode, **augment)
    it = gen.flow(x, y, batch_size=4, shuffle=True, seed=11)
    for i in range(len(it)):
        bx, by = it[i]
        out[f"{mode}_x{i}"], out[f"{mode}_y{i}"] = bx, by
    p = gen.get_random_transform(x[0].shape, seed=5)
    out[f"{mode}_params"] = np.array([float(p[k]) for k in sorted(p)])
    out[f"{mode}_apply"] = gen.apply_transform(x[1], p)
gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True,
                         rotation_range=10, width_shift_range=[1, 2])
gen.fit(x, augment=True, rounds=2, seed=3)
out["mean"], out["std"] = gen.mean, gen.std
gen = ImageDataGenerator(zca_whitening=True)
gen.fit(x[:, :4, :4] / 255.0)
out["zca"] = gen.zca_whitening_matrix
keras.config.set_image_data_format("channels_first")
gen = ImageDataGenerator(rotation_range=30, shear_range=20, zoom_range=(0.7, 1.1),
                         horizontal_flip=True, fill_mode="reflect", samplewise_center=True)
it = gen.flow(np.moveaxis(x, 3, 1), y, batch_size=5, seed=2)
out["first0"] = it[0][0]
keras.config.set_image_data_format("channels_last")
folder = str(data["folder"])
if folder:
    gen = ImageDataGenerator(rotation_range=20, horizontal_flip=True, rescale=1 / 255.0)
    for mode in ["categorical", "binary"]:
        it = gen.flow_from_directory(folder, target_size=(5, 6), class_mode=mode,
                                     batch_size=3, seed=4, interpolation="bilinear")
        out[f"dir_{mode}_x"], out[f"dir_{mode}_y"] = it[0]
    it = gen.flow_from_directory(folder, target_size=(5, 6), color_mode="grayscale",
                                 class_mode="sparse", batch_size=3, shuffle=False, seed=9)
    it[0]
    out["dir_gray_x"], out["dir_gray_y"] = it[1]
    path = os.path.join(folder, "cats", "img1.png")
    img = keras.utils.load_img(path, target_size=(4, 3), interpolation="bicubic")
    out["load"] = keras.utils.img_to_array(img)
    out["load_first"] = keras.utils.img_to_array(keras.utils.load_img(path), "channels_first")
    out["to_img"] = np.asarray(keras.utils.array_to_img(x[0] - 100.0))
    keras.utils.save_img(os.path.join(folder, "k3.png"), x[2])
from keras.preprocessing.image import smart_resize
out["smart_down"] = smart_resize(x[:3], (4, 6))
out["smart_up"] = smart_resize(x[0], (11, 10))
out["smart_first"] = smart_resize(np.moveaxis(x[1], 2, 0), (5, 5), data_format="channels_first")
np.savez(sys.argv[2], **out)
"""


def _params(p):
    return np.array([float(p[k]) if p[k] is not None else np.nan for k in sorted(p)])


@pytest.fixture(scope="module")
def keras3(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras3_images")
    tree = folder / "tree"
    if HAS_PIL:
        _write_folder(tree)
    inputs = {
        "x": X,
        "y": Y,
        "augment": np.array(repr(AUGMENT)),
        "folder": np.array(str(tree) if HAS_PIL else ""),
    }
    return tree, run_keras3_script(folder, _KERAS3, inputs)


@pytest.mark.parametrize("mode", FILL_MODES)
def test_flow_equals_keras3_with_every_augmentation(keras3, mode):
    _, ref = keras3
    gen = ImageDataGenerator(fill_mode=mode, **AUGMENT)
    it = gen.flow(X, Y, batch_size=4, shuffle=True, seed=11)
    for i in range(len(it)):
        bx, by = it[i]
        np.testing.assert_array_equal(by, ref[f"{mode}_y{i}"])
        np.testing.assert_allclose(bx, ref[f"{mode}_x{i}"], rtol=1e-4, atol=1e-5)
    p = gen.get_random_transform(X[0].shape, seed=5)
    np.testing.assert_allclose(_params(p), ref[f"{mode}_params"], rtol=1e-12)
    np.testing.assert_allclose(gen.apply_transform(X[1], p), ref[f"{mode}_apply"], atol=1e-4)


def test_fit_statistics_and_zca_equal_keras3(keras3):
    _, ref = keras3
    gen = ImageDataGenerator(
        featurewise_center=True,
        featurewise_std_normalization=True,
        rotation_range=10,
        width_shift_range=[1, 2],
    )
    gen.fit(X, augment=True, rounds=2, seed=3)
    np.testing.assert_allclose(gen.mean, ref["mean"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gen.std, ref["std"], rtol=1e-4, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = ImageDataGenerator(zca_whitening=True)
    gen.fit(X[:, :4, :4] / 255.0)
    np.testing.assert_allclose(gen.zca_whitening_matrix, ref["zca"], rtol=1e-4, atol=1e-4)


def test_channels_first_flow_equals_keras3(keras3, channels_first):
    _, ref = keras3
    gen = ImageDataGenerator(
        rotation_range=30,
        shear_range=20,
        zoom_range=(0.7, 1.1),
        horizontal_flip=True,
        fill_mode="reflect",
        samplewise_center=True,
    )
    out = gen.flow(np.moveaxis(X, 3, 1), Y, batch_size=5, seed=2)[0][0]
    np.testing.assert_allclose(out, ref["first0"], rtol=1e-4, atol=1e-4)


@needs_pil
def test_directory_batches_and_files_equal_keras3(keras3, capsys):
    tree, ref = keras3
    gen = ImageDataGenerator(rotation_range=20, horizontal_flip=True, rescale=1 / 255.0)
    for mode in ("categorical", "binary"):
        it = gen.flow_from_directory(
            tree, (5, 6), class_mode=mode, batch_size=3, seed=4, interpolation="bilinear"
        )
        bx, by = it[0]
        np.testing.assert_allclose(bx, ref[f"dir_{mode}_x"], rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(by, ref[f"dir_{mode}_y"])
    it = gen.flow_from_directory(
        tree,
        (5, 6),
        color_mode="grayscale",
        class_mode="sparse",
        batch_size=3,
        shuffle=False,
        seed=9,
    )
    it[0]  # batch 1 asked for second, as Keras' seeds count the batches asked for
    bx, by = it[1]
    np.testing.assert_allclose(bx, ref["dir_gray_x"], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(by, ref["dir_gray_y"])
    path = tree / "cats" / "img1.png"
    img = pimage.load_img(path, target_size=(4, 3), interpolation="bicubic")
    np.testing.assert_array_equal(pimage.img_to_array(img), ref["load"])
    first = pimage.img_to_array(pimage.load_img(path), "channels_first")
    np.testing.assert_array_equal(first, ref["load_first"])
    np.testing.assert_array_equal(np.asarray(pimage.array_to_img(X[0] - 100.0)), ref["to_img"])
    # a file Keras 3 wrote reads back as the same pixels here
    written = pimage.img_to_array(pimage.load_img(tree / "k3.png"))
    expected = np.asarray(pimage.array_to_img(X[2]), dtype="float32")
    np.testing.assert_array_equal(written, expected)


@needs_pil
def test_save_to_dir_writes_each_augmented_image(tmp_path):
    it = ImageDataGenerator(horizontal_flip=True).flow(
        X, Y, batch_size=4, seed=0, save_to_dir=tmp_path, save_prefix="aug", save_format="png"
    )
    it[0]
    written = sorted(os.listdir(tmp_path))
    assert len(written) == 4 and all(n.startswith("aug_") and n.endswith(".png") for n in written)
    assert pimage.load_img(tmp_path / written[0]).size == (9, 7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_takes_a_flow_of_images_alone(backend):
    from polykeras.layers import Flatten

    with keras.use_backend(backend):
        model = keras.Sequential([Flatten(input_shape=(7, 9, 3))])
        out = model.predict(ImageDataGenerator(rescale=2.0).flow(X, batch_size=4, shuffle=False))
    np.testing.assert_allclose(out, X.reshape(10, -1) * 2.0, rtol=1e-6)


def test_smart_resize_by_hand_and_equal_to_keras3(keras3):
    _, ref = keras3
    same = pimage.smart_resize(X[0], (7, 9))  # same size: nothing moves
    np.testing.assert_allclose(same, X[0])
    square = pimage.smart_resize(X[0], (7, 7))  # the centre 7x7 crop, kept as it is
    np.testing.assert_allclose(square, X[0][:, 1:8])
    np.testing.assert_allclose(pimage.smart_resize(X[:3], (4, 6)), ref["smart_down"], atol=1e-3)
    np.testing.assert_allclose(pimage.smart_resize(X[0], (11, 10)), ref["smart_up"], atol=1e-3)
    first = pimage.smart_resize(np.moveaxis(X[1], 2, 0), (5, 5), data_format="channels_first")
    np.testing.assert_allclose(first, ref["smart_first"], atol=1e-3)


# --------------------------------------------------------------------------- DataFrames

_KERAS3_DATAFRAME = r"""
import json, os, sys, warnings
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import pandas as pd
from keras.src.legacy.preprocessing.image import ImageDataGenerator

data = dict(np.load(sys.argv[1]))
columns = json.loads(str(data["columns"]))
out = {}
for name, gen_kw, flow_kw in json.loads(str(data["cases"])):
    gen = ImageDataGenerator(**gen_kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = gen.flow_from_dataframe(pd.DataFrame(columns), **flow_kw)
    out[name + "_files"] = np.array(json.dumps(it.filenames))
    out[name + "_ci"] = np.array(json.dumps(getattr(it, "class_indices", None)))
    for i in range(len(it)):
        batch = it[i]
        for j, part in enumerate(batch if isinstance(batch, tuple) else (batch,)):
            for k, arr in enumerate(part if isinstance(part, list) else [part]):
                out[f"{name}_b{i}_{j}_{k}"] = arr
np.savez(sys.argv[2], **out)
"""


def _dataframe_cases(tree):
    folder = str(tree)
    common = dict(directory=folder, target_size=(5, 6), batch_size=2, seed=4)
    augment = dict(rotation_range=20, horizontal_flip=True, rescale=1 / 255.0)
    return [
        ("categorical", augment, dict(common, weight_col="w")),
        ("binary", {}, dict(common, class_mode="binary", classes=["dog", "cat"], shuffle=False)),
        ("sparse", {}, dict(common, class_mode="sparse", color_mode="grayscale")),
        ("raw", {}, dict(common, class_mode="raw", y_col="score", shuffle=False)),
        ("multi", {}, dict(common, class_mode="multi_output", y_col=["score", "out2"])),
        ("none", augment, dict(common, class_mode=None)),
        ("input", {}, dict(common, class_mode="input", shuffle=False)),
        ("labels", {}, dict(common, y_col="labels", shuffle=False)),
        ("only_dogs", {}, dict(common, classes=["dog"], shuffle=False)),
        # absolute paths, no directory, nothing checked (the missing file must not be there)
        (
            "absolute",
            {},
            dict(common, directory=None, x_col="path", validate_filenames=False, shuffle=False),
        ),
        ("valid", {"validation_split": 0.4}, dict(common, subset="validation", shuffle=False)),
        ("train", {"validation_split": 0.4}, dict(common, subset="training", shuffle=False)),
    ]


def _dataframe_columns(tree, names):
    return {
        "filename": names + ["cats/missing.png", "cats/notes.txt"],
        "path": [str(tree / n) for n in names] + [str(tree / "dogs" / "img1.png")] * 2,
        "class": ["cat"] * 3 + ["dog"] * 2 + ["cat", "dog"],
        "labels": [["cat"], ["cat", "dog"], ["dog"], ["cat"], ["dog", "cat"], ["cat"], ["dog"]],
        "score": [0.5 * i for i in range(7)],
        "out2": list(range(10, 17)),
        "w": [1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5],
    }


@pytest.fixture(scope="module")
def keras3_dataframes(tmp_path_factory):
    if not (HAS_PIL and HAS_PANDAS):
        pytest.skip("Pillow and pandas are needed (the image and dataframe extras)")
    import json

    folder = tmp_path_factory.mktemp("keras3_dataframes")
    tree = folder / "tree"
    names = _write_folder(tree)
    columns = _dataframe_columns(tree, names)
    cases = _dataframe_cases(tree)
    inputs = {"columns": np.array(json.dumps(columns)), "cases": np.array(json.dumps(cases))}
    return columns, cases, run_keras3_script(folder, _KERAS3_DATAFRAME, inputs)


def test_flow_from_dataframe_equals_keras3_in_every_class_mode(keras3_dataframes, capsys):
    import json

    import pandas as pd

    columns, cases, ref = keras3_dataframes
    for name, gen_kw, flow_kw in json.loads(json.dumps(cases)):
        gen = ImageDataGenerator(**gen_kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            it = gen.flow_from_dataframe(pd.DataFrame(columns), **flow_kw)
        assert it.filenames == json.loads(str(ref[name + "_files"])), name
        assert getattr(it, "class_indices", None) == json.loads(str(ref[name + "_ci"])), name
        count = 0
        for i in range(len(it)):
            batch = it[i]
            for j, part in enumerate(batch if isinstance(batch, tuple) else (batch,)):
                for k, arr in enumerate(part if isinstance(part, list) else [part]):
                    expected = ref[f"{name}_b{i}_{j}_{k}"]
                    assert np.asarray(arr).dtype == expected.dtype, (name, i, j, k)
                    np.testing.assert_allclose(arr, expected, rtol=1e-4, atol=1e-5)
                    count += 1
        assert count == sum(key.startswith(name + "_b") for key in ref) and count, name
    out = capsys.readouterr().out
    assert "Found 5 validated image filenames belonging to 2 classes." in out
    assert "Found 7 non-validated image filenames belonging to 2 classes." in out
