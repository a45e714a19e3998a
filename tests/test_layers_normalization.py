"""LayerNormalization, GroupNormalization and UnitNormalization: weights, formulas written
here in NumPy, gradients, configs and files, errors, and Keras 3's numbers (forward and one
training step, on the same weights and data)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, ops
from polykeras import backend as K
from polykeras import layers as L
from polykeras.models import Model, load_model, model_from_json
from polykeras.saving.config import deserialize_layer

from helpers import backend_params, run_keras3_script, torch_unusable_reason

_TORCH_REASON = torch_unusable_reason()
BACKENDS = backend_params()


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


# -- NumPy references ----------------------------------------------------------------------------
def ln_ref(x, axes, gamma=None, beta=None, eps=1e-3, rms=False):
    axes = tuple(a % x.ndim for a in axes)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    bshape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    g = 1.0 if gamma is None else gamma.reshape(bshape)
    b = 0.0 if beta is None else beta.reshape(bshape)
    if rms:
        return x / np.sqrt(var + eps) * g
    return (x - mean) / np.sqrt(var + eps) * g + b


def gn_ref(x, groups, axis, gamma=None, beta=None, eps=1e-3):
    axis = axis % x.ndim
    c = x.shape[axis]
    xm = np.moveaxis(x, axis, -1)  # (N, ..., C)
    xg = xm.reshape(xm.shape[:-1] + (groups, c // groups))
    red = tuple(range(1, xg.ndim - 2)) + (xg.ndim - 1,)
    mean = xg.mean(axis=red, keepdims=True)
    var = xg.var(axis=red, keepdims=True)
    out = ((xg - mean) / np.sqrt(var + eps)).reshape(xm.shape)
    if gamma is not None:
        out = out * gamma
    if beta is not None:
        out = out + beta
    return np.moveaxis(out, -1, axis)


def un_ref(x, axes):
    ss = (x**2).sum(axis=tuple(axes), keepdims=True)
    return x / np.sqrt(np.maximum(ss, 1e-12))


def _randomize(layer, rng):
    ws = [rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()]
    layer.set_weights(ws)
    return [w.astype("float32") for w in ws]


# -- weights ---------------------------------------------------------------------------------------
def test_layer_normalization_weights():
    K.clear_session()
    ln = L.LayerNormalization()
    assert ln.name == "layer_normalization_1"
    ln(polykeras.Input((5, 7)))
    assert [v.name for v in ln.weights] == [f"{ln.name}/gamma:0", f"{ln.name}/beta:0"]
    gamma, beta = ln.get_weights()
    np.testing.assert_array_equal(gamma, np.ones(7))
    np.testing.assert_array_equal(beta, np.zeros(7))
    ln = L.LayerNormalization(axis=[1, -1])
    ln(polykeras.Input((5, 4, 7)))
    assert [w.shape for w in ln.get_weights()] == [(5, 7), (5, 7)]
    ln = L.LayerNormalization(center=False)
    ln(polykeras.Input((3,)))
    assert [v.name.split("/")[1] for v in ln.weights] == ["gamma:0"]
    ln = L.LayerNormalization(rms_scaling=True)
    ln(polykeras.Input((3,)))
    assert [v.name.split("/")[1] for v in ln.weights] == ["gamma:0"]
    ln = L.LayerNormalization(scale=False, center=False)
    ln(polykeras.Input((3,)))
    assert ln.weights == [] and ln.supports_masking


def test_group_and_unit_normalization_weights():
    gn = L.GroupNormalization(groups=2, axis=1)
    gn(polykeras.Input((6, 4, 4)))
    assert [(v.name.split("/")[1], v.shape) for v in gn.weights] == [
        ("gamma:0", (6,)),
        ("beta:0", (6,)),
    ]
    un = L.UnitNormalization()
    un(polykeras.Input((3,)))
    assert un.weights == []


# -- formulas ------------------------------------------------------------------------------------
LN_CASES = [
    ((4, 6), {}),
    ((3, 5, 6), {"epsilon": 1e-5}),
    ((3, 5, 6), {"axis": [1, 2]}),
    ((3, 5, 4, 2), {"axis": [1, 3]}),
    ((3, 5, 6), {"axis": 1, "center": False}),
    ((3, 5, 6), {"rms_scaling": True}),
]


@pytest.mark.parametrize("shape, kwargs", LN_CASES)
def test_layer_normalization_formula(backend, shape, kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=shape).astype("float32")
    ln = L.LayerNormalization(**kwargs)
    ln(polykeras.Input(shape[1:]))
    ws = _randomize(ln, rng)
    axis = kwargs.get("axis", -1)
    axes = axis if isinstance(axis, list) else [axis]
    gamma = ws[0]
    beta = ws[1] if len(ws) > 1 else None
    want = ln_ref(
        x.astype("float64"),
        axes,
        gamma,
        beta,
        kwargs.get("epsilon", 1e-3),
        kwargs.get("rms_scaling", False),
    )
    # the same in training and inference
    for training in (False, True):
        model = Model(ln.input, ln.output)
        got = model.predict(x, verbose=0) if not training else _np(ln(x))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


GN_CASES = [
    ((2, 5, 6), {"groups": 3}),
    ((2, 4, 4, 8), {"groups": 4}),
    ((2, 8, 3, 3), {"groups": 2, "axis": 1}),
    ((2, 3, 6), {"groups": -1}),
    ((2, 3, 6), {"groups": 1, "scale": False}),
    ((2, 3, 3, 4), {"groups": 2, "axis": -1, "center": False, "epsilon": 1e-5}),
]


@pytest.mark.parametrize("shape, kwargs", GN_CASES)
def test_group_normalization_formula(backend, shape, kwargs):
    rng = np.random.default_rng(1)
    x = rng.normal(-1.0, 2.0, size=shape).astype("float32")
    gn = L.GroupNormalization(**kwargs)
    gn(polykeras.Input(shape[1:]))
    ws = _randomize(gn, rng)
    axis = kwargs.get("axis", -1)
    groups = kwargs["groups"] if kwargs["groups"] != -1 else shape[axis]
    scale, center = kwargs.get("scale", True), kwargs.get("center", True)
    gamma = ws[0] if scale else None
    beta = ws[-1] if center else None
    want = gn_ref(x.astype("float64"), groups, axis, gamma, beta, kwargs.get("epsilon", 1e-3))
    np.testing.assert_allclose(_np(gn(x)), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape, axis", [((3, 4), -1), ((2, 3, 4), 1), ((2, 3, 4), [1, 2])])
def test_unit_normalization_formula(backend, shape, axis):
    x = np.random.default_rng(2).normal(size=shape).astype("float32")
    x[0] = 0.0  # a zero sample stays zero (no division by zero)
    axes = [a % len(shape) for a in (axis if isinstance(axis, list) else [axis])]
    got = _np(L.UnitNormalization(axis=axis)(x))
    np.testing.assert_allclose(got, un_ref(x, axes), rtol=1e-5, atol=1e-6)
    assert np.isfinite(got).all()


# -- gradients (float64, central differences) ----------------------------------------------------
def _grad_check(layer, x, training_leaves=True):
    B = K.current()
    rng = np.random.default_rng(3)
    coeff = rng.normal(size=x.shape)
    trainable = layer.trainable_weights

    def fn(leaves):
        with autodiff.substitute(trainable, leaves[:-1]):
            out = layer(leaves[-1])
            return ops.sum(ops.multiply(out, B.asarray(coeff))), None

    params = [v.value for v in trainable] + [B.asarray(x)]
    with autodiff.core_differentiation():
        _, _, core = autodiff.value_and_grad(fn, params)
    _, _, own = autodiff.value_and_grad(fn, params)
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
            plus = [a.copy() for a in base]
            minus = [a.copy() for a in base]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        for grads in (core, own):
            np.testing.assert_allclose(_np(grads[k]), numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: L.LayerNormalization(dtype="float64"), (3, 4)),
        (lambda: L.LayerNormalization(axis=[1, 2], dtype="float64"), (2, 3, 2)),
        (lambda: L.LayerNormalization(rms_scaling=True, dtype="float64"), (3, 4)),
        (lambda: L.GroupNormalization(groups=2, dtype="float64"), (2, 3, 4)),
        (lambda: L.GroupNormalization(groups=2, axis=1, dtype="float64"), (2, 4, 3)),
        (lambda: L.UnitNormalization(axis=1, dtype="float64"), (2, 3, 2)),
    ],
)
def test_gradients_match_finite_differences(backend, make, shape):
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape)
    layer = make()
    layer(x)
    if layer.weights:
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
    _grad_check(layer, x)


# -- config, files ---------------------------------------------------------------------------------
def test_configs_round_trip():
    cases = [
        L.LayerNormalization(
            axis=[1, 2],
            epsilon=1e-5,
            center=False,
            gamma_initializer="random_normal",
            beta_regularizer="l2",
            gamma_constraint="non_neg",
        ),
        L.LayerNormalization(rms_scaling=True),
        L.GroupNormalization(groups=4, axis=1, scale=False, beta_initializer="ones"),
        L.UnitNormalization(axis=[1, 2]),
    ]
    for layer in cases:
        cfg = json.loads(json.dumps(layer.get_config()))
        clone = type(layer).from_config(cfg)
        assert clone.get_config() == cfg
    cfg = L.LayerNormalization().get_config()
    assert "rms_scaling" not in cfg  # Keras 2 writes no such key
    assert set(cfg) == {
        "name",
        "trainable",
        "dtype",
        "axis",
        "epsilon",
        "center",
        "scale",
        "beta_initializer",
        "gamma_initializer",
        "beta_regularizer",
        "gamma_regularizer",
        "beta_constraint",
        "gamma_constraint",
    }
    assert L.GroupNormalization().get_config()["groups"] == 32
    # a Keras 3 config (dtype policy, rms_scaling=False, module keys) loads
    k3 = {
        "module": "keras.layers",
        "class_name": "LayerNormalization",
        "config": {
            "name": "ln",
            "trainable": True,
            "dtype": {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": "float32"},
                "registered_name": None,
            },
            "axis": [-1],
            "epsilon": 1e-6,
            "center": True,
            "scale": True,
            "rms_scaling": False,
            "beta_initializer": {
                "module": "keras.initializers",
                "class_name": "Zeros",
                "config": {},
            },
            "gamma_initializer": {
                "module": "keras.initializers",
                "class_name": "Ones",
                "config": {},
            },
            "beta_regularizer": None,
            "gamma_regularizer": None,
            "beta_constraint": None,
            "gamma_constraint": None,
        },
        "registered_name": None,
    }
    layer = deserialize_layer(k3)
    assert isinstance(layer, L.LayerNormalization) and layer.epsilon == 1e-6


def _model():
    inp = polykeras.Input((4, 6))
    h = L.LayerNormalization(name="ln")(inp)
    h = L.GroupNormalization(groups=3, name="gn")(h)
    h = L.UnitNormalization(name="un")(h)
    return Model(inp, h)


@pytest.mark.parametrize("ext", ["h5", "keras"])
def test_model_files_round_trip(tmp_path, ext):
    rng = np.random.default_rng(5)
    model = _model()
    model.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in model.get_weights()])
    x = rng.normal(size=(3, 4, 6)).astype("float32")
    want = model.predict(x, verbose=0)
    again = model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again.predict(x, verbose=0), want, rtol=1e-6)
    path = str(tmp_path / f"m.{ext}")
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6)
    assert [type(lay).__name__ for lay in loaded.layers[1:]] == [
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
    ]


# -- errors ------------------------------------------------------------------------------------
def test_bad_arguments_name_the_layer():
    with pytest.raises(ValueError, match=r"ln_a.*axis 3 is out of range.*\[-3, 2\]"):
        L.LayerNormalization(axis=3, name="ln_a")(polykeras.Input((4, 5)))
    with pytest.raises(ValueError, match=r"ln_b.*batch axis"):
        L.LayerNormalization(axis=0, name="ln_b")(polykeras.Input((4,)))
    with pytest.raises(ValueError, match=r"Axis 1 .*ln_c.*defined dimension"):
        L.LayerNormalization(axis=1, name="ln_c")(polykeras.Input((None, 4)))
    with pytest.raises(TypeError, match="axis must be an int"):
        L.LayerNormalization(axis="last")
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        L.LayerNormalization(epsilon=-1)
    with pytest.raises(ValueError, match="rms_scaling"):
        L.LayerNormalization(rms_scaling="yes")
    ln = L.LayerNormalization(name="ln_d")
    ln(polykeras.Input((4,)))
    with pytest.raises(ValueError, match=r"ln_d.*expected axis 1 .*size 4.*\(None, 5\)"):
        ln(polykeras.Input((5,)))
    with pytest.raises(ValueError, match=r"gn_a.*groups=4 does not divide the 6 channels"):
        L.GroupNormalization(groups=4, name="gn_a")(polykeras.Input((3, 6)))
    with pytest.raises(ValueError, match=r"gn_b.*groups \(8\) cannot be more than.*\(4\)"):
        L.GroupNormalization(groups=8, name="gn_b")(polykeras.Input((3, 4)))
    with pytest.raises(ValueError, match="groups must be a positive int"):
        L.GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="groups must be a positive int"):
        L.GroupNormalization(groups=2.5)
    with pytest.raises(ValueError, match="axis must be one int"):
        L.GroupNormalization(axis=[1, 2])
    with pytest.raises(ValueError, match=r"un_a.*axis -3 is out of range"):
        L.UnitNormalization(axis=-3, name="un_a")(polykeras.Input((4,)))
    with pytest.raises(TypeError, match="not understood: bogus"):
        L.UnitNormalization(bogus=1)


# -- against Keras 3 ------------------------------------------------------------------------------
# A generic harness, used by tests/test_layers_activation_noise.py too: for each case, a model
# Input -> Dense(units) -> layer, the same weights and data in both; Keras 3 writes the
# prediction, the loss, the weights after one SGD(0.1) step on MSE, a .keras and a .h5 file.
KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    data = dict(np.load(sys.argv[1]))
    folder = os.path.dirname(sys.argv[1])
    cases = json.loads(open(os.path.join(folder, "cases.json")).read())
    out = {}
    for name, case in cases.items():
        x, y = data[name + "/x"], data[name + "/y"]
        inp = keras.Input(tuple(case["shape"]))
        h = keras.layers.Dense(case["units"])(inp)
        layer = getattr(keras.layers, case["cls"])(**case["kwargs"])
        model = keras.Model(inp, layer(h))
        n = len(model.get_weights())
        model.set_weights([data[f"{name}/w{i}"] for i in range(n)])
        out[name + "/pred"] = model.predict(x, verbose=0)
        model.save(os.path.join(folder, name + ".keras"))
        model.save(os.path.join(folder, name + ".h5"))  # Keras 3's legacy HDF5 writer
        model.compile(keras.optimizers.SGD(learning_rate=0.1), "mse")
        out[name + "/loss"] = np.asarray(model.train_on_batch(x, y))
        for i, w in enumerate(model.get_weights()):
            out[f"{name}/after{i}"] = w
        out[name + "/config"] = np.asarray(json.dumps(layer.get_config()))
    np.savez(sys.argv[2], **out)
""")


def _build(case):
    inp = polykeras.Input(tuple(case["shape"]))
    h = L.Dense(case["units"])(inp)
    layer = getattr(L, case["cls"])(**case["kwargs"])
    return Model(inp, layer(h)), layer


def keras_reference(tmp_path_factory, cases: dict, label: str):
    """Run every case in Keras 3; returns (inputs per case, Keras' results, the folder with
    the .keras files Keras wrote)."""
    rng = np.random.default_rng(7)
    arrays, inputs = {}, {}
    for name, case in cases.items():
        model, _ = _build(case)
        weights = [rng.uniform(-0.8, 0.8, w.shape).astype("float32") for w in model.get_weights()]
        x = rng.normal(size=(4,) + tuple(case["shape"])).astype("float32")
        y = rng.normal(size=(4,) + tuple(model.outputs[0].shape[1:])).astype("float32")
        arrays[name + "/x"], arrays[name + "/y"] = x, y
        for i, w in enumerate(weights):
            arrays[f"{name}/w{i}"] = w
        inputs[name] = (x, y, weights)
    folder = tmp_path_factory.mktemp(label)
    (folder / "cases.json").write_text(json.dumps(cases))
    results = run_keras3_script(folder, KERAS_SCRIPT, arrays)
    return inputs, results, folder


def check_against_keras(case, inputs, results, folder, name):
    x, y, weights = inputs
    model, _ = _build(case)
    model.set_weights(weights)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), results[name + "/pred"], rtol=1e-4, atol=1e-5
    )
    model.compile(polykeras.optimizers.SGD(learning_rate=0.1), "mse")
    loss = model.train_on_batch(x, y)
    np.testing.assert_allclose(loss, results[name + "/loss"], rtol=1e-4, atol=1e-5)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(
            w, results[f"{name}/after{i}"], rtol=1e-4, atol=1e-5, err_msg=f"weight {i}"
        )
    # the .keras and .h5 files Keras 3 wrote load here and predict the same
    for ext in ("keras", "h5"):
        loaded = load_model(str(folder / f"{name}.{ext}"), compile=False)
        np.testing.assert_allclose(
            loaded.predict(x, verbose=0), results[name + "/pred"], rtol=1e-4, atol=1e-5
        )
    # and the layer's Keras 3 config builds the same layer here
    cfg = json.loads(str(results[name + "/config"]))
    layer = getattr(L, case["cls"]).from_config(cfg)
    assert type(layer).__name__ == case["cls"]


NORM_CASES = {
    "ln_last": {"cls": "LayerNormalization", "kwargs": {}, "shape": [3, 5], "units": 5},
    "ln_two_axes": {
        "cls": "LayerNormalization",
        "kwargs": {"axis": [1, 2], "epsilon": 1e-5},
        "shape": [3, 5],
        "units": 5,
    },
    # (no single axis other than the last: Keras 3.15.1 on torch hands it to
    # torch's layer_norm, which only normalizes trailing axes, and fails; checked against
    # the NumPy reference in test_layer_normalization_formula instead)
    "ln_rms": {
        "cls": "LayerNormalization",
        "kwargs": {"rms_scaling": True},
        "shape": [6],
        "units": 4,
    },
    "gn_last": {"cls": "GroupNormalization", "kwargs": {"groups": 3}, "shape": [4, 2], "units": 6},
    "gn_first": {
        "cls": "GroupNormalization",
        "kwargs": {"groups": 2, "axis": 1},
        "shape": [4, 3],
        "units": 5,
    },
    "gn_instance": {
        "cls": "GroupNormalization",
        "kwargs": {"groups": -1, "epsilon": 1e-5},
        "shape": [5, 3],
        "units": 4,
    },
    "un": {"cls": "UnitNormalization", "kwargs": {}, "shape": [3, 4], "units": 4},
    "un_axes": {
        "cls": "UnitNormalization",
        "kwargs": {"axis": [1, 2]},
        "shape": [3, 4],
        "units": 2,
    },
}


@pytest.fixture(scope="module")
def keras_norm(tmp_path_factory):
    return keras_reference(tmp_path_factory, NORM_CASES, "keras_norm")


@pytest.mark.parametrize("name", list(NORM_CASES))
def test_matches_keras3(backend, keras_norm, name):
    inputs, results, folder = keras_norm
    check_against_keras(NORM_CASES[name], inputs[name], results, folder, name)


# -- an optional fused kernel -------------------------------------------------------------------
@pytest.mark.skipif(_TORCH_REASON is not None, reason=str(_TORCH_REASON))
@pytest.mark.parametrize(
    "kwargs, shape",
    [({}, (3, 4, 5)), ({"axis": [1, 2], "center": False}, (3, 4, 5)), ({"scale": False}, (2, 6))],
)
def test_a_backend_layer_norm_kernel_gives_the_primitives_numbers(monkeypatch, kwargs, shape):
    """Where a backend offers ``layer_norm(x, gamma, beta, num_axes, epsilon)`` (normalize
    over the last ``num_axes`` axes), LayerNormalization uses it when the backend
    differentiates; outputs and gradients equal the primitives' path."""
    import torch

    rng = np.random.default_rng(9)
    x = rng.normal(size=shape).astype("float32")
    coeff = rng.normal(size=shape).astype("float32")
    calls = []

    def layer_norm(x, gamma, beta, num_axes, epsilon):
        calls.append(num_axes)
        return torch.nn.functional.layer_norm(x, tuple(x.shape[-num_axes:]), gamma, beta, epsilon)

    def run():
        B = K.current()
        layer = L.LayerNormalization(**kwargs)
        layer(x)
        layer.set_weights([rng_w.copy() for rng_w in weights[: len(layer.weights)]])
        trainable = layer.trainable_weights

        def fn(leaves):
            with autodiff.substitute(trainable, leaves[:-1]):
                return ops.sum(ops.multiply(layer(leaves[-1]), B.asarray(coeff))), None

        _, _, grads = autodiff.value_and_grad(fn, [v.value for v in trainable] + [B.asarray(x)])
        return [_np(layer(x))] + [_np(g) for g in grads]

    param = tuple(shape[1:]) if "axis" in kwargs else (shape[-1],)
    weights = [rng.uniform(0.5, 1.5, param).astype("float32") for _ in range(2)]
    with polykeras.use_backend("torch") as B:
        plain = run()
        monkeypatch.setattr(B, "layer_norm", layer_norm, raising=False)
        fused = run()
    assert calls, "LayerNormalization did not use the backend's layer_norm"
    assert len(plain) == len(fused)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    calls.clear()
    with polykeras.use_backend("numpy"):  # no such kernel: the primitives
        L.LayerNormalization()(x)
    assert not calls
