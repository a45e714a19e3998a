"""TimeDistributed: apply a layer (or a whole model) to every timestep."""

from __future__ import annotations

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

    def call(self, inputs, training=None):
        shape = ops.shape(inputs)
        n, t = shape[0], shape[1]
        flat = ops.reshape(inputs, (n * t,) + tuple(shape[2:]))
        kwargs = {"training": training} if self.layer._accepts_training else {}
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
