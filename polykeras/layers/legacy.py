"""Keras 1 spellings: ``merge(inputs, mode=...)`` and the ``Merge`` layer.

Other Keras 1 argument names (``Dense(output_dim, init=)``, ``Convolution2D(nb_filter,
nb_row, nb_col, border_mode=, subsample=, dim_ordering=)``, ``nb_epoch``...) are translated
by the layers and by ``fit`` themselves.
"""

from __future__ import annotations

from typing import Any

from .merge import Add, Average, Concatenate, Dot, Maximum, Multiply

MODES = ("sum", "mul", "concat", "ave", "cos", "dot", "max")


def _merge_layer(
    mode: str, concat_axis: int, dot_axes: Any, name: str | None, **kwargs: Any
) -> Any:
    kw = dict(kwargs, name=name) if name else dict(kwargs)
    if callable(mode):
        raise ValueError(
            "merge(mode=<function>) is not supported: it would need Python code "
            "in the model; write a Layer subclass instead"
        )
    if mode == "sum":
        return Add(**kw)
    if mode == "mul":
        return Multiply(**kw)
    if mode == "concat":
        return Concatenate(axis=concat_axis, **kw)
    if mode == "ave":
        return Average(**kw)
    if mode == "max":
        return Maximum(**kw)
    if mode in ("dot", "cos"):
        return Dot(axes=dot_axes, normalize=(mode == "cos"), **kw)
    raise ValueError(f"Invalid merge mode: {mode!r}. Valid modes are: {', '.join(MODES)}")


def merge(
    inputs: list,
    mode: str = "sum",
    concat_axis: int = -1,
    dot_axes: Any = -1,
    output_shape: Any = None,
    output_mask: Any = None,
    arguments: Any = None,
    node_indices: Any = None,
    tensor_indices: Any = None,
    name: str | None = None,
) -> Any:
    """Keras 1: merge a list of tensors; ``mode`` is one of sum, mul, concat, ave, cos, dot,
    max."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
        raise ValueError("merge() needs a list of at least two tensors")
    _refuse_unused(
        "merge",
        output_shape=output_shape,
        output_mask=output_mask,
        arguments=arguments,
        node_indices=node_indices,
        tensor_indices=tensor_indices,
    )
    return _merge_layer(mode, concat_axis, dot_axes, name)(list(inputs))


def _refuse_unused(owner: str, **given: Any) -> None:
    """Keras 1 arguments that only served function modes or picked other nodes: refused
    unless left at their defaults."""
    for key, value in given.items():
        if value is not None and value != {}:
            raise ValueError(
                f"{owner}: {key}={value!r:.60} is not supported by polykeras "
                "(it only served merge modes given as Python functions, or "
                "picked other nodes of the inputs); leave it None"
            )


def Merge(
    layers: Any = None,
    mode: str = "sum",
    concat_axis: int = -1,
    dot_axes: Any = -1,
    name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Keras 1's Merge layer: a layer object for ``mode`` (call it on a list of tensors)."""
    for key in ("output_shape", "output_mask", "arguments", "node_indices", "tensor_indices"):
        if key in kwargs:
            _refuse_unused("Merge", **{key: kwargs.pop(key)})
    # Keras 1 configs say how mode/output_shape/output_mask were written: "raw" (a name or
    # None) or "function"/"lambda" (Python code, which polykeras never loads)
    for key in ("mode_type", "output_shape_type", "output_mask_type"):
        kind = kwargs.pop(key, "raw")
        if kind not in ("raw", None):
            raise ValueError(
                f"Merge: {key}={kind!r} (Python code in the model) is not "
                "supported; polykeras loads merge modes by name only"
            )
    layer = _merge_layer(mode, concat_axis, dot_axes, name, **kwargs)
    if layers is not None:
        raise ValueError(
            "Merge(layers=[...]) merged Sequential models in Keras 1; use the "
            "functional API (merge layers called on tensors) instead"
        )
    return layer
