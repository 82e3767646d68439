"""A 3x3 'same' convolution computed in the Winograd domain.

Winograd F(m x m, 3 x 3) (Lavin & Gray, 2016) computes each m x m output
tile from an (m + 2) x (m + 2) input tile with (m + 2)^2 matrix products
instead of 9 m^2 multiply-adds per channel pair: 2.25x fewer for m = 2 and
4x fewer for m = 4. Everything is `keras.ops` reshapes, transposes and
matrix products (the tile transforms as products with the Kronecker
products of the transform matrices), so every backend runs it and no
compiler is needed. On TensorFlow the gradient is the direct
convolution's, so training keeps no transformed tiles. The layer keeps
`Conv2D`'s weights (`kernel`, `bias`), so checkpoints of direct
convolutions load.

`decoder_conv_scope("winograd")` makes the RefineNet layers' `conv2d`
helper build their 3x3 convolutions as `WinogradConv2D`; it is how
`RefineNetBackbone(decoder_conv="winograd")` builds its decoder.
"""

import contextlib
import threading

import keras
import numpy as np
from keras import ops

from keras_refinenet.constants import (
    DECODER_CONVS,
    DIRECT_CONV,
    WINOGRAD_CONV,
)

DIRECT = DIRECT_CONV
WINOGRAD = WINOGRAD_CONV
WINOGRAD_TILE_SIZES = (2, 4)
DEFAULT_TILE_SIZE = 4
WINOGRAD_KERNEL_SIZE = (3, 3)

_BT = {
    2: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    4: [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
}
_G = {
    2: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    4: [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
}
_AT = {
    2: [[1, 1, 1, 0], [0, 1, -1, -1]],
    4: [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, 0],
        [0, 1, 1, 4, 4, 0],
        [0, 1, -1, 8, -8, 1],
    ],
}
_TF_CONVOLUTIONS = {}
_UNIT_STRIDES = [1, 1, 1, 1]
# Neighbouring input tiles share the 2 entries a 3x3 kernel reaches past.
TILE_OVERLAP = 2
_SCOPE = threading.local()


def check_decoder_conv(decoder_conv):
    """Raises a `ValueError` unless `decoder_conv` is in `DECODER_CONVS`."""
    if decoder_conv not in DECODER_CONVS:
        raise ValueError(
            f"`decoder_conv` must be one of {DECODER_CONVS}. "
            f"Received: decoder_conv={decoder_conv!r}"
        )


@contextlib.contextmanager
def decoder_conv_scope(decoder_conv):
    """Within it, `layers.utils.conv2d` builds 3x3 convs as `decoder_conv`.

    Args:
        decoder_conv: `"direct"` (`keras.layers.Conv2D`) or `"winograd"`
            (`WinogradConv2D`, tile size 4).

    Example:

    >>> from keras_refinenet.layers.utils import conv2d
    >>> with decoder_conv_scope("winograd"):
    ...     conv = conv2d(4, 3, True, "zeros", None, "c")
    >>> isinstance(conv, WinogradConv2D), current_decoder_conv()
    (True, 'direct')
    """
    check_decoder_conv(decoder_conv)
    previous = current_decoder_conv()
    _SCOPE.decoder_conv = decoder_conv
    try:
        yield
    finally:
        _SCOPE.decoder_conv = previous


def current_decoder_conv():
    """The `decoder_conv` of the innermost `decoder_conv_scope`."""
    return getattr(_SCOPE, "decoder_conv", DIRECT)


def _check_tile_size(tile_size):
    if tile_size not in WINOGRAD_TILE_SIZES:
        raise ValueError(
            f"`tile_size` must be one of {WINOGRAD_TILE_SIZES}. "
            f"Received: tile_size={tile_size!r}"
        )


def winograd_conv3x3(inputs, kernel, tile_size=DEFAULT_TILE_SIZE):
    """'same' stride-1 3x3 convolution of NHWC `inputs`, Winograd domain.

    Computes in float32 whatever the input dtype (the transforms lose
    precision in 16-bit floats) and returns the input dtype. On
    TensorFlow the gradients are those of the direct convolution (its
    backprop kernels, which keep only the inputs for the backward pass);
    other backends differentiate the Winograd products.

    Args:
        inputs: `(batch, height, width, channels)` tensor.
        kernel: `(3, 3, channels, filters)` kernel.
        tile_size: output tile size m of F(m x m, 3 x 3): 2 or 4.

    Returns:
        The `(batch, height, width, filters)` convolution.

    Example:

    >>> import numpy as np
    >>> x = np.ones((1, 5, 6, 2), "float32")
    >>> y = winograd_conv3x3(x, np.ones((3, 3, 2, 1), "float32"))
    >>> # Exact up to float32 round-off (the transforms are not integral).
    >>> [round(float(v), 4) for v in np.asarray(y)[0, 0, :3, 0]]
    [8.0, 12.0, 12.0]
    """
    _check_tile_size(tile_size)
    dtype = keras.backend.standardize_dtype(getattr(inputs, "dtype", "float32"))
    x = ops.cast(inputs, "float32")
    kernel = ops.cast(kernel, "float32")
    if keras.backend.backend() == "tensorflow":
        outputs = _tf_convolution(tile_size)(x, kernel)
    else:
        outputs = _winograd(x, kernel, tile_size)
    return ops.cast(outputs, dtype)


def _tf_convolution(tile_size):
    """The Winograd forward with the direct convolution's gradient."""
    # keras.ops has no custom gradient on every backend nor the
    # backprop-filter kernel.
    import tensorflow as tf

    if tile_size in _TF_CONVOLUTIONS:
        return _TF_CONVOLUTIONS[tile_size]

    @tf.custom_gradient
    def convolution(x, kernel):
        def gradient(upstream):
            input_gradient = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x),
                filter=kernel,
                out_backprop=upstream,
                strides=_UNIT_STRIDES,
                padding="SAME",
            )
            kernel_gradient = tf.raw_ops.Conv2DBackpropFilter(
                input=x,
                filter_sizes=tf.shape(kernel),
                out_backprop=upstream,
                strides=_UNIT_STRIDES,
                padding="SAME",
            )
            return input_gradient, kernel_gradient

        return _winograd(x, kernel, tile_size), gradient

    _TF_CONVOLUTIONS[tile_size] = convolution
    return convolution


def _transform(matrix):
    """`kron(matrix, matrix)`: the 2-D transform of a flattened tile."""
    matrix = np.array(matrix, "float32")
    return ops.convert_to_tensor(np.kron(matrix, matrix))


def _tiles(x, tile, count, axis):
    """Overlapping windows of `tile + 2` along `axis` (`tile` apart).

    `x` holds `count * tile + tile` entries along `axis`; the result puts
    the windows at `axis` and their `tile + 2` entries at `axis + 1`.
    """
    shape = ops.shape(x)
    split = (*shape[:axis], count, tile, *shape[axis + 1 :])
    index = (slice(None),) * axis
    main = ops.reshape(x[index + (slice(0, count * tile),)], split)
    ahead = ops.reshape(x[index + (slice(tile, count * tile + tile),)], split)
    edge = ahead[index + (slice(None), slice(0, TILE_OVERLAP))]
    return ops.concatenate([main, edge], axis=axis + 1)


def transformed_kernel(kernel, tile_size=DEFAULT_TILE_SIZE):
    """`U = G g G^T` of a `(3, 3, C, F)` kernel, as numpy float64.

    The kernel of `TransformedWinogradConv2D`: every (channel, filter)
    pair's 3x3 kernel in the Winograd domain, `(alpha^2, C, F)` with
    `alpha = tile_size + 2`.

    Args:
        kernel: `(3, 3, channels, filters)` array.
        tile_size: output tile size m, 2 or 4.

    Returns:
        The `(alpha^2, channels, filters)` float64 array.

    Example:

    >>> transformed_kernel(np.ones((3, 3, 2, 5))).shape
    (36, 2, 5)
    """
    _check_tile_size(tile_size)
    kernel = np.asarray(kernel, "float64")
    if kernel.ndim != 4 or kernel.shape[:2] != WINOGRAD_KERNEL_SIZE:
        raise ValueError(
            "`kernel` must be a (3, 3, channels, filters) array. "
            f"Received: kernel.shape={kernel.shape}"
        )
    g = np.array(_G[tile_size], "float64")
    return np.einsum("ai,bj,ijcf->abcf", g, g, kernel).reshape(
        -1, *kernel.shape[2:]
    )


def _winograd(x, kernel, tile):
    alpha = tile + 2
    kernel_shape = ops.shape(kernel)
    channels, filters = kernel_shape[2], kernel_shape[3]
    # U = G g G^T for every (channel, filter) pair: (alpha^2, C, F).
    u = ops.matmul(_transform(_G[tile]), ops.reshape(kernel, (9, -1)))
    u = ops.reshape(u, (alpha * alpha, channels, filters))
    return _winograd_transformed(x, u, tile)


def _float32_transformed(inputs, u, tile):
    """`_winograd_transformed` computed in float32, in the input dtype."""
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    outputs = _winograd_transformed(ops.cast(inputs, "float32"), u, tile)
    return ops.cast(outputs, dtype)


def _winograd_transformed(x, u, tile):
    """The convolution of `x` with a kernel already in the Winograd
    domain (`u`: `(alpha^2, C, F)`)."""
    alpha = tile + 2
    channels, filters = ops.shape(u)[1], ops.shape(u)[2]
    shape = ops.shape(x)
    batch, height, width = shape[0], shape[1], shape[2]
    tiles_h = (height + tile - 1) // tile
    tiles_w = (width + tile - 1) // tile
    x = ops.pad(
        x,
        [
            [0, 0],
            [1, tiles_h * tile + tile - 1 - height],
            [1, tiles_w * tile + tile - 1 - width],
            [0, 0],
        ],
    )
    # d: (batch, tiles_h, alpha, tiles_w, alpha, C), every input tile.
    d = _tiles(_tiles(x, tile, tiles_h, 1), tile, tiles_w, 3)
    d = ops.reshape(ops.transpose(d, (2, 4, 0, 1, 3, 5)), (alpha * alpha, -1))
    # V = B^T d B, then the (alpha^2) products with U.
    v = ops.matmul(_transform(_BT[tile]), d)
    m = ops.matmul(ops.reshape(v, (alpha * alpha, -1, channels)), u)
    # Y = A^T M A, tiles back into the image.
    y = ops.matmul(_transform(_AT[tile]), ops.reshape(m, (alpha * alpha, -1)))
    y = ops.reshape(y, (tile, tile, batch, tiles_h, tiles_w, filters))
    y = ops.transpose(y, (2, 3, 0, 4, 1, 5))
    y = ops.reshape(y, (batch, tiles_h * tile, tiles_w * tile, filters))
    return y[:, :height, :width]


@keras.saving.register_keras_serializable(package="keras_refinenet")
class WinogradConv2D(keras.layers.Conv2D):
    """`Conv2D` (3x3, stride 1, 'same') computed with Winograd F(m x m, 3x3).

    Same weights and outputs as `keras.layers.Conv2D` up to float32
    round-off (about 2e-6 of the output scale for `tile_size=2`, 2e-5 for
    4), on every backend (see `winograd_conv3x3`).

    Args:
        filters: number of output channels.
        kernel_size: must be 3.
        tile_size: output tile size m, 2 or 4.
        **kwargs: `keras.layers.Conv2D` arguments (`use_bias`,
            `kernel_initializer`, `name`, `dtype`, ...); `padding` must be
            `"same"` and strides and dilation 1.

    Example:

    >>> import numpy as np
    >>> conv = WinogradConv2D(4, 3)
    >>> tuple(conv(np.zeros((1, 9, 7, 2), "float32")).shape)
    (1, 9, 7, 4)
    """

    def __init__(
        self, filters, kernel_size=3, tile_size=DEFAULT_TILE_SIZE, **kwargs
    ):
        kwargs.setdefault("padding", "same")
        super().__init__(filters, kernel_size, **kwargs)
        if (
            self.kernel_size != WINOGRAD_KERNEL_SIZE
            or self.strides != (1, 1)
            or self.dilation_rate != (1, 1)
            or self.padding != "same"
            or self.groups != 1
            or self.data_format != "channels_last"
        ):
            raise ValueError(
                "`WinogradConv2D` computes 3x3, stride-1, 'same', "
                "channels_last convolutions only. Received: "
                f"kernel_size={self.kernel_size}, strides={self.strides}, "
                f"dilation_rate={self.dilation_rate}, "
                f"padding={self.padding!r}, groups={self.groups}, "
                f"data_format={self.data_format!r}"
            )
        _check_tile_size(tile_size)
        self.tile_size = tile_size

    def transform_kernel_once(self):
        """From now on, compute with the current kernel transformed once
        (`transformed_kernel`, in float64) instead of transforming it on
        every call. For inference copies only: later kernel updates
        (training, `set_weights`) are not seen, and the gradient is then
        the Winograd products'.

        Example:

        >>> import numpy as np
        >>> conv = WinogradConv2D(4, 3)
        >>> x = np.ones((1, 9, 7, 2), "float32")
        >>> y = conv(x)
        >>> conv.transform_kernel_once()
        >>> bool(np.allclose(conv(x), y, atol=1e-5))
        True
        """
        kernel = keras.ops.convert_to_numpy(self.kernel)
        self._transformed_kernel = keras.ops.convert_to_tensor(
            transformed_kernel(kernel, self.tile_size).astype("float32")
        )

    def call(self, inputs):
        transformed = getattr(self, "_transformed_kernel", None)
        if transformed is not None:
            outputs = _float32_transformed(inputs, transformed, self.tile_size)
        else:
            outputs = winograd_conv3x3(inputs, self.kernel, self.tile_size)
        if self.use_bias:
            outputs = outputs + self.bias
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        config = super().get_config()
        config["tile_size"] = self.tile_size
        return config


@keras.saving.register_keras_serializable(package="keras_refinenet")
class TransformedWinogradConv2D(keras.layers.Layer):
    """An inference 3x3 'same' convolution with its kernel stored in the
    Winograd domain.

    `WinogradConv2D` transforms its kernel (`G g G^T`) on every call;
    this layer holds the transformed kernel (`transformed_kernel`,
    computed once in float64), so a forward pass pays the input and output
    transforms and the products alone. It computes in float32 whatever the
    input dtype. Built by `keras_refinenet.inference.fold` from trained
    convolutions (`from_conv`); its weights are not a `Conv2D`'s.

    Args:
        filters: number of output channels.
        tile_size: output tile size m, 2 or 4.
        use_bias: add a bias.
        activation: activation applied to the output.
        **kwargs: base layer arguments (`name`, `dtype`).

    Example:

    >>> import keras
    >>> import numpy as np
    >>> conv = keras.layers.Conv2D(4, 3, padding="same")
    >>> x = np.random.default_rng(0).normal(size=(1, 9, 7, 2))
    >>> y = conv(x)
    >>> fast = TransformedWinogradConv2D.from_conv(conv, x.shape)
    >>> bool(np.allclose(fast(x), y, atol=1e-5))
    True
    """

    def __init__(
        self,
        filters,
        tile_size=DEFAULT_TILE_SIZE,
        use_bias=True,
        activation=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_tile_size(tile_size)
        self.filters = filters
        self.tile_size = tile_size
        self.use_bias = use_bias
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        alpha = self.tile_size + 2
        self.kernel = self.add_weight(
            name="transformed_kernel",
            shape=(alpha * alpha, input_shape[-1], self.filters),
            initializer="zeros",
            dtype="float32",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.filters,),
                initializer="zeros",
                dtype="float32",
            )

    def call(self, inputs):
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        outputs = _winograd_transformed(
            ops.cast(inputs, "float32"), self.kernel, self.tile_size
        )
        if self.use_bias:
            outputs = outputs + self.bias
        if self.activation is not None:
            outputs = self.activation(outputs)
        return ops.cast(outputs, dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    @classmethod
    def from_conv(
        cls, conv, input_shape, kernel=None, bias=None, tile_size=None
    ):
        """The layer computing `conv` (3x3, stride 1, 'same').

        Args:
            conv: a `keras.layers.Conv2D` (or `WinogradConv2D`).
            input_shape: the shape of its inputs.
            kernel: a `(3, 3, C, F)` kernel to use instead of `conv`'s
                (e.g. with BatchNorm folded in).
            bias: a bias to use instead of `conv`'s, or `None`.
            tile_size: the tile size (default: `conv`'s, else 4).

        Returns:
            The built layer with the transformed weights.
        """
        if not is_winograd_eligible(conv):
            raise ValueError(
                "`from_conv` needs a 3x3, stride-1, 'same', channels_last "
                f"Conv2D. Received: conv={conv.name!r}"
            )
        tile_size = tile_size or getattr(conv, "tile_size", DEFAULT_TILE_SIZE)
        if kernel is None:
            kernel = keras.ops.convert_to_numpy(conv.kernel)
        if bias is None and conv.use_bias:
            bias = keras.ops.convert_to_numpy(conv.bias)
        layer = cls(
            conv.filters,
            tile_size=tile_size,
            use_bias=bias is not None,
            activation=conv.activation,
            dtype=conv.dtype_policy,
            name=conv.name,
        )
        layer.build(input_shape)
        weights = [transformed_kernel(kernel, tile_size).astype("float32")]
        if bias is not None:
            weights.append(np.asarray(bias, "float32"))
        layer.set_weights(weights)
        return layer

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "tile_size": self.tile_size,
                "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation),
            }
        )
        return config


def is_winograd_eligible(layer):
    """Whether `layer` is a convolution Winograd F(m x m, 3x3) computes:
    a `Conv2D` with a 3x3 kernel, stride 1, dilation 1, 'same' padding,
    one group and channels_last data.

    Example:

    >>> import keras
    >>> is_winograd_eligible(keras.layers.Conv2D(4, 3, padding="same"))
    True
    >>> is_winograd_eligible(keras.layers.Conv2D(4, 3, strides=2))
    False
    """
    return (
        isinstance(layer, keras.layers.Conv2D)
        and tuple(layer.kernel_size) == WINOGRAD_KERNEL_SIZE
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.padding == "same"
        and layer.groups == 1
        and layer.data_format == "channels_last"
    )


# Weights files name the layers held in a list by their class name, so a
# Winograd decoder reads and writes the files of a direct one; the
# registered name `keras_refinenet>WinogradConv2D` still deserializes it.
WinogradConv2D.__name__ = keras.layers.Conv2D.__name__
