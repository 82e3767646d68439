"""A deterministic synthetic segmentation dataset of coloured shapes.

Circles, rectangles and triangles in noisy, saturated colours over greyish
textured backgrounds: easy enough for a small RefineNet to learn in minutes
on a CPU, hard enough that shape boundaries matter.
"""

import numpy as np

from keras_refinenet.constants import MAX_PIXEL_VALUE, RGB_CHANNELS

SYNTHETIC_CLASS_NAMES = ("background", "circle", "rectangle", "triangle")
SYNTHETIC_NUM_CLASSES = len(SYNTHETIC_CLASS_NAMES)
SYNTHETIC_PALETTE = ((0, 0, 0), (220, 50, 50), (50, 190, 50), (60, 90, 220))
BACKGROUND, CIRCLE, RECTANGLE, TRIANGLE = range(SYNTHETIC_NUM_CLASSES)
DEFAULT_IMAGE_SIZE = 64
DEFAULT_MAX_SHAPES = 3
COLOR_JITTER = 25
PIXEL_NOISE = 12.0
MIN_SHAPE_FRACTION = 0.12
MAX_SHAPE_FRACTION = 0.3
TRIANGLE_RADIUS_FACTOR = 1.3


def _image_shape(image_size):
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if len(image_size) != 2 or min(image_size) < 8:
        raise ValueError(
            "`image_size` must be an int or (height, width), at least 8. "
            f"Received: image_size={image_size!r}"
        )
    return tuple(int(dim) for dim in image_size)


def _textured_background(rng, height, width):
    rows = np.linspace(0.0, 1.0, height)[:, None]
    cols = np.linspace(0.0, 1.0, width)[None, :]
    level = rng.uniform(70, 170)
    tilt_rows, tilt_cols = rng.uniform(-40, 40, size=2)
    frequency = rng.uniform(2, 6)
    waves = 12.0 * np.sin(2 * np.pi * frequency * (rows + cols * 0.7))
    grey = level + tilt_rows * rows + tilt_cols * cols + waves
    tint = rng.uniform(-10, 10, size=RGB_CHANNELS)
    return grey[..., None] + tint


def _shape_mask(rng, shape_class, height, width):
    size = min(height, width)
    radius = rng.uniform(MIN_SHAPE_FRACTION, MAX_SHAPE_FRACTION) * size
    center_row = rng.uniform(radius, height - radius)
    center_col = rng.uniform(radius, width - radius)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    rows -= center_row
    cols -= center_col
    if shape_class == CIRCLE:
        return rows**2 + cols**2 <= radius**2
    if shape_class == RECTANGLE:
        half_height = radius * rng.uniform(0.6, 1.0)
        half_width = radius * rng.uniform(0.6, 1.0)
        return (np.abs(rows) <= half_height) & (np.abs(cols) <= half_width)
    angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2, 4]) * np.pi / 3
    vertices = np.stack([np.sin(angles), np.cos(angles)], axis=1)
    vertices *= radius * TRIANGLE_RADIUS_FACTOR
    inside = np.ones((height, width), dtype=bool)
    for start, end in zip(vertices, np.roll(vertices, -1, axis=0)):
        edge = end - start
        cross = edge[0] * (cols - start[1]) - edge[1] * (rows - start[0])
        inside &= cross <= 0
    return inside


def generate_synthetic_example(
    index,
    image_size=DEFAULT_IMAGE_SIZE,
    seed=0,
    max_shapes=DEFAULT_MAX_SHAPES,
):
    """One synthetic `(image, mask)` pair, fixed by `(seed, index)`.

    Args:
        index: example index.
        image_size: int or `(height, width)`.
        seed: dataset seed.
        max_shapes: at most this many shapes (at least one) per image.

    Returns:
        `(image, mask)`: `uint8 (H, W, 3)` and `uint8 (H, W)` class ids.

    Example:

    >>> image, mask = generate_synthetic_example(0, image_size=32)
    >>> image.shape, mask.shape, int(mask.max()) < 4
    ((32, 32, 3), (32, 32), True)
    """
    height, width = _image_shape(image_size)
    rng = np.random.default_rng([seed, index])
    image = _textured_background(rng, height, width)
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(rng.integers(1, max_shapes + 1)):
        shape_class = int(rng.integers(CIRCLE, SYNTHETIC_NUM_CLASSES))
        region = _shape_mask(rng, shape_class, height, width)
        color = np.array(SYNTHETIC_PALETTE[shape_class], dtype=np.float64)
        color += rng.uniform(-COLOR_JITTER, COLOR_JITTER, size=RGB_CHANNELS)
        image[region] = color
        mask[region] = shape_class
    image += rng.normal(0.0, PIXEL_NOISE, size=image.shape)
    image = np.clip(np.round(image), 0, MAX_PIXEL_VALUE)
    return image.astype(np.uint8), mask


def make_synthetic_arrays(
    num_images,
    image_size=DEFAULT_IMAGE_SIZE,
    seed=0,
    max_shapes=DEFAULT_MAX_SHAPES,
):
    """`num_images` synthetic examples stacked into numpy arrays.

    Args:
        num_images: number of examples.
        image_size: int or `(height, width)`.
        seed: dataset seed; example `i` is the same for any `num_images`.
        max_shapes: at most this many shapes per image.

    Returns:
        `(images, masks)`: `uint8 (N, H, W, 3)` and `uint8 (N, H, W)`.

    Example:

    >>> images, masks = make_synthetic_arrays(2, image_size=(16, 24))
    >>> images.shape, masks.shape
    ((2, 16, 24, 3), (2, 16, 24))
    """
    if num_images < 1:
        raise ValueError(
            "`num_images` must be a positive integer. "
            f"Received: num_images={num_images}"
        )
    examples = [
        generate_synthetic_example(index, image_size, seed, max_shapes)
        for index in range(num_images)
    ]
    images, masks = zip(*examples)
    return np.stack(images), np.stack(masks)


def load_synthetic(
    num_images,
    image_size=DEFAULT_IMAGE_SIZE,
    seed=0,
    max_shapes=DEFAULT_MAX_SHAPES,
):
    """The synthetic dataset as a `tf.data.Dataset` of `(image, mask)`.

    Use different seeds for training and held-out data.

    Args:
        num_images: number of examples.
        image_size: int or `(height, width)`.
        seed: dataset seed.
        max_shapes: at most this many shapes per image.

    Returns:
        A `tf.data.Dataset` of `uint8 (H, W, 3)` images and `uint8 (H, W)`
        masks.

    Example:

    >>> dataset = load_synthetic(4, image_size=32, seed=1)
    >>> image, mask = next(iter(dataset))
    >>> image.shape.as_list(), mask.dtype.name
    ([32, 32, 3], 'uint8')
    """
    import tensorflow as tf

    images, masks = make_synthetic_arrays(
        num_images, image_size, seed, max_shapes
    )
    return tf.data.Dataset.from_tensor_slices((images, masks))
