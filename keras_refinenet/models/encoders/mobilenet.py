"""MobileNetV3 feature-pyramid backbones for real-time RefineNet.

keras-cv's `MobileNetV3Backbone` names its stride 2..32 outputs in
`pyramid_level_inputs` (`P1`..`P5`), so `RefineNet` can use it directly.
The stage tables below are those of the MobileNetV3 paper (Howard et al.,
2019, Tables 1 and 2) and of `keras.applications.MobileNetV3*`; the
backbone is built from them, with no network access.
"""

# One entry per inverted residual stage:
# (expansion, filters, kernel_size, stride, se_ratio, activation).
MOBILENET_V3_STAGES = {
    "large": (
        (1, 16, 3, 1, None, "relu"),
        (4, 24, 3, 2, None, "relu"),
        (3, 24, 3, 1, None, "relu"),
        (3, 40, 5, 2, 0.25, "relu"),
        (3, 40, 5, 1, 0.25, "relu"),
        (3, 40, 5, 1, 0.25, "relu"),
        (6, 80, 3, 2, None, "hard_swish"),
        (2.5, 80, 3, 1, None, "hard_swish"),
        (2.3, 80, 3, 1, None, "hard_swish"),
        (2.3, 80, 3, 1, None, "hard_swish"),
        (6, 112, 3, 1, 0.25, "hard_swish"),
        (6, 112, 3, 1, 0.25, "hard_swish"),
        (6, 160, 5, 2, 0.25, "hard_swish"),
        (6, 160, 5, 1, 0.25, "hard_swish"),
        (6, 160, 5, 1, 0.25, "hard_swish"),
    ),
    "small": (
        (1, 16, 3, 2, 0.25, "relu"),
        (72.0 / 16, 24, 3, 2, None, "relu"),
        (88.0 / 24, 24, 3, 1, None, "relu"),
        (4, 40, 5, 2, 0.25, "hard_swish"),
        (6, 40, 5, 1, 0.25, "hard_swish"),
        (6, 40, 5, 1, 0.25, "hard_swish"),
        (3, 48, 5, 1, 0.25, "hard_swish"),
        (3, 48, 5, 1, 0.25, "hard_swish"),
        (6, 96, 5, 2, 0.25, "hard_swish"),
        (6, 96, 5, 1, 0.25, "hard_swish"),
        (6, 96, 5, 1, 0.25, "hard_swish"),
    ),
}
# Light-Weight RefineNet decoder (Nekrasov et al., BMVC 2018): no RCUs,
# 1x1 projections, fusions and pooling-chain convolutions; the widths of
# its MobileNet model (256 everywhere).
LIGHT_WEIGHT_DECODER = {
    "top_filters": 256,
    "decoder_filters": 256,
    "adaptive_units": 0,
    "output_units": 0,
    "projection_kernel_size": 1,
    "fusion_kernel_size": 1,
    "crp_kernel_size": 1,
}


def mobilenet_v3_backbone(variant="large", alpha=1.0, dtype=None):
    """Builds a randomly initialised keras-cv MobileNetV3 backbone.

    Its `P2`..`P5` outputs (strides 4 to 32) have 24, 40, 112 and 160
    channels for `"large"` and 16, 24, 48 and 96 for `"small"` at
    `alpha=1`. The backbone expects images normalized by the model
    (`include_rescaling=False`).

    Args:
        variant: `"large"` or `"small"`.
        alpha: width multiplier.
        dtype: dtype policy of the backbone, `None` for the global one.

    Returns:
        A `keras_cv.models.MobileNetV3Backbone`.

    Example:

    >>> backbone = mobilenet_v3_backbone("large")
    >>> sorted(backbone.pyramid_level_inputs)
    ['P1', 'P2', 'P3', 'P4', 'P5']
    """
    if variant not in MOBILENET_V3_STAGES:
        raise ValueError(
            f"`variant` must be one of {sorted(MOBILENET_V3_STAGES)}. "
            f"Received: variant={variant!r}"
        )
    import keras_cv

    from keras_refinenet.models.encoders.pyramid import global_dtype_policy

    expansion, filters, kernel, stride, se_ratio, activation = (
        list(column) for column in zip(*MOBILENET_V3_STAGES[variant])
    )
    with global_dtype_policy(dtype):
        return keras_cv.models.MobileNetV3Backbone(
            stackwise_expansion=expansion,
            stackwise_filters=filters,
            stackwise_kernel_size=kernel,
            stackwise_stride=stride,
            stackwise_se_ratio=se_ratio,
            stackwise_activation=activation,
            include_rescaling=False,
            input_shape=(None, None, 3),
            alpha=alpha,
            **({} if dtype is None else {"dtype": dtype}),
        )
