"""Weight initializers, computed with NumPy so a seed gives the same weights on every backend.

Names and defaults follow Keras 2 (``glorot_uniform``, ``orthogonal``...); Keras 1's names
(``uniform``, ``normal``, ``zero``, ``one``) are accepted too.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Any
from collections.abc import Callable, Iterator

import numpy as np

from .utils import as_float

_state = {"rng": np.random.default_rng()}


def seed(n: int) -> None:
    _state["rng"] = np.random.default_rng(int(n))


def _rng(seed_value: int | None) -> np.random.Generator:
    return np.random.default_rng(seed_value) if seed_value is not None else _state["rng"]


# What a load asks of the initializers it runs (see :func:`guarded`): None outside loads.
_GUARD: contextvars.ContextVar[Callable[..., Any] | None] = contextvars.ContextVar(
    "polykeras_initializer_guard", default=None
)


def draw(init: Callable[..., Any], shape: tuple[int, ...], dtype: str) -> Any:
    """``init(shape, dtype)``, unless a load in progress decides otherwise: a load whose
    file holds the weights gets placeholders (the initializers never run), a load from a
    config alone is charged against its budget first (:mod:`polykeras.saving.limits`)."""
    guard = _GUARD.get()
    if guard is not None:
        replaced = guard(init, shape, dtype)
        if replaced is not None:
            return replaced
    return init(shape, dtype)


@contextlib.contextmanager
def guarded(guard: Callable[..., Any]) -> Iterator[None]:
    """Within the block, ``guard(init, shape, dtype)`` sees every weight before its
    initializer runs; it returns an array to use instead, or None to run the initializer."""
    token = _GUARD.set(guard)
    try:
        yield
    finally:
        _GUARD.reset(token)


def cost(init: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    """(bytes allocated, floating-point operations) of drawing ``shape`` with ``init``:
    random draws are made in float64, and the orthogonal initializer factorises a
    matrix (QR: about 2 m n^2 operations)."""
    n = math.prod(shape) if shape else 1
    if isinstance(init, (Zeros, Ones, Constant)):
        return 4 * n, n
    if isinstance(init, Orthogonal):
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        m, k = max(rows, shape[-1] if shape else 1), min(rows, shape[-1] if shape else 1)
        return 8 * m * k * 3 + 4 * n, 2 * m * k * k
    return 12 * n, 10 * n


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


class Initializer:
    """Base class: ``init(shape, dtype) -> numpy array``."""

    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Zeros(Initializer):
    def __call__(self, shape, dtype="float32"):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    def __call__(self, shape, dtype="float32"):
        return np.ones(shape, dtype=dtype)


class Constant(Initializer):
    def __init__(self, value=0.0):
        if isinstance(value, (list, tuple, np.ndarray)):
            arr = np.asarray(value, dtype="float64")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"Constant: value must be finite, got {value!r:.80}")
            self.value = value
        else:
            self.value = as_float(value, "value", "Constant")

    def __call__(self, shape, dtype="float32"):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval = as_float(minval, "minval", "RandomUniform")
        self.maxval = as_float(maxval, "maxval", "RandomUniform", low=self.minval)
        self.seed = seed

    def __call__(self, shape, dtype="float32"):
        return _rng(self.seed).uniform(self.minval, self.maxval, size=shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        owner = type(self).__name__
        self.mean = as_float(mean, "mean", owner)
        self.stddev = as_float(stddev, "stddev", owner, low=0.0)
        self.seed = seed

    def __call__(self, shape, dtype="float32"):
        return _rng(self.seed).normal(self.mean, self.stddev, size=shape).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated(rng, mean, stddev, shape):
    out = rng.normal(size=shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.normal(size=int(bad.sum()))
        bad = np.abs(out) > 2
    return mean + stddev * out


class TruncatedNormal(RandomNormal):
    def __call__(self, shape, dtype="float32"):
        return _truncated(_rng(self.seed), self.mean, self.stddev, shape).astype(dtype)


class VarianceScaling(Initializer):
    def __init__(self, scale=1.0, mode="fan_in", distribution="normal", seed=None):
        scale = as_float(scale, "scale", "VarianceScaling", low=0.0, low_open=True)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode {mode!r} is not fan_in, fan_out or fan_avg")
        distribution = {"normal": "truncated_normal"}.get(distribution, distribution)
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"VarianceScaling: unknown distribution {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = _fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        rng = _rng(self.seed)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * var)
            out = rng.uniform(-limit, limit, size=shape)
        elif self.distribution == "truncated_normal":
            out = _truncated(rng, 0.0, math.sqrt(var) / 0.87962566103423978, shape)
        else:
            out = rng.normal(0.0, math.sqrt(var), size=shape)
        return out.astype(dtype)

    def get_config(self):
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
        }


class Orthogonal(Initializer):
    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = as_float(gain, "gain", type(self).__name__), seed

    def __call__(self, shape, dtype="float32"):
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        cols = shape[-1]
        flat = _rng(self.seed).normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    def __init__(self, gain=1.0):
        self.gain = as_float(gain, "gain", "Identity")

    def __call__(self, shape, dtype="float32"):
        if len(shape) != 2:
            raise ValueError(f"Identity initializer needs a 2-D shape, got {tuple(shape)}")
        return (self.gain * np.eye(*shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


def _vs(scale, mode, dist):
    def make(seed=None):
        return VarianceScaling(scale, mode, dist, seed)

    return make


class GlorotUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "uniform", seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)

    def get_config(self):
        return {"seed": self.seed}


class HeUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "uniform", seed)

    def get_config(self):
        return {"seed": self.seed}


class HeNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed)

    def get_config(self):
        return {"seed": self.seed}


class LecunUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_in", "uniform", seed)

    def get_config(self):
        return {"seed": self.seed}


class LecunNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed)

    def get_config(self):
        return {"seed": self.seed}


CLASSES: dict[str, type] = {
    c.__name__: c
    for c in (
        Zeros,
        Ones,
        Constant,
        RandomUniform,
        RandomNormal,
        TruncatedNormal,
        VarianceScaling,
        Orthogonal,
        Identity,
        GlorotUniform,
        GlorotNormal,
        HeUniform,
        HeNormal,
        LecunUniform,
        LecunNormal,
    )
}

ALIASES: dict[str, Callable[[], Initializer]] = {
    "zeros": Zeros,
    "zero": Zeros,
    "ones": Ones,
    "one": Ones,
    "constant": Constant,
    "uniform": RandomUniform,
    "random_uniform": RandomUniform,
    "normal": RandomNormal,
    "random_normal": RandomNormal,
    "truncated_normal": TruncatedNormal,
    "orthogonal": Orthogonal,
    "identity": Identity,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "lecun_uniform": LecunUniform,
    "lecun_normal": LecunNormal,
}


def get(identifier: Any) -> Initializer:
    """An initializer from a name, a config dict, an instance or a callable."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        key = identifier if identifier in ALIASES else identifier.lower()
        if key in ALIASES:
            return ALIASES[key]()
        if identifier in CLASSES:
            return CLASSES[identifier]()
        raise ValueError(
            f"unknown initializer {identifier!r}; expected one of {', '.join(sorted(ALIASES))}"
        )
    if isinstance(identifier, dict) and "class_name" in identifier:
        name = identifier["class_name"]
        cls = CLASSES.get(name) or ALIASES.get(snake(name))
        if cls is None:
            raise ValueError(f"unknown initializer class {name!r}")
        config = dict(identifier.get("config") or {})
        # Keras 3.15 writes a variance-scaling initializer's fan axes (None: the usual
        # fans); other values are refused by name
        for key in ("input_axes", "output_axes"):
            if key in config:
                if config[key] is not None:
                    raise NotImplementedError(
                        f"initializer {name}: {key}={config[key]!r} is not supported by "
                        "polykeras (only None: the fans of the weight's usual axes)"
                    )
                del config[key]
        return cls(**config)
    if callable(identifier):
        return identifier
    raise ValueError(f"cannot interpret {identifier!r} as an initializer")


def snake(name: str) -> str:
    from .engine.naming import snake_case

    return snake_case(name)


def serialize(init: Any) -> Any:
    if isinstance(init, Initializer):
        return {"class_name": type(init).__name__, "config": init.get_config()}
    raise ValueError(f"initializer {init!r} is not serializable (use a built-in initializer)")


# Keras' lowercase names (``from keras.initializers import he_normal``): the classes
zeros = zero = Zeros
ones = one = Ones
constant = Constant
uniform = random_uniform = RandomUniform
normal = random_normal = RandomNormal
truncated_normal = TruncatedNormal
orthogonal = Orthogonal
identity = Identity
glorot_uniform = GlorotUniform
glorot_normal = GlorotNormal
he_uniform = HeUniform
he_normal = HeNormal
lecun_uniform = LecunUniform
lecun_normal = LecunNormal
