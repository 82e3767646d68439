"""The MatConvNet-layout ResNet against references written from the facts.

The parameter names, shapes and the forward pass below are written from
MatConvNet's `imagenet-resnet-*-dag` layout (Caffe names, stride on the
1x1 `branch2a`/`branch1` convolutions, `fix_padding_resnet`'s symmetric
padding, BatchNorm from `[mean, sigma]` moments), not from the module's
own tables.
"""

import keras
import numpy as np
import pytest

from keras_refinenet.models.encoders.matconvnet_resnet import (
    MatConvNetResNetBackbone,
    batchnorm_weights_from_moments,
    matconvnet_resnet_backbone,
    matconvnet_resnet_parameters,
    set_matconvnet_weights,
    stage_block_names,
)
from tests.numpy_reference import (
    batchnorm_from_moments,
    conv2d_padded,
    max_pool_padded,
    relu,
)

LEVELS = ("P2", "P3", "P4", "P5")
# Stage 2 named with letters (2a, 2b), stage 3 numbered (3a, 3b1..3b3).
TINY = {
    "stackwise_num_blocks": (2, 4, 1, 1),
    "stackwise_num_filters": (2, 3, 2, 3),
    "input_conv_filters": 4,
    "block_naming": "numbered",
}
TINY_BLOCKS = {
    2: ["2a", "2b"],
    3: ["3a", "3b1", "3b2", "3b3"],
    4: ["4a"],
    5: ["5a"],
}
# Trainable parameters of torchvision's ResNets without `fc` (same
# convolutions, no biases, BatchNorm gamma and beta): 44,549,160 and
# 60,192,808 minus fc's 2048 * 1000 + 1000.
TORCHVISION_TRAINABLE = {101: 42_500_160, 152: 58_143_808}
RESNET_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def _pyramid_model(backbone):
    return keras.Model(backbone.input, backbone.pyramid_outputs)


def _random_matconvnet_parameters(rng, blocks, widths, stem, conv1_bias):
    """MATLAB-named random parameters; vectors stored C x 1 as in MATLAB."""
    params = {}

    def conv(name, size, in_channels, out_channels, bias=False):
        scale = 1.0 / np.sqrt(size * size * in_channels)
        params[f"{name}_filter"] = rng.normal(
            0.0, scale, (size, size, in_channels, out_channels)
        ).astype("float32")
        if bias:
            params[f"{name}_bias"] = rng.normal(
                0.0, 0.1, (out_channels, 1)
            ).astype("float32")

    def batchnorm(name, channels):
        params[f"{name}_mult"] = rng.uniform(0.5, 1.5, (channels, 1))
        params[f"{name}_bias"] = rng.normal(0.0, 0.2, (channels, 1))
        params[f"{name}_moments"] = np.stack(
            [rng.normal(0.0, 0.3, channels), rng.uniform(0.5, 2.0, channels)],
            axis=1,
        )

    conv("conv1", 7, 3, stem, bias=conv1_bias)
    batchnorm("bn_conv1", stem)
    in_channels = stem
    for stage, width in zip(blocks, widths):
        for index, block in enumerate(blocks[stage]):
            if index == 0:
                conv(f"res{block}_branch1", 1, in_channels, 4 * width)
                batchnorm(f"bn{block}_branch1", 4 * width)
            conv(f"res{block}_branch2a", 1, in_channels, width)
            batchnorm(f"bn{block}_branch2a", width)
            conv(f"res{block}_branch2b", 3, width, width)
            batchnorm(f"bn{block}_branch2b", width)
            conv(f"res{block}_branch2c", 1, width, 4 * width)
            batchnorm(f"bn{block}_branch2c", 4 * width)
            in_channels = 4 * width
    return params


def _matconvnet_forward(image, params, blocks):
    """The MatConvNet ResNet after fix_padding_resnet, from its layout."""

    def conv_bn(x, name, stride, pad):
        x = conv2d_padded(
            x,
            params[f"res{name}_filter"],
            stride=stride,
            pad=pad,
        )
        return batchnorm_from_moments(
            x,
            params[f"bn{name}_mult"],
            params[f"bn{name}_bias"],
            params[f"bn{name}_moments"],
        )

    x = conv2d_padded(
        image, params["conv1_filter"], params.get("conv1_bias"), 2, 3
    )
    x = relu(
        batchnorm_from_moments(
            x,
            params["bn_conv1_mult"],
            params["bn_conv1_bias"],
            params["bn_conv1_moments"],
        )
    )
    x = max_pool_padded(x, 3, 2, 1)
    outputs = {}
    for stage in blocks:
        for index, block in enumerate(blocks[stage]):
            stride = 2 if index == 0 and stage > 2 else 1
            shortcut = x
            if index == 0:
                shortcut = conv_bn(x, f"{block}_branch1", stride, 0)
            y = relu(conv_bn(x, f"{block}_branch2a", stride, 0))
            y = relu(conv_bn(y, f"{block}_branch2b", 1, 1))
            y = conv_bn(y, f"{block}_branch2c", 1, 0)
            x = relu(shortcut + y)
        outputs[f"P{stage}"] = x
    return outputs


def _matconvnet_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def _expected_pyramid_sizes(height, width):
    sizes = []
    h = _matconvnet_size(height, 7, 2, 3)
    w = _matconvnet_size(width, 7, 2, 3)
    h, w = _matconvnet_size(h, 3, 2, 1), _matconvnet_size(w, 3, 2, 1)
    sizes.append((h, w))
    for _ in range(3):
        h, w = _matconvnet_size(h, 1, 2, 0), _matconvnet_size(w, 1, 2, 0)
        sizes.append((h, w))
    return sizes


@pytest.mark.parametrize("size", [(45, 61), (33, 33), (40, 50), (17, 23)])
def test_pyramid_matches_the_numpy_matconvnet_forward(rng, size):
    backbone = MatConvNetResNetBackbone(**TINY)
    params = _random_matconvnet_parameters(
        rng, TINY_BLOCKS, TINY["stackwise_num_filters"], 4, conv1_bias=True
    )
    params.pop("conv1_bias")
    set_matconvnet_weights(backbone, params)
    image = rng.normal(0.0, 1.0, (1, *size, 3)).astype("float32")

    expected = _matconvnet_forward(image, params, TINY_BLOCKS)
    outputs = _pyramid_model(backbone)(image)

    assert sorted(outputs) == list(LEVELS)
    for level in LEVELS:
        assert outputs[level].shape == expected[level].shape
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(outputs[level]),
            expected[level],
            atol=1e-4,
            rtol=1e-4,
        )


def _resnet101_blocks():
    """Kaiming He's ResNet-101 block names, written out."""
    return {
        2: ["2a", "2b", "2c"],
        3: ["3a"] + [f"3b{i}" for i in range(1, 4)],
        4: ["4a"] + [f"4b{i}" for i in range(1, 23)],
        5: ["5a", "5b", "5c"],
    }


@pytest.mark.large
@pytest.mark.parametrize(
    "dtype, tolerance", [("float32", 1e-5), ("float64", 1e-12)]
)
def test_full_resnet101_matches_the_numpy_matconvnet_forward(
    rng, dtype, tolerance
):
    backbone = matconvnet_resnet_backbone(101, dtype=dtype)
    params = _random_matconvnet_parameters(
        rng, _resnet101_blocks(), (64, 128, 256, 512), 64, conv1_bias=False
    )
    set_matconvnet_weights(backbone, params)
    image = rng.normal(0.0, 1.0, (1, 37, 51, 3)).astype(dtype)

    expected = _matconvnet_forward(image, params, _resnet101_blocks())
    outputs = _pyramid_model(backbone)(image)

    # Random weights grow the features to ~60 through 33 blocks.
    for level in LEVELS:
        actual = keras.ops.convert_to_numpy(outputs[level])
        scale = np.abs(expected[level]).max()
        assert np.abs(actual - expected[level]).max() <= tolerance * scale


def test_float64_pyramid_equals_the_numpy_forward_to_rounding(rng):
    backbone = MatConvNetResNetBackbone(**TINY, dtype="float64")
    params = _random_matconvnet_parameters(
        rng, TINY_BLOCKS, TINY["stackwise_num_filters"], 4, conv1_bias=False
    )
    set_matconvnet_weights(backbone, params)
    image = rng.normal(0.0, 1.0, (1, 45, 61, 3))

    expected = _matconvnet_forward(image, params, TINY_BLOCKS)
    outputs = _pyramid_model(backbone)(image)

    for level in LEVELS:
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(outputs[level]),
            expected[level],
            atol=1e-12,
            rtol=1e-12,
        )


def test_conv1_bias_is_loaded_and_applied(rng):
    config = {**TINY, "conv1_use_bias": True}
    backbone = MatConvNetResNetBackbone(**config)
    params = _random_matconvnet_parameters(
        rng, TINY_BLOCKS, TINY["stackwise_num_filters"], 4, conv1_bias=True
    )
    params["conv1_bias"] += 1.0
    set_matconvnet_weights(backbone, params)
    image = rng.normal(0.0, 1.0, (1, 29, 37, 3)).astype("float32")

    expected = _matconvnet_forward(image, params, TINY_BLOCKS)
    outputs = _pyramid_model(backbone)(image)

    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(outputs["P5"]),
        expected["P5"],
        atol=1e-4,
        rtol=1e-4,
    )


def test_output_sizes_follow_the_matconvnet_formula():
    backbone = MatConvNetResNetBackbone(
        stackwise_num_blocks=(1, 1, 1, 1),
        stackwise_num_filters=(1, 1, 1, 1),
        input_conv_filters=1,
    )
    model = _pyramid_model(backbone)
    for height in range(1, 70, 3):
        for width in (1, 2, 5, 32, 33, 34, 35, 100, 101):
            shapes = model.compute_output_shape((1, height, width, 3))
            sizes = [tuple(shapes[level][1:3]) for level in LEVELS]
            assert sizes == _expected_pyramid_sizes(height, width)


def test_padding_is_symmetric_and_strides_sit_on_the_1x1_convolutions():
    backbone = MatConvNetResNetBackbone(**TINY)
    assert backbone.get_layer("conv1_pad").padding == ((3, 3), (3, 3))
    assert backbone.get_layer("pool1_pad").padding == ((1, 1), (1, 1))
    assert backbone.get_layer("res3b2_branch2b_pad").padding == (
        (1, 1),
        (1, 1),
    )
    assert backbone.get_layer("conv1").strides == (2, 2)
    assert backbone.get_layer("pool1").strides == (2, 2)
    for block in ("3a", "4a", "5a"):
        for branch in ("branch1", "branch2a"):
            assert backbone.get_layer(f"res{block}_{branch}").strides == (2, 2)
        assert backbone.get_layer(f"res{block}_branch2b").strides == (1, 1)
    assert backbone.get_layer("res2a_branch2a").strides == (1, 1)
    assert backbone.get_layer("res2a_branch1").strides == (1, 1)


def _keras_cv_layer_name(name):
    """keras-cv ResNet v1 layer name of one of ours (same Caffe layout)."""
    if name in ("conv1", "bn_conv1"):
        return "conv1_conv" if name == "conv1" else "conv1_bn"
    branches = {"1": 0, "2a": 1, "2b": 2, "2c": 3}
    if name.startswith("res"):
        kind, rest = "conv", name.removeprefix("res")
    else:
        kind, rest = "bn", name.removeprefix("bn")
    block, branch = rest.split("_branch")
    stage = int(block[0])
    index = TINY_BLOCKS[stage].index(block)
    return f"v2_stack_{stage - 2}_block{index + 1}_{branches[branch]}_{kind}"


def _keras_cv_pair(rng):
    import keras_cv

    reference = keras_cv.models.ResNetBackbone(
        stackwise_filters=list(TINY["stackwise_num_filters"]),
        stackwise_blocks=list(TINY["stackwise_num_blocks"]),
        stackwise_strides=[1, 2, 2, 2],
        include_rescaling=False,
        input_shape=(None, None, 3),
    )
    # keras-cv's conv1 has 64 filters and epsilon 1.001e-5.
    backbone = MatConvNetResNetBackbone(
        **{**TINY, "input_conv_filters": 64, "batchnorm_epsilon": 1.001e-5}
    )
    copied = 0
    for layer in backbone.layers:
        if not layer.weights:
            continue
        source = reference.get_layer(_keras_cv_layer_name(layer.name))
        values = []
        for weight in source.weights:
            if weight.name == "moving_variance":
                value = rng.uniform(0.5, 2.0, weight.shape)
            elif weight.name == "kernel":
                fan_in = np.prod(weight.shape[:-1])
                value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), weight.shape)
            else:
                value = rng.normal(0.0, 0.3, weight.shape) + (
                    1.0 if weight.name == "gamma" else 0.0
                )
            values.append(value.astype("float32"))
        source.set_weights(values)
        layer.set_weights(values)
        copied += 1
    assert copied == sum(bool(layer.weights) for layer in reference.layers)
    reference_model = keras.Model(
        reference.input,
        {
            level: reference.get_layer(name).output
            for level, name in reference.pyramid_level_inputs.items()
        },
    )
    return _pyramid_model(backbone), reference_model


def test_matches_keras_cv_resnet_where_their_padding_agrees(rng):
    ours, keras_cv_model = _keras_cv_pair(rng)
    # "same" padding equals the symmetric one when H and W are 4n + 1.
    for size in [(45, 61), (33, 33), (29, 41)]:
        image = rng.normal(0.0, 1.0, (1, *size, 3)).astype("float32")
        outputs, reference = ours(image), keras_cv_model(image)
        for level in LEVELS:
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(outputs[level]),
                keras.ops.convert_to_numpy(reference[level]),
                atol=1e-4,
                rtol=1e-4,
            )
    # Elsewhere the sizes agree but keras-cv's features are shifted.
    image = rng.normal(0.0, 1.0, (1, 44, 60, 3)).astype("float32")
    outputs, reference = ours(image), keras_cv_model(image)
    assert outputs["P2"].shape == reference["P2"].shape
    difference = np.abs(
        keras.ops.convert_to_numpy(outputs["P2"])
        - keras.ops.convert_to_numpy(reference["P2"])
    )
    assert difference.max() > 1e-2


def test_config_round_trip_and_keras_file(tmp_path, rng):
    backbone = MatConvNetResNetBackbone(
        **{**TINY, "conv1_use_bias": True, "batchnorm_epsilon": 1e-4}
    )
    config = backbone.get_config()
    restored = MatConvNetResNetBackbone.from_config(config)
    assert restored.get_config() == config
    assert config["conv1_use_bias"] is True
    assert config["block_naming"] == "numbered"

    path = tmp_path / "backbone.keras"
    backbone.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, MatConvNetResNetBackbone)
    assert sorted(loaded.pyramid_outputs) == list(LEVELS)
    image = rng.normal(0.0, 1.0, (1, 37, 41, 3)).astype("float32")
    expected = _pyramid_model(backbone)(image)
    actual = _pyramid_model(loaded)(image)
    for level in LEVELS:
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(actual[level]),
            keras.ops.convert_to_numpy(expected[level]),
        )


def _expected_parameter_counts(blocks, conv1_bias):
    """Conv weights and BatchNorm channels, counted from the layer table."""
    conv = 7 * 7 * 3 * 64 + (64 if conv1_bias else 0)
    bn_channels = 64
    in_channels = 64
    for num_blocks, width in zip(blocks, (64, 128, 256, 512)):
        for index in range(num_blocks):
            if index == 0:
                conv += in_channels * 4 * width
                bn_channels += 4 * width
            conv += in_channels * width + 9 * width * width + width * 4 * width
            bn_channels += 6 * width
            in_channels = 4 * width
    return conv, bn_channels


@pytest.mark.parametrize("depth", [101, 152])
def test_parameter_counts_of_the_released_depths(depth):
    conv, bn_channels = _expected_parameter_counts(
        RESNET_BLOCKS[depth], conv1_bias=False
    )
    assert conv + 2 * bn_channels == TORCHVISION_TRAINABLE[depth]

    table = matconvnet_resnet_parameters(depth)
    assert sum(int(np.prod(p.shape)) for p in table) == conv + 4 * bn_channels

    backbone = matconvnet_resnet_backbone(depth)
    trainable = sum(int(np.prod(w.shape)) for w in backbone.trainable_weights)
    assert trainable == TORCHVISION_TRAINABLE[depth]
    assert backbone.count_params() == conv + 4 * bn_channels


def test_parameter_table_names_follow_the_caffe_resnets():
    table = {p.name: p for p in matconvnet_resnet_parameters(101)}
    # 1 + 4 + 3 * 33 convolutions, each with a 3-parameter BatchNorm.
    assert len(table) == 104 * 4
    assert table["conv1_filter"].shape == (7, 7, 3, 64)
    assert "conv1_bias" not in table
    assert table["bn_conv1_moments"].shape == (64, 2)
    assert table["res2a_branch1_filter"].shape == (1, 1, 64, 256)
    assert table["res3a_branch2a_filter"].shape == (1, 1, 256, 128)
    assert table["res3b3_branch2c_filter"].shape == (1, 1, 128, 512)
    assert table["res4b22_branch2b_filter"].shape == (3, 3, 256, 256)
    assert table["res4b22_branch2b_filter"].layer == "res4b22_branch2b"
    assert table["res4b22_branch2b_filter"].weights == ("kernel",)
    assert table["bn4b22_branch2b_mult"].shape == (256,)
    assert table["bn4b22_branch2b_mult"].layer == "bn4b22_branch2b"
    assert table["bn4b22_branch2b_bias"].weights == ("beta",)
    assert table["bn4b22_branch2b_moments"].weights == (
        "moving_mean",
        "moving_variance",
    )
    assert table["res5c_branch2c_filter"].shape == (1, 1, 512, 2048)
    for absent in ("res4b23_branch2a_filter", "res3d_branch2a_filter"):
        assert absent not in table
    assert "res2b_branch1_filter" not in table

    resnet50 = {p.name: p for p in matconvnet_resnet_parameters(50)}
    assert resnet50["conv1_bias"].shape == (64,)
    assert "res4f_branch2c_filter" in resnet50
    assert "res3d_branch2c_filter" in resnet50
    resnet152 = {p.name for p in matconvnet_resnet_parameters(152)}
    assert {"res3b7_branch2c_filter", "res4b35_branch2c_filter"} <= resnet152
    assert "res4b36_branch2c_filter" not in resnet152


def test_block_names():
    assert stage_block_names((3, 4, 23, 3))[2][-1] == "4b22"
    assert stage_block_names((3, 8, 36, 3))[1] == ["3a"] + [
        f"3b{i}" for i in range(1, 8)
    ]
    assert stage_block_names((3, 4, 6, 3))[1] == ["3a", "3b", "3c", "3d"]
    assert stage_block_names((1, 1), "numbered") == [["2a"], ["3a"]]
    with pytest.raises(ValueError, match="Received: block_naming="):
        stage_block_names((1,), "roman")
    with pytest.raises(ValueError, match="Received: stackwise_num_blocks="):
        stage_block_names((27,), "letters")


def test_batchnorm_weights_from_moments_by_hand():
    weights = batchnorm_weights_from_moments(
        [2.0, 1.0], [0.5, -1.0], [[1.0, 0.5], [0.0, 2.0]], epsilon=0.25
    )
    np.testing.assert_allclose(weights["moving_variance"], [0.0, 3.75])
    layer = keras.layers.BatchNormalization(epsilon=0.25)
    layer.build((None, 2))
    layer.set_weights(
        [
            weights[name]
            for name in ("gamma", "beta", "moving_mean", "moving_variance")
        ]
    )
    # 2 * (3 - 1) / 0.5 + 0.5 and 1 * (3 - 0) / 2 - 1.
    output = layer(np.array([[3.0, 3.0]], "float32"), training=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(output), [[8.5, 0.5]], rtol=1e-6
    )


def test_batchnorm_weights_from_moments_refuses_bad_moments():
    with pytest.raises(ValueError, match="smaller `batchnorm_epsilon`"):
        batchnorm_weights_from_moments([1.0], [0.0], [[0.0, 0.1]], 0.25)
    with pytest.raises(ValueError, match="Received: moments.shape="):
        batchnorm_weights_from_moments([1.0, 1.0], [0.0, 0.0], [[0.0, 1.0]])
    with pytest.raises(ValueError, match="positive"):
        batchnorm_weights_from_moments([1.0], [0.0], [[0.0, 0.0]], 1e-5)


def test_mismatching_parameters_are_refused_and_nothing_is_loaded(rng):
    backbone = MatConvNetResNetBackbone(**TINY)
    params = _random_matconvnet_parameters(
        rng, TINY_BLOCKS, TINY["stackwise_num_filters"], 4, conv1_bias=False
    )
    before = [w.copy() for w in backbone.get_weights()]
    broken = dict(params)
    del broken["res3b1_branch2a_filter"]
    broken["res3b1_branch2b_filter"] = broken["res3b1_branch2b_filter"][:2]
    broken["fc1000_filter"] = np.zeros((1, 1, 12, 1000))
    with pytest.raises(ValueError, match="nothing loaded") as error:
        set_matconvnet_weights(backbone, broken)
    message = str(error.value)
    assert "missing res3b1_branch2a_filter" in message
    assert "unexpected fc1000_filter" in message
    assert "res3b1_branch2b_filter has size (2, 3, 3, 3)" in message
    for old, new in zip(before, backbone.get_weights()):
        np.testing.assert_array_equal(old, new)

    # Vectors may come as C x 1 (above) or 1 x C.
    params["bn_conv1_mult"] = params["bn_conv1_mult"].T
    set_matconvnet_weights(backbone, params)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(backbone.get_layer("bn_conv1").gamma),
        np.ravel(params["bn_conv1_mult"]),
        rtol=1e-6,
    )


def test_trailing_singleton_dimensions_dropped_by_matlab_are_accepted(rng):
    config = {**TINY, "stackwise_num_filters": (1, 3, 2, 3)}
    backbone = MatConvNetResNetBackbone(**config)
    params = _random_matconvnet_parameters(
        rng, TINY_BLOCKS, config["stackwise_num_filters"], 4, False
    )
    # MATLAB saves the 3 x 3 x 1 x 1 filter of res2a_branch2b as 3 x 3.
    kernel = params["res2a_branch2b_filter"]
    params["res2a_branch2b_filter"] = kernel[:, :, 0, 0]
    set_matconvnet_weights(backbone, params)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(backbone.get_layer("res2a_branch2b").kernel),
        kernel,
    )


def test_dtype_policy_reaches_every_layer():
    backbone = MatConvNetResNetBackbone(**TINY, dtype="bfloat16")
    assert {layer.dtype_policy.name for layer in backbone.layers[1:]} == {
        "bfloat16"
    }


def test_constructor_errors():
    with pytest.raises(ValueError, match="Received: stackwise_num_blocks="):
        MatConvNetResNetBackbone(stackwise_num_blocks=(1, 1))
    with pytest.raises(ValueError, match="Received: stackwise_num_blocks="):
        MatConvNetResNetBackbone(
            stackwise_num_blocks=(0,), stackwise_num_filters=(2,)
        )
    with pytest.raises(ValueError, match="Received: batchnorm_epsilon="):
        MatConvNetResNetBackbone(batchnorm_epsilon=0.0)
    with pytest.raises(ValueError, match="Received: depth="):
        matconvnet_resnet_backbone(34)
