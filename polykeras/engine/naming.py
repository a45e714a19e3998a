"""Keras 2 auto-names: ``dense_1``, ``lstm_1``, ``model_1``, counted per prefix."""

from __future__ import annotations

import re
from collections import defaultdict

_counters: defaultdict[str, int] = defaultdict(int)


def snake_case(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique(prefix: str) -> str:
    _counters[prefix] += 1
    return f"{prefix}_{_counters[prefix]}"


def reset() -> None:
    _counters.clear()
