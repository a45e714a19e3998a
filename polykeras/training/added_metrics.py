"""``add_metric`` (tf.keras 2): values logged by layers inside ``call``, and tensors a model
built from ``Input`` tensors logs (``model.add_metric(tensor, name=...)``).

Each name gets one :class:`~polykeras.training.metric_classes.Mean`, held by the model's
compile (``model._compiled.added_metrics``) beside the compiled metric objects: reset at
the start of every epoch and evaluation, updated with the values of each batch, and
logged by its running result (so an epoch's value is the mean of the values given during
the epoch, each value weighted by its number of samples, a scalar counting once), after
the compiled losses and metrics, under its name (``val_<name>`` for validation).  Under
data parallelism their state is summed over ranks with the compiled metric objects'
(``trainer._shared_metrics``), so the logged results are global.

The names must be known before the loops start (the progress bar, ``History`` and
``metrics_names`` list them): a model's symbolic metrics name themselves, and a model
holding code of its own that names ``add_metric`` (a user's layer, a subclassed model) is
run once in inference mode on the first two samples of the data, at the start of
``fit``/``evaluate``/``*_on_batch`` (once per compile), to learn the names its layers give
``add_metric``.  In a ``train_step``/``test_step`` of the model's own there are no
columns to fix: each value updates its name's ``Mean`` at once (:func:`live`), and
``model.metrics`` lists those ``Mean`` objects for the step to report.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any

from ..engine import tracking
from ..engine.base_layer import collect_added_metrics
from ..engine.subclassing import defined_outside


def _user_code_mentions_add_metric(cls: type) -> bool:
    """Whether a class written outside polykeras (or one of its bases) names
    ``add_metric`` in its source; True where the source cannot be read."""
    for klass in cls.__mro__:
        if klass is object or klass.__module__.split(".")[0] == "polykeras":
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            return True
        if "add_metric" in source:
            return True
    return False


def may_add_metrics(model: Any) -> bool:
    """Whether running the model may call ``add_metric``: it holds a layer whose ``call``
    is a user's (or is a subclassed model) and whose class names ``add_metric``, or a
    nested model with symbolic metrics.  Other models are never run to find out."""
    queue = [model]
    seen: set[int] = set()
    while queue:
        layer = queue.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        cls = type(layer)
        if defined_outside(cls, "call") and _user_code_mentions_add_metric(cls):
            return True
        if layer is not model and layer.__dict__.get("_symbolic_metrics"):
            return True
        if getattr(layer, "_is_graph_network", False):
            queue.extend(layer.layers)
        queue.extend(tracking.sublayers(layer))
    return False


def probe_names(model: Any, inputs: list) -> list[str]:
    """The names given to ``add_metric`` while the model runs once on ``inputs`` (in
    inference mode), in the order first given."""
    with collect_added_metrics() as given:
        model._run_graph_masked(list(inputs), training=False)
    names: list[str] = []
    for name, _value in given:
        if name not in names:
            names.append(name)
    return names


def prepare(model: Any, c: Any, first_inputs: Callable[[], list] | None, where: str) -> None:
    """Give the compile ``c`` one ``Mean`` per ``add_metric`` name (once per compile, again
    when the model's symbolic metrics change): appended to ``c.names`` as metric objects
    whose running result is logged.  ``first_inputs`` gives a few samples of the data
    (backend arrays, one per input) to learn the names layers give in ``call``."""
    if not c.resolved:
        c.resolve(model)
    symbolic = [name for _t, name in model.__dict__.get("_symbolic_metrics", ())]
    state = c._added_state
    if state is not None and state[0] == symbolic:
        return
    if state is None:
        base = (list(c.names), list(c.stateful_columns), list(c.metric_objects()))
    else:
        base = state[1]
    names: list[str] = []
    if first_inputs is not None and may_add_metrics(model):
        names = probe_names(model, first_inputs())  # the layers' names, then the model's
    names += [n for n in symbolic if n not in names]
    clash = [n for n in names if n in base[0]]
    if clash:
        raise ValueError(
            f"{where}: model {model.name} logs a metric named {clash[0]!r} with add_metric, "
            f"and compile's losses and metrics already log that name ({base[0]}); give "
            "add_metric another name"
        )
    if names and c.jit is not None:
        raise NotImplementedError(
            f"{where}: model {model.name} logs metrics with add_metric ({', '.join(names)}), "
            "which compile(jit_compile=True) does not run yet; compile with "
            "jit_compile=False (or 'auto')"
        )
    from .metric_classes import Mean

    means = {n: Mean(name=n) for n in names}
    start = len(base[0])
    c.names = base[0] + names
    c.stateful_columns = base[1] + list(range(start, start + len(names)))
    c._held = base[2] + list(means.values())
    c.added_metrics = means
    c._added_state = (symbolic, base)


def fold(model: Any, c: Any, given: list[tuple[str, Any]]) -> list:
    """Update each name's ``Mean`` with the values ``add_metric`` got during a batch;
    return the running results, in ``c.names`` order (nothing when none were added)."""
    means = c.added_metrics
    if not means:
        if given and means is not None:
            _unknown(model, given[0][0])
        return []
    for name, value in given:
        metric = means.get(name)
        if metric is None:
            _unknown(model, name)
        metric.update_state(value)
    return [m.result() for m in means.values()]


class _Live:
    """Where ``add_metric``'s values go during a ``train_step``/``test_step`` of the
    model's own: each updates its name's ``Mean`` at once (made on first sight), so the
    step reads it in ``model.metrics`` as tf.keras 2's layer metrics were read."""

    def __init__(self, c: Any):
        self._c = c

    def append(self, item: tuple[str, Any]) -> None:
        from .metric_classes import Mean

        name, value = item
        means = self._c.added_metrics
        if means is None:
            means = self._c.added_metrics = {}
        if name not in means:
            means[name] = Mean(name=name)
        means[name].update_state(value)


def live(model: Any) -> Any:
    """A collector for the model's own steps (see :class:`_Live`); none before compile."""
    c = getattr(model, "_compiled", None)
    return contextlib.nullcontext() if c is None else collect_added_metrics(_Live(c))


def _unknown(model: Any, name: str) -> None:
    raise ValueError(
        f"model {model.name}: add_metric(name={name!r}) was not called when the model ran "
        "once in inference mode at the start of fit/evaluate (where polykeras learns the "
        "names of the metrics it logs); call add_metric on every call of the layer, in "
        "training and in inference"
    )


__all__ = ["fold", "live", "may_add_metrics", "prepare", "probe_names"]
