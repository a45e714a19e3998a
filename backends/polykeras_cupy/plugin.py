"""Registers the CuPy backend; cupy is imported only by the probe and the factory."""

from __future__ import annotations

import importlib.util

from polykeras.plugins import hookimpl

# polykeras is not on PyPI: the extra is installed from a checkout.
INSTALL_HINT = (
    "cupy is not installed: on a machine with an NVIDIA GPU and CUDA 12, from a "
    "polykeras checkout, pip install -e '.[cupy]' (it installs cupy-cuda12x; "
    "with CUDA 13, pip install cupy-cuda13x instead)"
)


def probe() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return INSTALL_HINT
    try:
        import cupy
    except Exception as exc:  # a broken CUDA install shows here
        return f"cupy is installed but fails to import: {type(exc).__name__}: {exc}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"installed, but no CUDA device is visible ({type(exc).__name__}: {exc})"
    if count < 1:
        return "installed, but no CUDA device is visible"
    return None


def _factory(device=None):
    from .backend import CupyBackend

    return CupyBackend(device)


@hookimpl
def polykeras_register_backends(register):
    register(
        "cupy",
        factory=_factory,
        probe=probe,
        description="CuPy on an NVIDIA GPU ('cupy', 'cupy:1')",
    )
