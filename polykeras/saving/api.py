"""The loading and saving functions behind ``polykeras.models``.

``model_from_json``, ``model_from_yaml``, ``model_from_config``, ``load_model``,
``save_model`` and ``clone_model``, as in Keras 2.  Every loader takes
``custom_objects={"ClassName": cls}`` for layer classes polykeras does not know.
"""

from __future__ import annotations

import os
from typing import Any

from . import formats, hdf5
from .config import KERAS_VERSION, deserialize_layer, serialize_layer
from .config import model_from_config as _model_from_config
from .errors import SavingError


def model_to_dict(model: Any) -> dict[str, Any]:
    """``{"class_name", "config", "keras_version", "backend"}``: what to_json writes."""
    return {
        "class_name": serialize_layer(model)["class_name"],
        "config": model.get_config(),
        "keras_version": KERAS_VERSION,
        "backend": hdf5.backend_name(),
    }


def model_to_json(model: Any, **kwargs: Any) -> str:
    return formats.dumps_json(model_to_dict(model), **kwargs)


def model_to_yaml(model: Any, **kwargs: Any) -> str:
    return formats.dumps_yaml(model_to_dict(model), **kwargs)


def _from_document(doc: Any, custom_objects: dict | None, what: str) -> Any:
    if not isinstance(doc, dict) or "class_name" not in doc:
        raise SavingError(
            f"{what} must describe a model as {{'class_name': ..., 'config': "
            f"...}}; got {type(doc).__name__}"
            + (f" with keys {sorted(doc)[:8]}" if isinstance(doc, dict) else "")
        )
    return _model_from_config(doc, custom_objects)


def model_from_config(config: Any, custom_objects: dict | None = None) -> Any:
    """A model from ``{"class_name": ..., "config": ...}`` (a parsed JSON/YAML document)."""
    return _from_document(config, custom_objects, "model_from_config's argument")


def model_from_json(json_string: str | bytes, custom_objects: dict | None = None) -> Any:
    """A model from the JSON of ``to_json`` (Keras 1, 2 or 3 format); weights are fresh."""
    doc = formats.loads_json(json_string, "the JSON model config")
    return _from_document(doc, custom_objects, "the JSON model config")


def model_from_yaml(yaml_string: str | bytes, custom_objects: dict | None = None) -> Any:
    """A model from the YAML of ``to_yaml``, read with yaml.safe_load only."""
    doc = formats.loads_yaml(yaml_string, "the YAML model config")
    return _from_document(doc, custom_objects, "the YAML model config")


def load_model(filepath: Any, custom_objects: dict | None = None, compile: bool = True) -> Any:
    """A whole model (architecture, weights, compile settings) from a file written by
    ``model.save``: Keras 3's ``.keras`` zip, or legacy HDF5 (polykeras, Keras 2, tf.keras,
    Keras 3)."""
    from . import keras3

    if keras3.is_archive(filepath):
        return keras3.load_model(filepath, custom_objects=custom_objects, compile=compile)
    return hdf5.load_model(filepath, custom_objects=custom_objects, compile=compile)


def save_model(
    model: Any, filepath: Any, overwrite: bool = True, include_optimizer: bool = True
) -> None:
    """``model.save(filepath)``: the whole model in one file (``.keras``: Keras 3's zip;
    otherwise legacy HDF5), written atomically."""
    from . import keras3

    target = os.fspath(filepath) if isinstance(filepath, (str, os.PathLike)) else ""
    if isinstance(target, str) and target.endswith(".keras"):
        keras3.save_model(model, filepath, overwrite=overwrite, include_optimizer=include_optimizer)
        return
    hdf5.save_model(model, filepath, overwrite=overwrite, include_optimizer=include_optimizer)


def clone_model(model: Any, input_tensors: Any = None) -> Any:
    """A new model with the same architecture and fresh weights (Keras' clone_model on a
    functional or Sequential model)."""
    if input_tensors is not None:
        raise SavingError(
            "clone_model(input_tensors=...) is not supported; clone the model, "
            "then call it on the tensors"
        )
    return deserialize_layer(serialize_layer(model))


__all__ = [
    "clone_model",
    "load_model",
    "model_from_config",
    "model_from_json",
    "model_from_yaml",
    "save_model",
]
