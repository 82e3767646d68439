"""OpenVINO IR export (`model.xml` + `model.bin`), dynamic height and width."""

import pathlib
import tempfile

from keras_refinenet.export.formats import (
    IMAGES_INPUT,
    LOGITS_OUTPUT,
    logits_function,
    wants_tta,
)


def export_openvino(
    model, path, input_size=None, native_resize=False, **tta_options
):
    """Writes the model as OpenVINO IR, raw uint8 pixels in, logits out.

    `openvino.convert_model` reads the model's TensorFlow function with
    its variables (RefineNet-101: 4 s and 1.9 GiB, where the detour
    through tf2onnx was killed at 24 GiB). With tiling / test-time
    augmentation options it reads the ONNX export instead (the
    TensorFlow frontend has no rule for the frozen graph's `Switch` ops)
    and the IR computes `predict_segmentation` as the ONNX export does
    (outputs `probabilities`, `class_ids`, `status`; see `export_onnx`).

    Args:
        model: a `RefineNet` returning logits at the input size.
        path: the `.xml` file to write (the weights go next to it, `.bin`).
        input_size: `(height, width)` to fix the size, `None` for dynamic.
        native_resize: bilinear resizes as native `Interpolate` ops
            instead of the Keras gathers (6x slower in OpenVINO in
            `benchmarks/runtimes.py`, hence off by default).
        **tta_options: `tile_size`, `tile_overlap`, `scales`, `flip` and
            `max_pixels` of `export_onnx`.

    Returns:
        `path` as a `pathlib.Path`.

    Example:

    >>> from keras_refinenet import tiny_refinenet
    >>> export_openvino(tiny_refinenet(), "m.xml")  # doctest: +SKIP
    PosixPath('m.xml')
    """
    import openvino

    path = pathlib.Path(path)
    if wants_tta(**tta_options):
        converted = _convert_onnx_export(
            model, input_size, native_resize, tta_options
        )
    else:
        function = logits_function(
            model, input_size, native_resize=native_resize, freeze=False
        )
        converted = openvino.convert_model(function)
    converted.inputs[0].get_tensor().set_names({IMAGES_INPUT})
    if len(converted.outputs) == 1:
        converted.outputs[0].get_tensor().set_names({LOGITS_OUTPUT})
    # Float32 weights: the default fp16 compression costs ~1e-3 in logits.
    openvino.save_model(converted, str(path), compress_to_fp16=False)
    return path


def _convert_onnx_export(model, input_size, native_resize, tta_options):
    import openvino

    from keras_refinenet.export.onnx import export_onnx

    with tempfile.TemporaryDirectory() as folder:
        onnx_path = export_onnx(
            model,
            pathlib.Path(folder) / "model.onnx",
            input_size,
            native_resize=native_resize,
            **tta_options,
        )
        return openvino.convert_model(str(onnx_path))
