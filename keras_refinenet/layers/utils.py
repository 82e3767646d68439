"""Small helpers shared by the RefineNet layers."""

import contextlib
import contextvars

import keras
from keras import ops

from keras_refinenet.layers.winograd_conv import (
    WINOGRAD,
    WINOGRAD_KERNEL_SIZE,
    WinogradConv2D,
    current_decoder_conv,
)

# PyTorch's default Conv2d initialisation (kaiming_uniform, a=sqrt(5)), which
# the authors' decoder uses: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). He-normal
# makes the residual sums of a fresh decoder overflow float16.
TORCH_CONV_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_in", "distribution": "uniform"},
}


_RELU_AS_MAXIMUM = contextvars.ContextVar("relu_as_maximum", default=False)


@contextlib.contextmanager
def relu_as_maximum(enabled=True):
    """Residual units trace the ReLU of their inputs as `maximum(x, 0)`.

    The same values. For compiled inference graphs whose convolutions all
    have a bias: TensorFlow's oneDNN remapper then fuses each unit's
    `conv + bias + residual add`, but it also tries to fuse the next
    unit's input ReLU into it although the sum feeds the next residual
    add too, fails, and drops every fusion of the graph
    ("remapper failed: ... Mutation::Apply error"). It matches no
    `Maximum`.

    Args:
        enabled: `False` keeps `relu` (e.g. to compare both).

    Example:

    >>> import numpy as np
    >>> x = np.array([-1.0, 0.0, 2.0], "float32")
    >>> with relu_as_maximum():
    ...     y = residual_input_relu(x)
    >>> np.asarray(y).tolist()
    [0.0, 0.0, 2.0]
    """
    token = _RELU_AS_MAXIMUM.set(bool(enabled))
    try:
        yield
    finally:
        _RELU_AS_MAXIMUM.reset(token)


def residual_input_relu(x):
    """`relu(x)` for an input that also feeds a residual sum (traced as
    `maximum(x, 0)` inside `relu_as_maximum`)."""
    if _RELU_AS_MAXIMUM.get():
        return ops.maximum(x, ops.zeros((), dtype=x.dtype))
    return ops.relu(x)


def check_positive_int(name, value, allow_zero=False):
    """Raises a `ValueError` unless `value` is a (non-negative) integer."""
    minimum = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(
            f"`{name}` must be {kind} integer. Received: {name}={value!r}"
        )


def known_channels(layer, input_shape):
    """The channel count of `input_shape`; raises if it is unknown."""
    channels = input_shape[-1]
    if channels is None:
        raise ValueError(
            f"`{type(layer).__name__}` needs a known channel count. "
            f"Received: input_shape={input_shape}"
        )
    return channels


def conv2d(filters, kernel_size, use_bias, kernel_initializer, dtype, name):
    """A stride-1 'same' convolution, the only kind RefineNet's decoder uses.

    A `WinogradConv2D` for 3x3 kernels inside `decoder_conv_scope("winograd")`
    (`keras_refinenet.layers.winograd_conv`), else a `keras.layers.Conv2D`.
    """
    kernel = (
        (kernel_size, kernel_size)
        if isinstance(kernel_size, int)
        else tuple(kernel_size)
    )
    if current_decoder_conv() == WINOGRAD and kernel == WINOGRAD_KERNEL_SIZE:
        return WinogradConv2D(
            filters,
            kernel_size,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            dtype=dtype,
            name=name,
        )
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        dtype=dtype,
        name=name,
    )
