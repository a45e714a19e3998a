"""``BatchNormalization``, with Keras' weights (gamma, beta, moving_mean, moving_variance).

Training (``training=True``): normalize with the batch's mean and biased variance over every
axis but ``axis``, and ask for the moving statistics to become
``moving * momentum + batch * (1 - momentum)`` after the step (``Layer.add_update``).
Inference: normalize with the moving statistics.  A layer with ``trainable=False`` always runs
in inference mode, as in tf.keras 2 and Keras 3.
"""

from __future__ import annotations

from typing import Any

from .. import autodiff, constraints, initializers, ops
from .. import regularizers
from ..engine.base_layer import Layer
from ..engine.variables import Variable
from ..utils import as_float


_LEGACY: dict[str, str] = {"beta_init": "beta_initializer", "gamma_init": "gamma_initializer"}


class BatchNormalization(Layer):
    """Normalize the activations of the previous layer per feature (Ioffe & Szegedy 2015).

    ``axis`` is the features axis: -1 for channels_last, 1 for channels_first images.
    """

    _legacy_kwargs = _LEGACY

    def __init__(
        self,
        axis: Any = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ):
        cls = type(self).__name__
        # Keras 1 names
        if "beta_init" in kwargs:
            beta_initializer = kwargs.pop("beta_init")
        if "gamma_init" in kwargs:
            gamma_initializer = kwargs.pop("gamma_init")
        mode = kwargs.pop("mode", 0)
        if mode != 0:
            raise ValueError(
                f"{cls}: Keras 1's mode={mode!r} is not supported (only mode=0, "
                "feature-wise normalization, which Keras 2 kept)"
            )
        # Keras 2/3 options accepted only at their defaults
        for name, default in (
            ("renorm", False),
            ("virtual_batch_size", None),
            ("adjustment", None),
            ("synchronized", False),
            ("renorm_clipping", None),
            ("renorm_momentum", 0.99),
        ):
            value = kwargs.pop(name, default)
            if value != default:
                raise ValueError(f"{cls}: {name}={value!r} is not supported by polykeras")
        kwargs.pop("fused", None)  # how the same math is computed: no effect on results
        super().__init__(**kwargs)

        if isinstance(axis, (list, tuple)):
            if not axis or not all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
                raise ValueError(f"{cls}: axis must be an int or a list of ints, got {axis!r}")
            self.axis = list(axis) if len(axis) > 1 else int(axis[0])
        elif isinstance(axis, int) and not isinstance(axis, bool):
            self.axis = axis
        else:
            raise TypeError(f"{cls}: axis must be an int or a list of ints, got {axis!r}")
        self.momentum = as_float(momentum, "momentum", cls, low=0.0, high=1.0)
        self.epsilon = as_float(epsilon, "epsilon", cls, low=0.0, low_open=True)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get_optional(beta_regularizer)
        self.gamma_regularizer = regularizers.get_optional(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma: Variable | None = None  # the weights, made by build()
        self.beta: Variable | None = None
        self.moving_mean: Variable | None = None
        self.moving_variance: Variable | None = None

    # -- shapes ------------------------------------------------------------------------------
    def _axes(self, ndim: int) -> list[int]:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        out = []
        for a in axes:
            if not -ndim <= a < ndim:
                raise ValueError(
                    f"layer {self.name} ({type(self).__name__}): axis {a} is out "
                    f"of range for an input of {ndim} dimensions"
                )
            out.append(a % ndim)
        if len(set(out)) != len(out):
            raise ValueError(f"layer {self.name}: duplicate axes in axis={self.axis!r}")
        return sorted(out)

    def check_input(self, input_shape: Any) -> None:
        cls = type(self).__name__
        if isinstance(input_shape, list):
            raise ValueError(
                f"layer {self.name} ({cls}) takes one input, got "  # noqa: TRY004
                f"{len(input_shape)}"
            )
        shape = tuple(input_shape)
        if len(shape) < 1:
            raise ValueError(
                f"layer {self.name} ({cls}) needs an input with at least one "
                f"dimension, got shape {shape}"
            )
        axes = self._axes(len(shape))
        for a in axes:
            if shape[a] is None:
                raise ValueError(
                    f"Axis {a} of the input of layer {self.name} ({cls}) should "
                    f"have a defined dimension, but the layer received an input "
                    f"with shape {shape}"
                )
        if self.built:
            if len(shape) != self._ndim:
                raise ValueError(
                    f"Input 0 of layer {self.name} ({cls}) is incompatible with "
                    f"the layer: expected ndim={self._ndim}, found "
                    f"ndim={len(shape)}. Full shape received: {shape}"
                )
            got = tuple(shape[a] for a in axes)
            if got != self._feature_dims:
                raise ValueError(
                    f"Input 0 of layer {self.name} ({cls}) is incompatible with "
                    f"the layer: expected axis {self.axis} of the input to have "
                    f"size {self._feature_dims}, but received input with shape "
                    f"{shape}"
                )

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        ndim = len(shape)
        axes = self._axes(ndim)
        self._ndim = ndim
        self._feature_axes = axes
        self._feature_dims = tuple(shape[a] for a in axes)
        self._reduction_axes = tuple(i for i in range(ndim) if i not in axes)
        if len(axes) == 1:
            param_shape: tuple = (shape[axes[0]],)
        else:  # tf.keras: several axes keep every dimension, 1 where reduced
            param_shape = tuple(shape[i] if i in axes else 1 for i in range(ndim))
        self._param_shape = param_shape
        # how a parameter broadcasts against the input (None: as it is)
        bshape = tuple(shape[i] if i in axes else 1 for i in range(ndim))
        self._broadcast_shape = None if (len(axes) == 1 and axes[0] == ndim - 1) else bshape
        if self.scale:
            self.gamma = self.add_weight(
                "gamma",
                param_shape,
                self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
            )
        if self.center:
            self.beta = self.add_weight(
                "beta",
                param_shape,
                self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
            )
        self.moving_mean = self.add_weight(
            "moving_mean", param_shape, self.moving_mean_initializer, trainable=False
        )
        self.moving_variance = self.add_weight(
            "moving_variance", param_shape, self.moving_variance_initializer, trainable=False
        )
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    # -- running -------------------------------------------------------------------------------
    def _bcast(self, p: Any) -> Any:
        return p if self._broadcast_shape is None else ops.reshape(p, self._broadcast_shape)

    def call(self, inputs: Any, training: Any = None) -> Any:
        x = inputs
        if ops.dtype_name(x) != self.dtype:  # e.g. float64 NumPy data on the numpy backend
            x = ops.cast(x, self.dtype)
        training = bool(training) and self.trainable
        if training:
            mean = ops.mean(x, axis=self._reduction_axes, keepdims=True)
            diff = ops.subtract(x, mean)
            var = ops.mean(ops.square(diff), axis=self._reduction_axes, keepdims=True)
            self._register_updates(mean, var)
            std = ops.sqrt(ops.add(var, self.epsilon))
            if self.gamma is not None:
                out = ops.multiply(diff, ops.divide(self._bcast(self.gamma), std))
            else:
                out = ops.divide(diff, std)
            if self.beta is not None:
                out = ops.add(out, self._bcast(self.beta))
            return out
        # inference: x * inv + (beta - moving_mean * inv), with inv = gamma / std
        std = ops.sqrt(ops.add(self.moving_variance, self.epsilon))
        inv = ops.divide(self.gamma, std) if self.gamma is not None else None
        if inv is None:
            out = ops.divide(ops.subtract(x, self._bcast(self.moving_mean)), self._bcast(std))
        else:
            shift = ops.neg(ops.multiply(self.moving_mean, inv))
            if self.beta is not None:
                shift = ops.add(shift, self.beta)
            out = ops.add(ops.multiply(x, self._bcast(inv)), self._bcast(shift))
            return out
        if self.beta is not None:
            out = ops.add(out, self._bcast(self.beta))
        return out

    def _register_updates(self, mean: Any, var: Any) -> None:
        m = self.momentum
        for variable, stat in ((self.moving_mean, mean), (self.moving_variance, var)):
            assert variable is not None  # call() runs after build()
            batch = ops.reshape(autodiff.detach(stat), self._param_shape)
            moving = autodiff.detach(variable)
            new = ops.add(ops.multiply(moving, m), ops.multiply(batch, 1.0 - m))
            self.add_update(variable, new)

    # -- config --------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update(
            {
                "axis": self.axis,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(
                    self.moving_variance_initializer
                ),
                "beta_regularizer": regularizers.serialize_optional(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize_optional(self.gamma_regularizer),
                "beta_constraint": regularizers.serialize_constraint(self.beta_constraint),
                "gamma_constraint": regularizers.serialize_constraint(self.gamma_constraint),
            }
        )
        return cfg


__all__ = ["BatchNormalization"]
