"""Keras' ``keras.applications.vgg19`` path: VGG19 lives beside VGG16."""

from __future__ import annotations

from .vgg16 import VGG19, decode_predictions, preprocess_input

__all__ = ["VGG19", "decode_predictions", "preprocess_input"]
