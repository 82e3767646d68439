"""keras-refinenet: RefineNet semantic segmentation for Keras 3."""

# Before TensorFlow: quiet start-up of the `keras-refinenet` command only.
from keras_refinenet.cli import startup as _cli_startup  # noqa: F401, I001
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
