"""The imports go one way: the engine never imports training or saving (the public Model
is put together in polykeras.models)."""

from __future__ import annotations

import subprocess
import sys

import polykeras as keras


def test_engine_imports_neither_training_nor_saving():
    code = (
        "import sys\n"
        "import polykeras.engine.functional, polykeras.engine.sequential, polykeras.layers\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('polykeras.training', "
        "'polykeras.saving')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_model_is_the_engine_network_with_training_and_saving():
    from polykeras.engine.functional import Functional
    from polykeras.engine.sequential import SequentialStack

    assert issubclass(keras.Model, Functional)
    assert issubclass(keras.Sequential, keras.Model)
    assert issubclass(keras.Sequential, SequentialStack)
    for name in ("fit", "predict", "save", "to_json", "train_step", "compile"):
        assert not hasattr(Functional, name), name
        assert hasattr(keras.Model, name)


def test_a_module_reached_first_through_a_keras_alias_keeps_its_own_spec():
    """`polykeras.losses` is `polykeras.training.losses`: importing it by the alias first
    must not give the module the alias's spec (its relative imports would then warn)."""
    code = (
        "import polykeras.losses as L, polykeras.metrics as M\n"
        "assert L.__spec__.name == 'polykeras.training.losses', L.__spec__.name\n"
        "L.get('categorical_crossentropy'); M.get('binary_accuracy')\n"
    )
    subprocess.run([sys.executable, "-W", "error::ImportWarning", "-c", code], check=True)
