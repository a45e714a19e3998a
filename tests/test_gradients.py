"""Every differentiable primitive's VJP against central finite differences (float64, NumPy)."""

from __future__ import annotations

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, ops

RNG = np.random.default_rng(1234)


def _r(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, size=shape)


def _pos(*shape):
    return RNG.uniform(0.5, 2.0, size=shape)


def _away_from_zero(*shape):
    x = RNG.uniform(0.2, 1.0, size=shape)
    return x * RNG.choice([-1.0, 1.0], size=shape)


# name -> (function of the differentiable inputs, list of inputs)
CASES = {
    "neg": (ops.neg, [_r(3, 4)]),
    "exp": (ops.exp, [_r(3, 4)]),
    "log": (ops.log, [_pos(3, 4)]),
    "tanh": (ops.tanh, [_r(3, 4)]),
    "sigmoid": (ops.sigmoid, [_r(3, 4, low=-4, high=4)]),
    "relu": (ops.relu, [_away_from_zero(3, 4)]),
    "sqrt": (ops.sqrt, [_pos(3, 4)]),
    "abs": (ops.abs, [_away_from_zero(3, 4)]),
    "square": (ops.square, [_r(3, 4)]),
    "softplus": (ops.softplus, [_r(3, 4, low=-3, high=3)]),
    # crossentropy from logits (issue 21): targets and logits both differentiated
    "softmax_crossentropy": (ops.softmax_crossentropy, [_pos(3, 4), _r(3, 4, low=-3, high=3)]),
    "sigmoid_crossentropy": (ops.sigmoid_crossentropy, [_r(3, 4), _r(3, 4, low=-4, high=4)]),
    # sparse crossentropy without one-hot targets (issue 21): integer labels, not differentiated
    "sparse_softmax_crossentropy": (
        lambda x: ops.sparse_softmax_crossentropy(np.array([[1, 0], [3, 3], [2, 0]]), x),
        [_r(3, 2, 4, low=-3, high=3)],
    ),
    "take_along_last": (
        lambda x: ops.take_along_last(x, np.array([[0, 2, 1], [3, 3, 0]])),
        [_r(2, 3, 4)],
    ),
    "add": (ops.add, [_r(3, 4), _r(4)]),
    "subtract": (ops.subtract, [_r(3, 1), _r(1, 4)]),
    "multiply": (ops.multiply, [_r(2, 3, 4), _r(3, 1)]),
    "divide": (ops.divide, [_r(3, 4), _pos(3, 4)]),
    "maximum": (ops.maximum, [_r(3, 4), _r(3, 4) + 0.05]),
    "minimum": (ops.minimum, [_r(3, 4), _r(3, 4) + 0.05]),
    "power": (ops.power, [_pos(3, 4), _r(3, 4)]),
    "where": (
        lambda a, b: ops.where(np.arange(12).reshape(3, 4) % 2 == 0, a, b),
        [_r(3, 4), _r(3, 4)],
    ),
    "clip": (lambda x: ops.clip(x, -0.5, 0.5), [_away_from_zero(3, 4) * 0.9]),
    "cast": (lambda x: ops.cast(x, "float64"), [_r(3, 4)]),
    "sum": (lambda x: ops.sum(x, axis=1, keepdims=False), [_r(3, 4, 2)]),
    "max": (lambda x: ops.max(x, axis=(0, 2), keepdims=True), [_r(3, 4, 2)]),
    "matmul": (ops.matmul, [_r(2, 3, 4), _r(4, 5)]),
    "reshape": (lambda x: ops.reshape(x, (6, 2)), [_r(3, 4)]),
    "transpose": (lambda x: ops.transpose(x, (2, 0, 1)), [_r(2, 3, 4)]),
    "concatenate": (lambda a, b: ops.concatenate([a, b], axis=1), [_r(2, 3), _r(2, 5)]),
    "getitem": (lambda x: ops.getitem(x, (slice(None), 1, slice(0, 3, 2))), [_r(2, 3, 4)]),
    "scatter_slice": (
        lambda v: ops.scatter_slice((3, 4), (slice(1, 3), slice(None)), v),
        [_r(2, 4)],
    ),
    "broadcast_to": (lambda x: ops.broadcast_to(x, (3, 2, 4)), [_r(2, 1)]),
    "take": (lambda x: ops.take(x, np.array([[0, 2], [2, 3]])), [_r(5, 3)]),
    "scatter_add": (lambda u: ops.scatter_add((5, 3), np.array([1, 4, 1]), u), [_r(3, 3)]),
    "softmax": (lambda x: ops.softmax(x, axis=-1), [_r(3, 5)]),
    "attention_weights": (
        lambda q, k, b: ops.attention_weights(q, k, b, scale=0.7),
        [_r(2, 3, 4, 3), _r(2, 3, 5, 3), _r(2, 1, 4, 5)],
    ),
    "attention_weights-no-bias": (
        lambda q, k: ops.attention_weights(q, k, None),
        [_r(2, 4, 3), _r(2, 5, 3)],
    ),
    "layer_norm": (
        lambda x, g, b: ops.layer_norm(x, g, b, num_axes=1, epsilon=1e-3),
        [_r(3, 5), _r(5), _r(5)],
    ),
    "layer_norm-two-axes-no-beta": (
        lambda x, g: ops.layer_norm(x, g, None, num_axes=2, epsilon=1e-3),
        [_r(2, 3, 4), _r(3, 4)],
    ),
    # keras.ops' optional-kernel primitives (issue 14)
    "erf": (ops.erf, [_r(3, 4, low=-2, high=2)]),
    "log1p": (ops.log1p, [_pos(3, 4)]),
    "expm1": (ops.expm1, [_r(3, 4)]),
    "sin": (ops.sin, [_r(3, 4, low=-3, high=3)]),
    "cos": (ops.cos, [_r(3, 4, low=-3, high=3)]),
    "cumsum_along": (lambda x: ops.cumsum(x, axis=1), [_r(3, 4, 2)]),
}


def _conv_case(data_format, padding, strides, dilation=(1, 1)):
    x = _r(2, 5, 6, 3) if data_format == "channels_last" else _r(2, 3, 5, 6)
    return (
        lambda x, k: ops.conv2d(
            x, k, strides=strides, padding=padding, data_format=data_format, dilation_rate=dilation
        ),
        [x, _r(3, 2, 3, 4)],
    )


def _pool_case(data_format, padding, mode, pool=(2, 2), strides=(2, 2)):
    # distinct values so that each window's maximum is unique
    n = 2 * 5 * 5 * 3
    x = (RNG.permutation(n).astype(np.float64) / n).reshape(2, 5, 5, 3)
    if data_format == "channels_first":
        x = x.transpose(0, 3, 1, 2).copy()
    return (
        lambda x: ops.pool2d(
            x, pool_size=pool, strides=strides, padding=padding, data_format=data_format, mode=mode
        ),
        [x],
    )


for fmt in ("channels_last", "channels_first"):
    for pad in ("valid", "same"):
        CASES[f"conv2d-{fmt}-{pad}"] = _conv_case(fmt, pad, (1, 1))
        CASES[f"conv2d-{fmt}-{pad}-stride2"] = _conv_case(fmt, pad, (2, 2))
        for mode in ("max", "avg"):
            CASES[f"pool2d-{fmt}-{pad}-{mode}"] = _pool_case(fmt, pad, mode)
    CASES[f"pool2d-{fmt}-same-max-3x3s1"] = _pool_case(fmt, "same", "max", (3, 3), (1, 1))
CASES["conv2d-dilated"] = _conv_case("channels_last", "same", (1, 1), (2, 2))
CASES["conv2d-1x1"] = (
    lambda x, k: ops.conv2d(x, k, strides=(1, 1), padding="same", data_format="channels_last"),
    [_r(2, 3, 3, 4), _r(1, 1, 4, 2)],
)


# the transposed convolution (Conv2DTranspose): conv2d_input_grad as an op
def _conv_transpose_case(data_format, padding, strides, out_hw, dilation=(1, 1)):
    x = _r(2, 3, 4, 4) if data_format == "channels_last" else _r(2, 4, 3, 4)
    shape = (2, *out_hw, 3) if data_format == "channels_last" else (2, 3, *out_hw)
    return (
        lambda x, k: ops.conv2d_input_grad(
            x,
            k,
            input_shape=shape,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation,
        ),
        [x, _r(3, 2, 3, 4)],
    )


CASES["conv2d_input_grad-valid-stride2"] = _conv_transpose_case(
    "channels_last", "valid", (2, 2), (7, 8)
)
CASES["conv2d_input_grad-same-channels_first"] = _conv_transpose_case(
    "channels_first", "same", (2, 2), (6, 7)
)
CASES["conv2d_input_grad-dilated"] = _conv_transpose_case(
    "channels_last", "valid", (1, 1), (7, 6), (2, 2)
)
# grouped (groups=2) and depthwise (one input channel per group) convolutions
CASES["conv2d-grouped-stride2"] = (
    lambda x, k: ops.conv2d(
        x, k, strides=(2, 2), padding="same", data_format="channels_last", groups=2
    ),
    [_r(2, 5, 6, 4), _r(3, 2, 2, 4)],
)
CASES["conv2d-depthwise-channels_first"] = (
    lambda x, k: ops.conv2d(
        x, k, strides=(1, 1), padding="valid", data_format="channels_first", groups=3
    ),
    [_r(2, 3, 5, 4), _r(2, 3, 1, 6)],
)
CASES["conv2d_input_grad-grouped"] = (
    lambda x, k: ops.conv2d_input_grad(
        x,
        k,
        input_shape=(2, 7, 8, 4),
        strides=(2, 2),
        padding="valid",
        data_format="channels_last",
        groups=2,
    ),
    [_r(2, 3, 4, 4), _r(3, 2, 2, 4)],
)


def _numeric_grad(f, inputs, i, weights, eps=1e-6):
    x = inputs[i]
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        up = np.sum(np.asarray(f(*inputs)) * weights)
        x[idx] = orig - eps
        down = np.sum(np.asarray(f(*inputs)) * weights)
        x[idx] = orig
        grad[idx] = (up - down) / (2 * eps)
    return grad


def test_every_differentiable_primitive_has_a_case():
    covered = {name.split("-")[0] for name in CASES}
    differentiable = {n for n, p in ops.PRIMITIVES.items() if p.differentiable}
    assert differentiable - covered == set()


@pytest.mark.parametrize("name", sorted(CASES))
def test_vjp_matches_finite_differences(name):
    f, inputs = CASES[name]
    inputs = [np.array(x, dtype=np.float64) for x in inputs]
    with polykeras.use_backend("numpy"):
        out = np.asarray(f(*inputs))
        weights = np.random.default_rng(7).normal(size=out.shape)

        def loss(leaves):
            y = f(*leaves)
            return ops.sum(ops.multiply(y, weights)), None

        _, _, grads = autodiff.value_and_grad(loss, inputs)
        for i in range(len(inputs)):
            expected = _numeric_grad(f, [x.copy() for x in inputs], i, weights)
            np.testing.assert_allclose(
                np.asarray(grads[i]),
                expected,
                rtol=1e-5,
                atol=1e-7,
                err_msg=f"{name}: gradient of input {i}",
            )


def test_gradient_accumulates_over_shared_inputs():
    with polykeras.use_backend("numpy"):
        x = np.array([1.0, 2.0, 3.0])

        def loss(leaves):
            (v,) = leaves
            return ops.sum(ops.add(ops.multiply(v, v), v)), None

        _, _, (g,) = autodiff.value_and_grad(loss, [x])
    np.testing.assert_allclose(g, 2 * x + 1)


def test_unused_parameter_gets_zero_gradient():
    with polykeras.use_backend("numpy"):
        a, b = np.ones(3), np.ones((2, 2))
        _, _, (ga, gb) = autodiff.value_and_grad(lambda v: (ops.sum(v[0]), None), [a, b])
    np.testing.assert_array_equal(ga, np.ones(3))
    np.testing.assert_array_equal(gb, np.zeros((2, 2)))


@pytest.mark.parametrize(
    "positional, keyword",
    [
        (lambda v: ops.sum(v, 1), lambda v: ops.sum(v, axis=1)),
        (lambda v: ops.sum(v, 0, True), lambda v: ops.sum(v, axis=0, keepdims=True)),
        (lambda v: ops.max(v, 0), lambda v: ops.max(v, axis=0)),
        (lambda v: ops.softmax(v, 0), lambda v: ops.softmax(v, axis=0)),
        (
            lambda v: ops.attention_weights(v[None], v[None], None, 0.5),
            lambda v: ops.attention_weights(v[None], v[None], None, scale=0.5),
        ),
    ],
)
def test_arguments_given_by_position_reach_the_vjp(positional, keyword):
    """``ops.sum(x, 1)`` differentiates as ``ops.sum(x, axis=1)`` (the VJP reads the axis)."""
    x = np.random.default_rng(3).normal(size=(2, 3))
    with polykeras.use_backend("numpy"):
        grads = []
        for f in (positional, keyword):
            _, _, g = autodiff.value_and_grad(
                lambda leaves, f=f: (ops.sum(ops.square(f(leaves[0]))), None), [x]
            )
            grads.append(np.asarray(g[0]))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_too_many_positional_arguments_are_refused():
    with pytest.raises(TypeError, match=r"sum\(\) takes 3 positional arguments but 4"):
        ops.sum(np.ones(3), 0, False, 1)
    with pytest.raises(TypeError, match="multiple values for argument 'axis'"):
        ops.sum(np.ones(3), 0, axis=0)
