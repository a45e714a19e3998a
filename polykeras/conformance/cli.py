"""``python -m polykeras conformance PATH... [--backend NAME|all] [--report DIR]``.

Runs the documents (files, or folders: their *.md and *.txt) on the backends, checks that
the models agree across backends, prints the matrix and writes the report.  Exit status:
0 when every result is as expected, 1 when any is not (a block failing unexpectedly or
passing when it should fail, a disagreement, a data file that does not fit a document),
2 for a usage error (an unknown backend name).  Paths that do not exist and backends that
are not usable here are reported as skipped and do not fail the run.
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


def main(args: Any) -> int:
    import polykeras

    try:
        names = selected_backends(getattr(args, "backend", None))
    except Exception as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    known = {b.name for b in polykeras.backends()}
    unknown = [n for n in names if n.partition(":")[0] not in known]
    if unknown:
        print(f"conformance: unknown backend(s) {', '.join(unknown)}; discovered: "
              f"{', '.join(sorted(known))}", file=sys.stderr)
        return 2
    columns = []
    for n in names:
        usable, reason, device = backend_available(n)
        columns.append(rp.BackendColumn(n, usable, reason, device))
    usable = [c.name for c in columns if c.usable]
    reference = "numpy" if "numpy" in usable else (usable[0] if usable else None)
    paths, notes = find_documents(list(args.paths))
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
            print(f"conformance: {doc.name} on {c.name} done in "
                  f"{time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
        if reference is not None and len(usable) > 1:
            start = time.perf_counter()
            for other in usable:
                if other != reference:
                    entry.agreement += ag.compare_runs(entry.runs[reference], entry.runs[other])
            print(f"conformance: {doc.name}: agreement checked in "
                  f"{time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
        for run in entry.runs.values():
            run.models = {}  # let the document's models go before the next one runs
        matrix.documents.append(entry)
    matrix.notes.extend(errors)
    if not paths:
        matrix.notes.append("no documents to run")
    print(rp.to_text(matrix))
    md, js = rp.write(matrix, getattr(args, "report", None))
    print(f"report: {md}\nreport: {js}")
    return 1 if (matrix.unexpected() or errors) else 0
