"""``polykeras.models``: Model, Sequential and loading.

``Model`` and ``Sequential`` are put together here, at the top of the package: the engine's
graph network (:class:`~polykeras.engine.functional.Functional`, and
:class:`~polykeras.engine.sequential.SequentialStack` for a stack of layers) with
training (:mod:`polykeras.training`) and saving (:mod:`polykeras.saving`) mixed in.  So the
imports go one way: this module imports the engine, training and saving; the engine imports
neither of them, and saving reaches these classes only when it builds a model.
"""

from __future__ import annotations

import warnings
from typing import Any

from .engine.functional import Functional
from .engine.sequential import SequentialStack
from .saving.model_saving import SavingMixin
from .training.trainer import TrainingMixin


class Model(TrainingMixin, SavingMixin, Functional):
    """``Model(inputs, outputs)`` (Keras 1: ``Model(input=..., output=...)``), or a subclass
    with layers in ``__init__`` and a ``call`` of its own: compile, fit, evaluate, predict,
    save, load."""


class Sequential(SequentialStack, Model):
    """``Sequential([layers])`` or ``Sequential()`` then ``.add(layer)``."""

    def predict_classes(self, x: Any, batch_size: int = 32, verbose: int = 0) -> Any:
        """Keras 2: class indices, the argmax of ``predict`` (``probability > 0.5`` as
        int32 for one output unit)."""
        proba = self.predict(x, batch_size=batch_size, verbose=verbose)
        if proba.shape[-1] > 1:
            return proba.argmax(axis=-1)
        return (proba > 0.5).astype("int32")

    def predict_proba(self, x: Any, batch_size: int = 32, verbose: int = 0) -> Any:
        """Keras 2: ``predict``, warning when the outputs are not probabilities."""
        preds = self.predict(x, batch_size=batch_size, verbose=verbose)
        if preds.min() < 0.0 or preds.max() > 1.0:
            warnings.warn(
                "Network returning invalid probability values. The last layer might not "
                "normalize predictions into probabilities (like softmax or sigmoid would).",
                stacklevel=2,
            )
        return preds

    def get_config(self) -> dict[str, Any]:
        from .saving.config import sequential_config

        return sequential_config(self)

    @classmethod
    def from_config(cls, config: Any, custom_objects: dict | None = None) -> Sequential:
        from .saving.config import sequential_from_config

        return sequential_from_config(cls, config, custom_objects)


def __getattr__(name: str) -> Any:
    if name in (
        "model_from_json",
        "model_from_yaml",
        "model_from_config",
        "load_model",
        "save_model",
        "clone_model",
    ):
        from .saving import api

        return getattr(api, name)
    raise AttributeError(f"module 'polykeras.models' has no attribute {name!r}")


# model_from_json, model_from_yaml, model_from_config, load_model, save_model and
# clone_model are loaded on first use (above), so that `import polykeras` stays light.
__all__ = ["Model", "Sequential"]
