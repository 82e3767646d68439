"""Evaluating a model on `(image, mask)` batches, and the metrics report.

A report is a JSON-ready dict: `mean_iou`, `per_class_iou` (by class name,
`None` for classes absent from labels and predictions), `pixel_accuracy`,
and any extra entries (`num_images`, `preset`, ...).
"""

import json
import math
import pathlib

from keras_refinenet.data.datasets import class_names_for
from keras_refinenet.evaluation.confusion import ConfusionMatrix

REPORT_INDENT = 2
NOT_AVAILABLE = "n/a"


def json_ready(value):
    """`value` with NaN floats as `None` and numpy scalars as Python numbers.

    Example:

    >>> import numpy as np
    >>> json_ready({"a": np.float64("nan"), "b": [np.float32(0.5), 1]})
    {'a': None, 'b': [0.5, 1]}
    """
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def predict_class_ids_fn(model):
    """A compiled `images -> class ids` function for any image size.

    Args:
        model: a segmentation model returning logits.

    Returns:
        A `tf.function` mapping float images to int32 class ids.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((None, None, 3)),
    ...                           keras.layers.Conv2D(2, 1)])
    >>> predict_class_ids_fn(model)(np.zeros((1, 4, 4, 3), "float32")).shape
    TensorShape([1, 4, 4])
    """
    import tensorflow as tf

    # Raw pixels in: a RefineNet task normalizes with its preprocessor.
    preprocessor = getattr(model, "preprocessor", None)

    @tf.function(reduce_retracing=True)
    def predict(images):
        if preprocessor is not None:
            images = preprocessor(images)
        logits = model(images, training=False)
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    return predict


def confusion_over_dataset(model, batches, num_classes, max_batches=None):
    """Accumulates a `ConfusionMatrix` of `model` over `(image, mask)`
    batches (full-size evaluation).

    Args:
        model: a segmentation model returning logits at the input size.
        batches: `tf.data.Dataset` of `(images, masks)` batches.
        num_classes: number of classes.
        max_batches: stop after this many batches.

    Returns:
        `(ConfusionMatrix, images_seen)`.

    Example:

    >>> import keras, numpy as np, tensorflow as tf
    >>> model = keras.Sequential([keras.Input((None, None, 3)),
    ...                           keras.layers.Conv2D(2, 1)])
    >>> batches = tf.data.Dataset.from_tensors(
    ...     (np.zeros((2, 4, 4, 3), "float32"), np.zeros((2, 4, 4), "int32")))
    >>> confusion, seen = confusion_over_dataset(model, batches, 2)
    >>> seen, int(confusion.counts.sum())
    (2, 32)
    """
    predict = predict_class_ids_fn(model)
    confusion = ConfusionMatrix(num_classes)
    images_seen = 0
    for index, (images, masks) in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        confusion.update(predict(images).numpy(), masks.numpy())
        images_seen += int(images.shape[0])
    return confusion, images_seen


def metrics_report(confusion, class_names, extra=None):
    """JSON-ready `mean_iou`, `per_class_iou` (by name), `pixel_accuracy`.

    Classes absent from labels and predictions get `None`.

    Args:
        confusion: a `ConfusionMatrix`.
        class_names: one name per class.
        extra: more entries for the dict.

    Returns:
        A dict.

    Example:

    >>> import numpy as np
    >>> confusion = ConfusionMatrix(2)
    >>> confusion.update(np.array([0, 1]), np.array([0, 0]))
    >>> metrics_report(confusion, ["a", "b"])["per_class_iou"]
    {'a': 0.5, 'b': 0.0}
    """
    report = {
        "mean_iou": float(confusion.mean_iou()),
        "per_class_iou": {
            name: float(value)
            for name, value in zip(class_names, confusion.per_class_iou())
        },
        "pixel_accuracy": float(confusion.pixel_accuracy()),
    }
    report.update(extra or {})
    return json_ready(report)


def evaluate_model(
    model,
    batches,
    num_classes=None,
    class_names=None,
    max_batches=None,
    extra=None,
):
    """Mean IoU, per-class IoU and pixel accuracy of a model on a dataset.

    Args:
        model: a segmentation model returning logits at the input size.
        batches: `tf.data.Dataset` of `(images, masks)` batches, e.g. from
            `keras_refinenet.data.evaluation_pipeline`.
        num_classes: number of classes; default `model.num_classes`.
        class_names: names of the classes; other lengths (or `None`) give
            `class_<i>` names.
        max_batches: stop after this many batches.
        extra: more entries for the report.

    Returns:
        A report (see `metrics_report`) with `num_images` added.

    Example:

    >>> import keras, numpy as np, tensorflow as tf
    >>> model = keras.Sequential([keras.Input((None, None, 3)),
    ...                           keras.layers.Conv2D(2, 1)])
    >>> batches = tf.data.Dataset.from_tensors(
    ...     (np.zeros((1, 4, 4, 3), "float32"), np.zeros((1, 4, 4), "int32")))
    >>> report = evaluate_model(model, batches, num_classes=2)
    >>> report["num_images"], report["pixel_accuracy"]
    (1, 1.0)
    """
    if num_classes is None:
        num_classes = model.num_classes
    confusion, images_seen = confusion_over_dataset(
        model, batches, num_classes, max_batches=max_batches
    )
    return metrics_report(
        confusion,
        class_names_for(num_classes, class_names),
        extra={"num_images": images_seen, **(extra or {})},
    )


def _shown(value):
    if value is None or math.isnan(value):
        return NOT_AVAILABLE
    return f"{value:.4f}"


def format_report(report):
    """A plain-text table of a report.

    Example:

    >>> print(format_report({"mean_iou": 0.5, "pixel_accuracy": 0.75,
    ...                      "per_class_iou": {"road": 0.5, "sky": None}}))
    class     IoU
    road   0.5000
    sky       n/a
    <BLANKLINE>
    mean IoU        0.5000
    pixel accuracy  0.7500
    """
    per_class = report["per_class_iou"]
    width = max([len("class")] + [len(name) for name in per_class])
    lines = [f"{'class':<{width}}  {'IoU':>6}"]
    for name, value in per_class.items():
        lines.append(f"{name:<{width}}  {_shown(value):>6}")
    lines.append("")
    for label, key in (
        ("mean IoU", "mean_iou"),
        ("pixel accuracy", "pixel_accuracy"),
    ):
        lines.append(f"{label:<14}  {_shown(report[key]):>6}")
    return "\n".join(lines)


def write_report(report, path):
    """Writes a report as JSON (NaN as `null`); creates parent folders.

    Args:
        report: a report dict.
        path: the JSON file.

    Returns:
        The path as a `pathlib.Path`.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "metrics.json")
    >>> write_report({"mean_iou": float("nan")}, path).read_text()
    '{\\n  "mean_iou": null\\n}'
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(json_ready(report), indent=REPORT_INDENT, allow_nan=False)
    )
    return path
