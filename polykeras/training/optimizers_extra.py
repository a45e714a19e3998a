"""Keras 3's later optimizers: Ftrl, Lion, Lamb and Adafactor.

They follow the base class of :mod:`polykeras.training.optimizers` (learning rate or
schedule, ``weight_decay``, ``clipnorm``/``clipvalue``/``global_clipnorm``; ``use_ema`` and
the other Keras 3 settings refused unless off) and compute as Keras 3 does.  Formulas (g
the gradient, t the step counted from 1):

- Ftrl: ``n' = n + g^2``; ``z += g + 2 l2_shrinkage w - (n'^-p - n^-p) / lr * w``;
  ``w = (clip(z, -l1, l1) - z) / (n'^-p / lr + 2 (l2 + beta / (2 lr)))`` (p is
  ``learning_rate_power``).
- Lion: ``w -= lr * sign(beta_1 m + (1 - beta_1) g)``; ``m = beta_2 m + (1 - beta_2) g``.
- Lamb: Adam's bias-corrected step ``u``, scaled by the trust ratio ``|w| / |u|`` (1 when
  either norm is zero).
- Adafactor: second moments factored over the last two axes (row and column means of
  ``g^2 + epsilon_1``) for weights of rank 2 or more, with the decay ``1 - t^beta_2_decay``;
  the step ``g / sqrt(v)`` is clipped to an RMS of ``clip_threshold`` and scaled by
  ``max(epsilon_2, rms(w)) * min(lr, 1 / sqrt(t))``.

Their slots are saved as Keras 3 names and orders them (``ftrl/<weight>_accumulator``,
``..._linear``; ``lion/<weight>_momentum``; ``lamb/<weight>_momentum``, ``..._velocity``;
Adafactor's row and column factors, then ``velocity``, per weight).
"""

from __future__ import annotations

import math
from typing import Any

from .optimizers import Optimizer, _setup, _variable_key


class Ftrl(Optimizer):
    """Follow The Regularized Leader (Keras 3's Ftrl). lr 0.001."""

    learning_rate_power: float
    initial_accumulator_value: float
    l1_regularization_strength: float
    l2_regularization_strength: float
    l2_shrinkage_regularization_strength: float
    beta: float

    _keras_groups = (("accumulator", "linear"),)
    _defaults = {
        "learning_rate_power": -0.5,
        "initial_accumulator_value": 0.1,
        "l1_regularization_strength": 0.0,
        "l2_regularization_strength": 0.0,
        "l2_shrinkage_regularization_strength": 0.0,
        "beta": 0.0,
    }

    def __init__(
        self,
        learning_rate: float = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(
            self,
            {
                "learning_rate_power": learning_rate_power,
                "initial_accumulator_value": initial_accumulator_value,
                "l1_regularization_strength": l1_regularization_strength,
                "l2_regularization_strength": l2_regularization_strength,
                "l2_shrinkage_regularization_strength": l2_shrinkage_regularization_strength,
                "beta": beta,
            },
            {"learning_rate_power": (None, 0.0, False, False)},
        )
        self._slot_names = ("accumulator", "linear")

    def _initial_slot(self, B, var, name):
        zeros = B.zeros(var.shape, var.dtype)
        return B.add(zeros, self.initial_accumulator_value) if name == "accumulator" else zeros

    def _update(self, B, w, g, slots, lr):
        if lr == 0:
            raise ValueError("Ftrl: the learning rate is 0 (its update divides by it)")
        p = -self.learning_rate_power
        accum, linear = slots
        new_accum = B.add(accum, B.square(g))
        grad = g
        if self.l2_shrinkage_regularization_strength:
            grad = B.add(g, B.multiply(w, 2.0 * self.l2_shrinkage_regularization_strength))
        new_pow, old_pow = B.power(new_accum, p), B.power(accum, p)
        linear = B.add(
            linear, B.subtract(grad, B.multiply(B.divide(B.subtract(new_pow, old_pow), lr), w))
        )
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        quadratic = B.add(B.divide(new_pow, lr), 2.0 * l2)
        l1 = self.l1_regularization_strength
        slots[0], slots[1] = new_accum, linear
        return B.divide(B.subtract(B.clip(linear, -l1, l1), linear), quadratic)


class Lion(Optimizer):
    """The sign of an interpolated momentum (Keras 3's Lion). lr 0.001, beta_1 0.9,
    beta_2 0.99."""

    beta_1: float
    beta_2: float

    _defaults = {"beta_1": 0.9, "beta_2": 0.99}

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(
            self,
            {"beta_1": beta_1, "beta_2": beta_2},
            {"beta_1": (0.0, 1.0, True, False), "beta_2": (0.0, 1.0, False, False)},
        )
        self._slot_names = ("momentum",)

    def _update(self, B, w, g, slots, lr):
        m = slots[0]
        direction = B.sign(B.add(B.multiply(m, self.beta_1), B.multiply(g, 1.0 - self.beta_1)))
        slots[0] = B.add(B.multiply(m, self.beta_2), B.multiply(g, 1.0 - self.beta_2))
        return B.subtract(w, B.multiply(direction, lr))


class Lamb(Optimizer):
    """Adam with a layer-wise trust ratio (Keras 3's Lamb). lr 0.001."""

    beta_1: float
    beta_2: float
    epsilon: float

    _keras_groups = (("momentum", "velocity"),)
    _defaults = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float | None = 1e-7,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(
            self,
            {"beta_1": beta_1, "beta_2": beta_2, "epsilon": 1e-7 if epsilon is None else epsilon},
            {"beta_1": (0.0, 1.0, False, True), "beta_2": (0.0, 1.0, False, True)},
        )
        self._slot_names = ("momentum", "velocity")

    def _update(self, B, w, g, slots, lr):
        t = self.iterations + 1
        m = B.add(slots[0], B.multiply(B.subtract(g, slots[0]), 1.0 - self.beta_1))
        v = B.add(slots[1], B.multiply(B.subtract(B.square(g), slots[1]), 1.0 - self.beta_2))
        slots[0], slots[1] = m, v
        m_hat = B.divide(m, 1.0 - self.beta_1**t)
        v_hat = B.divide(v, 1.0 - self.beta_2**t)
        step = B.divide(m_hat, B.add(B.sqrt(v_hat), self.epsilon))
        w_norm = B.sqrt(B.sum(B.square(w)))
        u_norm = B.sqrt(B.sum(B.square(step)))
        dtype = B.dtype_name(w)
        one = B.ones((), dtype)
        # the trust ratio |w| / |step|, 1 where either norm is 0
        both = B.multiply(
            B.cast(B.greater(w_norm, 0.0), dtype), B.cast(B.greater(u_norm, 0.0), dtype)
        )
        safe = B.where(B.greater(both, 0.0), u_norm, one)
        ratio = B.where(B.greater(both, 0.0), B.divide(w_norm, safe), one)
        return B.subtract(w, B.multiply(step, B.multiply(ratio, lr)))


class Adafactor(Optimizer):
    """Factored second moments (Keras 3's Adafactor). lr 0.001."""

    beta_2_decay: float
    epsilon_1: float
    epsilon_2: float
    clip_threshold: float
    relative_step: bool

    _defaults = {
        "beta_2_decay": -0.8,
        "epsilon_1": 1e-30,
        "epsilon_2": 1e-3,
        "clip_threshold": 1.0,
        "relative_step": True,
    }

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_2_decay: float = -0.8,
        epsilon_1: float = 1e-30,
        epsilon_2: float = 1e-3,
        clip_threshold: float = 1.0,
        relative_step: bool = True,
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        _setup(
            self,
            {
                "beta_2_decay": beta_2_decay,
                "epsilon_1": epsilon_1,
                "epsilon_2": epsilon_2,
                "clip_threshold": clip_threshold,
                "relative_step": relative_step,
            },
            {
                "beta_2_decay": (None, 0.0, False, False),
                "clip_threshold": (0.0, None, True, False),
            },
        )
        # per weight: the row factor, the column factor (scalar placeholders for a weight
        # of rank < 2, as Keras 3 keeps), the second moment
        self._slot_names = ("r", "c", "velocity")

    @staticmethod
    def _slot_shape(shape: tuple, name: str) -> tuple:
        if name == "velocity":
            return shape
        if len(shape) < 2:
            return ()
        return shape[:-1] if name == "r" else shape[:-2] + shape[-1:]

    def _initial_slot(self, B, var, name):
        return B.zeros(self._slot_shape(tuple(var.shape), name), var.dtype)

    def _file_layout(self, variables):
        rows: list[tuple[str, tuple, Any]] = [(f"{self.name}/iteration", (), None)]
        if self.schedule is None:
            rows.append((f"{self.name}/learning_rate", (), None))
        for var in variables:
            shape = tuple(var.shape)
            short = str(var.name).rsplit("/", 1)[-1]
            short = short[:-2] if short.endswith(":0") else short
            # Keras 3 names the factors after the weight alone (placeholders without the
            # optimizer's prefix); names repeat, so files are read back by position
            factor = short if len(shape) < 2 else f"{self.name}/{short}"
            rows.append((factor, self._slot_shape(shape, "r"), (var, 0)))
            rows.append((factor, self._slot_shape(shape, "c"), (var, 1)))
            rows.append((f"{self.name}/{_variable_key(var)}_velocity", shape, (var, 2)))
        return rows

    def _update(self, B, w, g, slots, lr):
        t = self.iterations + 1
        shape = tuple(B.shape(w))
        size = max(1, math.prod(shape))
        rho = min(lr, 1.0 / math.sqrt(t))
        w_rms = B.sqrt(B.divide(B.sum(B.square(w)), float(size)))
        floor = B.add(B.zeros((), B.dtype_name(w)), self.epsilon_2)
        alpha = B.multiply(B.maximum(w_rms, floor), rho)
        g2 = B.add(B.square(g), self.epsilon_1)
        decay = 1.0 - float(t) ** self.beta_2_decay
        if len(shape) >= 2:
            rows_mean = B.divide(B.sum(g2, axis=-1), float(shape[-1]))
            cols_mean = B.divide(B.sum(g2, axis=-2), float(shape[-2]))
            r = B.add(B.multiply(slots[0], decay), B.multiply(rows_mean, 1.0 - decay))
            c = B.add(B.multiply(slots[1], decay), B.multiply(cols_mean, 1.0 - decay))
            r_mean = B.divide(B.sum(r, axis=-1, keepdims=True), float(shape[-2]))
            v = B.multiply(
                B.reshape(B.divide(r, r_mean), shape[:-1] + (1,)),
                B.reshape(c, shape[:-2] + (1, shape[-1])),
            )
            slots[0], slots[1] = r, c
        else:
            v = B.add(B.multiply(slots[2], decay), B.multiply(g2, 1.0 - decay))
        slots[2] = v
        u = B.divide(g, B.sqrt(v))
        u_rms = B.sqrt(B.divide(B.sum(B.square(u)), float(size)))
        one = B.ones((), B.dtype_name(w))
        u = B.divide(u, B.maximum(one, B.divide(u_rms, self.clip_threshold)))
        return B.subtract(w, B.multiply(u, alpha))


EXTRA_CLASSES: dict[str, type[Optimizer]] = {
    "ftrl": Ftrl,
    "lion": Lion,
    "lamb": Lamb,
    "adafactor": Adafactor,
}
