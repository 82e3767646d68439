"""Winograd 3x3 convolutions against a numpy direct convolution."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_refinenet.layers.winograd_conv import (
    WinogradConv2D,
    winograd_conv3x3,
)

RELATIVE_TOLERANCE = 1e-4


def numpy_conv3x3(x, kernel):
    """'same' 3x3 correlation in float64, one shifted product per tap."""
    x = np.pad(x.astype("float64"), ((0, 0), (1, 1), (1, 1), (0, 0)))
    height, width = x.shape[1] - 2, x.shape[2] - 2
    out = 0.0
    for i in range(3):
        for j in range(3):
            patch = x[:, i : i + height, j : j + width]
            out = out + patch @ kernel[i, j].astype("float64")
    return out


def relative_error(actual, expected):
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


@pytest.mark.parametrize(
    "tile_size,size", [(2, (13, 17)), (4, (13, 17)), (4, (1, 3))]
)
def test_matches_direct_convolution(tile_size, size, rng):
    x = rng.normal(size=(2, *size, 24)).astype("float32")
    kernel = (rng.normal(size=(3, 3, 24, 16)) / 15).astype("float32")
    actual = np.asarray(winograd_conv3x3(x, kernel, tile_size))
    assert actual.shape == (2, *size, 16)
    assert relative_error(actual, numpy_conv3x3(x, kernel)) < (
        RELATIVE_TOLERANCE
    )


def test_hand_computed_values():
    # All-ones image and kernel: each output counts its 3x3 neighbours.
    y = np.asarray(
        winograd_conv3x3(
            np.ones((1, 3, 4, 1), "float32"), np.ones((3, 3, 1, 1), "float32")
        )
    )
    expected = [[4, 6, 6, 4], [6, 9, 9, 6], [4, 6, 6, 4]]
    np.testing.assert_allclose(y[0, :, :, 0], expected, rtol=1e-5)


def test_layer_matches_conv2d_values_and_gradients(rng):
    direct = keras.layers.Conv2D(8, 3, padding="same", activation="relu")
    winograd = WinogradConv2D(8, 3, activation="relu")
    x = tf.constant(rng.normal(size=(2, 11, 10, 6)).astype("float32"))
    direct.build(x.shape)
    winograd.build(x.shape)
    winograd.set_weights(
        [
            rng.normal(size=(3, 3, 6, 8)).astype("float32"),
            rng.normal(size=(8,)).astype("float32"),
        ]
    )
    direct.set_weights(winograd.get_weights())
    outputs = []
    for layer in (direct, winograd):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        outputs.append((y.numpy(), tape.gradient(loss, x).numpy()))
    (y_direct, g_direct), (y_wino, g_wino) = outputs
    assert relative_error(y_wino, y_direct) < RELATIVE_TOLERANCE
    assert relative_error(g_wino, g_direct) < RELATIVE_TOLERANCE


def test_config_round_trip():
    layer = WinogradConv2D(4, 3, tile_size=2, use_bias=False, name="w")
    clone = WinogradConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.tile_size == 2
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, WinogradConv2D)
    assert restored.tile_size == 2


@pytest.mark.parametrize(
    "kwargs", [{"kernel_size": 5}, {"strides": 2}, {"tile_size": 3}]
)
def test_unsupported_arguments_raise(kwargs):
    kwargs = {"kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match="Received"):
        WinogradConv2D(4, **kwargs)


BACKEND_CHECK = """
import keras
import numpy as np
from keras_refinenet.layers.winograd_conv import WinogradConv2D
rng = np.random.default_rng(0)
x = rng.normal(size=(2, 9, 14, 5)).astype("float32")
conv = WinogradConv2D(6, 3, use_bias=False)
conv.build(x.shape)
kernel = rng.normal(size=(3, 3, 5, 6)).astype("float32")
conv.set_weights([kernel])
np.save("{output}", keras.ops.convert_to_numpy(conv(x)))
np.save("{inputs}", x)
np.save("{kernel}", kernel)
"""


@pytest.mark.large
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_match_numpy(backend, tmp_path):
    import os
    import subprocess
    import sys

    paths = {
        name: str(tmp_path / f"{name}.npy")
        for name in ("output", "inputs", "kernel")
    }
    subprocess.run(
        [sys.executable, "-c", BACKEND_CHECK.format(**paths)],
        check=True,
        env={**os.environ, "KERAS_BACKEND": backend},
    )
    x, kernel = np.load(paths["inputs"]), np.load(paths["kernel"])
    actual = np.load(paths["output"])
    assert relative_error(actual, numpy_conv3x3(x, kernel)) < RELATIVE_TOLERANCE
