"""`ScaleImages`: resizes images by a constant factor at any input size."""

import math

import keras
from keras import ops

from keras_refinenet.layers.resize import (
    MATLAB_BICUBIC,
    PER_AXIS,
    _check_choice,
    _check_resize_options,
    resize_images,
    spatial_size,
)

# `round`: output `round(size * scale)`, resized to that size (MATLAB
# `imresize(x, round(size * scale))`); `ceil`: output `ceil(size * scale)`,
# MATLAB's size for `imresize(x, scale)`, whose bicubic maps coordinates by
# `scale` itself.
SIZE_ROUNDINGS = ("round", "ceil")


@keras.saving.register_keras_serializable(package="keras_refinenet")
class ScaleImages(keras.layers.Layer):
    """Rescales images by a constant factor, at any input size.

    With the defaults the output size is `round(size * scale)` per spatial
    axis (half up, at least 1), computed from the runtime shape, so
    exported graphs keep any input size, and the resize is bilinear.

    The authors' MatConvNet test code resizes a uint8 image by
    `imresize(img, round(size * 1.2))`: `ScaleImages(1.2,
    interpolation="matlab_bicubic", round_to_uint8=True)` computes exactly
    that on 0..255 pixel values.

    Args:
        scale: the resize factor, e.g. `0.6`.
        align_corners: bilinear only, see
            `keras_refinenet.layers.resize.resize_images`.
        interpolation: `"bilinear"` or `"matlab_bicubic"` (MATLAB `imresize`
            bicubic with antialiasing when shrinking).
        round_to_uint8: `matlab_bicubic` only: round to 0..255 integers
            after each axis, as MATLAB does for a uint8 image (the input
            must hold 0..255 pixel values, see `pixel_offset`).
        pixel_offset: added before the uint8 rounding and subtracted
            after it, for inputs that are pixels minus a constant: with
            images normalized as `pixels - 128` (the authors' mean),
            `pixel_offset=128` rounds and clips the pixels themselves.
        size_rounding: `"round"` (output `round(size * scale)`; bicubic maps
            each axis by `output / input`, MATLAB `imresize(x, [h w])`) or
            `"ceil"` (output `ceil(size * scale)`; bicubic maps by `scale`
            itself, MATLAB `imresize(x, scale)`).
        **kwargs: base layer arguments.

    Example:

    >>> import numpy as np
    >>> tuple(ScaleImages(0.5)(np.zeros((1, 10, 7, 3), "float32")).shape)
    (1, 5, 4, 3)
    >>> matlab = ScaleImages(
    ...     1.2, interpolation="matlab_bicubic", round_to_uint8=True
    ... )
    >>> y = matlab(np.full((1, 37, 45, 3), 200.0, "float32"))
    >>> tuple(y.shape), float(np.asarray(y).max())
    ((1, 44, 54, 3), 200.0)
    >>> centred = ScaleImages(
    ...     1.2, interpolation="matlab_bicubic", round_to_uint8=True,
    ...     pixel_offset=128,
    ... )
    >>> float(np.asarray(centred(np.full((1, 5, 5, 3), -0.4, "float32"))).max())
    0.0
    """

    def __init__(
        self,
        scale,
        align_corners=True,
        interpolation="bilinear",
        round_to_uint8=False,
        size_rounding="round",
        pixel_offset=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(scale, (int, float)) or scale <= 0:
            raise ValueError(
                f"`scale` must be a positive number. Received: scale={scale!r}"
            )
        _check_resize_options(interpolation, PER_AXIS)
        _check_choice("size_rounding", size_rounding, SIZE_ROUNDINGS)
        if round_to_uint8 and interpolation != MATLAB_BICUBIC:
            raise ValueError(
                f"`round_to_uint8` needs interpolation={MATLAB_BICUBIC!r}. "
                f"Received: interpolation={interpolation!r}"
            )
        self.scale = float(scale)
        self.align_corners = bool(align_corners)
        self.interpolation = interpolation
        self.round_to_uint8 = bool(round_to_uint8)
        self.size_rounding = size_rounding
        self.pixel_offset = float(pixel_offset)

    def _scaled(self, size):
        if isinstance(size, int):
            return self._scaled_static(size)
        # float64 so that runtime sizes match `compute_output_shape`.
        scaled = ops.cast(size, "float64") * self.scale
        if self.size_rounding == "ceil":
            scaled = ops.ceil(scaled)
        else:
            scaled = ops.floor(scaled + 0.5)
        return ops.maximum(ops.cast(scaled, "int32"), 1)

    def _scaled_static(self, size):
        scaled = size * self.scale
        if self.size_rounding == "ceil":
            return max(math.ceil(scaled), 1)
        return max(math.floor(scaled + 0.5), 1)

    def call(self, images):
        height, width = spatial_size(images)
        size = (self._scaled(height), self._scaled(width))
        if self.interpolation != MATLAB_BICUBIC:
            return resize_images(
                images,
                size,
                interpolation=self.interpolation,
                align_corners=self.align_corners,
            )
        offset = self.pixel_offset if self.round_to_uint8 else 0.0
        if offset:
            images = images + ops.cast(offset, images.dtype)
        resized = resize_images(
            images,
            size,
            interpolation=self.interpolation,
            scale=self.scale if self.size_rounding == "ceil" else None,
            round_to_uint8=self.round_to_uint8,
        )
        if offset:
            resized = resized - ops.cast(offset, resized.dtype)
        return resized

    def compute_output_shape(self, input_shape):
        def scaled(dim):
            return None if dim is None else self._scaled_static(int(dim))

        batch, height, width, channels = input_shape
        return (batch, scaled(height), scaled(width), channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "scale": self.scale,
                "align_corners": self.align_corners,
                "interpolation": self.interpolation,
                "round_to_uint8": self.round_to_uint8,
                "size_rounding": self.size_rounding,
                "pixel_offset": self.pixel_offset,
            }
        )
        return config
