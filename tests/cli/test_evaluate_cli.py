import json

import numpy as np
from PIL import Image

from keras_refinenet.cli.main import main
from keras_refinenet.data.datasets import SYNTHETIC_SEEDS, VAL_SPLIT
from keras_refinenet.data.synthetic import (
    SYNTHETIC_CLASS_NAMES,
    make_synthetic_arrays,
)
from keras_refinenet.models.demo import build_demo_model

IMAGE_SIZE = 32
NUM_IMAGES = 3


def _numpy_scores(predictions, labels, num_classes):
    ious = []
    for cls in range(num_classes):
        intersection = np.sum((predictions == cls) & (labels == cls))
        union = np.sum((predictions == cls) | (labels == cls))
        ious.append(intersection / union if union else np.nan)
    return np.array(ious), float(np.mean(predictions == labels))


def test_evaluate_prints_and_writes_the_metrics(tmp_path, capsys):
    model = build_demo_model(len(SYNTHETIC_CLASS_NAMES))
    # Bias the classifier so the prediction is not one class everywhere.
    classifier = model.get_layer("classifier")
    kernel, bias = classifier.get_weights()
    classifier.set_weights([kernel, np.array([0.0, 0.5, -0.5, 0.2])])
    preset = model.save_to_preset(tmp_path / "preset")
    output = tmp_path / "metrics.json"
    code = main(
        [
            "evaluate",
            "--preset",
            str(preset),
            "--dataset",
            "synthetic",
            "--synthetic-val-images",
            str(NUM_IMAGES),
            "--synthetic-image-size",
            str(IMAGE_SIZE),
            "--output",
            str(output),
        ]
    )
    assert code == 0
    report = json.loads(output.read_text())

    images, labels = make_synthetic_arrays(
        NUM_IMAGES, image_size=IMAGE_SIZE, seed=SYNTHETIC_SEEDS[VAL_SPLIT]
    )
    logits = model.predict(images.astype("float32"), verbose=0)
    ious, accuracy = _numpy_scores(
        logits.argmax(-1), labels, len(SYNTHETIC_CLASS_NAMES)
    )
    assert report["num_images"] == NUM_IMAGES
    assert report["pixel_accuracy"] == np.float64(accuracy).item()
    assert report["mean_iou"] == np.float64(np.nanmean(ious)).item()
    for name, iou in zip(SYNTHETIC_CLASS_NAMES, ious):
        if np.isnan(iou):
            assert report["per_class_iou"][name] is None
        else:
            assert abs(report["per_class_iou"][name] - iou) < 1e-9
    printed = capsys.readouterr().out
    assert "rectangle" in printed and "mean IoU" in printed


def _write_ids(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(ids, np.uint8)).save(path)


def test_evaluate_predictions_matches_hand_computed_scores(tmp_path):
    # Label ids: 7 road, 8 sidewalk, 26 car, 0 unlabeled (ignored in GT).
    ground_truth = np.array([[7, 7, 8, 0], [7, 26, 26, 8]])
    prediction = np.array([[7, 8, 8, 26], [7, 26, 0, 8]])
    frame = "aachen_000000_000019"
    _write_ids(
        tmp_path / "gt" / "aachen" / f"{frame}_gtFine_labelIds.png",
        ground_truth,
    )
    _write_ids(tmp_path / "pred" / f"{frame}_leftImg8bit.png", prediction)
    output = tmp_path / "out" / "metrics.json"
    code = main(
        [
            "evaluate-predictions",
            "--predictions",
            str(tmp_path / "pred"),
            "--ground-truth",
            str(tmp_path / "gt"),
            "--dataset",
            "cityscapes",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    report = json.loads(output.read_text())
    assert set(report) == {"mean_iou", "per_class_iou", "pixel_accuracy"}
    # road: TP 2, FN 1 (predicted sidewalk) -> 2/3.
    # sidewalk: TP 2, FP 1 -> 2/3.  car: TP 1, FN 1 (void prediction) -> 1/2.
    iou = report["per_class_iou"]
    assert abs(iou["road"] - 2 / 3) < 1e-9
    assert abs(iou["sidewalk"] - 2 / 3) < 1e-9
    assert abs(iou["car"] - 1 / 2) < 1e-9
    assert iou["sky"] is None
    assert abs(report["mean_iou"] - (2 / 3 + 2 / 3 + 1 / 2) / 3) < 1e-9
    assert abs(report["pixel_accuracy"] - 5 / 7) < 1e-9
