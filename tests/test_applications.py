"""keras.applications: VGG16/VGG19 and ResNet50/101/152 against real Keras 3 (torch).

Keras 3 builds each network with weights=None, its weights are set to random values (the
BatchNormalization statistics included, so that a mis-loaded one shows), saved as a Keras 3
``.weights.h5`` and as a legacy whole-model ``.h5``; ours loads them with ``weights=path``
and must predict what Keras predicted on the same images.  ``preprocess_input`` is compared
on the same arrays.  The ``"imagenet"`` download is served by a monkeypatched ``get_file``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_keras3_script

import polykeras as keras
from polykeras import utils_data
from polykeras.applications import imagenet_utils, resnet50, vgg16

RNG = np.random.default_rng(7)
IMAGES_64 = RNG.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
IMAGES_32 = RNG.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
IMAGES_CF = RNG.uniform(0, 255, (2, 3, 40, 40)).astype("float32")
PIXELS_3D = RNG.uniform(0, 255, (5, 6, 3)).astype("float32")
PIXELS_CF_3D = RNG.uniform(0, 255, (3, 5, 6)).astype("float32")

KERAS3_SCRIPT = r"""
import os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import keras
from keras import applications

inp = dict(np.load(sys.argv[1]))
folder = os.path.dirname(sys.argv[1])
out = {}
rng = np.random.default_rng(0)

def randomise(model):
    for layer in model.layers:
        for v in layer.weights:
            shape = tuple(v.shape)
            path = v.path
            if path.endswith("gamma") or path.endswith("moving_variance"):
                value = rng.uniform(0.5, 1.5, shape)
            elif path.endswith("beta") or path.endswith("moving_mean") or path.endswith("bias"):
                value = rng.normal(0.0, 0.1, shape)
            else:  # a kernel: He-scaled so activations stay of order one
                fan_in = int(np.prod(shape[:-1]))
                value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
            v.assign(value.astype("float32"))

def reference(key, model, images, legacy=False):
    randomise(model)
    model.save_weights(os.path.join(folder, key + ".weights.h5"))
    if legacy:
        model.save(os.path.join(folder, key + ".h5"))
    out[key] = keras.ops.convert_to_numpy(model(images, training=False))
    out[key + "_layers"] = np.array(len(model.layers))
    out[key + "_params"] = np.array(model.count_params())

reference("resnet50_notop", applications.ResNet50(weights=None, include_top=False,
          input_shape=(64, 64, 3), pooling="avg"), inp["images_64"], legacy=True)
reference("vgg16_top", applications.VGG16(weights=None, include_top=True,
          input_shape=(32, 32, 3), classes=10), inp["images_32"], legacy=True)
reference("vgg19_notop", applications.VGG19(weights=None, include_top=False,
          input_shape=(32, 32, 3), pooling="max"), inp["images_32"])
keras.config.set_image_data_format("channels_first")
reference("resnet50_cf", applications.ResNet50(weights=None, include_top=True,
          input_shape=(3, 40, 40), classes=7, classifier_activation=None), inp["images_cf"])
keras.config.set_image_data_format("channels_last")

pre = applications.resnet50.preprocess_input
out["pre_last"] = pre(inp["images_64"].copy())
out["pre_3d"] = pre(inp["pixels_3d"].copy())
out["pre_first"] = pre(inp["images_cf"].copy(), data_format="channels_first")
out["pre_first_3d"] = pre(inp["pixels_cf_3d"].copy(), data_format="channels_first")
out["pre_uint8"] = pre(inp["images_64"].astype("uint8"))
out["pre_tensor"] = keras.ops.convert_to_numpy(pre(keras.ops.convert_to_tensor(inp["images_64"])))
imu = applications.imagenet_utils.preprocess_input
out["pre_tf"] = imu(inp["images_64"].copy(), mode="tf")
out["pre_torch"] = imu(inp["images_64"].copy(), mode="torch")
out["pre_torch_tensor"] = keras.ops.convert_to_numpy(
    imu(keras.ops.convert_to_tensor(inp["images_64"]), mode="torch"))
np.savez(sys.argv[2], **out)
"""


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    folder = tmp_path_factory.mktemp("applications")
    outputs = run_keras3_script(
        folder,
        KERAS3_SCRIPT,
        {
            "images_64": IMAGES_64,
            "images_32": IMAGES_32,
            "images_cf": IMAGES_CF,
            "pixels_3d": PIXELS_3D,
            "pixels_cf_3d": PIXELS_CF_3D,
        },
    )
    return folder, outputs


def _close(got, want):
    got = np.asarray(keras.ops.convert_to_numpy(got))
    scale = float(np.max(np.abs(want))) or 1.0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_resnet50_loads_keras3_weights_and_predicts_the_same(ref, suffix):
    folder, want = ref
    path = folder / f"resnet50_notop{suffix}"
    model = keras.applications.ResNet50(
        weights=str(path), include_top=False, input_shape=(64, 64, 3), pooling="avg"
    )
    assert model.name == "resnet50"
    assert len(model.layers) == int(want["resnet50_notop_layers"])
    assert model.count_params() == int(want["resnet50_notop_params"])
    _close(model.predict(IMAGES_64, verbose=0), want["resnet50_notop"])


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_vgg16_with_top_loads_keras3_weights(ref, suffix):
    folder, want = ref
    model = keras.applications.VGG16(
        weights=folder / f"vgg16_top{suffix}", input_shape=(32, 32, 3), classes=10
    )
    assert model.name == "vgg16"
    assert len(model.layers) == int(want["vgg16_top_layers"])
    assert model.count_params() == int(want["vgg16_top_params"])
    _close(model.predict(IMAGES_32, verbose=0), want["vgg16_top"])


def test_vgg19_max_pooling_matches(ref):
    folder, want = ref
    model = keras.applications.VGG19(
        weights=str(folder / "vgg19_notop.weights.h5"),
        include_top=False,
        input_shape=(32, 32, 3),
        pooling="max",
    )
    assert model.count_params() == int(want["vgg19_notop_params"])
    _close(model.predict(IMAGES_32, verbose=0), want["vgg19_notop"])


def test_resnet50_with_top_channels_first_matches(ref, channels_first):
    folder, want = ref
    model = keras.applications.ResNet50(
        weights=str(folder / "resnet50_cf.weights.h5"),
        input_shape=(3, 40, 40),
        classes=7,
        classifier_activation=None,
    )
    assert model.output_shape == (None, 7)
    _close(model.predict(IMAGES_CF, verbose=0), want["resnet50_cf"])


def test_preprocess_input_matches_keras3(ref):
    _, want = ref
    pre = resnet50.preprocess_input
    _close(pre(IMAGES_64.copy()), want["pre_last"])
    _close(pre(PIXELS_3D.copy()), want["pre_3d"])
    _close(pre(IMAGES_CF.copy(), data_format="channels_first"), want["pre_first"])
    _close(pre(PIXELS_CF_3D.copy(), data_format="channels_first"), want["pre_first_3d"])
    _close(pre(IMAGES_64.astype("uint8")), want["pre_uint8"])
    _close(vgg16.preprocess_input(IMAGES_64.copy()), want["pre_last"])
    # a backend array (on the numpy backend: an ndarray, worked on in place as in Keras)
    _close(pre(keras.ops.convert_to_tensor(IMAGES_64.copy())), want["pre_tensor"])
    _close(imagenet_utils.preprocess_input(IMAGES_64.copy(), mode="tf"), want["pre_tf"])
    _close(imagenet_utils.preprocess_input(IMAGES_64.copy(), mode="torch"), want["pre_torch"])
    tensor = keras.ops.convert_to_tensor(IMAGES_64.copy())
    _close(imagenet_utils.preprocess_input(tensor, mode="torch"), want["pre_torch_tensor"])


def test_preprocess_input_caffe_by_hand():
    x = np.array([[[[10.0, 20.0, 30.0]]]], dtype="float32")
    got = resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(got[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)
    np.testing.assert_allclose(resnet50.preprocess_input([[[10, 20, 30]]]), got[0], rtol=1e-6)
    # in a model: a symbolic tensor goes through ops
    inp = keras.Input((1, 1, 3))
    model = keras.Model(inp, resnet50.preprocess_input(inp))
    np.testing.assert_allclose(model.predict(x, verbose=0), got, rtol=1e-6)


def test_preprocess_input_refuses_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        imagenet_utils.preprocess_input(IMAGES_32.copy(), mode="bogus")
    with pytest.raises(ValueError, match="data_format"):
        resnet50.preprocess_input(IMAGES_32.copy(), data_format="nhwc")
    with pytest.raises(ValueError, match="3 colour channels"):
        resnet50.preprocess_input(np.zeros((2, 8, 8, 4), "float32"))


def _fake_get_file(served: dict, calls: list):
    def get_file(fname, origin, cache_subdir="datasets", file_hash=None, **kwargs):
        calls.append((fname, origin, cache_subdir, file_hash))
        return str(served[fname])

    return get_file


def test_imagenet_weights_download_through_get_file(ref, monkeypatch):
    folder, want = ref
    fname = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    calls: list = []
    served = {fname: folder / "resnet50_notop.h5"}
    monkeypatch.setattr(utils_data, "get_file", _fake_get_file(served, calls))
    model = keras.applications.ResNet50(
        include_top=False, input_shape=(64, 64, 3), pooling="avg"
    )  # weights="imagenet" is the default
    assert calls == [
        (
            fname,
            "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + fname,
            "models",
            "4d473c1dd8becc155b73f8504c6f6626",
        )
    ]
    _close(model.predict(IMAGES_64, verbose=0), want["resnet50_notop"])


def test_imagenet_weights_urls_and_hashes(monkeypatch):
    calls: list = []

    class Stop(Exception):
        pass

    def get_file(fname, origin, cache_subdir="datasets", file_hash=None, **kwargs):
        calls.append((fname, origin, file_hash))
        raise Stop

    monkeypatch.setattr(utils_data, "get_file", get_file)
    with pytest.raises(Stop):
        keras.applications.VGG16(include_top=False, input_shape=(32, 32, 3))
    with pytest.raises(Stop):
        keras.applications.ResNet50(include_top=True)
    base = "https://storage.googleapis.com/tensorflow/keras-applications/"
    assert calls == [
        (
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            base + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "6d6bbae143d832006294945121d1f1fc",
        ),
        (
            "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
            base + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
            "2cb95161c43110f7111970584f804107",
        ),
    ]


def test_decode_predictions_reads_the_class_index(tmp_path, monkeypatch):
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    path = tmp_path / "imagenet_class_index.json"
    path.write_text(json.dumps(index))
    calls: list = []
    monkeypatch.setattr(
        utils_data, "get_file", _fake_get_file({"imagenet_class_index.json": path}, calls)
    )
    preds = np.zeros((2, 1000), "float32")
    preds[0, [5, 17, 999]] = [0.2, 0.5, 0.3]
    preds[1, [0, 1]] = [0.9, 0.1]
    decoded = resnet50.decode_predictions(preds, top=3)
    assert [t[:2] for t in decoded[0]] == [
        ("n00000017", "class_17"),
        ("n00000999", "class_999"),
        ("n00000005", "class_5"),
    ]
    assert decoded[0][0][2] == pytest.approx(0.5)
    assert [t[1] for t in decoded[1][:2]] == ["class_0", "class_1"]
    assert len(vgg16.decode_predictions(keras.ops.convert_to_tensor(preds))[0]) == 5
    assert calls[0][1] == (
        "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
    )
    assert calls[0][2:] == ("models", "c2c37ea517e94d9795004a39431a14cb")
    with pytest.raises(ValueError, match=r"shape: \(2, 10\)"):
        resnet50.decode_predictions(np.zeros((2, 10)))


def test_argument_checks_match_keras():
    with pytest.raises(ValueError, match="The `weights` argument should be either"):
        keras.applications.ResNet50(weights="/no/such/file.h5")
    with pytest.raises(ValueError, match="`classes` should be 1000"):
        keras.applications.VGG16(classes=10)
    with pytest.raises(ValueError, match=r"`input_shape` should be \(224, 224, 3\)"):
        keras.applications.ResNet50(input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="at least 32x32"):
        keras.applications.ResNet50(weights=None, include_top=False, input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="static `input_shape`"):
        keras.applications.VGG16(weights=None, input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="Only `None` and `softmax`"):
        # any existing file passes the weights check; the activation is refused first
        keras.applications.VGG16(
            weights=__file__, input_shape=(32, 32, 3), classifier_activation="relu"
        )
    with pytest.raises(ValueError, match="pooling"):
        keras.applications.VGG16(weights=None, include_top=False, pooling="mean")


def test_input_tensor_and_default_shapes():
    inp = keras.Input((48, 48, 3))
    x = keras.layers.Rescaling(1.0)(inp)
    model = keras.applications.ResNet50(weights=None, include_top=False, input_tensor=x)
    assert model.inputs[0] is inp
    assert model.output_shape == (None, 2, 2, 2048)
    free = keras.applications.VGG16(weights=None, include_top=False)
    assert free.input_shape == (None, None, None, 3)
    assert free.output_shape == (None, None, None, 512)
    with pytest.raises(ValueError, match="symbolic tensor"):
        keras.applications.VGG16(weights=None, include_top=False, input_tensor=IMAGES_32)


def test_deeper_resnets_build_with_keras_layer_counts():
    assert len(keras.applications.ResNet101(weights=None, include_top=False).layers) == 345
    assert len(keras.applications.ResNet152(weights=None, include_top=False).layers) == 515
