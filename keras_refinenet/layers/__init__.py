"""RefineNet building blocks as serializable Keras layers.

Imported eagerly (Keras only, no TensorFlow on JAX or PyTorch): every layer
is registered for `keras.saving` as soon as any one is used.
"""

from keras_refinenet.layers.chained_residual_pooling import (
    ChainedResidualPooling,
)
from keras_refinenet.layers.image_normalization import ImageNormalization
from keras_refinenet.layers.multi_resolution_fusion import (
    MultiResolutionFusion,
)
from keras_refinenet.layers.refinenet_block import RefineNetBlock
from keras_refinenet.layers.residual_conv_unit import ResidualConvUnit
from keras_refinenet.layers.resize import ResizeLike, resize_images
from keras_refinenet.layers.scale_images import ScaleImages

__all__ = [
    "ChainedResidualPooling",
    "ImageNormalization",
    "MultiResolutionFusion",
    "RefineNetBlock",
    "ResidualConvUnit",
    "ResizeLike",
    "ScaleImages",
    "resize_images",
]
