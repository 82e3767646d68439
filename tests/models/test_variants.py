"""The paper's RefineNet variants: cascades, scales, MobileNet backbones."""

import keras
import numpy as np
import pytest

from keras_refinenet.layers.scale_images import ScaleImages
from keras_refinenet.models import tiny_refinenet
from keras_refinenet.models.encoders.mobilenet import (
    LIGHT_WEIGHT_DECODER,
    mobilenet_v3_backbone,
)
from keras_refinenet.models.refinenet import RefineNet, cascade_groups

NUM_CLASSES = 3
TINY_FILTERS = (4, 8, 8, 16)
# Bottleneck blocks output 4x their filters; finest level first.
TINY_CHANNELS = tuple(4 * filters for filters in TINY_FILTERS)
TINY_DECODER = {"top_filters": 12, "decoder_filters": 8}
NO_DROPOUT = {"backbone_dropout": 0.0, "classifier_dropout": 0.0}
# The paper's Fig. 7 groupings, levels numbered from stride 32 (1).
PAPER_GROUPS = {
    4: [[1], [2], [3], [4]],
    2: [[1, 2], [3, 4]],
    1: [[1, 2, 3, 4]],
}
MOBILENET_V3_LARGE_CHANNELS = (24, 40, 112, 160)
VARIANTS = [
    (4, (1.0,)),
    (2, (1.0,)),
    (1, (1.0,)),
    (4, (1.0, 0.6)),
    (2, (1.0, 0.5)),
]


def tiny_model(num_cascades=4, input_scales=(1.0,), **kwargs):
    return tiny_refinenet(
        num_classes=NUM_CLASSES,
        encoder_filters=TINY_FILTERS,
        num_cascades=num_cascades,
        input_scales=input_scales,
        **{**TINY_DECODER, **NO_DROPOUT, **kwargs},
    )


def conv_params(kernel, cin, cout, bias=False):
    return kernel * kernel * cin * cout + (cout if bias else 0)


def expected_decoder_params(
    channels,
    num_cascades,
    num_scales,
    top_filters,
    decoder_filters,
    adaptive_units=2,
    output_units=3,
    crp_stages=4,
    projection_kernel_size=3,
    fusion_kernel_size=3,
    crp_kernel_size=3,
    rcu_kernel_size=3,
    classifier_kernel_size=3,
    num_classes=NUM_CLASSES,
):
    """Decoder parameter count from the paper's description, by hand."""

    def rcus(units, width):
        return units * (
            conv_params(rcu_kernel_size, width, width, bias=True)
            + conv_params(rcu_kernel_size, width, width)
        )

    coarse_first = list(reversed(channels))
    widths = [top_filters] + [decoder_filters] * (len(channels) - 1)
    total = num_scales * sum(
        conv_params(projection_kernel_size, c, w)
        for c, w in zip(coarse_first, widths)
    )
    previous = None
    for group in PAPER_GROUPS[num_cascades]:
        path_widths = [widths[level - 1] for level in group] * num_scales
        filters = min(path_widths)
        total += sum(rcus(adaptive_units, width) for width in path_widths)
        fused_inputs = path_widths + ([previous] if previous else [])
        if len(fused_inputs) > 1:
            total += sum(
                conv_params(fusion_kernel_size, width, filters)
                for width in fused_inputs
            )
        total += crp_stages * conv_params(crp_kernel_size, filters, filters)
        total += rcus(output_units, filters)
        previous = filters
    total += conv_params(
        classifier_kernel_size, previous, num_classes, bias=True
    )
    return total


def decoder_params(model):
    return model.count_params() - model.backbone.image_encoder.count_params()


def random_images(batch, height, width, seed=0):
    return (
        np.random.default_rng(seed)
        .uniform(0, 255, (batch, height, width, 3))
        .astype("float32")
    )


@pytest.mark.parametrize("num_cascades", sorted(PAPER_GROUPS))
def test_cascade_groups_follow_the_paper(num_cascades):
    assert cascade_groups(4, num_cascades) == PAPER_GROUPS[num_cascades]


@pytest.mark.parametrize("bad", [3, 0, 8])
def test_bad_num_cascades_raises(bad):
    with pytest.raises(ValueError, match="Received: num_cascades"):
        tiny_model(num_cascades=bad)


def test_bad_input_scales_raises():
    with pytest.raises(ValueError, match="Received: input_scales"):
        tiny_model(input_scales=(1.0, -0.5))


def test_scale_images_matches_subsampling():
    x = np.random.default_rng(1).normal(size=(2, 5, 9, 3)).astype("float32")
    # round(5 * 0.5) = 3 and round(9 * 0.5) = 5 with aligned corners
    # sample every second row and column exactly.
    y = keras.ops.convert_to_numpy(ScaleImages(0.5)(x))
    np.testing.assert_allclose(y, x[:, ::2, ::2], rtol=1e-6, atol=1e-6)
    assert ScaleImages(0.6).compute_output_shape((2, 37, 45, 3)) == (
        2,
        22,
        27,
        3,
    )


@pytest.mark.parametrize("num_cascades,input_scales", VARIANTS)
def test_variant_shapes_and_parameter_counts(num_cascades, input_scales):
    model = tiny_model(num_cascades, input_scales)
    images = random_images(1, 37, 45)
    assert model.predict(images, verbose=0).shape == (1, 37, 45, NUM_CLASSES)
    assert decoder_params(model) == expected_decoder_params(
        TINY_CHANNELS,
        num_cascades,
        len(input_scales),
        **TINY_DECODER,
    )
    blocks = [
        layer.name for layer in model.backbone.layers if "block" in layer.name
    ]
    assert blocks == [f"refinenet_block{k}" for k in range(1, num_cascades + 1)]


@pytest.mark.parametrize("num_cascades,input_scales", VARIANTS[2:4])
def test_variant_stride4_output(num_cascades, input_scales):
    model = tiny_model(num_cascades, input_scales, upsample_output=False)
    # "same" stride-2 stem and pooling: ceil(ceil(n / 2) / 2).
    out = model.predict(random_images(2, 37, 45), verbose=0)
    assert out.shape == (2, 10, 12, NUM_CLASSES)
    assert out.dtype == np.float32


def test_light_weight_mobilenet_parameter_count():
    model = RefineNet(
        mobilenet_v3_backbone("large"),
        num_classes=NUM_CLASSES,
        **LIGHT_WEIGHT_DECODER,
    )
    expected = expected_decoder_params(
        MOBILENET_V3_LARGE_CHANNELS,
        num_cascades=4,
        num_scales=1,
        top_filters=LIGHT_WEIGHT_DECODER["top_filters"],
        decoder_filters=LIGHT_WEIGHT_DECODER["decoder_filters"],
        adaptive_units=0,
        output_units=0,
        projection_kernel_size=1,
        fusion_kernel_size=1,
        crp_kernel_size=1,
    )
    assert decoder_params(model) == expected
    out = model.predict(random_images(1, 41, 50), verbose=0)
    assert out.shape == (1, 41, 50, NUM_CLASSES)


@pytest.mark.parametrize(
    "num_cascades,input_scales", [VARIANTS[1], VARIANTS[3]]
)
def test_variant_serialization_round_trip(tmp_path, num_cascades, input_scales):
    model = tiny_model(num_cascades, input_scales)
    config = model.get_config()
    backbone_config = config["backbone"]["config"]
    assert backbone_config["num_cascades"] == num_cascades
    assert backbone_config["input_scales"] == list(input_scales)
    clone = RefineNet.from_config(config)
    assert clone.backbone.get_config() == model.backbone.get_config()
    clone.set_weights(model.get_weights())
    images = random_images(1, 33, 40, seed=3)
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(
        clone.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-5
    )
    path = tmp_path / "variant.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-5
    )


def train_losses(model, steps=12, size=32):
    """Losses of Adam steps on one batch: dark left half, bright right."""
    labels = np.zeros((2, size, size), "int32")
    labels[:, :, size // 2 :] = 1
    images = random_images(2, size, size, seed=5) * 0.2
    images[labels == 1] += 200.0
    keras.Model.compile(
        model,
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    return [float(model.train_on_batch(images, labels)) for _ in range(steps)]


@pytest.mark.parametrize(
    "num_cascades,input_scales",
    [VARIANTS[0], VARIANTS[1], VARIANTS[2], VARIANTS[3]],
)
def test_variant_training_reduces_loss(num_cascades, input_scales):
    keras.utils.set_random_seed(0)
    losses = train_losses(tiny_model(num_cascades, input_scales))
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


def test_light_weight_mobilenet_training_reduces_loss():
    keras.utils.set_random_seed(0)
    model = RefineNet(
        mobilenet_v3_backbone("small"),
        num_classes=NUM_CLASSES,
        **{
            **LIGHT_WEIGHT_DECODER,
            **NO_DROPOUT,
            "top_filters": 16,
            "decoder_filters": 16,
        },
    )
    losses = train_losses(model)
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


@pytest.mark.large
def test_refinenet101_parameter_formula():
    from keras_refinenet.models.encoders import resnet_backbone

    backbone = resnet_backbone(101)
    model = RefineNet(backbone, num_classes=19)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    backbone_trainable = sum(
        int(np.prod(w.shape)) for w in backbone.trainable_weights
    )
    assert trainable == 118_047_827
    assert trainable - backbone_trainable == expected_decoder_params(
        (256, 512, 1024, 2048),
        num_cascades=4,
        num_scales=1,
        top_filters=512,
        decoder_filters=256,
        num_classes=19,
    )


def test_a_separate_image_encoder_per_scale():
    """The paper's 2-scale network: one ResNet per scale, own weights."""
    from keras_refinenet import tiny_refinenet

    shared = tiny_refinenet(input_scales=(1.2, 0.6))
    separate = tiny_refinenet(
        input_scales=(1.2, 0.6), share_image_encoder=False
    )
    encoder = separate.backbone.get_layer("scale2_image_encoder")
    assert encoder is not separate.backbone.image_encoder
    first = separate.backbone.image_encoder
    assert {id(w) for w in encoder.weights}.isdisjoint(
        {id(w) for w in first.weights}
    )
    encoder_params = first.count_params()
    assert separate.count_params() - shared.count_params() == encoder_params
    images = np.random.default_rng(0).uniform(0, 255, (1, 37, 45, 3))
    logits = separate.predict(images.astype("float32"), verbose=0)
    assert logits.shape == (1, 37, 45, 3)
    # Changing the second encoder changes the output: it is used.
    for weight in encoder.trainable_weights:
        weight.assign(np.zeros(weight.shape, weight.dtype))
    changed = separate.predict(images.astype("float32"), verbose=0)
    assert np.abs(changed - logits).max() > 1e-6
    config = separate.backbone.get_config()
    assert config["share_image_encoder"] is False
    restored = type(separate.backbone).from_config(config)
    assert len(restored.scale_image_encoders) == 1
