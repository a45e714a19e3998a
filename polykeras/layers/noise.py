"""Noise and regularization layers (Keras 2's ``keras.layers.noise`` and friends):
GaussianNoise, GaussianDropout, AlphaDropout, SpatialDropout1D/2D/3D and
ActivityRegularization.

The noise is drawn only while training (``training=True``: inside ``fit``, or when the
layer is called with it); at inference every one of them returns its input unchanged.
Uniform noise comes from :func:`polykeras.layers.core.uniform_noise` as Dropout's does, and
normal noise from :func:`normal_noise`: the backend's generator, or, for a layer given
``seed=``, the layer's own NumPy generator, so the same seed repeats the same noise on every
backend.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend as _backend
from .. import ops, regularizers
from ..config import normalize_data_format
from ..engine.base_layer import Layer
from ..utils import as_float
from .core import Dropout, check_seed, uniform_noise


def normal_noise(layer: Layer, shape: tuple, dtype: str) -> Any:
    """Standard normal noise for a layer: from the backend's generator, or from the layer's
    own generator seeded with its ``seed`` (the one :func:`uniform_noise` uses)."""
    B = _backend.current()
    seed = getattr(layer, "seed", None)
    if seed is None:
        return B.random_normal(tuple(shape), dtype)
    gen = layer.__dict__.get("_noise_generator")
    if gen is None:
        gen = layer.__dict__["_noise_generator"] = np.random.default_rng(seed)
    return B.asarray(gen.standard_normal(tuple(shape)).astype(dtype))


def _rate(value: Any, owner: str) -> float:
    """A drop rate in [0, 1)."""
    if value is None:
        raise ValueError(f"{owner}: rate must be a number in [0, 1), got None")
    return as_float(value, "rate", owner, low=0.0, high=1.0, high_open=True)


def _legacy_name(kwargs: dict, old: str, new: str, value: Any, cls: str) -> Any:
    """Keras 1's name for an argument (``p`` for ``rate``, ``sigma`` for ``stddev``)."""
    if old in kwargs:
        if value is not None:
            raise TypeError(f"{cls}: give either {old} (Keras 1) or {new}, not both")
        return kwargs.pop(old)
    return value


class _Noise(Layer):
    supports_masking = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def check_input(self, input_shape: Any) -> None:
        if isinstance(input_shape, list):
            raise ValueError(  # noqa: TRY004
                f"layer {self.name} ({type(self).__name__}) takes one input, got {len(input_shape)}"
            )


class GaussianNoise(_Noise):
    """Adds zero-centred normal noise of standard deviation ``stddev`` while training."""

    def __init__(self, stddev: float | None = None, seed: Any = None, **kwargs: Any):
        stddev = _legacy_name(kwargs, "sigma", "stddev", stddev, "GaussianNoise")
        super().__init__(**kwargs)
        owner = f"GaussianNoise {self.name}"
        if stddev is None:
            raise ValueError(f"{owner}: stddev must be a non-negative number, got None")
        self.stddev = as_float(stddev, "stddev", owner, low=0.0)
        self.seed = check_seed(seed, owner)

    def call(self, inputs: Any, training: Any = None) -> Any:
        if not training or self.stddev == 0:
            return inputs
        dtype = ops.dtype_name(inputs)
        noise = normal_noise(self, ops.shape(inputs), dtype)
        return ops.add(inputs, _backend.current().multiply(noise, self.stddev))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise):
    """Multiplies by normal noise of mean 1 and standard deviation ``sqrt(rate / (1 -
    rate))`` while training."""

    def __init__(self, rate: float | None = None, seed: Any = None, **kwargs: Any):
        rate = _legacy_name(kwargs, "p", "rate", rate, "GaussianDropout")
        super().__init__(**kwargs)
        owner = f"GaussianDropout {self.name}"
        self.rate = _rate(rate, owner)
        self.seed = check_seed(seed, owner)

    def call(self, inputs: Any, training: Any = None) -> Any:
        if not training or self.rate == 0:
            return inputs
        B = _backend.current()
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = normal_noise(self, ops.shape(inputs), ops.dtype_name(inputs))
        return ops.multiply(inputs, B.add(B.multiply(noise, stddev), 1.0))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


# SELU's constants: AlphaDropout sets dropped values to SELU's negative saturation value
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class AlphaDropout(_Noise):
    """Dropout for self-normalizing networks (SELU): while training, a fraction ``rate`` of
    the values is set to SELU's saturation value ``-alpha * scale``, and the result is
    transformed by ``a * x + b`` so that mean and variance are kept (Klambauer et al. 2017):
    ``a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5``, ``b = -a * alpha_p * rate``."""

    def __init__(
        self, rate: float | None = None, noise_shape: Any = None, seed: Any = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        owner = f"AlphaDropout {self.name}"
        self.rate = _rate(rate, owner)
        self.noise_shape = _noise_shape(noise_shape, owner)
        self.seed = check_seed(seed, owner)

    def check_input(self, input_shape: Any) -> None:
        super().check_input(input_shape)
        if self.noise_shape is not None and len(self.noise_shape) != len(input_shape):
            raise ValueError(
                f"layer {self.name} (AlphaDropout): noise_shape {self.noise_shape} has "
                f"{len(self.noise_shape)} dimensions, the input {tuple(input_shape)} has "
                f"{len(input_shape)}; expected one entry per input dimension"
            )

    def affine(self) -> tuple[float, float, float]:
        """``(alpha_p, a, b)``: the value dropped entries take, and the correction."""
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p**2)) ** -0.5
        return alpha_p, a, -a * alpha_p * self.rate

    def call(self, inputs: Any, training: Any = None) -> Any:
        if not training or self.rate == 0:
            return inputs
        B = _backend.current()
        dtype = ops.dtype_name(inputs)
        shape = tuple(ops.shape(inputs))
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(shape, self.noise_shape))
        keep = B.cast(B.greater_equal(uniform_noise(self, shape, dtype), self.rate), dtype)
        alpha_p, a, b = self.affine()
        # a * (x * keep + alpha_p * (1 - keep)) + b
        shift = B.add(B.multiply(B.subtract(1.0, keep), a * alpha_p), b)
        return ops.add(ops.multiply(inputs, B.multiply(keep, a)), shift)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rate": self.rate,
            "noise_shape": list(self.noise_shape) if self.noise_shape is not None else None,
            "seed": self.seed,
        }


def _noise_shape(value: Any, owner: str) -> tuple | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(
        d is None or (hasattr(d, "__index__") and not isinstance(d, bool) and int(d) >= 1)
        for d in value
    ):
        raise ValueError(
            f"{owner}: noise_shape must be a tuple of positive ints or None (None: the "
            f"input's size there), got {value!r}"
        )
    return tuple(None if d is None else int(d) for d in value)


class _SpatialDropout(Dropout):
    """Dropout of whole feature maps: one draw per (sample, channel), shared along the other
    axes."""

    supports_masking = True
    _rank = 3  # the input's, batch included

    def __init__(self, rate: float | None = None, data_format: Any = None, **kwargs: Any):
        cls = type(self).__name__
        rate = _legacy_name(kwargs, "p", "rate", rate, cls)
        if "dim_ordering" in kwargs:  # Keras 1
            if data_format is not None:
                raise TypeError(f"{cls}: give either dim_ordering (Keras 1) or data_format")
            data_format = kwargs.pop("dim_ordering")
        noise_shape = kwargs.pop("noise_shape", None)
        if noise_shape is not None:  # in tf.keras 2 configs, always None
            raise ValueError(
                f"{cls}: noise_shape={noise_shape!r} is not supported: the noise shape of "
                "spatial dropout follows from data_format (one draw per sample and channel)"
            )
        seed = kwargs.pop("seed", None)
        super().__init__(0.0, seed=seed, **kwargs)
        owner = f"{cls} {self.name}"
        self.rate = _rate(rate, owner)
        self.data_format = normalize_data_format(data_format) if self._rank > 3 else None
        middle = (1,) * (self._rank - 2)
        self.noise_shape = (
            (None, None) + middle
            if self.data_format == "channels_first"
            else (None,) + middle + (None,)
        )

    def check_input(self, input_shape: Any) -> None:
        cls = type(self).__name__
        if isinstance(input_shape, list) or len(input_shape) != self._rank:
            got = [tuple(s) for s in input_shape] if isinstance(input_shape, list) else input_shape
            raise ValueError(
                f"Input 0 of layer {self.name} ({cls}) is incompatible with the layer: "
                f"expected ndim={self._rank}, but received input with shape {got}"
            )

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        cfg = Layer.get_config(self)
        if cfg.get("trainable") is True:
            # Keras 3's SpatialDropout takes no trainable= and fails on the key; a layer
            # without weights is trainable or not to no effect, so True is left implied
            del cfg["trainable"]
        cfg.update({"rate": self.rate, "seed": self.seed})
        if self.data_format is not None:
            cfg["data_format"] = self.data_format
        return cfg


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of a (batch, steps, channels) sequence while training."""

    _rank = 3

    def __init__(self, rate: float | None = None, **kwargs: Any):
        if "data_format" in kwargs or "dim_ordering" in kwargs:
            raise TypeError(
                "SpatialDropout1D takes no data_format: its input is (batch, steps, channels)"
            )
        super().__init__(rate, **kwargs)


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of images (``data_format``: channels_last or
    channels_first; default: the image_data_format setting) while training."""

    _rank = 4


class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature maps of volumes while training."""

    _rank = 5


class ActivityRegularization(Layer):
    """Passes its input through and adds ``l1 * sum(|x|) + l2 * sum(x**2)`` (divided by the
    batch size, as every activity regularizer) to the training loss."""

    supports_masking = True

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any):
        if "activity_regularizer" in kwargs:
            raise TypeError(
                "ActivityRegularization: its activity_regularizer is made from l1 and l2; "
                "give those instead of activity_regularizer="
            )
        owner = "ActivityRegularization"
        l1 = as_float(l1, "l1", owner, low=0.0)
        l2 = as_float(l2, "l2", owner, low=0.0)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = l1, l2

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def call(self, inputs: Any) -> Any:
        return inputs

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("activity_regularizer", None)  # it is l1 and l2
        cfg.update({"l1": self.l1, "l2": self.l2})
        return cfg


__all__ = [
    "ActivityRegularization",
    "AlphaDropout",
    "GaussianDropout",
    "GaussianNoise",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
]
