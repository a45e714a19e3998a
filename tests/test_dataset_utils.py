"""keras.utils.image_dataset_from_directory / text_dataset_from_directory / split_dataset
(polykeras.utils_datasets): file order, class names, labels and the validation split
compared with real Keras 3's own indexing code (its pure-Python part runs without
TensorFlow), resizing compared with Keras 3's Resizing layer, and training on the result."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

import polykeras as keras
from polykeras import utils

from helpers import run_keras3_script

PIL = pytest.importorskip("PIL.Image")


def _png(path, value, size=(3, 4), mode="RGB"):
    """A flat image whose pixels all equal ``value`` (its id)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    PIL.new(mode, (size[1], size[0]), (value,) * len(mode) if mode != "L" else value).save(path)


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory):
    """Three classes, nested folders, an upper-case extension, a hidden folder and files
    that are not images; each image's pixel value is its id."""
    root = tmp_path_factory.mktemp("imgs")
    names = [
        "cats/c2.png",
        "cats/c1.png",
        "cats/deep/c0.png",
        "dogs/D1.PNG",
        "dogs/d0.png",
        "dogs/z/a.png",
        "birds/b0.png",
        "birds/b1.png",
        "birds/b2.png",
        "birds/b3.png",
        ".hidden/h.png",
    ]
    ids = {}
    for i, name in enumerate(names):
        _png(str(root / name), 10 + 10 * i)
        ids[10 + 10 * i] = str(root / name)
    (root / "cats" / "notes.txt").write_text("not an image")
    _png(str(root / "stray.png"), 5)  # at the top level: not in any class
    return root, ids


KERAS_INDEX_SCRIPT = """
import os, sys
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
from keras.src.utils import dataset_utils as d
args = np.load(sys.argv[1])
root = str(args["root"])
out = {}
for shuffle, seed in ((False, 0), (True, 7), (True, 1234)):
    for subset in (None, "training", "validation"):
        paths, labels, names = d.index_directory(
            root, "inferred", formats=(".bmp", ".gif", ".jpeg", ".jpg", ".png"),
            shuffle=shuffle, seed=seed, verbose=False)
        if subset:
            paths, labels = d.get_training_or_validation_split(paths, labels, 0.38, subset)
        key = f"{shuffle}_{seed}_{subset}"
        out["paths_" + key] = np.array(paths)
        out["labels_" + key] = np.asarray(labels)
        out["names_" + key] = np.array(names)
np.savez(sys.argv[2], **out)
"""


@pytest.fixture(scope="module")
def keras3_index(image_tree, tmp_path_factory):
    root, _ = image_tree
    return run_keras3_script(
        tmp_path_factory.mktemp("k3"), KERAS_INDEX_SCRIPT, {"root": np.array(str(root))}
    )


def _samples(ds):
    """All (image id, label) pairs of one pass, in order."""
    out = []
    for x, y in ds:
        x, y = np.asarray(x), np.asarray(y)
        for img, lab in zip(x, y):
            assert np.all(img == img.flat[0])
            out.append((int(round(float(img.flat[0]))), lab.tolist()))
    return out


@pytest.mark.parametrize("shuffle, seed", [(False, 0), (True, 7), (True, 1234)])
@pytest.mark.parametrize("subset", [None, "training", "validation"])
def test_files_labels_and_split_are_keras3s(image_tree, keras3_index, shuffle, seed, subset):
    root, ids = image_tree
    key = f"{shuffle}_{seed}_{subset}"
    ds = utils.image_dataset_from_directory(
        root,
        image_size=(3, 4),
        batch_size=4,
        shuffle=shuffle,
        seed=seed,
        validation_split=0.38 if subset else None,
        subset=subset,
        verbose=False,
    )
    assert ds.class_names == list(keras3_index["names_" + key]) == ["birds", "cats", "dogs"]
    assert ds.file_paths == list(keras3_index["paths_" + key])
    want = dict(zip(keras3_index["paths_" + key], keras3_index["labels_" + key].tolist()))
    for _epoch in range(2):
        got = _samples(ds)
        assert sorted(ids[i] for i, _ in got) == sorted(want)  # each file once per epoch
        assert all(want[ids[i]] == lab for i, lab in got)
        if not shuffle:
            assert [ids[i] for i, _ in got] == ds.file_paths


def test_both_gives_the_training_and_validation_subsets(image_tree, keras3_index):
    root, ids = image_tree
    train, val = utils.image_dataset_from_directory(
        root, image_size=(3, 4), seed=7, validation_split=0.38, subset="both", verbose=False
    )
    assert train.file_paths == list(keras3_index["paths_True_7_training"])
    assert val.file_paths == list(keras3_index["paths_True_7_validation"])
    # the validation subset of "both" is not reshuffled: it iterates in file_paths order
    for _epoch in range(2):
        assert [ids[i] for i, _ in _samples(val)] == val.file_paths
    assert len(val) == 1 and val[0][0].shape == (3, 3, 4, 3)


def test_label_modes_shapes_and_dtypes(image_tree):
    root, ids = image_tree
    common = dict(image_size=(3, 4), shuffle=False, batch_size=32, verbose=False)
    x, y = utils.image_dataset_from_directory(root, **common)[0]
    assert x.shape == (10, 3, 4, 3) and x.dtype == np.float32
    assert y.dtype == np.int32 and y.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    _, y = utils.image_dataset_from_directory(root, label_mode="categorical", **common)[0]
    assert y.dtype == np.float32 and y.shape == (10, 3)
    np.testing.assert_array_equal(y.argmax(1), [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    # label_mode=None means no labels: as Keras, the whole tree is indexed (class folders,
    # hidden folders and top-level files alike)
    only = utils.image_dataset_from_directory(root, label_mode=None, **common)
    assert isinstance(only[0], np.ndarray) and only[0].shape == (12, 3, 4, 3)
    assert only.class_names is None
    gray = utils.image_dataset_from_directory(root, color_mode="grayscale", **common)[0][0]
    assert gray.shape == (10, 3, 4, 1)
    first = utils.image_dataset_from_directory(root, data_format="channels_first", **common)
    assert first[0][0].shape == (10, 3, 3, 4)
    n = len(utils.image_dataset_from_directory(root, labels=None, **common).file_paths)
    assert n == 12


def test_binary_label_mode(tmp_path):
    for i, name in enumerate(["no/a.png", "no/b.png", "yes/c.png"]):
        _png(str(tmp_path / name), i)
    ds = utils.image_dataset_from_directory(
        tmp_path, label_mode="binary", image_size=(3, 4), shuffle=False, verbose=False
    )
    y = ds[0][1]
    assert y.dtype == np.float32 and y.tolist() == [[0.0], [0.0], [1.0]]
    with pytest.raises(ValueError, match="exactly 2 classes"):
        utils.image_dataset_from_directory(
            tmp_path, label_mode="binary", class_names=["yes"], verbose=False
        )
    ds = utils.image_dataset_from_directory(
        tmp_path, class_names=["yes", "no"], image_size=(3, 4), shuffle=False, verbose=False
    )
    assert ds.class_names == ["yes", "no"] and ds[0][1].tolist() == [0, 1, 1]


def test_explicit_labels(tmp_path):
    for i, name in enumerate(["x/b.png", "a.png", "x/a.png"]):
        _png(str(tmp_path / name), i)
    ds = utils.image_dataset_from_directory(
        tmp_path, labels=[5, 3, 5], image_size=(3, 4), shuffle=False, verbose=False
    )
    assert [os.path.relpath(p, tmp_path) for p in ds.file_paths] == ["a.png", "x/a.png", "x/b.png"]
    assert ds.class_names == ["3", "5"] and ds[0][1].tolist() == [5, 3, 5]
    with pytest.raises(ValueError, match=r"labels in \[0, 2\)"):
        utils.image_dataset_from_directory(
            tmp_path, labels=[5, 3, 5], label_mode="categorical", verbose=False
        )
    with pytest.raises(ValueError, match="3 files"):
        utils.image_dataset_from_directory(tmp_path, labels=[1, 2], verbose=False)


KERAS_RESIZE_SCRIPT = """
import os, sys
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
import keras
img = np.load(sys.argv[1])["img"].astype("float32")
out = {}
for crop in (False, True):
    layer = keras.layers.Resizing(5, 7, interpolation="bilinear", crop_to_aspect_ratio=crop)
    out[f"crop_{crop}"] = keras.ops.convert_to_numpy(layer(img[None]))[0]
np.savez(sys.argv[2], **out)
"""


def test_bilinear_resize_and_crop_match_keras3(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, size=(9, 4, 3), dtype=np.uint8)
    (tmp_path / "only").mkdir()
    PIL.fromarray(img).save(tmp_path / "only" / "i.png")
    (tmp_path / "k3").mkdir()
    want = run_keras3_script(tmp_path / "k3", KERAS_RESIZE_SCRIPT, {"img": img})
    for crop in (False, True):
        ds = utils.image_dataset_from_directory(
            tmp_path / "only",
            labels=None,
            image_size=(5, 7),
            crop_to_aspect_ratio=crop,
            shuffle=False,
            verbose=False,
        )
        np.testing.assert_allclose(ds[0][0], want[f"crop_{crop}"], rtol=1e-5, atol=1e-3)


def test_pad_to_aspect_ratio_resizes_then_pads_as_tensorflow(tmp_path):
    # a 4x8 image into 6x6: ratio max(8/6, 4/6) = 4/3, resized to 3x6 (4 / (4/3) = 3),
    # padded by floor((6 - 3) / 2) = 1 row on top and 2 below
    img = np.random.default_rng(1).integers(1, 256, size=(4, 8, 3), dtype=np.uint8)
    (tmp_path / "d").mkdir()
    PIL.fromarray(img).save(tmp_path / "d" / "p.png")
    ds = utils.image_dataset_from_directory(
        tmp_path / "d", labels=None, image_size=(6, 6), pad_to_aspect_ratio=True, verbose=False
    )
    out = ds[0][0]
    assert out.shape == (6, 6, 3)
    assert not out[0].any() and not out[4:].any() and out[1:4].all()
    # the middle is the plain bilinear resize to 3x6
    inner = utils.image_dataset_from_directory(
        tmp_path / "d", labels=None, image_size=(3, 6), verbose=False
    )[0][0]
    np.testing.assert_allclose(out[1:4], inner)


def test_nearest_resize_picks_half_pixel_centres(tmp_path):
    img = np.arange(4 * 6, dtype=np.uint8).reshape(4, 6) * 10
    (tmp_path / "d").mkdir()
    PIL.fromarray(img).save(tmp_path / "d" / "g.png")
    ds = utils.image_dataset_from_directory(
        tmp_path / "d",
        labels=None,
        color_mode="grayscale",
        image_size=(2, 3),
        interpolation="nearest",
        verbose=False,
    )
    # output pixel i takes source floor((i + 0.5) * scale): rows 1, 3; columns 1, 3, 5
    np.testing.assert_array_equal(ds[0][0][..., 0], img[[1, 3]][:, [1, 3, 5]])


def test_dataset_methods_and_refusals(image_tree):
    root, _ = image_tree
    ds = utils.image_dataset_from_directory(root, image_size=(3, 4), batch_size=3, seed=1)
    assert len(ds) == 4 and len(ds.take(2)) == 2 and len(ds.take(-1)) == 4
    assert len(list(ds.take(2))) == 2 and len(ds) == 4
    assert ds.prefetch(2) is ds and ds.cache() is ds
    for name in ("map", "shuffle", "unbatch", "repeat"):
        with pytest.raises(AttributeError, match=r"tf\.data"):
            getattr(ds, name)
    with pytest.raises(ValueError, match="cache"):
        ds.cache("somewhere")
    single = utils.image_dataset_from_directory(root, image_size=(3, 4), batch_size=None, seed=1)
    x, y = single[0]
    assert x.shape == (3, 4, 3) and np.ndim(y) == 0 and len(single) == 10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(validation_split=0.2, subset="training"), "pass a seed"),
        (dict(validation_split=0.2), "subset and validation_split"),
        (dict(validation_split=1.5, subset="training", seed=1), "between 0 and 1"),
        (dict(subset="test", validation_split=0.2, seed=1), "subset must be"),
        (dict(label_mode="sparse"), "label_mode must be"),
        (dict(color_mode="cmyk"), "color_mode"),
        (dict(image_size=(3,)), "image_size"),
        (dict(interpolation="bicubic"), "not implemented"),
        (dict(interpolation="cubic"), "interpolation must be"),
        (dict(pad_to_aspect_ratio=True, crop_to_aspect_ratio=True), "only one of"),
        (dict(format="grain"), "format"),
        (dict(labels="folders"), "labels must be"),
        (dict(labels=None, class_names=["a"]), "class_names"),
        (dict(class_names=["cats", "fish"]), "do not match"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_bad_arguments_are_refused(image_tree, kwargs, match):
    root, _ = image_tree
    with pytest.raises(ValueError, match=match):
        utils.image_dataset_from_directory(root, verbose=False, **kwargs)


def test_missing_or_empty_directory(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        utils.image_dataset_from_directory(tmp_path / "nope")
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        utils.image_dataset_from_directory(tmp_path, verbose=False)


def test_verbose_messages(image_tree, capsys):
    root, _ = image_tree
    utils.image_dataset_from_directory(root, seed=3, validation_split=0.3, subset="training")
    assert capsys.readouterr().out.splitlines() == [
        "Found 10 files belonging to 3 classes.",
        "Using 7 files for training.",
    ]


def test_fit_and_predict_on_an_image_dataset(image_tree):
    root, _ = image_tree
    train, val = utils.image_dataset_from_directory(
        root,
        image_size=(6, 6),
        batch_size=4,
        seed=2,
        validation_split=0.2,
        subset="both",
        verbose=False,
    )
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Input((6, 6, 3)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.Conv2D(2, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(len(train.class_names), activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2 and np.isfinite(hist.history["val_loss"]).all()
    assert np.asarray(keras.ops.convert_to_numpy(model.predict(val, verbose=0))).shape == (2, 3)
    assert len(model.evaluate(val, verbose=0)) == 2


# -- text -----------------------------------------------------------------------------------------
def test_text_dataset(tmp_path):
    texts = {"neg/1.txt": "bad film", "neg/2.txt": "awful ünïcode", "pos/a.txt": "great"}
    for name, text in texts.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "pos" / "skip.md").write_text("not text")
    ds = utils.text_dataset_from_directory(tmp_path, shuffle=False, verbose=False)
    x, y = ds[0]
    assert ds.class_names == ["neg", "pos"]
    assert x.dtype == object and list(x) == ["bad film", "awful ünïcode", "great"]
    assert y.tolist() == [0, 0, 1]
    short = utils.text_dataset_from_directory(tmp_path, max_length=4, shuffle=False, verbose=False)
    assert list(short[0][0]) == ["bad ", "awfu", "grea"]
    shuffled = utils.text_dataset_from_directory(tmp_path, seed=5, verbose=False)
    order = np.random.RandomState(5).permutation(3)  # Keras: RandomState(seed).shuffle
    assert shuffled.file_paths == [ds.file_paths[i] for i in order]
    with pytest.raises(ValueError, match="format"):
        utils.text_dataset_from_directory(tmp_path, format="grain")


# -- split_dataset --------------------------------------------------------------------------------
KERAS_SIZES_SCRIPT = """
import os, sys
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
from keras.src.utils.dataset_utils import _rescale_dataset_split_sizes as r
cases = [(0.8, None), (None, 0.25), (3, None), (None, 4), (0.5, 0.3), (2, 0.3), (0.33, 0.33)]
np.savez(sys.argv[2], sizes=np.array([r(a, b, 10) for a, b in cases]))
"""
SIZE_CASES = [(0.8, None), (None, 0.25), (3, None), (None, 4), (0.5, 0.3), (2, 0.3), (0.33, 0.33)]


def test_split_sizes_match_keras3(tmp_path):
    want = run_keras3_script(tmp_path, KERAS_SIZES_SCRIPT, {})["sizes"]
    data = np.arange(10)
    for (left, right), (nl, nr) in zip(SIZE_CASES, want):
        a, b = utils.split_dataset(data, left_size=left, right_size=right)
        assert (len(a), len(b)) == (nl, nr)
        np.testing.assert_array_equal(a, data[:nl])
        np.testing.assert_array_equal(b, data[10 - nr :])


def test_split_shuffles_as_keras():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    (xl, yl), (xr, yr) = utils.split_dataset((x, y), left_size=0.7, shuffle=True, seed=3)
    order = list(range(10))
    random.seed(3)
    random.shuffle(order)  # Keras: random.seed(seed); random.shuffle(samples)
    np.testing.assert_array_equal(yl, order[:7])
    np.testing.assert_array_equal(yr, order[7:])
    np.testing.assert_array_equal(xl, x[order[:7]])
    left, right = utils.split_dataset([x, y], right_size=2)
    assert isinstance(left, list) and len(left[0]) == 8 and len(right[1]) == 2
    a, b = utils.split_dataset([1, 2, 3, 4], left_size=1)
    assert a.tolist() == [1] and b.tolist() == [2, 3, 4]


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(), ValueError, "at least one"),
        (dict(left_size=0, right_size=0), ValueError, "both zero"),
        (dict(left_size=10), ValueError, "left_size must be"),
        (dict(right_size=1.0), ValueError, "right_size must be"),
        (dict(left_size=0.7, right_size=0.5), ValueError, "greater than 1"),
        (dict(left_size=6, right_size=5), ValueError, "greater than the number"),
        (dict(left_size="half"), TypeError, "left_size"),
        (dict(left_size=0.01), ValueError, "empty"),
    ],
)
def test_split_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        utils.split_dataset(np.arange(10), **kwargs)
    with pytest.raises(ValueError, match="same number of samples"):
        utils.split_dataset((np.arange(3), np.arange(4)), left_size=1)
    with pytest.raises(TypeError, match="dataset must be"):
        utils.split_dataset({"a": np.arange(3)}, left_size=1)
