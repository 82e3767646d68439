"""Feature-pyramid backbones from keras-cv and keras-hub.

RefineNet needs the stride 4, 8, 16 and 32 feature maps of its backbone.
keras-cv backbones name them in `pyramid_level_inputs` (layer names) and
keras-hub `FeaturePyramidBackbone`s expose them as `pyramid_outputs`
(tensors); `pyramid_features` reads either.
"""

import contextlib

import keras

PYRAMID_LEVELS = ("P2", "P3", "P4", "P5")
RESNET_BLOCKS = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
RESNET_FILTERS = (64, 128, 256, 512)
RESNET_STRIDES = (1, 2, 2, 2)
BACKBONE_LIBRARIES = ("keras_cv", "keras_hub", "matconvnet")
# Preset backbone specs `{"architecture": NAME}` -> MobileNetV3 variant.
MOBILENET_V3_ARCHITECTURES = {
    "mobilenet_v3_large": "large",
    "mobilenet_v3_small": "small",
}


@contextlib.contextmanager
def global_dtype_policy(dtype):
    """Sets the global dtype policy to `dtype` (if given) for a block.

    keras-cv backbones create their layers without a `dtype`, so their
    layers take the global policy at construction; building them inside
    this block gives every layer `dtype`.

    Args:
        dtype: a dtype policy or its name; `None` changes nothing.

    Example:

    >>> with global_dtype_policy("mixed_float16"):
    ...     keras.layers.Dense(2).dtype_policy.name
    'mixed_float16'
    """
    if dtype is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(keras.dtype_policies.get(dtype))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


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


def feature_pyramid_model(encoder, levels=PYRAMID_LEVELS, name=None):
    """The part of `encoder` that computes `levels`, as a `keras.Model`.

    Layers after the last level used (e.g. the MobileNetV3 head `Conv_1`)
    are not part of the returned model, so they carry no weights that would
    never get a gradient.

    Args:
        encoder: a keras-cv or keras-hub feature-pyramid backbone.
        levels: pyramid level names, finest first.
        name: name of the returned model, `None` for the encoder's.

    Returns:
        A functional `keras.Model` from the encoder's inputs to the level
        features, finest first.

    Example:

    >>> encoder = encoder_from_spec({"architecture": "mobilenet_v3_small"})
    >>> cut = feature_pyramid_model(encoder)
    >>> len(cut.weights) < len(encoder.weights)
    True
    """
    model = keras.Model(
        encoder.inputs,
        pyramid_features(encoder, levels),
        name=name or encoder.name,
    )
    # A functional model takes the global policy; keep the encoder's.
    model.dtype_policy = encoder.dtype_policy
    return model


def resnet_backbone(
    depth, library="keras_cv", dtype=None, filters=None, blocks=None
):
    """Builds a randomly initialised ResNet v1 feature-pyramid backbone.

    No network is needed: the backbone is built from its constructor
    arguments, not from a downloaded preset.

    Args:
        depth: 50, 101 or 152.
        library: `"keras_cv"` (stride on the first 1x1 convolution of a
            bottleneck, as the original Caffe ResNet), `"keras_hub"`
            (stride on the 3x3 convolution, the layout of torchvision and
            of the RefineNet authors' PyTorch weights) or `"matconvnet"`
            (the Caffe layout with MatConvNet's symmetric padding, the
            authors' MatConvNet release: `MatConvNetResNetBackbone`).
        dtype: dtype policy of the backbone, `None` for the global one.
        filters: stage widths instead of `(64, 128, 256, 512)`, e.g. for
            tiny test models.
        blocks: blocks per stage instead of those of `depth` (`depth` may
            then be `None`).

    Returns:
        A backbone that takes normalised images of any size.

    Example:

    >>> backbone = resnet_backbone(50, library="keras_hub")
    >>> backbone.count_params() > 23_000_000
    True
    """
    if blocks is None and depth not in RESNET_BLOCKS:
        raise ValueError(
            f"`depth` must be one of {sorted(RESNET_BLOCKS)}. "
            f"Received: depth={depth!r}"
        )
    filters = list(filters or RESNET_FILTERS)
    blocks = list(blocks or RESNET_BLOCKS[depth])
    if library == "keras_cv":
        import keras_cv

        with global_dtype_policy(dtype):
            return keras_cv.models.ResNetBackbone(
                stackwise_filters=filters,
                stackwise_blocks=blocks,
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
            stackwise_num_filters=filters,
            stackwise_num_blocks=blocks,
            stackwise_num_strides=list(RESNET_STRIDES),
            block_type="bottleneck_block",
            use_pre_activation=False,
            image_shape=(None, None, 3),
            dtype=dtype,
        )
    if library == "matconvnet":
        from keras_refinenet.models.encoders.matconvnet_resnet import (
            MatConvNetResNetBackbone,
            matconvnet_resnet_config,
        )

        config = (
            matconvnet_resnet_config(depth)
            if depth in RESNET_BLOCKS
            else {"conv1_use_bias": False}
        )
        config["stackwise_num_blocks"] = blocks
        config["stackwise_num_filters"] = filters
        return MatConvNetResNetBackbone(**config, dtype=dtype)
    raise ValueError(
        f"`library` must be one of {BACKBONE_LIBRARIES}. "
        f"Received: library={library!r}"
    )


def backbone_from_spec(spec, dtype=None):
    """Builds a backbone from a preset's plain-data description.

    Args:
        spec: `{"library": ..., "depth": ...}` for the built-in ResNets
            (optionally with `"filters"` and `"blocks"` per stage),
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
        from keras_refinenet.models.encoders.mobilenet import (
            mobilenet_v3_backbone,
        )

        return mobilenet_v3_backbone(
            MOBILENET_V3_ARCHITECTURES[architecture],
            alpha=spec.get("alpha", 1.0),
            dtype=dtype,
        )
    if "depth" in spec or "blocks" in spec:
        return resnet_backbone(
            spec.get("depth"),
            library=spec.get("library", "keras_cv"),
            dtype=dtype,
            filters=spec.get("filters"),
            blocks=spec.get("blocks"),
        )
    if dtype is not None:
        policy = keras.dtype_policies.get(dtype)
        spec = {
            **spec,
            "config": {
                **spec["config"],
                "dtype": keras.dtype_policies.serialize(policy),
            },
        }
    with global_dtype_policy(dtype):
        return keras.saving.deserialize_keras_object(spec)


encoder_from_spec = backbone_from_spec
