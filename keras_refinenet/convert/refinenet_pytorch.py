"""The authors' PyTorch RefineNet checkpoints -> `RefineNet`.

Maps every tensor of a `state_dict` in the layout of the authors' `rf101`
(DrSleep/refinenet-pytorch) or `rf_lw*` (DrSleep/light-weight-refinenet)
onto a `RefineNet` with a keras-hub ResNet backbone (torchvision layout,
explicit symmetric padding, BatchNorm epsilon 1e-5 as torch): convolution
kernels OIHW -> HWIO, BatchNorm weight/bias/running statistics. The
result computes what the PyTorch model computes (see
`tests/convert/test_refinenet_pytorch.py`).
"""

import copy

import keras
import numpy as np

from keras_refinenet.convert.checkpoints import (
    CheckpointMismatchError,
    check_state_dict,
    load_torch_state_dict,
)
from keras_refinenet.models.encoders.pyramid import (
    RESNET_BLOCKS,
    resnet_backbone,
)
from keras_refinenet.models.presets import (
    IMAGENET_NORMALIZATION,
    LIGHT_WEIGHT_ARCHITECTURE,
)
from keras_refinenet.models.refinenet import RefineNet

TORCH_BATCHNORM_EPSILON = 1e-5
RCU_CONV_SUFFIXES = ("_conv", "_conv_relu_varout_dimred")
CLASSIFIER_KEY = "clf_conv"
DEPTH_PROBE_STAGE = "layer3"
BOTTLENECK_CONVS = 3


def _conv_kernel(weight):
    """OIHW (torch) -> HWIO (Keras)."""
    return np.transpose(weight, (2, 3, 1, 0))


def expected_shapes(pairs):
    """The `state_dict` shapes that `(keras_layer, torch_prefix)` need."""
    shapes = {}
    for layer, prefix in pairs:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{prefix}.{name}"] = (channels,)
        else:
            height, width, in_ch, out_ch = layer.kernel.shape
            shapes[f"{prefix}.weight"] = (out_ch, in_ch, height, width)
            if layer.use_bias:
                shapes[f"{prefix}.bias"] = (out_ch,)
    return shapes


def batchnorm_weights(
    state_dict, prefix, keras_epsilon, source_epsilon=TORCH_BATCHNORM_EPSILON
):
    """`[gamma, beta, mean, variance]` for a Keras BatchNormalization.

    When the epsilons differ the variance is shifted by their difference,
    so that `variance + keras_epsilon` equals the source's
    `running_var + source_epsilon` exactly.
    """
    variance = state_dict[f"{prefix}.running_var"] + (
        source_epsilon - keras_epsilon
    )
    if np.any(variance < 0):
        smallest = state_dict[f"{prefix}.running_var"].min()
        raise CheckpointMismatchError(
            f"{prefix}.running_var is below the epsilon difference "
            f"{keras_epsilon - source_epsilon:g} between the Keras and the "
            "source BatchNorm; the layer cannot be reproduced exactly. "
            f"Received: min running_var={smallest}"
        )
    return [
        state_dict[f"{prefix}.weight"],
        state_dict[f"{prefix}.bias"],
        state_dict[f"{prefix}.running_mean"],
        variance,
    ]


def assign_pairs(pairs, state_dict, source="checkpoint"):
    """Checks `state_dict` against `pairs` and sets every Keras weight.

    Args:
        pairs: `(keras_layer, torch_prefix)` for Conv2D and
            BatchNormalization layers.
        state_dict: dict from key to numpy array.
        source: how to name the checkpoint in errors.
    """
    check_state_dict(state_dict, expected_shapes(pairs), source)
    for layer, prefix in pairs:
        if isinstance(layer, keras.layers.BatchNormalization):
            weights = batchnorm_weights(state_dict, prefix, layer.epsilon)
        else:
            weights = [_conv_kernel(state_dict[f"{prefix}.weight"])]
            if layer.use_bias:
                weights.append(state_dict[f"{prefix}.bias"])
        layer.set_weights(weights)


def keras_hub_backbone_pairs(encoder, stackwise_num_blocks=None):
    """`(keras_layer, torch_prefix)` for a keras-hub bottleneck ResNet.

    Args:
        encoder: the ResNet, or a model holding its layers (the cut
            `RefineNetBackbone.image_encoder`).
        stackwise_num_blocks: blocks per stage; read from `encoder` when
            `None`.
    """
    layer = encoder.get_layer
    pairs = [(layer("conv1_conv"), "conv1"), (layer("conv1_bn"), "bn1")]
    if stackwise_num_blocks is None:
        stackwise_num_blocks = encoder.stackwise_num_blocks
    for stack, blocks in enumerate(stackwise_num_blocks):
        for block in range(blocks):
            name = f"stack{stack}_block{block}"
            prefix = f"layer{stack + 1}.{block}"
            if block == 0:
                pairs += [
                    (layer(f"{name}_0_conv"), f"{prefix}.downsample.0"),
                    (layer(f"{name}_0_bn"), f"{prefix}.downsample.1"),
                ]
            for conv in range(1, BOTTLENECK_CONVS + 1):
                pairs += [
                    (layer(f"{name}_{conv}_conv"), f"{prefix}.conv{conv}"),
                    (layer(f"{name}_{conv}_bn"), f"{prefix}.bn{conv}"),
                ]
    return pairs


def _rcu_pairs(rcu, prefix):
    if rcu is None:
        return []
    return [
        (rcu.convs[2 * unit + position], f"{prefix}.0.{unit + 1}{suffix}")
        for unit in range(rcu.num_blocks)
        for position, suffix in enumerate(RCU_CONV_SUFFIXES)
    ]


def decoder_pairs(model):
    """`(keras_layer, torch_prefix)` for the RefineNet decoder."""
    pairs = []
    decoder = model.backbone
    for level in range(1, len(decoder.pyramid_levels) + 1):
        projection = decoder.get_layer(f"level{level}_projection")
        block = decoder.get_layer(f"refinenet_block{level}")
        pairs.append((projection, f"p_ims1d2_outl{level}_dimred"))
        pairs += _rcu_pairs(block.adaptive_rcus[0], f"adapt_stage{level}_b")
        if level > 1:
            fine_conv, coarse_conv = block.fusion.convs
            pairs += [
                (fine_conv, f"adapt_stage{level}_b2_joint_varout_dimred"),
                (
                    coarse_conv,
                    f"mflow_conv_g{level - 1}_b3_joint_varout_dimred",
                ),
            ]
        if block.crp is not None:
            pairs += [
                (conv, f"mflow_conv_g{level}_pool.0.{stage}_outvar_dimred")
                for stage, conv in enumerate(block.crp.convs, start=1)
            ]
        pairs += _rcu_pairs(block.output_rcu, f"mflow_conv_g{level}_b")
    pairs.append((model.get_layer("classifier"), CLASSIFIER_KEY))
    return pairs


def infer_depth(state_dict):
    """ResNet depth from the number of `layer3` blocks in a state_dict."""
    blocks = {
        key.split(".")[1]
        for key in state_dict
        if key.startswith(DEPTH_PROBE_STAGE + ".")
    }
    for depth, stage_blocks in RESNET_BLOCKS.items():
        if stage_blocks[2] == len(blocks):
            return depth
    raise CheckpointMismatchError(
        f"Cannot tell the ResNet depth: the checkpoint has {len(blocks)} "
        f"`{DEPTH_PROBE_STAGE}` blocks; expected "
        f"{[blocks[2] for blocks in RESNET_BLOCKS.values()]} for depths "
        f"{list(RESNET_BLOCKS)}."
    )


def infer_num_classes(state_dict):
    """Classifier width from `clf_conv.weight`."""
    key = f"{CLASSIFIER_KEY}.weight"
    if key not in state_dict:
        raise CheckpointMismatchError(
            f"The checkpoint has no `{key}`; it is not a RefineNet "
            f"checkpoint. First keys: {list(state_dict)[:5]}"
        )
    return int(state_dict[key].shape[0])


def refinenet_for_torch_weights(
    depth, num_classes, light_weight=False, **model_kwargs
):
    """A `RefineNet` with the architecture of the authors' PyTorch models.

    Args:
        depth: ResNet depth (50, 101 or 152).
        num_classes: classifier outputs.
        light_weight: Light-Weight RefineNet arguments
            (`LIGHT_WEIGHT_ARCHITECTURE`).
        **model_kwargs: more `RefineNet` arguments, e.g.
            `upsample_output=False`.

    Returns:
        A randomly initialised `RefineNet` on a keras-hub ResNet backbone
        with the authors' ImageNet normalisation.
    """
    config = copy.deepcopy(IMAGENET_NORMALIZATION)
    if light_weight:
        config.update(LIGHT_WEIGHT_ARCHITECTURE)
    config.update(model_kwargs)
    return RefineNet(
        resnet_backbone(depth, library="keras_hub"),
        num_classes=num_classes,
        **config,
    )


def convert_state_dict(
    state_dict, light_weight=False, depth=None, num_classes=None, **kwargs
):
    """Builds a `RefineNet` holding the weights of a PyTorch state_dict.

    Args:
        state_dict: dict from the authors' key to numpy array (see
            `checkpoints.load_torch_state_dict`).
        light_weight: the checkpoint is a Light-Weight RefineNet.
        depth: ResNet depth; inferred from the checkpoint when `None`.
        num_classes: classes; inferred from `clf_conv` when `None`.
        **kwargs: more `RefineNet` arguments.

    Returns:
        The converted `RefineNet`.

    Raises:
        CheckpointMismatchError: keys or shapes do not match, listing the
            first mismatches.

    Example:

    >>> path = "rf101_voc.pth"
    >>> state_dict = load_torch_state_dict(path)  # doctest: +SKIP
    >>> model = convert_state_dict(state_dict)  # doctest: +SKIP
    """
    depth = depth or infer_depth(state_dict)
    num_classes = num_classes or infer_num_classes(state_dict)
    model = refinenet_for_torch_weights(
        depth, num_classes, light_weight=light_weight, **kwargs
    )
    encoder = model.backbone
    pairs = keras_hub_backbone_pairs(
        encoder.image_encoder,
        encoder.image_encoder_arguments["stackwise_num_blocks"],
    ) + decoder_pairs(model)
    kind = "Light-Weight RefineNet" if light_weight else "RefineNet"
    assign_pairs(pairs, state_dict, source=f"{kind}-{depth} checkpoint")
    assigned = sum(len(layer.weights) for layer, _ in pairs)
    if assigned != len(model.weights):
        raise RuntimeError(
            f"Internal error: {assigned} of {len(model.weights)} weights "
            "were mapped from the checkpoint."
        )
    return model


def convert_refinenet_pytorch(checkpoint, num_classes=None, **kwargs):
    """Converts the authors' PyTorch RefineNet checkpoint (`rf101`).

    Args:
        checkpoint: path of a `.pth`/`.pt` file, or a state_dict.
        num_classes: classes; inferred from the checkpoint when `None`.
        **kwargs: more arguments of `convert_state_dict`.

    Returns:
        The converted `RefineNet`.

    Example:

    >>> model = convert_refinenet_pytorch("rf101_voc.pth")  # doctest: +SKIP
    """
    state_dict = (
        checkpoint
        if isinstance(checkpoint, dict)
        else load_torch_state_dict(checkpoint)
    )
    kwargs.setdefault("light_weight", False)
    return convert_state_dict(state_dict, num_classes=num_classes, **kwargs)
