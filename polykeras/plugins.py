"""Plugins: the hook specifications, the plugin manager and backend discovery.

Every plugin, built-in or third-party, is a module named by an entry point in the
``polykeras`` group.  polykeras imports each such module (never the framework behind it)
and calls the hooks it implements.  A plugin that fails to import, or whose hook raises,
is recorded with its name and the error and skipped; the others keep working.

A minimal third-party backend plugin::

    # my_backend/plugin.py, declared in its pyproject.toml as
    # [project.entry-points.polykeras]
    # mine = "my_backend.plugin"
    from polykeras.plugins import hookimpl

    @hookimpl
    def polykeras_register_backends(register):
        register("mine", factory=lambda device=None: MyBackend(device))
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

import pluggy

PROJECT = "polykeras"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Hookspecs:
    """Every hook a polykeras plugin may implement."""

    @hookspec
    def polykeras_register_backends(self, register: RegisterBackend) -> None:
        """Register zero or more backends.

        Call ``register(name, factory, probe=None, description="")`` once per backend:

        - ``name``: what users select, e.g. ``"torch"`` (letters, digits, ``_`` and ``-``).
          A selection may add an option after a colon, ``"torch:cuda:0"``; the part after
          the first colon is passed to the factory as ``device``.
        - ``factory(device=None)``: imports the framework and returns an object that meets
          the contract in :mod:`polykeras.contract`.  Called the first time the backend
          is selected, never at import of polykeras.
        - ``probe()``: optional and cheap; returns ``None`` when the backend can be used
          here, or a sentence saying why not (e.g. "installed, but no CUDA device is
          visible").  Without a probe, usability is found by calling the factory.
        """

    @hookspec
    def polykeras_register_layers(self, register: Callable[..., None]) -> None:
        """Register layer classes for deserialization: ``register(cls, name=None)``.

        Models saved with a custom layer can then be loaded without ``custom_objects``.
        """

    @hookspec
    def polykeras_register_communicators(self, register: Callable[..., None]) -> None:
        """Register process-group engines for data-parallel training:
        ``register(name, factory, description="")``.

        ``factory(timeout_s)`` joins (or starts) the process group described by the
        environment (e.g. torchrun's ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``) and returns an
        object meeting :class:`polykeras.distribute.Communicator`.  Called only when a
        distribution is first used, never at import of polykeras.
        """


RegisterBackend = Callable[..., None]


@dataclass
class BackendSpec:
    name: str
    factory: Callable[..., Any]
    plugin: str
    probe: Callable[[], str | None] | None = None
    description: str = ""


@dataclass
class BackendInfo:
    """One row of :func:`polykeras.backends`."""

    name: str
    usable: bool
    reason: str
    plugin: str
    description: str = ""

    def __str__(self) -> str:
        state = "usable" if self.usable else f"not usable: {self.reason}"
        return f"{self.name} ({self.plugin}): {state}"


@dataclass
class PluginError:
    plugin: str
    error: str


@dataclass
class _Registry:
    backends: dict[str, BackendSpec] = field(default_factory=dict)
    layers: dict[str, type] = field(default_factory=dict)
    communicators: dict[str, tuple[Callable[..., Any], str, str]] = field(default_factory=dict)
    errors: list[PluginError] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None


_lock = threading.RLock()
_registry: _Registry | None = None
_extra_plugins: list[tuple[str, Any]] = []


def _valid_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "_-" for c in name)


def _discover() -> _Registry:
    reg = _Registry()
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Hookspecs)
    reg.manager = pm
    plugins: list[tuple[str, Any]] = []
    for ep in sorted(
        importlib.metadata.entry_points(group=PROJECT), key=lambda e: (e.name != "numpy", e.name)
    ):
        label = f"{ep.name} ({ep.value})"
        if ep.name in {name for name, _ in plugins}:
            continue  # the same distribution seen twice on sys.path
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            reg.errors.append(PluginError(label, f"{type(exc).__name__}: {exc}"))
            continue
        plugins.append((ep.name, module))
    for name, obj in _extra_plugins:
        try:
            pm.register(obj, name=name)
        except Exception as exc:
            reg.errors.append(PluginError(name, f"{type(exc).__name__}: {exc}"))
            continue
        plugins.append((name, obj))

    for plugin_name, obj in plugins:

        def register(
            name: str,
            factory: Callable[..., Any],
            probe: Callable[[], str | None] | None = None,
            description: str = "",
            _plugin: str = plugin_name,
        ) -> None:
            if not _valid_name(name):
                raise ValueError(f"backend name {name!r} may hold only letters, digits, _ and -")
            if name in reg.backends:
                other = reg.backends[name].plugin
                reg.errors.append(
                    PluginError(
                        _plugin,
                        f"backend {name!r} is already registered by plugin {other!r}; ignored",
                    )
                )
                return
            reg.backends[name] = BackendSpec(name, factory, _plugin, probe, description)

        def register_layer(cls: type, name: str | None = None, _plugin: str = plugin_name) -> None:
            reg.layers[name or cls.__name__] = cls

        def register_communicator(
            name: str,
            factory: Callable[..., Any],
            description: str = "",
            _plugin: str = plugin_name,
        ) -> None:
            if not _valid_name(name.replace(".", "_")):
                raise ValueError(f"communicator name {name!r} may hold only letters, digits, _ - .")
            reg.communicators.setdefault(name, (factory, _plugin, description))

        for hook_name, arg_name, fn in (
            ("polykeras_register_backends", "register", register),
            ("polykeras_register_layers", "register", register_layer),
            ("polykeras_register_communicators", "register", register_communicator),
        ):
            impl = getattr(obj, hook_name, None)
            if impl is None:
                continue
            try:
                impl(**{arg_name: fn})
            except Exception as exc:
                reg.errors.append(
                    PluginError(plugin_name, f"{hook_name} raised {type(exc).__name__}: {exc}")
                )
    return reg


def registry() -> _Registry:
    global _registry
    with _lock:
        if _registry is None:
            _registry = _discover()
        return _registry


def reset() -> None:
    """Forget everything discovered (and every loaded backend); discover again on next use."""
    global _registry
    from . import backend as _backend

    with _lock:
        _registry = None
        _backend._loaded.clear()
        _backend._cache.update(env=None, obj=None, checked=-1.0)
        importlib.invalidate_caches()


def register_plugin(obj: Any, name: str | None = None) -> None:
    """Register a plugin object in this process, as if an entry point had named it.

    Meant for tests and notebooks; packages should declare an entry point instead.
    """
    label = name or str(getattr(obj, "__name__", repr(obj)))
    _extra_plugins.append((label, obj))
    reset()


def unregister_plugin(name: str) -> None:
    _extra_plugins[:] = [(n, o) for n, o in _extra_plugins if n != name]
    reset()


def plugin_errors() -> list[PluginError]:
    """Plugins that failed to load or whose hooks raised, with the reason."""
    return list(registry().errors)


def registered_layers() -> dict[str, type]:
    """Layer classes that plugins registered through ``polykeras_register_layers``."""
    return dict(registry().layers)


def registered_communicators() -> dict[str, tuple[Callable[..., Any], str, str]]:
    """Process-group engines plugins registered: name -> (factory, plugin, description)."""
    return dict(registry().communicators)


def check_backend(spec: BackendSpec) -> str | None:
    """Start ``spec``'s backend and check the object against the backend contract: ``None``
    when it implements the whole contract, else why it cannot be used ("missing matmul...").

    This imports the framework behind the backend, so only ``python -m polykeras backends``
    calls it; discovery and :func:`polykeras.backends` run the cheap probes only."""
    from . import contract

    try:
        obj = spec.factory(device=None)
    except Exception as exc:
        return f"failed to start: {type(exc).__name__}: {exc}"
    missing = contract.missing_methods(obj)
    if missing:
        return "does not implement the backend contract (polykeras.contract): missing " + ", ".join(
            missing
        )
    return None


def unknown_backend_message(selection: str, source: str, with_errors: bool = True) -> str | None:
    """``None`` when ``selection`` ("torch", "torch:cuda:0") names a discovered backend; else
    one message naming it, where it came from, a close discovered name if there is one, what
    was discovered, and the plugins that failed to load."""
    from .config import did_you_mean

    reg = registry()
    name = str(selection).partition(":")[0].strip()
    if name in reg.backends:
        return None
    known = sorted(reg.backends)
    msg = (
        f"unknown backend {selection!r} (from {source}){did_you_mean(name, known)}; "
        f"discovered: {', '.join(known) or 'none'}"
    )
    if reg.errors and with_errors:
        msg += "; plugins that failed to load: " + "; ".join(
            f"{e.plugin}: {e.error}" for e in reg.errors
        )
    if not known:
        msg += (
            " (no backend could be discovered: from a polykeras checkout, "
            "pip install -e . installs the backend plugins)"
        )
    return msg
