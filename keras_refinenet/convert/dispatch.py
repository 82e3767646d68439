"""One entry point for every checkpoint format: `convert_checkpoint`.

The format names are those of `keras-refinenet convert FORMAT`; each maps
to its converter in this package, imported only when it is used.
"""

from keras_refinenet.convert.checkpoints import (
    CheckpointMismatchError,
    TorchNotInstalledError,
    UnsafeCheckpointError,
)
from keras_refinenet.data.voc import VOC_NUM_CLASSES
from keras_refinenet.refinenet_release import DEFAULT_RESIZE_MODE

REFINENET_PYTORCH = "refinenet-pytorch"
LIGHT_WEIGHT_REFINENET = "light-weight-refinenet"
MATCONVNET = "matconvnet"
IMAGENET = "imagenet"
CHECKPOINT_FORMATS = (
    REFINENET_PYTORCH,
    LIGHT_WEIGHT_REFINENET,
    MATCONVNET,
    IMAGENET,
)
# The ImageNet backbones come from Keras' download without a file.
FORMATS_WITHOUT_CHECKPOINT = (IMAGENET,)
DEFAULT_IMAGENET_DEPTH = 101
DEFAULT_IMAGENET_CLASSES = VOC_NUM_CLASSES
KERAS_IMAGENET_WEIGHTS = "imagenet"
# Errors of a conversion that describe the user's file or request.
CONVERSION_ERRORS = (
    CheckpointMismatchError,
    TorchNotInstalledError,
    UnsafeCheckpointError,
    FileNotFoundError,
    ValueError,
)
CONVERTED_WITH = "keras-refinenet convert {checkpoint_format}"


def check_conversion_request(checkpoint_format, checkpoint=None):
    """Raises a `ValueError` when `convert_checkpoint` cannot start.

    Args:
        checkpoint_format: one of `CHECKPOINT_FORMATS`.
        checkpoint: the checkpoint path (optional only for the formats in
            `FORMATS_WITHOUT_CHECKPOINT`).

    Example:

    >>> check_conversion_request("imagenet")
    >>> check_conversion_request("matconvnet")
    Traceback (most recent call last):
    ...
    ValueError: `matconvnet` needs a checkpoint file. Received: checkpoint=None
    """
    if checkpoint_format not in CHECKPOINT_FORMATS:
        raise ValueError(
            f"`checkpoint_format` must be one of {CHECKPOINT_FORMATS}. "
            f"Received: checkpoint_format={checkpoint_format!r}"
        )
    if not checkpoint and checkpoint_format not in FORMATS_WITHOUT_CHECKPOINT:
        raise ValueError(
            f"`{checkpoint_format}` needs a checkpoint file. "
            f"Received: checkpoint={checkpoint!r}"
        )


def _convert_refinenet_pytorch(checkpoint, depth, **unused_options):
    from keras_refinenet.convert.refinenet_pytorch import (
        convert_refinenet_pytorch,
    )

    return convert_refinenet_pytorch(checkpoint, depth=depth)


def _convert_light_weight_refinenet(checkpoint, depth, **unused_options):
    from keras_refinenet.convert.light_weight_refinenet import (
        convert_light_weight_refinenet,
    )

    return convert_light_weight_refinenet(checkpoint, depth=depth)


def _convert_matconvnet(
    checkpoint, depth, dataset, resize_mode, **unused_options
):
    from keras_refinenet.convert.matconvnet import convert_matconvnet

    return convert_matconvnet(
        checkpoint, depth=depth, dataset=dataset, resize_mode=resize_mode
    )


def _convert_imagenet(
    checkpoint, depth, num_classes, keras_hub_preset, **unused_options
):
    from keras_refinenet.convert.imagenet import (
        applications_resnet,
        imagenet_refinenet,
        keras_hub_refinenet,
    )

    num_classes = num_classes or DEFAULT_IMAGENET_CLASSES
    if keras_hub_preset:
        return keras_hub_refinenet(keras_hub_preset, num_classes)
    depth = depth or DEFAULT_IMAGENET_DEPTH
    source = applications_resnet(
        depth, weights=checkpoint or KERAS_IMAGENET_WEIGHTS
    )
    return imagenet_refinenet(depth, num_classes, source=source)


CONVERTERS = {
    REFINENET_PYTORCH: _convert_refinenet_pytorch,
    LIGHT_WEIGHT_REFINENET: _convert_light_weight_refinenet,
    MATCONVNET: _convert_matconvnet,
    IMAGENET: _convert_imagenet,
}


def convert_checkpoint(
    checkpoint_format,
    checkpoint=None,
    depth=None,
    num_classes=None,
    dataset=None,
    resize_mode=DEFAULT_RESIZE_MODE,
    keras_hub_preset=None,
):
    """Converts a published checkpoint of any format into a `RefineNet`.

    Args:
        checkpoint_format: one of `CHECKPOINT_FORMATS`:
            `"refinenet-pytorch"` and `"light-weight-refinenet"` (the
            authors' `.pth` / `.pt` files), `"matconvnet"` (their `.mat`
            release or a legacy model folder), `"imagenet"` (an ImageNet
            ResNet under a new decoder).
        checkpoint: the checkpoint file; for `"imagenet"` an optional
            `keras.applications` weights file (default: Keras' ImageNet
            download).
        depth: ResNet depth; inferred from PyTorch files, checked against
            MatConvNet files, `DEFAULT_IMAGENET_DEPTH` for `"imagenet"`.
        num_classes: classes of the model; a checkpoint's own classifier
            is replaced by a new one when it differs (for `"imagenet"` the
            new classifier's size, default `DEFAULT_IMAGENET_CLASSES`).
        dataset: `"matconvnet"`: the released model's dataset (class
            names, label values, palette); default from the file name.
        resize_mode: `"matconvnet"`: the authors' bicubic resize semantics
            (`"gpu"` or `"cpu"`).
        keras_hub_preset: `"imagenet"`: a keras-hub `ResNetBackbone`
            preset instead of `keras.applications` weights.

    Returns:
        The converted `RefineNet`.

    Example:

    >>> convert_checkpoint("tensorflow", "model.ckpt")
    Traceback (most recent call last):
    ...
    ValueError: `checkpoint_format` must be one of (...). Received: ...
    """
    from keras_refinenet.convert.install import with_num_classes

    check_conversion_request(checkpoint_format, checkpoint)
    model = CONVERTERS[checkpoint_format](
        checkpoint=checkpoint,
        depth=depth,
        num_classes=num_classes,
        dataset=dataset,
        resize_mode=resize_mode,
        keras_hub_preset=keras_hub_preset,
    )
    return with_num_classes(model, num_classes)


def converted_metadata(model, checkpoint_format):
    """The preset metadata a conversion adds: the MatConvNet release's
    facts when the model carries them, and how it was converted.

    Args:
        model: the converted `RefineNet`.
        checkpoint_format: the format it was converted from.

    Returns:
        A dict for `save_converted(..., metadata=...)`.

    Example:

    >>> converted_metadata(object(), "imagenet")
    {'converted_with': 'keras-refinenet convert imagenet'}
    """
    return {
        **getattr(model, "matconvnet_metadata", {}),
        "converted_with": CONVERTED_WITH.format(
            checkpoint_format=checkpoint_format
        ),
    }
