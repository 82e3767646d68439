"""PASCAL VOC class names and colour map."""

import numpy as np

from keras_refinenet.constants import IGNORE_LABEL, RGB_CHANNELS

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
VOC_NUM_CLASSES = len(VOC_CLASS_NAMES)
VOC_IGNORE_LABEL = IGNORE_LABEL
_COLORMAP_BITS = 8


def voc_colormap(num_entries=256):
    """The standard PASCAL VOC colour map (the devkit's bitget algorithm).

    Args:
        num_entries: number of palette entries.

    Returns:
        `uint8` array of shape `(num_entries, 3)`.

    Example:

    >>> voc_colormap()[:3].tolist()
    [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    colormap = np.zeros((num_entries, RGB_CHANNELS), dtype=np.uint8)
    for index in range(num_entries):
        red = green = blue = 0
        code = index
        for shift in range(_COLORMAP_BITS):
            red |= ((code >> 0) & 1) << (7 - shift)
            green |= ((code >> 1) & 1) << (7 - shift)
            blue |= ((code >> 2) & 1) << (7 - shift)
            code >>= 3
        colormap[index] = (red, green, blue)
    return colormap


VOC_PALETTE = tuple(tuple(int(c) for c in color) for color in voc_colormap())
