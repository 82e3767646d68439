"""Moved to `keras_refinenet.models.refinenet.refinenet_presets`."""

from keras_refinenet.models.refinenet.refinenet_presets import *  # noqa: F403
from keras_refinenet.models.refinenet.refinenet_presets import (  # noqa: F401
    IMAGENET_NORMALIZATION,
    LIGHT_WEIGHT_ARCHITECTURE,
    MATCONVNET_ARCHITECTURE,
    MATCONVNET_NORMALIZATION,
    MOBILENET_NORMALIZATION,
    PRESETS,
)
