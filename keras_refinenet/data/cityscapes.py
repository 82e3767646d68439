"""Cityscapes labels and the tensorflow-datasets loader.

The label table is the one of cityscapesScripts' `labels.py`: 34 label ids
(0..33, plus -1 for the license plate) of which 19 are trained on; every other
id maps to the ignore train id 255.
"""

import collections
import re

import numpy as np

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

CityscapesLabel = collections.namedtuple(
    "CityscapesLabel",
    [
        "name",
        "id",
        "train_id",
        "category",
        "category_id",
        "has_instances",
        "ignore_in_eval",
        "color",
    ],
)

# fmt: off
CITYSCAPES_LABELS = (
    CityscapesLabel("unlabeled", 0, 255, "void", 0, False, True, (0, 0, 0)),
    CityscapesLabel("ego vehicle", 1, 255, "void", 0, False, True, (0, 0, 0)),
    CityscapesLabel(
        "rectification border", 2, 255, "void", 0, False, True, (0, 0, 0)
    ),
    CityscapesLabel("out of roi", 3, 255, "void", 0, False, True, (0, 0, 0)),
    CityscapesLabel("static", 4, 255, "void", 0, False, True, (0, 0, 0)),
    CityscapesLabel(
        "dynamic", 5, 255, "void", 0, False, True, (111, 74, 0)
    ),
    CityscapesLabel("ground", 6, 255, "void", 0, False, True, (81, 0, 81)),
    CityscapesLabel("road", 7, 0, "flat", 1, False, False, (128, 64, 128)),
    CityscapesLabel(
        "sidewalk", 8, 1, "flat", 1, False, False, (244, 35, 232)
    ),
    CityscapesLabel(
        "parking", 9, 255, "flat", 1, False, True, (250, 170, 160)
    ),
    CityscapesLabel(
        "rail track", 10, 255, "flat", 1, False, True, (230, 150, 140)
    ),
    CityscapesLabel(
        "building", 11, 2, "construction", 2, False, False, (70, 70, 70)
    ),
    CityscapesLabel(
        "wall", 12, 3, "construction", 2, False, False, (102, 102, 156)
    ),
    CityscapesLabel(
        "fence", 13, 4, "construction", 2, False, False, (190, 153, 153)
    ),
    CityscapesLabel(
        "guard rail", 14, 255, "construction", 2, False, True, (180, 165, 180)
    ),
    CityscapesLabel(
        "bridge", 15, 255, "construction", 2, False, True, (150, 100, 100)
    ),
    CityscapesLabel(
        "tunnel", 16, 255, "construction", 2, False, True, (150, 120, 90)
    ),
    CityscapesLabel(
        "pole", 17, 5, "object", 3, False, False, (153, 153, 153)
    ),
    CityscapesLabel(
        "polegroup", 18, 255, "object", 3, False, True, (153, 153, 153)
    ),
    CityscapesLabel(
        "traffic light", 19, 6, "object", 3, False, False, (250, 170, 30)
    ),
    CityscapesLabel(
        "traffic sign", 20, 7, "object", 3, False, False, (220, 220, 0)
    ),
    CityscapesLabel(
        "vegetation", 21, 8, "nature", 4, False, False, (107, 142, 35)
    ),
    CityscapesLabel(
        "terrain", 22, 9, "nature", 4, False, False, (152, 251, 152)
    ),
    CityscapesLabel("sky", 23, 10, "sky", 5, False, False, (70, 130, 180)),
    CityscapesLabel(
        "person", 24, 11, "human", 6, True, False, (220, 20, 60)
    ),
    CityscapesLabel("rider", 25, 12, "human", 6, True, False, (255, 0, 0)),
    CityscapesLabel("car", 26, 13, "vehicle", 7, True, False, (0, 0, 142)),
    CityscapesLabel("truck", 27, 14, "vehicle", 7, True, False, (0, 0, 70)),
    CityscapesLabel("bus", 28, 15, "vehicle", 7, True, False, (0, 60, 100)),
    CityscapesLabel(
        "caravan", 29, 255, "vehicle", 7, True, True, (0, 0, 90)
    ),
    CityscapesLabel(
        "trailer", 30, 255, "vehicle", 7, True, True, (0, 0, 110)
    ),
    CityscapesLabel("train", 31, 16, "vehicle", 7, True, False, (0, 80, 100)),
    CityscapesLabel(
        "motorcycle", 32, 17, "vehicle", 7, True, False, (0, 0, 230)
    ),
    CityscapesLabel(
        "bicycle", 33, 18, "vehicle", 7, True, False, (119, 11, 32)
    ),
    CityscapesLabel(
        "license plate", -1, -1, "vehicle", 7, False, True, (0, 0, 142)
    ),
)
# fmt: on

_TRAIN_LABELS = sorted(
    (
        label
        for label in CITYSCAPES_LABELS
        if 0 <= label.train_id < CITYSCAPES_IGNORE_TRAIN_ID
    ),
    key=lambda label: label.train_id,
)
CITYSCAPES_CLASS_NAMES = tuple(label.name for label in _TRAIN_LABELS)
CITYSCAPES_PALETTE = tuple(label.color for label in _TRAIN_LABELS)
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
