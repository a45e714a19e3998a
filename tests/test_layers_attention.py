"""MultiHeadAttention, Attention and AdditiveAttention: Keras 3's numbers (outputs, scores
and gradients, with and without masks), one training step, weights and files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import backend_params, keras3_available

import polykeras
from polykeras import autodiff, ops
from polykeras import backend as K
from polykeras import layers as L
from polykeras.engine.base_layer import Input
from polykeras.models import Model, load_model, model_from_json

BACKENDS = backend_params()
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


def _engine_has_masks() -> bool:
    from polykeras.engine import base_layer

    return hasattr(base_layer.Layer, "supports_masking")


# -- the cases compared with Keras 3 -----------------------------------------------------------
# inputs: shapes of [query, value(, key)]; masks: which masks (query/value/key/attention)
CASES = {
    "mha_self": dict(layer="MultiHeadAttention", kwargs=dict(num_heads=2, key_dim=3),
                     inputs=[(2, 5, 4), (2, 5, 4)]),
    "mha_cross_key": dict(
        layer="MultiHeadAttention",
        kwargs=dict(num_heads=2, key_dim=3, value_dim=2, output_shape=6),
        inputs=[(2, 4, 5), (2, 6, 3), (2, 6, 4)],
    ),
    "mha_nobias_scores": dict(
        layer="MultiHeadAttention", kwargs=dict(num_heads=3, key_dim=2, use_bias=False),
        inputs=[(2, 4, 5), (2, 6, 3)], call=dict(return_attention_scores=True),
    ),
    "mha_causal": dict(layer="MultiHeadAttention", kwargs=dict(num_heads=2, key_dim=3),
                       inputs=[(2, 5, 4), (2, 5, 4)], call=dict(use_causal_mask=True)),
    "mha_masks": dict(
        layer="MultiHeadAttention", kwargs=dict(num_heads=2, key_dim=3),
        inputs=[(3, 5, 4), (3, 6, 3)], masks=["query", "value", "attention"],
        call=dict(use_causal_mask=True),
    ),
    # Keras 3 zeroes the weights of a fully masked query row only when it returns the
    # scores (its fused path, and tf.keras 2, give uniform weights): no query mask here
    "mha_scores_masks": dict(
        layer="MultiHeadAttention", kwargs=dict(num_heads=2, key_dim=3),
        inputs=[(3, 5, 4), (3, 6, 3)], masks=["value", "attention"],
        call=dict(use_causal_mask=True, return_attention_scores=True),
    ),
    "mha_key_mask": dict(
        layer="MultiHeadAttention", kwargs=dict(num_heads=2, key_dim=2),
        inputs=[(2, 4, 3), (2, 5, 3), (2, 5, 2)], masks=["value", "key"],
    ),
    "mha_rank4": dict(layer="MultiHeadAttention", kwargs=dict(num_heads=2, key_dim=3),
                      inputs=[(2, 2, 3, 4), (2, 2, 2, 4)],
                      call=dict(return_attention_scores=True)),
    "mha_axis2_scores": dict(
        layer="MultiHeadAttention", kwargs=dict(num_heads=2, key_dim=3, attention_axes=(2,)),
        inputs=[(2, 3, 4, 5), (2, 3, 2, 4)], call=dict(return_attention_scores=True),
    ),
    "mha_axis1_out2d": dict(
        layer="MultiHeadAttention",
        kwargs=dict(num_heads=2, key_dim=2, attention_axes=1, output_shape=(2, 3)),
        inputs=[(2, 3, 4, 5), (2, 2, 4, 5)],
    ),
    "mha_axis_neg_rank5": dict(
        layer="MultiHeadAttention", kwargs=dict(num_heads=2, key_dim=2, attention_axes=(-2, 1)),
        inputs=[(2, 2, 3, 2, 3), (2, 3, 3, 2, 3)], call=dict(return_attention_scores=True),
    ),
    "att_dot": dict(layer="Attention", kwargs={}, inputs=[(2, 4, 3), (2, 5, 3)]),
    "att_scale_key_scores": dict(
        layer="Attention", kwargs=dict(use_scale=True),
        inputs=[(2, 4, 3), (2, 5, 2), (2, 5, 3)], call=dict(return_attention_scores=True),
    ),
    "att_concat_causal": dict(
        layer="Attention", kwargs=dict(use_scale=True, score_mode="concat"),
        inputs=[(2, 5, 3), (2, 5, 3)], call=dict(use_causal_mask=True),
    ),
    "att_masks": dict(layer="Attention", kwargs=dict(use_scale=True),
                      inputs=[(3, 4, 3), (3, 5, 3)], masks=["query", "value"]),
    "add_default": dict(layer="AdditiveAttention", kwargs={}, inputs=[(2, 4, 3), (2, 5, 3)]),
    "add_masks_causal": dict(
        layer="AdditiveAttention", kwargs={}, inputs=[(3, 5, 3), (3, 5, 3)],
        masks=["query", "value"], call=dict(use_causal_mask=True, return_attention_scores=True),
    ),
}  # fmt: skip


def _make_layer(case):
    return getattr(L, case["layer"])(**case["kwargs"])


def _case_data(name, case, rng):
    """Inputs, masks (bool, position 0 always kept), output weights and loss coefficients."""
    xs = [rng.normal(size=s).astype("float32") for s in case["inputs"]]
    q, v = case["inputs"][0], case["inputs"][1]
    masks = {}
    for which in case.get("masks", []):
        if which == "query":
            shape = q[:-1]
        elif which in ("value", "key"):
            shape = v[:-1]
        else:
            shape = q[:-1] + v[1:-1]
        m = rng.random(shape) > 0.35
        m[(slice(None),) + (0,) * (len(shape) - 1)] = True  # no row with nothing to attend
        if which == "attention":
            m[..., 0] = True
        masks[which] = m
    layer = _make_layer(case)
    _call_eager(layer, xs, {}, case)  # builds the layer
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
    return xs, masks, weights


def _call_eager(layer, xs, masks, case, B=None):
    """Call on backend arrays, giving masks directly to call() (the masking protocol)."""
    call = dict(case.get("call", {}))
    if not masks:
        if case["layer"] == "MultiHeadAttention":
            return layer(xs[0], xs[1], xs[2] if len(xs) > 2 else None, **call)
        return layer(list(xs), **call)
    B = B or K.current()
    arrays = [B.asarray(x) for x in xs]
    m = {k: B.asarray(v) for k, v in masks.items()}
    if case["layer"] == "MultiHeadAttention":
        mask = [m.get("query"), m.get("value"), m.get("key")]
        return layer.call(arrays, mask=mask, attention_mask=m.get("attention"), **call)
    return layer.call(arrays, mask=[m.get("query"), m.get("value")], **call)


KERAS_SCRIPT = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np, torch, keras
from keras.src import backend as kb

data = dict(np.load(sys.argv[1]))
cases = json.loads(open(sys.argv[2]).read())
out = {}
for name, case in cases.items():
    xs = [data[f"{name}/x{i}"] for i in range(len(case["inputs"]))]
    layer = getattr(keras.layers, case["layer"])(**case["kwargs"])
    call = case.get("call", {})
    masks = {w: data[f"{name}/mask_{w}"] for w in case.get("masks", [])}

    def run():
        ts = [keras.ops.convert_to_tensor(x) for x in xs]
        if case["layer"] == "MultiHeadAttention":
            for t, w in zip(ts, ["query", "value", "key"]):
                if w in masks:
                    kb.set_keras_mask(t, keras.ops.convert_to_tensor(masks[w]))
            am = masks.get("attention")
            return layer(ts[0], ts[1], key=ts[2] if len(ts) > 2 else None,
                         attention_mask=None if am is None else keras.ops.convert_to_tensor(am),
                         **call)
        mask = None
        if masks:
            mask = [keras.ops.convert_to_tensor(masks[w]) if w in masks else None
                    for w in ("query", "value")]
        return layer(ts, mask=mask, **call)

    run()
    n = len(layer.get_weights())
    layer.set_weights([data[f"{name}/w{i}"] for i in range(n)])
    res = run()
    res = list(res) if isinstance(res, (list, tuple)) else [res]
    loss = (res[0] * torch.as_tensor(data[f"{name}/c"])).sum()
    params = [v.value for v in layer.trainable_weights]
    grads = torch.autograd.grad(loss, params) if params else []
    out[f"{name}/out"] = res[0].detach().cpu().numpy()
    if len(res) > 1:
        out[f"{name}/scores"] = res[1].detach().cpu().numpy()
    for i, g in enumerate(grads):
        out[f"{name}/g{i}"] = g.cpu().numpy()
np.savez(sys.argv[3], **out)
"""


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory):
    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed: no reference to compare with")
    rng = np.random.default_rng(11)
    arrays, inputs = {}, {}
    with polykeras.use_backend("numpy"):
        for name, case in CASES.items():
            xs, masks, weights = _case_data(name, case, rng)
            out = _call_eager(_make_layer(case), xs, {}, case)
            first = out[0] if isinstance(out, list) else out
            coeff = rng.normal(size=_np(first).shape).astype("float32")
            if "query" in masks:
                # the loss leaves masked query positions out, as Keras' masked losses do
                # (torch's fused attention passes a gradient through a fully masked row
                # that is not the softmax's: that degenerate case is not compared)
                coeff = coeff * masks["query"][..., None]
            for i, x in enumerate(xs):
                arrays[f"{name}/x{i}"] = x
            for w, m in masks.items():
                arrays[f"{name}/mask_{w}"] = m
            for i, w in enumerate(weights):
                arrays[f"{name}/w{i}"] = w
            arrays[f"{name}/c"] = coeff
            inputs[name] = (xs, masks, weights, coeff)
    folder = tmp_path_factory.mktemp("keras_attention")
    np.savez(folder / "in.npz", **arrays)
    (folder / "cases.json").write_text(json.dumps(CASES))
    (folder / "run.py").write_text(KERAS_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(folder / "run.py"), str(folder / "in.npz"),
         str(folder / "cases.json"), str(folder / "out.npz")],
        capture_output=True, text=True, env=dict(os.environ, KERAS_BACKEND="torch"),
        timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        raise AssertionError(f"the Keras script failed:\n{proc.stderr[-4000:]}")
    return inputs, dict(np.load(folder / "out.npz"))


@pytest.mark.parametrize("name", list(CASES))
def test_matches_keras3(backend, keras_results, name):
    """Forward output (and scores) and the gradients of sum(output * c) with respect to
    every weight equal Keras 3's, on the same weights, inputs and masks."""
    inputs, ref = keras_results
    case = CASES[name]
    xs, masks, weights, coeff = inputs[name]
    layer = _make_layer(case)
    _call_eager(layer, xs, {}, case)
    layer.set_weights(weights)
    out = _call_eager(layer, xs, masks, case)
    outs = out if isinstance(out, list) else [out]
    np.testing.assert_allclose(_np(outs[0]), ref[f"{name}/out"], rtol=RTOL, atol=ATOL)
    if f"{name}/scores" in ref:
        assert len(outs) == 2
        np.testing.assert_allclose(_np(outs[1]), ref[f"{name}/scores"], rtol=RTOL, atol=ATOL)
    trainable = layer.trainable_weights
    c = backend.asarray(coeff)

    def fn(leaves):
        with autodiff.substitute(trainable, leaves):
            got = _call_eager(layer, xs, masks, case, backend)
            first = got[0] if isinstance(got, list) else got
            return ops.sum(ops.multiply(first, c)), None

    _, _, grads = autodiff.value_and_grad(fn, [v.value for v in trainable])
    assert len(grads) == len([k for k in ref if k.startswith(f"{name}/g")])
    for i, g in enumerate(grads):
        np.testing.assert_allclose(
            _np(g), ref[f"{name}/g{i}"], rtol=RTOL, atol=ATOL, err_msg=f"gradient {i}"
        )


# -- one training step in a model, and files written by Keras 3 -----------------------------
KERAS_MODEL_SCRIPT = r"""
import os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np, keras
data = dict(np.load(sys.argv[1]))
folder = sys.argv[2]

def build():
    q = keras.Input((5, 4), name="q")
    v = keras.Input((6, 3), name="v")
    a = keras.layers.MultiHeadAttention(2, 3, name="mha")(q, v)
    b = keras.layers.MultiHeadAttention(2, 2, value_dim=3, name="self_mha")(
        query=a, value=a, key=a, use_causal_mask=True)
    c = keras.layers.Attention(use_scale=True, score_mode="concat", name="att")([b, a])
    d = keras.layers.AdditiveAttention(name="add_att")([c, q])
    return keras.Model([q, v], d)

m = build()
m.set_weights([data[f"w{i}"] for i in range(len(m.get_weights()))])
out = {"pred": m.predict([data["q"], data["v"]], verbose=0)}
m.save(os.path.join(folder, "k3.keras"))
m.save(os.path.join(folder, "k3.h5"))
m.compile(keras.optimizers.SGD(learning_rate=0.1), "mse")
out["loss"] = np.asarray(m.train_on_batch([data["q"], data["v"]], data["y"]))
for i, w in enumerate(m.get_weights()):
    out[f"after{i}"] = w

# an embedding with mask_zero feeding self-attention: masks from the graph
t = keras.Input((6,), dtype="int32")
e = keras.layers.Embedding(9, 4, mask_zero=True, name="emb")(t)
o = keras.layers.MultiHeadAttention(2, 3, name="mmha")(e, e)
mm = keras.Model(t, o)
mm.set_weights([data[f"m{i}"] for i in range(len(mm.get_weights()))])
out["masked_pred"] = mm.predict(data["tokens"], verbose=0)
np.savez(os.path.join(folder, "out.npz"), **out)
"""


def _model():
    q = Input((5, 4), name="q")
    v = Input((6, 3), name="v")
    a = L.MultiHeadAttention(2, 3, name="mha")(q, v)
    b = L.MultiHeadAttention(2, 2, value_dim=3, name="self_mha")(
        query=a, value=a, key=a, use_causal_mask=True
    )
    c = L.Attention(use_scale=True, score_mode="concat", name="att")([b, a])
    d = L.AdditiveAttention(name="add_att")([c, q])
    return Model([q, v], d)


def _masked_model():
    t = Input((6,), dtype="int32")
    e = L.Embedding(9, 4, mask_zero=True, name="emb")(t)
    return Model(t, L.MultiHeadAttention(2, 3, name="mmha")(e, e))


@pytest.fixture(scope="module")
def keras_model_results(tmp_path_factory):
    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed: no reference to compare with")
    rng = np.random.default_rng(5)
    with polykeras.use_backend("numpy"):
        model = _model()
        weights = [
            rng.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()
        ]
        mweights = [
            rng.normal(scale=0.5, size=w.shape).astype("float32")
            for w in _masked_model().get_weights()
        ]
    tokens = rng.integers(1, 9, size=(3, 6)).astype("int32")
    tokens[0, 4:] = 0
    tokens[1, 2:] = 0
    data = {
        "q": rng.normal(size=(4, 5, 4)).astype("float32"),
        "v": rng.normal(size=(4, 6, 3)).astype("float32"),
        "y": rng.normal(size=(4, 5, 4)).astype("float32"),
        "tokens": tokens,
        **{f"w{i}": w for i, w in enumerate(weights)},
        **{f"m{i}": w for i, w in enumerate(mweights)},
    }
    folder = tmp_path_factory.mktemp("keras_attention_model")
    np.savez(folder / "in.npz", **data)
    (folder / "run.py").write_text(KERAS_MODEL_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(folder / "run.py"), str(folder / "in.npz"), str(folder)],
        capture_output=True, text=True, env=dict(os.environ, KERAS_BACKEND="torch"),
        timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        raise AssertionError(f"the Keras script failed:\n{proc.stderr[-4000:]}")
    return data, dict(np.load(folder / "out.npz")), folder


def test_weight_names_shapes_and_order():
    mha = L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, name="mha")
    mha(Input((5, 8)), Input((7, 6)))
    assert [(w.name, w.shape) for w in mha.weights] == [
        ("mha/query/kernel:0", (8, 2, 3)),
        ("mha/query/bias:0", (2, 3)),
        ("mha/key/kernel:0", (6, 2, 3)),
        ("mha/key/bias:0", (2, 3)),
        ("mha/value/kernel:0", (6, 2, 4)),
        ("mha/value/bias:0", (2, 4)),
        ("mha/attention_output/kernel:0", (2, 4, 8)),
        ("mha/attention_output/bias:0", (8,)),
    ]
    mha = L.MultiHeadAttention(2, 3, use_bias=False, output_shape=(2, 5), name="m2")
    out = mha(Input((5, 8)), Input((7, 6)))
    assert out.shape == (None, 5, 2, 5)
    assert [w.shape for w in mha.weights] == [(8, 2, 3), (6, 2, 3), (6, 2, 3), (2, 3, 2, 5)]
    att = L.Attention(use_scale=True, score_mode="concat", name="a")
    att([Input((4, 3)), Input((5, 3))])
    assert [(w.name, w.shape) for w in att.weights] == [
        ("a/scale:0", ()),
        ("a/concat_score_weight:0", ()),
    ]
    add = L.AdditiveAttention(name="b")
    assert add([Input((4, 3)), Input((5, 2)), Input((5, 3))]).shape == (None, 4, 2)
    assert [(w.name, w.shape) for w in add.weights] == [("b/scale:0", (3,))]
    assert L.AdditiveAttention(use_scale=False).get_config()["use_scale"] is False


def test_symbolic_shapes_with_scores():
    q, v = Input((5, 8)), Input((7, 6))
    out, scores = L.MultiHeadAttention(4, 2)(q, v, return_attention_scores=True)
    assert out.shape == (None, 5, 8) and scores.shape == (None, 4, 5, 7)
    out, scores = L.Attention()([q, Input((7, 8))], return_attention_scores=True)
    assert out.shape == (None, 5, 8) and scores.shape == (None, 5, 7)
    r4 = L.MultiHeadAttention(2, 2)(
        Input((2, 3, 4)), Input((4, 1, 4)), return_attention_scores=True
    )
    assert [t.shape for t in r4] == [(None, 2, 3, 4), (None, 2, 2, 3, 4, 1)]
    axis2 = L.MultiHeadAttention(2, 2, attention_axes=2, output_shape=(2, 3))(
        Input((3, 4, 5)), Input((3, 6, 5)), return_attention_scores=True
    )
    assert [t.shape for t in axis2] == [(None, 3, 4, 2, 3), (None, 3, 2, 4, 6)]


def test_model_training_step_matches_keras3(backend, keras_model_results):
    data, ref, _ = keras_model_results
    model = _model()
    model.set_weights([data[f"w{i}"] for i in range(len(model.get_weights()))])
    np.testing.assert_allclose(
        model.predict([data["q"], data["v"]], verbose=0), ref["pred"], rtol=RTOL, atol=ATOL
    )
    model.compile(polykeras.optimizers.SGD(learning_rate=0.1), "mse")
    loss = model.train_on_batch([data["q"], data["v"]], data["y"])
    np.testing.assert_allclose(np.asarray(loss).reshape(-1)[0], ref["loss"], rtol=RTOL)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, ref[f"after{i}"], rtol=RTOL, atol=ATOL, err_msg=str(i))


def test_masks_from_the_graph_match_keras3(backend, keras_model_results):
    if not _engine_has_masks():
        pytest.skip("the engine does not carry masks through the graph yet")
    data, ref, _ = keras_model_results
    model = _masked_model()
    model.set_weights([data[f"m{i}"] for i in range(len(model.get_weights()))])
    got = model.predict(data["tokens"], verbose=0)
    np.testing.assert_allclose(got, ref["masked_pred"], rtol=RTOL, atol=ATOL)
    # the query mask travels on to the output, as in Keras 3
    assert model.outputs[0]._keras_mask is not None


def test_padded_masked_sequence_equals_the_unpadded_one(backend):
    if not _engine_has_masks():
        pytest.skip("the engine does not carry masks through the graph yet")

    def build(length):
        t = Input((length,), dtype="int32")
        e = L.Embedding(9, 4, mask_zero=True, name="emb")(t)
        x = L.MultiHeadAttention(2, 3, name="mha")(e, e)
        x = L.Attention(use_scale=True, name="att")([x, e])
        return Model(t, L.AdditiveAttention(name="add")([x, e]))

    rng = np.random.default_rng(9)
    short, padded = build(4), build(7)
    short.set_weights([rng.normal(scale=0.5, size=w.shape) for w in short.get_weights()])
    padded.set_weights(short.get_weights())
    tokens = rng.integers(1, 9, size=(3, 4))
    full = np.concatenate([tokens, np.zeros((3, 3), tokens.dtype)], axis=1)
    np.testing.assert_allclose(
        padded.predict(full, verbose=0)[:, :4],
        short.predict(tokens, verbose=0),
        rtol=RTOL,
        atol=ATOL,
    )


def test_keras2_causal_argument_is_use_causal_mask(backend):
    x = np.random.default_rng(3).normal(size=(2, 5, 3)).astype("float32")
    for cls in (L.Attention, L.AdditiveAttention):
        plain = cls(name="p")
        plain([x, x])
        causal = cls(causal=True, name="c")
        causal([x, x])
        causal.set_weights(plain.get_weights())
        np.testing.assert_allclose(
            _np(causal([x, x])), _np(plain([x, x], use_causal_mask=True)), rtol=1e-6
        )
        assert not np.allclose(_np(causal([x, x])), _np(plain([x, x])))


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_loads_files_written_by_keras3(backend, keras_model_results, fmt):
    data, ref, folder = keras_model_results
    model = load_model(str(folder / f"k3.{fmt}"), compile=False)
    np.testing.assert_allclose(
        model.predict([data["q"], data["v"]], verbose=0), ref["pred"], rtol=RTOL, atol=ATOL
    )
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("MultiHeadAttention") == 2 and "AdditiveAttention" in kinds


def test_keras3_loads_our_keras_file(tmp_path):
    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed")
    rng = np.random.default_rng(2)
    model = _model()
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    q = rng.normal(size=(2, 5, 4)).astype("float32")
    v = rng.normal(size=(2, 6, 3)).astype("float32")
    model.save(str(tmp_path / "ours.keras"))
    np.savez(tmp_path / "in.npz", q=q, v=v)
    script = (
        "import os, sys\nos.environ['KERAS_BACKEND'] = 'torch'\nimport numpy as np, keras\n"
        "d = np.load(sys.argv[1])\nm = keras.saving.load_model(sys.argv[2])\n"
        "np.save(sys.argv[3], m.predict([d['q'], d['v']], verbose=0))\n"
    )
    (tmp_path / "load.py").write_text(script)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "load.py"), str(tmp_path / "in.npz"),
         str(tmp_path / "ours.keras"), str(tmp_path / "pred.npy")],
        capture_output=True, text=True, env=dict(os.environ, KERAS_BACKEND="torch"),
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(
        np.load(tmp_path / "pred.npy"), model.predict([q, v], verbose=0), rtol=RTOL, atol=ATOL
    )


# -- round trips ----------------------------------------------------------------------------------
def test_config_round_trips():
    mha = L.MultiHeadAttention(
        num_heads=3, key_dim=4, value_dim=2, dropout=0.25, use_bias=False, output_shape=(7,),
        kernel_initializer="ones", bias_initializer="ones", kernel_regularizer="l2",
        bias_regularizer="l1", kernel_constraint="non_neg", bias_constraint="max_norm",
        seed=4, name="m",
    )  # fmt: skip
    cfg = mha.get_config()
    assert cfg["value_dim"] == 2 and cfg["output_shape"] == [7] and cfg["seed"] == 4
    assert L.MultiHeadAttention.from_config(cfg).get_config() == cfg
    for layer in (
        L.Attention(use_scale=True, score_mode="concat", dropout=0.5, name="a"),
        L.AdditiveAttention(use_scale=False, dropout=0.1, name="b"),
    ):
        cfg = layer.get_config()
        assert type(layer).from_config(cfg).get_config() == cfg
    # Keras 3's own config loads (use_gate, sliding_window, flash_attention at defaults)
    k3 = {
        "name": "mha", "trainable": True, "dtype": "float32", "num_heads": 2, "key_dim": 3,
        "value_dim": 3, "dropout": 0.0, "use_bias": True, "use_gate": False,
        "output_shape": None, "attention_axes": [1], "sliding_window": None, "seed": None,
    }  # fmt: skip
    layer = L.MultiHeadAttention.from_config(k3)
    assert layer(Input((4, 5)), Input((6, 5))).shape == (None, 4, 5)


@pytest.mark.parametrize("suffix", ["json", "yaml", "h5", "keras"])
def test_model_round_trips(backend, tmp_path, suffix):
    rng = np.random.default_rng(3)
    model = _model()
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    q = rng.normal(size=(2, 5, 4)).astype("float32")
    v = rng.normal(size=(2, 6, 3)).astype("float32")
    before = model.predict([q, v], verbose=0)
    if suffix in ("json", "yaml"):
        from polykeras.models import model_from_yaml

        text = model.to_json() if suffix == "json" else model.to_yaml()
        again = (model_from_json if suffix == "json" else model_from_yaml)(text)
        again.set_weights(model.get_weights())
    else:
        path = str(tmp_path / f"m.{suffix}")
        model.save(path)
        again = load_model(path)
    np.testing.assert_allclose(again.predict([q, v], verbose=0), before, rtol=1e-6, atol=1e-6)
    node_args = [layer._inbound_nodes[-1].arguments for layer in again.layers]
    assert {"use_causal_mask": True} in node_args


def test_reads_tf_keras2_nodes_with_tensors_in_kwargs():
    """tf.keras 2 writes ``mha(q, v)`` as one reference with ``{"value": [name, 0, 0]}``."""
    rng = np.random.default_rng(8)
    model = _model()
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    cfg = json.loads(model.to_json())
    for entry in cfg["config"]["layers"]:
        if entry["name"] == "mha":
            entry["inbound_nodes"] = [[["q", 0, 0, {"value": ["v", 0, 0]}]]]
        if entry["name"] == "self_mha":
            ref = ["mha", 0, 0]
            kw = {"value": ref, "key": ref, "use_causal_mask": True}
            entry["inbound_nodes"] = [[["mha", 0, 0, kw]]]
    again = model_from_json(json.dumps(cfg))
    again.set_weights(model.get_weights())
    q = rng.normal(size=(2, 5, 4)).astype("float32")
    v = rng.normal(size=(2, 6, 3)).astype("float32")
    np.testing.assert_allclose(
        again.predict([q, v], verbose=0), model.predict([q, v], verbose=0), rtol=1e-6, atol=1e-6
    )


def test_attention_mask_tensor_and_scores_in_a_model_round_trip(backend, tmp_path):
    rng = np.random.default_rng(4)
    x = Input((4, 3), name="x")
    keep = Input((4, 4), name="keep")
    out, scores = L.MultiHeadAttention(2, 2, name="mha")(
        x, x, attention_mask=keep, return_attention_scores=True
    )
    model = Model([x, keep], [out, scores])
    xv = rng.normal(size=(2, 4, 3)).astype("float32")
    kv = (rng.random((2, 4, 4)) > 0.4).astype("float32")
    kv[..., 0] = 1
    got = model.predict([xv, kv], verbose=0)
    mha = model.get_layer("mha")
    ref = mha.call(
        [backend.asarray(xv), backend.asarray(xv)],
        attention_mask=backend.asarray(kv > 0.5),
        return_attention_scores=True,
    )
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, _np(b), rtol=1e-6, atol=1e-6)
    assert np.all(got[1][np.broadcast_to(kv[:, None] == 0, got[1].shape)] == 0)
    for suffix in ("h5", "keras"):
        model.save(str(tmp_path / f"m.{suffix}"))
        again = load_model(str(tmp_path / f"m.{suffix}"))
        for a, b in zip(again.predict([xv, kv], verbose=0), got):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


# -- behaviour against a NumPy reference ---------------------------------------------------------
def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_mha_equals_numpy_reference(backend):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(2, 3, 4)).astype("float32")
    v = rng.normal(size=(2, 5, 6)).astype("float32")
    mha = L.MultiHeadAttention(2, 3, value_dim=2)
    mha(q, v)
    wq, bq, wk, bk, wv, bv, wo, bo = [
        rng.normal(size=w.shape).astype("float32") for w in mha.get_weights()
    ]
    mha.set_weights([wq, bq, wk, bk, wv, bv, wo, bo])
    Q = np.einsum("btd,dnh->bnth", q, wq) + bq[None, :, None, :]
    Kt = np.einsum("bsd,dnh->bnsh", v, wk) + bk[None, :, None, :]
    V = np.einsum("bsd,dnh->bnsh", v, wv) + bv[None, :, None, :]
    w = _softmax(np.einsum("bnth,bnsh->bnts", Q / np.sqrt(3), Kt))
    ref = np.einsum("bnts,bnsh->btnh", w, V)
    ref = np.einsum("btnh,nhd->btd", ref, wo) + bo
    np.testing.assert_allclose(_np(mha(q, v)), ref, rtol=1e-4, atol=1e-5)


def test_dropout_only_in_training(backend):
    x = np.random.default_rng(1).normal(size=(2, 4, 3)).astype("float32")
    for layer, call in (
        (L.MultiHeadAttention(2, 2, dropout=0.5, seed=1), lambda lay, **k: lay(x, x, **k)),
        (L.Attention(dropout=0.5, seed=1), lambda lay, **k: lay([x, x], **k)),
        (L.AdditiveAttention(dropout=0.5, seed=1), lambda lay, **k: lay([x, x], **k)),
    ):
        a, b = _np(call(layer)), _np(call(layer, training=False))
        np.testing.assert_array_equal(a, b)
        c = _np(call(layer, training=True))
        assert not np.allclose(a, c)


def test_fully_masked_query_row_gives_uniform_weights(backend):
    """As tf.keras 2 and Keras 3's fused attention (see test_masks_from_the_graph...)."""
    x = np.random.default_rng(0).normal(size=(1, 3, 2)).astype("float32")
    mha = L.MultiHeadAttention(1, 2)
    mha(x, x)
    keep = np.array([[True, False, True]])
    out, scores = mha.call(
        [backend.asarray(x), backend.asarray(x)],
        mask=[backend.asarray(keep), None, None],
        return_attention_scores=True,
    )
    scores = _np(scores)
    np.testing.assert_allclose(scores[0, :, 1], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(scores[0, :, 0].sum(-1), 1.0, rtol=1e-6)


# -- errors ---------------------------------------------------------------------------------------
def test_errors():
    with pytest.raises(TypeError, match="key_dim is required"):
        L.MultiHeadAttention(num_heads=2)
    with pytest.raises(TypeError, match="num_heads is required"):
        L.MultiHeadAttention(key_dim=2)
    with pytest.raises(ValueError, match="num_heads"):
        L.MultiHeadAttention(num_heads=0, key_dim=2)
    with pytest.raises(ValueError, match="dropout"):
        L.MultiHeadAttention(2, 2, dropout=1.5)
    with pytest.raises(NotImplementedError, match="use_gate"):
        L.MultiHeadAttention(2, 2, use_gate=True)
    with pytest.raises(NotImplementedError, match="sliding_window"):
        L.MultiHeadAttention(2, 2, sliding_window=3)
    with pytest.raises(NotImplementedError, match="flash_attention"):
        L.MultiHeadAttention(2, 2, flash_attention=True)
    with pytest.raises(ValueError, match=r"attention_axes=\[3\] does not fit"):
        L.MultiHeadAttention(2, 2, attention_axes=3)(Input((3, 4, 5)), Input((3, 4, 5)))
    with pytest.raises(ValueError, match="axis 1 is a batch axis"):
        L.MultiHeadAttention(2, 2, attention_axes=2)(Input((3, 4, 5)), Input((2, 4, 5)))
    # the default axes spelled out are fine
    L.MultiHeadAttention(2, 2, attention_axes=(1, 2))(Input((3, 4, 5)), Input((3, 4, 5)))
    with pytest.raises(ValueError, match=r"value and key, except the last one"):
        L.MultiHeadAttention(2, 2, name="m")(Input((3, 4)), Input((5, 4)), Input((6, 4)))
    with pytest.raises(TypeError, match=r"layer m2 \(MultiHeadAttention\) needs query and value"):
        L.MultiHeadAttention(2, 2, name="m2")(Input((3, 4)))
    mha = L.MultiHeadAttention(2, 2, name="m3")
    mha(Input((3, 4)), Input((5, 6)))
    with pytest.raises(ValueError, match=r"m3.*query features of size 4"):
        mha(Input((3, 5)), Input((5, 6)))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        L.MultiHeadAttention(2, 2)(Input((4,)), Input((4,)))
    with pytest.raises(ValueError, match=r"layer a \(Attention\) must be called on a list"):
        L.Attention(name="a")(Input((3, 4)))
    with pytest.raises(ValueError, match="same last dimension"):
        L.Attention()([Input((3, 4)), Input((5, 6))])
    with pytest.raises(ValueError, match="same last dimension"):
        L.AdditiveAttention()([Input((3, 4)), Input((5, 6))])
    with pytest.raises(ValueError, match="score_mode"):
        L.Attention(score_mode="general")
    with pytest.raises(TypeError, match="symbolic tensor"):
        L.MultiHeadAttention(2, 2)(Input((3, 4)), Input((3, 4)), attention_mask=np.ones((1, 3, 3)))


def test_mask_shape_errors(backend):
    x = backend.asarray(np.ones((2, 3, 4), "float32"))
    mha = L.MultiHeadAttention(2, 2, name="mm")
    mha(x, x)
    with pytest.raises(ValueError, match=r"mm \(MultiHeadAttention\): the value mask has shape"):
        mha.call([x, x], mask=[None, backend.asarray(np.ones((2, 4), bool)), None])
    with pytest.raises(ValueError, match="attention_mask has shape"):
        mha.call([x, x], attention_mask=backend.asarray(np.ones((2, 3, 2), bool)))
    with pytest.raises(ValueError, match="mask must be a list"):
        mha.call([x, x], mask=backend.asarray(np.ones((2, 3), bool)))
    att = L.Attention(name="aa")
    att([x, x])
    with pytest.raises(ValueError, match=r"aa \(Attention\): the query mask has shape"):
        att.call([x, x], mask=[backend.asarray(np.ones((2, 2), bool)), None])


def test_masks_with_other_attention_axes_are_refused(backend):
    x = backend.asarray(np.ones((2, 3, 4, 5), "float32"))
    mha = L.MultiHeadAttention(2, 2, attention_axes=2)
    mha(x, x)
    with pytest.raises(NotImplementedError, match=r"masks .*attention_axes=\[2\]"):
        mha.call([x, x], mask=[backend.asarray(np.ones((2, 3, 4), bool)), None, None])


def test_causal_only_for_sequences():
    with pytest.raises(NotImplementedError, match="use_causal_mask"):
        L.MultiHeadAttention(2, 2)(Input((2, 3, 4)), Input((2, 3, 4)), use_causal_mask=True)
