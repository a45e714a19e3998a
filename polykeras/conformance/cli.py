"""``python -m polykeras conformance PATH... [--backend NAME|all] [--report DIR]``.

Runs the documents (files, or folders: their *.md and *.txt) on the backends, checks that
the models agree across backends, prints the matrix and writes the report.  Exit status:

- 0: every result is as expected.
- 1: a result is not: a block failing unexpectedly or passing when it should fail, a
  disagreement, a document or data file that cannot be read; or a backend plugin failed to
  load (listed in the report's notes).
- 2: usage error: an unknown backend name, or none of the paths holds a document (a
  mistyped path).  Nothing is run and the last report is left as it was.
- 3: nothing could run: no backend plugin is installed or every one failed to load (e.g.
  ``python`` run inside a checkout that was never ``pip install -e .``-ed), or no selected
  backend is usable here.  The last report is left as it was.

A path that does not exist, or a folder without documents, is a note in the report when
other paths hold documents; a selected backend that is not usable here is a skipped
column when another selected backend is usable.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from . import agreement as ag
from . import report as rp
from .document import find_documents, load_document
from .expectations import DataFileError
from .runner import backend_available, run_document


def selected_backends(spec: str | None) -> list[str]:
    """Backend names from ``--backend``: a name, a comma list, ``all``, or none (the backend
    selected by the usual precedence: POLYKERAS_BACKEND, the config file, numpy)."""
    import polykeras
    from polykeras import config

    if spec is None or not spec.strip():
        return [config.requested_backend()[0]]
    if spec.strip() == "all":
        return [b.name for b in polykeras.backends()]
    return [s.strip() for s in spec.split(",") if s.strip()]


USAGE_ERROR = 2
NOTHING_RAN = 3


def _no_plugins_hint(plugin_errors: list[Any]) -> str:
    lines = ["conformance: no backend could be discovered, so nothing was run"]
    lines += [f"  plugin {e.plugin} failed to load: {e.error}" for e in plugin_errors]
    lines.append(
        "  (from a polykeras checkout, pip install -e . installs the backend plugins; "
        "then run `python -m polykeras backends`)"
    )
    return "\n".join(lines)


def main(args: Any) -> int:
    import polykeras
    from polykeras import plugins

    spec = getattr(args, "backend", None)
    plugin_errors = plugins.plugin_errors()
    known = {b.name for b in polykeras.backends()}
    if not known:
        print(_no_plugins_hint(plugin_errors), file=sys.stderr)
        return NOTHING_RAN
    try:
        names = selected_backends(spec)
    except Exception as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return USAGE_ERROR
    source = "command-line option --backend" if spec and spec.strip() else None
    if source is None:
        from polykeras import config

        source = config.requested_backend()[1]
    unknown = [m for m in (plugins.unknown_backend_message(n, source) for n in names) if m]
    if unknown:
        for message in unknown:
            print(f"conformance: {message}", file=sys.stderr)
        return USAGE_ERROR
    paths, notes = find_documents(list(args.paths))
    if not paths:
        for note in notes:
            print(f"conformance: {note}", file=sys.stderr)
        print(
            "conformance: no document found in "
            + ", ".join(map(str, args.paths))
            + "; nothing was run and the last report was left as it was",
            file=sys.stderr,
        )
        return USAGE_ERROR
    columns = []
    for n in names:
        ok, reason, device = backend_available(n)
        columns.append(rp.BackendColumn(n, ok, reason, device))
    usable = [c.name for c in columns if c.usable]
    if not usable:
        for c in columns:
            print(f"conformance: backend {c.name} is not usable here: {c.reason}", file=sys.stderr)
        print(
            "conformance: no selected backend is usable here; nothing was run and the last "
            "report was left as it was",
            file=sys.stderr,
        )
        return NOTHING_RAN
    reference = "numpy" if "numpy" in usable else usable[0]
    notes = notes + [f"plugin {e.plugin} failed to load: {e.error}" for e in plugin_errors]
    matrix = rp.Matrix(columns, reference, notes=notes)
    errors = []
    for path in paths:
        try:
            doc = load_document(path)
        except (DataFileError, OSError, UnicodeDecodeError) as exc:
            errors.append(f"error: {path}: {exc}")
            continue
        entry = rp.DocumentReport(doc)
        for c in columns:
            start = time.perf_counter()
            print(f"conformance: {doc.name} on {c.name} ...", file=sys.stderr, flush=True)
            entry.runs[c.name] = run_document(doc, c.name, keep_models=len(usable) > 1)
            print(
                f"conformance: {doc.name} on {c.name} done in {time.perf_counter() - start:.1f}s",
                file=sys.stderr,
                flush=True,
            )
        if reference is not None and len(usable) > 1:
            start = time.perf_counter()
            for other in usable:
                if other != reference:
                    entry.agreement += ag.compare_runs(entry.runs[reference], entry.runs[other])
            print(
                f"conformance: {doc.name}: agreement checked in {time.perf_counter() - start:.1f}s",
                file=sys.stderr,
                flush=True,
            )
        for run in entry.runs.values():
            run.models = {}  # let the document's models go before the next one runs
        matrix.documents.append(entry)
    matrix.notes.extend(errors)
    print(rp.to_text(matrix))
    md, js = rp.write(matrix, getattr(args, "report", None))
    print(f"report: {md}\nreport: {js}")
    return 1 if (matrix.unexpected() or errors or plugin_errors) else 0
