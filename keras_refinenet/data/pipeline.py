"""`tf.data` pipelines turning `(image, mask)` datasets into model batches."""

from keras_refinenet.constants import IGNORE_LABEL
from keras_refinenet.data import augment

DEFAULT_SHUFFLE_BUFFER = 256


def to_model_types(image, mask):
    """Casts a decoded pair to float32 0..255 image and int32 `(H, W)` mask.

    Args:
        image: `(H, W, 3)` image of any numeric dtype in 0..255.
        mask: `(H, W)` or `(H, W, 1)` integer mask.

    Returns:
        `(image, mask)` as float32 and int32.

    Example:

    >>> import tensorflow as tf
    >>> image, mask = to_model_types(
    ...     tf.zeros((2, 2, 3), tf.uint8), tf.zeros((2, 2, 1), tf.uint8)
    ... )
    >>> image.dtype.name, mask.dtype.name, mask.shape.as_list()
    ('float32', 'int32', [2, 2])
    """
    import tensorflow as tf

    image = tf.cast(image, tf.float32)
    mask = tf.cast(mask, tf.int32)
    if mask.shape.rank == 3:
        mask = mask[..., 0]
    return image, mask


def _check_size(argument, size):
    if len(size) != 2 or not all(
        isinstance(dim, int) and dim > 0 for dim in size
    ):
        raise ValueError(
            f"`{argument}` must be a pair of positive ints. "
            f"Received: {argument}={size!r}"
        )


def augment_example(
    image,
    mask,
    seed,
    crop_size,
    scale_range=augment.DEFAULT_SCALE_RANGE,
    flip=True,
    jitter=True,
    image_pad_value=0.0,
    ignore_label=IGNORE_LABEL,
):
    """Scale, pad, crop, flip and jitter one pair (see `training_pipeline`).

    Args:
        image: `(H, W, 3)` image in 0..255.
        mask: `(H, W)` integer mask.
        seed: `(2,)` integer seed.
        crop_size: `(height, width)` of the output.
        scale_range: `(min, max)` random scale, or `None` for no scaling.
        flip: whether to flip left-right at random.
        jitter: whether to apply photometric jitter.
        image_pad_value: image padding value (scalar or RGB triple).
        ignore_label: mask padding value.

    Returns:
        `(image, mask)`: float32 `crop_size + (3,)` and int32 `crop_size`.

    Example:

    >>> import tensorflow as tf
    >>> image, mask = augment_example(
    ...     tf.zeros((8, 8, 3)), tf.zeros((8, 8), tf.int32), (0, 0), (4, 4)
    ... )
    >>> mask.shape.as_list()
    [4, 4]
    """
    image, mask = to_model_types(image, mask)
    scale_seed, crop_seed, flip_seed, jitter_seed = augment.split_seed(seed, 4)
    if scale_range is not None:
        image, mask = augment.random_scale(image, mask, scale_seed, scale_range)
    image, mask = augment.pad_to_size(
        image, mask, crop_size, image_pad_value, ignore_label
    )
    image, mask = augment.random_crop(image, mask, crop_size, crop_seed)
    if flip:
        image, mask = augment.random_flip(image, mask, flip_seed)
    if jitter:
        image = augment.photometric_jitter(image, jitter_seed)
    return image, mask


def training_pipeline(
    dataset,
    batch_size,
    crop_size,
    seed=None,
    scale_range=augment.DEFAULT_SCALE_RANGE,
    flip=True,
    jitter=True,
    image_pad_value=0.0,
    ignore_label=IGNORE_LABEL,
    shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
    repeat=False,
):
    """Shuffled, augmented, fixed-size training batches.

    Each epoch draws new augmentations; with a `seed` the whole sequence of
    batches is reproducible.

    Args:
        dataset: `tf.data.Dataset` of `(image, mask)` pairs (image
            `(H, W, 3)` in 0..255, mask `(H, W)` or `(H, W, 1)` ids).
        batch_size: examples per batch; the last partial batch is dropped.
        crop_size: `(height, width)` of every training crop.
        seed: integer seed, or `None` for non-reproducible randomness.
        scale_range: `(min, max)` random scale, or `None` to skip.
        flip: random left-right flips.
        jitter: random brightness/contrast/saturation.
        image_pad_value: image padding when a scaled image is smaller than
            the crop: `0.0` or e.g. `augment.IMAGENET_MEAN_RGB`.
        ignore_label: mask padding value.
        shuffle_buffer: shuffle buffer size; `0` disables shuffling.
        repeat: repeat the dataset forever.

    Returns:
        A `tf.data.Dataset` of `(images, masks)`: float32
        `(batch, h, w, 3)` in 0..255 and int32 `(batch, h, w)`.

    Example:

    >>> from keras_refinenet.data.synthetic import load_synthetic
    >>> batches = training_pipeline(
    ...     load_synthetic(8, image_size=32), batch_size=4, crop_size=(24, 24),
    ...     seed=0,
    ... )
    >>> [tuple(t.shape) for t in next(iter(batches))]
    [(4, 24, 24, 3), (4, 24, 24)]
    """
    import tensorflow as tf

    _check_size("crop_size", tuple(crop_size))
    if batch_size < 1:
        raise ValueError(
            "`batch_size` must be a positive integer. "
            f"Received: batch_size={batch_size}"
        )
    if shuffle_buffer:
        dataset = dataset.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )
    if repeat:
        dataset = dataset.repeat()
    seeds = tf.data.Dataset.random(
        seed=seed, rerandomize_each_iteration=True
    ).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds))

    def augment_pair(example, example_seed):
        image, mask = example
        return augment_example(
            image,
            mask,
            example_seed,
            tuple(crop_size),
            scale_range=scale_range,
            flip=flip,
            jitter=jitter,
            image_pad_value=image_pad_value,
            ignore_label=ignore_label,
        )

    dataset = dataset.map(
        augment_pair,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True if seed is not None else None,
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def evaluation_pipeline(dataset, batch_size=1):
    """Full-size evaluation batches (no augmentation).

    Args:
        dataset: `tf.data.Dataset` of `(image, mask)` pairs.
        batch_size: use 1 unless all images share one size.

    Returns:
        A `tf.data.Dataset` of float32 images in 0..255 and int32 masks.

    Example:

    >>> from keras_refinenet.data.synthetic import load_synthetic
    >>> batches = evaluation_pipeline(load_synthetic(2, image_size=32))
    >>> [tuple(t.shape) for t in next(iter(batches))]
    [(1, 32, 32, 3), (1, 32, 32)]
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(
            "`batch_size` must be a positive integer. "
            f"Received: batch_size={batch_size}"
        )
    dataset = dataset.map(to_model_types, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
