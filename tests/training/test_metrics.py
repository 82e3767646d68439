import keras
import numpy as np
import pytest

from keras_refinenet.training.metrics import (
    ConfusionMatrix,
    MeanIoU,
    PixelAccuracy,
)


def one_hot_logits(class_ids, num_classes):
    return np.eye(num_classes, dtype="float32")[class_ids]


def reference_iou(pred, label, num_classes, ignore=255):
    """Per-class IoU with boolean masks, NaN for empty unions."""
    valid = label != ignore
    ious = []
    for cls in range(num_classes):
        pred_c = (pred == cls) & valid
        label_c = label == cls
        union = (pred_c | label_c).sum()
        ious.append((pred_c & label_c).sum() / union if union else np.nan)
    return np.array(ious)


# Labels / predictions for 3 classes. Hand-computed:
# class 0: tp 2, fp 1, fn 1 -> 2/4; class 1: tp 1, fp 2, fn 1 -> 1/4;
# class 2: tp 0, fp 0, fn 1 -> 0. Ignored pixel predicted 2 does not count.
LABELS = np.array([[[0, 0, 0, 1], [1, 2, 255, 255]]])
PREDS = np.array([[[0, 0, 1, 1], [0, 1, 2, 0]]])
EXPECTED_IOU = [0.5, 1 / 4, 0.0]
EXPECTED_ACCURACY = 3 / 6


def test_mean_iou_hand_computed():
    metric = MeanIoU(num_classes=3)
    metric.update_state(LABELS, one_hot_logits(PREDS, 3))
    np.testing.assert_allclose(metric.per_class_iou(), EXPECTED_IOU)
    np.testing.assert_allclose(float(metric.result()), np.mean(EXPECTED_IOU))
    np.testing.assert_allclose(metric.pixel_accuracy(), EXPECTED_ACCURACY)


def test_mean_iou_accumulates_over_batches_and_skips_absent_classes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(4, 6, 6))
    labels[labels == 2] = 255
    preds = rng.integers(0, 3, size=(4, 6, 6))
    preds[preds == 3] = 0
    metric = MeanIoU(num_classes=5)
    for index in range(4):
        metric.update_state(
            labels[index : index + 1, ..., None],
            one_hot_logits(preds[index : index + 1], 5),
        )
    expected = reference_iou(preds, labels, 5)
    np.testing.assert_allclose(metric.per_class_iou(), expected)
    np.testing.assert_allclose(
        float(metric.result()), np.nanmean(expected), rtol=1e-6
    )


def test_mean_iou_resizes_low_resolution_logits():
    logits = one_hot_logits(np.array([[[0, 1], [1, 0]]]), 2)
    # Corner-aligned 2x2 -> 3x3; the border pixels take the corner class,
    # ties in the centre are avoided by using ignore there.
    labels = np.array([[[0, 1, 1], [0, 255, 1], [1, 1, 0]]])
    metric = MeanIoU(num_classes=2)
    metric.update_state(labels, logits)
    # Row 0 cols: 0, tie(0.5/0.5 -> argmax 0), 1; row 2: 1, tie -> 0, 0.
    # Row 1: col 0 tie -> 0; col 2 tie -> 0.
    preds = np.array([[[0, 0, 1], [0, 0, 0], [1, 0, 0]]])
    expected = reference_iou(preds, labels, 2)
    np.testing.assert_allclose(metric.per_class_iou(), expected, rtol=1e-6)

    downsampled = MeanIoU(num_classes=2, resize_mode="labels")
    downsampled.update_state(labels, logits)
    corner_labels = labels[:, ::2, ::2]
    np.testing.assert_allclose(
        downsampled.per_class_iou(),
        reference_iou(np.array([[[0, 1], [1, 0]]]), corner_labels, 2),
    )


def test_pixel_accuracy_metric():
    metric = PixelAccuracy()
    metric.update_state(LABELS, one_hot_logits(PREDS, 3))
    np.testing.assert_allclose(float(metric.result()), EXPECTED_ACCURACY)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_metric_config_round_trip():
    metric = MeanIoU(num_classes=4, resize_mode="labels", name="miou")
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(restored, MeanIoU)
    assert restored.get_config() == metric.get_config()
    accuracy = PixelAccuracy(align_corners=False)
    restored = keras.metrics.deserialize(keras.metrics.serialize(accuracy))
    assert restored.get_config() == accuracy.get_config()


def test_confusion_matrix_hand_computed():
    matrix = ConfusionMatrix(num_classes=3)
    matrix.update(PREDS, LABELS)
    np.testing.assert_allclose(matrix.per_class_iou(), EXPECTED_IOU)
    np.testing.assert_allclose(matrix.mean_iou(), np.mean(EXPECTED_IOU))
    np.testing.assert_allclose(matrix.pixel_accuracy(), EXPECTED_ACCURACY)


def test_confusion_matrix_cityscapes_rules():
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


def test_confusion_matrix_matches_reference_on_random_data():
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
    expected = reference_iou(np.stack(preds), np.stack(labels), 6)
    np.testing.assert_allclose(matrix.per_class_iou(), expected)
    np.testing.assert_allclose(matrix.mean_iou(), np.nanmean(expected))


def test_confusion_matrix_rejects_unknown_labels():
    matrix = ConfusionMatrix(num_classes=3)
    with pytest.raises(ValueError, match="Received: label values \\[7\\]"):
        matrix.update(np.array([0, 1]), np.array([0, 7]))
