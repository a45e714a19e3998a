"""A linear stack of layers, built as a graph network (``SequentialStack``).  The public
``polykeras.Sequential`` (:mod:`polykeras.models`) adds training and saving."""

from __future__ import annotations

from typing import Any

from .base_layer import Input, InputLayer, KerasTensor, Layer, is_symbolic, standardize_shape
from .functional import Functional


class SequentialStack(Functional):
    """``Sequential([layers])`` or ``Sequential()`` then ``.add(layer)``.

    The first layer gives the input shape (``input_shape=``, Keras 1's ``input_dim=``), or
    an ``InputLayer``/``Input`` may come first; otherwise the model is built on first use.
    """

    def __init__(self, layers: list[Layer] | None = None, name: str | None = None, **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self._stack: list[Layer] = []
        self._input_layer: InputLayer | None = None
        for layer in layers or []:
            self.add(layer)

    @classmethod
    def _name_prefix(cls) -> str:
        return "sequential"

    @property
    def layers(self) -> list[Layer]:
        # as in Keras 2, the automatically made InputLayer is not listed
        return list(self._stack)

    def add(self, layer: Any) -> None:
        if isinstance(layer, KerasTensor):
            origin = layer._keras_history[0]
            if not isinstance(origin, InputLayer):
                raise TypeError(
                    "Sequential.add: a tensor can be added only if it comes from Input()"
                )
            layer = origin
        if not isinstance(layer, Layer):
            raise TypeError(f"The added layer must be an instance of class Layer. Found: {layer!r}")
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError("Sequential: an InputLayer may only come first")
            self._input_layer = layer
            return
        if any(existing.name == layer.name for existing in self._stack):
            raise ValueError(
                f"All layers added to a Sequential model should have unique "
                f'names. Name "{layer.name}" is already the name of a layer in '
                "this model."
            )
        self._stack.append(layer)
        if self._input_layer is None and len(self._stack) == 1:
            shape = getattr(layer, "_batch_input_shape", None)
            if shape is not None:
                self._input_layer = Input(
                    batch_shape=shape, dtype=_input_dtype(layer)
                )._keras_history[0]
        if self._input_layer is not None:
            self._rebuild()

    def pop(self) -> None:
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        self._stack.pop()
        if self._stack and self._input_layer is not None:
            self._rebuild()
        else:
            self._is_graph_network = False
            self.built = False

    def _rebuild(self) -> None:
        """Connect the stack: layers already called keep their node; new ones are called."""
        input_layer = self._input_layer
        assert input_layer is not None  # every caller has set it
        chain = getattr(self, "_chain", None)
        if not chain or chain[0] is not input_layer._inbound_nodes[0].output_tensors[0]:
            chain = [input_layer._inbound_nodes[0].output_tensors[0]]
        del chain[len(self._stack) + 1 :]  # after pop()
        for layer in self._stack[len(chain) - 1 :]:
            x = layer(chain[-1])
            if isinstance(x, list):
                raise TypeError(
                    f"All layers in a Sequential model should have a single "
                    f"output tensor; {layer.name} has {len(x)}. For multi-output "
                    "layers, use the functional API."
                )
            chain.append(x)
        self._chain = chain
        self._init_graph(chain[0], chain[-1])
        self._layers = list(self._stack)

    def build(self, input_shape: Any = None) -> None:
        if self._is_graph_network:
            return
        if input_shape is None:
            raise ValueError("Sequential.build needs an input shape")
        shape = standardize_shape(
            input_shape, "input_shape", f"Sequential {self.name}: build", batch=True
        )
        self._input_layer = Input(batch_shape=shape)._keras_history[0]
        self._rebuild()

    def _ensure_built(self, sample: Any) -> None:
        if self._is_graph_network:
            return
        if not self._stack:
            raise ValueError(f"Sequential model {self.name} has no layers")
        import numpy as np

        if is_symbolic(sample):
            shape = sample.shape
            dtype = sample.dtype
        else:
            arr = np.asarray(sample)
            shape = (None,) + arr.shape[1:]
            dtype = "int32" if arr.dtype.kind in "iu" else None
        self._input_layer = Input(batch_shape=shape, dtype=dtype)._keras_history[0]
        self._rebuild()

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        self._ensure_built(inputs[0] if isinstance(inputs, list) else inputs)
        return super().__call__(inputs, **kwargs)

    def _build_from_data(self, x: Any) -> None:
        """Build a deferred Sequential from the first data it is given."""
        if self._is_graph_network:
            return
        if isinstance(x, dict):
            x = next(iter(x.values()))
        elif isinstance(x, (list, tuple)) and x and not isinstance(x[0], (int, float)):
            x = x[0]
        if hasattr(x, "__polykeras_data__"):
            raise ValueError(
                f"Sequential model {self.name} has no input shape yet; give its "
                "first layer input_shape= before feeding generated data"
            )
        self._ensure_built(x)


def _input_dtype(layer: Layer) -> str | None:
    return getattr(layer, "input_dtype", None)
