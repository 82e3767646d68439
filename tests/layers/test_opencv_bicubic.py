"""`opencv_bicubic`: OpenCV's INTER_CUBIC against a per-pixel numpy loop."""

import keras
import numpy as np
import pytest

from keras_refinenet import tiny_refinenet
from keras_refinenet.layers.resize import resize_images

OPENCV_A = -0.75


def cubic(t, a=OPENCV_A):
    t = abs(t)
    if t <= 1:
        return (a + 2) * t**3 - (a + 3) * t**2 + 1
    if t < 2:
        return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return 0.0


def resize_axis(x, out_size, axis):
    """OpenCV INTER_CUBIC along one axis, one output pixel at a time."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, 0)
    in_size = x.shape[0]
    out = np.zeros((out_size,) + x.shape[1:])
    for d in range(out_size):
        u = (d + 0.5) * in_size / out_size - 0.5
        first = int(np.floor(u)) - 1
        for tap in range(first, first + 4):
            source = min(max(tap, 0), in_size - 1)
            out[d] += cubic(u - tap) * x[source]
    return np.moveaxis(out, 0, axis)


def reference(images, size):
    return resize_axis(resize_axis(images, size[0], 1), size[1], 2)


def test_hand_computed_upsampling():
    row = np.array([0, 1, 2, 3], "float32").reshape(1, 1, 4, 1)
    got = np.asarray(resize_images(row, (1, 8), interpolation="opencv_bicubic"))
    # Output 0 sits at -0.25: taps -2..1 clamp to 0, 0, 0, 1 and only the
    # last one, weight cubic(1.25) = -27/256, sees a non-zero pixel.
    assert got[0, 0, 0, 0] == pytest.approx(-27 / 256)
    np.testing.assert_allclose(
        got[0, 0, :, 0], reference(row, (1, 8))[0, 0, :, 0]
    )


@pytest.mark.parametrize(
    "in_size, out_size",
    [
        ((7, 5), (13, 11)),
        ((13, 11), (6, 5)),
        ((16, 24), (61, 97)),
        ((1, 3), (2, 5)),
    ],
)
def test_matches_the_reference(in_size, out_size):
    images = np.random.default_rng(0).normal(size=(2, *in_size, 3))
    got = resize_images(
        images.astype("float32"), out_size, interpolation="opencv_bicubic"
    )
    np.testing.assert_allclose(
        np.asarray(got), reference(images, out_size), atol=1e-5
    )


def test_unknown_sizes_in_a_graph():
    images = keras.Input((None, None, 2))
    small = keras.layers.AveragePooling2D(2)(images)
    out = keras.layers.Lambda(
        lambda xs: resize_images(
            xs[0],
            (keras.ops.shape(xs[1])[1], keras.ops.shape(xs[1])[2]),
            interpolation="opencv_bicubic",
        )
    )([small, images])
    model = keras.Model(images, out)
    x = np.random.default_rng(1).normal(size=(1, 10, 14, 2)).astype("float32")
    pooled = x.reshape(1, 5, 2, 7, 2, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(
        model.predict(x, verbose=0), reference(pooled, (10, 14)), atol=1e-5
    )


def test_task_output_interpolation():
    model = tiny_refinenet(num_classes=3, output_interpolation="opencv_bicubic")
    stride4 = tiny_refinenet(num_classes=3, upsample_output=False)
    stride4.set_weights(model.get_weights())
    images = np.random.default_rng(2).uniform(0, 255, (1, 40, 56, 3))
    images = images.astype("float32")
    logits = stride4.predict(images, verbose=0)
    np.testing.assert_allclose(
        model.predict(images, verbose=0),
        reference(logits, (40, 56)),
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="output_interpolation='cubic'"):
        tiny_refinenet(num_classes=3, output_interpolation="cubic")
