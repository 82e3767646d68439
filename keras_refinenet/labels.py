"""Class names and palettes of the datasets (pure Python, no framework).

The model presets read these tables, so they live outside
`keras_refinenet.data` (whose package imports the `tf.data` pipelines);
`keras_refinenet.data.cityscapes` and `keras_refinenet.data.voc` re-export
them.

The Cityscapes table is the one of cityscapesScripts' `labels.py`: 34
label ids (0..33, plus -1 for the license plate) of which 19 are trained
on; every other id maps to the ignore train id 255.
"""

import collections

from keras_refinenet.constants import IGNORE_LABEL

CITYSCAPES_IGNORE_TRAIN_ID = IGNORE_LABEL
VOC_PALETTE_SIZE = 256
_COLORMAP_BITS = 8

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

VOC_CLASS_NAMES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


def voc_palette(num_entries=VOC_PALETTE_SIZE):
    """The standard PASCAL VOC colour map (the devkit's bitget algorithm).

    Args:
        num_entries: number of palette entries.

    Returns:
        A tuple of `(red, green, blue)` int tuples.

    Example:

    >>> voc_palette(3)
    ((0, 0, 0), (128, 0, 0), (0, 128, 0))
    """
    palette = []
    for index in range(num_entries):
        red = green = blue = 0
        code = index
        for shift in range(_COLORMAP_BITS):
            red |= ((code >> 0) & 1) << (7 - shift)
            green |= ((code >> 1) & 1) << (7 - shift)
            blue |= ((code >> 2) & 1) << (7 - shift)
            code >>= 3
        palette.append((red, green, blue))
    return tuple(palette)


VOC_PALETTE = voc_palette()
