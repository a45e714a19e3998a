"""Attention as one op (issue 21): Keras 3's ``ops.dot_product_attention`` against real
Keras 3, the ``attention_weights`` op's VJP against finite differences and torch's
autograd, the optional backend kernels (NumPy's in-place weights and softmax pullback,
torch's fused ``scaled_dot_product_attention``) against the primitives they replace, and
MultiHeadAttention on each path."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import polykeras as keras
from polykeras import autodiff, layers, ops
from helpers import backend_params, run_keras3_script, torch_unusable_reason

BACKENDS = backend_params()
RNG = np.random.default_rng(211)
Q = RNG.normal(size=(2, 5, 4, 3)).astype("float32")
K_ = RNG.normal(size=(2, 6, 4, 3)).astype("float32")
V = RNG.normal(size=(2, 6, 4, 2)).astype("float32")
MASK = RNG.uniform(size=(2, 1, 5, 6)) > 0.4
MASK[0, 0, 1] = False  # a query row with nothing to attend to
BIAS = RNG.normal(size=(1, 4, 5, 6)).astype("float32")

# the same expressions run with keras.ops in the reference script
CASES = {
    "plain": "ops.dot_product_attention(q, k, v)",
    "scale": "ops.dot_product_attention(q, k, v, scale=0.3)",
    "bias": "ops.dot_product_attention(q, k, v, bias=b)",
    "mask": "ops.dot_product_attention(q, k, v, mask=m)",
    "causal": "ops.dot_product_attention(q, k, v, is_causal=True)",
    "mask_causal": "ops.dot_product_attention(q, k, v, mask=m, is_causal=True)",
    "grouped": "ops.dot_product_attention(q, k[:, :, :2], v[:, :, :2])",
    "one_kv_head": "ops.dot_product_attention(q, k[:, :, :1], v[:, :, :1], is_causal=True)",
}

_REFERENCE = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    from keras import ops
    data = dict(np.load(sys.argv[1]))
    q, k, v, m, b = data["q"], data["k"], data["v"], data["m"], data["b"]
    out = {{}}
    for name, expr in {cases!r}.items():
        out[name] = ops.convert_to_numpy(eval(expr))
    np.savez(sys.argv[2], **out)
    """
)


@pytest.fixture(scope="module")
def keras3_values(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dpa")
    return run_keras3_script(
        folder, _REFERENCE.format(cases=CASES), {"q": Q, "k": K_, "v": V, "m": MASK, "b": BIAS}
    )


def _numpy_reference(q, k, v, bias=None, mask=None, scale=None, causal=False):
    """The definition, in float64 NumPy."""
    q, k, v = (np.asarray(a, "float64") for a in (q, k, v))
    reps = q.shape[2] // k.shape[2]
    k, v = np.repeat(k, reps, axis=2), np.repeat(v, reps, axis=2)
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    logits = np.einsum("btnh,bsnh->bnts", q, k) * scale
    if bias is not None:
        logits = logits + bias
    keep = np.ones(logits.shape, bool)
    if mask is not None:
        keep &= mask
    if causal:
        keep &= np.tril(np.ones(logits.shape[-2:], bool))
    logits = np.where(keep, logits, -0.7 * 3.38953e38)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnh->btnh", w, v)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_dot_product_attention_matches_keras3(backend, case, keras3_values):
    with keras.use_backend(backend):
        got = ops.to_numpy(
            eval(CASES[case], {"ops": ops, "q": Q, "k": K_, "v": V, "m": MASK, "b": BIAS})
        )
    np.testing.assert_allclose(got, keras3_values[case], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mask_and_bias_together_follow_the_definition(backend):
    # Keras 3's NumPy backend takes both (its torch backend refuses the pair): the mask
    # replaces the logits it leaves out, the bias is added to the others
    with keras.use_backend(backend):
        got = ops.to_numpy(ops.dot_product_attention(Q, K_, V, bias=BIAS, mask=MASK))
    want = _numpy_reference(Q, K_, V, bias=BIAS, mask=MASK)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # the all-masked row is a uniform average of the values
    np.testing.assert_allclose(got[0, 1, 0], V[0, :, 0].mean(0), rtol=1e-5, atol=1e-6)


def _grads_on_tape(fn, arrays):
    """(value, grads) of sum(fn(*leaves) * probe) by the core's tape."""
    probe = None

    def loss(leaves):
        nonlocal probe
        out = fn(*leaves)
        if probe is None:
            probe = np.random.default_rng(5).normal(size=ops.shape(out)).astype("float32")
        return ops.sum(ops.multiply(out, probe)), autodiff.detach(out)

    _, out, grads = autodiff.value_and_grad(loss, list(arrays))
    return ops.to_numpy(out), [ops.to_numpy(g) for g in grads]


def test_attention_weights_vjp_matches_finite_differences():
    q = RNG.normal(size=(2, 3, 4, 3))
    k = RNG.normal(size=(2, 3, 5, 3))
    bias = RNG.normal(size=(2, 1, 4, 5))
    probe = RNG.normal(size=(2, 3, 4, 5))

    def f(q, k, bias):
        s = 0.7 * q @ np.swapaxes(k, -1, -2) + bias
        w = np.exp(s - s.max(-1, keepdims=True))
        return float(((w / w.sum(-1, keepdims=True)) * probe).sum())

    with keras.use_backend("numpy"):

        def loss(leaves):
            w = ops.attention_weights(leaves[0], leaves[1], leaves[2], scale=0.7)
            return ops.sum(ops.multiply(w, probe.astype("float32"))), None

        leaves = [a.astype("float32") for a in (q, k, bias)]
        _, _, grads = autodiff.value_and_grad(loss, leaves)
    eps = 1e-6
    for which, (arr, g) in enumerate(zip((q, k, bias), grads)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            args = [q, k, bias]
            up, down = arr.copy(), arr.copy()
            up[idx] += eps
            down[idx] -= eps
            args[which] = up
            hi = f(*args)
            args[which] = down
            num[idx] = (hi - f(*args)) / (2 * eps)
        np.testing.assert_allclose(ops.to_numpy(g), num, rtol=2e-3, atol=2e-4)


@pytest.mark.skipif(torch_unusable_reason() is not None, reason=str(torch_unusable_reason()))
def test_dot_product_attention_gradients_match_torch_autograd():
    import torch

    mask = np.broadcast_to(MASK, (2, 4, 5, 6))

    def fn(q, k, v, b):
        return ops.dot_product_attention(q, k, v, bias=b, mask=mask, is_causal=True)

    with keras.use_backend("numpy"):
        out, grads = _grads_on_tape(fn, [Q, K_, V, np.broadcast_to(BIAS, (2, 4, 5, 6)).copy()])
    probe = np.random.default_rng(5).normal(size=out.shape).astype("float32")
    ts = [torch.tensor(a, requires_grad=True) for a in (Q, K_, V, BIAS)]
    qt, kt, vt = (t.permute(0, 2, 1, 3) for t in ts[:3])
    keep = torch.tensor(mask) & torch.tril(torch.ones(5, 6, dtype=torch.bool))
    # as Keras 3's torch backend: the left-out positions get a large negative number added
    # (so a row with nothing kept still passes gradients back to its logits)
    logits = qt @ kt.transpose(-1, -2) / np.sqrt(3)
    logits = logits + torch.where(keep, ts[3], torch.tensor(-0.7 * 3.38953e38))
    ref = (torch.softmax(logits, -1) @ vt).permute(0, 2, 1, 3)
    (ref * torch.tensor(probe)).sum().backward()
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    for g, t in zip(grads[:3], ts[:3]):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-5)
    # the bias was broadcast over the batch in the reference: sum the tape's over it
    np.testing.assert_allclose(grads[3].sum(0, keepdims=True), ts[3].grad.numpy(), atol=1e-5)


def test_numpy_kernels_match_the_primitives(monkeypatch):
    """The NumPy backend's in-place ``attention_weights``/``softmax_grad`` kernels give the
    numbers (and gradients) of the composition they replace."""

    def run():
        return _grads_on_tape(
            lambda q, k, v: ops.dot_product_attention(q, k, v, bias=BIAS, mask=MASK),
            [Q, K_, V],
        )

    with keras.use_backend("numpy") as B:
        calls = []
        real = B.attention_weights
        monkeypatch.setattr(B, "attention_weights", lambda *a: calls.append(1) or real(*a))
        fused_out, fused_grads = run()
        assert calls, "the NumPy backend's attention_weights kernel was not used"
        monkeypatch.delattr(B, "attention_weights")
        for name in ("attention_weights", "softmax_grad"):
            owner = next(c for c in type(B).__mro__ if name in vars(c))
            monkeypatch.delattr(owner, name)
        assert getattr(B, "attention_weights", None) is None
        plain_out, plain_grads = run()
    np.testing.assert_allclose(fused_out, plain_out, rtol=1e-6, atol=1e-7)
    for a, b in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _mha_model(seed=0):
    query = layers.Input(shape=(5, 8))
    value = layers.Input(shape=(6, 8))
    out = layers.MultiHeadAttention(2, 4, seed=seed)(query, value)
    return keras.Model([query, value], out)


@pytest.mark.skipif(torch_unusable_reason() is not None, reason=str(torch_unusable_reason()))
@pytest.mark.parametrize("masked", [False, True])
def test_torch_fused_attention_matches_the_weights_path(monkeypatch, masked):
    """MultiHeadAttention on torch runs SDPA (one kernel) and gives the numbers and
    gradients of the weights-then-matmul path it replaces."""
    x = RNG.normal(size=(3, 5, 8)).astype("float32")
    y = RNG.normal(size=(3, 6, 8)).astype("float32")
    mask = RNG.uniform(size=(3, 5, 6)) > 0.3
    with keras.use_backend("torch") as B:
        layer = layers.MultiHeadAttention(2, 4)
        layer(x, y)  # builds
        rng = np.random.default_rng(9)
        layer.set_weights([0.3 * rng.normal(size=w.shape).astype("float32") for w in layer.weights])

        def run():
            variables = layer.trainable_weights

            def loss(leaves):
                with autodiff.substitute(variables, leaves):
                    out = layer(B.asarray(x), B.asarray(y), attention_mask=mask if masked else None)
                return ops.sum(ops.square(out)), autodiff.detach(out)

            _, out, grads = autodiff.value_and_grad(loss, [v.value for v in variables])
            return [ops.to_numpy(out)] + [ops.to_numpy(g) for g in grads]

        calls = []
        kernel = B.scaled_dot_product_attention
        monkeypatch.setattr(
            B, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or kernel(*a, **k)
        )
        fused = run()
        assert calls, "MultiHeadAttention did not use the backend's fused attention"
        monkeypatch.setattr(B, "scaled_dot_product_attention", None)
        plain = run()
    assert len(fused) == len(plain) == 1 + len(layer.trainable_weights)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scores_and_dropout_take_the_weights_path(backend):
    """return_attention_scores (and dropout while training) need the weights themselves:
    the weights the layer returns reproduce its output."""
    x = RNG.normal(size=(2, 5, 8)).astype("float32")
    with keras.use_backend(backend):
        layer = layers.MultiHeadAttention(2, 4, use_bias=False, output_shape=8)
        out, scores = layer(x, x, return_attention_scores=True)
        out, scores = ops.to_numpy(out), ops.to_numpy(scores)
        wq, wk, wv, wo = layer.get_weights()
    assert scores.shape == (2, 2, 5, 5)
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-6)
    v = np.einsum("btf,fnh->bnth", x, wv)
    ctx = np.einsum("bnts,bnsh->btnh", scores, v)
    np.testing.assert_allclose(np.einsum("btnh,nho->bto", ctx, wo), out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dot_product_attention_in_a_model_saves_and_loads(backend, tmp_path):
    with keras.use_backend(backend):
        q = layers.Input(shape=(5, 4, 3))
        kv = layers.Input(shape=(6, 2, 3))
        out = ops.dot_product_attention(q, kv, kv, is_causal=True, scale=0.5)
        model = keras.Model([q, kv], layers.Flatten()(out))
        kv_data = K_[:, :, :2]
        want = ops.to_numpy(model.predict([Q, kv_data], verbose=0))
        np.testing.assert_allclose(
            want.reshape(2, 5, 4, 3),
            _numpy_reference(Q, kv_data, kv_data, scale=0.5, causal=True),
            rtol=1e-5,
            atol=1e-6,
        )
        again = keras.models.model_from_json(model.to_json())
        np.testing.assert_allclose(ops.to_numpy(again.predict([Q, kv_data], verbose=0)), want)
        model.save(tmp_path / "m.keras")
        loaded = keras.models.load_model(tmp_path / "m.keras")
        np.testing.assert_allclose(ops.to_numpy(loaded.predict([Q, kv_data], verbose=0)), want)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"flash_attention": True}, "flash_attention=True is not supported"),
        ({"attn_logits_soft_cap": 50.0}, "attn_logits_soft_cap is not supported"),
        ({"query": Q[0]}, "must be 4-D"),
        ({"key": K_[:, :, :3], "value": V[:, :, :3]}, "not a multiple of the key's 3 heads"),
        ({"value": V[:, :4]}, "do not fit"),
        ({"mask": np.ones((3, 5, 6), bool)}, "cannot broadcast"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    args = {"query": Q, "key": K_, "value": V, **kwargs}
    with pytest.raises((ValueError, NotImplementedError), match=message):
        ops.dot_product_attention(**args)


@pytest.mark.parametrize("axis", [-1, [-2, -1]])
def test_numpy_layer_norm_kernel_matches_the_primitives(monkeypatch, axis):
    """LayerNormalization is one op on every path: the NumPy backend's in-place kernel and
    the composition from primitives give the same outputs and gradients."""
    x = RNG.normal(size=(3, 4, 5)).astype("float32") * 3 + 1

    def run():
        layer = layers.LayerNormalization(axis=axis, epsilon=1e-3)
        layer.build(x.shape)
        rng = np.random.default_rng(2)
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])
        variables = layer.trainable_weights
        probe = np.random.default_rng(4).normal(size=x.shape).astype("float32")

        def loss(leaves):
            with autodiff.substitute(variables, leaves[1:]):
                out = layer(leaves[0])
            return ops.sum(ops.multiply(out, probe)), autodiff.detach(out)

        _, out, grads = autodiff.value_and_grad(loss, [x] + [v.value for v in variables])
        return [ops.to_numpy(out)] + [ops.to_numpy(g) for g in grads]

    with keras.use_backend("numpy") as B:
        calls = []
        real = B.layer_norm
        monkeypatch.setattr(B, "layer_norm", lambda *a: calls.append(1) or real(*a))
        fused = run()
        assert calls, "LayerNormalization did not use the NumPy backend's layer_norm"
        monkeypatch.delattr(B, "layer_norm")
        owner = next(c for c in type(B).__mro__ if "layer_norm" in vars(c))
        monkeypatch.delattr(owner, "layer_norm")
        plain = run()
    assert len(fused) == len(plain) == 4
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # and the output is the definition, in float64, with the same gamma and beta
    axes = tuple(np.atleast_1d(axis))
    rng = np.random.default_rng(2)
    gamma, beta = (rng.normal(size=x.shape[-len(axes) :]) for _ in range(2))
    x64 = x.astype("float64")
    mean, var = x64.mean(axis=axes, keepdims=True), x64.var(axis=axes, keepdims=True)
    want = (x64 - mean) / np.sqrt(var + 1e-3) * gamma + beta
    np.testing.assert_allclose(fused[0], want, rtol=1e-4, atol=1e-5)
