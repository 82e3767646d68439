"""Exports: TF Serving SavedModel, ONNX, LiteRT (float, int8), OpenVINO.

`export_model(model, output, format=...)` writes any of them and
`verify_export` runs the file in its runtime against the Keras model.
The converters and runtimes are imported by the functions that use them.
"""

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
