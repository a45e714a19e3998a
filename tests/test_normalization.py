"""BatchNormalization: weights, training vs inference, moving-average updates, gradients,
configs and errors, against formulas written here and against Keras 3."""

from __future__ import annotations

import importlib.util
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
from polykeras.engine.base_layer import Input
from polykeras.layers.normalization import BatchNormalization

from helpers import backend_params


BACKENDS = backend_params()


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


def _bshape(ndim, axis):
    return lambda p: p.reshape([-1 if i == axis % ndim else 1 for i in range(ndim)])


def _set_random(layer, rng):
    gamma, beta, mm, mv = (w.shape for w in layer.get_weights())
    weights = [
        rng.uniform(0.5, 1.5, gamma),
        rng.uniform(-0.5, 0.5, beta),
        rng.uniform(-0.5, 0.5, mm),
        rng.uniform(0.5, 2.0, mv),
    ]
    layer.set_weights(weights)
    return weights


CASES = [((6, 5), -1), ((6, 5), 1), ((4, 3, 5, 2), -1), ((4, 3, 5, 2), 1), ((4, 3, 5), 1)]


# -- weights ---------------------------------------------------------------------------------
def test_weights_order_names_and_count():
    K.clear_session()
    bn = BatchNormalization()
    assert bn.name == "batch_normalization_1"
    bn(Input(shape=(7,)))
    assert [v.name for v in bn.weights] == [
        f"{bn.name}/{n}:0" for n in ("gamma", "beta", "moving_mean", "moving_variance")
    ]
    assert [v.name.split("/")[1] for v in bn.trainable_weights] == ["gamma:0", "beta:0"]
    assert [v.name.split("/")[1] for v in bn.non_trainable_weights] == [
        "moving_mean:0",
        "moving_variance:0",
    ]
    assert bn.count_params() == 28
    gamma, beta, mm, mv = bn.get_weights()
    np.testing.assert_array_equal(gamma, np.ones(7))
    np.testing.assert_array_equal(beta, np.zeros(7))
    np.testing.assert_array_equal(mm, np.zeros(7))
    np.testing.assert_array_equal(mv, np.ones(7))
    bn = BatchNormalization(axis=1)
    bn(Input(shape=(3, 8, 8)))
    assert [w.shape for w in bn.get_weights()] == [(3,)] * 4
    bn = BatchNormalization(center=False)
    bn(Input(shape=(4,)))
    assert [v.name.split("/")[1] for v in bn.weights] == [
        "gamma:0",
        "moving_mean:0",
        "moving_variance:0",
    ]
    bn = BatchNormalization(scale=False, center=False)
    bn(Input(shape=(4,)))
    assert len(bn.weights) == 2 and not bn.trainable_weights


# -- inference and training ---------------------------------------------------------------------
@pytest.mark.parametrize("shape, axis", CASES)
def test_inference_uses_moving_statistics(backend, shape, axis):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    bn = BatchNormalization(axis=axis)
    bn(Input(shape=shape[1:]))
    gamma, beta, mm, mv = map(_bshape(len(shape), axis), _set_random(bn, rng))
    want = gamma * (x - mm) / np.sqrt(mv + 1e-3) + beta
    for got in (bn(x), bn(x, training=False)):
        np.testing.assert_allclose(_np(got), want, rtol=1e-5, atol=1e-6)
    assert not bn._updates


@pytest.mark.parametrize("shape, axis", CASES)
def test_training_uses_batch_statistics_and_updates(backend, shape, axis):
    rng = np.random.default_rng(1)
    x = rng.normal(loc=2.0, scale=3.0, size=shape)
    bn = BatchNormalization(axis=axis, momentum=0.9, epsilon=1e-3)
    bn(Input(shape=shape[1:]))
    weights = _set_random(bn, rng)
    gamma, beta, mm, mv = map(_bshape(len(shape), axis), weights)
    red = tuple(i for i in range(len(shape)) if i != axis % len(shape))
    mean = x.mean(axis=red, keepdims=True)
    var = x.var(axis=red, keepdims=True)  # biased
    want = gamma * (x - mean) / np.sqrt(var + 1e-3) + beta
    bn._updates.clear()
    got = bn(x, training=True)
    np.testing.assert_allclose(_np(got), want, rtol=1e-4, atol=1e-5)
    # the moving averages are not changed by the call; updates are registered instead
    np.testing.assert_array_equal(bn.get_weights()[2], weights[2].astype("float32"))
    assert [
        var_ is v
        for var_, v in zip([u[0] for u in bn._updates], [bn.moving_mean, bn.moving_variance])
    ] == [True, True]
    new_mean, new_var = (_np(u[1]) for u in bn._updates)
    np.testing.assert_allclose(
        new_mean, weights[2] * 0.9 + mean.reshape(-1) * 0.1, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        new_var, weights[3] * 0.9 + var.reshape(-1) * 0.1, rtol=1e-5, atol=1e-6
    )
    assert new_mean.shape == bn.moving_mean.shape and new_mean.dtype == np.float32
    # applying them (as a training step does) moves the inference statistics
    for variable, value in bn._updates:
        variable.assign(value)
    np.testing.assert_allclose(bn.get_weights()[2], new_mean, rtol=1e-6)


def test_moving_averages_converge():
    rng = np.random.default_rng(2)
    bn = BatchNormalization(momentum=0.5)
    bn(Input(shape=(3,)))
    for _ in range(40):
        x = rng.normal(loc=[1.0, -2.0, 5.0], scale=[1.0, 0.5, 2.0], size=(256, 3))
        bn._updates.clear()
        bn(x, training=True)
        for variable, value in bn._updates:
            variable.assign(value)
    _, _, mm, mv = bn.get_weights()
    np.testing.assert_allclose(mm, [1.0, -2.0, 5.0], atol=0.3)
    np.testing.assert_allclose(mv, [1.0, 0.25, 4.0], rtol=0.3)


def test_frozen_layer_runs_in_inference_mode():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 4))
    bn = BatchNormalization(trainable=False)
    bn(Input(shape=(4,)))
    gamma, beta, mm, mv = _set_random(bn, rng)
    got = _np(bn(x, training=True))
    np.testing.assert_allclose(
        got, gamma * (x - mm) / np.sqrt(mv + 1e-3) + beta, rtol=1e-5, atol=1e-6
    )
    assert not bn._updates
    assert not bn.trainable_weights and len(bn.non_trainable_weights) == 4


def test_no_center_no_scale():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(10, 3))
    bn = BatchNormalization(center=False, scale=False)
    out = _np(bn(x, training=True))
    np.testing.assert_allclose(
        out, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3), rtol=1e-4, atol=1e-5
    )
    out = _np(bn(x))
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-3), rtol=1e-5, atol=1e-6)


def test_several_axes():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3, 5))
    bn = BatchNormalization(axis=[1, 2])
    bn(x)
    assert [w.shape for w in bn.get_weights()] == [(1, 3, 5)] * 4
    out = _np(bn(x, training=True))
    np.testing.assert_allclose(
        out, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3), rtol=1e-4, atol=1e-5
    )


# -- gradients -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, axis", [((5, 3), -1), ((3, 2, 4, 2), 1)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("mode", ["core", "backend"])
def test_gradients_match_finite_differences(backend, shape, axis, training, mode):
    if mode == "backend" and getattr(backend, "value_and_grad", None) is None:
        pytest.skip(f"the {backend.name} backend has no differentiation of its own")
    rng = np.random.default_rng(6)
    x = rng.normal(size=shape)
    bn = BatchNormalization(axis=axis, dtype="float64")
    bn(x)
    _set_random(bn, rng)
    coeff = rng.normal(size=shape)
    B = K.current()
    trainable = bn.trainable_weights

    def fn(leaves):
        with autodiff.substitute(trainable, leaves[:-1]):
            out = bn(leaves[-1], training=training)
            return ops.sum(ops.multiply(out, B.asarray(coeff))), None

    params = [v.value for v in trainable] + [B.asarray(x)]
    if mode == "core":
        with autodiff.core_differentiation():
            _, _, grads = autodiff.value_and_grad(fn, params)
    else:
        _, _, grads = autodiff.value_and_grad(fn, params)
    grads = [_np(g) for g in grads]
    bn._updates.clear()

    def loss(gamma, beta, xv):
        saved = bn.get_weights()
        bn.set_weights([gamma, beta] + saved[2:])
        try:
            return float((_np(bn(xv, training=training)) * coeff).sum())
        finally:
            bn.set_weights(saved)

    base = bn.get_weights()[:2] + [x]
    eps = 1e-6
    for k, arr in enumerate(base):
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            plus = [a.copy() for a in base]
            minus = [a.copy() for a in base]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric[idx] = (loss(*plus) - loss(*minus)) / (2 * eps)
        np.testing.assert_allclose(
            grads[k], numeric, rtol=1e-5, atol=1e-7, err_msg=f"gradient of parameter {k}"
        )
    # the registered updates are plain arrays, detached from the tape
    bn._updates.clear()
    leaves = [autodiff.Traced(p) for p in params]
    fn(leaves)
    assert all(not autodiff.is_traced(v) for _, v in bn._updates)


# -- config, legacy names, errors ---------------------------------------------------------------
def test_config_round_trip():
    bn = BatchNormalization(
        axis=1,
        momentum=0.9,
        epsilon=1e-5,
        center=False,
        gamma_initializer="random_normal",
        name="bn_x",
    )
    bn(Input(shape=(3, 4, 4)))
    cfg = bn.get_config()
    assert cfg["axis"] == 1 and cfg["momentum"] == 0.9 and cfg["epsilon"] == 1e-5
    assert cfg["center"] is False and cfg["scale"] is True
    assert cfg["gamma_initializer"]["class_name"] == "RandomNormal"
    assert cfg["moving_variance_initializer"] == {"class_name": "Ones", "config": {}}
    cfg = json.loads(json.dumps(cfg))
    clone = BatchNormalization.from_config(cfg)
    assert clone.get_config() == cfg
    clone(Input(shape=(3, 4, 4)))
    assert [w.shape for w in clone.weights] == [w.shape for w in bn.weights]


def test_keras1_arguments():
    bn = BatchNormalization(mode=0, beta_init="one", gamma_init="zero", axis=1, input_shape=(3, 5))
    bn(Input(shape=(3, 5)))
    gamma, beta, _, _ = bn.get_weights()
    np.testing.assert_array_equal(gamma, np.zeros(3))
    np.testing.assert_array_equal(beta, np.ones(3))
    assert bn._batch_input_shape == (None, 3, 5)
    with pytest.raises(ValueError, match="mode=2 is not supported"):
        BatchNormalization(mode=2)
    BatchNormalization(fused=True, renorm=False, synchronized=False)
    with pytest.raises(ValueError, match="renorm"):
        BatchNormalization(renorm=True)
    with pytest.raises(TypeError, match="not understood: bogus"):
        BatchNormalization(bogus=1)


def test_errors():
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        BatchNormalization(axis=3)(Input(shape=(4,)))
    with pytest.raises(ValueError, match=r"Axis 1 .*defined dimension.*\(None, None, 3\)"):
        BatchNormalization(axis=1)(Input(shape=(None, 3)))
    bn = BatchNormalization(name="bn_e")
    bn(Input(shape=(4,)))
    with pytest.raises(ValueError, match=r"bn_e.*expected axis -1 .*size \(4,\).*\(None, 5\)"):
        bn(Input(shape=(5,)))
    with pytest.raises(ValueError, match=r"bn_e.*expected ndim=2, found ndim=3"):
        bn(Input(shape=(3, 4)))
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        BatchNormalization(epsilon=0)
    with pytest.raises(TypeError, match="axis must be an int"):
        BatchNormalization(axis="channels")


# -- against Keras 3 -------------------------------------------------------------------------
KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    data = dict(np.load(sys.argv[1]))
    cases = json.loads(open(sys.argv[2]).read())
    out = {}
    for name, kwargs in cases.items():
        x = data[name + "/x"]
        layer = keras.layers.BatchNormalization(**kwargs)
        layer.build(x.shape)
        layer.set_weights([data[f"{name}/w{i}"] for i in range(4)])
        out[name + "/infer"] = keras.ops.convert_to_numpy(layer(x, training=False))
        out[name + "/train"] = keras.ops.convert_to_numpy(layer(x, training=True))
        out[name + "/moving_mean"] = keras.ops.convert_to_numpy(layer.moving_mean)
        out[name + "/moving_variance"] = keras.ops.convert_to_numpy(layer.moving_variance)
    np.savez(sys.argv[3], **out)
""")

KERAS_CASES = {
    "dense": ((16, 5), {}),
    "dense_momentum": ((16, 5), {"momentum": 0.8, "epsilon": 1e-5}),
    "image_last": ((4, 3, 5, 6), {}),
    "image_first": ((4, 6, 3, 5), {"axis": 1}),
    "sequence_mid": ((4, 7, 3), {"axis": 1, "momentum": 0.5}),
}


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory):
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    if importlib.util.find_spec("torch") is None:
        pytest.skip("keras needs torch here (KERAS_BACKEND=torch) and torch is not installed")
    rng = np.random.default_rng(8)
    arrays, inputs = {}, {}
    for name, (shape, kwargs) in KERAS_CASES.items():
        x = rng.normal(loc=1.0, scale=2.0, size=shape).astype("float32")
        bn = BatchNormalization(**kwargs)
        bn(Input(shape=shape[1:]))
        weights = [w.astype("float32") for w in _set_random(bn, rng)]
        arrays[name + "/x"] = x
        for i, w in enumerate(weights):
            arrays[f"{name}/w{i}"] = w
        inputs[name] = (x, weights)
    folder = tmp_path_factory.mktemp("keras_bn")
    np.savez(folder / "in.npz", **arrays)
    (folder / "cases.json").write_text(json.dumps({k: v[1] for k, v in KERAS_CASES.items()}))
    (folder / "run.py").write_text(KERAS_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="torch")
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
        env=env,
        timeout=600,
    )
    if proc.returncode != 0:
        if "No module named" in proc.stderr:
            pytest.skip(f"keras cannot be imported here: {proc.stderr.strip().splitlines()[-1]}")
        raise AssertionError(f"the Keras script failed:\n{proc.stderr[-4000:]}")
    return inputs, dict(np.load(folder / "out.npz"))


@pytest.mark.parametrize("name", list(KERAS_CASES))
def test_matches_keras(backend, keras_results, name):
    inputs, results = keras_results
    shape, kwargs = KERAS_CASES[name]
    x, weights = inputs[name]
    bn = BatchNormalization(**kwargs)
    bn(Input(shape=shape[1:]))
    bn.set_weights(weights)
    np.testing.assert_allclose(
        _np(bn(x, training=False)), results[name + "/infer"], rtol=1e-4, atol=1e-5
    )
    bn._updates.clear()
    np.testing.assert_allclose(
        _np(bn(x, training=True)), results[name + "/train"], rtol=1e-4, atol=1e-5
    )
    updates = {id(v): _np(val) for v, val in bn._updates}
    np.testing.assert_allclose(
        updates[id(bn.moving_mean)], results[name + "/moving_mean"], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        updates[id(bn.moving_variance)], results[name + "/moving_variance"], rtol=1e-4, atol=1e-5
    )
