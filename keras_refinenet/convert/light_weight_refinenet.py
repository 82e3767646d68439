"""The authors' Light-Weight RefineNet checkpoints -> `RefineNet`.

Light-Weight RefineNet (Nekrasov, Shen and Reid, BMVC 2018) is a RefineNet
with 1x1 projections, fusions and pooling convolutions and no residual
conv units; `RefineNet` expresses it with `LIGHT_WEIGHT_ARCHITECTURE`.
The authors' `rf_lw50/101/152` have no dropout either, so the converted
model has none (dropout is inactive at inference anyway).
"""

from keras_refinenet.convert.checkpoints import load_torch_state_dict
from keras_refinenet.convert.refinenet_pytorch import (
    convert_state_dict,
    refinenet_for_torch_weights,
)
from keras_refinenet.models.presets import LIGHT_WEIGHT_ARCHITECTURE


def light_weight_refinenet(depth, num_classes, **kwargs):
    """A randomly initialised Light-Weight RefineNet.

    Args:
        depth: ResNet depth (50, 101 or 152).
        num_classes: classifier outputs.
        **kwargs: more `RefineNet` arguments.

    Returns:
        A `RefineNet` with `LIGHT_WEIGHT_ARCHITECTURE` on a keras-hub
        ResNet backbone.

    Example:

    >>> model = light_weight_refinenet(50, num_classes=3)
    >>> model.backbone.crp_kernel_size, model.backbone.adaptive_units
    (1, 0)
    """
    return refinenet_for_torch_weights(
        depth, num_classes, light_weight=True, **kwargs
    )


def convert_light_weight_refinenet(checkpoint, num_classes=None, **kwargs):
    """Converts the authors' Light-Weight RefineNet checkpoint.

    Args:
        checkpoint: path of a `.pth`/`.pt` file, or a state_dict.
        num_classes: classes; inferred from the checkpoint when `None`.
        **kwargs: more arguments of `convert_state_dict` (`depth` is
            inferred from the checkpoint).

    Returns:
        The converted `RefineNet`.

    Example:

    >>> path = "rf_lw101_voc.pth"
    >>> model = convert_light_weight_refinenet(path)  # doctest: +SKIP
    """
    state_dict = (
        checkpoint
        if isinstance(checkpoint, dict)
        else load_torch_state_dict(checkpoint)
    )
    return convert_state_dict(
        state_dict, light_weight=True, num_classes=num_classes, **kwargs
    )


__all__ = [
    "LIGHT_WEIGHT_ARCHITECTURE",
    "convert_light_weight_refinenet",
    "light_weight_refinenet",
]
