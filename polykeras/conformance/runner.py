"""Running one document on one backend, block by block, in one namespace."""

from __future__ import annotations

import ast
import contextlib
import io
import linecache
import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import data as data_mod
from . import expectations as ex
from . import namespace
from .document import Document
from .markdown import Block

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"
XFAIL_OK = "xfail-ok"
UNEXPECTED_PASS = "unexpected-pass"
UNEXPECTED = (FAILED, UNEXPECTED_PASS)

MAX_EPOCHS_ENV = "POLYKERAS_MAX_EPOCHS"
_KEEP_OUTPUT = 4000  # characters of a block's captured output kept in the report


@dataclass
class BlockResult:
    block: Block
    backend: str
    status: str
    error_type: str | None = None
    error_message: str | None = None
    error_line: int | None = None  # line in the document
    detail: str = ""  # why skipped, or how an expected failure did not match
    traceback: str = ""
    output: str = ""
    seconds: float = 0.0

    @property
    def unexpected(self) -> bool:
        return self.status in UNEXPECTED

    def summary(self) -> str:
        """One line: the status and, where there is one, the error or the reason."""
        if self.status in (FAILED, XFAIL_OK) and self.error_type:
            where = f" (line {self.error_line})" if self.error_line else ""
            text = f"{self.status}: {self.error_type}{where}: {ex.squash(self.error_message or '')}"
            if self.detail and self.status == FAILED:
                text += f" [{ex.squash(self.detail)}]"
            return text
        if self.detail:
            return f"{self.status}: {ex.squash(self.detail)}"
        return self.status


@dataclass
class DocumentRun:
    document: Document
    backend: str
    device: str | None = None
    results: list[BlockResult] = field(default_factory=list)
    skipped: str | None = None  # the whole run was skipped: why
    models: dict[str, Any] = field(default_factory=dict)  # label -> Model
    data_made: list[tuple] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def on_gpu(self) -> bool:
        return bool(self.device) and not str(self.device).startswith("cpu")


def backend_available(name: str) -> tuple[bool, str, str | None]:
    """(usable, reason if not, device) for a backend selection such as "torch"."""
    import polykeras

    base = name.partition(":")[0]
    infos = {b.name: b for b in polykeras.backends()}
    if base not in infos:
        return False, f"unknown backend (discovered: {', '.join(sorted(infos)) or 'none'})", None
    if not infos[base].usable:
        return False, infos[base].reason, None
    try:
        obj = polykeras.backend.load(name, "the conformance --backend option")
    except Exception as exc:  # a broken backend is a skipped column, with the reason
        return False, f"failed to load: {type(exc).__name__}: {exc}", None
    return True, "", str(getattr(obj, "device", "cpu"))


@contextlib.contextmanager
def settings_environment(settings: dict[str, Any]) -> Iterator[None]:
    """A document's image data format and epoch cap, restored afterwards.  The epoch cap
    leaves a POLYKERAS_MAX_EPOCHS already set by the user alone."""
    from polykeras import config

    saved_format = config._api.get("image_data_format")
    saved_env = os.environ.get(MAX_EPOCHS_ENV)
    try:
        if settings.get("image_data_format"):
            config.set_image_data_format(settings["image_data_format"])
        if saved_env is None:
            os.environ[MAX_EPOCHS_ENV] = str(settings.get("max_epochs", 1))
        yield
    finally:
        config._api["image_data_format"] = saved_format
        if saved_env is None:
            os.environ.pop(MAX_EPOCHS_ENV, None)


@contextlib.contextmanager
def document_environment(settings: dict[str, Any], backend: str) -> Iterator[None]:
    """The backend, settings, fresh auto-names and seeds of one document run.  Afterwards
    the settings, the initializers' generator, Python's and NumPy's global random states,
    the environment variables and the working folder are as they were (the backend's own
    generator stays seeded)."""
    import random

    import numpy as np

    import polykeras
    from polykeras import initializers, utils

    saved = (initializers._state["rng"], random.getstate(), np.random.get_state())
    saved_environ, saved_cwd = dict(os.environ), os.getcwd()
    try:
        with polykeras.use_backend(backend), settings_environment(settings):
            polykeras.backend.clear_session()
            utils.set_random_seed(int(settings.get("seed", 1234)))
            yield
    finally:
        initializers._state["rng"] = saved[0]
        random.setstate(saved[1])
        np.random.set_state(saved[2])
        if dict(os.environ) != saved_environ:  # a block that changed it and failed
            os.environ.clear()
            os.environ.update(saved_environ)
        if os.getcwd() != saved_cwd:
            os.chdir(saved_cwd)


def run_document(doc: Document, backend: str = "numpy", keep_models: bool = True) -> DocumentRun:
    """Run every code block of ``doc`` on ``backend``; return the results."""
    run = DocumentRun(doc, backend)
    usable, reason, device = backend_available(backend)
    if not usable:
        run.skipped = f"backend {backend} not usable: {reason}"
        run.results = [
            BlockResult(b, backend, SKIPPED, detail=run.skipped) for b in doc.code_blocks
        ]
        return run
    run.device = device
    s = doc.settings
    pool = data_mod.DataPool(
        seed=s.get("seed", 1234),
        num_samples=s.get("num_samples", 64),
        int_range=tuple(s.get("int_range", (0, 1000))),
        unknown_dim=s.get("unknown_dim", 8),
    )
    ns = namespace.new_namespace(pool.bindings(list(s.get("data_names", []))))
    bound: dict[str, list[tuple[int, Any]]] = {}
    start = time.perf_counter()
    with document_environment(s, backend), _source_as_run(doc):
        for block in doc.code_blocks:
            result = _run_block(block, ns, doc, backend, run.on_gpu)
            run.results.append(result)
            if keep_models:
                _note_models(ns, block.line, bound)
    run.seconds = time.perf_counter() - start
    run.models = _label_models(bound) if keep_models else {}
    run.data_made = list(pool.log)
    return run


@contextlib.contextmanager
def _source_as_run(doc: Document) -> Iterator[None]:
    """Tracebacks quote the document's lines as run (errata applied), not as written."""
    filename = str(doc.path)
    try:
        lines = doc.path.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        lines = []
    for block in doc.code_blocks:
        for i, text in enumerate(block.text.splitlines(keepends=True)):
            if block.line - 1 + i < len(lines):
                lines[block.line - 1 + i] = text
    saved = linecache.cache.get(filename)
    linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    try:
        yield
    finally:
        if saved is None:
            linecache.cache.pop(filename, None)
        else:
            linecache.cache[filename] = saved


def _skip_reason(block: Block, on_gpu: bool) -> str | None:
    if not block.skip:
        return None
    when, _, reason = block.skip.partition(":")
    if when == "always" or (when == "cpu" and not on_gpu):
        return reason + (" (runs only on a GPU backend)" if when == "cpu" else "")
    return None


def _run_block(block: Block, ns: dict, doc: Document, backend: str, on_gpu: bool) -> BlockResult:
    reason = _skip_reason(block, on_gpu)
    if reason:
        return BlockResult(block, backend, SKIPPED, detail=reason)
    filename = str(doc.path)
    buf = io.StringIO()
    start = time.perf_counter()
    exc: BaseException | None = None
    try:
        code = _compile(block, filename)
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            exec(code, ns)
    except (Exception, SystemExit) as e:  # the block's failure is the result
        exc = e
    result = BlockResult(
        block, backend, PASSED, output=_trim(buf.getvalue()), seconds=time.perf_counter() - start
    )
    if exc is not None:
        result.error_type = type(exc).__name__
        result.error_message = str(exc)
        result.error_line = _error_line(exc, filename)
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # not the runner's frame
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        result.traceback = _trim(text, keep_end=True)
    exp = block.expectation
    if exp is None:
        result.status = FAILED if exc is not None else PASSED
    elif exc is None:
        result.status = UNEXPECTED_PASS
        result.detail = f"expected to fail with {exp.describe()}"
    else:
        mismatch = ex.judge(exp, exc)
        result.status = FAILED if mismatch else XFAIL_OK
        result.detail = mismatch or exp.why
    return result


def _compile(block: Block, filename: str) -> Any:
    """The block compiled so that line numbers are the document's."""
    try:
        tree = ast.parse(block.text, filename)
    except SyntaxError as e:
        if e.lineno is not None:
            e.lineno += block.line - 1
        raise
    ast.increment_lineno(tree, block.line - 1)
    return compile(tree, filename, "exec")


def _error_line(exc: BaseException, filename: str) -> int | None:
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _trim(text: str, keep_end: bool = False) -> str:
    if len(text) <= _KEEP_OUTPUT:
        return text
    cut = len(text) - _KEEP_OUTPUT
    if keep_end:
        return f"[... {cut} characters ...]\n" + text[-_KEEP_OUTPUT:]
    return text[:_KEEP_OUTPUT] + f"\n[... {cut} more characters ...]"


def _note_models(ns: dict, line: int, bound: dict[str, list[tuple[int, Any]]]) -> None:
    from polykeras.models import Model

    for name, value in list(ns.items()):
        if name.startswith("_") or not isinstance(value, Model):
            continue
        history = bound.setdefault(name, [])
        if not history or history[-1][1] is not value:
            history.append((line, value))


def _label_models(bound: dict[str, list[tuple[int, Any]]]) -> dict[str, Any]:
    """Final bindings labelled by name, earlier ones ``name@L<line>``; each object once."""
    labels: dict[str, Any] = {}
    seen: set[int] = set()
    for name, history in bound.items():
        for i, (line, model) in enumerate(history):
            if id(model) in seen:
                continue
            seen.add(id(model))
            labels[name if i == len(history) - 1 else f"{name}@L{line}"] = model
    return labels
