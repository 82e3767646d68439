"""Datasets by name: `load_dataset("synthetic" | "cityscapes" | "folder")`.

The one place that maps the dataset names of the command line and of
`TrainConfig` to their loaders, with their class names.
"""

import dataclasses
import pathlib

from keras_refinenet.data.cityscapes import CITYSCAPES_CLASS_NAMES
from keras_refinenet.data.synthetic import SYNTHETIC_CLASS_NAMES

# Dataset name -> its class names; `None`: the user says (folder datasets).
DATASET_CLASS_NAMES = {
    "cityscapes": CITYSCAPES_CLASS_NAMES,
    "folder": None,
    "synthetic": SYNTHETIC_CLASS_NAMES,
}
DATASET_NAMES = tuple(DATASET_CLASS_NAMES)
TRAIN_SPLIT = "train"
VAL_SPLIT = "val"
TEST_SPLIT = "test"
# Synthetic splits differ by seed; example `i` of a split never changes.
SYNTHETIC_SEEDS = {TRAIN_SPLIT: 1, VAL_SPLIT: 2, TEST_SPLIT: 3}
SYNTHETIC_SIZES = {TRAIN_SPLIT: 512, VAL_SPLIT: 64, TEST_SPLIT: 128}
DEFAULT_SYNTHETIC_IMAGE_SIZE = 64
FOLDER_IMAGE_DIR = "images"
FOLDER_MASK_DIR = "masks"
DEFAULT_CLASS_NAME = "class_{index}"


@dataclasses.dataclass
class SegmentationDataset:
    """One split of a dataset and what is known about its classes.

    Attributes:
        examples: `tf.data.Dataset` of `(image, mask)` pairs.
        num_classes: number of classes, `None` if the dataset does not say.
        class_names: tuple of class names, or `None`.
        size: number of examples, `None` if unknown.

    Example:

    >>> dataset = load_dataset("synthetic", "test", synthetic_images=1,
    ...                        synthetic_image_size=8)
    >>> type(dataset).__name__, dataset.size
    ('SegmentationDataset', 1)
    """

    examples: object
    num_classes: int | None
    class_names: tuple | None
    size: int | None


def default_class_names(num_classes):
    """Names of classes that no dataset or preset names: `class_<i>`.

    Example:

    >>> default_class_names(2)
    ('class_0', 'class_1')
    """
    return tuple(
        DEFAULT_CLASS_NAME.format(index=index) for index in range(num_classes)
    )


def class_names_for(num_classes, *candidates):
    """The first candidate list of `num_classes` names, else the defaults.

    Args:
        num_classes: number of classes.
        *candidates: lists of class names or `None`, best first.

    Returns:
        A tuple of `num_classes` strings.

    Example:

    >>> class_names_for(2, None, ["x"], ("road", "sky"))
    ('road', 'sky')
    >>> class_names_for(2, ["x"])
    ('class_0', 'class_1')
    """
    for names in candidates:
        if names and len(names) == num_classes:
            return tuple(str(name) for name in names)
    return default_class_names(num_classes)


def _check_choice(argument, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{argument}` must be one of {choices}. "
            f"Received: {argument}={value!r}"
        )


def dataset_size(dataset):
    """Number of elements of a `tf.data.Dataset`, `None` if unknown.

    Example:

    >>> import tensorflow as tf
    >>> dataset_size(tf.data.Dataset.range(3)), dataset_size(
    ...     tf.data.Dataset.range(3).repeat())
    (3, None)
    """
    import tensorflow as tf

    size = int(dataset.cardinality())
    if size in (tf.data.INFINITE_CARDINALITY, tf.data.UNKNOWN_CARDINALITY):
        return None
    return size


def _load_folder(data_dir, split, num_classes):
    from keras_refinenet.data import folder

    if data_dir is None:
        raise ValueError(
            "The folder dataset needs `data_dir` (`--data-dir`). "
            "Received: data_dir=None"
        )
    if num_classes is None:
        raise ValueError(
            "The folder dataset needs the number of classes: pass "
            "`--num-classes` or a preset with the right classes. "
            "Received: num_classes=None"
        )
    root = pathlib.Path(data_dir)
    if (root / folder.VOC_IMAGE_DIR).is_dir():
        return folder.load_voc_dataset(
            root, split=split, num_classes=num_classes
        )
    split_dir = root / split
    if not split_dir.is_dir():
        raise ValueError(
            f"The folder dataset needs {split_dir}/{FOLDER_IMAGE_DIR} and "
            f"{split_dir}/{FOLDER_MASK_DIR} (or a PASCAL VOC layout with "
            f"{folder.VOC_IMAGE_DIR}/). Received: data_dir={str(data_dir)!r}"
        )
    return folder.load_folder_dataset(
        split_dir / FOLDER_IMAGE_DIR,
        split_dir / FOLDER_MASK_DIR,
        num_classes=num_classes,
    )


def load_dataset(
    name,
    split=TRAIN_SPLIT,
    data_dir=None,
    manual_dir=None,
    num_classes=None,
    synthetic_images=None,
    synthetic_image_size=DEFAULT_SYNTHETIC_IMAGE_SIZE,
):
    """One split of a dataset named as on the command line.

    - `"cityscapes"`: tfds `cityscapes/semantic_segmentation` prepared from
      the zips in `manual_dir` (19 train ids, 255 ignored).
    - `"folder"`: `data_dir/<split>/{images,masks}` with masks matched by
      file stem, or a PASCAL VOC folder (`JPEGImages`, `SegmentationClass`,
      `ImageSets/Segmentation/<split>.txt`).
    - `"synthetic"`: generated shapes; each split has its own seed
      (`SYNTHETIC_SEEDS`).

    Args:
        name: one of `DATASET_NAMES`.
        split: `"train"`, `"val"` or `"test"` (Cityscapes also takes tfds
            slicing such as `"val[:10]"`).
        data_dir: see above; for Cityscapes the tfds data directory.
        manual_dir: folder of the Cityscapes zips.
        num_classes: class count (needed by the folder dataset).
        synthetic_images: synthetic images; `None` for the split's
            default in `SYNTHETIC_SIZES`.
        synthetic_image_size: synthetic image size.

    Returns:
        A `SegmentationDataset`.

    Example:

    >>> val = load_dataset("synthetic", "val", synthetic_images=2,
    ...                    synthetic_image_size=16)
    >>> val.num_classes, val.size, val.class_names[1]
    (4, 2, 'circle')
    """
    _check_choice("name", name, DATASET_NAMES)
    class_names = DATASET_CLASS_NAMES[name]
    if name == "synthetic":
        from keras_refinenet.data import synthetic

        _check_choice("split", split, tuple(SYNTHETIC_SEEDS))
        examples = synthetic.load_synthetic(
            synthetic_images or SYNTHETIC_SIZES[split],
            image_size=synthetic_image_size,
            seed=SYNTHETIC_SEEDS[split],
        )
    elif name == "cityscapes":
        from keras_refinenet.data import cityscapes

        examples = cityscapes.load_cityscapes(
            split, data_dir=data_dir, manual_dir=manual_dir
        )
    else:
        examples = _load_folder(data_dir, split, num_classes)
    if class_names is not None:
        num_classes = len(class_names)
    return SegmentationDataset(
        examples=examples,
        num_classes=num_classes,
        class_names=tuple(class_names) if class_names else None,
        size=dataset_size(examples),
    )
