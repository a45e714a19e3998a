"""polykeras.random (Keras 3's keras.random), the regularizer classes (L1, L2,
OrthogonalRegularizer) and the small keras.utils helpers: normalize, Progbar,
serialize/deserialize_keras_object, pack/unpack_x_y_sample_weight,
timeseries_dataset_from_array."""

from __future__ import annotations

import io
import textwrap

import numpy as np
import pytest

import polykeras
import polykeras as keras
from polykeras import random as R
from polykeras import regularizers, utils

from helpers import run_keras3_script


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# -- keras.random: shapes, dtypes, seeds -----------------------------------------------------------
@pytest.mark.parametrize(
    "draw, dtype",
    [
        (lambda **k: R.normal((3, 4), **k), "float32"),
        (lambda **k: R.uniform((3, 4), **k), "float32"),
        (lambda **k: R.truncated_normal((3, 4), **k), "float32"),
        (lambda **k: R.randint((3, 4), 0, 5, **k), "int32"),
        (lambda **k: R.gamma((3, 4), 2.0, **k), "float32"),
        (lambda **k: R.beta((3, 4), 2.0, 3.0, **k), "float32"),
        (lambda **k: R.binomial((3, 4), 5, 0.5, **k), "float32"),
    ],
)
def test_shapes_dtypes_and_int_seeds_repeat(draw, dtype):
    a = draw(seed=3)
    assert polykeras.backend.current().is_native(a)
    assert _np(a).shape == (3, 4) and str(_np(a).dtype) == dtype
    np.testing.assert_array_equal(_np(a), _np(draw(seed=3)))  # an int seed: same values
    assert not np.array_equal(_np(a), _np(draw(seed=4)))


def test_the_same_int_seed_gives_the_same_values_on_every_backend():
    # the values are NumPy's generator's, whatever the backend (this runs on each)
    want = np.random.default_rng(7).normal(1.0, 2.0, size=(2, 5)).astype("float32")
    np.testing.assert_array_equal(_np(R.normal((2, 5), 1.0, 2.0, seed=7)), want)
    want = np.random.default_rng(7).integers(3, 9, size=(6,)).astype("int32")
    np.testing.assert_array_equal(_np(R.randint((6,), 3, 9, seed=7)), want)


def test_dtype_argument():
    assert _np(R.normal((2,), dtype="float64")).dtype == np.float64
    assert _np(R.randint((2,), 0, 3, dtype="int64")).dtype == np.int64
    assert _np(R.categorical(np.zeros((2, 3)), 4, dtype="int64")).dtype == np.int64


def test_seed_generator_advances_and_repeats():
    g1, g2 = R.SeedGenerator(42), R.SeedGenerator(42)
    a, b = _np(R.uniform((5,), seed=g1)), _np(R.uniform((5,), seed=g1))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, _np(R.uniform((5,), seed=g2)))
    np.testing.assert_array_equal(b, _np(R.uniform((5,), seed=g2)))
    assert g1.get_config() == {"seed": 42}


def test_seed_none_repeats_after_set_random_seed():
    utils.set_random_seed(5)
    a = _np(R.normal((4,)))
    b = _np(R.normal((4,)))
    utils.set_random_seed(5)
    np.testing.assert_array_equal(a, _np(R.normal((4,))))
    assert not np.array_equal(a, b)


# -- keras.random: distributions -------------------------------------------------------------------
N = 200_000


def test_normal_and_uniform_moments():
    x = _np(R.normal((N,), mean=2.0, stddev=3.0, seed=1))
    assert abs(x.mean() - 2.0) < 0.05 and abs(x.std() - 3.0) < 0.05
    u = _np(R.uniform((N,), minval=-1.0, maxval=3.0, seed=2))
    assert u.min() >= -1.0 and u.max() < 3.0
    assert abs(u.mean() - 1.0) < 0.02 and abs(u.var() - 16 / 12) < 0.02


def test_truncated_normal_stays_within_two_stddevs():
    x = _np(R.truncated_normal((N,), mean=1.0, stddev=0.5, seed=3))
    assert x.min() >= 0.0 and x.max() <= 2.0
    # the standard normal truncated at +-2 has standard deviation 0.8796
    assert abs(x.mean() - 1.0) < 0.01 and abs(x.std() - 0.5 * 0.8796) < 0.01


def test_randint_range_and_frequencies():
    x = _np(R.randint((N,), 2, 7, seed=4))
    assert set(np.unique(x)) == {2, 3, 4, 5, 6}
    np.testing.assert_allclose(np.bincount(x)[2:] / N, 0.2, atol=0.01)


def test_gamma_beta_binomial_moments():
    g = _np(R.gamma((N,), 3.0, seed=5))
    assert abs(g.mean() - 3.0) < 0.05 and abs(g.var() - 3.0) < 0.1
    b = _np(R.beta((N,), 2.0, 6.0, seed=6))
    assert b.min() >= 0 and b.max() <= 1 and abs(b.mean() - 0.25) < 0.01
    n = _np(R.binomial((N,), 10, 0.3, seed=7))
    assert abs(n.mean() - 3.0) < 0.05 and abs(n.var() - 2.1) < 0.1
    assert np.all(n == np.round(n)) and n.min() >= 0 and n.max() <= 10


def test_categorical_frequencies_follow_softmax():
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]])
    logits = np.log(np.maximum(probs, 1e-30))
    x = _np(R.categorical(logits, 50_000, seed=8))
    assert x.shape == (2, 50_000) and x.dtype == np.int32
    for row in range(2):
        np.testing.assert_allclose(np.bincount(x[row], minlength=3) / 50_000, probs[row], atol=0.01)


def test_shuffle_permutes_along_an_axis():
    x = np.arange(20.0).reshape(5, 4).astype("float32")
    rows = _np(R.shuffle(x, seed=1))
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, x.tolist()))
    assert not np.array_equal(rows, x)
    cols = _np(R.shuffle(keras.ops.convert_to_tensor(x), axis=1, seed=1))
    np.testing.assert_array_equal(np.sort(cols, axis=1), x)


def test_dropout_rate_scale_and_noise_shape():
    x = np.ones((400, 500), "float32")
    y = _np(R.dropout(x, 0.3, seed=1))
    assert abs((y == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    z = _np(R.dropout(x, 0.5, noise_shape=(1, 500), seed=2))
    assert np.all(z == z[0])  # one draw shared along axis 0
    np.testing.assert_array_equal(_np(R.dropout(x, 0.0)), x)


def test_dropout_is_differentiable():
    from polykeras import GradientTape

    w = keras.Variable(np.ones((3, 4), "float32"))
    with GradientTape() as tape:
        loss = keras.ops.sum(R.dropout(w * 1.0, 0.5, seed=3))
    grad = _np(tape.gradient(loss, [w])[0])
    mask = _np(R.dropout(np.ones((3, 4), "float32"), 0.5, seed=3))
    np.testing.assert_allclose(grad, mask)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: R.uniform((2,), dtype="int32"), "floating point dtype"),
        (lambda: R.randint((2,), 0, 3, dtype="float32"), "integer dtype"),
        (lambda: R.normal((2,), seed="abc"), "seed"),
        (lambda: R.normal((2,), seed=1.5), "seed"),
        (lambda: R.normal((2, -1)), "shape"),
        (lambda: R.normal((2, None)), "shape"),
        (lambda: R.normal((2,), stddev=float("nan")), "stddev"),
        (lambda: R.randint((2,), 5, 5), "maxval"),
        (lambda: R.categorical(np.zeros(3), 2), "2-D"),
        (lambda: R.dropout(np.ones(3), 1.0), "rate"),
        (lambda: R.dropout(np.ones((2, 3)), 0.5, noise_shape=(2, 2)), "noise_shape"),
        (lambda: R.gamma((2,), 0.0), "alpha"),
        (lambda: R.binomial((2,), 3, 1.5), "probabilities"),
        (lambda: R.shuffle(np.ones((2, 3)), axis=2), "axis"),
        (lambda: R.SeedGenerator("x"), "seed"),
        (lambda: R.dropout(keras.Input((3,)), 0.5), "not fully known"),
        (lambda: R.shuffle(keras.Input((3,))), "not fully known"),
    ],
)
def test_bad_arguments_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_reachable_as_keras_random():
    assert polykeras.random is R
    assert "random" in polykeras.__all__


# -- regularizers ----------------------------------------------------------------------------------
M = np.random.default_rng(3).normal(size=(4, 3)).astype("float32")

KERAS_REG_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    m = np.load(sys.argv[1])["m"]
    R = keras.regularizers
    regs = {
        "l1": R.L1(0.3), "l2": R.L2(0.2), "l1l2": R.L1L2(0.1, 0.2),
        "orth_rows": R.OrthogonalRegularizer(0.5),
        "orth_cols": R.OrthogonalRegularizer(0.5, "columns"),
        "l1_default": R.L1(), "l2_default": R.L2(),
    }
    t = keras.ops.convert_to_tensor(m)
    out = {k: keras.ops.convert_to_numpy(r(t)) for k, r in regs.items()}
    np.savez(sys.argv[2], **out)
""")

OUR_REGS = {
    "l1": lambda: regularizers.L1(0.3),
    "l2": lambda: regularizers.L2(0.2),
    "l1l2": lambda: regularizers.L1L2(0.1, 0.2),
    "orth_rows": lambda: regularizers.OrthogonalRegularizer(0.5),
    "orth_cols": lambda: regularizers.OrthogonalRegularizer(0.5, "columns"),
    "l1_default": lambda: regularizers.L1(),
    "l2_default": lambda: regularizers.L2(),
}


@pytest.fixture(scope="module")
def keras3_penalties(tmp_path_factory):
    return run_keras3_script(tmp_path_factory.mktemp("keras3_reg"), KERAS_REG_SCRIPT, {"m": M})


@pytest.mark.parametrize("key", sorted(OUR_REGS))
def test_regularizer_penalties_match_keras3(keras3_penalties, key):
    ours = _np(OUR_REGS[key]()(keras.ops.convert_to_tensor(M)))
    np.testing.assert_allclose(ours, keras3_penalties[key], rtol=1e-5)


def test_regularizer_configs_are_keras3s_and_load_back():
    assert regularizers.L1(0.3).get_config() == {"l1": 0.3}
    assert regularizers.L2().get_config() == {"l2": 0.01}
    assert regularizers.OrthogonalRegularizer().get_config() == {"factor": 0.01, "mode": "rows"}
    for reg in (
        regularizers.L1(0.3),
        regularizers.L2(0.2),
        regularizers.L1L2(0.1, 0.2),
        regularizers.OrthogonalRegularizer(0.5, "columns"),
    ):
        cfg = regularizers.serialize(reg)
        assert cfg["class_name"] == type(reg).__name__
        again = regularizers.get(cfg)
        assert type(again) is type(reg) and again.get_config() == reg.get_config()
    # as Keras 3 writes them (module / registered_name keys)
    keras3 = {
        "module": "keras.regularizers",
        "class_name": "OrthogonalRegularizer",
        "config": {"factor": 0.10000000149011612, "mode": "columns"},
        "registered_name": None,
    }
    got = regularizers.get(keras3)
    assert isinstance(got, regularizers.OrthogonalRegularizer) and got.mode == "columns"
    assert isinstance(regularizers.l2(0.5), regularizers.L2)


def test_regularizer_in_a_layer_and_its_config():
    layer = keras.layers.Dense(3, kernel_regularizer=regularizers.OrthogonalRegularizer(0.1))
    model = keras.Sequential([keras.Input((4,)), layer])
    cfg = layer.get_config()["kernel_regularizer"]
    assert cfg["class_name"] == "OrthogonalRegularizer"
    clone = keras.Sequential.from_config(model.get_config())
    assert isinstance(clone.layers[0].kernel_regularizer, regularizers.OrthogonalRegularizer)
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 4), "float32"), np.ones((4, 3), "float32"), verbose=0)
    assert len(model.losses) == 1


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: regularizers.L1(-0.1), "l1"),
        (lambda: regularizers.L2(float("nan")), "l2"),
        (lambda: regularizers.OrthogonalRegularizer(mode="diagonal"), "mode"),
        (lambda: regularizers.OrthogonalRegularizer()(np.ones((2, 2, 2), "float32")), "rank 2"),
        (lambda: regularizers.get({"class_name": "L3", "config": {}}), "L3"),
        (lambda: regularizers.get({"class_name": "L2", "config": {"l3": 1}}), "l3"),
    ],
)
def test_bad_regularizers_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# -- keras.utils ----------------------------------------------------------------------------------
KERAS_UTILS_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    x = np.load(sys.argv[1])["x"]
    out = {
        "n2": keras.utils.normalize(x),
        "n1": keras.utils.normalize(x, order=1),
        "n2_t": keras.ops.convert_to_numpy(keras.utils.normalize(keras.ops.convert_to_tensor(x))),
    }
    np.savez(sys.argv[2], **out)
""")


def test_normalize_matches_keras3(tmp_path):
    x = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    x[1] = 0.0
    ref = run_keras3_script(tmp_path, KERAS_UTILS_SCRIPT, {"x": x})
    np.testing.assert_allclose(utils.normalize(x), ref["n2"], rtol=1e-6)
    np.testing.assert_allclose(utils.normalize(x, order=1), ref["n1"], rtol=1e-6)
    assert isinstance(utils.normalize(x), np.ndarray)
    t = utils.normalize(keras.ops.convert_to_tensor(x))
    assert polykeras.backend.current().is_native(t)
    np.testing.assert_allclose(_np(t), ref["n2_t"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(utils.normalize(x, axis=0), axis=0), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="order"):
        utils.normalize(x, order=0)


def test_pack_and_unpack():
    x, y, w = np.ones(2), np.zeros(2), np.ones(2)
    assert utils.pack_x_y_sample_weight(x) is x
    assert utils.pack_x_y_sample_weight([x, x]) == ([x, x],)
    assert utils.pack_x_y_sample_weight(x, y) == (x, y)
    assert utils.pack_x_y_sample_weight(x, y, w) == (x, y, w)
    assert utils.unpack_x_y_sample_weight(x) == (x, None, None)
    assert utils.unpack_x_y_sample_weight((x,)) == (x, None, None)
    assert utils.unpack_x_y_sample_weight([x, y]) == (x, y, None)
    assert utils.unpack_x_y_sample_weight((x, y, w)) == (x, y, w)
    with pytest.raises(ValueError, match="expected to be in format"):
        utils.unpack_x_y_sample_weight((x, y, w, w))


def test_progbar_update_add_and_unknown_target():
    stream = io.StringIO()
    bar = utils.Progbar(10, stream=stream)
    bar.update(4, values=[("loss", 1.0)])
    bar.add(6, values=[("loss", 0.5)])
    assert "10/10" in stream.getvalue() and "loss" in stream.getvalue()
    stream = io.StringIO()
    bar = utils.Progbar(None, stream=stream)
    bar.update(3)
    bar.add(2)
    from polykeras.utils.generic_utils import Progbar

    assert Progbar is utils.Progbar


def test_serialize_and_deserialize_keras_objects():
    from polykeras.utils.generic_utils import deserialize_keras_object, serialize_keras_object

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    cfg = serialize_keras_object(model)
    assert cfg["class_name"] == "Sequential"
    again = deserialize_keras_object(cfg)
    assert type(again).__name__ == "Sequential" and again.layers[0].name == "d"
    layer = deserialize_keras_object(serialize_keras_object(keras.layers.Dense(4)))
    assert isinstance(layer, keras.layers.Dense) and layer.units == 4
    opt = deserialize_keras_object(serialize_keras_object(keras.optimizers.Lion(0.01)))
    assert isinstance(opt, keras.optimizers.Lion) and opt.learning_rate == 0.01
    reg = deserialize_keras_object(serialize_keras_object(regularizers.L2(0.3)))
    assert isinstance(reg, regularizers.L2) and reg.l2 == 0.3
    init = deserialize_keras_object(serialize_keras_object(keras.initializers.HeNormal(seed=1)))
    assert type(init).__name__ == "HeNormal"
    assert serialize_keras_object(keras.activations.relu) == "relu"
    assert serialize_keras_object([1, "a", None]) == [1, "a", None]
    # a Keras 3 config, with module
    got = deserialize_keras_object(
        {
            "module": "keras.regularizers",
            "class_name": "L1",
            "config": {"l1": 0.2},
            "registered_name": None,
        }
    )
    assert isinstance(got, regularizers.L1)

    class Custom:
        def __init__(self, k=1):
            self.k = k

        def get_config(self):
            return {"k": self.k}

        @classmethod
        def from_config(cls, config):
            return cls(**config)

    cfg = serialize_keras_object(Custom(5))
    assert cfg["class_name"] == "Custom" and cfg["config"] == {"k": 5}
    assert deserialize_keras_object(cfg, custom_objects={"Custom": Custom}).k == 5
    with pytest.raises(ValueError, match="Nope"):
        deserialize_keras_object({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="cannot serialize"):
        serialize_keras_object(object())


def test_timeseries_windows_and_targets():
    data = np.arange(100)
    ds = utils.timeseries_dataset_from_array(
        data, np.arange(100) * 10, sequence_length=10, sampling_rate=2, batch_size=16
    )
    # windows start at 0..81 (the last one needs rows up to 81 + 18 = 99): 82 windows
    assert len(ds) == 6
    x0, y0 = ds[0]
    np.testing.assert_array_equal(x0[0], np.arange(0, 20, 2))
    np.testing.assert_array_equal(y0[:3], [0, 10, 20])
    batches = list(ds)
    assert sum(len(x) for x, _ in batches) == 82 and len(batches[-1][0]) == 82 - 80
    # Keras' docs example 3: non-overlapping windows, no targets
    X = np.arange(100)
    inputs = utils.timeseries_dataset_from_array(X, None, sequence_length=20, sequence_stride=20)
    first = next(iter(inputs))
    assert first.shape == (5, 20)
    np.testing.assert_array_equal(first[1], X[20:40])


def test_timeseries_start_end_shuffle_and_unbatched():
    data = np.arange(50, dtype="float32").reshape(25, 2)
    targets = np.arange(25)
    ds = utils.timeseries_dataset_from_array(
        data, targets, 4, start_index=3, end_index=20, batch_size=None
    )
    x, y = ds[0]
    np.testing.assert_array_equal(x, data[3:7])
    assert y == 3
    assert len(ds) == 20 - 3 - 3  # the last window ends at row 19
    a = utils.timeseries_dataset_from_array(data, targets, 4, shuffle=True, seed=1, batch_size=5)
    b = utils.timeseries_dataset_from_array(data, targets, 4, shuffle=True, seed=1, batch_size=5)
    ya = np.concatenate([y for _, y in a])
    np.testing.assert_array_equal(ya, np.concatenate([y for _, y in b]))
    assert sorted(ya.tolist()) == list(range(22)) and ya.tolist() != list(range(22))
    starts = np.arange(22)
    np.random.RandomState(1).shuffle(starts)  # Keras' order of the windows
    np.testing.assert_array_equal(ya, starts)


def test_timeseries_dataset_feeds_fit_and_predict():
    data = np.random.default_rng(0).normal(size=(60, 3)).astype("float32")
    targets = data[:, :1].copy()
    ds = utils.timeseries_dataset_from_array(data, targets, 5, batch_size=8)
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    history = model.fit(ds, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    inputs = utils.timeseries_dataset_from_array(data, None, 5, batch_size=8)
    assert model.predict(inputs, verbose=0).shape == (56, 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sampling_rate=0), "sampling_rate"),
        (dict(sequence_stride=0), "sequence_stride"),
        (dict(sequence_stride=30), "sequence_stride"),
        (dict(start_index=40), "start_index"),
        (dict(start_index=5, end_index=5), "end_index"),
        (dict(end_index=30), "end_index"),
        (dict(batch_size=0), "batch_size"),
    ],
)
def test_timeseries_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        utils.timeseries_dataset_from_array(np.arange(30), None, 3, **kwargs)


def test_a_custom_regularizer_class_loads_in_a_custom_object_scope():
    class Scaled(regularizers.Regularizer):
        def __init__(self, k=1.0):
            self.k = k

        def __call__(self, x):
            return keras.ops.multiply(keras.ops.sum(x), self.k)

        def get_config(self):
            return {"k": self.k}

    cfg = regularizers.serialize(Scaled(2.0))
    with pytest.raises(ValueError, match="Scaled"):
        regularizers.get(cfg)
    with utils.custom_object_scope({"Scaled": Scaled}):
        assert regularizers.get(cfg).k == 2.0
