"""ONNX export with tf2onnx, dynamic batch, height and width."""

import pathlib

from keras_refinenet.export.formats import IMAGES_INPUT, logits_function

DEFAULT_OPSET = 17


def export_onnx(
    model, path, input_size=None, opset=DEFAULT_OPSET, native_resize=True
):
    """Writes the model as an ONNX file, raw uint8 pixels in, logits out.

    Args:
        model: a `RefineNet` returning logits at the input size.
        path: the `.onnx` file to write.
        input_size: `(height, width)` to fix the size, `None` for dynamic.
        opset: ONNX opset.
        native_resize: bilinear resizes as ONNX `Resize` ops (else the
            Keras gathers).

    Returns:
        `path` as a `pathlib.Path`.

    Example:

    >>> from keras_refinenet import tiny_refinenet
    >>> export_onnx(tiny_refinenet(), "m.onnx")  # doctest: +SKIP
    PosixPath('m.onnx')
    """
    import tensorflow as tf
    import tf2onnx

    path = pathlib.Path(path)
    frozen = logits_function(model, input_size, native_resize=native_resize)
    graph_def = frozen.graph.as_graph_def()
    inputs = [tensor.name for tensor in frozen.inputs]
    outputs = [tensor.name for tensor in frozen.outputs]
    with tf.Graph().as_default():
        tf2onnx.convert.from_graph_def(
            graph_def,
            input_names=inputs,
            output_names=outputs,
            opset=opset,
            output_path=str(path),
        )
    _rename_io(path, inputs, outputs)
    return path


def _rename_io(path, inputs, outputs):
    """Names the graph's input `images` and its output `logits`."""
    import onnx

    from keras_refinenet.export.formats import LOGITS_OUTPUT

    proto = onnx.load(str(path))
    renames = {inputs[0]: IMAGES_INPUT, outputs[0]: LOGITS_OUTPUT}
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.name = renames.get(value.name, value.name)
    for node in proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    onnx.save(proto, str(path))
