"""A 3x3 'same' convolution computed in the Winograd domain.

Winograd F(m x m, 3 x 3) (Lavin & Gray, 2016) computes each m x m output
tile from an (m + 2) x (m + 2) input tile with (m + 2)^2 matrix products
instead of 9 m^2 multiply-adds per channel pair: 2.25x fewer for m = 2 and
4x fewer for m = 4. On the TensorFlow backend the transforms and products
run as one XLA cluster, since the transforms are many small elementwise
operations that only pay off when fused. The layer keeps `Conv2D`'s
weights (`kernel`, `bias`), so checkpoints of direct convolutions load.
"""

import keras
import numpy as np

WINOGRAD_TILE_SIZES = (2, 4)
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
_COMPILED = {}


def _combine(matrix, terms):
    """`[sum_i matrix[a][i] * terms[i] for a]`, skipping zero products."""
    outputs = []
    for coefficients in matrix:
        total = None
        for coefficient, term in zip(coefficients, terms):
            if coefficient:
                term = term if coefficient == 1 else term * float(coefficient)
                total = term if total is None else total + term
        outputs.append(total)
    return outputs


def winograd_conv3x3(inputs, kernel, tile_size=4):
    """'same' stride-1 3x3 convolution of NHWC `inputs`, Winograd domain.

    Computes in float32 whatever the input dtype (the transforms lose
    precision in 16-bit floats) and returns the input dtype.

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
    >>> [float(v) for v in np.asarray(y)[0, 0, :3, 0]]
    [8.0, 12.0, 12.0]
    """
    # keras.ops has no XLA-cluster scoping; the transforms need one.
    import tensorflow as tf

    if tile_size not in WINOGRAD_TILE_SIZES:
        raise ValueError(
            f"`tile_size` must be one of {WINOGRAD_TILE_SIZES}. "
            f"Received: tile_size={tile_size!r}"
        )
    if tile_size not in _COMPILED:
        _COMPILED[tile_size] = tf.function(
            lambda x, k: _winograd(x, k, tile_size),
            jit_compile=True,
            reduce_retracing=True,
        )
    dtype = tf.as_dtype(getattr(inputs, "dtype", "float32"))
    outputs = _COMPILED[tile_size](
        tf.cast(inputs, "float32"), tf.cast(kernel, "float32")
    )
    return tf.cast(outputs, dtype)


def _winograd(x, kernel, tile):
    import tensorflow as tf

    alpha = tile + 2
    g = tf.constant(np.array(_G[tile], "float32"))
    u = tf.einsum("ai,ijck,bj->abck", g, kernel, g)
    channels, filters = tf.shape(kernel)[2], tf.shape(kernel)[3]
    u = tf.reshape(u, (alpha * alpha, channels, filters))
    shape = tf.shape(x)
    batch, height, width = shape[0], shape[1], shape[2]
    tiles_h = (height + tile - 1) // tile
    tiles_w = (width + tile - 1) // tile
    x = tf.pad(
        x,
        [
            [0, 0],
            [1, tiles_h * tile + 1 - height],
            [1, tiles_w * tile + 1 - width],
            [0, 0],
        ],
    )
    # d[i][j]: element (i, j) of every input tile, (batch, th, tw, C).
    d = []
    for i in range(alpha):
        strip = x[:, i : i + tiles_h * tile : tile]
        d.append(
            [strip[:, :, j : j + tiles_w * tile : tile] for j in range(alpha)]
        )
    # V = B^T d B, one transform per axis.
    half = [
        _combine(_BT[tile], [d[i][j] for i in range(alpha)])
        for j in range(alpha)
    ]
    v = [
        _combine(_BT[tile], [half[j][a] for j in range(alpha)])
        for a in range(alpha)
    ]
    v = tf.stack([v[a][b] for a in range(alpha) for b in range(alpha)])
    m = tf.matmul(tf.reshape(v, (alpha * alpha, -1, channels)), u)
    m = tf.reshape(m, (alpha, alpha, batch, tiles_h, tiles_w, filters))
    # Y = A^T M A.
    half = [
        _combine(_AT[tile], [m[a, b] for a in range(alpha)])
        for b in range(alpha)
    ]
    y = [
        _combine(_AT[tile], [half[b][p] for b in range(alpha)])
        for p in range(tile)
    ]
    y = tf.stack([tf.stack(row, axis=3) for row in y], axis=2)
    y = tf.reshape(y, (batch, tiles_h * tile, tiles_w * tile, filters))
    return y[:, :height, :width]


@keras.saving.register_keras_serializable(package="keras_refinenet")
class WinogradConv2D(keras.layers.Conv2D):
    """`Conv2D` (3x3, stride 1, 'same') computed with Winograd F(m x m, 3x3).

    Same weights and outputs as `keras.layers.Conv2D` up to float32
    round-off (about 2e-6 of the output scale for `tile_size=2`, 2e-5 for
    4); other backends than TensorFlow use the direct convolution.

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

    def __init__(self, filters, kernel_size=3, tile_size=4, **kwargs):
        kwargs.setdefault("padding", "same")
        super().__init__(filters, kernel_size, **kwargs)
        if (
            self.kernel_size != (3, 3)
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
        if tile_size not in WINOGRAD_TILE_SIZES:
            raise ValueError(
                f"`tile_size` must be one of {WINOGRAD_TILE_SIZES}. "
                f"Received: tile_size={tile_size!r}"
            )
        self.tile_size = tile_size

    def call(self, inputs):
        if keras.backend.backend() != "tensorflow":
            return super().call(inputs)
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
