import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_refinenet.training import trainer
from keras_refinenet.training.metrics import ConfusionMatrix


def test_metrics_report_by_class_name():
    confusion = ConfusionMatrix(3)
    labels = np.array([0, 0, 1, 1, 255])
    predictions = np.array([0, 1, 1, 1, 2])
    confusion.update(predictions, labels)
    report = trainer.metrics_report(confusion, ["a", "b", "c"], {"n": 1})
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


def test_class_names_fall_back_in_order():
    assert trainer.class_names_for(2, None, ["x"], ("p", "q")) == ["p", "q"]
    assert trainer.class_names_for(2, None) == ["class_0", "class_1"]


def test_format_report_lists_every_class():
    text = trainer.format_report(
        {
            "mean_iou": 0.25,
            "pixel_accuracy": None,
            "per_class_iou": {"road": 0.25, "traffic light": None},
        }
    )
    lines = text.splitlines()
    assert lines[1].split() == ["road", "0.2500"]
    assert lines[2].split() == ["traffic", "light", "n/a"]
    assert lines[-2].split() == ["mean", "IoU", "0.2500"]
    assert lines[-1].split() == ["pixel", "accuracy", "n/a"]


def test_unknown_steps_per_epoch_is_an_error(tmp_path, monkeypatch):
    splits = trainer.load_dataset_splits(
        "synthetic", synthetic_train_images=4, synthetic_val_images=2
    )
    splits.train_size = None
    monkeypatch.setattr(trainer, "load_dataset_splits", lambda *a, **k: splits)
    config = trainer.TrainConfig(output=str(tmp_path), crop_size=(32, 32))
    with pytest.raises(ValueError, match="Received: steps_per_epoch=None"):
        trainer.run_training(config, build_model=lambda n: None)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from keras_refinenet.cli.demo import build_demo_model
    from keras_refinenet.training.trainer import TrainConfig, run_training
    result = run_training(
        TrainConfig(
            preset=None, output=sys.argv[1], dataset="synthetic",
            epochs=1, steps_per_epoch=2, batch_size=4, crop_size=(32, 32),
            strategy="mirrored", synthetic_train_images=8,
            synthetic_val_images=4, synthetic_image_size=32, verbose=2,
        ),
        build_model=build_demo_model,
    )
    print(json.dumps({k: result[k] for k in ("replicas", "preset_dir")}))
    """
)


@pytest.mark.large
def test_run_training_with_mirrored_strategy_on_two_cpus(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "replicas=2, per-replica batch=2, global batch=4" in completed.stdout
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert (tmp_path / "run" / "preset" / "model.weights.h5").is_file()
