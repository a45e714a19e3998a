"""A mask given to a layer call on symbolic tensors (``lstm(x, mask=m)``, as Keras allows):
the node reads the mask tensor as an input, the layer gets it instead of its input's own
mask, and the call is saved in Keras 2's form (``{"mask": [layer, node, tensor]}`` in the
node's kwargs) and Keras 3's (a tensor in the node's kwargs), both ways."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import polykeras as keras
from polykeras import layers, ops
from helpers import backend_params, run_keras3_script

BACKENDS = backend_params()
RNG = np.random.default_rng(23)
X = RNG.normal(size=(3, 5, 4)).astype("float32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)


def _lstm_model():
    x = keras.Input((5, 4))
    m = keras.Input((5,), dtype="bool")
    out = layers.LSTM(3, name="lstm")(x, mask=m)
    return keras.Model([x, m], out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_given_mask_is_used(backend):
    with keras.use_backend(backend):
        model = _lstm_model()
        lstm = model.get_layer("lstm")
        got = model.predict([X, MASK], verbose=0)
        # the same layer called on arrays with the same mask, and on the unpadded rows
        want = ops.to_numpy(lstm(X, mask=MASK))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        for i, n in enumerate(MASK.sum(1)):
            alone = ops.to_numpy(lstm(X[i : i + 1, :n]))
            np.testing.assert_allclose(got[i : i + 1], alone, rtol=1e-5, atol=1e-6)
        # numbers that are 0/1 work as a mask too, and the loss trains through it
        model.compile("sgd", "mse")
        loss = model.evaluate([X, MASK], np.zeros((3, 3)), verbose=0)
        np.testing.assert_allclose(loss, np.mean(got**2), rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_it_replaces_the_inputs_own_mask(backend):
    ids = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 0], [7, 0, 0, 0, 0]], "int32")
    with keras.use_backend(backend):
        inp = keras.Input((5,), dtype="int32")
        other = keras.Input((5,), dtype="bool")
        emb = layers.Embedding(8, 4, mask_zero=True, name="emb")(inp)  # carries ids != 0
        lstm = layers.LSTM(3)
        model = keras.Model([inp, other], lstm(emb, mask=other))
        got = model.predict([ids, MASK], verbose=0)
        embedded = ops.to_numpy(model.get_layer("emb")(ids))
        np.testing.assert_allclose(
            got, ops.to_numpy(lstm(embedded, mask=MASK)), rtol=1e-6, atol=1e-7
        )
        assert not np.allclose(got, ops.to_numpy(lstm(embedded, mask=ids != 0)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_mask_computed_in_the_graph_and_one_per_input(backend):
    ids = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 0], [7, 0, 0, 0, 0]], "int32")
    with keras.use_backend(backend):
        inp = keras.Input((5,), dtype="int32")
        keep = ops.not_equal(inp, 0)  # an op node makes the mask
        seq = layers.Embedding(8, 4, name="emb")(inp)
        attended = layers.Attention()([seq, seq], mask=[None, keep])
        model = keras.Model(inp, attended)
        got = model.predict(ids, verbose=0)
        seq_v = ops.to_numpy(model.get_layer("emb")(ids))
        want = model.layers[-1]([seq_v, seq_v], mask=[None, ids != 0])
        np.testing.assert_allclose(got, ops.to_numpy(want), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["json", "h5", "keras"])
def test_saved_and_loaded(backend, how, tmp_path):
    with keras.use_backend(backend):
        model = _lstm_model()
        want = model.predict([X, MASK], verbose=0)
        node = model.get_config()["layers"][-1]["inbound_nodes"][0]
        assert node == [["input_1", 0, 0, {"mask": ["input_2", 0, 0]}]]  # tf.keras 2's form
        if how == "json":
            again = keras.models.model_from_json(model.to_json())
            again.set_weights(model.get_weights())
        else:
            model.save(str(tmp_path / f"m.{how}"))
            again = keras.models.load_model(str(tmp_path / f"m.{how}"))
        np.testing.assert_array_equal(again.predict([X, MASK], verbose=0), want)


KERAS3_LOAD = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np, keras
    d = np.load(sys.argv[1])
    model = keras.models.load_model(str(d["path"]))
    np.savez(sys.argv[2], y=model.predict([d["x"], d["m"]], verbose=0))
    """
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_keras3_loads_our_file_with_the_same_numbers(backend, tmp_path):
    with keras.use_backend(backend):
        model = _lstm_model()
        path = tmp_path / "m.keras"
        model.save(str(path))
        want = model.predict([X, MASK], verbose=0)
    out = run_keras3_script(tmp_path, KERAS3_LOAD, {"path": np.array(str(path)), "x": X, "m": MASK})
    np.testing.assert_allclose(out["y"], want, rtol=1e-5, atol=1e-6)


def test_bad_masks_are_refused_by_name():
    x = keras.Input((5, 4))
    with pytest.raises(ValueError, match=r"lstm_.*mask has shape \(None, 4\)"):
        layers.LSTM(2)(x, mask=keras.Input((4,), dtype="bool"))
    with pytest.raises(TypeError, match="not a symbolic tensor"):
        layers.LSTM(2)(x, mask=MASK)
    with pytest.raises(ValueError, match="mask= must be a list of 2 masks"):
        layers.Attention()([x, x], mask=keras.Input((5,), dtype="bool"))
    with pytest.raises(ValueError, match="mask= must be one symbolic tensor"):
        layers.LSTM(2)(x, mask=[keras.Input((5,), dtype="bool")] * 2)
