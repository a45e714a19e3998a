"""The layer class registry: the only classes a config can create.

A config names a class by its ``class_name`` and nothing else: Keras 3's ``module`` and
``registered_name`` keys are ignored for the lookup, so a config can never make polykeras
import a module or call a function it names.  The names known are, highest precedence
first:

1. ``custom_objects=`` given to the loader (``{"MyLayer": MyLayer}``), the open
   ``custom_object_scope`` blocks and ``get_custom_objects()`` (:mod:`.custom_objects`);
2. classes registered by plugins through the ``polykeras_register_layers`` hook;
3. polykeras' own layers (everything ``polykeras.layers`` exports), ``Model`` (also under
   Keras 3's name ``Functional``), ``Sequential`` and ``InputLayer``, and Keras 1's names
   (``Convolution2D``, ``Merge``...).

``Lambda`` (and Keras' op layers such as ``TFOpLambda``) hold Python code or name
functions to call; they are refused unless ``custom_objects`` supplies a class for that
name explicitly.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import SavingError, UnknownLayerError, UnsafeContentError

#: Class names whose configs carry code or name functions: never created by default.
CODE_LAYERS = {
    "Lambda": "a Lambda layer's config holds its Python function as marshalled bytecode or source",
    "TFOpLambda": "a TFOpLambda layer's config names a TensorFlow function to call",
    "SlicingOpLambda": "a SlicingOpLambda layer's config names a function to call",
    "ClassMethod": "a ClassMethod layer's config names a method to call",
    "InstanceMethod": "an InstanceMethod layer's config names a method to call",
    "InstanceProperty": "an InstanceProperty layer's config names an attribute to read",
}

# Keras 1 / Keras 2 / Keras 3 spellings of classes polykeras has under another name.
ALIASES = {
    "Functional": "Model",
    "Convolution1D": "Conv1D",
    "Convolution2D": "Conv2D",
    "MaxPool1D": "MaxPooling1D",
    "MaxPool2D": "MaxPooling2D",
    "AvgPool1D": "AveragePooling1D",
    "AvgPool2D": "AveragePooling2D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
    "GlobalAvgPool1D": "GlobalAveragePooling1D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D",
}

# Layer modules imported one by one, so that one still being written does not hide the
# others (polykeras.layers imports some of them inside a single try block).
_LAYER_MODULES = (
    "core",
    "convolutional",
    "pooling",
    "embeddings",
    "merge",
    "wrappers",
    "recurrent",
    "normalization",
    "activation",
    "noise",
    "reshaping",
    "attention",
)


def _layer_base() -> type:
    from ..engine.base_layer import Layer

    return Layer


class MergeLayerConfig:
    """Keras 1's ``Merge`` layer, read from a config: made into the matching merge layer
    (``mode="concat"`` -> Concatenate, "sum" -> Add...).  A ``mode`` or ``output_shape``
    given as a function (``mode_type``/``output_shape_type`` "lambda") is code: refused."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        from ..layers.legacy import _merge_layer

        name = config.get("name")
        for key in ("mode_type", "output_shape_type", "output_mask_type"):
            if config.get(key) not in (None, "raw"):
                raise UnsafeContentError(
                    f"Merge layer {name!r}: its {key.replace('_type', '')} is a Python "
                    f"function ({key}={config.get(key)!r}); polykeras never loads code from "
                    "a config. Use a built-in mode (sum, mul, concat, ave, cos, dot, max)."
                )
        mode = config.get("mode", "sum")
        if not isinstance(mode, str):
            raise UnsafeContentError(
                f"Merge layer {name!r}: mode must be the name of a "
                "built-in mode, got a non-string value"
            )
        return _merge_layer(mode, config.get("concat_axis", -1), config.get("dot_axes", -1), name)


def builtin_classes() -> dict[str, Any]:
    """polykeras' own layer classes by every name a Keras config may use."""
    Layer = _layer_base()
    from ..engine.base_layer import InputLayer
    from ..models import Model, Sequential

    found: dict[str, Any] = {}

    def take(module: Any) -> None:
        for name in dir(module):
            if name.startswith("_"):
                continue
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, Layer):
                found.setdefault(name, obj)

    import polykeras.layers as layers_pkg

    take(layers_pkg)
    for mod in _LAYER_MODULES:
        try:
            take(importlib.import_module(f"polykeras.layers.{mod}"))
        except ImportError:
            continue
    found.update(
        {
            "Model": Model,
            "Sequential": Sequential,
            "InputLayer": InputLayer,
            "Merge": MergeLayerConfig,
        }
    )
    for alias, target in ALIASES.items():
        if target in found:
            found.setdefault(alias, found[target])
    for name in CODE_LAYERS:
        found.pop(name, None)
    found.pop("Layer", None)  # the abstract base
    return found


def plugin_classes() -> dict[str, Any]:
    from .. import plugins

    return plugins.registered_layers()


def _is_layer_class(obj: Any) -> bool:
    return isinstance(obj, type) and (issubclass(obj, _layer_base()) or obj is MergeLayerConfig)


def _how_to_register(name: str) -> str:
    return (
        f"Pass the class when loading, e.g. load_model(path, custom_objects="
        f"{{{name!r}: {name}}}) (also model_from_json/model_from_yaml/from_config), or "
        "register it for every load through the plugin hook polykeras_register_layers "
        "(register(cls))."
    )


def _custom_class(class_name: str, cls: Any) -> Any:
    if not _is_layer_class(cls):
        raise SavingError(
            f"custom_objects[{class_name!r}] must be a Layer subclass, got {cls!r:.100}"
        )
    return cls


def lookup(class_name: Any, custom_objects: dict[str, Any] | None = None) -> Any:
    """The class a config's ``class_name`` stands for, or a clear error."""
    if not isinstance(class_name, str) or not class_name:
        raise SavingError(
            f"a layer config's class_name must be a non-empty string, got {class_name!r:.100}"
        )
    if len(class_name) > 200:
        raise SavingError(
            f"a layer config's class_name is {len(class_name)} characters long; refused"
        )
    from .custom_objects import effective, find

    objects = effective(custom_objects)
    if class_name in objects:
        return _custom_class(class_name, objects[class_name])
    plugged = plugin_classes()
    if class_name in plugged:
        cls = plugged[class_name]
        if not _is_layer_class(cls):
            raise SavingError(
                f"the plugin-registered layer {class_name!r} is not a Layer subclass ({cls!r:.100})"
            )
        return cls
    if class_name in CODE_LAYERS:
        raise UnsafeContentError(
            f"refused to load a {class_name} layer: {CODE_LAYERS[class_name]}, and polykeras "
            "never runs code from a file or config. Rewrite it as a Layer subclass and pass "
            f"that class as custom_objects={{{class_name!r}: MyLayer}}, or register it "
            "through the polykeras_register_layers plugin hook."
        )
    known = builtin_classes()
    if class_name in known:
        return known[class_name]
    registered = find(class_name, objects)  # "MyLayer" for a registered "package>MyLayer"
    if registered is not None:
        return _custom_class(class_name, registered)
    raise UnknownLayerError(
        f"Unknown layer: {class_name!r}. polykeras has no layer class of "
        f"that name. {_how_to_register(class_name)}"
    )


def class_name_of(layer: Any) -> str:
    """The ``class_name`` written for ``layer`` (the name a plugin registered it under,
    else its class's name)."""
    cls = type(layer)
    from .custom_objects import _GLOBAL

    registered_as = getattr(cls, "_polykeras_registered_name", None)
    if registered_as is not None and _GLOBAL.get(registered_as) is cls:
        return registered_as  # Keras 2 writes a registered class as "package>Name"
    try:
        for name, registered in plugin_classes().items():
            if registered is cls:
                return name
    except Exception:  # plugin discovery problems never block saving
        pass
    return cls.__name__
