"""Tiling / TTA exports: ONNX in ONNX Runtime, the CLI options and errors."""

import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from export_helpers import ODD_SIZE, tiny_model  # noqa: E402

from keras_refinenet.cli.main import main  # noqa: E402
from keras_refinenet.export.tta import (  # noqa: E402
    STATUS_OK,
    STATUS_TOO_LARGE,
    STATUS_TOO_SMALL,
)
from keras_refinenet.inference.predict import (  # noqa: E402
    predict_segmentation,
)

TTA_OPTIONS = {"tile_size": 64, "scales": (0.75, 1.25), "flip": True}
MAX_PIXELS = 128 * 128
# ONNX Runtime only: what a deployment sees.
ONNX_SCRIPT = """
import json, sys
import numpy as np
import onnxruntime
session = onnxruntime.InferenceSession(
    sys.argv[1], providers=["CPUExecutionProvider"]
)
names = [output.name for output in session.get_outputs()]
results = {}
for key in ("images", "big", "small"):
    images = np.load(sys.argv[2] + "/" + key + ".npy")
    outputs = dict(zip(names, session.run(None, {"images": images})))
    np.savez(sys.argv[2] + "/" + key + "_out.npz", **outputs)
    results[key] = int(outputs["status"])
modules = ("keras_refinenet", "tensorflow")
imported = sorted(m for m in modules if m in sys.modules)
print(json.dumps({"imported": imported, "status": results, "names": names}))
"""


def test_cli_refuses_tiling_for_other_formats(tmp_path, capsys):
    # The errors come before the preset is read: it need not exist.
    args = ["export", "--preset", str(tmp_path / "none"), "--format"]
    args = [*args, "litert", "--input-size", "64", "64", "--tile", "64"]
    assert main([*args, "--output", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "formats saved_model, onnx, openvino" in error
    assert "format='litert' with flip, scales, tile_overlap, tile_size" in error


def test_cli_refuses_verify_of_a_tta_onnx_export(tmp_path, capsys):
    args = ["export", "--preset", str(tmp_path / "none"), "--format", "onnx"]
    args += ["--tta", "flip", "--verify", "synthetic"]
    assert main([*args, "--output", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--verify" in error


def test_export_model_refuses_tiling_for_litert_int8():
    from keras_refinenet.export import export_model

    with pytest.raises(ValueError, match="format='litert-int8' with flip"):
        export_model(
            None, "out", format="litert-int8", input_size=(64, 64), flip=True
        )


@pytest.mark.large
def test_onnx_tta_matches_predict_segmentation_in_onnxruntime(tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    from keras_refinenet.export import export_model

    model = tiny_model(seed=4)
    path = export_model(
        model, tmp_path, format="onnx", max_pixels=MAX_PIXELS, **TTA_OPTIONS
    )
    images = np.random.default_rng(2).integers(
        0, 256, (2, *ODD_SIZE, 3), dtype=np.uint8
    )
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "big.npy", np.zeros((1, 129, 128, 3), np.uint8))
    np.save(tmp_path / "small.npy", np.zeros((1, 40, 60, 3), np.uint8))
    result = subprocess.run(
        [sys.executable, "-c", ONNX_SCRIPT, str(path), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["imported"] == []
    assert sorted(report["names"]) == ["class_ids", "probabilities", "status"]
    assert report["status"] == {
        "images": STATUS_OK,
        "big": STATUS_TOO_LARGE,
        "small": STATUS_TOO_SMALL,
    }
    outputs = np.load(tmp_path / "images_out.npz")
    expected_ids, expected = predict_segmentation(
        model, images, return_probabilities=True, **TTA_OPTIONS
    )
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=2e-6)
    assert np.mean(outputs["class_ids"] == expected_ids) >= 0.999
    assert np.load(tmp_path / "big_out.npz")["class_ids"].shape == (1, 0, 0)


OPENVINO_SCRIPT = """
import json, sys
import numpy as np
import openvino
compiled = openvino.Core().compile_model(
    sys.argv[1], "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
)
results = compiled([np.load(sys.argv[2] + "/images.npy")])
outputs = {out.get_any_name(): results[out] for out in compiled.outputs}
np.savez(sys.argv[2] + "/openvino_out.npz", **outputs)
modules = ("keras_refinenet", "tensorflow")
print(json.dumps(sorted(m for m in modules if m in sys.modules)))
"""


@pytest.mark.large
def test_openvino_tta_matches_predict_segmentation(tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("openvino")
    from keras_refinenet.export import export_model

    model = tiny_model(seed=5)
    options = {"tile_size": 48, "flip": True}
    path = export_model(model, tmp_path, format="openvino", **options)
    images = np.random.default_rng(4).integers(
        0, 256, (1, *ODD_SIZE, 3), dtype=np.uint8
    )
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [sys.executable, "-c", OPENVINO_SCRIPT, str(path), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    outputs = np.load(tmp_path / "openvino_out.npz")
    _, expected = predict_segmentation(
        model, images, return_probabilities=True, **options
    )
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=2e-6)
    assert int(outputs["status"]) == STATUS_OK


@pytest.mark.large
def test_cli_saved_model_with_tile_and_flip(tmp_path, capsys):
    import tensorflow as tf

    model = tiny_model(seed=6)
    preset = tmp_path / "preset"
    model.save_to_preset(preset)
    args = ["export", "--preset", str(preset), "--output", str(tmp_path)]
    assert main([*args, "--tile", "48", "--tta", "flip"]) == 0
    signature = tf.saved_model.load(str(tmp_path / "1")).signatures[
        "predict_tta"
    ]
    images = np.random.default_rng(3).integers(
        0, 256, (1, 70, 90, 3), dtype=np.uint8
    )
    outputs = signature(images=tf.constant(images))
    _, expected = predict_segmentation(
        model, images, tile_size=48, flip=True, return_probabilities=True
    )
    np.testing.assert_allclose(
        outputs["probabilities"].numpy(), expected, atol=2e-6
    )
