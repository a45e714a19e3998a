"""Keras 3's ``ops`` beyond the basics (issue 14): values against real Keras 3 (torch
backend) and NumPy on every usable backend, gradients against finite differences (the
core's tape) and against torch's autograd, symbolic use in a model that trains, saves and
loads, the Keras 2 spellings in ``K``, and clear errors for bad input."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras as keras
from polykeras import autodiff, layers, ops
from polykeras import backend as K
from helpers import backend_params, run_keras3_script, torch_unusable_reason

BACKENDS = backend_params()

RNG = np.random.default_rng(140)
INPUTS = {
    "x": RNG.normal(size=(3, 4, 5)).astype("float32"),
    "m": RNG.normal(size=(4, 5)).astype("float32"),
    "v": RNG.normal(size=(6,)).astype("float32"),
    "p": RNG.uniform(0.1, 3.0, size=(4, 5)).astype("float32"),
    "small": (RNG.normal(size=(7,)) * 1e-6).astype("float32"),
    "idx": np.array([[0, -1], [2, 1]], dtype="int64"),
    "order": np.argsort(RNG.normal(size=(3, 2, 5)), axis=1).astype("int64"),
    "labels": np.array([0, 4, 2, 3], dtype="int64"),
    "segments": np.array([0, 0, 2, 1], dtype="int64"),
    "ints": np.array([[0, 3, 0], [1, 0, 2]], dtype="int32"),
    "special": np.array([1.0, np.nan, np.inf, -np.inf, -2.0], dtype="float32"),
    "dup": np.array([3.0, 1.0, 3.0, 2.0, 1.0], dtype="float32"),
}

# name -> an expression over ``ops``, ``np`` and INPUTS; the same text runs with Keras 3's
# ``keras.ops`` in the reference script, so each case is also a check that the call reads
# the same in both
CASES = {
    "take_axis1": "ops.take(x, idx, axis=1)",
    "take_axis_last": "ops.take(x, idx, axis=-1)",
    # (Keras 3's torch backend wraps a negative index of a flattened take by the size of
    # axis 0; NumPy, and polykeras, by the flattened size: see NUMPY_ONLY)
    "take_flat": "ops.take(x, idx * idx, axis=None)",
    "take_1d": "ops.take(v, idx)",
    "take_default_flattens": "ops.take(x, idx * idx)",
    "take_along_axis": "ops.take_along_axis(x[:, :2], order, axis=1)",
    "take_along_axis_bcast": "ops.take_along_axis(m, labels[:, None], axis=1)",
    "einsum_matmul": "ops.einsum('bij,kj->bik', x, m)",
    "einsum_ellipsis": "ops.einsum('...ij,...kj->...ik', x, x)",
    "einsum_reduce": "ops.einsum('bij->bj', x)",
    "einsum_three": "ops.einsum('ij,jk,kl->il', m, ops.transpose(m), m)",
    "einsum_implicit": "ops.einsum('ij,kj', m, m)",
    "einsum_outer": "ops.einsum('i,j->ij', v, v)",
    "einsum_batch_bcast": "ops.einsum('bij,bjk->bik', x, ops.transpose(x, (0, 2, 1)))",
    "linspace": "ops.linspace(-1.0, 2.0, 7)",
    "linspace_open": "ops.linspace(0.0, 1.0, 4, endpoint=False)",
    "cumsum": "ops.cumsum(x, axis=1)",
    "cumsum_flat": "ops.cumsum(m)",
    "cumprod": "ops.cumprod(m, axis=-1)",
    "top_k_values": "ops.top_k(m, 3)[0]",
    "top_k_indices": "ops.top_k(m, 3)[1]",
    "norm": "ops.norm(x)",
    "norm_axis": "ops.norm(x, axis=-1, keepdims=True)",
    "norm_l1": "ops.norm(x, ord=1, axis=1)",
    "norm_inf": "ops.norm(v, ord=np.inf)",
    "norm_matrix_1": "ops.norm(m, ord=1)",
    "norm_matrix_inf": "ops.norm(m, ord=np.inf)",
    "norm_fro": "ops.norm(x, ord='fro', axis=(1, 2))",
    "split_equal": "ops.split(x, 2, axis=1)[1]",
    "split_points": "ops.split(x, [1, 3], axis=-1)[2]",
    "pad_constant": "ops.pad(m, ((1, 2), (0, 3)), constant_values=2.5)",
    "pad_reflect": "ops.pad(m, ((3, 3), (4, 4)), mode='reflect')",
    "slice": "ops.slice(x, (1, 0, 2), (2, 3, 2))",
    "erf": "ops.erf(m * 2)",
    "log1p": "ops.log1p(p)",
    "log1p_small": "ops.log1p(small)",
    "expm1": "ops.expm1(m)",
    "expm1_small": "ops.expm1(small)",
    "log2": "ops.log2(p)",
    "log10": "ops.log10(p)",
    "sin": "ops.sin(m)",
    "cos": "ops.cos(m)",
    "any": "ops.any(m > 1.0, axis=1)",
    "all": "ops.all(m > -1.5, axis=0, keepdims=True)",
    "sort": "ops.sort(x, axis=1)",
    "argsort": "ops.argsort(m, axis=-1)",
    "unique": "ops.unique(dup)",
    "tril": "ops.tril(x, -1)",
    "triu": "ops.triu(m, 1)",
    "diag_make": "ops.diag(v, 1)",
    "diag_take": "ops.diag(m, -1)",
    "outer": "ops.outer(v, m[0])",
    "flip": "ops.flip(x, axis=(0, 2))",
    "roll": "ops.roll(x, 2, axis=1)",
    "roll_flat": "ops.roll(m, -3)",
    "moveaxis": "ops.moveaxis(x, 0, -1)",
    "swapaxes": "ops.swapaxes(x, 0, 2)",
    "isnan": "ops.isnan(special)",
    "isfinite": "ops.isfinite(special)",
    "isinf": "ops.isinf(special)",
    "nan_to_num": "ops.nan_to_num(special, nan=0.5, posinf=9.0, neginf=-9.0)",
    "count_nonzero": "ops.count_nonzero(ints, axis=0)",
    "segment_sum": "ops.segment_sum(m, segments, num_segments=3)",
    "in_top_k": "ops.in_top_k(labels, m, 2)",
    "median": "ops.median(m, axis=1)",
    "logsumexp": "ops.logsumexp(x, axis=(1, 2))",
    "log_softmax_axis": "ops.log_softmax(x, axis=1)",
    "softmax_axis": "ops.softmax(x, axis=0)",
    "one_hot": "ops.one_hot(labels, 5)",
    "silu": "ops.silu(m)",
    "leaky_relu": "ops.leaky_relu(m, negative_slope=0.1)",
    "var": "ops.var(x, axis=(0, 2))",
    "std": "ops.std(m, axis=1)",
    "full_like": "ops.full_like(m, 3.0)",
    "moments_mean": "ops.moments(x, axes=[0, 1])[0]",
    "moments_var": "ops.moments(x, axes=[0, 1])[1]",
    "rsqrt": "ops.rsqrt(p)",
    "cond": "ops.cond(ops.sum(m) > 100.0, lambda: m * 2.0, lambda: m - 1.0)",
    "unstack": "ops.unstack(ops.convert_to_tensor(m), axis=1)[3]",
    "scatter": "ops.scatter(np.array([[0, 1], [3, 4], [0, 1]]), v[:3], (4, 5))",
    "scatter_rows": "ops.scatter(np.array([[2], [0]]), m[:2], (3, 5))",
    "scatter_update": "ops.scatter_update(m, np.array([[0, 1], [3, 4]]), v[:2])",
    "scatter_update_add": "ops.scatter_update(m, np.array([[0, 1], [0, 1]]), v[:2], 'add')",
    "slice_update": "ops.slice_update(x, (1, 2, 0), ops.ones((2, 2, 5)))",
    "tensordot": "ops.tensordot(x, ops.transpose(x, (2, 1, 0)), axes=([1, 2], [1, 0]))",
    "tensordot_int": "ops.tensordot(m, ops.transpose(m), axes=1)",
    "prod": "ops.prod(x, axis=(0, 2), keepdims=True)",
    "prod_all": "ops.prod(p)",
    "average": "ops.average(x, axis=-1, weights=np.array([1.0, 2.0, 3.0, 4.0, 5.0]))",
}

KERAS3_OPS = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np, keras
    from keras import ops
    d = dict(np.load(sys.argv[1], allow_pickle=True))
    cases = d.pop("__cases__").item()
    out = {}
    for name, expr in cases.items():
        try:
            out[name] = ops.convert_to_numpy(eval(expr, {"ops": ops, "np": np, **d}))
        except Exception as err:  # a case Keras cannot run is reported, not fatal
            out["error:" + name] = np.array(f"{type(err).__name__}: {err}")
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def keras3_values(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ops_coverage")
    return run_keras3_script(
        folder, KERAS3_OPS, {**INPUTS, "__cases__": np.array(CASES, dtype=object)}
    )


def _ours(name: str):
    value = eval(CASES[name], {"ops": ops, "np": np, **INPUTS})
    return ops.convert_to_numpy(value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ops_match_keras3(backend, keras3_values):
    errors = {k: str(v) for k, v in keras3_values.items() if k.startswith("error:")}
    assert errors == {}, f"Keras 3 could not run some cases: {errors}"
    with keras.use_backend(backend):
        for name in CASES:
            got, want = _ours(name), keras3_values[name]
            assert got.shape == want.shape, f"{name}: shape {got.shape}, Keras {want.shape}"
            if want.dtype == bool:
                assert got.dtype == bool, f"{name}: dtype {got.dtype}, Keras bool"
            np.testing.assert_allclose(
                got.astype("float64"), want.astype("float64"), rtol=1e-5, atol=1e-6, err_msg=name
            )


NUMPY_ONLY = {
    # what Keras 3's torch backend does differently from NumPy, or does not have
    "pad_symmetric": ("ops.pad(m, 2, mode='symmetric')", lambda d: np.pad(d["m"], 2, "symmetric")),
    "pad_symmetric_full": (
        "ops.pad(m, ((4, 4), (5, 5)), mode='symmetric')",
        lambda d: np.pad(d["m"], ((4, 4), (5, 5)), "symmetric"),
    ),
    "pad_reflect_full": (
        "ops.pad(v, (5, 5), mode='reflect')",
        lambda d: np.pad(d["v"], (5, 5), "reflect"),
    ),
    "norm_p3": ("ops.norm(m, ord=3, axis=0)", lambda d: np.linalg.norm(d["m"], ord=3, axis=0)),
    "linspace_arrays": (
        "ops.linspace(m[0], m[1], 4, axis=1)",
        lambda d: np.linspace(d["m"][0], d["m"][1], 4, axis=1),
    ),
    "diag_make_low": ("ops.diag(v, -2)", lambda d: np.diag(d["v"], -2)),
    "median_all": ("ops.median(x)", lambda d: np.median(d["x"])),
    "unique_counts": (
        "ops.unique(dup, return_counts=True)[1]",
        lambda d: np.unique(d["dup"], return_counts=True)[1],
    ),
    "argsort_stable": ("ops.argsort(dup)", lambda d: np.argsort(d["dup"], kind="stable")),
    "average_middle_axis": (  # Keras 3's torch backend fails on 1-D weights of a middle axis
        "ops.average(x, axis=1, weights=np.array([1.0, 2.0, 3.0, 4.0]))",
        lambda d: np.average(d["x"], axis=1, weights=[1.0, 2.0, 3.0, 4.0]),
    ),
    "average_all": (  # Keras 3's torch backend averages only the last axis here
        "ops.average(m, weights=p)",
        lambda d: np.average(d["m"], weights=d["p"]),
    ),
    "take_flat_negative": ("ops.take(x, idx, axis=None)", lambda d: np.take(d["x"], d["idx"])),
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_ops_match_numpy(backend):
    with keras.use_backend(backend):
        for name, (expr, want) in NUMPY_ONLY.items():
            got = ops.convert_to_numpy(eval(expr, {"ops": ops, "np": np, **INPUTS}))
            np.testing.assert_allclose(got, want(INPUTS), rtol=1e-5, atol=1e-6, err_msg=name)


def test_the_core_composition_serves_a_backend_without_the_optional_kernels(monkeypatch):
    """A backend that lacks erf, log1p, expm1, sin, cos, cumsum, cumprod and argsort (a
    third-party one) gets the core's composed versions, with the same numbers."""
    from polykeras import backend as backend_module
    from polykeras import contract

    with keras.use_backend("numpy"):
        full = backend_module.current()
        wanted = {name: _ours(name) for name in CASES}

    class Bare:
        def __getattr__(self, name):
            if name in contract.OPTIONAL:
                raise AttributeError(name)
            return getattr(full, name)

    monkeypatch.setitem(backend_module._loaded, "bare-for-test", Bare())
    token = backend_module._blocks.set(("bare-for-test",))
    try:
        assert getattr(backend_module.current(), "log1p", None) is None
        for name, want in wanted.items():
            np.testing.assert_allclose(
                _ours(name), want, rtol=2e-6, atol=2e-7, err_msg=f"{name} without the kernels"
            )
    finally:
        backend_module._blocks.reset(token)


# -- gradients ----------------------------------------------------------------------------------
GRAD_CASES = {
    "erf": (ops.erf, (3, 4)),
    "log1p": (lambda a: ops.log1p(ops.abs(a)), (3, 4)),
    "expm1": (ops.expm1, (3, 4)),
    "sin_cos": (lambda a: ops.sin(a) * ops.cos(2.0 * a), (3, 4)),
    "cumsum": (lambda a: ops.cumsum(a, axis=1) ** 2, (3, 5)),
    "cumsum_flat": (lambda a: ops.cumsum(a) ** 2, (3, 5)),
    "cumprod": (lambda a: ops.cumprod(a, axis=-1), (3, 6)),
    "take_axis": (lambda a: ops.take(a, np.array([[0, -1], [2, 2]]), axis=1) ** 2, (2, 4, 3)),
    "take_along_axis": (
        lambda a: ops.take_along_axis(a, np.array([[[0], [2]], [[1], [1]]]), axis=2) ** 2,
        (2, 2, 4),
    ),
    "sort": (lambda a: ops.multiply(ops.sort(a, axis=0), np.arange(1.0, 4.0)[:, None]), (3, 4)),
    "top_k": (lambda a: ops.multiply(ops.top_k(a, 2)[0], np.array([1.0, 3.0])), (3, 5)),
    "median": (lambda a: ops.multiply(ops.median(a, axis=1), np.arange(1.0, 4.0)), (3, 5)),
    "norm_vector": (lambda a: ops.norm(a, axis=1), (3, 4)),
    "norm_p": (lambda a: ops.norm(a, ord=3, axis=0), (3, 4)),
    "norm_matrix_1": (lambda a: ops.norm(a, ord=1), (3, 4)),
    "norm_fro": (lambda a: ops.norm(a, ord="fro", axis=(0, 1)), (3, 4)),
    "pad_constant": (lambda a: ops.pad(a, ((1, 0), (2, 1)), constant_values=1.0) ** 2, (3, 4)),
    "pad_reflect": (lambda a: ops.pad(a, ((2, 1), (3, 3)), mode="reflect") ** 2, (3, 4)),
    "pad_symmetric": (lambda a: ops.pad(a, ((3, 3), (1, 4)), mode="symmetric") ** 2, (3, 4)),
    "slice": (lambda a: ops.slice(a, (1, 1), (2, 2)) ** 2, (3, 4)),
    "split": (lambda a: ops.split(a, [1], axis=1)[1] ** 2 + 1.0, (3, 4)),
    "einsum": (lambda a: ops.einsum("ij,kj->ik", a, a * a), (3, 4)),
    "einsum_batch": (lambda a: ops.einsum("bij,bkj->bki", a, a + 1.0), (2, 3, 4)),
    "tril_triu": (lambda a: ops.tril(a, 1) * 2.0 + ops.triu(a) ** 2, (3, 4)),
    "diag": (lambda a: ops.diag(ops.diag(a, 1), -1) ** 2, (3, 4)),
    "outer": (lambda a: ops.outer(a[0], a[1] ** 2), (2, 3)),
    "flip_roll": (lambda a: ops.flip(a, axis=0) * ops.roll(a, 1, axis=1) ** 2, (3, 4)),
    "moveaxis": (
        lambda a: ops.multiply(ops.moveaxis(a, 0, 2), np.arange(24.0).reshape(3, 4, 2)),
        (2, 3, 4),
    ),
    "nan_to_num": (lambda a: ops.nan_to_num(a) ** 2, (3, 4)),
    "segment_sum": (lambda a: ops.segment_sum(a, np.array([1, 0, 1])) ** 2, (3, 4)),
    "log2_log10": (lambda a: ops.log2(ops.abs(a) + 1.0) + ops.log10(ops.abs(a) + 2.0), (3, 4)),
    "moments": (
        lambda a: ops.moments(a, axes=[1])[1] * 3.0 + ops.sum(ops.moments(a, axes=0)[0]),
        (3, 4),
    ),
    "linspace": (lambda a: ops.linspace(a[0], a[1], 5) ** 2, (2, 3)),
    "scatter": (lambda a: ops.scatter(np.array([[1, 0], [1, 0], [0, 2]]), a, (2, 3)) ** 2, (3,)),
    "scatter_update": (
        lambda a: ops.scatter_update(a, np.array([[0, 1], [2, 3], [0, 1]]), a[1, :3] * 2.0) ** 2,
        (3, 4),
    ),
    "slice_update": (lambda a: ops.slice_update(a, (1, 1), a[:2, :2] * 3.0) ** 2, (3, 4)),
    "tensordot": (lambda a: ops.tensordot(a, a * a, axes=([0], [0])), (3, 4)),
    "average": (lambda a: ops.average(a, axis=0, weights=np.array([1.0, 2.0, 5.0])), (3, 4)),
    "prod": (lambda a: ops.prod(a, axis=(0, 2)), (3, 2, 3)),
}


def _finite_difference(fn, x, weights, eps=1e-6):
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        f_up = float(np.sum(ops.convert_to_numpy(fn(up)) * weights))
        f_down = float(np.sum(ops.convert_to_numpy(fn(down)) * weights))
        numeric[i] = (f_up - f_down) / (2 * eps)
    return numeric


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_core_gradients_match_finite_differences(name):
    fn, shape = GRAD_CASES[name]
    x = np.random.default_rng(abs(hash(name)) % 1000).normal(size=shape)
    with keras.use_backend("numpy"):
        weights = np.random.default_rng(3).normal(size=ops.convert_to_numpy(fn(x)).shape)

        def loss(leaves):
            return ops.sum(ops.multiply(fn(leaves[0]), weights)), None

        _, _, (g,) = autodiff.value_and_grad(loss, [x])
        np.testing.assert_allclose(
            np.asarray(g), _finite_difference(fn, x, weights), rtol=1e-5, atol=1e-7, err_msg=name
        )


@pytest.mark.skipif(torch_unusable_reason() is not None, reason=str(torch_unusable_reason()))
@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_torch_autograd_and_core_tape_agree(name):
    fn, shape = GRAD_CASES[name]
    x = np.random.default_rng(abs(hash(name)) % 1000).normal(size=shape)
    with keras.use_backend("torch"):
        B = keras.backend.current()
        weights = np.random.default_rng(3).normal(size=ops.convert_to_numpy(fn(x)).shape)

        def loss(leaves):
            return ops.sum(ops.multiply(fn(leaves[0]), B.asarray(weights))), None

        _, _, (by_torch,) = autodiff.value_and_grad(loss, [B.asarray(x)])
        with autodiff.core_differentiation():
            _, _, (by_core,) = autodiff.value_and_grad(loss, [B.asarray(x)])
        np.testing.assert_allclose(
            B.to_numpy(by_torch), B.to_numpy(by_core), rtol=1e-6, atol=1e-9, err_msg=name
        )


def test_prod_is_exact_and_its_gradient_flows_past_a_zero_factor():
    with keras.use_backend("numpy"):
        x = np.array([[2.0, 0.0, 3.0], [1.0, -2.0, 4.0]])
        leaf = autodiff.Traced(x)
        (g,) = autodiff.gradients(ops.sum(ops.prod(leaf, axis=1)), [leaf])
        np.testing.assert_array_equal(np.asarray(g), [[0.0, 6.0, 0.0], [-8.0, 4.0, -2.0]])
        big = np.arange(1, 21, dtype="int64")
        assert int(ops.convert_to_numpy(ops.prod(big))) == int(np.prod(big))  # 20!, exactly


def test_integer_valued_ops_give_no_gradient_path():
    with keras.use_backend("numpy"):
        leaf = autodiff.Traced(np.array([[3.0, 1.0, 2.0]]))
        for out in (
            ops.argsort(leaf),
            ops.top_k(leaf, 2)[1],
            ops.in_top_k(np.array([0]), leaf, 1),
            ops.count_nonzero(leaf),
            ops.any(leaf),
            ops.isnan(leaf),
        ):
            assert not autodiff.is_traced(out)
        with pytest.raises(ValueError, match="stop_gradient"):
            ops.unique(leaf)
        values = ops.top_k(leaf, 2)[0]
        (g,) = autodiff.gradients(ops.sum(values * np.array([1.0, 10.0])), [leaf])
        np.testing.assert_allclose(np.asarray(g), [[1.0, 0.0, 10.0]])


# -- symbolic use -------------------------------------------------------------------------------
class OpsBlock(layers.Layer):
    """A custom layer computing with several of the new ops on a weight."""

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(input_shape[-1], 4))

    def call(self, x):
        h = ops.einsum("bi,ij->bj", x, self.w)
        h = ops.cumsum(h, axis=-1) + ops.erf(h) - ops.log1p(ops.abs(h))
        top, _ = ops.top_k(h, 2)
        return ops.concatenate([ops.sort(h, axis=-1), top, ops.norm(h, axis=-1, keepdims=True)], -1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 7)


def _symbolic_model():
    inp = keras.Input((6,))
    h = layers.Dense(6)(inp)
    a = ops.take(h, np.array([5, 0, -2]), axis=1)
    b = ops.pad(ops.slice(h, (0, 1), (-1, 3)), ((0, 0), (1, 1)), mode="reflect")
    first, second = ops.split(h, 2, axis=-1)
    c = ops.expm1(ops.cumprod(first * 0.5, axis=-1)) + ops.flip(second, axis=1)
    d = ops.einsum("bi,bj->bij", first, second)
    d = ops.reshape(ops.tril(d), (-1, 9))
    values, indices = ops.top_k(h, 2)
    e = ops.take_along_axis(h, indices, axis=-1) + values
    f = (
        ops.cast(ops.any(h > 1.0, axis=-1, keepdims=True), "float32")
        + ops.norm(h, axis=-1)[:, None]
    )
    g = OpsBlock()(h)
    out = ops.concatenate([a, b, c, d, e, f, g, ops.sin(a) * ops.cos(a)], axis=-1)
    return keras.Model(inp, layers.Dense(2)(out))


@pytest.mark.parametrize("backend", BACKENDS)
def test_ops_on_symbolic_tensors_build_train_save_and_load(backend, tmp_path):
    x = RNG.normal(size=(10, 6)).astype("float32")
    y = RNG.normal(size=(10, 2)).astype("float32")
    with keras.use_backend(backend):
        keras.utils.set_random_seed(5)
        model = _symbolic_model()
        assert model.output_shape == (None, 2)
        before = model.predict(x, verbose=0)
        assert np.all(np.isfinite(before))
        config = json.loads(model.to_json())
        named = {
            e["config"]["op"] for e in config["config"]["layers"] if e["class_name"] == "OpLayer"
        }
        assert {"take", "pad", "slice", "einsum", "cumprod", "expm1", "tril", "any"} <= named
        assert {"take_along_axis", "argsort", "norm", "flip", "sin", "cos"} <= named
        again = keras.models.model_from_json(model.to_json(), custom_objects={"OpsBlock": OpsBlock})
        again.set_weights(model.get_weights())
        np.testing.assert_allclose(again.predict(x, verbose=0), before, rtol=1e-5, atol=1e-6)
        path = str(tmp_path / "ops.h5")
        model.save(path)
        loaded = keras.models.load_model(path, custom_objects={"OpsBlock": OpsBlock})
        np.testing.assert_allclose(loaded.predict(x, verbose=0), before, rtol=1e-5, atol=1e-6)
        model.compile(keras.optimizers.SGD(0.01), "mse")
        loss = model.fit(x, y, epochs=4, batch_size=5, verbose=0).history["loss"]
        assert np.all(np.isfinite(loss)) and loss[-1] < loss[0]


def test_the_same_model_agrees_on_numpy_and_torch():
    if torch_unusable_reason() is not None:
        pytest.skip(str(torch_unusable_reason()))
    x = RNG.normal(size=(8, 6)).astype("float32")
    outputs = []
    for backend in ("numpy", "torch"):
        with keras.use_backend(backend):
            keras.utils.set_random_seed(6)
            outputs.append(_symbolic_model().predict(x, verbose=0))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)


def test_eager_only_ops_refuse_symbolic_tensors():
    inp = keras.Input((3,))
    with pytest.raises(ValueError, match="unique: .*graph"):
        ops.unique(inp)
    with pytest.raises(ValueError, match="cond: the predicate is a symbolic tensor"):
        ops.cond(ops.sum(inp) > 0, lambda: inp, lambda: -inp)


# -- K: Keras 2's spellings -------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_keras2_backend_spellings(backend):
    x = INPUTS["m"]
    seq = INPUTS["x"]
    img = RNG.normal(size=(2, 3, 4, 2)).astype("float32")
    with keras.use_backend(backend):
        cases = {
            "cumsum": (K.cumsum(x), np.cumsum(x, 0)),
            "cumprod": (K.cumprod(x, axis=1), np.cumprod(x, 1)),
            "any": (K.any(x > 1.5, axis=1), (x > 1.5).any(1)),
            "all": (K.all(x > -3.0), (x > -3.0).all()),
            "logsumexp": (K.logsumexp(x, axis=1), np.log(np.exp(x).sum(1))),
            "in_top_k": (K.in_top_k(x, np.array([0, 1, 2, 3]), 2), _in_top_k(x, [0, 1, 2, 3], 2)),
            "reverse": (K.reverse(seq, axes=(1, 2)), seq[:, ::-1, ::-1]),
            "sin": (K.sin(x), np.sin(x)),
            "cos": (K.cos(x), np.cos(x)),
            "arange": (K.arange(2, 8, 2), np.arange(2, 8, 2)),
            "slice": (K.slice(seq, (0, 1, 2), (2, 2, 3)), seq[:2, 1:3, 2:5]),
            "temporal_padding": (
                K.temporal_padding(seq, (1, 2)),
                np.pad(seq, ((0, 0), (1, 2), (0, 0))),
            ),
            "spatial_2d_padding": (
                K.spatial_2d_padding(img, ((1, 0), (2, 1))),
                np.pad(img, ((0, 0), (1, 0), (2, 1), (0, 0))),
            ),
            "spatial_2d_padding_first": (
                K.spatial_2d_padding(img, ((1, 1), (0, 2)), data_format="channels_first"),
                np.pad(img, ((0, 0), (0, 0), (1, 1), (0, 2))),
            ),
            "spatial_3d_padding": (
                K.spatial_3d_padding(img[..., None]),
                np.pad(img[..., None], ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0))),
            ),
            "gather": (K.gather(x, np.array([3, 0])), x[[3, 0]]),
        }
        for key, (got, want) in cases.items():
            np.testing.assert_allclose(K.eval(got), want, rtol=1e-5, atol=1e-6, err_msg=key)
        assert K.cast_to_floatx([1, 2]).dtype == np.float32
    inp = keras.Input((4, 5))
    out = K.temporal_padding(K.cumsum(inp, axis=1), (1, 1))
    assert K.int_shape(out) == (None, 6, 5)


def _in_top_k(pred, targets, k):
    return np.array([(row > row[t]).sum() < k for row, t in zip(pred, targets)])


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: ops.take(INPUTS["x"], np.array([0]), axis=3), ValueError, "take: axis 3"),
        (lambda: ops.take(INPUTS["x"], np.array([7]), axis=1), IndexError, r"\[-4, 4\)"),
        (lambda: ops.take(INPUTS["x"], np.array([0.5]), axis=1), TypeError, "integers"),
        (
            lambda: ops.take_along_axis(INPUTS["m"], np.array([0, 1]), axis=1),
            ValueError,
            "as many dimensions",
        ),
        (
            lambda: ops.einsum("ij,jk->ik", INPUTS["m"], INPUTS["m"]),
            ValueError,
            "dimension 'j' .* size 5 in one operand and 4",
        ),
        (lambda: ops.einsum("ijk->i", INPUTS["m"]), ValueError, "term 'ijk'"),
        (lambda: ops.einsum("ij,j->i", INPUTS["m"]), ValueError, "2 operand"),
        (lambda: ops.einsum("ii->i", INPUTS["m"][:4, :4]), ValueError, "diagonal"),
        (lambda: ops.einsum("ij->iz", INPUTS["m"]), ValueError, "output 'iz'"),
        (lambda: ops.pad(INPUTS["m"], ((1, 1),) * 3), ValueError, "3 such pairs|2 such pairs"),
        (lambda: ops.pad(INPUTS["m"], -1), ValueError, "negative"),
        (lambda: ops.pad(INPUTS["m"], 4, mode="reflect"), ValueError, "at most 3"),
        (lambda: ops.pad(INPUTS["m"], 1, mode="wrap"), ValueError, "mode 'wrap'"),
        (
            lambda: ops.pad(INPUTS["m"], 1, mode="reflect", constant_values=1),
            ValueError,
            "constant_values",
        ),
        (lambda: ops.split(INPUTS["m"], 3, axis=1), ValueError, "do not divide axis 1 of size 5"),
        (lambda: ops.slice(INPUTS["m"], (0, 3), (2, 3)), ValueError, "on axis 1"),
        (lambda: ops.slice(INPUTS["m"], (0,), (2,)), ValueError, "one entry per dimension"),
        (lambda: ops.top_k(INPUTS["m"], 6), ValueError, "k=6 is larger"),
        (lambda: ops.top_k(INPUTS["m"], 0), ValueError, "positive int"),
        (lambda: ops.norm(INPUTS["m"], ord=2), ValueError, "singular values"),
        (lambda: ops.norm(INPUTS["x"], ord=1), ValueError, "1-D or 2-D"),
        (lambda: ops.cumsum(INPUTS["m"], axis=2), ValueError, "cumsum: axis 2"),
        (lambda: ops.sort(INPUTS["m"], axis=-3), ValueError, "sort: axis -3"),
        (lambda: ops.tril(INPUTS["v"]), ValueError, "at least 2 dimensions"),
        (lambda: ops.diag(INPUTS["x"]), ValueError, "1-D or 2-D"),
        (lambda: ops.segment_sum(INPUTS["m"], np.array([0, 1, 2, 5]), 3), ValueError, r"\[0, 3\)"),
        (lambda: ops.cond(np.array([True, False]), lambda: 1, lambda: 2), ValueError, "single"),
        (lambda: ops.unique(INPUTS["v"], size=3), ValueError, "size="),
        (lambda: ops.moveaxis(INPUTS["x"], (0, 1), 2), ValueError, "as many axes"),
        (lambda: ops.linspace(0.0, 1.0, -1), ValueError, "non-negative"),
        (lambda: ops.scatter(np.array([[0, 5]]), np.ones(1), (2, 3)), IndexError, "out of range"),
        (
            lambda: ops.scatter(np.array([[0, 1]]), np.ones(2), (2, 3)),
            ValueError,
            "expected values",
        ),
        (
            lambda: ops.scatter_update(INPUTS["m"], np.array([[0, 1]]), np.ones(1), "max"),
            ValueError,
            "reduction='max'",
        ),
        (lambda: ops.slice_update(INPUTS["m"], (3, 0), np.ones((2, 2))), ValueError, "do not fit"),
        (lambda: ops.tensordot(INPUTS["m"], INPUTS["m"], 1), ValueError, "equal size"),
        (lambda: K.spatial_2d_padding(np.ones((1, 2, 2, 1)), ((1, 1),)), ValueError, "2 \\(before"),
    ],
)
def test_bad_input_is_named(call, error, match):
    with keras.use_backend("numpy"):
        with pytest.raises(error, match=match):
            call()


def test_any_all_and_slice_do_not_shadow_the_builtins():
    import polykeras.backend_api as backend_api

    assert ops.any is not any and ops.all is not all and ops.slice is not slice
    assert "any" not in vars(ops) and "slice" not in vars(backend_api)
    assert K.any is ops.any and K.all is ops.all and K.slice is ops.slice  # ops' own
    with pytest.raises(AttributeError, match="no attribute 'not_an_op'"):
        ops.not_an_op  # noqa: B018
