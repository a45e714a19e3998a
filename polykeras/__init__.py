"""polykeras: the Keras functional API on NumPy, CuPy and PyTorch.

``import polykeras as keras`` and write Keras code.  Importing polykeras imports no
framework: a backend is imported the first time it is selected.
"""

from __future__ import annotations

from . import config
from .backend import (
    BackendError,
    backends,
    reset_backend,
    set_backend,
    use_backend,
)
from .config import ConfigError

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ConfigError",
    "backends",
    "config",
    "reset_backend",
    "set_backend",
    "use_backend",
]
