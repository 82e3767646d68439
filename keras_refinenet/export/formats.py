"""`export_model`: one function for every export format.

Every format except `saved_model` holds one graph, raw RGB pixels in
(`images`, uint8 `(batch, height, width, 3)`, the model's preprocessor
included) and the model's logits out (float32, int8 with a scale and zero
point for `litert-int8`; named `logits` in ONNX and OpenVINO, the
converter's `Identity` in LiteRT). ONNX and OpenVINO keep batch, height
and width dynamic; LiteRT files have batch 1 and the fixed `input_size`
they were exported for.
"""

import importlib.util
import pathlib

from keras_refinenet.backend_support import require_tensorflow_backend
from keras_refinenet.constants import RGB_CHANNELS

SAVED_MODEL = "saved_model"
ONNX = "onnx"
LITERT = "litert"
LITERT_INT8 = "litert-int8"
OPENVINO = "openvino"
EXPORT_FORMATS = (SAVED_MODEL, ONNX, LITERT, LITERT_INT8, OPENVINO)
FIXED_SIZE_FORMATS = (LITERT, LITERT_INT8)
# Formats with tiled / test-time augmented prediction inside the graph.
TTA_FORMATS = (SAVED_MODEL, ONNX, OPENVINO)
TTA_OPTIONS = ("tile_size", "tile_overlap", "scales", "flip")
DEFAULT_FORMAT = SAVED_MODEL
IMAGES_INPUT = "images"
LOGITS_OUTPUT = "logits"
PROBABILITIES_OUTPUT = "probabilities"
CLASS_IDS_OUTPUT = "class_ids"
STATUS_OUTPUT = "status"
# The outputs of `tta_function` in the order of its frozen graph (sorted).
TTA_OUTPUTS = tuple(
    sorted((CLASS_IDS_OUTPUT, PROBABILITIES_OUTPUT, STATUS_OUTPUT))
)
# The file each format writes inside the output folder.
EXPORT_FILES = {
    ONNX: "model.onnx",
    LITERT: "model.tflite",
    LITERT_INT8: "model_int8.tflite",
    OPENVINO: "model.xml",
}
# The optional extra of setup.cfg that each format needs, and the modules
# it provides for exporting and for running the file.
FORMAT_EXTRAS = {
    ONNX: ONNX,
    LITERT: LITERT,
    LITERT_INT8: LITERT,
    OPENVINO: OPENVINO,
}
EXPORT_MODULES = {
    ONNX: ("tf2onnx", "onnx"),
    OPENVINO: ("openvino",),
}
# What a tiled / multi-view export needs besides (it goes through ONNX).
TTA_EXPORT_MODULES = {OPENVINO: ("tf2onnx", "onnx")}
RUNTIME_MODULES = {
    ONNX: ("onnxruntime",),
    LITERT: ("ai_edge_litert",),
    LITERT_INT8: ("ai_edge_litert",),
    OPENVINO: ("openvino",),
}


class MissingExtraError(ImportError):
    """An export or runtime needs an optional extra that is not installed."""


def check_format(format):
    """Raises `ValueError` unless `format` is one of `EXPORT_FORMATS`."""
    if format not in EXPORT_FORMATS:
        raise ValueError(
            f"`format` must be one of {', '.join(EXPORT_FORMATS)}. "
            f"Received: format={format!r}"
        )


def check_extra(format, runtime=False, tta=False):
    """Raises `MissingExtraError` naming the extra `format` needs.

    Args:
        format: one of `EXPORT_FORMATS`.
        runtime: check the modules that run the file instead of those
            that export it.
        tta: the export tiles or augments (`wants_tta`).

    Example:

    >>> check_extra("saved_model")
    """
    check_format(format)
    modules = (RUNTIME_MODULES if runtime else EXPORT_MODULES).get(format, ())
    if tta and not runtime:
        modules += TTA_EXPORT_MODULES.get(format, ())
    missing = [
        name for name in modules if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise MissingExtraError(
            f"format {format!r} needs {', '.join(missing)}: "
            f'pip install "keras-refinenet[{FORMAT_EXTRAS[format]}]". '
            f"Received: format={format!r}"
        )


def check_input_size(format, input_size):
    """`input_size` as `(height, width)` ints, `None` when not needed.

    Args:
        format: one of `EXPORT_FORMATS`.
        input_size: `(height, width)` or `None`; required by fixed-size
            formats (`litert`, `litert-int8`), optional for the others
            (then it fixes their input size too).

    Returns:
        `(height, width)` or `None`.

    Example:

    >>> check_input_size("litert", [64, 96])
    (64, 96)
    """
    check_format(format)
    if input_size is None:
        if format in FIXED_SIZE_FORMATS:
            raise ValueError(
                f"format {format!r} has a fixed input size: pass "
                f"`input_size` (--input-size H W). "
                f"Received: input_size=None"
            )
        return None
    size = tuple(input_size)
    if len(size) != 2 or not all(
        isinstance(value, int) and value > 0 for value in size
    ):
        raise ValueError(
            "`input_size` must be two positive ints (height, width). "
            f"Received: input_size={input_size!r}"
        )
    return size


def check_tta_format(format, options):
    """Raises `ValueError` if `options` tile or augment a format that can't.

    Example:

    >>> check_tta_format("onnx", {"flip": True})
    """
    tta_options = sorted(set(options) & set(TTA_OPTIONS))
    if tta_options and format not in TTA_FORMATS:
        raise ValueError(
            f"Tiling and test-time augmentation in the graph are for the "
            f"formats {', '.join(TTA_FORMATS)}. Received: format={format!r}"
            f" with {', '.join(tta_options)}"
        )


def export_file(output, format):
    """The path of the file `format` writes into the folder `output`."""
    check_format(format)
    if format == SAVED_MODEL:
        return pathlib.Path(output)
    return pathlib.Path(output) / EXPORT_FILES[format]


def wants_tta(tile_size=None, scales=None, flip=False, **unused_options):
    """Whether export options ask for the tiled / multi-view graph."""
    return tile_size is not None or scales is not None or bool(flip)


def logits_function(
    model,
    input_size=None,
    batch_size=None,
    dtype="uint8",
    native_resize=True,
    freeze=True,
):
    """The model as a frozen TensorFlow function of raw pixels.

    The preprocessor runs inside; variables become constants, so
    converters see a plain graph.

    Args:
        model: a `RefineNet` (or any Keras model with an optional
            `preprocessor`) returning logits at the input size.
        input_size: `(height, width)` or `None` for dynamic sizes.
        batch_size: fixed batch size or `None`.
        dtype: input dtype, `"uint8"` or `"float32"` raw pixels.
        native_resize: bilinear resizes as TensorFlow's `ResizeBilinear`
            op (converters map it to their native resize) instead of the
            Keras gathers; see `keras_refinenet.layers.resize`.
        freeze: variables as constants; `False` keeps them (converters
            that read variables need no second copy of the weights).

    Returns:
        A concrete function `images -> {"logits": logits}` (float32),
        frozen unless `freeze=False`.
    """
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    from keras_refinenet.layers import resize

    preprocessor = getattr(model, "preprocessor", None)
    height, width = input_size if input_size is not None else (None, None)

    @tf.function
    def logits(images):
        pixels = tf.cast(images, tf.float32)
        if preprocessor is not None:
            pixels = preprocessor(pixels)
        outputs = tf.cast(model(pixels, training=False), tf.float32)
        return {LOGITS_OUTPUT: outputs}

    spec = tf.TensorSpec(
        [batch_size, height, width, RGB_CHANNELS], dtype, name=IMAGES_INPUT
    )
    with resize.native_resize(native_resize):
        concrete = logits.get_concrete_function(spec)
    if not freeze:
        return concrete
    return convert_to_constants.convert_variables_to_constants_v2(concrete)


def tta_function(
    tiled_predictor, max_pixels=None, input_size=None, native_resize=True
):
    """`TiledPredictor` outputs as a frozen TensorFlow function.

    Args:
        tiled_predictor: a `keras_refinenet.export.tta.TiledPredictor`.
        max_pixels: largest `height * width`; larger images get status
            `STATUS_TOO_LARGE` and empty outputs. `None`: no limit.
        input_size: `(height, width)` or `None` for dynamic sizes.
        native_resize: see `logits_function`.

    Returns:
        A frozen concrete function of `images` returning the tensors
        named by `TTA_OUTPUTS`, in that order.
    """
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants

    from keras_refinenet.layers import resize

    height, width = input_size if input_size is not None else (None, None)

    @tf.function
    def predict(images):
        return tiled_predictor.checked_outputs(images, max_pixels)

    spec = tf.TensorSpec(
        [None, height, width, RGB_CHANNELS], "uint8", name=IMAGES_INPUT
    )
    with resize.native_resize(native_resize):
        concrete = predict.get_concrete_function(spec)
    return convert_to_constants.convert_variables_to_constants_v2(concrete)


def export_model(
    model,
    output,
    format=DEFAULT_FORMAT,
    input_size=None,
    calibration_data=None,
    **options,
):
    """Exports `model` to `format` in the folder `output`.

    Args:
        model: a `RefineNet` returning logits at the input size.
        output: output folder (for `saved_model`, the TF Serving model
            base folder).
        format: one of `EXPORT_FORMATS`.
        input_size: `(height, width)`; required by `litert` and
            `litert-int8`.
        calibration_data: `litert-int8` only: a folder of images, a
            dataset name (`"synthetic"`) or a uint8 array
            `(n, height, width, 3)`; `None` takes synthetic images.
        **options: format options: `version`, `max_pixels` and the
            `predict_tta` options (`tile_size`, `tile_overlap`, `scales`,
            `flip`) for `saved_model`; `num_calibration_images` for
            `litert-int8`; `opset`, and the same tiling options (then
            the file predicts as `predict_segmentation`, see
            `export_onnx`) with `max_pixels`, for `onnx` and `openvino`;
            `native_resize` (bilinear resizes as the format's native
            resize op instead of the Keras gathers; default `True` for
            `litert` and `litert-int8`, where it is faster, `False` for
            `onnx` and `openvino`, where it is slower) for those four.

    Returns:
        The path of the exported file (the version folder for
        `saved_model`).

    Example:

    >>> import tempfile
    >>> from keras_refinenet import tiny_refinenet
    >>> path = export_model(tiny_refinenet(), tempfile.mkdtemp(),
    ...                     format="onnx")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'model.onnx'
    """
    require_tensorflow_backend(f"The {format} export", f"format={format!r}")
    size = check_input_size(format, input_size)
    check_tta_format(format, options)
    if calibration_data is not None and format != LITERT_INT8:
        raise ValueError(
            f"`calibration_data` is for format {LITERT_INT8!r} only. "
            f"Received: format={format!r}"
        )
    if format == SAVED_MODEL:
        from keras_refinenet.export.saved_model import export_saved_model

        return export_saved_model(model, output, **options)
    check_extra(format, tta=wants_tta(**options))
    path = export_file(output, format)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == ONNX:
        from keras_refinenet.export.onnx import export_onnx

        return export_onnx(model, path, input_size=size, **options)
    if format == OPENVINO:
        from keras_refinenet.export.openvino import export_openvino

        return export_openvino(model, path, input_size=size, **options)
    from keras_refinenet.export.litert import export_litert

    return export_litert(
        model,
        path,
        size,
        quantize=format == LITERT_INT8,
        calibration_data=calibration_data,
        **options,
    )
