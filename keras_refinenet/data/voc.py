"""PASCAL VOC class names and colour map."""

import numpy as np

from keras_refinenet.constants import IGNORE_LABEL, RGB_CHANNELS
from keras_refinenet.labels import (  # noqa: F401
    VOC_CLASS_NAMES,
    VOC_PALETTE,
    voc_palette,
)

VOC_NUM_CLASSES = len(VOC_CLASS_NAMES)
VOC_IGNORE_LABEL = IGNORE_LABEL


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
    return np.array(voc_palette(num_entries), dtype=np.uint8).reshape(
        num_entries, RGB_CHANNELS
    )
