"""`fold_batch_normalization` against numpy and the unfolded models."""

import keras
import numpy as np
import pytest

from keras_refinenet.inference.fold import (
    count_batch_normalizations,
    fold_batch_normalization,
)
from keras_refinenet.models import tiny_refinenet

RELATIVE_TOLERANCE = 1e-4
EPSILON = 1e-3


def relative_error(actual, expected):
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


def randomize_statistics(model, rng):
    """Non-trivial BatchNorm statistics, so that folding changes weights."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(size=size))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, size=size))
            layer.gamma.assign(rng.uniform(0.5, 1.5, size=size))
            layer.beta.assign(rng.normal(size=size))


def numpy_conv1x1_batch_norm(x, kernel, gamma, beta, mean, variance):
    """`BatchNorm(conv1x1(x))` at inference, written from the definitions."""
    y = np.einsum("bhwc,cf->bhwf", x.astype("float64"), kernel[0, 0])
    return (y - mean) / np.sqrt(variance + EPSILON) * gamma + beta


def test_single_pair_matches_numpy(rng):
    inputs = keras.Input((5, 6, 4))
    x = keras.layers.Conv2D(3, 1, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(epsilon=EPSILON)(x)
    model = keras.Model(inputs, x)
    randomize_statistics(model, rng)
    folded = fold_batch_normalization(model)
    assert count_batch_normalizations(folded) == 0
    norm = model.layers[-1]
    images = rng.normal(size=(2, 5, 6, 4)).astype("float32")
    expected = numpy_conv1x1_batch_norm(
        images,
        model.layers[1].get_weights()[0],
        *[np.asarray(v) for v in (norm.gamma, norm.beta)],
        np.asarray(norm.moving_mean),
        np.asarray(norm.moving_variance),
    )
    actual = np.asarray(folded(images, training=False))
    assert relative_error(actual, expected) < RELATIVE_TOLERANCE


def test_shared_conv_output_is_not_folded(rng):
    inputs = keras.Input((5, 6, 4))
    conv = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(conv)
    model = keras.Model(inputs, keras.layers.Add()([x, conv]))
    randomize_statistics(model, rng)
    folded = fold_batch_normalization(model)
    assert count_batch_normalizations(folded) == 1
    images = rng.normal(size=(1, 5, 6, 4)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(folded(images)), np.asarray(model(images)), rtol=1e-5
    )


@pytest.mark.parametrize(
    "library,decoder_conv",
    [("keras_cv", "direct"), ("keras_hub", "direct"), ("keras_cv", "winograd")],
)
def test_tiny_refinenet_matches_unfolded(library, decoder_conv, rng):
    model = tiny_refinenet(
        num_classes=3, library=library, decoder_conv=decoder_conv
    )
    randomize_statistics(model, rng)
    folded = fold_batch_normalization(model)
    assert count_batch_normalizations(model) > 10
    assert count_batch_normalizations(folded) == 0
    images = model.preprocess(
        rng.uniform(0, 255, size=(2, 64, 96, 3)).astype("float32")
    )
    expected = np.asarray(model(images, training=False))
    actual = np.asarray(folded(images, training=False))
    assert relative_error(actual, expected) < RELATIVE_TOLERANCE


def test_zero_biases_keep_the_outputs(rng):
    from keras_refinenet.inference.fast_path import inference_tracing
    from keras_refinenet.inference.fold import inference_network

    model = tiny_refinenet(num_classes=3)
    randomize_statistics(model, rng)

    def biasless(network):
        return [
            layer
            for layer in network._flatten_layers()
            if isinstance(layer, keras.layers.Conv2D) and not layer.use_bias
        ]

    assert len(biasless(model)) > 10
    network = inference_network(model, zero_biases=True)
    assert not biasless(network)
    # The model itself keeps its layers.
    assert len(biasless(model)) > 10
    images = model.preprocess(
        rng.uniform(0, 255, size=(2, 64, 96, 3)).astype("float32")
    )
    expected = np.asarray(model(images, training=False))
    with inference_tracing():
        actual = np.asarray(network.predict_on_batch(images))
    assert relative_error(actual, expected) < RELATIVE_TOLERANCE


def test_separable_pooling_keeps_the_outputs(rng):
    from keras_refinenet.inference.fold import inference_network
    from keras_refinenet.layers import ChainedResidualPooling
    from keras_refinenet.layers.chained_residual_pooling import (
        SeparableMaxPooling2D,
    )

    model = tiny_refinenet(num_classes=3)
    network = inference_network(model, separable_pooling=True)
    crps = [
        layer
        for layer in network._flatten_layers()
        if isinstance(layer, ChainedResidualPooling)
    ]
    assert crps
    assert all(isinstance(c.pool, SeparableMaxPooling2D) for c in crps)
    originals = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, ChainedResidualPooling)
    ]
    assert all(type(c.pool) is keras.layers.MaxPooling2D for c in originals)
    images = model.preprocess(
        rng.uniform(0, 255, size=(2, 64, 96, 3)).astype("float32")
    )
    expected = np.asarray(model(images, training=False))
    actual = np.asarray(network(images, training=False))
    assert relative_error(actual, expected) < RELATIVE_TOLERANCE


def test_separable_max_pooling_is_the_square_one(rng):
    from keras_refinenet.layers.chained_residual_pooling import (
        SeparableMaxPooling2D,
    )

    x = rng.normal(size=(2, 9, 11, 3)).astype("float32")
    padded = np.pad(
        x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-np.inf
    )
    expected = np.max(
        [padded[:, i : i + 9, j : j + 11] for i in range(5) for j in range(5)],
        axis=0,
    )
    np.testing.assert_array_equal(
        np.asarray(SeparableMaxPooling2D(5)(x)), expected
    )


def test_needs_a_functional_model():
    with pytest.raises(ValueError, match="Received: model=Dense"):
        fold_batch_normalization(keras.layers.Dense(2))


def test_folding_leaves_the_model_exportable(tmp_path):
    """Folding must not leave attributes on the source model: Keras tracks
    every attribute, and SavedModel export of the model failed after a
    `predict_segmentation` (which folds) while one was left behind."""
    from keras_refinenet.export.saved_model import export_saved_model

    model = tiny_refinenet(num_classes=3)
    attributes = set(vars(model))
    fold_batch_normalization(model)
    assert set(vars(model)) == attributes
    images = np.random.default_rng(0).integers(0, 256, (1, 40, 48, 3))
    model.predict_segmentation(images.astype("uint8"))
    export_saved_model(model, tmp_path / "exported", version=1)
    assert (tmp_path / "exported" / "1" / "saved_model.pb").exists()
