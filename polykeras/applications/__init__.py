"""Keras' ``keras.applications``: VGG16/VGG19 and ResNet50/101/152, built with Keras'
layer names so that Keras' weight files (its ImageNet downloads, or any ``.weights.h5`` or
legacy ``.h5`` saved from Keras) load into them.

``keras.applications.ResNet50(include_top=False, weights="imagenet")`` downloads Keras'
published weights once into ``~/.keras/models`` (``keras.utils.get_file``, hash checked);
``weights=None`` builds the network randomly initialised; ``weights="<path>"`` loads a file.
Each family has its own ``preprocess_input`` and ``decode_predictions``
(``keras.applications.vgg16``, ``.resnet50``...).
"""

from __future__ import annotations

from . import imagenet_utils, resnet, resnet50, vgg16, vgg19
from .resnet import ResNet50, ResNet101, ResNet152
from .vgg16 import VGG16, VGG19

__all__ = [
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "VGG16",
    "VGG19",
    "imagenet_utils",
    "resnet",
    "resnet50",
    "vgg16",
    "vgg19",
]
