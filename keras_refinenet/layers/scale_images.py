"""`ScaleImages`: resizes images by a constant factor at any input size."""

import keras
from keras import ops

from keras_refinenet.layers.resize import resize_images, spatial_size


@keras.saving.register_keras_serializable(package="keras_refinenet")
class ScaleImages(keras.layers.Layer):
    """Bilinearly rescales images by a constant factor, at any input size.

    The output size is `round(size * scale)` per spatial axis (at least 1),
    computed from the runtime shape, so exported graphs keep any input size.

    Args:
        scale: the resize factor, e.g. `0.6`.
        align_corners: see `keras_refinenet.layers.resize.resize_images`.
        **kwargs: base layer arguments.

    Example:

    >>> import numpy as np
    >>> tuple(ScaleImages(0.5)(np.zeros((1, 10, 7, 3), "float32")).shape)
    (1, 5, 4, 3)
    """

    def __init__(self, scale, align_corners=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(scale, (int, float)) or scale <= 0:
            raise ValueError(
                f"`scale` must be a positive number. Received: scale={scale!r}"
            )
        self.scale = float(scale)
        self.align_corners = bool(align_corners)

    def _scaled(self, size):
        return ops.maximum(
            ops.cast(
                ops.floor(ops.cast(size, "float32") * self.scale + 0.5), "int32"
            ),
            1,
        )

    def call(self, images):
        height, width = spatial_size(images)
        return resize_images(
            images,
            (self._scaled(height), self._scaled(width)),
            align_corners=self.align_corners,
        )

    def compute_output_shape(self, input_shape):
        def scaled(dim):
            return None if dim is None else max(int(dim * self.scale + 0.5), 1)

        batch, height, width, channels = input_shape
        return (batch, scaled(height), scaled(width), channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"scale": self.scale, "align_corners": self.align_corners}
        )
        return config
