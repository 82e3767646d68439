"""Tiny MatConvNet RefineNet checkpoints built as the authors' code builds them.

The DAGs follow the authors' generator (`main/gen_network_refine_group.m`,
`main/gen_network_pool_block.m`, `main/My_net_util.m`: every name is made by
the same concatenation rules, confirmed against the layer names printed in
`net_graphs/*.pdf`) and the `imagenet-resnet-*-dag` layout, at tiny widths,
written in the MAT v7.3 layout (`tests/convert/matlab_v73_writer.py`) or,
for the legacy folder, v7 + v7.3.
"""

import numpy as np
import scipy.io

from tests.convert.matlab_v73_writer import (
    Cell,
    Empty,
    FunctionHandle,
    Object,
    StructArray,
    write_mat_v73,
)

STAGE_WIDTHS = (2, 3, 4, 5)  # bottleneck widths; outputs are 4x
PATH_WIDTHS = (8, 4, 4, 4)  # the release's 512/256/256/256, scaled down
NUM_CLASSES = 5
POOL_STAGES = 4
POOL_SIZE = 5
ADAPT_RCUS = 2
OUTPUT_RCUS = 3
INPUT_SCALE = 1.2
BN_EPSILON = 1e-5


class DagBuilder:
    """`dagnn.DagNN` as far as `addLayer` and `saveobj` go."""

    def __init__(self, rng, column_cells=False):
        self.rng = rng
        self.layers = []
        self.params = []
        self.vars = []
        self.column_cells = column_cells

    def cell(self, names):
        names = list(names)
        shape = (len(names), 1) if self.column_cells else (1, len(names))
        return Cell(names, shape)

    def add_layer(self, name, kind, inputs, outputs, params, block):
        for var in [*inputs, *outputs]:
            if var not in self.vars:
                self.vars.append(var)
        self.layers.append(
            {
                "name": name,
                "type": kind,
                "inputs": self.cell(inputs),
                "outputs": self.cell(outputs),
                "params": self.cell([p for p, _ in params]),
                "block": block,
            }
        )
        self.params += params

    def value(self, *shape):
        return self.rng.normal(size=shape).astype(np.float32)

    def saveobj(self):
        return {
            "vars": StructArray(
                [{"name": v, "precious": False} for v in self.vars]
            ),
            "params": StructArray(
                [
                    {
                        "name": name,
                        "value": value,
                        "learningRate": 1.0,
                        "weightDecay": 1.0,
                    }
                    for name, value in self.params
                ]
            ),
            "layers": StructArray(self.layers),
            "meta": {"name": "dag"},
        }

    # --- My_net_util.m ---

    def conv(self, inputs, outputs, size, name, has_bias, stride=1):
        params = [(f"{name}_filter", self.value(*size))]
        if has_bias:
            params.append((f"{name}_bias", self.value(1, size[3])))
        pad = (size[0] - 1) // 2
        block = {
            "size": np.array([size], float),
            "hasBias": np.array([[has_bias]]),
            "opts": Cell([]),
            "pad": float(pad),
            "stride": np.array([[stride, stride]], float),
            "dilate": np.array([[1.0, 1.0]]),
        }
        self.add_layer(name, "dagnn.Conv", inputs, outputs, params, block)

    def relu(self, prev_layer_name, inputs):
        name = f"{prev_layer_name}_relu"
        outputs = [f"{name}_varout"]
        block = {"useShortCircuit": np.array([[True]]), "leak": 0.0}
        self.add_layer(name, "dagnn.ReLU", inputs, outputs, [], block)
        return outputs

    def dim_reduce_named(self, var, in_dim, out_dim, name):
        outputs = [f"{name}_varout"]
        self.conv([var], outputs, (3, 3, in_dim, out_dim), name, False)
        return outputs

    def dim_reduce(self, var, in_dim, out_dim):
        return self.dim_reduce_named(var, in_dim, out_dim, f"{var}_dimred")

    def sum2(self, inputs, name):
        outputs = [f"{name}_varout"]
        block = {"numInputs": 2.0}
        self.add_layer(name, "dagnn.Sum", inputs, outputs, [], block)
        return outputs

    def my_sum(self, inputs, name):
        outputs = [f"{name}_varout"]
        block = {"numInputs": float(len(inputs))}
        self.add_layer(name, "My_sum_layer", inputs, outputs, [], block)
        return outputs

    def res_conv_block(self, outputs, dim, count, prefix):
        for index in range(1, count + 1):
            name = f"{prefix}_b{index}"
            start = outputs
            outputs = self.relu(f"{name}_prev", outputs)
            conv_name = f"{name}_conv"
            conv_out = [f"{conv_name}_outvar"]
            self.conv(outputs, conv_out, (3, 3, dim, dim), conv_name, True)
            outputs = self.relu(conv_name, conv_out)
            outputs = self.dim_reduce(outputs[0], dim, dim)
            outputs = self.sum2([start[0], outputs[0]], f"{name}_joint")
        return outputs

    # --- gen_network_pool_block.m ---

    def pool(self, inputs, name):
        outputs = [f"{name}_outvar"]
        half = POOL_SIZE // 2
        block = {
            "method": "max",
            "poolSize": np.array([[POOL_SIZE, POOL_SIZE]], float),
            "opts": Cell([]),
            "pad": float(half),
            "stride": 1.0,
        }
        self.add_layer(name, "dagnn.Pooling", inputs, outputs, [], block)
        return outputs

    def pool_block(self, outputs, dim, prefix, improved, stages):
        outputs = self.relu(f"{prefix}_poolprev", outputs)
        pooled = list(outputs)
        for index in range(1, stages + 1):
            if improved:
                name = f"{outputs[0]}_pb{index}"
                outputs = self.dim_reduce_named(outputs[0], dim, dim, name)
                outputs = self.pool(outputs, f"{prefix}_pool{index}")
            else:
                outputs = self.pool(outputs, f"{prefix}_pool{index}")
                outputs = self.dim_reduce(outputs[0], dim, dim)
            pooled += outputs
        return self.my_sum(pooled, f"{prefix}_pool_joint")


def build_decoder(
    rng,
    input_channels,
    adapt_prefix="adapt_input_path",
    improved=True,
    stages=(POOL_STAGES,) * 4,
    column_cells=False,
):
    """`gen_network_refine_group.m` with 4 paths, groups [1 2 3 4]."""
    dag = DagBuilder(rng, column_cells)
    ends = []
    for path, (channels, width) in enumerate(
        zip(input_channels, PATH_WIDTHS, strict=True), start=1
    ):
        outputs = dag.dim_reduce(f"p_ims1d2_outl{path}", channels, width)
        outputs = dag.res_conv_block(
            outputs, width, ADAPT_RCUS, f"{adapt_prefix}{path}"
        )
        ends.append((outputs[0], width))
    previous = None
    for group, (var, dim) in enumerate(ends, start=1):
        members = [(var, dim)] if previous is None else [previous, (var, dim)]
        joint = min(d for _, d in members)
        if len(members) > 1:
            reduced = [dag.dim_reduce(v, d, joint)[0] for v, d in members]
            outputs = dag.my_sum(reduced, f"mflow_joint_g{group}")
        else:
            outputs = [var]
        prefix = f"mflow_conv_g{group}"
        outputs = dag.pool_block(
            outputs, joint, prefix, improved, stages[group - 1]
        )
        outputs = dag.res_conv_block(outputs, joint, OUTPUT_RCUS, prefix)
        previous = (outputs[0], joint)
    return dag


def _caffe_block(stage, index):
    """Caffe ResNet-101/152 block names: a, b1, b2, ... in stages 3 and 4."""
    if index == 0:
        return "a"
    return f"b{index}" if stage in (3, 4) else "abcdefgh"[index]


def build_backbone(rng, blocks=(1, 1, 1, 1)):
    """A ResNet in the imagenet-resnet-*-dag layout."""
    dag = DagBuilder(rng)

    def bn(name, var, channels):
        params = [
            (f"{name}_mult", dag.value(channels, 1)),
            (f"{name}_bias", dag.value(channels, 1)),
            (
                f"{name}_moments",
                np.abs(dag.value(channels, 2)) + np.float32(0.5),
            ),
        ]
        block = {"numChannels": float(channels), "epsilon": BN_EPSILON}
        dag.add_layer(name, "dagnn.BatchNorm", [var], [name], params, block)
        return name

    def relu(name, var):
        dag.add_layer(name, "dagnn.ReLU", [var], [name], [], {"leak": 0.0})
        return name

    dag.conv(["data"], ["conv1"], (7, 7, 3, 4), "conv1", False, stride=2)
    var = relu("conv1_relu", bn("bn_conv1", "conv1", 4))
    dag.add_layer(
        "pool1",
        "dagnn.Pooling",
        [var],
        ["pool1"],
        [],
        {
            "method": "max",
            "poolSize": np.array([[3.0, 3.0]]),
            "pad": 1.0,
            "stride": np.array([[2.0, 2.0]]),
        },
    )
    var, channels, outputs = "pool1", 4, []
    for stage, width, count in zip(
        (2, 3, 4, 5), STAGE_WIDTHS, blocks, strict=True
    ):
        out = 4 * width
        for index in range(count):
            block = f"{stage}{_caffe_block(stage, index)}"
            stride = 2 if index == 0 and stage > 2 else 1
            if index == 0:
                name = f"res{block}_branch1"
                dag.conv(
                    [var], [name], (1, 1, channels, out), name, False, stride
                )
                shortcut = bn(f"bn{block}_branch1", name, out)
            else:
                shortcut = var
            branch = var
            for part, (size, stride_here, dims) in {
                "2a": (1, stride, (channels, width)),
                "2b": (3, 1, (width, width)),
                "2c": (1, 1, (width, out)),
            }.items():
                name = f"res{block}_branch{part}"
                dag.conv(
                    [branch],
                    [name],
                    (size, size, *dims),
                    name,
                    False,
                    stride_here,
                )
                branch = bn(f"bn{block}_branch{part}", name, dims[1])
                if part != "2c":
                    branch = relu(f"{name}_relu", branch)
            dag.add_layer(
                f"res{block}",
                "dagnn.Sum",
                [shortcut, branch],
                [f"res{block}"],
                [],
                {"numInputs": 2.0},
            )
            var, channels = relu(f"res{block}_relu", f"res{block}"), out
        outputs.append((var, out))
    for var, out in outputs:
        if out > 4 * STAGE_WIDTHS[1]:
            name = f"{var}_dropout"
            dag.add_layer(
                name,
                "dagnn.DropOut",
                [var],
                [f"{name}_varout"],
                [],
                {"rate": 0.5},
            )
        else:
            name = f"{var}_copy"
            dag.add_layer(
                name,
                "My_copy_layer",
                [var],
                [f"{name}_varout"],
                [],
                {"opts": Cell([])},
            )
    return dag, [out for _, out in reversed(outputs)]


def classifier_layers(rng, width=PATH_WIDTHS[-1]):
    filters = rng.normal(size=(3, 3, width, NUM_CLASSES)).astype(np.float32)
    biases = rng.normal(size=(1, NUM_CLASSES)).astype(np.float32)
    layers = [
        {"type": "dropout", "rate": 0.5},
        {
            "type": "conv",
            "filters": filters,
            "biases": biases,
            "stride": 1.0,
            "pad": np.array([[1.0, 1.0, 1.0, 1.0]]),
        },
        {
            "type": "my_custom",
            "custom_type": "dense_softmaxloss",
            "forward_fn": FunctionHandle(
                "@cnn_layer_dense_softmaxloss_forward"
            ),
        },
    ]
    return layers, filters, biases


def write_release(path, seed=0, **decoder_options):
    """The single-file layout of `main/cnn_save_model.m`."""
    rng = np.random.default_rng(seed)
    backbone, channels = build_backbone(rng)
    decoder = build_decoder(rng, channels, **decoder_options)
    layers, filters, biases = classifier_layers(rng)

    def net_info(name, layers):
        return Object(
            "ref_obj", {"ref": {"name": name, "layers": Cell(layers)}}
        )

    def group(name, index, **fields):
        return {
            "name": name,
            "group_idx": float(index),
            "forward_evaluate_fn": FunctionHandle("@cnn_forward_evaluate_obj"),
            **fields,
        }

    wrapper = {"type": "my_custom", "custom_type": "dagnn_wrapper"}
    groups = [
        group("root", 1, net_info=Empty()),
        group("multi_featnet", 2, net_info=Empty()),
        group(
            "featnet_1",
            3,
            net_info=net_info("featnet_1", [wrapper]),
            dag_net=backbone.saveobj(),
            use_dagnn=np.array([[True]]),
        ),
        group(
            "refinenets",
            4,
            net_info=net_info("refinenets", [wrapper]),
            dag_net=decoder.saveobj(),
            use_dagnn=np.array([[True]]),
        ),
        group("loss_group", 5, net_info=net_info("final_loss", layers)),
    ]
    ref = {
        "group_infos": Cell(groups, (len(groups), 1)),
        "net_input_img_scales": INPUT_SCALE,
        "dag_group_flags": np.array([[0.0, 0.0, 1.0, 1.0, 0.0]]),
        "predict_group_idx": 5.0,
        "cache_filename": Empty("char"),
    }
    write_mat_v73(path, {"net_config": Object("ref_obj", {"ref": ref})})
    return backbone, decoder, filters, biases


def _legacy_struct(value):
    """Writer values -> scipy.io.savemat values (v7, plain structs only)."""
    if isinstance(value, dict):
        return {k: _legacy_struct(v) for k, v in value.items()}
    if isinstance(value, Cell):
        cell = np.empty(len(value.items), dtype=object)
        for index, item in enumerate(value.items):
            cell[index] = _legacy_struct(item)
        return cell.reshape(value.dims(), order="F")
    if isinstance(value, Empty):
        return np.zeros(value.shape)
    return value


def write_legacy_folder(folder, seed=0):
    """`net-config.mat` (v7, `saved_net_config`) + `group_<name>_<idx>.mat`."""
    rng = np.random.default_rng(seed)
    backbone, channels = build_backbone(rng)
    decoder = build_decoder(
        rng,
        channels,
        adapt_prefix="adapt_stage",
        improved=False,
        column_cells=True,
    )
    layers, filters, _ = classifier_layers(rng)
    layers = [layer for layer in layers if layer["type"] != "my_custom"]
    names = [
        "root",
        "multipath_input",
        "inputpath_1",
        "multipath_fusion",
        "loss_group",
    ]
    groups = [
        {"name": n, "group_idx": float(i)} for i, n in enumerate(names, start=1)
    ]
    groups[4]["net_info"] = {"ref": {"layers": Cell(layers)}}
    saved = {
        "group_infos": Cell(groups, (5, 1)),
        "dag_group_flags": np.array([[0.0, 0.0, 1.0, 1.0, 0.0]]),
    }
    folder.mkdir()
    scipy.io.savemat(
        folder / "net-config-epoch-30.mat",
        {"saved_net_config": _legacy_struct(saved)},
    )
    write_mat_v73(folder / "group_inputpath_1_3.mat", backbone.saveobj())
    write_mat_v73(folder / "group_multipath_fusion_4.mat", decoder.saveobj())
    return backbone, decoder, filters
