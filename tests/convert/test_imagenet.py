"""ImageNet weights from keras.applications and keras-hub presets.

keras.applications is an independent implementation (convolutions with
biases, its own padding layers, Caffe preprocessing), so its features are
the reference for the converted keras-cv backbone. Sources are randomly
initialised with randomised biases and BatchNorm statistics: no download.
"""

import keras
import numpy as np
import pytest

from keras_refinenet.convert.imagenet import (
    CAFFE_NORMALIZATION,
    applications_resnet,
    imagenet_refinenet,
    keras_cv_layer_name,
    keras_hub_refinenet,
)
from keras_refinenet.models.backbones import resnet_backbone

from .helpers import RELATIVE_TOLERANCE, random_image, relative_error

STAGE_OUTPUTS = [f"conv{stage}_block{{}}_out" for stage in range(2, 6)]
RESNET50_BLOCKS = (3, 4, 6, 3)


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.2, 1.0, channels),
                    rng.uniform(-0.2, 0.2, channels),
                    rng.uniform(-0.2, 0.2, channels),
                    rng.uniform(0.5, 2.0, channels),
                ]
            )
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            bias = rng.uniform(-0.3, 0.3, layer.bias.shape)
            layer.set_weights([kernel, bias])
    return model


@pytest.fixture(scope="module")
def converted():
    keras.utils.set_random_seed(0)
    source = _randomize(applications_resnet(50, weights=None))
    model = imagenet_refinenet(
        50, num_classes=3, source=source, top_filters=8, decoder_filters=4
    )
    return source, model


def _reference_features(source, image):
    outputs = [
        source.get_layer(name.format(blocks)).output
        for name, blocks in zip(STAGE_OUTPUTS, RESNET50_BLOCKS)
    ]
    extractor = keras.Model(source.inputs, outputs)
    # keras.applications' own preprocessing: RGB -> BGR, mean subtraction.
    bgr = keras.applications.resnet.preprocess_input(image.copy())
    return [np.asarray(x) for x in extractor([bgr])]


def _converted_features(model, image):
    normalized = model.preprocessor(image)
    return [np.asarray(x) for x in model.backbone.image_encoder(normalized)]


def test_layer_names_map_to_keras_cv():
    assert keras_cv_layer_name("conv1_bn") == "conv1_bn"
    assert keras_cv_layer_name("conv4_block23_2_conv") == (
        "v2_stack_2_block23_2_conv"
    )
    backbone = resnet_backbone(50)
    source = applications_resnet(50, weights=None)
    for layer in source.layers:
        if layer.weights:
            backbone.get_layer(keras_cv_layer_name(layer.name))


def test_pyramid_features_match_keras_applications(converted):
    """65x97: keras-cv's 'same' stem padding equals the explicit padding."""
    source, model = converted
    image = random_image(65, 97)
    for expected, actual in zip(
        _reference_features(source, image), _converted_features(model, image)
    ):
        assert relative_error(expected, actual) < RELATIVE_TOLERANCE


def test_normalization_is_rgb_caffe(converted):
    _, model = converted
    assert model.image_scale == 1.0
    assert model.image_mean == [123.68, 116.779, 103.939]
    assert model.image_std == CAFFE_NORMALIZATION["image_std"]


def test_even_sizes_differ_only_by_stem_padding(converted):
    """On 64x96 keras-cv pads the stem asymmetrically ('same'): borders
    differ, so the tolerance must detect it (documented in weights.md)."""
    source, model = converted
    image = random_image(64, 96)
    expected = _reference_features(source, image)[0]
    actual = _converted_features(model, image)[0]
    assert relative_error(expected, actual) > RELATIVE_TOLERANCE


def test_depth_mismatch_is_refused(converted):
    source, _ = converted
    with pytest.raises(ValueError, match="ResNet-50"):
        imagenet_refinenet(101, num_classes=3, source=source)


def test_keras_hub_preset_directory_is_usable(tmp_path, rng):
    backbone = resnet_backbone(50, library="keras_hub")
    backbone.save_to_preset(str(tmp_path / "resnet"))
    model = keras_hub_refinenet(
        str(tmp_path / "resnet"),
        num_classes=3,
        top_filters=8,
        decoder_filters=4,
    )
    image = random_image(41, 53)
    assert model(image).shape == (1, 41, 53, 3)
    weights = backbone.get_layer("stack2_block1_2_conv").get_weights()[0]
    encoder = model.backbone.image_encoder
    loaded = encoder.get_layer("stack2_block1_2_conv").get_weights()[0]
    np.testing.assert_array_equal(weights, loaded)
    assert model.image_mean == [0.485, 0.456, 0.406]
