"""Ops and operators on symbolic tensors: one graph node per call.

``Dense(4)(inp) * 2 + 1`` or ``ops.sum(x, axis=1)`` on symbolic tensors makes an
:class:`OpLayer` (as Keras 3 records an operation, and tf.keras 2 a ``TFOpLambda``): a layer
that names its op and holds the call's constant arguments.  Its config is data only, the
op's name looked up in :data:`polykeras.ops.OPS` (a fixed table of polykeras' own
functions), so a saved model never names code to import or run.  A Keras 3 ``.keras``
file holds an op Keras 3 also has in Keras 3's own form (``polykeras.saving.keras3_ops``),
and the others as OpLayer entries; both are read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend as _backend
from . import naming
from .base_layer import KerasTensor, Layer
from .variables import Variable

_TENSOR, _TUPLE, _SLICE, _ARRAY, _ELLIPSIS = (
    "__tensor__",
    "__tuple__",
    "__slice__",
    "__array__",
    "__ellipsis__",
)


def _op_table() -> dict:
    from .. import ops

    return ops.OPS


def _encode(value: Any, tensors: list, op: str) -> Any:
    """``value`` as JSON-able data, symbolic tensors replaced by their input index."""
    if isinstance(value, KerasTensor):
        tensors.append(value)
        return {_TENSOR: len(tensors) - 1}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is Ellipsis:
        return {_ELLIPSIS: True}
    if isinstance(value, slice):
        return {_SLICE: [_encode(v, tensors, op) for v in (value.start, value.stop, value.step)]}
    if isinstance(value, list):
        return [_encode(v, tensors, op) for v in value]
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, tensors, op) for v in value]}
    if isinstance(value, dict):
        return {str(k): _encode(v, tensors, op) for k, v in value.items()}
    if isinstance(value, Variable):
        raise TypeError(
            f"{op}: variable {value.name} was combined with a symbolic tensor. A variable "
            "used in a model belongs to a layer: create it with add_weight in a Layer "
            "subclass and compute with it in the layer's call()"
        )
    if isinstance(value, np.ndarray) or _backend.current().is_native(value):
        arr = (
            np.asarray(value)
            if isinstance(value, np.ndarray)
            else _backend.current().to_numpy(value)
        )
        return {_ARRAY: arr.tolist(), "dtype": arr.dtype.name}
    raise TypeError(
        f"{op}: an argument of type {type(value).__name__} cannot be part of a graph node "
        "(expected symbolic tensors, numbers, strings, slices, lists, tuples or arrays)"
    )


def _decode(value: Any, tensors: list) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if _TENSOR in value:
            return tensors[value[_TENSOR]]
        if _TUPLE in value:
            return tuple(_decode(v, tensors) for v in value[_TUPLE])
        if _SLICE in value:
            return slice(*(_decode(v, tensors) for v in value[_SLICE]))
        if _ELLIPSIS in value:
            return Ellipsis
        if _ARRAY in value:
            return _backend.current().asarray(np.asarray(value[_ARRAY], dtype=value["dtype"]))
        return {k: _decode(v, tensors) for k, v in value.items()}
    return value


def symbolic_call(op: str, args: Any, kwargs: dict) -> Any:
    """Record ``op(*args, **kwargs)`` on symbolic tensors as a node; its output tensor."""
    tensors: list[KerasTensor] = []
    enc_args = [_encode(a, tensors, op) for a in args]
    enc_kwargs = {k: _encode(v, tensors, op) for k, v in kwargs.items()}
    layer = OpLayer(op, enc_args, enc_kwargs)
    return layer(tensors)


class OpLayer(Layer):
    """One op of :mod:`polykeras.ops` (or ``K``) applied to symbolic tensors."""

    def __init__(
        self, op: str, args: list | None = None, kwargs: dict | None = None, **base: Any
    ) -> None:
        table = _op_table()
        if not isinstance(op, str) or op not in table:
            raise ValueError(
                f"OpLayer: unknown op {op!r}; an op node names one of polykeras' ops "
                "(polykeras.ops.OPS)"
            )
        if base.get("name") is None:
            base["name"] = naming.unique(op.rpartition(".")[2])
        super().__init__(**base)
        self.op = op
        self.op_args = list(args or [])
        self.op_kwargs = dict(kwargs or {})
        self._fn = table[op]
        self._out_dtype: str | None = None

    def _run(self, values: list) -> Any:
        args = [_decode(a, values) for a in self.op_args]
        kwargs = {k: _decode(v, values) for k, v in self.op_kwargs.items()}
        return self._fn(*args, **kwargs)

    def call(self, inputs: Any) -> Any:
        return self._run(inputs if isinstance(inputs, list) else [inputs])

    def _call_concrete(self, inputs, kwargs):
        # values keep their own dtypes (int indices, bool masks): no cast to the layer's
        B = _backend.current()
        flat = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        values = [
            x if B.is_native(x) or not isinstance(x, np.ndarray) else B.asarray(x) for x in flat
        ]
        self.built = True
        return self._run(list(values))

    def compute_output_shape(self, input_shape: Any) -> Any:
        from .. import ops

        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        exact = None
        if self.op in ops._BROADCASTING and not self.op_kwargs:
            # elementwise: broadcast in pure Python, naming both shapes where they clash
            operand_shapes = []
            for a in self.op_args:
                if isinstance(a, dict) and _TENSOR in a:
                    operand_shapes.append(tuple(shapes[a[_TENSOR]]))
                elif isinstance(a, dict) and _ARRAY in a:
                    operand_shapes.append(np.shape(a[_ARRAY]))
            try:
                exact = ops.broadcast_shapes(*operand_shapes)
            except ValueError as err:
                raise ValueError(f"{self.op} ({self.name}): {err}") from None
        if self.op == "matmul":
            a, b = (
                tuple(shapes[x[_TENSOR]]) if isinstance(x, dict) and _TENSOR in x else None
                for x in self.op_args[:2]
            )
            if a and b and a[-1] is not None and b[-2 if len(b) > 1 else 0] not in (None, a[-1]):
                raise ValueError(
                    f"matmul ({self.name}): shapes {a} and {b} do not fit (the last "
                    "dimension of the first must equal the second-to-last of the second)"
                )
        probed = self._probe(shapes)
        return exact if exact is not None and len(exact) == len(probed) else probed

    def _probe(self, shapes: list) -> Any:
        """Run the op on small arrays of ones, unknown sizes set to 2/5 then 3/7: a size
        that stays the same is known, one that changes is None."""
        B = _backend.current()
        dtypes = self._input_dtypes or [self.dtype] * len(shapes)
        runs = []
        out = None
        for batch, free in ((2, 5), (3, 7)):
            arrays = [
                B.ones(
                    tuple((batch if i == 0 else free) if d is None else d for i, d in enumerate(s)),
                    dt,
                )
                for s, dt in zip(shapes, dtypes)
            ]
            try:
                out = self._run(arrays)
            except Exception as err:
                raise ValueError(
                    f"{self.op} ({self.name}) cannot be applied to inputs of shape "
                    f"{', '.join(str(tuple(s)) for s in shapes)}: {type(err).__name__}: {err}"
                ) from err
            if isinstance(out, (list, tuple)):
                raise ValueError(
                    f"{self.op}: an op with several outputs is not supported on symbolic tensors"
                )
            runs.append(tuple(int(d) for d in B.shape(out)))
        self._out_dtype = B.dtype_name(out)
        first, second = runs
        return tuple(x if x == y else None for x, y in zip(first, second))

    _input_dtypes: list[str] | None = None

    def _call_symbolic(self, inputs, flat, kwargs, masks=None):
        self._input_dtypes = [t.dtype for t in flat]
        return super()._call_symbolic(inputs, flat, kwargs, masks)

    def compute_output_dtype(self, input_dtypes: list[str]) -> str:
        return self._out_dtype or self.dtype

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "op": self.op,
            "args": self.op_args,
            "kwargs": self.op_kwargs,
        }
