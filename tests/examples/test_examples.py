"""Every script in examples/ runs end to end in its --smoke mode."""

import concurrent.futures
import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parents[2] / "examples"
TIMEOUT_SECONDS = 300
# Exports to every runtime (about 4 minutes alone on 2 cores): only with
# `-m large`; tests/export covers each format in the default run.
LARGE_SMOKE_RUNS = ("export_every_format.py",)
LARGE_TIMEOUT_SECONDS = 900
# Smoke runs wait on TensorFlow start-up and tracing more than on the CPU;
# a few at a time keep the whole module to about two minutes.
CONCURRENT_RUNS = 3
# Script -> (extra arguments, lines its output must contain, output files).
EXPECTED = {
    "train_cityscapes.py": (
        [],
        ["wrote the trained preset", "mean IoU", "road"],
        [],
    ),
    "finetune_folder_dataset.py": (
        [],
        ["classifier rebuilt for 4 classes", "triangle", "mean IoU"],
        [],
    ),
    "convert_official_weights.py": (
        [],
        ["Largest relative logit difference Keras vs PyTorch", "Saved"],
        [],
    ),
    "predict_and_visualize.py": (
        ["--output", "{out}"],
        ["Wrote 2 predictions"],
        ["legend.png", "synthetic_0_overlay.png", "synthetic_1_ids.png"],
    ),
    "export_for_tf_serving.py": (
        ["--model-base", "{out}"],
        ["agreement with Keras 1.0000", "tensorflow/serving"],
        ["1/saved_model.pb"],
    ),
    "serving_client.py": (
        ["--output", "{out}"],
        ["Stand-in TensorFlow Serving", "the server refused it"],
        ["image_0_overlay.png", "image_1_overlay.png"],
    ),
    "export_every_format.py": (
        ["--output", "{out}"],
        ["exported and ran litert-int8", "| openvino |"],
        [
            "onnx/model.onnx",
            "litert_int8/model_int8.tflite",
            "openvino/model.xml",
        ],
    ),
    "multi_worker_train.py": (
        [],
        ["worker_0: done, chief=True", "worker_1: done, chief=False"],
        [],
    ),
}


def test_every_example_is_tested():
    scripts = {path.name for path in EXAMPLES_DIR.glob("*.py")}
    assert scripts == set(EXPECTED)


def _run(arguments, tmp_path, timeout=TIMEOUT_SECONDS):
    env = dict(os.environ, TMPDIR=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _smoke(script, folder, timeout=TIMEOUT_SECONDS):
    folder.mkdir()
    extra = [arg.format(out=folder / "out") for arg in EXPECTED[script][0]]
    return _run(
        [str(EXAMPLES_DIR / script), "--smoke", *extra], folder, timeout
    )


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Runs every example with --smoke; script -> (result, folder)."""
    root = tmp_path_factory.mktemp("examples")
    folders = {
        script: root / script.removesuffix(".py")
        for script in EXPECTED
        if script not in LARGE_SMOKE_RUNS
    }
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_RUNS) as pool:
        futures = {
            script: pool.submit(_smoke, script, folder)
            for script, folder in folders.items()
        }
        return {
            script: (future.result(), folders[script])
            for script, future in futures.items()
        }


def _check_smoke(script, result, folder):
    _, expected_lines, expected_files = EXPECTED[script]
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    for line in expected_lines:
        assert line in result.stdout, (line, result.stdout[-4000:])
    out = folder / "out"
    for name in expected_files:
        assert (out / name).is_file(), (name, sorted(out.rglob("*")))


@pytest.mark.parametrize(
    "script", sorted(set(EXPECTED) - set(LARGE_SMOKE_RUNS))
)
def test_example_smoke(script, smoke_runs):
    _check_smoke(script, *smoke_runs[script])


@pytest.mark.large
@pytest.mark.parametrize("script", LARGE_SMOKE_RUNS)
def test_large_example_smoke(script, tmp_path):
    folder = tmp_path / "run"
    result = _smoke(script, folder, LARGE_TIMEOUT_SECONDS)
    _check_smoke(script, result, folder)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_help(script, tmp_path):
    result = _run([str(EXAMPLES_DIR / script), "--help"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--smoke" in result.stdout


def test_missing_required_arguments_are_reported(tmp_path):
    result = _run([str(EXAMPLES_DIR / "predict_and_visualize.py")], tmp_path)
    assert result.returncode == 2
    assert "Received: preset=None" in result.stderr
