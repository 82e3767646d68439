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

pytest.importorskip("openvino")
pytest.importorskip("tf2onnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from keras_refinenet.export import export_model

    model = tiny_model()
    path = export_model(
        model, tmp_path_factory.mktemp("openvino"), format="openvino"
    )
    return model, path


def test_openvino_ir_has_dynamic_height_and_width(exported):
    import openvino

    _, path = exported
    assert path.name == "model.xml" and path.with_suffix(".bin").is_file()
    model = openvino.Core().read_model(str(path))
    shape = model.inputs[0].get_partial_shape()
    assert [dim.is_dynamic for dim in shape] == [True, True, True, False]
    assert model.inputs[0].get_element_type() == openvino.Type.u8
    assert model.inputs[0].get_any_name() == "images"
    assert model.outputs[0].get_any_name() == "logits"


def test_openvino_runtime_matches_keras_on_an_odd_size(exported, tmp_path):
    model, path = exported
    images = random_images(ODD_SIZE, count=2, seed=8)
    logits, imported = run_runner(tmp_path, "openvino", path, images)
    assert imported == []
    reference = keras_reference(model, images)
    assert logits.shape == (2, *ODD_SIZE, NUM_CLASSES)
    assert relative_difference(reference, logits) < 1e-3
    agreement = np.mean(logits.argmax(-1) == reference.argmax(-1))
    assert agreement >= 0.999


def test_plain_export_reads_the_tensorflow_function(tmp_path, monkeypatch):
    import sys

    import openvino

    from keras_refinenet.export import export_model

    # No ONNX detour: an import of tf2onnx would fail.
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    model = tiny_model()
    path = export_model(model, tmp_path, format="openvino", input_size=(40, 56))
    shape = openvino.Core().read_model(str(path)).inputs[0].get_partial_shape()
    assert [dim.is_dynamic for dim in shape] == [True, False, False, False]
    images = random_images((40, 56), count=1, seed=9)
    logits, _ = run_runner(tmp_path, "openvino", path, images)
    assert relative_difference(keras_reference(model, images), logits) < 1e-3
