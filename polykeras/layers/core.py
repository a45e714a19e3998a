"""Core layers: Dense, Activation, Dropout, Flatten, Reshape, Permute, RepeatVector."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import activations, initializers, ops
from .. import backend as _backend
from ..engine.base_layer import Layer, _to_layer_dtype, standardize_shape
from ..utils import as_int


def legacy(kwargs: dict[str, Any], mapping: dict[str, str], owner: str) -> dict[str, Any]:
    """Translate Keras 1 argument names (``init`` -> ``kernel_initializer``...)."""
    for old, new in mapping.items():
        if old in kwargs:
            if new in kwargs:
                raise TypeError(f"{owner}: give either {old} (Keras 1) or {new}, not both")
            kwargs[new] = kwargs.pop(old)
    return kwargs


def positive_int(value: Any, what: str, owner: str) -> int:
    """A plain positive int from any integral value (NumPy integers too, as Keras 2)."""
    value = as_int(value, what, owner, minimum=1)
    if value > 2**31:
        raise ValueError(f"{owner}: {what}={value} is far too large")
    return value


def shape_error(layer: Layer, expected: str, got: Any) -> ValueError:
    return ValueError(
        f"Input 0 of layer {layer.name} ({type(layer).__name__}) is incompatible "
        f"with the layer: expected {expected}, but received input with shape "
        f"{got}"
    )


class Dense(Layer):
    """``output = activation(dot(input, kernel) + bias)``; kernel (in, units), bias (units,)."""

    supports_masking = True  # the mask of a sequence passes through (as in Keras 3)

    def __init__(
        self,
        units: int | None = None,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        kwargs = legacy(
            kwargs,
            {
                "output_dim": "units",
                "init": "kernel_initializer",
                "bias": "use_bias",
                "W_regularizer": "kernel_regularizer",
                "b_regularizer": "bias_regularizer",
                "W_constraint": "kernel_constraint",
                "b_constraint": "bias_constraint",
            },
            "Dense",
        )
        units = kwargs.pop("units", units)
        kernel_initializer = kwargs.pop("kernel_initializer", kernel_initializer)
        use_bias = kwargs.pop("use_bias", use_bias)
        kernel_regularizer = kwargs.pop("kernel_regularizer", kernel_regularizer)
        bias_regularizer = kwargs.pop("bias_regularizer", bias_regularizer)
        kernel_constraint = kwargs.pop("kernel_constraint", kernel_constraint)
        bias_constraint = kwargs.pop("bias_constraint", bias_constraint)
        super().__init__(**kwargs)
        self.units = positive_int(units, "units", f"Dense {self.name}")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizer(kernel_regularizer)
        self.bias_regularizer = _regularizer(bias_regularizer)
        self.kernel_constraint = _constraint(kernel_constraint)
        self.bias_constraint = _constraint(bias_constraint)

    def check_input(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) < 2:
            raise shape_error(self, "a tensor of at least 2 dimensions", input_shape)
        if input_shape[-1] is None:
            raise shape_error(self, "the last dimension to be defined", input_shape)
        if self.built and input_shape[-1] != self.kernel.shape[0]:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible with the layer: "
                f"expected axis -1 of input shape to have value "
                f"{self.kernel.shape[0]} but received input with shape "
                f"{tuple(input_shape)}"
            )

    def build(self, input_shape):
        self.kernel = self.add_weight(
            "kernel",
            (input_shape[-1], self.units),
            self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = (
            self.add_weight(
                "bias",
                (self.units,),
                self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
            if self.use_bias
            else None
        )
        self.built = True

    def call(self, inputs):
        y = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _serialize_reg(self.kernel_regularizer),
            "bias_regularizer": _serialize_reg(self.bias_regularizer),
            "activity_regularizer": _serialize_reg(self.activity_regularizer),
            "kernel_constraint": _serialize_constraint(self.kernel_constraint),
            "bias_constraint": _serialize_constraint(self.bias_constraint),
        }


def _constraint(value: Any) -> Any:
    from .. import constraints

    return constraints.get(value)


def _serialize_constraint(value: Any) -> Any:
    from .. import constraints

    return constraints.serialize(value)


def _regularizer(value: Any) -> Any:
    from .. import regularizers

    return regularizers.get_optional(value)


def _serialize_reg(value: Any) -> Any:
    from .. import regularizers

    return regularizers.serialize_optional(value)


class Activation(Layer):
    supports_masking = True

    def __init__(self, activation: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of inputs while training (scaling the rest by 1/(1-rate))."""

    supports_masking = True

    def __init__(
        self, rate: float | None = None, noise_shape: Any = None, seed: Any = None, **kwargs: Any
    ):
        if "p" in kwargs:  # Keras 1
            rate = kwargs.pop("p")
        super().__init__(**kwargs)
        if rate is None or isinstance(rate, bool) or not 0 <= float(rate) < 1:
            raise ValueError(f"Dropout {self.name}: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None
        self.seed = check_seed(seed, f"Dropout {self.name}")

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        B = _backend.current()
        shape = ops.shape(inputs)
        if self.noise_shape is not None:
            shape = tuple(s if n is None else n for s, n in zip(shape, self.noise_shape))
        keep = B.cast(
            B.greater_equal(uniform_noise(self, shape, ops.dtype_name(inputs)), self.rate),
            ops.dtype_name(inputs),
        )
        return ops.multiply(inputs, B.multiply(keep, 1.0 / (1.0 - self.rate)))

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "noise_shape": list(self.noise_shape) if self.noise_shape else None,
            "seed": self.seed,
        }


def check_seed(seed: Any, owner: str) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not hasattr(seed, "__index__")):
        raise ValueError(f"{owner}: seed must be an int or None, got {seed!r}")
    return None if seed is None else int(seed)


def uniform_noise(layer: Layer, shape: tuple, dtype: str) -> Any:
    """Uniform [0, 1) noise for a layer's dropout masks: from the backend's generator, or,
    when the layer has a ``seed``, from the layer's own generator seeded with it (the same
    seed gives the same sequence of masks, run after run, on every backend)."""
    B = _backend.current()
    seed = getattr(layer, "seed", None)
    if seed is None:
        return B.random_uniform(tuple(shape), dtype)
    import numpy as np

    gen = layer.__dict__.get("_noise_generator")
    if gen is None:
        gen = layer.__dict__["_noise_generator"] = np.random.default_rng(seed)
    return B.asarray(gen.random(tuple(shape)).astype(dtype))


class Flatten(Layer):
    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        from ..config import normalize_data_format

        self.data_format = normalize_data_format(data_format)

    def check_input(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) < 2:
            raise shape_error(self, "a tensor of at least 2 dimensions", input_shape)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(d is None for d in rest):
            raise ValueError(
                f'The shape of the input to "Flatten" ({self.name}) is not fully '
                f"defined (got {tuple(rest)}). Make sure to pass a complete "
                '"input_shape" or "batch_input_shape" argument to the first '
                "layer in your model."
            )
        return (input_shape[0], int(math.prod(rest)))

    def call(self, inputs):
        shape = ops.shape(inputs)
        if self.data_format == "channels_first" and len(shape) > 2:
            inputs = ops.transpose(inputs, (0,) + tuple(range(2, len(shape))) + (1,))
        return ops.reshape(inputs, (shape[0], int(math.prod(shape[1:]))))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    def __init__(self, target_shape: tuple, **kwargs: Any):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)
        if sum(1 for d in self.target_shape if d == -1) > 1:
            raise ValueError(f"Reshape {self.name}: at most one dimension may be -1")

    def compute_output_shape(self, input_shape):
        known = input_shape[1:]
        target = list(self.target_shape)
        if None in known:
            return (input_shape[0],) + tuple(None if d == -1 else d for d in target)
        total = math.prod(known)
        if -1 in target:
            rest = math.prod(d for d in target if d != -1)
            if rest == 0 or total % rest:
                raise ValueError(
                    f"Reshape {self.name}: cannot reshape {tuple(known)} "
                    f"({total} values) into {self.target_shape}"
                )
            target[target.index(-1)] = total // rest
        elif math.prod(target) != total:
            raise ValueError(
                f"Reshape {self.name}: total size of the new array must be "
                f"unchanged: input {tuple(known)} has {total} values, target "
                f"{self.target_shape} has {math.prod(target)}"
            )
        return (input_shape[0],) + tuple(target)

    def call(self, inputs):
        shape = ops.shape(inputs)
        out = self.compute_output_shape((None,) + tuple(shape[1:]))
        return ops.reshape(inputs, (shape[0],) + tuple(out[1:]))

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    def __init__(self, dims: tuple, **kwargs: Any):
        super().__init__(**kwargs)
        self.dims = tuple(dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(
                f"Permute {self.name}: dims must be a permutation of "
                f"1..{len(self.dims)}, got {self.dims}"
            )

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims) + 1:
            raise shape_error(self, f"{len(self.dims) + 1} dimensions", input_shape)
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def call(self, inputs):
        return ops.transpose(inputs, (0,) + self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    def __init__(self, n: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.n = positive_int(n, "n", f"RepeatVector {self.name}")

    def check_input(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) != 2:
            raise shape_error(self, "a 2-D tensor (batch, features)", input_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def call(self, inputs):
        shape = ops.shape(inputs)
        return ops.broadcast_to(ops.expand_dims(inputs, 1), (shape[0], self.n, shape[1]))

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Lambda(Layer):
    """Wraps a Python function.  It runs, but is never serialized (no code in files).

    ``output_shape`` (Keras 2): a shape without the batch dimension, a list of them (one per
    output), or a function of the input shape(s), batch dimension included.  Without it the
    output shape is found by running the function on small batches (see
    :meth:`_probe_output_shape`).

    ``mask``: the output's mask, as a function ``mask(inputs, previous_mask)`` or a fixed
    mask (an array); without it the layer drops its input's mask, as in Keras.  A function
    that takes ``mask`` (or ``training``) receives it.  ``arguments``: keyword arguments
    for the function."""

    def __init__(
        self,
        function: Any,
        output_shape: Any = None,
        mask: Any = None,
        arguments: dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda {self.name}: function must be callable")
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(
                f"Lambda {self.name}: arguments must be a dict of keyword arguments for the "
                f"function, got {type(arguments).__name__}"
            )
        self.function = function
        self._output_shape = output_shape
        self.mask = mask
        self.supports_masking = mask is not None
        self.arguments = arguments or {}
        self._input_dtypes: list[str] | None = None  # of the latest symbolic call
        import inspect

        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):  # some builtins have no signature
            params = {}  # type: ignore[assignment]
        self._fn_takes = {k for k in ("mask", "training") if k in params}

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        if self.mask is None:
            return None
        B = _backend.current()
        if B.is_native(self.mask):
            return self.mask if B.dtype_name(self.mask) == "bool" else B.cast(self.mask, "bool")
        return B.asarray(np.asarray(self.mask).astype(bool))

    def _call_symbolic(self, inputs, flat, kwargs, masks=None):
        self._input_dtypes = [t.dtype for t in flat]
        return super()._call_symbolic(inputs, flat, kwargs, masks)

    def compute_output_shape(self, input_shape):
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        if self._output_shape is None:
            return self._probe_output_shape(input_shape, shapes)
        owner = f"Lambda {self.name}"
        if callable(self._output_shape):  # given the input shape(s), batch included
            return _shape_or_shapes(self._output_shape(input_shape), owner)
        batch = shapes[0][0] if shapes and len(shapes[0]) else None
        out = _shape_or_shapes(self._output_shape, owner)
        return [(batch,) + s for s in out] if isinstance(out, list) else (batch,) + out

    def _probe_output_shape(self, input_shape, shapes):
        """Run the function on two small batches of ones on the active backend, with unknown
        dimensions (the batch, None sizes) set to 2 and 5, then to 3 and 7: an output
        dimension that is the same in both runs is known, one that changes is None."""
        B = _backend.current()
        dtypes = self._input_dtypes
        if dtypes is None or len(dtypes) != len(shapes):
            dtypes = [self.dtype] * len(shapes)
        runs = []
        for batch, free in ((2, 5), (3, 7)):
            probes = [
                tuple((batch if i == 0 else free) if d is None else d for i, d in enumerate(s))
                for s in shapes
            ]
            arrays = [
                _to_layer_dtype(B, B.ones(p, dt), self.dtype) for p, dt in zip(probes, dtypes)
            ]
            try:
                out = self.function(
                    arrays if isinstance(input_shape, list) else arrays[0], **self.arguments
                )
                outs = list(out) if isinstance(out, (list, tuple)) else [out]
                runs.append(
                    [
                        tuple(int(d) for d in (B.shape(o) if B.is_native(o) else np.shape(o)))
                        for o in outs
                    ]
                )
            except Exception as err:
                raise ValueError(
                    f"Lambda layer {self.name}: could not infer its output shape by running "
                    f"the function on a batch of shape "
                    f"{probes if len(probes) > 1 else probes[0]} ({type(err).__name__}: "
                    f"{err}). Pass output_shape= to the Lambda layer (the shape of one "
                    "sample, without the batch dimension)."
                ) from err
        first, second = runs
        if len(first) != len(second) or any(len(a) != len(b) for a, b in zip(first, second)):
            raise ValueError(
                f"Lambda layer {self.name}: the function's outputs change rank "
                f"with the batch size ({first} vs {second}), so its output shape "
                "cannot be inferred. Pass output_shape= to the Lambda layer."
            )
        result = [tuple(x if x == y else None for x, y in zip(a, b)) for a, b in zip(first, second)]
        multi = isinstance(out, (list, tuple))
        return result if multi else result[0]

    def call(self, inputs, mask=None, training=None):
        kwargs = dict(self.arguments)
        if "mask" in self._fn_takes:
            kwargs["mask"] = mask
        if "training" in self._fn_takes:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def get_config(self):
        raise ValueError(
            f"Lambda layer {self.name} wraps Python code, which polykeras never "
            "serializes; write a Layer subclass and register it instead"
        )


def _shape_or_shapes(value: Any, owner: str) -> Any:
    """One shape (a tuple of ints/None, or one int) or a list of shapes (several outputs)."""
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(s, (list, tuple)) for s in value)
    ):
        return [standardize_shape(s, "output_shape", owner) for s in value]
    return standardize_shape(value, "output_shape", owner)


def _any_last_axis(flags: Any, keepdims: bool = False) -> Any:
    """Whether any entry along the last axis is true (a bool array)."""
    counts = ops.sum(ops.cast(flags, "float32"), axis=-1, keepdims=keepdims)
    return ops.greater(counts, 0.0)


class Masking(Layer):
    """Masks the timesteps whose features all equal ``mask_value``: their mask is False
    (``mask = any(x != mask_value, axis=-1)``) and their output is zero; other timesteps
    pass unchanged.  Layers downstream that support masking skip the masked timesteps."""

    supports_masking = True

    def __init__(self, mask_value: Any = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float, np.number)):
            raise TypeError(f"Masking {self.name}: mask_value must be a number, got {mask_value!r}")
        self.mask_value = float(mask_value)

    def compute_mask(self, inputs, mask=None):
        return _any_last_axis(ops.not_equal(inputs, self.mask_value))

    def _output_mask_shapes(self, shape_arg, tensors, mask_shapes, n_out):
        if isinstance(shape_arg, list):
            raise shape_error(self, "one tensor", shape_arg)
        return [tuple(shape_arg[:-1])]

    def call(self, inputs):
        keep = _any_last_axis(ops.not_equal(inputs, self.mask_value), keepdims=True)
        return ops.where(keep, inputs, ops.zeros_like(inputs))

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


class Identity(Layer):
    """Returns its input unchanged (its mask too)."""

    supports_masking = True

    def call(self, inputs):
        return inputs
