"""The authors' released MatConvNet RefineNet models (`.mat`) -> `RefineNet`.

The 14 released models of guosheng/refinenet (ResNet-101 and ResNet-152
for 7 datasets) are MATLAB v7.3 files holding the `net_config` handle
object (`keras_refinenet.convert.matconvnet_checkpoint` reads them, or the
legacy folder layout, without MATLAB and without running anything from the
file). The model is built from what the file says:

- the image encoder from the ResNet DagNN: stages and widths from its
  graph and parameters, MatConvNet's symmetric padding
  (`MatConvNetResNetBackbone`), BatchNorm from `moments` = [mean, sigma];
- the decoder from the refinement DagNN's graph: paths and widths, RCUs
  per path, the chained pooling's order (original pool-then-conv or
  improved conv-then-pool), stage count and window, output RCUs; every
  parameter is mapped by its place in the graph (`decoder_conv_roles`),
  not by its name;
- the classifier of the loss group with every output channel, the `void`
  channel included;
- the authors' test computation (`main/my_get_batch_ds_info.m`,
  `main/My_sum_layer.m`, `main/my_resize.m`, `main/my_gen_seg_result.m`):
  the image resized by `net_input_img_scales` (1.2) with MATLAB
  `imresize` bicubic and rounded to uint8, mean 128 subtracted with no
  scaling, MATLAB bicubic fusion upsampling (the authors' GPU semantics by
  default: one factor then a top-left crop), and the output
  `max(log softmax, -20)` resized bicubically to the image size.

A file whose graph is not the released cascade, or whose parameters do not
match it, is refused with the first differences listed; nothing is loaded
unless everything matches.
"""

import os
import re

import numpy as np

from keras_refinenet.convert.checkpoints import CheckpointMismatchError
from keras_refinenet.convert.matconvnet_checkpoint import (
    BATCH_NORM,
    IMPROVED_POOLING,
    check_architecture,
    decoder_conv_roles,
    load_matconvnet_checkpoint,
)
from keras_refinenet.layers.resize import MATLAB_BICUBIC, PER_AXIS, UNIFORM_CROP
from keras_refinenet.models.encoders.matconvnet_resnet import (
    MatConvNetResNetBackbone,
    set_matconvnet_weights,
)
from keras_refinenet.models.refinenet import (
    RefineNetBackbone,
    RefineNetImageSegmenter,
)
from keras_refinenet.models.refinenet.refinenet_image_segmenter import (
    build_preprocessor,
)
from keras_refinenet.refinenet_release import (
    DEFAULT_RESIZE_MODE,
    RELEASED_DATASETS,
    RESIZE_MODES,
    released_file_name,
)

# The authors subtract one mean from every RGB channel of 0..255 pixels and
# do not scale (`data_norm_info.image_mean`, `main/my_get_batch_ds_info.m`).
AUTHORS_IMAGE_MEAN = 128.0
AUTHORS_IMAGE_SCALE = 1.0
AUTHORS_IMAGE_STD = 1.0
# `my_resize`'s two semantics as `resize_images` scale modes.
SCALE_MODES = dict(zip(RESIZE_MODES, (UNIFORM_CROP, PER_AXIS)))
# The released decoder: 4 paths, fused one per block, coarsest first.
RELEASED_NUM_PATHS = 4
STAGE_NAMES = ("2", "3", "4", "5")
FILTER_SUFFIX = "_filter"
BIAS_SUFFIX = "_bias"
MAX_LISTED_DIFFERENCES = 10
_FILE_NAME = re.compile(r"refinenet_res(\d+)_([a-z0-9_]+)\.mat$")


def released_dataset_of(path):
    """The dataset key of a file named as the authors name their releases.

    Args:
        path: e.g. `".../refinenet_res101_cityscapes.mat"`.

    Returns:
        A key of `RELEASED_DATASETS`, or `None` for other names.

    Example:

    >>> released_dataset_of("refinenet_res152_pascalcontext.mat")
    'pascal_context'
    """
    match = _FILE_NAME.search(os.path.basename(os.fspath(path)))
    if not match:
        return None
    depth, suffix = int(match.group(1)), match.group(2)
    for name, info in RELEASED_DATASETS.items():
        if info.file_suffix == suffix and depth in (101, 152):
            return name
    return None


def _refuse(path, differences):
    listed = "; ".join(differences[:MAX_LISTED_DIFFERENCES])
    raise CheckpointMismatchError(
        f"{path}: not the released RefineNet cascade "
        f"({len(differences)} differences, nothing loaded): {listed}"
    )


def _uniform(path, name, values):
    values = sorted(set(values), key=str)
    if len(values) != 1:
        _refuse(path, [f"{name} differs between blocks: {values}"])
    return values[0]


def _encoder_arguments(checkpoint):
    params = checkpoint.backbone.params
    stage_blocks = checkpoint.backbone_architecture.stage_blocks
    if len(stage_blocks) != len(STAGE_NAMES):
        _refuse(
            checkpoint.path,
            [f"ResNet with {len(stage_blocks)} stages, expected 4"],
        )
    missing = [
        f"res{stage}a_branch2a{FILTER_SUFFIX}"
        for stage in STAGE_NAMES
        if f"res{stage}a_branch2a{FILTER_SUFFIX}" not in params
    ]
    if "conv1" + FILTER_SUFFIX not in params:
        missing.insert(0, "conv1" + FILTER_SUFFIX)
    if missing:
        _refuse(checkpoint.path, [f"missing {name}" for name in missing])
    epsilons = {
        layer.number("epsilon")
        for layer in checkpoint.backbone.layers
        if layer.type == BATCH_NORM and layer.number("epsilon") is not None
    }
    arguments = {
        "stackwise_num_blocks": list(stage_blocks),
        "stackwise_num_filters": [
            int(np.shape(params[f"res{stage}a_branch2a{FILTER_SUFFIX}"])[-1])
            for stage in STAGE_NAMES
        ],
        "input_conv_filters": int(
            np.shape(params["conv1" + FILTER_SUFFIX])[-1]
        ),
        "conv1_use_bias": "conv1" + BIAS_SUFFIX in params,
    }
    if epsilons:
        arguments["batchnorm_epsilon"] = _uniform(
            checkpoint.path, "BatchNorm epsilon", epsilons
        )
    return arguments


def _decoder_arguments(checkpoint):
    architecture = checkpoint.architecture
    path = checkpoint.path
    differences = []
    if architecture.num_paths != RELEASED_NUM_PATHS:
        differences.append(
            f"{architecture.num_paths} decoder paths, expected 4"
        )
    for index, block in enumerate(architecture.blocks, start=1):
        expected = (
            ("path1",) if index == 1 else (f"block{index - 1}", f"path{index}")
        )
        if sorted(block.inputs) != sorted(expected):
            differences.append(
                f"block {index} fuses {list(block.inputs)}, "
                f"expected {list(expected)}"
            )
        if block.pool_stages and block.pool_stride not in ((1,), (1, 1)):
            differences.append(
                f"block {index} pools with stride {block.pool_stride}"
            )
        if any(kernel != (3, 3) for kernel in block.kernel_sizes):
            differences.append(
                f"block {index} has kernels {list(block.kernel_sizes)}"
            )
    widths = architecture.path_widths
    if len(set(widths[1:])) > 1:
        differences.append(f"path widths {list(widths)}")
    if differences:
        _refuse(path, differences)
    blocks = architecture.blocks
    order = _uniform(path, "pooling order", [b.pooling_order for b in blocks])
    pool_size = _uniform(path, "pool size", [b.pool_size for b in blocks])
    return {
        "top_filters": int(widths[0]),
        "decoder_filters": int(widths[1]),
        "adaptive_units": _uniform(
            path, "RCUs per path", architecture.adapt_rcus
        ),
        "crp_stages": _uniform(
            path, "pooling stages", [b.pool_stages for b in blocks]
        ),
        "output_units": _uniform(
            path, "output RCUs", [b.output_rcus for b in blocks]
        ),
        "crp_pool_size": int(pool_size[0]),
        "crp_conv_before_pool": order == IMPROVED_POOLING,
    }


def matconvnet_model_arguments(checkpoint, resize_mode=DEFAULT_RESIZE_MODE):
    """The `RefineNet` parts that compute what a checkpoint computes.

    Args:
        checkpoint: a `MatconvnetCheckpoint`.
        resize_mode: `"gpu"` (the authors' released results: one factor
            then a top-left crop) or `"cpu"` (bicubic straight to the
            target size) semantics of the authors' `my_resize`.

    Returns:
        `(encoder, backbone, task, preprocessor)` argument dicts.
    """
    if resize_mode not in RESIZE_MODES:
        raise ValueError(
            f"`resize_mode` must be one of {RESIZE_MODES}. "
            f"Received: resize_mode={resize_mode!r}"
        )
    scales = tuple(checkpoint.input_scales) or (1.0,)
    if len(scales) != 1:
        _refuse(
            checkpoint.path,
            [f"net_input_img_scales={list(scales)}: one scale expected"],
        )
    backbone = {
        **_decoder_arguments(checkpoint),
        "projection_kernel_size": 3,
        "fusion_kernel_size": 3,
        "crp_kernel_size": 3,
        "rcu_kernel_size": 3,
        "backbone_dropout": 0.5,
        "interpolation": MATLAB_BICUBIC,
        "scale_mode": SCALE_MODES[resize_mode],
        "input_scales": list(scales),
        "round_scaled_images": scales[0] != 1.0,
        "pixel_offset": AUTHORS_IMAGE_MEAN,
    }
    classifier = checkpoint.classifier
    task = {
        "num_classes": int(checkpoint.num_classes),
        "classifier_kernel_size": int(np.shape(classifier.filters)[0]),
        "classifier_dropout": float(classifier.dropout_rate or 0.0),
        "output_interpolation": MATLAB_BICUBIC,
    }
    preprocessor = {
        "image_scale": AUTHORS_IMAGE_SCALE,
        "mean": [AUTHORS_IMAGE_MEAN] * 3,
        "std": [AUTHORS_IMAGE_STD] * 3,
    }
    return _encoder_arguments(checkpoint), backbone, task, preprocessor


def _conv_assignments(layer, matlab_conv, params, differences):
    """(variable, value) pairs for a Keras conv from a DagNN conv layer."""
    names = list(matlab_conv.params)
    values = [params.get(name) for name in names]
    if any(value is None for value in values):
        differences.append(f"{matlab_conv.name}: parameters {names} missing")
        return []
    kernel = np.asarray(values[0], "float32")
    if kernel.ndim < 4:
        kernel = kernel.reshape(kernel.shape + (1,) * (4 - kernel.ndim))
    pairs = [(layer.kernel, kernel)]
    if layer.use_bias:
        if len(values) < 2:
            differences.append(f"{matlab_conv.name}: no bias for {layer.name}")
            return []
        pairs.append((layer.bias, np.asarray(values[1], "float32").ravel()))
    elif len(values) > 1:
        differences.append(f"{matlab_conv.name}: a bias {layer.name} lacks")
    for variable, value in pairs:
        if tuple(variable.shape) != value.shape:
            differences.append(
                f"{names[0]} has size {value.shape}, {layer.name} needs "
                f"{tuple(variable.shape)}"
            )
    return pairs


def _rcu_assignments(rcu, units, params, differences):
    if rcu is None:
        if units:
            differences.append(f"{len(units)} RCUs the model lacks")
        return []
    if len(units) * 2 != len(rcu.convs):
        differences.append(
            f"{len(units)} RCUs for {rcu.name} with {len(rcu.convs) // 2}"
        )
        return []
    pairs = []
    for index, (first, second) in enumerate(units):
        pairs += _conv_assignments(
            rcu.convs[2 * index], first, params, differences
        )
        pairs += _conv_assignments(
            rcu.convs[2 * index + 1], second, params, differences
        )
    return pairs


def _decoder_assignments(model, checkpoint, differences):
    roles = decoder_conv_roles(checkpoint.decoder, checkpoint.path)
    params = checkpoint.decoder.params
    backbone = model.backbone
    pairs = []
    for level, conv in enumerate(roles.projections, start=1):
        pairs += _conv_assignments(
            backbone.projections[0][level - 1], conv, params, differences
        )
    for index, block in enumerate(backbone.refinenet_blocks):
        path_source = f"path{index + 1}"
        pairs += _rcu_assignments(
            block.adaptive_rcus[0],
            roles.adaptive_units[index],
            params,
            differences,
        )
        if roles.fusion[index]:
            # Keras fusion inputs: the path first, the previous block next.
            by_source = dict(roles.fusion[index])
            sources = [path_source, f"block{index}"]
            for conv, source in zip(block.fusion.convs, sources):
                pairs += _conv_assignments(
                    conv, by_source[source], params, differences
                )
        crp_convs = [] if block.crp is None else block.crp.convs
        if len(crp_convs) != len(roles.pooling[index]):
            differences.append(
                f"block {index + 1}: {len(roles.pooling[index])} pooling "
                f"convs for {len(crp_convs)}"
            )
        for conv, matlab_conv in zip(crp_convs, roles.pooling[index]):
            pairs += _conv_assignments(conv, matlab_conv, params, differences)
        pairs += _rcu_assignments(
            block.output_rcu, roles.output_units[index], params, differences
        )
    return pairs


def _classifier_assignments(model, checkpoint, differences):
    classifier = checkpoint.classifier
    kernel = np.asarray(classifier.filters, "float32")
    bias = np.asarray(classifier.biases, "float32").ravel()
    layer = model.classifier
    pairs = [(layer.kernel, kernel), (layer.bias, bias)]
    for variable, value in pairs:
        if tuple(variable.shape) != value.shape:
            differences.append(
                f"classifier has size {value.shape}, the model needs "
                f"{tuple(variable.shape)}"
            )
    return pairs


def convert_matconvnet(
    path,
    dataset=None,
    resize_mode=DEFAULT_RESIZE_MODE,
    dtype=None,
    **kwargs,
):
    """Converts one of the authors' released MatConvNet RefineNets.

    Args:
        path: the released `.mat` file (e.g.
            `refinenet_res101_cityscapes.mat`) or a legacy model folder
            (`net-config*.mat` and `group_*.mat`).
        dataset: a key of `RELEASED_DATASETS` for the class names, label
            values and palette; inferred from the authors' file name when
            `None`.
        resize_mode: `"gpu"` (default, the authors' results) or `"cpu"`
            semantics of their bicubic resizes (see
            `matconvnet_model_arguments`).
        dtype: dtype policy of every layer.
        **kwargs: for compatibility with the other converters' command
            line (`depth` is read from the file, not given); unknown
            arguments raise.

    Returns:
        The converted `RefineNet`, with `model.matconvnet_metadata` (the
        preset metadata: dataset, class names, label values, void channel,
        palette, file name).

    Example:

    >>> path = "refinenet_res101_cityscapes.mat"
    >>> model = convert_matconvnet(path)  # doctest: +SKIP
    """
    depth = kwargs.pop("depth", None)
    if kwargs:
        raise TypeError(
            f"Unexpected arguments for convert_matconvnet. "
            f"Received: {sorted(kwargs)}"
        )
    checkpoint = load_matconvnet_checkpoint(path)
    check_architecture(checkpoint)
    encoder_args, backbone_args, task_args, preprocessor_args = (
        matconvnet_model_arguments(checkpoint, resize_mode)
    )
    file_depth = checkpoint.backbone_architecture.depth
    if depth is not None and file_depth is not None and depth != file_depth:
        raise CheckpointMismatchError(
            f"{path}: the file holds a ResNet-{file_depth}. "
            f"Received: depth={depth}"
        )
    encoder = MatConvNetResNetBackbone(**encoder_args, dtype=dtype)
    table = encoder.matconvnet_parameters()
    backbone = RefineNetBackbone(encoder, dtype=dtype, **backbone_args)
    dataset = dataset or released_dataset_of(path)
    metadata = matconvnet_metadata(checkpoint, dataset)
    if dataset is not None:
        task_args["void_channel"] = metadata["void_channel"]
        task_args["label_values"] = metadata["label_values"]
    model = RefineNetImageSegmenter(
        backbone,
        preprocessor=build_preprocessor(**preprocessor_args),
        **task_args,
    )
    differences = []
    pairs = _decoder_assignments(model, checkpoint, differences)
    pairs += _classifier_assignments(model, checkpoint, differences)
    if differences:
        _refuse(checkpoint.path, differences)
    # Checks every encoder parameter before assigning any.
    try:
        set_matconvnet_weights(
            backbone.image_encoder, checkpoint.backbone.params, table=table
        )
    except ValueError as error:
        raise CheckpointMismatchError(f"{checkpoint.path}: {error}") from error
    for variable, value in pairs:
        variable.assign(value.astype(variable.dtype))
    model.matconvnet_metadata = metadata
    return model


def matconvnet_metadata(checkpoint, dataset=None):
    """Preset metadata of a converted checkpoint.

    Args:
        checkpoint: a `MatconvnetCheckpoint`.
        dataset: a key of `RELEASED_DATASETS`, or `None`.

    Returns:
        A dict for `save_to_preset(metadata=...)`.
    """
    metadata = {
        "source_format": "matconvnet",
        "input_scales": list(checkpoint.input_scales),
        "naming_scheme": checkpoint.architecture.naming_scheme,
    }
    if dataset is None:
        return metadata
    if dataset not in RELEASED_DATASETS:
        raise ValueError(
            f"`dataset` must be one of {sorted(RELEASED_DATASETS)}. "
            f"Received: dataset={dataset!r}"
        )
    info = RELEASED_DATASETS[dataset]
    if len(info.class_names) != checkpoint.num_classes:
        raise CheckpointMismatchError(
            f"{checkpoint.path}: {checkpoint.num_classes} output channels, "
            f"but the authors' {dataset} models have "
            f"{len(info.class_names)}. Received: dataset={dataset!r}"
        )
    depth = checkpoint.backbone_architecture.depth
    metadata.update(
        {
            "dataset": dataset,
            "class_names": list(info.class_names),
            "label_values": list(info.label_values),
            "void_channel": info.void_channel,
            "palette": [list(color) for color in info.palette],
        }
    )
    if depth in (101, 152):
        metadata["file_name"] = released_file_name(dataset, depth)
    return metadata


__all__ = [
    "convert_matconvnet",
    "matconvnet_metadata",
    "matconvnet_model_arguments",
    "released_dataset_of",
]
