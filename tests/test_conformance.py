"""The conformance matrix under pytest: every code block of docs/ and of the guides in
../shared/seeds is a test, run on the backend POLYKERAS_BACKEND selects (default numpy).

A document runs once (its blocks share one namespace); each block's test reports that
block's result.  The cross-backend agreement checks run in the CLI
(``python -m polykeras conformance ... --backend all``), not here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polykeras.conformance import runner as rn
from polykeras.conformance.document import find_documents, load_document
from polykeras.conformance.expectations import DataFileError

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"docs": ROOT / "docs", "seeds": ROOT.parent / "shared" / "seeds"}
BACKEND = os.environ.get("POLYKERAS_BACKEND", "").strip() or "numpy"


def _params() -> list:
    params = []
    for key, folder in FOLDERS.items():
        if not folder.is_dir():
            params.append(
                pytest.param(
                    None,
                    None,
                    id=f"{key}-absent",
                    marks=pytest.mark.skip(reason=f"{folder} does not exist"),
                )
            )
            continue
        paths, _ = find_documents([folder])
        if not paths:
            params.append(
                pytest.param(
                    None,
                    None,
                    id=f"{key}-empty",
                    marks=pytest.mark.skip(reason=f"{folder} holds no *.md or *.txt documents"),
                )
            )
        for path in paths:
            try:
                doc = load_document(path)
            except (DataFileError, OSError, UnicodeDecodeError) as exc:
                params.append(pytest.param(path, str(exc), id=f"{key}/{path.name}:load"))
                continue
            for block in doc.code_blocks:
                params.append(
                    pytest.param(path, block.number, id=f"{key}/{path.name}:L{block.line}")
                )
    return params


_runs: dict[Path, rn.DocumentRun] = {}


def _run(path: Path) -> rn.DocumentRun:
    if path not in _runs:
        _runs[path] = rn.run_document(load_document(path), BACKEND, keep_models=False)
    return _runs[path]


def _numbered(text: str, first: int) -> str:
    return "\n".join(f"{first + i:5d}  {line}" for i, line in enumerate(text.splitlines()))


def _message(doc_name: str, r: rn.BlockResult) -> str:
    b = r.block
    parts = [
        f"{doc_name}, block {b.number} starting at line {b.line}, on {r.backend}: {r.summary()}"
    ]
    if b.expectation is not None:
        parts.append(f"expected: {b.expectation.describe()}")
    if b.errata:
        parts.append("errata applied: " + "; ".join(b.errata))
    parts.append(f"--- block source ---\n{_numbered(b.text, b.line)}")
    if r.traceback:
        parts.append(f"--- traceback ---\n{r.traceback}")
    if r.output.strip():
        parts.append(f"--- output ---\n{r.output}")
    return "\n\n".join(parts)


@pytest.mark.parametrize("path, number", _params())
def test_document_block(path: Path, number) -> None:
    if isinstance(number, str):  # the data files do not fit the document
        pytest.fail(f"{path.name}: {number}", pytrace=False)
    run = _run(path)
    if run.skipped:
        pytest.skip(run.skipped)
    result = next(r for r in run.results if r.block.number == number)
    if result.status == rn.SKIPPED:
        pytest.skip(result.detail)
    if result.unexpected:
        pytest.fail(_message(path.name, result), pytrace=False)
