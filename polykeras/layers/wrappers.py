"""Wrappers: ``TimeDistributed`` (a layer, or a whole model, on every timestep) and
``Bidirectional`` (a recurrent layer run forwards and backwards, outputs merged)."""

from __future__ import annotations

import inspect
from typing import Any

from .. import ops
from ..engine.base_layer import Layer
from .core import shape_error


class TimeDistributed(Layer):
    def __init__(self, layer: Layer, **kwargs: Any):
        if not isinstance(layer, Layer):
            raise ValueError(f"TimeDistributed needs a Layer (or Model) instance, got {layer!r}")
        super().__init__(**kwargs)
        if layer.activity_regularizer is not None:
            raise ValueError(
                f"TimeDistributed {self.name}: the wrapped layer {layer.name} has "
                "an activity_regularizer, which polykeras does not apply inside "
                "TimeDistributed; give it to the TimeDistributed layer instead"
            )
        self.layer = layer
        self.supports_masking = True

    def _inner(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])

    def check_input(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) < 3:
            raise shape_error(self, "at least 3 dimensions (batch, timesteps, ...)", input_shape)
        self.layer.check_input(self._inner(input_shape))

    def build(self, input_shape):
        self.layer._maybe_build(self._inner(input_shape))
        self.built = True

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape(self._inner(input_shape))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def call(self, inputs, training=None, mask=None):
        shape = ops.shape(inputs)
        n, t = shape[0], shape[1]
        flat = ops.reshape(inputs, (n * t,) + tuple(shape[2:]))
        kwargs = {"training": training} if self.layer._accepts_training else {}
        if mask is not None:
            mshape = tuple(ops.shape(mask))
            if len(mshape) < 2 or mshape[:2] != (n, t):
                raise ValueError(
                    f"layer {self.name} (TimeDistributed): the mask must start with the "
                    f"input's (batch, timesteps) = {(n, t)}; got a mask of shape {mshape}"
                )
            if "mask" in inspect.signature(self.layer.call).parameters:
                # each timestep's mask, as the inner layer would see it on that step alone
                kwargs["mask"] = ops.reshape(mask, (n * t,) + mshape[2:])
        y = self.layer.call(flat, **kwargs)
        yshape = ops.shape(y)
        return ops.reshape(y, (n, t) + tuple(yshape[1:]))

    @property
    def trainable_weights(self):
        return self.layer.trainable_weights if self.trainable else []

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.layer.weights
        return self.layer.non_trainable_weights

    @property
    def weights(self):
        return self.layer.weights

    def count_params(self):
        return self.layer.count_params()

    def get_config(self):
        from ..saving.config import serialize_layer

        return {**super().get_config(), "layer": serialize_layer(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..saving.config import deserialize_layer

        config = dict(config)
        layer = deserialize_layer(config.pop("layer"), custom_objects)
        return cls(layer, **config)


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


def _recreate(layer: Any, **changes: Any) -> Any:
    """A new, unbuilt layer of ``layer``'s class from its config, with ``changes``."""
    from ..saving.config import deserialize_layer, serialize_layer

    entry = serialize_layer(layer)
    entry = {**entry, "config": {**entry["config"], **changes}}
    return deserialize_layer(entry)


class Bidirectional(Layer):
    """Run a recurrent layer forwards and a copy backwards over the sequence, then merge.

    ``Bidirectional(layer, merge_mode="concat", weights=None, backward_layer=None)`` as in
    Keras: the forward and backward layers are new layers made from ``layer``'s config,
    named ``forward_<name>`` and ``backward_<name>`` (a given ``backward_layer`` keeps its
    own name and must run the other way).  The backward layer's output sequence is turned
    back to forward time before merging (concatenated on the last axis, summed, multiplied,
    averaged, or returned as a pair with ``merge_mode=None``).  Weights: the forward
    layer's, then the backward layer's.  With ``return_state`` the outputs are followed by
    the forward states, then the backward ones; ``initial_state`` takes them in that order.
    """

    def __init__(
        self,
        layer: Any,
        merge_mode: Any = "concat",
        weights: Any = None,
        backward_layer: Any = None,
        **kwargs: Any,
    ):
        if not isinstance(layer, Layer) or not hasattr(layer, "go_backwards"):
            raise ValueError(
                "Bidirectional: please initialize `Bidirectional` layer with a recurrent "
                f"layer instance (LSTM, GRU, SimpleRNN, RNN...); got {layer!r}"
            )
        if backward_layer is not None and (
            not isinstance(backward_layer, Layer) or not hasattr(backward_layer, "go_backwards")
        ):
            raise ValueError(
                "Bidirectional: backward_layer must be a recurrent layer instance; "
                f"got {backward_layer!r}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Bidirectional: invalid merge_mode {merge_mode!r}; expected one of "
                "'concat', 'sum', 'mul', 'ave' or None"
            )
        if weights is not None:
            kwargs["weights"] = weights  # the forward layer's, then the backward layer's
        super().__init__(**kwargs)
        rnn: Any = layer
        base = _strip(_strip(layer.name, "forward_"), "backward_")
        self.forward_layer: Any = _recreate(layer, name=f"forward_{base}")
        self._backward_given = backward_layer is not None
        if backward_layer is None:
            backward_layer = _recreate(
                layer, name=f"backward_{base}", go_backwards=not rnn.go_backwards
            )
        self.backward_layer: Any = backward_layer
        fwd: Any = self.forward_layer
        bwd: Any = self.backward_layer
        if fwd.go_backwards == bwd.go_backwards:
            raise ValueError(
                f"Bidirectional {self.name}: the forward and backward layers must run in "
                f"opposite directions; both have go_backwards={fwd.go_backwards}"
            )
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(fwd, attr) != getattr(bwd, attr):
                raise ValueError(
                    f"Bidirectional {self.name}: the forward and backward layers must have "
                    f"the same {attr}; got {getattr(fwd, attr)} (forward) and "
                    f"{getattr(bwd, attr)} (backward)"
                )
        for sub in (fwd, bwd):
            if hasattr(sub, "zero_output_for_mask"):  # as Keras: masked steps output zeros
                sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.stateful = fwd.stateful
        self.return_sequences = fwd.return_sequences
        self.return_state = fwd.return_state
        self.supports_masking = True

    # -- calling with initial_state ---------------------------------------------------------
    def __call__(self, inputs: Any, initial_state: Any = None, **kwargs: Any) -> Any:
        if initial_state is not None:
            states = (
                list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            )
            inputs = [inputs] + states
        elif isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]
        for sub in (self.forward_layer, self.backward_layer):
            if getattr(sub, "stateful", False) and not sub.built:
                first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
                if not hasattr(first, "_keras_history") and hasattr(first, "shape"):
                    sub._eager_batch = int(first.shape[0])
        return super().__call__(inputs, **kwargs)

    def _split(self, items: Any) -> tuple[Any, list, list]:
        """(sequence, forward states, backward states) from the inputs (or their shapes)."""
        if not isinstance(items, list):
            return items, [], []
        x, states = items[0], list(items[1:])
        if len(states) % 2:
            raise ValueError(
                f"Bidirectional {self.name}: initial_state must hold the forward layer's "
                f"states then the backward layer's (an even number); got {len(states)}"
            )
        half = len(states) // 2
        return x, states[:half], states[half:]

    def _with_states(self, x: Any, states: list) -> Any:
        return [x] + states if states else x

    def check_input(self, input_shape: Any) -> None:
        x, fs, bs = self._split(input_shape)
        self.forward_layer.check_input(self._with_states(tuple(x), [tuple(s) for s in fs]))
        self.backward_layer.check_input(self._with_states(tuple(x), [tuple(s) for s in bs]))

    def build(self, input_shape: Any) -> None:
        x, fs, bs = self._split(input_shape)
        for sub, states in ((self.forward_layer, fs), (self.backward_layer, bs)):
            if not sub.built:
                sub._maybe_build(self._with_states(tuple(x), [tuple(s) for s in states]))
                for var in sub.weights:  # Keras 2's names: bidirectional/forward_lstm/...
                    if not var.name.startswith(f"{self.name}/"):
                        var.name = f"{self.name}/{var.name}"
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        x, fs, bs = self._split(input_shape)
        outs, states = [], []
        for sub, given in ((self.forward_layer, fs), (self.backward_layer, bs)):
            out = sub.compute_output_shape(self._with_states(tuple(x), [tuple(s) for s in given]))
            if self.return_state:
                out, more = out[0], list(out[1:])
                states += more
            outs.append(tuple(out))
        fwd, bwd = outs
        if self.merge_mode == "concat":
            last = None if fwd[-1] is None or bwd[-1] is None else fwd[-1] + bwd[-1]
            merged: Any = fwd[:-1] + (last,)
        elif self.merge_mode is None:
            merged = [fwd, bwd]
        else:
            if fwd != bwd:
                raise ValueError(
                    f"Bidirectional {self.name}: merge_mode={self.merge_mode!r} needs the "
                    f"forward and backward outputs to have one shape; got {fwd} and {bwd}"
                )
            merged = fwd
        if self.return_state:
            head = merged if isinstance(merged, list) else [merged]
            return head + states
        return merged

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        out = mask if self.return_sequences else None
        masks = [out, out] if self.merge_mode is None else [out]
        if self.return_state:
            n = getattr(self.forward_layer, "_n_states", 1)
            return masks + [None] * (2 * n)
        return masks if self.merge_mode is None else out

    def call(self, inputs: Any, mask: Any = None, training: Any = None) -> Any:
        x, fs, bs = self._split(list(inputs) if isinstance(inputs, (list, tuple)) else inputs)
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        kwargs: dict[str, Any] = {"training": training}
        if mask is not None:
            kwargs["mask"] = mask
        y = self.forward_layer.call(self._with_states(x, fs), **kwargs)
        y_rev = self.backward_layer.call(self._with_states(x, bs), **kwargs)
        states: list = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:  # the backward layer's steps in forward time
            y_rev = ops.getitem(y_rev, (slice(None), slice(None, None, -1)))
        if self.merge_mode == "concat":
            out: Any = ops.concatenate([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            out = ops.add(y, y_rev)
        elif self.merge_mode == "ave":
            out = ops.multiply(ops.add(y, y_rev), 0.5)
        elif self.merge_mode == "mul":
            out = ops.multiply(y, y_rev)
        else:
            out = [y, y_rev]
        if self.return_state:
            return (out if isinstance(out, list) else [out]) + states
        return out

    # -- states and weights -----------------------------------------------------------------
    def reset_states(self, states: Any = None) -> None:
        if not self.stateful:
            raise AttributeError(
                f"layer {self.name} (Bidirectional): reset_states() needs a stateful "
                "layer (wrap a recurrent layer built with stateful=True)"
            )
        if states is None:
            self.forward_layer.reset_states()
            self.backward_layer.reset_states()
            return
        states = list(states)
        half = len(states) // 2
        self.forward_layer.reset_states(states[:half])
        self.backward_layer.reset_states(states[half:])

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return self.forward_layer.trainable_weights + self.backward_layer.trainable_weights

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return self.forward_layer.non_trainable_weights + self.backward_layer.non_trainable_weights

    @property
    def weights(self):
        return self.forward_layer.weights + self.backward_layer.weights

    def count_params(self):
        return self.forward_layer.count_params() + self.backward_layer.count_params()

    def get_config(self):
        from ..saving.config import serialize_layer

        cfg = {**super().get_config(), "layer": serialize_layer(self.forward_layer)}
        cfg["merge_mode"] = self.merge_mode
        if self._backward_given:
            cfg["backward_layer"] = serialize_layer(self.backward_layer)
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..saving.config import deserialize_layer

        config = dict(config)
        layer = deserialize_layer(config.pop("layer"), custom_objects)
        backward = config.pop("backward_layer", None)
        if backward is not None:
            backward = deserialize_layer(backward, custom_objects)
        return cls(layer, backward_layer=backward, **config)
