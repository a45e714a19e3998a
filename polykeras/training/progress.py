"""Keras 2's progress bar: ``32/100 [========>.....................] - ETA: 0s - loss: 0.6931``.

On a terminal the bar is redrawn in place (``\\r``) at most every ``interval`` seconds.
When the stream is not a terminal (CI logs, pipes) only the final line of each bar is
written, so logs are not flooded.  ``verbose=2`` writes one summary line per bar.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO
from collections.abc import Sequence


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False


def format_value(value: float) -> str:
    """``0.6931``, or ``1.2000e-04`` for tiny numbers, as Keras 2 prints them."""
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def _format_eta(eta: float) -> str:
    if eta > 3600:
        return f"{int(eta // 3600)}:{int((eta % 3600) // 60):02d}:{int(eta % 60):02d}"
    if eta > 60:
        return f"{int(eta // 60)}:{int(eta % 60):02d}"
    return f"{int(eta)}s"


def _format_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class Progbar:
    """A progress bar over ``target`` units (samples or steps), with running averages.

    ``update(current, values)`` takes ``values`` as (name, value) pairs; each value is
    averaged over the units seen, weighted by how many units this update covers, unless
    its name is in ``stateful_metrics`` (shown as given).
    """

    def __init__(
        self,
        target: int | None,
        width: int = 30,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics: Sequence[str] | None = None,
        stream: TextIO | None = None,
    ):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stateful_metrics = set(stateful_metrics or ())
        self.stream = stream if stream is not None else sys.stdout
        self.dynamic = _is_terminal(self.stream)
        self._sums: dict[str, list[float]] = {}
        self._order: list[str] = []
        self._seen = 0
        self._start = time.time()
        self._last_update = 0.0
        self._total_width = 0

    def update(
        self, current: int, values: Sequence[tuple[str, float]] | None = None, force: bool = False
    ) -> None:
        for name, value in values or ():
            if name not in self._sums:
                self._order.append(name)
            if name in self.stateful_metrics:
                self._sums[name] = [float(value), 1.0]
                continue
            count = max(current - self._seen, 1)
            acc = self._sums.setdefault(name, [0.0, 0.0])
            acc[0] += float(value) * count
            acc[1] += count
        self._seen = current
        done = self.target is not None and current >= self.target
        now = time.time()
        if self.verbose == 1:
            if self.dynamic:
                if not force and not done and now - self._last_update < self.interval:
                    return
                self._draw(current, now, done)
            elif done:
                self._write(self._bar(current) + self._info(current, now, done) + "\n")
        elif self.verbose == 2 and done:
            line = f" - {now - self._start:.0f}s" + self._values_text()
            self._write(line + "\n")
        self._last_update = now

    def finish(self, values: Sequence[tuple[str, float]] | None = None) -> None:
        """End a bar of unknown length (``target=None``): it becomes ``seen/seen``."""
        if self.target is None:
            self.target = self._seen
        self.update(self._seen, values, force=True)

    def add(self, n: int, values: Sequence[tuple[str, float]] | None = None) -> None:
        self.update(self._seen + n, values)

    def _bar(self, current: int) -> str:
        if self.target is None:
            return f"{current:7d}/Unknown"
        digits = len(str(self.target))
        prog_width = int(self.width * current / self.target) if self.target else self.width
        bar = f"{current:{digits}d}/{self.target} ["
        if prog_width > 0:
            bar += "=" * (prog_width - 1)
            bar += ">" if current < self.target else "="
        bar += "." * (self.width - prog_width) + "]"
        return bar

    def _values_text(self) -> str:
        parts = []
        for name in self._order:
            total, count = self._sums[name]
            parts.append(f" - {name}: {format_value(total / max(count, 1.0))}")
        return "".join(parts)

    def _info(self, current: int, now: float, done: bool) -> str:
        per_unit = (now - self._start) / current if current else 0.0
        if not done and self.target is not None:
            info = f" - ETA: {_format_eta(per_unit * (self.target - current))}"
        else:
            info = f" - {now - self._start:.0f}s {_format_per_step(per_unit)}"
        return info + self._values_text()

    def _draw(self, current: int, now: float, done: bool) -> None:
        line = self._bar(current) + self._info(current, now, done)
        pad = " " * max(self._total_width - len(line), 0)
        self._total_width = len(line)
        self._write("\r" + line + pad + ("\n" if done else ""))

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
