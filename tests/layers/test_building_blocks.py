"""RCU, CRP, fusion and RefineNet block against the numpy reference."""

import keras
import numpy as np
import pytest

from keras_refinenet.layers import (
    ChainedResidualPooling,
    ImageNormalization,
    MultiResolutionFusion,
    RefineNetBlock,
    ResidualConvUnit,
)
from tests import numpy_reference as ref

ODD_SHAPE = (2, 9, 11, 4)
TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


def _np(variable):
    return keras.ops.convert_to_numpy(variable)


def _rcu_params(layer):
    convs = [
        (_np(c.kernel), None if c.bias is None else _np(c.bias))
        for c in layer.convs
    ]
    return list(zip(convs[0::2], convs[1::2]))


def test_residual_conv_unit_matches_reference(rng):
    x = rng.normal(size=ODD_SHAPE).astype("float32")
    layer = ResidualConvUnit(num_blocks=2)
    got = np.asarray(layer(x))
    params = _rcu_params(layer)
    assert [c.use_bias for c in layer.convs] == [True, False, True, False]
    np.testing.assert_allclose(
        got, ref.residual_conv_unit(x, params), **TOLERANCE
    )


def test_residual_conv_unit_with_relu_as_maximum_matches_reference(rng):
    from keras_refinenet.layers.utils import relu_as_maximum

    # Exact zeros, where `maximum` and `relu` could differ.
    x = np.maximum(rng.normal(size=ODD_SHAPE), 0.0).astype("float32")
    layer = ResidualConvUnit(num_blocks=2)
    with relu_as_maximum():
        got = np.asarray(layer(x))
    np.testing.assert_allclose(
        got, ref.residual_conv_unit(x, _rcu_params(layer)), **TOLERANCE
    )


@pytest.mark.parametrize("conv_before_pool", [False, True])
def test_chained_residual_pooling_matches_reference(rng, conv_before_pool):
    x = rng.normal(size=ODD_SHAPE).astype("float32")
    layer = ChainedResidualPooling(
        num_stages=4, conv_before_pool=conv_before_pool
    )
    got = np.asarray(layer(x))
    kernels = [_np(conv.kernel) for conv in layer.convs]
    assert all(conv.bias is None for conv in layer.convs)
    want = ref.chained_residual_pooling(
        x, kernels, conv_before_pool=conv_before_pool
    )
    np.testing.assert_allclose(got, want, **TOLERANCE)


def test_chain_feeds_each_pool_from_previous_branch(rng):
    # With identity 1x1 convs and 2 stages: x + pool(x) + pool(pool(x)).
    x = rng.normal(size=(1, 7, 7, 1)).astype("float32")
    layer = ChainedResidualPooling(num_stages=2, kernel_size=1)
    layer.build(x.shape)
    for conv in layer.convs:
        conv.kernel.assign(np.ones((1, 1, 1, 1), "float32"))
    once = ref.max_pool_same(x, 5)
    want = x + once + ref.max_pool_same(once, 5)
    np.testing.assert_allclose(np.asarray(layer(x)), want, **TOLERANCE)


@pytest.mark.parametrize("align_corners", [True, False])
def test_fusion_matches_reference(rng, align_corners):
    fine = rng.normal(size=(2, 13, 17, 4)).astype("float32")
    coarse = rng.normal(size=(2, 7, 9, 6)).astype("float32")
    layer = MultiResolutionFusion(filters=5, align_corners=align_corners)
    got = np.asarray(layer([fine, coarse]))
    kernels = [_np(conv.kernel) for conv in layer.convs]
    want = ref.multi_resolution_fusion([fine, coarse], kernels, align_corners)
    assert got.shape == (2, 13, 17, 5)
    np.testing.assert_allclose(got, want, **TOLERANCE)


def test_fusion_convolves_a_single_input(rng):
    x = rng.normal(size=ODD_SHAPE).astype("float32")
    layer = MultiResolutionFusion(filters=8)
    got = np.asarray(layer([x]))
    want = ref.conv2d_same(x, _np(layer.convs[0].kernel))
    assert got.shape == (*ODD_SHAPE[:3], 8)
    np.testing.assert_allclose(got, want, **TOLERANCE)


def test_single_input_block_skips_the_fusion(rng):
    x = rng.normal(size=ODD_SHAPE).astype("float32")
    block = RefineNetBlock(filters=8, adaptive_units=1, output_units=1)
    got = np.asarray(block(x))
    path = ref.residual_conv_unit(x, _rcu_params(block.adaptive_rcus[0]))
    pooled = ref.chained_residual_pooling(
        ref.relu(path), [_np(conv.kernel) for conv in block.crp.convs]
    )
    want = ref.residual_conv_unit(pooled, _rcu_params(block.output_rcu))
    assert not block.fusion.weights
    np.testing.assert_allclose(got, want, **TOLERANCE)


def test_fusion_takes_largest_input_in_any_order(rng):
    fine = rng.normal(size=(1, 12, 10, 3)).astype("float32")
    coarse = rng.normal(size=(1, 6, 5, 3)).astype("float32")
    layer = MultiResolutionFusion(filters=2)
    assert layer([coarse, fine]).shape == (1, 12, 10, 2)


def test_refinenet_block_matches_reference(rng):
    fine = rng.normal(size=(1, 11, 15, 4)).astype("float32")
    coarse = rng.normal(size=(1, 6, 8, 6)).astype("float32")
    block = RefineNetBlock(
        filters=5, adaptive_units=[2, 1], crp_stages=3, output_units=2
    )
    got = np.asarray(block([fine, coarse]))
    paths = [
        ref.residual_conv_unit(x, _rcu_params(rcu))
        for x, rcu in zip([fine, coarse], block.adaptive_rcus)
    ]
    fused = ref.multi_resolution_fusion(
        paths, [_np(conv.kernel) for conv in block.fusion.convs]
    )
    x = ref.relu(fused)
    x = ref.chained_residual_pooling(
        x, [_np(conv.kernel) for conv in block.crp.convs]
    )
    want = ref.residual_conv_unit(x, _rcu_params(block.output_rcu))
    np.testing.assert_allclose(got, want, **TOLERANCE)


def test_refinenet_block_single_input_keeps_width(rng):
    x = rng.normal(size=(1, 5, 7, 6)).astype("float32")
    block = RefineNetBlock(filters=3, adaptive_units=0, output_units=0)
    assert block(x).shape == (1, 5, 7, 6)
    assert block.compute_output_shape((1, 5, 7, 6)) == (1, 5, 7, 6)


def test_image_normalization_hand_computed():
    layer = ImageNormalization()
    pixel = np.array([[[[255.0, 0.0, 127.5]]]], "float32")
    want = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0.5 - 0.406) / 0.225]
    np.testing.assert_allclose(np.asarray(layer(pixel)).ravel(), want, 1e-5)


LAYER_FACTORIES = {
    "rcu": lambda: ResidualConvUnit(num_blocks=3, kernel_size=1),
    "crp": lambda: ChainedResidualPooling(
        num_stages=2, pool_size=3, conv_before_pool=True
    ),
    "fusion": lambda: MultiResolutionFusion(filters=7, align_corners=False),
    "block": lambda: RefineNetBlock(
        filters=6, adaptive_units=[1, 0], crp_stages=2, output_units=1
    ),
    "norm": lambda: ImageNormalization(scale=1.0, mean=(1, 2, 3)),
}


def _call(layer, rng):
    fine = rng.normal(size=(1, 9, 11, 4)).astype("float32")
    coarse = rng.normal(size=(1, 5, 6, 4)).astype("float32")
    if isinstance(layer, (MultiResolutionFusion, RefineNetBlock)):
        return layer([fine, coarse])
    if isinstance(layer, ImageNormalization):
        return layer(fine[..., :3])
    return layer(fine)


@pytest.mark.parametrize("name", sorted(LAYER_FACTORIES))
def test_serialization_round_trip(rng, name):
    layer = LAYER_FACTORIES[name]()
    out = np.asarray(_call(layer, rng))
    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(config)
    assert clone.get_config() == layer.get_config()
    _call(clone, np.random.default_rng(0))
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        np.asarray(_call(clone, np.random.default_rng(0))), out, atol=1e-6
    )


@pytest.mark.parametrize("name", sorted(LAYER_FACTORIES))
def test_compute_output_shape_matches_call(rng, name):
    layer = LAYER_FACTORIES[name]()
    out = _call(layer, rng)
    if isinstance(layer, (MultiResolutionFusion, RefineNetBlock)):
        shape = layer.compute_output_shape([(1, 9, 11, 4), (1, 5, 6, 4)])
    elif isinstance(layer, ImageNormalization):
        shape = layer.compute_output_shape((1, 9, 11, 3))
    else:
        shape = layer.compute_output_shape((1, 9, 11, 4))
    assert tuple(shape) == tuple(out.shape)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_close_to_float32(rng, policy):
    fine = rng.normal(size=(1, 9, 11, 4)).astype("float32")
    coarse = rng.normal(size=(1, 5, 6, 4)).astype("float32")
    block = RefineNetBlock(filters=4, adaptive_units=[1, 0], output_units=1)
    want = np.asarray(block([fine, coarse]))
    mixed = RefineNetBlock(
        filters=4, adaptive_units=[1, 0], output_units=1, dtype=policy
    )
    mixed([fine, coarse])
    mixed.set_weights(block.get_weights())
    got = mixed([fine, coarse])
    assert keras.backend.standardize_dtype(got.dtype) == policy.split("_")[1]
    assert all(
        sub.dtype_policy.name == policy for sub in mixed._flatten_layers()
    )
    scale = np.abs(want).max()
    np.testing.assert_allclose(
        np.asarray(got, "float32"), want, atol=0.05 * scale
    )


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: ResidualConvUnit(num_blocks=0), "num_blocks=0"),
        (lambda: ChainedResidualPooling(num_stages=-1), "num_stages=-1"),
        (lambda: MultiResolutionFusion(filters=2.5), "filters=2.5"),
        (lambda: RefineNetBlock(4, adaptive_units=[1, -1]), "adaptive_units"),
        (lambda: ImageNormalization(std=(1, 0, 1)), "std="),
    ],
)
def test_bad_arguments_raise_clear_errors(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_adaptive_units_must_match_input_count(rng):
    block = RefineNetBlock(filters=4, adaptive_units=[1, 1, 1])
    with pytest.raises(ValueError, match="one entry per input path"):
        block([np.zeros((1, 4, 4, 4)), np.zeros((1, 2, 2, 4))])
