"""Places that one piece of code now serves (the review clean-up of repeated code): the
behaviour each of them had before, pinned down, and compared with Keras 3 where it runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import polykeras
from polykeras import layers
from polykeras.optimizers import schedules

from helpers import run_keras3_script

SCHEDULES = {
    "ExponentialDecay": dict(
        initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase=True
    ),
    "InverseTimeDecay": dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
    "PiecewiseConstantDecay": dict(boundaries=[10, 20], values=[0.1, 0.05, 0.01]),
    "PolynomialDecay": dict(
        initial_learning_rate=0.1, decay_steps=10, end_learning_rate=0.01, power=2.0, cycle=True
    ),
    "CosineDecay": dict(
        initial_learning_rate=0.1, decay_steps=10, alpha=0.1, warmup_target=0.2, warmup_steps=3
    ),
    "CosineDecayRestarts": dict(
        initial_learning_rate=0.1, first_decay_steps=10, t_mul=1.5, m_mul=0.9, alpha=0.01
    ),
}

KERAS_SCHEDULES = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
import keras
specs = json.loads(str(np.load(sys.argv[1])["specs"]))
out = {
    n: getattr(keras.optimizers.schedules, n)(**kw).get_config() for n, kw in specs.items()
}
np.savez(sys.argv[2], configs=np.array(json.dumps(out)))
"""


def test_schedule_configs_keep_keras_keys_order_and_values(tmp_path):
    """Each schedule's config (now read from its table of keys) is Keras 3's, key order
    included, and makes the same schedule again."""
    ref = run_keras3_script(tmp_path, KERAS_SCHEDULES, {"specs": np.array(json.dumps(SCHEDULES))})
    expected = json.loads(str(ref["configs"]))
    for name, kwargs in SCHEDULES.items():
        schedule = getattr(schedules, name)(**kwargs)
        config = schedule.get_config()
        assert list(config) == list(expected[name]), name
        assert config == expected[name], name
        again = type(schedule).from_config(config)
        assert again.get_config() == config
        assert again(7) == pytest.approx(schedule(7))


def test_a_custom_schedule_without_get_config_still_refuses_to_serialize():
    class Mine(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1

    with pytest.raises(NotImplementedError, match="must override `get_config"):
        Mine().get_config()


def test_pooling_1d_shares_the_config_and_keeps_its_arguments():
    pool = layers.MaxPooling1D(pool_length=3, stride=1, border_mode="same")
    config = pool.get_config()
    assert list(config)[-4:] == ["pool_size", "padding", "strides", "data_format"]
    assert (config["pool_size"], config["strides"], config["padding"]) == ([3], [1], "same")
    assert layers.AveragePooling1D(data_format="channels_first").data_format == "channels_first"
    # Keras 1's 1-D poolings had no dim_ordering: still refused (not taken as data_format)
    with pytest.raises(TypeError, match="not understood: dim_ordering"):
        layers.MaxPooling1D(dim_ordering="tf")
    with pytest.raises(ValueError, match="3-D tensor"):
        layers.MaxPooling1D()(polykeras.Input((4, 4, 2)))


def test_convolution_channel_checks_name_each_kernels_channels():
    x = polykeras.Input((8, 8, 3))
    for layer in (
        layers.Conv2D(4, 3),
        layers.Conv2DTranspose(4, 3),
        layers.DepthwiseConv2D(3),
        layers.SeparableConv2D(4, 3),
    ):
        layer(x)
        with pytest.raises(ValueError, match="expected 3 channels on axis -1"):
            layer(polykeras.Input((8, 8, 5)))
    with pytest.raises(ValueError, match="evenly divisible by the number of groups"):
        layers.Conv2D(4, 3, groups=2)(x)
    with pytest.raises(ValueError, match="is too small for kernel"):
        layers.DepthwiseConv2D(5)(polykeras.Input((3, 3, 2)))
    sep = layers.SeparableConv2D(4, 3, depth_multiplier=2)
    sep(x)
    assert [w.name.split("/")[-1] for w in sep.weights] == [
        "depthwise_kernel:0",
        "pointwise_kernel:0",
        "bias:0",
    ]


def test_batch_normalization_keeps_its_own_error_owner_and_weight_order():
    with pytest.raises(ValueError, match=r"^BatchNormalization: epsilon"):
        layers.BatchNormalization(epsilon=0.0)
    with pytest.raises(ValueError, match=r"^LayerNormalization layer_normalization\S*: epsilon"):
        layers.LayerNormalization(epsilon=0.0)
    bn = layers.BatchNormalization(center=False)
    bn(polykeras.Input((3,)))
    assert [w.name.split("/")[-1] for w in bn.weights] == [
        "gamma:0",
        "moving_mean:0",
        "moving_variance:0",
    ]


def _masked_equals_shorter(layer_fn, x, keep):
    """Running with the last steps masked gives the last output (and states) of running
    on the kept steps alone, for layers that share the masked time loop."""
    masked = layer_fn()
    full = np.asarray(masked(x, mask=keep))
    short = layer_fn()
    short.build(x.shape)
    short.set_weights(masked.get_weights())
    kept = int(keep[0].sum())
    np.testing.assert_allclose(full, np.asarray(short(x[:, :kept])), rtol=1e-5, atol=1e-6)


def test_the_shared_time_loop_masks_every_recurrent_layer():
    rng = np.random.default_rng(0)
    keep = np.array([[True, True, True, False, False]] * 2)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    _masked_equals_shorter(lambda: layers.GRU(4, seed=1), x, keep)
    _masked_equals_shorter(lambda: layers.RNN(layers.LSTMCell(4)), x, keep)
    images = rng.normal(size=(2, 5, 4, 4, 2)).astype("float32")
    _masked_equals_shorter(lambda: layers.ConvLSTM2D(3, 3, padding="same"), images, keep)


def test_conv_lstm_weights_keep_keras_names_shapes_and_order():
    layer = layers.ConvLSTM2D(3, (2, 2), data_format="channels_first")
    layer(polykeras.Input((4, 2, 5, 5)))
    assert [(w.name.split("/")[-1], tuple(w.shape)) for w in layer.weights] == [
        ("kernel:0", (2, 2, 2, 12)),
        ("recurrent_kernel:0", (2, 2, 3, 12)),
        ("bias:0", (12,)),
    ]
    bias = layer.get_weights()[2]
    np.testing.assert_array_equal(bias, np.r_[np.zeros(3), np.ones(3), np.zeros(6)])


def test_utils_get_file_and_pad_sequences_are_the_real_ones_loaded_on_first_use():
    code = (
        "import sys, polykeras.utils as u\n"
        "assert 'polykeras.utils_data' not in sys.modules\n"
        "from polykeras.utils import get_file\n"
        "from polykeras import utils_data\n"
        "assert get_file is utils_data.get_file\n"
        "from polykeras.utils.data_utils import get_file as old\n"
        "assert old is get_file\n"
        "from polykeras.preprocessing import sequence\n"
        "assert u.pad_sequences is sequence.pad_sequences\n"
        "assert u.pad_sequences([[1], [2, 3]]).tolist() == [[0, 1], [2, 3]]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
