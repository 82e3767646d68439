"""Segmentation losses on sparse integer labels and logits.

Every loss here takes `(B, H, W)` (or `(B, H, W, 1)`) integer labels and
`(B, h, w, C)` logits of any resolution (resized as `resize_mode` says),
skips pixels labelled `ignore_class` (255), computes in float32 (safe under
mixed precision) and is registered for Keras serialization.

- `SparseCategoricalCrossentropyIgnore`: cross-entropy, optionally with
  per-class weights.
- `OHEMCrossentropy`: cross-entropy on the hard pixels only (online hard
  example mining, as mmsegmentation's `OHEMPixelSampler`).
- `DiceLoss`: soft multi-class Dice with smoothing.
- `FocalLoss`: focal loss (Lin et al. 2017) with `gamma` and `alpha`.
- `LovaszSoftmaxLoss`: the Lovasz-softmax loss (Berman et al. 2018).
- `CombinedLoss`: a weighted sum of losses; `get_loss("ce+0.5*dice")`
  builds one from a string.
"""

import functools
import re

import keras
import numpy as np
from keras import ops

from keras_refinenet.constants import IGNORE_LABEL
from keras_refinenet.layers.resize import resize_images, spatial_size

IGNORE_CLASS = IGNORE_LABEL
RESIZE_MODES = ("logits", "labels")
LOSS_DTYPE = "float32"
DEFAULT_OHEM_THRESH = 0.7
DEFAULT_OHEM_MIN_KEPT = 100_000
DEFAULT_DICE_SMOOTH = 1.0
DEFAULT_FOCAL_GAMMA = 2.0
LOVASZ_CLASS_CHOICES = ("present", "all")
CLASS_WEIGHT_METHODS = ("median", "inverse")
AUTO_CLASS_WEIGHTS = "auto"
AUTO_LOSS = "auto"
CLASS_WEIGHTS_FILE = "class_weights.json"


def squeeze_label_channel(labels):
    """Turns `(B, H, W, 1)` labels into `(B, H, W)`; others pass through."""
    if len(labels.shape) == 4:
        return ops.squeeze(labels, axis=-1)
    return labels


def _check_resize_mode(resize_mode):
    if resize_mode not in RESIZE_MODES:
        raise ValueError(
            f"`resize_mode` must be one of {RESIZE_MODES}. "
            f"Received: resize_mode={resize_mode!r}"
        )


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
    _check_resize_mode(resize_mode)
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


def _check_class_weights(class_weights):
    if class_weights is None:
        return None
    weights = [float(weight) for weight in class_weights]
    if not weights or min(weights) < 0:
        raise ValueError(
            "`class_weights` must be a non-empty list of non-negative "
            f"numbers, one per class. Received: class_weights={class_weights}"
        )
    return weights


def _per_pixel_mean(values, mask):
    """Per-pixel values whose `sum_over_batch_size` mean is the mean of
    `values` weighted by `mask` (0 when the mask is empty)."""
    pixel_count = ops.cast(ops.size(mask), values.dtype)
    scale = ops.divide_no_nan(pixel_count, ops.sum(mask))
    return values * mask * scale


def _per_sample(value, labels):
    """A batch-level scalar repeated per sample, so the Keras reduction
    (and its distribution scaling) gives back the scalar."""
    return ops.ones((ops.shape(labels)[0],), value.dtype) * value


@keras.saving.register_keras_serializable(package="keras_refinenet")
class SegmentationLoss(keras.losses.Loss):
    """Base of the segmentation losses: label handling and configuration.

    Subclasses implement `compute(labels, logits, valid)` on same-size
    `int32 (B, H, W)` labels (ignored pixels set to 0), float32 logits and
    a float32 mask of the valid pixels.

    Args:
        ignore_class: label value that contributes nothing to the loss.
        resize_mode: `"logits"` (upsample logits bilinearly to the label
            size) or `"labels"` (downsample labels with nearest neighbour to
            the logit size).
        align_corners: corner alignment of the resize.
        reduction: Keras loss reduction.
        name: name of the loss.
        dtype: dtype of the loss computation; `None` uses float32.
    """

    def __init__(
        self,
        ignore_class=IGNORE_CLASS,
        resize_mode="logits",
        align_corners=True,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
    ):
        super().__init__(
            name=name, reduction=reduction, dtype=dtype or LOSS_DTYPE
        )
        _check_resize_mode(resize_mode)
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
        return self.compute(safe_labels, logits, ops.cast(valid, self.dtype))

    def compute(self, labels, logits, valid):
        raise NotImplementedError

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


def _pixel_cross_entropy(labels, logits):
    return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def _label_weights(labels, class_weights, dtype):
    weights = ops.convert_to_tensor(class_weights, dtype=dtype)
    return ops.take(weights, labels)


@keras.saving.register_keras_serializable(package="keras_refinenet")
class SparseCategoricalCrossentropyIgnore(SegmentationLoss):
    """Per-pixel cross-entropy on logits that skips an ignore label.

    With the default `reduction="sum_over_batch_size"` the result is the mean
    over the valid (not ignored) pixels of the whole batch; with
    `class_weights` it is the weighted mean `sum(w[y] * ce) / sum(w[y])` (as
    PyTorch's `CrossEntropyLoss(weight=...)`). A batch without valid pixels
    gives 0. The loss is computed in float32, so it is safe under mixed
    precision.

    Args:
        class_weights: optional list of one weight per class.
        ignore_class: label value that contributes nothing to the loss.
        resize_mode: `"logits"` or `"labels"`, see `SegmentationLoss`.
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
        class_weights=None,
        ignore_class=IGNORE_CLASS,
        resize_mode="logits",
        align_corners=True,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy_ignore",
        dtype=None,
    ):
        super().__init__(
            ignore_class=ignore_class,
            resize_mode=resize_mode,
            align_corners=align_corners,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        self.class_weights = _check_class_weights(class_weights)

    def compute(self, labels, logits, valid):
        weights = valid
        if self.class_weights is not None:
            weights = valid * _label_weights(
                labels, self.class_weights, self.dtype
            )
        return _per_pixel_mean(_pixel_cross_entropy(labels, logits), weights)

    def get_config(self):
        config = super().get_config()
        config["class_weights"] = self.class_weights
        return config


@keras.saving.register_keras_serializable(package="keras_refinenet")
class OHEMCrossentropy(SparseCategoricalCrossentropyIgnore):
    """Cross-entropy over the hard pixels of a batch (online hard example
    mining), with the selection rule of mmsegmentation's `OHEMPixelSampler`.

    With `thresh`, a valid pixel is kept when the softmax probability of its
    true class is below `max(thresh, p_k)`, where `p_k` is the
    `min(min_kept * B, valid - 1)`-th smallest such probability of the
    batch, so at least `min_kept` pixels per image are kept (when there are
    that many valid ones). Without `thresh`, the `min_kept * B` pixels with
    the largest cross-entropy are kept. The loss is the (class-weighted)
    mean cross-entropy over the kept pixels; the selection carries no
    gradient.

    Args:
        thresh: probability threshold, or `None` to keep the top losses.
        min_kept: pixels kept at least, per image of the batch.
        class_weights: optional list of one weight per class.
        ignore_class: label value that contributes nothing to the loss.
        resize_mode: `"logits"` or `"labels"`, see `SegmentationLoss`.
        align_corners: corner alignment of the resize.
        reduction: Keras loss reduction.
        name: name of the loss.
        dtype: dtype of the loss computation; `None` uses float32.

    Example:

    >>> import numpy as np
    >>> loss = OHEMCrossentropy(thresh=0.7, min_kept=1)
    >>> # p(true class) = 0.5, 0.5 and 0.88: the last pixel is easy.
    >>> logits = np.array([[[[0.0, 0.0], [0.0, 0.0], [2.0, 0.0]]]])
    >>> labels = np.array([[[0, 1, 0]]])
    >>> round(float(loss(labels, logits)), 4)
    0.6931
    """

    def __init__(
        self,
        thresh=DEFAULT_OHEM_THRESH,
        min_kept=DEFAULT_OHEM_MIN_KEPT,
        class_weights=None,
        ignore_class=IGNORE_CLASS,
        resize_mode="logits",
        align_corners=True,
        reduction="sum_over_batch_size",
        name="ohem_crossentropy",
        dtype=None,
    ):
        super().__init__(
            class_weights=class_weights,
            ignore_class=ignore_class,
            resize_mode=resize_mode,
            align_corners=align_corners,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        if thresh is not None and not 0.0 < float(thresh) <= 1.0:
            raise ValueError(
                "`thresh` must be a probability in (0, 1] or None. "
                f"Received: thresh={thresh}"
            )
        if int(min_kept) < 1:
            raise ValueError(
                f"`min_kept` must be a positive integer. "
                f"Received: min_kept={min_kept}"
            )
        self.thresh = None if thresh is None else float(thresh)
        self.min_kept = int(min_kept)

    def hard_pixels(self, labels, logits, valid):
        """The float32 `(B, H, W)` mask of the kept pixels."""
        flat_valid = ops.reshape(valid, (-1,))
        valid_count = ops.cast(ops.sum(flat_valid), "int32")
        batch_kept = self.min_kept * ops.shape(labels)[0]
        losses = ops.stop_gradient(_pixel_cross_entropy(labels, logits))
        if self.thresh is None:
            # Rank of each valid pixel by decreasing loss; ignored last.
            keys = ops.where(flat_valid > 0, ops.reshape(losses, (-1,)), -1.0)
            order = ops.argsort(-keys)
            ranks = ops.scatter(
                order[:, None],
                ops.arange(ops.shape(order)[0], dtype="int32"),
                ops.shape(order),
            )
            kept = ops.cast(ranks < batch_kept, self.dtype) * flat_valid
            return ops.reshape(kept, ops.shape(valid))
        true_probability = ops.exp(-losses)
        flat_probability = ops.reshape(true_probability, (-1,))
        sorted_probability = ops.sort(
            ops.where(flat_valid > 0, flat_probability, 2.0)
        )
        index = ops.minimum(batch_kept, ops.maximum(valid_count - 1, 0))
        min_threshold = ops.where(
            valid_count > 0, ops.take(sorted_probability, index), 0.0
        )
        threshold = ops.maximum(min_threshold, self.thresh)
        return ops.cast(true_probability < threshold, self.dtype) * valid

    def compute(self, labels, logits, valid):
        kept = self.hard_pixels(labels, logits, valid)
        return super().compute(labels, logits, kept)

    def get_config(self):
        config = super().get_config()
        config.update({"thresh": self.thresh, "min_kept": self.min_kept})
        return config


@keras.saving.register_keras_serializable(package="keras_refinenet")
class FocalLoss(SegmentationLoss):
    """Softmax focal loss `-alpha[y] (1 - p_y)^gamma log p_y` (Lin et al.
    2017), averaged over the valid pixels.

    Args:
        gamma: focusing exponent; 0 gives cross-entropy.
        alpha: `None` (1 for every class), a number (the same for every
            class) or a list of one factor per class.
        ignore_class: label value that contributes nothing to the loss.
        resize_mode: `"logits"` or `"labels"`, see `SegmentationLoss`.
        align_corners: corner alignment of the resize.
        reduction: Keras loss reduction.
        name: name of the loss.
        dtype: dtype of the loss computation; `None` uses float32.

    Example:

    >>> import numpy as np
    >>> loss = FocalLoss(gamma=2.0)
    >>> # p_y = 0.5: 0.25 * log(2).
    >>> logits = np.zeros((1, 1, 2, 2), dtype="float32")
    >>> round(float(loss(np.array([[[0, 255]]]), logits)), 4)
    0.1733
    """

    def __init__(
        self,
        gamma=DEFAULT_FOCAL_GAMMA,
        alpha=None,
        ignore_class=IGNORE_CLASS,
        resize_mode="logits",
        align_corners=True,
        reduction="sum_over_batch_size",
        name="focal_loss",
        dtype=None,
    ):
        super().__init__(
            ignore_class=ignore_class,
            resize_mode=resize_mode,
            align_corners=align_corners,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        if float(gamma) < 0:
            raise ValueError(
                f"`gamma` must be non-negative. Received: gamma={gamma}"
            )
        self.gamma = float(gamma)
        if alpha is not None and not isinstance(alpha, (int, float)):
            alpha = _check_class_weights(alpha)
        self.alpha = alpha

    def compute(self, labels, logits, valid):
        cross_entropy = _pixel_cross_entropy(labels, logits)
        true_probability = ops.exp(-cross_entropy)
        losses = ops.power(1.0 - true_probability, self.gamma) * cross_entropy
        if isinstance(self.alpha, list):
            losses = losses * _label_weights(labels, self.alpha, self.dtype)
        elif self.alpha is not None:
            losses = losses * self.alpha
        return _per_pixel_mean(losses, valid)

    def get_config(self):
        config = super().get_config()
        config.update({"gamma": self.gamma, "alpha": self.alpha})
        return config


@keras.saving.register_keras_serializable(package="keras_refinenet")
class DiceLoss(SegmentationLoss):
    """Soft multi-class Dice loss over the valid pixels of the batch.

    For each class `c`, with softmax probabilities `p_c` and one-hot labels
    `g_c` summed over the valid pixels of the whole batch:
    `dice_c = (2 sum(p_c g_c) + smooth) / (sum(p_c) + sum(g_c) + smooth)`;
    the loss is `1 - mean_c dice_c` over all classes, or
    `mean_c -log(dice_c)` with `log_loss=True`.

    The plain form is bounded and its gradient fades for a class whose Dice
    is near zero, so from random weights at a high learning rate it can
    settle on predicting the largest class (measured on the demo: AdamW at
    2e-3 collapses to the background, 5e-4 trains). The log form scales
    each class's gradient by `1 / dice_c` and trains at the default rate.

    Args:
        smooth: added to numerator and denominator (keeps absent classes
            and empty batches finite).
        log_loss: `mean_c -log(dice_c)` instead of `1 - mean_c dice_c`;
            needs `smooth > 0`.
        ignore_class: label value that contributes nothing to the loss.
        resize_mode: `"logits"` or `"labels"`, see `SegmentationLoss`.
        align_corners: corner alignment of the resize.
        reduction: Keras loss reduction.
        name: name of the loss.
        dtype: dtype of the loss computation; `None` uses float32.

    Example:

    >>> import numpy as np
    >>> loss = DiceLoss(smooth=0.0)
    >>> logits = np.array([[[[9.0, -9.0], [-9.0, 9.0]]]])
    >>> round(float(loss(np.array([[[0, 1]]]), logits)), 3)
    0.0
    >>> log_dice = DiceLoss(log_loss=True)  # dice_c = (1 + 1) / (2 + 1)
    >>> uniform = np.zeros((1, 1, 2, 2))
    >>> round(float(log_dice(np.array([[[0, 1]]]), uniform)), 4)
    0.4055
    """

    def __init__(
        self,
        smooth=DEFAULT_DICE_SMOOTH,
        log_loss=False,
        ignore_class=IGNORE_CLASS,
        resize_mode="logits",
        align_corners=True,
        reduction="sum_over_batch_size",
        name="dice_loss",
        dtype=None,
    ):
        super().__init__(
            ignore_class=ignore_class,
            resize_mode=resize_mode,
            align_corners=align_corners,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        if float(smooth) < 0:
            raise ValueError(
                f"`smooth` must be non-negative. Received: smooth={smooth}"
            )
        if log_loss and float(smooth) == 0:
            raise ValueError(
                "`log_loss=True` needs `smooth > 0`: the log of a zero Dice "
                f"is infinite. Received: smooth={smooth}, log_loss={log_loss}"
            )
        self.smooth = float(smooth)
        self.log_loss = bool(log_loss)

    def compute(self, labels, logits, valid):
        num_classes = ops.shape(logits)[-1]
        probabilities = ops.softmax(logits, axis=-1) * valid[..., None]
        one_hot = ops.one_hot(labels, num_classes, dtype=self.dtype)
        one_hot = one_hot * valid[..., None]
        axes = (0, 1, 2)
        intersection = ops.sum(probabilities * one_hot, axis=axes)
        total = ops.sum(probabilities, axis=axes) + ops.sum(one_hot, axis=axes)
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
        if self.log_loss:
            return _per_sample(-ops.mean(ops.log(dice)), labels)
        return _per_sample(1.0 - ops.mean(dice), labels)

    def get_config(self):
        config = super().get_config()
        config.update({"smooth": self.smooth, "log_loss": self.log_loss})
        return config


def _lovasz_gradient(sorted_foreground):
    """Gradient of the Lovasz extension of the Jaccard loss, per column of
    foreground indicators sorted by decreasing error (Berman et al., Alg. 1).
    """
    total = ops.sum(sorted_foreground, axis=0, keepdims=True)
    intersection = total - ops.cumsum(sorted_foreground, axis=0)
    union = total + ops.cumsum(1.0 - sorted_foreground, axis=0)
    jaccard = 1.0 - intersection / union
    return ops.concatenate([jaccard[:1], jaccard[1:] - jaccard[:-1]], axis=0)


@keras.saving.register_keras_serializable(package="keras_refinenet")
class LovaszSoftmaxLoss(SegmentationLoss):
    """The Lovasz-softmax loss (Berman, Rannen Triki and Blaschko, CVPR
    2018): a convex surrogate of the per-class Jaccard loss on the softmax
    probabilities of the valid pixels of the whole batch.

    For each class, the errors `|g_c - p_c|` are sorted in decreasing order
    and weighted with the gradient of the Lovasz extension of the Jaccard
    loss; the loss is the mean over the classes (`classes="present"`: only
    the classes present in the labels of the batch; `"all"`: every class).

    Args:
        classes: `"present"` or `"all"`.
        ignore_class: label value that contributes nothing to the loss.
        resize_mode: `"logits"` or `"labels"`, see `SegmentationLoss`.
        align_corners: corner alignment of the resize.
        reduction: Keras loss reduction.
        name: name of the loss.
        dtype: dtype of the loss computation; `None` uses float32.

    Example:

    >>> import numpy as np
    >>> loss = LovaszSoftmaxLoss()
    >>> logits = np.array([[[[20.0, -20.0], [-20.0, 20.0]]]])
    >>> round(float(loss(np.array([[[0, 1]]]), logits)), 4)
    0.0
    """

    def __init__(
        self,
        classes="present",
        ignore_class=IGNORE_CLASS,
        resize_mode="logits",
        align_corners=True,
        reduction="sum_over_batch_size",
        name="lovasz_softmax_loss",
        dtype=None,
    ):
        super().__init__(
            ignore_class=ignore_class,
            resize_mode=resize_mode,
            align_corners=align_corners,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        if classes not in LOVASZ_CLASS_CHOICES:
            raise ValueError(
                f"`classes` must be one of {LOVASZ_CLASS_CHOICES}. "
                f"Received: classes={classes!r}"
            )
        self.classes = classes

    def compute(self, labels, logits, valid):
        num_classes = ops.shape(logits)[-1]
        probabilities = ops.reshape(
            ops.softmax(logits, axis=-1), (-1, num_classes)
        )
        flat_valid = ops.reshape(valid, (-1, 1))
        foreground = ops.one_hot(
            ops.reshape(labels, (-1,)), num_classes, dtype=self.dtype
        )
        foreground = foreground * flat_valid
        errors = ops.abs(foreground - probabilities) * flat_valid
        # Ignored pixels sort last (key -1) and add nothing (error 0).
        keys = ops.where(flat_valid > 0, errors, -1.0)
        order = ops.stop_gradient(ops.argsort(-keys, axis=0))
        sorted_errors = ops.take_along_axis(errors, order, axis=0)
        sorted_foreground = ops.take_along_axis(foreground, order, axis=0)
        per_class = ops.sum(
            sorted_errors * _lovasz_gradient(sorted_foreground), axis=0
        )
        if self.classes == "present":
            present = ops.cast(ops.sum(foreground, axis=0) > 0, self.dtype)
        else:
            present = ops.ones_like(per_class)
        loss = ops.divide_no_nan(ops.sum(per_class * present), ops.sum(present))
        return _per_sample(loss, labels)

    def get_config(self):
        config = super().get_config()
        config["classes"] = self.classes
        return config


@keras.saving.register_keras_serializable(package="keras_refinenet")
class CombinedLoss(keras.losses.Loss):
    """A weighted sum of losses, each reduced on its own.

    Args:
        losses: list of `(loss, weight)` pairs (a bare loss has weight 1);
            losses may be instances or names accepted by `get_loss`.
        name: name of the loss.
        dtype: dtype of the sum; `None` uses float32.

    Example:

    >>> import numpy as np
    >>> loss = CombinedLoss([(SparseCategoricalCrossentropyIgnore(), 1.0),
    ...                      (DiceLoss(), 0.5)])
    >>> logits = np.zeros((1, 1, 2, 2), dtype="float32")
    >>> # log(2) + 0.5 * (1 - 2/3)
    >>> round(float(loss(np.array([[[0, 1]]]), logits)), 4)
    0.8598
    """

    def __init__(self, losses, name="combined_loss", dtype=None, **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(
            name=name, reduction="sum_over_batch_size", dtype=dtype or "float32"
        )
        pairs = []
        for item in losses:
            loss, weight = (
                item if isinstance(item, (list, tuple)) else (item, 1.0)
            )
            if isinstance(loss, dict):
                loss = keras.saving.deserialize_keras_object(loss)
            elif isinstance(loss, str):
                loss = get_loss(loss)
            if not callable(loss):
                raise ValueError(
                    "`losses` must hold losses or `(loss, weight)` pairs. "
                    f"Received: losses={losses!r}"
                )
            pairs.append((loss, float(weight)))
        if not pairs:
            raise ValueError(
                f"`losses` must not be empty. Received: losses={losses!r}"
            )
        self.losses = pairs

    def call(self, y_true, y_pred):
        total = None
        for loss, weight in self.losses:
            value = ops.cast(loss(y_true, y_pred), self.dtype) * weight
            total = value if total is None else total + value
        return total

    def get_config(self):
        config = super().get_config()
        config.pop("reduction", None)
        config["losses"] = [
            [keras.saving.serialize_keras_object(loss), weight]
            for loss, weight in self.losses
        ]
        config["dtype"] = self.dtype
        return config


LOSS_NAMES = {
    "ce": SparseCategoricalCrossentropyIgnore,
    "cross_entropy": SparseCategoricalCrossentropyIgnore,
    "ohem": OHEMCrossentropy,
    "dice": DiceLoss,
    "log_dice": functools.partial(DiceLoss, log_loss=True),
    "focal": FocalLoss,
    "lovasz": LovaszSoftmaxLoss,
}
CLASS_WEIGHTED_LOSSES = ("ce", "cross_entropy", "ohem")
_TERM = re.compile(
    r"^(?:(?P<weight>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\*)?(?P<name>[a-z_]+)$"
)


def parse_loss_spec(spec):
    """Splits `"ce+0.5*dice"` into `[("ce", 1.0), ("dice", 0.5)]`.

    Args:
        spec: loss names from `LOSS_NAMES` joined with `+`, each optionally
            preceded by `weight*`.

    Returns:
        A list of `(name, weight)` pairs.

    Example:

    >>> parse_loss_spec("ce + 0.5*lovasz")
    [('ce', 1.0), ('lovasz', 0.5)]
    """
    terms = []
    for term in str(spec).replace(" ", "").lower().split("+"):
        match = _TERM.match(term)
        if not match or match["name"] not in LOSS_NAMES:
            raise ValueError(
                "A loss must be names from "
                f"{sorted(LOSS_NAMES)} joined with '+', each optionally "
                f"weighted as 'WEIGHT*NAME' (e.g. 'ce+0.5*dice'). "
                f"Received: loss={spec!r}"
            )
        terms.append((match["name"], float(match["weight"] or 1.0)))
    return terms


def is_loss_spec(spec):
    """Whether `spec` is a string `get_loss` understands.

    Example:

    >>> is_loss_spec("ce+dice"), is_loss_spec("mse")
    (True, False)
    """
    try:
        parse_loss_spec(spec)
    except ValueError:
        return False
    return True


def get_loss(
    spec,
    class_weights=None,
    ohem_thresh=None,
    ohem_min_kept=None,
    ignore_class=IGNORE_CLASS,
    resize_mode="logits",
):
    """A loss from a name or a `"ce+0.5*dice"` style sum.

    Args:
        spec: `"ce"`, `"ohem"`, `"dice"`, `"log_dice"`, `"focal"`,
            `"lovasz"`, or a sum
            of them (see `parse_loss_spec`).
        class_weights: list of per-class weights for the cross-entropy
            terms (`ce`, `ohem`).
        ohem_thresh: probability threshold of the `ohem` term (default
            0.7).
        ohem_min_kept: pixels kept at least per image by the `ohem` term.
        ignore_class: label value ignored by every term.
        resize_mode: `"logits"` or `"labels"`.

    Returns:
        A loss; a `CombinedLoss` for more than one term.

    Example:

    >>> type(get_loss("ce+dice")).__name__
    'CombinedLoss'
    >>> get_loss("ohem", ohem_thresh=0.5).thresh
    0.5
    """
    terms = parse_loss_spec(spec)
    names = [name for name, _ in terms]
    if (ohem_thresh is not None or ohem_min_kept is not None) and (
        "ohem" not in names
    ):
        raise ValueError(
            "OHEM options need an 'ohem' loss term (e.g. --loss ohem). "
            f"Received: loss={spec!r}, ohem_thresh={ohem_thresh}, "
            f"ohem_min_kept={ohem_min_kept}"
        )
    if class_weights is not None and not set(names) & set(
        CLASS_WEIGHTED_LOSSES
    ):
        raise ValueError(
            "Class weights apply to the cross-entropy terms ('ce', 'ohem'). "
            f"Received: loss={spec!r}, class_weights={class_weights}"
        )
    common = {"ignore_class": ignore_class, "resize_mode": resize_mode}
    losses = []
    for name, weight in terms:
        options = dict(common)
        if name in CLASS_WEIGHTED_LOSSES:
            options["class_weights"] = class_weights
        if name == "ohem":
            if ohem_thresh is not None:
                options["thresh"] = ohem_thresh
            if ohem_min_kept is not None:
                options["min_kept"] = ohem_min_kept
        losses.append((LOSS_NAMES[name](**options), weight))
    if len(losses) == 1 and losses[0][1] == 1.0:
        return losses[0][0]
    return CombinedLoss(losses)


def class_weights_from_counts(pixel_counts, image_counts=None, method="median"):
    """Class-balancing weights from per-class pixel counts.

    - `"median"`: median frequency balancing (Eigen and Fergus 2015):
      `w_c = median(f) / f_c` with `f_c` the pixels of class `c` divided by
      the pixels of the images where `c` appears (`image_counts`; the total
      of all pixels when `None`).
    - `"inverse"`: inverse frequency `w_c = N / (K n_c)` with `N` the valid
      pixels and `K` the classes present, so a balanced set gets ones.

    Classes absent from the counts get weight 1.

    Args:
        pixel_counts: pixels per class (ignored pixels excluded).
        image_counts: per class, the total pixels of the images where the
            class appears.
        method: `"median"` or `"inverse"`.

    Returns:
        A list of floats, one per class.

    Example:

    >>> class_weights_from_counts([30, 10], method="inverse")
    [0.6666666666666666, 2.0]
    >>> class_weights_from_counts([30, 10, 20], method="median")
    [0.6666666666666666, 2.0, 1.0]
    """
    if method not in CLASS_WEIGHT_METHODS:
        raise ValueError(
            f"`method` must be one of {CLASS_WEIGHT_METHODS}. "
            f"Received: method={method!r}"
        )
    counts = np.asarray(pixel_counts, dtype=np.float64)
    present = counts > 0
    weights = np.ones_like(counts)
    if not present.any():
        return weights.tolist()
    if method == "inverse":
        weights[present] = counts.sum() / (present.sum() * counts[present])
        return weights.tolist()
    if image_counts is None:
        totals = np.full_like(counts, counts.sum())
    else:
        totals = np.asarray(image_counts, dtype=np.float64)
    frequencies = counts[present] / totals[present]
    weights[present] = np.median(frequencies) / frequencies
    return weights.tolist()


def parse_class_weights(text, num_classes=None):
    """Parses `--class-weights`: `"auto"`, `"median"`, `"inverse"` or
    comma-separated numbers.

    Args:
        text: the option value.
        num_classes: expected number of weights, if known.

    Returns:
        A method name (`"median"` for `"auto"`) or a list of floats.

    Example:

    >>> parse_class_weights("1,2.5")
    [1.0, 2.5]
    >>> parse_class_weights("auto")
    'median'
    """
    text = str(text).strip().lower()
    if text == AUTO_CLASS_WEIGHTS:
        return "median"
    if text in CLASS_WEIGHT_METHODS:
        return text
    try:
        weights = [float(value) for value in text.split(",")]
    except ValueError:
        weights = None
    if weights is None or min(weights) < 0:
        raise ValueError(
            "Class weights must be 'auto', 'median', 'inverse' or "
            "non-negative numbers separated by commas. "
            f"Received: class_weights={text!r}"
        )
    if num_classes is not None and len(weights) != num_classes:
        raise ValueError(
            f"Give one class weight per class ({num_classes}). "
            f"Received: class_weights={text!r}"
        )
    return weights


def training_loss(
    loss=AUTO_LOSS,
    class_weights=None,
    ohem_thresh=None,
    ohem_min_kept=None,
    num_classes=None,
    train_examples=None,
    output_dir=None,
    ignore_class=IGNORE_CLASS,
):
    """The loss of a training run, with class weights resolved.

    Args:
        loss: a loss instance, a `get_loss` string, or `"auto"` (the
            default cross-entropy; `"ohem"` with OHEM options, `"ce"` with
            class weights).
        class_weights: `None`, a list of weights, or `"auto"` /
            `"median"` / `"inverse"` to compute them from the masks of
            `train_examples` (see `class_weights_from_counts`).
        ohem_thresh: threshold of an `ohem` term.
        ohem_min_kept: `min_kept` of an `ohem` term.
        num_classes: number of classes (checks the weights' length).
        train_examples: `tf.data.Dataset` of training `(image, mask)`;
            read once when weights are computed.
        output_dir: where `class_weights.json` is written (the weights,
            method and pixel counts); `None` writes nothing.
        ignore_class: the ignore label.

    Returns:
        A loss, or `"auto"` for `RefineNet.compile`'s default.

    Example:

    >>> training_loss("ce+dice", class_weights=[1.0, 2.0]).losses[0][0]
    ... # doctest: +ELLIPSIS
    <...SparseCategoricalCrossentropyIgnore...>
    """
    import json
    import pathlib

    if isinstance(class_weights, str):
        class_weights = parse_class_weights(class_weights)
    uses_options = class_weights is not None or (
        ohem_thresh is not None or ohem_min_kept is not None
    )
    if not isinstance(loss, str):
        if uses_options:
            raise ValueError(
                "Class weights and OHEM options apply to loss names; "
                "configure your loss object instead. "
                f"Received: loss={loss!r}, class_weights={class_weights}"
            )
        return loss
    if loss == AUTO_LOSS:
        if not uses_options:
            return AUTO_LOSS
        loss = "ohem" if ohem_thresh or ohem_min_kept else "ce"
    record = None
    if isinstance(class_weights, str):
        if train_examples is None or num_classes is None:
            raise ValueError(
                "Computed class weights need the training set and the "
                f"number of classes. Received: class_weights={class_weights!r}"
            )
        from keras_refinenet.data.inspection import count_class_pixels

        pixel_counts, image_counts = count_class_pixels(
            train_examples, num_classes, ignore_class
        )
        method = class_weights
        class_weights = class_weights_from_counts(
            pixel_counts, image_counts, method
        )
        record = {
            "method": method,
            "class_weights": class_weights,
            "pixel_counts": pixel_counts,
        }
    elif class_weights is not None:
        class_weights = _check_class_weights(class_weights)
        record = {"method": "given", "class_weights": class_weights}
    if class_weights is not None and num_classes is not None:
        if len(class_weights) != num_classes:
            raise ValueError(
                f"Give one class weight per class ({num_classes}). "
                f"Received: class_weights={class_weights}"
            )
    if record is not None and output_dir is not None:
        output_dir = pathlib.Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / CLASS_WEIGHTS_FILE).write_text(
            json.dumps(record, indent=2)
        )
    return get_loss(
        loss,
        class_weights=class_weights,
        ohem_thresh=ohem_thresh,
        ohem_min_kept=ohem_min_kept,
        ignore_class=ignore_class,
    )
