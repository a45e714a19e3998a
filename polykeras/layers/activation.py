"""Activation layers (Keras 2's ``keras.layers.advanced_activations``): LeakyReLU, PReLU,
ELU, ReLU, Softmax and ThresholdedReLU.

Each takes Keras 2's arguments and defaults and writes Keras 2's config keys; Keras 3's
spellings (``LeakyReLU(negative_slope=)``) are read too.  Only PReLU has a weight
(``alpha``); every one passes a mask on unchanged, and Softmax also uses it.
"""

from __future__ import annotations

from typing import Any

from .. import activations, constraints, initializers, ops, regularizers
from ..engine.base_layer import Layer
from ..engine.variables import Variable
from ..utils import as_float


def _one_input(layer: Layer, input_shape: Any) -> tuple:
    if isinstance(input_shape, list):
        raise ValueError(  # noqa: TRY004
            f"layer {layer.name} ({type(layer).__name__}) takes one input, got {len(input_shape)}"
        )
    return tuple(input_shape)


class _Elementwise(Layer):
    """An activation applied to each value: output shape = input shape, masks pass."""

    supports_masking = True

    def check_input(self, input_shape: Any) -> None:
        _one_input(self, input_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def _owner(self) -> str:
        return f"{type(self).__name__} {self.name}"


class LeakyReLU(_Elementwise):
    """``x`` for ``x >= 0``, ``alpha * x`` below.  Keras 3 calls ``alpha``
    ``negative_slope``; both are read, ``alpha`` is written (as Keras 2 does)."""

    def __init__(self, alpha: float = 0.3, **kwargs: Any):
        if "negative_slope" in kwargs:  # Keras 3's name
            if alpha != 0.3:
                raise TypeError("LeakyReLU: give either alpha or negative_slope, not both")
            alpha = kwargs.pop("negative_slope")
        super().__init__(**kwargs)
        self.alpha = as_float(alpha, "alpha", self._owner())

    def call(self, inputs: Any) -> Any:
        return ops.leaky_relu(inputs, negative_slope=self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


class ELU(_Elementwise):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` below."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.alpha = as_float(alpha, "alpha", self._owner())

    def call(self, inputs: Any) -> Any:
        return ops.elu(inputs, self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


class ThresholdedReLU(_Elementwise):
    """``x`` where ``x > theta``, 0 elsewhere (Keras 2; Keras 3 dropped the layer)."""

    def __init__(self, theta: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.theta = as_float(theta, "theta", self._owner(), low=0.0)

    def call(self, inputs: Any) -> Any:
        keep = ops.cast(ops.greater(inputs, self.theta), ops.dtype_name(inputs))
        return ops.multiply(inputs, keep)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "theta": self.theta}


class ReLU(_Elementwise):
    """Keras' rectifier with options: ``max_value`` where ``x >= max_value``, ``x`` where
    ``threshold <= x < max_value``, ``negative_slope * (x - threshold)`` below."""

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        owner = self._owner()
        self.max_value = None if max_value is None else as_float(max_value, "max_value", owner, 0.0)
        self.negative_slope = as_float(negative_slope, "negative_slope", owner, low=0.0)
        self.threshold = as_float(threshold, "threshold", owner, low=0.0)

    def call(self, inputs: Any) -> Any:
        return activations.relu(
            inputs,
            negative_slope=self.negative_slope,
            max_value=self.max_value,
            threshold=self.threshold,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


#: what masked positions get before the softmax (Keras' "large negative number")
_MASKED_LOGIT = {"float16": -3e4}


class Softmax(_Elementwise):
    """Softmax over ``axis`` (an int or a list of ints).

    ``call(inputs, mask=None)``: where ``mask`` is False (or 0), the input is replaced by a
    large negative number before the softmax and the output set to 0 after it, so masked
    positions get no probability (and a fully masked row is all zeros), as in Keras 3.  The
    mask either broadcasts against the input (e.g. attention scores (batch, queries, keys)
    with a mask (batch, 1, keys)), or is shaped like the start of the input's shape, as
    masks passed between layers are ((batch, timesteps) for (batch, timesteps, classes):
    a masked timestep's output is all zeros)."""

    def __init__(self, axis: Any = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if not axis or not all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
                raise TypeError(
                    f"{self._owner()}: axis must be an int or a list of ints, got {axis!r}"
                )
            self.axis: int | list[int] = [int(a) for a in axis]
        elif isinstance(axis, int) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise TypeError(f"{self._owner()}: axis must be an int or a list of ints, got {axis!r}")

    def check_input(self, input_shape: Any) -> None:
        shape = _one_input(self, input_shape)
        for a in self.axis if isinstance(self.axis, list) else [self.axis]:
            if not -len(shape) <= a < len(shape):
                raise ValueError(
                    f"layer {self.name} (Softmax): axis {a} is out of range for an input of "
                    f"{len(shape)} dimensions (shape {shape})"
                )

    def _check_mask(self, inputs: Any, mask: Any) -> Any:
        """The mask as a bool array that broadcasts against the input: a mask shaped like
        the start of the input's shape (as masks travel between layers, e.g. (batch,
        timesteps) for (batch, timesteps, features)) gets size-1 trailing axes; any other
        mask must broadcast as NumPy aligns shapes (on the last axis), as in Keras."""
        xs, ms = tuple(ops.shape(inputs)), tuple(ops.shape(mask))
        if ops.dtype_name(mask) != "bool":
            mask = ops.greater(mask, 0.5)
        if len(ms) < len(xs) and ms == xs[: len(ms)]:
            return ops.reshape(mask, ms + (1,) * (len(xs) - len(ms)))
        fits = len(ms) <= len(xs) and all(m in (1, x) for m, x in zip(ms[::-1], xs[::-1]))
        if not fits:
            raise ValueError(
                f"layer {self.name} (Softmax): the mask of shape {ms} does not fit the input "
                f"of shape {xs}; expected the start of the input's shape (e.g. {xs[:-1]}) or "
                f"a shape that broadcasts against it (each axis 1 or the input's, aligned on "
                "the last axis)"
            )
        return mask

    def call(self, inputs: Any, mask: Any = None) -> Any:
        x = inputs
        if mask is not None:
            mask = self._check_mask(x, mask)
            x = ops.where(mask, x, _MASKED_LOGIT.get(ops.dtype_name(x), -1e9))
        if isinstance(self.axis, list) and len(self.axis) > 1:
            out = ops.exp(ops.subtract(x, ops.logsumexp(x, axis=tuple(self.axis), keepdims=True)))
        else:
            axis = self.axis[0] if isinstance(self.axis, list) else self.axis
            out = ops.softmax(x, axis=axis)
        if mask is not None:
            out = ops.where(mask, out, 0.0)
        return out

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class PReLU(_Elementwise):
    """``x`` for ``x >= 0``, ``alpha * x`` below, with ``alpha`` a learned weight of the
    input's shape (batch excluded), of size 1 along each of ``shared_axes``.  Keras 1's
    ``init`` is ``alpha_initializer``."""

    def __init__(
        self,
        alpha_initializer: Any = "zeros",
        alpha_regularizer: Any = None,
        alpha_constraint: Any = None,
        shared_axes: Any = None,
        **kwargs: Any,
    ):
        if "init" in kwargs:  # Keras 1
            if alpha_initializer != "zeros":
                raise TypeError("PReLU: give either init (Keras 1) or alpha_initializer, not both")
            alpha_initializer = kwargs.pop("init")
        super().__init__(**kwargs)
        owner = self._owner()
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get_optional(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes: list[int] | None = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 1 for a in axes):
                raise ValueError(
                    f"{owner}: shared_axes must be axes of the input counted from 1 (the "
                    f"batch axis 0 is always shared), got {shared_axes!r}"
                )
            self.shared_axes = axes
        self.alpha: Variable | None = None

    def check_input(self, input_shape: Any) -> None:
        shape = _one_input(self, input_shape)
        if len(shape) < 2:
            raise ValueError(
                f"layer {self.name} (PReLU) needs an input with at least 2 dimensions "
                f"(batch, features...), got shape {shape}"
            )
        for a in self.shared_axes or ():
            if a >= len(shape):
                raise ValueError(
                    f"layer {self.name} (PReLU): shared_axes {self.shared_axes} names axis {a}, "
                    f"which the input of shape {shape} does not have"
                )
        shared = set(self.shared_axes or ())
        for i, d in enumerate(shape[1:], start=1):
            if d is None and i not in shared:
                raise ValueError(
                    f"layer {self.name} (PReLU): axis {i} of the input of shape {shape} has "
                    "no fixed size, so alpha cannot have one value per position there; "
                    f"give the size, or share alpha along it (shared_axes=[{i}])"
                )
        if self.alpha is not None:
            want = self._param_shape(shape)
            if tuple(self.alpha.shape) != want:
                raise ValueError(
                    f"Input 0 of layer {self.name} (PReLU) is incompatible with the layer: "
                    f"its alpha has shape {tuple(self.alpha.shape)}, but an input of shape "
                    f"{shape} needs {want}"
                )

    def _param_shape(self, shape: tuple) -> tuple:
        shared = set(self.shared_axes or ())
        return tuple(1 if i in shared else d for i, d in enumerate(shape) if i > 0)

    def build(self, input_shape: Any) -> None:
        self.alpha = self.add_weight(
            "alpha",
            self._param_shape(tuple(input_shape)),
            self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )
        self.built = True

    def call(self, inputs: Any) -> Any:
        # relu(x) - alpha * relu(-x), as Keras computes it
        return ops.subtract(ops.relu(inputs), ops.multiply(self.alpha, ops.relu(ops.neg(inputs))))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": regularizers.serialize_optional(self.alpha_regularizer),
            "alpha_constraint": regularizers.serialize_constraint(self.alpha_constraint),
            "shared_axes": self.shared_axes,
        }


__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax", "ThresholdedReLU"]
