import numpy as np
import pytest
import tensorflow as tf
from conftest import reference_outputs

from keras_refinenet.export.saved_model import export_saved_model


@pytest.mark.large
@pytest.mark.parametrize(
    "preset", ["refinenet101_cityscapes", "refinenet101_voc"]
)
def test_full_size_presets_export_and_match(preset, tmp_path):
    from keras_refinenet import RefineNet

    model = RefineNet.from_preset(preset, load_weights=False)
    path = export_saved_model(model, tmp_path)
    loaded = tf.saved_model.load(str(path))
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(1, 128, 256, 3), dtype=np.uint8)
    outputs = loaded.signatures["serving_default"](images=tf.constant(images))
    class_ids, probabilities = reference_outputs(model, images)
    np.testing.assert_allclose(
        outputs["probabilities"].numpy(), probabilities, atol=1e-4
    )
    assert np.mean(outputs["class_ids"].numpy() == class_ids) > 0.999
