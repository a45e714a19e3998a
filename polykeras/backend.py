"""The active backend and the ``keras.backend`` functions users call.

``current()`` returns the backend object selected by the precedence in
:mod:`polykeras.config`.  Backends are loaded (their framework imported) on first use.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
from typing import Any
from collections.abc import Iterator

from . import config, contract, plugins
from .config import (  # noqa: F401  (re-exported as keras.backend.*)
    ConfigError,
    epsilon,
    floatx,
    image_data_format,
    set_epsilon,
    set_floatx,
    set_image_data_format,
)


class BackendError(RuntimeError):
    """A backend cannot be selected or used; the message lists every discovered backend."""


# The backend asked for through the Python API.  ``set_backend`` makes one choice for the
# whole process; ``use_backend`` blocks are per thread (and per asyncio task): a block in
# one thread never changes what another thread computes with.
_chosen: dict[str, str | None] = {"name": None}
_blocks: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "polykeras_use_backend", default=()
)


def api_choice() -> str | None:
    """The selection made through the Python API for this thread, or None."""
    blocks = _blocks.get()
    return blocks[-1] if blocks else _chosen["name"]


_loaded: dict[str, Any] = {}  # full selection string ("torch:cpu") -> backend object


def _split(selection: str) -> tuple[str, str | None]:
    name, _, device = selection.partition(":")
    return name.strip(), (device.strip() or None)


def _table() -> str:
    rows = [f"  - {info}" for info in backends()]
    for err in plugins.plugin_errors():
        rows.append(f"  - plugin {err.plugin} failed to load: {err.error}")
    return "\n".join(rows) if rows else "  (none: is polykeras installed, e.g. `pip install -e .`?)"


def load(selection: str, source: str = "the Python API") -> Any:
    """Return the backend object for ``selection`` ("numpy", "torch:cuda:0"...), loading it."""
    if not isinstance(selection, str) or not selection.strip():
        raise BackendError(
            f"backend name from {source} must be a non-empty string, "
            f"got {selection!r}. Discovered backends:\n{_table()}"
        )
    if selection in _loaded:
        return _loaded[selection]
    name, device = _split(selection)
    spec = plugins.registry().backends.get(name)
    if spec is None:
        hint = config.did_you_mean(name, plugins.registry().backends)
        raise BackendError(
            f"unknown backend {selection!r} (from {source}){hint}. Discovered backends:\n{_table()}"
        )
    reason = _probe(spec)
    if reason:
        raise BackendError(
            f"backend {name!r} (from {source}) is not usable: {reason}. "
            f"Discovered backends:\n{_table()}"
        )
    try:
        obj = spec.factory(device=device)
    except Exception as exc:
        raise BackendError(
            f"backend {selection!r} (from {source}, plugin {spec.plugin}) "
            f"failed to start: {type(exc).__name__}: {exc}. "
            f"Discovered backends:\n{_table()}"
        ) from exc
    missing = contract.missing_methods(obj)
    if missing:
        raise BackendError(
            f"backend {selection!r} (plugin {spec.plugin}) does not implement "
            f"the backend contract: missing {', '.join(missing)} "
            "(see polykeras.contract)"
        )
    _loaded[selection] = obj
    return obj


def _probe(spec: plugins.BackendSpec) -> str | None:
    if spec.probe is None:
        return None
    try:
        return spec.probe()
    except Exception as exc:
        return f"its probe raised {type(exc).__name__}: {exc}"


def backends() -> list[plugins.BackendInfo]:
    """Every discovered backend, with whether it can be used here and why not."""
    out = []
    for spec in plugins.registry().backends.values():
        reason = _probe(spec)
        out.append(
            plugins.BackendInfo(
                spec.name, reason is None, reason or "", spec.plugin, spec.description
            )
        )
    return out


# The env/file resolution is cached: the env var is re-read on every call (cheap), the
# config file is looked at again at most once a second.
_cache: dict[str, Any] = {"env": None, "obj": None, "checked": -1.0}
_FILE_RECHECK_S = 1.0


def current() -> Any:
    """The active backend object (called by every op: kept cheap)."""
    sel = api_choice()
    if sel is not None:
        obj = _loaded.get(sel)
        return obj if obj is not None else load(sel)
    env = os.environ.get(config.ENV_BACKEND)
    c = _cache
    obj = c["obj"]
    if obj is not None and env == c["env"]:
        if env is not None or time.monotonic() - c["checked"] < _FILE_RECHECK_S:
            return obj
    selection, source = config.requested_backend()
    obj = _loaded.get(selection)
    if obj is None:
        obj = load(selection, source)
    c.update(env=env, obj=obj, checked=time.monotonic())
    return obj


def backend() -> str:
    """The active backend's name (Keras' ``keras.backend.backend()``)."""
    return current().name


def set_backend(name: str) -> None:
    """Select a backend for the rest of the process (overrides env var and config file)."""
    load(name)  # fail now, with the table, if it cannot be used
    _chosen["name"] = name


def reset_backend() -> None:
    """Drop set_backend's choice: the env var / config file / default apply again."""
    _chosen["name"] = None
    _cache.update(env=None, obj=None, checked=-1.0)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Any]:
    """Run a block with another backend active: ``with polykeras.use_backend("torch"):``."""
    obj = load(name)
    token = _blocks.set(_blocks.get() + (name,))
    try:
        yield obj
    finally:
        _blocks.reset(token)


def clear_session() -> None:
    """Reset auto-naming counters (``dense_1`` again) as Keras' clear_session does."""
    from .engine import naming

    naming.reset()


def __getattr__(name: str) -> Any:
    """Keras' backend API (``K.sum``, ``K.function``...): see :mod:`polykeras.backend_api`."""
    if name.startswith("__"):
        raise AttributeError(name)
    from . import backend_api

    try:
        return getattr(backend_api, name)
    except AttributeError:
        raise AttributeError(f"module 'polykeras.backend' has no attribute {name!r}") from None
