"""The void rule of the authors' models: void as a label, or excluded."""

import numpy as np
import pytest

from keras_refinenet import RefineNet, tiny_refinenet
from keras_refinenet.inference.predict import label_map

SCORES = np.array(
    [
        [0.1, 0.2, 0.7],  # void (channel 2) wins
        [0.5, 0.1, 0.4],  # channel 0 wins
        [0.2, 0.45, 0.35],  # channel 1 wins
    ]
)


def test_void_rules_by_hand():
    assert label_map(SCORES).tolist() == [2, 0, 1]
    assert label_map(SCORES, void_channel=2).tolist() == [255, 0, 1]
    assert label_map(SCORES, void="exclude", void_channel=2).tolist() == [
        1,
        0,
        1,
    ]
    # SUN RGB-D style: void is channel 0 and label 0, classes are 1..N.
    values = [0, 1, 2]
    assert (
        label_map(SCORES[:, ::-1], void_channel=0, label_values=values)[0] == 0
    )
    assert label_map(
        SCORES[:, ::-1], void="exclude", void_channel=0, label_values=values
    ).tolist() == [1, 2, 1]


def test_bad_void_arguments():
    with pytest.raises(ValueError, match="Received: void='drop'"):
        label_map(SCORES, void="drop")
    with pytest.raises(ValueError, match="Received: void_channel=3"):
        label_map(SCORES, void_channel=3)
    with pytest.raises(ValueError, match="Received: 2 label values"):
        label_map(SCORES, label_values=[0, 1])


def test_model_void_channel_drives_predict_segmentation(tmp_path):
    model = tiny_refinenet(
        num_classes=3, void_channel=2, label_values=[0, 1, 255]
    )
    shifted = tiny_refinenet(
        num_classes=3, void_channel=0, label_values=[0, 1, 2]
    )
    pixels = np.random.default_rng(1).integers(0, 256, (33, 41, 3))
    scores = shifted.predict(pixels[None].astype("float32"), verbose=0)[0]
    # Channel indices by default (void 255), label values on request.
    np.testing.assert_array_equal(
        shifted.predict_segmentation(pixels),
        np.array([255, 1, 2])[scores.argmax(-1)],
    )
    np.testing.assert_array_equal(
        shifted.predict_segmentation(pixels, map_labels=True),
        np.array([0, 1, 2])[scores.argmax(-1)],
    )
    image = np.random.default_rng(0).integers(0, 256, (37, 45, 3))
    probabilities = model.predict(image[None].astype("float32"), verbose=0)[0]
    with_void = model.predict_segmentation(image)
    without = model.predict_segmentation(image, void="exclude")
    np.testing.assert_array_equal(
        with_void, np.array([0, 1, 255])[probabilities.argmax(-1)]
    )
    values = model.predict_segmentation(image, map_labels=True)
    np.testing.assert_array_equal(
        values, np.array([0, 1, 255])[probabilities.argmax(-1)]
    )
    np.testing.assert_array_equal(without, probabilities[..., :2].argmax(-1))
    assert 255 not in without
    restored = RefineNet.from_preset(model.save_to_preset(tmp_path / "p"))
    assert restored.void_channel == 2
    assert restored.label_values == [0, 1, 255]
    with pytest.raises(ValueError, match="Received: void_channel=5"):
        tiny_refinenet(num_classes=3, void_channel=5)


def test_num_classes_override_drops_the_void_channel(tmp_path):
    model = RefineNet.from_preset(
        "refinenet101_ade20k",
        load_weights=False,
        num_classes=3,
        top_filters=8,
        decoder_filters=4,
    )
    assert model.void_channel is None and model.label_values is None
    tiny = tiny_refinenet(num_classes=3, void_channel=0, label_values=[0, 1, 2])
    directory = tiny.save_to_preset(tmp_path / "p")
    finetune = RefineNet.from_preset(directory, num_classes=5)
    assert finetune.void_channel is None
    assert RefineNet.from_preset(directory).void_channel == 0
