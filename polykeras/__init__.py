"""polykeras: the Keras functional API on NumPy, CuPy and PyTorch.

``import polykeras as keras`` and write Keras code.  Importing polykeras imports no
framework: a backend is imported the first time it is selected.
"""

from __future__ import annotations

from . import (
    _aliases,
    activations,
    backend,
    config,
    constraints,
    initializers,
    layers,
    models,
    ops,
    regularizers,
    utils,
)
from .backend import BackendError, backends, reset_backend, set_backend, use_backend
from .config import ConfigError
from .engine.base_layer import Input, KerasTensor, Layer
from .engine.functional import Model
from .engine.sequential import Sequential

__version__ = "0.1.0"

_aliases.install()  # Keras' import paths: polykeras.optimizers, polykeras.layers.noise...


def __getattr__(name):
    # submodules that import more than the engine are loaded on first use
    import importlib

    if name in ("losses", "metrics", "optimizers", "callbacks"):
        return importlib.import_module(f".training.{name}", __name__)
    if name == "preprocessing":
        return importlib.import_module(".preprocessing", __name__)
    if name == "datasets":  # keras.datasets.mnist.load_data(), loaded on first use
        return importlib.import_module(".datasets", __name__)
    raise AttributeError(f"module 'polykeras' has no attribute {name!r}")


__all__ = [
    "BackendError",
    "ConfigError",
    "Input",
    "KerasTensor",
    "Layer",
    "Model",
    "Sequential",
    "activations",
    "backend",
    "backends",
    "config",
    "constraints",
    "initializers",
    "layers",
    "models",
    "ops",
    "regularizers",
    "reset_backend",
    "set_backend",
    "use_backend",
    "utils",
]
