"""Moved to `keras_refinenet.models.encoders`; kept for old imports."""

from keras_refinenet.models.encoders.pyramid import (  # noqa: F401
    BACKBONE_LIBRARIES,
    MOBILENET_V3_ARCHITECTURES,
    PYRAMID_LEVELS,
    RESNET_BLOCKS,
    RESNET_FILTERS,
    RESNET_STRIDES,
    backbone_from_spec,
    encoder_from_spec,
    pyramid_features,
    resnet_backbone,
)
