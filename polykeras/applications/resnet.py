"""ResNet50, ResNet101 and ResNet152 (He et al., 2015; the v1 bottleneck blocks), with
Keras' layer names and weight files."""

from __future__ import annotations

from typing import Any

from .. import config
from . import imagenet_utils

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"

#: model name -> (md5 of the file with the top, md5 of the file without): Keras' published
#: ImageNet weights
_WEIGHTS_HASHES = {
    "resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
}

_BN_EPSILON = 1.001e-5


def _bn(x: Any, name: str) -> Any:
    from .. import layers

    axis = 3 if config.image_data_format() == "channels_last" else 1
    return layers.BatchNormalization(axis=axis, epsilon=_BN_EPSILON, name=name)(x)


def _bottleneck(x: Any, filters: int, stride: int, projection: bool, name: str) -> Any:
    """One v1 bottleneck block: 1x1 (stride), 3x3, 1x1 to 4*filters, plus the shortcut (a
    strided 1x1 projection in the first block of a stage, else the identity)."""
    from .. import layers

    if projection:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(_bn(x, f"{name}_2_bn"))
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = _bn(x, f"{name}_3_bn")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _stage(x: Any, filters: int, blocks: int, stride: int, name: str) -> Any:
    x = _bottleneck(x, filters, stride, True, f"{name}_block1")
    for i in range(2, blocks + 1):
        x = _bottleneck(x, filters, 1, False, f"{name}_block{i}")
    return x


def _resnet(
    family: str,
    blocks: tuple[int, int, int, int],
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
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(x)
    x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    x = layers.Activation("relu", name="conv1_relu")(_bn(x, "conv1_bn"))
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, count) in enumerate(zip((64, 128, 256, 512), blocks), 2):
        x = _stage(x, filters, count, 1 if stage == 2 else 2, f"conv{stage}")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pool_features(x, pooling, "avg_pool", "max_pool")
    model = Model(inputs, x, name=name)
    top_hash, notop_hash = _WEIGHTS_HASHES[family]
    suffix = "" if include_top else "_notop"
    fname = f"{family}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
    imagenet_file = (fname, f"{_BASE}{fname}", top_hash if include_top else notop_hash)
    imagenet_utils.load_model_weights(model, weights, imagenet_file)
    return model


def ResNet50(
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: Any = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "resnet50",
) -> Any:
    """ResNet50: a 7x7 stem, then 3, 4, 6 and 3 bottleneck blocks, then (``include_top``)
    global average pooling and the classifier.  ``weights``: None (random),
    ``"imagenet"`` (Keras' published file, downloaded once) or a path to a weights file.
    Without the top, ``input_shape`` may be any 3-channel size of at least 32x32 and
    ``pooling`` (None, ``"avg"``, ``"max"``) pools the last stage's features.  Inputs go
    through ``resnet50.preprocess_input`` first."""
    return _resnet(
        "resnet50",
        (3, 4, 6, 3),
        include_top,
        weights,
        input_tensor,
        input_shape,
        pooling,
        classes,
        classifier_activation,
        name,
    )


def ResNet101(
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: Any = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "resnet101",
) -> Any:
    """ResNet101: as ``ResNet50`` with 3, 4, 23 and 3 blocks."""
    return _resnet(
        "resnet101",
        (3, 4, 23, 3),
        include_top,
        weights,
        input_tensor,
        input_shape,
        pooling,
        classes,
        classifier_activation,
        name,
    )


def ResNet152(
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: Any = None,
    pooling: Any = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "resnet152",
) -> Any:
    """ResNet152: as ``ResNet50`` with 3, 8, 36 and 3 blocks."""
    return _resnet(
        "resnet152",
        (3, 8, 36, 3),
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
