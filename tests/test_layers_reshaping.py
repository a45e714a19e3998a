"""UpSampling, ZeroPadding and Cropping (1-D, 2-D, 3-D): Keras 3's numbers (forward and one
training step, through the harness of test_layers_convolutional.py), a NumPy reference,
shapes, Keras 1 spellings, configs, files and errors."""

from __future__ import annotations

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, ops
from polykeras import backend as K
from polykeras import layers as L

from test_layers_convolutional import (
    BACKENDS,
    check_against_keras,
    check_round_trips,
    keras_reference,
)


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


CF = {"data_format": "channels_first"}
CASES = {
    "up1": ("UpSampling1D", {"size": 3}, (2, 4, 3)),
    "up2": ("UpSampling2D", {"size": (2, 3)}, (2, 3, 4, 2)),
    "up2_cf": ("UpSampling2D", {"size": 2, **CF}, (2, 2, 3, 4)),
    "up2_bilinear": ("UpSampling2D", {"size": (2, 3), "interpolation": "bilinear"}, (2, 4, 3, 2)),
    "up2_bilinear_cf": (
        "UpSampling2D",
        {"size": (3, 2), "interpolation": "bilinear", **CF},
        (2, 2, 3, 5),
    ),
    "up3": ("UpSampling3D", {"size": (2, 1, 3)}, (2, 2, 3, 2, 2)),
    "up3_cf": ("UpSampling3D", {"size": 2, **CF}, (2, 2, 2, 3, 2)),
    "pad1": ("ZeroPadding1D", {"padding": (1, 2)}, (2, 4, 3)),
    "pad2": ("ZeroPadding2D", {"padding": ((1, 0), (2, 3))}, (2, 3, 4, 2)),
    "pad2_cf": ("ZeroPadding2D", {"padding": (1, 2), **CF}, (2, 2, 3, 4)),
    "pad3": ("ZeroPadding3D", {"padding": ((0, 1), (2, 0), (1, 1))}, (2, 2, 3, 2, 2)),
    "pad3_cf": ("ZeroPadding3D", {"padding": 1, **CF}, (2, 2, 2, 3, 2)),
    "crop1": ("Cropping1D", {"cropping": (2, 1)}, (2, 6, 3)),
    "crop2": ("Cropping2D", {"cropping": ((1, 0), (2, 1))}, (2, 4, 5, 2)),
    "crop2_cf": ("Cropping2D", {"cropping": 1, **CF}, (2, 2, 4, 5)),
    "crop3": ("Cropping3D", {"cropping": ((1, 0), (0, 1), (1, 1))}, (2, 3, 3, 4, 2)),
    "crop3_cf": ("Cropping3D", {"cropping": (1, 0, 1), **CF}, (2, 2, 4, 3, 4)),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return keras_reference(tmp_path_factory.mktemp("keras_reshaping"), CASES, seed=5)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_keras3(backend, reference, name):
    check_against_keras(reference, CASES, name)


@pytest.mark.parametrize("name", ["up2_bilinear", "pad2", "crop3_cf", "up1", "pad1", "crop1"])
def test_round_trips(tmp_path, name):
    check_round_trips(tmp_path, *CASES[name])


def _bilinear_reference(x, fh, fw):
    """Half-pixel bilinear resize by integer factors, one output pixel at a time (NHWC)."""
    n, h, w, c = x.shape
    out = np.zeros((n, h * fh, w * fw, c))

    def source(i, factor, size):
        s = max((i + 0.5) / factor - 0.5, 0.0)
        lo = min(int(np.floor(s)), size - 1)
        return lo, min(lo + 1, size - 1), s - lo

    for i in range(h * fh):
        r0, r1, a = source(i, fh, h)
        for j in range(w * fw):
            c0, c1, b = source(j, fw, w)
            out[:, i, j] = (
                (1 - a) * (1 - b) * x[:, r0, c0]
                + (1 - a) * b * x[:, r0, c1]
                + a * (1 - b) * x[:, r1, c0]
                + a * b * x[:, r1, c1]
            )
    return out


def test_bilinear_matches_a_numpy_reference(backend):
    x = np.random.default_rng(2).normal(size=(2, 3, 5, 2))
    layer = L.UpSampling2D((3, 2), interpolation="bilinear", dtype="float64")
    y = _np(layer(ops.asarray(x, "float64")))
    np.testing.assert_allclose(y, _bilinear_reference(x, 3, 2), rtol=1e-12, atol=1e-12)


def test_nearest_pad_and_crop_match_numpy(backend):
    x = np.random.default_rng(3).normal(size=(2, 3, 4, 2)).astype("float32")
    y = _np(L.UpSampling2D((2, 3))(x))
    np.testing.assert_array_equal(y, x.repeat(2, axis=1).repeat(3, axis=2))
    y = _np(L.ZeroPadding2D(((1, 2), (0, 3)))(x))
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0))))
    y = _np(L.Cropping2D(((1, 0), (1, 2)))(x))
    np.testing.assert_array_equal(y, x[:, 1:, 1:2, :])


@pytest.mark.parametrize(
    "layer, shape, expected",
    [
        (lambda: L.UpSampling1D(3), (None, 4, 2), (None, 12, 2)),
        (lambda: L.UpSampling2D((2, 3)), (None, None, 4, 2), (None, None, 12, 2)),
        (
            lambda: L.UpSampling3D(2, data_format="channels_first"),
            (None, 2, 1, 2, 3),
            (None, 2, 2, 4, 6),
        ),
        (lambda: L.ZeroPadding1D(), (None, 4, 2), (None, 6, 2)),
        (lambda: L.ZeroPadding2D(), (None, 4, 5, 2), (None, 6, 7, 2)),
        (lambda: L.ZeroPadding3D((1, 2, 3)), (None, 1, 1, 1, 2), (None, 3, 5, 7, 2)),
        (lambda: L.Cropping1D(), (None, 4, 2), (None, 2, 2)),
        (lambda: L.Cropping2D(), (None, 4, 5, 2), (None, 4, 5, 2)),
        (lambda: L.Cropping3D(), (None, 3, 4, 5, 2), (None, 1, 2, 3, 2)),
    ],
)
def test_output_shapes_and_defaults(layer, shape, expected):
    assert layer()(polykeras.Input(batch_shape=shape)).shape == expected


def test_keras1_spellings():
    assert L.UpSampling1D(length=3).size == (3,)
    assert L.UpSampling2D((2, 2), dim_ordering="th").data_format == "channels_first"
    pad = L.ZeroPadding2D((1, 2, 3, 4), dim_ordering="tf")
    assert pad.get_config()["padding"] == [[1, 2], [3, 4]]
    pad = L.ZeroPadding2D({"top_pad": 1, "right_pad": 2})
    assert pad.get_config()["padding"] == [[1, 0], [0, 2]]
    assert L.Cropping2D(((1, 1), (2, 2)), dim_ordering="th").data_format == "channels_first"
    assert L.ZeroPadding3D(2, dim_ordering="th").get_config()["padding"] == [[2, 2]] * 3


def test_configs_as_keras():
    assert L.UpSampling1D(2).get_config()["size"] == 2
    cfg = L.UpSampling2D(2, interpolation="bilinear").get_config()
    assert (cfg["size"], cfg["interpolation"], cfg["data_format"]) == (
        [2, 2],
        "bilinear",
        "channels_last",
    )
    assert L.ZeroPadding1D(3).get_config()["padding"] == [3, 3]
    assert "data_format" not in L.ZeroPadding1D(3).get_config()  # Keras 2 had none
    cfg = L.ZeroPadding1D(3, data_format="channels_first").get_config()
    assert L.ZeroPadding1D.from_config(cfg).data_format == "channels_first"
    assert L.Cropping1D(2).get_config()["cropping"] == [2, 2]
    assert "data_format" not in L.Cropping1D().get_config()
    assert L.Cropping2D(((1, 2), (3, 4))).get_config()["cropping"] == [[1, 2], [3, 4]]


def test_errors():
    with pytest.raises(ValueError, match=r"cropping.*non-negative"):
        L.Cropping2D(((-1, 0), (0, 0)))
    with pytest.raises(ValueError, match=r"padding.*non-negative"):
        L.ZeroPadding1D(-2)
    with pytest.raises(ValueError, match=r"layer cr: cropping \[\[2, 2\], \[0, 0\]\] removes all"):
        L.Cropping2D(((2, 2), (0, 0)), name="cr")(polykeras.Input((4, 5, 2)))
    with pytest.raises(ValueError, match=r"up_sampling2d.*expected a 4-D tensor"):
        L.UpSampling2D()(polykeras.Input((4, 5)))
    with pytest.raises(NotImplementedError, match="interpolation='bicubic' is not implemented"):
        L.UpSampling2D(interpolation="bicubic")
    with pytest.raises(TypeError, match="interpolation"):
        L.UpSampling3D(interpolation="bilinear")
    with pytest.raises(ValueError, match="size"):
        L.UpSampling2D(size=0)
    with pytest.raises(ValueError, match=r"padding must be an int, 3 ints"):
        L.ZeroPadding3D((1, 2))
    with pytest.raises(TypeError, match="data_format"):
        L.Cropping1D(data_format="channels_first")
    # a crop too large for the data met only when running (unknown length)
    layer = L.Cropping1D((3, 3), name="c1")
    layer(polykeras.Input((None, 2)))
    with pytest.raises(ValueError, match="c1: cropping"):
        layer(np.zeros((1, 5, 2), "float32"))


def test_gradients_flow_back_through_each_layer(backend):
    """Each layer is linear in its input: the gradient of sum(y * r) is the layer's adjoint
    applied to r, checked here against finite differences in float64."""
    rng = np.random.default_rng(6)
    layers = [
        L.UpSampling2D((2, 3), interpolation="bilinear", dtype="float64"),
        L.ZeroPadding2D(((1, 0), (2, 1)), dtype="float64"),
        L.Cropping3D(((1, 0), (0, 1), (1, 0)), dtype="float64"),
    ]
    shapes = [(2, 3, 2, 2), (2, 3, 2, 2), (2, 3, 3, 3, 2)]
    for layer, shape in zip(layers, shapes):
        x0 = rng.normal(size=shape)
        out_shape = layer.compute_output_shape(shape)
        r = ops.asarray(rng.normal(size=out_shape), "float64")

        def f(params, layer=layer, r=r):
            return ops.sum(ops.multiply(layer(params[0]), r)), None

        _, _, (g,) = autodiff.value_and_grad(f, [ops.asarray(x0, "float64")])
        num = np.zeros(shape)
        for idx in np.ndindex(shape):
            up, down = x0.copy(), x0.copy()
            up[idx] += 1e-6
            down[idx] -= 1e-6
            num[idx] = (
                float(_np(f([ops.asarray(up, "float64")])[0]))
                - float(_np(f([ops.asarray(down, "float64")])[0]))
            ) / 2e-6
        np.testing.assert_allclose(_np(g), num, rtol=1e-6, atol=1e-8)
