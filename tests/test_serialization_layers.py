"""get_config / from_config for every layer class polykeras has, the class registry, and the
Keras 1 / Keras 3 layer arguments read from configs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import polykeras as keras
from polykeras import layers as L
from polykeras.models import Model, Sequential, model_from_json
from polykeras.saving import SavingError, UnknownLayerError, registry
from polykeras.saving.config import deserialize_layer, serialize_layer

# class name -> (make the layer, input shape(s) without the batch axis, input dtype)
CASES = {
    "Activation": (lambda: L.Activation("tanh"), (3,)),
    "Add": (lambda: L.Add(), [(3,), (3,)]),
    "Average": (lambda: L.Average(), [(3,), (3,)]),
    "AveragePooling1D": (lambda: L.AveragePooling1D(2, padding="same"), (5, 2)),
    "AveragePooling2D": (lambda: L.AveragePooling2D((2, 2), strides=(1, 1)), (4, 4, 2)),
    "BatchNormalization": (lambda: L.BatchNormalization(momentum=0.9, epsilon=1e-4), (3,)),
    "Concatenate": (lambda: L.Concatenate(axis=1), [(3,), (2,)]),
    "Conv1D": (
        lambda: L.Conv1D(2, 3, padding="causal", dilation_rate=2, activation="relu"),
        (6, 2),
    ),
    "Conv2D": (
        lambda: L.Conv2D(
            2,
            (3, 2),
            strides=(2, 1),
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
        ),
        (5, 5, 3),
    ),
    "Dense": (
        lambda: L.Dense(
            4,
            activation="softmax",
            kernel_initializer="lecun_uniform",
            bias_initializer=keras.initializers.Constant(0.5),
            kernel_regularizer="l2",
        ),
        (3,),
    ),
    "Dot": (lambda: L.Dot(axes=1, normalize=True), [(3,), (3,)]),
    "Dropout": (lambda: L.Dropout(0.3, seed=4), (3,)),
    "Embedding": (lambda: L.Embedding(10, 3, mask_zero=False), (4,), "int32"),
    "Flatten": (lambda: L.Flatten(), (2, 3)),
    "GRU": (
        lambda: L.GRU(
            3,
            return_sequences=True,
            go_backwards=True,
            reset_after=False,
            recurrent_activation="hard_sigmoid",
        ),
        (4, 2),
    ),
    "GlobalAveragePooling1D": (lambda: L.GlobalAveragePooling1D(), (4, 2)),
    "GlobalAveragePooling2D": (lambda: L.GlobalAveragePooling2D(), (3, 3, 2)),
    "GlobalMaxPooling1D": (lambda: L.GlobalMaxPooling1D(), (4, 2)),
    "GlobalMaxPooling2D": (lambda: L.GlobalMaxPooling2D(), (3, 3, 2)),
    "LSTM": (lambda: L.LSTM(3, unit_forget_bias=False, dropout=0.1, return_state=False), (4, 2)),
    "MaxPooling1D": (lambda: L.MaxPooling1D(2), (4, 2)),
    "MaxPooling2D": (lambda: L.MaxPooling2D((2, 2), padding="same"), (3, 3, 2)),
    "Maximum": (lambda: L.Maximum(), [(3,), (3,)]),
    "Minimum": (lambda: L.Minimum(), [(3,), (3,)]),
    "Multiply": (lambda: L.Multiply(), [(3,), (3,)]),
    "OpLayer": (lambda: L.OpLayer("add", [{"__tensor__": 0}, 1.5]), (3,)),
    "Permute": (lambda: L.Permute((2, 1)), (2, 3)),
    "RepeatVector": (lambda: L.RepeatVector(3), (2,)),
    "Reshape": (lambda: L.Reshape((3, -1)), (6,)),
    "SimpleRNN": (lambda: L.SimpleRNN(2, activation="relu"), (4, 2)),
    "Subtract": (lambda: L.Subtract(), [(3,), (3,)]),
    "TimeDistributed": (lambda: L.TimeDistributed(L.Dense(2, name="inner")), (4, 3)),
    # -- the layer families added for issue 15 --
    "ActivityRegularization": (lambda: L.ActivityRegularization(l1=0.01, l2=0.02), (3,)),
    "AlphaDropout": (lambda: L.AlphaDropout(0.2, noise_shape=(None, 1), seed=3), (3,)),
    "ELU": (lambda: L.ELU(alpha=0.5), (3,)),
    "GaussianDropout": (lambda: L.GaussianDropout(0.3, seed=2), (3,)),
    "GaussianNoise": (lambda: L.GaussianNoise(0.2, seed=1), (3,)),
    "GroupNormalization": (lambda: L.GroupNormalization(groups=2, epsilon=1e-5), (3, 4)),
    "LayerNormalization": (lambda: L.LayerNormalization(axis=[1, 2], center=False), (3, 4)),
    "LeakyReLU": (lambda: L.LeakyReLU(alpha=0.1), (3,)),
    "PReLU": (lambda: L.PReLU(alpha_initializer="ones", shared_axes=[1]), (4, 3)),
    "ReLU": (lambda: L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5), (3,)),
    "Softmax": (lambda: L.Softmax(axis=1), (4, 3)),
    "SpatialDropout1D": (lambda: L.SpatialDropout1D(0.3, seed=1), (4, 3)),
    "SpatialDropout2D": (
        lambda: L.SpatialDropout2D(0.3, data_format="channels_first"),
        (2, 4, 4),
    ),
    "SpatialDropout3D": (lambda: L.SpatialDropout3D(0.3), (2, 2, 2, 3)),
    "ThresholdedReLU": (lambda: L.ThresholdedReLU(theta=0.5), (3,)),
    "UnitNormalization": (lambda: L.UnitNormalization(axis=[1, 2]), (3, 4)),
    "AveragePooling3D": (lambda: L.AveragePooling3D((2, 1, 2), padding="same"), (3, 3, 3, 2)),
    "Conv1DTranspose": (lambda: L.Conv1DTranspose(2, 3, strides=2, output_padding=1), (4, 2)),
    "Conv2DTranspose": (
        lambda: L.Conv2DTranspose(2, (3, 2), strides=2, padding="same", activation="relu"),
        (3, 4, 2),
    ),
    "Conv3D": (lambda: L.Conv3D(4, 2, groups=2, padding="same"), (3, 3, 3, 2)),
    "Conv3DTranspose": (lambda: L.Conv3DTranspose(2, 2, strides=(1, 2, 1)), (2, 2, 2, 3)),
    "Cropping1D": (lambda: L.Cropping1D((1, 2)), (5, 2)),
    "Cropping2D": (lambda: L.Cropping2D(((1, 0), (0, 1))), (3, 3, 2)),
    "Cropping3D": (lambda: L.Cropping3D(1), (3, 3, 4, 2)),
    "Deconvolution2D": (
        lambda: L.Deconvolution2D(2, 3, 3, (None, 6, 6, 2), subsample=(2, 2), border_mode="same"),
        (3, 3, 2),
    ),
    "DepthwiseConv2D": (
        lambda: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
        (4, 4, 2),
    ),
    "GlobalAveragePooling3D": (lambda: L.GlobalAveragePooling3D(keepdims=True), (2, 2, 2, 3)),
    "GlobalMaxPooling3D": (lambda: L.GlobalMaxPooling3D(), (2, 2, 2, 3)),
    "MaxPooling3D": (lambda: L.MaxPooling3D(2), (4, 4, 4, 2)),
    "SeparableConv1D": (lambda: L.SeparableConv1D(3, 2, depth_multiplier=2), (5, 2)),
    "SeparableConv2D": (lambda: L.SeparableConv2D(3, 3, strides=2, padding="same"), (5, 5, 2)),
    "UpSampling1D": (lambda: L.UpSampling1D(3), (2, 2)),
    "UpSampling2D": (lambda: L.UpSampling2D((2, 3), interpolation="bilinear"), (2, 2, 2)),
    "UpSampling3D": (lambda: L.UpSampling3D((1, 2, 2)), (2, 2, 2, 2)),
    "ZeroPadding1D": (lambda: L.ZeroPadding1D((1, 2)), (3, 2)),
    "ZeroPadding2D": (lambda: L.ZeroPadding2D(((1, 0), (2, 1))), (3, 3, 2)),
    "ZeroPadding3D": (lambda: L.ZeroPadding3D(1), (2, 2, 2, 2)),
    "Masking": (lambda: L.Masking(mask_value=-1.0), (4, 3)),
    "Identity": (lambda: L.Identity(), (3,)),
    # preprocessing
    "Rescaling": (lambda: L.Rescaling([0.5, 1.0, 2.0], offset=-1.0), (4, 4, 3)),
    "Resizing": (
        lambda: L.Resizing(3, 5, interpolation="nearest", crop_to_aspect_ratio=True),
        (4, 6, 2),
    ),
    "CenterCrop": (lambda: L.CenterCrop(2, 3), (4, 5, 2)),
    "Normalization": (
        lambda: L.Normalization(axis=None, mean=1.0, variance=4.0, invert=True),
        (3,),
    ),
    "Discretization": (lambda: L.Discretization([-0.5, 0.5], output_mode="count"), (4,)),
    # categorical (StringLookup, TextVectorization and Hashing work on host strings, not in
    # a model: their round trips are in tests/test_layers_text_preprocessing.py)
    "CategoryEncoding": (
        lambda: L.CategoryEncoding(num_tokens=10, output_mode="count"),
        (3,),
        "int32",
    ),
    "IntegerLookup": (
        lambda: L.IntegerLookup(vocabulary=[3, 1, 4], mask_token=0, output_mode="multi_hot"),
        (3,),
        "int32",
    ),
    # augmentation
    "RandomBrightness": (
        lambda: L.RandomBrightness((-0.1, 0.3), value_range=(0, 1), seed=1),
        (4, 5, 3),
    ),
    "RandomContrast": (lambda: L.RandomContrast(0.3, seed=1), (4, 5, 3)),
    "RandomCrop": (lambda: L.RandomCrop(2, 3, seed=1), (4, 5, 3)),
    "RandomFlip": (lambda: L.RandomFlip("horizontal", seed=1), (4, 5, 3)),
    "RandomRotation": (
        lambda: L.RandomRotation((-0.2, 0.1), fill_mode="constant", seed=1),
        (4, 5, 3),
    ),
    "RandomTranslation": (
        lambda: L.RandomTranslation(0.1, (-0.2, 0.3), fill_mode="wrap"),
        (4, 5, 3),
    ),
    "RandomZoom": (lambda: L.RandomZoom(0.2, interpolation="nearest", seed=1), (4, 5, 3)),
    "AdditiveAttention": (lambda: L.AdditiveAttention(use_scale=True), [(4, 3), (5, 3)]),
    "Attention": (lambda: L.Attention(use_scale=True, score_mode="concat"), [(4, 3), (5, 3)]),
    "MultiHeadAttention": (lambda: L.MultiHeadAttention(2, 3, value_dim=2), [(5, 4), (6, 3)]),
    "Bidirectional": (
        lambda: L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum"),
        (4, 2),
    ),
    "ConvLSTM2D": (lambda: L.ConvLSTM2D(2, 3, padding="same"), (3, 5, 5, 2)),
    "EinsumDense": (
        lambda: L.EinsumDense("abc,cde->abde", (4, 2, 3), bias_axes="de", activation="relu"),
        (4, 5),
    ),
    "DepthwiseConv1D": (lambda: L.DepthwiseConv1D(3, depth_multiplier=2, padding="same"), (5, 2)),
    "RNN": (lambda: L.RNN(L.SimpleRNNCell(3), return_sequences=True), (4, 2)),
    # cells are configs inside an RNN's config: checked through one
    "SimpleRNNCell": (lambda: L.RNN(L.SimpleRNNCell(3, activation="relu")), (4, 2)),
    "LSTMCell": (lambda: L.RNN(L.LSTMCell(3, unit_forget_bias=False)), (4, 2)),
    "GRUCell": (lambda: L.RNN(L.GRUCell(3, reset_after=False)), (4, 2)),
    "StackedRNNCells": (
        lambda: L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)])),
        (4, 2),
    ),
}
CONTAINERS = {"InputLayer", "Model", "Sequential", "MergeLayerConfig"}
#: layers that take host strings and cannot be nodes of a model
HOST_ONLY = {"StringLookup", "TextVectorization", "Hashing"}


def test_every_registered_layer_class_has_a_config_test():
    classes = {cls.__name__ for cls in registry.builtin_classes().values()}
    missing = sorted(classes - set(CASES) - CONTAINERS - HOST_ONLY)
    assert not missing, f"add get_config/from_config cases for {missing}"


def _inputs(shapes, dtype):
    if isinstance(shapes, list):
        return [keras.Input(shape=s) for s in shapes]
    return keras.Input(shape=shapes, dtype=dtype)


def _data(shapes, dtype, n=2):
    rng = np.random.default_rng(0)
    if isinstance(shapes, list):
        return [rng.normal(size=(n,) + s).astype("float32") for s in shapes]
    if dtype == "int32":
        return rng.integers(0, 10, size=(n,) + shapes).astype("int32")
    return rng.normal(size=(n,) + shapes).astype("float32")


@pytest.mark.parametrize("class_name", sorted(CASES))
def test_layer_config_round_trip(class_name):
    make, shapes, *rest = CASES[class_name]
    dtype = rest[0] if rest else "float32"
    layer = make()
    inputs = _inputs(shapes, dtype)
    model = Model(inputs, layer(inputs))
    config = layer.get_config()
    json.dumps(config)  # plain data
    again = deserialize_layer(serialize_layer(layer))
    assert type(again) is type(layer)
    assert again.get_config() == config
    assert type(layer).from_config(json.loads(json.dumps(config))).get_config() == config
    loaded = model_from_json(model.to_json())
    loaded.set_weights(model.get_weights())
    x = _data(shapes, dtype)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_registry_names():
    known = registry.builtin_classes()
    assert known["Functional"] is Model and known["Model"] is Model
    assert known["Sequential"] is Sequential
    assert known["Convolution2D"] is L.Conv2D and known["MaxPool2D"] is L.MaxPooling2D
    assert "Lambda" not in known and "Layer" not in known
    with pytest.raises(UnknownLayerError, match="custom_objects"):
        registry.lookup("NoSuchLayer")
    with pytest.raises(SavingError):
        registry.lookup("")


def test_keras3_layer_config_with_policies_and_modules():
    doc = {
        "module": "keras.layers",
        "class_name": "Dense",
        "registered_name": None,
        "config": {
            "name": "dense",
            "trainable": True,
            "dtype": {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": "float32"},
                "registered_name": None,
            },
            "units": 3,
            "activation": "relu",
            "use_bias": True,
            "kernel_initializer": {
                "module": "keras.initializers",
                "class_name": "GlorotUniform",
                "config": {"seed": None, "input_axes": None},
                "registered_name": None,
            },
            "bias_initializer": {
                "module": "keras.initializers",
                "class_name": "Zeros",
                "config": {},
                "registered_name": None,
            },
            "kernel_regularizer": {
                "module": "keras.regularizers",
                "class_name": "L2",
                "config": {"l2": 0.01},
                "registered_name": None,
            },
            "bias_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
            "quantization_config": None,
            "lora_rank": None,
        },
    }
    layer = deserialize_layer(doc)
    assert isinstance(layer, L.Dense) and layer.units == 3 and layer.dtype == "float32"
    assert layer.kernel_regularizer.l2 == pytest.approx(0.01)


def test_unsupported_keras3_arguments_are_clear_errors():
    doc = {
        "class_name": "Dense",
        "config": {"name": "c", "units": 2, "lora_rank": 2},
    }
    with pytest.raises(SavingError, match="lora_rank"):
        deserialize_layer(doc)
    doc = {
        "class_name": "Dense",
        "config": {
            "name": "d",
            "units": 2,
            "dtype": {"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}},
        },
    }
    with pytest.raises(SavingError, match="mixed_float16"):
        deserialize_layer(doc)
    doc = {"class_name": "Dense", "config": {"name": "d", "units": 2, "dtype": "object"}}
    with pytest.raises(SavingError, match="dtype"):
        deserialize_layer(doc)


def test_constraints_load_and_apply():
    doc = {
        "class_name": "Dense",
        "config": {
            "name": "d",
            "units": 2,
            "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 2}},
        },
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = deserialize_layer(doc)
    assert layer.units == 2
    assert type(layer.kernel_constraint).__name__ == "MaxNorm"
    assert layer.kernel_constraint.max_value == 2
    doc["config"]["kernel_constraint"] = {"class_name": "Sparsify", "config": {}}
    with pytest.raises(SavingError, match=r"'d'.*Sparsify.*MaxNorm"):
        deserialize_layer(doc)


def test_custom_activation_by_name():
    def twice(x):
        return keras.ops.multiply(x, 2.0)

    doc = {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "twice"}}
    layer = deserialize_layer(doc, custom_objects={"twice": twice})
    assert layer.activation is twice


def test_keras1_layer_arguments():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conv = deserialize_layer(
            {
                "class_name": "Convolution2D",
                "config": {
                    "name": "c",
                    "nb_filter": 4,
                    "nb_row": 3,
                    "nb_col": 2,
                    "border_mode": "same",
                    "subsample": [2, 2],
                    "dim_ordering": "tf",
                    "init": "he_normal",
                    "bias": False,
                    "W_constraint": None,
                },
            }
        )
    assert (conv.filters, conv.kernel_size, conv.padding, conv.strides) == (
        4,
        (3, 2),
        "same",
        (2, 2),
    )
    assert conv.use_bias is False and conv.data_format == "channels_last"
    dense = deserialize_layer(
        {
            "class_name": "Dense",
            "config": {
                "name": "d",
                "output_dim": 5,
                "init": "uniform",
                "input_dim": 3,
                "input_dtype": "float32",
            },
        }
    )
    assert dense.units == 5
    merge = deserialize_layer(
        {
            "class_name": "Merge",
            "config": {
                "name": "m",
                "mode": "sum",
                "mode_type": "raw",
                "concat_axis": -1,
                "dot_axes": -1,
            },
        }
    )
    assert isinstance(merge, L.Add) and merge.name == "m"
    gru = deserialize_layer({"class_name": "GRU", "config": {"name": "g", "output_dim": 2}})
    assert gru.reset_after is False
