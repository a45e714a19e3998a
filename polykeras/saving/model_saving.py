"""to_json / to_yaml / save / save_weights / load_weights for Model (a mixin)."""

from __future__ import annotations

from typing import Any


class SavingMixin:
    """Keras 2's saving methods; see :mod:`polykeras.saving`."""

    def get_config(self) -> dict[str, Any]:
        """The model's architecture (Keras 2's functional config)."""
        if getattr(self, "_is_subclassed", lambda: False)():
            raise NotImplementedError(
                f"model {getattr(self, 'name', '?')} is a subclassed model "
                f"({type(self).__name__}): its architecture is Python code, so it has no "
                "config unless its class defines get_config (and from_config where its "
                "__init__ takes more than the config keys); save its weights with "
                "save_weights and rebuild it in code"
            )
        from .config import functional_config

        return functional_config(self)

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Any:
        from ..engine.subclassing import defined_outside
        from .config import functional_from_config

        if defined_outside(cls, "call") and not (isinstance(config, dict) and "layers" in config):
            return cls(**config)  # a subclassed model: its get_config gave __init__'s arguments

        return functional_from_config(cls, config, custom_objects)

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as JSON (Keras 2 format); ``kwargs`` go to ``json.dumps``."""
        from .api import model_to_json

        return model_to_json(self, **kwargs)

    def to_yaml(self, **kwargs: Any) -> str:
        """The architecture as YAML (the same document as to_json, via yaml.safe_dump)."""
        from .api import model_to_yaml

        return model_to_yaml(self, **kwargs)

    def save(
        self, filepath: Any, overwrite: bool = True, include_optimizer: bool = True, **kwargs: Any
    ) -> None:
        """The whole model (config, weights, compile settings) in one file: Keras 3's
        ``.keras`` zip when the name ends in ``.keras`` (or ``save_format="keras"``), else
        Keras' legacy HDF5.  The file is written to a temporary name in the same folder,
        then renamed into place."""
        keras3 = _format(kwargs, "save", filepath, "keras", ".keras") == "keras"
        if getattr(self, "_is_subclassed", lambda: False)():
            from ..engine.subclassing import defined_outside

            if not keras3 or not defined_outside(type(self), "get_config"):
                raise NotImplementedError(
                    f"save: model {getattr(self, 'name', '?')} is a subclassed model "
                    f"({type(self).__name__}); its architecture is Python code, so it is "
                    "saved whole only as a '.keras' file and only when its class defines "
                    "get_config (and is registered with register_keras_serializable or "
                    "passed in custom_objects when loading); otherwise save its weights "
                    "with save_weights('x.weights.h5') and rebuild it in code"
                )
        if keras3:
            from .keras3 import save_model as save_keras3

            save_keras3(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)
            return
        from .hdf5 import save_model

        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
        """The weights, written atomically: Keras 3's layout when the name ends in
        ``.weights.h5`` (or ``save_format="keras"``), else Keras' legacy HDF5 layout."""
        if _format(kwargs, "save_weights", filepath, "keras", ".weights.h5") == "keras":
            from .keras3 import save_weights as save_keras3_weights

            save_keras3_weights(self, filepath, overwrite=overwrite)
            return
        from .hdf5 import save_weights

        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(
        self, filepath: Any, by_name: bool = False, skip_mismatch: bool = False, **kwargs: Any
    ) -> None:
        """Weights from an .h5 file (a weights file or a whole-model file, from polykeras or
        Keras 1/2/3).  Layers are matched in order, or by name with ``by_name=True``;
        ``skip_mismatch=True`` skips (with a warning) layers whose weights do not fit.
        Everything is read and checked before anything is assigned."""
        if kwargs.pop("reshape", False):
            raise ValueError("load_weights(reshape=True) is not supported")
        if kwargs:
            raise TypeError(
                f"load_weights: unexpected keyword argument(s) {', '.join(sorted(kwargs))}"
            )
        from . import keras3

        if keras3.is_archive(filepath):
            _keras3_by_name(by_name, filepath)
            keras3.load_weights_from_archive(self, filepath)
            return
        if keras3.is_keras3_weights_file(filepath):
            _keras3_by_name(by_name, filepath)
            keras3.load_weights(self, filepath, skip_mismatch=skip_mismatch)
            return
        from .hdf5 import load_weights

        load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)


def _format(kwargs: dict, what: str, filepath: Any, default: str, suffix: str) -> str:
    """The format to write, "keras" or "h5": ``save_format`` when given, else chosen by
    the file name as Keras 3 does (``suffix``: Keras 3's format; otherwise legacy HDF5)."""
    import os

    from .errors import SavingError

    fmt = kwargs.pop("save_format", None)
    if kwargs:
        raise TypeError(f"{what}: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
    is_path = isinstance(filepath, (str, bytes, os.PathLike))
    name = os.fsdecode(os.fspath(filepath)) if is_path else ""
    by_name = default if name.endswith(suffix) else "h5"
    if fmt is None:
        return by_name
    if fmt not in ("keras", "h5", "hdf5"):
        raise SavingError(
            f"{what}: save_format={fmt!r} is not supported; use 'keras' (Keras 3's format) "
            "or 'h5' (legacy HDF5)"
        )
    fmt = "h5" if fmt == "hdf5" else fmt
    if fmt == "h5" and name.endswith(".keras"):
        raise SavingError(
            f"{what}: save_format='h5' contradicts the file name {name!r}; name an HDF5 file .h5"
        )
    return fmt


def _keras3_by_name(by_name: bool, filepath: Any) -> None:
    if by_name:
        raise ValueError(
            f"load_weights({filepath!r}): by_name=True applies to legacy HDF5 files only; "
            "Keras 3's files are matched by the model's structure"
        )
