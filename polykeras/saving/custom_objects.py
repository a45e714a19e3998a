"""Custom objects known by name: ``get_custom_objects``, ``custom_object_scope`` and
``register_keras_serializable`` (Keras' ``keras.utils`` / ``keras.saving`` names).

A loader resolves a config's names against, highest precedence first: the
``custom_objects=`` it was given, the ``custom_object_scope`` blocks open in this thread
(innermost first), the process-wide dictionary ``get_custom_objects()`` (which
``register_keras_serializable`` fills), then the plugins' and polykeras' own classes
(:mod:`.registry`).  Every entry is an object the program itself put there; a file can only
name it.
"""

from __future__ import annotations

import contextvars
from typing import Any

# Keras' global custom objects: one dictionary per process, which programs edit directly
# (get_custom_objects()["MyLayer"] = MyLayer); never written by the training path.
_GLOBAL: dict[str, Any] = {}

_SCOPES: contextvars.ContextVar[tuple[dict[str, Any], ...]] = contextvars.ContextVar(
    "polykeras_custom_object_scopes", default=()
)


def get_custom_objects() -> dict[str, Any]:
    """The process-wide dictionary of custom objects (edit it in place)."""
    return _GLOBAL


class CustomObjectScope:
    """``with custom_object_scope({"MyLayer": MyLayer}):`` — the names are known to every
    load inside the block, in this thread (and the tasks it starts)."""

    def __init__(self, *scopes: dict[str, Any] | None):
        merged: dict[str, Any] = {}
        for i, scope in enumerate(scopes):
            if scope is None:
                continue
            if not isinstance(scope, dict):
                raise TypeError(
                    f"custom_object_scope: argument {i} must be a dict of name -> object, got "
                    f"{type(scope).__name__}"
                )
            merged.update(scope)
        self.custom_objects = merged
        self._tokens: list[contextvars.Token] = []

    def __enter__(self) -> CustomObjectScope:
        self._tokens.append(_SCOPES.set(_SCOPES.get() + (self.custom_objects,)))
        return self

    def __exit__(self, *exc: Any) -> None:
        _SCOPES.reset(self._tokens.pop())


custom_object_scope = CustomObjectScope


def effective(custom_objects: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every custom object a load may use now, by name (see the module docstring)."""
    merged = dict(_GLOBAL)
    for scope in _SCOPES.get():
        merged.update(scope)
    merged.update(custom_objects or {})
    return merged


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Any:
    """Class decorator: known to every load as ``"<package>><name>"`` (``name`` defaults to
    the class name), the name Keras 2 writes for it; a file that names the class alone
    ("MyLayer", as Keras 3 writes it) finds it too."""
    if not isinstance(package, str) or ">" in package:
        raise ValueError(
            f"register_keras_serializable: package must be a string without '>', got {package!r}"
        )

    def decorator(obj: Any) -> Any:
        short = name or getattr(obj, "__name__", None)
        if not isinstance(short, str) or not short:
            raise ValueError(f"register_keras_serializable: cannot name {obj!r}; pass name=...")
        key = f"{package}>{short}"
        if key in _GLOBAL and _GLOBAL[key] is not obj:
            raise ValueError(f"{key} has already been registered to {_GLOBAL[key]}")
        _GLOBAL[key] = obj
        try:
            obj._polykeras_registered_name = key
        except (AttributeError, TypeError):  # a builtin function cannot take attributes
            pass
        return obj

    return decorator


def get_registered_name(obj: Any) -> str:
    """The name ``obj`` is written under: its registered ``package>name``, else its name."""
    key = getattr(obj, "_polykeras_registered_name", None)
    if key is not None and _GLOBAL.get(key) is obj:
        return key
    return getattr(obj, "__name__", type(obj).__name__)


def get_registered_object(
    name: str, custom_objects: dict[str, Any] | None = None, module_objects: Any = None
) -> Any:
    """The object known as ``name`` (see :func:`effective`), else in ``module_objects``,
    else None."""
    found = find(name, effective(custom_objects))
    if found is not None:
        return found
    if module_objects is not None:
        return module_objects.get(name)
    return None


def find(name: str, objects: dict[str, Any]) -> Any:
    """``objects[name]``; else the one registered ``package>name`` entry for a bare name."""
    if name in objects:
        return objects[name]
    if ">" not in name:
        matches = [v for k, v in objects.items() if ">" in k and k.rpartition(">")[2] == name]
        if len(matches) == 1:
            return matches[0]
    return None


__all__ = [
    "CustomObjectScope",
    "custom_object_scope",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "register_keras_serializable",
]
