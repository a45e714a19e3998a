"""Keras 3's focal crossentropies, Dice, Tversky, F-scores, R², IoU metrics and the
"X at fixed Y" metrics: numbers and gradients against real Keras 3 (torch backend), in
compile / fit / evaluate, names, configs, refusals, and state that sums across ranks."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras as keras
from polykeras import autodiff, layers, losses, metrics

N, C = 12, 4


def _case(kind: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(sum(map(ord, kind)))
    if kind == "bin":  # 0/1 labels, probabilities
        t = (r.random((N, 3)) > 0.5).astype("float32")
        return t, r.uniform(0.02, 0.98, (N, 3)).astype("float32")
    if kind == "logit":  # 0/1 labels, raw scores
        t = (r.random((N, 3)) > 0.5).astype("float32")
        return t, r.normal(0, 2, (N, 3)).astype("float32")
    if kind == "multilabel":  # several 0/1 labels per row, probabilities
        t = (r.random((N, C)) > 0.6).astype("float32")
        return t, r.uniform(0.02, 0.98, (N, C)).astype("float32")
    if kind == "cat":  # one-hot labels, probabilities
        p = r.random((N, C)).astype("float32") + 0.05
        return np.eye(C, dtype="float32")[r.integers(0, C, N)], p / p.sum(-1, keepdims=True)
    if kind == "catlogit":
        t = np.eye(C, dtype="float32")[r.integers(0, C, N)]
        return t, r.normal(0, 2, (N, C)).astype("float32")
    if kind == "cat3d":  # classes on axis 1
        t = np.eye(C, dtype="float32")[r.integers(0, C, (N, 2))].transpose(0, 2, 1)
        return t, r.normal(size=(N, C, 2)).astype("float32")
    if kind == "seg":  # masks
        t = (r.random((N, 4, 4)) > 0.5).astype("float32")
        return t, r.uniform(0.02, 0.98, (N, 4, 4)).astype("float32")
    if kind == "reg":
        t = r.normal(size=(N, 3)).astype("float32")
        return t, (t + r.normal(scale=0.7, size=(N, 3))).astype("float32")
    if kind == "pos":
        return r.uniform(0.1, 2, (N, 3)).astype("float32"), r.uniform(0.1, 2, (N, 3)).astype(
            "float32"
        )
    if kind == "ids":  # class ids, a few outside [0, C)
        return r.integers(-1, C + 1, N).astype("int32"), r.integers(0, C, N).astype("int32")
    if kind == "ids2d":  # several ids per sample (flattened)
        return r.integers(0, C, (N, 3)).astype("int32"), r.integers(0, C, (N, 3)).astype("int32")
    if kind == "idsprob":  # ids against scores
        return r.integers(0, C, N).astype("int32"), r.random((N, C)).astype("float32")
    raise KeyError(kind)


SW = np.random.default_rng(3).uniform(0.0, 2.0, N).astype("float32")


def _weights(cls: str, kind: str) -> np.ndarray:
    """The metrics' sample weights: one per id where a sample holds several (Keras 3's IoU
    takes no per-sample weights there)."""
    several = cls in ("IoU", "MeanIoU", "BinaryIoU") and kind in ("ids2d", "bin")
    return np.repeat(SW[:, None], 3, axis=1) if several else SW


# (key, class, kwargs, data case, reduction)
LOSSES = [
    ("bfce", "BinaryFocalCrossentropy", {}, "bin", None),
    ("bfce_bal_logits", "BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.4,
     "gamma": 1.5, "from_logits": True, "label_smoothing": 0.1}, "logit", None),
    ("bfce_sum", "BinaryFocalCrossentropy", {"gamma": 0.0}, "bin", "sum"),
    ("bfce_none", "BinaryFocalCrossentropy", {"apply_class_balancing": True}, "bin", "none"),
    ("cfce", "CategoricalFocalCrossentropy", {}, "cat", None),
    ("cfce_logits", "CategoricalFocalCrossentropy", {"from_logits": True, "label_smoothing": 0.2,
     "gamma": 3.0, "alpha": 0.5}, "catlogit", None),
    ("cfce_alphas", "CategoricalFocalCrossentropy", {"alpha": [0.1, 0.2, 0.3, 0.4]}, "cat",
     "mean_with_sample_weight"),
    ("cfce_axis", "CategoricalFocalCrossentropy", {"from_logits": True, "axis": 1}, "cat3d",
     None),
    ("dice", "Dice", {}, "bin", None),
    ("dice_axis", "Dice", {"axis": [1, 2]}, "seg", None),
    ("dice_none", "Dice", {"axis": 1}, "bin", "none"),
    ("tversky", "Tversky", {"alpha": 0.3, "beta": 0.7}, "bin", None),
    ("tversky_axis", "Tversky", {"axis": 1, "alpha": 0.8}, "bin", "sum"),
]  # fmt: skip

# (key, class, kwargs, data case)
METRICS = [
    ("f1", "F1Score", {}, "cat"),
    ("f1_micro", "F1Score", {"average": "micro", "threshold": 0.5}, "multilabel"),
    ("f1_macro", "F1Score", {"average": "macro", "threshold": 0.4}, "multilabel"),
    ("f1_weighted", "F1Score", {"average": "weighted"}, "cat"),
    ("fbeta", "FBetaScore", {"beta": 2.0, "average": "macro", "threshold": 0.3}, "multilabel"),
    ("fbeta_none", "FBetaScore", {"beta": 0.5}, "multilabel"),
    ("r2", "R2Score", {}, "reg"),
    ("r2_none", "R2Score", {"class_aggregation": None}, "reg"),
    ("r2_var", "R2Score", {"class_aggregation": "variance_weighted_average",
                           "num_regressors": 2}, "reg"),
    ("iou", "IoU", {"num_classes": C, "target_class_ids": [0, 2]}, "ids"),
    ("meaniou", "MeanIoU", {"num_classes": C}, "ids"),
    ("meaniou_2d", "MeanIoU", {"num_classes": C}, "ids2d"),
    ("meaniou_ignore", "MeanIoU", {"num_classes": C, "ignore_class": 1}, "ids"),
    ("meaniou_float", "MeanIoU", {"num_classes": C, "dtype": "float32"}, "ids"),
    ("meaniou_scores", "MeanIoU", {"num_classes": C, "sparse_y_pred": False}, "idsprob"),
    ("onehotiou", "OneHotIoU", {"num_classes": C, "target_class_ids": [1, 3]}, "cat"),
    ("onehotmeaniou", "OneHotMeanIoU", {"num_classes": C}, "cat"),
    ("binaryiou", "BinaryIoU", {}, "bin"),
    ("binaryiou_t", "BinaryIoU", {"target_class_ids": [1], "threshold": 0.3}, "bin"),
    ("p_at_r", "PrecisionAtRecall", {"recall": 0.6}, "bin"),
    ("r_at_p", "RecallAtPrecision", {"precision": 0.5, "num_thresholds": 50}, "bin"),
    ("sens", "SensitivityAtSpecificity", {"specificity": 0.4}, "bin"),
    ("spec_class", "SpecificityAtSensitivity", {"sensitivity": 0.7, "class_id": 2}, "cat"),
    ("spec_one", "SpecificityAtSensitivity", {"sensitivity": 0.5, "num_thresholds": 1}, "bin"),
    ("r_at_p_logits", "RecallAtPrecision", {"precision": 0.6}, "logit"),
    ("mape", "MeanAbsolutePercentageError", {}, "pos"),
    ("cos", "CosineSimilarity", {"axis": -1}, "reg"),
    ("logcosh", "LogCoshError", {}, "reg"),
]  # fmt: skip


def _arrays() -> dict[str, np.ndarray]:
    out = {"sw": SW}
    for kind in {c for *_, c, _r in LOSSES} | {c for *_, c in METRICS}:
        t, p = _case(kind)
        out[f"{kind}__t"], out[f"{kind}__p"] = t, p
    for key, cls, _kw, kind in METRICS:
        out[f"{key}__w"] = _weights(cls, kind)
    return out


KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys, warnings
    os.environ["KERAS_BACKEND"] = "torch"
    warnings.simplefilter("ignore")
    import numpy as np
    import torch
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
        leaf = torch.tensor(p, requires_grad=True)
        value = loss(torch.tensor(t), leaf)
        value.sum().backward()
        out["grad_" + key] = leaf.grad.numpy()
    for key, cls, kw, kind in spec["metrics"]:
        t, p, sw = data[kind + "__t"], data[kind + "__p"], data[key + "__w"]
        m = getattr(keras.metrics, cls)(**kw)
        m.update_state(t, p)
        m.update_state(t[:5], p[:5], sample_weight=sw[:5])
        m.update_state(t[5:], p[5:], sample_weight=sw[5:])
        out["metric_" + key] = keras.ops.convert_to_numpy(m.result())
        m.reset_state()
        m.update_state(t[:7], p[:7])
        out["metric2_" + key] = keras.ops.convert_to_numpy(m.result())
        out["config_" + key] = np.asarray(json.dumps(m.get_config(), sort_keys=True))
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def keras3_ref(tmp_path_factory):
    from helpers import run_keras3_script

    spec = json.dumps({"losses": LOSSES, "metrics": METRICS})
    script = KERAS_SCRIPT.replace("SPEC", repr(spec))
    return run_keras3_script(tmp_path_factory.mktemp("keras3_extra"), script, _arrays())


def _np(x):
    return np.asarray(keras.backend.current().to_numpy(x))


def _loss(spec):
    key, cls, kw, kind, red = spec
    return getattr(losses, cls)(**kw, **({} if red is None else {"reduction": red}))


@pytest.mark.parametrize("spec", LOSSES, ids=[s[0] for s in LOSSES])
def test_loss_matches_keras3(keras3_ref, spec):
    key, _cls, _kw, kind, _red = spec
    t, p = _case(kind)
    loss = _loss(spec)
    np.testing.assert_allclose(_np(loss(t, p)), keras3_ref["loss_" + key], rtol=2e-5, atol=1e-6)
    w = SW.reshape(-1, 1) if kind == "cat3d" else SW
    np.testing.assert_allclose(
        _np(loss(t, p, sample_weight=w)), keras3_ref["lossw_" + key], rtol=2e-5, atol=1e-6
    )


@pytest.mark.parametrize("spec", LOSSES, ids=[s[0] for s in LOSSES])
def test_loss_gradient_matches_keras3(keras3_ref, spec):
    key, _cls, _kw, kind, _red = spec
    t, p = _case(kind)
    loss = _loss(spec)
    B = keras.backend.current()
    t_b = B.asarray(t)

    def value(leaves):
        return keras.ops.sum(loss(t_b, leaves[0])), None

    _v, _aux, grads = autodiff.value_and_grad(value, [B.asarray(p)])
    np.testing.assert_allclose(_np(grads[0]), keras3_ref["grad_" + key], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["bfce", "cfce_logits", "dice_axis", "tversky"])
def test_loss_gradient_matches_finite_differences(name):
    spec = next(s for s in LOSSES if s[0] == name)
    t, p = _case(spec[3])
    t, p = t.astype("float64"), p.astype("float64")
    loss = _loss(spec)
    B = keras.backend.current()

    def total(pred):
        return float(np.sum(_np(loss(B.asarray(t), B.asarray(pred)))))

    _v, _aux, grads = autodiff.value_and_grad(
        lambda leaves: (keras.ops.sum(loss(B.asarray(t), leaves[0])), None), [B.asarray(p)]
    )
    h = 1e-6
    num = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        up, down = p.copy(), p.copy()
        up[idx] += h
        down[idx] -= h
        num[idx] = (total(up) - total(down)) / (2 * h)
    np.testing.assert_allclose(_np(grads[0]), num, rtol=1e-5, atol=1e-8)


def _run(m, t, p, w=SW):
    m.reset_state()
    m.update_state(t, p)
    m.update_state(t[:5], p[:5], sample_weight=w[:5])
    m.update_state(t[5:], p[5:], sample_weight=w[5:])
    first = _np(m.result())
    m.reset_state()
    m.update_state(t[:7], p[:7])
    return first, _np(m.result())


@pytest.mark.parametrize("spec", METRICS, ids=[s[0] for s in METRICS])
def test_metric_matches_keras3(keras3_ref, spec):
    key, cls, kw, kind = spec
    t, p = _case(kind)
    m = getattr(metrics, cls)(**kw)
    first, second = _run(m, t, p, _weights(cls, kind))
    np.testing.assert_allclose(first, keras3_ref["metric_" + key], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second, keras3_ref["metric2_" + key], rtol=1e-5, atol=1e-6)
    want = json.loads(str(keras3_ref["config_" + key]))
    got = json.loads(json.dumps(m.get_config(), sort_keys=True))
    if cls == "CosineSimilarity":  # Keras 3 leaves axis out of its config; we keep it
        assert got.pop("axis") == kw["axis"]
    # Keras 3 numbers the default names of its IoU metrics (mean_io_u_1...)
    assert want.pop("name").startswith(got.pop("name"))
    assert got == want
    # the config rebuilds an equal metric, by class and through metrics.get
    again = metrics.get({"class_name": cls, "config": m.get_config()})
    assert type(again) is type(m) and again.get_config() == m.get_config()
    np.testing.assert_allclose(_run(again, t, p, _weights(cls, kind))[0], first, rtol=1e-6)
    if _weights(cls, kind) is not SW:  # one weight per sample applies to each of its ids
        np.testing.assert_allclose(_run(again, t, p)[0], first, rtol=1e-6)


def test_metric_state_sums_across_ranks():
    """Each state variable of two "ranks" summed gives the state of one metric that saw
    both ranks' data (what data parallelism relies on)."""
    from polykeras.distribute import metric_variables, read_with_state

    for key, cls, kw, kind in METRICS:
        t, p = _case(kind)
        whole, left, right = (getattr(metrics, cls)(**kw) for _ in range(3))
        whole.update_state(t, p, sample_weight=SW)
        left.update_state(t[:5], p[:5], sample_weight=SW[:5])
        right.update_state(t[5:], p[5:], sample_weight=SW[5:])
        lv, rv = metric_variables([left]), metric_variables([right])
        assert (
            [v.name for v in lv]
            == [v.name for v in rv]
            == [v.name for v in metric_variables([whole])]
        ), key
        summed = [keras.ops.add(a.value, b.value) for a, b in zip(lv, rv)]
        got = read_with_state(lv, summed, left.result)
        np.testing.assert_allclose(_np(got), _np(whole.result()), rtol=1e-5, atol=1e-6)


# -- compile / fit / evaluate ----------------------------------------------------------------------
X = np.random.default_rng(11).normal(size=(30, 5)).astype("float32")
Y = np.eye(C, dtype="float32")[np.random.default_rng(12).integers(0, C, 30)]
W_IN = np.random.default_rng(13).normal(size=(5, C)).astype("float32")
B_IN = np.random.default_rng(14).normal(scale=0.1, size=C).astype("float32")
SW30 = np.random.default_rng(15).uniform(0.2, 1.5, 30).astype("float32")


def _softmax_np(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


PRED = _softmax_np(X @ W_IN + B_IN).astype("float32")

COMPILED = [  # (log name, class, kwargs); all update on the probabilities of PRED
    ("f1_macro", "F1Score", {"average": "macro", "name": "f1_macro"}),
    ("f1_micro", "F1Score", {"average": "micro", "threshold": 0.3, "name": "f1_micro"}),
    ("r2", "R2Score", {"name": "r2"}),
    ("ohmiou", "OneHotMeanIoU", {"num_classes": C, "name": "ohmiou"}),
    ("p_at_r", "PrecisionAtRecall", {"recall": 0.5, "name": "p_at_r"}),
    ("spec", "SpecificityAtSensitivity", {"sensitivity": 0.6, "class_id": 1, "name": "spec"}),
    ("cos", "CosineSimilarity", {"name": "cos"}),
]

COMPILE_SCRIPT = textwrap.dedent("""
    import json, os, sys, warnings
    os.environ["KERAS_BACKEND"] = "torch"
    warnings.simplefilter("ignore")
    import numpy as np
    import keras
    data = dict(np.load(sys.argv[1]))
    spec = json.loads(SPEC)
    out = {}
    y, p, w = data["y"], data["p"], data["w"]
    for key, cls, kw in spec:
        for weighted in (False, True):
            m = getattr(keras.metrics, cls)(**kw)
            for s in range(0, len(y), 7):  # evaluate's batches
                m.update_state(y[s:s + 7], p[s:s + 7],
                               sample_weight=w[s:s + 7] if weighted else None)
            out[("w_" if weighted else "") + key] = keras.ops.convert_to_numpy(m.result())
    # a training step with the focal loss and with Dice, from the same weights
    for name, loss in (("bfce", keras.losses.BinaryFocalCrossentropy(
                           from_logits=True, apply_class_balancing=True, gamma=1.5)),
                       ("dice", "dice")):
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)])
        model.set_weights([data["W"], data["b"]])
        model.compile(keras.optimizers.SGD(0.5), loss=loss)
        h = model.fit(data["x"], y, batch_size=30, epochs=2, shuffle=False, verbose=0)
        out["loss_" + name] = np.asarray(h.history["loss"])
        out["kernel_" + name] = model.get_weights()[0]
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def keras3_compiled(tmp_path_factory):
    from helpers import run_keras3_script

    script = COMPILE_SCRIPT.replace("SPEC", repr(json.dumps(COMPILED)))
    inputs = {"y": Y, "p": PRED, "w": SW30, "x": X, "W": W_IN, "b": B_IN}
    return run_keras3_script(tmp_path_factory.mktemp("keras3_compiled"), script, inputs)


def _model(activation="softmax"):
    m = keras.Sequential([layers.Dense(C, input_shape=(5,), activation=activation)])
    m.set_weights([W_IN, B_IN])
    return m


def test_metric_objects_in_compile_fit_evaluate(keras3_compiled):
    m = _model()
    objs = [getattr(metrics, cls)(**kw) for _key, cls, kw in COMPILED]
    weighted = [getattr(metrics, cls)(**{**kw, "name": "w_" + key}) for key, cls, kw in COMPILED]
    m.compile(
        keras.optimizers.SGD(learning_rate=0.0),
        loss="categorical_crossentropy",
        metrics=objs + ["r2_score"],
        weighted_metrics=weighted,
    )
    # compile sized the per-class state from the output: every variable exists before data
    assert [tuple(v.value.shape) for v in objs[0].variables] == [(C,)] * 4
    np.testing.assert_allclose(m.predict(X, verbose=0), PRED, rtol=1e-5, atol=1e-6)
    res = m.evaluate(X, Y, sample_weight=SW30, batch_size=7, verbose=0, return_dict=True)
    h = m.fit(X, Y, sample_weight=SW30, batch_size=7, epochs=2, verbose=0, shuffle=False)
    for key, _cls, _kw in COMPILED:
        # (the logs name a weighted metric "weighted_<name>", as Keras 2)
        for name, log in ((key, key), ("w_" + key, "weighted_w_" + key)):
            want = float(keras3_compiled[name])
            assert res[log] == pytest.approx(want, rel=1e-5, abs=1e-6), name
            np.testing.assert_allclose(h.history[log], [want, want], rtol=1e-5, atol=1e-6)
    r2 = metrics.R2Score()
    for s in range(0, len(X), 7):
        r2.update_state(Y[s : s + 7], PRED[s : s + 7])
    assert res["r2_score"] == pytest.approx(float(_np(r2.result())), rel=1e-5)
    # a per-class result (average=None) is no log value: refused, naming the metric
    m.compile("sgd", loss="categorical_crossentropy", metrics=[metrics.F1Score()])
    with pytest.raises(ValueError, match="f1_score"):
        m.evaluate(X, Y, verbose=0)


def test_loss_objects_and_names_train_like_keras3(keras3_compiled):
    for name, loss in (
        (
            "bfce",
            losses.BinaryFocalCrossentropy(from_logits=True, apply_class_balancing=True, gamma=1.5),
        ),
        ("dice", "dice"),
    ):
        m = _model(activation=None)
        m.compile(keras.optimizers.SGD(0.5), loss=loss)
        h = m.fit(X, Y, batch_size=30, epochs=2, shuffle=False, verbose=0)
        np.testing.assert_allclose(
            h.history["loss"], keras3_compiled["loss_" + name], rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            m.get_weights()[0], keras3_compiled["kernel_" + name], rtol=1e-4, atol=1e-6
        )


# -- names, serialization, refusals ----------------------------------------------------------------
def test_names_and_serialization():
    assert losses.get("dice") is losses.dice and losses.get("tversky") is losses.tversky
    assert losses.get("binary_focal_crossentropy") is losses.binary_focal_crossentropy
    assert isinstance(
        losses.get("CategoricalFocalCrossentropy"), losses.CategoricalFocalCrossentropy
    )
    loss = losses.Tversky(alpha=0.2, beta=0.8, axis=[1, 2], reduction="sum")
    entry = losses.serialize(loss)
    assert entry == {
        "class_name": "Tversky",
        "config": {
            "reduction": "sum",
            "name": "tversky",
            "alpha": 0.2,
            "beta": 0.8,
            "axis": [1, 2],
        },
    }
    assert losses.deserialize(entry).get_config() == loss.get_config()
    assert metrics.binary_focal_crossentropy is losses.binary_focal_crossentropy
    assert isinstance(metrics.get("f1_score"), metrics.F1Score)
    assert isinstance(metrics.get("r2_score"), metrics.R2Score)
    assert isinstance(metrics.get("F1Score"), metrics.F1Score)
    for name, cls in (("f_beta_score", "FBetaScore"), ("log_cosh_error", "LogCoshError"),
                      ("binary_io_u", "BinaryIoU")):  # fmt: skip
        assert type(metrics.get(name)) is getattr(metrics, cls)
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.get("fbeta_score")  # the default name, which Keras 3 does not resolve either
    # the metric (positive) cosine, as Keras 2 and 3 resolve the name for a metric
    cos = metrics.get("cosine_similarity")
    assert isinstance(cos, metrics.CosineSimilarity)
    t, p = _case("reg")
    assert float(_np(cos(t, p))) > 0
    m = metrics.MeanIoU(3, name="miou")
    assert metrics.serialize(m) == {
        "class_name": "MeanIoU",
        "config": {
            "name": "miou",
            "dtype": "int32",
            "num_classes": 3,
            "ignore_class": None,
            "sparse_y_true": True,
            "sparse_y_pred": True,
            "axis": -1,
        },
    }
    assert [v.name for v in m.variables] == ["miou/total_confusion_matrix"]
    with pytest.raises(TypeError, match="symbolic"):
        losses.dice(keras.Input((3,)), keras.Input((3,)))


def test_saving_keeps_the_new_objects(tmp_path):
    m = _model()
    m.compile(
        "sgd",
        loss=losses.CategoricalFocalCrossentropy(alpha=[0.1, 0.2, 0.3, 0.4], gamma=1.0),
        metrics=[metrics.F1Score(average="weighted"), metrics.OneHotMeanIoU(C)],
    )
    before = m.evaluate(X, Y, verbose=0)
    path = str(tmp_path / "m.keras")
    m.save(path)
    loaded = keras.models.load_model(path)
    assert loaded._compiled.loss.get_config()["alpha"] == [0.1, 0.2, 0.3, 0.4]
    np.testing.assert_allclose(loaded.evaluate(X, Y, verbose=0), before, rtol=1e-6)


def test_refusals_name_the_setting():
    with pytest.raises(ValueError, match="average"):
        metrics.F1Score(average="samples")
    with pytest.raises(ValueError, match="beta"):
        metrics.FBetaScore(beta=0.0)
    with pytest.raises(ValueError, match="threshold"):
        metrics.F1Score(threshold=1.5)
    with pytest.raises(ValueError, match="class_aggregation"):
        metrics.R2Score(class_aggregation="median")
    with pytest.raises(ValueError, match="num_regressors"):
        metrics.R2Score(num_regressors=-1)
    with pytest.raises(ValueError, match="target class id 5"):
        metrics.IoU(4, [0, 5])
    with pytest.raises(ValueError, match="dtype"):
        metrics.MeanIoU(3, dtype="bool")
    with pytest.raises(ValueError, match="recall"):
        metrics.PrecisionAtRecall(1.5)
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.SensitivityAtSpecificity(0.5, num_thresholds=0)
    with pytest.raises(ValueError, match="2D inputs"):
        metrics.F1Score().update_state(np.ones(3), np.ones(3))
    f1 = metrics.F1Score()
    f1.update_state(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="counts 3 columns"):
        f1.update_state(np.eye(4), np.eye(4))
    with pytest.raises(ValueError, match="gamma"):
        losses.BinaryFocalCrossentropy(gamma=-1.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CategoricalFocalCrossentropy(label_smoothing=2.0)
    with pytest.raises(TypeError, match="alpha"):
        losses.CategoricalFocalCrossentropy(alpha="balanced")
    with pytest.raises(TypeError, match="axis"):
        losses.Dice(axis="rows")
    with pytest.raises(ValueError, match="reduction 'avg'"):
        losses.Tversky(reduction="avg")


# -- data parallelism ------------------------------------------------------------------------------
DP_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    import polykeras as keras
    from polykeras import metrics

    def run():
        r = np.random.default_rng(0)
        x = r.normal(size=(49, 6)).astype("float32")  # the last batch leaves rank 1 nothing
        y = np.eye(3, dtype="float32")[(x[:, :3].argmax(-1))]
        model = keras.Sequential([keras.layers.Dense(3, input_shape=(6,), activation="softmax")])
        model.set_weights([r.normal(size=(6, 3)).astype("float32"), np.zeros(3, "float32")])
        model.compile("sgd", loss=keras.losses.CategoricalFocalCrossentropy(), metrics=[
            metrics.F1Score(average="macro"), metrics.FBetaScore(average="weighted", beta=2.0),
            metrics.R2Score(), metrics.OneHotMeanIoU(3), metrics.PrecisionAtRecall(0.5),
            metrics.SpecificityAtSensitivity(0.5, class_id=1)])
        seen = []  # every batch's logs: global results from the first step on
        cb = keras.callbacks.LambdaCallback(on_batch_end=lambda b, logs: seen.append(logs))
        h = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[cb])
        out = {k: np.asarray(v) for k, v in h.history.items()}
        out.update({"batch_" + k: np.asarray([s[k] for s in seen]) for k in seen[0]})
        res = model.evaluate(x, y, batch_size=10, verbose=0, return_dict=True)
        out.update({"evaluate_" + k: np.asarray(v) for k, v in res.items()})
        return out

    if __name__ == "__main__":
        from polykeras import distribute
        out = run()
        assert distribute.distribution() is not None, "no data parallelism on this rank"
        np.savez(os.path.join(sys.argv[1], "rank%s.npz" % os.environ["RANK"]), **out)
""")


def test_metrics_on_two_ranks_equal_one_process(tmp_path):
    """fit and evaluate on 2 ranks (torch.distributed, Gloo): the logs of the new metric
    objects are their results over the global data, as in one process."""
    import importlib.util
    import os
    import socket
    import subprocess
    import sys

    from helpers import torch_unusable_reason

    if torch_unusable_reason() is not None:
        pytest.skip(f"torch.distributed: {torch_unusable_reason()}")
    script = tmp_path / "dp_extra.py"
    script.write_text(DP_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    procs = []
    for rank in (0, 1):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE"))}
        env.update(
            POLYKERAS_BACKEND=keras.backend.current().name,
            OMP_NUM_THREADS="1",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            LOCAL_WORLD_SIZE="2",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        try:
            _, err = p.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a rank did not finish within 150 s (a hang)") from None
        assert p.returncode == 0, err[-3000:]
    spec = importlib.util.spec_from_file_location("dp_extra", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ref = module.run()
    assert {"f1_score", "fbeta_score", "r2_score", "evaluate_one_hot_mean_io_u"} <= set(ref)
    for rank in (0, 1):
        got = dict(np.load(tmp_path / f"rank{rank}.npz"))
        assert sorted(got) == sorted(ref)
        for key, want in ref.items():
            np.testing.assert_allclose(
                got[key], want, rtol=1e-5, atol=1e-6, err_msg=f"rank {rank}: {key}"
            )


# -- Keras 3's constructor arguments, in Keras 3's order ----------------------------------------
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
    for name in FUNCTION_NAMES:
        fn = getattr(keras.losses, name)
        out["fn." + name] = np.array(list(inspect.signature(fn).parameters))
    np.savez(sys.argv[2], **out)
""")

LOSS_CLASSES = sorted({s[1] for s in LOSSES})
METRIC_CLASSES = sorted({s[1] for s in METRICS})
FUNCTION_NAMES = ["binary_focal_crossentropy", "categorical_focal_crossentropy", "dice", "tversky"]


def test_constructor_arguments_are_keras3s(tmp_path):
    import inspect

    from helpers import run_keras3_script

    script = (
        SIGNATURE_SCRIPT.replace("LOSS_NAMES", repr(LOSS_CLASSES))
        .replace("METRIC_NAMES", repr(METRIC_CLASSES))
        .replace("FUNCTION_NAMES", repr(FUNCTION_NAMES))
    )
    ref = run_keras3_script(tmp_path, script, {"unused": np.zeros(1)})
    assert len(METRIC_CLASSES) == 15 and len(LOSS_CLASSES) == 4
    for kind, module, names in (
        ("losses", losses, LOSS_CLASSES),
        ("metrics", metrics, METRIC_CLASSES),
    ):
        for name in names:
            ours = list(inspect.signature(getattr(module, name)).parameters)
            assert ours == list(ref[f"{kind}.{name}"]), f"{kind}.{name}"
    for name in FUNCTION_NAMES:
        # ours is wrapped (symbolic tensors refused): its signature is the function's
        ours = list(inspect.signature(getattr(losses, name)).parameters)
        assert ours == list(ref[f"fn.{name}"]), name


def test_loss_dtype():
    t, p = _case("bin")
    loss = losses.BinaryFocalCrossentropy(dtype="float64")
    assert keras.backend.current().dtype_name(loss(t, p)) == "float64"
    assert loss.get_config()["dtype"] == "float64"
    m = metrics.R2Score(dtype="float64")
    m.update_state(*_case("reg"))
    assert keras.backend.current().dtype_name(m.result()) == "float64"
