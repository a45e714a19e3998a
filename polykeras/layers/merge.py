"""Merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot) and
their functional forms (``add([a, b])``, ``concatenate([a, b], axis=-1)``...)."""

from __future__ import annotations

from typing import Any

from .. import ops
from ..engine.base_layer import Layer


class _Merge(Layer):
    supports_masking = True
    min_inputs = 2
    max_inputs: int | None = None

    def check_input(self, input_shape):
        if not isinstance(input_shape, list):
            raise ValueError(
                f"A merge layer ({type(self).__name__} {self.name}) should be "
                "called on a list of inputs."
            )
        n = len(input_shape)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            want = (
                f"exactly {self.max_inputs}"
                if self.max_inputs == self.min_inputs
                else f"at least {self.min_inputs}"
            )
            raise ValueError(
                f"A merge layer ({type(self).__name__} {self.name}) should be "
                f"called on {want} inputs. Got {n} inputs."
            )
        self._merged_shape(input_shape)

    def _merged_shape(self, shapes):
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(
                f"Operands of {type(self).__name__} {self.name} must have the "
                f"same rank; got shapes {shapes}"
            )
        out = list(shapes[0])
        for s in shapes[1:]:
            for i, (a, b) in enumerate(zip(out, s)):
                if a is None or b is None:
                    out[i] = a if b is None else b if a is None else a
                elif a == 1:
                    out[i] = b
                elif b != 1 and a != b:
                    raise ValueError(
                        f"Operands could not be broadcast together with shapes "
                        f"{shapes} (layer {self.name}, {type(self).__name__}): "
                        f"axis {i} is {a} in one and {b} in another"
                    )
        out[0] = None if any(s[0] is None for s in shapes) else out[0]
        return tuple(out)

    def compute_output_shape(self, input_shape):
        return self._merged_shape(input_shape)

    def _mask_list(self, inputs, mask):
        """The masks as a list with one entry per input (checked), or None for none."""
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)) or not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"{type(self).__name__} {self.name}: the mask of a merge must be a list "
                "with one entry per input (None for an input without one), got "
                f"{type(mask).__name__}"
            )
        if len(mask) != len(inputs):
            raise ValueError(
                f"{type(self).__name__} {self.name}: {len(inputs)} inputs but "
                f"{len(mask)} masks; give one mask per input (None for an unmasked one)"
            )
        return None if all(m is None for m in mask) else list(mask)

    def compute_mask(self, inputs, mask=None):
        """As Keras 3: a position is kept where any input keeps it (an OR of the masks);
        no mask at all when some input has none."""
        masks = self._mask_list(inputs, mask)
        if masks is None or any(m is None for m in masks):
            return None
        out = masks[0]
        for m in masks[1:]:
            out = ops.logical_or(out, m)
        return out

    def _output_mask_shapes(self, shape_arg, tensors, mask_shapes, n_out):
        if any(m is None for m in mask_shapes):
            return [None]
        out = list(mask_shapes[0])
        for m in mask_shapes[1:]:
            out = [a if a is not None else b for a, b in zip(out, m)]
        return [tuple(out)]

    def call(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = self._combine(out, x)
        return self._finish(out, len(inputs))

    def _finish(self, out, n):
        return out


class Add(_Merge):
    def _combine(self, a, b):
        return ops.add(a, b)


class Subtract(_Merge):
    max_inputs = 2

    def _combine(self, a, b):
        return ops.subtract(a, b)


class Multiply(_Merge):
    def _combine(self, a, b):
        return ops.multiply(a, b)


class Average(_Merge):
    def _combine(self, a, b):
        return ops.add(a, b)

    def _finish(self, out, n):
        return ops.multiply(out, 1.0 / n)


class Maximum(_Merge):
    def _combine(self, a, b):
        return ops.maximum(a, b)


class Minimum(_Merge):
    def _combine(self, a, b):
        return ops.minimum(a, b)


class Concatenate(_Merge):
    def __init__(self, axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"Concatenate {self.name}: axis must be an int, got {axis!r}")
        self.axis = axis

    def _merged_shape(self, shapes):
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(
                f"A `Concatenate` layer ({self.name}) requires inputs with "
                f"matching shapes except for the concat axis. Got inputs shapes: "
                f"{shapes}"
            )
        rank = ranks.pop()
        axis = self.axis % rank
        if axis == 0:
            raise ValueError(f"Concatenate {self.name}: cannot concatenate along the batch axis")
        out = list(shapes[0])
        for s in shapes[1:]:
            for i, (a, b) in enumerate(zip(out, s)):
                if i == axis:
                    continue
                if a is not None and b is not None and a != b:
                    raise ValueError(
                        f"A `Concatenate` layer ({self.name}) requires inputs "
                        f"with matching shapes except for the concat axis "
                        f"{self.axis}. Got inputs shapes: {shapes}"
                    )
                out[i] = a if a is not None else b
        sizes = [s[axis] for s in shapes]
        out[axis] = None if any(d is None for d in sizes) else sum(sizes)
        return tuple(out)

    def call(self, inputs):
        return ops.concatenate(list(inputs), axis=self.axis)

    def compute_mask(self, inputs, mask=None):
        """As Keras 3: each input's mask widened to the input's full shape (all True for an
        input without a mask), concatenated along ``axis``, then OR-ed over the last axis."""
        masks = self._mask_list(inputs, mask)
        if masks is None:
            return None
        full = []
        for x, m in zip(inputs, masks):
            shape = tuple(ops.shape(x))
            if m is None:
                m = ops.not_equal(ops.zeros(shape, "float32"), 1.0)
            elif len(ops.shape(m)) < len(shape):
                m = ops.broadcast_to(ops.expand_dims(m, -1), shape)
            full.append(ops.cast(m, "float32"))
        from .core import _any_last_axis

        return _any_last_axis(ops.concatenate(full, axis=self.axis))

    def _output_mask_shapes(self, shape_arg, tensors, mask_shapes, n_out):
        if all(m is None for m in mask_shapes):
            return [None]
        return [tuple(self._merged_shape(shape_arg)[:-1])]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Dot product of two tensors along ``axes`` (per sample); ``normalize`` gives cosine."""

    min_inputs = max_inputs = 2

    def __init__(self, axes: Any, normalize: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(axes, int):
            axes = (axes, axes)
        axes = tuple(axes)
        if len(axes) != 2 or not all(isinstance(a, int) for a in axes):
            raise ValueError(
                f"Dot {self.name}: axes must be an int or a pair of ints, got {axes!r}"
            )
        self.axes = axes
        self.normalize = bool(normalize)

    def compute_mask(self, inputs, mask=None):
        return None  # as Keras 3: a dot product has no mask

    def _output_mask_shapes(self, shape_arg, tensors, mask_shapes, n_out):
        return [None]

    def _norm_axes(self, shapes):
        return [a % len(s) for a, s in zip(self.axes, shapes)]

    def _merged_shape(self, shapes):
        a, b = shapes
        if len(a) > 3 or len(b) > 3 or len(a) < 2 or len(b) < 2:
            raise ValueError(f"Dot {self.name} works on 2-D or 3-D inputs; got {shapes}")
        ax, bx = self._norm_axes(shapes)
        if ax == 0 or bx == 0:
            raise ValueError(f"Dot {self.name}: cannot contract the batch axis")
        if a[ax] is not None and b[bx] is not None and a[ax] != b[bx]:
            raise ValueError(
                f"Dimension incompatibility using dot product in {self.name}: "
                f"{a[ax]} != {b[bx]}. Layer shapes: {a}, {b}"
            )
        rest = [d for i, d in enumerate(a) if i not in (0, ax)] + [
            d for i, d in enumerate(b) if i not in (0, bx)
        ]
        return (a[0],) + tuple(rest) if rest else (a[0], 1)

    def call(self, inputs):
        x, y = inputs
        shapes = [ops.shape(x), ops.shape(y)]
        ax, bx = self._norm_axes(shapes)
        if self.normalize:
            x, y = ops.l2_normalize(x, axis=ax), ops.l2_normalize(y, axis=bx)
        # x: contracted axis last; y: contracted axis second
        if len(shapes[0]) == 3 and ax != 2:
            x = ops.transpose(x, (0, 2, 1))
        if len(shapes[1]) == 3 and bx != 1:
            y = ops.transpose(y, (0, 2, 1))
        if len(shapes[0]) == 2:
            x = ops.expand_dims(x, 1)
        if len(shapes[1]) == 2:
            y = ops.expand_dims(y, 2)
        out = ops.matmul(x, y)
        target = self._merged_shape([(None,) + tuple(s[1:]) for s in shapes])
        return ops.reshape(out, (shapes[0][0],) + tuple(target[1:]))

    def get_config(self):
        return {**super().get_config(), "axes": list(self.axes), "normalize": self.normalize}


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes, normalize=False, **kwargs):
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
