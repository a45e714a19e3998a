"""Embedding tables updated row by row give the same weights as the dense update."""

from __future__ import annotations

import numpy as np
import pytest

import polykeras
from polykeras.layers import Dense, Embedding, Flatten, Input, concatenate
from polykeras.models import Model
from polykeras.training import compiled


def _model(optimizer):
    ids = Input(shape=(3,), dtype="int32")
    extra = Input(shape=(2,))
    emb = Embedding(20, 4, name="emb")
    x = concatenate([Flatten()(emb(ids)), extra])
    model = Model([ids, extra], Dense(1, activation="sigmoid")(x))
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    return model


def _train(optimizer, sparse, monkeypatch):
    monkeypatch.setattr(compiled, "ROW_SPARSE_UPDATES", sparse)
    polykeras.utils.set_random_seed(0)
    polykeras.backend.clear_session()
    model = _model(optimizer())
    rng = np.random.default_rng(1)
    # batches touch few rows, with repeats, and rows 15..19 are never touched
    ids = rng.integers(0, 15, size=(40, 3))
    ids[:8] = rng.integers(0, 4, size=(8, 3))
    extra = rng.normal(size=(40, 2)).astype("float32")
    y = rng.integers(0, 2, size=(40, 1)).astype("float32")
    model.fit([ids, extra], y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    loss = model.train_on_batch([ids[:8], extra[:8]], y[:8])
    return model, loss


OPTIMIZERS = {
    "sgd": lambda: polykeras.optimizers.SGD(learning_rate=0.5),
    "rmsprop": lambda: polykeras.optimizers.RMSprop(learning_rate=0.05),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_row_updates_equal_dense_updates(name, monkeypatch):
    sparse_model, sparse_loss = _train(OPTIMIZERS[name], True, monkeypatch)
    assert sparse_model._compiled.row_sparse, "the embedding should take the row-sparse path"
    dense_model, dense_loss = _train(OPTIMIZERS[name], False, monkeypatch)
    assert not dense_model._compiled.row_sparse
    for a, b in zip(sparse_model.get_weights(), dense_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sparse_loss, dense_loss, rtol=1e-5)
    # the optimizer's state reads the same too (pending decays are applied on reading)
    for a, b in zip(
        sparse_model._compiled.optimizer.get_weights(),
        dense_model._compiled.optimizer.get_weights(),
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_untouched_rows_are_not_written(monkeypatch):
    monkeypatch.setattr(compiled, "ROW_SPARSE_UPDATES", True)
    model = _model(polykeras.optimizers.RMSprop())
    before = model.get_layer("emb").get_weights()[0].copy()
    ids = np.zeros((4, 3), dtype="int32")
    ids[:, 1] = 2
    model.train_on_batch([ids, np.ones((4, 2), "float32")], np.ones((4, 1), "float32"))
    after = model.get_layer("emb").get_weights()[0]
    changed = np.flatnonzero(np.any(after != before, axis=1))
    assert set(changed) == {0, 2}


def test_momentum_and_adam_keep_the_dense_update():
    for opt in (
        polykeras.optimizers.SGD(momentum=0.9),
        polykeras.optimizers.Adam(),
        polykeras.optimizers.RMSprop(momentum=0.5),
    ):
        model = _model(opt)
        model._compiled.refresh(model)
        assert model._compiled.row_sparse == []


@pytest.mark.parametrize("case", ["distinct", "few repeats", "padding-like", "one index", "empty"])
def test_scatter_add_sums_every_repeat(case):
    """The active backend's scatter_add against np.add.at: distinct indices, a few repeats
    (summed level by level), an index repeated many times (summed by reduceat)."""
    rng = np.random.default_rng(7)
    n = {"empty": 0, "one index": 40}.get(case, 300)
    indices = {
        "distinct": rng.permutation(500)[:n],
        "few repeats": rng.integers(0, 200, n),
        "padding-like": np.where(rng.random(n) < 0.6, 0, rng.integers(1, 500, n)),
        "one index": np.full(n, 3),
        "empty": np.zeros(0, dtype=np.int64),
    }[case].astype("int32")
    updates = rng.normal(size=(n, 4)).astype("float32")
    expected = np.zeros((500, 4), "float32")
    np.add.at(expected, indices, updates)
    B = polykeras.backend.current()
    got = B.to_numpy(B.scatter_add((500, 4), B.asarray(indices), B.asarray(updates)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
