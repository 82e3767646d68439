import keras
from keras import ops

from keras_refinenet.layers.resize import (
    PER_AXIS,
    _check_resize_options,
    resize_images,
)
from keras_refinenet.layers.utils import (
    TORCH_CONV_INITIALIZER,
    check_positive_int,
    conv2d,
)


def _largest_spatial_shape(shapes):
    """Static `(height, width)` of the largest input, `None` where unknown."""
    heights = [shape[1] for shape in shapes]
    widths = [shape[2] for shape in shapes]
    height = None if None in heights else max(heights)
    width = None if None in widths else max(widths)
    return height, width


def resize_if_needed(
    x,
    target_size,
    align_corners,
    interpolation="bilinear",
    scale_mode=PER_AXIS,
):
    """Resizes `x` to `target_size` unless it already has that size."""
    static = tuple(x.shape[1:3])

    def resized():
        return resize_images(
            x,
            target_size,
            interpolation=interpolation,
            align_corners=align_corners,
            scale_mode=scale_mode,
        )

    if all(isinstance(dim, int) for dim in target_size):
        if static == tuple(target_size):
            return x
        return resized()
    shape = ops.shape(x)
    same_size = ops.logical_and(
        ops.equal(shape[1], target_size[0]), ops.equal(shape[2], target_size[1])
    )
    return ops.cond(same_size, lambda: x, resized)


@keras.saving.register_keras_serializable(package="keras_refinenet")
class MultiResolutionFusion(keras.layers.Layer):
    """Multi-resolution fusion from RefineNet.

    Every input goes through its own convolution (no bias) to `filters`
    channels, is resized (bilinearly by default) to the spatial size of the
    largest input (taken at run time, so any image size works), and the
    results are summed. `RefineNetBlock` skips the fusion for a single
    input path, as in the paper; called directly, this layer convolves
    every input.

    Args:
        filters: common channel count of the fused output.
        kernel_size: size of the per-input convolution kernels.
        align_corners: bilinear resizing with aligned corners (as the
            authors' PyTorch code) or half-pixel centres (as TF2).
        kernel_initializer: initializer for the convolution kernels.
        interpolation: `"bilinear"` or `"matlab_bicubic"` (MATLAB
            `imresize` bicubic, as the authors' MatConvNet `My_sum_layer`).
        scale_mode: `matlab_bicubic` only: `"per_axis"` (straight to the
            target size, the authors' CPU path) or `"uniform_crop"` (one
            factor `max(target / size)`, then a top-left crop: the
            authors' GPU path); see
            `keras_refinenet.layers.resize.resize_images`.
        **kwargs: base layer arguments.

    Example:

    >>> import numpy as np
    >>> fusion = MultiResolutionFusion(filters=8)
    >>> fine = np.zeros((1, 16, 12, 4), "float32")
    >>> coarse = np.zeros((1, 8, 6, 6), "float32")
    >>> tuple(fusion([fine, coarse]).shape)
    (1, 16, 12, 8)
    >>> matlab = MultiResolutionFusion(
    ...     filters=8, interpolation="matlab_bicubic", scale_mode="uniform_crop"
    ... )
    >>> tuple(matlab([fine, coarse]).shape)
    (1, 16, 12, 8)
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        align_corners=True,
        kernel_initializer=TORCH_CONV_INITIALIZER,
        interpolation="bilinear",
        scale_mode=PER_AXIS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("filters", filters)
        check_positive_int("kernel_size", kernel_size)
        _check_resize_options(interpolation, scale_mode)
        self.filters = filters
        self.kernel_size = kernel_size
        self.align_corners = bool(align_corners)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.interpolation = interpolation
        self.scale_mode = scale_mode
        self.convs = []

    def build(self, input_shape):
        for index, shape in enumerate(_as_shape_list(input_shape)):
            conv = conv2d(
                self.filters,
                self.kernel_size,
                use_bias=False,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name=f"input{index + 1}_conv",
            )
            conv.build(shape)
            self.convs.append(conv)
        self.built = True

    def call(self, inputs):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        target_size = _largest_spatial_shape([x.shape for x in inputs])
        if None in target_size:
            shapes = [ops.shape(x) for x in inputs]
            target_size = (
                _runtime_max([shape[1] for shape in shapes]),
                _runtime_max([shape[2] for shape in shapes]),
            )
        fused = None
        for conv, x in zip(self.convs, inputs):
            x = resize_if_needed(
                conv(x),
                target_size,
                self.align_corners,
                interpolation=self.interpolation,
                scale_mode=self.scale_mode,
            )
            fused = x if fused is None else fused + x
        return fused

    def compute_output_shape(self, input_shape):
        shapes = _as_shape_list(input_shape)
        height, width = _largest_spatial_shape(shapes)
        return (shapes[0][0], height, width, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "align_corners": self.align_corners,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "interpolation": self.interpolation,
                "scale_mode": self.scale_mode,
            }
        )
        return config


def _runtime_max(values):
    result = values[0]
    for value in values[1:]:
        result = ops.maximum(result, value)
    return result


def _as_shape_list(input_shape):
    """Normalizes one shape or a list of shapes to a list of tuples."""
    if (
        isinstance(input_shape, (list, tuple))
        and input_shape
        and isinstance(input_shape[0], (list, tuple))
    ):
        return [tuple(shape) for shape in input_shape]
    return [tuple(input_shape)]
