"""The compiled, folded and bfloat16 forward of `predict_segmentation`."""

import keras
import numpy as np
import pytest

from keras_refinenet.inference.fast_path import (
    inference_forward,
    with_precision,
)
from keras_refinenet.inference.predict import predict_segmentation
from keras_refinenet.models import tiny_refinenet

RELATIVE_TOLERANCE = 1e-4
# bfloat16 keeps 8 significant bits: logits agree to about 1e-2.
BFLOAT16_TOLERANCE = 5e-2
MIN_ARGMAX_AGREEMENT = 0.995


def relative_error(actual, expected):
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


def layer_policies(model):
    """Policies of the backbone's layers (image encoder included) and the
    classifier; the logits cast and the upsampling are float32 always."""
    layers = [*model.backbone._flatten_layers(), model.classifier]
    return {
        layer.dtype_policy.name
        for layer in layers
        if not isinstance(layer, keras.layers.InputLayer)
    }


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return tiny_refinenet(num_classes=3)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, size=(2, 64, 80, 3)).astype("float32")


def test_bfloat16_copy_has_every_layer_in_bfloat16(model, images):
    copy = with_precision(model, "bfloat16")
    assert layer_policies(copy) == {"mixed_bfloat16"}
    assert layer_policies(model) == {"float32"}
    expected = np.asarray(model(model.preprocess(images), training=False))
    actual = np.asarray(copy(copy.preprocess(images), training=False))
    assert actual.dtype == np.float32
    assert relative_error(actual, expected) < BFLOAT16_TOLERANCE


@pytest.mark.parametrize("fold_batchnorm", [False, True])
def test_compiled_forward_matches_the_model(model, images, fold_batchnorm):
    forward = inference_forward(model, fold_batchnorm=fold_batchnorm)
    expected = np.asarray(model(model.preprocess(images), training=False))
    assert relative_error(forward(images), expected) < RELATIVE_TOLERANCE
    assert inference_forward(model, fold_batchnorm=fold_batchnorm) is forward


def test_default_precision_keeps_the_models_policy(model):
    bfloat16 = with_precision(model, "bfloat16")

    def network_policies(forward):
        return {
            layer.dtype_policy.name
            for layer in forward.network._flatten_layers(include_self=False)
        }

    kept = inference_forward(bfloat16, fold_batchnorm=False)
    assert "mixed_bfloat16" in network_policies(kept)
    converted = inference_forward(bfloat16, "float32", fold_batchnorm=False)
    assert "mixed_bfloat16" not in network_policies(converted)


def test_folded_copy_follows_weight_changes(images):
    model = tiny_refinenet(num_classes=3)
    first = inference_forward(model, fold_batchnorm=True)
    kernel = model.classifier.kernel
    kernel.assign(np.asarray(kernel) * 2.0)
    second = inference_forward(model, fold_batchnorm=True)
    assert second is not first
    expected = np.asarray(model(model.preprocess(images), training=False))
    assert relative_error(second(images), expected) < RELATIVE_TOLERANCE


def test_predict_segmentation_precisions(model, images):
    _, expected = predict_segmentation(
        model, images, return_probabilities=True, fold_batchnorm=False
    )
    _, folded = predict_segmentation(model, images, return_probabilities=True)
    assert relative_error(folded, expected) < RELATIVE_TOLERANCE
    labels = predict_segmentation(model, images, precision="bfloat16")
    assert labels.shape == (2, 64, 80)
    with pytest.raises(ValueError, match="Received: precision='float16'"):
        predict_segmentation(model, images, precision="float16")


@pytest.mark.large
def test_bfloat16_argmax_agrees_on_a_trained_demo_model():
    from keras_refinenet.data import synthetic
    from keras_refinenet.models.demo import build_demo_model

    keras.utils.set_random_seed(0)
    classes = len(synthetic.SYNTHETIC_CLASS_NAMES)
    model = build_demo_model(classes)
    train_x, train_y = synthetic.make_synthetic_arrays(256, 64, seed=1)
    model.compile(
        optimizer=keras.optimizers.AdamW(2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(
        train_x.astype("float32"), train_y, batch_size=16, epochs=6, verbose=0
    )
    test_x, test_y = synthetic.make_synthetic_arrays(32, 64, seed=2)
    float32 = predict_segmentation(model, test_x)
    bfloat16 = predict_segmentation(model, test_x, precision="bfloat16")
    assert np.mean(float32 == test_y) > 0.7  # the model is trained
    agreement = np.mean(float32 == bfloat16)
    print(f"bfloat16 argmax agreement: {agreement:.5f}")
    assert agreement >= MIN_ARGMAX_AGREEMENT
