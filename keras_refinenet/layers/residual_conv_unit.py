import keras
from keras import ops

from keras_refinenet.layers.utils import (
    TORCH_CONV_INITIALIZER,
    check_positive_int,
    conv2d,
    known_channels,
    residual_input_relu,
)


@keras.saving.register_keras_serializable(package="keras_refinenet")
class ResidualConvUnit(keras.layers.Layer):
    """A chain of residual convolution units (RCUs) from RefineNet.

    Each unit computes `x + conv(relu(conv_bias(relu(x))))` with 3x3
    convolutions; the first convolution of a unit has a bias and the second
    has none, as in the authors' reference code. `num_blocks` units are
    applied in sequence.

    Args:
        num_blocks: number of residual units in the chain.
        kernel_size: size of the square convolution kernels.
        kernel_initializer: initializer for the convolution kernels.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> rcu = ResidualConvUnit(num_blocks=2)
    >>> tuple(rcu(np.zeros((1, 9, 7, 8), "float32")).shape)
    (1, 9, 7, 8)
    """

    def __init__(
        self,
        num_blocks=2,
        kernel_size=3,
        kernel_initializer=TORCH_CONV_INITIALIZER,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_blocks", num_blocks)
        check_positive_int("kernel_size", kernel_size)
        self.num_blocks = num_blocks
        self.kernel_size = kernel_size
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.convs = []

    def build(self, input_shape):
        filters = known_channels(self, input_shape)
        for block in range(self.num_blocks):
            for position, use_bias in enumerate((True, False)):
                conv = conv2d(
                    filters,
                    self.kernel_size,
                    use_bias=use_bias,
                    kernel_initializer=self.kernel_initializer,
                    dtype=self.dtype_policy,
                    name=f"block{block + 1}_conv{position + 1}",
                )
                conv.build(input_shape)
                self.convs.append(conv)
        self.built = True

    def call(self, inputs):
        x = inputs
        for block in range(self.num_blocks):
            residual = x
            first, second = self.convs[2 * block : 2 * block + 2]
            x = second(ops.relu(first(residual_input_relu(x))))
            x = x + residual
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_blocks": self.num_blocks,
                "kernel_size": self.kernel_size,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
