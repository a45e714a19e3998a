"""What the ImageNet applications share: input checks, preprocessing, decoding, weights.

``preprocess_input`` here is Keras' ``imagenet_utils.preprocess_input`` (modes ``"caffe"``,
``"tf"`` and ``"torch"``); VGG and ResNet use ``"caffe"``: the channels are reversed (RGB
to BGR) and ImageNet's mean pixel is subtracted, nothing is scaled.  A NumPy array is
worked on in NumPy (a float array is changed in place, as Keras documents); a backend array
or a symbolic tensor goes through ``polykeras.ops``.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import numpy as np

from .. import config, ops, utils_data

#: Keras' ImageNet class index (class number -> [wordnet id, name]) and its md5
CLASS_INDEX_PATH = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)
CLASS_INDEX_HASH = "c2c37ea517e94d9795004a39431a14cb"

#: per mode: the per-channel mean and standard deviation (None: no division), in the
#: channel order of the preprocessed image
_CAFFE_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def _data_format(data_format: Any) -> str:
    if data_format is None:
        return config.image_data_format()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(
            "Expected data_format to be one of `channels_first` or "
            f"`channels_last`. Received: data_format={data_format}"
        )
    return str(data_format)


def preprocess_input(x: Any, data_format: Any = None, mode: str = "caffe") -> Any:
    """Scale a batch of images (or one image), pixel values in [0, 255], for a network
    trained on ImageNet.  ``mode``: ``"caffe"`` (RGB to BGR, minus ImageNet's mean pixel),
    ``"tf"`` (to [-1, 1]) or ``"torch"`` (to [0, 1], then normalised per channel with
    ImageNet's mean and standard deviation).  ``data_format`` defaults to
    ``keras.backend.image_data_format()``."""
    if mode not in ("caffe", "tf", "torch"):
        raise ValueError(
            f"Expected mode to be one of `caffe`, `tf` or `torch`. Received: mode={mode}"
        )
    fmt = _data_format(data_format)
    if not hasattr(x, "shape"):  # nested lists of pixel values
        x = np.asarray(x, dtype=config.floatx())
    ndim = len(x.shape)
    if ndim < 3:
        raise ValueError(
            "preprocess_input expects an image (3D) or a batch of images (4D) with 3 "
            f"colour channels; received an array of shape {tuple(x.shape)}"
        )
    channel_axis = (0 if ndim == 3 else 1) if fmt == "channels_first" else ndim - 1
    if x.shape[channel_axis] is not None and x.shape[channel_axis] != 3:
        raise ValueError(
            f"preprocess_input expects 3 colour channels on axis {channel_axis} "
            f"({fmt}); received an array of shape {tuple(x.shape)}"
        )
    if isinstance(x, np.ndarray):
        return _preprocess_numpy(x, fmt, mode, channel_axis)
    return _preprocess_tensor(x, fmt, mode, channel_axis)


def _channel_shape(ndim: int, channel_axis: int) -> tuple[int, ...]:
    """The shape a per-channel vector takes to broadcast against the image."""
    return tuple(3 if i == channel_axis else 1 for i in range(ndim))


def _preprocess_numpy(x: np.ndarray, fmt: str, mode: str, channel_axis: int) -> np.ndarray:
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(config.floatx())
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    shape = _channel_shape(x.ndim, channel_axis)
    if mode == "torch":
        x /= 255.0
        x -= np.reshape(np.asarray(_TORCH_MEAN, dtype=x.dtype), shape)
        x /= np.reshape(np.asarray(_TORCH_STD, dtype=x.dtype), shape)
        return x
    # caffe: a reversed view, so a float input is written over, as in Keras
    index = [slice(None)] * x.ndim
    index[channel_axis] = slice(None, None, -1)
    x = x[tuple(index)]
    x -= np.reshape(np.asarray(_CAFFE_MEAN, dtype=x.dtype), shape)
    return x


def _preprocess_tensor(x: Any, fmt: str, mode: str, channel_axis: int) -> Any:
    ndim = len(x.shape)
    shape = _channel_shape(ndim, channel_axis)
    dtype = ops.dtype_name(x)
    if "float" not in dtype:
        x = ops.cast(x, config.floatx())
        dtype = config.floatx()

    def channel_vector(values: tuple[float, ...]) -> Any:
        return ops.reshape(ops.convert_to_tensor(np.asarray(values), dtype=dtype), shape)

    if mode == "tf":
        return ops.subtract(ops.divide(x, 127.5), 1.0)
    if mode == "torch":
        x = ops.divide(x, 255.0)
        return ops.divide(ops.subtract(x, channel_vector(_TORCH_MEAN)), channel_vector(_TORCH_STD))
    x = ops.flip(x, axis=channel_axis)
    return ops.subtract(x, channel_vector(_CAFFE_MEAN))


def decode_predictions(preds: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The ``top`` most likely ImageNet classes of each row of ``preds`` (shape
    ``(samples, 1000)``), as ``(wordnet_id, name, score)`` tuples, best first.  The class
    index is Keras' ``imagenet_class_index.json``, downloaded once into the cache
    (``~/.keras/models``) by ``keras.utils.get_file``."""
    shape = tuple(getattr(preds, "shape", ()))
    if len(shape) != 2 or shape[1] != 1000:
        raise ValueError(
            "`decode_predictions` expects a batch of predictions "
            "(i.e. a 2D array of shape (samples, 1000)). "
            f"Received array with shape: {shape}"
        )
    if not isinstance(top, (int, np.integer)) or isinstance(top, bool) or top < 1:
        raise ValueError(f"decode_predictions: top must be a positive integer; received {top!r}")
    path = utils_data.get_file(
        "imagenet_class_index.json",
        CLASS_INDEX_PATH,
        cache_subdir="models",
        file_hash=CLASS_INDEX_HASH,
    )
    with open(path, encoding="utf-8") as f:
        class_index = json.load(f)
    values = np.asarray(ops.convert_to_numpy(preds))
    results = []
    for row in values:
        best = np.argsort(row, kind="stable")[-top:][::-1]
        entries = []
        for i in best:
            entry = class_index.get(str(int(i)))
            if entry is None:
                raise ValueError(
                    f"decode_predictions: the class index {path!r} has no class {int(i)}"
                )
            entries.append((str(entry[0]), str(entry[1]), row[i]))
        entries.sort(key=lambda e: e[2], reverse=True)
        results.append(entries)
    return results


def check_weights_argument(weights: Any, include_top: bool, classes: Any) -> None:
    """Keras' checks of ``weights`` and ``classes``, shared by every application."""
    if not (weights is None or weights == "imagenet" or _is_existing_path(weights)):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "'imagenet' (pre-training on ImageNet), or the path to the weights file to be "
            f"loaded.  Received: weights={weights}"
        )
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            "If using `weights='imagenet'` with `include_top=True`, `classes` should be "
            f"1000.  Received classes={classes}"
        )


def _is_existing_path(weights: Any) -> bool:
    return isinstance(weights, (str, os.PathLike)) and os.path.exists(weights)


def check_pooling(pooling: Any) -> None:
    """``pooling`` is None, ``"avg"`` or ``"max"`` (Keras silently ignores anything else;
    we refuse it by name)."""
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling should be None, 'avg' or 'max'; received pooling={pooling!r}")


def obtain_input_shape(
    input_shape: Any,
    default_size: int,
    min_size: int,
    data_format: str,
    require_flatten: bool,
    weights: Any = None,
) -> tuple:
    """The image shape (without the batch axis) the model is built for, from the user's
    ``input_shape`` (or the default), checked as Keras checks it."""
    if input_shape is not None:
        input_shape = tuple(input_shape)
    first = data_format == "channels_first"
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        channels = input_shape[0] if first else input_shape[-1]
        if channels not in (1, 3):
            warnings.warn(
                "This model usually expects 1 or 3 input channels. However, it was passed "
                f"an input_shape with {channels} input channels.",
                stacklevel=3,
            )
        size = (default_size, default_size)
        default_shape = (channels, *size) if first else (*size, channels)
    else:
        default_shape = (
            (3, default_size, default_size) if first else (default_size, default_size, 3)
        )
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and input_shape != default_shape:
            raise ValueError(
                "When setting `include_top=True` and loading `imagenet` weights, "
                f"`input_shape` should be {default_shape}.  Received: input_shape={input_shape}"
            )
        return default_shape
    if input_shape:
        if len(input_shape) != 3:
            raise ValueError("`input_shape` must be a tuple of three integers.")
        channels = input_shape[0] if first else input_shape[-1]
        if channels != 3 and weights == "imagenet":
            raise ValueError(
                f"The input must have 3 channels; Received `input_shape={input_shape}`"
            )
        spatial = input_shape[1:] if first else input_shape[:2]
        if any(s is not None and s < min_size for s in spatial):
            raise ValueError(
                f"Input size must be at least {min_size}x{min_size}; Received: "
                f"input_shape={input_shape}"
            )
    elif require_flatten:
        input_shape = default_shape
    else:
        input_shape = (3, None, None) if first else (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError(
            "If `include_top` is True, you should specify a static `input_shape`. "
            f"Received: input_shape={input_shape}"
        )
    return input_shape


def validate_activation(classifier_activation: Any, weights: Any) -> None:
    """With pretrained weights the classifier's activation may only be None or softmax."""
    if weights is None:
        return
    from .. import activations

    fn = activations.get(classifier_activation)
    if fn not in (activations.get("softmax"), activations.get(None)):
        raise ValueError(
            "Only `None` and `softmax` activations are allowed for the "
            "`classifier_activation` argument when using pretrained weights, with "
            f"`include_top=True`; Received: classifier_activation={classifier_activation}"
        )


def model_inputs(input_tensor: Any, input_shape: tuple) -> tuple[Any, Any]:
    """(the tensor the network starts from, the model's inputs).  ``input_tensor`` may be
    any symbolic tensor: the model's inputs are then the Inputs it comes from."""
    from ..engine.base_layer import Input, InputLayer, KerasTensor

    if input_tensor is None:
        x = Input(shape=input_shape)
        return x, x
    if not isinstance(input_tensor, KerasTensor):
        raise ValueError(
            "input_tensor should be a symbolic tensor (the output of keras.Input or of a "
            f"layer); received {type(input_tensor).__name__}"
        )
    sources: list = []
    seen: set[int] = set()
    stack = [input_tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        layer, node_index, _ = t._keras_history
        if isinstance(layer, InputLayer):
            sources.append(t)
            continue
        node = layer._inbound_nodes[node_index]
        stack.extend(reversed(node.input_tensors))
    return input_tensor, sources[0] if len(sources) == 1 else sources


def load_model_weights(
    model: Any, weights: Any, imagenet_file: tuple[str, str, str] | None
) -> None:
    """Load ``weights`` into ``model``: a path, or ``"imagenet"`` (Keras' published file,
    ``imagenet_file`` = (file name, URL, md5), downloaded once into ``~/.keras/models``)."""
    if weights is None:
        return
    if weights == "imagenet":
        if imagenet_file is None:
            raise ValueError(f"{model.name}: no ImageNet weights are published for this model")
        fname, origin, file_hash = imagenet_file
        path = utils_data.get_file(fname, origin, cache_subdir="models", file_hash=file_hash)
        model.load_weights(path)
    else:
        model.load_weights(os.fspath(weights))


def pool_features(x: Any, pooling: Any, avg_name: str | None, max_name: str | None) -> Any:
    """The features of a network without its classifier, pooled as ``pooling`` asks."""
    from .. import layers

    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name)(x)
    return x
