"""``polykeras.models``: Model, Sequential and loading."""

from .engine.functional import Model
from .engine.sequential import Sequential


def __getattr__(name):
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
