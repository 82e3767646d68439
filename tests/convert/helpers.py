"""Shared pieces of the conversion tests."""

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
IMAGE_SIZES = [(64, 96), (65, 97)]
RELATIVE_TOLERANCE = 1e-4


def random_image(height, width, seed=0):
    """A 0..255 RGB batch of one image, float32, NHWC."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (1, height, width, 3)).astype("float32")


def torch_input(image):
    """The authors' normalisation (ImageNet mean/std on 0..1), NCHW."""
    normalized = (
        image.astype("float64") / 255.0 - IMAGENET_MEAN
    ) / IMAGENET_STD
    return normalized.astype("float32").transpose(0, 3, 1, 2)


def relative_error(reference, actual):
    """Largest absolute difference relative to the largest reference value."""
    reference = np.asarray(reference, "float64")
    actual = np.asarray(actual, "float64")
    assert reference.shape == actual.shape, (reference.shape, actual.shape)
    return float(np.abs(reference - actual).max() / np.abs(reference).max())


def state_dict_arrays(module):
    """A torch module's state_dict as numpy arrays (counters dropped)."""
    return {
        key: value.detach().numpy().copy()
        for key, value in module.state_dict().items()
        if not key.endswith("num_batches_tracked")
    }
