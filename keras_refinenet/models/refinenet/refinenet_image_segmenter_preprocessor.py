"""`RefineNetImageSegmenterPreprocessor`: the task's input pipeline."""

import keras
import keras_hub

from keras_refinenet.models.refinenet.refinenet_backbone import (
    RefineNetBackbone,
)
from keras_refinenet.models.refinenet.refinenet_image_converter import (
    RefineNetImageConverter,
)


@keras.saving.register_keras_serializable(package="keras_refinenet")
class RefineNetImageSegmenterPreprocessor(
    keras_hub.models.ImageSegmenterPreprocessor
):
    """Normalizes images for `RefineNetImageSegmenter`; masks pass through.

    Args:
        image_converter: a `RefineNetImageConverter`.
        resize_output_mask: resize masks to the converter's `image_size`.
        **kwargs: base layer arguments.

    Example:

    >>> import numpy as np
    >>> preprocessor = RefineNetImageSegmenterPreprocessor(
    ...     RefineNetImageConverter(image_scale=1.0, mean=0.0, std=255.0))
    >>> float(preprocessor(np.full((1, 4, 4, 3), 255.0))[0, 0, 0, 0])
    1.0
    """

    backbone_cls = RefineNetBackbone
    image_converter_cls = RefineNetImageConverter

    def __init__(
        self, image_converter=None, resize_output_mask=False, **kwargs
    ):
        super().__init__(
            image_converter=image_converter,
            resize_output_mask=resize_output_mask,
            **kwargs,
        )
