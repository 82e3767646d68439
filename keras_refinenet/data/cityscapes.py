"""Cityscapes labels and the tensorflow-datasets loader.

The label table is the one of cityscapesScripts' `labels.py`: 34 label ids
(0..33, plus -1 for the license plate) of which 19 are trained on; every other
id maps to the ignore train id 255.
"""

import re

import numpy as np

from keras_refinenet.backend_support import require_tensorflow_backend
from keras_refinenet.constants import IGNORE_LABEL

CITYSCAPES_TFDS_NAME = "cityscapes/semantic_segmentation"
CITYSCAPES_IGNORE_TRAIN_ID = IGNORE_LABEL
CITYSCAPES_NUM_CLASSES = 19
CITYSCAPES_SPLITS = {
    "train": "train",
    "val": "validation",
    "validation": "validation",
    "test": "test",
}
_LOOKUP_SIZE = 256
# File names of the Cityscapes release: `<city>_<seq>_<frame>` + suffix.
CITYSCAPES_FRAME_ID_PATTERN = re.compile(r"([A-Za-z\-]+_\d{6}_\d{6})")
CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit.png"
CITYSCAPES_LABEL_ID_SUFFIX = "_gtFine_labelIds.png"
CITYSCAPES_TRAIN_ID_SUFFIX = "_gtFine_labelTrainIds.png"

from keras_refinenet.labels import (  # noqa: E402, F401
    _TRAIN_LABELS,
    CITYSCAPES_CLASS_NAMES,
    CITYSCAPES_LABELS,
    CITYSCAPES_PALETTE,
    CityscapesLabel,
)

CITYSCAPES_EVAL_LABEL_IDS = tuple(
    label.id
    for label in CITYSCAPES_LABELS
    if label.id >= 0 and not label.ignore_in_eval
)


def _label_to_train_lookup():
    lookup = np.full(_LOOKUP_SIZE, CITYSCAPES_IGNORE_TRAIN_ID, dtype=np.int32)
    for label in CITYSCAPES_LABELS:
        if label.id >= 0 and 0 <= label.train_id < CITYSCAPES_IGNORE_TRAIN_ID:
            lookup[label.id] = label.train_id
    return lookup


def _train_to_label_lookup():
    lookup = np.zeros(_LOOKUP_SIZE, dtype=np.int32)
    for label in _TRAIN_LABELS:
        lookup[label.train_id] = label.id
    return lookup


LABEL_ID_TO_TRAIN_ID = _label_to_train_lookup()
TRAIN_ID_TO_LABEL_ID = _train_to_label_lookup()


def _apply_lookup(values, lookup, out_of_range_value):
    """Maps integer `values` through `lookup`; numpy or TensorFlow input."""
    if isinstance(values, np.ndarray) or np.isscalar(values):
        values = np.asarray(values)
        in_range = (values >= 0) & (values < _LOOKUP_SIZE)
        indices = np.where(in_range, values, 0).astype(np.int64)
        mapped = np.where(in_range, lookup[indices], out_of_range_value)
        return mapped.astype(values.dtype)
    import tensorflow as tf

    values = tf.convert_to_tensor(values)
    as_int = tf.cast(values, tf.int32)
    in_range = (as_int >= 0) & (as_int < _LOOKUP_SIZE)
    mapped = tf.gather(
        tf.constant(lookup, tf.int32), tf.where(in_range, as_int, 0)
    )
    mapped = tf.where(in_range, mapped, out_of_range_value)
    return tf.cast(mapped, values.dtype)


def label_ids_to_train_ids(label_ids):
    """Maps Cityscapes label ids (0..33, -1) to train ids (0..18, 255).

    Args:
        label_ids: integer numpy array or TensorFlow tensor of label ids.
            Ids without a train id (void classes, -1, anything above 33)
            become 255.

    Returns:
        Train ids with the type and dtype of `label_ids`.

    Example:

    >>> import numpy as np
    >>> label_ids_to_train_ids(np.array([7, 26, 0, 33], dtype="uint8"))
    array([  0,  13, 255,  18], dtype=uint8)
    """
    return _apply_lookup(
        label_ids, LABEL_ID_TO_TRAIN_ID, CITYSCAPES_IGNORE_TRAIN_ID
    )


def train_ids_to_label_ids(train_ids):
    """Maps train ids (0..18) back to Cityscapes label ids for submission.

    Args:
        train_ids: integer numpy array or TensorFlow tensor of train ids.
            255 (and any value that is not a train id) becomes label id 0
            ("unlabeled").

    Returns:
        Label ids with the type and dtype of `train_ids`.

    Example:

    >>> import numpy as np
    >>> train_ids_to_label_ids(np.array([0, 13, 255, 18], dtype="uint8"))
    array([ 7, 26,  0, 33], dtype=uint8)
    """
    return _apply_lookup(train_ids, TRAIN_ID_TO_LABEL_ID, 0)


def load_cityscapes(
    split,
    data_dir=None,
    manual_dir=None,
    shuffle_files=False,
    download_and_prepare=True,
):
    """Cityscapes fine annotations as `(image, mask)` pairs through tfds.

    The first call prepares the tfds dataset from the manually downloaded
    `leftImg8bit_trainvaltest.zip` and `gtFine_trainvaltest.zip` found in
    `manual_dir`; later calls read the prepared records from `data_dir`.

    Args:
        split: `"train"`, `"val"` (or `"validation"`) or `"test"`; tfds
            slicing such as `"train[:10]"` is accepted too.
        data_dir: tfds data directory; `None` uses the tfds default.
        manual_dir: folder holding the two Cityscapes zips.
        shuffle_files: whether tfds shuffles the record files.
        download_and_prepare: prepare the dataset if it is not prepared yet.
            Nothing is downloaded: the zips come from `manual_dir`.

    Returns:
        A `tf.data.Dataset` of `(image, mask)`: image `uint8 (1024, 2048, 3)`,
        mask `uint8 (1024, 2048)` of train ids with 255 for ignore.

    Example:

    >>> dataset = load_cityscapes(  # doctest: +SKIP
    ...     "val", manual_dir="~/downloads/cityscapes"
    ... )
    """
    require_tensorflow_backend(
        "The tfds Cityscapes builder", f"split={split!r}"
    )
    import tensorflow as tf
    import tensorflow_datasets as tfds

    base_split, _, slicing = split.partition("[")
    if base_split not in CITYSCAPES_SPLITS:
        raise ValueError(
            f"`split` must be one of {sorted(CITYSCAPES_SPLITS)}, optionally "
            f"with tfds slicing. Received: split={split!r}"
        )
    tfds_split = CITYSCAPES_SPLITS[base_split]
    if slicing:
        tfds_split = f"{tfds_split}[{slicing}"
    builder = tfds.builder(CITYSCAPES_TFDS_NAME, data_dir=data_dir)
    if download_and_prepare:
        download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        builder.download_and_prepare(download_config=download_config)
    dataset = builder.as_dataset(split=tfds_split, shuffle_files=shuffle_files)

    def to_image_and_train_ids(example):
        label_ids = example["segmentation_label"][..., 0]
        return example["image_left"], label_ids_to_train_ids(label_ids)

    return dataset.map(
        to_image_and_train_ids, num_parallel_calls=tf.data.AUTOTUNE
    )
