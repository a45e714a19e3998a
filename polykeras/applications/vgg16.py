"""VGG16 and VGG19 (Simonyan & Zisserman, 2015), with Keras' layer names and weight files."""

from __future__ import annotations

from typing import Any

from .. import config
from . import imagenet_utils

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"

#: model name -> ((top file, md5), (no-top file, md5)): Keras' published ImageNet weights
_WEIGHTS = {
    "vgg16": (
        ("vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b"),
        ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "6d6bbae143d832006294945121d1f1fc"),
    ),
    "vgg19": (
        ("vgg19_weights_tf_dim_ordering_tf_kernels.h5", "cbe5617147190e668d6c5d5026f83318"),
        ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "253f8cb515780f3b799900260a226db6"),
    ),
}


def _vgg(
    family: str,
    convs_per_block: tuple[int, ...],
    include_top: bool,
    weights: Any,
    input_tensor: Any,
    input_shape: Any,
    pooling: Any,
    classes: int,
    classifier_activation: Any,
    name: str,
) -> Any:
    from .. import layers
    from ..models import Model

    imagenet_utils.check_weights_argument(weights, include_top, classes)
    imagenet_utils.check_pooling(pooling)
    shape = imagenet_utils.obtain_input_shape(
        input_shape,
        default_size=224,
        min_size=32,
        data_format=config.image_data_format(),
        require_flatten=include_top,
        weights=weights,
    )
    x, inputs = imagenet_utils.model_inputs(input_tensor, shape)
    for block, (filters, convs) in enumerate(zip((64, 128, 256, 512, 512), convs_per_block), 1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(
                filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{i}"
            )(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pool_features(x, pooling, None, None)
    model = Model(inputs, x, name=name)
    (top_file, top_hash), (notop_file, notop_hash) = _WEIGHTS[family]
    fname, file_hash = (top_file, top_hash) if include_top else (notop_file, notop_hash)
    imagenet_file = (fname, f"{_BASE}{family}/{fname}", file_hash)
    imagenet_utils.load_model_weights(model, weights, imagenet_file)
    return model


def VGG16(
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: Any = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "vgg16",
) -> Any:
    """VGG16: 13 convolutions in 5 blocks, then (``include_top``) two 4096-unit layers and
    the classifier.  ``weights``: None (random), ``"imagenet"`` (Keras' published file,
    downloaded once) or a path to a weights file.  Without the top, ``input_shape`` may be
    any 3-channel size of at least 32x32 and ``pooling`` (None, ``"avg"``, ``"max"``) pools
    the last block's features.  Inputs go through ``vgg16.preprocess_input`` first."""
    return _vgg(
        "vgg16",
        (2, 2, 3, 3, 3),
        include_top,
        weights,
        input_tensor,
        input_shape,
        pooling,
        classes,
        classifier_activation,
        name,
    )


def VGG19(
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: Any = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "vgg19",
) -> Any:
    """VGG19: as ``VGG16`` with 16 convolutions (blocks 3 to 5 have four each)."""
    return _vgg(
        "vgg19",
        (2, 2, 4, 4, 4),
        include_top,
        weights,
        input_tensor,
        input_shape,
        pooling,
        classes,
        classifier_activation,
        name,
    )


def preprocess_input(x: Any, data_format: Any = None) -> Any:
    """Images (pixel values in [0, 255], RGB) to the network's input: channels reversed
    to BGR and ImageNet's mean pixel subtracted ("caffe" mode); no scaling."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds: Any, top: int = 5) -> list:
    """The ``top`` ImageNet classes of each prediction: see ``imagenet_utils``."""
    return imagenet_utils.decode_predictions(preds, top=top)
