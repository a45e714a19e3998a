"""Keras' import paths, from one table: ``from keras.optimizers import Adam``,
``keras.layers.advanced_activations``, ``keras.utils.np_utils``...

A meta path finder serves each aliased name as the module it stands for.  An alias of an
existing module is that module itself (``polykeras.losses is polykeras.training.losses``); a
Keras 2 module that groups names polykeras keeps elsewhere is a small module exposing those
of its names that polykeras has (a layer not written yet is simply absent).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

#: alias -> the module it is
MODULES: dict[str, str] = {
    "polykeras.callbacks": "polykeras.training.callbacks",
    "polykeras.optimizers": "polykeras.training.optimizers",
    "polykeras.optimizers.schedules": "polykeras.training.schedules",
    "polykeras.losses": "polykeras.training.losses",
    "polykeras.metrics": "polykeras.training.metrics",
    "polykeras.layers.recurrent_v2": "polykeras.layers.recurrent",
    "polykeras.layers.merging": "polykeras.layers.merge",
    "polykeras.utils.np_utils": "polykeras.utils",
    "polykeras.utils.data_utils": "polykeras.utils",
}

#: alias -> (module that holds the names, the names the Keras 2 module had)
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "polykeras.layers.advanced_activations": (
        "polykeras.layers",
        ("LeakyReLU", "PReLU", "ELU", "ThresholdedReLU", "Softmax", "ReLU"),
    ),
    "polykeras.layers.noise": (
        "polykeras.layers",
        ("GaussianNoise", "GaussianDropout", "AlphaDropout"),
    ),
    "polykeras.layers.local": ("polykeras.layers", ("LocallyConnected1D", "LocallyConnected2D")),
    "polykeras.utils.vis_utils": ("polykeras.visualize", ("plot_model", "model_to_dot")),
    "polykeras.utils.image_utils": (
        "polykeras.preprocessing.image",
        ("load_img", "img_to_array", "array_to_img", "save_img", "smart_resize"),
    ),
    "polykeras.utils.generic_utils": (
        "polykeras.saving",
        (
            "custom_object_scope",
            "CustomObjectScope",
            "get_custom_objects",
            "register_keras_serializable",
            "serialize_keras_object",
            "deserialize_keras_object",
            "Progbar",
        ),
    ),
}

#: names a group takes from another module than its main one
_ELSEWHERE = {
    "Progbar": "polykeras.training.progress",
    "serialize_keras_object": "polykeras.utils_extra",
    "deserialize_keras_object": "polykeras.utils_extra",
}

#: plain modules that aliases nest under: given an empty ``__path__`` so Python looks
#: for their submodules (which this finder then serves)
_PARENTS = ("polykeras.utils",)


class _AliasLoader(importlib.abc.Loader):
    def __init__(self) -> None:
        self._real_spec: Any = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        name = spec.name
        if name in MODULES:
            module = importlib.import_module(MODULES[name])
            # the import system sets the alias's spec on the module it gets: keep the real
            # one (exec_module puts it back), or the module's own relative imports would
            # see a package that is not theirs
            self._real_spec = module.__spec__
            return module
        source, names = GROUPS[name]
        module = types.ModuleType(name, f"Keras' {name.rpartition('.')[2]} module: {source}")
        holder = importlib.import_module(source)
        present = []
        for n in names:
            where = importlib.import_module(_ELSEWHERE[n]) if n in _ELSEWHERE else holder
            if hasattr(where, n):
                setattr(module, n, getattr(where, n))
                present.append(n)
        module.__all__ = present  # type: ignore[attr-defined]
        missing = [n for n in names if n not in present]

        def __getattr__(attr: str) -> Any:  # noqa: N807
            if attr in missing:
                raise AttributeError(f"{name}.{attr}: polykeras does not implement {attr} yet")
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")

        module.__dict__["__getattr__"] = __getattr__  # PEP 562 module __getattr__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        if self._real_spec is not None:
            module.__spec__ = self._real_spec


class AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname in MODULES or fullname in GROUPS:
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader())
        return None


def install() -> None:
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(AliasFinder())
    for parent in _PARENTS:
        module = sys.modules.get(parent)
        if module is not None and not hasattr(module, "__path__"):
            module.__dict__["__path__"] = []  # a package now: its aliases can import
