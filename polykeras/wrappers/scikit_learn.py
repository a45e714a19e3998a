"""scikit-learn's estimator API on a polykeras model: ``KerasClassifier`` and
``KerasRegressor`` (Keras 2's ``keras.wrappers.scikit_learn``).

``build_fn`` returns a compiled model; every other keyword argument (an "sk_param") goes to
``build_fn`` when it names one of its arguments, and to ``fit``/``predict``/``evaluate``
when it names one of theirs, so ``cross_val_score`` and ``GridSearchCV`` can clone the
estimator and vary ``epochs``, ``batch_size`` or the arguments of ``build_fn``.  With
scikit-learn installed (the ``[demo]`` extra), the classes are scikit-learn estimators
(``BaseEstimator`` with the classifier or regressor mixin), which recent scikit-learn
releases ask of anything they cross-validate.
"""

from __future__ import annotations

import inspect
import types
from typing import Any

import numpy as np

from ..utils import to_categorical

try:  # scikit-learn is optional: the wrappers work without it, as Keras 2's did
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ImportError:  # pragma: no cover - exercised where scikit-learn is absent

    class BaseEstimator:  # type: ignore[no-redef]
        pass

    class ClassifierMixin:  # type: ignore[no-redef]
        _estimator_type = "classifier"

    class RegressorMixin:  # type: ignore[no-redef]
        _estimator_type = "regressor"


def _arg_names(fn: Any) -> set[str]:
    params = inspect.signature(fn).parameters.values()
    return {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _model_methods() -> dict[str, Any]:
    from ..models import Sequential

    return {
        "fit": Sequential.fit,
        "predict": Sequential.predict,
        "predict_classes": Sequential.predict_classes,
        "evaluate": Sequential.evaluate,
    }


class BaseWrapper(BaseEstimator):
    """The shared part: parameters, building and fitting."""

    def __init__(self, build_fn: Any = None, **sk_params: Any):
        self.build_fn = build_fn
        self.sk_params = sk_params
        self.check_params(sk_params)

    def _build_target(self) -> Any:
        if self.build_fn is None:
            if type(self).__call__ is object.__call__:
                raise ValueError(
                    f"{type(self).__name__}: give build_fn (a function returning a compiled "
                    "model), or subclass and define __call__ to build it"
                )
            return self.__call__
        if isinstance(self.build_fn, (types.FunctionType, types.MethodType)):
            return self.build_fn
        if callable(self.build_fn):
            return self.build_fn.__call__
        raise TypeError(
            f"{type(self).__name__}: build_fn must be callable, got {type(self.build_fn).__name__}"
        )

    def check_params(self, params: dict) -> None:
        """Refuse an sk_param that no method of the model nor ``build_fn`` takes."""
        legal = set().union(*(_arg_names(fn) for fn in _model_methods().values()))
        if self.build_fn is not None or type(self).__call__ is not object.__call__:
            legal |= _arg_names(self._build_target())
        for name in params:
            if name not in legal:
                raise ValueError(f"{name} is not a legal parameter")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {**self.sk_params, "build_fn": self.build_fn}

    def set_params(self, **params: Any) -> BaseWrapper:
        if "build_fn" in params:
            self.build_fn = params.pop("build_fn")
        self.check_params(params)
        self.sk_params.update(params)
        return self

    def filter_sk_params(self, fn: Any, override: dict | None = None) -> dict[str, Any]:
        """The sk_params ``fn`` takes, then ``override`` on top."""
        names = _arg_names(fn)
        out = {k: v for k, v in self.sk_params.items() if k in names}
        out.update(override or {})
        return out

    def fit(self, x: Any, y: Any, **kwargs: Any) -> Any:
        """Build a fresh model with ``build_fn`` and train it; returns the History."""
        target = self._build_target()
        self.model = target(**self.filter_sk_params(target))
        if getattr(self.model, "_compiled", None) is None:
            raise ValueError(
                f"{type(self).__name__}: build_fn must return a compiled model "
                "(call model.compile(...) before returning it)"
            )
        if _loss_name(self.model) == "categorical_crossentropy" and np.ndim(y) != 2:
            y = to_categorical(y)
        fit_args = self.filter_sk_params(_model_methods()["fit"])
        fit_args.update(kwargs)
        return self.model.fit(x, y, **fit_args)


def _loss_name(model: Any) -> Any:
    loss = getattr(model, "loss", None)
    return getattr(loss, "__name__", loss)


class KerasClassifier(ClassifierMixin, BaseWrapper):
    """A classifier: labels of any kind in ``y`` (1-D, or one-hot rows)."""

    def fit(self, x: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> Any:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            self.classes_ = np.arange(y.shape[1])
        elif (y.ndim == 2 and y.shape[1] == 1) or y.ndim == 1:
            self.classes_ = np.unique(y)
            y = np.searchsorted(self.classes_, y)
        else:
            raise ValueError(f"Invalid shape for y: {y.shape}")
        self.n_classes_ = len(self.classes_)
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        return super().fit(x, y, **kwargs)

    def _probabilities(self, x: Any, kwargs: dict) -> np.ndarray:
        kwargs = self.filter_sk_params(_model_methods()["predict"], kwargs)
        return np.asarray(self.model.predict(x, **kwargs))

    def predict(self, x: Any, **kwargs: Any) -> np.ndarray:
        """The predicted labels, in the labels' own values."""
        probs = self._probabilities(x, kwargs)
        if probs.shape[-1] > 1:
            index = probs.argmax(axis=-1)
        else:
            index = (probs > 0.5).astype("int32").reshape(-1)
        return self.classes_[index]

    def predict_proba(self, x: Any, **kwargs: Any) -> np.ndarray:
        """Class probabilities, one column per class (two for a sigmoid output)."""
        probs = self._probabilities(x, kwargs)
        if probs.ndim == 2 and probs.shape[1] == 1:
            probs = np.hstack([1 - probs, probs])
        return probs

    def score(self, x: Any, y: Any, **kwargs: Any) -> float:
        """The model's accuracy on ``(x, y)`` (the model must be compiled with it)."""
        y = np.searchsorted(self.classes_, np.asarray(y))
        kwargs = self.filter_sk_params(_model_methods()["evaluate"], kwargs)
        if _loss_name(self.model) == "categorical_crossentropy" and y.ndim != 2:
            y = to_categorical(y, num_classes=self.n_classes_)
        outputs = self.model.evaluate(x, y, **kwargs)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for name, value in zip(self.model.metrics_names, outputs):
            if name in ("accuracy", "acc"):
                return float(value)
        raise ValueError(
            "The model is not configured to compute accuracy. You should pass "
            '`metrics=["accuracy"]` to the `model.compile()` method.'
        )


class KerasRegressor(RegressorMixin, BaseWrapper):
    """A regressor: ``score`` is the negated loss (greater is better, as scikit-learn wants)."""

    def predict(self, x: Any, **kwargs: Any) -> np.ndarray:
        kwargs = self.filter_sk_params(_model_methods()["predict"], kwargs)
        return np.squeeze(np.asarray(self.model.predict(x, **kwargs)))

    def score(self, x: Any, y: Any, **kwargs: Any) -> float:
        kwargs = self.filter_sk_params(_model_methods()["evaluate"], kwargs)
        loss = self.model.evaluate(x, y, **kwargs)
        return -float(loss[0] if isinstance(loss, list) else loss)


__all__ = ["BaseWrapper", "KerasClassifier", "KerasRegressor"]
