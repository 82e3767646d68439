"""`native_resize()`: bilinear resizes as TensorFlow's ResizeBilinear op."""

import keras
import numpy as np
import pytest

from keras_refinenet.layers.resize import native_resize, resize_images

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="native_resize emits TensorFlow ops",
)

SIZES = [((5, 7), (13, 9)), ((97, 133), (24, 34)), ((3, 4), (1, 1))]


def numpy_bilinear(image, out_size, align_corners):
    """Bilinear resize of `(h, w, c)` written from the two definitions."""

    def source(in_length, out_length):
        positions = np.arange(out_length, dtype=np.float64)
        if align_corners:
            if out_length == 1:
                return np.zeros(1)
            return positions * (in_length - 1) / (out_length - 1)
        coords = (positions + 0.5) * in_length / out_length - 0.5
        return np.clip(coords, 0, in_length - 1)

    def along(array, axis, out_length):
        coords = source(array.shape[axis], out_length)
        lower = np.floor(coords).astype(int)
        upper = np.minimum(lower + 1, array.shape[axis] - 1)
        weight = coords - lower
        shape = [1] * array.ndim
        shape[axis] = -1
        weight = weight.reshape(shape)
        low = np.take(array, lower, axis=axis)
        high = np.take(array, upper, axis=axis)
        return low * (1 - weight) + high * weight

    return along(along(image, 0, out_size[0]), 1, out_size[1])


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("in_size, out_size", SIZES)
def test_native_resize_matches_numpy_on_runtime_sizes(
    in_size, out_size, align_corners
):
    import tensorflow as tf

    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, *in_size, 3)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3])])
    def resize(x):
        # Runtime target sizes: the keras 3.15 pitfall of keras.ops.image.
        height = tf.shape(x)[1] * 0 + out_size[0]
        with native_resize():
            return resize_images(
                x, (height, out_size[1]), align_corners=align_corners
            )

    graph = resize.get_concrete_function().graph
    op_types = {op.type for op in graph.get_operations()}
    assert "ResizeBilinear" in op_types
    assert "GatherV2" not in op_types
    expected = np.stack(
        [numpy_bilinear(image, out_size, align_corners) for image in images]
    )
    # TensorFlow maps coordinates in float32: ~1e-5 pixel on 100 pixels.
    np.testing.assert_allclose(resize(images).numpy(), expected, atol=1e-4)
    gathers = resize_images(images, out_size, align_corners=align_corners)
    np.testing.assert_allclose(resize(images).numpy(), gathers, atol=1e-4)


def test_native_resize_keeps_dtype_and_is_off_by_default():
    import tensorflow as tf

    images = np.ones((1, 4, 6, 2), np.float16)
    with native_resize():
        resized = resize_images(images, (8, 3))
    assert keras.backend.standardize_dtype(resized.dtype) == "float16"

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1])])
    def default(x):
        return resize_images(x, (tf.shape(x)[1] * 2, 5))

    op_types = {
        op.type for op in default.get_concrete_function().graph.get_operations()
    }
    assert "ResizeBilinear" not in op_types
    with native_resize(enabled=False):
        assert resize_images(images, (8, 3)).shape == (1, 8, 3, 2)
