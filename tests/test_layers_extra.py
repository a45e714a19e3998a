"""EinsumDense and DepthwiseConv1D: shapes and weights, formulas written here in NumPy,
gradients, configs and files both ways, errors, and Keras 3's numbers (forward and one
training step, on the same weights and data)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, initializers, ops
from polykeras import backend as K
from polykeras import layers as L
from polykeras.models import Model, Sequential, load_model, model_from_json
from polykeras.saving.config import deserialize_layer

from helpers import run_keras3_script
from test_layers_normalization import (
    BACKENDS,
    _np,
    check_against_keras,
    keras_reference,
)


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _grad_check(layer, x):
    """The gradients of sum(layer(x) * c) (c fixed, shaped like the output) with respect to
    the weights and x, as autodiff gives them, against central differences."""
    B = K.current()
    coeff = np.random.default_rng(3).normal(size=_np(layer(x)).shape)
    trainable = layer.trainable_weights

    def fn(leaves):
        with autodiff.substitute(trainable, leaves[:-1]):
            return ops.sum(ops.multiply(layer(leaves[-1]), B.asarray(coeff))), None

    _, _, grads = autodiff.value_and_grad(fn, [v.value for v in trainable] + [B.asarray(x)])
    base = [w.copy() for w in layer.get_weights()] + [x.copy()]

    def loss(arrays):
        saved = layer.get_weights()
        layer.set_weights(arrays[:-1])
        try:
            return float((_np(layer(arrays[-1])) * coeff).sum())
        finally:
            layer.set_weights(saved)

    eps = 1e-6
    for k, arr in enumerate(base):
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            plus, minus = [a.copy() for a in base], [a.copy() for a in base]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(_np(grads[k]), numeric, rtol=1e-5, atol=1e-7)


# -- EinsumDense: weights and shapes ---------------------------------------------------------------
# (equation, output_shape, bias_axes, input shape without the batch, kernel shape, bias shape,
# output shape without the batch) -- the shapes Keras 3 gives these layers
EINSUM_SHAPES = [
    ("ab,bc->ac", 4, None, (3,), (3, 4), None, (4,)),
    ("ab,bc->ac", 4, "c", (3,), (3, 4), (4,), (4,)),
    ("abc,cd->abd", (5, 4), "d", (5, 3), (3, 4), (4,), (5, 4)),
    ("abc,cde->abde", (5, 2, 4), "de", (5, 3), (3, 2, 4), (2, 4), (5, 2, 4)),
    ("abc,cde->abde", (5, 2, 4), "d", (5, 3), (3, 2, 4), (2, 1), (5, 2, 4)),
    ("abcd,cde->abe", (5, 4), "e", (5, 2, 3), (2, 3, 4), (4,), (5, 4)),
    ("...b,bc->...c", 4, "c", (6, 5, 3), (3, 4), (4,), (6, 5, 4)),
    ("ab...,bc->ac...", 4, "c", (3, 5), (3, 4), (4, 1), (4, 5)),
    ("abc,bd->adc", (4, 3), "d", (5, 3), (5, 4), (4, 1), (4, 3)),
]


@pytest.mark.parametrize("eq, out, bias, shape, kshape, bshape, oshape", EINSUM_SHAPES)
def test_einsum_dense_shapes(backend, eq, out, bias, shape, kshape, bshape, oshape):
    layer = L.EinsumDense(eq, out, bias_axes=bias)
    x = np.random.default_rng(0).normal(size=(2,) + shape).astype("float32")
    y = _np(layer(x))
    assert layer.kernel.shape == kshape
    assert (layer.bias is None and bshape is None) or layer.bias.shape == bshape
    assert [w.name.split("/")[-1] for w in layer.weights] == ["kernel:0", "bias:0"][
        : 1 + (bshape is not None)
    ]
    assert y.shape == (2,) + oshape
    assert layer.compute_output_shape((None,) + shape) == (None,) + oshape
    # the same on a symbolic tensor, in a functional model and in a Sequential
    inp = polykeras.Input(shape)
    model = Model(inp, L.EinsumDense(eq, out, bias_axes=bias)(inp))
    assert tuple(model.output_shape) == (None,) + oshape
    seq = Sequential([polykeras.Input(shape), L.EinsumDense(eq, out, bias_axes=bias)])
    assert seq.predict(x, verbose=0).shape == (2,) + oshape


@pytest.mark.parametrize("eq, out, bias, shape, kshape, bshape, oshape", EINSUM_SHAPES)
def test_einsum_dense_formula(backend, eq, out, bias, shape, kshape, bshape, oshape):
    rng = np.random.default_rng(1)
    layer = L.EinsumDense(eq, out, bias_axes=bias, activation="tanh")
    x = rng.normal(size=(2,) + shape).astype("float32")
    layer(x)
    weights = [rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    want = np.einsum(eq, x, weights[0])
    if bias is not None:
        want = want + weights[1]
    np.testing.assert_allclose(_np(layer(x)), np.tanh(want), rtol=1e-5, atol=1e-6)


def test_einsum_dense_kernel_scale_uses_its_input_and_output_axes():
    # glorot_uniform over a (3, 2, 40) kernel of 'abc,cde->abde': fan_in 3, fan_out 80 (as
    # Keras 3 counts them), not those of a convolution kernel (6 and 120: limit 0.218)
    layer = L.EinsumDense("abc,cde->abde", (5, 2, 40), kernel_initializer="glorot_uniform")
    layer.build((None, 5, 3))
    limit = np.sqrt(6 / (3 + 80))
    k = np.asarray(layer.get_weights()[0])
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.9 * limit
    # a constant initializer is left alone
    layer = L.EinsumDense("ab,bc->ac", 2, kernel_initializer=initializers.Constant(0.5))
    layer.build((None, 3))
    np.testing.assert_array_equal(layer.get_weights()[0], np.full((3, 2), 0.5))


@pytest.mark.parametrize(
    "eq, out, bias, shape",
    [
        ("abc,cde->abde", (5, 2, 4), "de", (5, 3)),
        ("...b,bc->...c", 4, "c", (5, 3)),
        ("abc,bd->adc", (4, 3), "d", (5, 3)),
    ],
)
def test_einsum_dense_gradients_match_finite_differences(backend, eq, out, bias, shape):
    rng = np.random.default_rng(15)
    x = rng.normal(size=(2,) + shape)
    layer = L.EinsumDense(eq, out, bias_axes=bias, activation="tanh", dtype="float64")
    layer(x)
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in layer.get_weights()])
    _grad_check(layer, x)


# -- DepthwiseConv1D -------------------------------------------------------------------------------
def depthwise1d_ref(x, kernel, bias, stride=1, padding="valid", dilation=1):
    """(N, steps, C) with kernel (k, C, m): output channel c * m + j, as Keras orders them."""
    k, c, m = kernel.shape
    span = (k - 1) * dilation + 1
    if padding == "same":
        total = max((-(-x.shape[1] // stride) - 1) * stride + span - x.shape[1], 0)
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    elif padding == "causal":
        x = np.pad(x, ((0, 0), (span - 1, 0), (0, 0)))
    steps = (x.shape[1] - span) // stride + 1
    out = np.zeros((x.shape[0], steps, c * m))
    for t in range(steps):
        window = x[:, t * stride : t * stride + span : dilation, :]  # (N, k, C)
        out[:, t, :] = np.einsum("nkc,kcm->ncm", window, kernel).reshape(x.shape[0], c * m)
    return out + (0 if bias is None else bias)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"padding": "same", "depth_multiplier": 2},
        {"strides": 2, "use_bias": False},
        {"dilation_rate": 2, "padding": "same"},
        {"padding": "causal", "dilation_rate": 2, "depth_multiplier": 3},
        {"data_format": "channels_first", "strides": 2},
    ],
)
def test_depthwise_conv1d_formula(backend, kwargs):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 9, 4)).astype("float32")
    layer = L.DepthwiseConv1D(3, **kwargs)
    y = _np(layer(x))
    weights = [rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    first = kwargs.get("data_format") == "channels_first"
    xs = x.transpose(0, 2, 1) if first else x
    m = kwargs.get("depth_multiplier", 1)
    assert weights[0].shape == (3, xs.shape[2], m)
    want = depthwise1d_ref(
        xs,
        weights[0],
        weights[1] if len(weights) > 1 else None,
        kwargs.get("strides", 1),
        kwargs.get("padding", "valid"),
        kwargs.get("dilation_rate", 1),
    )
    if first:
        want = want.transpose(0, 2, 1)
    y = _np(layer(x))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert layer.compute_output_shape((None,) + x.shape[1:]) == (None,) + y.shape[1:]


def test_depthwise_conv1d_gradients_match_finite_differences(backend):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 6, 3))
    layer = L.DepthwiseConv1D(3, padding="same", depth_multiplier=2, dtype="float64")
    layer(x)
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in layer.get_weights()])
    _grad_check(layer, x)


def test_depthwise_conv1d_defaults_and_config():
    layer = L.DepthwiseConv1D(3)
    cfg = layer.get_config()
    assert cfg["kernel_size"] == [3] and cfg["strides"] == [1] and cfg["dilation_rate"] == [1]
    assert cfg["padding"] == "valid" and cfg["depth_multiplier"] == 1
    assert "filters" not in cfg and "kernel_initializer" not in cfg
    again = L.DepthwiseConv1D.from_config(L.DepthwiseConv1D(2, 2, "same", 3).get_config())
    assert again.strides == (2,) and again.padding == "same" and again.depth_multiplier == 3


# -- configs, files, errors ----------------------------------------------------------------------
def test_einsum_dense_config_is_keras3s():
    layer = L.EinsumDense("abc,cd->abd", (5, 4), bias_axes="d", activation="relu")
    cfg = layer.get_config()
    for key, value in {
        "equation": "abc,cd->abd",
        "output_shape": [5, 4],
        "bias_axes": "d",
        "activation": "relu",
        "quantization_config": None,
    }.items():
        assert cfg[key] == value, key
    again = L.EinsumDense.from_config(json.loads(json.dumps(cfg)))
    assert again.get_config() == cfg
    assert L.EinsumDense("ab,bc->ac", 7).get_config()["output_shape"] == [7]


@pytest.mark.parametrize("ext", ["keras", "h5", "json"])
def test_model_files_round_trip(tmp_path, ext):
    inp = polykeras.Input((5, 3))
    h = L.EinsumDense("abc,cde->abde", (5, 2, 4), bias_axes="de")(inp)
    h = L.Reshape((5, 8))(h)
    out = L.DepthwiseConv1D(3, padding="same", depth_multiplier=2)(h)
    model = Model(inp, out)
    rng = np.random.default_rng(9)
    model.set_weights([rng.uniform(-1, 1, w.shape) for w in model.get_weights()])
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    want = model.predict(x, verbose=0)
    if ext == "json":
        again = model_from_json(model.to_json())
        again.set_weights(model.get_weights())
    else:
        model.save(str(tmp_path / f"m.{ext}"))
        again = load_model(str(tmp_path / f"m.{ext}"))
    np.testing.assert_allclose(again.predict(x, verbose=0), want, rtol=1e-6, atol=1e-6)


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="EinsumDense.*not of the form"):
        L.EinsumDense("ab,bc,cd->ad", 4).build((None, 3))
    with pytest.raises(ValueError, match="EinsumDense.*equation must be a string"):
        L.EinsumDense(None, 4)
    with pytest.raises(ValueError, match="EinsumDense.*output_shape"):
        L.EinsumDense("ab,bc->ac", "four")
    with pytest.raises(ValueError, match="EinsumDense.*output_shape"):
        L.EinsumDense("ab,bc->ac", 0)
    with pytest.raises(ValueError, match="bias_axes letter 'x'"):
        L.EinsumDense("ab,bc->ac", 4, bias_axes="x").build((None, 3))
    with pytest.raises(ValueError, match="kernel letter 'z'"):
        L.EinsumDense("ab,bcz->ac", 4).build((None, 3))
    with pytest.raises(ValueError, match="output letter 'q'"):
        L.EinsumDense("ab,bc->aq", 4).build((None, 3))
    with pytest.raises(ValueError, match="needs 2"):
        L.EinsumDense("abc,cd->abd", 4).build((None, 5, 3))
    with pytest.raises(ValueError, match="'b' .* 5 in the input but 6"):
        L.EinsumDense("abc,cd->abd", (6, 4)).build((None, 5, 3))
    with pytest.raises(ValueError, match="rank"):
        L.EinsumDense("abc,cd->abd", (5, 4))(np.zeros((2, 3), "float32"))
    for key, value in [
        ("lora_rank", 4),
        ("lora_alpha", 2.0),
        ("quantization_config", {}),
        ("gptq_unpacked_column_size", 3),
    ]:
        with pytest.raises(NotImplementedError, match=key):
            L.EinsumDense("ab,bc->ac", 4, **{key: value})
    with pytest.raises(TypeError, match="kernel_initializer is not an argument"):
        L.DepthwiseConv1D(3, kernel_initializer="ones")
    with pytest.raises(TypeError, match="filters is not an argument"):
        L.DepthwiseConv1D(3, filters=2)
    with pytest.raises(ValueError, match="depth_multiplier"):
        L.DepthwiseConv1D(3, depth_multiplier=0)


# -- against Keras 3 ------------------------------------------------------------------------------
EXTRA_CASES = {
    "ed_plain": {
        "cls": "EinsumDense",
        "kwargs": {"equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "c"},
        "shape": [3],
        "units": 5,
    },
    "ed_heads": {
        "cls": "EinsumDense",
        "kwargs": {
            "equation": "abc,cde->abde",
            "output_shape": [4, 2, 3],
            "bias_axes": "de",
            "activation": "tanh",
        },
        "shape": [4, 3],
        "units": 5,
    },
    "ed_merge": {
        "cls": "EinsumDense",
        "kwargs": {"equation": "abc,cd->abd", "output_shape": [4, 3]},
        "shape": [4, 2],
        "units": 5,
    },
    "ed_left": {
        "cls": "EinsumDense",
        "kwargs": {"equation": "...b,bc->...c", "output_shape": 3, "bias_axes": "c"},
        "shape": [4, 2],
        "units": 5,
    },
    "ed_right": {
        "cls": "EinsumDense",
        "kwargs": {"equation": "ab...,bc->ac...", "output_shape": 3, "bias_axes": "c"},
        "shape": [4, 5],
        "units": 2,
    },
    "dw1_valid": {
        "cls": "DepthwiseConv1D",
        "kwargs": {"kernel_size": 3, "depth_multiplier": 2},
        "shape": [7, 2],
        "units": 3,
    },
    "dw1_same": {
        "cls": "DepthwiseConv1D",
        "kwargs": {"kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"},
        "shape": [7, 2],
        "units": 3,
    },
    "dw1_dilated": {
        "cls": "DepthwiseConv1D",
        "kwargs": {"kernel_size": 2, "dilation_rate": 2, "use_bias": False},
        "shape": [6, 2],
        "units": 4,
    },
}


@pytest.fixture(scope="module")
def keras_extra(tmp_path_factory):
    return keras_reference(tmp_path_factory, EXTRA_CASES, "keras_extra")


@pytest.mark.parametrize("name", list(EXTRA_CASES))
def test_matches_keras3(backend, keras_extra, name):
    inputs, results, folder = keras_extra
    case = EXTRA_CASES[name]
    # Keras 3's layer config (its initializers carry Keras 3-only keys, which the loading
    # path understands) builds the same layer here, with the same settings
    theirs = json.loads(str(results[name + "/config"]))
    layer = deserialize_layer(
        {"module": "keras.layers", "class_name": case["cls"], "config": theirs}
    )
    ours = layer.get_config()
    for key, value in theirs.items():
        if key not in ("name", "dtype") and not key.endswith("_initializer"):
            assert json.loads(json.dumps(ours[key])) == value, key
    results = {**results, name + "/config": np.asarray(json.dumps(ours))}
    check_against_keras(case, inputs[name], results, folder, name)


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


def test_real_keras3_loads_our_keras_file(backend, tmp_path):
    inp = polykeras.Input((5, 3))
    h = L.EinsumDense("abc,cde->abde", (5, 2, 4), bias_axes="de", activation="relu")(inp)
    h = L.Reshape((5, 8))(h)
    h = L.DepthwiseConv1D(3, padding="same", depth_multiplier=2)(h)
    out = L.EinsumDense("...b,bc->...c", 3, bias_axes="c")(h)
    model = Model(inp, out)
    rng = np.random.default_rng(22)
    model.set_weights([rng.uniform(-1, 1, w.shape) for w in model.get_weights()])
    x = rng.normal(size=(3, 5, 3)).astype("float32")
    model.save(str(tmp_path / "m.keras"))
    got = run_keras3_script(tmp_path, LOAD_SCRIPT, {"x": x})
    assert "error" not in got, f"Keras 3 refused the file: {got.get('error')}"
    np.testing.assert_allclose(got["pred"], model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    assert list(got["names"])[1:] == [type(lay).__name__ for lay in model.layers[1:]]
