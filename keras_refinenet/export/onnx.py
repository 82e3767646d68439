"""ONNX export with tf2onnx, dynamic batch, height and width."""

import pathlib

from keras_refinenet.export.formats import (
    IMAGES_INPUT,
    LOGITS_OUTPUT,
    TTA_OUTPUTS,
    logits_function,
    tta_function,
    wants_tta,
)
from keras_refinenet.inference.predict import DEFAULT_TILE_OVERLAP

DEFAULT_OPSET = 17


def export_onnx(
    model,
    path,
    input_size=None,
    opset=DEFAULT_OPSET,
    native_resize=False,
    tile_size=None,
    tile_overlap=DEFAULT_TILE_OVERLAP,
    scales=None,
    flip=False,
    max_pixels=None,
):
    """Writes the model as an ONNX file, raw uint8 pixels in, logits out.

    With `tile_size`, `scales` or `flip` the file computes
    `predict_segmentation(model, images, tile_size=..., tile_overlap=...,
    scales=..., flip=...)` instead (ONNX `Loop` over the tiles): outputs
    `probabilities` float32 `(b, h, w, classes)`, `class_ids` int32
    `(b, h, w)` and `status` int32 (`0` ok; `1` more than `max_pixels`
    pixels, `2` smaller than the network's minimum at some scale: then the
    other outputs are empty).

    Args:
        model: a `RefineNet` returning logits at the input size.
        path: the `.onnx` file to write.
        input_size: `(height, width)` to fix the size, `None` for dynamic.
        opset: ONNX opset.
        native_resize: bilinear resizes as ONNX `Resize` ops instead of
            the Keras gathers (4x slower in ONNX Runtime in
            `benchmarks/runtimes.py`, hence off by default).
        tile_size: largest tile, an int or `(h, w)`; `None` for whole
            images.
        tile_overlap: fraction of a tile shared with its neighbours.
        scales: image scales to average; `None` is `(1.0,)`.
        flip: also average the mirrored views.
        max_pixels: with test-time augmentation, the largest
            `height * width`; `None` for no limit.

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
    if wants_tta(tile_size, scales, flip):
        from keras_refinenet.export.tta import TiledPredictor

        predictor = TiledPredictor(
            model,
            tile_size,
            tile_overlap,
            (1.0,) if scales is None else scales,
            flip,
        )
        frozen = tta_function(predictor, max_pixels, input_size, native_resize)
        names = TTA_OUTPUTS
    else:
        frozen = logits_function(model, input_size, native_resize=native_resize)
        names = (LOGITS_OUTPUT,)
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
    _rename_io(path, {inputs[0]: IMAGES_INPUT, **dict(zip(outputs, names))})
    return path


def _rename_io(path, renames):
    """Names the graph's input `images` and its outputs as the function's."""
    import onnx

    proto = onnx.load(str(path))
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.name = renames.get(value.name, value.name)
    _rename_uses(proto.graph, renames)
    onnx.save(proto, str(path))


def _rename_uses(graph, renames):
    """Renames node inputs and outputs, in `Loop`/`If` bodies too."""
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
        for attribute in node.attribute:
            for body in [attribute.g, *attribute.graphs]:
                _rename_uses(body, renames)
