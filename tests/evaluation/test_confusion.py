"""The numpy `ConfusionMatrix`: hand-computed counts and the Cityscapes
rules, checked against a boolean-mask IoU reference."""

import math

import numpy as np
import pytest

from keras_refinenet.evaluation.confusion import ConfusionMatrix
from tests.numpy_reference import per_class_iou


def test_hand_computed_counts():
    # Rows are ground truth: class 0 at 3 pixels (2 right, 1 predicted 1),
    # class 1 at 2 pixels (1 right, 1 predicted 2), class 2 at 1 pixel
    # (predicted 0). IoU 0: tp 2 / (tp 2 + fn 1 + fp 1) = 1/2;
    # class 1: 1 / (1 + 1 + 1) = 1/3; class 2: 0 / (0 + 1 + 1) = 0.
    matrix = ConfusionMatrix(num_classes=3)
    matrix.update(np.array([0, 0, 1, 1, 2, 0]), np.array([0, 0, 0, 1, 1, 2]))
    np.testing.assert_array_equal(
        matrix.matrix, [[2, 1, 0], [0, 1, 1], [1, 0, 0]]
    )
    np.testing.assert_allclose(matrix.per_class_iou(), [1 / 2, 1 / 3, 0.0])
    np.testing.assert_allclose(matrix.mean_iou(), (1 / 2 + 1 / 3) / 3)
    np.testing.assert_allclose(matrix.pixel_accuracy(), 3 / 6)


def test_cityscapes_rules():
    matrix = ConfusionMatrix(num_classes=4)
    # GT class 0 at 4 pixels: 2 right, 1 predicted 9 (invalid), 1 predicted
    # 255; GT class 1 at 2 pixels: both predicted 1; ignored GT pixel is
    # predicted 0 and must not count. Classes 2 and 3 are absent -> NaN.
    label = np.array([0, 0, 0, 0, 1, 1, 255])
    pred = np.array([0, 0, 9, 255, 1, 1, 0])
    matrix.update(pred, label)
    iou = matrix.per_class_iou()
    np.testing.assert_allclose(iou[:2], [2 / 4, 1.0])
    assert np.isnan(iou[2:]).all()
    np.testing.assert_allclose(matrix.mean_iou(), 0.75)
    np.testing.assert_allclose(matrix.pixel_accuracy(), 4 / 6)
    assert matrix.matrix.sum() == 4


def test_matches_the_reference_on_random_batches():
    rng = np.random.default_rng(1)
    matrix = ConfusionMatrix(num_classes=6)
    preds, labels = [], []
    for _ in range(3):
        label = rng.integers(0, 7, size=(5, 7))
        label[label == 6] = 255
        pred = rng.integers(0, 6, size=(5, 7))
        matrix.update(pred, label)
        preds.append(pred)
        labels.append(label)
    expected = per_class_iou(np.stack(preds), np.stack(labels), 6)
    np.testing.assert_allclose(matrix.per_class_iou(), expected)
    np.testing.assert_allclose(matrix.mean_iou(), np.nanmean(expected))


def test_other_ignore_label_and_reset():
    matrix = ConfusionMatrix(num_classes=2, ignore_label=0)
    matrix.update(np.array([1, 1, 0]), np.array([0, 1, 1]))
    # Label 0 is ignored, so only class 1 pixels count; both are valid.
    np.testing.assert_array_equal(matrix.counts.sum(axis=1), [0, 2])
    matrix.reset()
    assert matrix.counts.sum() == 0
    assert math.isnan(matrix.mean_iou())
    assert math.isnan(matrix.pixel_accuracy())


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        ConfusionMatrix(num_classes=0)
    matrix = ConfusionMatrix(num_classes=3)
    with pytest.raises(ValueError, match="Received: label values \\[7\\]"):
        matrix.update(np.array([0, 1]), np.array([0, 7]))
    with pytest.raises(ValueError, match="Received: pred.size=3"):
        matrix.update(np.array([0, 1, 2]), np.array([0, 1]))


def test_the_training_import_path_still_works():
    from keras_refinenet.training.metrics import ConfusionMatrix as old_path

    assert old_path is ConfusionMatrix
