import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from export_helpers import (  # noqa: E402
    NUM_CLASSES,
    ODD_SIZE,
    keras_reference,
    random_images,
    relative_difference,
    run_runner,
    tiny_model,
)

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from keras_refinenet.export import export_model

    model = tiny_model()
    path = export_model(model, tmp_path_factory.mktemp("onnx"), format="onnx")
    return model, path


def test_onnx_file_has_dynamic_uint8_input_and_named_logits(exported):
    import onnx

    _, path = exported
    assert path.name == "model.onnx"
    graph = onnx.load(str(path)).graph
    (images,) = graph.input
    (logits,) = graph.output
    assert images.name == "images" and logits.name == "logits"
    assert images.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = images.type.tensor_type.shape.dim
    assert [dim.HasField("dim_value") for dim in dims] == [
        False,
        False,
        False,
        True,
    ]
    assert dims[3].dim_value == 3


def test_native_resize_gives_onnx_resize_ops(exported, tmp_path):
    import onnx

    from keras_refinenet.export import export_model

    model, default_path = exported
    default_nodes = onnx.load(str(default_path)).graph.node
    assert not any(node.op_type == "Resize" for node in default_nodes)
    path = export_model(model, tmp_path, format="onnx", native_resize=True)
    resizes = [
        node
        for node in onnx.load(str(path)).graph.node
        if node.op_type == "Resize"
    ]
    modes = {
        attribute.s.decode()
        for node in resizes
        for attribute in node.attribute
        if attribute.name == "coordinate_transformation_mode"
    }
    # The tiny RefineNet's decoder and output upsampling align corners.
    assert resizes and modes == {"align_corners"}


@pytest.mark.parametrize("size", [ODD_SIZE, (40, 56)])
def test_onnxruntime_matches_keras_without_keras_refinenet(
    exported, tmp_path, size
):
    model, path = exported
    images = random_images(size, count=2)
    logits, imported = run_runner(tmp_path, "onnx", path, images)
    assert imported == []
    reference = keras_reference(model, images)
    assert logits.shape == (2, *size, NUM_CLASSES)
    assert relative_difference(reference, logits) < 1e-3
    agreement = np.mean(logits.argmax(-1) == reference.argmax(-1))
    assert agreement >= 0.999
