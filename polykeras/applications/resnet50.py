"""Keras' ``keras.applications.resnet50`` path: ResNet50 lives in ``resnet``."""

from __future__ import annotations

from .resnet import ResNet50, decode_predictions, preprocess_input

__all__ = ["ResNet50", "decode_predictions", "preprocess_input"]
