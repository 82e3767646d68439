"""ImageNet backbones for training RefineNet.

Two routes:

- `keras.applications` ResNet50/101/152 ImageNet weights mapped onto the
  keras-cv ResNet v1 backbone (same Caffe layout: stride on the first 1x1
  convolution). keras.applications convolutions have biases and keras-cv's
  do not: each bias is folded into the following BatchNorm's moving mean,
  which is exact. keras.applications expects Caffe preprocessing (BGR,
  mean subtraction, no scaling); the first convolution's input channels
  are flipped so the model takes RGB, and the RefineNet normalisation is
  set to the RGB Caffe means with scale and std 1.
- keras-hub `ResNetBackbone` presets (torchvision layout, ImageNet
  mean/std on 0..1 input), used directly as the backbone.
"""

import keras
import numpy as np

from keras_refinenet.models.encoders.pyramid import (
    RESNET_BLOCKS,
    resnet_backbone,
)
from keras_refinenet.models.presets import IMAGENET_NORMALIZATION
from keras_refinenet.models.refinenet import RefineNet

# keras.applications.resnet.preprocess_input ("caffe" mode): BGR means.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
CAFFE_NORMALIZATION = {
    "image_scale": 1.0,
    "image_mean": list(reversed(CAFFE_BGR_MEAN)),
    "image_std": [1.0, 1.0, 1.0],
}
APPLICATIONS_RESNETS = {
    50: "ResNet50",
    101: "ResNet101",
    152: "ResNet152",
}
STEM_CONV = "conv1_conv"
FIRST_APPLICATIONS_STAGE = 2
KERAS_CV_STACK_PREFIX = "v2_stack_"


def applications_resnet(depth, weights="imagenet"):
    """A headless `keras.applications` ResNet taking any image size.

    Args:
        depth: 50, 101 or 152.
        weights: `"imagenet"` (downloaded by Keras on first use), a path to
            a weights file, or `None` for random initialisation.

    Returns:
        The `keras.applications` model.
    """
    if depth not in APPLICATIONS_RESNETS:
        raise ValueError(
            f"`depth` must be one of {sorted(APPLICATIONS_RESNETS)}. "
            f"Received: depth={depth!r}"
        )
    constructor = getattr(keras.applications, APPLICATIONS_RESNETS[depth])
    return constructor(
        weights=weights, include_top=False, input_shape=(None, None, 3)
    )


def keras_cv_layer_name(applications_name):
    """`conv3_block2_1_conv` -> `v2_stack_1_block2_1_conv`."""
    if applications_name.startswith("conv1_"):
        return applications_name
    stage, rest = applications_name.split("_", 1)
    stack = int(stage[len("conv") :]) - FIRST_APPLICATIONS_STAGE
    return f"{KERAS_CV_STACK_PREFIX}{stack}_{rest}"


def _depth_of(source):
    blocks = {
        layer.name.split("_")[1]
        for layer in source.layers
        if layer.name.startswith("conv4_block")
    }
    for depth, stage_blocks in RESNET_BLOCKS.items():
        if stage_blocks[2] == len(blocks):
            return depth
    raise ValueError(
        "`source` must be a keras.applications ResNet50/101/152. "
        f"Received: a model with {len(blocks)} conv4 blocks"
    )


def transfer_applications_resnet(source, backbone):
    """Copies a `keras.applications` ResNet into a keras-cv ResNet v1.

    Conv biases are folded into the next BatchNorm (`moving_mean -= bias`),
    the BatchNorm epsilon difference (if any) into the moving variance,
    and the stem's input channels are reversed (BGR -> RGB).

    Args:
        source: a `keras.applications` ResNet50/101/152.
        backbone: a keras-cv `ResNetBackbone` of the same depth.
    """
    for conv in source.layers:
        if not isinstance(conv, keras.layers.Conv2D):
            continue
        bn_name = conv.name[: -len("conv")] + "bn"
        bn = source.get_layer(bn_name)
        target_conv = backbone.get_layer(keras_cv_layer_name(conv.name))
        target_bn = backbone.get_layer(keras_cv_layer_name(bn_name))
        kernel = keras.ops.convert_to_numpy(conv.kernel)
        if conv.name == STEM_CONV:
            kernel = kernel[:, :, ::-1, :]
        bias = (
            keras.ops.convert_to_numpy(conv.bias)
            if conv.use_bias
            else np.zeros(kernel.shape[-1], kernel.dtype)
        )
        gamma, beta, mean, variance = bn.get_weights()
        variance = variance + (bn.epsilon - target_bn.epsilon)
        if np.any(variance < 0):
            raise ValueError(
                f"{bn.name}: the moving variance is below the epsilon "
                "difference of the two BatchNorm layers. "
                f"Received: min moving_variance={variance.min()}"
            )
        target_conv.set_weights([kernel])
        target_bn.set_weights([gamma, beta, mean - bias, variance])


def imagenet_backbone(depth, source=None):
    """A keras-cv ResNet v1 backbone with ImageNet weights.

    Args:
        depth: 50, 101 or 152.
        source: a `keras.applications` ResNet to copy from; by default
            `keras.applications.ResNet{depth}(weights="imagenet")`, which
            Keras downloads once into `~/.keras/models`.

    Returns:
        The keras-cv backbone. It expects RGB input normalised with
        `CAFFE_NORMALIZATION`.

    Example:

    >>> backbone = imagenet_backbone(50)  # doctest: +SKIP
    """
    source = applications_resnet(depth) if source is None else source
    if _depth_of(source) != depth:
        raise ValueError(
            f"`source` is a ResNet-{_depth_of(source)}. Received: depth={depth}"
        )
    backbone = resnet_backbone(depth, library="keras_cv")
    transfer_applications_resnet(source, backbone)
    return backbone


def imagenet_refinenet(depth, num_classes, source=None, **kwargs):
    """A RefineNet whose keras-cv backbone holds ImageNet weights.

    Args:
        depth: 50, 101 or 152.
        num_classes: classifier outputs.
        source: see `imagenet_backbone`.
        **kwargs: more `RefineNet` arguments.

    Returns:
        A `RefineNet` taking 0..255 RGB images (Caffe normalisation inside).

    Example:

    >>> model = imagenet_refinenet(50, 21)  # doctest: +SKIP
    """
    config = {**CAFFE_NORMALIZATION, **kwargs}
    return RefineNet(
        imagenet_backbone(depth, source), num_classes=num_classes, **config
    )


def keras_hub_backbone(preset, **kwargs):
    """A keras-hub `ResNetBackbone` preset that takes images of any size.

    Args:
        preset: a keras-hub preset name (e.g. `"resnet_50_imagenet"`), a
            `kaggle://` or `hf://` handle, or a local preset directory.
        **kwargs: more `Backbone.from_preset` arguments.

    Returns:
        The keras-hub backbone (torchvision layout, ImageNet mean/std on
        0..1 input, like `IMAGENET_NORMALIZATION`).
    """
    import keras_hub

    kwargs.setdefault("image_shape", (None, None, 3))
    return keras_hub.models.Backbone.from_preset(preset, **kwargs)


def keras_hub_refinenet(preset, num_classes, **kwargs):
    """A RefineNet on a keras-hub ImageNet `ResNetBackbone` preset.

    Args:
        preset: see `keras_hub_backbone`.
        num_classes: classifier outputs.
        **kwargs: more `RefineNet` arguments.

    Returns:
        A `RefineNet` with the ImageNet mean/std normalisation.

    Example:

    >>> preset = "resnet_50_imagenet"
    >>> model = keras_hub_refinenet(preset, 21)  # doctest: +SKIP
    """
    config = {**IMAGENET_NORMALIZATION, **kwargs}
    return RefineNet(
        keras_hub_backbone(preset), num_classes=num_classes, **config
    )
