"""Learning-rate schedules (``keras.optimizers.schedules``), with Keras 3's numbers.

A schedule maps the step count to a learning rate.  Given to an optimizer as
``learning_rate``, it is called with the number of updates done so far (0 for the first
update), as Keras does: the learning rate of update t (counted from 1) is
``schedule(t - 1)``, and ``optimizer.learning_rate`` reads ``schedule(optimizer.iterations)``.

- ``ExponentialDecay(initial_learning_rate, decay_steps, decay_rate, staircase=False)``:
  ``lr0 * decay_rate ** (step / decay_steps)`` (the exponent floored when ``staircase``).
- ``InverseTimeDecay(initial_learning_rate, decay_steps, decay_rate, staircase=False)``:
  ``lr0 / (1 + decay_rate * step / decay_steps)`` (the ratio floored when ``staircase``).
- ``PiecewiseConstantDecay(boundaries, values)``: ``values[0]`` up to and including
  ``boundaries[0]``, ``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]``,
  ``values[-1]`` after the last boundary.
- ``PolynomialDecay(initial_learning_rate, decay_steps, end_learning_rate=0.0001,
  power=1.0, cycle=False)``: ``(lr0 - end) * (1 - step / decay_steps) ** power + end``, the
  step held at ``decay_steps`` (with ``cycle``, ``decay_steps`` grows to the next multiple
  of itself instead).
- ``CosineDecay(initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
  warmup_steps=0)``: ``lr0 * ((1 - alpha) * (1 + cos(pi * step / decay_steps)) / 2 +
  alpha)``, the step held at ``decay_steps``.  With ``warmup_target``, the rate first goes
  linearly from ``lr0`` to ``warmup_target`` over ``warmup_steps``, then decays from
  ``warmup_target`` as above.
- ``CosineDecayRestarts(initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
  alpha=0.0)``: cosine decay that restarts, each period ``t_mul`` times longer and its
  peak ``m_mul`` times lower than the one before.

A schedule called with a number returns a Python float; with a NumPy array of steps, an
array.  ``serialize`` writes Keras 3's form (``{"module": "keras.optimizers.schedules",
"class_name": ..., "config": ..., "registered_name": None}``); ``deserialize`` reads it and
Keras 2's ``{"class_name": ..., "config": ...}``.  A subclass of
:class:`LearningRateSchedule` with ``__call__`` and ``get_config`` loads when its class is
known by name (``custom_objects=``, ``custom_object_scope``,
``register_keras_serializable``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class LearningRateSchedule:
    """Base class: ``__call__(step)`` gives the learning rate of ``step``; ``get_config``
    gives the constructor's arguments (``from_config`` makes the schedule again)."""

    def __call__(self, step: Any) -> Any:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`."
        )

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override "
            "`get_config()` in order to be serializable."
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


# -- argument checks and the step ---------------------------------------------------------------
def _number(value: Any, what: str, owner: str, positive: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{owner}: {what} must be a number, got {value!r:.80}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{owner}: {what} must be finite, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{owner}: Argument `{what}` must be > 0. Received: {what}={value}")
    return value


def _steps(step: Any) -> tuple[np.ndarray, bool]:
    """The step(s) as float64 and whether one number was given."""
    if hasattr(step, "numpy") and not isinstance(step, np.ndarray):
        step = step.numpy()
    try:
        steps = np.asarray(step, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"a learning-rate schedule is called with the step count (a number), got {step!r:.80}"
        ) from None
    return steps, steps.ndim == 0


def _result(value: np.ndarray, scalar: bool) -> Any:
    return float(value) if scalar else value


# -- the schedules ------------------------------------------------------------------------------
class _Schedule(LearningRateSchedule):
    """A built-in schedule: its config is its ``_config_keys`` (the constructor's
    arguments, in Keras' order), each read from the attribute of that name."""

    _config_keys: tuple[str, ...] = ()

    def get_config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self._config_keys}


class ExponentialDecay(_Schedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``."""

    _config_keys = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name")

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        decay_rate: float,
        staircase: bool = False,
        name: str = "ExponentialDecay",
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", owner)
        self.decay_steps = _number(decay_steps, "decay_steps", owner, positive=True)
        self.decay_rate = _number(decay_rate, "decay_rate", owner)
        self.staircase = bool(staircase)
        self.name = name

    def _ratio(self, step: Any) -> tuple[np.ndarray, bool]:
        steps, scalar = _steps(step)
        p = steps / float(self.decay_steps)
        return (np.floor(p) if self.staircase else p), scalar

    def __call__(self, step: Any) -> Any:
        p, scalar = self._ratio(step)
        return _result(
            float(self.initial_learning_rate) * np.power(float(self.decay_rate), p), scalar
        )


class InverseTimeDecay(ExponentialDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        decay_rate: float,
        staircase: bool = False,
        name: str = "InverseTimeDecay",
    ):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step: Any) -> Any:
        p, scalar = self._ratio(step)
        return _result(
            float(self.initial_learning_rate) / (1.0 + float(self.decay_rate) * p), scalar
        )


class PiecewiseConstantDecay(_Schedule):
    """``values[i]`` for the steps after ``boundaries[i-1]`` up to ``boundaries[i]``."""

    _config_keys = ("boundaries", "values", "name")

    def __init__(self, boundaries: Any, values: Any, name: str = "PiecewiseConstant"):
        owner = type(self).__name__
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise ValueError(
                f"{owner}: boundaries and values must be lists, got {boundaries!r:.60} and "
                f"{values!r:.60}"
            )
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries={boundaries} of length {len(boundaries)}, and "
                f"values={values} of length {len(values)}."
            )
        if not boundaries:
            raise ValueError(f"{owner}: at least one boundary is needed (got none)")
        for i, b in enumerate(boundaries):
            _number(b, f"boundaries[{i}]", owner)
        for i, v in enumerate(values):
            _number(v, f"values[{i}]", owner)
        if any(not a < b for a, b in zip(boundaries, boundaries[1:])):
            raise ValueError(f"{owner}: boundaries must be increasing, got {list(boundaries)}")
        self.boundaries = list(boundaries)
        self.values = list(values)
        self.name = name

    def __call__(self, step: Any) -> Any:
        steps, scalar = _steps(step)
        index = np.searchsorted(np.asarray(self.boundaries, dtype=np.float64), steps, "left")
        return _result(np.asarray(self.values, dtype=np.float64)[index], scalar)


class PolynomialDecay(_Schedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end``."""

    _config_keys = (
        "initial_learning_rate",
        "decay_steps",
        "end_learning_rate",
        "power",
        "cycle",
        "name",
    )

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", owner)
        self.decay_steps = _number(decay_steps, "decay_steps", owner, positive=True)
        self.end_learning_rate = _number(end_learning_rate, "end_learning_rate", owner)
        self.power = _number(power, "power", owner)
        self.cycle = bool(cycle)
        self.name = name

    def __call__(self, step: Any) -> Any:
        steps, scalar = _steps(step)
        decay_steps = float(self.decay_steps)
        if self.cycle:
            periods = np.where(steps == 0, 1.0, np.ceil(steps / decay_steps))
            span = decay_steps * periods
        else:
            steps = np.minimum(steps, decay_steps)
            span = np.full_like(steps, decay_steps)
        start, end = float(self.initial_learning_rate), float(self.end_learning_rate)
        value = (start - end) * np.power(1.0 - steps / span, float(self.power)) + end
        return _result(value, scalar)


def _cosine(fraction: np.ndarray, alpha: float) -> np.ndarray:
    return (1.0 - alpha) * 0.5 * (1.0 + np.cos(math.pi * fraction)) + alpha


class CosineDecay(_Schedule):
    """Half a cosine from ``initial_learning_rate`` down to ``alpha`` times it, after an
    optional linear warmup to ``warmup_target``."""

    _config_keys = (
        "initial_learning_rate",
        "decay_steps",
        "alpha",
        "name",
        "warmup_target",
        "warmup_steps",
    )

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: float = 0,
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", owner)
        self.decay_steps = _number(decay_steps, "decay_steps", owner, positive=True)
        self.alpha = _number(alpha, "alpha", owner)
        self.name = name
        self.warmup_target = (
            None if warmup_target is None else _number(warmup_target, "warmup_target", owner)
        )
        self.warmup_steps = _number(warmup_steps, "warmup_steps", owner)
        if self.warmup_steps < 0:
            raise ValueError(f"{owner}: warmup_steps must be >= 0, got {warmup_steps!r}")

    def __call__(self, step: Any) -> Any:
        steps, scalar = _steps(step)
        decay_steps, alpha = float(self.decay_steps), float(self.alpha)
        start = float(self.initial_learning_rate)
        if self.warmup_target is None:
            steps = np.minimum(steps, decay_steps)
            return _result(start * _cosine(steps / decay_steps, alpha), scalar)
        target, warmup = float(self.warmup_target), float(self.warmup_steps)
        steps = np.minimum(steps, decay_steps + warmup)
        with np.errstate(divide="ignore", invalid="ignore"):
            rising = (target - start) * (steps / warmup) + start if warmup else steps * 0.0
        falling = target * _cosine((steps - warmup) / decay_steps, alpha)
        return _result(np.where(steps < warmup, rising, falling), scalar)


class CosineDecayRestarts(_Schedule):
    """Cosine decay with warm restarts (SGDR): period i lasts ``first_decay_steps *
    t_mul ** i`` steps and starts at ``initial_learning_rate * m_mul ** i``."""

    _config_keys = ("initial_learning_rate", "first_decay_steps", "t_mul", "m_mul", "alpha", "name")

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: float,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate", owner)
        self.first_decay_steps = _number(first_decay_steps, "first_decay_steps", owner, True)
        self.t_mul = _number(t_mul, "t_mul", owner, positive=True)
        self.m_mul = _number(m_mul, "m_mul", owner)
        self.alpha = _number(alpha, "alpha", owner)
        self.name = name

    def __call__(self, step: Any) -> Any:
        steps, scalar = _steps(step)
        fraction = steps / float(self.first_decay_steps)
        t_mul = float(self.t_mul)
        if t_mul == 1.0:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            # periods 1, t, t^2...: restart i begins at (1 - t^i) / (1 - t) periods
            restart = np.floor(np.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            begun = (1.0 - np.power(t_mul, restart)) / (1.0 - t_mul)
            fraction = (fraction - begun) / np.power(t_mul, restart)
        peak = np.power(float(self.m_mul), restart)
        alpha = float(self.alpha)
        decayed = (1.0 - alpha) * 0.5 * peak * (1.0 + np.cos(math.pi * fraction)) + alpha
        return _result(float(self.initial_learning_rate) * decayed, scalar)


CLASSES: dict[str, type[LearningRateSchedule]] = {
    c.__name__: c
    for c in (
        ExponentialDecay,
        InverseTimeDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
        CosineDecay,
        CosineDecayRestarts,
    )
}
#: how Keras 3 writes a built-in schedule's module
KERAS_MODULE = "keras.optimizers.schedules"


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """Keras 3's form of ``schedule``: module, class_name, config, registered_name."""
    if not isinstance(schedule, LearningRateSchedule):
        raise ValueError(
            f"only a LearningRateSchedule can be serialized as a schedule, got {schedule!r:.80}"
        )
    cls = type(schedule)
    config = schedule.get_config()
    if CLASSES.get(cls.__name__) is cls:
        return {
            "module": KERAS_MODULE,
            "class_name": cls.__name__,
            "config": config,
            "registered_name": None,
        }
    from ..saving.custom_objects import get_registered_name

    return {
        "module": cls.__module__,
        "class_name": cls.__name__,
        "config": config,
        "registered_name": get_registered_name(cls),
    }


def deserialize(
    config: dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> LearningRateSchedule:
    """A schedule from Keras 3's form or Keras 2's ``{"class_name", "config"}``."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(
            f"a learning-rate schedule config must be a dict with a class_name, got {config!r:.120}"
        )
    name = config["class_name"]
    cls: Any = None
    from ..saving.custom_objects import get_registered_object

    for key in (config.get("registered_name"), name):
        if isinstance(key, str) and cls is None:
            cls = get_registered_object(key, custom_objects)
    if cls is None:
        cls = CLASSES.get(name)
    if not (isinstance(cls, type) and issubclass(cls, LearningRateSchedule)):
        raise ValueError(
            f"Unknown learning rate schedule: {name!r}. Known schedules: "
            f"{', '.join(sorted(CLASSES))}; a custom one must be passed in custom_objects "
            "(or registered with register_keras_serializable)"
        )
    cfg = config.get("config") or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"the config of schedule {name!r} must be a dict, got {cfg!r:.100}")
    try:
        return cls.from_config(dict(cfg))
    except TypeError as exc:
        raise ValueError(f"schedule {name}: bad config {cfg!r:.200} ({exc})") from None


def get(identifier: Any) -> LearningRateSchedule:
    """A schedule from a schedule or a config dict."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Could not interpret learning rate schedule identifier: {identifier!r:.80}")


__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "deserialize",
    "get",
    "serialize",
]
