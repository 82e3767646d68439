"""Resizing that works on runtime sizes and exports to SavedModel.

keras 3.15's `keras.ops.image.resize` breaks SavedModel export and `fit` when
the target size comes from a runtime shape, and has no `align_corners`
option. These helpers implement separable interpolation with `keras.ops`
(gathers for bilinear and nearest, small interpolation matrices for MATLAB
bicubic), so they run on any backend and any (even unknown) size.

Exports to ONNX, LiteRT and OpenVINO trace the model inside
`native_resize()`, where bilinear resizes become TensorFlow's
`ResizeBilinear` op, which the converters map to their native resize.
"""

import contextlib
import contextvars
import math

import keras
from keras import ops

from keras_refinenet.constants import MAX_PIXEL_VALUE

MATLAB_BICUBIC = "matlab_bicubic"
# OpenCV's `cv2.resize(..., interpolation=cv2.INTER_CUBIC)`: Keys a = -0.75,
# half-pixel centres, replicated borders, no antialiasing (the authors'
# PyTorch evaluation upsamples their stride-4 logits this way).
OPENCV_BICUBIC = "opencv_bicubic"
RESIZE_INTERPOLATIONS = ("bilinear", "nearest", MATLAB_BICUBIC, OPENCV_BICUBIC)
# How `matlab_bicubic` maps input to output coordinates when resizing to a
# target size: one scale per axis (`imresize(x, size)`) or one scale for
# both axes, `max(size / input_size)`, then a top-left crop to `size`
# (`imresize(x, r)` then `x(1:h, 1:w, :)`, the authors' GPU path).
PER_AXIS = "per_axis"
UNIFORM_CROP = "uniform_crop"
SCALE_MODES = (PER_AXIS, UNIFORM_CROP)

# Keys' cubic convolution kernel with a = -0.5 (MATLAB's "bicubic"), which
# is non-zero on (-2, 2).
_KEYS_A = -0.5
_OPENCV_A = -0.75
_OPENCV_TAPS = 4
_CUBIC_WIDTH = 4.0
# The coordinate maths runs in float64: in float32 the fractional offsets
# of a 2000-pixel axis lose ~1e-4 of a pixel.
_COORDINATE_DTYPE = "float64"
_NATIVE_RESIZE = contextvars.ContextVar("native_resize", default=False)


@contextlib.contextmanager
def native_resize(enabled=True):
    """Bilinear `resize_images` emits TensorFlow's `ResizeBilinear` op.

    For tracing exports with the TensorFlow backend: converters map the op
    to the format's native resize (ONNX `Resize`, TFLite
    `RESIZE_BILINEAR`), with `align_corners=True` or half-pixel centres
    as asked, instead of the gathers of the default path. Other
    interpolations, backends and integer images keep the default path.

    Args:
        enabled: `False` keeps the default path (e.g. to compare both).

    Example:

    >>> import numpy as np
    >>> x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    >>> with native_resize():
    ...     y = resize_images(x, (3, 3))
    >>> [float(v) for v in np.asarray(y)[0, 1, :, 0]]
    [1.0, 1.5, 2.0]
    """
    token = _NATIVE_RESIZE.set(bool(enabled))
    try:
        yield
    finally:
        _NATIVE_RESIZE.reset(token)


def _uses_native_resize(images, interpolation):
    if not _NATIVE_RESIZE.get() or interpolation != "bilinear":
        return False
    if keras.backend.backend() != "tensorflow":
        return False
    dtype = keras.backend.standardize_dtype(images.dtype)
    return dtype in ("float16", "bfloat16", "float32", "float64")


def _tensorflow_bilinear(images, size, align_corners):
    # tf.* on purpose: keras.ops has no op converters map to their resize.
    import tensorflow as tf

    out_size = tf.stack([tf.cast(value, tf.int32) for value in size])
    resized = tf.raw_ops.ResizeBilinear(
        images=images,
        size=out_size,
        align_corners=bool(align_corners),
        half_pixel_centers=not align_corners,
    )
    return tf.cast(resized, images.dtype)


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


def _as_float64(value):
    """`value` as float64; `ops.cast` would round a Python float to float32."""
    if _is_number(value):
        return ops.convert_to_tensor(value, dtype=_COORDINATE_DTYPE)
    return ops.cast(value, _COORDINATE_DTYPE)


def _keys_cubic(offsets, a=_KEYS_A):
    """Keys' cubic convolution kernel (MATLAB's a = -0.5) at `offsets`."""
    t = ops.abs(offsets)
    t2 = t * t
    t3 = t2 * t
    near = (a + 2.0) * t3 - (a + 3.0) * t2 + 1.0
    far = a * t3 - 5.0 * a * t2 + 8.0 * a * t - 4.0 * a
    return ops.where(
        t <= 1.0, near, ops.where(t <= 2.0, far, ops.zeros_like(t))
    )


def _matlab_axis_matrix(in_size, out_size, scale, antialias):
    """Dense `(out_size, in_size)` float64 matrix of MATLAB bicubic.

    Output pixel `x` (1-based) sits at input coordinate
    `x / scale + 0.5 * (1 - 1 / scale)`; its taps are the `ceil(width) + 2`
    pixels from `floor(u - width / 2)`, weighted by the kernel (stretched by
    `1 / scale` when shrinking with antialiasing) and normalised to sum 1;
    taps outside the image are mirrored (`1..n, n..1`, repeating the edge),
    and weights of taps that land on the same pixel add up.
    """
    static_scale = scale if _is_number(scale) else None
    scale = _as_float64(scale)
    if antialias:
        kernel_scale = ops.minimum(scale, 1.0)
    else:
        kernel_scale = ops.ones_like(scale)
    width = _CUBIC_WIDTH / kernel_scale
    if static_scale is None:
        num_taps = ops.cast(ops.ceil(width), "int32") + 2
    else:
        # A Python tap count: JAX needs static shapes under `jit`.
        static_kernel_scale = min(static_scale, 1.0) if antialias else 1.0
        num_taps = math.ceil(_CUBIC_WIDTH / static_kernel_scale) + 2
    positions = ops.cast(
        ops.arange(1, out_size + 1, dtype="int32"), _COORDINATE_DTYPE
    )
    centres = positions / scale + 0.5 * (1.0 - 1.0 / scale)
    left = ops.floor(centres - width / 2.0)
    taps = ops.expand_dims(left, 1) + ops.cast(
        ops.expand_dims(ops.arange(num_taps, dtype="int32"), 0),
        _COORDINATE_DTYPE,
    )
    weights = kernel_scale * _keys_cubic(
        kernel_scale * (ops.expand_dims(centres, 1) - taps)
    )
    weights = weights / ops.sum(weights, axis=1, keepdims=True)
    period = 2 * in_size
    wrapped = ops.mod(ops.cast(taps, "int32") - 1, period)
    source = ops.where(wrapped < in_size, wrapped, period - 1 - wrapped)
    return _dense_axis_matrix(weights, source, out_size, in_size)


def _dense_axis_matrix(weights, source, out_size, in_size):
    """Dense `(out_size, in_size)` matrix from per-row tap weights.

    `weights` and `source` are `(out_size, taps)`: the weight of each tap
    and the input pixel it reads. Taps landing on the same pixel add up
    (`scatter` sums duplicates), as mirrored or clamped borders need.
    """
    rows = ops.broadcast_to(
        ops.expand_dims(ops.arange(out_size, dtype="int32"), 1),
        ops.shape(source),
    )
    indices = ops.reshape(ops.stack([rows, source], axis=-1), (-1, 2))
    return ops.scatter(
        indices, ops.reshape(weights, (-1,)), (out_size, in_size)
    )


def _opencv_axis_matrix(in_size, out_size):
    """Dense `(out_size, in_size)` matrix of OpenCV's `INTER_CUBIC`.

    Output pixel `d` (0-based) sits at `(d + 0.5) * in / out - 0.5`; its
    four taps from `floor(u) - 1` take Keys' kernel with a = -0.75 and
    clamp to the image (replicated border).
    """
    ratio = _as_float64(in_size) / _as_float64(out_size)
    positions = ops.cast(ops.arange(out_size, dtype="int32"), _COORDINATE_DTYPE)
    centres = (positions + 0.5) * ratio - 0.5
    first = ops.floor(centres) - 1.0
    taps = ops.expand_dims(first, 1) + ops.cast(
        ops.expand_dims(ops.arange(_OPENCV_TAPS, dtype="int32"), 0),
        _COORDINATE_DTYPE,
    )
    weights = _keys_cubic(ops.expand_dims(centres, 1) - taps, a=_OPENCV_A)
    source = ops.clip(ops.cast(taps, "int32"), 0, in_size - 1)
    return _dense_axis_matrix(weights, source, out_size, in_size)


def _opencv_bicubic(images, size):
    dtype = keras.backend.standardize_dtype(images.dtype)
    if not dtype.startswith(("float", "bfloat")):
        images = ops.cast(images, "float32")
    in_h, in_w = spatial_size(images)
    x = _apply_axis_matrix(images, _opencv_axis_matrix(in_h, size[0]), 1)
    return _apply_axis_matrix(x, _opencv_axis_matrix(in_w, size[1]), 2)


def _apply_axis_matrix(x, matrix, axis):
    matrix = ops.cast(matrix, x.dtype)
    if axis == 1:
        return ops.einsum("oh,bhwc->bowc", matrix, x)
    return ops.einsum("ow,bhwc->bhoc", matrix, x)


def _round_to_uint8_range(x):
    """MATLAB's conversion to uint8: round half up (x >= 0), saturate."""
    return ops.clip(ops.floor(x + 0.5), 0.0, float(MAX_PIXEL_VALUE))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ratio(numerator, denominator):
    if _is_number(numerator) and _is_number(denominator):
        return numerator / denominator
    return _as_float64(numerator) / _as_float64(denominator)


def _larger(first, second):
    if _is_number(first) and _is_number(second):
        return max(first, second)
    return ops.maximum(_as_float64(first), _as_float64(second))


def _scaled_size_ceil(size, scale):
    """`ceil(scale * size)`, MATLAB's output size for a scale factor."""
    if _is_number(size) and _is_number(scale):
        return max(math.ceil(size * scale), 1)
    scaled = ops.ceil(_as_float64(size) * _as_float64(scale))
    return ops.maximum(ops.cast(scaled, "int32"), 1)


def _scale_pair(scale):
    if isinstance(scale, (list, tuple)):
        if len(scale) != 2:
            raise ValueError(
                "`scale` must be one factor or a (height, width) pair. "
                f"Received: scale={scale!r}"
            )
        pair = tuple(scale)
    else:
        pair = (scale, scale)
    for factor in pair:
        if _is_number(factor) and factor <= 0:
            raise ValueError(
                f"`scale` must be positive. Received: scale={scale!r}"
            )
    return pair


def _matlab_bicubic(images, size, scale, scale_mode, antialias, round_to_uint8):
    dtype = keras.backend.standardize_dtype(images.dtype)
    is_float = dtype.startswith(("float", "bfloat"))
    if round_to_uint8 is None:
        round_to_uint8 = dtype == "uint8"
    # Rounded passes run in float64 so that only exact .5 ties (which MATLAB
    # itself resolves by double round-off) can round differently; the
    # 0..255 integers they produce are exact in any float dtype.
    if round_to_uint8:
        compute_dtype = "float64"
    elif is_float:
        compute_dtype = dtype
    else:
        compute_dtype = "float32"
    if is_float or (dtype == "uint8" and round_to_uint8):
        result_dtype = dtype
    else:
        result_dtype = "float32"
    x = ops.cast(images, compute_dtype)

    in_h, in_w = spatial_size(x)
    if scale is not None:
        scale_h, scale_w = _scale_pair(scale)
        if size is None:
            size = (
                _scaled_size_ceil(in_h, scale_h),
                _scaled_size_ceil(in_w, scale_w),
            )
    out_h, out_w = size
    if scale is None:
        scale_h, scale_w = _ratio(out_h, in_h), _ratio(out_w, in_w)
        if scale_mode == UNIFORM_CROP:
            scale_h = scale_w = _larger(scale_h, scale_w)
    row_matrix = _matlab_axis_matrix(in_h, out_h, scale_h, antialias)
    col_matrix = _matlab_axis_matrix(in_w, out_w, scale_w, antialias)

    def one_pass(y, matrix, axis):
        y = _apply_axis_matrix(y, matrix, axis)
        return _round_to_uint8_range(y) if round_to_uint8 else y

    def rows_first():
        return one_pass(one_pass(x, row_matrix, 1), col_matrix, 2)

    def columns_first():
        return one_pass(one_pass(x, col_matrix, 2), row_matrix, 1)

    # The passes commute up to round-off unless each one rounds; then the
    # axis with the smaller scale goes first, ties rows first (MATLAB's
    # stable `sort(scale)`).
    if not round_to_uint8:
        result = rows_first()
    elif _is_number(scale_h) and _is_number(scale_w):
        result = rows_first() if scale_h <= scale_w else columns_first()
    else:
        result = ops.cond(
            ops.less_equal(_as_float64(scale_h), _as_float64(scale_w)),
            rows_first,
            columns_first,
        )
    return ops.cast(result, result_dtype)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {choices}. Received: {name}={value!r}"
        )


def _check_resize_options(interpolation, scale_mode):
    """Validates a layer's `interpolation` and `scale_mode` arguments."""
    _check_choice("interpolation", interpolation, RESIZE_INTERPOLATIONS)
    _check_choice("scale_mode", scale_mode, SCALE_MODES)
    if scale_mode != PER_AXIS and interpolation != MATLAB_BICUBIC:
        raise ValueError(
            f"`scale_mode={scale_mode!r}` needs "
            f"interpolation={MATLAB_BICUBIC!r}. "
            f"Received: interpolation={interpolation!r}"
        )


def resize_images(
    images,
    size=None,
    interpolation="bilinear",
    align_corners=True,
    *,
    scale=None,
    scale_mode=PER_AXIS,
    antialias=True,
    round_to_uint8=None,
):
    """Resizes a `(batch, height, width, channels)` tensor to `size`.

    `interpolation="matlab_bicubic"` computes MATLAB's `imresize` with its
    default bicubic method: Keys' cubic kernel (a = -0.5), output pixel `x`
    (1-based) taken at input coordinate `x / scale + 0.5 * (1 - 1 / scale)`,
    mirrored borders, weights normalised per output pixel, the kernel
    stretched by `1 / scale` when shrinking (MATLAB's default
    antialiasing), the two axes resized one after the other.

    Args:
        images: 4D channels-last tensor.
        size: `(height, width)`; Python ints or scalar tensors taken from a
            runtime shape. May be omitted with `scale` (`matlab_bicubic`).
        interpolation: `"bilinear"`, `"nearest"`, `"matlab_bicubic"` or
            `"opencv_bicubic"` (`cv2.resize` with `INTER_CUBIC`: Keys
            a = -0.75, half-pixel centres, replicated border, no
            antialiasing).
        align_corners: bilinear and nearest only. If `True`, the corner
            pixels of input and output are aligned (PyTorch's
            `align_corners=True`, TF1's
            `resize_bilinear(align_corners=True)`); if `False`, half-pixel
            centres are used (TF2's `tf.image.resize`).
        scale: `matlab_bicubic` only: MATLAB's `imresize(images, scale)`,
            the factor used for the coordinate mapping (one number or a
            `(height, width)` pair; numbers or scalar tensors). Without
            `size` the output is `ceil(scale * input_size)` (MATLAB's
            size); with `size` the output keeps the first `size` rows and
            columns, e.g. a top-left crop.
        scale_mode: `matlab_bicubic` with `size` and no `scale`:
            `"per_axis"` maps each axis by `size / input_size`
            (`imresize(images, size)`); `"uniform_crop"` uses one factor,
            `max(size / input_size)`, for both axes and crops the top-left
            `size` (`imresize(images, r)` then `x(1:h, 1:w, :)`, the
            authors' GPU path in `my_resize.m`).
        antialias: `matlab_bicubic` only: stretch the kernel when shrinking
            (MATLAB's default `Antialiasing=true`).
        round_to_uint8: `matlab_bicubic` only: round half up and clip to
            0..255 after each axis, smaller scale first, as MATLAB does for
            a uint8 image. `None` rounds exactly when `images` is uint8.

    Returns:
        The resized tensor, with the dtype of `images`; `matlab_bicubic`
        returns float32 for integer images, except uint8 images that are
        rounded, which stay uint8.

    Example:

    >>> import numpy as np
    >>> x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    >>> y = resize_images(x, (3, 3))
    >>> [float(v) for v in np.asarray(y)[0, 1, :, 0]]
    [1.0, 1.5, 2.0]
    >>> row = np.array([1, 2, 3, 4], "float32").reshape(1, 1, 4, 1)
    >>> y = resize_images(row, (1, 8), interpolation="matlab_bicubic")
    >>> [round(float(v), 6) for v in np.asarray(y).ravel()[:3]]
    [0.90625, 1.179688, 1.726562]
    >>> y = resize_images(row, scale=1.3, interpolation="matlab_bicubic")
    >>> tuple(y.shape)
    (1, 2, 6, 1)
    """
    _check_choice("interpolation", interpolation, RESIZE_INTERPOLATIONS)
    _check_choice("scale_mode", scale_mode, SCALE_MODES)
    if len(images.shape) != 4:
        raise ValueError(
            "`images` must be a 4D (batch, height, width, channels) tensor. "
            f"Received: images.shape={images.shape}"
        )
    if interpolation != MATLAB_BICUBIC:
        for name, value, unused in (
            ("scale", scale, scale is None),
            ("scale_mode", scale_mode, scale_mode == PER_AXIS),
            ("round_to_uint8", round_to_uint8, not round_to_uint8),
        ):
            if not unused:
                raise ValueError(
                    f"`{name}` needs interpolation={MATLAB_BICUBIC!r}. "
                    f"Received: {name}={value!r}, "
                    f"interpolation={interpolation!r}"
                )
    if size is None and scale is None:
        raise ValueError(
            "`resize_images` needs `size` or `scale`. "
            f"Received: size={size!r}, scale={scale!r}"
        )
    if scale is not None and scale_mode != PER_AXIS:
        raise ValueError(
            "`scale_mode` chooses the scale for a target `size`; it cannot "
            f"be combined with `scale`. Received: scale={scale!r}, "
            f"scale_mode={scale_mode!r}"
        )
    if size is not None:
        out_h, out_w = size
        static_in = images.shape[1:3]
        if (
            scale is None
            and isinstance(out_h, int)
            and isinstance(out_w, int)
            and tuple(static_in) == (out_h, out_w)
        ):
            return images
    if interpolation == MATLAB_BICUBIC:
        return _matlab_bicubic(
            images, size, scale, scale_mode, antialias, round_to_uint8
        )
    if interpolation == OPENCV_BICUBIC:
        return _opencv_bicubic(images, size)
    if _uses_native_resize(images, interpolation):
        return _tensorflow_bilinear(images, (out_h, out_w), align_corners)
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
        interpolation: `"bilinear"`, `"nearest"` or `"matlab_bicubic"`
            (MATLAB `imresize` bicubic, see `resize_images`).
        align_corners: bilinear and nearest only, see `resize_images`.
        scale_mode: `matlab_bicubic` only: `"per_axis"` (MATLAB
            `imresize(x, size)`) or `"uniform_crop"` (one factor
            `max(size / input_size)`, then a top-left crop: the authors'
            GPU `my_resize.m`), see `resize_images`.
        **kwargs: base layer arguments.

    Example:

    >>> import numpy as np
    >>> layer = ResizeLike()
    >>> tuple(layer([np.ones((1, 2, 2, 3)), np.ones((1, 5, 7, 1))]).shape)
    (1, 5, 7, 3)
    >>> bicubic = ResizeLike("matlab_bicubic", scale_mode="uniform_crop")
    >>> tuple(bicubic([np.ones((1, 2, 2, 3)), np.ones((1, 5, 7, 1))]).shape)
    (1, 5, 7, 3)
    """

    def __init__(
        self,
        interpolation="bilinear",
        align_corners=True,
        scale_mode=PER_AXIS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_resize_options(interpolation, scale_mode)
        self.interpolation = interpolation
        self.align_corners = align_corners
        self.scale_mode = scale_mode

    def call(self, inputs):
        source, reference = inputs
        return resize_images(
            source,
            spatial_size(reference),
            interpolation=self.interpolation,
            align_corners=self.align_corners,
            scale_mode=self.scale_mode,
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
                "scale_mode": self.scale_mode,
            }
        )
        return config
