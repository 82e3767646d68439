"""Exports: TF Serving SavedModel, ONNX, LiteRT (float, int8), OpenVINO.

`export_model(model, output, format=...)` writes any of them and
`verify_export` runs the file in its runtime against the Keras model.
The converters and runtimes are imported by the functions that use them.
"""

from typing import TYPE_CHECKING

from keras_refinenet.lazy_imports import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from keras_refinenet.export.formats import (
        EXPORT_FORMATS,
        FIXED_SIZE_FORMATS,
        MissingExtraError,
        export_model,
    )
    from keras_refinenet.export.verify import verify_export

__all__ = [
    "EXPORT_FORMATS",
    "FIXED_SIZE_FORMATS",
    "MissingExtraError",
    "export_model",
    "verify_export",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
