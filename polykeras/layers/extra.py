"""Layers Keras 3 added late: EinsumDense (a dense layer described by an einsum equation)
and DepthwiseConv1D (run as DepthwiseConv2D over a unit axis)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .. import activations, initializers, ops
from ..engine.base_layer import Layer
from .convolutional import DepthwiseConv2D
from .core import _constraint, _regularizer, _serialize_constraint, _serialize_reg, shape_error

# The three shapes of equation EinsumDense takes: no ellipsis, one on the left of the input
# and the output, one on their right.  (letters of input, kernel, output; where the "..." is)
_EQUATIONS = (
    (re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)"), None),
    (re.compile(r"\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)"), "left"),
    (re.compile(r"([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\."), "right"),
)

# Keras 3 arguments for quantization and LoRA fine-tuning, which polykeras does not have
_UNSUPPORTED = ("lora_rank", "lora_alpha", "gptq_unpacked_column_size", "quantization_config")


class _FansFromAxes(initializers.Initializer):
    """A variance-scaling initializer for an einsum kernel: its fans are the products of the
    kernel's input axes and of its output axes (not those of a convolution kernel)."""

    def __init__(self, base: Any, fan_in: int, fan_out: int):
        self.base, self.fan_in, self.fan_out = base, fan_in, fan_out

    def __call__(self, shape, dtype="float32"):
        # the entries are independent draws: drawing them as a (fan_in, fan_out) matrix
        # gives them the right scale, whatever order the axes take in the kernel
        return np.reshape(self.base((self.fan_in, self.fan_out), dtype), tuple(shape))


def _einsum_shapes(layer: EinsumDense, input_shape: tuple) -> dict[str, Any]:
    """The kernel's and the bias' shapes, the output's shape, and which kernel axes are
    contracted with the input (the rest are output axes), for ``layer`` on ``input_shape``."""
    owner = f"EinsumDense {layer.name}"
    forms = ((p.fullmatch(layer.equation), where) for p, where in _EQUATIONS)
    found, ellipsis = next(((m, where) for m, where in forms if m), (None, None))
    if found is None:
        raise ValueError(
            f"{owner}: equation {layer.equation!r} is not of the form 'X,Y->Z', "
            "'...X,Y->...Z' or 'X...,Y->Z...' (letters only, one ellipsis at most)"
        )
    ins, kern, outs = found.groups()
    rank = len(input_shape)
    extra = rank - len(ins)  # the dimensions the ellipsis stands for
    if extra < 0 or (ellipsis is None and extra != 0):
        raise shape_error(
            layer, f"an input of rank {len(ins)} for equation {layer.equation!r}", input_shape
        )
    partial = list(layer.partial_output_shape)
    if ellipsis == "left":
        out_shape = [input_shape[0], *input_shape[1:extra], *partial]
        first = extra  # where the named letters start, in the input and the output
    else:
        out_shape = [input_shape[0], *partial, *input_shape[rank - extra :]]
        first = 0
    if len(out_shape) - (extra if ellipsis else 0) != len(outs):
        expected = len(outs) - (0 if ellipsis == "left" else 1)
        raise ValueError(
            f"{owner}: output_shape {tuple(partial)} has {len(partial)} dimension(s); "
            f"equation {layer.equation!r} needs {expected}"
        )
    in_size = {c: input_shape[first + i] for i, c in enumerate(ins)}
    out_size = {c: out_shape[first + i] for i, c in enumerate(outs)}
    for c, n in in_size.items():
        if c in out_size and out_size[c] is not None and out_size[c] != n:
            raise ValueError(
                f"{owner}: dimension {c!r} of equation {layer.equation!r} is {n} in the input "
                f"but {out_size[c]} in output_shape"
            )
    for c in outs:
        if c not in in_size and c not in kern:
            raise ValueError(
                f"{owner}: output letter {c!r} of equation {layer.equation!r} is neither in "
                "the input nor in the kernel"
            )
    kernel_shape, in_axes, out_axes = [], [], []
    for i, c in enumerate(kern):
        if c in out_size:
            kernel_shape.append(out_size[c])
            out_axes.append(i)
        elif c in in_size:
            kernel_shape.append(in_size[c])
            in_axes.append(i)
        else:
            raise ValueError(
                f"{owner}: kernel letter {c!r} of equation {layer.equation!r} is neither in "
                "the input nor in the output"
            )
    bias_shape = None
    if layer.bias_axes is not None:
        for c in layer.bias_axes:
            if c not in outs:
                raise ValueError(
                    f"{owner}: bias_axes letter {c!r} is not an output letter of "
                    f"equation {layer.equation!r}"
                )
        # the bias broadcasts against the output from its first biased letter on
        start = min(outs.index(c) for c in layer.bias_axes)
        bias_shape = [out_size[c] if c in layer.bias_axes else 1 for c in outs[start:]]
        if ellipsis == "right":
            bias_shape += [1] * extra
    return {
        "kernel": tuple(kernel_shape),
        "bias": None if bias_shape is None else tuple(bias_shape),
        "output": tuple(out_shape),
        "in_axes": in_axes,
        "out_axes": out_axes,
    }


class EinsumDense(Layer):
    """A dense layer whose product is an einsum equation of the input and the kernel:
    ``output = activation(einsum(equation, input, kernel) + bias)``; ``output_shape`` gives
    the output's dimensions after the batch one (those of the ellipsis excepted)."""

    def __init__(
        self,
        equation: str | None = None,
        output_shape: Any = None,
        activation: Any = None,
        bias_axes: str | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        for key in _UNSUPPORTED:
            if kwargs.pop(key, None) is not None:
                raise NotImplementedError(
                    f"EinsumDense: {key}= is not supported by polykeras (no LoRA or "
                    "quantization); leave it unset"
                )
        super().__init__(**kwargs)
        owner = f"EinsumDense {self.name}"
        if not isinstance(equation, str):
            raise ValueError(
                f"{owner}: equation must be a string such as 'ab,bc->ac', got {equation!r}"
            )
        if bias_axes is not None and not isinstance(bias_axes, str):
            raise ValueError(
                f"{owner}: bias_axes must be a string of output letters, got {bias_axes!r}"
            )
        if output_shape is None:
            raise ValueError(f"{owner}: output_shape is required (an int or a tuple)")
        dims = (output_shape,) if isinstance(output_shape, (int, np.integer)) else output_shape
        try:
            partial = tuple(None if d is None else int(d) for d in dims)
        except (TypeError, ValueError):
            raise ValueError(
                f"{owner}: output_shape must be an int or a tuple of ints (None for a free "
                f"dimension), got {output_shape!r}"
            ) from None
        if any(d is not None and d < 1 for d in partial) or any(
            d is not None and not isinstance(d, (int, np.integer)) for d in dims
        ):
            raise ValueError(f"{owner}: output_shape must hold positive ints, got {output_shape!r}")
        self.equation = equation
        self.partial_output_shape = partial
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizer(kernel_regularizer)
        self.bias_regularizer = _regularizer(bias_regularizer)
        self.kernel_constraint = _constraint(kernel_constraint)
        self.bias_constraint = _constraint(bias_constraint)

    def check_input(self, input_shape):
        if isinstance(input_shape, list):
            raise shape_error(self, "one tensor", input_shape)
        shapes = _einsum_shapes(self, tuple(input_shape))
        if any(d is None for d in shapes["kernel"]):
            raise shape_error(
                self, f"defined dimensions for the kernel of {self.equation!r}", input_shape
            )
        if self.built and shapes["kernel"] != tuple(self.kernel.shape):
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: its kernel has "
                f"shape {tuple(self.kernel.shape)}, input shape {tuple(input_shape)} needs "
                f"{shapes['kernel']}"
            )

    def build(self, input_shape):
        shapes = _einsum_shapes(self, tuple(input_shape))
        init = self.kernel_initializer
        if isinstance(init, initializers.VarianceScaling):
            kernel = shapes["kernel"]
            fan_in = math.prod(kernel[i] for i in shapes["in_axes"])
            fan_out = math.prod(kernel[i] for i in shapes["out_axes"])
            init = _FansFromAxes(init, fan_in, fan_out)
        self.kernel = self.add_weight(
            "kernel",
            shapes["kernel"],
            init,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = (
            self.add_weight(
                "bias",
                shapes["bias"],
                self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
            if shapes["bias"] is not None
            else None
        )
        self.built = True

    def call(self, inputs):
        y = ops.einsum(self.equation, inputs, self.kernel)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return _einsum_shapes(self, tuple(input_shape))["output"]

    def get_config(self):
        return {
            **super().get_config(),
            "output_shape": list(self.partial_output_shape),
            "equation": self.equation,
            "activation": activations.serialize(self.activation),
            "bias_axes": self.bias_axes,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _serialize_reg(self.kernel_regularizer),
            "bias_regularizer": _serialize_reg(self.bias_regularizer),
            "activity_regularizer": _serialize_reg(self.activity_regularizer),
            "kernel_constraint": _serialize_constraint(self.kernel_constraint),
            "bias_constraint": _serialize_constraint(self.bias_constraint),
            "quantization_config": None,
        }


class DepthwiseConv1D(DepthwiseConv2D):
    """``DepthwiseConv1D(kernel_size, strides=1, padding='valid', depth_multiplier=1, ...)``
    over (batch, steps, channels): each channel convolved with its own
    ``depth_multiplier`` filters (DepthwiseConv2D's code, over a unit height); weights
    ``depthwise_kernel`` (k, channels, depth_multiplier) and ``bias``."""

    rank = 1

    def __init__(self, kernel_size: Any = None, strides: Any = 1, *args: Any, **kwargs: Any):
        super().__init__(kernel_size, strides, *args, **kwargs)
