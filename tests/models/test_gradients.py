"""Every trainable variable of every preset architecture gets a gradient."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_refinenet import RefineNet
from keras_refinenet.models.preset_io import build_from_parts
from keras_refinenet.models.refinenet.refinenet_presets import (
    split_refinenet_config,
)

SIZE = 64
# Reduced widths: the preset's architecture (kernels, units, cascades,
# scales, encoder layout) at a size a CPU runs in seconds.
TINY_RESNET = {"filters": [4, 4, 8, 8], "blocks": [1, 1, 1, 1]}
# keras-hub's bottleneck ResNet needs its first stage 64 wide.
TINY_KERAS_HUB_RESNET = {"filters": [64, 4, 8, 8], "blocks": [1, 1, 1, 1]}
TINY_DECODER = {"top_filters": 8, "decoder_filters": 8}


def tiny_architecture(name):
    backbone, task, converter = split_refinenet_config(
        RefineNet.presets[name]["config"]
    )
    spec = dict(backbone["image_encoder"])
    if "depth" in spec:
        keras_hub = spec.get("library") == "keras_hub"
        spec.update(TINY_KERAS_HUB_RESNET if keras_hub else TINY_RESNET)
        backbone = {**backbone, **TINY_DECODER}
    backbone["image_encoder"] = spec
    return build_from_parts(RefineNet, backbone, task, converter, {})


def gradients(model):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    labels = rng.integers(0, model.num_classes, (2, SIZE, SIZE))
    inputs = model.preprocessor(images)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(inputs, training=True))
    return tape.gradient(loss, model.trainable_variables)


@pytest.mark.parametrize("name", sorted(RefineNet.presets))
def test_every_trainable_variable_gets_a_gradient(name):
    model = tiny_architecture(name)
    grads = gradients(model)
    missing = [
        v.path
        for v, g in zip(model.trainable_variables, grads)
        if g is None or not np.any(keras.ops.convert_to_numpy(g))
    ]
    assert not missing, missing
    assert len(grads) == len(model.trainable_variables) > 0


@pytest.mark.large
@pytest.mark.parametrize("name", sorted(RefineNet.presets))
def test_full_size_architecture_gets_every_gradient(name):
    model = RefineNet.from_preset(name, load_weights=False)
    grads = gradients(model)
    assert all(g is not None for g in grads)
