"""Keras 3's own files: ``.weights.h5`` and the ``.keras`` zip, written and read.

``.weights.h5`` (``save_weights("x.weights.h5")``) holds one group per object, named by
the path Keras 3 walks to reach it, not by the layer's ``name``::

    vars                              the model's own variables (none)
    layers/dense/vars/0, .../1        the first Dense of model.layers: kernel, bias
    layers/dense_1/vars/0             the second Dense (a counter per class, in order)
    layers/lstm/cell/vars/0..2        a recurrent layer's weights sit in its cell
    layers/time_distributed/layer/... a wrapper's inner layer
    layers/functional/layers/...      a nested model nests (``sequential`` for Sequential)
    optimizer/vars/0..n               iteration, learning_rate, then the slots

A group's name is the snake_case of the class name Keras 3 knows the object by
(``Model`` is ``Functional``), plus ``_1``, ``_2``... when that name is taken in the same
list.  Inside ``vars`` the datasets are the layer's weights, trainable first.

``.keras`` is a zip of ``metadata.json``, ``config.json`` (Keras 3's serialized model:
``module``, ``class_name``, ``config``, ``registered_name``, ``build_config``,
``compile_config``) and ``model.weights.h5`` in the layout above.

Reading trusts nothing: member names are checked (no absolute paths, no ``..``, no
backslashes, no duplicates) and never used as file names; every member's size and
compression ratio is bounded before and while it is read; the config is read with the
JSON limits, any ``module`` it names must be Keras' own, and functions or Lambda code are
refused; weights are checked as for legacy HDF5 files (hard links only, no external
data, shapes declared no larger than the data stored) and against the model's shapes
before anything is assigned.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import initializers
from . import files, formats, hdf5, limits
from .errors import (
    FileFormatError,
    LimitExceededError,
    SavingError,
    UnsafeContentError,
    WeightsMismatchError,
)
from .files import atomic_path

#: The Keras version whose format is written (metadata.json's ``keras_version``).
KERAS3_VERSION = "3.15.1"

CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"

#: Most members a .keras archive may list.
MAX_ARCHIVE_MEMBERS = 1000
#: Most bytes all members of a .keras archive may expand to together.
MAX_ARCHIVE_BYTES = 2**34
#: A compressed member may expand to at most this many times its stored size (Keras
#: stores its members uncompressed; weights barely compress, JSON about 10-30x)...
MAX_ARCHIVE_RATIO = 100
#: ...or to this many bytes, whichever is more.
MIN_ARCHIVE_ALLOWANCE = 64 * 2**20


# -- names and the object walk -------------------------------------------------------------------
def to_snake_case(name: str) -> str:
    """``"MaxPooling2D"`` -> ``"max_pooling2d"``, ``"SimpleRNN"`` -> ``"simple_rnn"``: the
    rule Keras 3 names objects by."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _models() -> tuple[Any, Any]:
    from ..models import Model, Sequential

    return Model, Sequential


def keras3_class_name(layer: Any) -> str:
    """The class name Keras 3 writes for ``layer``."""
    from .registry import class_name_of

    Model, Sequential = _models()
    if isinstance(layer, Sequential):
        return "Sequential"
    if isinstance(layer, Model) and not _user_object(layer):
        return "Functional"
    return class_name_of(layer)


def _group_name(obj: Any) -> str:
    """The group name Keras 3 gives an object in a list: the snake_case of its class's
    name (Keras 3's class name for polykeras' own classes; a user's class's own name, not
    the name it is registered under)."""
    if type(obj).__module__.split(".")[0] != "polykeras":
        return to_snake_case(type(obj).__name__)
    return to_snake_case(keras3_class_name(obj))


def _user_object(obj: Any) -> bool:
    """A subclassed model or a custom layer with a call of its own, whose parts Keras 3
    stores by attribute name (``dense1/vars``, ``blocks/block_1/vars``)."""
    from ..engine.subclassing import defined_outside

    if getattr(obj, "_is_graph_network", False):
        return False
    return defined_outside(type(obj), "call")


def _user_children(obj: Any) -> list[tuple[str, Any]]:
    """``(attribute, value)`` for the attributes of a user object that may hold layers, in
    the order Keras 3 visits them: sorted by name, private names last; a subclassed
    model's ``layers`` list takes its place among them."""
    from ..engine import tracking

    names = list(obj.__dict__.get("_tracked_attrs", {}) or {})
    Model, _ = _models()
    if isinstance(obj, Model):
        names.append("layers")
    names = sorted(set(names), key=lambda n: f"~{n}" if n.startswith("_") else n)
    out = []
    for name in names:
        value = (
            obj.layers if name == "layers" and isinstance(obj, Model) else obj.__dict__.get(name)
        )
        if name in tracking._BOOKKEEPING or value is None:
            continue
        out.append((name, value))
    return out


def _is_rnn(layer: Any) -> bool:
    from ..layers import recurrent

    base = getattr(recurrent, "_RNN", None)
    return base is not None and isinstance(layer, base)


def _own_variables(layer: Any) -> list:
    """The variables a (non-container) layer stores itself, in Keras 3's order."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def walk(model: Any) -> list[tuple[str, str, list]]:
    """``(group path, object name, variables)`` for every object Keras 3 stores a ``vars``
    group for, in the order it walks them (the top model's own ``vars`` first).  As in
    Keras 3, an object reached a second time (a layer that also sits in a nested model) is
    stored only where it was first reached, though it still takes its name in each list."""
    Model, _ = _models()
    out: list[tuple[str, str, list]] = []
    visited: set[int] = set()

    def visit(obj: Any, path: str) -> None:
        if id(obj) in visited:  # a layer met again (shared with a nested model): stored once
            return
        visited.add(id(obj))
        if _user_object(obj):
            out.append((_join(path, "vars"), obj.name, list(obj._own_weights())))
            for attr, child in _user_children(obj):
                if isinstance(child, _layer_base()):
                    visit(child, _join(path, attr))
                elif isinstance(child, (list, tuple, dict)):
                    container(child, _join(path, attr), set())
        elif isinstance(obj, Model):
            out.append((_join(path, "vars"), obj.name, []))
            used: dict[str, int] = {}
            for layer in obj.layers:
                base = _group_name(layer)
                n = used.get(base, 0)
                used[base] = n + 1
                visit(layer, _join(path, "layers", base if n == 0 else f"{base}_{n}"))
        elif isinstance(getattr(obj, "cell", None), _layer_base()):  # RNN(cell)
            out.append((_join(path, "vars"), obj.name, []))
            visit(obj.cell, _join(path, "cell"))
        elif isinstance(getattr(obj, "cells", None), list):  # StackedRNNCells
            out.append((_join(path, "vars"), obj.name, []))
            taken: dict[str, int] = {}
            for cell in obj.cells:
                base = _group_name(cell)
                n = taken.get(base, 0)
                taken[base] = n + 1
                visit(cell, _join(path, "cells", base if n == 0 else f"{base}_{n}"))
        elif _is_rnn(obj) and not hasattr(obj, "state_size"):
            out.append((_join(path, "vars"), obj.name, []))
            out.append((_join(path, "cell", "vars"), f"{obj.name}_cell", _own_variables(obj)))
        elif isinstance(getattr(obj, "forward_layer", None), _layer_base()):  # Bidirectional
            out.append((_join(path, "vars"), obj.name, []))
            visit(obj.forward_layer, _join(path, "forward_layer"))
            visit(obj.backward_layer, _join(path, "backward_layer"))
        elif isinstance(getattr(obj, "layer", None), _layer_base()):  # a wrapper
            out.append((_join(path, "vars"), obj.name, []))
            visit(obj.layer, _join(path, "layer"))
        elif hasattr(obj, "keras3_weight_groups"):  # weights Keras 3 keeps in sub-layers
            out.append((_join(path, "vars"), obj.name, []))
            for sub, variables in obj.keras3_weight_groups():
                out.append((_join(path, sub, "vars"), f"{obj.name}/{sub}", variables))
        else:
            out.append((_join(path, "vars"), obj.name, _own_variables(obj)))

    def container(items: Any, path: str, seen: set[int]) -> None:
        if id(items) in seen:
            return
        seen.add(id(items))
        used: dict[str, int] = {}

        def unique(base: str) -> str:
            n = used.get(base)
            used[base] = 0 if n is None else n + 1
            return base if n is None else f"{base}_{n + 1}"

        for item in items.values() if isinstance(items, dict) else items:
            if isinstance(item, _layer_base()):
                visit(item, _join(path, unique(to_snake_case(type(item).__name__))))
            elif isinstance(item, (list, tuple, dict)):
                container(item, _join(path, unique("container")), seen)

    visit(model, "")
    return out


def _layer_base() -> Any:
    from ..engine.base_layer import Layer

    return Layer


# -- weights: writing ------------------------------------------------------------------------------
def _optimizer_state(model: Any) -> tuple[str, list[np.ndarray]] | None:
    optimizer = getattr(model, "optimizer", None)
    if (
        optimizer is None
        or not getattr(model, "_compiled", None)
        or not hasattr(optimizer, "file_state")
    ):
        return None
    state = optimizer.file_state(list(model.trainable_weights))
    return optimizer.name, [np.asarray(value) for _, value in state]


def write_store(f: Any, model: Any, include_optimizer: bool = True) -> None:
    """Write ``model``'s weights (and optimizer state) into the open h5py file ``f``."""
    for path, name, variables in walk(model):
        group = f.require_group(path)
        group.attrs["name"] = name
        for i, var in enumerate(variables):
            value = np.asarray(var.numpy())
            group.create_dataset(str(i), data=value)
    if include_optimizer:
        state = _optimizer_state(model)
        if state is not None:
            name, values = state
            group = f.require_group("optimizer/vars")
            group.attrs["name"] = name
            for i, value in enumerate(values):
                group.create_dataset(str(i), data=value)


def save_weights(model: Any, path: Any, overwrite: bool = True) -> None:
    """``model.save_weights("x.weights.h5")``: Keras 3's layout, written atomically."""
    h5py = hdf5._h5py()
    with atomic_path(path, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            write_store(f, model)


# -- weights: reading ------------------------------------------------------------------------------
def is_keras3_weights(f: Any) -> bool:
    """Whether an open HDF5 file is in Keras 3's ``vars`` layout (not the legacy one)."""
    return (
        "layer_names" not in f.attrs and "model_weights" not in f and ("vars" in f or "layers" in f)
    )


def _plan(f: Any, info: Any, model: Any, where: str) -> list:
    h5py = hdf5._h5py()
    if not getattr(model, "built", True) and model.layers:
        raise SavingError(
            f"{where}: model {model.name} is not built yet, so its layers have no weights "
            "to load into; build it first"
        )
    plan: list = []
    for path, name, variables in walk(model):
        if not variables:
            continue
        label = f"{where}: {path} (layer {name!r})"
        if not hdf5._has_link(f, path):
            raise WeightsMismatchError(
                f"{label}: the model's layer {name!r} has {len(variables)} weight(s), but "
                f"the file has no group {path!r}; is it the weights file of another model? "
                f"(it holds {_list_groups(f)})"
            )
        group = hdf5.child(f, path, label)
        if not isinstance(group, h5py.Group):
            raise FileFormatError(f"{label} is not a group")
        keys = list(group.keys())
        expected = [str(i) for i in range(len(variables))]
        if sorted(keys) != sorted(expected):
            raise WeightsMismatchError(
                f"{label}: layer {name!r} expects {len(variables)} weight(s) (vars "
                f"{', '.join(expected)}), but the file holds {len(keys)} ({sorted(keys)[:8]})"
            )
        budget = sum(int(np.prod(v.shape, dtype=object)) for v in variables)
        for i, var in enumerate(variables):
            ds_where = f"{label}, dataset {path}/{i}"
            ds = hdf5.child(group, str(i), ds_where)
            if not isinstance(ds, h5py.Dataset) or ds.shape is None:
                raise FileFormatError(f"{ds_where} is not a dataset with a shape")
            if tuple(ds.shape) != tuple(var.shape):
                raise WeightsMismatchError(
                    f"{where}: layer {name!r}: weight {var.name} has shape "
                    f"{tuple(var.shape)} in the model, but {path}/{i} in the file has shape "
                    f"{tuple(int(d) for d in ds.shape)}"
                )
            hdf5.check_dataset(ds, ds_where, budget, info)
            plan.append((var, hdf5._read_dataset(ds, ds_where)))
    return plan


def _list_groups(f: Any) -> str:
    try:
        names = list(f["layers"].keys()) if "layers" in f else []
    except Exception:
        names = []
    return f"layers {names[:8]}" if names else "no layers group"


def _read_optimizer(f: Any, info: Any, model: Any, where: str) -> list | None:
    h5py = hdf5._h5py()
    if not hdf5._has_link(f, "optimizer") or not hdf5._has_link(f["optimizer"], "vars"):
        return None
    group = hdf5.child(f, "optimizer/vars", where)
    if not isinstance(group, h5py.Group):
        raise FileFormatError(f"{where}: optimizer/vars is not a group")
    keys = list(group.keys())
    weights = list(model.weights)
    if len(keys) > 8 * (len(weights) + 2):
        raise LimitExceededError(
            f"{where}: optimizer/vars holds {len(keys):,} arrays for a model with "
            f"{len(weights)} weights"
        )
    if sorted(keys) != sorted(str(i) for i in range(len(keys))):
        raise FileFormatError(f"{where}: optimizer/vars holds unexpected entries {keys[:8]}")
    largest = max([int(np.prod(v.shape, dtype=np.int64)) for v in weights] + [1])
    out = []
    for i in range(len(keys)):
        label = f"{where}: optimizer/vars/{i}"
        ds = hdf5.child(group, str(i), label)
        hdf5.check_dataset(ds, label, largest, info)
        name = ("opt/iteration", "opt/learning_rate")[i] if i < 2 else f"opt/vars_{i}"
        out.append((name, hdf5._read_dataset(ds, label)))
    return out


def load_weights(model: Any, path: Any, skip_mismatch: bool = False) -> None:
    """``model.load_weights("x.weights.h5")``: everything read and checked, then assigned;
    the optimizer's state too, when the model is compiled (as Keras 3 does)."""
    where = _where("load_weights", path)
    if skip_mismatch:
        raise SavingError(
            f"{where}: skip_mismatch=True is not supported for Keras 3 '.weights.h5' files"
        )
    with hdf5.open_h5(path, where) as (f, info):
        _apply_store(f, info, model, where, optimizer=True)


def _apply_store(f: Any, info: Any, model: Any, where: str, optimizer: bool) -> None:
    if not is_keras3_weights(f):
        raise FileFormatError(
            f"{where}: the file is not in Keras 3's weights layout (no 'vars'/'layers' groups)"
        )
    plan = _plan(f, info, model, where)
    compiled = getattr(model, "_compiled", None) is not None
    state = _read_optimizer(f, info, model, where) if optimizer and compiled else None
    hdf5.assign(plan)
    if state and getattr(model, "_compiled", None) is not None:
        hdf5.restore_optimizer(model, state, where)


def _where(what: str, path: Any) -> str:
    if isinstance(path, (str, os.PathLike)):
        return f"{what}({os.fspath(path)!r})"
    return what


# -- config.json: writing ------------------------------------------------------------------------
def _ktensor(t: Any, history: list) -> dict[str, Any]:
    return {
        "class_name": "__keras_tensor__",
        "config": {
            "shape": [None if d is None else int(d) for d in t.shape],
            "dtype": str(t.dtype),
            "keras_history": history,
        },
    }


def _layer_config(layer: Any) -> dict[str, Any]:
    """A layer's config with any inner layer (a wrapper's) in Keras 3's form."""
    config = dict(layer.get_config())
    for key, value in list(config.items()):
        inner = getattr(layer, key, None)
        if isinstance(value, dict) and "class_name" in value and isinstance(inner, _layer_base()):
            config[key] = serialize(inner)
    if keras3_class_name(layer) == "InputLayer" and "batch_input_shape" in config:
        config["batch_shape"] = config.pop("batch_input_shape")
    return config


def _functional_config(model: Any) -> dict[str, Any]:
    from . import config as cfg

    Model, Sequential = _models()
    k2 = model.get_config()
    members = cfg._member_nodes(model)
    added = cfg.added_tensors(model)
    extra = cfg.ancillary_layers(model, members) if added else []
    index = cfg._node_index_map(model, members, extra)
    by_name = {layer.name: layer for layer in list(model.layers) + extra}
    for t in model.inputs:
        by_name.setdefault(t._keras_history[0].name, t._keras_history[0])
        index.setdefault((id(t._keras_history[0]), t._keras_history[1]), 0)

    def history(layer: Any, node_index: int, tensor_index: int) -> list:
        k = index[(id(layer), node_index)]
        return [layer.name, k - 1 if isinstance(layer, Model) else k, tensor_index]

    def ref(t: Any) -> list:
        layer, node_index, tensor_index = t._keras_history
        k = index[(id(layer), node_index)]
        return [layer.name, k - 1 if isinstance(layer, Sequential) else k, tensor_index]

    from ..engine.op_layer import OpLayer
    from ..layers.merge import _Merge
    from . import keras3_ops

    entries = []
    added_entries: list[dict[str, Any]] = []
    for k2_entry in k2["layers"]:
        if k2_entry["class_name"] in cfg.ADDED_CLASSES:  # kept beside the layers (see below)
            t = added[len(added_entries)][1]
            lay, ni, ti = t._keras_history
            added_entries.append(
                {
                    "name": k2_entry["name"],
                    "class_name": k2_entry["class_name"],
                    "config": k2_entry["config"],
                    "inbound_nodes": [{"args": [_ktensor(t, history(lay, ni, ti))], "kwargs": {}}],
                }
            )
            continue
        layer = by_name[k2_entry["name"]]
        if isinstance(layer, Model) and cfg.added_tensors(layer):
            raise SavingError(
                f"model {model.name}: its nested model {layer.name} was given add_loss / "
                "add_metric on symbolic tensors, which a .keras file cannot hold inside a "
                "nested model; save to .h5 (or the JSON/YAML config), which keeps them"
            )
        nodes = []
        op_entry = None
        for node in layer._inbound_nodes:
            if id(node) not in members or not node.inbound_layers:
                continue
            tensors = [
                _ktensor(t, history(lay, ni, ti))
                for t, lay, ni, ti in zip(
                    node.input_tensors, node.inbound_layers, node.node_indices, node.tensor_indices
                )
            ]
            if isinstance(layer, OpLayer):
                op_form = keras3_ops.to_keras3(layer, tensors)
                if op_form is not None:  # Keras 3's own op entry (else an OpLayer entry)
                    op_entry = op_form[0]
                    nodes.append(op_form[1])
                    continue
            listed = len(tensors) > 1 or isinstance(layer, _Merge)
            call_kwargs = dict(node.arguments or {})
            if node.mask_tensors:  # a mask given to the call: a tensor in the kwargs
                masks = [
                    None if m is None else _ktensor(m, history(*m._keras_history))
                    for m in node.mask_tensors
                ]
                call_kwargs["mask"] = masks if listed else masks[0]
            if hasattr(layer, "keras3_call_args"):  # a layer Keras 3 calls with several args
                args, kwargs = layer.keras3_call_args(tensors, call_kwargs)
                nodes.append({"args": args, "kwargs": kwargs})
                continue
            nodes.append({"args": [tensors] if listed else tensors, "kwargs": call_kwargs})
        entry = dict(op_entry) if op_entry is not None else serialize(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = nodes
        entries.append(entry)
    inputs = [ref(t) for t in model.inputs]
    outputs = [ref(t) for t in model.outputs]
    out = {
        "name": model.name,
        "trainable": bool(model.trainable),
        "layers": entries,
        "input_layers": inputs[0] if len(inputs) == 1 else inputs,
        "output_layers": outputs[0] if len(outputs) == 1 else outputs,
    }
    if added_entries:  # model_config moves them out of the model's config
        out[ADDED_KEY] = added_entries
    return out


def _sequential_config(model: Any) -> dict[str, Any]:
    k2 = model.get_config()
    entries = []
    layers = list(model.layers)
    for item in k2["layers"]:
        if item.get("class_name") == "InputLayer":
            config = dict(item["config"])
            if "batch_input_shape" in config:
                config["batch_shape"] = config.pop("batch_input_shape")
            entries.append(
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": config,
                    "registered_name": None,
                }
            )
    for layer in layers:
        entry = serialize(layer)
        entry["config"].pop("batch_input_shape", None)
        entries.append(entry)
    out: dict[str, Any] = {
        "name": model.name,
        "trainable": bool(model.trainable),
        "layers": entries,
    }
    if getattr(model, "inputs", None):
        out["build_input_shape"] = [None if d is None else int(d) for d in model.inputs[0].shape]
    return out


def serialize(layer: Any) -> dict[str, Any]:
    """``layer`` (or model) as Keras 3 serializes it."""
    Model, Sequential = _models()
    class_name = keras3_class_name(layer)
    if isinstance(layer, Model) and _user_object(layer):  # a subclassed model: its config
        return {
            "module": None,
            "class_name": class_name,
            "config": formats.to_plain(layer.get_config()),
            "registered_name": class_name,
        }
    if isinstance(layer, Sequential):
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": _sequential_config(layer),
            "registered_name": None,
        }
    if isinstance(layer, Model):
        return {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": _functional_config(layer),
            "registered_name": "Functional",
        }
    module = "keras.layers" if type(layer).__module__.startswith("polykeras.") else None
    return {
        "module": module,
        "class_name": class_name,
        "config": _layer_config(layer),
        "registered_name": None if module else class_name,
    }


def compile_config(model: Any) -> dict[str, Any] | None:
    """Keras 3's ``compile_config`` from the model's compile settings, or None."""
    tc = hdf5.training_config(model)
    if tc is None:
        return None
    opt = tc.get("optimizer_config")
    optimizer = None
    if isinstance(opt, dict):
        opt_config = dict(opt.get("config") or {})
        if not opt_config.get("decay"):  # Keras 3 has no decay, and warns about a zero one
            opt_config.pop("decay", None)
        optimizer = {
            "module": "keras.optimizers",
            "class_name": opt.get("class_name"),
            "config": opt_config,
            "registered_name": None,
        }
    return {
        "optimizer": optimizer,
        "loss": _keras3_objects(tc.get("loss"), "keras.losses"),
        "loss_weights": tc.get("loss_weights"),
        "metrics": _keras3_objects(tc.get("metrics"), "keras.metrics") or None,
        "weighted_metrics": _keras3_objects(tc.get("weighted_metrics"), "keras.metrics") or None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def _keras3_objects(value: Any, module: str) -> Any:
    """Loss and metric objects (``{"class_name", "config"}``) as Keras 3 writes them: with
    their module (Keras' own classes) or their registered name (custom ones)."""
    if isinstance(value, list):
        return [_keras3_objects(v, module) for v in value]
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        name = value["class_name"]
        custom = isinstance(name, str) and ">" in name
        return {
            "module": None if custom else module,
            "class_name": name.rpartition(">")[2] if custom else name,
            "config": value["config"],
            "registered_name": name if custom else None,
        }
    if isinstance(value, dict):
        return {k: _keras3_objects(v, module) for k, v in value.items()}
    return value


# A functional model's add_loss / add_metric on symbolic tensors (tf.keras 2's AddLoss /
# AddMetric layer entries, with Keras 3 inbound nodes) go in this top-level key of
# config.json, outside the model's config: Keras 3 has no such layers and ignores the key
# (it loads the model without them), polykeras puts them back among the layers on reading.
ADDED_KEY = "polykeras_added_layers"


def model_config(model: Any, include_optimizer: bool = True) -> dict[str, Any]:
    """config.json of a .keras file for ``model``."""
    entry = serialize(model)
    if isinstance(entry.get("config"), dict) and ADDED_KEY in entry["config"]:
        entry[ADDED_KEY] = entry["config"].pop(ADDED_KEY)
    shape: Any = None
    Model, Sequential = _models()
    if isinstance(model, Sequential) and getattr(model, "inputs", None):
        shape = [None if d is None else int(d) for d in model.inputs[0].shape]
    elif _user_object(model) and getattr(model, "_subclass_inputs", None) is not None:
        structure, tensors = model._subclass_inputs
        shapes = [[None if d is None else int(d) for d in t.shape] for t in tensors]
        shape = shapes[0] if structure.kind == "single" else shapes
        if structure.kind == "dict":
            shape = dict(zip(map(str, structure.keys), shapes))
    entry["build_config"] = {"input_shape": shape}
    if include_optimizer:
        cc = compile_config(model)
        if cc is not None:
            entry["compile_config"] = cc
    return formats.to_plain(entry)


# -- .keras: writing ---------------------------------------------------------------------------
def save_model(
    model: Any, path: Any, overwrite: bool = True, include_optimizer: bool = True
) -> None:
    """``model.save("x.keras")``: the zip Keras 3 writes, written atomically."""
    config_text = formats.dumps_json(model_config(model, include_optimizer))
    metadata = {
        "keras_version": KERAS3_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "written_by": "polykeras",
    }
    h5py = hdf5._h5py()
    with atomic_path(path, overwrite=overwrite) as tmp:
        workdir = tempfile.mkdtemp(prefix=".polykeras-", dir=os.path.dirname(tmp))
        try:
            weights_path = os.path.join(workdir, WEIGHTS_MEMBER)
            with h5py.File(weights_path, "w") as f:
                write_store(f, model, include_optimizer=include_optimizer)
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
                zf.writestr(METADATA_MEMBER, formats.dumps_json(metadata))
                zf.writestr(CONFIG_MEMBER, config_text)
                zf.write(weights_path, WEIGHTS_MEMBER)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


# -- .keras: reading ---------------------------------------------------------------------------
def _check_member_name(name: str, where: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if (
        not name
        or "\\" in name
        or name.startswith("/")
        or "\x00" in name
        or re.match(r"^[A-Za-z]:", name)
        or any(p in ("..", ".") for p in parts)
    ):
        raise UnsafeContentError(
            f"{where}: refused the archive member {name!r:.200}: its name could reach "
            "outside the archive (absolute path, drive letter, '..' or backslash)"
        )


class _Archive:
    """A .keras zip opened for reading, its member list checked."""

    def __init__(self, zf: zipfile.ZipFile, size: int, where: str):
        self.zf = zf
        self.where = where
        infos = zf.infolist()
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            raise LimitExceededError(
                f"{where}: the archive lists {len(infos):,} members, more than "
                f"{MAX_ARCHIVE_MEMBERS:,} (keras3.MAX_ARCHIVE_MEMBERS)"
            )
        seen: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            _check_member_name(info.filename, where)
            if info.filename in seen:
                raise UnsafeContentError(
                    f"{where}: the archive lists the member {info.filename!r} twice"
                )
            seen[info.filename] = info
            if info.flag_bits & 0x1:
                raise UnsafeContentError(
                    f"{where}: the member {info.filename!r} is encrypted; refused"
                )
            total += info.file_size
            _check_ratio(info, where)
        budget = min(MAX_ARCHIVE_BYTES, max(size * MAX_ARCHIVE_RATIO, MIN_ARCHIVE_ALLOWANCE))
        if total > budget:
            raise LimitExceededError(
                f"{where}: the archive's members expand to {total:,} bytes from a file of "
                f"{size:,} bytes, more than the {budget:,} allowed (a zip bomb?; "
                "keras3.MAX_ARCHIVE_BYTES, MAX_ARCHIVE_RATIO)"
            )
        self.members = seen
        self.size = size

    def has(self, name: str) -> bool:
        return name in self.members

    def copy_to(self, name: str, out: Any, limit: int) -> int:
        """Stream member ``name`` into ``out``, refusing more than ``limit`` bytes or more
        than the archive declares for it."""
        info = self.members.get(name)
        if info is None:
            raise FileFormatError(
                f"{self.where}: the archive has no {name!r} (members: "
                f"{sorted(self.members)[:8]}); is it a Keras 3 .keras file?"
            )
        if info.file_size > limit:
            raise LimitExceededError(
                f"{self.where}: {name} declares {info.file_size:,} bytes, more than the "
                f"{limit:,} allowed"
            )
        allowed = min(limit, info.file_size)
        written = 0
        try:
            with self.zf.open(info) as fh:
                while True:
                    chunk = fh.read(1 << 20)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > allowed:
                        raise UnsafeContentError(
                            f"{self.where}: {name} expands past the {allowed:,} bytes "
                            "declared for it (a zip bomb?); refused"
                        )
                    out.write(chunk)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
            raise FileFormatError(
                f"{self.where}: {name} cannot be read from the archive (truncated or "
                f"corrupted?): {exc}"
            ) from None
        except RuntimeError as exc:
            raise FileFormatError(f"{self.where}: {name} cannot be read: {exc}") from None
        return written

    def read_text(self, name: str) -> bytes:
        buf = io.BytesIO()
        self.copy_to(name, buf, limits.MAX_CONFIG_BYTES)
        return buf.getvalue()


def _check_ratio(info: zipfile.ZipInfo, where: str) -> None:
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise UnsafeContentError(
                f"{where}: the stored member {info.filename!r} declares {info.file_size:,} "
                f"bytes but holds {info.compress_size:,}"
            )
        return
    allowed = max(info.compress_size * MAX_ARCHIVE_RATIO, MIN_ARCHIVE_ALLOWANCE)
    if info.file_size > allowed:
        raise UnsafeContentError(
            f"{where}: the member {info.filename!r} expands {info.compress_size:,} bytes "
            f"into {info.file_size:,} (more than {MAX_ARCHIVE_RATIO}x; a zip bomb?); "
            "refused (keras3.MAX_ARCHIVE_RATIO)"
        )


@contextlib.contextmanager
def open_archive(path: Any, where: str) -> Iterator[_Archive]:
    target = files.file_to_read(path, where, "a .keras file")
    size = os.path.getsize(target)
    try:
        zf = zipfile.ZipFile(target, "r")
    except zipfile.BadZipFile as exc:
        with open(target, "rb") as fh:
            head = fh.read(8)
        hint = (
            " (it is an HDF5 file: read it with the legacy loader by naming it .h5)"
            if head.startswith(b"\x89HDF")
            else " (truncated or corrupted?)"
            if head.startswith(b"PK")
            else ""
        )
        raise FileFormatError(
            f"{where}: {target!r} is not a readable .keras zip archive: {exc}{hint}"
        ) from None
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{where}: {target!r} cannot be opened as a zip: {exc}") from None
    try:
        yield _Archive(zf, size, where)
    finally:
        zf.close()


#: Keys of a serialized object that may name code; checked wherever they appear.
_KERAS_MODULES = re.compile(r"^keras(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_CODE_CLASS_NAMES = {"function", "__lambda__", "__typespec__", "__bytes__"}


def check_config(config: Any, custom_objects: dict | None, where: str) -> None:
    """Refuse a config that names a module outside Keras (unless it names a class given in
    ``custom_objects`` or registered by a plugin), a Python function, or Lambda code,
    before any of it is used (the class lookup is registry-only in any case)."""
    from .registry import plugin_classes

    from .custom_objects import effective

    custom = set(effective(custom_objects))
    custom |= {k.rpartition(">")[2] for k in custom if ">" in k}
    try:
        known = custom | set(plugin_classes())
    except Exception:  # plugin discovery problems: custom_objects only
        known = custom
    stack = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            class_name = value.get("class_name")
            module = value.get("module")
            if isinstance(class_name, str) and class_name in _CODE_CLASS_NAMES:
                named = value.get("config")
                if class_name == "function" and isinstance(named, str) and named in custom:
                    pass
                else:
                    raise UnsafeContentError(
                        f"{where} was refused: it holds a serialized "
                        f"{'Python function' if class_name == 'function' else class_name!r}"
                        f" ({_describe(value)}); polykeras never loads or calls code from "
                        "a file (pass known objects with custom_objects=)"
                    )
            if module is not None and class_name not in known:
                if not isinstance(module, str) or not _KERAS_MODULES.match(module):
                    raise UnsafeContentError(
                        f"{where} was refused: it names the module {module!r:.100} "
                        f"(class {class_name!r:.100}); only Keras' own classes, the "
                        "layers polykeras registers and custom_objects can be loaded"
                    )
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _describe(value: dict) -> str:
    cfg = value.get("config")
    module = value.get("module")
    if isinstance(cfg, str):
        return f"{module}.{cfg}" if module else cfg
    return f"module {module!r}" if module else "code"


def _compile_from_config(model: Any, cc: Any, where: str) -> None:
    if not isinstance(cc, dict):
        return
    opt = cc.get("optimizer")
    tc: dict[str, Any] = {
        "loss": cc.get("loss"),
        "metrics": cc.get("metrics"),
        "loss_weights": cc.get("loss_weights"),
        "weighted_metrics": cc.get("weighted_metrics"),
    }
    if isinstance(opt, dict):
        tc["optimizer_config"] = {
            "class_name": opt.get("class_name"),
            "config": opt.get("config") or {},
        }
    elif isinstance(opt, str):
        tc["optimizer_config"] = {"class_name": opt, "config": {}}
    hdf5.compile_from_training_config(model, tc, where)


def _read_config(archive: _Archive, custom_objects: dict | None, where: str) -> dict:
    raw = archive.read_text(CONFIG_MEMBER)
    config = formats.loads_json(raw, f"{where}: {CONFIG_MEMBER}")
    if not isinstance(config, dict) or "class_name" not in config:
        raise FileFormatError(f"{where}: {CONFIG_MEMBER} does not describe a model")
    check_config(config, custom_objects, f"{where}: {CONFIG_MEMBER}")
    return config


@contextlib.contextmanager
def _weights_file(archive: _Archive) -> Iterator[str]:
    """model.weights.h5 copied (bounded) to a private temporary folder, under a fixed
    name: a member's name never becomes a path."""
    workdir = tempfile.mkdtemp(prefix="polykeras-keras-")
    try:
        target = os.path.join(workdir, WEIGHTS_MEMBER)
        with open(target, "wb") as out:
            archive.copy_to(WEIGHTS_MEMBER, out, MAX_ARCHIVE_BYTES)
        yield target
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def load_model(path: Any, custom_objects: dict | None = None, compile: bool = True) -> Any:
    """``load_model("x.keras")``: the model, its weights, and (with ``compile=True``) its
    compile settings and optimizer state."""
    from .config import ADDED_CLASSES, model_from_config

    where = _where("load_model", path)
    with open_archive(path, where) as archive:
        config = _read_config(archive, custom_objects, where)
        entry = {k: v for k, v in config.items() if k in ("class_name", "config", "module")}
        added = config.get(ADDED_KEY)
        if added is not None:
            inner = entry.get("config")
            if not (isinstance(added, list) and isinstance(inner, dict)):
                raise SavingError(
                    f"{where}: {CONFIG_MEMBER}'s {ADDED_KEY} must be a list of AddLoss / "
                    "AddMetric layer entries beside a functional model's config"
                )
            if not all(isinstance(a, dict) and a.get("class_name") in ADDED_CLASSES for a in added):
                raise SavingError(
                    f"{where}: {CONFIG_MEMBER}'s {ADDED_KEY} may only hold AddLoss / "
                    "AddMetric layer entries"
                )
            layers = inner.get("layers")
            if not isinstance(layers, list):
                raise SavingError(f"{where}: {ADDED_KEY} is given for a model without layers")
            entry["config"] = {**inner, "layers": layers + added}
        with initializers.guarded(hdf5.weights_from_file):
            model = model_from_config(entry, custom_objects)
            if _user_object(model) and not model.built:  # a subclassed model: build it
                shape = (config.get("build_config") or {}).get("input_shape")
                if shape is None:
                    raise SavingError(
                        f"{where}: the subclassed model {type(model).__name__} was saved "
                        "before it was built (no build_config input_shape)"
                    )
                model.build(shape)
        cc = config.get("compile_config") if compile else None
        with _weights_file(archive) as weights_path:
            with hdf5.open_h5(weights_path, f"{where}: {WEIGHTS_MEMBER}") as (f, info):
                label = f"{where}: {WEIGHTS_MEMBER}"
                plan = _plan(f, info, model, label)
                state = _read_optimizer(f, info, model, label) if cc else None
    hdf5.assign(plan)
    if cc:
        _compile_from_config(model, cc, where)
        if state and getattr(model, "_compiled", None) is not None:
            hdf5.restore_optimizer(model, state, where)
    return model


def load_weights_from_archive(model: Any, path: Any) -> None:
    """``model.load_weights("x.keras")``: the weights (and optimizer state) of a .keras
    file, as Keras 3 allows."""
    where = _where("load_weights", path)
    with open_archive(path, where) as archive:
        with _weights_file(archive) as weights_path:
            with hdf5.open_h5(weights_path, f"{where}: {WEIGHTS_MEMBER}") as (f, info):
                _apply_store(f, info, model, f"{where}: {WEIGHTS_MEMBER}", optimizer=True)


def is_archive(path: Any) -> bool:
    """Whether ``path`` names a .keras file: by its name, or (for an existing file) by the
    zip signature it starts with."""
    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if target.endswith(".keras"):
        return True
    if not os.path.isfile(target):  # not a regular file: the loader says so, by name
        return False
    try:
        with open(target, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def is_keras3_weights_file(path: Any) -> bool:
    """Whether ``path`` is an HDF5 file in Keras 3's ``vars`` layout."""
    h5py = hdf5._h5py()
    target = os.fspath(path)
    try:
        if not os.path.isfile(target) or not h5py.is_hdf5(target):
            return False
        with h5py.File(target, "r") as f:
            return is_keras3_weights(f)
    except (OSError, ValueError, TypeError):
        return False
