"""`decoder_conv="winograd"` against the direct float32 model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_refinenet.layers.winograd_conv import WinogradConv2D
from keras_refinenet.models import tiny_refinenet
from keras_refinenet.models.refinenet import RefineNet

RELATIVE_TOLERANCE = 1e-4
TINY = {"num_classes": 3, "top_filters": 8, "decoder_filters": 4}


def relative_error(actual, expected):
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


def winograd_layers(model):
    return [
        layer
        for layer in model.backbone._flatten_layers()
        if isinstance(layer, WinogradConv2D)
    ]


def decoder_3x3_convs(model):
    encoder = {id(layer) for layer in model.backbone.image_encoder.layers}
    return [
        layer
        for layer in model.backbone._flatten_layers()
        if isinstance(layer, keras.layers.Conv2D)
        and layer.kernel_size == (3, 3)
        and id(layer) not in encoder
    ]


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(1337)
    direct = tiny_refinenet(**TINY)
    winograd = tiny_refinenet(**TINY, decoder_conv="winograd")
    winograd.set_weights(direct.get_weights())
    images = rng.uniform(0, 255, size=(2, 64, 96, 3)).astype("float32")
    return direct, winograd, images


def test_every_decoder_3x3_conv_is_winograd(pair):
    direct, winograd, _ = pair
    assert not winograd_layers(direct)
    assert len(winograd_layers(winograd)) == len(decoder_3x3_convs(direct))
    assert len(winograd_layers(winograd)) > 10


def test_logits_match_direct_model(pair):
    direct, winograd, images = pair
    expected = direct.predict(images, verbose=0)
    actual = winograd.predict(images, verbose=0)
    assert relative_error(actual, expected) < RELATIVE_TOLERANCE


def test_gradients_match_direct_model(pair):
    direct, winograd, images = pair
    labels = np.random.default_rng(1).integers(0, 3, size=images.shape[:3])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    gradients = []
    for model in (direct, winograd):
        with tf.GradientTape() as tape:
            logits = model(model.preprocess(images), training=False)
            value = loss(labels, logits)
        gradients.append(tape.gradient(value, model.trainable_variables))
    for expected, actual in zip(*gradients):
        assert relative_error(actual.numpy(), expected.numpy()) < (
            RELATIVE_TOLERANCE
        )


def test_config_and_preset_round_trip(pair, tmp_path):
    direct, _, images = pair
    direct.save_to_preset(tmp_path / "tiny")
    loaded = RefineNet.from_preset(tmp_path / "tiny", decoder_conv="winograd")
    assert loaded.backbone.decoder_conv == "winograd"
    assert winograd_layers(loaded)
    expected = direct.predict(images, verbose=0)
    actual = loaded.predict(images, verbose=0)
    assert relative_error(actual, expected) < RELATIVE_TOLERANCE
    clone = RefineNet.from_config(loaded.get_config())
    assert clone.backbone.get_config()["decoder_conv"] == "winograd"
    assert len(winograd_layers(clone)) == len(winograd_layers(loaded))


def test_winograd_weights_files_load_into_direct_models(pair, tmp_path):
    direct, winograd, images = pair
    path = str(tmp_path / "winograd.weights.h5")
    winograd.save_weights(path)
    fresh = tiny_refinenet(**TINY, upsample_output=True)
    fresh.load_weights(path)
    expected = direct.predict(images, verbose=0)
    assert relative_error(fresh.predict(images, verbose=0), expected) < (
        RELATIVE_TOLERANCE
    )


def test_unknown_decoder_conv_raises():
    with pytest.raises(ValueError, match="Received: decoder_conv='fft'"):
        tiny_refinenet(**TINY, decoder_conv="fft")
