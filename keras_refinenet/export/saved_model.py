"""SavedModel export for TensorFlow Serving.

The exported graph holds plain TensorFlow ops: loading it needs neither
`keras_refinenet` nor keras-cv. Two signatures:

- `serving_default`: `images` uint8 `[batch, height, width, 3]` of any size.
- `predict_image_bytes`: `image_bytes` string `[batch]` of encoded PNG or
  JPEG images that share one size.

- `predict_tta` (only when exported with tiling or test-time augmentation
  options): `images` as `serving_default`, predicted as
  `predict_segmentation` does with those options (tiles blended with the
  tent window, multi-scale and flip views averaged), inside the graph.

All return `class_ids` int32 `[batch, height, width]` (channel indices;
pixels won by a void channel, as in the authors' MatConvNet models, are
255 like `predict_segmentation`'s default), `probabilities` float32
`[batch, height, width, num_classes]` and `error` string `[batch]`.
Requests are untrusted: image sizes are read from the PNG/JPEG headers
before anything is decoded, and data that is not PNG/JPEG, images over
`max_pixels`, images under the network's minimum size, or mixed sizes give
a message in `error` (one per image) and empty results (`height` and
`width` 0) instead of running the model. Corrupt image data behind a valid
header fails the decode op, which TensorFlow Serving answers with an
INVALID_ARGUMENT status; the server keeps running.
"""

import os
import pathlib
import shutil
import tempfile

import tensorflow as tf

from keras_refinenet.backend_support import require_tensorflow_backend
from keras_refinenet.constants import (
    IMAGE_BYTES_SIGNATURE,
    IMAGES_SIGNATURE,
    RGB_CHANNELS,
    TTA_SIGNATURE,
)
from keras_refinenet.export.tta import (
    TiledPredictor,
    class_ids,
    input_size_probabilities,
)
from keras_refinenet.inference.predict import (
    DEFAULT_TILE_OVERLAP,
    MIN_IMAGE_SIZE,
)

IMAGES_INPUT = "images"
IMAGE_BYTES_INPUT = "image_bytes"
CLASS_IDS_OUTPUT = "class_ids"
PROBABILITIES_OUTPUT = "probabilities"
ERROR_OUTPUT = "error"
# 4096 x 4096: 4K UHD frames and Cityscapes' 1024 x 2048 fit comfortably.
DEFAULT_MAX_PIXELS = 4096 * 4096

PNG_SIGNATURE = (137, 80, 78, 71, 13, 10, 26, 10)
PNG_IHDR = tuple(b"IHDR")
PNG_IHDR_TYPE_OFFSET = 12
PNG_WIDTH_OFFSET = 16
PNG_HEIGHT_OFFSET = 20
PNG_HEADER_LENGTH = 24
JPEG_SOI = (0xFF, 0xD8)
JPEG_MARKER_PREFIX = 0xFF
JPEG_EOI = 0xD9
JPEG_SOS = 0xDA
JPEG_TEM = 0x01
JPEG_RST_FIRST, JPEG_RST_LAST = 0xD0, 0xD7
JPEG_SOF_FIRST, JPEG_SOF_LAST = 0xC0, 0xCF
# DHT, JPG and DAC share the SOF range but carry no frame size.
JPEG_NON_SOF_MARKERS = (0xC4, 0xC8, 0xCC)
JPEG_SOF_HEIGHT_OFFSET = 5
JPEG_SOF_WIDTH_OFFSET = 7
JPEG_MAX_SEGMENTS = 4096
HEADER_PADDING = 16
BYTE = 256

_SCANNING, _FOUND, _INVALID = 0, 1, 2
UNSUPPORTED_DATA_ERROR = "undecodable image data: not a PNG or JPEG image"
MIXED_SIZES_ERROR = "all images of one request must have the same size"


def _big_endian(raw, offset, length):
    value = tf.constant(0, tf.int64)
    for index in range(length):
        value = value * BYTE + raw[offset + index]
    return value


def _starts_with(raw, prefix, offset=0):
    expected = tf.constant(prefix, tf.int64)
    return tf.reduce_all(raw[offset : offset + len(prefix)] == expected)


def _png_size(raw, length):
    """`(found, height, width)` from the IHDR chunk of PNG bytes."""
    found = (
        (length >= PNG_HEADER_LENGTH)
        & _starts_with(raw, PNG_SIGNATURE)
        & _starts_with(raw, PNG_IHDR, PNG_IHDR_TYPE_OFFSET)
    )
    height = _big_endian(raw, PNG_HEIGHT_OFFSET, 4)
    width = _big_endian(raw, PNG_WIDTH_OFFSET, 4)
    return found, height, width


def _jpeg_size(raw, length):
    """`(found, height, width)` from the first SOF segment of JPEG bytes."""

    def scanning(position, height, width, status, step):
        return (status == _SCANNING) & (step < JPEG_MAX_SEGMENTS)

    def next_marker(position, height, width, status, step):
        in_bounds = position + JPEG_SOF_WIDTH_OFFSET + 2 <= length
        # `raw` is padded, so these reads stay in range even past the end.
        at = tf.minimum(position, length)
        prefix, marker = raw[at], raw[at + 1]
        segment_length = _big_endian(raw, at + 2, 2)
        is_sof = (
            (marker >= JPEG_SOF_FIRST)
            & (marker <= JPEG_SOF_LAST)
            & tf.reduce_all(
                marker != tf.constant(JPEG_NON_SOF_MARKERS, tf.int64)
            )
        )
        is_fill = marker == JPEG_MARKER_PREFIX
        is_standalone = (marker == JPEG_TEM) | (
            (marker >= JPEG_RST_FIRST) & (marker <= JPEG_RST_LAST)
        )
        has_segment = ~is_sof & ~is_fill & ~is_standalone
        invalid = (
            ~in_bounds
            | (prefix != JPEG_MARKER_PREFIX)
            | (marker == JPEG_EOI)
            | (marker == JPEG_SOS)
            | (marker == 0)
            | (has_segment & (segment_length < 2))
        )
        status = tf.where(
            invalid, _INVALID, tf.where(is_sof, _FOUND, _SCANNING)
        )
        height = tf.where(
            is_sof, _big_endian(raw, at + JPEG_SOF_HEIGHT_OFFSET, 2), height
        )
        width = tf.where(
            is_sof, _big_endian(raw, at + JPEG_SOF_WIDTH_OFFSET, 2), width
        )
        advance = tf.where(
            is_fill,
            tf.constant(1, tf.int64),
            tf.where(
                is_standalone, tf.constant(2, tf.int64), 2 + segment_length
            ),
        )
        return position + advance, height, width, status, step + 1

    zero = tf.constant(0, tf.int64)
    start = tf.constant(len(JPEG_SOI), tf.int64)
    _, height, width, status, _ = tf.while_loop(
        scanning,
        next_marker,
        (start, zero, zero, tf.constant(_SCANNING), tf.constant(0)),
    )
    found = _starts_with(raw, JPEG_SOI) & (status == _FOUND)
    return found, height, width


def _size_error(height, width, max_pixels):
    """Error message for an image size, `""` when the size is acceptable."""
    size = tf.strings.format("{}x{}", (height, width))
    too_large = height * width > max_pixels
    too_small = tf.minimum(height, width) < MIN_IMAGE_SIZE
    return tf.where(
        too_large,
        tf.strings.join(
            [
                "image of ",
                size,
                f" pixels exceeds the limit of {max_pixels} pixels",
            ]
        ),
        tf.where(
            too_small,
            tf.strings.join(
                [
                    "image of ",
                    size,
                    f" pixels is smaller than {MIN_IMAGE_SIZE}x"
                    f"{MIN_IMAGE_SIZE}",
                ]
            ),
            "",
        ),
    )


def _header_check(data, max_pixels):
    """`(height, width, error)` of one encoded image, without decoding it."""
    raw = tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int64)
    length = tf.size(raw, out_type=tf.int64)
    raw = tf.pad(raw, [[0, PNG_HEADER_LENGTH + HEADER_PADDING]])
    png_found, png_height, png_width = _png_size(raw, length)
    jpeg_found, jpeg_height, jpeg_width = _jpeg_size(raw, length)
    height = tf.where(png_found, png_height, jpeg_height)
    width = tf.where(png_found, png_width, jpeg_width)
    error = tf.where(
        png_found | jpeg_found,
        _size_error(height, width, max_pixels),
        UNSUPPORTED_DATA_ERROR,
    )
    return height, width, error


def _empty_results(batch, num_classes, errors):
    return {
        CLASS_IDS_OUTPUT: tf.zeros([batch, 0, 0], tf.int32),
        PROBABILITIES_OUTPUT: tf.zeros([batch, 0, 0, num_classes], tf.float32),
        ERROR_OUTPUT: errors,
    }


class _ServingFunctions:
    """The graph functions behind the signatures."""

    def __init__(self, model, max_pixels, tiled_predictor=None):
        self.model = model
        self.max_pixels = max_pixels
        self.num_classes = int(model.output.shape[-1])
        self.align_corners = getattr(model, "align_corners", True)
        self.void_channel = getattr(model, "void_channel", None)
        # Raw pixels in: the model's preprocessor is part of the export.
        self.preprocessor = getattr(model, "preprocessor", None)
        self.tiled_predictor = tiled_predictor

    def predict_images(self, images):
        """Runs the model on a uint8 batch; no checks."""
        probabilities = input_size_probabilities(
            self.model, self.preprocessor, images, self.align_corners
        )
        return self._results(images, probabilities)

    def _results(self, images, probabilities):
        return {
            CLASS_IDS_OUTPUT: class_ids(probabilities, self.void_channel),
            PROBABILITIES_OUTPUT: probabilities,
            ERROR_OUTPUT: tf.fill([tf.shape(images)[0]], ""),
        }

    def _checked(self, images, predict, extra_error=None):
        """`predict(images)`, or errors for bad sizes and empty batches."""
        shape = tf.shape(images, out_type=tf.int64)
        batch = shape[0]
        error = _size_error(shape[1], shape[2], self.max_pixels)
        if extra_error is not None:
            error = tf.where(
                error == "", extra_error(shape[1], shape[2]), error
            )
        return tf.cond(
            (error == "") & (batch > 0),
            lambda: predict(images),
            lambda: _empty_results(
                batch,
                self.num_classes,
                tf.fill([batch], tf.where(batch > 0, error, "")),
            ),
        )

    def serve_images(self, images):
        return self._checked(images, self.predict_images)

    def predict_tiled(self, images):
        """Tiled, test-time augmented prediction of a uint8 batch."""
        return self._results(images, self.tiled_predictor.probabilities(images))

    def serve_images_tiled(self, images):
        return self._checked(
            images, self.predict_tiled, self.tiled_predictor.scale_error
        )

    def serve_image_bytes(self, image_bytes):
        heights, widths, errors = tf.map_fn(
            lambda data: _header_check(data, self.max_pixels),
            image_bytes,
            fn_output_signature=(tf.int64, tf.int64, tf.string),
        )
        batch = tf.shape(image_bytes)[0]
        valid = tf.reduce_all(errors == "")
        mixed_sizes = valid & (
            tf.reduce_any(heights != heights[:1])
            | tf.reduce_any(widths != widths[:1])
        )
        errors = tf.where(mixed_sizes, MIXED_SIZES_ERROR, errors)
        ok = valid & ~mixed_sizes & (batch > 0)

        def decode_and_predict():
            images = tf.map_fn(
                lambda data: tf.io.decode_image(
                    data, channels=RGB_CHANNELS, expand_animations=False
                ),
                image_bytes,
                fn_output_signature=tf.TensorSpec(
                    [None, None, RGB_CHANNELS], tf.uint8
                ),
            )
            return self.predict_images(images)

        return tf.cond(
            ok,
            decode_and_predict,
            lambda: _empty_results(batch, self.num_classes, errors),
        )


def _next_version(model_base):
    versions = [
        int(path.name)
        for path in model_base.iterdir()
        if path.is_dir() and path.name.isdigit()
    ]
    return max(versions, default=0) + 1


def export_saved_model(
    model,
    model_base,
    version=None,
    max_pixels=DEFAULT_MAX_PIXELS,
    tile_size=None,
    tile_overlap=DEFAULT_TILE_OVERLAP,
    scales=None,
    flip=False,
):
    """Writes a TensorFlow Serving SavedModel to `model_base/version/`.

    The version folder is written under a temporary name and renamed when
    complete, so a watching TF Serving never loads a half-written model.
    With `tile_size`, `scales` or `flip`, a third signature,
    `predict_tta` (`images` uint8 in, the same outputs), computes
    `predict_segmentation(model, images, tile_size=..., tile_overlap=...,
    scales=..., flip=...)` inside the graph: one request, the accurate
    prediction. Its `error` also names scales that make an image smaller
    than the network's minimum size.

    Args:
        model: a segmentation model returning logits at the input size
            or a stride of it (e.g. `RefineNet`, mixed precision
            included). Its `preprocessor`, if any, is exported with it, so
            the SavedModel takes raw uint8 RGB pixels `(b, h, w, 3)`.
        model_base: the model base folder that TF Serving watches.
        version: positive int version; `None` takes the next free number.
        max_pixels: largest `height * width` a request may have.
        tile_size: `predict_tta`: largest tile the network sees, an int
            or `(h, w)`; `None` feeds whole (scaled) images.
        tile_overlap: `predict_tta`: fraction of a tile shared with its
            neighbours.
        scales: `predict_tta`: image scales whose probabilities are
            averaged; `None` is `(1.0,)`.
        flip: `predict_tta`: also average the mirrored views.

    Returns:
        The version folder as a `pathlib.Path`.

    Example:

    >>> import tempfile
    >>> from keras_refinenet import tiny_refinenet
    >>> model = tiny_refinenet(num_classes=3)
    >>> path = export_saved_model(model, tempfile.mkdtemp())  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    '1'
    """
    require_tensorflow_backend(
        "SavedModel export", f"model_base={model_base!r}"
    )
    import keras

    if not isinstance(max_pixels, int) or max_pixels < MIN_IMAGE_SIZE**2:
        raise ValueError(
            f"`max_pixels` must be an int of at least {MIN_IMAGE_SIZE**2}. "
            f"Received: max_pixels={max_pixels!r}"
        )
    model_base = pathlib.Path(model_base)
    model_base.mkdir(parents=True, exist_ok=True)
    if version is None:
        version = _next_version(model_base)
    if not isinstance(version, int) or version < 1:
        raise ValueError(
            f"`version` must be a positive int. Received: version={version!r}"
        )
    target = model_base / str(version)
    if target.exists():
        raise FileExistsError(
            f"Model version {version} already exists; pick another version "
            f"or remove it. Received: model_base={str(model_base)!r}, "
            f"version={version}"
        )
    tiled_predictor = None
    if tile_size is not None or scales is not None or flip:
        tiled_predictor = TiledPredictor(
            model,
            tile_size,
            tile_overlap,
            (1.0,) if scales is None else scales,
            flip,
        )
    functions = _ServingFunctions(model, max_pixels, tiled_predictor)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        IMAGES_SIGNATURE,
        functions.serve_images,
        input_signature=[
            tf.TensorSpec(
                [None, None, None, RGB_CHANNELS], tf.uint8, name=IMAGES_INPUT
            )
        ],
    )
    archive.add_endpoint(
        IMAGE_BYTES_SIGNATURE,
        functions.serve_image_bytes,
        input_signature=[
            tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)
        ],
    )
    if tiled_predictor is not None:
        archive.add_endpoint(
            TTA_SIGNATURE,
            functions.serve_images_tiled,
            input_signature=[
                tf.TensorSpec(
                    [None, None, None, RGB_CHANNELS],
                    tf.uint8,
                    name=IMAGES_INPUT,
                )
            ],
        )
    staging = pathlib.Path(
        tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_base)
    )
    try:
        archive.write_out(os.fspath(staging), verbose=False)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
