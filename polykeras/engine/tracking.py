"""What a layer holds: the layers (and metrics) assigned to its attributes.

Keras tracks the layers a custom layer or a subclassed model keeps in its attributes,
directly or inside lists, tuples and dicts (``self.dense = Dense(4)``,
``self.blocks = [Block(), Block()]``), so that their weights are the holder's weights.
Setting an attribute records only its name (when the value is a layer, a metric, a list, a
dict, or a tuple with anything but numbers, strings and None in it): the attributes are
read when asked, so a list filled after it was assigned (``self.blocks.append(...)``) is
seen too.  A tuple of plain values (a shape) cannot hold a layer now or later, so it is not
recorded: the weights walk of every forward pass never opens it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Attributes of the Layer base that never hold sub-layers (skipped for speed and so a
#: layer's graph bookkeeping is never mistaken for its parts).
_BOOKKEEPING = frozenset(
    {
        "_trainable_weights",
        "_non_trainable_weights",
        "_inbound_nodes",
        "_outbound_nodes",
        "_updates",
        "_initial_weights",
        "_eager_losses",
        "_symbolic_losses",
        "_compiled",
        "_keras3_tracked",
        "inputs",
        "outputs",
        "input_layers",
        "output_layers",
        "_nested_inputs",
        "_nested_outputs",
        "_execution",
        "_layers",
        "_loss_graph",
        "history",
        "optimizer",
        "_subclass_inputs",
        "_subclass_outputs",
        "_tracked_attrs",
        "input_names",
        "output_names",
        "_nodes_by_depth",
    }
)

#: Values that never hold a layer: a tuple of only these (a shape, say) is not a container
#: of parts, and a tuple cannot be filled later.
_ATOMS = (int, float, str, bytes, bool, type(None))


def _plain_tuple(value: Any) -> bool:
    """A tuple of numbers, strings and None only (nested tuples too): no layer inside."""
    for item in value:
        if type(item) is tuple:
            if not _plain_tuple(item):
                return False
        elif not isinstance(item, _ATOMS):
            return False
    return True


def _items(value: Any, seen: set[int]) -> Iterator[Any]:
    """The objects inside ``value`` (a list, tuple or dict, nested), in order."""
    if id(value) in seen:
        return
    seen.add(id(value))
    items = value.values() if isinstance(value, dict) else value
    for item in items:
        if isinstance(item, (list, tuple, dict)):
            yield from _items(item, seen)
        else:
            yield item


def note_attribute(owner: Any, name: str, value: Any) -> None:
    """Called by ``Layer.__setattr__``: remember attributes that may hold layers or metrics
    (read again whenever they are asked for)."""
    if name in _BOOKKEEPING:
        return
    if isinstance(value, (list, dict)) or hasattr(type(value), "update_state"):
        pass
    elif isinstance(value, tuple):
        if _plain_tuple(value):  # a shape, a pair of sizes...: read on every weights walk
            return
    else:
        from .base_layer import Layer

        if not isinstance(value, Layer):
            return
    tracked = owner.__dict__.get("_tracked_attrs")
    if tracked is None:
        tracked = {}
        object.__setattr__(owner, "_tracked_attrs", tracked)
    tracked[name] = None


def attribute_objects(owner: Any) -> Iterator[tuple[str, Any]]:
    """``(attribute name, object)`` for each object ``owner`` keeps in an attribute, in
    the order the attributes were first set (lists, tuples and dicts opened)."""
    tracked = owner.__dict__.get("_tracked_attrs")
    if not tracked:
        return
    for name in list(tracked):
        value = owner.__dict__.get(name)
        if value is None or value is owner:
            continue
        if isinstance(value, (list, tuple, dict)):
            for item in _items(value, set()):
                yield name, item
        else:
            yield name, value


def sublayers(owner: Any) -> list[Any]:
    """The layers ``owner`` holds in its attributes (each once, in order)."""
    from .base_layer import Layer

    out: list[Any] = []
    seen: set[int] = {id(owner)}
    for _name, obj in attribute_objects(owner):
        if isinstance(obj, Layer) and id(obj) not in seen:
            seen.add(id(obj))
            out.append(obj)
    return out


def is_metric(obj: Any) -> bool:
    """A stateful metric object (``update_state``, ``result``, ``reset_state``)."""
    return all(callable(getattr(obj, m, None)) for m in ("update_state", "result", "reset_state"))


def tracked_metrics(owner: Any) -> list[Any]:
    """The metric objects ``owner`` and its sub-layers keep in attributes (each once)."""
    out: list[Any] = []
    seen: set[int] = set()

    def visit(layer: Any, depth: int) -> None:
        if id(layer) in seen or depth > 64:
            return
        seen.add(id(layer))
        for _name, obj in attribute_objects(layer):
            if is_metric(obj) and id(obj) not in seen:
                seen.add(id(obj))
                out.append(obj)
        for sub in sublayers(layer):
            visit(sub, depth + 1)

    visit(owner, 0)
    return out


def nested_weights(owner: Any, attr: str) -> list[Any]:
    """``owner``'s own variables of kind ``attr`` (``weights``, ``trainable_weights``...)
    followed by its sub-layers' (Keras 3's order), each variable once."""
    out: list[Any] = []
    seen: set[int] = set()
    for v in getattr(owner, "_own_" + attr)():
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    for sub in sublayers(owner):
        for v in getattr(sub, attr):
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
    return out


__all__ = [
    "attribute_objects",
    "note_attribute",
    "is_metric",
    "nested_weights",
    "sublayers",
    "tracked_metrics",
]
