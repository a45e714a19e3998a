"""The errors saving and loading raise.  All are ``ValueError``s, so ``except ValueError``
catches every refusal; a missing file is a ``FileNotFoundError``."""

from __future__ import annotations


class SavingError(ValueError):
    """A config or file cannot be read or written.  When loading, nothing was changed."""


class UnknownLayerError(SavingError):
    """A config names a layer class that is not registered."""


class UnsafeContentError(SavingError):
    """A config or file was refused because it could run code, reach outside the file,
    or exhaust memory or time (e.g. Lambda code, YAML python tags, HDF5 external links)."""


class LimitExceededError(UnsafeContentError):
    """A config or file goes past one of the limits in :mod:`polykeras.saving.limits`."""


class WeightsMismatchError(SavingError):
    """A weights file does not fit the model (layer count, names or shapes differ)."""


class FileFormatError(SavingError):
    """A file is not what the loader expects (not HDF5, truncated, wrong layout...)."""
