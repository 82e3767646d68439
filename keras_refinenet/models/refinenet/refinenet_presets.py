"""The built-in preset registry: plain data, no framework imports.

A preset is a model configuration plus metadata. `config` is the flat
configuration (the image encoder given as a `{"library", "depth"}` or
`{"architecture"}` spec); `split_refinenet_config` divides it into the
keras-hub parts, which every preset also carries: `backbone`
(`RefineNetBackbone` arguments), `task` (`RefineNetImageSegmenter`
arguments) and `preprocessor` (`RefineNetImageConverter` arguments).
Weights never ship with the package: presets that have published weights
say where they come from and how to convert them, and are loaded from the
preset cache.
"""

from keras_refinenet.labels import (
    CITYSCAPES_CLASS_NAMES,
    CITYSCAPES_PALETTE,
    VOC_CLASS_NAMES,
    VOC_PALETTE,
)
from keras_refinenet.refinenet_release import (
    RELEASED_DATASETS,
    RELEASED_DEPTHS,
    released_file_name,
)

IMAGENET_NORMALIZATION = {
    "image_scale": 1.0 / 255.0,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
}
REFINENET_PYTORCH_URL = "https://github.com/DrSleep/refinenet-pytorch"
REFINENET_MATCONVNET_URL = "https://github.com/guosheng/refinenet"
LIGHT_WEIGHT_REFINENET_URL = "https://github.com/DrSleep/light-weight-refinenet"
CONVERT_PYTORCH_COMMAND = (
    "keras-refinenet convert refinenet-pytorch CHECKPOINT --name {name}"
)
CONVERT_LIGHT_WEIGHT_COMMAND = (
    "keras-refinenet convert light-weight-refinenet CHECKPOINT --name {name}"
)
CONVERT_MATCONVNET_COMMAND = (
    "keras-refinenet convert matconvnet MAT_FILE --name {name}"
)
RESNET_DEPTHS = (50, 101, 152)
# The authors' PyTorch RefineNet release has ResNet-101 only.
PYTORCH_RELEASE_DEPTH = 101
VOC_NUM_CLASSES = len(VOC_CLASS_NAMES)
CITYSCAPES_NUM_CLASSES = len(CITYSCAPES_CLASS_NAMES)
# Architecture presets default to the 21 PASCAL VOC classes.
DEFAULT_NUM_CLASSES = VOC_NUM_CLASSES


# Light-Weight RefineNet (Nekrasov et al., BMVC 2018) as RefineNet
# arguments: 1x1 projections, fusions and pooling convolutions, no residual
# conv units, a 3x3 classifier, dropout 0.5 on the stride-32 and stride-16
# features (the authors' `self.do`) and none before the classifier.
LIGHT_WEIGHT_ARCHITECTURE = {
    "adaptive_units": 0,
    "output_units": 0,
    "projection_kernel_size": 1,
    "fusion_kernel_size": 1,
    "crp_kernel_size": 1,
    "classifier_kernel_size": 3,
    "backbone_dropout": 0.5,
    "classifier_dropout": 0.0,
}
# The Light-Weight RefineNet checkpoint trained on COCO + BSD + VOC.
LIGHT_WEIGHT_COCO_DEPTH = 50
# Accuracy the authors report (mean IoU, %, PASCAL VOC 2012 val).
AUTHORS_VOC_MIOU = {
    "refinenet101_voc": 80.5,
    "refinenet152_voc": None,
    # The authors replaced their first `50_voc` checkpoint by one trained
    # on COCO, BSD and VOC (light-weight-refinenet README).
    "lwrefinenet50_voc": 82.04,
    "lwrefinenet101_voc": 80.3,
    "lwrefinenet152_voc": 82.1,
}


# Image scales of the paper's 4-cascaded 2-scale RefineNet.
PAPER_INPUT_SCALES = [1.2, 0.6]
# MobileNetV3 (keras.applications) takes pixels scaled to [-1, 1].
MOBILENET_NORMALIZATION = {
    "image_scale": 1.0 / 127.5,
    "image_mean": [1.0, 1.0, 1.0],
    "image_std": [1.0, 1.0, 1.0],
}


def _config(
    depth,
    library,
    num_classes,
    architecture=None,
    normalization=IMAGENET_NORMALIZATION,
):
    return {
        "backbone": {"library": library, "depth": depth},
        "num_classes": num_classes,
        **(architecture or {}),
        **normalization,
    }


def _weights(source, weights_format, command, url=None, sha256=None):
    """Where a preset's weights come from: the published checkpoint, the
    command converting it, and a download URL with its sha256 if one is
    known (none is hosted yet)."""
    return {
        "source": source,
        "format": weights_format,
        "url": url,
        "sha256": sha256,
        "how_to_get": command,
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
    release = (
        "trained on PASCAL VOC 2012 by the authors (PyTorch release)"
        if depth == PYTORCH_RELEASE_DEPTH
        else "for PASCAL VOC 2012 (no official PyTorch checkpoint)"
    )
    metadata = {
        "description": (
            f"RefineNet-{depth} {release}, on a keras-hub ResNet backbone "
            "in the torchvision layout."
        ),
        "backbone": f"ResNet-{depth} (keras-hub, torch layout)",
        "dataset": "voc",
        "class_names": list(VOC_CLASS_NAMES),
        "palette": [list(color) for color in VOC_PALETTE[:VOC_NUM_CLASSES]],
        "weights": _weights(
            REFINENET_PYTORCH_URL,
            "refinenet-pytorch",
            CONVERT_PYTORCH_COMMAND.format(name=name),
        ),
        "reported_miou": AUTHORS_VOC_MIOU[name],
    }
    if depth != PYTORCH_RELEASE_DEPTH:
        metadata["weights"]["note"] = (
            f"The authors publish no PyTorch RefineNet-{depth}; their "
            "MatConvNet model has the Caffe ResNet layout, which this "
            "torch-layout backbone cannot hold exactly. Convert a PyTorch "
            "checkpoint of this architecture, or use the MatConvNet model: "
            "the `refinenet152_voc2012` preset."
        )
    return {
        "metadata": metadata,
        "config": _config(depth, "keras_hub", VOC_NUM_CLASSES),
    }


def _light_weight_voc_preset(depth):
    name = f"lwrefinenet{depth}_voc"
    return {
        "metadata": {
            "description": (
                f"Light-Weight RefineNet-{depth} trained on PASCAL VOC 2012 "
                "by the authors (PyTorch release), on a keras-hub ResNet "
                "backbone in the torchvision layout."
            ),
            "backbone": f"ResNet-{depth} (keras-hub, torch layout)",
            "dataset": "voc",
            "class_names": list(VOC_CLASS_NAMES),
            "palette": [list(color) for color in VOC_PALETTE[:VOC_NUM_CLASSES]],
            "weights": _weights(
                LIGHT_WEIGHT_REFINENET_URL,
                "light-weight-refinenet",
                CONVERT_LIGHT_WEIGHT_COMMAND.format(name=name),
            ),
            "reported_miou": AUTHORS_VOC_MIOU[name],
            **(
                {"trained_on": "COCO, BSD and PASCAL VOC 2012"}
                if depth == LIGHT_WEIGHT_COCO_DEPTH
                else {}
            ),
        },
        "config": _config(
            depth, "keras_hub", VOC_NUM_CLASSES, LIGHT_WEIGHT_ARCHITECTURE
        ),
    }


# The authors' MatConvNet release (guosheng/refinenet): Caffe ResNet with
# MatConvNet's symmetric padding, 0..255 RGB minus 128, the image resized
# by 1.2 with MATLAB bicubic (uint8), MATLAB bicubic fusion upsampling
# (the authors' GPU semantics) and output rule. `matconvnet` conversion
# builds exactly this from a released file (pooling order and stages
# read from the file).
MATCONVNET_NORMALIZATION = {
    "image_scale": 1.0,
    "image_mean": [128.0, 128.0, 128.0],
    "image_std": [1.0, 1.0, 1.0],
}
MATCONVNET_RELEASE_INPUT_SCALE = 1.2
MATCONVNET_RELEASE_ARCHITECTURE = {
    "crp_stages": 4,
    "crp_pool_size": 5,
    "interpolation": "matlab_bicubic",
    "scale_mode": "uniform_crop",
    "input_scales": [MATCONVNET_RELEASE_INPUT_SCALE],
    "round_scaled_images": True,
    "pixel_offset": 128.0,
    "output_interpolation": "matlab_bicubic",
}
# The pooling order of the paper's 2-scale Cityscapes architecture preset.
MATCONVNET_ARCHITECTURE = {"crp_conv_before_pool": False}


def _matconvnet_release_preset(depth, dataset):
    info = RELEASED_DATASETS[dataset]
    name = f"refinenet{depth}_{dataset}"
    file_name = released_file_name(dataset, depth)
    pooling = "improved" if info.improved_pooling else "original"
    void = (
        "no void channel"
        if info.void_channel is None
        else f"channel {info.void_channel} is void (label "
        f"{info.label_values[info.void_channel]})"
    )
    return {
        "metadata": {
            "description": (
                f"The authors' MatConvNet RefineNet-{depth} for {dataset} "
                f"({file_name}): 4-cascaded, {pooling} chained residual "
                f"pooling, {len(info.class_names)} output channels "
                f"({void}), computed as their test code does."
            ),
            "backbone": f"ResNet-{depth} (MatConvNet, Caffe layout)",
            "dataset": dataset,
            "class_names": list(info.class_names),
            "label_values": list(info.label_values),
            "void_channel": info.void_channel,
            "palette": [list(color) for color in info.palette],
            "weights": {
                **_weights(
                    REFINENET_MATCONVNET_URL,
                    "matconvnet",
                    CONVERT_MATCONVNET_COMMAND.replace(
                        "MAT_FILE", file_name
                    ).format(name=name),
                ),
                "file_name": file_name,
            },
            "reported": info.reported.get(depth),
        },
        "config": _config(
            depth,
            "matconvnet",
            len(info.class_names),
            {
                **MATCONVNET_RELEASE_ARCHITECTURE,
                "crp_conv_before_pool": info.improved_pooling,
                "void_channel": info.void_channel,
                "label_values": list(info.label_values),
            },
            MATCONVNET_NORMALIZATION,
        ),
    }


PRESETS = {
    **{
        f"refinenet{depth}": _architecture_preset(depth)
        for depth in RESNET_DEPTHS
    },
    **{
        f"refinenet{depth}_{dataset}": _matconvnet_release_preset(
            depth, dataset
        )
        for dataset in RELEASED_DATASETS
        for depth in RELEASED_DEPTHS
    },
    "refinenet101_voc": _voc_preset(101),
    "refinenet152_voc": _voc_preset(152),
    **{
        f"lwrefinenet{depth}_voc": _light_weight_voc_preset(depth)
        for depth in RESNET_DEPTHS
    },
    "refinenet101_cityscapes_2scale": {
        "metadata": {
            "description": (
                "4-cascaded 2-scale RefineNet-101 (the paper's multi-scale "
                "variant): the image at the authors' scales 1.2 and 0.6, "
                "each through its own keras-cv ResNet-101 v1 (a featnet "
                "per scale, as in the authors' code), all eight feature "
                "maps fused by the four cascaded blocks; architecture only."
            ),
            "backbone": "ResNet-101 v1 (keras-cv)",
            "dataset": "cityscapes",
            "class_names": list(CITYSCAPES_CLASS_NAMES),
            "palette": [list(color) for color in CITYSCAPES_PALETTE],
            "weights": None,
        },
        "config": _config(
            101,
            "keras_cv",
            CITYSCAPES_NUM_CLASSES,
            {
                **MATCONVNET_ARCHITECTURE,
                "input_scales": PAPER_INPUT_SCALES,
                "share_image_encoder": False,
            },
            MATCONVNET_NORMALIZATION,
        ),
    },
    "lwrefinenet_mobilenetv3_large_cityscapes": {
        "metadata": {
            "description": (
                "Light-Weight RefineNet decoder (256 wide) on a keras-cv "
                "MobileNetV3-Large backbone, for real-time segmentation "
                "on small machines; architecture only."
            ),
            "backbone": "MobileNetV3-Large (keras-cv)",
            "dataset": "cityscapes",
            "class_names": list(CITYSCAPES_CLASS_NAMES),
            "palette": [list(color) for color in CITYSCAPES_PALETTE],
            "weights": None,
        },
        "config": {
            "backbone": {"architecture": "mobilenet_v3_large"},
            "num_classes": CITYSCAPES_NUM_CLASSES,
            **LIGHT_WEIGHT_ARCHITECTURE,
            "top_filters": 256,
            "decoder_filters": 256,
            **MOBILENET_NORMALIZATION,
        },
    },
}


# Flat configuration keys of each keras-hub part; the rest is the backbone.
TASK_KEYS = (
    "num_classes",
    "classifier_kernel_size",
    "classifier_dropout",
    "upsample_output",
    "output_interpolation",
    "void_channel",
    "label_values",
    "predict_decoder_conv",
)
# Flat normalization keys -> `RefineNetImageConverter` arguments.
PREPROCESSOR_KEYS = {
    "image_scale": "image_scale",
    "image_mean": "mean",
    "image_std": "std",
}
ENCODER_KEY = "backbone"
# Keys of the flat configuration that belong to no part (Keras metadata).
MODEL_KEYS = ("name", "trainable", "dtype")


def split_refinenet_config(config):
    """Divides a flat RefineNet configuration into its keras-hub parts.

    Args:
        config: a flat configuration: the image encoder under `"backbone"`
            (a spec or a serialized model), decoder, head and
            normalization arguments.

    Returns:
        `(backbone, task, preprocessor)` dicts; `backbone["image_encoder"]`
        holds the encoder.

    Example:

    >>> backbone, task, preprocessor = split_refinenet_config(
    ...     {"backbone": {"depth": 50}, "num_classes": 3, "top_filters": 8,
    ...      "image_scale": 1.0})
    >>> backbone, task, preprocessor
    ({'image_encoder': {'depth': 50}, 'top_filters': 8}, \
{'num_classes': 3}, {'image_scale': 1.0})
    """
    backbone, task, preprocessor = {}, {}, {}
    for key, value in config.items():
        if key == ENCODER_KEY:
            backbone["image_encoder"] = value
        elif key in TASK_KEYS:
            task[key] = value
        elif key in PREPROCESSOR_KEYS:
            preprocessor[PREPROCESSOR_KEYS[key]] = value
        elif key not in MODEL_KEYS:
            backbone[key] = value
    return backbone, task, preprocessor


for _preset in PRESETS.values():
    (
        _preset["backbone"],
        _preset["task"],
        _preset["preprocessor"],
    ) = split_refinenet_config(_preset["config"])
del _preset
