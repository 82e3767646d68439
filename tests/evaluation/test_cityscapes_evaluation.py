import numpy as np
import pytest
from PIL import Image

from keras_refinenet.evaluation import evaluate_prediction_folder

# Frame A: road, road, sidewalk / unlabeled (void), car, car.
GROUND_TRUTH_A = np.array([[7, 7, 8], [0, 26, 26]], dtype=np.uint8)
# Predicts parking (ignored in eval) on a road pixel, road on sidewalk and
# car pixels, road on the void pixel (not counted).
PREDICTION_A = np.array([[7, 9, 7], [7, 26, 7]], dtype=np.uint8)
GROUND_TRUTH_B = np.array([[26, 11]], dtype=np.uint8)
PREDICTION_B = np.array([[26, 11]], dtype=np.uint8)
# road: tp 1, fn 1 (parking), fp 2 (sidewalk, car pixels) -> 1/4
# sidewalk: tp 0, fn 1 -> 0; car: tp 2, fn 1 -> 2/3; building: 1.
EXPECTED_IOU = {"road": 0.25, "sidewalk": 0.0, "car": 2 / 3, "building": 1.0}
EXPECTED_ACCURACY = 4 / 7
FRAME_A = "aachen_000000_000019"
FRAME_B = "bad-honnef_000001_000020"


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode="L").save(path)


@pytest.fixture
def folders(tmp_path):
    ground_truth = tmp_path / "gtFine" / "val"
    write_png(
        ground_truth / "aachen" / f"{FRAME_A}_gtFine_labelIds.png",
        GROUND_TRUTH_A,
    )
    write_png(
        ground_truth / "bad-honnef" / f"{FRAME_B}_gtFine_labelIds.png",
        GROUND_TRUTH_B,
    )
    predictions = tmp_path / "predictions"
    write_png(predictions / f"{FRAME_A}_leftImg8bit.png", PREDICTION_A)
    write_png(predictions / "nested" / f"{FRAME_B}_pred.png", PREDICTION_B)
    return predictions, ground_truth


def test_scores_match_hand_computed_official_rules(folders):
    scores = evaluate_prediction_folder(*folders)
    per_class = scores["per_class_iou"]
    assert len(per_class) == 19
    for name, expected in EXPECTED_IOU.items():
        np.testing.assert_allclose(per_class[name], expected)
    absent = [name for name in per_class if name not in EXPECTED_IOU]
    assert all(np.isnan(per_class[name]) for name in absent)
    np.testing.assert_allclose(
        scores["mean_iou"], np.mean(list(EXPECTED_IOU.values()))
    )
    np.testing.assert_allclose(scores["pixel_accuracy"], EXPECTED_ACCURACY)


def test_missing_prediction_is_an_error(folders):
    predictions, ground_truth = folders
    (predictions / "nested" / f"{FRAME_B}_pred.png").unlink()
    with pytest.raises(ValueError, match=f"No prediction found.*{FRAME_B}"):
        evaluate_prediction_folder(predictions, ground_truth)


def test_size_mismatch_is_an_error(folders):
    predictions, ground_truth = folders
    write_png(
        predictions / f"{FRAME_A}_leftImg8bit.png",
        np.zeros((3, 3), np.uint8),
    )
    with pytest.raises(ValueError, match="sizes differ"):
        evaluate_prediction_folder(predictions, ground_truth)
