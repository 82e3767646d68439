"""Feature-pyramid image encoders (backbones) for RefineNet."""

from keras_refinenet.models.encoders.matconvnet_resnet import (
    MatConvNetResNetBackbone,
    batchnorm_weights_from_moments,
    matconvnet_resnet_backbone,
    matconvnet_resnet_parameters,
    set_matconvnet_weights,
)
from keras_refinenet.models.encoders.mobilenet import mobilenet_v3_backbone
from keras_refinenet.models.encoders.pyramid import (
    PYRAMID_LEVELS,
    backbone_from_spec,
    encoder_from_spec,
    feature_pyramid_model,
    pyramid_features,
    resnet_backbone,
)

__all__ = [
    "MatConvNetResNetBackbone",
    "PYRAMID_LEVELS",
    "backbone_from_spec",
    "batchnorm_weights_from_moments",
    "encoder_from_spec",
    "feature_pyramid_model",
    "matconvnet_resnet_backbone",
    "matconvnet_resnet_parameters",
    "mobilenet_v3_backbone",
    "pyramid_features",
    "resnet_backbone",
    "set_matconvnet_weights",
]
