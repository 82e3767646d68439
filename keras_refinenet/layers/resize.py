"""Bilinear resizing that works on runtime sizes and exports to SavedModel.

keras 3.15's `keras.ops.image.resize` breaks SavedModel export and `fit` when
the target size comes from a runtime shape, and has no `align_corners`
option. These helpers implement separable bilinear interpolation with
`keras.ops.take`, so they run on any backend and any (even unknown) size.
"""

import keras
from keras import ops

RESIZE_INTERPOLATIONS = ("bilinear", "nearest")


def _source_coordinates(in_size, out_size, align_corners):
    """Float source coordinate for every output position along one axis."""
    in_f = ops.cast(in_size, "float32")
    out_f = ops.cast(out_size, "float32")
    positions = ops.cast(ops.arange(out_size), "float32")
    if align_corners:
        scale = (in_f - 1.0) / ops.maximum(out_f - 1.0, 1.0)
        return positions * scale
    coords = (positions + 0.5) * (in_f / out_f) - 0.5
    return ops.clip(coords, 0.0, ops.maximum(in_f - 1.0, 0.0))


def _interpolate_axis(x, in_size, out_size, axis, align_corners, method):
    coords = _source_coordinates(in_size, out_size, align_corners)
    if method == "nearest":
        if align_corners:
            index = ops.round(coords)
        else:
            in_f = ops.cast(in_size, "float32")
            out_f = ops.cast(out_size, "float32")
            positions = ops.cast(ops.arange(out_size), "float32")
            index = ops.floor(positions * (in_f / out_f))
        index = ops.cast(
            ops.minimum(index, ops.cast(in_size - 1, "float32")), "int32"
        )
        return ops.take(x, index, axis=axis)
    lower = ops.floor(coords)
    weight = coords - lower
    lower = ops.cast(lower, "int32")
    upper = ops.minimum(lower + 1, in_size - 1)
    x_lower = ops.take(x, lower, axis=axis)
    x_upper = ops.take(x, upper, axis=axis)
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    weight = ops.cast(ops.reshape(weight, shape), x.dtype)
    return x_lower + (x_upper - x_lower) * weight


def resize_images(images, size, interpolation="bilinear", align_corners=True):
    """Resizes a `(batch, height, width, channels)` tensor to `size`.

    Args:
        images: 4D channels-last tensor.
        size: `(height, width)`; Python ints or scalar tensors taken from a
            runtime shape.
        interpolation: `"bilinear"` or `"nearest"`.
        align_corners: if `True`, the corner pixels of input and output are
            aligned (PyTorch's `align_corners=True`, TF1's
            `resize_bilinear(align_corners=True)`); if `False`, half-pixel
            centres are used (TF2's `tf.image.resize`).

    Returns:
        The resized tensor, with the dtype of `images`.

    Example:

    >>> import numpy as np
    >>> x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    >>> y = resize_images(x, (3, 3))
    >>> [float(v) for v in np.asarray(y)[0, 1, :, 0]]
    [1.0, 1.5, 2.0]
    """
    if interpolation not in RESIZE_INTERPOLATIONS:
        raise ValueError(
            f"`interpolation` must be one of {RESIZE_INTERPOLATIONS}. "
            f"Received: interpolation={interpolation!r}"
        )
    if len(images.shape) != 4:
        raise ValueError(
            "`images` must be a 4D (batch, height, width, channels) tensor. "
            f"Received: images.shape={images.shape}"
        )
    out_h, out_w = size
    static_in = images.shape[1:3]
    if (
        isinstance(out_h, int)
        and isinstance(out_w, int)
        and tuple(static_in) == (out_h, out_w)
    ):
        return images
    in_shape = ops.shape(images)
    x = _interpolate_axis(
        images, in_shape[1], out_h, 1, align_corners, interpolation
    )
    return _interpolate_axis(
        x, in_shape[2], out_w, 2, align_corners, interpolation
    )


def spatial_size(x):
    """Runtime `(height, width)` of a channels-last tensor, static if known."""
    static = x.shape[1:3]
    if all(dim is not None for dim in static):
        return tuple(int(dim) for dim in static)
    dynamic = ops.shape(x)
    return dynamic[1], dynamic[2]


@keras.saving.register_keras_serializable(package="keras_refinenet")
class ResizeLike(keras.layers.Layer):
    """Resizes its first input to the spatial size of its second input.

    Args:
        interpolation: `"bilinear"` or `"nearest"`.
        align_corners: see `resize_images`.
        **kwargs: base layer arguments.

    Example:

    >>> import numpy as np
    >>> layer = ResizeLike()
    >>> layer([np.ones((1, 2, 2, 3)), np.ones((1, 5, 7, 1))]).shape
    (1, 5, 7, 3)
    """

    def __init__(self, interpolation="bilinear", align_corners=True, **kwargs):
        super().__init__(**kwargs)
        if interpolation not in RESIZE_INTERPOLATIONS:
            raise ValueError(
                f"`interpolation` must be one of {RESIZE_INTERPOLATIONS}. "
                f"Received: interpolation={interpolation!r}"
            )
        self.interpolation = interpolation
        self.align_corners = align_corners

    def call(self, inputs):
        source, reference = inputs
        return resize_images(
            source,
            spatial_size(reference),
            interpolation=self.interpolation,
            align_corners=self.align_corners,
        )

    def compute_output_shape(self, input_shape):
        source, reference = input_shape
        return (source[0], reference[1], reference[2], source[3])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "interpolation": self.interpolation,
                "align_corners": self.align_corners,
            }
        )
        return config
