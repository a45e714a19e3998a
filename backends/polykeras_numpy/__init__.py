"""polykeras' NumPy backend: the default, trains on any CPU."""

from .xp_backend import XpBackend

__all__ = ["NumpyBackend", "XpBackend"]


def __getattr__(name):
    if name == "NumpyBackend":
        from .backend import NumpyBackend

        return NumpyBackend
    raise AttributeError(name)
