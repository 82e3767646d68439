import copy

import keras

from keras_refinenet.layers.image_normalization import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageNormalization,
)
from keras_refinenet.layers.refinenet_block import RefineNetBlock
from keras_refinenet.layers.resize import ResizeLike
from keras_refinenet.layers.scale_images import ScaleImages
from keras_refinenet.layers.utils import (
    TORCH_CONV_INITIALIZER,
    check_positive_int,
    conv2d,
)
from keras_refinenet.models.backbones import PYRAMID_LEVELS, pyramid_features
from keras_refinenet.models.preset_io import load_preset, save_preset
from keras_refinenet.models.presets import PRESETS


class classproperty:
    """A read-only property of the class, like keras-hub's `presets`."""

    def __init__(self, getter):
        self.getter = getter

    def __get__(self, instance, owner):
        return self.getter(owner)


# Levels with backbone dropout, counted from the coarsest (stride 32, 16).
DROPOUT_LEVELS = 2
# Cascade counts of the paper's Fig. 7: single, 2-cascaded and 4-cascaded.
NUM_CASCADES = (1, 2, 4)
DEFAULT_INPUT_SCALES = (1.0,)


def cascade_groups(num_levels, num_cascades):
    """Backbone levels fused by each cascaded block, coarsest block first.

    Levels are numbered from the coarsest (1, stride 32) to the finest
    (`num_levels`, stride 4) and split into `num_cascades` runs of equal
    length: with four levels, 4 cascades give `[[1], [2], [3], [4]]`, 2
    give `[[1, 2], [3, 4]]` (the paper's 2-cascaded RefineNet: block 1
    fuses ResNet blocks 4 and 3, block 2 fuses blocks 2 and 1 with block
    1's output) and 1 gives `[[1, 2, 3, 4]]` (the single RefineNet).

    Args:
        num_levels: number of backbone levels.
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


@keras.saving.register_keras_serializable(package="keras_refinenet")
class RefineNet(keras.Model):
    """RefineNet: multi-path refinement for semantic segmentation.

    The 4-cascaded, 1-scale RefineNet of Lin et al. (CVPR 2017), computed as
    the authors' PyTorch RefineNet-101. The stride-32 backbone features go
    through a projection convolution (to `top_filters`) and a one-input
    `RefineNetBlock`; each finer level (stride 16, 8, 4) is projected to
    `decoder_filters` and fused by a two-input `RefineNetBlock` with the
    output of the coarser block. A classifier convolution follows the
    stride-4 block. The model takes RGB images with values 0..255 of any
    size, normalizes them itself, and returns float32 logits.

    The paper's other variants (its Fig. 7) are arguments. `num_cascades`
    groups the levels, coarsest first, into 1, 2 or 4 blocks (see
    `cascade_groups`): each block fuses the projected levels of its group
    plus the previous block's output, at the largest input resolution, with
    `adaptive_units` RCUs on each backbone path and none on the previous
    block's path; a block is `top_filters` wide if it takes only the
    stride-32 level, otherwise `min` of its levels' widths (the paper's
    "smallest input dimension"). `input_scales` runs the image at each
    scale through the shared backbone (the paper's 2-scale RefineNet uses
    two); every block then takes its levels at every scale, e.g. with
    `input_scales=(1.0, 0.6)` block 1 of the 4-cascaded model fuses the two
    stride-32 maps and block 2 the two stride-16 maps and block 1's output.
    Scale `s > 1` has its own projections `scale{s}_level{k}_projection`.

    Args:
        backbone: a feature-pyramid backbone taking normalized images of
            any size: a keras-cv backbone (`pyramid_level_inputs`) or a
            keras-hub `FeaturePyramidBackbone` (`pyramid_outputs`).
        num_classes: number of output classes.
        top_filters: width of the stride-32 path.
        decoder_filters: width of the finer paths.
        adaptive_units: residual conv units on each backbone path.
        crp_stages: chained residual pooling stages per block.
        output_units: residual conv units after each pooling chain.
        projection_kernel_size: kernel of the backbone projections (3, or 1
            for Light-Weight RefineNet).
        fusion_kernel_size: kernel of the fusion convolutions.
        crp_kernel_size: kernel of the pooling-chain convolutions.
        crp_pool_size: max-pooling window of the pooling chains.
        crp_conv_before_pool: "improved" chained residual pooling.
        rcu_kernel_size: kernel of the residual conv units.
        classifier_kernel_size: kernel of the classifier convolution.
        backbone_dropout: dropout rate on the stride-32 and stride-16
            backbone features (training only).
        classifier_dropout: dropout rate before the classifier.
        align_corners: bilinear upsampling with aligned corners.
        upsample_output: return logits at the input size (`True`) or at
            stride 4 (`False`).
        image_scale: factor applied to the raw 0..255 pixels.
        image_mean: per-channel mean subtracted after scaling.
        image_std: per-channel standard deviation divided last.
        freeze_backbone: make the backbone untrainable (BatchNorm then runs
            in inference mode).
        freeze_batchnorm: keep only the backbone's BatchNorm layers frozen,
            in inference mode, for small segmentation batches.
        pyramid_levels: names of the stride 4, 8, 16 and 32 backbone
            outputs.
        num_cascades: number of cascaded RefineNet blocks: 4 (default),
            2 or 1 (the paper's single RefineNet).
        input_scales: image scales fed through the shared backbone, the
            first one at the input resolution ideally `1.0`; e.g.
            `(1.0, 0.6)` for a 2-scale RefineNet.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> from keras_refinenet.models.backbones import resnet_backbone
    >>> model = RefineNet(resnet_backbone(50), num_classes=3,
    ...                   top_filters=32, decoder_filters=16)
    >>> model.predict(np.zeros((1, 97, 133, 3)), verbose=0).shape
    (1, 97, 133, 3)
    """

    def __init__(
        self,
        backbone,
        num_classes,
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
        classifier_kernel_size=3,
        backbone_dropout=0.5,
        classifier_dropout=0.5,
        align_corners=True,
        upsample_output=True,
        image_scale=1.0 / 255.0,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
        freeze_backbone=False,
        freeze_batchnorm=False,
        pyramid_levels=PYRAMID_LEVELS,
        num_cascades=4,
        input_scales=DEFAULT_INPUT_SCALES,
        **kwargs,
    ):
        check_positive_int("num_classes", num_classes)
        check_positive_int("top_filters", top_filters)
        check_positive_int("decoder_filters", decoder_filters)
        for name, rate in (
            ("backbone_dropout", backbone_dropout),
            ("classifier_dropout", classifier_dropout),
        ):
            if not 0.0 <= rate < 1.0:
                raise ValueError(
                    f"`{name}` must be in [0, 1). Received: {name}={rate!r}"
                )
        dtype = kwargs.pop("dtype", None)
        pyramid_levels = tuple(pyramid_levels)
        input_scales = tuple(float(scale) for scale in input_scales)
        if not input_scales or min(input_scales) <= 0:
            raise ValueError(
                "`input_scales` must be a non-empty list of positive "
                f"numbers. Received: input_scales={list(input_scales)}"
            )
        groups = cascade_groups(len(pyramid_levels), num_cascades)

        # === Layers ===
        self.backbone = backbone
        self.image_normalization = ImageNormalization(
            scale=image_scale,
            mean=image_mean,
            std=image_std,
            dtype=dtype,
            name="image_normalization",
        )
        self.feature_extractor = keras.Model(
            backbone.inputs,
            pyramid_features(backbone, pyramid_levels),
            name="feature_extractor",
        )
        num_levels = len(pyramid_levels)
        widths = [top_filters] + [decoder_filters] * (num_levels - 1)
        self.image_scalings = [
            None
            if scale == 1.0
            else ScaleImages(
                scale,
                align_corners=align_corners,
                dtype=dtype,
                name=f"scale{index + 1}_resize",
            )
            for index, scale in enumerate(input_scales)
        ]
        self.backbone_dropouts = [
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
                    dtype=dtype,
                    name=f"refinenet_block{block}",
                )
            )
        self.classifier_dropout_layer = keras.layers.Dropout(
            classifier_dropout, dtype=dtype, name="classifier_dropout"
        )
        self.classifier = keras.layers.Conv2D(
            num_classes,
            classifier_kernel_size,
            padding="same",
            use_bias=True,
            dtype=dtype,
            name="classifier",
        )
        self.logits_cast = keras.layers.Activation(
            "linear", dtype="float32", name="logits"
        )
        self.output_resize = ResizeLike(
            align_corners=align_corners, dtype="float32", name="upsample"
        )

        # === Functional Model ===
        images = keras.Input(shape=(None, None, 3), name="images")
        normalized = self.image_normalization(images)
        # projected[scale][level - 1], levels from the coarsest.
        projected = []
        for scale, scaling in enumerate(self.image_scalings):
            scaled = normalized if scaling is None else scaling(normalized)
            features = list(reversed(self.feature_extractor(scaled)))
            for level in range(1, min(DROPOUT_LEVELS, num_levels) + 1):
                features[level - 1] = self.backbone_dropouts[level - 1](
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
        for block, group in zip(self.refinenet_blocks, groups):
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
        x = self.classifier_dropout_layer(x)
        logits = self.logits_cast(self.classifier(x))
        if upsample_output:
            logits = self.output_resize([logits, images])
        super().__init__(inputs=images, outputs=logits, dtype=dtype, **kwargs)

        # === Config ===
        self.num_classes = num_classes
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
        self.classifier_kernel_size = classifier_kernel_size
        self.backbone_dropout = backbone_dropout
        self.classifier_dropout = classifier_dropout
        self.align_corners = align_corners
        self.upsample_output = upsample_output
        self.image_scale = image_scale
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.freeze_backbone = freeze_backbone
        self.freeze_batchnorm = freeze_batchnorm
        self.pyramid_levels = pyramid_levels
        self.num_cascades = num_cascades
        self.input_scales = list(input_scales)
        self._apply_freezing()

    def _apply_freezing(self):
        if self.freeze_backbone:
            self.backbone.trainable = False
        elif self.freeze_batchnorm:
            for layer in self.backbone._flatten_layers(include_self=False):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
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
            "classifier_kernel_size": self.classifier_kernel_size,
            "backbone_dropout": self.backbone_dropout,
            "classifier_dropout": self.classifier_dropout,
            "align_corners": self.align_corners,
            "upsample_output": self.upsample_output,
            "image_scale": self.image_scale,
            "image_mean": self.image_mean,
            "image_std": self.image_std,
            "freeze_backbone": self.freeze_backbone,
            "freeze_batchnorm": self.freeze_batchnorm,
            "pyramid_levels": list(self.pyramid_levels),
            "num_cascades": self.num_cascades,
            "input_scales": list(self.input_scales),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        backbone = config.pop("backbone")
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        dtype = config.get("dtype")
        if isinstance(dtype, dict):
            config["dtype"] = keras.dtype_policies.deserialize(dtype)
        return cls(backbone=backbone, **config)

    # === Presets ===
    @classproperty
    def presets(cls):
        """The built-in presets: name -> `{"metadata", "config"}`."""
        return copy.deepcopy(PRESETS)

    @classmethod
    def from_preset(cls, name_or_dir, load_weights=True, **overrides):
        """Builds a RefineNet from a built-in preset or a preset directory.

        Named presets read their weights from the preset cache
        (`$KERAS_REFINENET_CACHE/presets/NAME`, by default
        `~/.cache/keras_refinenet/presets/NAME`); nothing is downloaded.

        Args:
            name_or_dir: a name from `RefineNet.presets` or a directory
                written by `save_to_preset`.
            load_weights: load the preset's weights. Raises
                `PresetWeightsNotFoundError` at once, naming the paths
                searched, if a preset with published weights has none on
                disk. Presets without weights are randomly initialised.
            **overrides: constructor arguments to change, e.g.
                `num_classes=5` (the classifier is rebuilt, all other
                weights are loaded), `dtype="mixed_float16"` or
                `upsample_output=False`.

        Returns:
            A `RefineNet`.

        Example:

        >>> model = RefineNet.from_preset("refinenet50", num_classes=3)
        >>> model.num_classes
        3
        """
        return load_preset(cls, name_or_dir, load_weights, **overrides)

    def save_to_preset(self, preset_dir, metadata=None):
        """Writes `config.json`, `metadata.json` and `model.weights.h5`.

        Args:
            preset_dir: directory to write (created if missing).
            metadata: extra metadata entries, e.g. `class_names`.

        Returns:
            The preset directory as a `pathlib.Path`.
        """
        return save_preset(self, preset_dir, metadata)

    # === Training and inference ===
    def compile(
        self,
        optimizer="auto",
        loss="auto",
        metrics="auto",
        **kwargs,
    ):
        """Configures training with defaults that train RefineNet well.

        `"auto"` picks the defaults of
        `keras_refinenet.training.defaults.compile_arguments`: SGD with
        momentum on a polynomial-decay schedule, cross-entropy that ignores
        label 255, and mean IoU. Any argument can be given explicitly as in
        `keras.Model.compile`.

        Args:
            optimizer: an optimizer, its name, or `"auto"`.
            loss: a loss, its name, or `"auto"`.
            metrics: a list of metrics, or `"auto"`.
            **kwargs: more arguments for the defaults (see
                `compile_arguments`) or for `keras.Model.compile`.
        """
        from keras_refinenet.training.defaults import compile_arguments

        super().compile(
            **compile_arguments(
                self, optimizer=optimizer, loss=loss, metrics=metrics, **kwargs
            )
        )

    def compile_from_config(self, config):
        """Restores a saved compile configuration (used by `load_model`).

        Keras skips models with a custom `compile`; the saved configuration
        is complete, so it goes straight to `keras.Model.compile`.

        Args:
            config: the output of `get_compile_config`.
        """
        # Registers the custom optimizers, losses and metrics.
        import keras_refinenet.training.defaults  # noqa: F401

        config = keras.saving.deserialize_keras_object(config)
        super().compile(**config)
        if self.built and getattr(self, "optimizer", None) is not None:
            self.optimizer.build(self.trainable_variables)

    def predict_segmentation(self, images, **kwargs):
        """Class-id maps (and optionally probabilities) at the input size.

        Args:
            images: one image `(H, W, 3)` or a batch `(B, H, W, 3)`, uint8
                or float 0..255.
            **kwargs: options of
                `keras_refinenet.inference.predict.predict_segmentation`
                (tiling, test-time augmentation, probabilities).

        Returns:
            See `keras_refinenet.inference.predict.predict_segmentation`.
        """
        from keras_refinenet.inference.predict import predict_segmentation

        return predict_segmentation(self, images, **kwargs)
