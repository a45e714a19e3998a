"""Class registry, config/JSON/YAML and HDF5 in Keras' legacy layout.

- :mod:`.registry`: the only layer classes a config can create.
- :mod:`.config`: model/layer configs (Keras 2 written; Keras 1, 2, 3 read).
- :mod:`.compat`: Keras 1/3 layer arguments made into polykeras ones.
- :mod:`.formats`: JSON and YAML text (YAML read with safe_load only).
- :mod:`.hdf5`: weights and whole models in Keras' HDF5 layout.
- :mod:`.keras3`: Keras 3's own files, the ``.keras`` zip and ``.weights.h5``.
- :mod:`.conversions`: Keras 1 / Theano weight layouts converted on loading.
- :mod:`.files`: atomic writes.
- :mod:`.limits`: the limits that bound what a config or file may ask for.
- :mod:`.api`: model_from_json, model_from_yaml, load_model, save_model...
"""

from .custom_objects import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)
from .errors import (
    FileFormatError,
    LimitExceededError,
    SavingError,
    UnknownLayerError,
    UnsafeContentError,
    WeightsMismatchError,
)

__all__ = [
    "CustomObjectScope",
    "custom_object_scope",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "register_keras_serializable",
    "FileFormatError",
    "LimitExceededError",
    "SavingError",
    "UnknownLayerError",
    "UnsafeContentError",
    "WeightsMismatchError",
]
