import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_refinenet.evaluation import report as report_lib
from keras_refinenet.evaluation.confusion import ConfusionMatrix

NUM_CLASSES = 3


def test_metrics_report_by_class_name():
    confusion = ConfusionMatrix(3)
    labels = np.array([0, 0, 1, 1, 255])
    predictions = np.array([0, 1, 1, 1, 2])
    confusion.update(predictions, labels)
    report = report_lib.metrics_report(confusion, ["a", "b", "c"], {"n": 1})
    # a: TP 1, FN 1 -> 1/2; b: TP 2, FP 1 -> 2/3; c absent -> null.
    assert report["per_class_iou"] == {
        "a": pytest.approx(0.5),
        "b": pytest.approx(2 / 3),
        "c": None,
    }
    assert report["mean_iou"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert report["pixel_accuracy"] == pytest.approx(3 / 4)
    assert report["n"] == 1
    json.dumps(report, allow_nan=False)


def test_format_report_lists_every_class():
    text = report_lib.format_report(
        {
            "mean_iou": 0.25,
            "pixel_accuracy": float("nan"),
            "per_class_iou": {"road": 0.25, "traffic light": None},
        }
    )
    lines = text.splitlines()
    assert lines[1].split() == ["road", "0.2500"]
    assert lines[2].split() == ["traffic", "light", "n/a"]
    assert lines[-2].split() == ["mean", "IoU", "0.2500"]
    assert lines[-1].split() == ["pixel", "accuracy", "n/a"]


def test_json_ready_and_write_report(tmp_path):
    report = {
        "mean_iou": np.float64(0.5),
        "per_class_iou": {"a": float("nan"), "b": np.float32(0.25)},
        "sizes": (np.int64(2), 3),
    }
    path = report_lib.write_report(report, tmp_path / "deep" / "m.json")
    assert json.loads(path.read_text()) == {
        "mean_iou": 0.5,
        "per_class_iou": {"a": None, "b": 0.25},
        "sizes": [2, 3],
    }


def _model():
    """A 1x1 convolution whose logits favour class `argmax(rgb)`."""
    model = keras.Sequential(
        [keras.Input((None, None, 3)), keras.layers.Conv2D(NUM_CLASSES, 1)]
    )
    model.layers[0].set_weights(
        [np.eye(3, dtype="float32")[None, None], np.zeros(3, "float32")]
    )
    return model


def _numpy_ious(predictions, labels):
    valid = labels != 255
    ious = []
    for cls in range(NUM_CLASSES):
        pred, true = (predictions == cls) & valid, (labels == cls) & valid
        union = np.sum(pred | true)
        ious.append(np.sum(pred & true) / union if union else math.nan)
    accuracy = np.sum((predictions == labels) & valid) / np.sum(valid)
    return ious, accuracy


def test_evaluate_model_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (5, 6, 7, 3)).astype("float32")
    labels = rng.integers(0, NUM_CLASSES, (5, 6, 7)).astype("int32")
    labels[:, 0] = 255
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)
    report = report_lib.evaluate_model(
        _model(),
        batches,
        num_classes=NUM_CLASSES,
        class_names=["r", "g", "b"],
        extra={"split": "val"},
    )
    ious, accuracy = _numpy_ious(images.argmax(-1), labels)
    assert report["num_images"] == 5 and report["split"] == "val"
    assert report["per_class_iou"] == {
        name: pytest.approx(iou) for name, iou in zip("rgb", ious)
    }
    assert report["mean_iou"] == pytest.approx(np.mean(ious))
    assert report["pixel_accuracy"] == pytest.approx(accuracy)


def test_evaluate_model_stops_after_max_batches_and_names_classes():
    images = np.zeros((4, 2, 2, 3), "float32")
    labels = np.zeros((4, 2, 2), "int32")
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(1)
    report = report_lib.evaluate_model(
        _model(), batches, num_classes=NUM_CLASSES, max_batches=3
    )
    assert report["num_images"] == 3
    assert list(report["per_class_iou"]) == ["class_0", "class_1", "class_2"]
    assert report["per_class_iou"]["class_0"] == 1.0
