"""The graph network (``Functional``): layers from input tensors to output tensors.

The graph is walked once, when the model is made: ``self._execution`` lists the nodes in
an order where every node comes after the nodes it reads from.  Running the model walks
that list.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading

import warnings
from typing import Any
from collections.abc import Sequence

import numpy as np

from .. import backend as _backend
from ..autodiff import is_traced
from . import subclassing, tracking
from .base_layer import (
    InputLayer,
    KerasTensor,
    add_to_loss,
    Layer,
    Node,
    check_mask,
    is_symbolic,
    output_masks,
    record_activity,
    record_metric,
    to_list,
    unpack,
)


def _override(functions: dict[int, Any], tensor: Any, value: Any) -> Any:
    fn = functions.get(id(tensor))
    return value if fn is None else fn(value)


class GraphError(ValueError):
    """The tensors given do not form a valid model graph."""


# ``K.gradients`` with respect to a tensor inside the graph: while a gradient node re-runs
# its part of the graph, each of those tensors is passed through a function it gives (one
# that adds a differentiable leaf) after its layer computes it.  Per thread, like the
# other run-time settings.
_TENSOR_OVERRIDES: contextvars.ContextVar[dict[int, Any] | None] = contextvars.ContextVar(
    "polykeras_tensor_overrides", default=None
)


@contextlib.contextmanager
def override_tensors(functions: dict[int, Any]):
    """While active, each graph tensor whose ``id`` is a key takes ``function(value)``."""
    token = _TENSOR_OVERRIDES.set(functions)
    try:
        yield
    finally:
        _TENSOR_OVERRIDES.reset(token)


def _history(t: Any, role: str, i: int) -> tuple:
    if not is_symbolic(t):
        raise TypeError(
            f"Model {role}s must be symbolic tensors from polykeras.Input or a "
            f"layer call; {role} {i} is {type(t).__name__}"
        )
    return t._keras_history


def _inbound_tensors(node: Node) -> list:
    """The tensors a node reads (none for an Input's node): its inputs, and the masks given
    to its call."""
    if not node.inbound_layers:
        return []
    masks = node.mask_tensors
    if masks:
        return list(node.input_tensors) + [m for m in masks if m is not None]
    return node.input_tensors


def _as_mask(B: Any, value: Any) -> Any:
    """A mask tensor's value as a bool array (Keras reads nonzero as kept)."""
    if B.dtype_name(value) == "bool":
        return value
    return B.greater(B.abs(value), 0)


class _OwnNode(Node):
    """A model's node 0: its own inputs to its own outputs (reads no outer layer)."""

    def __init__(self, model: Functional):
        self.outbound_layer = model
        self.input_tensors = list(model.inputs)
        self.output_tensors = list(model.outputs)
        self.arguments = {}
        self.inbound_layers = []
        self.node_indices = []
        self.tensor_indices = []
        self.input_shapes = [t.shape for t in model.inputs]
        self.output_shapes = [t.shape for t in model.outputs]


def weights_lock(model: Any) -> threading.RLock:
    """The lock that makes a model's weights change in whole steps for other threads: a
    training step holds it from the forward pass to the last weight written, and every
    forward pass of the model (predict, evaluate, ``model(x)``) holds it too, so a
    ``predict`` in one thread while the same model fits in another sees the weights
    between two steps, never half of one.  Re-entrant (nested models, callbacks)."""
    lock = model.__dict__.get("_weights_lock")
    if lock is None:
        lock = model.__dict__.setdefault("_weights_lock", threading.RLock())
    return lock


class Functional(Layer):
    """A graph of layers from Input tensors to outputs (or a subclassed model's ``call``):
    what runs.  The public ``polykeras.Model`` (:mod:`polykeras.models`) adds training and
    saving to it; the engine itself never imports either.  ``Model(inputs, outputs)``;
    Keras 1's ``Model(input=..., output=...)`` works too."""

    def __init__(
        self, inputs: Any = None, outputs: Any = None, name: str | None = None, **kwargs: Any
    ):
        if "input" in kwargs:
            inputs = kwargs.pop("input") if inputs is None else inputs
        if "output" in kwargs:
            outputs = kwargs.pop("output") if outputs is None else outputs
        trainable = kwargs.pop("trainable", True)
        if kwargs:
            raise TypeError(
                f"Model: keyword argument(s) not understood: {', '.join(sorted(kwargs))}"
            )
        super().__init__(name=name, trainable=trainable)
        self._is_graph_network = False
        self._compiled: Any = None  # set by compile (training.trainer)
        # a subclassed model's data structure and placeholders, once built (subclassing.py)
        self._subclass_inputs: Any = None
        self._subclass_outputs: Any = None
        self._symbolic_losses: list[Any] = []  # add_loss on symbolic tensors
        self._loss_graph: Functional | None = None
        # add_metric on symbolic tensors: (tensor, name); kept out of attribute tracking
        self.__dict__["_symbolic_metrics"] = []
        if inputs is None and outputs is None:
            return  # Sequential builds its graph later; a subclassed model on its first call
        if inputs is None or outputs is None:
            raise TypeError("Model needs both inputs and outputs")
        self._init_graph(inputs, outputs)

    @classmethod
    def _name_prefix(cls) -> str:
        if cls.__module__.split(".")[0] != "polykeras":  # a user's subclass: its own name
            return super()._name_prefix()
        return "model"

    # -- building the graph -------------------------------------------------------------------
    def _init_graph(self, inputs: Any, outputs: Any) -> None:
        self._nested_inputs = inputs
        self._nested_outputs = outputs
        self.inputs: list[KerasTensor] = to_list(inputs)
        self.outputs: list[KerasTensor] = to_list(outputs)
        if not self.inputs:
            raise GraphError("Model needs at least one input")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise GraphError(
                f"The list of inputs passed to the model {self.name} is "
                "redundant: all inputs should only appear once."
            )
        for i, t in enumerate(self.inputs):
            layer, node_index, _ = _history(t, "input", i)
            if not isinstance(layer, InputLayer):
                raise GraphError(
                    f"Input tensors to a Model must come from `polykeras.Input`. Received: "
                    f"{t.name} (missing previous layer metadata) as input {i} of model "
                    f"{self.name}: it is the output of layer {layer.name}."
                )
        for i, t in enumerate(self.outputs):
            _history(t, "output", i)
        self.input_layers = [t._keras_history[0] for t in self.inputs]
        self.output_layers = [t._keras_history[0] for t in self.outputs]
        self.input_names = [layer.name for layer in self.input_layers]
        self.output_names = [layer.name for layer in self.output_layers]
        self._build_graph()
        self._warn_unused_inputs()
        self._is_graph_network = True
        self.built = True
        # Node 0 is the model's own (inputs -> outputs), as in Keras 2: calls on new tensors
        # get nodes 1, 2, ...
        own = _OwnNode(self)
        if self._inbound_nodes and isinstance(self._inbound_nodes[0], _OwnNode):
            self._inbound_nodes[0] = own
        else:
            self._inbound_nodes.insert(0, own)

    def _build_graph(self) -> None:
        """Order nodes and layers by depth, as Keras does (so weights come in Keras' order)."""
        nodes_in_order: list[Node] = []
        finished: set[int] = set()
        in_progress: set[int] = set()
        layer_indices: dict[int, int] = {}
        layers_by_id: dict[int, Layer] = {}

        def visit(tensor: KerasTensor) -> None:
            # iterative post-order walk (graphs can be deep)
            stack = [(tensor, False)]
            while stack:
                t, done = stack.pop()
                layer, node_index, _ = t._keras_history
                node = layer._inbound_nodes[node_index]
                if done:
                    in_progress.discard(id(node))
                    if id(node) not in finished:
                        finished.add(id(node))
                        nodes_in_order.append(node)
                    continue
                if id(node) in finished:
                    continue
                if id(node) in in_progress:
                    raise GraphError(
                        f"The tensor {t.name} at layer {layer.name} is part of a cycle."
                    )
                in_progress.add(id(node))
                if id(layer) not in layer_indices:
                    layer_indices[id(layer)] = len(layer_indices)
                    layers_by_id[id(layer)] = layer
                stack.append((t, True))
                for x in reversed(_inbound_tensors(node)):
                    stack.append((x, False))

        for t in self.outputs:
            visit(t)

        node_depth: dict[int, int] = {}
        layer_depth: dict[int, int] = {}
        nodes_by_id = {id(n): n for n in nodes_in_order}
        for node in reversed(nodes_in_order):
            depth = node_depth.setdefault(id(node), 0)
            depth = max(depth, layer_depth.get(id(node.outbound_layer), 0))
            layer_depth[id(node.outbound_layer)] = depth
            node_depth[id(node)] = depth
            for t in _inbound_tensors(node):
                lay, idx, _ = t._keras_history
                inbound = lay._inbound_nodes[idx]
                node_depth[id(inbound)] = max(depth + 1, node_depth.get(id(inbound), 0))

        by_depth: dict[int, list[Node]] = {}
        for nid, d in node_depth.items():
            if nid in nodes_by_id:
                by_depth.setdefault(d, []).append(nodes_by_id[nid])
        order_index = {id(n): i for i, n in enumerate(nodes_in_order)}
        self._nodes_by_depth = {
            d: sorted(ns, key=lambda n: order_index[id(n)]) for d, ns in by_depth.items()
        }
        self._execution: list[Node] = []
        for d in sorted(by_depth, reverse=True):
            self._execution.extend(self._nodes_by_depth[d])

        layers_at: dict[int, list[Layer]] = {}
        for lid, d in layer_depth.items():
            layers_at.setdefault(d, []).append(layers_by_id[lid])
        self._layers: list[Layer] = []
        for d in sorted(layers_at, reverse=True):
            self._layers.extend(sorted(layers_at[d], key=lambda lay: layer_indices[id(lay)]))

        # every tensor a node reads must be computable from the inputs
        available = {id(t) for t in self.inputs}
        for node in self._execution:
            if isinstance(node.outbound_layer, InputLayer):
                tensor = node.output_tensors[0]
                if id(tensor) not in available:
                    raise GraphError(
                        f"Graph disconnected: cannot obtain value for tensor {tensor.name} "
                        f'at layer "{node.outbound_layer.name}". The following previous '
                        f"layers were accessed without issue: "
                        f"{[n.outbound_layer.name for n in self._execution if n is not node][:5]}"
                        f". Add {tensor.name} to the model's inputs (inputs are: "
                        f"{[t.name for t in self.inputs]})."
                    )
                continue
            for t in node.output_tensors:
                available.add(id(t))
        # masks need the slower walk only where some tensor of the graph carries one
        self._uses_masks = any(
            t._keras_mask is not None for node in self._execution for t in node.output_tensors
        ) or any(node.mask_tensors for node in self._execution)
        names = [lay.name for lay in self._layers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise GraphError(
                f"The name {dupes[0]!r} is used {names.count(dupes[0])} times in "
                f"model {self.name}. All layer names should be unique."
            )

    def _warn_unused_inputs(self) -> None:
        """As Keras does, warn about inputs that no output depends on (their data would be
        checked and then never used)."""
        used = {id(layer) for layer in self._layers}
        unused = [t.name for t in self.inputs if id(t._keras_history[0]) not in used]
        if unused:
            warnings.warn(
                f"Model {self.name}: input(s) {', '.join(unused)} are not connected "
                "to any output; the data given for them will not be used",
                UserWarning,
                stacklevel=4,
            )

    # -- the model's own inputs and outputs (node 0), whatever else it was called on -----
    def _own(self, attr: str, what: str):
        if not self._is_graph_network:
            raise AttributeError(f"model {self.name} is not built yet, it has no {what}")
        return unpack(list(getattr(self._inbound_nodes[0], attr)))

    @property
    def input(self):
        return self._own("input_tensors", "input")

    @property
    def output(self):
        return self._own("output_tensors", "output")

    @property
    def input_shape(self):
        return self._own("input_shapes", "input shape")

    @property
    def output_shape(self):
        return self._own("output_shapes", "output shape")

    # -- layers and weights ------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        if self._is_subclassed():
            return tracking.sublayers(self)
        return list(getattr(self, "_layers", []))

    def _add_symbolic_loss(self, tensor: Any) -> None:
        """``model.add_loss(tensor)``: a loss computed from the model's inputs in its graph."""
        if not self._is_graph_network:
            raise ValueError(
                f"model {self.name}: add_loss on a symbolic tensor needs a model built from "
                "Input tensors; in a subclassed model call self.add_loss(value) in call()"
            )
        candidate = self._symbolic_losses + [tensor]
        metrics = [t for t, _ in self.__dict__.get("_symbolic_metrics", ())]
        try:  # check now that the loss is computed from this model's inputs
            graph = Functional(
                self.inputs,
                list(self.outputs) + candidate + metrics,
                name=f"{self.name}_with_losses",
            )
        except GraphError as err:
            raise ValueError(
                f"model {self.name}: add_loss was given a tensor that is not computed from "
                f"the model's inputs ({err})"
            ) from None
        self._symbolic_losses = candidate
        self._loss_graph = graph
        self._insert_loss_layers(graph)

    def _insert_loss_layers(self, graph: Functional) -> None:
        """Layers that only the tensors given to add_loss / add_metric read join the
        model's layers (after its own, as tf.keras 2 inserts them), so that their weights
        are the model's: trained, counted and saved with it."""
        listed = {id(layer) for layer in self._layers}
        inserted = self.__dict__.setdefault("_loss_layers", [])
        for layer in graph.layers:
            if id(layer) not in listed:
                self._layers.append(layer)
                inserted.append(layer)
                listed.add(id(layer))

    def _add_symbolic_metric(self, tensor: Any, name: str) -> None:
        """``model.add_metric(tensor, name=...)``: a metric computed from the model's
        inputs in its graph, logged at every step of fit and evaluate (tf.keras 2)."""
        if not self._is_graph_network:
            raise ValueError(
                f"model {self.name}: add_metric on a symbolic tensor needs a model built "
                "from Input tensors; in a subclassed model call self.add_metric(value, "
                "name=...) in call()"
            )
        held = self.__dict__.setdefault("_symbolic_metrics", [])
        if any(n == name for _, n in held):
            raise ValueError(
                f"model {self.name}: a metric named {name!r} was already added with "
                "add_metric; give each metric its own name"
            )
        try:  # check now that the metric is computed from this model's inputs
            graph = Functional(
                self.inputs,
                list(self.outputs) + list(self._symbolic_losses) + [t for t, _ in held] + [tensor],
                name=f"{self.name}_with_losses",
            )
        except GraphError as err:
            raise ValueError(
                f"model {self.name}: add_metric was given a tensor that is not computed "
                f"from the model's inputs ({err})"
            ) from None
        held.append((tensor, name))
        self._loss_graph = graph
        self._insert_loss_layers(graph)

    @property
    def losses(self) -> list[Any]:
        """The symbolic losses given to ``add_loss``, then the losses the layers added
        during the last call, then the weights' regularization penalties."""
        out: list[Any] = list(self._symbolic_losses)
        seen: set[int] = set()
        for layer in self.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(layer, Functional):
                out.extend(v for v in layer.losses if not is_symbolic(v))
                continue
            out.extend(layer.__dict__.get("_eager_losses", ()))
            for sub in tracking.sublayers(layer):
                out.extend(sub.__dict__.get("_eager_losses", ()))
        out.extend(self.__dict__.get("_eager_losses", ()))
        for v in self.weights:
            reg = getattr(v, "regularizer", None)
            if reg is not None:
                out.append(reg(v))
        return out

    def _is_subclassed(self) -> bool:
        return not self._is_graph_network and subclassing.is_subclassed(self)

    def __getattr__(self, name: str) -> Any:
        # only reached when the attribute is missing: a subclassed model before it is built
        if name in ("inputs", "outputs", "input_names", "output_names", "input", "output"):
            d = self.__dict__
            if "_is_graph_network" in d and not d["_is_graph_network"]:
                if subclassing.is_subclassed(self):
                    raise AttributeError(
                        f"model {d.get('name')!r} ({type(self).__name__}) is a subclassed "
                        f"model that is not built yet, so it has no {name}: call it once on "
                        "data (model(x), fit, predict) or call model.build(input_shape)"
                    )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None and name is not None:
            raise ValueError("Provide only a layer name or a layer index, not both.")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model "
                    f"{self.name} only has {len(self.layers)} layers."
                )
            return self.layers[index]
        if name is None:
            raise ValueError("Provide either a layer name or layer index.")
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name}. Existing layers are: {[lay.name for lay in self.layers]}."
        )

    def _unique(self, attr: str) -> list:
        seen: set[int] = set()
        out = []
        for layer in self.layers:
            for v in getattr(layer, attr):
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    @property
    def weights(self):
        if self._is_subclassed():
            return tracking.nested_weights(self, "weights")
        return self._unique("weights")

    @property
    def trainable_weights(self):
        if self._is_subclassed():
            return tracking.nested_weights(self, "trainable_weights") if self.trainable else []
        return self._unique("trainable_weights") if self.trainable else []

    @property
    def non_trainable_weights(self):
        if self._is_subclassed():
            if not self.trainable:
                return self.weights
            return tracking.nested_weights(self, "non_trainable_weights")
        if not self.trainable:
            return self.weights
        trainable = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable]

    def build(self, input_shape: Any) -> None:
        """A subclassed model: create its weights for inputs of ``input_shape`` (batch
        first: ``(None, 784)``, or a list or dict of shapes) by calling it once."""
        if self._is_subclassed():
            subclassing.build_from_shapes(self, input_shape)
            self._set_subclass_io()
        self.built = True

    def _build_from_data(self, x: Any) -> None:
        """A subclassed model is built by the first data it is given (fit, predict...)."""
        if self._is_subclassed() and self._subclass_inputs is None:
            subclassing.build_from_arrays(self, x)
            self._set_subclass_io()

    def _set_subclass_io(self) -> None:
        structure, inputs = self._subclass_inputs
        out_structure, outputs = self._subclass_outputs
        self.inputs = inputs
        self.outputs = outputs
        self._nested_outputs = outputs if out_structure.kind != "single" else outputs[0]
        self.input_names = structure.names("input")
        self.output_names = out_structure.names("output")
        self.input_layers = [t._keras_history[0] for t in inputs]
        self.output_layers = [None] * len(outputs)
        self._uses_masks = False

    # -- shapes ----------------------------------------------------------------------------------
    def check_input(self, input_shape: Any) -> None:
        if self._is_subclassed():
            return  # its call checks what it is given
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        if len(shapes) != len(self.inputs):
            raise ValueError(
                f"model {self.name} expects {len(self.inputs)} input(s) "
                f"({', '.join(self.input_names)}), but it received "
                f"{len(shapes)} input tensors"
            )
        for i, (s, t) in enumerate(zip(shapes, self.inputs)):
            if len(s) != len(t.shape) or any(
                a is not None and b is not None and a != b for a, b in zip(s[1:], t.shape[1:])
            ):
                raise ValueError(
                    f"Input {i} of model {self.name} is incompatible: expected "
                    f"shape {t.shape} (input {self.input_names[i]}), got {s}"
                )

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        known: dict[int, Any] = {}
        for t, s in zip(self.inputs, shapes):
            known[id(t)] = tuple(s)
        for node in self._execution:
            layer = node.outbound_layer
            if isinstance(layer, InputLayer):
                continue
            ins = [known[id(t)] for t in node.input_tensors]
            out = layer.compute_output_shape(ins if len(ins) > 1 else ins[0])
            outs = out if isinstance(out, list) else [out]
            for t, s in zip(node.output_tensors, outs):
                known[id(t)] = tuple(s)
        result = [known[id(t)] for t in self.outputs]
        return result if len(result) > 1 else result[0]

    def compute_output_dtype(self, input_dtypes):
        return self.outputs[0].dtype

    # -- running ----------------------------------------------------------------------------------
    def _move_weights(self, B) -> None:
        for v in self.weights:
            if v.backend is not B:
                v.move_to(B)

    def reset_states(self) -> None:
        """Zero the kept states of every stateful layer (recurrent layers with
        ``stateful=True``, in nested models too), as Keras' ``model.reset_states()``."""
        for layer in self.layers:
            if isinstance(layer, Functional) or getattr(layer, "stateful", False):
                reset = getattr(layer, "reset_states", None)
                if reset is not None:
                    reset()

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        masks = None if mask is None else to_list(mask)
        outs, _ = self._run_graph_masked(to_list(inputs), bool(training), masks)
        return unpack(outs) if not isinstance(self._nested_outputs, (list, tuple)) else outs

    # -- masks ------------------------------------------------------------------------------------
    supports_masking = True  # a model passes masks through its own graph

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The masks of the model's outputs (one, or a list for several outputs).  On
        symbolic inputs, the model's own output masks; on arrays, the graph is run with
        ``mask`` (one per input) on its inputs, as Keras 2 does."""
        multi = isinstance(self._nested_outputs, (list, tuple))
        flat = to_list(inputs)
        if flat and all(is_symbolic(t) for t in flat):
            masks: list = [t._keras_mask for t in self.outputs]
        else:
            B = _backend.current()
            values = [x if B.is_native(x) else B.asarray(np.asarray(x)) for x in flat]
            given = None if mask is None else to_list(mask)
            if given is not None:
                given = [
                    None if m is None else check_mask(self, m, tuple(B.shape(v)), i)
                    for i, (m, v) in enumerate(zip(given, values))
                ]
            _, masks = self._run_graph_masked(values, False, given)
        return masks if multi else masks[0]

    def _output_mask_shapes(self, shape_arg, tensors, mask_shapes, n_out):
        """Walk the graph with the given input masks' shapes: what reaches the outputs."""
        known: dict[int, Any] = {id(t): m for t, m in zip(self.inputs, mask_shapes)}
        for node in self._execution:
            layer = node.outbound_layer
            if isinstance(layer, InputLayer):
                continue
            ins = [known.get(id(t)) for t in node.input_tensors]
            if node.mask_tensors:
                ins = [m if g is None else g.shape for m, g in zip(ins, node.mask_tensors)]
            if not any(m is not None for m in ins):  # as when the model was made
                for t in node.output_tensors:
                    if t._keras_mask is not None:
                        known[id(t)] = t._keras_mask.shape
                continue
            if not layer.supports_masking and any(m is not None for m in ins):
                continue  # the mask stops here (warned when the model was made)
            shapes = node.input_shapes
            arg = list(shapes) if len(shapes) > 1 else shapes[0]
            outs = layer._output_mask_shapes(arg, node.input_tensors, ins, len(node.output_tensors))
            for t, m in zip(node.output_tensors, outs):
                known[id(t)] = m
        return [known.get(id(t)) for t in self.outputs]

    def _run_graph(self, values: list, training: bool = False) -> list:
        """The outputs for ``values`` (one backend array per input)."""
        return self._run_graph_masked(values, training)[0]

    def _run_graph_masked(
        self, values: list, training: bool = False, masks: list | None = None
    ) -> tuple[list, list]:
        """The outputs for ``values`` and their masks (None where an output has none),
        given the inputs' masks (``masks``, one per input, or None)."""
        if self._is_subclassed():
            with weights_lock(self):
                return self._run_subclassed(values, training)
        for layer in self.layers:  # what add_loss kept is the last call's only
            if layer.__dict__.get("_eager_losses"):
                layer._eager_losses = []
        if self._symbolic_losses or self.__dict__.get("_symbolic_metrics"):
            return self._run_with_symbolic_losses(values, training, masks)
        with weights_lock(self):  # a training step in another thread is done, or waits
            if masks is not None and all(m is None for m in masks):
                masks = None
            if self._uses_masks or masks is not None:
                return self._run_graph_with_masks(values, training, masks)
            return self._run_graph_unlocked(values, training), [None] * len(self.outputs)

    def _run_graph_with_masks(
        self, values: list, training: bool, masks: list | None
    ) -> tuple[list, list]:
        """The graph walk of :meth:`_run_graph_unlocked` with a mask beside each tensor: a
        layer whose ``call`` takes ``mask`` gets its inputs' masks, and each layer's
        ``compute_mask`` gives its outputs' masks."""
        B = _backend.current()
        self._move_weights(B)
        overrides = _TENSOR_OVERRIDES.get()
        tensor_map: dict[int, Any] = {}
        mask_map: dict[int, Any] = {}
        for t, v in zip(self.inputs, values):
            tensor_map[id(t)] = v
        for t, m in zip(self.inputs, masks or []):
            if m is not None:
                mask_map[id(t)] = m
        for node in self._execution:
            layer = node.outbound_layer
            if isinstance(layer, InputLayer):
                continue
            ins = [tensor_map[id(t)] for t in node.input_tensors]
            in_masks = [mask_map.get(id(t)) for t in node.input_tensors]
            if node.mask_tensors:  # masks given to the call take their inputs' place
                in_masks = [
                    m if g is None else _as_mask(B, tensor_map[id(g)])
                    for m, g in zip(in_masks, node.mask_tensors)
                ]
            masked = any(m is not None for m in in_masks)
            kwargs = dict(node.arguments)
            if layer._accepts_training and kwargs.get("training") is None:
                kwargs["training"] = training
            value = ins if len(ins) > 1 else ins[0]
            if isinstance(layer, Functional):
                outs, out_masks = layer._run_graph_masked(
                    ins, bool(kwargs.get("training")), in_masks if masked else None
                )
            else:
                if masked and layer._call_takes_mask:
                    kwargs["mask"] = in_masks if len(ins) > 1 else in_masks[0]
                out = layer.call(value, **kwargs)
                outs = out if isinstance(out, list) else [out]
                out_masks = output_masks(layer, value, in_masks, len(outs))
            if layer.activity_regularizer is not None:
                record_activity(layer, outs)
            if overrides is not None:
                outs = [_override(overrides, t, v) for t, v in zip(node.output_tensors, outs)]
            for t, v, m in zip(node.output_tensors, outs, out_masks):
                tensor_map[id(t)] = v
                if m is not None:
                    mask_map[id(t)] = m
        return (
            [tensor_map[id(t)] for t in self.outputs],
            [mask_map.get(id(t)) for t in self.outputs],
        )

    def _run_graph_unlocked(self, values: list, training: bool) -> list:
        B = _backend.current()
        self._move_weights(B)
        overrides = _TENSOR_OVERRIDES.get()
        tensor_map: dict[int, Any] = {}
        for t, v in zip(self.inputs, values):
            tensor_map[id(t)] = v
        for node in self._execution:
            layer = node.outbound_layer
            if isinstance(layer, InputLayer):
                continue
            ins = [tensor_map[id(t)] for t in node.input_tensors]
            kwargs = dict(node.arguments)
            # training= given when the layer was called fixes the mode of that call
            if layer._accepts_training and kwargs.get("training") is None:
                kwargs["training"] = training
            out = layer.call(ins if len(ins) > 1 else ins[0], **kwargs)
            outs = out if isinstance(out, list) else [out]
            if layer.activity_regularizer is not None:
                record_activity(layer, outs)
            if overrides is not None:
                outs = [_override(overrides, t, v) for t, v in zip(node.output_tensors, outs)]
            for t, v in zip(node.output_tensors, outs):
                tensor_map[id(t)] = v
        return [tensor_map[id(t)] for t in self.outputs]

    def _run_subclassed(self, values: list, training: bool) -> tuple[list, list]:
        self._move_weights(_backend.current())
        if self._subclass_inputs is None:  # used as a layer of a graph, never built alone
            out = subclassing.call_model(self, values[0] if len(values) == 1 else values, training)
            outs = list(out) if isinstance(out, (list, tuple)) else [out]
        else:
            outs = subclassing.run(self, values, training)
        return outs, [None] * len(outs)

    def _run_with_symbolic_losses(
        self, values: list, training: bool, masks: list | None
    ) -> tuple[list, list]:
        """Run the graph and the losses and metrics given to ``add_loss`` and
        ``add_metric`` on symbolic tensors (a graph of their own over the same layers);
        each loss's sum joins the loss being computed (the collector of
        ``engine.base_layer``), as Keras adds them, and each metric's value is noted."""
        metrics = self.__dict__.get("_symbolic_metrics", [])
        graph = self._loss_graph
        if graph is None:
            graph = self._loss_graph = Functional(
                self.inputs,
                list(self.outputs) + list(self._symbolic_losses) + [t for t, _ in metrics],
                name=f"{self.name}_with_losses",
            )
        outs, out_masks = graph._run_graph_masked(values, training, masks)
        n = len(self.outputs)
        n_losses = len(self._symbolic_losses)
        add_to_loss(outs[n : n + n_losses])
        for (_, name), value in zip(metrics, outs[n + n_losses :]):
            record_metric(name, value)
        return outs[:n], out_masks[:n]

    def _call_subclassed(self, inputs: Any, kwargs: dict) -> Any:
        """``model(x)`` on a subclassed model: built by its first call, then its ``call``
        runs on backend arrays (or on values being differentiated)."""
        B = _backend.current()
        if self._subclass_inputs is None:
            self._build_from_data(inputs)
        structure, _ = self._subclass_inputs
        flat = structure.flatten(inputs, "inputs", self.name)
        from .. import config
        from ..autodiff import is_traced

        values = []
        for x in flat:
            if not (B.is_native(x) or is_traced(x) or hasattr(x, "_polykeras_read")):
                a = np.asarray(x)
                if a.dtype.kind == "f" and a.dtype.name != config.floatx():
                    a = a.astype(config.floatx())
                x = B.asarray(a)
            values.append(x)
        self._move_weights(B)
        training = bool(kwargs.get("training", False))
        with weights_lock(self):
            return subclassing.call_model(self, structure.pack(values), training)

    def _call_concrete(self, inputs, kwargs):
        """``model(x)`` on arrays: returns backend arrays, like a layer."""
        if self._is_subclassed():
            return self._call_subclassed(inputs, kwargs)
        B = _backend.current()
        flat = [inputs[n] for n in self.input_names] if isinstance(inputs, dict) else None
        flat = flat if flat is not None else to_list(inputs)
        if len(flat) == len(self.inputs) and all(
            is_traced(v) or B.is_native(v) for v in flat
        ):  # backend arrays, or values being differentiated (a GradientTape is open)
            values = flat
        else:
            values = [B.asarray(a) for a in self._standardize_inputs(inputs)]
        training = bool(kwargs.get("training", False))
        masks = None
        if kwargs.get("mask") is not None:
            given = kwargs["mask"]
            given = given if isinstance(given, (list, tuple)) else [given]
            if len(given) != len(values):
                raise ValueError(
                    f"model {self.name} has {len(values)} input(s), so mask= must hold "
                    f"{len(values)} mask(s) (None for an input without one); got {len(given)}"
                )
            masks = [
                None if m is None else check_mask(self, m, tuple(B.shape(v)), i)
                for i, (m, v) in enumerate(zip(given, values))
            ]
        outs, _ = self._run_graph_masked(values, training, masks)
        return unpack(outs) if not isinstance(self._nested_outputs, (list, tuple)) else outs

    def _standardize_inputs(self, x: Any) -> list[np.ndarray]:
        """The model's inputs as NumPy arrays, in input order (one array, a list, or a dict
        by input name).  The public Model checks them against the inputs' shapes and
        dtypes (``training.data``); the engine only orders and converts."""
        if self._is_subclassed():
            self._build_from_data(x)
            structure, _ = self._subclass_inputs
            return [np.asarray(a) for a in structure.flatten(x, "inputs", self.name)]
        if isinstance(x, dict):
            return [np.asarray(x[n]) for n in self.input_names]
        items = list(x) if isinstance(x, (list, tuple)) and len(self.inputs) > 1 else [x]
        return [np.asarray(a) for a in items]

    # -- summary --------------------------------------------------------------------------------
    def summary(
        self,
        line_length: int | None = None,
        positions: Sequence[float] | None = None,
        print_fn: Any = None,
    ) -> None:
        from .summary import print_summary

        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn)
