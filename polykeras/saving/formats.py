"""JSON and YAML text: written as plain data, read with size, depth and tag checks.

YAML is read with ``yaml.safe_load`` semantics only.  Keras 2 wrote its YAML with
``yaml.dump``, which tags tuples ``!!python/tuple``; that one tag (and Python 2's
``!!python/unicode``) only build a list or a string, so they are read as such.  Every
other ``!!python/...`` tag (``!!python/object/apply:os.system`` and the like) is refused
before anything is constructed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import yaml

from . import limits
from .errors import LimitExceededError, SavingError, UnsafeContentError


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(
        f"a config value of type {type(obj).__name__} ({obj!r:.80}) is not "
        "plain data and cannot be written as JSON"
    )


def dumps_json(obj: Any, **kwargs: Any) -> str:
    kwargs.setdefault("default", _json_default)
    try:
        return json.dumps(obj, **kwargs)
    except (TypeError, ValueError) as exc:
        raise SavingError(f"cannot write the config as JSON: {exc}") from None


def to_plain(obj: Any) -> Any:
    """``obj`` as fresh plain data (lists for tuples, Python numbers for NumPy ones)."""
    return json.loads(dumps_json(obj))


def _text(data: Any, what: str) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        if len(data) > limits.MAX_CONFIG_BYTES:
            raise _too_big(what, len(data))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SavingError(f"{what} is not UTF-8 text: {exc}") from None
    if not isinstance(data, str):
        raise TypeError(f"{what} must be a string, got {type(data).__name__}")
    if len(data) > limits.MAX_CONFIG_BYTES:
        raise _too_big(what, len(data))
    return data


def _too_big(what: str, size: int) -> Exception:
    return LimitExceededError(
        f"{what} is {size:,} bytes, more than the "
        f"{limits.MAX_CONFIG_BYTES:,} allowed (limits.MAX_CONFIG_BYTES)"
    )


# unrolled ("normal* (special normal*)*"): no backtracking state per character, so a
# 64 MiB string costs one pass (the plain alternation took 7.8 GB)
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def _json_shape(text: str) -> tuple[int, int]:
    """The deepest bracket nesting of a JSON text and an upper bound on the values it
    holds, strings left out: known before the parser runs, so the depth limit does not
    hang on the parser's own recursion limit (which differs between Python versions) and a
    text of millions of tiny values (``[{},{},...]``) is refused before the parser builds
    them.  Every value but the first of a non-empty container follows a comma, so a valid
    text holds exactly commas + non-empty containers + 1 values (the root)."""
    skeleton = _JSON_STRING.sub("", text).encode("utf-8", "replace")
    steps = np.frombuffer(skeleton, dtype=np.uint8)
    steps = steps[~np.isin(steps, (ord(" "), ord("\t"), ord("\n"), ord("\r")))]
    opens = np.isin(steps, (ord("["), ord("{")))
    closes = np.isin(steps, (ord("]"), ord("}")))
    depth = int(np.cumsum(opens.astype(np.int32) - closes.astype(np.int32)).max(initial=0))
    empty = int(np.count_nonzero(opens[:-1] & closes[1:]))
    values = int(np.count_nonzero(steps == ord(","))) + int(np.count_nonzero(opens)) - empty + 1
    return depth, values


def loads_json(data: Any, what: str = "the JSON config") -> Any:
    text = _text(data, what)
    depth, values = _json_shape(text)
    if depth > limits.MAX_DEPTH:
        raise _too_deep(what)
    if values > limits.MAX_ITEMS:
        raise _too_many(what, limits.MAX_ITEMS)
    try:
        obj = json.loads(text)
    except RecursionError:
        raise _too_deep(what) from None
    except json.JSONDecodeError as exc:
        hint = ""
        if text.lstrip()[:1] not in ("{", "["):
            hint = " (it does not start with '{'; is it YAML, or some other file?)"
        raise SavingError(f"{what} is not valid JSON: {exc}{hint}") from None
    except ValueError as exc:  # e.g. an integer with too many digits
        raise SavingError(f"{what} could not be read: {exc}") from None
    limits.check_structure(obj, what)
    return obj


# -- YAML -------------------------------------------------------------------------------------
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}
_DATA_ONLY_PYTHON_TAGS = {_CORE + "python/tuple", _CORE + "python/unicode", _CORE + "python/str"}


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """safe_load, plus Keras 2's harmless tuple/unicode tags read as list/str."""


_Loader.add_constructor(
    _CORE + "python/tuple", lambda loader, node: loader.construct_sequence(node)
)
_Loader.add_constructor(
    _CORE + "python/unicode", lambda loader, node: loader.construct_scalar(node)
)
_Loader.add_constructor(_CORE + "python/str", lambda loader, node: loader.construct_scalar(node))


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dumps_yaml(obj: Any, **kwargs: Any) -> str:
    kwargs.setdefault("default_flow_style", False)
    kwargs.setdefault("sort_keys", False)
    return yaml.dump(to_plain(obj), Dumper=_Dumper, **kwargs)


def _scan_yaml_events(text: str, what: str) -> None:
    """First pass over the event stream (libyaml's parser is iterative): refuse python
    and other non-data tags, excessive nesting and excessive size before anything is
    composed (composing a very deep document can overflow the C stack)."""
    depth = 0
    count = 0
    # building YAML values is about 50 times slower than JSON: a lower cap keeps the
    # worst document within seconds (limits.MAX_YAML_ITEMS)
    cap = min(limits.MAX_ITEMS, limits.MAX_YAML_ITEMS)
    try:
        for event in yaml.parse(text, Loader=_Base):
            count += 1
            if count > cap:
                raise _too_many(
                    what, cap, "MAX_YAML_ITEMS" if cap < limits.MAX_ITEMS else "MAX_ITEMS"
                )
            tag = getattr(event, "tag", None)
            if (
                tag is not None
                and tag != "!"
                and tag not in _PLAIN_TAGS
                and tag not in _DATA_ONLY_PYTHON_TAGS
            ):
                kind = (
                    "a Python object constructor, which could run code"
                    if "python/" in tag
                    else "not plain data"
                )
                raise UnsafeContentError(
                    f"{what} was refused: it holds the YAML tag {tag!r}, {kind}. polykeras "
                    "reads YAML with yaml.safe_load only (plain mappings, lists, strings, "
                    "numbers); write configs with model.to_yaml()."
                )
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > limits.MAX_DEPTH:
                    raise LimitExceededError(
                        f"{what} is nested more than {limits.MAX_DEPTH} "
                        "levels deep (limits.MAX_DEPTH); refused"
                    )
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except RecursionError:
        raise _too_deep(what) from None
    except yaml.YAMLError as exc:
        if _is_parser_depth_limit(exc):
            raise _too_deep(what) from None
        raise SavingError(f"{what} is not valid YAML: {exc}") from None


def _too_many(what: str, limit: int, name: str = "MAX_ITEMS") -> LimitExceededError:
    return LimitExceededError(
        f"{what} holds more than {limit:,} values (limits.{name}); refused as too large"
    )


def _too_deep(what: str) -> LimitExceededError:
    return LimitExceededError(
        f"{what} is nested more than {limits.MAX_DEPTH} levels deep (limits.MAX_DEPTH); refused"
    )


def _is_parser_depth_limit(exc: Exception) -> bool:
    """Whether a YAML error is the parser's own nesting limit.  libyaml (0.2.5 and the
    PyYAML 6.0.4 wheels) stops at 1000 levels before it hands over the events our own
    count sees, since its scanner reads flow collections ahead; the error then is the
    same limit as ours, met earlier, and is reported as ours whatever the version."""
    problem = str(getattr(exc, "problem", "") or "") + " " + str(exc)
    return "nesting depth" in problem or "nesting level" in problem


def loads_yaml(data: Any, what: str = "the YAML config") -> Any:
    text = _text(data, what)
    _scan_yaml_events(text, what)
    try:
        obj = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise _too_deep(what) from None
    except yaml.constructor.ConstructorError as exc:
        raise UnsafeContentError(
            f"{what} was refused: {exc}. polykeras reads YAML with yaml.safe_load only."
        ) from None
    except yaml.YAMLError as exc:
        raise SavingError(f"{what} is not valid YAML: {exc}") from None
    limits.check_structure(obj, what)
    return obj
