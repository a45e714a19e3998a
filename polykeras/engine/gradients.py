"""``K.gradients`` on symbolic tensors: a graph node that differentiates part of the graph.

The node's inputs are the model inputs the loss depends on; when it runs, it re-runs the
part of the graph from those inputs to the loss, differentiates the loss (summed, as
``tf.gradients`` does) with respect to the requested inputs, and outputs the gradients.
It uses the same differentiation as training (the backend's own where it has one).
"""

from __future__ import annotations

from typing import Any

from .. import autodiff, ops
from .base_layer import InputLayer, KerasTensor, Layer


def _graph_inputs(tensor: KerasTensor) -> list[KerasTensor]:
    """The Input tensors ``tensor`` is computed from, in the order first met."""
    found: list[KerasTensor] = []
    seen: set[int] = set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        layer, node_index, _ = t._keras_history
        if isinstance(layer, InputLayer):
            found.append(t)
            continue
        stack.extend(reversed(layer._inbound_nodes[node_index].input_tensors))
    return found


class GradientsLayer(Layer):
    """The gradients of one symbolic loss with respect to some of the model's inputs."""

    def __init__(self, loss: KerasTensor, wrt: list[KerasTensor], **kwargs: Any) -> None:
        from .functional import Functional

        super().__init__(**kwargs)
        inputs = _graph_inputs(loss)
        positions = []
        for i, w in enumerate(wrt):
            matches = [k for k, t in enumerate(inputs) if t is w]
            if not matches:
                raise ValueError(
                    f"K.gradients: variable {i} ({w.name}, shape {w.shape}) is not an Input "
                    f"the loss {loss.name} is computed from; polykeras differentiates with "
                    "respect to a model's Input tensors "
                    f"({', '.join(t.name for t in inputs) or 'none found'})"
                )
            positions.append(matches[0])
        self._graph = Functional(inputs, loss, name=f"{self.name}_graph")
        self._graph_inputs = inputs
        self._positions = positions
        self._wrt_shapes = [tuple(w.shape) for w in wrt]
        self._wrt_dtypes = [w.dtype for w in wrt]

    @property
    def weights(self) -> list:
        return []  # the layers it re-runs own their weights in the enclosing model

    def compute_output_shape(self, input_shape: Any) -> Any:
        return list(self._wrt_shapes)

    def compute_output_dtype(self, input_dtypes: list[str]) -> str:
        return self._wrt_dtypes[0]

    def call(self, inputs: Any) -> Any:
        values = list(inputs) if isinstance(inputs, list) else [inputs]

        def loss_of(leaves: list) -> tuple[Any, None]:
            run = list(values)
            for pos, leaf in zip(self._positions, leaves):
                run[pos] = leaf
            out = self._graph._run_graph(run, training=False)[0]
            return ops.sum(out), None

        _, _, grads = autodiff.value_and_grad(
            loss_of, [autodiff.raw(values[p]) for p in self._positions]
        )
        return list(grads)

    def get_config(self) -> dict[str, Any]:
        raise ValueError(
            f"{self.name}: a K.gradients node is not saved with a model; build the "
            "K.function again after loading"
        )


def symbolic_gradients(loss: KerasTensor, wrt: list[KerasTensor]) -> list[KerasTensor]:
    layer = GradientsLayer(loss, wrt)
    out = layer(list(layer._graph_inputs))
    return out if isinstance(out, list) else [out]
