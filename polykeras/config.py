"""Settings: backend, floatx, epsilon and image_data_format.

Backend precedence, highest first:

1. ``polykeras.use_backend(name)`` (a context manager) or ``polykeras.set_backend(name)``
2. the ``POLYKERAS_BACKEND`` environment variable
3. the ``"backend"`` key of the config file ``$POLYKERAS_HOME/polykeras.json``
   (``~/.polykeras/polykeras.json`` when ``POLYKERAS_HOME`` is unset)
4. ``"numpy"``

The config file may also set ``floatx``, ``epsilon`` and ``image_data_format`` (the same keys
as Keras' ``keras.json``).  A malformed file is an error that names the file.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

ENV_BACKEND = "POLYKERAS_BACKEND"
ENV_HOME = "POLYKERAS_HOME"
DEFAULT_BACKEND = "numpy"

_FLOATX_CHOICES = ("float16", "float32", "float64")
_FORMAT_CHOICES = ("channels_last", "channels_first")


class ConfigError(ValueError):
    """A setting has a value polykeras cannot use."""


def config_path() -> Path:
    """Where the config file lives (it need not exist)."""
    home = os.environ.get(ENV_HOME)
    base = Path(home).expanduser() if home else Path.home() / ".polykeras"
    return base / "polykeras.json"


_file_cache: dict[str, Any] = {}
_paths: dict[str | None, Path] = {}


def read_config_file() -> dict[str, Any]:
    """The parsed config file, or {} when there is none.  Cached per path, mtime and size
    (settings are read on hot paths: a stat per call, a parse only when the file changes)."""
    home = os.environ.get(ENV_HOME)
    path = _paths.get(home)
    if path is None:
        path = _paths[home] = config_path()
    return _read_config_file(path)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        stat = path.stat()
    except OSError:
        return {}
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if _file_cache.get("key") == key:
        cached: dict[str, Any] = _file_cache["value"]
        return cached
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if text.strip() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a JSON object such as "
            f'{{"backend": "numpy"}}, not {type(data).__name__}'
        )
    _validate_file(data, path)
    _file_cache.update(key=key, value=data)
    return data


def _validate_file(data: dict[str, Any], path: Path) -> None:
    if "backend" in data and (not isinstance(data["backend"], str) or not data["backend"]):
        raise ConfigError(
            f'config file {path}: "backend" must be a backend name, got {data["backend"]!r}'
        )
    if "floatx" in data and data["floatx"] not in _FLOATX_CHOICES:
        raise ConfigError(
            f'config file {path}: "floatx" is {data["floatx"]!r}; '
            f"expected one of {', '.join(_FLOATX_CHOICES)}"
        )
    if "image_data_format" in data and data["image_data_format"] not in _FORMAT_CHOICES:
        raise ConfigError(
            f'config file {path}: "image_data_format" is '
            f"{data['image_data_format']!r}; expected one of "
            f"{', '.join(_FORMAT_CHOICES)}"
        )
    if "epsilon" in data and (
        isinstance(data["epsilon"], bool)
        or not isinstance(data["epsilon"], (int, float))
        or data["epsilon"] <= 0
    ):
        raise ConfigError(
            f'config file {path}: "epsilon" must be a positive number, got {data["epsilon"]!r}'
        )


# Values set through the Python API (None: fall back to the file, then the default).
_api: dict[str, Any] = {"floatx": None, "epsilon": None, "image_data_format": None}

# The config file's contents, held by ``held()`` (innermost last), per thread.
_held: contextvars.ContextVar[tuple[dict[str, Any], ...]] = contextvars.ContextVar(
    "polykeras_held_config", default=()
)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Within, the config file is looked at once, on entry: training loops hold it, since
    settings such as epsilon are read once per step and cannot change during a fit.
    Settings made through the Python API still apply at once."""
    token = _held.set(_held.get() + (read_config_file(),))
    try:
        yield
    finally:
        _held.reset(token)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def holding(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorator: run ``method`` inside :func:`held`."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with held():
            return method(*args, **kwargs)

    return wrapper


def _setting(key: str, default: Any) -> Any:
    if _api[key] is not None:
        return _api[key]
    held_files = _held.get()
    return (held_files[-1] if held_files else read_config_file()).get(key, default)


def floatx() -> str:
    """The default float dtype name ("float32" unless set)."""
    return str(_setting("floatx", "float32"))  # a str: checked when set


def set_floatx(value: str) -> None:
    if value not in _FLOATX_CHOICES:
        raise ConfigError(f"set_floatx({value!r}): expected one of {', '.join(_FLOATX_CHOICES)}")
    _api["floatx"] = str(value)


def epsilon() -> float:
    """The fuzz factor used in numeric expressions (1e-7 unless set)."""
    return float(_setting("epsilon", 1e-7))


def set_epsilon(value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"set_epsilon({value!r}): expected a positive number")
    _api["epsilon"] = float(value)


def image_data_format() -> str:
    """ "channels_last" (the default) or "channels_first"."""
    return str(_setting("image_data_format", "channels_last"))  # a str: checked when set


def set_image_data_format(value: str) -> None:
    if value not in _FORMAT_CHOICES:
        raise ConfigError(
            f"set_image_data_format({value!r}): expected one of {', '.join(_FORMAT_CHOICES)}"
        )
    _api["image_data_format"] = value


def normalize_data_format(value: str | None) -> str:
    """Resolve a layer's data_format (Keras 2) or dim_ordering (Keras 1: "th"/"tf")."""
    if value is None or value == "default":
        return image_data_format()
    aliases = {"th": "channels_first", "tf": "channels_last"}
    value = aliases.get(value, value)
    if value not in _FORMAT_CHOICES:
        raise ConfigError(
            f"data_format {value!r} is not valid; expected one of "
            f"{', '.join(_FORMAT_CHOICES)} (or Keras 1's 'th'/'tf')"
        )
    return value


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'numpy'?)"`` for a mistyped backend name, or ``""`` when no
    discovered name is close.  The part after a colon ("torch:cuda:0") is ignored."""
    base = str(name).partition(":")[0].strip()
    close = difflib.get_close_matches(base, sorted(set(choices)), n=1, cutoff=0.6)
    if not close:
        close = [c for c in sorted(set(choices)) if c.lower() == base.lower()][:1]
    return f" (did you mean {close[0]!r}?)" if close and close[0] != base else ""


def requested_backend() -> tuple[str, str]:
    """The backend name that is asked for now, and where the request came from."""
    from . import backend as _backend  # the API override lives beside the active backend

    chosen = _backend.api_choice()
    if chosen is not None:
        return chosen, "the Python API (set_backend/use_backend)"
    env = os.environ.get(ENV_BACKEND)
    if env is not None:
        if not env.strip():
            raise ConfigError(
                f"environment variable {ENV_BACKEND} is set but empty; unset it or name a backend"
            )
        return env.strip(), f"environment variable {ENV_BACKEND}"
    name = read_config_file().get("backend")
    if name:
        return name, f"config file {config_path()}"
    return DEFAULT_BACKEND, "the default"
