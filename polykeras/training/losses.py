"""Loss functions by name, as Keras 2 names them (numbers as tf.keras 2 / Keras 3 compute).

A loss is a function ``loss(y_true, y_pred)`` of backend arrays returning one value per
sample (the last axis is reduced).  Probabilities are clipped to ``[eps, 1 - eps]`` with
``eps = polykeras.config.epsilon()`` (1e-7) before any logarithm, as Keras does.
All math goes through :mod:`polykeras.ops`, so every loss is differentiable on every backend.

Crossentropy from the logits, as tf.keras 2 computes it: while ``fit``/``evaluate``
computes the losses (inside :func:`polykeras.ops.logits_scope`), a prediction that is
exactly the output of a ``softmax`` (categorical and sparse categorical crossentropy) or
``sigmoid`` (binary crossentropy) op, e.g. ``Dense(10, activation="softmax")`` or
``Activation("sigmoid")`` as the output layer, is scored from that op's input with one
numerically stable op (``ops.softmax_crossentropy``, ``ops.sigmoid_crossentropy``): no clip,
finite and with the right gradient where the probabilities saturate.  Where the clip is
inactive both give the same numbers.  Other predictions, and metrics, use the clipped
probabilities.  (Keras 3 on TensorFlow does the same through ``_keras_logits``; Keras 3 on
torch clips.)
"""

from __future__ import annotations

import functools
import math
from typing import Any
from collections.abc import Callable

import numpy as np

from .. import backend as _backend
from .. import config, ops
from ..engine.base_layer import KerasTensor


def _eps() -> float:
    return config.epsilon()


def mean_squared_error(y_true, y_pred):
    return ops.mean(ops.square(ops.subtract(y_pred, y_true)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    return ops.mean(ops.abs(ops.subtract(y_pred, y_true)), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    denom = ops.maximum(ops.abs(y_true), _eps())
    diff = ops.abs(ops.divide(ops.subtract(y_true, y_pred), denom))
    return ops.multiply(ops.mean(diff, axis=-1), 100.0)


def mean_squared_logarithmic_error(y_true, y_pred):
    first = ops.log(ops.add(ops.maximum(y_pred, _eps()), 1.0))
    second = ops.log(ops.add(ops.maximum(y_true, _eps()), 1.0))
    return ops.mean(ops.square(ops.subtract(first, second)), axis=-1)


def _signed_labels(y_true):
    """0/1 labels become -1/+1 (Keras 3's hinge convention); other labels pass unchanged.

    Decided on the device (no host round trip): where every label is 0 or 1, convert."""
    B = _backend.current()
    t = ops.stop_gradient(y_true)
    dtype = B.dtype_name(t)
    binary = B.add(B.cast(B.equal(t, 0), dtype), B.cast(B.equal(t, 1), dtype))
    all_binary = B.equal(B.sum(B.subtract(1.0, binary)), 0)
    return B.where(all_binary, B.subtract(B.multiply(t, 2.0), 1.0), t)


def hinge(y_true, y_pred):
    y_true = _signed_labels(y_true)
    return ops.mean(ops.maximum(ops.subtract(1.0, ops.multiply(y_true, y_pred)), 0.0), axis=-1)


def squared_hinge(y_true, y_pred):
    y_true = _signed_labels(y_true)
    margin = ops.maximum(ops.subtract(1.0, ops.multiply(y_true, y_pred)), 0.0)
    return ops.mean(ops.square(margin), axis=-1)


def categorical_hinge(y_true, y_pred):
    pos = ops.sum(ops.multiply(y_true, y_pred), axis=-1)
    neg = ops.max(ops.multiply(ops.subtract(1.0, y_true), y_pred), axis=-1)
    return ops.maximum(ops.add(ops.subtract(neg, pos), 1.0), 0.0)


def logcosh(y_true, y_pred):
    x = ops.subtract(y_pred, y_true)
    # log(cosh(x)) = x + softplus(-2x) - log(2), with no overflow
    value = ops.subtract(ops.add(x, ops.softplus(ops.multiply(x, -2.0))), math.log(2.0))
    return ops.mean(value, axis=-1)


def _clip_probs(p):
    eps = _eps()
    return ops.clip(p, eps, 1.0 - eps)


def categorical_crossentropy(y_true, y_pred):
    """-sum(y_true * log(p)) with p = y_pred / sum(y_pred), clipped to [eps, 1 - eps]; from
    the logits where y_pred is a softmax output (see the module's docstring)."""
    logits = ops.logits_of(y_pred, "softmax")
    if logits is not None:
        return ops.softmax_crossentropy(y_true, logits)
    p = ops.divide(y_pred, ops.sum(y_pred, axis=-1, keepdims=True))
    return ops.neg(ops.sum(ops.multiply(y_true, ops.log(_clip_probs(p))), axis=-1))


_eye_cache: dict[tuple, Any] = {}


def one_hot(indices, num_classes: int, dtype: str):
    """Rows of an identity matrix (kept on the backend, cached per size and dtype)."""
    B = _backend.current()
    key = (id(B), num_classes, dtype)
    eye = _eye_cache.get(key)
    if eye is None:
        eye = B.asarray(np.eye(num_classes, dtype=dtype))
        _eye_cache[key] = eye
    idx = ops.stop_gradient(indices)
    if not B.dtype_name(idx).startswith(("int", "uint")):
        idx = B.cast(idx, "int64")
    return B.take(eye, idx)


def sparse_categorical_crossentropy(y_true, y_pred):
    """Categorical crossentropy with integer class labels (shape (n,) or (n, 1)): the
    label's entry of each row is picked (no one-hot matrix), the same numbers; from the
    logits where y_pred is a softmax output (see the module's docstring)."""
    logits = ops.logits_of(y_pred, "softmax")
    if logits is not None:
        return ops.sparse_crossentropy(y_true, logits, from_logits=True)
    return ops.sparse_crossentropy(y_true, y_pred)


def binary_crossentropy(y_true, y_pred):
    """mean(-(t log p + (1 - t) log(1 - p))) over the last axis, p clipped; from the
    logits where y_pred is a sigmoid output (see the module's docstring)."""
    logits = ops.logits_of(y_pred, "sigmoid")
    if logits is not None:
        return ops.mean(ops.sigmoid_crossentropy(y_true, logits), axis=-1)
    p = _clip_probs(y_pred)
    pos = ops.multiply(y_true, ops.log(p))
    neg = ops.multiply(ops.subtract(1.0, y_true), ops.log(ops.subtract(1.0, p)))
    return ops.neg(ops.mean(ops.add(pos, neg), axis=-1))


def kullback_leibler_divergence(y_true, y_pred):
    eps = _eps()
    t = ops.clip(y_true, eps, 1.0)
    p = ops.clip(y_pred, eps, 1.0)
    return ops.sum(ops.multiply(t, ops.log(ops.divide(t, p))), axis=-1)


def poisson(y_true, y_pred):
    return ops.mean(
        ops.subtract(y_pred, ops.multiply(y_true, ops.log(ops.add(y_pred, _eps())))), axis=-1
    )


def cosine_proximity(y_true, y_pred):
    """-sum(l2_normalize(y_true) * l2_normalize(y_pred)) (Keras 3's cosine_similarity)."""
    t = ops.l2_normalize(y_true, axis=-1)
    p = ops.l2_normalize(y_pred, axis=-1)
    return ops.neg(ops.sum(ops.multiply(t, p), axis=-1))


def huber(y_true, y_pred, delta: float = 1.0):
    err = ops.subtract(y_pred, y_true)
    abs_err = ops.abs(err)
    quad = ops.multiply(ops.square(err), 0.5)
    lin = ops.subtract(ops.multiply(abs_err, delta), 0.5 * delta * delta)
    small = ops.less(ops.stop_gradient(abs_err), delta)
    return ops.mean(ops.where(small, quad, lin), axis=-1)


#: canonical name -> function; aliases below
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "mean_squared_error": mean_squared_error,
    "mean_absolute_error": mean_absolute_error,
    "mean_absolute_percentage_error": mean_absolute_percentage_error,
    "mean_squared_logarithmic_error": mean_squared_logarithmic_error,
    "hinge": hinge,
    "squared_hinge": squared_hinge,
    "categorical_hinge": categorical_hinge,
    "logcosh": logcosh,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "binary_crossentropy": binary_crossentropy,
    "kullback_leibler_divergence": kullback_leibler_divergence,
    "poisson": poisson,
    "cosine_proximity": cosine_proximity,
    "huber_loss": huber,
}


def arrays_only(fn: Callable[..., Any], kind: str = "loss") -> Callable[..., Any]:
    """``fn`` refusing symbolic tensors with a clear error before any backend op runs.

    Loss and metric functions compute on arrays; polykeras records no graph node for math
    on symbolic tensors (there is no ``model.add_loss``), so such a call cannot work."""

    @functools.wraps(fn)
    def checked(y_true, y_pred, *args, **kwargs):
        if type(y_true) is KerasTensor or type(y_pred) is KerasTensor:
            which = ", ".join(
                f"{arg}={t.name} (shape {t.shape})"
                for arg, t in (("y_true", y_true), ("y_pred", y_pred))
                if type(t) is KerasTensor
            )
            raise TypeError(
                f"{kind} function {fn.__name__} was called on symbolic tensors: {which}. "
                f"It computes on arrays: pass it to model.compile(loss=..., metrics=...) and "
                f"give data to fit/evaluate, or call it on NumPy or backend arrays. To use it "
                f"inside a model, wrap it in a Lambda layer, e.g. Lambda(lambda t: "
                f"{fn.__name__}(t[0], t[1]))([a, b]) (polykeras has no model.add_loss)."
            )
        return fn(y_true, y_pred, *args, **kwargs)

    return checked


# every loss checks its arguments (module names rebound, so identity checks still hold)
for _name, _fn in list(FUNCTIONS.items()):
    FUNCTIONS[_name] = globals()[_fn.__name__] = arrays_only(_fn)
del _name, _fn

ALIASES: dict[str, str] = {
    "mse": "mean_squared_error",
    "MSE": "mean_squared_error",
    "mae": "mean_absolute_error",
    "MAE": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "MAPE": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "MSLE": "mean_squared_logarithmic_error",
    "kld": "kullback_leibler_divergence",
    "KLD": "kullback_leibler_divergence",
    "kl_divergence": "kullback_leibler_divergence",
    "log_cosh": "logcosh",
    "cosine": "cosine_proximity",
    "cosine_similarity": "cosine_proximity",
    "huber": "huber_loss",
}

# Keras-style short names as module attributes (``polykeras.losses.mse``)
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence = kullback_leibler_divergence
log_cosh = logcosh
cosine = cosine_similarity = cosine_proximity


def canonical_name(name: str) -> str | None:
    """The canonical name for a loss name or alias (None if unknown)."""
    name = ALIASES.get(name, name)
    return name if name in FUNCTIONS else None


def get(identifier: Any) -> Callable[..., Any]:
    """A loss function from a name, a callable, or ``{"class_name": name}``; a loss class's
    config (``{"class_name": "CategoricalCrossentropy", "config": {...}}``) gives a loss
    object, and names known to ``saving.get_custom_objects()`` / ``custom_object_scope``
    resolve first."""
    if isinstance(identifier, dict):
        obj = _object_from_config(identifier)
        if obj is not None:
            return obj
        identifier = identifier.get("config", {}).get("name") or identifier.get("class_name")
    if isinstance(identifier, str):
        custom = _custom(identifier)
        if custom is not None:
            return custom() if isinstance(custom, type) else custom
        name = canonical_name(identifier)
        if name is None:
            # a class's name gives an instance of the class with its defaults, as in Keras
            # ("CategoricalCrossentropy"); a function's name or alias gives the function
            cls = _classes.CLASSES.get(identifier)
            if isinstance(cls, type) and cls not in (Loss, _classes.LossFunctionWrapper):
                return cls()
            name = canonical_name(_snake(identifier))
        if name is None:
            raise ValueError(
                f"Unknown loss function: {identifier!r}. Known losses: "
                f"{', '.join(sorted(set(FUNCTIONS) | set(ALIASES)))}"
            )
        return FUNCTIONS[name]
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret loss function identifier: {identifier!r}")


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def name_of(fn: Callable[..., Any]) -> str:
    """The canonical name of a built-in loss, or the function's ``__name__``."""
    for name, f in FUNCTIONS.items():
        if f is fn:
            return name
    return getattr(fn, "__name__", type(fn).__name__)


def serialize(fn: Any) -> Any:
    """A loss as Keras 2 stores it in ``training_config``: its name, or for a loss object
    ``{"class_name", "config"}``."""
    if isinstance(fn, str):
        return fn
    if isinstance(fn, Loss):
        return _classes.serialize(fn)
    return name_of(fn)


def deserialize(name: Any, custom_objects: dict | None = None) -> Callable[..., Any]:
    if custom_objects and isinstance(name, str) and name in custom_objects:
        return custom_objects[name]
    if custom_objects and isinstance(name, dict):
        from ..saving.custom_objects import custom_object_scope

        with custom_object_scope(custom_objects):
            return get(name)
    return get(name)


def _custom(name: str) -> Any:
    """A loss known by ``name`` to the custom objects in effect, or None."""
    from ..saving.custom_objects import effective, find

    return find(name, effective())


def _object_from_config(entry: dict) -> Any:
    """A loss object from ``{"class_name", "config"}`` naming a loss class (a custom one
    first), or None when the entry names no class."""
    class_name = entry.get("class_name")
    if not isinstance(class_name, str):
        return None
    cls = _custom(class_name)
    if cls is None:
        cls = _classes.CLASSES.get(class_name.rpartition(">")[2])
    if not (isinstance(cls, type) and issubclass(cls, Loss)):
        return None
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        raise ValueError(f"the config of loss {class_name!r} must be a dict, got {config!r:.80}")
    return cls.from_config(dict(config))


# Keras' loss classes (losses.CategoricalCrossentropy(from_logits=True)...)
from . import loss_classes as _classes  # noqa: E402
from .loss_classes import (  # noqa: E402,F401
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    Loss,
    LossFunctionWrapper,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)

# Keras 3's focal crossentropies, Dice and Tversky (classes and functions, registered by name)
from . import loss_classes_extra as _extra  # noqa: E402
from .loss_classes_extra import (  # noqa: E402,F401
    BinaryFocalCrossentropy,
    CategoricalFocalCrossentropy,
    Dice,
    Tversky,
    binary_focal_crossentropy,
    categorical_focal_crossentropy,
    dice,
    tversky,
)

FUNCTIONS.update(_extra.FUNCTIONS)
_classes.CLASSES.update(_extra.CLASSES)
