"""Shared helpers of the ONNX / LiteRT / OpenVINO export tests."""

import json
import subprocess
import sys

import numpy as np

RUNNER = "keras_refinenet/export/runtime_runner.py"
ODD_SIZE = (97, 133)
NUM_CLASSES = 3


def tiny_model(seed=11):
    import keras

    from keras_refinenet import tiny_refinenet

    keras.utils.set_random_seed(seed)
    return tiny_refinenet(num_classes=NUM_CLASSES)


def random_images(size, count=1, seed=5):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, *size, 3), dtype=np.uint8)


def keras_reference(model, images):
    """Logits of the Keras model: normalization, then the network."""
    pixels = model.preprocessor(images.astype(np.float32))
    return np.asarray(model(pixels, training=False), np.float32)


def run_runner(tmp_path, format, path, images):
    """Runs the standalone runner in a fresh process; (logits, imported)."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    images_path = tmp_path / "images.npy"
    logits_path = tmp_path / "logits.npy"
    np.save(images_path, images)
    result = subprocess.run(
        [
            sys.executable,
            str(root / RUNNER),
            format,
            str(path),
            str(images_path),
            str(logits_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = json.loads(result.stdout.strip().splitlines()[-1])["imported"]
    return np.load(logits_path), imported


def relative_difference(reference, exported):
    return float(np.abs(reference - exported).max() / np.abs(reference).max())
