import json

import numpy as np
import pytest
from PIL import Image

from keras_refinenet.cli.main import main
from keras_refinenet.data.synthetic import SYNTHETIC_CLASS_NAMES
from keras_refinenet.inference.visualize import (
    PANEL_GAP,
    PANEL_SCALE,
    TITLE_HEIGHT,
)
from keras_refinenet.models.refinenet import RefineNet
from keras_refinenet.training.demo import SMOKE_TRAINING, TARGET_MEAN_IOU


def test_demo_smoke_writes_everything(tmp_path):
    output = tmp_path / "demo"
    assert main(["demo", "--smoke", "--output", str(output)]) == 0
    report = json.loads((output / "metrics.json").read_text())
    assert set(report["per_class_iou"]) == set(SYNTHETIC_CLASS_NAMES)
    assert 0.0 <= report["pixel_accuracy"] <= 1.0
    assert report["smoke"] is True
    assert report["num_images"] == SMOKE_TRAINING["test_images"]
    model = RefineNet.from_preset(output / "preset")
    assert model.num_classes == len(SYNTHETIC_CLASS_NAMES)
    pictures = sorted((output / "examples").glob("*.png"))
    assert len(pictures) == SMOKE_TRAINING["examples"]
    size = SMOKE_TRAINING["image_size"] * PANEL_SCALE
    picture = np.asarray(Image.open(pictures[0]))
    # Titles above the panels, the legend to their right.
    assert picture.shape[0] == size + TITLE_HEIGHT
    assert picture.shape[1] > 3 * size + 3 * PANEL_GAP


@pytest.mark.large
def test_full_demo_reaches_the_target_mean_iou(tmp_path):
    output = tmp_path / "demo"
    assert main(["demo", "--output", str(output)]) == 0
    report = json.loads((output / "metrics.json").read_text())
    assert report["mean_iou"] >= TARGET_MEAN_IOU
    assert report["total_seconds"] < 600
