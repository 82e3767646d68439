import keras
import numpy as np

from keras_refinenet.training.metrics import MeanIoU, PixelAccuracy
from tests.numpy_reference import per_class_iou


def one_hot_logits(class_ids, num_classes):
    return np.eye(num_classes, dtype="float32")[class_ids]


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
    expected = per_class_iou(preds, labels, 5)
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
    expected = per_class_iou(preds, labels, 2)
    np.testing.assert_allclose(metric.per_class_iou(), expected, rtol=1e-6)

    downsampled = MeanIoU(num_classes=2, resize_mode="labels")
    downsampled.update_state(labels, logits)
    corner_labels = labels[:, ::2, ::2]
    np.testing.assert_allclose(
        downsampled.per_class_iou(),
        per_class_iou(np.array([[[0, 1], [1, 0]]]), corner_labels, 2),
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
