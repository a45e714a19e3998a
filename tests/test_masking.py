"""Masking: the Layer protocol (supports_masking, compute_mask, call(mask=)), masks carried
through functional graphs, merges and nested models, Masking and Embedding(mask_zero=True),
and masked losses and metrics, compared with real Keras 3 (torch backend) on the same
weights and data, on the numpy and torch backends."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, ops
from polykeras import backend as K
from polykeras import layers as L
from polykeras.engine.base_layer import Layer
from polykeras.models import Model, Sequential, load_model, model_from_json
from polykeras.saving.config import deserialize_layer

from helpers import backend_params, run_keras3_script

BACKENDS = backend_params()
TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


# -- the data and weights both sides use -------------------------------------------------------
def _data():
    rng = np.random.default_rng(0)
    ids = np.array(
        [[1, 2, 3, 0, 0, 0], [4, 5, 0, 0, 0, 0], [6, 1, 2, 3, 4, 5], [2, 0, 0, 0, 0, 0]], "int32"
    )
    labels = rng.integers(0, 3, ids.shape).astype("int32")
    sw = rng.uniform(0.5, 2.0, ids.shape).astype("float32")
    seq = rng.normal(size=(3, 5, 3)).astype("float32")
    seq[0, 3:] = 0
    seq[1, 1] = 0
    seq[2, 0, 0] = 0  # one zero feature does not mask a timestep
    target = rng.normal(size=(3, 5, 2)).astype("float32")
    a = rng.normal(size=(2, 4, 3)).astype("float32")
    a[0, 2:] = 0
    b = rng.normal(size=(2, 4, 3)).astype("float32")
    b[0, 3:] = 0
    b[1, 0] = 0
    ids3 = rng.integers(0, 7, (2, 3, 4)).astype("int32")
    emb_w = [
        rng.normal(size=s).astype("float32") * 0.5 for s in [(7, 5), (5, 4), (4,), (4, 3), (3,)]
    ]
    mk_w = [rng.normal(size=s).astype("float32") for s in [(3, 2), (2,)]]
    return dict(
        ids=ids,
        labels=labels,
        sw=sw,
        seq=seq,
        target=target,
        a=a,
        b=b,
        ids3=ids3,
        **{f"emb_w{i}": w for i, w in enumerate(emb_w)},
        **{f"mk_w{i}": w for i, w in enumerate(mk_w)},
    )


DATA = _data()

KERAS_SCRIPT = r"""
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import keras
from keras import layers as L

d = dict(np.load(sys.argv[1]))
folder = os.path.dirname(sys.argv[2])
out = {}


def npy(t):
    return keras.ops.convert_to_numpy(t)


# 1. Embedding(mask_zero) -> Dense -> Dense(softmax), one label per timestep
ids, labels, sw = d["ids"], d["labels"], d["sw"]
inp = keras.Input((ids.shape[1],), dtype="int32")
emb = L.Embedding(7, 5, mask_zero=True, name="emb")
h = L.Dense(4, activation="tanh", name="h")(emb(inp))
y = L.Dense(3, activation="softmax", name="out")(h)
model = keras.Model(inp, y)
model.set_weights([d[f"emb_w{i}"] for i in range(5)])
out["emb/mask"] = npy(emb.compute_mask(ids))
res = model(ids)
out["emb/out_mask"] = npy(res._keras_mask)
out["emb/pred"] = npy(res)
model.compile(
    keras.optimizers.SGD(0.1),
    "sparse_categorical_crossentropy",
    metrics=["sparse_categorical_accuracy"],
    weighted_metrics=["sparse_categorical_crossentropy"],
)
n = len(ids)
ev = model.evaluate(ids, labels, batch_size=n, verbose=0, return_dict=True)
ev_sw = model.evaluate(ids, labels, sample_weight=sw, batch_size=n, verbose=0, return_dict=True)
tr = model.train_on_batch(ids, labels, sample_weight=sw, return_dict=True)
out["emb/evaluate"] = json.dumps({k: float(v) for k, v in ev.items()})
out["emb/evaluate_sw"] = json.dumps({k: float(v) for k, v in ev_sw.items()})
out["emb/train"] = json.dumps({k: float(v) for k, v in tr.items()})
for i, w in enumerate(model.get_weights()):
    out[f"emb/after{i}"] = w
out["emb/pred_after"] = model.predict(ids, verbose=0)
model.save(os.path.join(folder, "emb.keras"))

# 2. Masking -> Dense, mse
seq, target = d["seq"], d["target"]
inp = keras.Input(seq.shape[1:])
mk = L.Masking(mask_value=0.0, name="mk")
y = L.Dense(2, name="d")(mk(inp))
model = keras.Model(inp, y)
model.set_weights([d["mk_w0"], d["mk_w1"]])
res = model(seq)
out["mk/mask"] = npy(mk.compute_mask(seq))
out["mk/out_mask"] = npy(res._keras_mask)
out["mk/masked"] = npy(mk(seq))
out["mk/pred"] = npy(res)
model.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"])
tr = model.train_on_batch(seq, target, return_dict=True)
out["mk/train"] = json.dumps({k: float(v) for k, v in tr.items()})
for i, w in enumerate(model.get_weights()):
    out[f"mk/after{i}"] = w
out["mk/config"] = json.dumps(mk.get_config())
model.save(os.path.join(folder, "mk.keras"))

# 3. merges: how masks combine
a, b = d["a"], d["b"]
ia, ib = keras.Input(a.shape[1:]), keras.Input(b.shape[1:])
ma, mb = L.Masking(name="ma")(ia), L.Masking(name="mb")(ib)
outs = [
    L.Add()([ma, mb]),
    L.Add()([ma, ib]),
    L.Concatenate(axis=-1)([ma, mb]),
    L.Concatenate(axis=-1)([ma, ib]),
    L.Concatenate(axis=1)([ma, mb]),
    L.Concatenate(axis=1)([ma, ib]),
    L.Average()([ma, mb]),
    L.Dot(axes=2)([ma, mb]),
]
model = keras.Model([ia, ib], outs)
for i, t in enumerate(model([a, b])):
    m = getattr(t, "_keras_mask", None)
    out[f"merge/{i}"] = np.zeros(0, bool) if m is None else npy(m)
    out[f"merge/{i}/none"] = np.array(m is None)

# 4. Embedding of indices of rank 3, with mask_zero
ids3 = d["ids3"]
emb3 = L.Embedding(7, 2, mask_zero=True)
emb3.build(ids3.shape)
emb3.set_weights([d["emb_w0"][:, :2]])
out["emb3/out"] = npy(emb3(ids3))
out["emb3/mask"] = npy(emb3.compute_mask(ids3))

np.savez(sys.argv[2], **out)
"""

MERGES = 8


@pytest.fixture(scope="module")
def keras3(tmp_path_factory):
    folder = tmp_path_factory.mktemp("masking_keras3")
    return run_keras3_script(folder, KERAS_SCRIPT, DATA), folder


# -- the models on our side ----------------------------------------------------------------------
def _emb_model(length=6):
    inp = polykeras.Input((length,), dtype="int32")
    emb = L.Embedding(7, 5, mask_zero=True, name="emb")
    h = L.Dense(4, activation="tanh", name="h")(emb(inp))
    y = L.Dense(3, activation="softmax", name="out")(h)
    model = Model(inp, y)
    model.set_weights([DATA[f"emb_w{i}"] for i in range(5)])
    return model, emb


def _compile_emb(model, temporal=True):
    model.compile(
        polykeras.optimizers.SGD(learning_rate=0.1),
        "sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
        weighted_metrics=["sparse_categorical_crossentropy"],
        sample_weight_mode="temporal" if temporal else None,
    )


def _mk_model():
    inp = polykeras.Input((5, 3))
    mk = L.Masking(mask_value=0.0, name="mk")
    y = L.Dense(2, name="d")(mk(inp))
    model = Model(inp, y)
    model.set_weights([DATA["mk_w0"], DATA["mk_w1"]])
    return model, mk


def _ref(results, key):
    return json.loads(str(results[key]))


# -- masks as Keras 3 computes them ----------------------------------------------------------
def test_embedding_mask_zero_mask_and_predictions(backend, keras3):
    results, _ = keras3
    model, emb = _emb_model()
    ids = DATA["ids"]
    np.testing.assert_array_equal(_np(emb.compute_mask(backend.asarray(ids))), results["emb/mask"])
    np.testing.assert_array_equal(_np(model.compute_mask(ids)), results["emb/out_mask"])
    np.testing.assert_allclose(model.predict(ids, verbose=0), results["emb/pred"], **TOL)
    # the symbolic tensors say which outputs are masked, and with what shape
    assert emb.output._keras_mask.shape == (None, 6)
    assert model.output._keras_mask is not None and model.output._keras_mask.dtype == "bool"
    assert model.get_layer("out").output_mask.shape == (None, 6)


def test_masking_layer_as_keras(backend, keras3):
    results, _ = keras3
    model, mk = _mk_model()
    seq = DATA["seq"]
    np.testing.assert_array_equal(_np(mk.compute_mask(backend.asarray(seq))), results["mk/mask"])
    np.testing.assert_allclose(_np(mk(seq)), results["mk/masked"], **TOL)
    np.testing.assert_array_equal(_np(model.compute_mask(seq)), results["mk/out_mask"])
    np.testing.assert_allclose(model.predict(seq, verbose=0), results["mk/pred"], **TOL)


def test_merge_masks_as_keras(backend, keras3):
    results, _ = keras3
    ia, ib = polykeras.Input((4, 3)), polykeras.Input((4, 3))
    ma, mb = L.Masking(name="ma")(ia), L.Masking(name="mb")(ib)
    outs = [
        L.Add()([ma, mb]),
        L.Add()([ma, ib]),
        L.Concatenate(axis=-1)([ma, mb]),
        L.Concatenate(axis=-1)([ma, ib]),
        L.Concatenate(axis=1)([ma, mb]),
        L.Concatenate(axis=1)([ma, ib]),
        L.Average()([ma, mb]),
        L.Dot(axes=2)([ma, mb]),
    ]
    model = Model([ia, ib], outs)
    masks = model.compute_mask([DATA["a"], DATA["b"]])
    for i in range(MERGES):
        none = bool(results[f"merge/{i}/none"])
        assert (masks[i] is None) == none, f"merge output {i}"
        assert (outs[i]._keras_mask is None) == none, f"merge output {i} (symbolic)"
        if not none:
            np.testing.assert_array_equal(_np(masks[i]), results[f"merge/{i}"], err_msg=str(i))
            assert outs[i]._keras_mask.shape[1:] == results[f"merge/{i}"].shape[1:]


def test_embedding_of_rank_3_indices(backend, keras3):
    results, _ = keras3
    ids3 = DATA["ids3"]
    inp = polykeras.Input((3, 4), dtype="int32")
    emb = L.Embedding(7, 2, mask_zero=True)
    model = Model(inp, emb(inp))
    emb.set_weights([DATA["emb_w0"][:, :2]])
    np.testing.assert_allclose(model.predict(ids3, verbose=0), results["emb3/out"], **TOL)
    np.testing.assert_array_equal(_np(model.compute_mask(ids3)), results["emb3/mask"])
    assert model.output._keras_mask.shape == (None, 3, 4)


# -- masked losses and metrics -----------------------------------------------------------------
def test_masked_loss_and_metrics_as_keras(backend, keras3):
    results, _ = keras3
    ids, labels, sw = DATA["ids"], DATA["labels"], DATA["sw"]
    model, _ = _emb_model()
    _compile_emb(model)
    n = len(ids)
    ref = _ref(results, "emb/evaluate")
    got = model.evaluate(ids, labels, batch_size=n, verbose=0)
    names = model.metrics_names
    assert names[0] == "loss"
    np.testing.assert_allclose(got[0], ref["loss"], **TOL)
    np.testing.assert_allclose(got[1], ref["sparse_categorical_accuracy"], **TOL)
    np.testing.assert_allclose(got[2], ref["sparse_categorical_crossentropy"], **TOL)
    ref = _ref(results, "emb/evaluate_sw")
    got = model.evaluate(ids, labels, sample_weight=sw, batch_size=n, verbose=0)
    np.testing.assert_allclose(
        got,
        [ref["loss"], ref["sparse_categorical_accuracy"], ref["sparse_categorical_crossentropy"]],
        **TOL,
    )
    # one training step with temporal sample weights: loss, metrics, weights after
    ref = _ref(results, "emb/train")
    got = model.train_on_batch(ids, labels, sample_weight=sw)
    np.testing.assert_allclose(
        got,
        [ref["loss"], ref["sparse_categorical_accuracy"], ref["sparse_categorical_crossentropy"]],
        **TOL,
    )
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, results[f"emb/after{i}"], err_msg=f"weight {i}", **TOL)


def test_masking_training_step_as_keras(backend, keras3):
    results, _ = keras3
    model, _ = _mk_model()
    model.compile(polykeras.optimizers.SGD(learning_rate=0.1), "mse", metrics=["mae"])
    ref = _ref(results, "mk/train")
    got = model.train_on_batch(DATA["seq"], DATA["target"])
    np.testing.assert_allclose(got, [ref["loss"], ref["mae"]], **TOL)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, results[f"mk/after{i}"], err_msg=f"weight {i}", **TOL)


def test_masked_loss_equals_the_loss_of_the_unpadded_data(backend):
    ids, labels = DATA["ids"], DATA["labels"]
    model, _ = _emb_model(length=None)
    _compile_emb(model, temporal=False)
    padded = model.evaluate(ids, labels, batch_size=len(ids), verbose=0)
    # each sequence alone, without its padding: a mean over its own tokens
    lengths = (ids != 0).sum(axis=1)
    per_seq = [
        model.evaluate(ids[i : i + 1, :n], labels[i : i + 1, :n], verbose=0)
        for i, n in enumerate(lengths)
    ]
    total = sum(r[0] * n for r, n in zip(per_seq, lengths)) / lengths.sum()
    accuracy = sum(r[1] * n for r, n in zip(per_seq, lengths)) / lengths.sum()
    np.testing.assert_allclose(padded[0], total, **TOL)
    np.testing.assert_allclose(padded[1], accuracy, **TOL)
    # the padded positions really are left out: changing their labels changes nothing
    other = labels.copy()
    other[ids == 0] = (other[ids == 0] + 1) % 3
    np.testing.assert_allclose(model.evaluate(ids, other, batch_size=4, verbose=0), padded, **TOL)


def test_per_sample_weights_with_a_mask(backend):
    # Keras 3 cannot combine (samples,) weights with a (samples, timesteps) mask; here the
    # weight of each sample scales its kept timesteps: sum(loss * w * mask) / kept
    ids, labels = DATA["ids"], DATA["labels"]
    sw = np.array([1.0, 2.0, 0.5, 1.5], "float32")
    model, _ = _emb_model()
    _compile_emb(model, temporal=False)
    got = model.evaluate(ids, labels, sample_weight=sw, batch_size=4, verbose=0)
    probs = model.predict(ids, verbose=0)
    ce = -np.log(np.take_along_axis(probs, labels[..., None], -1)[..., 0])
    mask = ids != 0
    w = sw[:, None] * mask
    np.testing.assert_allclose(got[0], (ce * w).sum() / mask.sum(), **TOL)
    np.testing.assert_allclose(got[2], (ce * w).sum() / w.sum(), **TOL)


def test_fit_on_padded_data_matches_keras_step(backend, keras3):
    results, _ = keras3
    model, _ = _emb_model()
    _compile_emb(model)
    model.fit(
        DATA["ids"],
        DATA["labels"],
        sample_weight=DATA["sw"],
        batch_size=4,
        epochs=1,
        verbose=0,
        shuffle=False,
    )
    np.testing.assert_allclose(
        model.predict(DATA["ids"], verbose=0), results["emb/pred_after"], **TOL
    )


# -- custom layers, nested models, Sequential -------------------------------------------------
class MaskedMean(Layer):
    """Averages over the kept timesteps; its output has no mask."""

    supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        w = ops.expand_dims(ops.cast(mask, "float32"), -1)
        return ops.divide(ops.sum(ops.multiply(inputs, w), axis=1), ops.sum(w, axis=1))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


class DropLast(Layer):
    """Drops the last timestep, and the last column of the mask with it."""

    def call(self, inputs, mask=None):
        return inputs[:, :-1]

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else mask[:, :-1]

    def compute_output_shape(self, input_shape):
        n = input_shape[1]
        return (input_shape[0], None if n is None else n - 1, input_shape[2])


class Positive(Layer):
    """Makes a mask of its own: timesteps whose first feature is positive."""

    def compute_mask(self, inputs, mask=None):
        return ops.greater(inputs[:, :, 0], 0.0)


def _masked_mean_ref(x, mask):
    w = mask[..., None].astype("float32")
    return (x * w).sum(1) / w.sum(1)


def test_custom_layers_take_and_return_masks(backend):
    seq = DATA["seq"]
    inp = polykeras.Input((5, 3))
    masked = L.Masking()(inp)
    cut = DropLast()(masked)
    assert DropLast.supports_masking  # writing compute_mask says so, as in Keras 3
    assert cut._keras_mask.shape == (None, 4)
    out = MaskedMean()(cut)
    assert out._keras_mask is None
    model = Model(inp, out)
    mask = np.any(seq != 0, axis=-1)
    expected = _masked_mean_ref(seq[:, :-1], mask[:, :-1])
    np.testing.assert_allclose(model.predict(seq, verbose=0), expected, **TOL)
    # a layer that makes its own mask
    own = Positive()(inp)
    assert own._keras_mask.shape == (None, 5)
    model = Model(inp, MaskedMean()(own))
    np.testing.assert_allclose(
        model.predict(seq, verbose=0), _masked_mean_ref(seq, seq[:, :, 0] > 0), **TOL
    )
    # the eager call takes mask= too
    got = MaskedMean()(seq, mask=mask)
    np.testing.assert_allclose(_np(got), _masked_mean_ref(seq, mask), **TOL)


def test_masks_reach_a_layer_through_merges_and_nested_models(backend):
    ids = DATA["ids"]
    inp = polykeras.Input((6,), dtype="int32")
    e1 = L.Embedding(7, 3, mask_zero=True)(inp)
    e2 = L.Embedding(7, 3, mask_zero=True)(inp)
    added = L.Add()([e1, e2])
    out = MaskedMean()(added)
    model = Model(inp, out)
    x1, x2 = model.layers[1], model.layers[2]
    vec = x1.get_weights()[0][ids] + x2.get_weights()[0][ids]
    np.testing.assert_allclose(
        model.predict(ids, verbose=0), _masked_mean_ref(vec, ids != 0), **TOL
    )

    # an inner model that passes its input's mask on, used as a layer
    seq_in = polykeras.Input((6, 3))
    inner = Model(seq_in, L.Dense(3, name="inner_dense")(seq_in), name="inner")
    outer_in = polykeras.Input((6,), dtype="int32")
    emb = L.Embedding(7, 3, mask_zero=True)
    nested = inner(emb(outer_in))
    assert nested._keras_mask is not None
    model = Model(outer_in, MaskedMean()(nested))
    k, b = inner.get_layer("inner_dense").get_weights()
    vec = emb.get_weights()[0][ids] @ k + b
    np.testing.assert_allclose(
        model.predict(ids, verbose=0), _masked_mean_ref(vec, ids != 0), **TOL
    )
    np.testing.assert_array_equal(
        _np(
            model.get_layer("inner").compute_mask(
                backend.asarray(emb.get_weights()[0][ids]), backend.asarray(ids != 0)
            )
        ),
        ids != 0,
    )

    # an inner model that makes the mask itself
    inner2_in = polykeras.Input((6,), dtype="int32")
    inner2 = Model(inner2_in, L.Embedding(7, 3, mask_zero=True)(inner2_in))
    x = polykeras.Input((6,), dtype="int32")
    model = Model(x, MaskedMean()(inner2(x)))
    vec = inner2.layers[1].get_weights()[0][ids]
    np.testing.assert_allclose(
        model.predict(ids, verbose=0), _masked_mean_ref(vec, ids != 0), **TOL
    )


def test_sequential_carries_masks(backend):
    seq = DATA["seq"]
    model = Sequential([L.Masking(input_shape=(5, 3)), L.Dense(2), L.Dropout(0.1), MaskedMean()])
    k, b = model.layers[1].get_weights()
    np.testing.assert_allclose(
        model.predict(seq, verbose=0), _masked_mean_ref(seq @ k + b, np.any(seq != 0, -1)), **TOL
    )


def test_lambda_mask_and_arguments(backend):
    seq = DATA["seq"]
    inp = polykeras.Input((5, 3))
    masked = L.Masking()(inp)
    # without mask=, a Lambda drops the mask (Keras' warning); with it, keeps or sets one
    with pytest.warns(UserWarning, match="does not support masking"):
        dropped = L.Lambda(lambda x: x * 2.0)(masked)
    assert dropped._keras_mask is None
    kept = L.Lambda(lambda x, k: x * k, mask=lambda x, m: m, arguments={"k": 3.0})(masked)
    assert kept._keras_mask.shape == (None, 5)
    fixed = np.array([True, False, True, True, False])
    fixed_mask = np.broadcast_to(fixed, (3, 5))
    set_fixed = L.Lambda(lambda x: x, mask=fixed_mask)(inp)
    seen = {}

    def takes_mask(x, mask=None):
        seen["mask"] = mask
        return x

    with pytest.warns(UserWarning, match="does not support masking"):
        consumer = L.Lambda(takes_mask)(kept)  # takes the mask, returns none
    model = Model(inp, [MaskedMean()(kept), MaskedMean()(set_fixed), consumer])
    a, b, _ = model.predict(seq, verbose=0)
    mask = np.any(seq != 0, -1)
    np.testing.assert_allclose(a, _masked_mean_ref(seq * 3.0, mask), **TOL)
    np.testing.assert_allclose(b, _masked_mean_ref(seq, fixed_mask), **TOL)
    np.testing.assert_array_equal(_np(seen["mask"]), mask)


def test_identity_passes_mask(backend):
    inp = polykeras.Input((5, 3))
    out = L.Identity()(L.Masking()(inp))
    assert out._keras_mask.shape == (None, 5)
    np.testing.assert_allclose(Model(inp, out).predict(DATA["seq"], verbose=0), DATA["seq"])


# -- a layer without masking drops the mask, as Keras 3 does ------------------------------------
def test_layer_without_masking_warns_and_drops(backend):
    inp = polykeras.Input((5, 3))
    masked = L.Masking()(inp)
    with pytest.warns(
        UserWarning,
        match=r"Layer 'flat' \(of type Flatten\) was passed an input "
        "with a mask attached to it",
    ):
        flat = L.Flatten(name="flat")(masked)
    assert flat._keras_mask is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L.Flatten()(inp)  # no mask, no warning
        L.Dense(2)(masked)  # supports masking
        assert (masked * 2.0)._keras_mask is None  # ops drop masks silently, as in Keras 3
    emb = L.Embedding(7, 2)  # supports_masking follows mask_zero, as in Keras
    assert not emb.supports_masking


# -- bad input ------------------------------------------------------------------------------------
def test_bad_masks_are_refused_clearly(backend):
    seq = DATA["seq"]
    layer = MaskedMean(name="mm")
    with pytest.raises(ValueError, match=r"mm.*mask has shape \(3, 4\).*\(3, 5, 3\)"):
        layer(seq, mask=np.ones((3, 4), bool))
    with pytest.raises(TypeError, match=r"mm.*mask must be boolean.*float32"):
        layer(seq, mask=np.full((3, 5), 0.5, "float32"))
    with pytest.raises(TypeError, match=r"mm.*mask must be boolean"):
        layer(seq, mask=np.array([["a"] * 5] * 3))
    # 0/1 numbers are a mask
    np.testing.assert_allclose(_np(layer(seq, mask=np.ones((3, 5), "int32"))), seq.mean(1), **TOL)
    with pytest.raises(ValueError, match=r"mask has shape \(None, 4\).*\(None, 5, 3\)"):
        MaskedMean()(polykeras.Input((5, 3)), mask=polykeras.Input((4,)))
    with pytest.raises(TypeError, match="not a symbolic tensor"):
        MaskedMean()(polykeras.Input((5, 3)), mask=np.ones((3, 5), bool))
    model, _ = _mk_model()
    with pytest.raises(ValueError, match=r"model.*mask"):
        model(seq, mask=[None, None])
    with pytest.raises(ValueError, match=r"Add.*list"):
        L.Add().compute_mask([seq, seq], np.ones((3, 5), bool))
    with pytest.raises(TypeError, match="mask_value"):
        L.Masking(mask_value="zero")

    class Broken(Layer):
        def compute_mask(self, inputs, mask=None):
            raise RuntimeError("no mask here")

    Broken(name="quiet")(polykeras.Input((5, 3)))  # no mask in: it makes none
    with pytest.raises(ValueError, match=r"broken.*output mask.*no mask here"):
        Broken(name="broken")(L.Masking()(polykeras.Input((5, 3))))


# -- files ----------------------------------------------------------------------------------------
def test_config_json_and_hdf5_round_trips(backend, tmp_path):
    mk = L.Masking(mask_value=-1.0, name="mk")
    again = L.Masking.from_config(mk.get_config())
    assert again.mask_value == -1.0 and again.get_config() == mk.get_config()
    emb = L.Embedding(7, 5, mask_zero=True)
    assert L.Embedding.from_config(emb.get_config()).mask_zero is True
    assert deserialize_layer({"class_name": "Identity", "config": {"name": "i"}}).name == "i"

    model, _ = _emb_model()
    ids = DATA["ids"]
    pred = model.predict(ids, verbose=0)
    rebuilt = model_from_json(model.to_json())
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_allclose(rebuilt.predict(ids, verbose=0), pred, **TOL)
    np.testing.assert_array_equal(_np(rebuilt.compute_mask(ids)), ids != 0)

    _compile_emb(model, temporal=False)
    for name in ("m.h5", "m.keras"):
        model.save(str(tmp_path / name))
        loaded = load_model(str(tmp_path / name))
        np.testing.assert_allclose(loaded.predict(ids, verbose=0), pred, **TOL)
        assert loaded.get_layer("emb").mask_zero is True
        np.testing.assert_allclose(
            loaded.evaluate(ids, DATA["labels"], verbose=0),
            model.evaluate(ids, DATA["labels"], verbose=0),
            **TOL,
        )

    seq_model, _ = _mk_model()
    for name in ("s.h5", "s.keras"):
        seq_model.save(str(tmp_path / name))
        loaded = load_model(str(tmp_path / name), compile=False)
        assert loaded.get_layer("mk").mask_value == 0.0
        np.testing.assert_allclose(
            loaded.predict(DATA["seq"], verbose=0), seq_model.predict(DATA["seq"], verbose=0), **TOL
        )


def test_files_written_by_keras3_load(backend, keras3):
    results, folder = keras3
    emb_model = load_model(str(folder / "emb.keras"), compile=False)
    np.testing.assert_allclose(
        emb_model.predict(DATA["ids"], verbose=0), results["emb/pred_after"], **TOL
    )
    np.testing.assert_array_equal(_np(emb_model.compute_mask(DATA["ids"])), results["emb/out_mask"])
    mk_model = load_model(str(folder / "mk.keras"), compile=False)
    np.testing.assert_array_equal(_np(mk_model.compute_mask(DATA["seq"])), results["mk/out_mask"])
    cfg = json.loads(str(results["mk/config"]))
    assert L.Masking.from_config(cfg).mask_value == 0.0


# -- end to end with an LSTM (helper E's masked recurrence, through the same protocol) ----------
def test_padded_lstm_model_equals_unpadded(backend):
    ids = DATA["ids"]
    labels = DATA["labels"]
    inp = polykeras.Input((None,), dtype="int32")
    x = L.Embedding(7, 4, mask_zero=True)(inp)
    seq = L.LSTM(3, return_sequences=True)(x)
    assert seq._keras_mask is not None
    per_step = L.Dense(3, activation="softmax")(seq)
    last = L.Dense(1)(L.LSTM(2)(seq))
    assert last._keras_mask is None
    model = Model(inp, [per_step, last])
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"])
    steps, final = model.predict(ids, verbose=0)
    target = np.linspace(0, 1, len(ids)).reshape(-1, 1).astype("float32")
    loss = model.evaluate(ids, [labels, target], batch_size=len(ids), verbose=0)
    lengths = (ids != 0).sum(1)
    parts = []
    for i, n in enumerate(lengths):
        s, f = model.predict(ids[i : i + 1, :n], verbose=0)
        np.testing.assert_allclose(s[0], steps[i, :n], **TOL)
        np.testing.assert_allclose(f[0], final[i], **TOL)
        parts.append(
            model.evaluate(
                ids[i : i + 1, :n], [labels[i : i + 1, :n], target[i : i + 1]], verbose=0
            )
        )
    # the per-timestep loss is a mean over all kept tokens; the last output's over samples
    step_loss = sum(p[1] * n for p, n in zip(parts, lengths)) / lengths.sum()
    np.testing.assert_allclose(loss[1], step_loss, **TOL)
    np.testing.assert_allclose(loss[2], np.mean([p[2] for p in parts]), **TOL)
