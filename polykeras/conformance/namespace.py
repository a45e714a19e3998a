"""The namespace a document runs in, where ``keras`` means ``polykeras``.

Only code compiled against this namespace sees the mapping: it has its own ``__builtins__``
whose ``__import__`` renames ``keras`` / ``keras.xxx`` before importing.  ``sys.modules``
and ``builtins.__import__`` are never touched, so nothing outside the run changes.
"""

from __future__ import annotations

import builtins
from typing import Any

SOURCE = "keras"
TARGET = "polykeras"


def map_module(name: str) -> str:
    """``keras.layers`` -> ``polykeras.layers``; any other name unchanged."""
    if name == SOURCE or name.startswith(SOURCE + "."):
        return TARGET + name[len(SOURCE) :]
    return name


def _mapped_import(
    name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
) -> Any:
    if level == 0:
        mapped = map_module(name)
        if mapped != name:
            try:
                return builtins.__import__(mapped, globals, locals, fromlist, level)
            except ModuleNotFoundError as exc:
                raise ModuleNotFoundError(
                    f"{exc} (the document imports {name!r}, which the conformance runner "
                    f"maps to {mapped!r})",
                    name=exc.name,
                ) from None
    return builtins.__import__(name, globals, locals, fromlist, level)


def mapped_builtins() -> dict[str, Any]:
    """A copy of the builtins with the keras-to-polykeras ``__import__``."""
    table = dict(vars(builtins))
    table["__import__"] = _mapped_import
    return table


def new_namespace(bindings: dict[str, Any] | None = None) -> dict[str, Any]:
    """A fresh module namespace for one document, with ``bindings`` pre-bound."""
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": mapped_builtins()}
    ns.update(bindings or {})
    return ns
