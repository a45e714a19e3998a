"""Embedding: integer indices (of any shape) to dense vectors; weights (input_dim, output_dim).

With ``mask_zero=True`` index 0 is padding: the output's mask is ``indices != 0``."""

from __future__ import annotations

from typing import Any

from .. import initializers, ops
from .core import _serialize_constraint, _serialize_reg, legacy, positive_int, shape_error
from ..engine.base_layer import Layer
from ..utils import as_int


class Embedding(Layer):
    def __init__(
        self,
        input_dim: int | None = None,
        output_dim: int | None = None,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        activity_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        input_length: int | None = None,
        **kwargs: Any,
    ):
        kwargs = legacy(
            kwargs,
            {
                "init": "embeddings_initializer",
                "W_regularizer": "embeddings_regularizer",
                "W_constraint": "embeddings_constraint",
            },
            "Embedding",
        )
        embeddings_initializer = kwargs.pop("embeddings_initializer", embeddings_initializer)
        embeddings_regularizer = kwargs.pop("embeddings_regularizer", embeddings_regularizer)
        embeddings_constraint = kwargs.pop("embeddings_constraint", embeddings_constraint)
        dropout = kwargs.pop("dropout", 0.0)  # Keras 1: drop whole embedding rows
        if dropout:
            raise ValueError(
                f"Embedding: Keras 1's dropout={dropout!r} is not supported by "
                "polykeras; put a Dropout layer after the Embedding instead"
            )
        if input_length is not None and not isinstance(input_length, (tuple, list)):
            input_length = as_int(input_length, "input_length", "Embedding")  # np.int64 too
        if (
            input_length is not None
            and "input_shape" not in kwargs
            and "batch_input_shape" not in kwargs
        ):
            kwargs["input_shape"] = (
                (input_length,) if isinstance(input_length, int) else tuple(input_length)
            )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(mask_zero, (bool, int)) or isinstance(mask_zero, float):
            raise TypeError(
                f"Embedding {self.name}: mask_zero must be True or False, got {mask_zero!r}"
            )
        self.input_dim = positive_int(input_dim, "input_dim", f"Embedding {self.name}")
        self.output_dim = positive_int(output_dim, "output_dim", f"Embedding {self.name}")
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        from .core import _constraint, _regularizer

        self.embeddings_regularizer = _regularizer(embeddings_regularizer)
        self.embeddings_constraint = _constraint(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        # as in Keras: index 0 is padding, masked for the layers downstream (it still has its
        # own row, so input_dim counts it)
        self.supports_masking = self.mask_zero
        self.input_length = input_length
        self.input_dtype = "int32"
        self.index_range = (0, self.input_dim)
        # Set by the training step for one call: the table then reads as the batch's distinct
        # rows, and these are the positions of each index among them.
        self._sparse_inverse = None

    def check_input(self, input_shape):
        if isinstance(input_shape, list):
            raise shape_error(self, "one tensor of indices", input_shape)
        if (
            self.input_length is not None
            and len(input_shape) == 2
            and input_shape[1] not in (None, self.input_length)
        ):
            raise ValueError(
                f'"input_length" is {self.input_length}, but received input has '
                f"shape {tuple(input_shape)} (layer {self.name})"
            )

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            "embeddings",
            (self.input_dim, self.output_dim),
            self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
        )
        self.built = True

    def call(self, inputs):
        if self._sparse_inverse is not None:
            return ops._take_rows(self.embeddings, self._sparse_inverse)
        idx = ops.stop_gradient(inputs)
        if not ops.dtype_name(idx).startswith(("int", "uint")):
            idx = ops.cast(idx, "int32")  # as Keras does; model data are checked integral
        return ops._take_rows(self.embeddings, idx)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(ops.stop_gradient(inputs), 0)

    def _output_mask_shapes(self, shape_arg, tensors, mask_shapes, n_out):
        return [tuple(shape_arg) if self.mask_zero else None]

    def compute_output_dtype(self, input_dtypes):
        return self.dtype

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": _serialize_reg(self.embeddings_regularizer),
            "activity_regularizer": _serialize_reg(self.activity_regularizer),
            "embeddings_constraint": _serialize_constraint(self.embeddings_constraint),
            "mask_zero": self.mask_zero,
            "input_length": self.input_length,
        }
