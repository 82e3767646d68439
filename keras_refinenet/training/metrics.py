"""Segmentation metrics: Keras streaming mean IoU and pixel accuracy.

The numpy `ConfusionMatrix` of evaluations lives in
`keras_refinenet.evaluation.confusion`; it is importable from here too.
"""

import keras
import numpy as np
from keras import ops

# Re-exported: the old import path of the evaluation accumulator.
from keras_refinenet.evaluation.confusion import (
    ConfusionMatrix as ConfusionMatrix,
)
from keras_refinenet.training.losses import (
    IGNORE_CLASS,
    RESIZE_MODES,
    match_logits_and_labels,
    squeeze_label_channel,
)


def _check_resize_mode(resize_mode):
    if resize_mode not in RESIZE_MODES:
        raise ValueError(
            f"`resize_mode` must be one of {RESIZE_MODES}. "
            f"Received: resize_mode={resize_mode!r}"
        )


def _labels_and_class_ids(y_true, y_pred, resize_mode, align_corners):
    """`(B, H, W)` labels and predicted class ids from logits or ids."""
    if len(y_pred.shape) == 4:
        labels, logits = match_logits_and_labels(
            y_true, y_pred, resize_mode, align_corners
        )
        return labels, ops.cast(ops.argmax(logits, axis=-1), "int32")
    labels = ops.cast(squeeze_label_channel(y_true), "int32")
    return labels, ops.cast(squeeze_label_channel(y_pred), "int32")


def _iou_from_confusion(confusion):
    """Per-class IoU of a `(C, C)` confusion matrix; NaN where union is 0."""
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positives = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positives
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, true_positives / union, np.nan)


@keras.saving.register_keras_serializable(package="keras_refinenet")
class MeanIoU(keras.metrics.MeanIoU):
    """Dataset-level mean IoU from logits, with an ignore label.

    Logits of any resolution are resized to the labels (or labels to the
    logits, see `resize_mode`) and arg-maxed; pixels labelled
    `ignore_class` are skipped. Classes absent from both labels and
    predictions are left out of the mean.

    Args:
        num_classes: number of classes.
        ignore_class: label value that is skipped.
        resize_mode: `"logits"` or `"labels"`, as in
            `SparseCategoricalCrossentropyIgnore`.
        align_corners: corner alignment of the resize.
        name: name of the metric.
        dtype: dtype of the confusion matrix.

    Example:

    >>> import numpy as np
    >>> metric = MeanIoU(num_classes=2)
    >>> logits = np.array([[[[1.0, 0.0], [0.0, 1.0]]]])
    >>> metric.update_state(np.array([[[0, 0]]]), logits)
    >>> round(float(metric.result()), 4)
    0.25
    >>> metric.per_class_iou().tolist()
    [0.5, 0.0]
    """

    def __init__(
        self,
        num_classes,
        ignore_class=IGNORE_CLASS,
        resize_mode="logits",
        align_corners=True,
        name="mean_iou",
        dtype=None,
    ):
        _check_resize_mode(resize_mode)
        super().__init__(
            num_classes=num_classes,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=True,
            sparse_y_pred=True,
        )
        self.resize_mode = resize_mode
        self.align_corners = align_corners

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, class_ids = _labels_and_class_ids(
            y_true, y_pred, self.resize_mode, self.align_corners
        )
        super().update_state(labels, class_ids, sample_weight)

    def confusion_matrix(self):
        """Accumulated `(num_classes, num_classes)` matrix (rows: labels)."""
        return np.asarray(keras.ops.convert_to_numpy(self.total_cm))

    def per_class_iou(self):
        """IoU of every class as a numpy array; NaN for absent classes."""
        return _iou_from_confusion(self.confusion_matrix())

    def pixel_accuracy(self):
        """Correct pixels over all non-ignored pixels."""
        confusion = self.confusion_matrix().astype(np.float64)
        total = confusion.sum()
        return float(np.trace(confusion) / total) if total else float("nan")

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "num_classes": self.num_classes,
            "ignore_class": self.ignore_class,
            "resize_mode": self.resize_mode,
            "align_corners": self.align_corners,
        }


@keras.saving.register_keras_serializable(package="keras_refinenet")
class PixelAccuracy(keras.metrics.Metric):
    """Fraction of non-ignored pixels whose arg-max class is right.

    Args:
        ignore_class: label value that is skipped.
        resize_mode: `"logits"` or `"labels"`, as in
            `SparseCategoricalCrossentropyIgnore`.
        align_corners: corner alignment of the resize.
        name: name of the metric.
        dtype: dtype of the counters.

    Example:

    >>> import numpy as np
    >>> metric = PixelAccuracy()
    >>> logits = np.array([[[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]]])
    >>> metric.update_state(np.array([[[0, 0, 255]]]), logits)
    >>> float(metric.result())
    0.5
    """

    def __init__(
        self,
        ignore_class=IGNORE_CLASS,
        resize_mode="logits",
        align_corners=True,
        name="pixel_accuracy",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        _check_resize_mode(resize_mode)
        self.ignore_class = ignore_class
        self.resize_mode = resize_mode
        self.align_corners = align_corners
        self.correct = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="correct"
        )
        self.total = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="total"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, class_ids = _labels_and_class_ids(
            y_true, y_pred, self.resize_mode, self.align_corners
        )
        valid = ops.cast(ops.not_equal(labels, self.ignore_class), self.dtype)
        if sample_weight is not None:
            sample_weight = ops.cast(
                squeeze_label_channel(sample_weight), self.dtype
            )
            valid = valid * ops.broadcast_to(sample_weight, ops.shape(valid))
        hits = ops.cast(ops.equal(labels, class_ids), self.dtype) * valid
        self.correct.assign_add(ops.sum(hits))
        self.total.assign_add(ops.sum(valid))

    def result(self):
        return ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(ops.zeros((), self.dtype))
        self.total.assign(ops.zeros((), self.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "ignore_class": self.ignore_class,
                "resize_mode": self.resize_mode,
                "align_corners": self.align_corners,
            }
        )
        return config
