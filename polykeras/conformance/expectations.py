"""The data files beside the runner: errata (``errata.txt``) and per-document settings and
expected failures (``documents.json``), and how an error is judged against an expectation.

``errata.txt``: one fix a line, ``PREFIX "wrong" -> "right"  # reason``, the two texts as
Python string literals; the fix applies to the code blocks of every document whose file
name starts with PREFIX.  Lines that are blank or start with ``#`` are comments.  Nothing
else is allowed: a line that is not a fix with a reason is an error.

``documents.json``: ``defaults`` (settings for every document) and ``documents`` keyed by
file-name prefix, each with ``settings`` (overriding the defaults), ``expected_failures``
(``block``: text that occurs in exactly one code block, compared with whitespace
collapsed; ``types``: exception class names accepted (a subclass is accepted too);
``message``: the text the error must contain, or ``message_contains``: a list of
substrings; ``why``) and ``skip`` (``block``, ``when``: ``"always"`` or ``"cpu"``,
``reason``).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ERRATA_FILE = HERE / "errata.txt"
DOCUMENTS_FILE = HERE / "documents.json"


class DataFileError(ValueError):
    """errata.txt or documents.json is malformed, or names a block that is not there."""


# -- errata ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Erratum:
    prefix: str
    wrong: str
    right: str
    reason: str
    line: int  # in errata.txt

    def describe(self) -> str:
        return f"{self.wrong!r} -> {self.right!r} ({self.reason})"


_STR = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
_ERRATUM = re.compile(rf"^(\S+)\s+({_STR})\s*->\s*({_STR})\s*#\s*(\S.*)$")


def parse_errata(text: str, source: str = "errata.txt") -> list[Erratum]:
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _ERRATUM.match(line)
        if not m:
            raise DataFileError(
                f'{source}:{n}: expected PREFIX "wrong" -> "right"  # reason, got {raw!r}'
            )
        wrong, right = ast.literal_eval(m.group(2)), ast.literal_eval(m.group(3))
        if not wrong or "\n" in wrong or "\n" in right:
            raise DataFileError(f"{source}:{n}: a fix replaces text within one line")
        out.append(Erratum(m.group(1), wrong, right, m.group(4).strip(), n))
    return out


@cache
def _errata_cached(path: str) -> tuple[Erratum, ...]:
    return tuple(parse_errata(Path(path).read_text(encoding="utf-8"), Path(path).name))


def errata_for(doc_name: str, path: Path = ERRATA_FILE) -> list[Erratum]:
    return [e for e in _errata_cached(str(path)) if doc_name.startswith(e.prefix)]


# -- settings and expectations ----------------------------------------------------------------
@dataclass
class Expectation:
    """A code block that must fail, and how."""

    block: str  # locator text, or "" for one derived from an error printout
    types: list[str] = field(default_factory=list)
    message: str | None = None
    message_contains: list[str] = field(default_factory=list)
    why: str = ""

    def describe(self) -> str:
        what = " or ".join(self.types) or "an error"
        if self.message:
            what += f": {self.message}"
        elif self.message_contains:
            what += " mentioning " + ", ".join(repr(s) for s in self.message_contains)
        return what


@dataclass
class Skip:
    block: str
    when: str  # "always" or "cpu"
    reason: str


@dataclass
class DocumentConfig:
    settings: dict[str, Any]
    expected_failures: list[Expectation]
    skips: list[Skip]
    prefix: str | None


@cache
def _documents_cached(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "defaults" not in data or "documents" not in data:
        raise DataFileError(f"{path} must hold an object with 'defaults' and 'documents'")
    return data


def config_for(doc_name: str, path: Path = DOCUMENTS_FILE) -> DocumentConfig:
    """Settings (defaults overridden by the longest matching prefix) and expectations."""
    data = _documents_cached(str(path))
    settings = dict(data["defaults"])
    matches = sorted((p for p in data["documents"] if doc_name.startswith(p)), key=len)
    entry: dict[str, Any] = data["documents"][matches[-1]] if matches else {}
    settings.update(entry.get("settings", {}))
    extra = entry.get("data_names", [])
    settings["data_names"] = list(settings.get("data_names", [])) + list(extra)
    expected = [
        Expectation(
            block=e["block"],
            types=list(e.get("types", [])),
            message=e.get("message"),
            message_contains=list(e.get("message_contains", [])),
            why=e.get("why", ""),
        )
        for e in entry.get("expected_failures", [])
    ]
    skips = [Skip(s["block"], s.get("when", "always"), s["reason"]) for s in entry.get("skip", [])]
    return DocumentConfig(settings, expected, skips, matches[-1] if matches else None)


# -- matching -----------------------------------------------------------------------------------
def squash(text: str) -> str:
    """Whitespace collapsed to single spaces, curly quotes made straight."""
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'")
    return " ".join(text.replace("\u2019", "'").split())


_AUTO_NAME = re.compile(r"\b([a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*)_\d+\b")


def normalise_message(text: str) -> str:
    """``squash`` plus auto-name numbers replaced: ``lstm_4`` reads ``lstm_#``."""
    return _AUTO_NAME.sub(r"\1_#", squash(text))


def locate(blocks: list, locator: str) -> Any:
    """The one code block whose text contains ``locator`` (whitespace collapsed)."""
    want = squash(locator)
    found = [b for b in blocks if b.is_code and want in squash(b.text)]
    if len(found) != 1:
        where = ", ".join(f"line {b.line}" for b in found) or "none"
        raise DataFileError(
            f"documents.json: block locator {locator!r} must match exactly one "
            f"code block, matched {len(found)} ({where})"
        )
    return found[0]


def judge(exp: Expectation, exc: BaseException) -> str | None:
    """None when ``exc`` is the expected failure; otherwise why it is not."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if exp.types and not names & set(exp.types):
        return f"expected {' or '.join(exp.types)}, got {type(exc).__name__}: {_short(str(exc))}"
    got = normalise_message(str(exc))
    if exp.message and normalise_message(exp.message) not in got:
        return (
            f"the message differs from the documented one.\n  expected: "
            f"{normalise_message(exp.message)}\n  got:      {got}"
        )
    missing = [s for s in exp.message_contains if squash(s) not in squash(str(exc))]
    if missing:
        return f"the message does not mention {missing}: {_short(str(exc))}"
    return None


def _short(text: str, width: int = 300) -> str:
    text = squash(text)
    return text if len(text) <= width else text[: width - 3] + "..."
