import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

MAX_PIXELS = 128 * 128


def small_refinenet(num_classes=3, **kwargs):
    """The tiny RefineNet: quick to trace."""
    from keras_refinenet import tiny_refinenet

    return tiny_refinenet(num_classes=num_classes, **kwargs)


def softmax(logits):
    exponentials = np.exp(logits - logits.max(-1, keepdims=True))
    return exponentials / exponentials.sum(-1, keepdims=True)


def reference_outputs(model, images):
    """Class ids and probabilities computed with numpy from model logits."""
    inputs = model.preprocessor(images.astype(np.float32))
    logits = np.asarray(model(inputs, training=False))
    probabilities = softmax(logits.astype(np.float64))
    return probabilities.argmax(-1), probabilities


def encode(image, fmt="PNG", **options):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def model():
    keras.utils.set_random_seed(11)
    return small_refinenet()


@pytest.fixture(scope="session")
def exported(model, tmp_path_factory):
    from keras_refinenet.export.saved_model import export_saved_model

    return export_saved_model(
        model, tmp_path_factory.mktemp("model_base"), max_pixels=MAX_PIXELS
    )


@pytest.fixture(scope="session")
def loaded(exported):
    import tensorflow as tf

    return tf.saved_model.load(str(exported))


@pytest.fixture
def images():
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, size=(2, 40, 56, 3), dtype=np.uint8)
