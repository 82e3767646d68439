"""RefineNet models: the keras-hub family, image encoders, presets."""

from typing import TYPE_CHECKING

from keras_refinenet.lazy_imports import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from keras_refinenet.models.encoders import (
        pyramid_features,
        resnet_backbone,
    )
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

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
