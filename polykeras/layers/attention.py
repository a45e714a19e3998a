"""Attention layers: MultiHeadAttention, Attention (Luong) and AdditiveAttention (Bahdanau).

All three compute through :mod:`polykeras.ops` (matmul, softmax, where...), so the core's
tape and the torch backend's autograd differentiate them like any other layer.

Masks (True = keep) combine as Keras combines them: a masked query position gives a
zero output row (Attention) or keeps its mask on the output (MultiHeadAttention), and a
masked value/key position, a causal mask or an explicit ``attention_mask`` takes the
position out of the softmax (its score becomes a large negative number).  A row left with
nothing to attend to gets uniform weights, as in tf.keras 2 and in Keras 3's fused path
(Keras 3 gives zeros instead only when it returns the scores).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Any

import numpy as np

from .. import initializers, ops
from .. import backend as _backend
from ..engine.base_layer import Layer, is_symbolic
from .core import (
    _constraint,
    _regularizer,
    _serialize_constraint,
    _serialize_reg,
    check_seed,
    positive_int,
    uniform_noise,
)

# The keyword arguments of the call being recorded on symbolic tensors, so that
# compute_output_shape knows whether the attention scores are a second output.  Per thread.
_CALL_KWARGS: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "polykeras_attention_call_kwargs", default=None
)


@contextlib.contextmanager
def _call_kwargs(kwargs: dict):
    token = _CALL_KWARGS.set(dict(kwargs))
    try:
        yield
    finally:
        _CALL_KWARGS.reset(token)


def _wants_scores() -> bool:
    kwargs = _CALL_KWARGS.get()
    return bool(kwargs and kwargs.get("return_attention_scores"))


def _large_negative(dtype: str) -> float:
    return -3e4 if dtype == "float16" else -1e9


def _as_bool_keep(x: Any) -> Any:
    """A mask (bool, or numbers where nonzero keeps) as a float32 keep array (1 or 0)."""
    return ops.cast(ops.greater(ops.cast(x, "float32"), 0.5), "float32")


def _check_mask(layer: Layer, which: str, mask: Any, expected: tuple) -> None:
    got = tuple(ops.shape(mask))
    if got != tuple(expected):
        raise ValueError(
            f"layer {layer.name} ({type(layer).__name__}): the {which} mask has shape "
            f"{got}; expected {tuple(expected)}, the {which}'s shape without its last "
            "(feature) axis"
        )


def _split_mask(layer: Layer, mask: Any, count: int) -> list:
    """The masking protocol's ``mask=`` for a layer with several inputs: one entry per
    input (None where an input has none)."""
    if mask is None:
        return [None] * count
    if not isinstance(mask, (list, tuple)):
        raise ValueError(
            f"layer {layer.name} ({type(layer).__name__}): mask must be a list with one "
            f"entry per input ([query_mask, value_mask] or [query_mask, value_mask, "
            f"key_mask], None where an input has no mask); got {type(mask).__name__}"
        )
    if not 1 <= len(mask) <= count:
        raise ValueError(
            f"layer {layer.name} ({type(layer).__name__}): mask must be a list of at most "
            f"{count} entries (one per input); got {len(mask)}"
        )
    return list(mask) + [None] * (count - len(mask))


def _causal_keep(t: int, s: int) -> Any:
    """(1, t, s) keep mask: position i of the query sees positions j <= i of the value."""
    return ops.asarray(np.tril(np.ones((t, s), dtype="float32"))[None])


def _dropout(layer: Layer, x: Any, rate: float) -> Any:
    """Inverted dropout of attention weights, with the layer's own generator when seeded."""
    B = _backend.current()
    dtype = ops.dtype_name(x)
    keep = B.cast(B.greater_equal(uniform_noise(layer, ops.shape(x), dtype), rate), dtype)
    return ops.multiply(x, B.multiply(keep, 1.0 / (1.0 - rate)))


def _check_rate(value: Any, owner: str) -> float:
    if value is None or isinstance(value, bool) or not 0 <= float(value) < 1:
        raise ValueError(f"{owner}: dropout must be a number in [0, 1), got {value!r}")
    return float(value)


class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product attention (Vaswani et al.), Keras' layer.

    ``layer(query, value, key=None, attention_mask=None, return_attention_scores=False,
    training=None, use_causal_mask=False)``.  Weights, in Keras' order: query, key, value
    projections (kernels ``(dim, num_heads, key_dim)`` -- ``value_dim`` for the value --
    and biases ``(num_heads, key_dim)``), then the output projection (kernel
    ``(num_heads, value_dim, dim)``, bias ``(dim,)``), named ``query/kernel``...
    ``attention_output/bias`` as Keras names them.

    Attention runs over every axis between the batch and the features taken together
    (Keras' ``attention_axes=None``), or over the ``attention_axes`` given, the other axes
    then being batch axes.  Masks and ``use_causal_mask`` work with the default axes.
    """

    supports_masking = True
    _PARTS = ("query", "key", "value", "attention_output")

    def __init__(
        self,
        num_heads: int | None = None,
        key_dim: int | None = None,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: Any = None,
        attention_axes: Any = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        seed: Any = None,
        **kwargs: Any,
    ):
        # Keras 3 additions: accepted at their defaults (Keras 3 configs carry them), any
        # other value refused by name
        for key, default in (("use_gate", False), ("sliding_window", None)):
            value = kwargs.pop(key, default)
            if value != default:
                raise NotImplementedError(
                    f"MultiHeadAttention: {key}={value!r} is not supported by polykeras "
                    f"(only {key}={default!r})"
                )
        flash = kwargs.pop("flash_attention", None)
        if flash:
            raise NotImplementedError(
                "MultiHeadAttention: flash_attention=True is not supported by polykeras "
                "(the attention is computed with plain matmuls; pass flash_attention=None)"
            )
        super().__init__(**kwargs)
        owner = f"MultiHeadAttention {self.name}"
        if num_heads is None:
            raise TypeError(f"{owner}: num_heads is required (the number of attention heads)")
        if key_dim is None:
            raise TypeError(
                f"{owner}: key_dim is required (the size of each head for query and key)"
            )
        self.num_heads = positive_int(num_heads, "num_heads", owner)
        self.key_dim = positive_int(key_dim, "key_dim", owner)
        self.value_dim = (
            self.key_dim if value_dim is None else positive_int(value_dim, "value_dim", owner)
        )
        self.dropout = _check_rate(dropout, owner)
        self.use_bias = bool(use_bias)
        if output_shape is not None and not (
            isinstance(output_shape, (list, tuple)) and not output_shape
        ):
            dims = output_shape if isinstance(output_shape, (list, tuple)) else (output_shape,)
            output_shape = tuple(positive_int(d, "output_shape", owner) for d in dims)
        else:
            output_shape = None
        self._output_shape = output_shape
        if attention_axes is not None:
            if isinstance(attention_axes, bool) or not (
                hasattr(attention_axes, "__index__") or isinstance(attention_axes, (list, tuple))
            ):
                raise ValueError(
                    f"{owner}: attention_axes must be an int, a list or a tuple of ints, "
                    f"or None; got {attention_axes!r}"
                )
            axes = attention_axes if isinstance(attention_axes, (list, tuple)) else [attention_axes]
            attention_axes = tuple(int(a) for a in axes)
        self.attention_axes = attention_axes
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizer(kernel_regularizer)
        self.bias_regularizer = _regularizer(bias_regularizer)
        self.kernel_constraint = _constraint(kernel_constraint)
        self.bias_constraint = _constraint(bias_constraint)
        self.seed = check_seed(seed, owner)

    # -- calling -----------------------------------------------------------------------------
    def __call__(  # type: ignore[override]  # Keras 3: mha(query, value, key=...)
        self,
        query: Any,
        value: Any = None,
        key: Any = None,
        *,
        attention_mask: Any = None,
        **kwargs: Any,
    ) -> Any:
        if value is None and isinstance(query, (list, tuple)):
            parts = list(query)  # [query, value(, key(, attention_mask))]: a node read back
            if not 2 <= len(parts) <= 4:
                raise ValueError(
                    f"layer {self.name} (MultiHeadAttention) was called on a list of "
                    f"{len(parts)} tensors; expected query and value (and key)"
                )
        elif value is None:
            raise TypeError(
                f"layer {self.name} (MultiHeadAttention) needs query and value: call it as "
                "layer(query, value) (value=query for self-attention)"
            )
        else:
            parts = [query, value] + ([key] if key is not None else [])
        if any(is_symbolic(p) for p in parts):
            for name in ("query_mask", "value_mask", "key_mask"):
                if kwargs.get(name) is not None:
                    raise ValueError(
                        f"layer {self.name} (MultiHeadAttention): {name}= is taken only on "
                        "arrays; in a model, masks come from the inputs (Masking, "
                        "Embedding(mask_zero=True))"
                    )
            if attention_mask is not None:
                if not is_symbolic(attention_mask):
                    raise TypeError(
                        f"layer {self.name} (MultiHeadAttention): attention_mask must be a "
                        "symbolic tensor (from Input or a layer) when the layer is called "
                        f"on symbolic tensors; got {type(attention_mask).__name__}"
                    )
                parts = parts[:2] + [parts[2] if len(parts) > 2 else parts[1], attention_mask]
        elif attention_mask is not None:
            kwargs = dict(kwargs, attention_mask=attention_mask)
        with _call_kwargs(kwargs):
            return super().__call__(parts, **kwargs)

    def _shapes(self, input_shape: Any) -> tuple:
        if not isinstance(input_shape, list) or not 2 <= len(input_shape) <= 4:
            raise ValueError(
                f"layer {self.name} (MultiHeadAttention) takes query and value (and key); "
                f"got input shape {input_shape}"
            )
        q, v = tuple(input_shape[0]), tuple(input_shape[1])
        k = tuple(input_shape[2]) if len(input_shape) > 2 else v
        return q, v, k

    def check_input(self, input_shape):
        q, v, k = self._shapes(input_shape)
        owner = f"layer {self.name} (MultiHeadAttention)"
        for what, s in (("query", q), ("value", v), ("key", k)):
            if len(s) < 3:
                raise ValueError(
                    f"{owner}: {what} must have at least 3 dimensions (batch, positions..., "
                    f"features); got shape {s}"
                )
            if s[-1] is None:
                raise ValueError(f"{owner}: the last dimension of {what} must be known; got {s}")
        if v[1:-1] != k[1:-1]:
            raise ValueError(
                f"{owner}: all dimensions of value and key, except the last one, must be "
                f"equal; got value shape {v} and key shape {k}"
            )
        if len(q) != len(v):
            raise ValueError(
                f"{owner}: query and value must have the same rank; got query shape {q} and "
                f"value shape {v}"
            )
        self._check_axes(len(q))
        axes = self._axes_for(len(q))
        for a in range(1, len(q) - 1):
            if a not in axes and None not in (q[a], v[a]) and q[a] != v[a]:
                raise ValueError(
                    f"{owner}: with attention_axes={list(axes)}, axis {a} is a batch axis and "
                    f"must be the same in query and value; got query shape {q} and value "
                    f"shape {v}"
                )
        if self.built:
            for what, s, part in (("query", q, "query"), ("value", v, "value"), ("key", k, "key")):
                want = self._kernels[part].shape[0]
                if s[-1] != want:
                    raise ValueError(
                        f"{owner}: the layer was built for {what} features of size {want}, "
                        f"but received {what} shape {s}"
                    )
        kwargs = _CALL_KWARGS.get() or {}
        if kwargs.get("use_causal_mask") and len(q) != 3:
            raise NotImplementedError(
                f"{owner}: use_causal_mask=True is supported for (batch, positions, "
                f"features) inputs only; got query shape {q}"
            )

    def _axes_for(self, rank: int) -> tuple:
        """The attention axes for inputs of ``rank`` (negative ones counted as Keras does)."""
        if self.attention_axes is None:
            return tuple(range(1, rank - 1))
        return tuple(a if a >= 0 else rank + a for a in self.attention_axes)

    def _check_axes(self, rank: int) -> None:
        axes = self._axes_for(rank)
        if len(set(axes)) != len(axes) or not all(1 <= a <= rank - 2 for a in axes):
            raise ValueError(
                f"layer {self.name} (MultiHeadAttention): attention_axes="
                f"{list(self.attention_axes or ())} does not fit inputs of rank {rank}: "
                f"expected distinct axes among {list(range(1, rank - 1))} (between the batch "
                "and the features)"
            )

    def build(self, input_shape):
        q, v, k = self._shapes(input_shape)
        n, hk, hv = self.num_heads, self.key_dim, self.value_dim
        out = self._output_shape or (q[-1],)
        self._kernels: dict[str, Any] = {}
        self._biases: dict[str, Any] = {}
        shapes = {
            "query": ((q[-1], n, hk), (n, hk)),
            "key": ((k[-1], n, hk), (n, hk)),
            "value": ((v[-1], n, hv), (n, hv)),
            "attention_output": ((n, hv) + tuple(out), tuple(out)),
        }
        for part in self._PARTS:
            kshape, bshape = shapes[part]
            self._kernels[part] = self.add_weight(
                f"{part}/kernel",
                kshape,
                self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
            )
            self._biases[part] = (
                self.add_weight(
                    f"{part}/bias",
                    bshape,
                    self.bias_initializer,
                    regularizer=self.bias_regularizer,
                    constraint=self.bias_constraint,
                )
                if self.use_bias
                else None
            )
        self._resolved_axes = self._axes_for(len(q))
        self.built = True

    def keras3_weight_groups(self) -> list:
        """Keras 3 keeps these weights in four sub-layers (``query_dense``...): the groups
        of a ``.keras`` file, each with its variables."""
        groups = []
        for part, sub in zip(
            self._PARTS, ("query_dense", "key_dense", "value_dense", "output_dense")
        ):
            variables = [self._kernels[part]]
            if self._biases[part] is not None:
                variables.append(self._biases[part])
            groups.append((sub, variables))
        return groups + [("_softmax", []), ("_dropout_layer", [])]

    @staticmethod
    def keras2_keyword_inputs(count: int) -> list:
        """How tf.keras 2 writes a node: the query as the input, the rest by keyword."""
        return ["value", "key", "attention_mask"][: count - 1]

    @staticmethod
    def keras3_call_args(tensors: list, kwargs: dict) -> tuple[list, dict]:
        """A node as Keras 3 writes it: ``args`` [query, value], ``key`` and
        ``attention_mask`` as keywords."""
        extra = dict(kwargs)
        if len(tensors) > 2:
            extra["key"] = tensors[2]
        if len(tensors) > 3:
            extra["attention_mask"] = tensors[3]
        return list(tensors[:2]), extra

    def _project(self, x: Any, part: str, batch_shape: tuple) -> Any:
        """(batch, positions, features) -> (batch, heads, positions, head size)."""
        kernel = self._kernels[part]
        f, n, h = kernel.shape
        y = ops.matmul(x, ops.reshape(kernel, (f, n * h)))
        bias = self._biases[part]
        if bias is not None:
            y = ops.add(y, ops.reshape(bias, (n * h,)))
        y = ops.reshape(y, batch_shape + (n, h))
        return ops.transpose(y, (0, 2, 1, 3))

    def call(
        self,
        inputs,
        mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
        query_mask=None,
        value_mask=None,
        key_mask=None,
    ):
        parts = list(inputs)
        if len(parts) == 4:  # an attention_mask given as a symbolic tensor is the 4th input
            attention_mask = parts.pop()
        query, value = parts[0], parts[1]
        key = parts[2] if len(parts) > 2 else value
        masks = _split_mask(self, mask, 4)
        query_mask = masks[0] if query_mask is None else query_mask
        value_mask = masks[1] if value_mask is None else value_mask
        key_mask = masks[2] if key_mask is None else key_mask
        q_shape, v_shape = tuple(ops.shape(query)), tuple(ops.shape(value))
        rank = len(q_shape)
        axes = self._axes_for(rank)
        other = tuple(a for a in range(1, rank - 1) if a not in axes)
        perm = (0,) + other + axes + (rank - 1,)
        moved = perm != tuple(range(rank))
        if other or moved:  # the other axes join the batch, the attention axes go last
            if use_causal_mask or any(
                m is not None for m in (query_mask, value_mask, key_mask, attention_mask)
            ):
                raise NotImplementedError(
                    f"layer {self.name} (MultiHeadAttention): masks (and use_causal_mask) "
                    f"with attention_axes={list(axes)} are not supported by polykeras; "
                    "they are with the default attention_axes"
                )
        if moved:
            query = ops.transpose(query, perm)
            value = ops.transpose(value, perm)
            key = ops.transpose(key, perm)
        lead = (q_shape[0],) + tuple(q_shape[a] for a in other)
        t_dims = tuple(q_shape[a] for a in axes)
        s_dims = tuple(v_shape[a] for a in axes)
        batch, t, s = math.prod(lead), math.prod(t_dims), math.prod(s_dims)
        # several attention axes are one flattened sequence
        query_f = ops.reshape(query, (batch, t, q_shape[-1]))
        value_f = ops.reshape(value, (batch, s, v_shape[-1]))
        key_f = ops.reshape(key, (batch, s, ops.shape(key)[-1]))
        keep = self._keep_mask(
            q_shape, v_shape, query_mask, value_mask, key_mask, attention_mask, use_causal_mask
        )
        q = self._project(query_f, "query", (batch, t))
        k = self._project(key_f, "key", (batch, s))
        v = self._project(value_f, "value", (batch, s))
        # the query is scaled before the product, as Keras does (same rounding)
        q = ops.multiply(q, 1.0 / math.sqrt(self.key_dim))
        # masked positions: added, not substituted (as tf.keras 2 and Keras 3's fused path
        # do), so a row with nothing kept is uniform and still passes gradients back
        bias = None
        if keep is not None:
            drop = ops.subtract(1.0, ops.expand_dims(keep, 1))
            bias = ops.multiply(drop, _large_negative(self.dtype))
        dropping = bool(training) and self.dropout > 0
        if return_attention_scores or dropping:
            # the weights themselves are needed: (batch, heads, t, s)
            weights = ops.attention_weights(q, k, bias, scale=1.0)
            used = _dropout(self, weights, self.dropout) if dropping else weights
            ctx = ops.matmul(used, v)
        else:  # one fused kernel where the backend has one
            ctx = ops.attend(q, k, v, bias, scale=1.0)
        ctx = ops.transpose(ctx, (0, 2, 1, 3))  # (batch, t, heads, value_dim)
        kernel = self._kernels["attention_output"]
        out_dims = tuple(kernel.shape[2:])
        width = math.prod(out_dims)
        n_hv = self.num_heads * self.value_dim
        y = ops.matmul(ops.reshape(ctx, (batch, t, n_hv)), ops.reshape(kernel, (n_hv, width)))
        bias = self._biases["attention_output"]
        if bias is not None:
            y = ops.add(y, ops.reshape(bias, (width,)))
        y = ops.reshape(y, lead + t_dims + out_dims)
        if moved:  # back to the query's own order of axes
            back = tuple(perm.index(i) for i in range(rank - 1))
            y = ops.transpose(y, back + tuple(range(rank - 1, rank - 1 + len(out_dims))))
        if return_attention_scores:
            # as Keras: (batch, other axes..., heads, query positions..., value positions...)
            return [y, ops.reshape(weights, lead + (self.num_heads,) + t_dims + s_dims)]
        return y

    def _keep_mask(
        self, q_shape, v_shape, query_mask, value_mask, key_mask, attention_mask, causal
    ) -> Any | None:
        """The (batch, t, s) float keep mask from every source, or None when none is set."""
        batch = q_shape[0]
        t = math.prod(q_shape[1:-1])
        s = math.prod(v_shape[1:-1])
        keep = None

        def join(m):
            nonlocal keep
            keep = m if keep is None else ops.multiply(keep, m)

        if query_mask is not None:
            _check_mask(self, "query", query_mask, q_shape[:-1])
            join(ops.reshape(_as_bool_keep(query_mask), (batch, t, 1)))
        for which, m in (("value", value_mask), ("key", key_mask)):
            if m is not None:
                _check_mask(self, which, m, v_shape[:-1])
                join(ops.reshape(_as_bool_keep(m), (batch, 1, s)))
        if causal:
            join(_causal_keep(t, s))
        if attention_mask is not None:
            got = tuple(ops.shape(attention_mask))
            want = (batch,) + q_shape[1:-1] + v_shape[1:-1]
            if got != want and not (len(got) == len(want) and got[0] == 1 and got[1:] == want[1:]):
                raise ValueError(
                    f"layer {self.name} (MultiHeadAttention): attention_mask has shape {got}; "
                    f"expected {want} (batch, query positions, value positions)"
                )
            join(ops.reshape(_as_bool_keep(attention_mask), (got[0], t, s)))
        if keep is not None and ops.dtype_name(keep) != self.dtype:
            keep = ops.cast(keep, self.dtype)
        return keep

    def compute_output_shape(self, input_shape):
        q, v, _ = self._shapes(input_shape)
        out = q[:-1] + (self._output_shape or (q[-1],))
        if _wants_scores():
            axes = self._axes_for(len(q))
            lead = (q[0],) + tuple(q[a] for a in range(1, len(q) - 1) if a not in axes)
            attended = tuple(q[a] for a in axes) + tuple(v[a] for a in axes)
            return [out, lead + (self.num_heads,) + attended]
        return out

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        query_mask = _split_mask(self, mask, 4)[0]
        if _wants_scores():
            return [query_mask, None]
        return query_mask

    def get_config(self):
        axes = getattr(self, "_resolved_axes", None) if self.built else None
        if axes is None and self.attention_axes is not None:
            axes = self.attention_axes
        cfg = {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": list(self._output_shape) if self._output_shape else None,
            "attention_axes": list(axes) if axes is not None else None,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _serialize_reg(self.kernel_regularizer),
            "bias_regularizer": _serialize_reg(self.bias_regularizer),
            "activity_regularizer": _serialize_reg(self.activity_regularizer),
            "kernel_constraint": _serialize_constraint(self.kernel_constraint),
            "bias_constraint": _serialize_constraint(self.bias_constraint),
        }
        if self.seed is not None:
            cfg["seed"] = self.seed
        return cfg


class _BaseDenseAttention(Layer):
    """What Attention and AdditiveAttention share: inputs ``[query, value]`` or
    ``[query, value, key]``, masks ``[query_mask, value_mask]``, causal masking, dropout of
    the attention weights, and the scores as an optional second output."""

    supports_masking = True

    def __init__(self, dropout: float = 0.0, seed: Any = None, causal: bool = False, **kwargs):
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} {self.name}"
        self.dropout = _check_rate(dropout, owner)
        self.seed = check_seed(seed, owner)
        self.causal = bool(causal)  # Keras 2's constructor spelling of use_causal_mask=True

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        with _call_kwargs(kwargs):
            return super().__call__(inputs, **kwargs)

    def _shapes(self, input_shape: Any) -> tuple:
        name = type(self).__name__
        if not isinstance(input_shape, list):
            raise ValueError(
                f"layer {self.name} ({name}) must be called on a list of inputs, namely "
                f"[query, value] or [query, value, key]; got one input of shape {input_shape}"
            )
        if not 2 <= len(input_shape) <= 3:
            raise ValueError(
                f"layer {self.name} ({name}) takes a list of 2 or 3 inputs, namely "
                f"[query, value] or [query, value, key]; got {len(input_shape)}"
            )
        q, v = tuple(input_shape[0]), tuple(input_shape[1])
        k = tuple(input_shape[2]) if len(input_shape) > 2 else v
        return q, v, k

    def check_input(self, input_shape):
        q, v, k = self._shapes(input_shape)
        owner = f"layer {self.name} ({type(self).__name__})"
        for what, s in (("query", q), ("value", v), ("key", k)):
            if len(s) < 3:
                raise ValueError(
                    f"{owner}: {what} must have at least 3 dimensions (batch, positions, "
                    f"features); got shape {s}"
                )
        if not len(q) == len(v) == len(k):
            raise ValueError(
                f"{owner}: query, value and key must have the same rank; got {q}, {v}, {k}"
            )
        if v[-2] is not None and k[-2] is not None and v[-2] != k[-2]:
            raise ValueError(
                f"{owner}: value and key must have the same number of positions; got value "
                f"shape {v} and key shape {k}"
            )
        if q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:
            raise ValueError(
                f"{owner}: query and key must have the same last dimension (their scores "
                f"compare features one to one); got query shape {q} and key shape {k}"
            )

    def _scores(self, query: Any, key: Any) -> Any:
        raise NotImplementedError

    def call(
        self,
        inputs,
        mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        parts = list(inputs)
        query, value = parts[0], parts[1]
        key = parts[2] if len(parts) > 2 else value
        q_mask, v_mask = _split_mask(self, mask, 3)[:2]
        scores = self._scores(query, key)  # (..., tq, tv)
        shape = tuple(ops.shape(scores))
        keep = None
        if v_mask is not None:
            _check_mask(self, "value", v_mask, tuple(ops.shape(value))[:-1])
            keep = ops.expand_dims(_as_bool_keep(v_mask), -2)
        if use_causal_mask or self.causal:
            causal = _causal_keep(shape[-2], shape[-1])
            causal = ops.reshape(causal, (1,) * (len(shape) - 2) + shape[-2:])
            keep = causal if keep is None else ops.multiply(keep, causal)
        if keep is not None:
            # Keras subtracts a large number from left-out scores (a row left with nothing
            # is then a softmax over those, not zeros)
            if ops.dtype_name(keep) != self.dtype:
                keep = ops.cast(keep, self.dtype)
            big = 65504.0 if self.dtype == "float16" else 1.0e9
            scores = ops.subtract(scores, ops.multiply(ops.subtract(1.0, keep), big))
        weights = ops.softmax(scores, axis=-1)
        used = _dropout(self, weights, self.dropout) if training and self.dropout > 0 else weights
        out = ops.matmul(used, value)
        if q_mask is not None:
            _check_mask(self, "query", q_mask, tuple(ops.shape(query))[:-1])
            out = ops.multiply(
                out, ops.expand_dims(ops.cast(_as_bool_keep(q_mask), self.dtype), -1)
            )
        if return_attention_scores:
            return [out, weights]
        return out

    def compute_output_shape(self, input_shape):
        q, v, k = self._shapes(input_shape)
        out = q[:-1] + (v[-1],)
        if _wants_scores():
            return [out, q[:-1] + (k[-2],)]
        return out

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        q_mask = _split_mask(self, mask, 3)[0]
        return [q_mask, None] if _wants_scores() else q_mask

    def get_config(self):
        cfg = {**super().get_config(), "dropout": self.dropout}
        if self.seed is not None:
            cfg["seed"] = self.seed
        if self.causal:
            cfg["causal"] = True
        return cfg


class Attention(_BaseDenseAttention):
    """Dot-product (Luong) attention: ``softmax(query . key^T) . value``.

    ``score_mode="dot"`` scores with the dot product (times a learned scalar ``scale``
    when ``use_scale``); ``"concat"`` with ``concat_score_weight * sum(tanh(scale * (q +
    k)))``.  Weights: ``scale`` then ``concat_score_weight``, both scalars, as in Keras."""

    def __init__(
        self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0, **kwargs
    ):
        super().__init__(dropout=dropout, **kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                f"Attention {self.name}: invalid value for argument score_mode: expected one "
                f"of 'dot', 'concat'; got score_mode={score_mode!r}"
            )
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode

    def build(self, input_shape):
        self._shapes(input_shape)
        self.scale = self.add_weight("scale", (), "ones") if self.use_scale else None
        self.concat_score_weight = (
            self.add_weight("concat_score_weight", (), "ones")
            if self.score_mode == "concat"
            else None
        )
        self.built = True

    def _scores(self, query, key):
        nd = len(ops.shape(key))
        if self.score_mode == "dot":
            axes = tuple(range(nd - 2)) + (nd - 1, nd - 2)
            scores = ops.matmul(query, ops.transpose(key, axes))
            return ops.multiply(scores, self.scale) if self.scale is not None else scores
        summed = ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3))
        if self.scale is not None:
            summed = ops.multiply(summed, self.scale)
        return ops.multiply(self.concat_score_weight, ops.sum(ops.tanh(summed), axis=-1))

    def get_config(self):
        return {
            **super().get_config(),
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
        }


class AdditiveAttention(_BaseDenseAttention):
    """Additive (Bahdanau) attention: scores ``sum(scale * tanh(query + key))`` over the
    features, with a learned ``scale`` vector (shape ``(dim,)``) when ``use_scale``."""

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, **kwargs):
        super().__init__(dropout=dropout, **kwargs)
        self.use_scale = bool(use_scale)

    def build(self, input_shape):
        q, _, _ = self._shapes(input_shape)
        self.scale = (
            self.add_weight("scale", (q[-1],), "glorot_uniform") if self.use_scale else None
        )
        self.built = True

    def _scores(self, query, key):
        t = ops.tanh(ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3)))
        if self.scale is not None:
            t = ops.multiply(t, self.scale)
        return ops.sum(t, axis=-1)

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale}
