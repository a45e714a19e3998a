"""Keras 3's op nodes in ``.keras`` files, both ways (polykeras/saving/keras3_ops.py).

A functional model that calls ops on symbolic tensors is written with Keras 3's own op
entries (``{"module": "keras.src.ops.numpy", "class_name": "Sum", "config": {"axis": -1,
...}}``, the call's arguments in the inbound node), so real Keras 3 loads it; Keras 3's
files with op nodes (NumPy constants as ``__numpy__``) load in polykeras.  Both are
checked against real Keras 3 (torch backend) in a subprocess, on the backend this run
selects (POLYKERAS_BACKEND), over about 120 op calls; the table of Keras 3's op classes is
checked against the installed Keras 3.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from helpers import keras3_available, run_keras3_script

import polykeras as keras
from polykeras import layers, ops
from polykeras.saving import keras3_ops, limits
from polykeras.saving.errors import LimitExceededError, SavingError

# Measured over the cases below (relative, where |expected| >= 1e-3; `pytest -s` prints
# it): about 1.2e-6 (elu) on the numpy backend, 3.3e-7 on torch, both directions; up to
# 1.1e-5 once, on a Dense output near zero (its weights are drawn afresh each run).
TOL = {"rtol": 1e-5, "atol": 1e-6}


def cases(ops):
    """name -> a function of (x, y, i) calling ops (polykeras' or Keras 3's: the same
    code builds both models).  x, y: float32 (batch, 3, 4) in (0.1, 0.9); i: int32 in
    [0, 4)."""
    c = {}
    unary = (
        "abs ceil cos exp expm1 floor log log10 log1p log2 reciprocal rsqrt sign sin sqrt "
        "square tanh erf relu relu6 selu sigmoid softplus softsign log_sigmoid isfinite "
        "isinf isnan logical_not stop_gradient negative"
    )
    for n in unary.split():
        c[n] = lambda x, y, i, n=n: getattr(ops, n if hasattr(ops, n) else "neg")(x)
    binary = (
        "add subtract multiply divide maximum minimum power equal not_equal greater "
        "greater_equal less less_equal mod floor_divide logical_and logical_or logical_xor"
    )
    for n in binary.split():
        c[n] = lambda x, y, i, n=n: getattr(ops, n)(x, y)
    for n in "sum mean max min prod std var all any logsumexp median".split():
        c[n] = lambda x, y, i, n=n: getattr(ops, n)(x, axis=-1, keepdims=True)
        if n != "median":
            c[n + "_axes"] = lambda x, y, i, n=n: getattr(ops, n)(x, axis=(1, 2))
    c["scalar_ops"] = lambda x, y, i: (x * 2.0 + 1.0) / 3.0 - 0.5
    c["argmax"] = lambda x, y, i: ops.argmax(x, axis=1)
    c["argmax_flat"] = lambda x, y, i: ops.argmax(x)
    c["argmin"] = lambda x, y, i: ops.argmin(x, axis=-1)
    c["argsort"] = lambda x, y, i: ops.argsort(x)
    c["sort"] = lambda x, y, i: ops.sort(x, axis=1)
    c["average"] = lambda x, y, i: ops.average(x, axis=-1)
    c["average_weights"] = lambda x, y, i: ops.average(x, axis=-1, weights=np.array([1.0, 2, 3, 4]))
    c["broadcast_to"] = lambda x, y, i: ops.broadcast_to(ops.sum(x, axis=(0, 1)), (3, 4))
    c["cast"] = lambda x, y, i: ops.cast(x * 10.0, "int32")
    c["clip"] = lambda x, y, i: ops.clip(x, 0.3, 0.6)
    c["concatenate"] = lambda x, y, i: ops.concatenate([x, y], axis=1)
    # a 1-D result: Keras 3.15.1's torch count_nonzero transposes a result of 2 or more axes
    c["count_nonzero"] = lambda x, y, i: ops.count_nonzero(i[:, :, 0], axis=1)
    c["cumsum"] = lambda x, y, i: ops.cumsum(x, axis=2)
    c["cumprod"] = lambda x, y, i: ops.cumprod(x, axis=1)
    c["diag"] = lambda x, y, i: ops.diag(ops.sum(x, axis=0))
    c["dot"] = lambda x, y, i: ops.dot(x, ops.ones_like(ops.transpose(x, (0, 2, 1)))[0])
    c["einsum"] = lambda x, y, i: ops.einsum("bij,bkj->bik", x, y)
    c["elu"] = lambda x, y, i: ops.elu(x - 0.5, alpha=0.7)
    c["gelu"] = lambda x, y, i: ops.gelu(x - 0.5)
    c["gelu_exact"] = lambda x, y, i: ops.gelu(x - 0.5, approximate=False)
    c["leaky_relu"] = lambda x, y, i: ops.leaky_relu(x - 0.5)
    c["softmax"] = lambda x, y, i: ops.softmax(x, axis=1)
    c["log_softmax"] = lambda x, y, i: ops.log_softmax(x)
    c["expand_dims"] = lambda x, y, i: ops.expand_dims(x, 1)
    c["flip"] = lambda x, y, i: ops.flip(x, axis=1)
    c["full_like"] = lambda x, y, i: ops.full_like(x, 3.0)
    c["ones_like"] = lambda x, y, i: ops.ones_like(x)
    c["zeros_like"] = lambda x, y, i: ops.zeros_like(x, dtype="int32")
    c["matmul"] = lambda x, y, i: ops.matmul(x, ops.transpose(y, (0, 2, 1)))
    c["moveaxis"] = lambda x, y, i: ops.moveaxis(x, 1, 2)
    c["swapaxes"] = lambda x, y, i: ops.swapaxes(x, 1, 2)
    c["nan_to_num"] = lambda x, y, i: ops.nan_to_num(ops.log(x - 0.5), nan=-1.0)
    c["norm"] = lambda x, y, i: ops.norm(x, axis=-1)
    c["one_hot"] = lambda x, y, i: ops.one_hot(i, 4)
    c["outer"] = lambda x, y, i: ops.outer(x[:, 0, 0], y[:, 0, 1])
    c["getitem"] = lambda x, y, i: x[:, 1:, ::2] + x[..., 0:2, 1:3]
    c["getitem_newaxis"] = lambda x, y, i: x[:, None, :, -1]
    c["pad"] = lambda x, y, i: ops.pad(x, [[0, 0], [1, 0], [0, 2]])
    c["repeat"] = lambda x, y, i: ops.repeat(x, 2, axis=1)
    c["reshape"] = lambda x, y, i: ops.reshape(x, (-1, 12))
    c["roll"] = lambda x, y, i: ops.roll(x, 1, axis=2)
    c["round"] = lambda x, y, i: ops.round(x * 10.0)
    c["squeeze"] = lambda x, y, i: ops.squeeze(ops.sum(x, axis=1, keepdims=True), axis=1)
    c["stack"] = lambda x, y, i: ops.stack([x, y], axis=1)
    c["take"] = lambda x, y, i: ops.take(x, np.array([0, 2]), axis=1)
    c["take_along_axis"] = lambda x, y, i: ops.take_along_axis(x, i, axis=2)
    c["tensordot"] = lambda x, y, i: ops.tensordot(x, ops.ones_like(x)[0], axes=2)
    c["tile"] = lambda x, y, i: ops.tile(x, (1, 2, 1))
    c["transpose"] = lambda x, y, i: ops.transpose(x, (0, 2, 1))
    c["tril"] = lambda x, y, i: ops.tril(x)
    c["triu"] = lambda x, y, i: ops.triu(x, k=1)
    c["where"] = lambda x, y, i: ops.where(x > 0.5, x, y)
    c["binary_crossentropy"] = lambda x, y, i: ops.binary_crossentropy(y, x)
    c["categorical_crossentropy"] = lambda x, y, i: ops.categorical_crossentropy(
        ops.softmax(y), x, from_logits=True
    )
    c["sparse_categorical_crossentropy"] = lambda x, y, i: ops.sparse_categorical_crossentropy(
        i[:, :, 0], x, from_logits=True
    )
    c["segment_sum"] = lambda x, y, i: ops.segment_sum(x[0], np.array([0, 0, 1]), num_segments=2)
    c["in_top_k"] = lambda x, y, i: ops.in_top_k(i[:, 0, 0], x[:, 0], 2)
    c["dot_product_attention"] = lambda x, y, i: ops.dot_product_attention(
        ops.reshape(x, (-1, 3, 1, 4)),
        ops.reshape(y, (-1, 3, 1, 4)),
        ops.reshape(x, (-1, 3, 1, 4)),
        is_causal=True,
    )
    c["scatter"] = lambda x, y, i: ops.scatter(np.array([[0, 1], [1, 2]]), x[0, 0, :2], (2, 3))
    c["slice"] = lambda x, y, i: ops.slice(x, (0, 1, 1), (2, 2, 2))
    c["scatter_update"] = lambda x, y, i: ops.scatter_update(
        x, np.array([[0, 0, 0]]), np.array([5.0], "float32")
    )
    c["slice_update"] = lambda x, y, i: ops.slice_update(x, (0, 1, 1), ops.ones_like(x)[:, :1, :2])
    c["dense_after_ops"] = lambda x, y, i: DENSE(ops.reshape(ops.sqrt(x), (-1, 12)))
    return c


DENSE = None  # the Dense layer of the model being built (set by the builders)


def _data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, (2, 3, 4)).astype("float32")
    y = rng.uniform(0.1, 0.9, (2, 3, 4)).astype("float32")
    i = rng.integers(0, 4, (2, 3, 4)).astype("int32")
    return x, y, i


def _polykeras_model():
    global DENSE
    DENSE = layers.Dense(3, name="dense")
    x = layers.Input((3, 4), name="x")
    y = layers.Input((3, 4), name="y")
    i = layers.Input((3, 4), dtype="int32", name="i")
    table = cases(ops)
    model = keras.Model([x, y, i], [f(x, y, i) for f in table.values()])
    return model, list(table)


def _numpy(values):
    B = keras.backend.current()
    return [np.asarray(v if isinstance(v, np.ndarray) else B.to_numpy(v)) for v in values]


def _compare(got, expected, names):
    assert len(got) == len(expected) == len(names)
    bad = []
    worst, worst_name = 0.0, ""
    for name, a, b in zip(names, got, expected):
        if a.shape == b.shape and a.size:
            diff = np.abs(a.astype("float64") - b.astype("float64"))
            scale = np.maximum(np.abs(b.astype("float64")), 1e-3)
            rel = float(np.nanmax(np.where(np.isnan(diff), 0, diff / scale)))
            worst, worst_name = max((worst, worst_name), (rel, name))
        if a.shape != b.shape:
            bad.append(f"{name}: shape {a.shape} != {b.shape}")
        elif a.dtype.kind != b.dtype.kind:
            bad.append(f"{name}: dtype {a.dtype} != {b.dtype}")
        elif not np.allclose(a.astype("float64"), b.astype("float64"), equal_nan=True, **TOL):
            bad.append(f"{name}: {a.ravel()[:4]} != {b.ravel()[:4]}")
    assert not bad, "\n".join(bad)
    print(f"largest relative difference: {worst:.2e} ({worst_name})")


def _layers_of(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("config.json"))["config"]["layers"]


# -- the table ------------------------------------------------------------------------------------
_GENERATE = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
from polykeras.saving import keras3_ops
print(json.dumps(keras3_ops.generate()))
"""


def test_table_matches_the_installed_keras3():
    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed: no table to compare with")
    proc = subprocess.run(
        [sys.executable, "-c", _GENERATE], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    installed = json.loads(proc.stdout.strip().splitlines()[-1])
    stored = json.loads(json.dumps(keras3_ops.TABLE))
    drift = sorted(set(installed) ^ set(stored)) + [
        k for k in installed if k in stored and installed[k] != stored[k]
    ]
    assert not drift, (
        f"polykeras/saving/keras3_ops.py's TABLE differs from the installed Keras 3 for "
        f"{drift}; regenerate it: KERAS_BACKEND=torch python -m polykeras.saving.keras3_ops "
        "--write"
    )


def test_table_covers_the_common_ops():
    # every op both have under one name is in the table (the drift test above checks it
    # against Keras); spot checks that need no Keras
    for name in "sum reshape transpose take cast concatenate matmul where clip".split():
        assert name in keras3_ops.TABLE
    assert keras3_ops.TABLE["reshape"][3] == {"newshape": keras3_ops.REQUIRED}
    assert keras3_ops.TABLE["getitem"][1] == "GetItem"
    for name in ("attention_weights", "softmax_crossentropy", "swish"):
        assert name not in keras3_ops.TABLE


# -- polykeras writes, Keras 3 reads --------------------------------------------------------------
_K3_LOAD = """
import os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np, keras
d = np.load(sys.argv[1])
try:
    model = keras.models.load_model(str(d["path"]))
    outs = [keras.ops.convert_to_numpy(o) for o in model([d["x"], d["y"], d["i"]])]
    np.savez(sys.argv[2], *outs)
except Exception as exc:
    np.savez(sys.argv[2], error=np.array(f"{type(exc).__name__}: {exc}"[-3000:]))
"""


def test_polykeras_file_with_op_nodes_loads_in_keras3(tmp_path):
    model, names = _polykeras_model()
    data = _data()
    with np.errstate(invalid="ignore"):  # nan_to_num's case takes a log of negatives
        expected = _numpy(model(list(data)))
    path = tmp_path / "ops.keras"
    model.save(path)
    entries = _layers_of(path)
    op_entries = [e for e in entries if str(e.get("module")).startswith("keras.src.ops.")]
    assert len(op_entries) > 100
    assert not [e for e in entries if e["class_name"] == "OpLayer"]
    assert any(
        e["config"] == {"name": e["name"], "axis": -1, "keepdims": True}
        for e in op_entries
        if e["class_name"] == "Sum"
    )
    take = next(e for e in op_entries if e["class_name"] == "Take")
    assert take["inbound_nodes"][0]["args"][1] == {
        "class_name": "__numpy__",
        "config": {"value": [0, 2], "dtype": "int64"},
    }
    assert any(
        e["config"].get("newshape") == [-1, 12] for e in op_entries if e["class_name"] == "Reshape"
    )
    x, y, i = data
    got = run_keras3_script(
        tmp_path, _K3_LOAD, {"path": np.array(str(path)), "x": x, "y": y, "i": i}
    )
    assert "error" not in got, str(got.get("error"))
    _compare([got[f"arr_{k}"] for k in range(len(names))], expected, names)


# -- Keras 3 writes, polykeras reads --------------------------------------------------------------
def _keras3_writer_script() -> str:
    import inspect

    return f"""
import os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np, keras
from keras import layers, ops
d = np.load(sys.argv[1])
{inspect.getsource(cases)}
DENSE = layers.Dense(3, name="dense")
x = layers.Input((3, 4), name="x")
y = layers.Input((3, 4), name="y")
i = layers.Input((3, 4), dtype="int32", name="i")
table = cases(ops)
model = keras.Model([x, y, i], [f(x, y, i) for f in table.values()])
model.save(str(d["path"]))
outs = [keras.ops.convert_to_numpy(o) for o in model([d["x"], d["y"], d["i"]])]
np.savez(sys.argv[2], *outs)
"""


def test_keras3_file_with_op_nodes_loads_in_polykeras(tmp_path):
    x, y, i = _data()
    path = tmp_path / "k3ops.keras"
    got = run_keras3_script(
        tmp_path, _keras3_writer_script(), {"path": np.array(str(path)), "x": x, "y": y, "i": i}
    )
    names = list(cases(ops))
    entries = _layers_of(path)
    assert any(
        arg.get("class_name") == "__numpy__"
        for e in entries
        for node in e["inbound_nodes"]
        for arg in node["args"]
        if isinstance(arg, dict)
    )
    model = keras.models.load_model(path)
    with np.errstate(invalid="ignore"):
        ours = _numpy(model([x, y, i]))
    _compare(ours, [got[f"arr_{k}"] for k in range(len(names))], names)
    # written again by polykeras, the op entries are Keras 3's as before
    again = tmp_path / "again.keras"
    model.save(again)
    assert not [e for e in _layers_of(again) if e["class_name"] == "OpLayer"]


# -- both forms, and what is refused ---------------------------------------------------------------
def _small_model():
    x = layers.Input((4,), name="x")
    t = ops.take(x, np.array([0, 2]), axis=1)
    return keras.Model(x, ops.sum(ops.square(t), axis=-1, keepdims=True))


def _patched(tmp_path, change):
    """A .keras file of _small_model with its config's layer list passed through change."""
    path = tmp_path / "small.keras"
    _small_model().save(path)
    out = tmp_path / "patched.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                change(config["config"]["layers"])
                data = json.dumps(config).encode()
            dst.writestr(info, data)
    return out


def _entry(entries, class_name):
    return next(e for e in entries if e["class_name"] == class_name)


def test_patched_file_loads_unchanged(tmp_path):
    x = np.arange(8, dtype="float32").reshape(2, 4)
    model = keras.models.load_model(_patched(tmp_path, lambda entries: None))
    np.testing.assert_allclose(_numpy([model(x)])[0], [[4.0], [52.0]])


def test_polykeras_only_ops_keep_the_oplayer_form(tmp_path):
    x = layers.Input((4,), name="x")
    outs = [ops.swish(x), ops.hard_sigmoid(x), ops.normalize(x), ops.add(x, 1.0)]
    model = keras.Model(x, outs)
    path = tmp_path / "mixed.keras"
    model.save(path)
    entries = _layers_of(path)
    assert sorted(e["config"]["op"] for e in entries if e["class_name"] == "OpLayer") == [
        "hard_sigmoid",
        "normalize",
        "swish",
    ]
    assert _entry(entries, "Add")["module"] == "keras.src.ops.numpy"
    data = np.linspace(-2, 2, 8, dtype="float32").reshape(2, 4)
    again = keras.models.load_model(path)
    for a, b in zip(_numpy(again(data)), _numpy(model(data))):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e: _entry(e, "Sum").update(class_name="Frobnicate"), "Frobnicate"),
        (lambda e: _entry(e, "Sum").update(class_name="HardSigmoid"), "relu6"),
        (lambda e: _entry(e, "Sum")["config"].update(bogus=1), "no argument 'bogus'"),
        (
            lambda e: _entry(e, "Sum")["inbound_nodes"][0]["kwargs"].update(axis=1),
            "does not take the call argument 'axis'",
        ),
    ],
    ids=["unknown-op", "different-op", "unknown-argument", "misplaced-argument"],
)
def test_bad_op_entries_are_refused_by_name(tmp_path, change, message):
    with pytest.raises(SavingError, match=message):
        keras.models.load_model(_patched(tmp_path, change))


def test_a_keras_argument_we_lack_is_read_only_at_its_default(tmp_path):
    def to_max(entries, initial):
        entry = _entry(entries, "Sum")
        entry.update(class_name="Max", registered_name="Max")
        entry["config"]["initial"] = initial

    x = np.arange(8, dtype="float32").reshape(2, 4)
    model = keras.models.load_model(_patched(tmp_path, lambda e: to_max(e, None)))
    np.testing.assert_allclose(_numpy([model(x)])[0], [[4.0], [36.0]])
    with pytest.raises(SavingError, match="does not take initial=0.5"):
        keras.models.load_model(_patched(tmp_path, lambda e: to_max(e, 0.5)))


def _constant(entries):
    return _entry(entries, "Take")["inbound_nodes"][0]["args"][1]


@pytest.mark.parametrize(
    "config, error, message",
    [
        ({"value": [0, 2], "dtype": "object"}, SavingError, "dtype 'object'"),
        ({"value": [0, 2], "dtype": "complex128"}, SavingError, "dtype 'complex128'"),
        ({"value": [0, "os.system"], "dtype": "int64"}, SavingError, "integers only"),
        ({"value": [0, {"a": 1}], "dtype": "int64"}, SavingError, "integers only"),
        ({"value": [[0], 2], "dtype": "int64"}, SavingError, "rectangular"),
        ({"value": [[0, 1], [2]], "dtype": "int64"}, SavingError, "rectangular"),
        ({"value": [0.5, 2], "dtype": "int64"}, SavingError, "integers only"),
        ({"value": [0, 2**70], "dtype": "int64"}, SavingError, "cannot hold"),
        ({"value": [0, 2]}, SavingError, "dtype None"),
        ({"value": [0, 2], "dtype": "int64", "code": "x"}, SavingError, "must be"),
        ({"value": list(range(20)), "dtype": "int64"}, LimitExceededError, "MAX_CONSTANT"),
    ],
    ids=[
        "object-dtype",
        "complex-dtype",
        "string",
        "dict",
        "ragged-depth",
        "ragged-rows",
        "float-as-int",
        "overflow",
        "no-dtype",
        "extra-key",
        "too-large",
    ],
)
def test_bad_numpy_constants_are_refused(tmp_path, monkeypatch, config, error, message):
    monkeypatch.setattr(limits, "MAX_CONSTANT_VALUES", 16)
    path = _patched(tmp_path, lambda e: _constant(e).update(config=config))
    with pytest.raises(error, match=message):
        keras.models.load_model(path)


def test_numpy_constants_within_the_limit_load(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_CONSTANT_VALUES", 2)
    x = np.arange(8, dtype="float32").reshape(2, 4)
    model = keras.models.load_model(_patched(tmp_path, lambda e: None))
    np.testing.assert_allclose(_numpy([model(x)])[0], [[4.0], [52.0]])
    # Keras' other plain call arguments: __tensor__ (same form), slices, Ellipsis
    patched = _patched(
        tmp_path,
        lambda e: _constant(e).update(
            class_name="__tensor__", config={"value": [1, 3], "dtype": "int32"}
        ),
    )
    model = keras.models.load_model(patched)
    np.testing.assert_allclose(_numpy([model(x)])[0], [[10.0], [74.0]])


def test_keras3_initializer_configs_with_fan_axes_are_read():
    """Keras 3.15 writes ``input_axes`` / ``output_axes`` (None) in variance-scaling
    initializer configs: read at None, refused by name otherwise."""
    from polykeras import initializers, layers

    cfg = {"seed": None, "input_axes": None, "output_axes": None}
    entry = {"module": "keras.initializers", "class_name": "GlorotUniform", "config": cfg}
    dense = layers.Dense.from_config({"name": "d", "units": 2, "kernel_initializer": entry})
    assert isinstance(dense.kernel_initializer, initializers.GlorotUniform)
    with pytest.raises(NotImplementedError, match="input_axes=\\[0\\]"):
        initializers.get({"class_name": "GlorotUniform", "config": {"input_axes": [0]}})
