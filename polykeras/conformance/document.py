"""A document ready to run: its blocks classified, errata applied, expectations attached."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import expectations as ex
from . import markdown

DOCUMENT_SUFFIXES = (".md", ".txt")


@dataclass
class Document:
    path: Path
    blocks: list[markdown.Block]
    settings: dict[str, Any]
    prefix: str | None  # the documents.json entry that applies, if any
    errata: list[ex.Erratum] = field(default_factory=list)
    unused_errata: list[ex.Erratum] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def code_blocks(self) -> list[markdown.Block]:
        return [b for b in self.blocks if b.is_code]


def load_document(
    path: str | Path, errata_file: Path = ex.ERRATA_FILE, documents_file: Path = ex.DOCUMENTS_FILE
) -> Document:
    """Read and prepare ``path``.  Raises DataFileError when the data files do not fit it."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    blocks = markdown.split_fences(text)
    errata = ex.errata_for(path.name, errata_file)
    used = set()
    for block in blocks:
        for e in errata:
            if e.wrong in block.text:
                block.text = block.text.replace(e.wrong, e.right)
                block.errata.append(e.describe())
                used.add(e)
        markdown.classify(block)
    cfg = ex.config_for(path.name, documents_file)
    doc = Document(
        path, blocks, cfg.settings, cfg.prefix, errata, [e for e in errata if e not in used]
    )
    _attach_expectations(doc, cfg)
    return doc


def _attach_expectations(doc: Document, cfg: ex.DocumentConfig) -> None:
    for e in cfg.expected_failures:
        ex.locate(doc.blocks, e.block).expectation = e
    # an error printout documents the failure of the code block just before it
    previous = None
    for block in doc.blocks:
        if block.kind == markdown.ERROR_PRINTOUT and previous is not None:
            exp = previous.expectation or ex.Expectation(block="")
            if block.error_type and block.error_type not in exp.types:
                exp.types = [*exp.types, block.error_type]
            if exp.message is None:
                exp.message = block.error_message
            exp.why = exp.why or f"the error printout at line {block.line} shows it fails"
            previous.expectation = exp
        if block.is_code:
            previous = block
    for s in cfg.skips:
        if s.when not in ("always", "cpu"):
            raise ex.DataFileError(
                f"documents.json: skip 'when' must be 'always' or 'cpu', got {s.when!r}"
            )
        target = ex.locate(doc.blocks, s.block)
        target.skip = f"{s.when}:{s.reason}"


def find_documents(paths: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Documents named by ``paths`` (files, or folders: their *.md and *.txt, sorted), and a
    note for each path that does not exist or holds none."""
    found: list[Path] = []
    notes: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            docs = sorted(q for q in p.iterdir() if q.is_file() and q.suffix in DOCUMENT_SUFFIXES)
            if not docs:
                notes.append(f"skip: {p} holds no *.md or *.txt documents")
            found.extend(docs)
        elif p.is_file():
            found.append(p)
        else:
            notes.append(f"skip: {p} does not exist")
    return found, notes
