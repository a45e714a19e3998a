"""Conv2DTranspose and Conv1DTranspose (and the masks of the global 1-D poolings): output
sizes, gradients, configs and files, and the numbers of real Keras 3 on the same weights.

``keras_reference`` is shared with tests/test_layers_reshaping.py: each case is a model
Input -> Dense(last axis) -> the layer, so that one SGD step on a mean squared error checks
the gradient that flows back through the layer as well as the layer's own weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, ops
from polykeras import backend as K
from polykeras import layers as L
from polykeras.layers.convolutional import transpose_length
from polykeras.models import Model, load_model, model_from_json

from helpers import backend_params, keras3_available, run_keras3_script

BACKENDS = backend_params()


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


# -- the Keras 3 reference, shared with test_layers_reshaping.py --------------------------------
KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    data = dict(np.load(sys.argv[1]))
    cases = json.loads(open(sys.argv[2]).read())
    folder = os.path.dirname(sys.argv[3])
    out = {}
    for name, case in cases.items():
        x, t = data[name + "/x"], data[name + "/t"]
        inp = keras.Input(tuple(case["shape"][1:]))
        h = keras.layers.Dense(case["shape"][-1])(inp)
        y = getattr(keras.layers, case["layer"])(**case["kwargs"])(h)
        model = keras.Model(inp, y)
        n = len(model.get_weights())
        model.set_weights([data[f"{name}/w{i}"] for i in range(n)])
        out[name + "/y"] = model.predict(x, verbose=0)
        model.save(os.path.join(folder, name + ".keras"))
        model.compile(keras.optimizers.SGD(learning_rate=0.1), "mse")
        model.train_on_batch(x, t)
        for i, w in enumerate(model.get_weights()):
            out[f"{name}/after{i}"] = w
    np.savez(sys.argv[3], **out)
""")


def build_case(layer_name, kwargs, shape):
    """The polykeras model of one case: Input -> Dense(last axis) -> the layer."""
    inp = polykeras.Input(shape=tuple(shape[1:]))
    h = L.Dense(shape[-1])(inp)
    y = getattr(L, layer_name)(**kwargs)(h)
    return Model(inp, y)


def keras_reference(folder, cases, seed=0):
    """Inputs, targets and weights for every case, and what Keras 3 makes of them:
    ``(inputs, results, folder)`` (``folder`` holds each case's Keras-written .keras file)."""
    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed: no reference to compare with")
    rng = np.random.default_rng(seed)
    arrays, inputs = {}, {}
    with polykeras.use_backend("numpy"):
        for name, (layer_name, kwargs, shape) in cases.items():
            model = build_case(layer_name, kwargs, shape)
            x = rng.normal(size=shape).astype("float32")
            t = rng.normal(size=(shape[0],) + model.output_shape[1:]).astype("float32")
            weights = [
                rng.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()
            ]
            arrays[name + "/x"], arrays[name + "/t"] = x, t
            for i, w in enumerate(weights):
                arrays[f"{name}/w{i}"] = w
            inputs[name] = (x, t, weights)
    np.savez(folder / "in.npz", **arrays)
    spec = {k: {"layer": v[0], "kwargs": v[1], "shape": list(v[2])} for k, v in cases.items()}
    (folder / "cases.json").write_text(json.dumps(spec))
    (folder / "run.py").write_text(KERAS_SCRIPT)
    proc = subprocess.run(
        [
            sys.executable,
            str(folder / "run.py"),
            str(folder / "in.npz"),
            str(folder / "cases.json"),
            str(folder / "out.npz"),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, KERAS_BACKEND="torch"),
        timeout=600,
    )
    if proc.returncode != 0:
        if "No module named" in proc.stderr:
            pytest.skip(f"keras cannot be imported here: {proc.stderr.strip().splitlines()[-1]}")
        raise AssertionError(f"the Keras script failed:\n{proc.stderr[-4000:]}")
    return inputs, dict(np.load(folder / "out.npz")), folder


def check_against_keras(reference, cases, name):
    """Forward output and the weights after one SGD step equal Keras 3's (active backend);
    the .keras file Keras wrote loads and predicts the same."""
    inputs, results, folder = reference
    layer_name, kwargs, shape = cases[name]
    x, t, weights = inputs[name]
    model = build_case(layer_name, kwargs, shape)
    model.set_weights(weights)
    y = model.predict(x, verbose=0)
    np.testing.assert_allclose(y, results[name + "/y"], rtol=1e-4, atol=1e-5)
    model.compile(polykeras.optimizers.SGD(learning_rate=0.1), "mse")
    model.train_on_batch(x, t)
    after = model.get_weights()
    assert len(after) == len(weights)
    for i, w in enumerate(after):
        np.testing.assert_allclose(w, results[f"{name}/after{i}"], rtol=1e-4, atol=1e-5)
    loaded = load_model(str(folder / f"{name}.keras"), compile=False)
    assert type(loaded.layers[-1]).__name__ == layer_name
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), results[name + "/y"], rtol=1e-4, atol=1e-5
    )


def check_round_trips(tmp_path, layer_name, kwargs, shape):
    """get_config/from_config, model JSON, HDF5 and .keras give the same layer and numbers."""
    model = build_case(layer_name, kwargs, shape)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    x = rng.normal(size=shape).astype("float32")
    y = model.predict(x, verbose=0)
    layer = model.layers[-1]
    again = type(layer).from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    json.dumps(layer.get_config())
    clone = model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), y, rtol=1e-6, atol=1e-6)
    for suffix in ("h5", "keras"):
        path = str(tmp_path / f"m.{suffix}")
        model.save(path)
        loaded = load_model(path)
        assert loaded.layers[-1].get_config() == layer.get_config()
        np.testing.assert_allclose(loaded.predict(x, verbose=0), y, rtol=1e-6, atol=1e-6)


# -- Conv2DTranspose / Conv1DTranspose, groups, depthwise and separable convolutions -----------
CF = {"data_format": "channels_first"}
CASES = {
    "t2_valid": ("Conv2DTranspose", {"filters": 3, "kernel_size": 3}, (2, 5, 4, 2)),
    "t2_same_s2": (
        "Conv2DTranspose",
        {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"},
        (2, 5, 4, 2),
    ),
    "t2_same_even_s2": (
        "Conv2DTranspose",
        {"filters": 2, "kernel_size": (4, 2), "strides": (2, 3), "padding": "same"},
        (2, 3, 4, 3),
    ),
    "t2_valid_s3_k2": (
        "Conv2DTranspose",
        {"filters": 2, "kernel_size": 2, "strides": 3, "activation": "tanh"},
        (2, 3, 3, 2),
    ),
    "t2_output_padding": (
        "Conv2DTranspose",
        {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1, "use_bias": False},
        (2, 4, 3, 2),
    ),
    "t2_same_output_padding": (
        "Conv2DTranspose",
        {"filters": 2, "kernel_size": 3, "strides": 3, "padding": "same", "output_padding": 2},
        (2, 3, 4, 2),
    ),
    "t2_dilation": (
        "Conv2DTranspose",
        {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
        (2, 6, 5, 2),
    ),
    "t2_channels_first": (
        "Conv2DTranspose",
        {
            "filters": 3,
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "data_format": "channels_first",
        },
        (2, 2, 4, 5),
    ),
    "t1_valid": ("Conv1DTranspose", {"filters": 3, "kernel_size": 3, "strides": 2}, (2, 6, 2)),
    "t1_same": (
        "Conv1DTranspose",
        {"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same"},
        (2, 5, 3),
    ),
    "t1_output_padding_cf": (
        "Conv1DTranspose",
        {
            "filters": 2,
            "kernel_size": 3,
            "strides": 3,
            "output_padding": 1,
            "data_format": "channels_first",
        },
        (2, 3, 5),
    ),
    "t1_dilation": (
        "Conv1DTranspose",
        {"filters": 2, "kernel_size": 2, "dilation_rate": 3},
        (2, 5, 2),
    ),
    "conv2d_groups": (
        "Conv2D",
        {"filters": 6, "kernel_size": 3, "groups": 2, "padding": "same", "strides": 2},
        (2, 5, 6, 4),
    ),
    "conv2d_groups_cf_dilated": (
        "Conv2D",
        {"filters": 3, "kernel_size": 2, "groups": 3, "dilation_rate": 2, **CF},
        (2, 3, 5, 6),
    ),
    "conv1d_groups_causal": (
        "Conv1D",
        {"filters": 4, "kernel_size": 3, "groups": 2, "padding": "causal"},
        (2, 6, 2),
    ),
    "depthwise": ("DepthwiseConv2D", {"kernel_size": 3, "depth_multiplier": 2}, (2, 5, 6, 3)),
    "depthwise_same_s2_cf": (
        "DepthwiseConv2D",
        {"kernel_size": (3, 2), "strides": 2, "padding": "same", **CF},
        (2, 3, 5, 6),
    ),
    "depthwise_dilated_nobias": (
        "DepthwiseConv2D",
        {"kernel_size": 2, "dilation_rate": 2, "use_bias": False, "activation": "relu"},
        (2, 5, 5, 2),
    ),
    "separable2d": (
        "SeparableConv2D",
        {"filters": 4, "kernel_size": 3, "depth_multiplier": 2, "padding": "same"},
        (2, 5, 6, 3),
    ),
    "separable2d_s2_cf": (
        "SeparableConv2D",
        {"filters": 3, "kernel_size": 3, "strides": 2, **CF},
        (2, 2, 7, 6),
    ),
    "separable1d": (
        "SeparableConv1D",
        {"filters": 3, "kernel_size": 3, "depth_multiplier": 2, "strides": 2},
        (2, 7, 2),
    ),
    "separable1d_cf_same": (
        "SeparableConv1D",
        {"filters": 2, "kernel_size": 2, "padding": "same", **CF},
        (2, 3, 6),
    ),
    "conv3d": ("Conv3D", {"filters": 3, "kernel_size": (2, 3, 2)}, (2, 4, 5, 4, 2)),
    "conv3d_same_s2_cf": (
        "Conv3D",
        {"filters": 2, "kernel_size": 3, "strides": (2, 1, 2), "padding": "same", **CF},
        (2, 2, 5, 4, 5),
    ),
    "conv3d_dilated_groups": (
        "Conv3D",
        {"filters": 4, "kernel_size": 2, "dilation_rate": (2, 1, 2), "groups": 2},
        (2, 5, 4, 5, 4),
    ),
    "t3_valid_s2": (
        "Conv3DTranspose",
        {"filters": 2, "kernel_size": (3, 2, 3), "strides": (2, 1, 2)},
        (2, 3, 2, 3, 2),
    ),
    "t3_same_cf_output_padding": (
        "Conv3DTranspose",
        {
            "filters": 2,
            "kernel_size": 3,
            "strides": 2,
            "padding": "same",
            "output_padding": 1,
            **CF,
        },
        (2, 2, 2, 3, 2),
    ),
    "maxpool3d": ("MaxPooling3D", {"pool_size": (2, 2, 3)}, (2, 4, 5, 6, 2)),
    "maxpool3d_same_cf": (
        "MaxPooling3D",
        {"pool_size": 3, "strides": (2, 1, 2), "padding": "same", **CF},
        (2, 2, 5, 4, 5),
    ),
    "avgpool3d_same": (
        "AveragePooling3D",
        {"pool_size": (3, 2, 3), "strides": 2, "padding": "same"},
        (2, 5, 4, 5, 2),
    ),
    "avgpool3d_cf": ("AveragePooling3D", {"pool_size": 2, **CF}, (2, 2, 4, 4, 5)),
    "gap3d": ("GlobalAveragePooling3D", {}, (2, 3, 4, 2, 3)),
    "gmp3d_cf_keepdims": (
        "GlobalMaxPooling3D",
        {"keepdims": True, **CF},
        (2, 3, 4, 2, 3),
    ),
    "gap1_keepdims": ("GlobalAveragePooling1D", {"keepdims": True}, (2, 5, 3)),
    "gmp2_keepdims_cf": (
        "GlobalMaxPooling2D",
        {"keepdims": True, "data_format": "channels_first"},
        (2, 3, 4, 5),
    ),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return keras_reference(tmp_path_factory.mktemp("keras_conv"), CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_keras3(backend, reference, name):
    check_against_keras(reference, CASES, name)


@pytest.mark.parametrize(
    "name",
    [
        "t2_same_s2",
        "t2_output_padding",
        "t1_output_padding_cf",
        "conv2d_groups",
        "depthwise_same_s2_cf",
        "separable2d",
        "separable1d_cf_same",
        "conv3d_same_s2_cf",
        "t3_same_cf_output_padding",
        "maxpool3d_same_cf",
        "gmp3d_cf_keepdims",
    ],
)
def test_round_trips(tmp_path, name):
    check_round_trips(tmp_path, *CASES[name])


def test_weight_layout_and_names():
    layer = L.Conv2DTranspose(5, (3, 2), name="up")
    layer(polykeras.Input((4, 4, 7)))
    assert [w.name.split("/")[-1].split(":")[0] for w in layer.weights] == ["kernel", "bias"]
    assert layer.kernel.shape == (3, 2, 5, 7)
    layer = L.Conv1DTranspose(5, 3)
    layer(polykeras.Input((4, 7)))
    assert layer.kernel.shape == (3, 5, 7)


@pytest.mark.parametrize(
    "kwargs, size, expected",
    [
        ({"padding": "valid", "strides": 1}, 5, 7),
        ({"padding": "valid", "strides": 2}, 5, 11),
        ({"padding": "valid", "strides": 4}, 5, 20),  # max(kernel, stride)
        ({"padding": "same", "strides": 2}, 5, 10),
        ({"padding": "same", "strides": 3, "output_padding": 0}, 5, 13),
        ({"padding": "valid", "strides": 2, "output_padding": 1}, 5, 12),
        ({"padding": "valid", "dilation_rate": 2}, 5, 9),
    ],
)
def test_output_lengths(backend, kwargs, size, expected):
    layer = L.Conv2DTranspose(2, 3, **kwargs)
    out = layer(polykeras.Input((size, size, 1)))
    assert out.shape == (None, expected, expected, 2)
    y = layer(np.ones((1, size, size, 1), "float32"))
    assert ops.shape(y) == (1, expected, expected, 2)
    op = kwargs.get("output_padding")
    assert (
        transpose_length(
            size, 3, kwargs.get("strides", 1), kwargs["padding"], op, kwargs.get("dilation_rate", 1)
        )
        == expected
    )


def _transpose_reference(x, kernel, stride):
    """A NumPy loop: every input pixel adds kernel * value into the output (valid, NHWC)."""
    n, h, w, c = x.shape
    kh, kw, f, _ = kernel.shape
    out = np.zeros((n, (h - 1) * stride + kh, (w - 1) * stride + kw, f))
    for i in range(h):
        for j in range(w):
            out[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :] += np.einsum(
                "nc,abfc->nabf", x[:, i, j, :], kernel
            )
    return out


def test_matches_a_numpy_loop_in_float64(backend):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 4, 2))
    layer = L.Conv2DTranspose(3, 3, strides=2, use_bias=False, dtype="float64")
    layer(polykeras.Input((3, 4, 2), dtype="float64"))
    kernel = rng.normal(size=(3, 3, 3, 2))
    layer.set_weights([kernel])
    y = _np(layer(ops.asarray(x, "float64")))
    np.testing.assert_allclose(y, _transpose_reference(x, kernel, 2), rtol=1e-10, atol=1e-12)


def test_keras1_deconvolution2d():
    layer = L.Deconvolution2D(4, 3, 3, (None, 8, 8, 4), border_mode="same", subsample=(2, 2))
    out = layer(polykeras.Input((4, 4, 2)))
    assert out.shape == (None, 8, 8, 4)
    assert layer.get_config()["output_shape"] == [None, 8, 8, 4]
    again = L.Deconvolution2D.from_config(layer.get_config())
    assert again.strides == (2, 2)
    with pytest.raises(ValueError, match=r"output_shape=\(None, 9, 9, 4\) does not match"):
        L.Deconvolution2D(4, 3, 3, (None, 9, 9, 4), border_mode="same", subsample=(2, 2))(
            polykeras.Input((4, 4, 2))
        )
    with pytest.raises(TypeError, match="output_shape"):
        L.Conv2DTranspose(4, 3, output_shape=(None, 8, 8, 4))


def test_errors():
    with pytest.raises(ValueError, match=r"output_padding must be strictly less than strides"):
        L.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match=r"output_padding must be strictly less than strides"):
        L.Conv1DTranspose(2, 3, output_padding=1)
    with pytest.raises(ValueError, match="strides > 1 are not supported together with dilation"):
        L.Conv2DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="padding 'causal'"):
        L.Conv1DTranspose(2, 3, padding="causal")
    with pytest.raises(ValueError, match=r"conv2d_transpose_\d+.*expected a 4-D tensor"):
        L.Conv2DTranspose(2, 3)(polykeras.Input((4, 4)))
    layer = L.Conv2DTranspose(2, 3, name="tr")
    layer(polykeras.Input((4, 4, 3)))
    with pytest.raises(ValueError, match=r"tr is incompatible.*expected 3 channels"):
        layer(polykeras.Input((4, 4, 5)))
    with pytest.raises(ValueError, match="channel dimension of the inputs to tt"):
        L.Conv2DTranspose(2, 3, name="tt")(polykeras.Input((4, 4, None)))


@pytest.mark.parametrize("core", [True, False], ids=["core_tape", "backend_autodiff"])
@pytest.mark.parametrize(
    "geometry",
    [((2, 2), (1, 1), "valid", (2, 7, 8, 3)), ((1, 1), (2, 1), "same", (2, 3, 4, 3))],
    ids=["strided", "dilated_same"],
)
def test_transposed_convolution_gradients_match_finite_differences(backend, core, geometry):
    """conv2d_input_grad as an op (the transposed convolution): its VJP in float64."""
    import contextlib

    strides, dilation, padding, out_shape = geometry
    rng = np.random.default_rng(4)
    x0 = rng.normal(size=(2, 3, 4, 2))
    k0 = rng.normal(size=(3, 2, 3, 2))
    r = rng.normal(size=out_shape)

    def f(params):
        y = ops.conv2d_input_grad(
            params[0],
            params[1],
            input_shape=out_shape,
            strides=strides,
            padding=padding,
            data_format="channels_last",
            dilation_rate=dilation,
        )
        return ops.sum(ops.multiply(y, ops.asarray(r, "float64"))), None

    def value(x, k):
        return float(_np(f([ops.asarray(x, "float64"), ops.asarray(k, "float64")])[0]))

    with autodiff.core_differentiation() if core else contextlib.nullcontext():
        _, _, (gx, gk) = autodiff.value_and_grad(
            f, [ops.asarray(x0, "float64"), ops.asarray(k0, "float64")]
        )
    eps = 1e-6
    for which, (arr, grad) in enumerate(((x0, gx), (k0, gk))):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            up, down = arr.copy(), arr.copy()
            up[idx] += eps
            down[idx] -= eps
            num[idx] = (
                value(*((up, k0) if which == 0 else (x0, up)))
                - value(*((down, k0) if which == 0 else (x0, down)))
            ) / (2 * eps)
        np.testing.assert_allclose(_np(grad), num, rtol=1e-6, atol=1e-8)


# -- masks in the global 1-D poolings ----------------------------------------------------------
MASK_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    d = dict(np.load(sys.argv[1]))
    out = {}
    for fmt in ("channels_last", "channels_first"):
        x = d["x"] if fmt == "channels_last" else d["x"].transpose(0, 2, 1)
        layer = keras.layers.GlobalAveragePooling1D(data_format=fmt)
        out[fmt] = keras.ops.convert_to_numpy(layer(x, mask=d["mask"]))
    np.savez(sys.argv[2], **out)
""")


def _mask_data():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1]], dtype=bool)
    return x, mask


def test_masked_global_average_pooling_matches_keras3(backend, tmp_path):
    x, mask = _mask_data()
    ref = run_keras3_script(tmp_path, MASK_SCRIPT, {"x": x, "mask": mask})
    for fmt in ("channels_last", "channels_first"):
        xi = x if fmt == "channels_last" else x.transpose(0, 2, 1)
        y = _np(L.GlobalAveragePooling1D(data_format=fmt)(xi, mask=ops.asarray(mask)))
        np.testing.assert_allclose(y, ref[fmt], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_masked_steps_do_not_count(backend, mode):
    x, mask = _mask_data()
    cls = L.GlobalAveragePooling1D if mode == "avg" else L.GlobalMaxPooling1D
    layer = cls()
    assert layer.supports_masking
    assert layer.compute_mask(x, ops.asarray(mask)) is None
    y = _np(layer(x, mask=ops.asarray(mask)))
    for i in range(len(x)):
        kept = x[i][mask[i]]
        want = kept.mean(axis=0) if mode == "avg" else kept.max(axis=0)
        np.testing.assert_allclose(y[i], want, rtol=1e-5, atol=1e-6)
    # padding a sequence with masked steps changes nothing
    padded = np.concatenate([x, np.full((3, 4, 4), 7.0, "float32")], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((3, 4), bool)], axis=1)
    np.testing.assert_allclose(
        _np(layer(padded, mask=ops.asarray(padded_mask))), y, rtol=1e-6, atol=1e-6
    )
    kept = cls(keepdims=True)(x, mask=ops.asarray(mask))
    assert ops.shape(kept) == (3, 1, 4)


def test_masked_pooling_gradient_skips_masked_steps(backend):
    """The gradient of the masked average reaches only the kept steps, 1 / count each."""
    x, mask = _mask_data()

    def f(params):
        return ops.sum(
            L.GlobalAveragePooling1D(dtype="float64")(params[0], mask=ops.asarray(mask))
        ), None

    _, _, (g,) = autodiff.value_and_grad(f, [ops.asarray(x.astype("float64"))])
    counts = mask.sum(axis=1, keepdims=True)
    want = np.repeat((mask / counts)[:, :, None], 4, axis=2)
    np.testing.assert_allclose(_np(g), want, rtol=1e-12, atol=1e-12)


def test_global_pooling_keepdims_config_and_default():
    layer = L.GlobalMaxPooling1D(keepdims=True)
    assert layer.get_config()["keepdims"] is True
    assert L.GlobalMaxPooling1D.from_config(layer.get_config()).keepdims is True
    assert layer(polykeras.Input((5, 3))).shape == (None, 1, 3)
    old = L.GlobalAveragePooling2D().get_config()
    assert "keepdims" not in old  # as Keras 2 before tf.keras 2.6 wrote it
    assert L.GlobalAveragePooling2D.from_config(old).keepdims is False
    assert L.GlobalAveragePooling2D.from_config({**old, "keepdims": False}).keepdims is False
    with pytest.raises(ValueError, match="keepdims must be True or False"):
        L.GlobalAveragePooling2D(keepdims="yes")


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_a_masking_layer_feeds_the_pooling_in_a_model(backend, mode):
    if not hasattr(L, "Masking"):
        pytest.skip("no Masking layer in this checkout")
    x, mask = _mask_data()
    x = np.where(mask[:, :, None], x, 0.0).astype("float32")
    cls = L.GlobalAveragePooling1D if mode == "avg" else L.GlobalMaxPooling1D
    inp = polykeras.Input((6, 4))
    model = Model(inp, cls()(L.Masking(0.0)(inp)))
    y = model.predict(x, verbose=0)
    for i in range(len(x)):
        kept = x[i][mask[i]]
        want = kept.mean(axis=0) if mode == "avg" else kept.max(axis=0)
        np.testing.assert_allclose(y[i], want, rtol=1e-5, atol=1e-6)


# -- groups, depthwise and separable: weights, configs, errors ---------------------------------
def _weight_names(layer):
    return [w.name.split("/")[-1].split(":")[0] for w in layer.weights]


def test_depthwise_and_separable_weights_as_keras():
    layer = L.DepthwiseConv2D(3, depth_multiplier=2)
    layer(polykeras.Input((5, 5, 4)))
    assert _weight_names(layer) == ["depthwise_kernel", "bias"]
    assert [tuple(w.shape) for w in layer.weights] == [(3, 3, 4, 2), (8,)]
    layer = L.SeparableConv2D(6, (3, 2), depth_multiplier=2)
    layer(polykeras.Input((5, 5, 4)))
    assert _weight_names(layer) == ["depthwise_kernel", "pointwise_kernel", "bias"]
    assert [tuple(w.shape) for w in layer.weights] == [(3, 2, 4, 2), (1, 1, 8, 6), (6,)]
    layer = L.SeparableConv1D(6, 3, use_bias=False)
    layer(polykeras.Input((5, 4)))
    assert [tuple(w.shape) for w in layer.weights] == [(3, 4, 1), (1, 4, 6)]
    layer = L.Conv2D(6, 3, groups=3)
    layer(polykeras.Input((5, 5, 9)))
    assert tuple(layer.kernel.shape) == (3, 3, 3, 6)


def test_depthwise_and_separable_configs_use_keras_names():
    cfg = L.DepthwiseConv2D(3, depthwise_initializer="ones", depth_multiplier=3).get_config()
    assert "filters" not in cfg and "kernel_initializer" not in cfg
    assert cfg["depth_multiplier"] == 3
    assert cfg["depthwise_initializer"]["class_name"] == "Ones"
    cfg = L.SeparableConv2D(4, 3, pointwise_regularizer="l2").get_config()
    assert {"depthwise_initializer", "pointwise_initializer", "pointwise_regularizer"} <= set(cfg)
    assert "kernel_initializer" not in cfg
    assert L.Conv2D(4, 3, groups=2).get_config()["groups"] == 2
    assert "groups" not in L.Conv2D(4, 3).get_config()  # as Keras 2.2 wrote it
    assert L.Conv2D.from_config({**L.Conv2D(4, 3).get_config(), "groups": 1}).groups == 1


def test_keras1_separable_convolution():
    layer = L.SeparableConvolution2D(
        8, 3, 3, init="ones", border_mode="same", subsample=(2, 2), depth_multiplier=2
    )
    layer(polykeras.Input((6, 6, 3)))
    assert layer.strides == (2, 2) and layer.padding == "same"
    np.testing.assert_array_equal(layer.get_weights()[0], np.ones((3, 3, 3, 2)))
    np.testing.assert_array_equal(layer.get_weights()[1], np.ones((1, 1, 6, 8)))


def test_depthwise_matches_a_numpy_loop(backend):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 5, 4, 3))
    k = rng.normal(size=(2, 3, 3, 2))
    layer = L.DepthwiseConv2D((2, 3), depth_multiplier=2, use_bias=False, dtype="float64")
    layer(polykeras.Input((5, 4, 3), dtype="float64"))
    layer.set_weights([k])
    y = _np(layer(ops.asarray(x, "float64")))
    want = np.zeros((2, 4, 2, 6))
    for i in range(4):
        for j in range(2):
            patch = x[:, i : i + 2, j : j + 3, :]  # (n, 2, 3, c)
            want[:, i, j, :] = np.einsum("nabc,abcm->ncm", patch, k).reshape(2, 6)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_grouped_convolution_errors():
    with pytest.raises(ValueError, match=r"filters must be evenly divisible.*groups=4, filters=6"):
        L.Conv2D(6, 3, groups=4)
    with pytest.raises(ValueError, match=r"g2: the number of input channels must be evenly"):
        L.Conv2D(6, 3, groups=3, name="g2")(polykeras.Input((5, 5, 4)))
    with pytest.raises(ValueError, match="groups"):
        L.Conv2D(6, 3, groups=0)
    with pytest.raises(ValueError, match="groups=2 is not an argument of Conv2DTranspose"):
        L.Conv2DTranspose(6, 3, groups=2)
    with pytest.raises(ValueError, match="groups=3 is not an argument of DepthwiseConv2D"):
        L.DepthwiseConv2D(3, groups=3)
    # tf.keras 2 writes groups=1 into the configs of these layers: accepted, not written
    for cls, args in ((L.Conv2DTranspose, (2, 3)), (L.DepthwiseConv2D, (3,))):
        config = {**cls(*args).get_config(), "groups": 1}
        assert "groups" not in cls.from_config(config).get_config()
    with pytest.raises(TypeError, match="kernel_initializer is not an argument"):
        L.DepthwiseConv2D(3, kernel_initializer="ones")
    with pytest.raises(TypeError, match="filters is not an argument"):
        L.DepthwiseConv2D(3, filters=2)
    with pytest.raises(ValueError, match="depth_multiplier"):
        L.SeparableConv2D(2, 3, depth_multiplier=0)
    with pytest.raises(ValueError, match=r"too small for kernel \(5, 5\)"):
        L.DepthwiseConv2D(5)(polykeras.Input((4, 4, 2)))
    layer = L.DepthwiseConv2D(3, name="dw")
    layer(polykeras.Input((5, 5, 2)))
    with pytest.raises(ValueError, match=r"dw is incompatible.*expected 2 channels"):
        layer(polykeras.Input((5, 5, 3)))


@pytest.mark.parametrize(
    "groups, per_in, per_out, strides, dilation, padding, data_format",
    [
        (3, 2, 2, (1, 1), (1, 1), "same", "channels_last"),
        (4, 1, 3, (2, 2), (1, 1), "same", "channels_first"),
        (2, 3, 1, (1, 2), (2, 1), "valid", "channels_last"),
    ],
)
def test_grouped_kernels_equal_one_convolution_per_group(
    backend, groups, per_in, per_out, strides, dilation, padding, data_format
):
    """conv2d, conv2d_input_grad and conv2d_kernel_grad with groups= on this backend equal
    the NumPy backend's ungrouped kernels run once per group."""
    from polykeras.backend import load

    NB, B = load("numpy"), backend
    rng = np.random.default_rng(12)
    c, o = groups * per_in, groups * per_out
    x = rng.normal(size=(2, 7, 6, c))
    if data_format == "channels_first":
        x = x.transpose(0, 3, 1, 2).copy()
    k = rng.normal(size=(3, 2, per_in, o))
    geo = {"strides": strides, "padding": padding, "data_format": data_format}
    geo["dilation_rate"] = dilation
    ax = 1 if data_format == "channels_first" else 3

    def part(a, i, size):
        return np.take(a, range(i * size, (i + 1) * size), axis=ax)

    ref = np.concatenate(
        [
            NB.conv2d(part(x, i, per_in), k[..., i * per_out : (i + 1) * per_out], **geo)
            for i in range(groups)
        ],
        axis=ax,
    )
    got = B.to_numpy(B.conv2d(B.asarray(x), B.asarray(k), groups=groups, **geo))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    g = rng.normal(size=ref.shape)
    ref_dx = np.concatenate(
        [
            NB.conv2d_input_grad(
                part(g, i, per_out),
                k[..., i * per_out : (i + 1) * per_out],
                part(x, i, per_in).shape,
                **geo,
            )
            for i in range(groups)
        ],
        axis=ax,
    )
    dx = B.conv2d_input_grad(B.asarray(g), B.asarray(k), x.shape, groups=groups, **geo)
    np.testing.assert_allclose(B.to_numpy(dx), ref_dx, rtol=1e-12, atol=1e-12)
    ref_dk = np.concatenate(
        [
            NB.conv2d_kernel_grad(
                part(x, i, per_in), part(g, i, per_out), (3, 2, per_in, per_out), **geo
            )
            for i in range(groups)
        ],
        axis=3,
    )
    dk = B.conv2d_kernel_grad(B.asarray(x), B.asarray(g), k.shape, groups=groups, **geo)
    np.testing.assert_allclose(B.to_numpy(dk), ref_dk, rtol=1e-12, atol=1e-12)
    assert ref.shape[ax] == o


def test_3d_layers_keras1_spellings_and_weights():
    layer = L.Convolution3D(4, 3, 2, 2, border_mode="same", subsample=(2, 2, 2), dim_ordering="tf")
    out = layer(polykeras.Input((4, 5, 6, 3)))
    assert out.shape == (None, 2, 3, 3, 4)
    assert [tuple(w.shape) for w in layer.weights] == [(3, 2, 2, 3, 4), (4,)]
    assert L.Convolution3D(2, kernel_dim1=1, kernel_dim2=2, kernel_dim3=3).kernel_size == (1, 2, 3)
    layer = L.Conv3DTranspose(5, 2)
    layer(polykeras.Input((3, 3, 3, 2)))
    assert [tuple(w.shape) for w in layer.weights] == [(2, 2, 2, 5, 2), (5,)]
    pool = L.MaxPooling3D(pool_size=(2, 2, 2), border_mode="same", dim_ordering="th")
    assert (pool.padding, pool.data_format) == ("same", "channels_first")
    assert L.MaxPooling3D()(polykeras.Input((4, 4, 4, 1))).shape == (None, 2, 2, 2, 1)


def test_3d_errors():
    with pytest.raises(ValueError, match=r"c3.*expected a 5-D tensor"):
        L.Conv3D(2, 3, name="c3")(polykeras.Input((4, 4, 4)))
    with pytest.raises(ValueError, match=r"too small for kernel \(3, 3, 3\)"):
        L.Conv3D(2, 3)(polykeras.Input((2, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"too small for pool_size \(3, 3, 3\)"):
        L.AveragePooling3D(3)(polykeras.Input((2, 4, 4, 1)))
    with pytest.raises(ValueError, match="output_padding must be strictly less than strides"):
        L.Conv3DTranspose(2, 3, strides=(2, 2, 1), output_padding=(1, 1, 1))


def test_conv3d_matches_a_numpy_loop(backend):
    rng = np.random.default_rng(13)
    x = rng.normal(size=(2, 4, 3, 5, 2))
    k = rng.normal(size=(2, 2, 3, 2, 3))
    layer = L.Conv3D(3, (2, 2, 3), strides=(2, 1, 1), use_bias=False, dtype="float64")
    layer(polykeras.Input((4, 3, 5, 2), dtype="float64"))
    layer.set_weights([k])
    y = _np(layer(ops.asarray(x, "float64")))
    want = np.zeros((2, 2, 2, 3, 3))
    for a in range(2):
        for b in range(2):
            for c in range(3):
                patch = x[:, 2 * a : 2 * a + 2, b : b + 2, c : c + 3, :]
                want[:, a, b, c, :] = np.einsum("nijkc,ijkcf->nf", patch, k)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


# -- polykeras' .keras files load in real Keras 3 ----------------------------------------------
LOAD_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    d = dict(np.load(sys.argv[1]))
    model = keras.models.load_model(os.path.join(os.path.dirname(sys.argv[1]), "m.keras"))
    np.savez(sys.argv[2], y=model.predict(d["x"], verbose=0))
""")


def test_polykeras_keras_file_loads_in_keras3(tmp_path):
    inp = polykeras.Input((8, 8, 3))
    x = L.ZeroPadding2D(1)(inp)
    x = L.SeparableConv2D(4, 3, depth_multiplier=2)(x)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.Conv2D(4, 3, groups=2, padding="same")(x)
    x = L.MaxPooling2D()(x)
    x = L.Conv2DTranspose(3, 3, strides=2, padding="same")(x)
    x = L.UpSampling2D(2, interpolation="bilinear")(x)
    x = L.Cropping2D(((1, 1), (2, 2)))(x)
    x = L.Reshape((14, 12, 3, 1))(x)
    x = L.Conv3D(2, 2, padding="same")(x)
    x = L.Conv3DTranspose(2, 2, strides=(1, 1, 2))(x)
    x = L.AveragePooling3D((2, 2, 1))(x)
    out = L.GlobalMaxPooling3D()(x)
    model = Model(inp, out)
    rng = np.random.default_rng(14)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    data = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    model.save(str(tmp_path / "m.keras"))
    ref = run_keras3_script(tmp_path, LOAD_SCRIPT, {"x": data})
    np.testing.assert_allclose(ref["y"], model.predict(data, verbose=0), rtol=1e-4, atol=1e-5)
