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


class _GammaBetaWeights(Layer):
    """What every normalization here shares: epsilon, center/scale and the initializers,
    regularizers and constraints of gamma and beta, the two weights (gamma first) and
    their config entries."""

    def _init_gamma_beta(
        self,
        epsilon: Any,
        center: Any,
        scale: Any,
        beta_initializer: Any,
        gamma_initializer: Any,
        beta_regularizer: Any,
        gamma_regularizer: Any,
        beta_constraint: Any,
        gamma_constraint: Any,
        owner: str | None = None,
    ) -> None:
        if owner is None:
            owner = f"{type(self).__name__} {self.name}"
        self.epsilon = as_float(epsilon, "epsilon", owner, low=0.0, low_open=True)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get_optional(beta_regularizer)
        self.gamma_regularizer = regularizers.get_optional(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma: Variable | None = None  # made by build()
        self.beta: Variable | None = None

    def _make_gamma_beta(self, param_shape: tuple, with_beta: bool = True) -> None:
        if self.scale:
            self.gamma = self.add_weight(
                "gamma",
                param_shape,
                self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
            )
        if self.center and with_beta:
            self.beta = self.add_weight(
                "beta",
                param_shape,
                self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
            )

    def _gamma_beta_config(self) -> dict[str, Any]:
        return {
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize_optional(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize_optional(self.gamma_regularizer),
            "beta_constraint": regularizers.serialize_constraint(self.beta_constraint),
            "gamma_constraint": regularizers.serialize_constraint(self.gamma_constraint),
        }


class BatchNormalization(_GammaBetaWeights):
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
        self._init_gamma_beta(
            epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
            gamma_regularizer, beta_constraint, gamma_constraint, owner=cls,
        )  # fmt: skip
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
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
        self._make_gamma_beta(param_shape)
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


# -- per-sample normalizations -------------------------------------------------------------------
def _check_axis_arg(axis: Any, owner: str) -> int | list[int]:
    """An ``axis`` argument as Keras takes it: one int, or a non-empty list/tuple of ints."""
    if isinstance(axis, (list, tuple)):
        if not axis or not all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
            raise TypeError(f"{owner}: axis must be an int or a list of ints, got {axis!r}")
        return [int(a) for a in axis]
    if isinstance(axis, int) and not isinstance(axis, bool):
        return int(axis)
    if hasattr(axis, "__index__") and not isinstance(axis, bool):  # NumPy integers
        return int(axis)
    raise TypeError(f"{owner}: axis must be an int or a list of ints, got {axis!r}")


def _resolve_axes(layer: Layer, axis: int | list[int], shape: tuple) -> list[int]:
    """``axis`` as sorted non-negative positions in an input of ``shape`` (batch axis
    included), with a clear error for an axis the input does not have."""
    ndim = len(shape)
    given = axis if isinstance(axis, list) else [axis]
    out = []
    for a in given:
        if not -ndim <= a < ndim:
            raise ValueError(
                f"layer {layer.name} ({type(layer).__name__}): axis {a} is out of range for an "
                f"input of {ndim} dimensions (shape {tuple(shape)}); expected an axis in "
                f"[{-ndim}, {ndim - 1}]"
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(
            f"layer {layer.name} ({type(layer).__name__}): duplicate axes in axis={axis!r}"
        )
    return sorted(out)


def _one_input(layer: Layer, input_shape: Any) -> tuple:
    if isinstance(input_shape, list):
        raise ValueError(  # noqa: TRY004
            f"layer {layer.name} ({type(layer).__name__}) takes one input, got {len(input_shape)}"
        )
    return tuple(input_shape)


class _GammaBeta(_GammaBetaWeights):
    """The parts LayerNormalization and GroupNormalization share: gamma and beta (above),
    masking and the check of a built layer's input shape."""

    supports_masking = True
    _param_axes: list[int]  # the input axes gamma and beta span (set by build)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def _check_built_shape(self, shape: tuple) -> None:
        built = getattr(self, "_built_shape", None)
        if built is None:
            return
        cls = type(self).__name__
        if len(shape) != len(built):
            raise ValueError(
                f"Input 0 of layer {self.name} ({cls}) is incompatible with the layer: "
                f"expected ndim={len(built)}, found ndim={len(shape)}. Full shape "
                f"received: {shape}"
            )
        for a in self._param_axes:
            if shape[a] != built[a]:
                raise ValueError(
                    f"Input 0 of layer {self.name} ({cls}) is incompatible with the layer: "
                    f"expected axis {a} of the input to have size {built[a]}, but received "
                    f"input with shape {shape}"
                )


class LayerNormalization(_GammaBeta):
    """Normalize each sample over ``axis`` (Ba et al. 2016): ``(x - mean) / sqrt(var +
    epsilon) * gamma + beta``, the mean and (biased) variance taken over the ``axis`` axes of
    that sample only, so training and inference compute the same thing.

    ``gamma`` and ``beta`` span the ``axis`` axes (shape ``tuple(input_shape[a] for a in
    axis)``), gamma first.  Keras 3's ``rms_scaling=True`` is supported with Keras 3's
    numbers: ``x / sqrt(var + epsilon) * gamma``, without centring and without ``beta``.
    """

    def __init__(
        self,
        axis: Any = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ):
        rms_scaling = kwargs.pop("rms_scaling", False)
        super().__init__(**kwargs)
        owner = f"LayerNormalization {self.name}"
        self.axis = _check_axis_arg(axis, owner)
        if not isinstance(rms_scaling, (bool, int)) or rms_scaling not in (0, 1):
            raise ValueError(f"{owner}: rms_scaling must be True or False, got {rms_scaling!r}")
        self.rms_scaling = bool(rms_scaling)
        self._init_gamma_beta(
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
        )

    def check_input(self, input_shape: Any) -> None:
        shape = _one_input(self, input_shape)
        axes = _resolve_axes(self, self.axis, shape)
        for a in axes:
            if a == 0:
                raise ValueError(
                    f"layer {self.name} (LayerNormalization): axis={self.axis!r} names the "
                    "batch axis (0); a sample is normalized over its own features, e.g. "
                    "axis=-1"
                )
            if shape[a] is None:
                raise ValueError(
                    f"Axis {a} of the input of layer {self.name} (LayerNormalization) should "
                    f"have a defined dimension, but the layer received an input with shape "
                    f"{shape}"
                )
        self._check_built_shape(shape)

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        ndim = len(shape)
        axes = _resolve_axes(self, self.axis, shape)
        self._param_axes = axes
        self._built_shape = shape
        param_shape = tuple(shape[a] for a in axes)
        # parameters broadcast as they are when they cover the trailing axes in order
        trailing = axes == list(range(ndim - len(axes), ndim))
        self._broadcast_shape = (
            None if trailing else tuple(shape[i] if i in axes else 1 for i in range(ndim))
        )
        self._make_gamma_beta(param_shape, with_beta=not self.rms_scaling)
        self.built = True

    def _bcast(self, p: Any) -> Any:
        return p if self._broadcast_shape is None else ops.reshape(p, self._broadcast_shape)

    def call(self, inputs: Any) -> Any:
        x = inputs
        if ops.dtype_name(x) != self.dtype:
            x = ops.cast(x, self.dtype)
        if self._broadcast_shape is None and not self.rms_scaling:
            # over the trailing axes: one op (its VJP in the core; the backend's optional
            # layer_norm kernel, e.g. torch's, computes the forward where it has one)
            return ops.layer_norm(
                x, self.gamma, self.beta, num_axes=len(self._param_axes), epsilon=self.epsilon
            )
        axes = tuple(self._param_axes)
        mean = ops.mean(x, axis=axes, keepdims=True)
        diff = ops.subtract(x, mean)
        var = ops.mean(ops.square(diff), axis=axes, keepdims=True)
        inv = ops.divide(1.0, ops.sqrt(ops.add(var, self.epsilon)))
        if self.gamma is not None:
            inv = ops.multiply(inv, self._bcast(self.gamma))
        if self.rms_scaling:  # Keras 3's (deprecated) variant: scaled, not centred
            return ops.multiply(x, inv)
        out = ops.multiply(diff, inv)
        if self.beta is not None:
            out = ops.add(out, self._bcast(self.beta))
        return out

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg["axis"] = self.axis
        cfg.update(self._gamma_beta_config())
        if self.rms_scaling:  # Keras 2 has no such key: written only when it matters
            cfg["rms_scaling"] = True
        return cfg


class GroupNormalization(_GammaBeta):
    """Normalize each sample over groups of channels (Wu & He 2018): the ``axis`` channels
    are split into ``groups`` consecutive groups, and each group is normalized with the mean
    and variance of its channels over every other non-batch axis.  ``groups=-1`` makes one
    group per channel (instance normalization).  ``gamma``/``beta`` have one value per
    channel.  A mask is passed on, but, as in Keras, the statistics do not use it (padded
    steps of a sequence count)."""

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        owner = f"GroupNormalization {self.name}"
        if isinstance(groups, bool) or not hasattr(groups, "__index__"):
            raise ValueError(
                f"{owner}: groups must be a positive int (or -1 for one group per "
                f"channel), got {groups!r}"
            )
        groups = int(groups)
        if groups <= 0 and groups != -1:
            raise ValueError(
                f"{owner}: groups must be a positive int (or -1 for one group per "
                f"channel), got {groups}"
            )
        self.groups = groups
        given = _check_axis_arg(axis, owner)
        if isinstance(given, list):
            if len(given) != 1:
                raise ValueError(f"{owner}: axis must be one int (the channels axis), got {given}")
            given = given[0]
        self.axis: int = given
        self._init_gamma_beta(
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
        )

    def check_input(self, input_shape: Any) -> None:
        shape = _one_input(self, input_shape)
        (a,) = _resolve_axes(self, self.axis, shape)
        cls = type(self).__name__
        if a == 0:
            raise ValueError(
                f"layer {self.name} ({cls}): axis={self.axis} names the batch axis (0); "
                "expected the channels axis, e.g. -1"
            )
        channels = shape[a]
        if channels is None:
            raise ValueError(
                f"Axis {a} of the input of layer {self.name} ({cls}) should have a defined "
                f"dimension, but the layer received an input with shape {shape}"
            )
        groups = channels if self.groups == -1 else self.groups
        if groups > channels:
            raise ValueError(
                f"layer {self.name} ({cls}): the number of groups ({groups}) cannot be more "
                f"than the number of channels ({channels}) of the input of shape {shape}"
            )
        if channels % groups:
            raise ValueError(
                f"layer {self.name} ({cls}): groups={groups} does not divide the "
                f"{channels} channels (axis {self.axis}) of the input of shape {shape}; "
                f"expected a divisor of {channels}"
            )
        self._check_built_shape(shape)

    def build(self, input_shape: Any) -> None:
        shape = tuple(input_shape)
        (a,) = _resolve_axes(self, self.axis, shape)
        self._param_axes = [a]
        self._built_shape = shape
        self._channel_axis = a
        channels = shape[a]
        self._groups = channels if self.groups == -1 else self.groups
        self._make_gamma_beta((channels,))
        self.built = True

    def call(self, inputs: Any) -> Any:
        x = inputs
        if ops.dtype_name(x) != self.dtype:
            x = ops.cast(x, self.dtype)
        shape = ops.shape(x)
        a, g = self._channel_axis, self._groups
        # (..., C, ...) -> (..., G, C // G, ...): statistics over all but batch and G
        grouped_shape = tuple(shape[:a]) + (g, shape[a] // g) + tuple(shape[a + 1 :])
        xg = ops.reshape(x, grouped_shape)
        axes = tuple(i for i in range(1, len(grouped_shape)) if i != a)
        mean = ops.mean(xg, axis=axes, keepdims=True)
        diff = ops.subtract(xg, mean)
        var = ops.mean(ops.square(diff), axis=axes, keepdims=True)
        out = ops.reshape(ops.divide(diff, ops.sqrt(ops.add(var, self.epsilon))), shape)
        bshape = tuple(shape[i] if i == a else 1 for i in range(len(shape)))
        trailing = a == len(shape) - 1
        if self.gamma is not None:
            out = ops.multiply(out, self.gamma if trailing else ops.reshape(self.gamma, bshape))
        if self.beta is not None:
            out = ops.add(out, self.beta if trailing else ops.reshape(self.beta, bshape))
        return out

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update({"groups": self.groups, "axis": self.axis})
        cfg.update(self._gamma_beta_config())
        return cfg


class UnitNormalization(Layer):
    """Scale each sample to unit L2 norm over ``axis``: ``x / sqrt(max(sum(x**2), 1e-12))``.
    No weights."""

    supports_masking = True

    def __init__(self, axis: Any = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = _check_axis_arg(axis, f"UnitNormalization {self.name}")

    def check_input(self, input_shape: Any) -> None:
        shape = _one_input(self, input_shape)
        _resolve_axes(self, self.axis, shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def call(self, inputs: Any) -> Any:
        x = inputs
        if ops.dtype_name(x) != self.dtype:
            x = ops.cast(x, self.dtype)
        axes = tuple(_resolve_axes(self, self.axis, ops.shape(x)))
        return ops.l2_normalize(x, axis=axes, eps=1e-12)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


__all__ += ["GroupNormalization", "LayerNormalization", "UnitNormalization"]
