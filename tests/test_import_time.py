"""``import polykeras`` stays light (issue 21): the engine, the layers, training, saving and
the optional parts are loaded on first use, and every public name still resolves as before.

No timing here: what an import loads is checked instead (``sys.modules`` of a fresh
process), which is what decides its cost.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types

import pytest

import polykeras
import polykeras.layers

#: modules `import polykeras` must not load: the heavy parts of polykeras and every optional
#: or framework dependency (each is imported where it is first needed)
NOT_AT_IMPORT = (
    "polykeras.layers",
    "polykeras.engine",
    "polykeras.engine.functional",
    "polykeras.ops",
    "polykeras.backend",
    "polykeras.plugins",
    "polykeras.training",
    "polykeras.training.trainer",
    "polykeras.saving",
    "polykeras.preprocessing",
    "polykeras.datasets",
    "polykeras.visualize",
    "polykeras.wrappers",
    "polykeras.distribute",
    "h5py",
    "yaml",
    "pluggy",
    "PIL",
    "pandas",
    "torch",
    "cupy",
    "keras",
)


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter (the current backend selection); its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_import_polykeras_loads_none_of_the_heavy_parts():
    code = (
        "import sys, json, polykeras\n"
        f"print(json.dumps([m for m in {list(NOT_AT_IMPORT)!r} if m in sys.modules]))"
    )
    assert json.loads(_fresh(code)) == []


def test_importing_one_layer_loads_its_module_only():
    code = (
        "import sys, json\n"
        "from polykeras.layers import Dense\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('polykeras.layers.'))))"
    )
    loaded = set(json.loads(_fresh(code)))
    assert "polykeras.layers.core" in loaded
    for heavy in ("polykeras.layers.recurrent", "polykeras.layers.attention"):
        assert heavy not in loaded


def test_every_public_name_resolves_in_a_fresh_process():
    code = (
        "import json, polykeras, polykeras.layers as L\n"
        "from polykeras import *\n"
        "from polykeras.layers import *\n"
        "print(json.dumps({\n"
        "    'top': sorted(polykeras.__all__), 'layers': L.__all__,\n"
        "    'dir_top': [n for n in polykeras.__all__ if n not in dir(polykeras)],\n"
        "    'dir_layers': [n for n in L.__all__ if n not in dir(L)],\n"
        "    'star': [n for n in L.__all__ + polykeras.__all__ if n not in globals()],\n"
        "    'modules': {n: getattr(L, n).__module__ for n in L.__all__},\n"
        "}))"
    )
    out = json.loads(_fresh(code))
    assert out["dir_top"] == [] and out["dir_layers"] == [] and out["star"] == []
    assert out["top"] == sorted(polykeras.__all__)
    assert out["layers"] == polykeras.layers.__all__
    assert len(set(out["layers"])) == len(out["layers"]), "a name is listed twice"
    # each name is the object its module defines (e.g. Dense is layers.core.Dense)
    for name, module in out["modules"].items():
        assert getattr(importlib.import_module(module), name) is getattr(polykeras.layers, name)


def test_names_are_the_objects_of_their_modules():
    from polykeras.engine.base_layer import Input, Layer
    from polykeras.layers.core import Dense
    from polykeras.models import Model, Sequential
    from polykeras.layers.recurrent import LSTM
    from polykeras.training import losses, optimizers

    assert polykeras.Model is Model and polykeras.Sequential is Sequential
    assert polykeras.Input is Input and polykeras.Layer is Layer
    assert polykeras.layers.Dense is Dense and polykeras.layers.LSTM is LSTM
    assert polykeras.losses is losses and polykeras.optimizers is optimizers
    assert polykeras.models.Model is Model
    assert isinstance(polykeras.ops, types.ModuleType)


def test_merge_stays_keras_1s_function_after_its_module_is_imported():
    import polykeras.layers.merge  # noqa: F401  (binds the submodule on its package)
    from polykeras.layers import merge
    from polykeras.layers.legacy import merge as legacy_merge

    assert merge is legacy_merge and polykeras.layers.merge is legacy_merge
    assert isinstance(sys.modules["polykeras.layers.merge"], types.ModuleType)


def test_unknown_names_are_attribute_errors():
    for module in (polykeras, polykeras.layers):
        assert not hasattr(module, "NoSuchLayer")
        with pytest.raises(AttributeError, match="no attribute 'NoSuchLayer'"):
            module.NoSuchLayer  # noqa: B018
        with pytest.raises(ImportError):
            exec("from polykeras.layers import NoSuchLayer", {})


def test_layer_registry_and_loading_after_import_polykeras_only():
    """A config naming layers of every family loads in a process that ran only
    ``import polykeras`` (the registry reaches the layer modules through ``dir()``)."""
    from polykeras import layers
    from polykeras.models import Model

    inp = layers.Input(shape=(6, 4))
    x = layers.LSTM(3, return_sequences=True)(inp)
    x = layers.LayerNormalization()(x)
    x = layers.MultiHeadAttention(num_heads=1, key_dim=2)(x, x)
    x = layers.Conv1D(2, 3)(x)
    x = layers.Flatten()(x)
    y = layers.Dense(2, activation="softmax")(x)
    text = Model(inp, y).to_json()
    code = (
        "import sys, polykeras\n"
        "from polykeras.saving import registry\n"
        "known = registry.builtin_classes()\n"
        "missing = [n for n in polykeras.layers.__all__ if isinstance(getattr(polykeras.layers, n),"
        " type) and issubclass(getattr(polykeras.layers, n), polykeras.Layer) and n not in known"
        " and n not in ('Layer', 'Lambda')]\n"
        "assert not missing, missing\n"
        "m = polykeras.models.model_from_json(sys.stdin.read())\n"
        "print([type(layer).__name__ for layer in m.layers])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=text, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("LSTM", "LayerNormalization", "MultiHeadAttention", "Conv1D", "Dense"):
        assert name in out.stdout


def test_keras_paths_and_backends_after_import_polykeras_only():
    code = (
        "import polykeras\n"
        "from polykeras.utils.np_utils import to_categorical\n"
        "from polykeras.optimizers import Adam\n"
        "from polykeras.layers.advanced_activations import LeakyReLU\n"
        "import polykeras.layers.merging\n"
        "assert LeakyReLU is polykeras.layers.LeakyReLU\n"
        "assert polykeras.models.Model is polykeras.Model\n"
        "print(sorted(b.name for b in polykeras.backends()))"
    )
    assert "'numpy'" in _fresh(code)
