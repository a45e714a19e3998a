"""to_json / to_yaml / save / save_weights / load_weights for Model (a mixin)."""

from __future__ import annotations

from typing import Any


class SavingMixin:
    """Keras 2's saving methods; see :mod:`polykeras.saving`."""

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
        """The whole model (config, weights, compile settings) in one .h5 file.  The file is
        written to a temporary name in the same folder, then renamed into place."""
        _no_format(kwargs, "save")
        from .hdf5 import save_model

        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
        """The weights in Keras' HDF5 layout, written atomically."""
        _no_format(kwargs, "save_weights")
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
        from .hdf5 import load_weights

        load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)


def _no_format(kwargs: dict, what: str) -> None:
    fmt = kwargs.pop("save_format", None)
    if fmt not in (None, "h5", "hdf5"):
        raise ValueError(
            f"{what}: save_format={fmt!r} is not supported; polykeras writes HDF5 ('h5')"
        )
    if kwargs:
        raise TypeError(f"{what}: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
