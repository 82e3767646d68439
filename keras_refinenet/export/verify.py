"""`verify_export`: runs an exported file in its runtime against Keras.

The file runs in a child process (`runtime_runner.py`) that imports only
numpy and the runtime. The report gives the largest logit difference
(absolute and relative to the largest Keras logit), the pixel agreement
of the argmax and, with masks, the mean IoU of both; it is written as
JSON next to the export and `report["passed"]` says whether it is within
the tolerances.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from keras_refinenet.constants import IGNORE_LABEL
from keras_refinenet.export.formats import (
    FIXED_SIZE_FORMATS,
    LITERT_INT8,
    RGB_CHANNELS,
    check_extra,
    export_file,
)

RUNNER_SCRIPT = pathlib.Path(__file__).with_name("runtime_runner.py")
REPORT_FILE = "verify_report.json"
SYNTHETIC_DATA = ("synthetic", "demo")
DEFAULT_VERIFY_IMAGES = 8
DEFAULT_VERIFY_SIZE = (97, 133)
VERIFY_SEED = 7
IMAGES_FOLDER = "images"
MASKS_FOLDER = "masks"
# Float formats: logits within 1e-3 of the largest logit, 99.9% argmax
# agreement; int8: at most 1 mean IoU point lost.
DEFAULT_MAX_RELATIVE_DIFFERENCE = 1e-3
DEFAULT_MIN_ARGMAX_AGREEMENT = 0.999
DEFAULT_MAX_MEAN_IOU_DROP = 0.01
# Relative differences are taken against at least this logit magnitude.
MIN_LOGIT_SCALE = 1e-6


def _resize(array, input_size, nearest):
    from PIL import Image

    height, width = input_size
    if array.shape[:2] == (height, width):
        return array
    method = Image.NEAREST if nearest else Image.BILINEAR
    return np.asarray(Image.fromarray(array).resize((width, height), method))


def load_verify_data(
    data, input_size=None, num_images=DEFAULT_VERIFY_IMAGES, masks=None
):
    """Images (and masks) to verify on.

    Args:
        data: `"synthetic"`/`"demo"` (the synthetic shapes of the demo,
            masks included, `input_size` or 97x133), a folder of images
            (or a folder with `images/` and `masks/` sub-folders, paired by
            file stem), or a uint8 array `(n, height, width, 3)`.
        input_size: `(height, width)` every image is resized to (masks
            with nearest neighbour); `None` keeps the sizes.
        num_images: at most this many images.
        masks: uint8 masks `(n, height, width)` for an array `data`.

    Returns:
        `(images, masks)`: lists of uint8 arrays; `masks` is `None`
        without masks.

    Example:

    >>> images, masks = load_verify_data("synthetic", num_images=2)
    >>> images[0].shape, masks[0].shape
    ((97, 133, 3), (97, 133))
    """
    if isinstance(data, str) and data in SYNTHETIC_DATA:
        from keras_refinenet.data.synthetic import make_synthetic_arrays

        size = tuple(input_size or DEFAULT_VERIFY_SIZE)
        images, masks = make_synthetic_arrays(
            num_images, image_size=size, seed=VERIFY_SEED
        )
    elif isinstance(data, np.ndarray):
        images = data[:num_images]
        masks = None if masks is None else masks[:num_images]
    else:
        images, masks = _folder_data(data, num_images)
    images = list(images)
    masks = None if masks is None else list(masks)
    if input_size is not None:
        images = [_resize(image, input_size, False) for image in images]
        if masks is not None:
            masks = [_resize(mask, input_size, True) for mask in masks]
    for image in images:
        if image.dtype != np.uint8 or image.shape[-1:] != (RGB_CHANNELS,):
            raise ValueError(
                "Verify images must be uint8 (height, width, 3). "
                f"Received: shape={image.shape}, dtype={image.dtype}"
            )
    return images, masks


def _folder_data(data, num_images):
    from keras_refinenet.data.folder import (
        match_image_mask_pairs,
        read_image,
        read_mask,
    )
    from keras_refinenet.export.litert import IMAGE_EXTENSIONS

    folder = pathlib.Path(data)
    if not folder.is_dir():
        raise ValueError(
            f"`data` must be {' or '.join(map(repr, SYNTHETIC_DATA))}, a "
            f"folder of images or an array. Received: data={data!r}"
        )
    if (folder / IMAGES_FOLDER).is_dir() and (folder / MASKS_FOLDER).is_dir():
        pairs = match_image_mask_pairs(
            folder / IMAGES_FOLDER, folder / MASKS_FOLDER
        )[:num_images]
        return (
            [read_image(image) for image, _ in pairs],
            [read_mask(mask) for _, mask in pairs],
        )
    files = sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_EXTENSIONS
    )[:num_images]
    if not files:
        raise ValueError(
            f"`data` folder holds no images. Received: data={str(folder)!r}"
        )
    return [read_image(path) for path in files], None


def keras_logits(model, images):
    """Float32 logits of the Keras model, preprocessor applied, per image."""
    preprocessor = getattr(model, "preprocessor", None)
    logits = []
    for image in images:
        pixels = image[None].astype(np.float32)
        if preprocessor is not None:
            pixels = preprocessor(pixels)
        logits.append(np.asarray(model(pixels, training=False), np.float32))
    return logits


def run_in_runtime(format, path, images, threads=None, timeout=None):
    """Logits of the exported file, from a process without keras_refinenet.

    Args:
        format: the export format.
        path: the exported file.
        images: list of uint8 images; one size each call of the runtime.
        threads: CPU threads of the runtime; `None` for its default.
        timeout: seconds before the child process is stopped.

    Returns:
        A list of float32 logits `(1, height, width, classes)`.
    """
    logits = []
    with tempfile.TemporaryDirectory() as folder:
        for index, image in enumerate(images):
            images_path = os.path.join(folder, f"images_{index}.npy")
            logits_path = os.path.join(folder, f"logits_{index}.npy")
            np.save(images_path, image[None])
            command = [
                sys.executable,
                str(RUNNER_SCRIPT),
                format,
                str(path),
                images_path,
                logits_path,
            ] + ([str(threads)] if threads else [])
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=folder,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"The {format} runtime failed on {path}: "
                    f"{result.stderr.strip().splitlines()[-1:]}. "
                    f"Received: format={format!r}, path={str(path)!r}"
                )
            logits.append(np.load(logits_path))
    return logits


def _confusion(labels, predictions, num_classes):
    valid = labels != IGNORE_LABEL
    index = labels[valid].astype(np.int64) * num_classes + predictions[valid]
    return np.bincount(index, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def mean_iou(masks, predictions, num_classes):
    """Mean IoU over the classes present in masks or predictions.

    Args:
        masks: list of integer label maps (`IGNORE_LABEL` skipped).
        predictions: list of class-id maps of the same shapes.
        num_classes: number of classes (raised to cover every label).

    Returns:
        The mean IoU as a float in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> mean_iou([np.array([0, 0, 1, 1])], [np.array([0, 1, 1, 1])], 2)
    0.5833333333333333
    """
    for mask in masks:
        labels = np.asarray(mask)
        labels = labels[labels != IGNORE_LABEL]
        if labels.size:
            num_classes = max(num_classes, int(labels.max()) + 1)
    confusion = sum(
        _confusion(np.asarray(mask), np.asarray(prediction), num_classes)
        for mask, prediction in zip(masks, predictions)
    )
    intersection = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    present = union > 0
    return float(np.mean(intersection[present] / union[present]))


def compare_logits(
    reference,
    exported,
    masks=None,
    quantized=False,
    max_relative_difference=DEFAULT_MAX_RELATIVE_DIFFERENCE,
    min_argmax_agreement=DEFAULT_MIN_ARGMAX_AGREEMENT,
    max_mean_iou_drop=DEFAULT_MAX_MEAN_IOU_DROP,
):
    """The verify report of exported logits against reference logits.

    Float exports must meet `max_relative_difference` and
    `min_argmax_agreement`; quantized ones `max_mean_iou_drop` (against
    `masks`, or against the reference argmax without masks).

    Args:
        reference: list of Keras logits `(1, h, w, classes)`.
        exported: list of exported-file logits of the same shapes.
        masks: optional list of label maps `(h, w)`.
        quantized: judge as an int8 export.
        max_relative_difference: largest logit difference over the
            largest Keras logit magnitude.
        min_argmax_agreement: smallest fraction of equal argmax pixels.
        max_mean_iou_drop: largest mean IoU loss (0.01 = 1 point).

    Returns:
        A JSON-ready dict; `passed` is `True` within the tolerances.

    Example:

    >>> import numpy as np
    >>> a = np.array([[[[1.0, 0.0]]]])
    >>> compare_logits([a], [a + 1e-4])["passed"]
    True
    """
    for ref, out in zip(reference, exported):
        if ref.shape != out.shape:
            raise ValueError(
                "Exported logits differ in shape from the Keras logits. "
                f"Received: keras={ref.shape}, exported={out.shape}"
            )
    num_classes = int(reference[0].shape[-1])
    largest = max(float(np.abs(ref).max()) for ref in reference)
    difference = max(
        float(np.abs(ref - out).max()) for ref, out in zip(reference, exported)
    )
    reference_ids = [ref[0].argmax(-1) for ref in reference]
    exported_ids = [out[0].argmax(-1) for out in exported]
    agreement = float(
        sum((r == e).sum() for r, e in zip(reference_ids, exported_ids))
        / sum(r.size for r in reference_ids)
    )
    labels = masks if masks is not None else reference_ids
    keras_miou = mean_iou(labels, reference_ids, num_classes)
    exported_miou = mean_iou(labels, exported_ids, num_classes)
    relative = difference / max(largest, MIN_LOGIT_SCALE)
    report = {
        "num_images": len(reference),
        "max_logit_difference": difference,
        "max_relative_logit_difference": relative,
        "argmax_agreement": agreement,
        "mean_iou_against": "masks" if masks is not None else "keras_argmax",
        "mean_iou_keras": keras_miou,
        "mean_iou_export": exported_miou,
        "mean_iou_drop": keras_miou - exported_miou,
        "tolerances": (
            {"max_mean_iou_drop": max_mean_iou_drop}
            if quantized
            else {
                "max_relative_logit_difference": max_relative_difference,
                "min_argmax_agreement": min_argmax_agreement,
            }
        ),
    }
    if quantized:
        failures = [
            f"mean IoU drop {report['mean_iou_drop']:.4f} > {max_mean_iou_drop}"
        ] * (report["mean_iou_drop"] > max_mean_iou_drop)
    else:
        failures = [
            f"relative logit difference {relative:.3g} > "
            f"{max_relative_difference}"
        ] * (relative > max_relative_difference) + [
            f"argmax agreement {agreement:.5f} < {min_argmax_agreement}"
        ] * (agreement < min_argmax_agreement)
    report["failures"] = failures
    report["passed"] = not failures
    return report


def verify_export(
    model,
    path,
    format,
    data="synthetic",
    input_size=None,
    num_images=DEFAULT_VERIFY_IMAGES,
    threads=None,
    report_path=None,
    **tolerances,
):
    """Runs an exported file in its runtime and compares it with `model`.

    Args:
        model: the Keras model the file was exported from.
        path: the exported file (or an output folder).
        format: its format (`onnx`, `litert`, `litert-int8`, `openvino`,
            `saved_model`; the SavedModel is compared through the log of
            its probabilities).
        data: see `load_verify_data`.
        input_size: the export's fixed `(height, width)`; required for
            LiteRT files (images are resized to it).
        num_images: at most this many images.
        threads: runtime CPU threads.
        report_path: where to write the JSON report; default
            `verify_report.json` next to the export (in the model base
            folder for a SavedModel version).
        **tolerances: `max_relative_difference`, `min_argmax_agreement`,
            `max_mean_iou_drop` (see `compare_logits`).

    Returns:
        The report dict (also written as JSON); `passed` says whether it
        is within the tolerances.

    Example:

    >>> from keras_refinenet import tiny_refinenet
    >>> model = tiny_refinenet()
    >>> report = verify_export(model, "out/model.onnx",
    ...                        "onnx")  # doctest: +SKIP
    >>> report["passed"]  # doctest: +SKIP
    True
    """
    check_extra(format, runtime=True)
    path = pathlib.Path(path)
    if path.is_dir() and format != "saved_model":
        path = export_file(path, format)
    if format in FIXED_SIZE_FORMATS and input_size is None:
        raise ValueError(
            f"Verifying format {format!r} needs its fixed `input_size` "
            "(--input-size H W). Received: input_size=None"
        )
    images, masks = load_verify_data(data, input_size, num_images)
    reference = keras_logits(model, images)
    exported = run_in_runtime(format, path, images, threads)
    if format == "saved_model":
        reference = [_log_softmax(logits) for logits in reference]
    report = compare_logits(
        reference,
        exported,
        masks,
        quantized=format == LITERT_INT8,
        **tolerances,
    )
    report = {"format": format, "file": str(path), **report}
    if report_path is None:
        # Next to the file, or next to the SavedModel version folder.
        report_path = path.parent / REPORT_FILE
    pathlib.Path(report_path).write_text(json.dumps(report, indent=2) + "\n")
    report["report_path"] = str(report_path)
    return report


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
