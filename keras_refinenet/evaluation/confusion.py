"""The numpy confusion matrix of evaluations, with the Cityscapes rules.

`ConfusionMatrix` accumulates predictions and labels of any shape; the
reports (`evaluation.report`) and the offline Cityscapes protocol read
per-class IoU, mean IoU and pixel accuracy from it.
"""

import numpy as np

from keras_refinenet.constants import IGNORE_LABEL


class ConfusionMatrix:
    """Numpy confusion-matrix accumulator with the Cityscapes rules.

    Ground-truth pixels equal to `ignore_label` are skipped; predictions
    outside `0..num_classes - 1` at valid pixels count as errors (false
    negatives of the ground-truth class); a class whose union is empty has a
    NaN IoU and is left out of the mean.

    Args:
        num_classes: number of valid classes.
        ignore_label: ground-truth value that is skipped.

    Example:

    >>> import numpy as np
    >>> matrix = ConfusionMatrix(num_classes=3)
    >>> matrix.update(np.array([0, 1, 7]), np.array([0, 0, 1]))
    >>> matrix.per_class_iou().tolist()
    [0.5, 0.0, nan]
    >>> matrix.mean_iou()
    0.25
    """

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL):
        if num_classes < 1:
            raise ValueError(
                "`num_classes` must be a positive integer. "
                f"Received: num_classes={num_classes}"
            )
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.invalid_prediction_column = num_classes
        self.counts = np.zeros((num_classes, num_classes + 1), dtype=np.int64)

    def reset(self):
        """Clears the accumulated counts."""
        self.counts[...] = 0

    def update(self, pred, label):
        """Adds one prediction/label pair (any matching shapes).

        Args:
            pred: integer array of predicted classes.
            label: integer array of ground-truth classes, same shape.
        """
        pred = np.asarray(pred).astype(np.int64).ravel()
        label = np.asarray(label).astype(np.int64).ravel()
        if pred.shape != label.shape:
            raise ValueError(
                "`pred` and `label` must have the same number of pixels. "
                f"Received: pred.size={pred.size}, label.size={label.size}"
            )
        valid = label != self.ignore_label
        pred, label = pred[valid], label[valid]
        bad_labels = (label < 0) | (label >= self.num_classes)
        if bad_labels.any():
            raise ValueError(
                f"`label` values must be in [0, {self.num_classes}) or "
                f"{self.ignore_label}. Received: label values "
                f"{sorted(set(label[bad_labels].tolist()))}"
            )
        invalid_pred = (pred < 0) | (pred >= self.num_classes)
        pred = np.where(invalid_pred, self.invalid_prediction_column, pred)
        width = self.num_classes + 1
        self.counts += np.bincount(
            label * width + pred, minlength=self.num_classes * width
        ).reshape(self.num_classes, width)

    @property
    def matrix(self):
        """`(num_classes, num_classes)` counts (rows: ground truth)."""
        return self.counts[:, : self.num_classes]

    def per_class_iou(self):
        """IoU per class as a numpy array; NaN where the union is empty."""
        counts = self.counts.astype(np.float64)
        true_positives = np.diag(counts)
        false_negatives = counts.sum(axis=1) - true_positives
        false_positives = counts[:, : self.num_classes].sum(axis=0)
        false_positives -= true_positives
        union = true_positives + false_positives + false_negatives
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(union > 0, true_positives / union, np.nan)

    def mean_iou(self):
        """Mean of the per-class IoUs that are not NaN."""
        iou = self.per_class_iou()
        if np.isnan(iou).all():
            return float("nan")
        return float(np.nanmean(iou))

    def pixel_accuracy(self):
        """Correct pixels over all valid ground-truth pixels."""
        total = self.counts.sum()
        if total == 0:
            return float("nan")
        return float(np.trace(self.counts[:, : self.num_classes]) / total)
