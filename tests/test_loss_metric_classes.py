"""Keras' loss classes and stateful metric classes: numbers against real Keras 3, compile /
fit / evaluate with metric objects, get / serialize / custom objects, saving, refusals."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras as keras
from polykeras import layers, losses, metrics
from polykeras.saving import custom_object_scope, get_custom_objects

RNG = np.random.default_rng(7)
N, C = 12, 4


def _case(kind: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(abs(hash(kind)) % 2**32)
    if kind == "bin":  # 0/1 labels, probabilities
        return (r.random((N, 3)) > 0.5).astype("float32"), r.uniform(0.02, 0.98, (N, 3)).astype(
            "float32"
        )
    if kind == "bin1":  # one column
        return (r.random((N, 1)) > 0.5).astype("float32"), r.random((N, 1)).astype("float32")
    if kind == "logit":  # 0/1 labels, raw scores
        return (r.random((N, 3)) > 0.5).astype("float32"), r.normal(0, 3, (N, 3)).astype("float32")
    if kind == "cat":  # one-hot labels, probabilities
        p = r.random((N, C)).astype("float32") + 0.05
        return np.eye(C, dtype="float32")[r.integers(0, C, N)], p / p.sum(-1, keepdims=True)
    if kind == "catlogit":
        return np.eye(C, dtype="float32")[r.integers(0, C, N)], r.normal(0, 3, (N, C)).astype(
            "float32"
        )
    if kind == "sparse":
        return r.integers(0, C, N).astype("int32"), r.normal(0, 3, (N, C)).astype("float32")
    if kind == "sparseprob":
        p = r.random((N, C)).astype("float32") + 0.05
        return r.integers(0, C, (N, 1)).astype("int32"), p / p.sum(-1, keepdims=True)
    if kind == "reg":  # regression targets
        return r.normal(size=(N, 3)).astype("float32"), r.normal(size=(N, 3)).astype("float32")
    if kind == "pos":
        return r.uniform(0.1, 2, (N, 3)).astype("float32"), r.uniform(0.1, 2, (N, 3)).astype(
            "float32"
        )
    if kind == "cat3d":  # classes on axis 1
        t = np.eye(C, dtype="float32")[r.integers(0, C, (N, 2))].transpose(0, 2, 1)
        return t, r.normal(size=(N, C, 2)).astype("float32")
    raise KeyError(kind)


SW = np.random.default_rng(3).uniform(0.0, 2.0, N).astype("float32")

# (key, class, kwargs, data case, reduction)
LOSSES = [
    ("mse", "MeanSquaredError", {}, "reg", None),
    ("mae_sum", "MeanAbsoluteError", {}, "reg", "sum"),
    ("mape", "MeanAbsolutePercentageError", {}, "pos", None),
    ("msle_none", "MeanSquaredLogarithmicError", {}, "pos", "none"),
    ("bce", "BinaryCrossentropy", {}, "bin", None),
    ("bce_logits_ls", "BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.2},
     "logit", None),
    ("cce_ls", "CategoricalCrossentropy", {"label_smoothing": 0.1}, "cat", None),
    ("cce_logits", "CategoricalCrossentropy", {"from_logits": True}, "catlogit", None),
    ("cce_axis", "CategoricalCrossentropy", {"from_logits": True, "axis": 1}, "cat3d", None),
    ("scce_logits", "SparseCategoricalCrossentropy", {"from_logits": True}, "sparse", None),
    ("scce", "SparseCategoricalCrossentropy", {}, "sparseprob", "mean_with_sample_weight"),
    ("hinge", "Hinge", {}, "bin", None),
    ("sqhinge", "SquaredHinge", {}, "bin", None),
    ("cathinge", "CategoricalHinge", {}, "cat", None),
    ("huber", "Huber", {"delta": 0.7}, "reg", None),
    ("logcosh", "LogCosh", {}, "reg", None),
    ("kld", "KLDivergence", {}, "cat", None),
    ("poisson", "Poisson", {}, "pos", None),
    ("cos", "CosineSimilarity", {"axis": -1}, "reg", None),
]  # fmt: skip

# (key, class, kwargs, data case); updated three times, with sample weights the last two
METRICS = [
    ("mean", "Mean", {}, "reg"),
    ("sum", "Sum", {}, "reg"),
    ("acc", "Accuracy", {}, "bin"),
    ("binacc", "BinaryAccuracy", {"threshold": 0.3}, "bin"),
    ("catacc", "CategoricalAccuracy", {}, "cat"),
    ("sparseacc", "SparseCategoricalAccuracy", {}, "sparseprob"),
    ("topk", "TopKCategoricalAccuracy", {"k": 2}, "cat"),
    ("sparsetopk", "SparseTopKCategoricalAccuracy", {"k": 2}, "sparse"),
    ("mse", "MeanSquaredError", {}, "reg"),
    ("mae", "MeanAbsoluteError", {}, "reg"),
    ("rmse", "RootMeanSquaredError", {}, "reg"),
    ("bce", "BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "logit"),
    ("cce", "CategoricalCrossentropy", {}, "cat"),
    ("scce", "SparseCategoricalCrossentropy", {"from_logits": True}, "sparse"),
    ("auc", "AUC", {}, "bin"),
    ("auc_pr", "AUC", {"curve": "PR", "num_thresholds": 50}, "bin"),
    ("auc_minor", "AUC", {"summation_method": "minoring", "thresholds": [0.2, 0.5, 0.7]}, "bin"),
    ("auc_logits", "AUC", {"from_logits": True}, "logit"),
    ("auc_raw_scores", "AUC", {}, "logit"),  # scores outside [0, 1]: Keras clips them
    ("prec_even", "Precision", {"thresholds": [0.0, 0.5, 1.0]}, "logit"),
    ("tp_uneven", "TruePositives", {"thresholds": [0.0, 0.3, 1.0]}, "logit"),
    ("prec", "Precision", {}, "bin"),
    ("prec_thr", "Precision", {"thresholds": [0.2, 0.6]}, "bin"),
    ("prec_topk", "Precision", {"top_k": 2}, "cat"),
    ("rec_class", "Recall", {"class_id": 1}, "cat"),
    ("rec", "Recall", {"thresholds": 0.4}, "bin1"),
    ("tp", "TruePositives", {}, "bin"),
    ("fp", "FalsePositives", {"thresholds": [0.3, 0.8]}, "bin"),
    ("tn", "TrueNegatives", {}, "bin"),
    ("fn", "FalseNegatives", {}, "bin"),
]


def _arrays() -> dict[str, np.ndarray]:
    out = {"sw": SW}
    for kind in {c for *_, c, _r in LOSSES} | {c for *_, c in METRICS}:
        t, p = _case(kind)
        out[f"{kind}__t"], out[f"{kind}__p"] = t, p
    return out


KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    data = dict(np.load(sys.argv[1]))
    spec = json.loads(SPEC)
    sw = data["sw"]
    out = {}
    for key, cls, kw, kind, red in spec["losses"]:
        t, p = data[kind + "__t"], data[kind + "__p"]
        extra = {} if red is None else {"reduction": red}
        loss = getattr(keras.losses, cls)(**kw, **extra)
        out["loss_" + key] = keras.ops.convert_to_numpy(loss(t, p))
        w = sw.reshape(-1, 1) if kind == "cat3d" else sw
        out["lossw_" + key] = keras.ops.convert_to_numpy(loss(t, p, sample_weight=w))
    for key, cls, kw, kind in spec["metrics"]:
        t, p = data[kind + "__t"], data[kind + "__p"]
        m = getattr(keras.metrics, cls)(**kw)
        if cls in ("Mean", "Sum"):
            m.update_state(p)
            m.update_state(p[:5], sample_weight=sw[:5])
            m.update_state(p[5:], sample_weight=sw[5:])
        else:
            m.update_state(t, p)
            m.update_state(t[:5], p[:5], sample_weight=sw[:5])
            m.update_state(t[5:], p[5:], sample_weight=sw[5:])
        out["metric_" + key] = keras.ops.convert_to_numpy(m.result())
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def keras3_ref(tmp_path_factory):
    from helpers import run_keras3_script

    spec = json.dumps({"losses": LOSSES, "metrics": METRICS})
    script = KERAS_SCRIPT.replace("SPEC", repr(spec))
    return run_keras3_script(tmp_path_factory.mktemp("keras3_classes"), script, _arrays())


def _np(x):
    return np.asarray(keras.backend.current().to_numpy(x))


@pytest.mark.parametrize("spec", LOSSES, ids=[s[0] for s in LOSSES])
def test_loss_class_matches_keras3(keras3_ref, spec):
    key, cls, kw, kind, red = spec
    t, p = _case(kind)
    loss = getattr(losses, cls)(**kw, **({} if red is None else {"reduction": red}))
    np.testing.assert_allclose(_np(loss(t, p)), keras3_ref["loss_" + key], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(
        _np(loss(t, p, sample_weight=SW.reshape(-1, 1) if kind == "cat3d" else SW)),
        keras3_ref["lossw_" + key],
        rtol=2e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("spec", METRICS, ids=[s[0] for s in METRICS])
def test_metric_class_matches_keras3(keras3_ref, spec):
    key, cls, kw, kind = spec
    t, p = _case(kind)
    m = getattr(metrics, cls)(**kw)
    if cls in ("Mean", "Sum"):
        m.update_state(p)
        m.update_state(p[:5], sample_weight=SW[:5])
        m.update_state(p[5:], sample_weight=SW[5:])
    else:
        m.update_state(t, p)
        m.update_state(t[:5], p[:5], sample_weight=SW[:5])
        m.update_state(t[5:], p[5:], sample_weight=SW[5:])
    np.testing.assert_allclose(_np(m.result()), keras3_ref["metric_" + key], rtol=1e-5, atol=1e-6)


# -- the objects themselves -------------------------------------------------------------------
def test_metric_state_reset_call_and_config():
    m = metrics.Precision(thresholds=0.4, name="p")
    t, p = _case("bin")
    value = float(_np(m(t, p)))  # __call__: update, then result
    assert value == pytest.approx(float(_np(m.result())))
    assert m.name == "p" and m.dtype == "float32"
    assert [v.name for v in m.variables] == ["p/true_positives", "p/false_positives"]
    m.reset_states()
    assert float(_np(m.result())) == 0.0
    m2 = metrics.Precision.from_config(m.get_config())
    assert m2.get_config() == m.get_config()
    auc = metrics.AUC(num_thresholds=10, curve="pr")
    assert metrics.AUC.from_config(auc.get_config()).get_config() == auc.get_config()
    assert len(auc.thresholds) == 10


def test_loss_config_get_serialize_deserialize():
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    cfg = loss.get_config()
    assert cfg == {
        "reduction": "sum_over_batch_size",
        "name": "categorical_crossentropy",
        "from_logits": True,
        "label_smoothing": 0.1,
        "axis": -1,
    }
    entry = losses.serialize(loss)
    assert entry["class_name"] == "CategoricalCrossentropy"
    again = losses.get(entry)
    assert isinstance(again, losses.CategoricalCrossentropy) and again.get_config() == cfg
    assert losses.deserialize(entry).get_config() == cfg
    assert isinstance(losses.get("CategoricalCrossentropy"), losses.CategoricalCrossentropy)
    assert losses.Huber(delta=2.0, reduction="auto").get_config()["reduction"] == (
        "sum_over_batch_size"
    )
    m = metrics.get({"class_name": "AUC", "config": {"num_thresholds": 20}})
    assert isinstance(m, metrics.AUC) and m.num_thresholds == 20
    assert metrics.serialize(metrics.Recall(name="r"))["config"]["name"] == "r"


def test_custom_objects_resolve_in_get():
    class MyLoss(losses.Loss):
        def call(self, y_true, y_pred):
            return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)

    with custom_object_scope({"MyLoss": MyLoss}):
        obj = losses.get("MyLoss")
        assert isinstance(obj, MyLoss)
        assert isinstance(losses.get({"class_name": "MyLoss", "config": {}}), MyLoss)
    with pytest.raises(ValueError, match="Unknown loss"):
        losses.get("MyLoss")
    get_custom_objects()["my_metric_fn"] = metrics.binary_accuracy
    try:
        assert metrics.get("my_metric_fn") is metrics.binary_accuracy
    finally:
        del get_custom_objects()["my_metric_fn"]


# -- compile / fit / evaluate -------------------------------------------------------------------
def _data(n=40, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 5)).astype("float32")
    y = np.eye(3, dtype="float32")[r.integers(0, 3, n)]
    return x, y


def _model(activation=None, seed=1):
    r = np.random.default_rng(seed)
    m = keras.Sequential([layers.Dense(3, input_shape=(5,), activation=activation)])
    m.set_weights([r.normal(size=(5, 3)).astype("float32"), np.zeros(3, "float32")])
    return m


def test_loss_object_trains_like_the_function():
    x, y = _data()
    a, b = _model(), _model("softmax")
    a.compile("sgd", loss=losses.CategoricalCrossentropy(from_logits=True))
    b.compile("sgd", loss="categorical_crossentropy")
    ha = a.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    hb = b.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    # label smoothing changes the loss; sample weights still apply
    c = _model()
    c.compile("sgd", loss=losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2))
    ref = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    w = np.linspace(0.1, 1.0, len(x)).astype("float32")
    got = c.evaluate(x, y, sample_weight=w, batch_size=len(x), verbose=0)
    want = float(_np(ref(y, c.predict(x, verbose=0), sample_weight=w)))
    assert got == pytest.approx(want, rel=1e-5)


def test_metric_objects_in_fit_and_evaluate():
    x, y = _data(42)
    m = _model("softmax")
    auc, prec = metrics.AUC(), metrics.Precision(name="p")
    m.compile("sgd", loss="categorical_crossentropy", metrics=[auc, "accuracy", prec])
    assert m.metrics_names == ["loss", "auc", "accuracy", "p"]
    assert m._compiled.metric_objects() == [auc, prec]
    batch_logs = []
    cb = keras.callbacks.LambdaCallback(on_batch_end=lambda b, logs: batch_logs.append(dict(logs)))
    w0 = m.get_weights()
    probe = _model("softmax")
    # the epoch's AUC is the AUC over every batch's predictions (made before each step)
    expect_auc, expect_p = metrics.AUC(), metrics.Precision()
    h = m.fit(x, y, batch_size=10, epochs=1, verbose=0, shuffle=False, callbacks=[cb])
    # replay: same steps on a copy, feeding the metrics before each step
    probe.compile("sgd", loss="categorical_crossentropy")
    probe.set_weights(w0)
    running = []
    for start in range(0, 42, 10):
        xb, yb = x[start : start + 10], y[start : start + 10]
        pred = probe.predict(xb, verbose=0)
        expect_auc.update_state(yb, pred)
        expect_p.update_state(yb, pred)
        running.append(float(_np(expect_auc.result())))
        probe.train_on_batch(xb, yb)
    np.testing.assert_allclose([b["auc"] for b in batch_logs], running, rtol=1e-5)
    assert h.history["auc"][0] == pytest.approx(running[-1], rel=1e-5)
    assert h.history["p"][0] == pytest.approx(float(_np(expect_p.result())), rel=1e-5)
    # evaluate starts from a reset state and reports the final result
    res = m.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    fresh = metrics.AUC()
    fresh.update_state(y, m.predict(x, verbose=0))
    assert res["auc"] == pytest.approx(float(_np(fresh.result())), rel=1e-5)
    again = m.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    assert again["auc"] == pytest.approx(res["auc"], rel=1e-6)
    # function metrics keep their batch-size-weighted average
    acc = metrics.categorical_accuracy(y, m.predict(x, verbose=0))
    assert res["accuracy"] == pytest.approx(float(np.mean(_np(acc))), rel=1e-5)


def test_metric_objects_multi_output_and_weighted():
    inp = keras.Input((5,))
    a = layers.Dense(1, activation="sigmoid", name="a")(inp)
    b = layers.Dense(1, activation="sigmoid", name="b")(inp)
    model = keras.Model(inp, [a, b])
    shared = metrics.AUC(name="auc")
    model.compile(
        "sgd",
        loss="binary_crossentropy",
        metrics=[shared],
        weighted_metrics=[metrics.BinaryAccuracy()],
    )
    x = np.random.default_rng(0).normal(size=(20, 5)).astype("float32")
    ya = (x[:, :1] > 0).astype("float32")
    yb = (x[:, 1:2] > 0).astype("float32")
    w = np.linspace(0, 1, 20).astype("float32")
    res = model.evaluate(x, [ya, yb], sample_weight=[w, w], verbose=0, return_dict=True)
    assert {"a_auc", "b_auc", "a_weighted_binary_accuracy", "b_weighted_binary_accuracy"} <= set(
        res
    )
    objs = model._compiled.metric_objects()
    assert len(objs) == 4 and len({id(o) for o in objs}) == 4  # one object per output/table
    pa, pb = model.predict(x, verbose=0)
    ref = metrics.BinaryAccuracy()
    ref.update_state(yb, pb, sample_weight=w)
    assert res["b_weighted_binary_accuracy"] == pytest.approx(float(_np(ref.result())), rel=1e-5)


def test_train_on_batch_reports_this_batch_only():
    x, y = _data(20)
    m = _model("softmax")
    m.compile("sgd", loss="categorical_crossentropy", metrics=[metrics.CategoricalAccuracy()])
    m.train_on_batch(x[:10], y[:10])
    pred = m.predict(x[10:], verbose=0)
    _, acc = m.test_on_batch(x[10:], y[10:])
    want = np.mean(np.argmax(pred, -1) == np.argmax(y[10:], -1))
    assert acc == pytest.approx(want)


# -- saving ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["h5", "keras"])
def test_save_keeps_loss_and_metric_objects(tmp_path, ext):
    x, y = _data()
    m = _model()
    m.compile(
        "sgd",
        loss=losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=[metrics.AUC(num_thresholds=50), "accuracy", metrics.Precision(name="p")],
    )
    before = m.evaluate(x, y, verbose=0)
    path = str(tmp_path / f"m.{ext}")
    m.save(path)
    loaded = keras.models.load_model(path)
    assert loaded._compiled.loss.get_config()["label_smoothing"] == 0.1
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), before, rtol=1e-6)
    assert loaded.metrics_names == ["loss", "auc", "accuracy", "p"]


# -- refusals -----------------------------------------------------------------------------------
def test_refusals_name_the_setting():
    with pytest.raises(ValueError, match="reduction 'avg'"):
        losses.MeanSquaredError(reduction="avg")
    with pytest.raises(NotImplementedError, match="ignore_class"):
        losses.SparseCategoricalCrossentropy(ignore_class=0)
    with pytest.raises(NotImplementedError, match="multi_label"):
        metrics.AUC(multi_label=True)
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="PRGAIN")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.BinaryCrossentropy(label_smoothing=2)
    sym = keras.Input((3,))
    with pytest.raises(TypeError, match="symbolic tensors"):
        losses.MeanSquaredError()(sym, sym)
    x, y = _data(8)
    m = _model()
    with pytest.raises(ValueError, match="reduction='none'"):  # "sum"...: test_keras_gaps
        m.compile("sgd", loss=losses.MeanSquaredError(reduction="none"))
        m.fit(x, y, verbose=0)
    m = _model("softmax")
    m.compile("sgd", loss="mse", metrics=[metrics.Precision(thresholds=[0.3, 0.6])])
    with pytest.raises(ValueError, match="one threshold"):
        m.evaluate(x, y, verbose=0)


# -- Keras 3's constructor arguments, each working or refused ---------------------------------
SIGNATURE_SCRIPT = textwrap.dedent("""
    import inspect, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    out = {}
    for kind, names in (("losses", LOSS_NAMES), ("metrics", METRIC_NAMES)):
        for name in names:
            cls = getattr(getattr(keras, kind), name)
            out[kind + "." + name] = np.array(list(inspect.signature(cls).parameters))
    np.savez(sys.argv[2], **out)
""")

LOSS_CLASSES = sorted({s[1] for s in LOSSES})
METRIC_CLASSES = sorted({s[1] for s in METRICS})


def test_constructor_arguments_are_keras3s(tmp_path):
    import inspect

    from helpers import run_keras3_script

    script = SIGNATURE_SCRIPT.replace("LOSS_NAMES", repr(LOSS_CLASSES)).replace(
        "METRIC_NAMES", repr(METRIC_CLASSES)
    )
    ref = run_keras3_script(tmp_path, script, {"unused": np.zeros(1)})
    for kind, module, names in (
        ("losses", losses, LOSS_CLASSES),
        ("metrics", metrics, METRIC_CLASSES),
    ):
        for name in names:
            ours = list(inspect.signature(getattr(module, name)).parameters)
            assert ours == list(ref[f"{kind}.{name}"]), f"{kind}.{name}"


def test_loss_dtype_and_sparse_axis():
    t, p = _case("catlogit")
    loss = losses.CategoricalCrossentropy(from_logits=True, dtype="float64")
    value = loss(t, p)
    assert keras.backend.current().dtype_name(value) == "float64"
    assert loss.get_config()["dtype"] == "float64"
    with pytest.raises(ValueError, match="dtype"):
        losses.Hinge(dtype="int32")
    labels = np.random.default_rng(0).integers(0, C, (N, 2))
    scores = np.random.default_rng(1).normal(size=(N, C, 2)).astype("float32")
    on_axis1 = losses.SparseCategoricalCrossentropy(from_logits=True, axis=1)(labels, scores)
    moved = losses.SparseCategoricalCrossentropy(from_logits=True)(
        labels, scores.transpose(0, 2, 1)
    )
    np.testing.assert_allclose(_np(on_axis1), _np(moved), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="ignore_class"):
        metrics.SparseCategoricalCrossentropy(ignore_class=1)
    with pytest.raises(NotImplementedError, match="from_sorted_ids"):
        metrics.SparseTopKCategoricalAccuracy(from_sorted_ids=True)


def test_metric_object_counts_kept_positions_of_a_masked_output():
    inp = keras.Input((4,))
    emb = layers.Embedding(5, 1, mask_zero=True)(inp)
    out = layers.Dense(1, activation="sigmoid")(emb)
    model = keras.Model(inp, out)
    model.compile("sgd", loss="binary_crossentropy", metrics=[metrics.BinaryAccuracy()])
    x = np.array([[1, 2, 0, 0], [3, 0, 0, 0], [4, 4, 4, 1]], "float32")
    y = (np.arange(12).reshape(3, 4, 1) % 2).astype("float32")
    res = model.evaluate(x, y, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)
    keep = x != 0
    hits = ((pred[..., 0] > 0.5) == (y[..., 0] == 1))[keep]
    assert res["binary_accuracy"] == pytest.approx(float(hits.mean()), rel=1e-6)


INTEROP_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    data = dict(np.load(sys.argv[1]))
    ours = keras.models.load_model(OURS)
    res = ours.evaluate(data["x"], data["y"], verbose=0, return_dict=True)
    out = {"ours_" + k: np.array(v) for k, v in res.items()}
    out["ours_smoothing"] = np.array(ours.loss.get_config()["label_smoothing"])
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    model.set_weights([data["k"], data["b"]])
    model.compile(
        "sgd",
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2),
        metrics=[keras.metrics.AUC(num_thresholds=30), keras.metrics.Recall(name="r")],
    )
    model.save(THEIRS)
    res = model.evaluate(data["x"], data["y"], verbose=0, return_dict=True)
    out.update({"theirs_" + k: np.array(v) for k, v in res.items()})
    np.savez(sys.argv[2], **out)
""")


def test_keras_files_with_loss_and_metric_objects_cross_to_keras3(tmp_path):
    from helpers import run_keras3_script

    x, y = _data(30)
    m = _model()
    m.compile(
        "sgd",
        loss=losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=[metrics.AUC(num_thresholds=30), metrics.Precision(name="p")],
    )
    ours_path, theirs_path = tmp_path / "ours.keras", tmp_path / "theirs.keras"
    m.save(str(ours_path))
    script = INTEROP_SCRIPT.replace("OURS", repr(str(ours_path))).replace(
        "THEIRS", repr(str(theirs_path))
    )
    kernel, bias = m.get_weights()
    ref = run_keras3_script(tmp_path, script, {"x": x, "y": y, "k": kernel, "b": bias})
    assert float(ref["ours_smoothing"]) == pytest.approx(0.1)
    mine = m.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    for key in ("loss", "auc", "p"):
        assert mine[key] == pytest.approx(float(ref["ours_" + key]), rel=1e-5), key
    loaded = keras.models.load_model(str(theirs_path))
    assert loaded.metrics_names == ["loss", "auc", "r"]
    got = loaded.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    for key in ("loss", "auc", "r"):
        assert got[key] == pytest.approx(float(ref["theirs_" + key]), rel=1e-5), key


def test_accuracy_follows_a_loss_object():
    x, y = _data(16)
    labels = np.argmax(y, -1).astype("int32")
    m = _model()
    m.compile(
        "sgd",
        loss=losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    assert m._compiled.metric_fns[0][0][1] is metrics.sparse_categorical_accuracy
    loss, acc = m.evaluate(x, labels, verbose=0)
    pred = m.predict(x, verbose=0)
    assert acc == pytest.approx(float(np.mean(np.argmax(pred, -1) == labels)))
    want = losses.SparseCategoricalCrossentropy(from_logits=True)(labels, pred)
    assert loss == pytest.approx(float(_np(want)), rel=1e-5)
    b = keras.Sequential([layers.Dense(2, input_shape=(5,))])
    b.compile("sgd", loss=losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    assert b._compiled.metric_fns[0][0][1] is metrics.binary_accuracy
