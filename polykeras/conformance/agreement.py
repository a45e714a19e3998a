"""Cross-backend agreement: the models a document builds give the same numbers everywhere.

For a model built on the reference backend and the same model (same label) built on
another backend by the same document:

1. structure: the same weight shapes and output shapes;
2. predict: with the reference's weights in both, the same outputs on a seeded batch of
   ``agreement_batch`` samples (float32: rtol 1e-4, atol 1e-5);
3. training step: both compiled afresh with optimizer ``"sgd"`` and the model's own loss
   (as the document compiled it; ``"mse"`` when it was never compiled or that loss does
   not compile), both given the reference's weights again, one ``train_on_batch`` on the
   same seeded batch: the same loss and the same weights after.

A model with the same architecture as one already compared (the same config apart from
its name, the same weight shapes: a model rebuilt by ``from_config`` or ``model_from_json``)
is not compared again; its result says which label it was compared under.

Heavy models (over ``heavy_params`` parameters or ``heavy_input_values`` input values per
sample) are compared only when both backends run on a GPU; when only the other backend
does, it runs them alone (outputs of the right shape, finite); on CPUs the numeric checks
are skipped with the reason.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import data as data_mod
from .runner import DocumentRun, settings_environment

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class AgreementResult:
    document: str
    model: str  # the label: variable name, or name@L<line> for an earlier binding
    reference: str
    backend: str
    status: str
    detail: str = ""
    checks: dict[str, str] = field(default_factory=dict)  # check -> "ok" / what differed
    params: int | None = None

    @property
    def unexpected(self) -> bool:
        return self.status == FAILED


def compare_runs(ref: DocumentRun, other: DocumentRun) -> list[AgreementResult]:
    """One result per model label either run built."""
    doc = ref.document
    out = []
    compared: dict[str, str] = {}  # architecture signature -> label compared
    for label in list(ref.models) + [k for k in other.models if k not in ref.models]:
        res = AgreementResult(doc.name, label, ref.backend, other.backend, SKIPPED)
        a, b = ref.models.get(label), other.models.get(label)
        if a is None or b is None:
            missing = ref.backend if a is None else other.backend
            res.detail = f"not built on {missing} (see that backend's block results)"
        elif _signature(a) in compared:
            res.detail = (
                f"the same architecture as {compared[_signature(a)]} (e.g. rebuilt "
                "from its config): compared there"
            )
        else:
            compared[_signature(a)] = label
            try:
                _compare(a, b, ref, other, res)
            except Exception as exc:  # a crash in a check is a disagreement, with the error
                res.status = FAILED
                res.detail = f"{type(exc).__name__}: {exc}"
        out.append(res)
    return out


def _signature(model: Any) -> str:
    """The architecture (config without the model's own name) and the weight shapes."""
    try:
        cfg = dict(model.get_config())
    except Exception:  # a model that cannot describe itself is compared on its own
        return f"id:{id(model)}"
    cfg.pop("name", None)
    shapes = [tuple(w.shape) for w in model.weights]
    return type(model).__name__ + json.dumps(cfg, sort_keys=True, default=str) + repr(shapes)


def _compare(a: Any, b: Any, ref: DocumentRun, other: DocumentRun, res: AgreementResult) -> None:

    s = ref.document.settings
    res.params = int(a.count_params())
    shapes_a = [tuple(w.shape) for w in a.weights]
    shapes_b = [tuple(w.shape) for w in b.weights]
    outs_a, outs_b = _output_shapes(a), _output_shapes(b)
    if shapes_a != shapes_b or outs_a != outs_b:
        res.status = FAILED
        res.checks["structure"] = (
            f"weights {shapes_a} / outputs {outs_a} on {ref.backend}, "
            f"weights {shapes_b} / outputs {outs_b} on {other.backend}"
        )
        res.detail = "the model differs in structure between the backends"
        return
    res.checks["structure"] = "ok"
    heavy = _heavy_reason(a, s)
    if heavy and not (ref.on_gpu and other.on_gpu):
        if other.on_gpu:
            _gpu_only_run(b, other, s, res, heavy)
            return
        res.detail = f"{heavy}: numeric checks run only on GPU backends"
        return

    rtol, atol = float(s.get("rtol", 1e-4)), float(s.get("atol", 1e-5))
    seed = [int(s.get("seed", 1234)), zlib.crc32(res.model.encode())]
    batch = int(s.get("agreement_batch", 2))
    x = _inputs(a, batch, seed, s)
    w0 = a.get_weights()
    with settings_environment(s):
        ya = _run(ref.backend, lambda: (a.set_weights(w0), a.predict(x))[1])
        yb = _run(other.backend, lambda: (b.set_weights(w0), b.predict(x))[1])
        res.checks["predict"] = _close(ya, yb, rtol, atol)
        if not hasattr(a, "train_on_batch") or not hasattr(a, "compile"):
            res.checks["train step"] = "skipped: Model has no compile/train_on_batch yet"
        else:
            loss = _fresh_compile(a, b, ref.backend, other.backend)
            y = _targets(a, loss, batch, seed, s)
            la = _run(ref.backend, lambda: (a.set_weights(w0), a.train_on_batch(x, y))[1])
            lb = _run(other.backend, lambda: (b.set_weights(w0), b.train_on_batch(x, y))[1])
            res.checks[f"train step loss ({_loss_name(loss)}, sgd)"] = _close(la, lb, rtol, atol)
            wa = _run(ref.backend, a.get_weights)
            wb = _run(other.backend, b.get_weights)
            res.checks["weights after the step"] = _close(wa, wb, rtol, atol)
        a.set_weights(w0)
    bad = [k for k, v in res.checks.items() if v != "ok" and not v.startswith("skipped")]
    res.status = FAILED if bad else PASSED
    res.detail = "; ".join(f"{k}: {res.checks[k]}" for k in bad)


def _run(backend: str, fn: Any) -> Any:
    import polykeras

    with polykeras.use_backend(backend):
        return fn()


def _output_shapes(model: Any) -> list[tuple]:
    return [tuple(t.shape) for t in model.outputs]


def _heavy_reason(model: Any, s: dict) -> str | None:
    params = int(model.count_params())
    unknown = int(s.get("unknown_dim", 8))
    values = sum(math.prod(unknown if d is None else d for d in t.shape[1:]) for t in model.inputs)
    limit_p, limit_v = int(s.get("heavy_params", 10**7)), int(s.get("heavy_input_values", 10**6))
    if params > limit_p or values > limit_v:
        return (
            f"heavy model ({params:,} parameters, {values:,} input values per sample; "
            f"limits {limit_p:,} / {limit_v:,})"
        )
    return None


def _inputs(model: Any, batch: int, seed: list[int], s: dict) -> list[np.ndarray]:
    from polykeras.training.data import input_specs

    rng = np.random.default_rng(seed)
    out = []
    for spec in input_specs(model):
        spec.num_samples = batch
        out.append(
            data_mod.synthesize(
                spec, rng, batch, tuple(s.get("int_range", (0, 1000))), int(s.get("unknown_dim", 8))
            )
        )
    return out


def _loss_for(loss: Any, name: str, index: int) -> Any:
    if isinstance(loss, dict):
        return loss.get(name)
    if isinstance(loss, (list, tuple)):
        return loss[index] if index < len(loss) else None
    return loss


def _loss_name(loss: Any) -> str:
    if isinstance(loss, (dict, list, tuple)):
        return "per-output losses"
    return loss if isinstance(loss, str) else getattr(loss, "__name__", type(loss).__name__)


def _targets(model: Any, loss: Any, batch: int, seed: list[int], s: dict) -> list[np.ndarray]:
    from polykeras.training.data import DataSpec

    rng = np.random.default_rng(seed + [1])
    out = []
    for i, (t, name) in enumerate(zip(model.outputs, model.output_names)):
        layer = t._keras_history[0] if t._keras_history else None  # None: a subclassed model
        act = getattr(layer, "activation", None)
        hints = {"loss": _loss_for(loss, name, i), "activation": getattr(act, "__name__", act)}
        spec = DataSpec("target", name, tuple(t.shape), t.dtype, batch, hints)
        out.append(data_mod.synthesize(spec, rng, batch, unknown_dim=int(s.get("unknown_dim", 8))))
    return out


def _fresh_compile(a: Any, b: Any, ref_backend: str, other_backend: str) -> Any:
    """Compile both with sgd and the document's loss (or mse); return the loss used."""
    loss = getattr(a, "loss", None) or "mse"
    try:
        _run(ref_backend, lambda: a.compile(optimizer="sgd", loss=loss))
    except Exception:
        loss = "mse"
        _run(ref_backend, lambda: a.compile(optimizer="sgd", loss=loss))
    _run(other_backend, lambda: b.compile(optimizer="sgd", loss=loss))
    return loss


def _flat(value: Any) -> list[np.ndarray]:
    if isinstance(value, (list, tuple)):
        return [np.asarray(v, dtype=np.float64) for v in value]
    return [np.asarray(value, dtype=np.float64)]


def _close(a: Any, b: Any, rtol: float, atol: float) -> str:
    fa, fb = _flat(a), _flat(b)
    if len(fa) != len(fb):
        return f"{len(fa)} arrays against {len(fb)}"
    for i, (x, y) in enumerate(zip(fa, fb)):
        if x.shape != y.shape:
            return f"array {i}: shape {x.shape} against {y.shape}"
        if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
            return f"array {i}: not finite"
        if not np.allclose(x, y, rtol=rtol, atol=atol):
            diff = float(np.max(np.abs(x - y) - rtol * np.abs(y)))
            return f"array {i} differs: max |a-b| - rtol*|b| = {diff:.3g} > atol {atol:g}"
    return "ok"


def _gpu_only_run(model: Any, run: DocumentRun, s: dict, res: AgreementResult, heavy: str) -> None:
    x = _inputs(model, 1, [int(s.get("seed", 1234))], s)
    with settings_environment(s):
        y = _run(run.backend, lambda: model.predict(x))
    ys = _flat(y)
    want = [(1,) + shape[1:] for shape in _output_shapes(model)]
    got = [tuple(v.shape) for v in ys]
    ok = got == want and all(np.all(np.isfinite(v)) for v in ys)
    res.checks["predict on the GPU"] = "ok" if ok else f"outputs {got} (want {want}) or not finite"
    res.status = PASSED if ok else FAILED
    res.detail = f"{heavy}: ran on {run.backend} ({run.device}) only; the reference runs on cpu"
