"""Every attack in Keras' CVE history, refused: YAML code tags (CVE-2021-37678), Lambda code
(CVE-2024-3660), imports named by a config (CVE-2025-1550), HDF5 external links and
dataset tricks (CVE-2025-8747, -9905, -9906), resource exhaustion (CVE-2026-1669,
CVE-2026-0897).  After each refusal the model is unchanged and no code ran."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import polykeras as keras
from polykeras.layers import Dense, Input
from polykeras.models import Model, load_model, model_from_json, model_from_yaml
from polykeras.saving import (
    LimitExceededError,
    SavingError,
    UnknownLayerError,
    UnsafeContentError,
    limits,
)
from polykeras.saving.config import deserialize_layer


def _mlp():
    inp = Input(shape=(4,), name="x")
    hidden = Dense(3, name="hidden")(inp)
    return Model(inp, Dense(2, name="out")(hidden))


def _unchanged(model, before):
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def _json_doc(model):
    return json.loads(model.to_json())


# -- YAML ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/object/apply:subprocess.check_output [['touch', '{marker}']]",
        "!!python/name:os.system",
        "!!python/module:os",
    ],
)
def test_yaml_python_tags_are_refused_and_nothing_runs(payload, tmp_path):
    marker = tmp_path / "pwned"
    doc = f"class_name: Model\nconfig: {payload.format(marker=marker)}\n"
    with pytest.raises(UnsafeContentError, match="python") as err:
        model_from_yaml(doc)
    assert "safe_load" in str(err.value)
    assert not marker.exists()


def test_yaml_tag_hidden_deep_inside_a_config_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    text = (
        _mlp()
        .to_yaml()
        .replace("units: 2", f"units: !!python/object/apply:os.system ['touch {marker}']")
    )
    with pytest.raises(UnsafeContentError):
        model_from_yaml(text)
    assert not marker.exists()


def test_keras2_yaml_tuple_tags_are_read_as_lists():
    model = _mlp()
    text = model.to_yaml().replace(
        "batch_input_shape:\n      - null\n      - 4", "batch_input_shape: !!python/tuple [null, 4]"
    )
    assert "!!python/tuple" in text
    assert model_from_yaml(text).get_config() == model.get_config()


def test_yaml_alias_bomb_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("class_name: Model")
    start = time.process_time()  # CPU time of this test: other processes do not count
    with pytest.raises(LimitExceededError, match="MAX_ITEMS"):
        model_from_yaml("\n".join(lines))
    assert time.process_time() - start < 10


def _run_isolated(code: str) -> subprocess.CompletedProcess:
    """Deeply nested input could crash a parser outright: try it in a child process."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("kind", ["json", "yaml", "yaml-pure-python"])
def test_deeply_nested_text_is_a_clear_error_not_a_crash(kind):
    """The same LimitExceededError whichever parser stops first: ours at limits.MAX_DEPTH, or
    the YAML library's own nesting limit (libyaml and PyYAML >= 6.0.2 stop at 1000 levels
    while scanning ahead), with libyaml or PyYAML's pure-Python parser."""
    result = _run_isolated(f"""
        import yaml
        from polykeras.models import model_from_json, model_from_yaml
        from polykeras.saving import LimitExceededError, formats
        if {kind!r} == "yaml-pure-python":
            formats._Base = yaml.SafeLoader
        load = model_from_json if {kind!r} == "json" else model_from_yaml
        texts = []
        for depth in (300, 10_000, 200_000):
            texts.append("[" * depth + "]" * depth)
            texts.append('{{"a": ' * depth + "1" + "}}" * depth)
        if {kind!r} != "json":
            texts.append("".join(" " * i + "a:\\n" for i in range(3000)))
        for text in texts:
            try:
                load(text)
            except LimitExceededError as exc:
                assert "nested" in str(exc) and "MAX_DEPTH" in str(exc), exc
            else:
                raise SystemExit("not refused")
        print("refused", len(texts))
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused" in result.stdout


def test_deeply_nested_models_are_refused():
    inner = {"class_name": "Dense", "config": {"units": 1}}
    for _ in range(300):
        inner = {"class_name": "TimeDistributed", "config": {"layer": inner}}
    with pytest.raises(LimitExceededError, match="nested"):
        model_from_json(json.dumps(inner))


# -- code in configs ------------------------------------------------------------------------------
def test_keras2_lambda_with_marshalled_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    doc = _json_doc(_mlp())
    doc["config"]["layers"][1] = {
        "name": "lambda_1",
        "class_name": "Lambda",
        "inbound_nodes": [[["x", 0, 0, {}]]],
        "config": {
            "name": "lambda_1",
            "function": ["4wEAAAAAAAAA...", None, None],
            "function_type": "lambda",
            "module": "os",
            "output_shape": None,
            "arguments": {"cmd": f"touch {marker}"},
        },
    }
    with pytest.raises(UnsafeContentError, match="Lambda") as err:
        model_from_json(json.dumps(doc))
    assert "custom_objects" in str(err.value)
    assert not marker.exists()


def test_keras3_lambda_is_refused():
    doc = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "registered_name": None,
        "config": {
            "name": "lambda",
            "function": {
                "class_name": "__lambda__",
                "config": {"code": "lambda x: __import__('os')", "defaults": None, "closure": None},
            },
        },
    }
    with pytest.raises(UnsafeContentError, match="Lambda"):
        deserialize_layer(doc)


@pytest.mark.parametrize("class_name", ["TFOpLambda", "SlicingOpLambda"])
def test_op_layers_naming_functions_are_refused(class_name):
    doc = {"class_name": class_name, "config": {"name": "op", "function": "os.system"}}
    with pytest.raises(UnsafeContentError):
        deserialize_layer(doc)


def test_keras1_merge_with_function_mode_is_refused():
    doc = {
        "class_name": "Merge",
        "config": {"name": "merge_1", "mode": ["code", None, None], "mode_type": "lambda"},
    }
    with pytest.raises(UnsafeContentError, match="function"):
        deserialize_layer(doc)


def test_config_module_keys_are_never_imported():
    doc = _json_doc(_mlp())
    probe = "polykeras_import_probe_module"
    for layer in doc["config"]["layers"]:
        layer["module"] = probe
        layer["registered_name"] = f"{probe}>Thing"
    model = model_from_json(json.dumps(doc))  # looked up by class_name only
    assert isinstance(model.get_layer("hidden"), Dense)
    assert probe not in sys.modules


@pytest.mark.parametrize(
    "class_name,module",
    [
        ("system", "os"),
        ("Popen", "subprocess"),
        ("getattr", "builtins"),
        ("Layer", "polykeras.layers"),
    ],
)
def test_classes_outside_the_registry_cannot_be_created(class_name, module):
    doc = {"module": module, "class_name": class_name, "config": {"name": "x"}}
    with pytest.raises(UnknownLayerError, match=class_name):
        deserialize_layer(doc)


def test_activation_and_initializer_names_cannot_reach_functions():
    doc = _json_doc(_mlp())
    dense = doc["config"]["layers"][1]["config"]
    dense["activation"] = {
        "module": "os",
        "class_name": "function",
        "config": "system",
        "registered_name": "function",
    }
    with pytest.raises(SavingError, match="system"):
        model_from_json(json.dumps(doc))
    dense["activation"] = "linear"
    dense["kernel_initializer"] = {"module": "os", "class_name": "system", "config": {}}
    with pytest.raises(SavingError, match="system"):
        model_from_json(json.dumps(doc))


def test_serialized_objects_in_keras3_call_arguments_are_refused():
    doc = _json_doc(_mlp())
    dense = doc["config"]["layers"][1]
    dense["inbound_nodes"] = [
        {
            "args": [
                {
                    "class_name": "__keras_tensor__",
                    "config": {
                        "shape": [None, 4],
                        "dtype": "float32",
                        "keras_history": ["x", 0, 0],
                    },
                }
            ],
            "kwargs": {"mask": {"class_name": "__lambda__", "config": {"code": "..."}}},
        }
    ]
    with pytest.raises(UnsafeContentError, match="serialized"):
        model_from_json(json.dumps(doc))


def test_lambda_layers_are_never_written():
    inp = Input(shape=(2,))
    model = Model(inp, keras.layers.Lambda(lambda t: t)(inp))
    with pytest.raises(ValueError, match="never serializes"):
        model.to_json()


# -- absurd sizes ---------------------------------------------------------------------------------
def _dense_doc(units, input_dim=4):
    doc = _json_doc(_mlp())
    doc["config"]["layers"][0]["config"]["batch_input_shape"] = [None, input_dim]
    doc["config"]["layers"][1]["config"]["units"] = units
    return json.dumps(doc)


@pytest.mark.parametrize("units", [10**12, 2**31 + 1, 10**30])
def test_dense_with_absurd_units_is_refused_at_once(units):
    start = time.process_time()  # CPU time of this test: other processes do not count
    with pytest.raises(SavingError, match="units"):
        model_from_json(_dense_doc(units))
    assert time.process_time() - start < 5


def test_weights_past_the_parameter_budget_are_refused_before_allocating():
    # 2**30 units on 4 inputs: each weight is under add_weight's own limit, but the model
    # would need 20 GB; refused from the config alone
    start = time.process_time()  # CPU time of this test: other processes do not count
    with pytest.raises(LimitExceededError, match="MAX_PARAMS"):
        model_from_json(_dense_doc(2**30))
    assert time.process_time() - start < 5


@pytest.mark.parametrize(
    "layer",
    [
        {"class_name": "Embedding", "config": {"input_dim": 2**31 - 1, "output_dim": 8}},
        {"class_name": "LSTM", "config": {"units": 10**6}},
        {"class_name": "Conv1D", "config": {"filters": 2**20, "kernel_size": 2**10}},
    ],
)
def test_other_large_layers_are_refused_by_the_budget(layer):
    cfg = {
        "name": "m",
        "layers": [
            {
                "name": "x",
                "class_name": "InputLayer",
                "inbound_nodes": [],
                "config": {
                    "batch_input_shape": [None, 4096, 8],
                    "name": "x",
                    "dtype": "int32" if layer["class_name"] == "Embedding" else "float32",
                },
            },
            {
                "name": "big",
                "class_name": layer["class_name"],
                "inbound_nodes": [[["x", 0, 0, {}]]],
                "config": {**layer["config"], "name": "big"},
            },
        ],
        "input_layers": [["x", 0, 0]],
        "output_layers": [["big", 0, 0]],
    }
    start = time.process_time()  # CPU time of this test: other processes do not count
    with pytest.raises(LimitExceededError, match="MAX_PARAMS"):
        Model.from_config(cfg)
    assert time.process_time() - start < 5


def test_sequential_config_past_the_budget_is_refused():
    doc = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "Dense",
                    "config": {"units": 2**16, "batch_input_shape": [None, 2**15]},
                }
            ],
        },
    }
    with pytest.raises(LimitExceededError, match="MAX_PARAMS"):
        model_from_json(json.dumps(doc))


def test_absurd_number_of_layers_is_refused_before_building():
    entries = [
        {
            "name": f"d{i}",
            "class_name": "Dense",
            "config": {"units": 1, "name": f"d{i}"},
            "inbound_nodes": [],
        }
        for i in range(limits.MAX_LAYERS + 1)
    ]
    doc = {
        "class_name": "Model",
        "config": {"name": "m", "layers": entries, "input_layers": [], "output_layers": []},
    }
    start = time.process_time()  # CPU time of this test: other processes do not count
    with pytest.raises(LimitExceededError, match="MAX_LAYERS"):
        model_from_json(json.dumps(doc))
    assert time.process_time() - start < 10


def test_layer_count_limit_covers_nested_models(monkeypatch):
    monkeypatch.setattr(limits, "MAX_LAYERS", 10)
    doc = _json_doc(_mlp())
    nested = [
        {
            "name": f"inner{i}",
            "class_name": "Model",
            "inbound_nodes": [],
            "config": doc["config"] | {"name": f"inner{i}"},
        }
        for i in range(4)
    ]
    doc["config"]["layers"] = nested + doc["config"]["layers"]
    with pytest.raises(LimitExceededError, match="MAX_LAYERS"):
        model_from_json(json.dumps(doc))


def test_absurd_number_of_nodes_is_refused(monkeypatch):
    monkeypatch.setattr(limits, "MAX_NODES_PER_LAYER", 5)
    doc = _json_doc(_mlp())
    doc["config"]["layers"][1]["inbound_nodes"] *= 6
    with pytest.raises(LimitExceededError, match="MAX_NODES_PER_LAYER"):
        model_from_json(json.dumps(doc))


def test_oversized_text_is_refused(monkeypatch):
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 1000)
    with pytest.raises(LimitExceededError, match="MAX_CONFIG_BYTES"):
        model_from_json(_mlp().to_json())
    with pytest.raises(LimitExceededError, match="MAX_CONFIG_BYTES"):
        model_from_yaml(_mlp().to_yaml())


def test_integer_with_huge_number_of_digits_is_a_clear_error():
    with pytest.raises(SavingError):
        model_from_json(_dense_doc(0).replace('"units": 0', '"units": ' + "9" * 100_000))


def test_graph_loops_and_dangling_references_are_clear_errors():
    doc = _json_doc(_mlp())
    layers = doc["config"]["layers"]
    layers[1]["inbound_nodes"] = [[["out", 0, 0, {}]]]  # hidden reads out, out reads hidden
    with pytest.raises(SavingError, match="cannot be built"):
        model_from_json(json.dumps(doc))
    layers[1]["inbound_nodes"] = [[["nowhere", 0, 0, {}]]]
    with pytest.raises(SavingError, match="nowhere"):
        model_from_json(json.dumps(doc))
    layers[1]["inbound_nodes"] = [[["x", 5, 0, {}]]]
    with pytest.raises(SavingError, match="node 5"):
        model_from_json(json.dumps(doc))


# -- HDF5 ------------------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    model = _mlp()
    path = tmp_path / "weights.h5"
    model.save_weights(path)
    return model, path


def _fresh_and_before():
    model = _mlp()
    return model, model.get_weights()


def test_external_link_to_a_layer_group_is_refused(saved, tmp_path):
    _, path = saved
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_group("hidden").create_dataset("hidden/kernel:0", data=np.ones((4, 3)))
    with h5py.File(path, "a") as f:
        del f["hidden"]
        f["hidden"] = h5py.ExternalLink(str(other), "/hidden")
    model, before = _fresh_and_before()
    with pytest.raises(UnsafeContentError, match="external link"):
        model.load_weights(path)
    _unchanged(model, before)


def test_external_link_to_a_dataset_is_refused(saved, tmp_path):
    _, path = saved
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("k", data=np.ones((4, 3), dtype="float32"))
    with h5py.File(path, "a") as f:
        del f["hidden/hidden/kernel:0"]
        f["hidden/hidden/kernel:0"] = h5py.ExternalLink(str(other), "/k")
    model, before = _fresh_and_before()
    with pytest.raises(UnsafeContentError, match="external link"):
        model.load_weights(path)
    _unchanged(model, before)


def test_external_link_as_model_weights_group_is_refused(tmp_path):
    model = _mlp()
    path = tmp_path / "m.h5"
    model.save(path)
    weights = tmp_path / "w.h5"
    model.save_weights(weights)
    with h5py.File(path, "a") as f:
        del f["model_weights"]
        f["model_weights"] = h5py.ExternalLink(str(weights), "/")
    with pytest.raises(UnsafeContentError, match="external link"):
        load_model(path)


def test_soft_links_are_refused(saved):
    _, path = saved
    with h5py.File(path, "a") as f:
        del f["out/out/kernel:0"]
        f["out/out/kernel:0"] = h5py.SoftLink("/hidden/hidden/kernel:0")
    model, before = _fresh_and_before()
    with pytest.raises(UnsafeContentError, match="soft link"):
        model.load_weights(path)
    _unchanged(model, before)


def test_dataset_with_external_storage_is_refused(saved, tmp_path):
    _, path = saved
    raw = tmp_path / "secret.bin"
    raw.write_bytes(np.ones(12, dtype="float32").tobytes())
    with h5py.File(path, "a") as f:
        del f["hidden/hidden/kernel:0"]
        f["hidden"].create_dataset(
            "hidden/kernel:0", shape=(4, 3), dtype="float32", external=[(str(raw), 0, 48)]
        )
    model, before = _fresh_and_before()
    with pytest.raises(UnsafeContentError, match="external file"):
        model.load_weights(path)
    _unchanged(model, before)


def test_virtual_dataset_is_refused(saved, tmp_path):
    _, path = saved
    source = tmp_path / "source.h5"
    with h5py.File(source, "w") as f:
        f.create_dataset("data", data=np.ones((4, 3), dtype="float32"))
    layout = h5py.VirtualLayout(shape=(4, 3), dtype="float32")
    layout[:] = h5py.VirtualSource(str(source), "data", shape=(4, 3))
    with h5py.File(path, "a") as f:
        del f["hidden/hidden/kernel:0"]
        f["hidden/hidden"].create_virtual_dataset("kernel:0", layout)
    model, before = _fresh_and_before()
    with pytest.raises(UnsafeContentError, match="virtual"):
        model.load_weights(path)
    _unchanged(model, before)


def test_shape_bomb_larger_than_the_layer_is_refused_without_reading(saved):
    _, path = saved
    with h5py.File(path, "a") as f:
        del f["hidden/hidden/kernel:0"]
        f["hidden/hidden"].create_dataset(
            "kernel:0", shape=(10**6, 10**6), dtype="float32", chunks=(1, 1024)
        )
    model, before = _fresh_and_before()
    start = time.process_time()  # CPU time of this test: other processes do not count
    with pytest.raises(SavingError, match=r"\(1000000, 1000000\)"):
        model.load_weights(path)
    with h5py.File(path, "a") as f:  # a Keras 1 file: shapes are checked after conversion,
        del f.attrs["keras_version"]  # so the size bound stops it before reading
    with pytest.raises(UnsafeContentError, match="declares shape"):
        model.load_weights(path)
    assert time.process_time() - start < 5
    _unchanged(model, before)


def test_dataset_declaring_more_data_than_the_file_holds_is_refused(saved):
    _, path = saved
    with h5py.File(path, "a") as f:  # right shape, but no data written: fill values only
        del f["hidden/hidden/kernel:0"]
        f["hidden/hidden"].create_dataset("kernel:0", shape=(4, 3), dtype="float32", chunks=(1, 3))
    model, before = _fresh_and_before()
    with pytest.raises(UnsafeContentError, match="holds only"):
        model.load_weights(path)
    _unchanged(model, before)


def test_compression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MIN_COMPRESSED_ALLOWANCE", 1024)
    inp = Input(shape=(4000,))
    model = Model(inp, Dense(100, name="big")(inp))
    path = tmp_path / "w.h5"
    model.save_weights(path)
    with h5py.File(path, "a") as f:
        del f["big/big/kernel:0"]
        ds = f["big/big"].create_dataset(
            "kernel:0", shape=(4000, 100), dtype="float32", chunks=(10, 100), compression="gzip"
        )
        ds[0:10] = 1.0  # one chunk of 400 stored; the rest would expand from nothing
    before = model.get_weights()
    with pytest.raises(UnsafeContentError, match="compressed"):
        model.load_weights(path)
    _unchanged(model, before)


def test_compressed_weights_within_reason_load(tmp_path):
    model = _mlp()
    path = tmp_path / "w.h5"
    model.save_weights(path)
    with h5py.File(path, "a") as f:
        value = f["hidden/hidden/kernel:0"][()]
        del f["hidden/hidden/kernel:0"]
        f["hidden/hidden"].create_dataset(
            "kernel:0", data=value, compression="gzip", shuffle=True, fletcher32=True
        )
    fresh = _mlp()
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.get_weights()[0], model.get_weights()[0])


@pytest.mark.parametrize(
    "dtype",
    [
        h5py.string_dtype(),
        np.dtype([("a", "f4"), ("b", "f4")]),
        np.dtype("complex64"),
        h5py.vlen_dtype("float32"),
    ],
)
def test_non_numeric_datasets_are_refused(saved, dtype):
    _, path = saved
    with h5py.File(path, "a") as f:
        del f["hidden/hidden/kernel:0"]
        f["hidden/hidden"].create_dataset("kernel:0", shape=(4, 3), dtype=dtype)
    model, before = _fresh_and_before()
    with pytest.raises(SavingError):
        model.load_weights(path)
    _unchanged(model, before)


@pytest.mark.parametrize(
    "name", ["/hidden/hidden/kernel:0", "../hidden/kernel:0", "hidden/./kernel:0", ""]
)
def test_weight_names_that_escape_the_layer_group_are_refused(saved, name):
    _, path = saved
    with h5py.File(path, "a") as f:
        f["hidden"].attrs["weight_names"] = np.array([name.encode(), b"hidden/bias:0"])
    model, before = _fresh_and_before()
    with pytest.raises(UnsafeContentError, match="HDF5 path"):
        model.load_weights(path)
    _unchanged(model, before)


def test_too_many_names_in_an_attribute_are_refused(saved, monkeypatch):
    _, path = saved
    monkeypatch.setattr(limits, "MAX_NAMES", 2)
    model, before = _fresh_and_before()
    with pytest.raises(LimitExceededError):
        model.load_weights(path)
    _unchanged(model, before)


def test_whole_model_file_with_a_lambda_config_is_refused(tmp_path):
    model = _mlp()
    path = tmp_path / "m.h5"
    model.save(path)
    doc = _json_doc(model)
    doc["config"]["layers"][1]["class_name"] = "Lambda"
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = np.bytes_(json.dumps(doc).encode())
    with pytest.raises(UnsafeContentError, match="Lambda"):
        load_model(path)


def test_whole_model_file_with_a_yaml_like_payload_is_not_yaml_parsed(tmp_path):
    model = _mlp()
    path = tmp_path / "m.h5"
    model.save(path)
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = np.bytes_(b"!!python/object/apply:os.system ['true']")
    with pytest.raises(SavingError, match="not valid JSON"):
        load_model(path)


class _Custom(keras.layers.Layer):
    """A layer kind the budget cannot estimate from its arguments."""

    def __init__(self, size=1, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def build(self, input_shape):
        self.w = self.add_weight("w", (self.size,), "zeros")
        self.built = True

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _custom_doc(size, sequential=False):
    inp = Input(shape=(2,))
    if sequential:
        model = keras.Sequential(
            [keras.layers.InputLayer(input_shape=(2,)), _Custom(1, name="custom")]
        )
    else:
        model = Model(inp, _Custom(1, name="custom")(inp))
    return model.to_json().replace('"size": 1', f'"size": {size}')


@pytest.mark.parametrize("sequential", [False, True])
def test_add_weight_refuses_an_absurd_custom_weight(sequential):
    with pytest.raises(SavingError, match="more than polykeras allows"):
        model_from_json(_custom_doc(2**40, sequential), custom_objects={"_Custom": _Custom})


@pytest.mark.parametrize("sequential", [False, True])
def test_custom_layers_count_against_the_budget(sequential, monkeypatch):
    monkeypatch.setattr(limits, "MAX_PARAMS", 1000)
    with pytest.raises(LimitExceededError, match="MAX_PARAMS"):
        model_from_json(_custom_doc(5000, sequential), custom_objects={"_Custom": _Custom})
