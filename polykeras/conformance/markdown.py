"""Finding the fenced blocks of a Markdown document and deciding which ones are code.

The parser is line based, after CommonMark: a fence opens with three or more backticks (or
tildes) indented by at most three spaces, with an optional info string that holds no
backtick; it closes with a line of at least as many of the same character and nothing else
but whitespace (or at the end of the document).  So ``## ```Sequential``` ...`` in a
heading is not a fence.

Classification (see the package docstring): ``python``-tagged and Python-looking bare fences
are code; ``>> SomeError: ...`` blocks are error printouts; the rest is not run.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

PYTHON_TAGS = {"python", "py", "python3", "py3"}

CODE = "code"
ERROR_PRINTOUT = "error-printout"
PRINTOUT = "printout"
OTHER = "other"

_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`]*)$")
_RULER = re.compile(r"^\s*([_=\-])\1{9,}\s*$")
_ERROR_LINE = re.compile(r"^>>(?!>)\s*([A-Za-z_][\w.]*)\s*:\s?(.*)$")


@dataclass
class Block:
    """One fenced block: where it is, what it holds and whether it runs."""

    number: int  # 1-based, counting every fenced block of the document
    fence_line: int  # line of the opening fence (1-based)
    line: int  # line of the first line inside the fence
    info: str  # the fence's info string ("python", "" ...)
    text: str  # the content, errata applied
    kind: str = OTHER
    note: str = ""  # why it has this kind
    original: str = ""  # the content as the document has it
    errata: list[str] = field(default_factory=list)  # errata applied to it
    error_type: str | None = None  # error printouts: the documented error
    error_message: str | None = None
    expectation: Any = None  # an expectations.Expectation, for code blocks expected to fail
    skip: str | None = None  # a reason to skip it, from the settings file

    @property
    def is_code(self) -> bool:
        return self.kind == CODE

    @property
    def label(self) -> str:
        return f"L{self.line}"

    def headline(self, width: int = 60) -> str:
        """The first meaningful line of the block, shortened to ``width``."""
        for raw in self.text.splitlines():
            s = raw.strip()
            if s and not s.startswith("#"):
                return s if len(s) <= width else s[: width - 3] + "..."
        return "(empty)"


def split_fences(text: str) -> list[Block]:
    """Every fenced block of ``text``, in order, unclassified."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            body.append(_dedent(lines[j], indent))
            j += 1
        content = "\n".join(body) + ("\n" if body else "")
        blocks.append(
            Block(
                number=len(blocks) + 1,
                fence_line=i + 1,
                line=i + 2,
                info=info,
                text=content,
                original=content,
            )
        )
        i = j + 1
    return blocks


def _dedent(line: str, indent: int) -> str:
    n = 0
    while n < indent and n < len(line) and line[n] == " ":
        n += 1
    return line[n:]


def classify(block: Block) -> Block:
    """Set ``block.kind`` and ``block.note`` by the rules in the package docstring."""
    lang = block.info.split()[0].lower() if block.info else ""
    first = next((s.strip() for s in block.text.splitlines() if s.strip()), "")
    m = _ERROR_LINE.match(first)
    if m and (lang in PYTHON_TAGS or not lang):
        rest = block.text.strip().splitlines()[1:]
        block.kind, block.note = ERROR_PRINTOUT, "error printout (starts with '>> Error:')"
        block.error_type = m.group(1).rsplit(".", 1)[-1]
        block.error_message = " ".join([m.group(2)] + [s.strip() for s in rest]).strip()
        return block
    if lang in PYTHON_TAGS:
        block.kind, block.note = CODE, f"fence tagged {lang!r}"
        return block
    if lang:
        block.kind, block.note = OTHER, f"fence tagged {lang!r}: not Python"
        return block
    if any(_RULER.match(s) for s in block.text.splitlines()):
        block.kind, block.note = PRINTOUT, "bare fence with ruler lines: a printout"
        return block
    try:
        tree = ast.parse(block.text)
    except SyntaxError:
        block.kind, block.note = PRINTOUT, "bare fence that does not parse as Python"
        return block
    if not any(_is_meaningful(stmt) for stmt in tree.body):
        block.kind, block.note = PRINTOUT, "bare fence holding only names or constants"
        return block
    block.kind, block.note = CODE, "bare fence whose content parses as Python"
    return block


def _is_meaningful(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Expr):
        return not isinstance(stmt.value, (ast.Name, ast.Constant))
    if isinstance(stmt, ast.AnnAssign):  # ``Model: "model_1"`` in a printout parses so
        return stmt.value is not None
    return True


def parse(text: str) -> list[Block]:
    """Split and classify (errata are applied by the caller, between the two)."""
    return [classify(b) for b in split_fences(text)]
