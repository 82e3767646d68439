"""RefineNet building blocks as serializable Keras layers."""

from typing import TYPE_CHECKING

from keras_refinenet.lazy_imports import lazy_exports as _lazy_exports

if TYPE_CHECKING:
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

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
