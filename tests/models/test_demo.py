"""The demo RefineNet: the encoder and decoder widths it is made of."""

import numpy as np

from keras_refinenet.models.demo import (
    DEMO_ENCODER_FILTERS,
    DEMO_MODEL,
    build_demo_model,
)

NUM_CLASSES = 4
IMAGE_SIZE = 32


def test_demo_model_widths_and_output():
    model = build_demo_model(NUM_CLASSES)
    assert model.num_classes == NUM_CLASSES
    backbone = model.backbone
    assert backbone.top_filters == DEMO_MODEL["top_filters"] == 32
    assert backbone.decoder_filters == DEMO_MODEL["decoder_filters"] == 32
    encoder_config = backbone.get_config()["image_encoder"]["config"]
    # keras-cv ResNetV2 stages: one bottleneck block each, 4x expansion.
    assert tuple(encoder_config["stackwise_filters"]) == DEMO_ENCODER_FILTERS
    assert 1_000_000 < model.count_params() < 2_000_000
    images = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), "float32")
    logits = model.predict(images, verbose=0)
    assert logits.shape == (1, IMAGE_SIZE, IMAGE_SIZE, NUM_CLASSES)
