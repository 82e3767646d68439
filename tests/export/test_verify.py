import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from export_helpers import tiny_model  # noqa: E402

from keras_refinenet.cli.main import main  # noqa: E402
from keras_refinenet.export.verify import (  # noqa: E402
    compare_logits,
    mean_iou,
)

VERIFY_IMAGES = 2


def test_mean_iou_by_hand():
    masks = [np.array([[0, 0, 1, 1], [2, 2, 255, 255]])]
    predictions = [np.array([[0, 1, 1, 1], [2, 0, 0, 2]])]
    # Class 0: 1 / 3, class 1: 2 / 3, class 2: 1 / 2 (255 is ignored).
    expected = (1 / 3 + 2 / 3 + 1 / 2) / 3
    assert mean_iou(masks, predictions, 3) == pytest.approx(expected)


def test_compare_logits_by_hand():
    reference = np.zeros((1, 2, 2, 2), np.float32)
    reference[0, :, :, 0] = [[4.0, 4.0], [4.0, -4.0]]
    exported = reference.copy()
    exported[0, 1, 1, 0] = 2.0
    report = compare_logits([reference], [exported])
    assert report["max_logit_difference"] == pytest.approx(6.0)
    assert report["max_relative_logit_difference"] == pytest.approx(1.5)
    # Argmax of the last pixel flips from class 1 to class 0.
    assert report["argmax_agreement"] == pytest.approx(0.75)
    assert not report["passed"] and len(report["failures"]) == 2
    loose = compare_logits(
        [reference],
        [exported],
        max_relative_difference=2.0,
        min_argmax_agreement=0.7,
    )
    assert loose["passed"]


def test_quantized_reports_judge_the_mean_iou_drop():
    reference = np.zeros((1, 1, 4, 2), np.float32)
    reference[0, 0, :, 0] = [1, 1, -1, -1]
    exported = reference.copy()
    exported[0, 0, 2, 0] = 1
    masks = [np.array([[0, 0, 1, 1]])]
    report = compare_logits([reference], [exported], masks, quantized=True)
    # Keras mean IoU 1; export: class 0 2/3, class 1 1/2.
    assert report["mean_iou_keras"] == pytest.approx(1.0)
    assert report["mean_iou_drop"] == pytest.approx(1 - 7 / 12)
    assert not report["passed"]
    assert compare_logits(
        [reference], [exported], masks, quantized=True, max_mean_iou_drop=0.5
    )["passed"]


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    pytest.importorskip("tf2onnx")
    from keras_refinenet.export import export_model

    model = tiny_model(seed=4)
    path = export_model(model, tmp_path_factory.mktemp("onnx"), format="onnx")
    return model, path


def test_verify_passes_and_writes_json_next_to_the_export(onnx_export):
    from keras_refinenet.export import verify_export

    model, path = onnx_export
    report = verify_export(model, path, "onnx", num_images=VERIFY_IMAGES)
    assert report["passed"], report["failures"]
    assert report["mean_iou_against"] == "masks"
    saved = json.loads((path.parent / "verify_report.json").read_text())
    assert saved["max_logit_difference"] == report["max_logit_difference"]
    assert saved["max_relative_logit_difference"] < 1e-3


def test_verify_fails_when_weights_change_after_export(onnx_export):
    from keras_refinenet.export import verify_export

    model, path = onnx_export
    original = [weights.copy() for weights in model.get_weights()]
    rng = np.random.default_rng(0)
    try:
        model.set_weights(
            [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in original]
        )
        report = verify_export(model, path, "onnx", num_images=VERIFY_IMAGES)
    finally:
        model.set_weights(original)
    assert not report["passed"]
    assert report["max_relative_logit_difference"] > 1e-3


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    model = tiny_model(seed=6)
    path = tmp_path_factory.mktemp("preset")
    model.save_to_preset(path)
    return path


def test_cli_exports_onnx_and_verifies(preset_dir, tmp_path, capsys):
    pytest.importorskip("tf2onnx")
    args = ["export", "--preset", str(preset_dir), "--format", "onnx"]
    args += ["--output", str(tmp_path), "--verify", "synthetic"]
    args += ["--verify-images", str(VERIFY_IMAGES)]
    assert main(args) == 0
    assert (tmp_path / "model.onnx").is_file()
    report = json.loads((tmp_path / "verify_report.json").read_text())
    assert report["passed"]
    # Past an impossible tolerance the same export fails with exit 1.
    strict = [*args, "--min-argmax-agreement", "1.5"]
    assert main(strict) == 1
    assert "verify failed" in capsys.readouterr().err


def test_cli_fixed_size_format_needs_input_size(preset_dir, tmp_path, capsys):
    args = ["export", "--preset", str(preset_dir), "--format", "litert"]
    assert main([*args, "--output", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--input-size" in error


def test_cli_refuses_an_unknown_format(preset_dir, tmp_path, capsys):
    args = ["export", "--preset", str(preset_dir), "--format", "coreml"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--output", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--format" in capsys.readouterr().err


def test_unknown_format_in_python():
    from keras_refinenet.export import export_model

    with pytest.raises(ValueError, match="format='coreml'"):
        export_model(None, "out", format="coreml")


def test_cli_names_the_missing_extra(preset_dir, tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec

    def without_tf2onnx(name, *args):
        return None if name == "tf2onnx" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_tf2onnx)
    args = ["export", "--preset", str(preset_dir), "--format", "onnx"]
    assert main([*args, "--output", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert 'pip install "keras-refinenet[onnx]"' in error


def test_plain_openvino_export_needs_no_tf2onnx(monkeypatch):
    import importlib.util

    from keras_refinenet.export.formats import MissingExtraError, check_extra

    find_spec = importlib.util.find_spec

    def without_tf2onnx(name, *args):
        return None if name == "tf2onnx" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_tf2onnx)
    check_extra("openvino")
    with pytest.raises(MissingExtraError, match="needs tf2onnx"):
        check_extra("openvino", tta=True)
