"""Registers the PyTorch backend; nothing here imports torch."""

from __future__ import annotations

import importlib.metadata
import importlib.util

from polykeras.plugins import hookimpl

MIN_TORCH = (2, 1)
# polykeras is not on PyPI: the extra is installed from a checkout.
INSTALL_HINT = (
    "torch is not installed: from a polykeras checkout, pip install -e '.[torch]' "
    "(on a machine without CUDA, add --extra-index-url "
    "https://download.pytorch.org/whl/cpu for the smaller CPU-only wheel)"
)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def probe() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return INSTALL_HINT
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None
    if _version_tuple(version) < MIN_TORCH:
        return (
            f"torch {version} is too old; polykeras needs torch >= {'.'.join(map(str, MIN_TORCH))}"
        )
    return None


def _factory(device=None):
    from .backend import TorchBackend

    return TorchBackend(device)


@hookimpl
def polykeras_register_backends(register):
    register(
        "torch",
        factory=_factory,
        probe=probe,
        description="PyTorch on CPU or CUDA ('torch:cpu', 'torch:cuda:0')",
    )


def _communicator(timeout_s=600.0):
    if probe() is not None:
        from polykeras.distribute import DistributedError

        raise DistributedError(f"DataParallel on torch.distributed: {probe()}")
    from .distributed import factory

    return factory(timeout_s)


@hookimpl
def polykeras_register_communicators(register):
    register(
        "torch.distributed",
        factory=_communicator,
        description="torch.distributed process groups (Gloo on CPU, NCCL on CUDA), torchrun",
    )
