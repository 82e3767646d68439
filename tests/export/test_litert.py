import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from export_helpers import (  # noqa: E402
    NUM_CLASSES,
    keras_reference,
    random_images,
    relative_difference,
    run_runner,
    tiny_model,
)

pytest.importorskip("ai_edge_litert")

INPUT_SIZE = (48, 64)
CALIBRATION_IMAGES = 12
# Dark calibration pixels span 0..DARK_MAX only.
DARK_MAX = 40


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def float_file(model, tmp_path_factory):
    from keras_refinenet.export import export_model

    return export_model(
        model,
        tmp_path_factory.mktemp("litert"),
        format="litert",
        input_size=INPUT_SIZE,
    )


@pytest.fixture(scope="module")
def int8_file(model, tmp_path_factory):
    from keras_refinenet.export import export_model

    return export_model(
        model,
        tmp_path_factory.mktemp("litert_int8"),
        format="litert-int8",
        input_size=INPUT_SIZE,
        num_calibration_images=CALIBRATION_IMAGES,
    )


def io_details(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    return inputs[0], outputs[0]


def test_float_file_has_the_fixed_uint8_input(float_file):
    images, logits = io_details(float_file)
    assert float_file.name == "model.tflite"
    assert list(images["shape"]) == [1, *INPUT_SIZE, 3]
    assert images["dtype"] == np.uint8
    assert logits["dtype"] == np.float32


def test_float_interpreter_matches_keras(model, float_file, tmp_path):
    images = random_images(INPUT_SIZE, count=2)
    logits, imported = run_runner(tmp_path, "litert", float_file, images)
    assert imported == []
    reference = keras_reference(model, images)
    assert logits.shape == (2, *INPUT_SIZE, NUM_CLASSES)
    assert relative_difference(reference, logits) < 1e-3
    assert np.mean(logits.argmax(-1) == reference.argmax(-1)) >= 0.999


def test_int8_file_takes_raw_pixels_and_is_integer(int8_file):
    images, logits = io_details(int8_file)
    assert images["dtype"] == np.uint8
    assert logits["dtype"] == np.int8
    # Synthetic calibration images span 0..255: uint8 q maps to pixel q.
    scale, zero_point = images["quantization"]
    assert zero_point == 0
    assert abs(scale - 1.0) < 1e-6


def test_int8_uses_the_calibration_data_given(model, tmp_path):
    from keras_refinenet.export.litert import export_litert

    rng = np.random.default_rng(2)
    dark = rng.integers(0, DARK_MAX + 1, (4, *INPUT_SIZE, 3), dtype=np.uint8)
    dark[0, 0, 0] = (0, DARK_MAX, 0)
    path = export_litert(
        model,
        tmp_path / "dark.tflite",
        INPUT_SIZE,
        quantize=True,
        calibration_data=dark,
    )
    images, _ = io_details(path)
    scale, zero_point = images["quantization"]
    # Input range 0..40 over 255 uint8 steps.
    assert zero_point == 0
    assert abs(scale - DARK_MAX / 255) < 1e-6


def test_int8_interpreter_stays_close_to_keras(model, int8_file, tmp_path):
    from keras_refinenet.data.synthetic import make_synthetic_arrays

    images, _ = make_synthetic_arrays(2, image_size=INPUT_SIZE, seed=3)
    logits, _ = run_runner(tmp_path, "litert-int8", int8_file, images)
    reference = keras_reference(model, images)
    # Int8 logits: within a few quantization steps of the float logits.
    assert relative_difference(reference, logits) < 0.2
    assert np.mean(logits.argmax(-1) == reference.argmax(-1)) > 0.9


def test_calibration_images_from_a_folder(tmp_path):
    from PIL import Image

    from keras_refinenet.export.litert import calibration_images

    for index in range(3):
        pixels = np.full((10, 12, 3), index * 50, np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{index}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    images = calibration_images(tmp_path, (20, 24), num_images=2)
    assert images.shape == (2, 20, 24, 3)
    assert images.dtype == np.uint8
    assert [int(image.max()) for image in images] == [0, 50]


def test_fixed_size_formats_need_an_input_size(model, tmp_path):
    from keras_refinenet.export import export_model

    for format in ("litert", "litert-int8"):
        with pytest.raises(ValueError, match="input_size"):
            export_model(model, tmp_path, format=format)


def test_int8_verify_reports_the_mean_iou_drop_on_demo_data(model, int8_file):
    import json

    from keras_refinenet.export import verify_export

    report = verify_export(
        model, int8_file, "litert-int8", "demo", INPUT_SIZE, num_images=2
    )
    assert report["mean_iou_against"] == "masks"
    assert report["mean_iou_drop"] == pytest.approx(
        report["mean_iou_keras"] - report["mean_iou_export"]
    )
    assert set(report["tolerances"]) == {"max_mean_iou_drop"}
    saved = json.loads((int8_file.parent / "verify_report.json").read_text())
    assert saved["mean_iou_drop"] == report["mean_iou_drop"]
