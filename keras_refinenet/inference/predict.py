"""Segmentation of real images: any size, tiling, test-time augmentation.

`predict_segmentation` turns RGB images of any size into class-id maps at
their original size. Large images are cut into overlapping tiles whose
softmax probabilities are blended with a tent-shaped window, so the network
never sees more than `batch_size` tiles at once. Multi-scale and
horizontal-flip test-time augmentation average the probabilities of every
view, resized back to the original image size.
"""

import math

import numpy as np

from keras_refinenet.constants import (
    AUTO_DECODER_CONV,
    GRAYSCALE_CHANNELS,
    IGNORE_LABEL,
    MAX_PIXEL_VALUE,
    RGB_CHANNELS,
    RGBA_CHANNELS,
    VOID_AS_LABEL,
    VOID_EXCLUDED,
    VOID_RULES,
)

MIN_IMAGE_SIZE = 32
DEFAULT_TILE_OVERLAP = 1.0 / 3.0
DEFAULT_BATCH_SIZE = 4
# The multi-scale inference of the authors' Cityscapes evaluation.
CITYSCAPES_TTA_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
# Image and probability rescaling uses half-pixel centres (like
# `tf.image.resize`), which keeps content aligned for any scale factor.
RESCALE_ALIGN_CORNERS = False


def _describe_range(array):
    return f"[{array.min()}, {array.max()}]"


def prepare_image(image, min_size=MIN_IMAGE_SIZE):
    """Checks one image and converts it to float32 RGB `(height, width, 3)`.

    Grayscale images (`(h, w)` or `(h, w, 1)`) are repeated to three
    channels. RGBA images are accepted only when fully opaque (alpha 255
    everywhere) and lose their alpha channel; images with transparency are
    refused, since the right background depends on the application
    (composite them first, e.g. with `PIL.Image.alpha_composite`).

    Args:
        image: uint8, integer or float array with values in [0, 255].
        min_size: smallest accepted height and width.

    Returns:
        `float32` array `(height, width, 3)`.

    Example:

    >>> import numpy as np
    >>> prepare_image(np.zeros((40, 50), np.uint8)).shape
    (40, 50, 3)
    """
    image = np.asarray(image)
    _check_pixel_dtype(image)
    if image.ndim == 2:
        image = image[..., np.newaxis]
    if image.ndim != 3:
        raise ValueError(
            "An image must be (height, width) or (height, width, channels); "
            "batches are (batch, height, width, channels) arrays or lists. "
            f"Received: image.shape={image.shape}"
        )
    return _checked_pixels(image, min_size)


def _check_pixel_dtype(image):
    if image.dtype == bool or not (
        np.issubdtype(image.dtype, np.integer)
        or np.issubdtype(image.dtype, np.floating)
    ):
        raise ValueError(
            "Images must hold integer or float pixel values. "
            f"Received: image.dtype={image.dtype}"
        )


def _checked_pixels(image, min_size):
    """`prepare_image` of `(..., h, w, c)` pixels: one image or a batch,
    checked and converted at once (float32 input is not copied)."""
    channels = image.shape[-1]
    if channels not in (GRAYSCALE_CHANNELS, RGB_CHANNELS, RGBA_CHANNELS):
        raise ValueError(
            "Images must have 1 (grayscale), 3 (RGB) or 4 (RGBA) channels "
            "in the last axis; a batch of grayscale images needs a "
            f"channel axis. Received: image.shape={image.shape}"
        )
    height, width = image.shape[-3:-1]
    if min(height, width) < min_size:
        raise ValueError(
            f"Images must be at least {min_size}x{min_size} pixels (the "
            "network's coarsest stride). Received: image of "
            f"height={height}, width={width}"
        )
    image = image.astype(np.float32, copy=False)
    # NaN and infinities reach the minimum or the maximum.
    low, high = image.min(), image.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(
            "Images must not contain NaN or infinite values. Received: "
            f"{int(np.sum(~np.isfinite(image)))} non-finite values"
        )
    if low < 0 or high > MAX_PIXEL_VALUE:
        raise ValueError(
            "Pixel values must be in [0, 255] (uint8 or float RGB). "
            f"Received: values in {_describe_range(image)}"
        )
    if channels == GRAYSCALE_CHANNELS:
        return np.repeat(image, RGB_CHANNELS, axis=-1)
    if channels == RGBA_CHANNELS:
        alpha = image[..., RGB_CHANNELS]
        if np.any(alpha != MAX_PIXEL_VALUE):
            raise ValueError(
                "RGBA images with transparency are refused; composite them "
                "onto a background first (fully opaque RGBA is accepted). "
                f"Received: alpha values in {_describe_range(alpha)}"
            )
        return np.ascontiguousarray(image[..., :RGB_CHANNELS])
    return image


def _split_input(images, min_size):
    """`(groups, structure)`: same-size float32 batches, and how to unsplit.

    `structure` is `"single"`, `"batch"` or `"list"`.
    """
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError(
                f"`images` must not be empty. Received: images={images!r}"
            )
        prepared = [prepare_image(image, min_size) for image in images]
        return [image[np.newaxis] for image in prepared], "list"
    array = np.asarray(images)
    if array.ndim == 4:
        if array.shape[0] == 0:
            raise ValueError(
                "`images` must not be an empty batch. "
                f"Received: images.shape={array.shape}"
            )
        _check_pixel_dtype(array)
        return [_checked_pixels(array, min_size)], "batch"
    return [prepare_image(array, min_size)[np.newaxis]], "single"


def tile_starts(length, tile, overlap):
    """Start offsets of tiles covering `[0, length)` with at least `overlap`.

    Args:
        length: image height or width.
        tile: tile extent along that axis (`<= length`).
        overlap: fraction of `tile` shared by neighbouring tiles, in [0, 1).

    Returns:
        Sorted list of starts; the first is 0, the last `length - tile`.

    Example:

    >>> tile_starts(100, 40, 0.25)
    [0, 30, 60]
    """
    if tile >= length:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    count = math.ceil((length - tile) / stride) + 1
    return [int(round(s)) for s in np.linspace(0, length - tile, count)]


def tile_window(height, width):
    """Blending weights of one tile: a positive tent, highest in the centre.

    Args:
        height: tile height.
        width: tile width.

    Returns:
        `float32` array `(height, width)` with values in (0, 1].

    Example:

    >>> tile_window(1, 4).tolist()
    [[0.5, 1.0, 1.0, 0.5]]
    """

    def tent(size):
        ramp = np.minimum(np.arange(1, size + 1), np.arange(size, 0, -1))
        return ramp / ramp.max()

    return np.outer(tent(height), tent(width)).astype(np.float32)


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def _resize(array, size, align_corners):
    from keras import ops

    from keras_refinenet.layers.resize import resize_images

    return ops.convert_to_numpy(
        resize_images(array, size, align_corners=align_corners)
    ).astype(np.float32)


def _tile_probabilities(model, tiles):
    """Softmax probabilities of a batch of tiles, at the tiles' size."""
    from keras import ops

    # Raw pixels in: apply the task's preprocessor (normalization).
    preprocessor = getattr(model, "preprocessor", None)
    inputs = tiles if preprocessor is None else preprocessor(tiles)
    logits = ops.convert_to_numpy(model(inputs, training=False))
    logits = logits.astype(np.float32)
    if logits.shape[1:3] != tiles.shape[1:3]:
        # Models built with `upsample_output=False` return stride-4 logits.
        logits = _resize(
            logits,
            tiles.shape[1:3],
            align_corners=getattr(model, "align_corners", True),
        )
    return _softmax(logits)


def _predict_one_scale(model, images, tile_size, tile_overlap, flip, batch):
    """Probabilities `(n, h, w, classes)` of same-size images, all tiles."""
    count, height, width, _ = images.shape
    tile_height = min(tile_size[0], height)
    tile_width = min(tile_size[1], width)
    tops = tile_starts(height, tile_height, tile_overlap)
    lefts = tile_starts(width, tile_width, tile_overlap)
    window = tile_window(tile_height, tile_width)
    weights = np.zeros((height, width), np.float32)
    for top in tops:
        for left in lefts:
            weights[top : top + tile_height, left : left + tile_width] += window
    flips = (False, True) if flip else (False,)
    views = [
        (index, top, left, flipped)
        for index in range(count)
        for top in tops
        for left in lefts
        for flipped in flips
    ]
    totals = None
    for start in range(0, len(views), batch):
        chunk = views[start : start + batch]
        tiles = np.stack(
            [
                images[
                    index,
                    top : top + tile_height,
                    left : left + tile_width,
                ][:, :: -1 if flipped else 1]
                for index, top, left, flipped in chunk
            ]
        )
        probabilities = _tile_probabilities(model, tiles)
        if totals is None:
            classes = probabilities.shape[-1]
            totals = np.zeros((count, height, width, classes), np.float32)
        for (index, top, left, flipped), tile_probs in zip(
            chunk, probabilities
        ):
            if flipped:
                tile_probs = tile_probs[:, ::-1]
            totals[
                index, top : top + tile_height, left : left + tile_width
            ] += tile_probs * window[..., np.newaxis]
    totals /= weights[np.newaxis, ..., np.newaxis] * len(flips)
    return totals


def _scaled_size(height, width, scale, min_size):
    size = (int(round(height * scale)), int(round(width * scale)))
    if min(size) < min_size:
        raise ValueError(
            f"At scale {scale} the {height}x{width} image becomes "
            f"{size[0]}x{size[1]}, smaller than the minimum of {min_size} "
            f"pixels; drop the scale or use larger images. Received: "
            f"scales containing {scale}"
        )
    return size


def _predict_group(model, images, scales, tile_size, tile_overlap, flip, batch):
    _, height, width, _ = images.shape
    summed = None
    for scale in scales:
        size = _scaled_size(height, width, scale, MIN_IMAGE_SIZE)
        scaled = images
        if size != (height, width):
            scaled = _resize(images, size, RESCALE_ALIGN_CORNERS)
        probabilities = _predict_one_scale(
            model, scaled, tile_size, tile_overlap, flip, batch
        )
        if size != (height, width):
            probabilities = _resize(
                probabilities, (height, width), RESCALE_ALIGN_CORNERS
            )
        summed = probabilities if summed is None else summed + probabilities
    return summed / len(scales)


def check_options(tile_size, tile_overlap, scales, batch_size):
    """Validates the options of `predict_segmentation`.

    Args:
        tile_size: `None`, an int or an `(h, w)` pair.
        tile_overlap: fraction in [0, 1).
        scales: non-empty sequence of positive scales.
        batch_size: positive int.

    Returns:
        `(tile_size, scales)` as pairs/tuples (`inf` for no tiling).

    Example:

    >>> check_options(64, 0.25, [1, 2], 1)
    ((64, 64), (1.0, 2.0))
    """
    if tile_size is None:
        tile_size = (math.inf, math.inf)
    elif isinstance(tile_size, int):
        tile_size = (tile_size, tile_size)
    tile_size = tuple(tile_size)
    if len(tile_size) != 2 or any(
        not (size == math.inf or isinstance(size, int)) or size < MIN_IMAGE_SIZE
        for size in tile_size
    ):
        raise ValueError(
            "`tile_size` must be None, an int or an (height, width) pair of "
            f"ints of at least {MIN_IMAGE_SIZE}. Received: "
            f"tile_size={tile_size!r}"
        )
    if not 0.0 <= tile_overlap < 1.0:
        raise ValueError(
            "`tile_overlap` must be a fraction in [0, 1). "
            f"Received: tile_overlap={tile_overlap!r}"
        )
    scales = tuple(float(scale) for scale in scales)
    if not scales or any(
        not math.isfinite(scale) or scale <= 0 for scale in scales
    ):
        raise ValueError(
            "`scales` must be a non-empty sequence of positive numbers. "
            f"Received: scales={scales!r}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            "`batch_size` must be a positive int. "
            f"Received: batch_size={batch_size!r}"
        )
    return tile_size, scales


def label_map(
    probabilities,
    void=VOID_AS_LABEL,
    void_channel=None,
    label_values=None,
    model=None,
):
    """The label map of class probabilities (or logits), void rule applied.

    Args:
        probabilities: `(..., num_channels)` scores.
        void: `"label"` or `"exclude"`, see `predict_segmentation`.
        void_channel: the void channel, or `None` (then `model`'s).
        label_values: label value per channel, or `None` for channel
            indices (void pixels then 255).
        model: a model with a `void_channel` attribute, or
            `None`.

    Returns:
        `int32` labels of shape `probabilities.shape[:-1]`.

    Example:

    >>> import numpy as np
    >>> scores = np.array([[0.1, 0.3, 0.6], [0.5, 0.2, 0.3]])
    >>> label_map(scores, void_channel=2).tolist()
    [255, 0]
    >>> label_map(scores, void="exclude", void_channel=2).tolist()
    [1, 0]
    """
    void_channel = _checked_void_channel(
        void, void_channel, model, probabilities.shape[-1]
    )
    scores = np.asarray(probabilities)
    if void_channel is not None and void == VOID_EXCLUDED:
        scores = scores.copy()
        scores[..., void_channel] = -np.inf
    _check_label_values(label_values, probabilities.shape[-1])
    return _channel_labels(
        np.argmax(scores, axis=-1), void_channel, label_values
    )


def _checked_void_channel(void, void_channel, model, num_channels):
    """`void_channel` (or `model`'s) after checking it and `void`."""
    if void not in VOID_RULES:
        raise ValueError(
            f"`void` must be one of {VOID_RULES}. Received: void={void!r}"
        )
    if void_channel is None:
        void_channel = getattr(model, "void_channel", None)
    if void_channel is not None and not 0 <= void_channel < num_channels:
        raise ValueError(
            f"`void_channel` must index one of the {num_channels} channels. "
            f"Received: void_channel={void_channel!r}"
        )
    return void_channel


def _check_label_values(label_values, num_channels):
    if label_values is not None and len(label_values) != num_channels:
        raise ValueError(
            f"`label_values` needs one value per channel ({num_channels})."
            f" Received: {len(label_values)} label values"
        )


def _channel_labels(channels, void_channel, label_values):
    """Labels of the winning `channels`: label values, or ids with void 255."""
    if label_values is not None:
        return np.asarray(label_values, np.int32)[channels]
    labels = channels.astype(np.int32)
    if void_channel is not None:
        labels[channels == void_channel] = IGNORE_LABEL
    return labels


def _largest_view(groups, scales, tile_size):
    """Pixels of the largest tile or scaled image the network sees."""
    largest = 0
    for group in groups:
        _, height, width, _ = group.shape
        for scale in scales:
            size = _scaled_size(height, width, scale, MIN_IMAGE_SIZE)
            largest = max(
                largest,
                min(size[0], tile_size[0]) * min(size[1], tile_size[1]),
            )
    return largest


def _single_view(forward, images, tile_size, scales, flip):
    """Whether each image is one network view (no tiles, scales, flips)."""
    _, height, width, _ = images.shape
    return (
        hasattr(forward, "channels")
        and scales == (1.0,)
        and not flip
        and height <= tile_size[0]
        and width <= tile_size[1]
    )


def _single_view_labels(forward, images, batch, void, void_channel, labels):
    """Labels of whole images, argmax taken in the compiled network."""
    excluded = void_channel if void == VOID_EXCLUDED else None
    channels = np.concatenate(
        [
            forward.channels(images[start : start + batch], excluded)
            for start in range(0, len(images), batch)
        ]
    )
    return _channel_labels(channels, void_channel, labels)


def predict_segmentation(
    model,
    images,
    *,
    tile_size=None,
    tile_overlap=DEFAULT_TILE_OVERLAP,
    scales=(1.0,),
    flip=False,
    return_probabilities=False,
    batch_size=DEFAULT_BATCH_SIZE,
    void=VOID_AS_LABEL,
    void_channel=None,
    map_labels=False,
    precision=None,
    fold_batchnorm=True,
    decoder_conv=AUTO_DECODER_CONV,
):
    """Class-id maps (and optionally probabilities) at the original size.

    Every image is predicted at each of `scales` (and mirrored if `flip`);
    images (after scaling) larger than `tile_size` are cut into tiles that
    overlap by `tile_overlap` and are blended with `tile_window`. The
    softmax probabilities of all views are resized back to the image size
    and averaged; the class ids are their argmax. The network sees at most
    `batch_size` tiles at a time; host memory holds a few float32
    `(height, width, num_classes)` probability maps per image.

    Args:
        model: a segmentation model mapping `(b, h, w, 3)` float RGB 0..255
            to logits at the input size or a stride of it (e.g.
            `RefineNet`).
        images: one image (`(h, w, 3)`, or grayscale `(h, w)`/`(h, w, 1)`,
            or opaque RGBA `(h, w, 4)`; see `prepare_image`), a batch
            `(b, h, w, c)`, or a list of images of different sizes. uint8 or
            float values in [0, 255]; at least `MIN_IMAGE_SIZE` pixels high
            and wide.
        tile_size: largest tile the network sees, an int or `(h, w)`;
            `None` feeds whole images.
        tile_overlap: fraction of a tile shared with its neighbours.
        scales: image scales to average, e.g. `CITYSCAPES_TTA_SCALES`.
        flip: also average the horizontally mirrored views.
        return_probabilities: also return the averaged probabilities.
        batch_size: tiles per network call.
        void: with a `void_channel` (the authors' MatConvNet models have
            one, e.g. channel 19 of `refinenet101_cityscapes`):
            `"label"` (the authors' rule) takes the argmax over every
            channel and gives pixels won by void 255 (with `map_labels`,
            the dataset's void label); `"exclude"` takes the argmax over
            the real classes only.
        void_channel: index of the void output channel, or `None` (then
            read from `model.void_channel` if the model has one).
        map_labels: return the dataset's label values
            (`model.label_values`, as the authors' saved masks, e.g. NYUDv2
            1..40 and void 255) instead of channel indices (the default:
            indices into the preset's class names and palette, void pixels
            255).
        precision: `None` (the model's own dtype policy), `"float32"` or
            `"bfloat16"` (mixed bfloat16: bfloat16 compute, float32
            logits; only when asked, see
            `keras_refinenet.inference.fast_path`).
        fold_batchnorm: run a copy of the network with BatchNorm folded
            into the preceding convolutions (float32 round-off only).
        decoder_conv: `"auto"` (the fastest exact one: the Winograd
            decoder for float32 views of at least 256x512 pixels on a CPU,
            see `keras_refinenet.inference.fast_path.fastest_decoder_conv`),
            `"direct"` or `"winograd"`: how a copy of the network computes
            its 3x3 stride-1 convolutions (`"winograd"`: all of them,
            image encoder included, kernels transformed once; float32
            round-off only).

    Returns:
        `int32` class ids `(h, w)` for one image, `(b, h, w)` for a batch,
        or a list of `(h, w)` arrays for a list. With
        `return_probabilities`, a tuple `(class_ids, probabilities)`, the
        probabilities being `float32` with a trailing class axis.

    Example:

    >>> import numpy as np
    >>> from keras_refinenet import tiny_refinenet
    >>> model = tiny_refinenet(num_classes=3)
    >>> image = np.zeros((70, 90, 3), np.uint8)
    >>> predict_segmentation(model, image, tile_size=48, flip=True).shape
    (70, 90)
    """
    tile_size, scales = check_options(
        tile_size, tile_overlap, scales, batch_size
    )
    from keras_refinenet.inference.fast_path import (
        inference_forward,
        resolve_decoder_conv,
    )

    groups, structure = _split_input(images, MIN_IMAGE_SIZE)
    decoder_conv = resolve_decoder_conv(
        model, decoder_conv, precision, _largest_view(groups, scales, tile_size)
    )
    forward = inference_forward(model, precision, fold_batchnorm, decoder_conv)
    labels = model.label_values if map_labels else None
    if not return_probabilities and all(
        _single_view(forward, group, tile_size, scales, flip)
        for group in groups
    ):
        void_channel = _checked_void_channel(
            void, void_channel, model, forward.num_channels
        )
        _check_label_values(labels, forward.num_channels)
        class_ids = [
            _single_view_labels(
                forward, group, batch_size, void, void_channel, labels
            )
            for group in groups
        ]
        return _unsplit(class_ids, structure)
    probabilities = [
        _predict_group(
            forward, group, scales, tile_size, tile_overlap, flip, batch_size
        )
        for group in groups
    ]
    class_ids = [
        label_map(p, void, void_channel, labels, model) for p in probabilities
    ]
    if return_probabilities:
        return _unsplit(class_ids, structure), _unsplit(
            probabilities, structure
        )
    return _unsplit(class_ids, structure)


def _unsplit(arrays, structure):
    """The per-group arrays back in the structure of the input."""
    if structure == "single":
        return arrays[0][0]
    if structure == "batch":
        return arrays[0]
    return [array[0] for array in arrays]
