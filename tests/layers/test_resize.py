import numpy as np
import pytest
import tensorflow as tf

from keras_refinenet.layers import ResizeLike, resize_images
from tests.numpy_reference import resize_bilinear

SIZES = [(9, 13), (3, 4), (5, 7), (1, 1), (11, 2), (10, 14)]


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("size", SIZES)
def test_bilinear_matches_numpy_reference(rng, size, align_corners):
    x = rng.normal(size=(2, 5, 7, 3)).astype("float32")
    got = np.asarray(resize_images(x, size, align_corners=align_corners))
    want = resize_bilinear(x, size, align_corners)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_align_corners_hand_computed_values():
    x = np.array([0.0, 10.0, 20.0], "float32").reshape(1, 1, 3, 1)
    aligned = np.asarray(resize_images(x, (1, 5), align_corners=True))
    np.testing.assert_allclose(aligned.ravel(), [0, 5, 10, 15, 20])
    half = np.asarray(resize_images(x, (1, 6), align_corners=False))
    np.testing.assert_allclose(half.ravel(), [0, 2.5, 7.5, 12.5, 17.5, 20])


def test_nearest_keeps_label_values(rng):
    labels = rng.integers(0, 5, size=(1, 6, 8, 1)).astype("float32")
    out = np.asarray(resize_images(labels, (13, 17), interpolation="nearest"))
    assert set(np.unique(out)) <= set(np.unique(labels))
    assert out[0, 0, 0, 0] == labels[0, 0, 0, 0]
    assert out[0, -1, -1, 0] == labels[0, -1, -1, 0]


def test_runtime_size_in_traced_function(rng):
    x = rng.normal(size=(1, 4, 6, 2)).astype("float32")

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, 2]),
            tf.TensorSpec([None, None, None, 1]),
        ]
    )
    def resize_like(source, reference):
        return ResizeLike()([source, reference])

    got = resize_like(x, np.zeros((1, 7, 9, 1), "float32")).numpy()
    np.testing.assert_allclose(got, resize_bilinear(x, (7, 9)), atol=1e-5)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="Received: interpolation='bicubic'"):
        resize_images(np.zeros((1, 2, 2, 1)), (3, 3), interpolation="bicubic")
    with pytest.raises(ValueError, match="Received: images.shape"):
        resize_images(np.zeros((2, 2, 1)), (3, 3))
