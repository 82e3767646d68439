from keras_refinenet.models.backbones import pyramid_features, resnet_backbone
from keras_refinenet.models.refinenet import RefineNet

__all__ = ["RefineNet", "pyramid_features", "resnet_backbone"]
