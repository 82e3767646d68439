"""Feature-pyramid backbones from keras-cv and keras-hub.

RefineNet needs the stride 4, 8, 16 and 32 feature maps of its backbone.
keras-cv backbones name them in `pyramid_level_inputs` (layer names) and
keras-hub `FeaturePyramidBackbone`s expose them as `pyramid_outputs`
(tensors); `pyramid_features` reads either.
"""

import keras

PYRAMID_LEVELS = ("P2", "P3", "P4", "P5")
RESNET_BLOCKS = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
RESNET_FILTERS = (64, 128, 256, 512)
RESNET_STRIDES = (1, 2, 2, 2)
BACKBONE_LIBRARIES = ("keras_cv", "keras_hub")
# Preset backbone specs `{"architecture": NAME}` -> MobileNetV3 variant.
MOBILENET_V3_ARCHITECTURES = {
    "mobilenet_v3_large": "large",
    "mobilenet_v3_small": "small",
}


def pyramid_features(backbone, levels=PYRAMID_LEVELS):
    """Returns the backbone's feature tensors for `levels`, finest first.

    Args:
        backbone: a keras-cv backbone with `pyramid_level_inputs` or a
            keras-hub `FeaturePyramidBackbone` with `pyramid_outputs`.
        levels: pyramid level names, e.g. `("P2", "P3", "P4", "P5")` for
            strides 4 to 32.

    Returns:
        A list of symbolic tensors, one per level.

    Example:

    >>> backbone = resnet_backbone(50)
    >>> [t.shape[-1] for t in pyramid_features(backbone)]
    [256, 512, 1024, 2048]
    """
    outputs = getattr(backbone, "pyramid_outputs", None)
    if outputs:
        available = dict(outputs)
    elif getattr(backbone, "pyramid_level_inputs", None):
        available = {
            level: backbone.get_layer(layer_name).output
            for level, layer_name in backbone.pyramid_level_inputs.items()
        }
    else:
        raise ValueError(
            "`backbone` must expose a feature pyramid: a keras-cv backbone "
            "with `pyramid_level_inputs` or a keras-hub "
            "`FeaturePyramidBackbone` with `pyramid_outputs`. "
            f"Received: backbone={type(backbone).__name__}"
        )
    missing = [level for level in levels if level not in available]
    if missing:
        raise ValueError(
            f"The backbone has no pyramid levels {missing}; it offers "
            f"{sorted(available)}. Received: levels={list(levels)}"
        )
    return [available[level] for level in levels]


def resnet_backbone(depth, library="keras_cv", dtype=None):
    """Builds a randomly initialised ResNet v1 feature-pyramid backbone.

    No network is needed: the backbone is built from its constructor
    arguments, not from a downloaded preset.

    Args:
        depth: 50, 101 or 152.
        library: `"keras_cv"` (stride on the first 1x1 convolution of a
            bottleneck, as the original Caffe ResNet) or `"keras_hub"`
            (stride on the 3x3 convolution, the layout of torchvision and
            of the RefineNet authors' PyTorch weights).
        dtype: dtype policy of the backbone, `None` for the global one.

    Returns:
        A backbone that takes normalised images of any size.

    Example:

    >>> backbone = resnet_backbone(50, library="keras_hub")
    >>> backbone.count_params() > 23_000_000
    True
    """
    if depth not in RESNET_BLOCKS:
        raise ValueError(
            f"`depth` must be one of {sorted(RESNET_BLOCKS)}. "
            f"Received: depth={depth!r}"
        )
    if library == "keras_cv":
        import keras_cv

        return keras_cv.models.ResNetBackbone(
            stackwise_filters=list(RESNET_FILTERS),
            stackwise_blocks=list(RESNET_BLOCKS[depth]),
            stackwise_strides=list(RESNET_STRIDES),
            include_rescaling=False,
            input_shape=(None, None, 3),
            **({} if dtype is None else {"dtype": dtype}),
        )
    if library == "keras_hub":
        import keras_hub

        return keras_hub.models.ResNetBackbone(
            input_conv_filters=[64],
            input_conv_kernel_sizes=[7],
            stackwise_num_filters=list(RESNET_FILTERS),
            stackwise_num_blocks=list(RESNET_BLOCKS[depth]),
            stackwise_num_strides=list(RESNET_STRIDES),
            block_type="bottleneck_block",
            use_pre_activation=False,
            image_shape=(None, None, 3),
            dtype=dtype,
        )
    raise ValueError(
        f"`library` must be one of {BACKBONE_LIBRARIES}. "
        f"Received: library={library!r}"
    )


def backbone_from_spec(spec, dtype=None):
    """Builds a backbone from a preset's plain-data description.

    Args:
        spec: `{"library": ..., "depth": ...}` for the built-in ResNets,
            `{"architecture": "mobilenet_v3_large" | "mobilenet_v3_small",
            "alpha": ...}` for keras-cv MobileNetV3, or a serialized Keras
            object (`{"class_name": ..., "config": ...}`).
        dtype: dtype policy override, `None` for the global one.

    Returns:
        The backbone model.

    Example:

    >>> spec = {"architecture": "mobilenet_v3_small"}
    >>> sorted(backbone_from_spec(spec).pyramid_level_inputs)
    ['P1', 'P2', 'P3', 'P4', 'P5']
    """
    if "architecture" in spec:
        architecture = spec["architecture"]
        if architecture not in MOBILENET_V3_ARCHITECTURES:
            raise ValueError(
                "`architecture` must be one of "
                f"{sorted(MOBILENET_V3_ARCHITECTURES)}. "
                f"Received: architecture={architecture!r}"
            )
        from keras_refinenet.models.mobilenet import mobilenet_v3_backbone

        return mobilenet_v3_backbone(
            MOBILENET_V3_ARCHITECTURES[architecture],
            alpha=spec.get("alpha", 1.0),
            dtype=dtype,
        )
    if "depth" in spec:
        return resnet_backbone(
            spec["depth"], library=spec.get("library", "keras_cv"), dtype=dtype
        )
    return keras.saving.deserialize_keras_object(spec)
