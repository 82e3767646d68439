"""The tiny RefineNet of tests, examples and the demo."""

from keras_refinenet.models.encoders.pyramid import resnet_backbone
from keras_refinenet.models.refinenet.refinenet_image_segmenter import (
    RefineNetImageSegmenter,
)

TINY_ENCODER_FILTERS = (8, 8, 16, 16)
TINY_ENCODER_BLOCKS = (1, 1, 1, 1)
TINY_DECODER = {"top_filters": 16, "decoder_filters": 8}
KERAS_HUB = "keras_hub"
KERAS_HUB_FIRST_FILTERS = 64


def tiny_refinenet(
    num_classes=3,
    encoder_filters=TINY_ENCODER_FILTERS,
    encoder_blocks=TINY_ENCODER_BLOCKS,
    library="keras_cv",
    dtype=None,
    **overrides,
):
    """A randomly initialised RefineNet small enough for tests and demos.

    A ResNet image encoder with `encoder_filters` wide stages of
    `encoder_blocks` bottleneck blocks, and the 4-cascaded decoder 16 and
    8 wide; built offline in about a second.

    Args:
        num_classes: number of classes.
        encoder_filters: widths of the four ResNet stages (the first is
            64 for keras-hub, which requires it).
        encoder_blocks: bottleneck blocks of the four stages.
        library: `"keras_cv"` or `"keras_hub"` ResNet.
        dtype: dtype policy of every layer.
        **overrides: more `RefineNet` arguments (decoder, head,
            normalization: `top_filters`, `num_cascades`, `image_scale`,
            ...).

    Returns:
        A `RefineNetImageSegmenter` with its preprocessor.

    Example:

    >>> tiny_refinenet(num_classes=4).count_params() < 300_000
    True
    """
    if library == KERAS_HUB:
        # keras-hub's bottleneck ResNet needs its first stage 64 wide.
        encoder_filters = (KERAS_HUB_FIRST_FILTERS, *encoder_filters[1:])
    encoder = resnet_backbone(
        None,
        library=library,
        dtype=dtype,
        filters=encoder_filters,
        blocks=encoder_blocks,
    )
    return RefineNetImageSegmenter(
        encoder,
        num_classes=num_classes,
        **{**TINY_DECODER, **overrides},
        **({} if dtype is None else {"dtype": dtype}),
    )
