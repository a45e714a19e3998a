"""Helpers shared by several test modules (imported as ``helpers``: tests/ is on sys.path)."""

from __future__ import annotations

import importlib.util


def keras3_available() -> bool:
    """Whether real Keras 3 with the torch backend can serve as the reference here."""
    return (importlib.util.find_spec("keras") is not None
            and importlib.util.find_spec("torch") is not None)
