"""A SavedModel of the Winograd decoder against the direct Keras model."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import MAX_PIXELS, reference_outputs, small_refinenet

from keras_refinenet.export.saved_model import export_saved_model

RELATIVE_TOLERANCE = 1e-4


# About 100 CPU seconds: the SavedModel traces every Winograd layer.
@pytest.mark.large
def test_winograd_saved_model_matches_direct_model(tmp_path):
    keras.utils.set_random_seed(11)
    direct = small_refinenet()
    winograd = small_refinenet(decoder_conv="winograd")
    winograd.set_weights(direct.get_weights())
    path = export_saved_model(winograd, tmp_path, max_pixels=MAX_PIXELS)
    loaded = tf.saved_model.load(str(path))
    images = np.random.default_rng(3).integers(
        0, 256, size=(2, 40, 56, 3), dtype=np.uint8
    )
    class_ids, probabilities = reference_outputs(direct, images)
    outputs = loaded.signatures["serving_default"](images=tf.constant(images))
    exported = outputs["probabilities"].numpy()
    assert np.max(np.abs(exported - probabilities)) < RELATIVE_TOLERANCE
    assert np.mean(outputs["class_ids"].numpy() == class_ids) > 0.999
