"""keras-refinenet: RefineNet semantic segmentation for Keras 3."""

from keras_refinenet import layers
from keras_refinenet.models.encoders import resnet_backbone
from keras_refinenet.models.preset_io import (
    CorruptedWeightsError,
    PresetWeightsNotFoundError,
)
from keras_refinenet.models.refinenet import (
    RefineNet,
    RefineNetBackbone,
    RefineNetImageConverter,
    RefineNetImageSegmenter,
    RefineNetImageSegmenterPreprocessor,
)
from keras_refinenet.models.tiny import tiny_refinenet
from keras_refinenet.version import __version__

__all__ = [
    "CorruptedWeightsError",
    "PresetWeightsNotFoundError",
    "RefineNet",
    "RefineNetBackbone",
    "RefineNetImageConverter",
    "RefineNetImageSegmenter",
    "RefineNetImageSegmenterPreprocessor",
    "__version__",
    "layers",
    "resnet_backbone",
    "tiny_refinenet",
]
