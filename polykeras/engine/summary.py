"""``model.summary()``: the table Keras 2 prints."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable, Sequence


def _sequential_like(model: Any) -> bool:
    """A chain: one node per depth, each reading one tensor, no layer used twice."""
    if type(model).__name__ == "Sequential" or not getattr(model, "_is_graph_network", False):
        return True
    nodes: set[int] = set()
    for group in model._nodes_by_depth.values():
        if len(group) > 1 or (group and len(group[0].inbound_layers) > 1):
            return False
        nodes.update(id(n) for n in group)
    for layer in model.layers:
        if sum(1 for n in layer._inbound_nodes if id(n) in nodes) > 1:
            return False
    return True


def _row(fields: Sequence[Any], positions: Sequence[int]) -> str:
    line = ""
    for i, value in enumerate(fields):
        if i > 0:
            line = line[:-1] + " "
        line += str(value)
        line = line[: positions[i]]
        line += " " * (positions[i] - len(line))
    return line


def print_summary(
    model: Any,
    line_length: int | None = None,
    positions: Sequence[float] | None = None,
    print_fn: Callable[[str], Any] | None = None,
) -> None:
    print_fn = print_fn or print
    seq = _sequential_like(model)
    if seq:
        line_length = line_length or 65
        positions = list(positions or [0.45, 0.85, 1.0])
        headers = ["Layer (type)", "Output Shape", "Param #"]
    else:
        line_length = line_length or 98
        positions = list(positions or [0.33, 0.55, 0.67, 1.0])
        headers = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    columns = [int(line_length * p) if positions[-1] <= 1 else int(p) for p in positions]
    relevant = {id(n) for n in getattr(model, "_execution", [])}

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    print_fn(_row(headers, columns))
    print_fn("=" * line_length)
    layers = model.layers
    for i, layer in enumerate(layers):
        try:
            shape = layer.output_shape
        except (AttributeError, ValueError):
            shape = "multiple"
        params = layer.count_params() if layer.built else 0
        title = f"{layer.name} ({type(layer).__name__})"
        if seq:
            print_fn(_row([title, shape, params], columns))
        else:
            links = []
            for node in layer._inbound_nodes:
                if relevant and id(node) not in relevant:
                    continue
                for lay, ni, ti in zip(node.inbound_layers, node.node_indices, node.tensor_indices):
                    links.append(f"{lay.name}[{ni}][{ti}]")
            print_fn(_row([title, shape, params, links[0] if links else ""], columns))
            for link in links[1:]:
                print_fn(_row(["", "", "", link], columns))
        print_fn(("=" if i == len(layers) - 1 else "_") * line_length)
    trainable = sum(_size(v) for v in model.trainable_weights)
    non_trainable = sum(_size(v) for v in model.non_trainable_weights)
    print_fn(f"Total params: {trainable + non_trainable:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {non_trainable:,}")
    print_fn("_" * line_length)


def _size(v: Any) -> int:
    n = 1
    for s in v.shape:
        n *= s
    return n
