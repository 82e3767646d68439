"""Cityscapes pixel-level evaluation of saved label-id PNGs.

Reproduces cityscapesScripts' `evalPixelLevelSemanticLabeling`: the
confusion matrix is built on label ids; ground-truth pixels whose label is
`ignoreInEval` are skipped, and a prediction of any id that is not an
evaluated class at a valid pixel counts as an error.
"""

import pathlib

import numpy as np
from PIL import Image

from keras_refinenet.constants import MAX_PIXEL_VALUE
from keras_refinenet.data.cityscapes import (
    CITYSCAPES_EVAL_LABEL_IDS,
    CITYSCAPES_FRAME_ID_PATTERN,
    CITYSCAPES_LABEL_ID_SUFFIX,
    CITYSCAPES_LABELS,
)

GROUND_TRUTH_SUFFIX = CITYSCAPES_LABEL_ID_SUFFIX
FRAME_ID_PATTERN = CITYSCAPES_FRAME_ID_PATTERN
# Label-id PNGs are 8-bit.
_ID_RANGE = MAX_PIXEL_VALUE + 1
_KNOWN_LABEL_IDS = frozenset(
    label.id for label in CITYSCAPES_LABELS if label.id >= 0
)
_NAME_BY_ID = {label.id: label.name for label in CITYSCAPES_LABELS}


def _frame_id(path):
    match = FRAME_ID_PATTERN.search(path.name)
    return match.group(1) if match else None


def _read_ids(path):
    with Image.open(path) as image:
        if image.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(
                "Label-id PNGs must be single-channel. "
                f"Received: file={str(path)!r} with mode {image.mode!r}"
            )
        return np.asarray(image).astype(np.int64)


def _match_predictions(prediction_paths, ground_truth_paths):
    predictions_by_frame = {}
    for path in prediction_paths:
        frame = _frame_id(path)
        if frame is None:
            continue
        if frame in predictions_by_frame:
            raise ValueError(
                f"Found several predictions for frame {frame!r}. "
                f"Received: {str(predictions_by_frame[frame])!r} and "
                f"{str(path)!r}"
            )
        predictions_by_frame[frame] = path
    pairs = []
    for ground_truth in ground_truth_paths:
        frame = _frame_id(ground_truth)
        if frame not in predictions_by_frame:
            raise ValueError(
                f"No prediction found for ground truth {str(ground_truth)!r} "
                f"(looking for a PNG whose name contains {frame!r}). "
                f"Received: predictions_dir with "
                f"{len(predictions_by_frame)} matching PNGs"
            )
        pairs.append((predictions_by_frame[frame], ground_truth))
    return pairs


def label_id_confusion_matrix(prediction_ids, ground_truth_ids):
    """`(256, 256)` counts of (ground-truth id, predicted id) pairs.

    Args:
        prediction_ids: integer array of predicted label ids (0..255).
        ground_truth_ids: integer array of ground-truth label ids (0..33).

    Returns:
        `int64` matrix with ground-truth ids as rows.

    Example:

    >>> import numpy as np
    >>> matrix = label_id_confusion_matrix(np.array([7, 8]), np.array([7, 7]))
    >>> int(matrix[7, 7]), int(matrix[7, 8])
    (1, 1)
    """
    prediction_ids = np.asarray(prediction_ids, dtype=np.int64).ravel()
    ground_truth_ids = np.asarray(ground_truth_ids, dtype=np.int64).ravel()
    unknown = np.setdiff1d(np.unique(ground_truth_ids), list(_KNOWN_LABEL_IDS))
    if unknown.size:
        raise ValueError(
            "Ground truth contains unknown Cityscapes label ids. "
            f"Received: ids={unknown.tolist()}"
        )
    lowest = prediction_ids.min(initial=0)
    highest = prediction_ids.max(initial=0)
    if lowest < 0 or highest >= _ID_RANGE:
        raise ValueError(
            f"Predicted label ids must be in [0, {_ID_RANGE}). Received: "
            f"min={lowest}, max={highest}"
        )
    return np.bincount(
        ground_truth_ids * _ID_RANGE + prediction_ids,
        minlength=_ID_RANGE * _ID_RANGE,
    ).reshape(_ID_RANGE, _ID_RANGE)


def scores_from_label_id_confusion(confusion):
    """Official Cityscapes scores from a label-id confusion matrix.

    Args:
        confusion: `(256, 256)` matrix from `label_id_confusion_matrix`.

    Returns:
        Dict with `mean_iou`, `per_class_iou` (by official class name, NaN
        for classes absent from ground truth and prediction) and
        `pixel_accuracy` (correct over evaluated ground-truth pixels).

    Example:

    >>> import numpy as np
    >>> matrix = label_id_confusion_matrix(np.array([7, 8]), np.array([7, 7]))
    >>> scores_from_label_id_confusion(matrix)["per_class_iou"]["road"]
    0.5
    """
    eval_ids = list(CITYSCAPES_EVAL_LABEL_IDS)
    confusion = np.asarray(confusion, dtype=np.int64)
    per_class_iou = {}
    for label_id in eval_ids:
        true_positives = confusion[label_id, label_id]
        false_negatives = confusion[label_id, :].sum() - true_positives
        other_ids = [other for other in eval_ids if other != label_id]
        false_positives = confusion[other_ids, label_id].sum()
        union = true_positives + false_positives + false_negatives
        per_class_iou[_NAME_BY_ID[label_id]] = (
            float(true_positives / union) if union else float("nan")
        )
    valid_scores = [iou for iou in per_class_iou.values() if not np.isnan(iou)]
    evaluated_pixels = confusion[eval_ids, :].sum()
    correct_pixels = confusion[eval_ids, eval_ids].sum()
    return {
        "mean_iou": float(np.mean(valid_scores)) if valid_scores else np.nan,
        "per_class_iou": per_class_iou,
        "pixel_accuracy": (
            float(correct_pixels / evaluated_pixels)
            if evaluated_pixels
            else float("nan")
        ),
    }


def evaluate_prediction_folder(predictions_dir, ground_truth_dir):
    """Scores saved Cityscapes label-id predictions like the official script.

    Every `*_gtFine_labelIds.png` under `ground_truth_dir` (searched
    recursively) must have one PNG under `predictions_dir` (also recursive)
    whose name contains the same `city_sequence_frame` id, holding label ids
    (use `train_ids_to_label_ids` on the model output).

    Args:
        predictions_dir: folder of predicted label-id PNGs.
        ground_truth_dir: folder of Cityscapes `gtFine` annotations, e.g.
            `gtFine/val`.

    Returns:
        Dict with `mean_iou`, `per_class_iou` (dict by official class name)
        and `pixel_accuracy`.

    Example:

    >>> scores = evaluate_prediction_folder(  # doctest: +SKIP
    ...     "predictions/", "cityscapes/gtFine/val"
    ... )
    >>> scores["mean_iou"]  # doctest: +SKIP
    """
    predictions_dir = pathlib.Path(predictions_dir)
    ground_truth_dir = pathlib.Path(ground_truth_dir)
    for argument, folder in (
        ("predictions_dir", predictions_dir),
        ("ground_truth_dir", ground_truth_dir),
    ):
        if not folder.is_dir():
            raise ValueError(
                f"`{argument}` must be an existing folder. "
                f"Received: {argument}={str(folder)!r}"
            )
    ground_truth_paths = sorted(
        ground_truth_dir.rglob(f"*{GROUND_TRUTH_SUFFIX}")
    )
    if not ground_truth_paths:
        raise ValueError(
            f"No `*{GROUND_TRUTH_SUFFIX}` files found. "
            f"Received: ground_truth_dir={str(ground_truth_dir)!r}"
        )
    prediction_paths = sorted(
        path
        for path in predictions_dir.rglob("*.png")
        if not path.name.endswith(GROUND_TRUTH_SUFFIX)
    )
    confusion = np.zeros((_ID_RANGE, _ID_RANGE), dtype=np.int64)
    for prediction_path, ground_truth_path in _match_predictions(
        prediction_paths, ground_truth_paths
    ):
        prediction = _read_ids(prediction_path)
        ground_truth = _read_ids(ground_truth_path)
        if prediction.shape != ground_truth.shape:
            raise ValueError(
                "Prediction and ground truth sizes differ. Received: "
                f"{str(prediction_path)!r} of shape {prediction.shape}, "
                f"{str(ground_truth_path)!r} of shape {ground_truth.shape}"
            )
        confusion += label_id_confusion_matrix(prediction, ground_truth)
    return scores_from_label_id_confusion(confusion)
