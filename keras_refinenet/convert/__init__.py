"""Converters from published RefineNet checkpoints and ImageNet backbones.

Importing this package does not need `torch`; reading PyTorch checkpoints
does. The PyTorch reference of the parity tests lives in
`tests/convert/reference_pytorch.py`.
"""

from typing import TYPE_CHECKING

from keras_refinenet.lazy_imports import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from keras_refinenet.convert.checkpoints import (
        CheckpointMismatchError,
        TorchNotInstalledError,
        UnsafeCheckpointError,
        load_torch_state_dict,
    )
    from keras_refinenet.convert.dispatch import (
        CHECKPOINT_FORMATS,
        convert_checkpoint,
    )
    from keras_refinenet.convert.imagenet import (
        imagenet_backbone,
        imagenet_refinenet,
        keras_hub_refinenet,
    )
    from keras_refinenet.convert.install import save_converted
    from keras_refinenet.convert.light_weight_refinenet import (
        convert_light_weight_refinenet,
        light_weight_refinenet,
    )
    from keras_refinenet.convert.matconvnet import convert_matconvnet
    from keras_refinenet.convert.refinenet_pytorch import (
        convert_refinenet_pytorch,
        convert_state_dict,
    )

__all__ = [
    "CHECKPOINT_FORMATS",
    "CheckpointMismatchError",
    "TorchNotInstalledError",
    "UnsafeCheckpointError",
    "convert_checkpoint",
    "convert_light_weight_refinenet",
    "convert_matconvnet",
    "convert_refinenet_pytorch",
    "convert_state_dict",
    "imagenet_backbone",
    "imagenet_refinenet",
    "keras_hub_refinenet",
    "light_weight_refinenet",
    "load_torch_state_dict",
    "save_converted",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
