"""``utils.plot_model`` and ``utils.model_to_dot``: a model's graph drawn with pydot and
Graphviz (the optional extra ``[plot]``).

One box per layer (a layer called several times, e.g. a shared one, is one box with several
incoming edges), one edge per tensor that flows from a layer to the next, as Keras 2 draws
them: the label is ``name: ClassName``, with ``show_shapes`` a record with the input and
output shapes.  ``to_file`` ending in ``.dot`` writes the DOT text and needs only pydot;
other formats (png, svg, pdf...) are rendered by Graphviz's ``dot`` program.
"""

from __future__ import annotations

import os
from typing import Any

PLOT_EXTRA = "pip install -e '.[plot]' (pydot)"


def _pydot() -> Any:
    try:
        import pydot
    except ImportError:
        raise ImportError(
            f"plot_model and model_to_dot need pydot, which is not installed: {PLOT_EXTRA}; "
            "to render images (png, svg, pdf) also install Graphviz "
            "(e.g. apt install graphviz, brew install graphviz)"
        ) from None
    return pydot


def _graph_of(model: Any) -> list:
    nodes = getattr(model, "_execution", None)
    if nodes is None:
        raise ValueError(
            f"model {model.name} has no graph to draw yet: build it first (give the first "
            "layer an input_shape, call the model on an Input, or call model.build(...))"
        )
    return list(nodes)


def _shape_text(shapes: list) -> str:
    text = ", ".join(str(tuple(s)) for s in shapes) if shapes else "?"
    return text.replace("{", "(").replace("}", ")")


def _label(layer: Any, node: Any, opts: dict) -> str:
    name = type(layer).__name__
    label = f"{layer.name}: {name}" if opts["show_layer_names"] else name
    if opts["show_layer_activations"] and getattr(layer, "activation", None) is not None:
        from . import activations

        try:
            label += f"|{activations.serialize(layer.activation)}"
        except Exception:
            label += f"|{getattr(layer.activation, '__name__', 'activation')}"
    if opts["show_dtype"]:
        label += f"|{layer.dtype}"
    if opts["show_shapes"]:
        outs = _shape_text(list(node.output_shapes))
        ins = _shape_text(list(node.input_shapes)) if node.inbound_layers else outs
        label += f"\n|{{input:|output:}}|{{{{{ins}}}|{{{outs}}}}}"
    return label


def _add_model(dot: Any, pydot: Any, model: Any, opts: dict, prefix: str) -> tuple[dict, list]:
    """Boxes and edges of ``model``'s graph into ``dot``; returns (the box id of each layer
    by id(layer): (first box, last box) for nested models drawn inside, the box ids of the
    model's input layers)."""
    ids: dict[int, tuple[str, str]] = {}
    from .engine.functional import Functional

    for node in _graph_of(model):
        layer = node.outbound_layer
        if id(layer) in ids:
            continue
        box = f"{prefix}{id(layer)}"
        if opts["expand_nested"] and isinstance(layer, Functional) and hasattr(layer, "_execution"):
            cluster = pydot.Cluster(
                f"cluster_{box}", label=f"{layer.name}: {type(layer).__name__}", style="dashed"
            )
            inner_ids, inner_inputs = _add_model(cluster, pydot, layer, opts, f"{box}_")
            dot.add_subgraph(cluster)
            outputs = [
                inner_ids[id(t._keras_history[0])][1]
                for t in layer.outputs
                if id(t._keras_history[0]) in inner_ids
            ]
            ids[id(layer)] = (",".join(inner_inputs), ",".join(outputs))
            continue
        dot.add_node(pydot.Node(box, label=_label(layer, node, opts)))
        ids[id(layer)] = (box, box)
    for node in _graph_of(model):
        layer = node.outbound_layer
        targets = ids[id(layer)][0].split(",")
        for inbound in node.inbound_layers:
            if id(inbound) not in ids:
                continue
            for source in ids[id(inbound)][1].split(","):
                for target in targets:
                    dot.add_edge(pydot.Edge(source, target))
    inputs = [ids[id(t._keras_history[0])][0] for t in model.inputs]
    return ids, inputs


def model_to_dot(
    model: Any,
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 96,
    subgraph: bool = False,
    layer_range: Any = None,
    show_layer_activations: bool = False,
) -> Any:
    """The model's graph as a ``pydot.Dot`` (Keras 2's arguments)."""
    from .utils import as_int

    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"model_to_dot: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    if layer_range is not None:
        raise NotImplementedError(
            "model_to_dot: layer_range (drawing a part of the model) is not supported; draw "
            "the whole model, or a sub-model built from the tensors you want"
        )
    if subgraph:
        raise NotImplementedError(
            "model_to_dot: subgraph=True is Keras' internal call for nested models; use "
            "expand_nested=True"
        )
    dpi = as_int(dpi, "dpi", "model_to_dot", minimum=1)
    pydot = _pydot()
    dot = pydot.Dot(graph_type="digraph")
    dot.set("rankdir", rankdir)
    dot.set("concentrate", True)
    dot.set("dpi", dpi)
    dot.set_node_defaults(shape="record")
    opts = {
        "show_shapes": bool(show_shapes),
        "show_dtype": bool(show_dtype),
        "show_layer_names": bool(show_layer_names),
        "show_layer_activations": bool(show_layer_activations),
        "expand_nested": bool(expand_nested),
    }
    _add_model(dot, pydot, model, opts, "")
    return dot


def plot_model(
    model: Any,
    to_file: Any = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 96,
    layer_range: Any = None,
    show_layer_activations: bool = False,
) -> Any:
    """Draw the model into ``to_file``; its extension chooses the format (``.dot`` writes
    the DOT text; png, svg, pdf... need Graphviz).  Returns the ``pydot.Dot``."""
    dot = model_to_dot(
        model,
        show_shapes=show_shapes,
        show_dtype=show_dtype,
        show_layer_names=show_layer_names,
        rankdir=rankdir,
        expand_nested=expand_nested,
        dpi=dpi,
        layer_range=layer_range,
        show_layer_activations=show_layer_activations,
    )
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:].lower() or "png"
    if extension in ("dot", "gv"):
        with open(to_file, "w", encoding="utf-8") as f:
            f.write(dot.to_string())
        return dot
    try:
        dot.write(to_file, format=extension)
    except FileNotFoundError as exc:
        raise OSError(
            f"plot_model: writing {to_file!r} ({extension}) needs Graphviz's 'dot' program, "
            "which was not found: install Graphviz (e.g. apt install graphviz, brew install "
            "graphviz), or write the DOT text with to_file='model.dot'"
        ) from exc
    except AssertionError as exc:  # pydot's way of saying "unknown format"
        raise ValueError(f"plot_model: Graphviz cannot write the format {extension!r}") from exc
    return dot


__all__ = ["model_to_dot", "plot_model"]
