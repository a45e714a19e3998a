"""Registers the NumPy backend through the same hook a third-party plugin uses."""

from polykeras.plugins import hookimpl


def _factory(device=None):
    from .backend import NumpyBackend

    return NumpyBackend(device)


@hookimpl
def polykeras_register_backends(register):
    register("numpy", factory=_factory, description="NumPy on the CPU (the default)")
