"""Custom layers and subclassed models: code a user writes by subclassing.

- **Output shapes.**  A layer class written outside polykeras that does not define
  ``compute_output_shape`` gets its output shape (and dtype) by running its ``call`` on two
  small batches, as Keras 3 runs a call on symbolic tensors: unknown sizes are set to 2 and
  5, then to 3 and 7, and a dimension that changes between the runs is unknown.  Layers it
  calls inside are built by that run.
- **Subclassed models** (``class M(Model)`` with its own ``call`` and no graph): the model
  is built by its first call on data (``fit``, ``predict``, ``model(x)``, or
  ``build(input_shape)``), which records the structure of its inputs and outputs (one
  array, a list, or a dict) as ``inputs``/``outputs`` placeholders, so that the data
  checks, the losses and the metrics of the functional path serve it unchanged.  Running
  it is calling ``call``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend as _backend


def defined_outside(cls: type, name: str) -> bool:
    """Whether ``cls`` gets attribute ``name`` from a class written outside polykeras."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__module__.split(".")[0] != "polykeras"
    return False


def infers_shape_by_running(layer: Any) -> bool:
    """A user's layer with a ``call`` of its own and no ``compute_output_shape``."""
    cls = type(layer)
    return defined_outside(cls, "call") and not defined_outside(cls, "compute_output_shape")


def _fill(shape: tuple, batch: int, free: int) -> tuple:
    return tuple((batch if i == 0 else free) if d is None else d for i, d in enumerate(shape))


def _sample(B: Any, shape: tuple, dtype: str) -> Any:
    if dtype.startswith("float"):
        return B.ones(shape, dtype)
    return B.zeros(shape, dtype)  # indices: 0 is in every range


def _flat_outputs(out: Any, owner: str) -> tuple[list, bool]:
    if isinstance(out, dict):
        raise ValueError(
            f"{owner}: its call returned a dict; on symbolic tensors a layer returns one "
            "tensor or a list of tensors"
        )
    if isinstance(out, (list, tuple)):
        return list(out), True
    return [out], False


def probe_output(layer: Any, inputs: Any, flat: list, kwargs: dict) -> tuple[Any, list[str]]:
    """The output shape(s) of ``layer`` on symbolic ``inputs`` (one shape, or a list for
    several outputs) and the outputs' dtypes, found by running its ``call``."""
    B = _backend.current()
    owner = f"layer {layer.name} ({type(layer).__name__})"
    multi_in = isinstance(inputs, (list, tuple))
    call_kwargs = dict(kwargs)
    if layer._accepts_training and call_kwargs.get("training") is None:
        call_kwargs["training"] = False
    call_kwargs.pop("mask", None)
    runs: list[list[tuple]] = []
    dtypes: list[str] = []
    multi_out = False
    for batch, free in ((2, 5), (3, 7)):
        arrays = [_sample(B, _fill(tuple(t.shape), batch, free), t.dtype) for t in flat]
        try:
            out = layer.call(arrays if multi_in else arrays[0], **call_kwargs)
        except Exception as err:
            shapes = [_fill(tuple(t.shape), batch, free) for t in flat]
            raise ValueError(
                f"{owner} has no compute_output_shape, so polykeras runs its call on a "
                f"sample batch of shape {shapes if multi_in else shapes[0]} to learn its "
                f"output shape, and that raised {type(err).__name__}: {err}. Define "
                "compute_output_shape(input_shape) on the layer, or fix its call."
            ) from err
        finally:
            layer._updates = []
        outs, multi_out = _flat_outputs(out, owner)
        from ..autodiff import raw

        values = [raw(o) for o in outs]
        runs.append(
            [tuple(int(d) for d in (B.shape(v) if B.is_native(v) else np.shape(v))) for v in values]
        )
        dtypes = [B.dtype_name(v) if B.is_native(v) else np.asarray(v).dtype.name for v in values]
    first, second = runs
    if len(first) != len(second) or any(len(a) != len(b) for a, b in zip(first, second)):
        raise ValueError(
            f"{owner}: its outputs change rank with the batch size ({first} vs {second}), "
            "so the output shape cannot be inferred; define compute_output_shape"
        )
    shapes = [tuple(x if x == y else None for x, y in zip(a, b)) for a, b in zip(first, second)]
    return (shapes if multi_out else shapes[0]), dtypes


# -- subclassed models ----------------------------------------------------------------------------
class Structure:
    """How a subclassed model's data is nested: one array, a list/tuple, or a dict."""

    def __init__(self, kind: str, keys: list):
        self.kind = kind  # "single", "list", "tuple" or "dict"
        self.keys = keys  # dict keys, in order; list positions otherwise

    @classmethod
    def of(cls, data: Any) -> Structure:
        if isinstance(data, dict):
            return cls("dict", list(data))
        if isinstance(data, (list, tuple)) and data and not _is_plain_nested_list(data):
            return cls("tuple" if isinstance(data, tuple) else "list", list(range(len(data))))
        return cls("single", [0])

    def flatten(self, data: Any, what: str, owner: str) -> list:
        if self.kind == "single":
            return [data]
        if self.kind == "dict":
            if not isinstance(data, dict) or sorted(map(str, data)) != sorted(map(str, self.keys)):
                raise ValueError(
                    f"model {owner} was built with {what} as a dict with keys {self.keys}; got "
                    f"{sorted(data) if isinstance(data, dict) else type(data).__name__}"
                )
            return [data[k] for k in self.keys]
        if not isinstance(data, (list, tuple)) or len(data) != len(self.keys):
            raise ValueError(
                f"model {owner} was built with {what} as a {self.kind} of {len(self.keys)}; "
                f"got {type(data).__name__}"
                + (f" of {len(data)}" if isinstance(data, (list, tuple)) else "")
            )
        return list(data)

    def pack(self, flat: list) -> Any:
        if self.kind == "single":
            return flat[0]
        if self.kind == "dict":
            return dict(zip(self.keys, flat))
        return tuple(flat) if self.kind == "tuple" else list(flat)

    def names(self, prefix: str) -> list[str]:
        if self.kind == "dict":
            return [str(k) for k in self.keys]
        return [f"{prefix}_{i + 1}" for i in range(len(self.keys))]


def _is_plain_nested_list(data: Any) -> bool:
    """A nested list of numbers (one array written as lists), not a list of arrays."""
    first = data[0]
    return isinstance(first, (int, float, np.number)) or (
        isinstance(first, (list, tuple)) and bool(first) and isinstance(first[0], (int, float))
    )


def is_subclassed(model: Any) -> bool:
    """A model whose ``call`` is the user's and that has no graph of its own."""
    return not model._is_graph_network and defined_outside(type(model), "call")


def build_from_arrays(model: Any, data: Any) -> None:
    """Build a subclassed model from data: run its ``call`` once on the first two samples,
    recording the inputs' and outputs' structure, shapes and dtypes."""
    if model._subclass_inputs is not None:
        return
    from .base_layer import is_symbolic

    owner = model.name
    structure = Structure.of(data)
    flat = structure.flatten(data, "inputs", owner)
    B = _backend.current()
    arrays = []
    for i, a in enumerate(flat):
        if is_symbolic(a):
            raise ValueError(
                f"model {owner}: subclassed models are built from data; call it on arrays "
                "(or use model.build(input_shape))"
            )
        if B.is_native(a):
            a = np.asarray(B.to_numpy(a))
        a = np.asarray(a)
        if a.dtype == object or a.ndim == 0:
            raise ValueError(
                f"model {owner}: input {i} must be an array of numbers with a batch axis, "
                f"got {a.dtype} of shape {a.shape}"
            )
        arrays.append(a)
    _build_with(model, structure, [a.shape[1:] for a in arrays], [a.dtype for a in arrays])


def build_from_shapes(model: Any, input_shape: Any) -> None:
    """``model.build(input_shape)``: one shape (batch first), a list or a dict of them."""
    owner = model.name

    def is_shape(s: Any) -> bool:
        return isinstance(s, (list, tuple)) and all(d is None or isinstance(d, int) for d in s)

    if is_shape(input_shape):
        structure = Structure("single", [0])
        shapes = [tuple(input_shape)]
    elif isinstance(input_shape, dict) and all(is_shape(s) for s in input_shape.values()):
        structure = Structure("dict", list(input_shape))
        shapes = [tuple(s) for s in input_shape.values()]
    elif isinstance(input_shape, (list, tuple)) and all(is_shape(s) for s in input_shape):
        structure = Structure("list", list(range(len(input_shape))))
        shapes = [tuple(s) for s in input_shape]
    else:
        raise ValueError(
            f"model {owner}: build(input_shape) takes a shape with the batch dimension first "
            f"(e.g. (None, 784)), or a list or dict of shapes; got {input_shape!r}"
        )
    if model._subclass_inputs is not None:
        return
    from ..config import floatx

    _build_with(model, structure, [s[1:] for s in shapes], [np.dtype(floatx())] * len(shapes))


def _build_with(model: Any, structure: Structure, shapes: list, dtypes: list) -> None:
    from .base_layer import Input, KerasTensor

    B = _backend.current()
    names = structure.names("input")
    inputs = [
        Input(shape=tuple(s), dtype=str(np.dtype(d).name), name=f"{model.name}_{n}")
        for s, d, n in zip(shapes, dtypes, names)
    ]
    samples = []
    for s, d in zip(shapes, dtypes):
        full = (2,) + tuple(1 if x is None else x for x in s)
        samples.append(_sample(B, full, str(np.dtype(d).name)))
    out = call_model(model, structure.pack(samples), False)
    if isinstance(out, dict):
        out_structure = Structure("dict", list(out))
        outs = list(out.values())
    elif isinstance(out, (list, tuple)):
        out_structure = Structure(
            "tuple" if isinstance(out, tuple) else "list", list(range(len(out)))
        )
        outs = list(out)
    else:
        out_structure = Structure("single", [0])
        outs = [out]
    from ..autodiff import raw

    outputs = []
    for name, o in zip(out_structure.names("output"), outs):
        v = raw(o)
        shape = tuple(int(d) for d in B.shape(v))
        outputs.append(KerasTensor((None,) + shape[1:], B.dtype_name(v), name))
    model._subclass_inputs = (structure, inputs)
    model._subclass_outputs = (out_structure, outputs)
    model.built = True


def call_model(model: Any, inputs: Any, training: bool) -> Any:
    """Run a subclassed model's ``call`` (``training`` passed when it takes it)."""
    kwargs = {"training": training} if model._accepts_training else {}
    return model.call(inputs, **kwargs)


def run(model: Any, values: list, training: bool) -> list:
    """The outputs (flat, in order) of a subclassed model for ``values`` (one per input)."""
    structure, _ = model._subclass_inputs
    out_structure, _ = model._subclass_outputs
    out = call_model(model, structure.pack(list(values)), training)
    return out_structure.flatten(out, "outputs", model.name)


__all__ = [
    "Structure",
    "build_from_arrays",
    "build_from_shapes",
    "call_model",
    "defined_outside",
    "infers_shape_by_running",
    "is_subclassed",
    "probe_output",
    "run",
]
