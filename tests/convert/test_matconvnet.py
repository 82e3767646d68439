"""MatConvNet (.mat) conversion, on synthetic files in the DagNN layout."""

import numpy as np
import pytest
import scipy.io

from keras_refinenet.convert.checkpoints import CheckpointMismatchError
from keras_refinenet.convert.matconvnet import (
    caffe_block_name,
    convert_matconvnet,
    expected_params,
    load_matconvnet_params,
    matconvnet_refinenet,
)

TINY = {"top_filters": 8, "decoder_filters": 4}
NUM_CLASSES = 3


def _random_params(depth, seed=0):
    rng = np.random.default_rng(seed)
    template = matconvnet_refinenet(depth, NUM_CLASSES, **TINY)
    params = {}
    for name, shape in expected_params(template, depth).items():
        if name.endswith("_moments"):
            value = np.stack(
                [
                    rng.uniform(-0.2, 0.2, shape[0]),
                    rng.uniform(0.7, 1.4, shape[0]),
                ],
                axis=1,
            )
        elif name.endswith("_mult"):
            value = rng.uniform(0.2, 1.0, shape)
        else:
            value = rng.normal(0.0, 0.05, shape)
        params[name] = value.astype("float32")
    return params


def _write_dagnn_mat(path, params, average_image=None):
    """`net.params(i).name/value` as dagnn.DagNN.saveobj writes it."""
    records = np.zeros(
        (1, len(params)), dtype=[("name", object), ("value", object)]
    )
    for index, (name, value) in enumerate(params.items()):
        records[0, index] = (name, value)
    net = {"params": records}
    if average_image is not None:
        net["meta"] = {"normalization": {"averageImage": average_image}}
    scipy.io.savemat(path, {"net": net})


def test_caffe_block_names():
    assert [caffe_block_name(3, b, 101) for b in range(4)] == [
        "a",
        "b1",
        "b2",
        "b3",
    ]
    assert [caffe_block_name(5, b, 152) for b in range(3)] == ["a", "b", "c"]
    assert caffe_block_name(4, 5, 50) == "f"


@pytest.fixture(scope="module")
def resnet101_conversion(tmp_path_factory):
    params = _random_params(101)
    path = tmp_path_factory.mktemp("mat") / "refinenet_res101.mat"
    _write_dagnn_mat(path, params, np.array([120.0, 110.0, 100.0]))
    return params, convert_matconvnet(path, depth=101, **TINY)


def test_named_parameters_land_in_the_right_layers(resnet101_conversion):
    params, model = resnet101_conversion
    backbone = model.backbone.image_encoder
    np.testing.assert_array_equal(
        backbone.get_layer("v2_stack_2_block23_3_conv").get_weights()[0],
        params["res4b22_branch2c_filter"],
    )
    np.testing.assert_array_equal(
        backbone.get_layer("v2_stack_1_block1_0_conv").get_weights()[0],
        params["res3a_branch1_filter"],
    )
    gamma, beta, mean, variance = backbone.get_layer(
        "v2_stack_1_block4_1_bn"
    ).get_weights()
    moments = params["bn3b3_branch2a_moments"]
    np.testing.assert_array_equal(gamma, params["bn3b3_branch2a_mult"])
    np.testing.assert_array_equal(mean, moments[:, 0])
    np.testing.assert_allclose(
        variance + 1.001e-5, moments[:, 1] ** 2, rtol=1e-6
    )
    kernel, bias = model.get_layer("classifier").get_weights()
    np.testing.assert_array_equal(kernel, params["clf_conv_filter"])
    np.testing.assert_array_equal(bias, params["clf_conv_bias"])
    crp = model.backbone.get_layer("refinenet_block2").crp
    np.testing.assert_array_equal(
        crp.convs[2].get_weights()[0],
        params["mflow_conv_g2_pool_3_outvar_dimred_filter"],
    )
    assert model.backbone.crp_conv_before_pool
    assert model.image_mean == [120.0, 110.0, 100.0]
    assert model.image_scale == 1.0


def test_batchnorm_computes_the_matconvnet_formula(resnet101_conversion):
    """vl_nnbnorm with moments: mult * (x - mean) / sigma + bias."""
    params, model = resnet101_conversion
    layer = model.backbone.image_encoder.get_layer("conv1_bn")
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 64)).astype("float32")
    moments = params["bn_conv1_moments"]
    expected = (
        params["bn_conv1_mult"] * (x - moments[:, 0]) / moments[:, 1]
        + params["bn_conv1_bias"]
    )
    np.testing.assert_allclose(
        np.asarray(layer(x, training=False)), expected, rtol=1e-4, atol=1e-5
    )


def test_converted_model_runs(resnet101_conversion):
    _, model = resnet101_conversion
    logits = np.asarray(model(np.zeros((1, 65, 97, 3), "float32")))
    assert logits.shape == (1, 65, 97, NUM_CLASSES)
    assert np.all(np.isfinite(logits))


def test_missing_names_are_listed(tmp_path):
    params = _random_params(50)
    del params["res2b_branch2b_filter"]
    params["res2b_branch2b_weights"] = np.zeros(3, "float32")
    path = tmp_path / "bad.mat"
    _write_dagnn_mat(path, params)
    with pytest.raises(CheckpointMismatchError) as info:
        convert_matconvnet(path, depth=50, **TINY)
    message = str(info.value)
    assert "res2b_branch2b_filter" in message
    assert "res2b_branch2b_weights" in message


def test_loader_reads_plain_arrays_only(tmp_path):
    path = tmp_path / "plain.mat"
    _write_dagnn_mat(path, {"conv1_filter": np.ones((7, 7, 3, 64))})
    params = load_matconvnet_params(path)
    assert list(params) == ["conv1_filter"]
    assert params["conv1_filter"].dtype == np.float32
    not_dagnn = tmp_path / "other.mat"
    scipy.io.savemat(not_dagnn, {"weights": np.ones(3)})
    with pytest.raises(CheckpointMismatchError, match="params"):
        load_matconvnet_params(not_dagnn)
