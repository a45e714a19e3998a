"""Keras 2's ``keras.preprocessing``: ``sequence``, ``text`` and ``image`` (same names, same
results).

The same functions are also where Keras 3 moved them (``polykeras.utils.pad_sequences``).
"""

from __future__ import annotations

from . import image, sequence, text  # image imports Pillow only when an image is read

__all__ = ["image", "sequence", "text"]
