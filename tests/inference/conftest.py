import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model():
    from keras_refinenet import tiny_refinenet

    keras.utils.set_random_seed(7)
    return tiny_refinenet(num_classes=3)


class PointwiseModel:
    """A context-free 'network': logits are an affine map of each pixel.

    Tiling, blending and flipping cannot change its per-pixel output, so any
    deviation from the untiled numpy result is a bug in the bookkeeping.
    """

    def __init__(self):
        rng = np.random.default_rng(0)
        self.kernel = rng.normal(size=(3, 4)).astype(np.float32) / 50.0
        self.bias = rng.normal(size=(4,)).astype(np.float32)
        self.calls = []

    def logits(self, images):
        return np.asarray(images, np.float32) @ self.kernel + self.bias

    def __call__(self, images, training=False):
        self.calls.append(tuple(images.shape))
        return self.logits(images)


@pytest.fixture
def pointwise_model():
    return PointwiseModel()
