"""OpenVINO IR export (`model.xml` + `model.bin`), dynamic height and width."""

import pathlib
import tempfile

from keras_refinenet.export.formats import IMAGES_INPUT, LOGITS_OUTPUT


def export_openvino(
    model, path, input_size=None, native_resize=False, **tta_options
):
    """Writes the model as OpenVINO IR, raw uint8 pixels in, logits out.

    `openvino.convert_model` reads the model's ONNX export (its
    TensorFlow frontend has no rule for the frozen graph's `Switch` ops).
    With tiling / test-time augmentation options the IR computes
    `predict_segmentation` as the ONNX export does (outputs
    `probabilities`, `class_ids`, `status`; see `export_onnx`).

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

    from keras_refinenet.export.onnx import export_onnx

    path = pathlib.Path(path)
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = export_onnx(
            model,
            pathlib.Path(folder) / "model.onnx",
            input_size,
            native_resize=native_resize,
            **tta_options,
        )
        converted = openvino.convert_model(str(onnx_path))
    converted.inputs[0].get_tensor().set_names({IMAGES_INPUT})
    if len(converted.outputs) == 1:
        converted.outputs[0].get_tensor().set_names({LOGITS_OUTPUT})
    # Float32 weights: the default fp16 compression costs ~1e-3 in logits.
    openvino.save_model(converted, str(path), compress_to_fp16=False)
    return path
