"""Model and layer configs: Keras 2's format written; Keras 1, 2 and 3 formats read.

A functional model's config (Keras 2.2.4 layout)::

    {"name": "model_1",
     "layers": [{"name": "input_1", "class_name": "InputLayer", "config": {...},
                 "inbound_nodes": []},
                {"name": "dense_1", "class_name": "Dense", "config": {...},
                 "inbound_nodes": [[["input_1", 0, 0, {}]]]}],
     "input_layers": [["input_1", 0, 0]],
     "output_layers": [["dense_1", 0, 0]]}

Each inbound node lists the tensors a call of the layer read, as
``[layer_name, node_index, tensor_index, call_kwargs]``.  Node indices count only nodes
that belong to the model (a layer shared with another model may have nodes outside it),
and a nested model's own node 0 (its inputs to its outputs) is counted first, as Keras 2
does, so its first call in the outer model is node 1.

Keras 3 writes nodes as ``{"args": [...], "kwargs": {...}}`` with ``__keras_tensor__``
entries whose ``keras_history`` counts a nested model's calls from 0 (but, like Keras 3,
``input_layers``/``output_layers`` count a nested functional model's calls from 1).
Keras 1 writes nodes without the kwargs.  All three are read.

Reading is bounded: the limits in :mod:`polykeras.saving.limits` cap the number of
layers, nodes per layer and weight values, so that a hostile config fails with a clear
error instead of exhausting memory or time.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from collections import deque
from collections.abc import Iterator
from typing import Any

from . import compat, limits, registry
from .errors import LimitExceededError, SavingError, UnsafeContentError
from ..engine.subclassing import defined_outside
from .registry import class_name_of

KERAS_VERSION = "2.2.4"  # the format written: Keras 2.2.4's


def _model_classes():
    from ..models import Model, Sequential

    return Model, Sequential


# -- writing ------------------------------------------------------------------------------------
def _entry_of(layer: Any) -> dict[str, Any]:
    return {"class_name": class_name_of(layer), "config": layer.get_config()}


def serialize_layer(layer: Any) -> dict[str, Any]:
    """``{"class_name": ..., "config": layer.get_config()}``, as a wrapper (TimeDistributed)
    stores its inner layer.

    For polykeras' own classes, ``module`` and ``registered_name`` keys are added as Keras
    3 writes them (Keras 3 cannot find a wrapped layer's class without them; Keras 2
    ignores them, and polykeras never uses them for lookups)."""
    entry = _entry_of(layer)
    cls = type(layer)
    if cls.__module__.startswith("polykeras.") and entry["class_name"] == cls.__name__:
        Model, _ = _model_classes()
        module = "keras.models" if isinstance(layer, Model) else "keras.layers"
        entry = {"module": module, **entry, "registered_name": None}
    return entry


def _member_nodes(model: Any) -> set[int]:
    members = {id(n) for n in model._execution}
    for t in model.inputs:
        layer, node_index, _ = t._keras_history
        members.add(id(layer._inbound_nodes[node_index]))
    return members


def _node_index_map(
    model: Any, members: set[int], extra: list | None = None
) -> dict[tuple[int, int], int]:
    Model, _ = _model_classes()
    mapping: dict[tuple[int, int], int] = {}
    for layer in list(model.layers) + list(extra or ()):
        kept = 1 if isinstance(layer, Model) else 0  # a model's own node 0 comes first
        for i, node in enumerate(layer._inbound_nodes):
            if id(node) in members:
                mapping[(id(layer), i)] = kept
                kept += 1
    return mapping


def _call_kwargs(node: Any, layer: Any) -> dict[str, Any]:
    from .formats import dumps_json

    kwargs = dict(node.arguments or {})
    if not kwargs:
        return {}
    try:
        dumps_json(kwargs)
    except SavingError:
        raise SavingError(
            f"layer {layer.name} was called with keyword arguments "
            f"{sorted(kwargs)} that are not plain data; they cannot be saved in "
            "a config"
        ) from None
    return kwargs


def functional_config(model: Any) -> dict[str, Any]:
    """The Keras 2 config of a functional model (what ``Model.get_config()`` returns)."""
    if not getattr(model, "_is_graph_network", False):
        raise SavingError(
            f"model {model.name} is not built yet (no inputs/outputs), so it "
            "has no config; build it first (call it on data or Input tensors)"
        )
    members = _member_nodes(model)
    added = added_tensors(model)
    ancillary = ancillary_layers(model, members) if added else []
    index = _node_index_map(model, members, ancillary)
    layers = output_layers(model) + ancillary
    listed = {id(lay) for lay in layers}
    for t in model.inputs:  # an input no output depends on is still part of the model
        lay = t._keras_history[0]
        if id(lay) not in listed:
            layers.insert(0, lay)
            listed.add(id(lay))
            index[(id(lay), t._keras_history[1])] = 0
    layer_configs = []
    for layer in layers:
        nodes = []
        for node in layer._inbound_nodes:
            if id(node) not in members or not node.inbound_layers:
                continue
            kwargs = _call_kwargs(node, layer)
            if node.mask_tensors:  # tf.keras 2: a tensor in the kwargs is its [name, node, index]
                refs = [
                    None
                    if m is None
                    else [
                        m._keras_history[0].name,
                        index[(id(m._keras_history[0]), m._keras_history[1])],
                        m._keras_history[2],
                    ]
                    for m in node.mask_tensors
                ]
                kwargs = {**kwargs, "mask": refs if len(refs) > 1 else refs[0]}
            data = []
            for inbound, node_index, tensor_index in zip(
                node.inbound_layers, node.node_indices, node.tensor_indices
            ):
                data.append([inbound.name, index[(id(inbound), node_index)], tensor_index, kwargs])
            if hasattr(layer, "keras2_keyword_inputs"):  # tf.keras 2: mha(q, value=v, ...)
                names = layer.keras2_keyword_inputs(len(data))
                extra = {name: ref[:3] for name, ref in zip(names, data[1:])}
                data = [data[0][:3] + [{**kwargs, **extra}]]
            nodes.append(data)
        layer_configs.append(
            {
                "name": layer.name,
                "class_name": class_name_of(layer),
                "config": layer.get_config(),
                "inbound_nodes": nodes,
            }
        )

    def ref(t: Any) -> list:
        layer, node_index, tensor_index = t._keras_history
        return [layer.name, index[(id(layer), node_index)], tensor_index]

    taken = {entry["name"] for entry in layer_configs}
    for class_name, tensor, extras in added:  # as tf.keras 2 inserts AddLoss / AddMetric
        name = _unused_name(to_snake(class_name), taken)
        layer_configs.append(
            {
                "name": name,
                "class_name": class_name,
                "config": {"name": name, "trainable": True, "dtype": str(tensor.dtype), **extras},
                "inbound_nodes": [[ref(tensor) + [{}]]],
            }
        )

    config: dict[str, Any] = {
        "name": model.name,
        "layers": layer_configs,
        "input_layers": [ref(t) for t in model.inputs],
        "output_layers": [ref(t) for t in model.outputs],
    }
    if not model.trainable:
        config["trainable"] = False
    return config


# -- add_loss / add_metric on symbolic tensors: tf.keras 2's AddLoss / AddMetric layers ----------
# tf.keras 2 keeps ``model.add_loss(tensor)`` and ``model.add_metric(tensor, name=...)`` in a
# functional model's config as a layer entry whose one inbound node is the tensor and whose
# output is no model output: ``AddLoss`` (config ``name``, ``trainable``, ``dtype``,
# ``unconditional``) and ``AddMetric`` (``aggregation``, ``metric_name`` besides).  polykeras
# writes the same entries (after the model's layers and the layers only they read) and, when
# reading, gives their tensors back to ``add_loss`` / ``add_metric`` instead of making layers.
ADDED_CLASSES = ("AddLoss", "AddMetric")
_ADDED_KEYS = {
    "AddLoss": {"name", "trainable", "dtype", "unconditional"},
    "AddMetric": {"name", "trainable", "dtype", "aggregation", "metric_name"},
}


def to_snake(class_name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in class_name).lstrip("_")


def _unused_name(base: str, taken: set[str]) -> str:
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def added_tensors(model: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    """``(class_name, tensor, config keys)`` for each symbolic tensor the functional model
    was given with ``add_loss`` (first) or ``add_metric``."""
    out: list[tuple[str, Any, dict[str, Any]]] = [
        ("AddLoss", t, {"unconditional": False}) for t in getattr(model, "_symbolic_losses", ())
    ]
    for t, name in model.__dict__.get("_symbolic_metrics", ()):
        out.append(("AddMetric", t, {"aggregation": "mean", "metric_name": name}))
    return out


def ancillary_layers(model: Any, members: set[int]) -> list:
    """The layers only the added losses and metrics read (in graph order); their nodes
    join ``members``."""
    graph = getattr(model, "_loss_graph", None)
    if graph is None:
        from ..engine.functional import Functional

        graph = Functional(
            model.inputs,
            list(model.outputs) + [t for _c, t, _e in added_tensors(model)],
            name=f"{model.name}_with_losses",
        )
    members.update(id(node) for node in graph._execution)
    listed = {id(layer) for layer in output_layers(model)}
    return [layer for layer in graph.layers if id(layer) not in listed]


def output_layers(model: Any) -> list:
    """``model.layers`` without the layers only its add_loss / add_metric tensors read
    (the model lists those last, as tf.keras 2 does; a config writes them after the
    graph's own)."""
    inserted = {id(layer) for layer in model.__dict__.get("_loss_layers", ())}
    return [layer for layer in model.layers if id(layer) not in inserted]


def _apply_added(model: Any, class_name: str, tensor: Any, cfg: Any, where: str) -> None:
    """Give ``tensor`` back to ``model.add_loss`` / ``model.add_metric`` as the
    AddLoss / AddMetric entry ``cfg`` says."""
    if not isinstance(cfg, dict):
        raise SavingError(f"{where}: the config of a {class_name} layer must be a dict")
    unknown = sorted(set(cfg) - _ADDED_KEYS[class_name])
    if unknown:
        raise SavingError(
            f"{where}: the {class_name} layer has config key(s) {unknown} that polykeras "
            f"does not implement (expected {sorted(_ADDED_KEYS[class_name])})"
        )
    try:
        if class_name == "AddLoss":
            if cfg.get("unconditional", False) is not False:
                raise SavingError(
                    f"{where}: AddLoss with unconditional={cfg['unconditional']!r} is not "
                    "supported: a model's symbolic loss is computed from its inputs "
                    "(unconditional=False, as tf.keras 2 writes it)"
                )
            model.add_loss(tensor)
            return
        name = cfg.get("metric_name")
        if not isinstance(name, str) or not name:
            raise SavingError(
                f"{where}: the AddMetric layer's metric_name must be a non-empty string, "
                f"got {name!r:.100}"
            )
        model.add_metric(tensor, name=name, aggregation=cfg.get("aggregation"))
    except (TypeError, ValueError) as exc:
        raise SavingError(f"{where}: cannot restore the {class_name} layer: {exc}") from None


def sequential_config(model: Any) -> dict[str, Any]:
    """The Keras 2 config of a Sequential model: its name and its layers in order.

    When the model has an input (it is built), its InputLayer comes first, as tf.keras 2
    writes it (Keras 2.2 reads it too; Keras 3 misreads a first layer's own
    ``batch_input_shape`` without it)."""
    if added_tensors(model):
        raise SavingError(
            f"Sequential model {model.name} was given add_loss / add_metric on symbolic "
            "tensors, which a Sequential config (a list of layers) cannot hold; build it "
            "as a functional Model(inputs, outputs) to save them"
        )
    layer_configs = [_entry_of(layer) for layer in model.layers]
    input_layer = getattr(model, "_input_layer", None)
    if layer_configs and input_layer is not None:
        layer_configs.insert(0, _entry_of(input_layer))
    config: dict[str, Any] = {"name": model.name, "layers": layer_configs}
    if not model.trainable:
        config["trainable"] = False
    return config


# -- reading: the session that bounds one load ------------------------------------------------
class _Session:
    """Counts what one load creates (layers, weight values), across nested models."""

    def __init__(self, custom_objects: dict | None):
        from .custom_objects import effective

        self.custom_objects = effective(custom_objects)
        self.layers = 0
        self.params = 0
        self.init_bytes = 0
        self.init_flops = 0

    def add_layers(self, n: int, where: str) -> None:
        self.layers += n
        if self.layers > limits.MAX_LAYERS:
            raise LimitExceededError(
                f"{where}: the config holds more than {limits.MAX_LAYERS:,} "
                "layers (limits.MAX_LAYERS); refused"
            )

    def add_params(self, n: int, where: str) -> None:
        if self.params + n > limits.MAX_PARAMS:
            raise LimitExceededError(
                f"{where} would hold {n:,} weight values, bringing the model to "
                f"{self.params + n:,}, more than the {limits.MAX_PARAMS:,} a config may ask "
                "for (limits.MAX_PARAMS); refused"
            )
        self.params += n

    def charge_initializer(self, init: Any, shape: tuple[int, ...], dtype: str) -> None:
        """Count what drawing one initial weight costs; refuse past the load's budget
        (limits.MAX_INIT_BYTES, limits.MAX_INIT_FLOPS) before anything is allocated."""
        from .. import initializers

        nbytes, flops = initializers.cost(init, tuple(shape))
        self.init_bytes += nbytes
        self.init_flops += flops
        what = f"the initial value of a weight of shape {tuple(shape)}"
        if self.init_bytes > limits.MAX_INIT_BYTES:
            raise LimitExceededError(
                f"{what} brings the memory the model's initializers need to "
                f"{self.init_bytes:,} bytes, more than the {limits.MAX_INIT_BYTES:,} a config "
                "may ask for (limits.MAX_INIT_BYTES); refused. If you trust this config, raise "
                "polykeras.saving.limits.MAX_INIT_BYTES"
            )
        if self.init_flops > limits.MAX_INIT_FLOPS:
            raise LimitExceededError(
                f"{what} ({type(init).__name__}) brings the work of the model's initializers "
                f"to about {self.init_flops:.2g} operations, more than the "
                f"{limits.MAX_INIT_FLOPS:.2g} a config may ask for (limits.MAX_INIT_FLOPS); "
                "refused. If you trust this config, raise "
                "polykeras.saving.limits.MAX_INIT_FLOPS"
            )
        return None


_session: contextvars.ContextVar[_Session | None] = contextvars.ContextVar(
    "polykeras_saving_session", default=None
)


@contextlib.contextmanager
def loading(custom_objects: dict | None = None, what: str = "the config") -> Iterator[_Session]:
    """The bounded context of one load; nested calls share the outer one."""
    current = _session.get()
    if current is not None:
        if custom_objects:
            current.custom_objects.update(custom_objects)
        yield current
        return
    from .. import initializers

    session = _Session(custom_objects)
    token = _session.set(session)
    # a loader whose file holds the weights has put its own guard in place (placeholders)
    budget = (
        initializers.guarded(session.charge_initializer)
        if initializers._GUARD.get() is None
        else contextlib.nullcontext()
    )
    try:
        with budget:
            yield session
    except RecursionError:
        raise LimitExceededError(f"{what} is nested too deeply to build") from None
    finally:
        _session.reset(token)


# -- reading: layers ------------------------------------------------------------------------------
def _entry(config: Any, where: str) -> tuple[Any, dict[str, Any] | list[Any]]:
    """(class_name, config): class_name is checked by registry.lookup."""
    if not isinstance(config, dict):
        raise SavingError(
            f"{where}: a layer config must be a dict with class_name and config, "
            f"got {type(config).__name__}"
        )
    if "class_name" not in config:
        raise SavingError(
            f"{where}: the layer config has no class_name (keys: {sorted(config)[:10]})"
        )
    cfg = config.get("config", {})
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, (dict, list)):
        raise SavingError(
            f"{where}: the config of a {config['class_name']!r} layer must be a "
            f"dict, got {type(cfg).__name__}"
        )
    return config["class_name"], cfg


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _names_param(fn: Any, name: str) -> bool:
    try:
        param = inspect.signature(fn).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return param is not None and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL)


def _looks_like_ref(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:3])
    )


def _positional_as_keywords(layer: Any, args: list, kwargs: dict) -> tuple[list, dict]:
    """Keras 3 calls some layers with several positional tensors (``mha(query, value)``)
    or with keywords only (``mha(query=q, value=v)``): where the layer's ``__call__`` names
    those parameters, the first becomes the input and the rest keywords."""
    try:
        params = list(inspect.signature(type(layer).__call__).parameters.values())[1:]
    except (TypeError, ValueError):
        return args, kwargs
    names = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    if not args and names and names[0] in kwargs:
        kwargs = dict(kwargs)
        return [kwargs.pop(names[0])], kwargs
    if 1 < len(args) <= len(names) and not any(n in kwargs for n in names[1 : len(args)]):
        return [args[0]], {**kwargs, **dict(zip(names[1:], args[1:]))}
    return args, kwargs


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise SavingError(f"{where}: a layer name must be a non-empty string, got {name!r:.100}")
    if len(name) > limits.MAX_NAME_LENGTH:
        raise LimitExceededError(
            f"{where}: a layer name is {len(name):,} characters long "
            f"(limits.MAX_NAME_LENGTH is {limits.MAX_NAME_LENGTH})"
        )
    return name


def deserialize_layer(config: Any, custom_objects: dict | None = None) -> Any:
    """A layer (or model) from ``{"class_name": ..., "config": {...}}``."""
    with loading(custom_objects, "the layer config") as session:
        if _session.get() is session and session.layers == 0:
            limits.check_structure(config, "the layer config")
        return _deserialize(config, session, "config")


def _deserialize(config: Any, session: _Session, where: str) -> Any:
    class_name, cfg = _entry(config, where)
    cls = registry.lookup(class_name, session.custom_objects)
    name = cfg.get("name") if isinstance(cfg, dict) else None
    label = f"layer {name!r} ({class_name})" if name else f"a {class_name} layer"
    Model, Sequential = _model_classes()
    if isinstance(cls, type) and issubclass(cls, Model):
        if issubclass(cls, Sequential):
            return sequential_from_config(cls, cfg, session.custom_objects)
        if not isinstance(cfg, dict):
            raise SavingError(f"{where}: the config of model {class_name!r} must be a dict")
        if "layers" not in cfg and defined_outside(cls, "call"):
            # a subclassed model (custom_objects or registered): its own get_config's keys
            session.add_layers(1, f"model {class_name!r}")
            build: Any = cls.from_config  # type: ignore[attr-defined]
            if _accepts(build, "custom_objects"):
                return build(cfg, custom_objects=session.custom_objects)
            return build(cfg)
        return functional_from_config(cls, cfg, session.custom_objects)
    if not isinstance(cfg, dict):
        raise SavingError(f"{where}: the config of {label} must be a dict")
    session.add_layers(1, label)
    if name is not None:
        _check_name(name, label)
    kwargs = compat.layer_kwargs(class_name, cls, cfg, session.custom_objects)
    try:
        if _accepts(cls.from_config, "custom_objects"):
            return cls.from_config(kwargs, custom_objects=session.custom_objects)
        return cls.from_config(kwargs)
    except SavingError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise SavingError(f"cannot create {label} from its config: {exc}") from None


# -- reading: weight budget, checked before a layer allocates its weights ------------------------
def _prod(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d) if d is not None else 1
    return n


def estimate_new_weights(layer: Any, input_shape: Any) -> int:
    """How many weight values building ``layer`` on ``input_shape`` will allocate (0 if it
    is built already or its kind is not known).  Computed from its arguments, before any
    allocation."""
    if getattr(layer, "built", False):
        return 0
    name = type(layer).__name__
    shapes = input_shape if isinstance(input_shape, list) else [input_shape]
    shape = tuple(shapes[0]) if shapes and shapes[0] is not None else ()
    last = shape[-1] if shape and shape[-1] is not None else 1
    try:
        if hasattr(layer, "units") and hasattr(layer, "recurrent_initializer"):
            gates = int(getattr(layer, "_gates", 4))
            u = int(layer.units)
            return (int(last) + u) * gates * u + 2 * gates * u
        if name == "Dense" or (hasattr(layer, "units") and hasattr(layer, "kernel_initializer")):
            return int(last) * int(layer.units) + int(layer.units)
        if hasattr(layer, "filters") and hasattr(layer, "kernel_size"):
            fmt = getattr(layer, "data_format", "channels_last")
            channels = shape[1] if fmt == "channels_first" and len(shape) > 1 else last
            channels = int(channels) if channels is not None else 1
            return _prod(layer.kernel_size) * channels * int(layer.filters) + int(layer.filters)
        if hasattr(layer, "input_dim") and hasattr(layer, "output_dim"):
            return int(layer.input_dim) * int(layer.output_dim)
        if name == "BatchNormalization":
            axis = getattr(layer, "axis", -1)
            axes = axis if isinstance(axis, (list, tuple)) else [axis]
            n = 1
            for a in axes:
                d = shape[a] if shape and -len(shape) <= a < len(shape) else 1
                n *= int(d) if d is not None else 1
            return 4 * n
        inner = getattr(layer, "layer", None)
        if inner is not None and shape:
            return estimate_new_weights(inner, (shape[0],) + tuple(shape[2:]))
    except (TypeError, ValueError, OverflowError):
        return 0
    return 0


def _call_layer(
    layer: Any, inputs: Any, kwargs: dict[str, Any], session: _Session, where: str
) -> Any:
    from ..engine.base_layer import to_list

    flat = to_list(inputs)
    shapes = [t.shape for t in flat]
    estimate = estimate_new_weights(layer, shapes if isinstance(inputs, list) else shapes[0])
    if estimate:
        session.add_params(estimate, f"layer {layer.name} ({type(layer).__name__})")
    before = 0 if estimate or getattr(layer, "built", False) else None
    try:
        out = layer(inputs, **kwargs)
    except SavingError:
        raise
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise SavingError(
            f"{where}: calling layer {layer.name} ({type(layer).__name__}) on "
            f"inputs of shape {shapes if len(shapes) > 1 else shapes[0]} "
            f"failed: {exc}"
        ) from None
    if before is None:  # a kind we could not estimate: count what it allocated
        try:
            session.add_params(
                sum(_prod(v.shape) for v in layer.weights),
                f"layer {layer.name} ({type(layer).__name__})",
            )
        except LimitExceededError:
            raise
        except Exception:
            pass
    return out


# -- reading: functional models ------------------------------------------------------------------
_NOT_READY = object()


class _Keras3Op:
    """A Keras 3 operation in a functional config (``keras.ops.not_equal(x, 0)`` is an entry
    of module ``keras.src.ops.numpy``, class ``NotEqual``): each of its nodes calls the op
    of the same name in :mod:`polykeras.ops` on the node's arguments, which records an
    ``OpLayer``.  The op's own config (its constructor's arguments, e.g. ``axis``) joins
    the call's keywords; an op polykeras does not have is refused by name."""

    def __init__(self, class_name: Any, config: dict[str, Any], where: str) -> None:
        from .. import ops
        from .keras3 import to_snake_case
        from .keras3_ops import OUR_NAMES

        if not isinstance(class_name, str):
            raise SavingError(f"{where}: an op entry without a class_name")
        self.op = to_snake_case(class_name)
        self.op = OUR_NAMES.get(self.op, self.op)  # GetItem is our getitem
        fn = getattr(ops, self.op, None)
        if self.op not in ops.OPS or fn is None:
            raise SavingError(
                f"{where}: the Keras 3 op {class_name} ({self.op}) is not one of polykeras' "
                "ops (polykeras.ops), so the model cannot be rebuilt"
            )
        self.fn = fn
        # the op's arguments (Cast's dtype, Sum's axis...); a dtype policy is not one
        self.kwargs = {
            k: v
            for k, v in config.items()
            if k != "name" and not (k == "dtype" and isinstance(v, dict))
        }
        self.config = config
        self.where = where

    def call(self, args: list, kwargs: dict[str, Any], name: Any, context: str) -> Any:
        from ..engine.base_layer import KerasTensor
        from . import keras3_ops

        if self.op in keras3_ops.TABLE:  # Keras' argument names and places mapped onto ours
            args, kwargs = keras3_ops.from_keras3(self.op, self.config, args, kwargs, context)
        else:
            kwargs = {**self.kwargs, **kwargs}
        try:
            out = self.fn(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise SavingError(f"{context}: the op {self.op} cannot be called: {exc}") from None
        if not isinstance(out, KerasTensor):
            raise SavingError(
                f"{context}: the op {self.op} gave no single symbolic tensor (an op with "
                "several outputs, or one on no tensor, cannot be rebuilt)"
            )
        layer, node_index, _ = out._keras_history
        if isinstance(name, str):
            layer.name = name  # the file's name, not a fresh one
        return layer._inbound_nodes[node_index]


def _keras3_constant(value: dict, context: str) -> Any:
    """A Keras 3 call argument that is plain data (``__numpy__`` / ``__tensor__`` arrays,
    ``__slice__``, ``__ellipsis__``) as its value; ``_NOT_READY`` for anything else."""
    from .keras3_ops import read_constant

    kind = value.get("class_name")
    if kind in ("__numpy__", "__tensor__"):
        return read_constant(value.get("config"), context)
    if kind == "__ellipsis__":
        return Ellipsis
    if kind == "__slice__" and isinstance(value.get("config"), dict):
        parts = [value["config"].get(k) for k in ("start", "stop", "step")]
        if all(p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in parts):
            return slice(*parts)
        raise SavingError(f"{context}: a __slice__ whose bounds are not integers or null")
    return _NOT_READY


class _Graph:
    """The state of one functional config being built."""

    def __init__(self, config: dict[str, Any], session: _Session, where: str):
        self.session = session
        self.where = where
        self.created: dict[str, Any] = {}
        self.class_names: dict[str, Any] = {}  # as the config gives them
        self.order: list[str] = []
        self.pending: dict[str, deque] = {}
        self.made: dict[str, list] = {}
        self.added: list[tuple[str, str, Any, Any]] = []  # AddLoss / AddMetric entries
        entries = config.get("layers")
        if not isinstance(entries, list):
            raise SavingError(f"{where}: the config has no list of layers")
        if len(entries) > limits.MAX_LAYERS:
            raise LimitExceededError(
                f"{where}: the config lists {len(entries):,} layers, more "
                f"than {limits.MAX_LAYERS:,} (limits.MAX_LAYERS)"
            )
        from ..engine.base_layer import InputLayer

        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise SavingError(f"{where}: layer entry {i} is not a dict")
            raw = entry.get("config")
            cfg = raw if isinstance(raw, dict) else {}
            name = _check_name(entry.get("name", cfg.get("name")), f"{where}, layer entry {i}")
            if name in self.created or any(name == a[0] for a in self.added):
                raise SavingError(
                    f"{where}: two layers are named {name!r}; layer names in a model must be unique"
                )
            added = entry.get("class_name")
            if added in ADDED_CLASSES and added not in session.custom_objects:
                self.added.append((name, entry["class_name"], raw, entry.get("inbound_nodes")))
                continue
            module = entry.get("module")
            if isinstance(module, str) and module.startswith("keras.src.ops."):
                layer = _Keras3Op(entry.get("class_name"), cfg, f"{where}, layer {name!r}")
            else:
                layer = _deserialize(entry, session, f"{where}, layer {name!r}")
            nodes = entry.get("inbound_nodes", [])
            if not isinstance(nodes, list):
                raise SavingError(f"{where}: inbound_nodes of layer {name!r} must be a list")
            if len(nodes) > limits.MAX_NODES_PER_LAYER:
                raise LimitExceededError(
                    f"{where}: layer {name!r} has {len(nodes):,} inbound "
                    f"nodes, more than {limits.MAX_NODES_PER_LAYER:,} "
                    "(limits.MAX_NODES_PER_LAYER)"
                )
            self.created[name] = layer
            self.class_names[name] = entry.get("class_name")
            self.order.append(name)
            self.pending[name] = deque(nodes)
            self.made[name] = [layer._inbound_nodes[0]] if isinstance(layer, InputLayer) else []
        self.keras3 = any(isinstance(n, dict) for q in self.pending.values() for n in q)

    # -- tensor references -------------------------------------------------------------------
    def _base(self, name: str, layer: Any, io: bool) -> int:
        """How many of ``layer``'s node indices come before its first call in this model."""
        Model, _ = _model_classes()
        if not isinstance(layer, Model):
            return 0
        if not self.keras3:
            return 1  # Keras 1/2: a model's own node 0 is counted
        # Keras 3 counts a nested model's calls from 0 in nodes, but from 1 in
        # input_layers/output_layers of a functional (not Sequential) model
        return 1 if io and self.class_names.get(name) != "Sequential" else 0

    def resolve(self, ref: Any, context: str, io: bool = False) -> Any:
        if not isinstance(ref, (list, tuple)) or len(ref) < 3:
            raise SavingError(
                f"{context}: cannot read the tensor reference {ref!r:.200} "
                "(expected [layer_name, node_index, tensor_index])"
            )
        name, node_index, tensor_index = ref[0], ref[1], ref[2]
        if not isinstance(name, str) or name not in self.created:
            raise SavingError(
                f"{context}: refers to layer {name!r:.100}, which is not among the model's layers"
            )
        for what, v in (("node index", node_index), ("tensor index", tensor_index)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise SavingError(
                    f"{context}: the {what} of a reference to layer {name!r} "
                    f"must be a non-negative int, got {v!r:.50}"
                )
        layer = self.created[name]
        i = node_index - self._base(name, layer, io)
        if i < 0:
            raise SavingError(
                f"{context}: node {node_index} of model layer {name!r} is its own "
                "node, not a call in this model"
            )
        if i >= len(self.made[name]):
            if not self.pending[name] or i >= len(self.made[name]) + len(self.pending[name]):
                raise SavingError(
                    f"{context}: refers to node {node_index} of layer {name!r}, "
                    f"which has only {len(self.made[name])} node(s) in this "
                    "model"
                )
            return _NOT_READY
        outputs = self.made[name][i].output_tensors
        if tensor_index >= len(outputs):
            raise SavingError(
                f"{context}: refers to output {tensor_index} of layer {name!r} "
                f"(node {node_index}), which has {len(outputs)} output(s)"
            )
        return outputs[tensor_index]

    def _resolve_nested(self, value: Any, context: str, waits: list) -> Any:
        """Keras 3 args/kwargs: ``__keras_tensor__`` dicts become tensors."""
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                cfg = value.get("config")
                if not isinstance(cfg, dict) or "keras_history" not in cfg:
                    raise SavingError(f"{context}: a __keras_tensor__ without keras_history")
                t = self.resolve(cfg["keras_history"], context)
                if t is _NOT_READY:
                    waits.append(cfg["keras_history"][0])
                return t
            special = _keras3_constant(value, context)
            if special is not _NOT_READY:
                return special
            if "class_name" in value and "config" in value:
                raise UnsafeContentError(
                    f"{context}: a call argument is a serialized "
                    f"{value.get('class_name')!r:.60} object; only "
                    "tensors and plain values are accepted"
                )
            return {k: self._resolve_nested(v, context, waits) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve_nested(v, context, waits) for v in value]
        return value

    # -- nodes -----------------------------------------------------------------------------------
    def _node_call(self, name: str, node_data: Any, k: int) -> Any:
        """(inputs, kwargs) for one node, or (_NOT_READY, waited-on layer name)."""
        context = f"{self.where}, layer {name!r}, inbound node {k}"
        if isinstance(node_data, dict):
            waits: list = []
            args = self._resolve_nested(node_data.get("args", []), context, waits)
            kwargs = self._resolve_nested(node_data.get("kwargs", {}) or {}, context, waits)
            if waits:
                return _NOT_READY, waits[0]
            if isinstance(args, list) and len(args) != 1 and isinstance(kwargs, dict):
                args, kwargs = _positional_as_keywords(self.created[name], args, kwargs)
            if not isinstance(args, list) or len(args) != 1:
                raise SavingError(
                    f"{context}: polykeras layers take one positional input (a "
                    f"tensor or a list of tensors); the node has "
                    f"{len(args) if isinstance(args, list) else '?'}"
                )
            if not isinstance(kwargs, dict):
                raise SavingError(f"{context}: the node's kwargs must be a dict")
            return (args[0], kwargs), None
        if not isinstance(node_data, list) or not node_data:
            raise SavingError(f"{context}: cannot read the node {node_data!r:.200}")
        tensors = []
        kwargs = {}
        for ref in node_data:
            t = self.resolve(ref, context)
            if t is _NOT_READY:
                return _NOT_READY, ref[0]
            tensors.append(t)
            if len(ref) > 3:
                if not isinstance(ref[3], dict):
                    raise SavingError(
                        f"{context}: the call kwargs must be a dict, got {ref[3]!r:.100}"
                    )
                kwargs = ref[3]
        # tf.keras 2 writes a tensor given by keyword (``mha(q, value=v)``) as
        # [layer_name, node_index, tensor_index] in the kwargs: read where __call__ names it
        layer = self.created[name]
        for key, value in list(kwargs.items()):
            if _names_param(type(layer).__call__, key) and _looks_like_ref(value):
                t = self.resolve(value, context)
                if t is _NOT_READY:
                    return _NOT_READY, value[0]
                kwargs = {**kwargs, key: t}
        mask = kwargs.get("mask")
        if mask is not None:  # a mask given to the call: one reference, or one per input
            single = _looks_like_ref(mask)
            resolved: list[Any] = []
            for ref in [mask] if single else (mask if isinstance(mask, list) else [mask]):
                if ref is None:
                    resolved.append(None)
                    continue
                if not _looks_like_ref(ref):
                    raise SavingError(
                        f"{context}: the call's mask must be a tensor reference [layer name, "
                        f"node index, tensor index] (or a list of them), got {ref!r:.100}"
                    )
                t = self.resolve(ref, context)
                if t is _NOT_READY:
                    return _NOT_READY, ref[0]
                resolved.append(t)
            kwargs = {**kwargs, "mask": resolved[0] if single else resolved}
        return (tensors[0] if len(tensors) == 1 else tensors, kwargs), None

    def _clean_kwargs(self, layer: Any, kwargs: dict[str, Any], context: str) -> dict:
        out = {}
        for key, value in kwargs.items():
            if key == "training":
                continue  # the model decides training mode at run time
            if (
                key == "mask"
                or _names_param(type(layer).__call__, key)
                or _accepts(layer.call, key)
            ):
                out[key] = value
            elif value is None:
                continue  # e.g. Keras 3's mask=None
            else:
                raise SavingError(
                    f"{context}: layer {layer.name} ({type(layer).__name__}) "
                    f"does not take the call argument {key}={value!r:.100}"
                )
        return out

    def _op_node(self, name: str, op: _Keras3Op, node_data: Any, k: int) -> str | None:
        """Call a Keras 3 op node (records an OpLayer); the name of the layer it waits on,
        or None once called."""
        context = f"{self.where}, layer {name!r}, inbound node {k}"
        if not isinstance(node_data, dict):
            raise SavingError(f"{context}: cannot read the op node {node_data!r:.200}")
        waits: list = []
        args = self._resolve_nested(node_data.get("args", []), context, waits)
        kwargs = self._resolve_nested(node_data.get("kwargs", {}) or {}, context, waits)
        if waits:
            return waits[0]
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise SavingError(f"{context}: the op node's args must be a list, kwargs a dict")
        self.made[name].append(op.call(args, kwargs, name, context))
        return None

    def build(self) -> None:
        ready = deque(self.order)
        waiting: dict[str, list[str]] = {}
        while ready:
            name = ready.popleft()
            queue = self.pending[name]
            layer = self.created[name]
            while queue:
                k = len(self.made[name])
                if isinstance(layer, _Keras3Op):
                    waited = self._op_node(name, layer, queue[0], k)
                    if waited is not None:
                        waiting.setdefault(waited, []).append(name)
                        break
                    queue.popleft()
                    ready.extend(waiting.pop(name, []))
                    continue
                call, waited = self._node_call(name, queue[0], k)
                if call is _NOT_READY:
                    waiting.setdefault(waited, []).append(name)
                    break
                inputs, kwargs = call
                context = f"{self.where}, layer {name!r}, inbound node {k}"
                kwargs = self._clean_kwargs(layer, kwargs, context)
                count = len(layer._inbound_nodes)
                _call_layer(layer, inputs, kwargs, self.session, context)
                if len(layer._inbound_nodes) != count + 1:
                    raise SavingError(f"{context}: calling the layer did not record a node")
                self.made[name].append(layer._inbound_nodes[-1])
                queue.popleft()
                ready.extend(waiting.pop(name, []))
        stuck = [n for n in self.order if self.pending[n]]
        if stuck:
            raise SavingError(
                f"{self.where}: the graph cannot be built: the inbound nodes of "
                f"layer(s) {stuck[:5]} wait on nodes that never come (a loop, or "
                "a reference to a node that does not exist)"
            )

    def added_tensors(self) -> list[tuple[str, str, Any, Any]]:
        """``(name, class_name, config, tensor)`` for each AddLoss / AddMetric entry, once
        the graph is built: the tensor its one inbound node reads."""
        out = []
        for name, class_name, cfg, nodes in self.added:
            context = f"{self.where}, layer {name!r}"
            if not isinstance(nodes, list) or len(nodes) != 1:
                raise SavingError(
                    f"{context}: a {class_name} layer needs exactly one inbound node (the "
                    f"loss or metric tensor), got {nodes!r:.200}"
                )
            node = nodes[0]
            tensor: Any = _NOT_READY
            if isinstance(node, dict):  # Keras 3's {"args": [tensor], "kwargs": {}}
                waits: list = []
                args = self._resolve_nested(node.get("args", []), context, waits)
                if isinstance(args, list) and len(args) == 1 and not waits:
                    tensor = args[0]
            elif isinstance(node, list) and len(node) == 1:
                tensor = self.resolve(node[0], context)
            if tensor is _NOT_READY or not hasattr(tensor, "_keras_history"):
                raise SavingError(
                    f"{context}: the inbound node of a {class_name} layer must name one "
                    f"tensor of the model, got {node!r:.200}"
                )
            out.append((name, class_name, cfg, tensor))
        return out

    def tensors(self, refs: Any, what: str) -> Any:
        context = f"{self.where}, {what}"
        if isinstance(refs, dict):
            refs = list(refs.values())
        if not isinstance(refs, list) or not refs:
            raise SavingError(f"{context} must be a non-empty list of [layer, node, tensor]")
        single = isinstance(refs[0], str)
        items = [refs] if single else refs
        out = []
        for ref in items:
            if isinstance(ref, dict):
                raise SavingError(f"{context}: nested input/output structures are not supported")
            t = self.resolve(ref, context, io=True)
            if t is _NOT_READY:
                raise SavingError(f"{context}: {ref!r:.100} refers to a node that was never built")
            out.append(t)
        return out[0] if len(out) == 1 else out


def functional_from_config(cls: Any, config: Any, custom_objects: dict | None = None) -> Any:
    """A functional model rebuilt from its config (any of Keras 1, 2, 3 formats)."""
    with loading(custom_objects, "the model config") as session:
        if session.layers == 0:
            limits.check_structure(config, "the model config")
        if not isinstance(config, dict):
            raise SavingError(
                f"a functional model config must be a dict, got {type(config).__name__}"
            )
        name = config.get("name")
        where = f"model {name!r}" if name else "the model config"
        if name is not None:
            _check_name(name, where)
        for key in ("layers", "input_layers", "output_layers"):
            if key not in config:
                raise SavingError(
                    f"{where}: the config has no {key!r} (is it a Sequential "
                    "config? use Sequential.from_config)"
                )
        graph = _Graph(config, session, where)
        graph.build()
        inputs = graph.tensors(config["input_layers"], "input_layers")
        outputs = graph.tensors(config["output_layers"], "output_layers")
        try:
            model = cls(inputs=inputs, outputs=outputs, name=name)
        except SavingError:
            raise
        except (TypeError, ValueError) as exc:
            raise SavingError(f"{where}: the model cannot be made from its config: {exc}") from None
        if config.get("trainable") is False:
            model.trainable = False
        for added_name, class_name, cfg, tensor in graph.added_tensors():
            _apply_added(model, class_name, tensor, cfg, f"{where}, layer {added_name!r}")
        return model


def sequential_from_config(cls: Any, config: Any, custom_objects: dict | None = None) -> Any:
    """A Sequential model from its config: Keras 2.2+/3 ``{"name", "layers"}`` or Keras 1 /
    Keras 2.0's plain list of layer configs."""
    with loading(custom_objects, "the Sequential config") as session:
        if session.layers == 0:
            limits.check_structure(config, "the Sequential config")
        name = None
        build_shape = None
        trainable = True
        entries: list[Any] | None
        if isinstance(config, list):
            entries = config
        elif isinstance(config, dict):
            entries = config.get("layers")
            name = config.get("name")
            build_shape = config.get("build_input_shape")
            trainable = config.get("trainable", True) is not False
            if not isinstance(entries, list):
                raise SavingError("a Sequential config needs a list of layers (key 'layers')")
        else:
            raise SavingError(
                f"a Sequential config must be a dict or a list, got {type(config).__name__}"
            )
        where = f"Sequential model {name!r}" if name else "the Sequential config"
        if name is not None:
            _check_name(name, where)
        if len(entries) > limits.MAX_LAYERS:
            raise LimitExceededError(
                f"{where} lists {len(entries):,} layers, more than "
                f"{limits.MAX_LAYERS:,} (limits.MAX_LAYERS)"
            )
        model = cls(name=name)
        layers = [_deserialize(e, session, f"{where}, layer {i}") for i, e in enumerate(entries)]
        estimated = _sequential_budget(layers, build_shape, session)
        _fill_sequential(model, layers, where)
        if not model._is_graph_network and build_shape is not None and model.layers:
            try:
                model.build(tuple(build_shape))
            except (TypeError, ValueError) as exc:
                raise SavingError(
                    f"{where}: cannot build it for input shape {build_shape}: {exc}"
                ) from None
        Model, _ = _model_classes()
        for layer in model.layers:  # kinds the budget could not estimate: count them now
            if (
                id(layer) not in estimated
                and not isinstance(layer, Model)
                and getattr(layer, "built", False)
            ):
                session.add_params(
                    sum(_prod(v.shape) for v in layer.weights),
                    f"layer {layer.name} ({type(layer).__name__})",
                )
        if not trainable:
            model.trainable = False
        return model


def _sequential_budget(layers: list, build_shape: Any, session: _Session) -> set[int]:
    """Check the weight budget along the stack from shapes alone, before building.
    Returns the ids of the layers it counted."""
    from ..engine.base_layer import InputLayer

    counted: set[int] = set()
    shape = tuple(build_shape) if isinstance(build_shape, (list, tuple)) else None
    for i, layer in enumerate(layers):
        if isinstance(layer, InputLayer):
            shape = layer._batch_input_shape
            continue
        if i == 0 and getattr(layer, "_batch_input_shape", None) is not None:
            shape = layer._batch_input_shape
        if shape is None:
            break
        estimate = estimate_new_weights(layer, shape)
        if estimate:
            session.add_params(estimate, f"layer {layer.name} ({type(layer).__name__})")
            counted.add(id(layer))
        try:
            shape = layer.compute_output_shape(tuple(shape))
        except Exception:
            break
        if isinstance(shape, list):
            break
    return counted


def _fill_sequential(model: Any, layers: list, where: str) -> None:
    """Put ``layers`` into an empty Sequential and build its graph once.

    (``Sequential.add`` rebuilds the whole stack each time, which would make a long config
    quadratic and leave every layer with one node per later layer; so the input comes
    first through ``add`` and the rest of the stack is built in one go.)"""
    from ..engine.base_layer import Input, InputLayer, Layer

    def add(item: Any, name: str) -> None:
        try:
            model.add(item)
        except (TypeError, ValueError) as exc:
            raise SavingError(f"{where}: cannot add layer {name}: {exc}") from None

    if not all(hasattr(model, a) for a in ("_stack", "_input_layer", "_rebuild")):
        for layer in layers:  # an engine without those internals: the public way
            add(layer, getattr(layer, "name", "?"))
        return
    stack = list(layers)
    if stack and isinstance(stack[0], InputLayer):
        first = stack.pop(0)
        add(first, first.name)
    elif (
        stack
        and isinstance(stack[0], Layer)
        and getattr(stack[0], "_batch_input_shape", None) is not None
    ):
        # as Sequential.add does for a first layer that knows its input shape
        first = stack[0]
        add(
            Input(batch_shape=first._batch_input_shape, dtype=getattr(first, "input_dtype", None)),
            first.name,
        )
    for layer in stack:
        if isinstance(layer, InputLayer):
            raise SavingError(f"{where}: an InputLayer ({layer.name}) may only come first")
        if not isinstance(layer, Layer):
            raise SavingError(f"{where}: {layer!r:.80} is not a layer")
    names = [lay.name for lay in model._stack] + [lay.name for lay in stack]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SavingError(
            f"{where}: two layers are named {dupes[0]!r}; layer names in a model must be unique"
        )
    model._stack.extend(stack)
    if model._input_layer is not None and model._stack:
        try:
            model._rebuild()
        except SavingError:
            raise
        except (TypeError, ValueError) as exc:
            raise SavingError(f"{where}: the stack of layers cannot be built: {exc}") from None


def model_from_config(config: Any, custom_objects: dict | None = None) -> Any:
    """A model (or layer) from ``{"class_name": ..., "config": ...}``."""
    if isinstance(config, list):
        raise SavingError(
            "model_from_config expects a dict {'class_name': ..., 'config': ...}; "
            "got a list (to read a Sequential's list of layers, use "
            "Sequential.from_config)"
        )
    return deserialize_layer(config, custom_objects)
