"""The authors' MatConvNet checkpoints: layout, derived architecture, checks.

The fixtures are built the way the authors' generator builds the networks
(`main/gen_network_refine_group.m`, `main/gen_network_pool_block.m`,
`main/My_net_util.m`: every name is made by the same concatenation rules,
confirmed against the layer names printed in `net_graphs/*.pdf`), at tiny
widths, and written in the MAT v7.3 layout (`tests/convert/
matlab_v73_writer.py`) or, for the legacy folder, v7 + v7.3.
"""

import numpy as np
import pytest

from keras_refinenet.convert.matconvnet_checkpoint import (
    IMPROVED_POOLING,
    ORIGINAL_POOLING,
    MatconvnetCheckpointError,
    check_architecture,
    derive_backbone_architecture,
    describe_checkpoint,
    expected_decoder_params,
    load_matconvnet_checkpoint,
    parse_dagnn,
)
from keras_refinenet.convert.matlab_file import MatlabFileError, load_mat_file
from tests.convert.matconvnet_fixtures import (
    ADAPT_RCUS,
    BN_EPSILON,
    INPUT_SCALE,
    NUM_CLASSES,
    OUTPUT_RCUS,
    PATH_WIDTHS,
    POOL_SIZE,
    POOL_STAGES,
    STAGE_WIDTHS,
    build_backbone,
    build_decoder,
    classifier_layers,
    write_legacy_folder,
    write_release,
)
from tests.convert.matlab_v73_writer import (
    Cell,
    Object,
    write_mat_v73,
)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    path = tmp_path_factory.mktemp("release") / "refinenet_res101_voc2012.mat"
    backbone, decoder, filters, biases = write_release(path)
    return path, backbone, decoder, filters, biases


# === Reading back ===


def test_values_and_shapes_read_back_exactly(release):
    path, backbone, decoder, filters, biases = release
    checkpoint = load_matconvnet_checkpoint(path)
    assert checkpoint.layout == "single_file"
    assert checkpoint.group_names == (
        "root",
        "multi_featnet",
        "featnet_1",
        "refinenets",
        "loss_group",
    )
    for dag, built in (
        (checkpoint.backbone, backbone),
        (checkpoint.decoder, decoder),
    ):
        assert list(dag.params) == [name for name, _ in built.params]
        for name, value in built.params:
            np.testing.assert_array_equal(dag.params[name], value)
            assert dag.params[name].dtype == np.float32
        assert [layer.name for layer in dag.layers] == [
            layer["name"] for layer in built.layers
        ]
    conv = checkpoint.decoder.layers[0]
    assert conv.type == "dagnn.Conv"
    assert conv.inputs == ("p_ims1d2_outl1",)
    assert conv.params == ("p_ims1d2_outl1_dimred_filter",)
    assert conv.setting("size") == (3, 3, 4 * STAGE_WIDTHS[-1], 8)
    assert conv.setting("hasBias") == (False,)
    bn = checkpoint.backbone.layers[1]
    assert bn.type == "dagnn.BatchNorm"
    assert bn.number("epsilon") == pytest.approx(BN_EPSILON)
    assert checkpoint.backbone.params["bn_conv1_moments"].shape == (4, 2)
    np.testing.assert_array_equal(checkpoint.classifier.filters, filters)
    np.testing.assert_array_equal(checkpoint.classifier.biases, biases[0])
    assert checkpoint.classifier.pad == (1, 1, 1, 1)
    assert checkpoint.classifier.dropout_rate == 0.5
    assert checkpoint.num_classes == NUM_CLASSES
    assert checkpoint.input_scales == (INPUT_SCALE,)


def test_resnet101_stages_are_derived(tmp_path):
    dag, _ = build_backbone(np.random.default_rng(0), blocks=(3, 4, 23, 3))
    path = tmp_path / "group_inputpath_1_3.mat"
    write_mat_v73(path, dag.saveobj())
    parsed = parse_dagnn(load_mat_file(path), "inputpath_1", str(path))
    backbone = derive_backbone_architecture(parsed)
    assert backbone.stage_blocks == (3, 4, 23, 3)
    assert backbone.depth == 101
    assert "res4b22_branch2c_filter" in parsed.params
    assert backbone.output_vars[-1] == "res5c_relu_dropout_varout"


def test_backbone_architecture_is_derived(release):
    checkpoint = load_matconvnet_checkpoint(release[0])
    backbone = checkpoint.backbone_architecture
    assert backbone.input_var == "data"
    assert backbone.stage_blocks == (1, 1, 1, 1)
    assert backbone.depth == 2 + 3 * 4
    assert backbone.output_vars == (
        "res2a_relu_copy_varout",
        "res3a_relu_copy_varout",
        "res4a_relu_dropout_varout",
        "res5a_relu_dropout_varout",
    )


@pytest.mark.parametrize(
    "prefix,improved",
    [
        ("adapt_input_path", True),
        ("adapt_stage", False),
        ("adapt_stage", True),
        ("adapt_input_path", False),
    ],
)
def test_decoder_architecture_is_derived_from_the_graph(
    tmp_path, prefix, improved
):
    path = tmp_path / "model.mat"
    write_release(path, adapt_prefix=prefix, improved=improved)
    checkpoint = load_matconvnet_checkpoint(path)
    arch = checkpoint.architecture
    assert arch.naming_scheme == prefix
    assert arch.num_paths == 4
    assert arch.path_inputs == tuple(f"p_ims1d2_outl{p}" for p in range(1, 5))
    assert arch.path_input_channels == tuple(
        4 * w for w in reversed(STAGE_WIDTHS)
    )
    assert arch.path_widths == PATH_WIDTHS
    assert arch.adapt_rcus == (ADAPT_RCUS,) * 4
    order = IMPROVED_POOLING if improved else ORIGINAL_POOLING
    assert [b.inputs for b in arch.blocks] == [
        ("path1",),
        ("block1", "path2"),
        ("block2", "path3"),
        ("block3", "path4"),
    ]
    assert [b.width for b in arch.blocks] == [8, 4, 4, 4]
    for block in arch.blocks:
        assert block.pooling_order == order
        assert block.pool_stages == POOL_STAGES
        assert block.pool_size == (POOL_SIZE, POOL_SIZE)
        assert block.pool_stride == (1,)
        assert block.pool_pad == (POOL_SIZE // 2,)
        assert block.output_rcus == OUTPUT_RCUS
        assert block.kernel_sizes == ((3, 3),)
    assert arch.output_var == "mflow_conv_g4_b3_joint_varout"
    check_architecture(
        checkpoint,
        {
            "pool_stages": 4,
            "pooling_order": order,
            "naming_scheme": prefix,
            "path_widths": PATH_WIDTHS,
            "pool_size": (5, 5),
        },
    )


def test_expected_names_follow_the_authors_generator(release):
    """Names printed in net_graphs/part2_cascaed_refinenet*.pdf."""
    arch = load_matconvnet_checkpoint(release[0]).architecture
    names = set(expected_decoder_params(arch))
    for name in (
        "p_ims1d2_outl1_dimred_filter",
        "adapt_input_path1_b1_conv_filter",
        "adapt_input_path1_b1_conv_bias",
        "adapt_input_path2_b2_conv_relu_varout_dimred_filter",
        "adapt_input_path2_b2_joint_varout_dimred_filter",
        "mflow_conv_g1_b3_joint_varout_dimred_filter",
        "mflow_conv_g1_poolprev_relu_varout_pb1_filter",
        "mflow_conv_g4_pool3_outvar_pb4_filter",
        "mflow_conv_g4_b3_conv_relu_varout_dimred_filter",
    ):
        assert name in names, name
    assert "mflow_conv_g1_pool1_outvar_dimred_filter" not in names
    assert "adapt_input_path1_b2_joint_varout_dimred_filter" not in names


def test_legacy_folder_layout(tmp_path):
    folder = tmp_path / "voc2012_refinenet_res101_legacy"
    backbone, decoder, filters = write_legacy_folder(folder)
    checkpoint = load_matconvnet_checkpoint(folder)
    assert checkpoint.layout == "legacy_folder"
    assert checkpoint.backbone.group_name == "inputpath_1"
    assert checkpoint.decoder.group_name == "multipath_fusion"
    arch = checkpoint.architecture
    assert arch.naming_scheme == "adapt_stage"
    assert {b.pooling_order for b in arch.blocks} == {ORIGINAL_POOLING}
    assert checkpoint.decoder.layers[0].inputs == ("p_ims1d2_outl1",)
    for name, value in decoder.params:
        np.testing.assert_array_equal(checkpoint.decoder.params[name], value)
    np.testing.assert_array_equal(checkpoint.classifier.filters, filters)
    assert checkpoint.input_scales == ()
    check_architecture(checkpoint)
    assert "mflow_conv_g2_pool4_outvar_dimred_filter" in (
        checkpoint.decoder.params
    )


# === Refusals ===


def _edited_release(tmp_path, edit, **options):
    rng = np.random.default_rng(3)
    backbone, channels = build_backbone(rng)
    decoder = build_decoder(rng, channels, **options)
    edit(decoder)
    layers, _, _ = classifier_layers(rng)
    info = Object("ref_obj", {"ref": {"layers": Cell(layers)}})
    groups = [
        {"name": "featnet_1", "dag_net": backbone.saveobj()},
        {"name": "refinenets", "dag_net": decoder.saveobj()},
        {"name": "loss_group", "net_info": info},
    ]
    path = tmp_path / "edited.mat"
    ref = {"group_infos": Cell(groups, (3, 1)), "net_input_img_scales": 1.2}
    write_mat_v73(path, {"net_config": Object("ref_obj", {"ref": ref})})
    return load_matconvnet_checkpoint(path)


def test_missing_param_is_refused(tmp_path):
    def drop(dag):
        dag.params = [
            p for p in dag.params if p[0] != "mflow_conv_g2_b1_conv_bias"
        ]

    checkpoint = _edited_release(tmp_path, drop)
    with pytest.raises(MatconvnetCheckpointError) as error:
        check_architecture(checkpoint)
    assert "missing params" in str(error.value)
    assert "mflow_conv_g2_b1_conv_bias" in str(error.value)


def test_wrong_shape_is_refused(tmp_path):
    name = "adapt_input_path3_b1_conv_filter"

    def reshape(dag):
        dag.params = [
            (n, v[:, :, :, :3] if n == name else v) for n, v in dag.params
        ]

    checkpoint = _edited_release(tmp_path, reshape)
    with pytest.raises(MatconvnetCheckpointError) as error:
        check_architecture(checkpoint)
    message = str(error.value)
    assert "shape mismatches" in message
    assert f"{name}: file (3, 3, 4, 3)" in message


def test_batch_norm_moments_must_be_mean_and_sigma(tmp_path):
    rng = np.random.default_rng(0)
    backbone, _ = build_backbone(rng)
    backbone.params = [
        (n, v[:, :1] if n == "bn3a_branch2b_moments" else v)
        for n, v in backbone.params
    ]
    path = tmp_path / "group.mat"
    write_mat_v73(path, backbone.saveobj())
    parsed = parse_dagnn(load_mat_file(path), "featnet_1", str(path))
    checkpoint = _edited_release(tmp_path, lambda dag: None)
    checkpoint.backbone = parsed
    with pytest.raises(MatconvnetCheckpointError) as error:
        check_architecture(checkpoint)
    assert "bn3a_branch2b_moments: file (3, 1), expected (3, 2)" in str(
        error.value
    )


def test_extra_pooling_stage_is_refused(tmp_path):
    checkpoint = _edited_release(
        tmp_path, lambda dag: None, stages=(4, 4, 5, 4)
    )
    assert [b.pool_stages for b in checkpoint.architecture.blocks] == [
        4,
        4,
        5,
        4,
    ]
    with pytest.raises(MatconvnetCheckpointError) as error:
        check_architecture(checkpoint, {"pool_stages": 4})
    message = str(error.value)
    assert "blocks differ in pool_stages: (4, 4, 5, 4)" in message
    assert "pool_stages: file (4, 4, 5, 4), expected (4, 4, 4, 4)" in message


def test_unknown_layer_type_and_unexpected_param_are_listed(tmp_path):
    def extend(dag):
        output = dag.layers[-1]["outputs"].items[0]
        block = {"crop": np.zeros((1, 4))}
        dag.add_layer("crop", "dagnn.Crop", [output], ["cropped"], [], block)
        dag.params.append(("stray_filter", dag.value(3, 3, 4, 4)))

    checkpoint = _edited_release(tmp_path, extend)
    with pytest.raises(MatconvnetCheckpointError) as error:
        check_architecture(checkpoint)
    message = str(error.value)
    assert "refinenets: 1 unexpected layer types:\n    crop: dagnn.Crop" in (
        message
    )
    assert "stray_filter" in message


def test_a_graph_that_is_no_cascade_is_refused_on_load(tmp_path):
    def retype(dag):
        dag.layers[-1]["type"] = "dagnn.ConvTranspose"

    with pytest.raises(MatconvnetCheckpointError, match="cascade"):
        _edited_release(tmp_path, retype)


def test_expected_facts_are_checked(release):
    checkpoint = load_matconvnet_checkpoint(release[0])
    with pytest.raises(MatconvnetCheckpointError, match="pooling_order"):
        check_architecture(checkpoint, {"pooling_order": ORIGINAL_POOLING})
    with pytest.raises(ValueError, match="Unknown architecture fact"):
        check_architecture(checkpoint, {"pool_count": 4})


def test_not_a_refinenet_gives_clean_errors(tmp_path):
    plain = tmp_path / "plain.mat"
    write_mat_v73(plain, {"net_config": {"group_infos": Cell([])}})
    with pytest.raises(MatlabFileError):
        load_matconvnet_checkpoint(plain)
    other = tmp_path / "other.mat"
    write_mat_v73(other, {"weights": np.ones((2, 2))})
    with pytest.raises(MatlabFileError, match="net_config"):
        load_matconvnet_checkpoint(other)
    with pytest.raises(MatconvnetCheckpointError, match="No checkpoint"):
        load_matconvnet_checkpoint(tmp_path / "absent.mat")
    empty_folder = tmp_path / "folder"
    empty_folder.mkdir()
    with pytest.raises(MatconvnetCheckpointError, match="net-config"):
        load_matconvnet_checkpoint(empty_folder)


# === describe_checkpoint ===


def test_describe_lists_the_key_facts(release):
    text = describe_checkpoint(release[0])
    for fact in (
        "single_file",
        "groups: root, multi_featnet, featnet_1, refinenets, loss_group",
        f"classes: {NUM_CLASSES}",
        "input scales: [1.2]",
        "blocks per stage [1, 1, 1, 1]",
        "4 paths, naming 'adapt_input_path'",
        "widths [8, 4, 4, 4]",
        "block 2: fuses ['block1', 'path2'], width 4, pooling improved x4",
        "mflow_conv_g1_pool1 [dagnn.Pooling]",
        "poolSize=(5, 5)",
        "conv1_filter (7, 7, 3, 4)",
        "bn_conv1_moments (4, 2)",
        "epsilon=1e-05",
    ):
        assert fact in text, fact


def test_describe_still_lists_a_file_that_is_no_refinenet(tmp_path):
    def retype(dag):
        dag.layers[-1]["type"] = "dagnn.ConvTranspose"

    with pytest.raises(MatconvnetCheckpointError):
        _edited_release(tmp_path, retype)
    path = tmp_path / "edited.mat"
    text = describe_checkpoint(path)
    assert "problem: Decoder DAG of group 'refinenets'" in text
    assert "mflow_conv_g4_b3_joint [dagnn.ConvTranspose]" in text
    assert "classes: 5" in text
    checkpoint = load_matconvnet_checkpoint(path, strict=False)
    assert checkpoint.architecture is None
    with pytest.raises(MatconvnetCheckpointError, match="incomplete"):
        check_architecture(checkpoint)


def test_describe_reads_pytorch_state_dicts(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pth"
    torch.save(
        {"state_dict": {"clf_conv.weight": torch.zeros(21, 256, 3, 3)}}, path
    )
    text = describe_checkpoint(path)
    assert "clf_conv.weight (21, 256, 3, 3)" in text


def test_mat_io_reads_the_release_fixture_alike(release):
    matio = pytest.importorskip("matio")
    path, _, decoder, filters, _ = release
    ref = matio.load_from_mat(str(path))["net_config"].properties["ref"]
    groups = ref[0, 0]["group_infos"].reshape(-1, order="F")
    assert [str(g[0, 0]["name"][0]) for g in groups] == [
        "root",
        "multi_featnet",
        "featnet_1",
        "refinenets",
        "loss_group",
    ]
    params = groups[3][0, 0]["dag_net"][0, 0]["params"].reshape(-1, order="F")
    checkpoint = load_matconvnet_checkpoint(path)
    assert [str(p["name"][0]) for p in params] == list(
        checkpoint.decoder.params
    )
    for param in params:
        np.testing.assert_array_equal(
            param["value"], checkpoint.decoder.params[str(param["name"][0])]
        )
    loss_info = groups[4][0, 0]["net_info"].properties["ref"]
    layers = loss_info[0, 0]["layers"].reshape(-1, order="F")
    np.testing.assert_array_equal(layers[1][0, 0]["filters"], filters)
