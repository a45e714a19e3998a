"""polykeras: the Keras functional API on NumPy, CuPy and PyTorch.

``import polykeras as keras`` and write Keras code.  Importing polykeras imports no
framework: a backend is imported the first time it is selected.

``import polykeras`` itself is light: the public names below are loaded on first use
(PEP 562 module ``__getattr__``), so a script that only needs ``polykeras.utils`` or a
command-line tool does not pay for the layers, the engine and the training loop.
``tests/test_import_time.py`` checks which modules an import loads.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING, Any

# polykeras.utils is imported now: Keras' paths under it (keras.utils.np_utils...) are
# served by the alias finder, which makes an imported utils module a package.
from . import _aliases, utils

__version__ = "0.1.0"

_aliases.install()  # Keras' import paths: polykeras.optimizers, polykeras.layers.noise...

#: public name -> the module (relative to polykeras) that defines it, imported on first use.
#: A new top-level name is one line here (and one in __all__ below).
_NAMES: dict[str, str] = {
    "BackendError": ".backend",
    "backends": ".backend",
    "reset_backend": ".backend",
    "set_backend": ".backend",
    "use_backend": ".backend",
    "ConfigError": ".config",
    "GradientTape": ".autodiff",
    "Variable": ".engine.variables",
    "Input": ".engine.base_layer",
    "KerasTensor": ".engine.base_layer",
    "Layer": ".engine.base_layer",
    "Model": ".models",
    "Sequential": ".models",
}

#: submodules reached under another name (Keras' paths)
_SUBMODULES: dict[str, str] = {
    "losses": ".training.losses",
    "metrics": ".training.metrics",
    "optimizers": ".training.optimizers",
    "callbacks": ".training.callbacks",
}

# The imports below are for type checkers only; the names are served by __getattr__.
# ruff: noqa: F401
if TYPE_CHECKING:  # what the names above are, for type checkers and editors
    from . import (
        activations,
        applications,
        backend,
        config,
        constraints,
        datasets,
        initializers,
        layers,
        models,
        ops,
        preprocessing,
        random,
        regularizers,
    )
    from .backend import BackendError, backends, reset_backend, set_backend, use_backend
    from .autodiff import GradientTape
    from .config import ConfigError
    from .engine.variables import Variable
    from .engine.base_layer import Input, KerasTensor, Layer
    from .models import Model, Sequential
    from .training import callbacks, losses, metrics, optimizers


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(_importlib.import_module(_NAMES[name], __name__), name)
    elif name in _SUBMODULES:
        value = _importlib.import_module(_SUBMODULES[name], __name__)
    elif name.startswith("__"):
        raise AttributeError(f"module 'polykeras' has no attribute {name!r}")
    else:
        # any submodule (polykeras.layers, polykeras.ops, polykeras.datasets...) on first use
        try:
            value = _importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise  # a submodule that exists but needs something missing
            raise AttributeError(f"module 'polykeras' has no attribute {name!r}") from None
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))


__all__ = [
    "BackendError",
    "ConfigError",
    "GradientTape",
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
    "random",
    "regularizers",
    "reset_backend",
    "set_backend",
    "use_backend",
    "utils",
    "Variable",
]
