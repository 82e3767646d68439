"""The same RefineNet on the TensorFlow, JAX and PyTorch backends.

Tiny presets are written here (under TensorFlow); `backend_checks.py` runs
once per backend in its own process (`KERAS_BACKEND=...`), plus once on JAX
with TensorFlow made unimportable, and writes what it measured. The tests
compare those results with each other and with numpy references computed
here. `fit`, saving and exports on TensorFlow are tested in `tests/models`,
`tests/training` and `tests/export`; here TensorFlow gives the reference
logits and loss values.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_refinenet import tiny_refinenet
from keras_refinenet.data.synthetic import (
    SYNTHETIC_CLASS_NAMES,
    make_synthetic_arrays,
)
from keras_refinenet.models.encoders import resnet_backbone
from keras_refinenet.models.refinenet import RefineNet
from tests.numpy_reference import per_class_iou, resize_bilinear

BACKENDS = ("tensorflow", "jax", "torch")
OTHER_BACKENDS = ("jax", "torch")
WITHOUT_TENSORFLOW = "jax_without_tensorflow"
CHECKS = pathlib.Path(__file__).with_name("backend_checks.py")
REPO_ROOT = pathlib.Path(__file__).parents[2]
RUN_TIMEOUT_S = 600
LOGIT_TOLERANCE = 1e-4
# Same weights, same arithmetic up to float32 round-off.
ROUND_OFF = 1e-5
NUM_CLASSES = len(SYNTHETIC_CLASS_NAMES)
IMAGE_SHAPE = (2, 65, 97, 3)
TINY_ENCODER = {"filters": (8, 8, 16, 16), "blocks": (1, 1, 1, 1)}
TINY_DECODER = {"top_filters": 16, "decoder_filters": 8}
# The MatConvNet release layout: MATLAB bicubic everywhere, a 0.8 input
# scale with uint8 rounding, the log-probability output upsampling.
MATCONVNET_LAYOUT = {
    "interpolation": "matlab_bicubic",
    "scale_mode": "uniform_crop",
    "input_scales": [0.8],
    "round_scaled_images": True,
    "pixel_offset": 128.0,
    "output_interpolation": "matlab_bicubic",
    "image_scale": 1.0,
    "image_mean": [128.0, 128.0, 128.0],
    "image_std": [1.0, 1.0, 1.0],
}
TINY_MODELS = ("keras_cv", "keras_hub", "matconvnet")
IGNORE = 255


def _tiny_models():
    keras.utils.set_random_seed(7)
    matconvnet = RefineNet(
        resnet_backbone(None, library="matconvnet", **TINY_ENCODER),
        num_classes=NUM_CLASSES,
        **TINY_DECODER,
        **MATCONVNET_LAYOUT,
    )
    return {
        "keras_cv": tiny_refinenet(num_classes=NUM_CLASSES),
        "keras_hub": tiny_refinenet(
            num_classes=NUM_CLASSES, library="keras_hub"
        ),
        "matconvnet": matconvnet,
    }


def _training_arrays():
    images, masks = make_synthetic_arrays(2, image_size=64, seed=3)
    masks = masks.astype("int32")
    masks[:, :4] = IGNORE
    rng = np.random.default_rng(5)
    logits = rng.normal(0.0, 2.0, (2, 9, 13, NUM_CLASSES)).astype("float32")
    loss_labels = rng.integers(0, NUM_CLASSES, (2, 33, 49)).astype("int32")
    loss_labels[:, :3] = IGNORE
    return {
        "images": images.astype("float32"),
        "labels": masks,
        "logits": logits,
        "loss_labels": loss_labels,
    }


def _environment(run):
    environment = dict(os.environ)
    environment["KERAS_BACKEND"] = "jax" if run == WITHOUT_TENSORFLOW else run
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # Four processes share the CPUs.
    environment["OMP_NUM_THREADS"] = "1"
    if run == "jax":
        # float64 for the MATLAB bicubic matrices, as TF and torch compute
        # them (without it the MatConvNet layout differs by ~1e-2).
        environment["JAX_ENABLE_X64"] = "1"
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), environment.get("PYTHONPATH", "")]
    )
    return environment


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`{run: (results, out_dir)}` for every backend and the TF-less run,
    and the expected values computed here."""
    presets = tmp_path_factory.mktemp("presets")
    images = (
        np.random.default_rng(0).integers(0, 256, IMAGE_SHAPE).astype("float32")
    )
    np.save(presets / "images.npy", images)
    arrays = _training_arrays()
    np.savez(presets / "training.npz", **arrays)
    expected = {}
    for name, model in _tiny_models().items():
        model.save_to_preset(presets / name)
        expected[name] = model.predict(images, verbose=0)
    # The logits that `evaluate` scores before training.
    expected["evaluation_logits"] = RefineNet.from_preset(
        presets / "keras_cv"
    ).predict(arrays["images"], verbose=0)

    commands = {
        backend: [sys.executable, str(CHECKS), str(presets), None]
        + [",".join(TINY_MODELS)]
        for backend in BACKENDS
    }
    commands[WITHOUT_TENSORFLOW] = [
        sys.executable,
        str(CHECKS),
        str(presets),
        None,
        "--without-tensorflow",
    ]
    processes = {}
    for run, command in commands.items():
        out_dir = tmp_path_factory.mktemp(run)
        command[3] = str(out_dir)
        processes[run] = (
            subprocess.Popen(
                command,
                env=_environment(run),
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
            out_dir,
        )
    results = {}
    for run, (process, out_dir) in processes.items():
        # A failed run fails its tests; the fixture itself never raises (a
        # module fixture that raises would run again for every test).
        try:
            output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            output = f"timed out after {RUN_TIMEOUT_S} s"
        results_file = out_dir / "results.json"
        if results_file.exists():
            results[run] = (json.loads(results_file.read_text()), out_dir)
        else:
            results[run] = ({"failure": output[-5000:]}, out_dir)
    results["expected"] = (expected, presets)
    return results


def _result(runs, run):
    results, out_dir = runs[run]
    assert "failure" not in results, results["failure"]
    return results, out_dir


@pytest.mark.parametrize("run", [*BACKENDS, WITHOUT_TENSORFLOW])
def test_every_check_ran(runs, run):
    results, _ = _result(runs, run)
    expected_backend = "jax" if run == WITHOUT_TENSORFLOW else run
    assert results["backend"] == expected_backend


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_import_keras_refinenet_imports_no_framework(runs, backend):
    results, _ = runs[backend]
    assert results["tf_after_import"] is False
    assert results["keras_after_import"] is False
    assert results["tf_after_layers_losses_metrics"] is False


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_tensorflow_comes_only_through_keras_hub(runs, backend):
    """keras-hub 0.32 imports TensorFlow whenever it is installed."""
    results, _ = runs[backend]
    assert results["tf_after_model_import"] is True
    assert results["tf_importer"] == "keras_hub"


def test_jax_runs_without_tensorflow(runs):
    results, _ = _result(runs, WITHOUT_TENSORFLOW)
    assert results["tf_imported"] is False
    assert np.isfinite(results["fit_loss"]).all()
    assert results["class_ids_shape"] == [64, 64]


@pytest.mark.parametrize("name", TINY_MODELS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_same_weights_same_logits(runs, backend, name):
    _, out_dir = _result(runs, backend)
    expected, _ = runs["expected"]
    logits = np.load(out_dir / f"logits_{name}.npy")
    assert logits.shape == expected[name].shape
    difference = np.abs(logits - expected[name]).max()
    assert difference < LOGIT_TOLERANCE, (backend, name, difference)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_one_fit_epoch_lowers_the_loss(runs, backend):
    results, _ = _result(runs, backend)
    assert len(results["fit_loss"]) == 1
    before = results["evaluate_before"]["loss"]
    after = results["evaluate_after"]["loss"]
    assert after < before, (before, after)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_save_and_load_keep_the_logits(runs, backend):
    _, out_dir = _result(runs, backend)
    trained = np.load(out_dir / "trained_logits.npy")
    for copy in ("reloaded_logits.npy", "preset_logits.npy"):
        np.testing.assert_allclose(
            np.load(out_dir / copy), trained, atol=ROUND_OFF, err_msg=copy
        )


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_predict_segmentation_is_the_argmax(runs, backend):
    _, out_dir = _result(runs, backend)
    trained = np.load(out_dir / "trained_logits.npy")
    expected = trained[0].argmax(-1)
    class_ids = np.load(out_dir / "class_ids.npy")
    assert class_ids.shape == expected.shape
    assert (class_ids == expected).mean() > 0.999


def _numpy_cross_entropy(labels, logits):
    size = labels.shape[1:]
    upsampled = resize_bilinear(logits, size)
    shifted = upsampled - upsampled.max(-1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    valid = labels != IGNORE
    safe = np.where(valid, labels, 0)
    picked = np.take_along_axis(log_probabilities, safe[..., None], -1)
    return float(-(picked[..., 0] * valid).sum() / valid.sum())


@pytest.mark.parametrize("backend", BACKENDS)
def test_losses_agree_with_numpy_and_tensorflow(runs, backend):
    results, _ = _result(runs, backend)
    tensorflow, _ = _result(runs, "tensorflow")
    _, presets = runs["expected"]
    arrays = np.load(presets / "training.npz")
    reference = _numpy_cross_entropy(arrays["loss_labels"], arrays["logits"])
    assert results["losses"]["ce"] == pytest.approx(reference, rel=1e-5)
    for spec, value in results["losses"].items():
        assert np.isfinite(value), spec
        assert value == pytest.approx(
            tensorflow["losses"][spec], rel=1e-4, abs=1e-6
        ), spec


def _numpy_confusion(labels, class_ids):
    valid = labels != IGNORE
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(confusion, (labels[valid], class_ids[valid]), 1)
    return confusion


@pytest.mark.parametrize("backend", BACKENDS)
def test_mean_iou_skips_the_ignore_class(runs, backend):
    """keras.metrics.MeanIoU(ignore_class=...) broke on JAX once
    (keras-team/keras#19524); our MeanIoU subclasses it."""
    results, _ = _result(runs, backend)
    expected, presets = runs["expected"]
    arrays = np.load(presets / "training.npz")
    labels = arrays["loss_labels"]
    upsampled = resize_bilinear(arrays["logits"], labels.shape[1:])
    confusion = _numpy_confusion(labels, upsampled.argmax(-1))
    assert results["eager_confusion"] == confusion.tolist()
    iou = per_class_iou(upsampled.argmax(-1), labels, NUM_CLASSES)
    assert results["eager_mean_iou"] == pytest.approx(np.nanmean(iou))


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_compiled_mean_iou_skips_the_ignore_class(runs, backend):
    """`evaluate` (jit-compiled on JAX) of the untrained model."""
    results, _ = _result(runs, backend)
    expected, presets = runs["expected"]
    arrays = np.load(presets / "training.npz")
    model_ids = expected["evaluation_logits"].argmax(-1)
    iou = per_class_iou(model_ids, arrays["labels"], NUM_CLASSES)
    assert results["evaluate_before"]["mean_iou"] == pytest.approx(
        np.nanmean(iou), abs=1e-6
    )


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_tensorflow_only_features_say_so(runs, backend):
    results, _ = _result(runs, backend)
    errors = results["tf_only_errors"]
    assert set(errors) == {
        "saved_model",
        "onnx",
        "mirrored_strategy",
        "tfds_cityscapes",
    }
    for feature, error in errors.items():
        assert error["type"] == "BackendNotSupportedError", feature
        assert "needs the TensorFlow backend" in error["message"]
        assert f"KERAS_BACKEND is '{backend}'" in error["message"]
        assert "Received: " in error["message"]
