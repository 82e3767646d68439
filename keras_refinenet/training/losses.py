"""Segmentation losses."""

import keras
from keras import ops

from keras_refinenet.layers.resize import resize_images, spatial_size

IGNORE_CLASS = 255
RESIZE_MODES = ("logits", "labels")


def squeeze_label_channel(labels):
    """Turns `(B, H, W, 1)` labels into `(B, H, W)`; others pass through."""
    if len(labels.shape) == 4:
        return ops.squeeze(labels, axis=-1)
    return labels


def match_logits_and_labels(labels, logits, resize_mode, align_corners):
    """Brings `(B, H, W)` labels and `(B, h, w, C)` logits to one size.

    Args:
        labels: integer `(B, H, W)` or `(B, H, W, 1)` tensor.
        logits: `(B, h, w, C)` tensor.
        resize_mode: `"logits"` upsamples the logits bilinearly to the label
            size; `"labels"` resizes the labels with nearest neighbour to
            the logit size.
        align_corners: passed to `resize_images`.

    Returns:
        `(labels, logits)` with the same spatial size; labels `int32`.
    """
    if resize_mode not in RESIZE_MODES:
        raise ValueError(
            f"`resize_mode` must be one of {RESIZE_MODES}. "
            f"Received: resize_mode={resize_mode!r}"
        )
    labels = ops.cast(squeeze_label_channel(labels), "int32")
    if resize_mode == "logits":
        logits = resize_images(
            logits,
            spatial_size(labels[..., None]),
            interpolation="bilinear",
            align_corners=align_corners,
        )
    else:
        labels = resize_images(
            labels[..., None],
            spatial_size(logits),
            interpolation="nearest",
            align_corners=align_corners,
        )[..., 0]
    return labels, logits


@keras.saving.register_keras_serializable(package="keras_refinenet")
class SparseCategoricalCrossentropyIgnore(keras.losses.Loss):
    """Per-pixel cross-entropy on logits that skips an ignore label.

    With the default `reduction="sum_over_batch_size"` the result is the mean
    over the valid (not ignored) pixels of the whole batch; a batch without
    valid pixels gives 0. The loss is computed in float32, so it is safe
    under mixed precision.

    Args:
        ignore_class: label value that contributes nothing to the loss.
        resize_mode: `"logits"` (upsample logits bilinearly to the label
            size) or `"labels"` (downsample labels with nearest neighbour to
            the logit size).
        align_corners: corner alignment of the resize.
        reduction: Keras loss reduction.
        name: name of the loss.
        dtype: dtype of the loss computation; `None` uses float32.

    Example:

    >>> import numpy as np
    >>> loss = SparseCategoricalCrossentropyIgnore()
    >>> logits = np.zeros((1, 2, 2, 3), dtype="float32")
    >>> labels = np.array([[[0, 255], [1, 2]]])
    >>> round(float(loss(labels, logits)), 4)
    1.0986
    """

    def __init__(
        self,
        ignore_class=IGNORE_CLASS,
        resize_mode="logits",
        align_corners=True,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy_ignore",
        dtype=None,
    ):
        super().__init__(
            name=name, reduction=reduction, dtype=dtype or "float32"
        )
        if resize_mode not in RESIZE_MODES:
            raise ValueError(
                f"`resize_mode` must be one of {RESIZE_MODES}. "
                f"Received: resize_mode={resize_mode!r}"
            )
        self.ignore_class = ignore_class
        self.resize_mode = resize_mode
        self.align_corners = align_corners

    def call(self, y_true, y_pred):
        labels, logits = match_logits_and_labels(
            y_true, y_pred, self.resize_mode, self.align_corners
        )
        logits = ops.cast(logits, self.dtype)
        valid = ops.not_equal(labels, self.ignore_class)
        safe_labels = ops.where(valid, labels, 0)
        losses = ops.sparse_categorical_crossentropy(
            safe_labels, logits, from_logits=True
        )
        valid = ops.cast(valid, self.dtype)
        pixel_count = ops.cast(ops.size(valid), self.dtype)
        valid_weight = ops.divide_no_nan(pixel_count, ops.sum(valid))
        return losses * valid * valid_weight

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "ignore_class": self.ignore_class,
                "resize_mode": self.resize_mode,
                "align_corners": self.align_corners,
                "dtype": self.dtype,
            }
        )
        return config
