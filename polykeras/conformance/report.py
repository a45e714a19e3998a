"""The matrix as Markdown, JSON and plain text, and where the report files go."""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import runner as rn
from .agreement import AgreementResult
from .document import Document

REPORT_DIR_ENV = "POLYKERAS_REPORT_DIR"
DEFAULT_REPORT_DIR = Path("reports") / "conformance"

SHORT = {
    rn.PASSED: "pass",
    rn.FAILED: "FAIL",
    rn.SKIPPED: "skip",
    rn.XFAIL_OK: "xfail ok",
    rn.UNEXPECTED_PASS: "XPASS",
}


@dataclass
class BackendColumn:
    name: str
    usable: bool
    reason: str = ""
    device: str | None = None


@dataclass
class DocumentReport:
    document: Document
    runs: dict[str, rn.DocumentRun] = field(default_factory=dict)  # backend -> run
    agreement: list[AgreementResult] = field(default_factory=list)


@dataclass
class Matrix:
    backends: list[BackendColumn]
    reference: str | None
    documents: list[DocumentReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # paths skipped, and why

    def unexpected(self) -> list[str]:
        """One line per unexpected result (unexpected failure or pass, disagreement)."""
        out = []
        for d in self.documents:
            for backend, run in d.runs.items():
                for r in run.results:
                    if r.unexpected:
                        out.append(
                            f"{d.document.name} line {r.block.line} on {backend}: {r.summary()}"
                        )
            for a in d.agreement:
                if a.unexpected:
                    out.append(
                        f"{d.document.name} model {a.model}: {a.backend} disagrees "
                        f"with {a.reference}: {a.detail}"
                    )
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        blocks: dict[str, int] = {}
        agree: dict[str, int] = {}
        for d in self.documents:
            for run in d.runs.values():
                for r in run.results:
                    blocks[r.status] = blocks.get(r.status, 0) + 1
            for a in d.agreement:
                agree[a.status] = agree.get(a.status, 0) + 1
        return {"blocks": blocks, "agreement": agree}


def report_dir(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(REPORT_DIR_ENV)
    return Path(env) if env else Path.cwd() / DEFAULT_REPORT_DIR


def write(matrix: Matrix, folder: str | Path | None = None) -> tuple[Path, Path]:
    """Write conformance.md and conformance.json into the report folder; return both paths."""
    out = report_dir(folder)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "conformance.md", out / "conformance.json"
    _write_atomic(md, to_markdown(matrix))
    _write_atomic(js, json.dumps(to_json(matrix), indent=2, ensure_ascii=False) + "\n")
    return md, js


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- JSON ----------------------------------------------------------------------------------------
def _result_json(r: rn.BlockResult) -> dict[str, Any]:
    return {
        "status": r.status,
        "error_type": r.error_type,
        "error_message": r.error_message,
        "error_line": r.error_line,
        "detail": r.detail,
        "seconds": round(r.seconds, 3),
        "output": r.output,
        "traceback": r.traceback,
    }


def to_json(m: Matrix) -> dict[str, Any]:
    docs = []
    for d in m.documents:
        doc = d.document
        blocks = []
        for b in doc.blocks:
            entry = {
                "number": b.number,
                "line": b.line,
                "kind": b.kind,
                "note": b.note,
                "headline": b.headline(),
                "source": b.text,
                "errata": b.errata,
                "expectation": b.expectation.describe() if b.expectation else None,
                "skip": b.skip,
            }
            if b.is_code:
                entry["results"] = {
                    be: _result_json(r)
                    for be, run in d.runs.items()
                    for r in run.results
                    if r.block is b
                }
            blocks.append(entry)
        docs.append(
            {
                "path": str(doc.path),
                "name": doc.name,
                "settings_entry": doc.prefix,
                "settings": doc.settings,
                "errata": [e.describe() for e in doc.errata],
                "unused_errata": [e.describe() for e in doc.unused_errata],
                "runs": {
                    be: {
                        "skipped": run.skipped,
                        "device": run.device,
                        "seconds": round(run.seconds, 3),
                        "data_made": [list(map(str, x)) for x in run.data_made],
                    }
                    for be, run in d.runs.items()
                },
                "blocks": blocks,
                "agreement": [
                    {
                        "model": a.model,
                        "reference": a.reference,
                        "backend": a.backend,
                        "status": a.status,
                        "detail": a.detail,
                        "checks": a.checks,
                        "params": a.params,
                    }
                    for a in d.agreement
                ],
            }
        )
    unexpected = m.unexpected()
    return {
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "backends": [vars(c) for c in m.backends],
        "reference": m.reference,
        "notes": m.notes,
        "documents": docs,
        "summary": {**m.counts(), "unexpected": unexpected, "ok": not unexpected},
    }


# -- Markdown ------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def to_markdown(m: Matrix) -> str:
    names = [c.name for c in m.backends]
    lines = [
        "# Conformance matrix",
        "",
        f"Generated {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC by "
        "`python -m polykeras conformance`. Reference backend for agreement: "
        f"{m.reference or 'none'}.",
        "",
        "## Backends",
        "",
        "| backend | usable | device or reason |",
        "|---|---|---|",
    ]
    for c in m.backends:
        lines.append(
            f"| {c.name} | {'yes' if c.usable else 'no'} | "
            f"{_cell(c.device or '' if c.usable else c.reason)} |"
        )
    for note in m.notes:
        lines += ["", f"- {note}"]
    for d in m.documents:
        doc = d.document
        lines += [
            "",
            f"## {doc.name}",
            "",
            f"Settings ({doc.prefix or 'defaults only'}): image_data_format="
            f"{doc.settings.get('image_data_format') or 'as configured'}, max_epochs="
            f"{doc.settings.get('max_epochs')}, samples={doc.settings.get('num_samples')}."
            f" Errata applied: {len(doc.errata) - len(doc.unused_errata)}"
            + (
                f"; unused: {[e.describe() for e in doc.unused_errata]}"
                if doc.unused_errata
                else ""
            )
            + ".",
            "",
            "| # | line | block | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names),
        ]
        for b in doc.code_blocks:
            cells = []
            for n in names:
                r = _result_of(d, n, b)
                cells.append(SHORT.get(r.status, r.status) if r else "")
            mark = " (expected to fail)" if b.expectation else ""
            mark += f" (errata: {len(b.errata)})" if b.errata else ""
            lines.append(
                f"| {b.number} | {b.line} | {_cell(_code(b.headline(50)))}{mark} | "
                + " | ".join(cells)
                + " |"
            )
        others = [b for b in doc.blocks if not b.is_code]
        if others:
            lines += [
                "",
                "Not run: "
                + "; ".join(f"block {b.number} (line {b.line}): {b.note}" for b in others)
                + ".",
            ]
        details = []
        for n in names:
            run = d.runs.get(n)
            if run is None:
                continue
            if run.skipped:
                details.append(f"- **{n}**: skipped: {run.skipped}")
                continue
            for r in run.results:
                if r.status != rn.PASSED:
                    details.append(f"- line {r.block.line} on **{n}**: {_cell(r.summary())}")
        if details:
            lines += ["", "### Details", "", *details]
        if d.agreement:
            lines += [
                "",
                f"### Agreement with {d.agreement[0].reference}",
                "",
                "| model | parameters | backend | status | checks |",
                "|---|---|---|---|---|",
            ]
            for a in d.agreement:
                checks = "; ".join(f"{k}: {v}" for k, v in a.checks.items())
                text = "; ".join(x for x in (checks, a.detail) if x)
                params = f"{a.params:,}" if a.params is not None else ""
                lines.append(f"| {a.model} | {params} | {a.backend} | {a.status} | {_cell(text)} |")
    counts = m.counts()
    unexpected = m.unexpected()
    lines += [
        "",
        "## Summary",
        "",
        f"Blocks: {_fmt_counts(counts['blocks'])}. Agreement: {_fmt_counts(counts['agreement'])}.",
        "",
        f"Unexpected results: {len(unexpected)}.",
    ]
    lines += [f"- {_cell(u)}" for u in unexpected]
    return "\n".join(lines) + "\n"


def _fmt_counts(c: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(c.items())) or "none"


def _result_of(d: DocumentReport, backend: str, block: Any) -> rn.BlockResult | None:
    run = d.runs.get(backend)
    if run is None:
        return None
    return next((r for r in run.results if r.block is block), None)


# -- plain text (what the CLI prints) -----------------------------------------------------------
def to_text(m: Matrix) -> str:
    names = [c.name for c in m.backends]
    width = max([9] + [len(n) for n in names])
    out: list[str] = []
    for c in m.backends:
        if not c.usable:
            out.append(f"backend {c.name}: skipped ({c.reason})")
    out += m.notes
    for d in m.documents:
        doc = d.document
        out += ["", doc.name]
        out.append(
            f"  {'#':>3} {'line':>5}  " + "  ".join(f"{n:<{width}}" for n in names) + "  block"
        )
        if not doc.code_blocks:
            out.append("    (no code blocks)")
        for b in doc.code_blocks:
            cells = []
            for n in names:
                r = _result_of(d, n, b)
                cells.append(f"{SHORT.get(r.status, r.status) if r else '':<{width}}")
            out.append(f"  {b.number:>3} {b.line:>5}  " + "  ".join(cells) + "  " + b.headline(50))
        for n in names:
            run = d.runs.get(n)
            if run is None or run.skipped:
                continue
            for r in run.results:
                if r.status not in (rn.PASSED,):
                    out.append(f"    line {r.block.line} on {n}: {r.summary()[:400]}")
        for a in d.agreement:
            text = a.detail or "; ".join(f"{k}: {v}" for k, v in a.checks.items())
            out.append(
                f"    agreement {a.model} {a.backend} vs {a.reference}: {a.status}"
                + (f" ({text[:300]})" if text else "")
            )
    counts = m.counts()
    unexpected = m.unexpected()
    out += [
        "",
        f"blocks: {_fmt_counts(counts['blocks'])}; agreement: "
        f"{_fmt_counts(counts['agreement'])}; unexpected: {len(unexpected)}",
    ]
    return "\n".join(out)
