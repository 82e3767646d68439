"""The built-in preset registry: plain data, no code runs here.

A preset is a model configuration (`config`, with the backbone given as a
`{"library", "depth"}` spec) plus metadata. Weights never ship with the
package: presets that have published weights say where they come from and
how to convert them, and are loaded from the preset cache.
"""

from keras_refinenet.data.cityscapes import (
    CITYSCAPES_CLASS_NAMES,
    CITYSCAPES_PALETTE,
)
from keras_refinenet.data.voc import VOC_CLASS_NAMES, VOC_PALETTE

IMAGENET_NORMALIZATION = {
    "image_scale": 1.0 / 255.0,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
}
REFINENET_PYTORCH_URL = "https://github.com/DrSleep/refinenet-pytorch"
REFINENET_MATCONVNET_URL = "https://github.com/guosheng/refinenet"
CONVERT_PYTORCH_COMMAND = (
    "keras-refinenet convert refinenet-pytorch CHECKPOINT --name {name}"
)
CONVERT_MATCONVNET_COMMAND = (
    "keras-refinenet convert matconvnet MAT_FILE --name {name}"
)
RESNET_DEPTHS = (50, 101, 152)
VOC_NUM_CLASSES = len(VOC_CLASS_NAMES)
CITYSCAPES_NUM_CLASSES = len(CITYSCAPES_CLASS_NAMES)
# Architecture presets default to the 21 PASCAL VOC classes.
DEFAULT_NUM_CLASSES = VOC_NUM_CLASSES


def _config(depth, library, num_classes):
    return {
        "backbone": {"library": library, "depth": depth},
        "num_classes": num_classes,
        **IMAGENET_NORMALIZATION,
    }


def _architecture_preset(depth):
    return {
        "metadata": {
            "description": (
                f"4-cascaded RefineNet-{depth} on a keras-cv ResNet-{depth} "
                "v1 backbone; architecture only (random initialisation), "
                "for training from scratch or from ImageNet backbones."
            ),
            "backbone": f"ResNet-{depth} v1 (keras-cv)",
            "dataset": None,
            "class_names": None,
            "palette": None,
            "weights": None,
        },
        "config": _config(depth, "keras_cv", DEFAULT_NUM_CLASSES),
    }


def _voc_preset(depth):
    name = f"refinenet{depth}_voc"
    return {
        "metadata": {
            "description": (
                f"RefineNet-{depth} trained on PASCAL VOC 2012 by the "
                "authors (PyTorch release), on a keras-hub ResNet "
                "backbone in the torchvision layout."
            ),
            "backbone": f"ResNet-{depth} (keras-hub, torch layout)",
            "dataset": "voc",
            "class_names": list(VOC_CLASS_NAMES),
            "palette": [list(color) for color in VOC_PALETTE[:VOC_NUM_CLASSES]],
            "weights": {
                "source": REFINENET_PYTORCH_URL,
                "format": "refinenet-pytorch",
                "sha256": None,
                "how_to_get": CONVERT_PYTORCH_COMMAND.format(name=name),
            },
        },
        "config": _config(depth, "keras_hub", VOC_NUM_CLASSES),
    }


PRESETS = {
    **{
        f"refinenet{depth}": _architecture_preset(depth)
        for depth in RESNET_DEPTHS
    },
    "refinenet101_cityscapes": {
        "metadata": {
            "description": (
                "RefineNet-101 for the 19 Cityscapes classes on a keras-cv "
                "ResNet-101 v1 backbone (the Caffe layout of the authors' "
                "MatConvNet release)."
            ),
            "backbone": "ResNet-101 v1 (keras-cv)",
            "dataset": "cityscapes",
            "class_names": list(CITYSCAPES_CLASS_NAMES),
            "palette": [list(color) for color in CITYSCAPES_PALETTE],
            "weights": {
                "source": REFINENET_MATCONVNET_URL,
                "format": "matconvnet",
                "sha256": None,
                "how_to_get": CONVERT_MATCONVNET_COMMAND.format(
                    name="refinenet101_cityscapes"
                ),
            },
        },
        "config": _config(101, "keras_cv", CITYSCAPES_NUM_CLASSES),
    },
    "refinenet101_voc": _voc_preset(101),
    "refinenet152_voc": _voc_preset(152),
}
