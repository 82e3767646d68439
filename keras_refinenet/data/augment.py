"""Label-preserving augmentations for `(image, mask)` pairs in `tf.data`.

Images are float32 in 0..255 of shape `(H, W, 3)`; masks are int32 of shape
`(H, W)` with 255 for ignore. Every random op is stateless and takes a
`seed` of shape `(2,)`, so a pipeline is reproducible given its seed.
"""

from keras_refinenet.constants import (
    IGNORE_LABEL,
    MAX_PIXEL_VALUE,
    RGB_CHANNELS,
)

IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
DEFAULT_SCALE_RANGE = (0.5, 2.0)
DEFAULT_BRIGHTNESS = 0.2
DEFAULT_CONTRAST = 0.2
DEFAULT_SATURATION = 0.2


def split_seed(seed, count):
    """`count` independent `(2,)` seeds derived from one `(2,)` seed."""
    import tensorflow as tf

    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def resize_pair(image, mask, size):
    """Resizes the image bilinearly and the mask with nearest neighbour.

    Args:
        image: float `(H, W, 3)` tensor.
        mask: integer `(H, W)` tensor.
        size: `(height, width)` target size.

    Returns:
        The resized `(image, mask)`.

    Example:

    >>> import tensorflow as tf
    >>> image, mask = resize_pair(
    ...     tf.zeros((4, 4, 3)), tf.zeros((4, 4), tf.int32), (8, 6)
    ... )
    >>> image.shape.as_list(), mask.shape.as_list()
    ([8, 6, 3], [8, 6])
    """
    import tensorflow as tf

    image = tf.image.resize(image, size, method="bilinear")
    mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
    return image, mask


def random_scale(image, mask, seed, scale_range=DEFAULT_SCALE_RANGE):
    """Rescales the pair by one random factor drawn from `scale_range`.

    Args:
        image: float `(H, W, 3)` tensor.
        mask: integer `(H, W)` tensor.
        seed: `(2,)` integer seed.
        scale_range: `(min_scale, max_scale)`.

    Returns:
        The rescaled `(image, mask)`.

    Example:

    >>> import tensorflow as tf
    >>> image, mask = random_scale(
    ...     tf.zeros((10, 10, 3)), tf.zeros((10, 10), tf.int32),
    ...     seed=(1, 2), scale_range=(2.0, 2.0),
    ... )
    >>> image.shape.as_list()
    [20, 20, 3]
    """
    import tensorflow as tf

    min_scale, max_scale = scale_range
    scale = tf.random.stateless_uniform(
        (), seed, minval=min_scale, maxval=max_scale
    )
    size = tf.cast(tf.shape(mask)[:2], tf.float32) * scale
    size = tf.maximum(tf.cast(tf.round(size), tf.int32), 1)
    return resize_pair(image, mask, size)


def pad_to_size(
    image, mask, size, image_pad_value=0.0, ignore_label=IGNORE_LABEL
):
    """Pads bottom/right so the pair is at least `size`; masks get 255.

    Args:
        image: float `(H, W, 3)` tensor.
        mask: integer `(H, W)` tensor.
        size: `(height, width)` minimum size.
        image_pad_value: a scalar or a per-channel triple such as
            `IMAGENET_MEAN_RGB`.
        ignore_label: mask padding value.

    Returns:
        The padded `(image, mask)`.

    Example:

    >>> import tensorflow as tf
    >>> image, mask = pad_to_size(
    ...     tf.zeros((2, 3, 3)), tf.zeros((2, 3), tf.int32), (4, 3)
    ... )
    >>> mask.numpy().tolist()
    [[0, 0, 0], [0, 0, 0], [255, 255, 255], [255, 255, 255]]
    """
    import tensorflow as tf

    shape = tf.shape(mask)
    pad_height = tf.maximum(size[0] - shape[0], 0)
    pad_width = tf.maximum(size[1] - shape[1], 0)
    paddings = [[0, pad_height], [0, pad_width]]
    pad_value = tf.constant(image_pad_value, tf.float32)
    image = (
        tf.pad(image - pad_value, paddings + [[0, 0]], constant_values=0.0)
        + pad_value
    )
    mask = tf.pad(mask, paddings, constant_values=ignore_label)
    return image, mask


def random_crop(image, mask, size, seed):
    """Crops the same random `size` window from image and mask.

    The pair must be at least `size` (see `pad_to_size`).

    Args:
        image: float `(H, W, 3)` tensor.
        mask: integer `(H, W)` tensor.
        size: `(height, width)` crop size (Python ints).
        seed: `(2,)` integer seed.

    Returns:
        The cropped `(image, mask)` with static shapes.

    Example:

    >>> import tensorflow as tf
    >>> image, mask = random_crop(
    ...     tf.zeros((5, 5, 3)), tf.zeros((5, 5), tf.int32), (3, 2), (0, 1)
    ... )
    >>> mask.shape.as_list()
    [3, 2]
    """
    import tensorflow as tf

    height, width = size
    shape = tf.shape(mask)
    row_seed, col_seed = split_seed(seed, 2)
    top = tf.random.stateless_uniform(
        (), row_seed, maxval=shape[0] - height + 1, dtype=tf.int32
    )
    left = tf.random.stateless_uniform(
        (), col_seed, maxval=shape[1] - width + 1, dtype=tf.int32
    )
    image = image[top : top + height, left : left + width]
    mask = mask[top : top + height, left : left + width]
    image = tf.ensure_shape(image, (height, width, RGB_CHANNELS))
    return image, tf.ensure_shape(mask, (height, width))


def random_flip(image, mask, seed):
    """Flips image and mask left-right together with probability 0.5.

    Args:
        image: float `(H, W, 3)` tensor.
        mask: integer `(H, W)` tensor.
        seed: `(2,)` integer seed.

    Returns:
        The possibly flipped `(image, mask)`.

    Example:

    >>> import tensorflow as tf
    >>> mask = tf.constant([[1, 2]])
    >>> _, flipped = random_flip(tf.zeros((1, 2, 3)), mask, (0, 0))
    >>> sorted(flipped.numpy()[0].tolist())
    [1, 2]
    """
    import tensorflow as tf

    flip = tf.random.stateless_uniform((), seed) < 0.5
    image = tf.cond(flip, lambda: image[:, ::-1], lambda: image)
    mask = tf.cond(flip, lambda: mask[:, ::-1], lambda: mask)
    return image, mask


def photometric_jitter(
    image,
    seed,
    brightness=DEFAULT_BRIGHTNESS,
    contrast=DEFAULT_CONTRAST,
    saturation=DEFAULT_SATURATION,
):
    """Random brightness, contrast and saturation of a 0..255 image.

    Args:
        image: float `(H, W, 3)` tensor in 0..255.
        seed: `(2,)` integer seed.
        brightness: maximum brightness shift as a fraction of 255.
        contrast: contrast factor drawn from `[1 - contrast, 1 + contrast]`.
        saturation: saturation factor drawn from
            `[1 - saturation, 1 + saturation]`.

    Returns:
        The jittered image, clipped to 0..255.

    Example:

    >>> import tensorflow as tf
    >>> image = photometric_jitter(tf.fill((2, 2, 3), 300.0), (0, 0))
    >>> float(tf.reduce_max(image)) <= 255.0
    True
    """
    import tensorflow as tf

    brightness_seed, contrast_seed, saturation_seed = split_seed(seed, 3)
    image = image / MAX_PIXEL_VALUE
    if brightness:
        image = tf.image.stateless_random_brightness(
            image, brightness, brightness_seed
        )
    if contrast:
        image = tf.image.stateless_random_contrast(
            image, 1.0 - contrast, 1.0 + contrast, contrast_seed
        )
    if saturation:
        image = tf.image.stateless_random_saturation(
            tf.clip_by_value(image, 0.0, 1.0),
            1.0 - saturation,
            1.0 + saturation,
            saturation_seed,
        )
    return tf.clip_by_value(image, 0.0, 1.0) * MAX_PIXEL_VALUE
