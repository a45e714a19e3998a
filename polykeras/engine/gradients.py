"""``K.gradients`` on symbolic tensors: a graph node that differentiates part of the graph.

The node's inputs are the model inputs the loss depends on; when it runs, it re-runs the
part of the graph from those inputs to the loss, differentiates the loss (summed, as
``tf.gradients`` does) with respect to the requested tensors, and outputs the gradients.
It uses the same differentiation as training (the backend's own where it has one).

A requested tensor is an ``Input`` or any tensor of the graph the loss is computed from
(a hidden layer's output: Grad-CAM's ``K.gradients(score, conv_layer.output)``).  For an
inner tensor the run that is differentiated adds a leaf of zeros to the value its layer
computes (``functional.override_tensors``): the gradient with respect to that leaf is the
gradient with respect to the tensor, every path from it to the loss counted, also where
another requested tensor lies on the way (as ``tf.gradients``).  A plain run of the graph
first gives the leaves' shapes.  A tensor the loss does not depend on has no gradient:
``K.gradients`` gives None for it, as Keras 2 (``tf.gradients``) does.
"""

from __future__ import annotations

from typing import Any

from .. import autodiff, ops
from .. import backend as _backend
from .base_layer import InputLayer, KerasTensor, Layer


def _graph_inputs(tensor: KerasTensor) -> list[KerasTensor]:
    """The Input tensors ``tensor`` is computed from, in the order first met."""
    return [t for t in _ancestors(tensor) if isinstance(t._keras_history[0], InputLayer)]


def _ancestors(tensor: KerasTensor) -> list[KerasTensor]:
    """``tensor`` and every tensor it is computed from (depth first, each once)."""
    found: list[KerasTensor] = []
    seen: set[int] = set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        found.append(t)
        layer, node_index, _ = t._keras_history
        if isinstance(layer, InputLayer):
            continue
        stack.extend(reversed(layer._inbound_nodes[node_index].input_tensors))
    return found


class GradientsLayer(Layer):
    """The gradients of one symbolic loss with respect to tensors it is computed from
    (model inputs, or tensors inside the graph)."""

    def __init__(self, loss: KerasTensor, wrt: list[KerasTensor], **kwargs: Any) -> None:
        from .functional import Functional

        super().__init__(**kwargs)
        inputs = _graph_inputs(loss)
        known = {id(t) for t in _ancestors(loss)}
        for i, w in enumerate(wrt):
            if id(w) not in known:
                raise ValueError(
                    f"K.gradients: variable {i} ({w.name}, shape {w.shape}) is not a tensor "
                    f"the loss {loss.name} is computed from"
                )
        # where each requested tensor is found: ("input", position) or ("inner", position)
        self._where: list[tuple[str, int]] = []
        inner: list[KerasTensor] = []
        for w in wrt:
            at = [k for k, t in enumerate(inputs) if t is w]
            if at:
                self._where.append(("input", at[0]))
                continue
            same = [k for k, t in enumerate(inner) if t is w]
            if not same:
                inner.append(w)
            self._where.append(("inner", same[0] if same else len(inner) - 1))
        self._graph = Functional(inputs, [loss], name=f"{self.name}_graph")
        # the inner tensors' values come from a plain run of the graph first
        self._inner_graph = (
            Functional(inputs, list(inner), name=f"{self.name}_inner") if inner else None
        )
        self._inner = inner
        self._graph_inputs = inputs
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
        from .functional import override_tensors

        B = _backend.current()
        values = [autodiff.raw(v) for v in (inputs if isinstance(inputs, list) else [inputs])]
        zeros: list = []
        if self._inner_graph is not None:
            for v in self._inner_graph._run_graph(values):
                v = autodiff.raw(v)
                zeros.append(B.zeros(B.shape(v), B.dtype_name(v)))
        input_positions = sorted({k for kind, k in self._where if kind == "input"})
        params = [values[k] for k in input_positions] + zeros
        n_in = len(input_positions)

        def loss_of(leaves: list) -> tuple[Any, None]:
            run = list(values)
            for pos, leaf in zip(input_positions, leaves[:n_in]):
                run[pos] = leaf
            table = {
                id(t): (lambda value, leaf=leaf: ops.add(value, leaf))
                for t, leaf in zip(self._inner, leaves[n_in:])
            }
            with override_tensors(table):
                out = self._graph._run_graph(run, training=False)[0]
            return ops.sum(out), None

        _, _, grads = autodiff.value_and_grad(loss_of, params)
        slot = {("input", k): j for j, k in enumerate(input_positions)}
        slot.update({("inner", k): n_in + k for k in range(len(self._inner))})
        return [grads[slot[where]] for where in self._where]

    def get_config(self) -> dict[str, Any]:
        raise ValueError(
            f"{self.name}: a K.gradients node is not saved with a model; build the "
            "K.function again after loading"
        )


def symbolic_gradients(loss: KerasTensor, wrt: list[KerasTensor]) -> list[KerasTensor | None]:
    """``K.gradients(loss, wrt)``: one symbolic gradient per tensor of ``wrt``, and None
    where the loss is not computed from that tensor (as Keras 2 answers)."""
    known = {id(t) for t in _ancestors(loss)}
    connected = [w for w in wrt if id(w) in known]
    if not connected:
        return [None for _ in wrt]
    layer = GradientsLayer(loss, connected)
    out = layer(list(layer._graph_inputs))
    grads = iter(out if isinstance(out, list) else [out])
    return [next(grads) if id(w) in known else None for w in wrt]
