"""Layer configs from Keras 1, Keras 2 and Keras 3, made into polykeras constructor arguments.

polykeras' layers already accept Keras 1's argument names (``output_dim``, ``init``,
``nb_filter``, ``border_mode``, ``dim_ordering``...).  What is left to translate here:

- Keras 3: ``batch_shape`` for ``batch_input_shape``; dtype policies
  (``{"class_name": "DTypePolicy", "config": {"name": "float32"}}``) for dtype names;
  ``module``/``registered_name`` keys in initializer and regularizer dicts (ignored:
  classes are looked up by ``class_name`` among polykeras' own); arguments at their
  harmless defaults (``groups=1``, ``quantization_config=None``, ``keepdims=False``...).
- Keras 1: ``input_dtype``; a GRU without ``reset_after`` (Keras 1 and Keras 2.0 GRUs
  applied the reset gate before the recurrent matmul, i.e. ``reset_after=False``); a
  Flatten without ``data_format`` (Keras 1 and 2.0 flattened in stored order, whatever
  the image data format: ``data_format="channels_last"`` does the same).
- Constraints: Keras 2/3 ``{"class_name", "config"}`` dicts and Keras 1's
  ``{"name": "MaxNorm", "m": 2}`` are read by :mod:`polykeras.constraints`; an unknown
  constraint is an error naming the layer.
"""

from __future__ import annotations

import inspect
from typing import Any

from .errors import SavingError, UnsafeContentError

_ANY = object()

# Arguments polykeras' layers do not take, dropped when they hold a value that changes
# nothing.  Any other value is left in, and the layer's constructor refuses it clearly.
_HARMLESS: dict[str, tuple] = {
    "quantization_config": (None,),
    "lora_rank": (None, 0),
    "lora_alpha": (None,),
    "lora_enabled": (False, None),
    "groups": (1,),
    "keepdims": (False,),
    "optional": (False,),
    "ragged": (False,),
    "sparse": (False,),
    "synchronized": (False,),
    "renorm": (False,),
    "renorm_clipping": (None,),
    "renorm_momentum": (_ANY,),
    "zero_output_for_mask": (_ANY,),
    "use_cudnn": (_ANY,),
    "implementation": (_ANY,),
    "time_major": (False,),
    "autocast": (True, False),
    "activity_regularizer": (None,),
}

_DTYPES = {
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
}

_INITIALIZER_ALIASES = {
    "OrthogonalInitializer": "Orthogonal",
    "IdentityInitializer": "Identity",
    "ConstantInitializer": "Constant",
    "OnesInitializer": "Ones",
    "ZerosInitializer": "Zeros",
}


def _explicit_params(cls: type) -> set[str]:
    """Names the constructors along ``cls``' MRO list explicitly."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        for p in params.values():
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self":
                names.add(p.name)
    return names


def dtype_name(value: Any, where: str) -> str | None:
    """A dtype name from a string or a Keras 3 dtype policy dict."""
    if value is None:
        return None
    if isinstance(value, dict):
        cfg = value.get("config")
        name = cfg.get("name") if isinstance(cfg, dict) else None
        if not isinstance(name, str):
            raise SavingError(f"{where}: cannot read the dtype policy {value!r:.200}")
        value = name
    if not isinstance(value, str):
        raise SavingError(f"{where}: dtype must be a name such as 'float32', got {value!r:.100}")
    if value.startswith("mixed_"):
        raise SavingError(
            f"{where}: the mixed-precision policy {value!r} is not supported by "
            "polykeras; save the model with dtype policy 'float32'"
        )
    if value not in _DTYPES:
        raise SavingError(
            f"{where}: unknown dtype {value!r}; expected one of {', '.join(sorted(_DTYPES))}"
        )
    return value


def _strip_object(value: Any, where: str, kind: str) -> Any:
    """A Keras 2/3 ``{"class_name", "config"[, "module", "registered_name"]}`` dict, as
    ``{"class_name", "config"}`` (lookups go by class_name only)."""
    if not isinstance(value, dict):
        return value
    if "class_name" not in value:
        raise SavingError(f"{where}: the {kind} {value!r:.200} has no class_name")
    name = value["class_name"]
    cfg = value.get("config") or {}
    if not isinstance(name, str) or not isinstance(cfg, dict):
        raise SavingError(f"{where}: cannot read the {kind} {value!r:.200}")
    return {"class_name": name, "config": dict(cfg)}


def initializer(value: Any, where: str) -> Any:
    value = _strip_object(value, where, "initializer")
    if not isinstance(value, dict):
        return value
    from .. import initializers

    class_name: str = value["class_name"]  # _strip_object checked it
    name = _INITIALIZER_ALIASES.get(class_name, class_name)
    cls = initializers.CLASSES.get(name)
    cfg = value["config"]
    if cls is not None:
        accepted = _explicit_params(cls)
        for key in list(cfg):
            if key not in accepted:
                if cfg[key] is None:
                    del cfg[key]
                else:
                    raise SavingError(
                        f"{where}: polykeras' {name} initializer has no "
                        f"argument {key!r} (got {cfg[key]!r:.100})"
                    )
    return {"class_name": name, "config": cfg}


def activation(value: Any, where: str, custom_objects: dict | None) -> Any:
    if isinstance(value, dict):  # Keras 3 may write {"class_name": "function", "config": "relu"}
        inner = value.get("config")
        if isinstance(inner, str):
            value = inner
        elif isinstance(inner, dict) and isinstance(inner.get("name"), str):
            value = inner["name"]
        else:
            raise UnsafeContentError(
                f"{where}: the activation {value!r:.200} is not a "
                "built-in activation name; polykeras loads activations "
                "by name only"
            )
    if isinstance(value, str) and custom_objects and value in custom_objects:
        fn = custom_objects[value]
        if not callable(fn):
            raise SavingError(f"{where}: custom_objects[{value!r}] is not callable")
        return fn
    if value is not None and not isinstance(value, str):
        raise SavingError(f"{where}: activation must be a name, got {value!r:.100}")
    return value


def layer_kwargs(
    class_name: str, cls: type, config: dict[str, Any], custom_objects: dict | None
) -> dict[str, Any]:
    """Constructor arguments for ``cls`` from a Keras 1/2/3 layer config."""
    cfg = dict(config)
    where = f"layer {cfg.get('name', '?')!r} ({class_name})"
    from ..engine.base_layer import InputLayer

    is_input = isinstance(cls, type) and issubclass(cls, InputLayer)
    if "batch_shape" in cfg:
        shape = cfg.pop("batch_shape")
        cfg.setdefault("batch_input_shape", shape)
    if "input_dtype" in cfg:  # Keras 1
        dt = cfg.pop("input_dtype")
        if is_input:
            cfg.setdefault("dtype", dt)
    if "dtype" in cfg:
        dt = dtype_name(cfg["dtype"], where)
        if dt is None:
            cfg.pop("dtype")
        else:
            cfg["dtype"] = dt
    if is_input and "input_shape" in cfg and "batch_input_shape" not in cfg:
        cfg["batch_input_shape"] = [None] + list(cfg.pop("input_shape"))

    explicit = _explicit_params(cls) if isinstance(cls, type) else set()
    for key, harmless in _HARMLESS.items():
        if key in cfg and key not in explicit:
            value = cfg[key]
            if _ANY in harmless or any(value is h or value == h for h in harmless):
                del cfg[key]
    for key in list(cfg):
        value = cfg[key]
        if key.endswith("_initializer") or key in ("init", "inner_init"):
            cfg[key] = initializer(value, f"{where}, {key}")
        elif key.endswith("_regularizer") or key in (
            "W_regularizer",
            "U_regularizer",
            "b_regularizer",
        ):
            cfg[key] = _strip_object(value, f"{where}, {key}", "regularizer")
        elif key.endswith("_constraint") or key in ("W_constraint", "U_constraint", "b_constraint"):
            if isinstance(value, dict) and "class_name" in value:
                value = _strip_object(value, f"{where}, {key}", "constraint")
            if value is not None and not isinstance(value, (dict, str)):
                raise SavingError(f"{where}: cannot read the constraint {key}={_describe(value)}")
            if value is not None:
                from .. import constraints

                try:
                    value = constraints.get(value)
                except ValueError as exc:
                    raise SavingError(f"{where}, {key}: {exc}") from None
            cfg[key] = value
        elif key in ("activation", "recurrent_activation", "inner_activation"):
            cfg[key] = activation(value, f"{where}, {key}", custom_objects)
    if class_name == "Flatten" and "data_format" not in cfg:
        cfg["data_format"] = "channels_last"  # Keras 1 / 2.0 flattened in stored order
    if class_name == "GRU" and "reset_after" not in cfg:
        cfg["reset_after"] = False  # Keras 1 / Keras 2.0: reset gate before the matmul
    return cfg


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("class_name", "?"))
    return repr(value)[:60]
