"""Inference on real images: `predict_segmentation` and visualisation."""

from keras_refinenet.inference.predict import (
    CITYSCAPES_TTA_SCALES,
    predict_segmentation,
)
from keras_refinenet.inference.visualize import (
    colorize,
    legend,
    overlay,
    preset_palette,
    write_png,
)

__all__ = [
    "CITYSCAPES_TTA_SCALES",
    "colorize",
    "legend",
    "overlay",
    "predict_segmentation",
    "preset_palette",
    "write_png",
]
