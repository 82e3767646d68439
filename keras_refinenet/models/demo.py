"""The demo RefineNet: the model `keras-refinenet demo` trains.

A narrow 4-stage bottleneck ResNet (keras-cv) under a 32-wide decoder,
about 1.4 million parameters: big enough to reach a mean IoU of 0.7 on the
synthetic shapes in a few CPU minutes, small enough for quick tests of
training.
"""

from keras_refinenet.models.tiny import tiny_refinenet

DEMO_ENCODER_FILTERS = (16, 32, 64, 128)
DEMO_MODEL = {
    "top_filters": 32,
    "decoder_filters": 32,
    "backbone_dropout": 0.0,
    "classifier_dropout": 0.0,
}


def build_demo_model(num_classes):
    """The demo RefineNet (random initialisation).

    Args:
        num_classes: number of classes.

    Returns:
        A `RefineNet` with about 1.4 million parameters.

    Example:

    >>> build_demo_model(4).count_params() < 2_000_000
    True
    """
    return tiny_refinenet(
        num_classes, encoder_filters=DEMO_ENCODER_FILTERS, **DEMO_MODEL
    )
