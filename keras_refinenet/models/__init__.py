"""RefineNet models: the keras-hub family, image encoders, presets."""

from keras_refinenet.models.encoders import pyramid_features, resnet_backbone
from keras_refinenet.models.refinenet import (
    RefineNet,
    RefineNetBackbone,
    RefineNetImageConverter,
    RefineNetImageSegmenter,
    RefineNetImageSegmenterPreprocessor,
)
from keras_refinenet.models.tiny import tiny_refinenet

__all__ = [
    "RefineNet",
    "RefineNetBackbone",
    "RefineNetImageConverter",
    "RefineNetImageSegmenter",
    "RefineNetImageSegmenterPreprocessor",
    "pyramid_features",
    "resnet_backbone",
    "tiny_refinenet",
]
