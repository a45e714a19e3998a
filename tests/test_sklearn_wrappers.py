"""keras.wrappers.scikit_learn: KerasClassifier / KerasRegressor under scikit-learn's tools."""

from __future__ import annotations

import numpy as np
import pytest

import polykeras as keras
from polykeras.wrappers.scikit_learn import KerasClassifier, KerasRegressor

sklearn = pytest.importorskip("sklearn", reason="scikit-learn (the [demo] extra) is not installed")
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int64")


def build_softmax(units=8, classes=2):
    model = keras.Sequential(
        [
            keras.layers.Dense(units, activation="relu", input_shape=(4,)),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_sigmoid():
    model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def test_cross_val_score_and_grid_search():
    x, y = data()
    clf = KerasClassifier(build_fn=build_softmax, epochs=2, batch_size=16, verbose=0)
    scores = cross_val_score(clf, x, y, cv=3)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    grid = GridSearchCV(clf, {"units": [2, 4], "epochs": [1, 2]}, cv=2).fit(x, y)
    assert grid.best_params_["units"] in (2, 4)
    assert grid.best_estimator_.model.layers[0].units == grid.best_params_["units"]


def test_labels_keep_their_values_and_probabilities():
    x, y = data()
    labels = np.where(y == 1, "yes", "no")
    clf = KerasClassifier(build_fn=build_softmax, epochs=1, verbose=0)
    clf.fit(x, labels)
    assert list(clf.classes_) == ["no", "yes"] and clf.n_classes_ == 2
    assert set(clf.predict(x)) <= {"no", "yes"}
    probs = clf.predict_proba(x[:5])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # the score is the model's accuracy on the same labels
    keras_acc = clf.model.evaluate(x, keras.utils.to_categorical(y), verbose=0)[1]
    assert clf.score(x, labels) == pytest.approx(keras_acc)


def test_sigmoid_output_gives_two_probability_columns():
    x, y = data()
    clf = KerasClassifier(build_fn=build_sigmoid, epochs=1, verbose=0).fit(x, y)
    assert clf is not None
    wrapper = KerasClassifier(build_fn=build_sigmoid, epochs=1, verbose=0)
    wrapper.fit(x, y)
    probs = wrapper.predict_proba(x[:3])
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs[:, 0] + probs[:, 1], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(wrapper.predict(x[:3]), (probs[:, 1] > 0.5).astype(int))


def test_regressor_scores_the_negated_loss():
    x, _ = data()
    target = x @ np.array([1.0, -2.0, 0.5, 0.0], dtype="float32")

    def build():
        model = keras.Sequential([keras.layers.Dense(1, input_shape=(4,))])
        model.compile(optimizer="sgd", loss="mse")
        return model

    reg = KerasRegressor(build_fn=build, epochs=2, batch_size=8, verbose=0)
    reg.fit(x, target)
    assert reg.predict(x).shape == (60,)
    assert reg.score(x, target) == pytest.approx(-reg.model.evaluate(x, target, verbose=0))
    assert cross_val_score(reg, x, target, cv=2).shape == (2,)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="epoch is not a legal parameter"):
        KerasClassifier(build_fn=build_softmax, epoch=3)
    clf = KerasClassifier(build_fn=build_softmax)
    with pytest.raises(ValueError, match="nonsense is not a legal parameter"):
        clf.set_params(nonsense=1)
    x, y = data()

    def not_compiled():
        return keras.Sequential([keras.layers.Dense(2, input_shape=(4,))])

    with pytest.raises(ValueError, match="compiled model"):
        KerasClassifier(build_fn=not_compiled, verbose=0).fit(x, y)

    def no_accuracy():
        model = build_softmax()
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        return model

    clf = KerasClassifier(build_fn=no_accuracy, epochs=1, verbose=0)
    clf.fit(x, y)
    with pytest.raises(ValueError, match="not configured to compute accuracy"):
        clf.score(x, y)


def test_params_round_trip_for_clone():
    clf = KerasClassifier(build_fn=build_softmax, epochs=3, units=[4])
    params = clf.get_params()
    assert params["build_fn"] is build_softmax and params["epochs"] == 3
    copy = sklearn.base.clone(clf)
    assert copy.get_params()["units"] == [4] and copy is not clf
