"""Keras 2's ``keras.preprocessing``: ``sequence`` and ``text`` (same names, same results).

The same functions are also where Keras 3 moved them (``polykeras.utils.pad_sequences``).
"""

from __future__ import annotations

from . import sequence, text

__all__ = ["sequence", "text"]
