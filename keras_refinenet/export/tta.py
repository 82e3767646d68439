"""Tiled inference and test-time augmentation as TensorFlow graph ops.

`TiledPredictor` computes, inside one TensorFlow graph, what
`predict_segmentation` computes with numpy: the image is resized to each
scale (half-pixel bilinear), cut into overlapping tiles (the same grid,
`tile_starts`), each tile (and its mirror image with `flip`) goes through
the network, its softmax probabilities are blended with the tent window
(`tile_window`), resized back to the image size and averaged over views.
Sizes are runtime values, so one exported graph serves any image size.
"""

import math

import tensorflow as tf

from keras_refinenet.constants import IGNORE_LABEL
from keras_refinenet.inference.predict import (
    DEFAULT_TILE_OVERLAP,
    MIN_IMAGE_SIZE,
    RESCALE_ALIGN_CORNERS,
    check_options,
)
from keras_refinenet.layers.resize import resize_images

WIDTH_AXIS = 2
# `status` of graphs without string outputs (ONNX, OpenVINO).
STATUS_OK = 0
STATUS_TOO_LARGE = 1
STATUS_TOO_SMALL = 2


def graph_tile_starts(length, tile, overlap):
    """`predict.tile_starts` on runtime sizes: int32 `[count]` offsets.

    Args:
        length: scalar int32 image height or width.
        tile: scalar int32 tile extent, at most `length`.
        overlap: Python float in [0, 1).

    Returns:
        The tile starts, first 0 and last `length - tile`.

    Example:

    >>> graph_tile_starts(100, 40, 0.25).numpy().tolist()
    [0, 30, 60]
    """
    # float64 and round-half-to-even, as numpy's `linspace` and `round`.
    length = tf.cast(length, tf.float64)
    tile = tf.cast(tile, tf.float64)
    stride = tf.maximum(
        tf.floor(tile * tf.constant(1.0 - overlap, tf.float64)), 1.0
    )
    span = length - tile
    count = tf.cast(tf.math.ceil(span / stride), tf.int32) + 1
    steps = tf.cast(tf.maximum(count - 1, 1), tf.float64)
    index = tf.range(count)
    positions = tf.cast(index, tf.float64) * (span / steps)
    positions = tf.where(index == count - 1, span, positions)
    return tf.cast(tf.round(positions), tf.int32)


def graph_tile_window(height, width):
    """`predict.tile_window` on runtime sizes.

    Args:
        height: scalar int tile height.
        width: scalar int tile width.

    Returns:
        float32 `[height, width]` tent weights in (0, 1].

    Example:

    >>> graph_tile_window(1, 4).numpy().tolist()
    [[0.5, 1.0, 1.0, 0.5]]
    """

    def tent(size):
        steps = tf.range(1, size + 1)
        ramp = tf.cast(tf.minimum(steps, size + 1 - steps), tf.float64)
        return ramp / tf.reduce_max(ramp)

    window = tent(height)[:, None] * tent(width)[None, :]
    return tf.cast(window, tf.float32)


def scaled_size(height, width, scale):
    """The size `predict_segmentation` gives an image at `scale`.

    Args:
        height: scalar int image height.
        width: scalar int image width.
        scale: Python float.

    Returns:
        `(height, width)` int32 scalars, `round(size * scale)` in float64
        rounded half to even (Python's `round`).

    Example:

    >>> [int(v) for v in scaled_size(97, 133, 0.75)]
    [73, 100]
    """

    def rounded(length):
        scaled = tf.cast(length, tf.float64) * tf.constant(scale, tf.float64)
        return tf.cast(tf.round(scaled), tf.int32)

    return rounded(height), rounded(width)


def input_size_probabilities(model, preprocessor, images, align_corners):
    """Softmax of `model` on raw `images`, resized back to their size.

    Args:
        model: the Keras model (logits at any resolution).
        preprocessor: applied to the float pixels first, or `None`.
        images: a `(batch, height, width, 3)` tensor of raw pixels.
        align_corners: corner alignment of the bilinear resize back.

    Returns:
        float32 probabilities `(batch, height, width, classes)`.
    """
    pixels = tf.cast(images, tf.float32)
    if preprocessor is not None:
        pixels = preprocessor(pixels)
    logits = tf.cast(model(pixels, training=False), tf.float32)
    if model.output.shape[1] is None:
        size = tf.shape(images)[1:3]
        logits = tf.cond(
            tf.reduce_all(tf.shape(logits)[1:3] == size),
            lambda: logits,
            lambda: resize_images(
                logits, (size[0], size[1]), align_corners=align_corners
            ),
        )
    return tf.nn.softmax(logits, axis=-1)


class TiledPredictor:
    """`predict_segmentation`'s tiling and TTA as a TensorFlow function.

    Args:
        model: a segmentation model returning logits at the input size
            or a stride of it (e.g. `RefineNet`); its `preprocessor`, if
            any, runs on each tile as in `predict_segmentation`.
        tile_size: largest tile, an int or `(h, w)`; `None` for whole
            images.
        tile_overlap: fraction of a tile shared with its neighbours.
        scales: image scales whose probabilities are averaged.
        flip: also average the horizontally mirrored views.

    Example:

    >>> import numpy as np
    >>> from keras_refinenet import tiny_refinenet
    >>> predictor = TiledPredictor(tiny_refinenet(num_classes=3), 48,
    ...                            scales=(1.0, 1.25), flip=True)
    >>> images = tf.zeros((1, 70, 90, 3), tf.uint8)
    >>> tuple(predictor.probabilities(images).shape)
    (1, 70, 90, 3)
    """

    def __init__(
        self,
        model,
        tile_size=None,
        tile_overlap=DEFAULT_TILE_OVERLAP,
        scales=(1.0,),
        flip=False,
    ):
        self.model = model
        self.tile_size, self.scales = check_options(
            tile_size, tile_overlap, scales, 1
        )
        self.tile_overlap = float(tile_overlap)
        self.flip = bool(flip)
        self.num_classes = int(model.output.shape[-1])
        self.align_corners = getattr(model, "align_corners", True)
        self.preprocessor = getattr(model, "preprocessor", None)
        self.void_channel = getattr(model, "void_channel", None)

    def _tile_probabilities(self, tiles):
        return input_size_probabilities(
            self.model, self.preprocessor, tiles, self.align_corners
        )

    def _tile_extent(self, length, axis):
        tile = self.tile_size[axis]
        if tile == math.inf:
            return length
        return tf.minimum(tf.constant(tile, tf.int32), length)

    def _one_scale(self, images):
        """Blended probabilities of float32 images at their own size."""
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        tile_height = self._tile_extent(height, 0)
        tile_width = self._tile_extent(width, 1)
        tops = graph_tile_starts(height, tile_height, self.tile_overlap)
        lefts = graph_tile_starts(width, tile_width, self.tile_overlap)
        window = graph_tile_window(tile_height, tile_width)
        num_lefts = tf.size(lefts)
        num_tiles = tf.size(tops) * num_lefts
        views = 2 if self.flip else 1
        classes = self.num_classes

        def add_tile(index, totals, weights):
            top = tops[index // num_lefts]
            left = lefts[index % num_lefts]
            tile = images[:, top : top + tile_height, left : left + tile_width]
            if self.flip:
                tile = tf.concat([tile, tf.reverse(tile, [WIDTH_AXIS])], 0)
            probabilities = self._tile_probabilities(tile)
            weighted = probabilities * window[None, :, :, None]
            if self.flip:
                weighted = weighted[:batch] + tf.reverse(
                    weighted[batch:], [WIDTH_AXIS]
                )
            padding = [
                [top, height - top - tile_height],
                [left, width - left - tile_width],
            ]
            totals += tf.pad(weighted, [[0, 0], *padding, [0, 0]])
            weights += tf.pad(window, padding)
            totals = tf.ensure_shape(totals, [None, None, None, classes])
            return index + 1, totals, weights

        _, totals, weights = tf.while_loop(
            lambda index, totals, weights: index < num_tiles,
            add_tile,
            (
                tf.constant(0),
                tf.zeros([batch, height, width, self.num_classes]),
                tf.zeros([height, width]),
            ),
            shape_invariants=(
                tf.TensorShape([]),
                tf.TensorShape([None, None, None, self.num_classes]),
                tf.TensorShape([None, None]),
            ),
        )
        return totals / (weights[None, :, :, None] * views)

    def scale_error(self, height, width):
        """`""`, or why a scale makes an image too small (string scalar)."""
        error = tf.constant("")
        for scale in self.scales:
            scaled_height, scaled_width = scaled_size(height, width, scale)
            message = tf.strings.join(
                [
                    f"at scale {scale} the ",
                    tf.strings.format("{}x{}", (height, width)),
                    " image becomes ",
                    tf.strings.format("{}x{}", (scaled_height, scaled_width)),
                    f", smaller than the minimum of {MIN_IMAGE_SIZE} pixels",
                ]
            )
            too_small = tf.minimum(scaled_height, scaled_width) < MIN_IMAGE_SIZE
            error = tf.where((error == "") & too_small, message, error)
        return error

    def status(self, height, width, max_pixels):
        """int32 `STATUS_OK`, `STATUS_TOO_LARGE` or `STATUS_TOO_SMALL`.

        Args:
            height: scalar int image height.
            width: scalar int image width.
            max_pixels: largest `height * width`, or `None` for no limit.
        """
        height = tf.cast(height, tf.int32)
        width = tf.cast(width, tf.int32)
        smallest = tf.minimum(height, width)
        for scale in self.scales:
            smallest = tf.minimum(
                smallest, tf.minimum(*scaled_size(height, width, scale))
            )
        status = tf.where(
            smallest < MIN_IMAGE_SIZE, STATUS_TOO_SMALL, STATUS_OK
        )
        if max_pixels is not None:
            pixels = tf.cast(height, tf.int64) * tf.cast(width, tf.int64)
            status = tf.where(pixels > max_pixels, STATUS_TOO_LARGE, status)
        return status

    def checked_outputs(self, images, max_pixels):
        """Probabilities, class ids and `status`; empty unless status 0."""
        shape = tf.shape(images)
        status = self.status(shape[1], shape[2], max_pixels)

        def predict():
            probabilities = self.probabilities(images)
            return probabilities, self.class_ids(probabilities)

        def empty():
            return (
                tf.zeros([shape[0], 0, 0, self.num_classes]),
                tf.zeros([shape[0], 0, 0], tf.int32),
            )

        probabilities, ids = tf.cond(status == STATUS_OK, predict, empty)
        from keras_refinenet.export.formats import (
            CLASS_IDS_OUTPUT,
            PROBABILITIES_OUTPUT,
            STATUS_OUTPUT,
        )

        return {
            PROBABILITIES_OUTPUT: probabilities,
            CLASS_IDS_OUTPUT: ids,
            STATUS_OUTPUT: status,
        }

    def probabilities(self, images):
        """Averaged probabilities `[b, h, w, classes]` of raw RGB pixels."""
        pixels = tf.cast(images, tf.float32)
        shape = tf.shape(pixels)
        height, width = shape[1], shape[2]
        summed = None
        for scale in self.scales:
            if scale == 1.0:
                probabilities = self._one_scale(pixels)
            else:
                scaled = resize_images(
                    pixels,
                    scaled_size(height, width, scale),
                    align_corners=RESCALE_ALIGN_CORNERS,
                )
                probabilities = resize_images(
                    self._one_scale(scaled),
                    (height, width),
                    align_corners=RESCALE_ALIGN_CORNERS,
                )
            summed = probabilities if summed is None else summed + probabilities
        return summed / len(self.scales)

    def class_ids(self, probabilities):
        """Argmax channels; pixels won by the void channel get 255."""
        return class_ids(probabilities, self.void_channel)


def class_ids(probabilities, void_channel=None):
    """`predict_segmentation`'s default label map (void rule `"label"`).

    Args:
        probabilities: float `[..., channels]`.
        void_channel: the void channel index or `None`.

    Returns:
        int32 channel indices, `IGNORE_LABEL` where void wins.

    Example:

    >>> class_ids(tf.constant([[0.1, 0.3, 0.6], [0.5, 0.2, 0.3]]), 2).numpy()
    array([255,   0], dtype=int32)
    """
    ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    if void_channel is None:
        return ids
    return tf.where(ids == void_channel, IGNORE_LABEL, ids)
