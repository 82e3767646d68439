"""`RefineNetBackbone`: an image encoder plus the multi-path refinement."""

import keras
import keras_hub

from keras_refinenet.constants import RGB_CHANNELS
from keras_refinenet.layers.refinenet_block import RefineNetBlock
from keras_refinenet.layers.scale_images import ScaleImages
from keras_refinenet.layers.utils import (
    TORCH_CONV_INITIALIZER,
    check_positive_int,
    conv2d,
)
from keras_refinenet.layers.winograd_conv import (
    DIRECT,
    check_decoder_conv,
    decoder_conv_scope,
)
from keras_refinenet.models.encoders.pyramid import (
    PYRAMID_LEVELS,
    encoder_from_spec,
    feature_pyramid_model,
)

# Levels with encoder dropout, counted from the coarsest (stride 32, 16).
DROPOUT_LEVELS = 2
# Cascade counts of the paper's Fig. 7: single, 2-cascaded and 4-cascaded.
NUM_CASCADES = (1, 2, 4)
DEFAULT_INPUT_SCALES = (1.0,)
# Name of the cut image encoder inside the backbone.
IMAGE_ENCODER_NAME = "image_encoder"


def cascade_groups(num_levels, num_cascades):
    """Encoder levels fused by each cascaded block, coarsest block first.

    Levels are numbered from the coarsest (1, stride 32) to the finest
    (`num_levels`, stride 4) and split into `num_cascades` runs of equal
    length: with four levels, 4 cascades give `[[1], [2], [3], [4]]`, 2
    give `[[1, 2], [3, 4]]` (the paper's 2-cascaded RefineNet: block 1
    fuses ResNet blocks 4 and 3, block 2 fuses blocks 2 and 1 with block
    1's output) and 1 gives `[[1, 2, 3, 4]]` (the single RefineNet).

    Args:
        num_levels: number of encoder levels.
        num_cascades: number of cascaded RefineNet blocks.

    Returns:
        A list of lists of level numbers.

    Example:

    >>> cascade_groups(4, 2)
    [[1, 2], [3, 4]]
    """
    if num_cascades not in NUM_CASCADES or num_levels % num_cascades:
        raise ValueError(
            f"`num_cascades` must be one of {NUM_CASCADES} and divide the "
            f"{num_levels} pyramid levels. "
            f"Received: num_cascades={num_cascades!r}"
        )
    size = num_levels // num_cascades
    return [
        list(range(start + 1, start + size + 1))
        for start in range(0, num_levels, size)
    ]


def _check_rate(name, rate):
    if not 0.0 <= rate < 1.0:
        raise ValueError(
            f"`{name}` must be in [0, 1). Received: {name}={rate!r}"
        )


@keras.saving.register_keras_serializable(package="keras_refinenet")
class RefineNetBackbone(keras_hub.models.Backbone):
    """RefineNet's feature network: an image encoder and the refinement.

    The multi-path refinement decoder of Lin et al. (CVPR 2017) on the
    stride 4, 8, 16 and 32 features of `image_encoder`. The stride-32
    features go through a projection convolution (to `top_filters`) and a
    one-input `RefineNetBlock`; each finer level is projected to
    `decoder_filters` and fused with the output of the coarser block. The
    output is the stride-4 feature map of the last block.

    `image_encoder` is cut at the last pyramid level used: only that part
    is tracked (`self.image_encoder`) and saved, so e.g. the MobileNetV3
    head carries no weights that never get a gradient. The encoder's full
    configuration is kept for `get_config`, so presets round-trip.

    The paper's other variants (its Fig. 7) are arguments. `num_cascades`
    groups the levels, coarsest first, into 1, 2 or 4 blocks (see
    `cascade_groups`): each block fuses the projected levels of its group
    plus the previous block's output, with `adaptive_units` RCUs on each
    encoder path and none on the previous block's path; a block is
    `top_filters` wide if it takes only the stride-32 level, otherwise the
    smallest of its levels' widths. `input_scales` runs the image at each
    scale through the shared encoder; every block then takes its levels at
    every scale. Scale `s > 1` has its own projections
    `scale{s}_level{k}_projection`.

    Args:
        image_encoder: a feature-pyramid model taking normalized images of
            any size: a keras-hub `FeaturePyramidBackbone`
            (`pyramid_outputs`) or a keras-cv backbone
            (`pyramid_level_inputs`).
        top_filters: width of the stride-32 path.
        decoder_filters: width of the finer paths.
        adaptive_units: residual conv units on each encoder path.
        crp_stages: chained residual pooling stages per block.
        output_units: residual conv units after each pooling chain.
        projection_kernel_size: kernel of the encoder projections (3, or 1
            for Light-Weight RefineNet).
        fusion_kernel_size: kernel of the fusion convolutions.
        crp_kernel_size: kernel of the pooling-chain convolutions.
        crp_pool_size: max-pooling window of the pooling chains.
        crp_conv_before_pool: "improved" chained residual pooling.
        rcu_kernel_size: kernel of the residual conv units.
        backbone_dropout: dropout rate on the stride-32 and stride-16
            encoder features (training only).
        align_corners: bilinear resizing with aligned corners.
        interpolation: resize of the fusion upsampling and of the input
            scales: `"bilinear"` or `"matlab_bicubic"` (MATLAB `imresize`,
            as the authors' MatConvNet models compute).
        scale_mode: `matlab_bicubic` fusion upsampling: `"per_axis"`
            (straight to the target size, the authors' CPU path) or
            `"uniform_crop"` (one factor then a top-left crop, the
            authors' GPU path and their released results).
        round_scaled_images: `matlab_bicubic` input scales only: round the
            rescaled images to uint8 values per pass, as MATLAB does for
            the authors' uint8 images (see `pixel_offset`).
        pixel_offset: what turns the normalized images back into 0..255
            pixels for `round_scaled_images` (the authors' mean, 128).
        freeze_backbone: make the image encoder untrainable (BatchNorm
            then runs in inference mode).
        freeze_batchnorm: keep only the encoder's BatchNorm layers frozen,
            in inference mode, for small segmentation batches.
        pyramid_levels: names of the stride 4, 8, 16 and 32 encoder
            outputs.
        num_cascades: number of cascaded RefineNet blocks: 4 (default),
            2 or 1 (the paper's single RefineNet).
        input_scales: image scales fed through the encoder, e.g.
            `(1.2, 0.6)` for the paper's 2-scale RefineNet.
        share_image_encoder: with several `input_scales`, one encoder for
            every scale (`True`) or one per scale (`False`: the paper's and
            the authors' 2-scale network, a featnet group per scale; the
            other scales' encoders `scale{k}_image_encoder` are built from
            `image_encoder`'s configuration, with their own weights).
        decoder_conv: how the decoder's 3x3 convolutions compute:
            `"direct"` (`keras.layers.Conv2D`) or `"winograd"`
            (`WinogradConv2D`, F(4x4, 3x3): same weights and names, float32
            round-off differences only, fewer multiplications).
        dtype: dtype policy of every layer, the image encoder included.
        **kwargs: `keras_hub.models.Backbone` arguments (`name`, ...).

    Example:

    >>> import numpy as np
    >>> from keras_refinenet.models.encoders import resnet_backbone
    >>> encoder = resnet_backbone(None, filters=(8, 8, 16, 16),
    ...                           blocks=(1, 1, 1, 1))
    >>> backbone = RefineNetBackbone(encoder, top_filters=32,
    ...                              decoder_filters=16)
    >>> backbone.predict(np.zeros((1, 64, 96, 3)), verbose=0).shape
    (1, 16, 24, 16)
    """

    def __init__(
        self,
        image_encoder,
        top_filters=512,
        decoder_filters=256,
        adaptive_units=2,
        crp_stages=4,
        output_units=3,
        projection_kernel_size=3,
        fusion_kernel_size=3,
        crp_kernel_size=3,
        crp_pool_size=5,
        crp_conv_before_pool=False,
        rcu_kernel_size=3,
        backbone_dropout=0.5,
        align_corners=True,
        interpolation="bilinear",
        scale_mode="per_axis",
        round_scaled_images=False,
        pixel_offset=0.0,
        freeze_backbone=False,
        freeze_batchnorm=False,
        pyramid_levels=PYRAMID_LEVELS,
        num_cascades=4,
        input_scales=DEFAULT_INPUT_SCALES,
        share_image_encoder=True,
        decoder_conv=DIRECT,
        dtype=None,
        **kwargs,
    ):
        check_decoder_conv(decoder_conv)
        check_positive_int("top_filters", top_filters)
        check_positive_int("decoder_filters", decoder_filters)
        _check_rate("backbone_dropout", backbone_dropout)
        pyramid_levels = tuple(pyramid_levels)
        input_scales = tuple(float(scale) for scale in input_scales)
        if not input_scales or min(input_scales) <= 0:
            raise ValueError(
                "`input_scales` must be a non-empty list of positive "
                f"numbers. Received: input_scales={list(input_scales)}"
            )
        groups = cascade_groups(len(pyramid_levels), num_cascades)
        num_levels = len(pyramid_levels)
        widths = [top_filters] + [decoder_filters] * (num_levels - 1)
        # The full encoder is not tracked: only its cut feature model is.
        image_encoder_config = keras.layers.serialize(image_encoder)

        # The decoder's 3x3 convolutions are built (in `refine`) as
        # `decoder_conv` ones.
        with decoder_conv_scope(decoder_conv):
            # === Layers ===
            self.image_encoder = feature_pyramid_model(
                image_encoder, pyramid_levels, name=IMAGE_ENCODER_NAME
            )
            # One more encoder per extra scale when they are not shared.
            self.scale_image_encoders = [
                feature_pyramid_model(
                    _deserialize_encoder(image_encoder_config, dtype),
                    pyramid_levels,
                    name=f"scale{index + 1}_{IMAGE_ENCODER_NAME}",
                )
                for index in range(1, len(input_scales))
                if not share_image_encoder
            ]
            self.image_scalings = [
                None
                if scale == 1.0
                else ScaleImages(
                    scale,
                    align_corners=align_corners,
                    interpolation=interpolation,
                    round_to_uint8=round_scaled_images,
                    pixel_offset=pixel_offset,
                    dtype=dtype,
                    name=f"scale{index + 1}_resize",
                )
                for index, scale in enumerate(input_scales)
            ]
            self.encoder_dropouts = [
                keras.layers.Dropout(
                    backbone_dropout, dtype=dtype, name=f"level{level}_dropout"
                )
                for level in range(1, DROPOUT_LEVELS + 1)
            ]
            # projections[scale][level - 1]
            self.projections = [
                [
                    conv2d(
                        width,
                        projection_kernel_size,
                        use_bias=False,
                        kernel_initializer=TORCH_CONV_INITIALIZER,
                        dtype=dtype,
                        name=(
                            f"level{level}_projection"
                            if scale == 0
                            else f"scale{scale + 1}_level{level}_projection"
                        ),
                    )
                    for level, width in enumerate(widths, start=1)
                ]
                for scale in range(len(input_scales))
            ]
            self.refinenet_blocks = []
            for block, group in enumerate(groups, start=1):
                num_paths = len(group) * len(input_scales)
                self.refinenet_blocks.append(
                    RefineNetBlock(
                        filters=min(widths[level - 1] for level in group),
                        adaptive_units=adaptive_units
                        if num_paths == 1 and block == 1
                        else [adaptive_units] * num_paths
                        + ([0] if block > 1 else []),
                        crp_stages=crp_stages,
                        output_units=output_units,
                        rcu_kernel_size=rcu_kernel_size,
                        fusion_kernel_size=fusion_kernel_size,
                        crp_kernel_size=crp_kernel_size,
                        crp_pool_size=crp_pool_size,
                        crp_conv_before_pool=crp_conv_before_pool,
                        align_corners=align_corners,
                        interpolation=interpolation,
                        scale_mode=scale_mode,
                        dtype=dtype,
                        name=f"refinenet_block{block}",
                    )
                )
            self.cascade_groups = groups

            # === Functional Model ===
            images = keras.Input(
                shape=(None, None, RGB_CHANNELS), name="images"
            )
            features = self.refine(images)
            super().__init__(
                inputs=images, outputs=features, dtype=dtype, **kwargs
            )

        # === Config ===
        self.image_encoder_config = image_encoder_config
        self.top_filters = top_filters
        self.decoder_filters = decoder_filters
        self.adaptive_units = adaptive_units
        self.crp_stages = crp_stages
        self.output_units = output_units
        self.projection_kernel_size = projection_kernel_size
        self.fusion_kernel_size = fusion_kernel_size
        self.crp_kernel_size = crp_kernel_size
        self.crp_pool_size = crp_pool_size
        self.crp_conv_before_pool = crp_conv_before_pool
        self.rcu_kernel_size = rcu_kernel_size
        self.backbone_dropout = backbone_dropout
        self.align_corners = align_corners
        self.interpolation = interpolation
        self.scale_mode = scale_mode
        self.round_scaled_images = round_scaled_images
        self.pixel_offset = pixel_offset
        self.freeze_backbone = freeze_backbone
        self.freeze_batchnorm = freeze_batchnorm
        self.pyramid_levels = pyramid_levels
        self.num_cascades = num_cascades
        self.input_scales = list(input_scales)
        self.share_image_encoder = share_image_encoder
        self.decoder_conv = decoder_conv
        self._apply_freezing()

    def refine(self, images):
        """The stride-4 features of normalized `images`, with this
        backbone's layers (used to build the model and its legacy layout).

        Args:
            images: a symbolic or eager batch of normalized images.

        Returns:
            The output of the last RefineNet block.
        """
        projected = []
        for scale, scaling in enumerate(self.image_scalings):
            scaled = images if scaling is None else scaling(images)
            encoder = (
                self.image_encoder
                if scale == 0 or not self.scale_image_encoders
                else self.scale_image_encoders[scale - 1]
            )
            features = list(reversed(encoder(scaled)))
            for level in range(1, min(DROPOUT_LEVELS, len(features)) + 1):
                features[level - 1] = self.encoder_dropouts[level - 1](
                    features[level - 1]
                )
            projected.append(
                [
                    projection(feature)
                    for projection, feature in zip(
                        self.projections[scale], features
                    )
                ]
            )
        x = None
        for block, group in zip(self.refinenet_blocks, self.cascade_groups):
            block_inputs = [
                scale_features[level - 1]
                for level in group
                for scale_features in projected
            ]
            if x is not None:
                block_inputs.append(x)
            x = block(
                block_inputs[0] if len(block_inputs) == 1 else block_inputs
            )
        return x

    @property
    def image_encoder_arguments(self):
        """The constructor arguments of the (uncut) image encoder."""
        return dict(self.image_encoder_config["config"])

    def _apply_freezing(self):
        for encoder in [self.image_encoder, *self.scale_image_encoders]:
            if self.freeze_backbone:
                encoder.trainable = False
            elif self.freeze_batchnorm:
                for layer in encoder._flatten_layers(include_self=False):
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.trainable = False

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_encoder": self.image_encoder_config,
                "top_filters": self.top_filters,
                "decoder_filters": self.decoder_filters,
                "adaptive_units": self.adaptive_units,
                "crp_stages": self.crp_stages,
                "output_units": self.output_units,
                "projection_kernel_size": self.projection_kernel_size,
                "fusion_kernel_size": self.fusion_kernel_size,
                "crp_kernel_size": self.crp_kernel_size,
                "crp_pool_size": self.crp_pool_size,
                "crp_conv_before_pool": self.crp_conv_before_pool,
                "rcu_kernel_size": self.rcu_kernel_size,
                "backbone_dropout": self.backbone_dropout,
                "align_corners": self.align_corners,
                "interpolation": self.interpolation,
                "scale_mode": self.scale_mode,
                "round_scaled_images": self.round_scaled_images,
                "pixel_offset": self.pixel_offset,
                "freeze_backbone": self.freeze_backbone,
                "freeze_batchnorm": self.freeze_batchnorm,
                "pyramid_levels": list(self.pyramid_levels),
                "num_cascades": self.num_cascades,
                "input_scales": list(self.input_scales),
                "share_image_encoder": self.share_image_encoder,
                "decoder_conv": self.decoder_conv,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        dtype = config.get("dtype")
        if isinstance(dtype, dict):
            dtype = keras.dtype_policies.deserialize(dtype)
            config["dtype"] = dtype
        encoder = config.pop("image_encoder")
        if isinstance(encoder, dict):
            encoder = _deserialize_encoder(encoder, dtype)
        return cls(image_encoder=encoder, **config)


def _deserialize_encoder(serialized, dtype):
    """Builds the image encoder, with `dtype` reaching all its layers."""
    return encoder_from_spec(serialized, dtype=dtype)
