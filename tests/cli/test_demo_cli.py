import json

import numpy as np
import pytest
from PIL import Image

from keras_refinenet.cli import demo
from keras_refinenet.cli.main import main
from keras_refinenet.data.synthetic import SYNTHETIC_CLASS_NAMES
from keras_refinenet.models.refinenet import RefineNet


def test_demo_smoke_writes_everything(tmp_path):
    output = tmp_path / "demo"
    assert main(["demo", "--smoke", "--output", str(output)]) == 0
    report = json.loads((output / "metrics.json").read_text())
    assert set(report["per_class_iou"]) == set(SYNTHETIC_CLASS_NAMES)
    assert 0.0 <= report["pixel_accuracy"] <= 1.0
    assert report["smoke"] is True
    assert report["num_images"] == demo.SMOKE_TRAINING["test_images"]
    model = RefineNet.from_preset(output / "preset")
    assert model.num_classes == len(SYNTHETIC_CLASS_NAMES)
    pictures = sorted((output / "examples").glob("*.png"))
    assert len(pictures) == demo.SMOKE_TRAINING["examples"]
    size = demo.SMOKE_TRAINING["image_size"] * demo.PANEL_SCALE
    picture = np.asarray(Image.open(pictures[0]))
    # Titles above the panels, the legend to their right.
    assert picture.shape[0] == size + demo.TITLE_HEIGHT
    assert picture.shape[1] > 3 * size + 3 * demo.PANEL_GAP


def test_example_sheet_has_titles_and_legend():
    image = np.full((8, 8, 3), 100, np.uint8)
    truth = np.zeros((8, 8), int)
    palette = [(0, 0, 0), (200, 0, 0)]
    sheet = demo.example_sheet(image, truth, truth, palette, ["bg", "thing"])
    size, gap = 8 * demo.PANEL_SCALE, demo.PANEL_GAP
    titles = sheet[: demo.TITLE_HEIGHT]
    for index in range(len(demo.PANEL_TITLES)):
        left = index * (size + gap)
        assert (titles[:, left : left + size] < 128).any()  # text drawn
    panels = sheet[demo.TITLE_HEIGHT :, : 3 * size + 2 * gap]
    np.testing.assert_array_equal(
        panels[:size], demo.side_by_side(image, truth, truth, palette)
    )
    key = sheet[demo.TITLE_HEIGHT :, 3 * size + 3 * gap :]
    assert (key == (200, 0, 0)).all(axis=-1).any()  # the "thing" swatch


def test_side_by_side_panels():
    image = np.full((2, 2, 3), 100, np.uint8)
    truth = np.array([[0, 1], [1, 255]])
    prediction = np.array([[1, 1], [0, 0]])
    palette = [(0, 0, 0), (200, 0, 0)]
    panel = demo.side_by_side(image, truth, prediction, palette)
    scale, gap = demo.PANEL_SCALE, demo.PANEL_GAP
    width = 2 * scale
    assert panel.shape == (width, 3 * width + 2 * gap, 3)
    assert (panel[:, :width] == 100).all()
    ground_truth = panel[:, width + gap : 2 * width + gap]
    assert tuple(ground_truth[0, scale]) == (200, 0, 0)
    assert tuple(ground_truth[-1, -1]) == (0, 0, 0)
    overlay = panel[:, 2 * (width + gap) :]
    # alpha 0.5 blend of 100 with (200, 0, 0) for class 1.
    assert tuple(overlay[0, 0]) == (150, 50, 50)
    assert (panel[:, width : width + gap] == demo.PANEL_GAP_COLOR).all()


@pytest.mark.large
def test_full_demo_reaches_the_target_mean_iou(tmp_path):
    output = tmp_path / "demo"
    assert main(["demo", "--output", str(output)]) == 0
    report = json.loads((output / "metrics.json").read_text())
    assert report["mean_iou"] >= demo.TARGET_MEAN_IOU
    assert report["total_seconds"] < 600
