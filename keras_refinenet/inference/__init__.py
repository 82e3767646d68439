"""Inference on real images: `predict_segmentation` and visualisation."""

from typing import TYPE_CHECKING

from keras_refinenet.lazy_imports import lazy_exports as _lazy_exports

if TYPE_CHECKING:
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

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
