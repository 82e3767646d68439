"""Moved to `keras_refinenet.models.encoders.mobilenet`."""

from keras_refinenet.models.encoders.mobilenet import (  # noqa: F401
    LIGHT_WEIGHT_DECODER,
    MOBILENET_V3_STAGES,
    mobilenet_v3_backbone,
)
