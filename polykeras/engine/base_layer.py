"""Symbolic tensors, nodes, the Layer base class and the Input layer.

Calling a layer on symbolic tensors infers the output shapes in pure Python and records a
:class:`Node`; calling it on arrays computes, through the active backend.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import warnings
from typing import Any
from collections.abc import Sequence

from .. import backend as _backend
from .. import config
from ..utils import as_int
from . import naming, subclassing, tracking
from .operators import TensorOperators
from .variables import Variable

Shape = tuple  # a shape with None for unknown dimensions (the batch)


class KerasTensor(TensorOperators):
    """A symbolic tensor: a shape, a dtype and the (layer, node, index) that made it.

    Symbolic tensors compare and hash by identity, so ``lstm.output == encoded_a`` holds
    exactly when they are the same tensor.  Math operators (``x * 2 + 1``, ``x[:, 0]``)
    and ``polykeras.ops`` / ``K`` functions on them add nodes to the graph.
    """

    __slots__ = ("shape", "dtype", "name", "_keras_history", "_keras_mask", "__weakref__")

    def __init__(self, shape: Shape, dtype: str, name: str, history=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.name = name
        self._keras_history = history  # (layer, node_index, tensor_index)
        # None, or a symbolic bool tensor standing for this tensor's mask (its shape is the
        # mask's); as in Keras 2, ``x._keras_mask is not None`` says that ``x`` is masked.
        self._keras_mask: KerasTensor | None = None

    @property
    def _keras_shape(self) -> Shape:
        return self.shape

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape} dtype={self.dtype} name={self.name}>"

    def __bool__(self) -> bool:
        return True

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"{self.name} is a symbolic tensor (shape {self.shape}): it holds no "
            "data. Pass NumPy arrays to fit/evaluate/predict, or call the model "
            "on arrays."
        )

    def __len__(self):
        raise TypeError(
            f"{self.name} is a symbolic tensor (shape {self.shape}); it has no "
            "length. Pass NumPy arrays as data."
        )

    def __iter__(self):
        raise TypeError(
            f"{self.name} is a symbolic tensor (shape {self.shape}); it cannot be "
            "iterated. Index it (x[:, 0]) or use ops.unstack-style slicing instead."
        )


def is_symbolic(x: Any) -> bool:
    return isinstance(x, KerasTensor)


def to_list(x: Any) -> list:
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def unpack(xs: list) -> Any:
    return xs[0] if len(xs) == 1 else xs


class Node:
    """One call of a layer: which tensors went in, which came out."""

    mask_tensors: list | tuple = ()  # (the nodes of Inputs and a model's own node: none)

    def __init__(
        self,
        layer: Layer,
        input_tensors: list[KerasTensor],
        output_tensors: list[KerasTensor],
        arguments: dict | None = None,
        mask_tensors: list | None = None,
    ):
        self.outbound_layer = layer
        self.input_tensors = input_tensors
        self.output_tensors = output_tensors
        self.arguments = arguments or {}
        #: symbolic masks given to the call (``layer(x, mask=m)``): one entry per input,
        #: None where none was given; empty when the call had no mask= (the inputs' own
        #: masks are used).  The node reads them as it reads its inputs.
        self.mask_tensors = list(mask_tensors or [])
        self.inbound_layers = [t._keras_history[0] for t in input_tensors]
        self.node_indices = [t._keras_history[1] for t in input_tensors]
        self.tensor_indices = [t._keras_history[2] for t in input_tensors]
        self.input_shapes = [t.shape for t in input_tensors]
        self.output_shapes = [t.shape for t in output_tensors]
        for inbound in self.inbound_layers:
            inbound._outbound_nodes.append(self)
        for m in self.mask_tensors:
            if m is not None and m._keras_history[0] not in self.inbound_layers:
                m._keras_history[0]._outbound_nodes.append(self)

    def __repr__(self) -> str:
        return f"<Node of {self.outbound_layer.name}>"


# Keyword arguments every layer accepts (Keras 2, plus Keras 1's spellings).
_BASE_KWARGS = {
    "input_shape",
    "batch_input_shape",
    "batch_size",
    "input_dim",
    "dtype",
    "name",
    "trainable",
    "weights",
    "input_length",
    "activity_regularizer",
}


_FLOAT_DTYPES = ("float16", "float32", "float64")
_OTHER_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool")


def check_dtype(value: Any, owner: str, allow_int: bool = False) -> str:
    """A layer's dtype as a name: float16/32/64 (and, where ``allow_int``, integer and bool
    types); None means ``floatx()``.  Anything else is refused by name."""
    if value is None:
        return config.floatx()
    if isinstance(value, dict):  # a Keras 3 dtype policy
        inner = value.get("config")
        value = inner.get("name") if isinstance(inner, dict) else value
    name = value
    if not isinstance(value, str):
        try:
            import numpy as np

            name = np.dtype(value).name
        except TypeError:
            name = None
    if isinstance(name, str) and name.startswith("mixed_"):
        raise ValueError(
            f"{owner}: dtype={value!r} is a mixed precision policy; mixed "
            "precision policies are not supported by polykeras (use "
            "'float16', 'float32' or 'float64')"
        )
    allowed = _FLOAT_DTYPES + (_OTHER_DTYPES if allow_int else ())
    if name not in allowed:
        raise ValueError(
            f"{owner}: dtype={value!r} is not supported; expected one of {', '.join(allowed)}"
        )
    return name


# Activity regularization: while the trainer computes a loss it opens a collector, and each
# layer with an ``activity_regularizer`` run by a model adds its penalty there.  The open
# collector is per thread (and per asyncio task): two models training at once in two
# threads never see each other's penalties.
_ACTIVITY_COLLECTOR: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "polykeras_activity_collector", default=None
)


@contextlib.contextmanager
def collect_activity_losses():
    """Collect the activity penalties of the layers run inside the block (a list)."""
    bucket: list[Any] = []
    token = _ACTIVITY_COLLECTOR.set(bucket)
    try:
        yield bucket
    finally:
        _ACTIVITY_COLLECTOR.reset(token)


def record_activity(layer: Layer, outputs: list) -> None:
    """Add ``activity_regularizer(output) / batch size`` for each output (as Keras 3 and
    tf.keras 2 do) to the open collector, if any."""
    reg = getattr(layer, "activity_regularizer", None)
    bucket = _ACTIVITY_COLLECTOR.get()
    if reg is None or bucket is None:
        return
    from .. import ops

    for out in outputs:
        penalty = reg(out)
        if isinstance(penalty, (int, float)) and penalty == 0:
            continue
        shape = ops.shape(out)
        if shape and shape[0]:
            penalty = ops.multiply(penalty, 1.0 / shape[0])
        bucket.append(penalty)


def add_to_loss(values: Sequence[Any]) -> None:
    """Add each value's sum (``add_loss``: Keras 3 sums what it is given) to the loss being
    computed, if one is (the open collector)."""
    bucket = _ACTIVITY_COLLECTOR.get()
    if bucket is None:
        return
    from .. import ops

    for v in values:
        if isinstance(v, (int, float)):
            if v:
                bucket.append(float(v))
            continue
        if not ops.dtype_name(v).startswith("float"):
            v = ops.cast(v, config.floatx())
        bucket.append(ops.sum(v) if ops.shape(v) else v)


# add_metric: while fit/evaluate runs a batch, the trainer opens a collector (per thread, as
# the loss collector above) and each value a layer gives ``add_metric`` inside ``call`` is
# noted there with its name; the trainer folds them into one ``Mean`` per name.
_METRIC_COLLECTOR: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "polykeras_metric_collector", default=None
)


@contextlib.contextmanager
def collect_added_metrics(into: Any = None):
    """Collect the ``(name, value)`` pairs given to ``add_metric`` inside the block (in a
    new list, or appended to ``into``: anything with an ``append``)."""
    bucket: Any = [] if into is None else into
    token = _METRIC_COLLECTOR.set(bucket)
    try:
        yield bucket
    finally:
        _METRIC_COLLECTOR.reset(token)


def record_metric(name: str, value: Any) -> None:
    """Note a value for the metric ``name`` in the open collector, if any."""
    bucket = _METRIC_COLLECTOR.get()
    if bucket is not None:
        bucket.append((name, value))


def check_add_metric(owner: str, name: Any, aggregation: Any, kwargs: dict) -> str:
    """The checks of tf.keras 2's ``add_metric``; returns the name."""
    if kwargs:
        raise TypeError(f"{owner}: add_metric got unknown keyword argument(s): {sorted(kwargs)}")
    if aggregation not in (None, "mean"):
        raise ValueError(
            f"{owner}: add_metric(aggregation={aggregation!r}) is not supported; the values "
            "are averaged over the epoch: aggregation='mean' (or None, which means the same)"
        )
    if name is None:
        raise ValueError(
            f"{owner}: please provide a name for your metric, like "
            "`self.add_metric(ops.sum(inputs), name='mean_activation')`"
        )
    if not isinstance(name, str) or not name:
        raise TypeError(f"{owner}: add_metric's name must be a non-empty string, got {name!r}")
    return name


# -- masking ------------------------------------------------------------------------------------
# A mask is a backend bool array shaped like its tensor without the feature (last) axis;
# True keeps a position.  Layers pass masks on through ``supports_masking`` and
# ``compute_mask``; a layer whose ``call`` takes ``mask`` receives its inputs' masks.


def own_compute_mask(layer: Layer) -> bool:
    """Whether the layer's class writes its own ``compute_mask`` (the base one only passes
    the input mask on)."""
    return type(layer).compute_mask is not Layer.compute_mask


def spread_masks(masks: Any, n_out: int) -> list:
    """``compute_mask``'s answer as one entry per output (None where an output has none):
    a list goes to the outputs in order, one mask to the first output, as Keras does."""
    if masks is None:
        return [None] * n_out
    flat = list(masks) if isinstance(masks, (list, tuple)) else [masks]
    return flat[:n_out] + [None] * (n_out - len(flat))


def warn_mask_dropped(layer: Layer) -> None:
    """Keras 3's warning for a layer that does not support masking but got a mask."""
    warnings.warn(
        f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with "
        "a mask attached to it. However, this layer does not support masking and will "
        "therefore destroy the mask information. Downstream layers will not see the mask.",
        UserWarning,
        stacklevel=4,
    )


def output_masks(layer: Layer, inputs: Any, in_masks: list, n_out: int) -> list:
    """The masks of a layer call's outputs on arrays (one per output, None where none),
    from its inputs (one tensor or a list) and the inputs' masks (one per input)."""
    if not layer.supports_masking:
        return [None] * n_out
    if not own_compute_mask(layer) and all(m is None for m in in_masks):
        return [None] * n_out
    mask_arg = in_masks if isinstance(inputs, (list, tuple)) else in_masks[0]
    result = spread_masks(layer.compute_mask(inputs, mask_arg), n_out)
    from .. import autodiff

    return [None if m is None else autodiff.detach(m) for m in result]


def check_mask(layer: Layer, mask: Any, input_shape: tuple, index: int | None = None) -> Any:
    """A mask given to a layer call as a backend bool array, after checking it: boolean-like
    (bool, or numbers that are all 0 or 1) and shaped like the start of its input's shape
    (``(batch, timesteps)`` for a ``(batch, timesteps, features)`` input)."""
    import numpy as np

    B = _backend.current()
    which = "" if index is None else f" for input {index}"
    owner = f"layer {layer.name} ({type(layer).__name__})"
    if is_symbolic(mask):
        raise TypeError(
            f"{owner} was given a symbolic tensor as mask={mask.name}{which} while its "
            "inputs are arrays: a symbolic mask goes with symbolic inputs (layer(x, "
            "mask=m) in a model), an array mask with array inputs"
        )
    if B.is_native(mask) or _is_traced(mask):
        from .. import autodiff

        mask = autodiff.detach(mask)
        shape = tuple(B.shape(mask))
        dtype = B.dtype_name(mask)
        host = None if dtype == "bool" else np.asarray(B.to_numpy(mask))
    else:
        host = np.asarray(mask)
        shape, dtype = tuple(host.shape), host.dtype.name
        if dtype == "bool":
            mask = B.asarray(host)
    if dtype != "bool":
        assert host is not None  # read back above for every non-bool mask
        kind = host.dtype.kind
        if kind not in "biuf" or not np.all((host == 0) | (host == 1)):
            raise TypeError(
                f"{owner}: the mask{which} must be boolean (True keeps a position), or "
                f"numbers that are all 0 or 1; got dtype {dtype}"
                + (" with other values" if kind in "iuf" else "")
            )
        mask = B.asarray(host.astype(bool))
    full = tuple(input_shape)
    if not 1 <= len(shape) <= len(full) or shape != full[: len(shape)]:
        raise ValueError(
            f"{owner}: the mask{which} has shape {shape}, which does not fit its input of "
            f"shape {full}; expected the input's shape without the feature axis, "
            f"{full[:-1] if len(full) > 1 else full}"
        )
    return mask


def _probe_mask_shapes(layer: Layer, shape_arg: Any, tensors: list, mask_shapes: list, n_out: int):
    """The shapes of a layer's output masks, found by running its ``compute_mask`` on two
    small batches of ones (unknown sizes set to 2 and 5, then to 3 and 7; a dimension that
    changes between the runs is unknown), as a Lambda's output shape is found."""
    B = _backend.current()
    multi = isinstance(shape_arg, list)
    runs = []
    for batch, free in ((2, 5), (3, 7)):

        def fill(shape, batch=batch, free=free):
            return tuple(
                (batch if i == 0 else free) if d is None else d for i, d in enumerate(shape)
            )

        arrays = [B.ones(fill(t.shape), t.dtype) for t in tensors]
        masks = [
            None if m is None else B.cast(B.ones(fill(m), "float32"), "bool") for m in mask_shapes
        ]
        try:
            got = layer.compute_mask(arrays if multi else arrays[0], masks if multi else masks[0])
        except Exception as err:
            if all(m is None for m in mask_shapes):
                return [None] * n_out  # it needs a mask to make one; none came in
            raise ValueError(
                f"layer {layer.name} ({type(layer).__name__}): could not find the shape of "
                "its output mask by running its compute_mask on a batch of ones "
                f"({type(err).__name__}: {err}); compute_mask must accept arrays of the "
                "layer's input shape and return None, a bool array or a list of them"
            ) from err
        runs.append(
            [
                None if m is None else tuple(int(d) for d in B.shape(m))
                for m in spread_masks(got, n_out)
            ]
        )
    first, second = runs
    result: list[tuple | None] = []
    for a, b in zip(first, second):
        if a is None or b is None or len(a) != len(b):
            result.append(a if b is None or a is None else None)
            continue
        result.append(tuple(x if x == y else None for x, y in zip(a, b)))
    return result


def _check_weight_kwargs(layer: Layer, kwargs: dict) -> None:
    """Keras' other add_weight arguments: inert ones accepted, the rest refused by name."""
    for key, value in kwargs.items():
        if key == "autocast":  # only matters under mixed precision, which is refused
            continue
        if key == "aggregation" and value in (None, "none", "mean", "sum", "only_first_replica"):
            continue  # how replicas combine a variable: polykeras has one replica
        if key == "use_resource" and value in (None, True):
            continue
        raise TypeError(
            f"layer {layer.name}: add_weight({key}={value!r}) is not supported by polykeras"
        )


class Layer:
    """Base class of every layer.  Subclasses implement ``build``, ``call`` and
    ``compute_output_shape`` (and ``get_config`` for their own arguments)."""

    #: Keras 1 argument names mapped to Keras 2 ones, for layers that translate them.
    _legacy_kwargs: dict[str, str] = {}

    #: ``training`` of a call on arrays that does not give it (``layer(x)``): False (Keras
    #: 2's learning phase); augmentation layers say True, as their Keras ``call`` does.
    _trains_when_called_alone = False

    #: Whether the layer passes its input's mask on (or computes one in ``compute_mask``).
    #: A layer that does not gets its input's mask dropped, with Keras 3's warning.  As in
    #: Keras 3, a class that writes its own ``compute_mask`` supports masking unless it
    #: says otherwise.
    supports_masking: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "compute_mask" in cls.__dict__ and "supports_masking" not in cls.__dict__:
            cls.supports_masking = True

    def __init__(
        self,
        name: str | None = None,
        trainable: bool = True,
        dtype: str | None = None,
        **kwargs: Any,
    ):
        unknown = set(kwargs) - _BASE_KWARGS
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: keyword argument(s) not understood: "
                f"{', '.join(sorted(unknown))}"
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(
                f"{type(self).__name__}: name must be a non-empty string, got {name!r}"
            )
        if name is not None and "\x00" in name:
            raise ValueError(
                f"{type(self).__name__}: name {name!r} holds a NUL character, which no file "
                "format can store; choose another name"
            )
        self.name = name or naming.unique(self._name_prefix())
        self.trainable = trainable
        self.dtype = check_dtype(
            dtype, f"{type(self).__name__} {self.name}", allow_int=isinstance(self, InputLayer)
        )
        from .. import regularizers

        self.activity_regularizer = regularizers.get_optional(kwargs.get("activity_regularizer"))
        self.built = False
        self._trainable_weights: list[Variable] = []
        self._non_trainable_weights: list[Variable] = []
        self._inbound_nodes: list[Node] = []
        self._outbound_nodes: list[Node] = []
        self._updates: list[tuple[Variable, Any]] = []
        self._initial_weights = kwargs.get("weights")
        owner = f"{type(self).__name__} {self.name}"
        if kwargs.get("input_length") is not None and (
            kwargs.get("input_dim") is None
            or kwargs.get("input_shape") is not None
            or kwargs.get("batch_input_shape") is not None
        ):
            raise ValueError(
                f"{owner}: input_length (Keras 1) is used only together with "
                "input_dim, to give the input shape (input_length, input_dim); "
                "with input_shape=, put the length in it"
            )
        if (
            kwargs.get("batch_size") is not None
            and kwargs.get("input_shape") is None
            and kwargs.get("input_dim") is None
        ):
            raise ValueError(
                f"{owner}: batch_size is used only together with input_shape= "
                "(or input_dim=); give batch_input_shape= instead"
            )
        batch_input_shape = kwargs.get("batch_input_shape")
        if batch_input_shape is not None:
            batch_input_shape = standardize_shape(
                batch_input_shape, "batch_input_shape", owner, batch=True
            )
        else:
            shape = kwargs.get("input_shape")
            if shape is None and kwargs.get("input_dim") is not None:
                shape = (kwargs["input_dim"],)
                if kwargs.get("input_length") is not None:
                    shape = (kwargs["input_length"], kwargs["input_dim"])
            if shape is not None:
                batch_input_shape = _batch_dim(kwargs.get("batch_size"), owner) + standardize_shape(
                    shape, "input_shape", owner
                )
        self._batch_input_shape = batch_input_shape
        self._accepts_training = "training" in inspect.signature(self.call).parameters
        params = inspect.signature(self.call).parameters
        self._call_takes_mask = "mask" in params and params["mask"].kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        )

    @classmethod
    def _name_prefix(cls) -> str:
        return naming.snake_case(cls.__name__)

    # -- weights ----------------------------------------------------------------------------
    def add_weight(
        self,
        name: str | None = None,
        shape: Sequence[int] | None = None,
        initializer: Any = None,
        trainable: bool = True,
        dtype: str | None = None,
        regularizer: Any = None,
        constraint: Any = None,
        **kwargs: Any,
    ) -> Variable:
        """A weight of this layer.  Keras 2's order (``name, shape``) and Keras 3's
        (``shape`` first, ``name`` optional) are both understood; without an initializer a
        float weight is glorot_uniform, any other zeros, as in Keras."""
        from .. import constraints, initializers, regularizers

        if isinstance(name, (tuple, list)):  # Keras 3: add_weight(shape, initializer, ...)
            if shape is not None and initializer is None:
                initializer = shape
            name, shape = None, name
        _check_weight_kwargs(self, kwargs)
        if shape is None:
            raise ValueError(f"layer {self.name}: add_weight needs shape=")
        if name is None:
            taken = {v.name for v in self.weights}
            name, i = "variable", 0
            while f"{self.name}/{name}:0" in taken:
                i += 1
                name = f"variable_{i}"
        if initializer is None:
            initializer = "glorot_uniform" if (dtype or self.dtype).startswith("float") else "zeros"
        if isinstance(regularizer, (str, dict)):
            regularizer = regularizers.get(regularizer)
        if isinstance(constraint, (str, dict)):
            constraint = constraints.get(constraint)
        shape = tuple(int(s) for s in shape)
        limit = 2**31
        total = 1
        for s in shape:
            if s < 0:
                raise ValueError(
                    f"layer {self.name}: weight {name} has a negative dimension in shape {shape}"
                )
            total *= s
        if total > limit:
            raise ValueError(
                f"layer {self.name}: weight {name} of shape {shape} would hold "
                f"{total:,} values, more than polykeras allows ({limit:,})"
            )
        init = initializers.get(initializer)
        value = initializers.draw(init, shape, dtype or self.dtype)
        var = Variable(value, f"{self.name}/{name}:0", trainable)
        var.regularizer = regularizer
        var.constraint = constraint
        (self._trainable_weights if trainable else self._non_trainable_weights).append(var)
        return var

    # A layer's own variables (add_weight), then those of the layers it keeps in its
    # attributes (a custom layer's parts, see engine.tracking), in Keras 3's order.
    def _own_trainable_weights(self) -> list[Variable]:
        return list(self._trainable_weights) if self.trainable else []

    def _own_non_trainable_weights(self) -> list[Variable]:
        if self.trainable:
            return list(self._non_trainable_weights)
        return list(self._trainable_weights) + list(self._non_trainable_weights)

    def _own_weights(self) -> list[Variable]:
        return self._trainable_weights + self._non_trainable_weights

    def _has_parts(self) -> bool:
        return bool(self.__dict__.get("_tracked_attrs")) and bool(tracking.sublayers(self))

    @property
    def trainable_weights(self) -> list[Variable]:
        if self._has_parts():
            if not self.trainable:
                return []
            return tracking.nested_weights(self, "trainable_weights")
        return self._own_trainable_weights()

    @property
    def non_trainable_weights(self) -> list[Variable]:
        if self._has_parts():
            if not self.trainable:
                return self.weights
            return tracking.nested_weights(self, "non_trainable_weights")
        return self._own_non_trainable_weights()

    @property
    def weights(self) -> list[Variable]:
        if self._has_parts():
            return tracking.nested_weights(self, "weights")
        return self._own_weights()

    @property
    def trainable_variables(self) -> list[Variable]:
        """Keras 3's name for ``trainable_weights``."""
        return self.trainable_weights

    @property
    def non_trainable_variables(self) -> list[Variable]:
        return self.non_trainable_weights

    @property
    def variables(self) -> list[Variable]:
        return self.weights

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if not name.startswith("__"):
            tracking.note_attribute(self, name, value)

    def get_weights(self) -> list:
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        import numpy as np

        params = self.weights  # a model's: every layer's, each variable once
        if len(weights) != len(params):
            raise ValueError(
                f"{type(self).__name__} {self.name} has {len(params)} weight "
                f"arrays, but set_weights got {len(weights)}"
            )
        arrays = []  # check everything before assigning anything
        for var, w in zip(params, weights):
            w = np.asarray(w)
            if tuple(w.shape) != var.shape:
                raise ValueError(
                    f"{type(self).__name__} {self.name}: weight {var.name} has "
                    f"shape {var.shape}, but the array given has shape "
                    f"{tuple(w.shape)}"
                )
            arrays.append(w)
        for var, w in zip(params, arrays):
            var.assign(w.astype(var.dtype))

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on {self.name}, but the layer "
                "isn't built. You can build it manually via: "
                f"`{self.name}.build(batch_input_shape)`."
            )
        total = 0
        for v in self.weights:
            n = 1
            for s in v.shape:
                n *= s
            total += n
        return total

    def add_loss(self, losses: Any, inputs: Any = None) -> None:
        """Add a loss term: inside ``call`` a value computed there (it joins the loss of the
        training step running, summed as Keras 3 sums it); on a model, a symbolic tensor
        computed from its inputs (tf.keras 2's ``model.add_loss(K.mean(...))``), added to
        the loss at every step.  ``inputs`` (Keras 2) is accepted and has no effect on the
        result, as in tf.keras 2."""
        flat = list(losses) if isinstance(losses, (list, tuple)) else [losses]
        symbolic = [t for t in flat if is_symbolic(t)]
        if symbolic:
            if len(symbolic) != len(flat):
                raise ValueError(
                    f"layer {self.name}: add_loss got a mix of symbolic tensors and values"
                )
            add_symbolic = getattr(self, "_add_symbolic_loss", None)
            if add_symbolic is None:
                raise ValueError(
                    f"layer {self.name} ({type(self).__name__}): add_loss on symbolic tensors "
                    "is for models (model.add_loss(tensor)); inside a layer's call, add the "
                    "value computed there"
                )
            for t in symbolic:
                add_symbolic(t)
            return
        for v in flat:
            if callable(v) and not hasattr(v, "shape"):
                v = v()  # Keras 2: a zero-argument callable
            if v is None:
                continue
            self.__dict__.setdefault("_eager_losses", []).append(v)
            add_to_loss([v])

    def add_metric(
        self, value: Any, name: str | None = None, aggregation: str | None = None, **kwargs: Any
    ) -> None:
        """Log a value as a metric (tf.keras 2): inside ``call``, a value computed there;
        on a model built from ``Input`` tensors, a symbolic tensor computed from its inputs.
        ``fit`` and ``evaluate`` log the mean of the values given during the epoch under
        ``name`` (``val_<name>`` for validation).  ``aggregation`` is ``'mean'`` or None
        (the same).  In a ``train_step``/``test_step`` of the model's own, the value
        updates its name's ``Mean`` in ``model.metrics`` at once.  Values given anywhere
        else (``predict``, a call by hand) are not recorded."""
        owner = f"layer {self.name} ({type(self).__name__})"
        name = check_add_metric(owner, name, aggregation, kwargs)
        if is_symbolic(value):
            add_symbolic = getattr(self, "_add_symbolic_metric", None)
            if add_symbolic is None:
                raise ValueError(
                    f"{owner}: add_metric on a symbolic tensor is for models built from Input "
                    "tensors (model.add_metric(tensor, name=...)); inside a layer's call, "
                    "give the value computed there"
                )
            add_symbolic(value, name)
            return
        record_metric(name, value)

    @property
    def losses(self) -> list[Any]:
        """The losses of the last call (``add_loss`` and activity penalties are not kept
        between calls), of this layer and its parts, then the weights' regularization
        penalties (Keras 3's order)."""
        out = list(self.__dict__.get("_eager_losses", ()))
        for sub in tracking.sublayers(self):
            out.extend(sub.__dict__.get("_eager_losses", ()))
        for v in self.weights:
            reg = getattr(v, "regularizer", None)
            if reg is not None:
                out.append(reg(v))
        return out

    def add_update(self, variable: Variable, value: Any) -> None:
        """Ask for ``variable`` to take ``value`` after the current training step."""
        self._updates.append((variable, value))

    # -- the parts subclasses write -----------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        self.built = True

    # (*args, **kwargs): each layer's call names the keywords it takes (training, ...)
    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The mask(s) of this layer's output(s) given its inputs and their masks (one mask,
        or a list with one entry per input): the input mask when the layer supports
        masking, else None.  Return one mask, None, or a list (one per output)."""
        return mask if self.supports_masking else None

    def _output_mask_shapes(self, shape_arg: Any, tensors: list, mask_shapes: list, n_out: int):
        """The shapes of the output masks of a symbolic call (None where an output has no
        mask), from the inputs (symbolic tensors) and their masks' shapes.  Layers whose
        ``compute_mask`` makes masks of their own say the shapes here; otherwise
        ``compute_mask`` is run on small batches of ones to see them."""
        if not self.supports_masking:
            return [None] * n_out
        if not own_compute_mask(self):
            if all(m is None for m in mask_shapes):
                return [None] * n_out
            if isinstance(shape_arg, list):  # the masks go to the outputs in order
                return spread_masks(list(mask_shapes), n_out)
            return [mask_shapes[0]] + [None] * (n_out - 1)
        return _probe_mask_shapes(self, shape_arg, tensors, mask_shapes, n_out)

    def compute_output_dtype(self, input_dtypes: list[str]) -> str:
        return self.dtype

    def check_input(self, input_shape: Any) -> None:
        """Raise a clear error if ``input_shape`` cannot go into this layer."""

    def get_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._batch_input_shape is not None:
            cfg["batch_input_shape"] = list(self._batch_input_shape)
        if self.activity_regularizer is not None:
            from .. import regularizers

            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    # -- calling --------------------------------------------------------------------------------
    def _maybe_build(self, input_shapes: Any) -> None:
        if not self.built:
            self.build(input_shapes)
            self.built = True
            if self._initial_weights is not None:
                self.set_weights(self._initial_weights)
                self._initial_weights = None

    def _check_call_kwargs(self, kwargs: dict) -> dict:
        """Refuse keyword arguments this layer's ``call`` does not take (naming them); a
        ``training`` or ``mask`` the layer does not take is dropped (a mask then only goes
        on to the output, when the layer supports masking)."""
        if not kwargs:
            return kwargs
        params = inspect.signature(self.call).parameters
        open_kwargs = type(self).call is not Layer.call and any(
            p.kind is p.VAR_KEYWORD for p in params.values()
        )
        out = {}
        for key, value in kwargs.items():
            named = key in params and params[key].kind not in (
                params[key].VAR_POSITIONAL,
                params[key].VAR_KEYWORD,
            )
            if key == "mask":
                out[key] = value  # __call__ checks it and gives it to call() if it takes it
            elif named or open_kwargs:
                out[key] = value
            elif key in ("training", "mask"):
                continue
            else:
                takes = [
                    n
                    for n, p in list(params.items())[1:]
                    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                ]
                raise TypeError(
                    f"layer {self.name} ({type(self).__name__}) was called with "
                    f"the keyword argument {key}={value!r:.60}, which its call() "
                    "does not take (it takes: "
                    f"{', '.join(takes) if takes else 'only the inputs'})"
                )
        return out

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        kwargs = self._check_call_kwargs(kwargs)
        flat = to_list(inputs)
        if flat and all(is_symbolic(t) for t in flat):
            masks = self._symbolic_masks(kwargs.pop("mask", None), inputs, flat)
            return self._call_symbolic(inputs, flat, kwargs, masks)
        if any(is_symbolic(t) for t in flat):
            raise TypeError(
                f"layer {self.name} was called on a mix of symbolic tensors and "
                "arrays; pass all symbolic (to build a model) or all arrays"
            )
        return self._call_concrete(inputs, kwargs)

    def _symbolic_masks(self, mask: Any, inputs: Any, flat: list) -> list | None:
        """``mask=`` of a call on symbolic tensors (Keras: ``lstm(x, mask=m)``): one symbolic
        mask, or for a list of inputs a list with one per input (None where an input keeps
        its own mask); checked against the inputs' shapes.  None when no mask was given."""
        if mask is None:
            return None
        owner = f"layer {self.name} ({type(self).__name__})"
        listed = isinstance(inputs, (list, tuple))
        given = list(mask) if isinstance(mask, (list, tuple)) else [mask]
        if len(given) != len(flat) or (listed and not isinstance(mask, (list, tuple))):
            raise ValueError(
                f"{owner} was called on {len(flat)} symbolic input(s), so mask= must be "
                + (
                    f"a list of {len(flat)} masks (None for an input without one)"
                    if listed
                    else "one symbolic tensor"
                )
                + f"; got {type(mask).__name__}"
                + (f" of {len(given)}" if isinstance(mask, (list, tuple)) else "")
            )
        for i, (m, t) in enumerate(zip(given, flat)):
            if m is None:
                continue
            which = f" for input {i}" if listed else ""
            if not is_symbolic(m) or m._keras_history is None:
                raise TypeError(
                    f"{owner} was called on symbolic tensors with a mask{which} that is "
                    f"{type(m).__name__}, not a symbolic tensor: in a model, give the mask "
                    "as an Input (or a layer's output)"
                )
            lead = t.shape[: len(m.shape)]
            if len(m.shape) >= len(t.shape) or any(
                a is not None and b is not None and a != b for a, b in zip(m.shape, lead)
            ):
                raise ValueError(
                    f"{owner}: the mask{which} has shape {m.shape}; expected the start of "
                    f"the input's shape {t.shape} without its last axis, e.g. "
                    f"{t.shape[:-1]}"
                )
        return given if any(m is not None for m in given) else None

    def _call_symbolic(self, inputs, flat, kwargs, masks: list | None = None):
        for i, t in enumerate(flat):
            if t._keras_history is None:
                raise ValueError(
                    f"input {i} of layer {self.name} is not the output of a "
                    "layer or Input(); build graphs from polykeras.Input"
                )
        shapes = [t.shape for t in flat]
        shape_arg = shapes if isinstance(inputs, (list, tuple)) else shapes[0]
        self.check_input(shape_arg)
        self._maybe_build(shape_arg)
        if subclassing.infers_shape_by_running(self):  # a user's layer: run its call
            out_shapes, dtypes = subclassing.probe_output(self, inputs, flat, kwargs)
        else:
            out_shapes = self.compute_output_shape(shape_arg)
            dtypes = None
        multi_out = isinstance(out_shapes, list)
        out_shapes = out_shapes if multi_out else [out_shapes]
        dtype: Any = self.compute_output_dtype([t.dtype for t in flat]) if dtypes is None else None
        node_index = len(self._inbound_nodes)
        outputs = []
        for i, s in enumerate(out_shapes):
            suffix = f"_{i}" if multi_out else ""
            outputs.append(
                KerasTensor(
                    tuple(s),
                    dtype if dtypes is None else dtypes[i],
                    f"{self.name}/out{node_index}{suffix}",
                    (self, node_index, i),
                )
            )
        node = Node(self, flat, outputs, dict(kwargs), masks)
        self._inbound_nodes.append(node)
        self._set_output_masks(shape_arg, flat, outputs, masks)
        return outputs if multi_out else outputs[0]

    def _set_output_masks(
        self, shape_arg: Any, flat: list, outputs: list, masks: list | None = None
    ) -> None:
        """Give each output of a symbolic call its symbolic mask (``_keras_mask``); a mask
        given to the call takes the place of its input's own."""
        own = [t._keras_mask for t in flat]
        if masks is not None:
            own = [m if m is not None else o for m, o in zip(masks, own)]
        mask_shapes = [None if m is None else m.shape for m in own]
        if not self.supports_masking and any(m is not None for m in mask_shapes):
            from .op_layer import OpLayer

            if not isinstance(self, OpLayer):  # ops drop masks silently, as Keras 3's do
                warn_mask_dropped(self)
        shapes = self._output_mask_shapes(shape_arg, flat, mask_shapes, len(outputs))
        for t, m in zip(outputs, shapes):
            if m is not None:
                t._keras_mask = KerasTensor(m, "bool", f"{t.name}/mask")

    def _call_concrete(self, inputs, kwargs):
        B = _backend.current()
        if self.__dict__.get("_eager_losses"):
            self._eager_losses = []
        flat = to_list(inputs)
        arrays = [
            x if (B.is_native(x) or _is_traced(x)) else B.asarray(_as_float(x, self)) for x in flat
        ]
        arrays = [_to_layer_dtype(B, a, self.dtype) for a in arrays]
        shapes = [(None,) + tuple(_shape_of(B, a))[1:] for a in arrays]
        shape_arg = shapes if isinstance(inputs, (list, tuple)) else shapes[0]
        self.check_input(shape_arg)
        self._maybe_build(shape_arg)
        value = arrays if isinstance(inputs, (list, tuple)) else arrays[0]
        if self._accepts_training and "training" not in kwargs:
            kwargs = dict(kwargs, training=self._trains_when_called_alone)
        if "mask" in kwargs:
            kwargs = dict(kwargs)
            mask = self._eager_mask(kwargs.pop("mask"), inputs, B, arrays)
            if mask is not None and self._call_takes_mask:
                kwargs["mask"] = mask
            elif mask is not None and not self.supports_masking:
                warn_mask_dropped(self)
        return self.call(value, **kwargs)

    def _eager_mask(self, mask: Any, inputs: Any, B: Any, arrays: list) -> Any:
        """A mask given to an eager call, checked: one per input for a list of inputs."""
        if mask is None:
            return None
        full = [tuple(_shape_of(B, a)) for a in arrays]
        if isinstance(inputs, (list, tuple)):
            if not isinstance(mask, (list, tuple)) or len(mask) != len(full):
                raise ValueError(
                    f"layer {self.name} ({type(self).__name__}) was called on "
                    f"{len(full)} inputs, so mask= must be a list of {len(full)} masks "
                    "(None for an input without one)"
                )
            masks = [
                None if m is None else check_mask(self, m, s, i)
                for i, (m, s) in enumerate(zip(mask, full))
            ]
            return None if all(m is None for m in masks) else masks
        return check_mask(self, mask, full[0])

    @property
    def input_mask(self) -> Any:
        """Keras 2: the symbolic mask of the layer's input (None when unmasked)."""
        inputs = to_list(self.input)
        return unpack([t._keras_mask for t in inputs])

    @property
    def output_mask(self) -> Any:
        """Keras 2: the symbolic mask of the layer's output (None when unmasked)."""
        outputs = to_list(self.output)
        return unpack([t._keras_mask for t in outputs])

    # -- nodes ------------------------------------------------------------------------------------
    def _node_attr(self, node_index: int, attr: str, what: str) -> Any:
        if not self._inbound_nodes:
            raise AttributeError(
                f"Layer {self.name} is not connected, no {what} to return."
                if what != "input"
                else f"Layer {self.name} is not connected, no input to return."
            )
        if not isinstance(node_index, int) or not (0 <= node_index < len(self._inbound_nodes)):
            raise ValueError(
                f"Asked to get {what} at node {node_index}, but the layer "
                f"{self.name} has only {len(self._inbound_nodes)} inbound "
                "nodes."
            )
        values = getattr(self._inbound_nodes[node_index], attr)
        return unpack(list(values))

    def get_input_at(self, node_index: int) -> Any:
        return self._node_attr(node_index, "input_tensors", "input")

    def get_output_at(self, node_index: int) -> Any:
        return self._node_attr(node_index, "output_tensors", "output")

    def get_input_shape_at(self, node_index: int) -> Any:
        return self._node_attr(node_index, "input_shapes", "input shape")

    def get_output_shape_at(self, node_index: int) -> Any:
        return self._node_attr(node_index, "output_shapes", "output shape")

    def _single_node(self, attr: str, what: str, via: str) -> Any:
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name} is not connected, no {what} to return.")
        if len(self._inbound_nodes) > 1:
            if attr in ("input_shapes", "output_shapes"):
                values = {repr(getattr(n, attr)) for n in self._inbound_nodes}
                if len(values) == 1:
                    return self._node_attr(0, attr, what)
                raise AttributeError(
                    f'The layer "{self.name}" has multiple inbound nodes, with different '
                    f'{what}s. Hence the notion of "{what}" is ill-defined for the layer. '
                    f"Use `{via}(node_index)` instead."
                )
            raise AttributeError(
                f"Layer {self.name} has multiple inbound nodes, hence the notion of "
                f'"layer {what}" is ill-defined. Use `{via}(node_index)` instead.'
            )
        return self._node_attr(0, attr, what)

    @property
    def input(self) -> Any:
        return self._single_node("input_tensors", "input", "get_input_at")

    @property
    def output(self) -> Any:
        return self._single_node("output_tensors", "output", "get_output_at")

    @property
    def input_shape(self) -> Any:
        return self._single_node("input_shapes", "input shape", "get_input_shape_at")

    @property
    def output_shape(self) -> Any:
        return self._single_node("output_shapes", "output shape", "get_output_shape_at")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


def _is_traced(x) -> bool:
    from ..autodiff import Traced

    return type(x) is Traced


def _shape_of(B, a):
    from ..autodiff import Traced

    return B.shape(a.value if type(a) is Traced else a)


def _to_layer_dtype(B, a, dtype):
    """Floats of another precision become the layer's dtype (as Keras casts inputs)."""
    if _is_traced(a) or not dtype.startswith("float"):
        return a
    current = B.dtype_name(a)
    return B.cast(a, dtype) if current.startswith("float") and current != dtype else a


def _as_float(x, layer):
    import numpy as np

    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"layer {layer.name} got an object array; expected numbers")
    if arr.dtype.kind == "f" and arr.dtype.name != layer.dtype and layer.dtype.startswith("float"):
        arr = arr.astype(layer.dtype)
    return arr


class InputLayer(Layer):
    """The layer behind ``Input()``: it only holds the model's entry tensor."""

    _batch_input_shape: Shape  # always known for an input

    @classmethod
    def _name_prefix(cls) -> str:
        return "input"

    def __init__(
        self,
        input_shape=None,
        batch_size=None,
        batch_input_shape=None,
        dtype=None,
        name=None,
        sparse=False,
        ragged=False,
        **kwargs,
    ):
        owner = f"Input {name}" if name else "Input"
        for flag, value in (("sparse", sparse), ("ragged", ragged)):
            if value:
                raise ValueError(
                    f"{owner}: {flag}=True is not supported by polykeras (inputs "
                    f"are dense arrays); pass {flag}=False"
                )
        if kwargs.get("activity_regularizer") is not None:
            raise ValueError(
                f"{owner}: an Input takes no activity_regularizer (it computes "
                "nothing); give it to the layer that reads the input"
            )
        if batch_input_shape is None:
            if input_shape is None:
                raise ValueError("Input/InputLayer needs shape= (or batch_shape=)")
            batch_input_shape = _batch_dim(batch_size, owner) + standardize_shape(
                input_shape, "shape", owner
            )
        else:
            batch_input_shape = standardize_shape(
                batch_input_shape, "batch_shape", owner, batch=True
            )
        super().__init__(
            name=name, dtype=dtype or config.floatx(), batch_input_shape=batch_input_shape, **kwargs
        )
        self.built = True
        self.is_placeholder = True
        tensor = KerasTensor(batch_input_shape, self.dtype, self.name, (self, 0, 0))
        self._inbound_nodes.append(_InputNode(self, tensor))

    def get_config(self) -> dict[str, Any]:
        return {
            "batch_input_shape": list(self._batch_input_shape),
            "dtype": self.dtype,
            "sparse": False,
            "name": self.name,
        }


def standardize_shape(shape: Any, what: str, owner: str, batch: bool = False) -> Shape:
    """``shape`` as a tuple of plain ints and None, the same for every way a shape is given
    (``input_shape=``, ``batch_input_shape=``, ``Input(shape=)``, ``InputLayer``).

    A shape without the batch dimension may be one int (``Input(shape=784)`` is ``(784,)``);
    a batch shape may not, since one int cannot hold both the batch and a sample's size."""
    if not isinstance(shape, (tuple, list)):
        if batch:
            hint = ""
            if hasattr(shape, "__index__"):
                sample = {"batch_shape": "shape", "batch_input_shape": "input_shape"}.get(what)
                hint = f" (for samples of shape ({shape},), write {what}=(None, {shape})" + (
                    f" or {sample}=({shape},))" if sample else ")"
                )
            raise TypeError(
                f"{owner}: {what} must be a tuple or list that includes the "
                f"batch dimension, e.g. (None, 784); got {shape!r}{hint}"
            )
        if isinstance(shape, bool) or not hasattr(shape, "__index__"):
            raise TypeError(
                f"{owner}: {what} must be a tuple of ints (None for an unknown "
                f"size), e.g. (784,), or one int; got {shape!r}"
            )
        shape = (shape,)
    return tuple(
        None
        if d is None
        else as_int(
            d, f"every dimension of {what} {tuple(shape)}", owner, minimum=0, allow_float=False
        )
        for d in shape
    )


def _batch_dim(batch_size: Any, owner: str) -> Shape:
    return (None if batch_size is None else as_int(batch_size, "batch_size", owner),)


class _InputNode(Node):
    def __init__(self, layer: InputLayer, tensor: KerasTensor):
        self.outbound_layer = layer
        self.input_tensors = [tensor]
        self.output_tensors = [tensor]
        self.arguments = {}
        self.inbound_layers = []
        self.node_indices = []
        self.tensor_indices = []
        self.input_shapes = [tensor.shape]
        self.output_shapes = [tensor.shape]


def Input(
    shape=None,
    batch_shape=None,
    name=None,
    dtype=None,
    sparse=False,
    tensor=None,
    batch_size=None,
    **kwargs,
) -> KerasTensor:
    """A symbolic entry point of a model: ``Input(shape=(784,))``."""
    if "batch_input_shape" in kwargs:
        batch_shape = kwargs.pop("batch_input_shape")
    if kwargs:
        raise TypeError(f"Input: keyword argument(s) not understood: {', '.join(kwargs)}")
    if shape is None and batch_shape is None:
        raise ValueError(
            "Please provide to Input either a `shape` or a `batch_shape` "
            "argument. Note that `shape` does not include the batch dimension."
        )
    if tensor is not None:
        raise ValueError(
            "Input: tensor=... (wrapping an existing tensor) is not supported by "
            "polykeras; pass shape= and feed the data to fit/predict"
        )
    layer = InputLayer(
        input_shape=shape,
        batch_size=batch_size,
        batch_input_shape=batch_shape,
        dtype=dtype,
        name=name,
        sparse=sparse,
    )
    return layer._inbound_nodes[0].output_tensors[0]
