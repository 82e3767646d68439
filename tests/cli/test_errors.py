"""The command line as people use it: one `error:` line, exit code 2, no
framework start-up noise, a traceback only with `--debug` (subprocesses)."""

import os
import subprocess
import sys

import numpy as np
from PIL import Image

EXIT_USAGE = 2
NOISE_MARKERS = ("I0000", "absl::InitializeLog", "oneDNN", "cuda", "WARNING")


def run_cli(*args, cwd=None, timeout=600):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, "-m", "keras_refinenet.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def assert_one_error_line(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == EXIT_USAGE, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def _folder_dataset(root, mask_value=1, extra_image=False):
    for split in ("train", "val"):
        images = root / split / "images"
        masks = root / split / "masks"
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(images / "a.png")
        mask = np.zeros((16, 16), np.uint8)
        mask[0, 0] = mask_value
        Image.fromarray(mask).save(masks / "a.png")
        if extra_image:
            Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(
                images / "b.png"
            )
    return root


def _train_folder(data_dir, output, *extra):
    return (
        "train",
        "--preset",
        "refinenet50",
        "--no-weights",
        "--num-classes",
        "4",
        "--dataset",
        "folder",
        "--data-dir",
        data_dir,
        "--epochs",
        "1",
        "--batch-size",
        "1",
        "--crop-size",
        "16",
        "16",
        "--output",
        output,
        *extra,
    )


def test_missing_arguments_end_in_one_line():
    result = run_cli("train", "--preset", "refinenet50")
    assert_one_error_line(
        result, "keras-refinenet train", "arguments are required", "--output"
    )


def test_unknown_command_option():
    result = run_cli("--no-such-option")
    assert_one_error_line(result, "unrecognized arguments")


def test_mask_value_outside_classes_names_the_file(tmp_path):
    data = _folder_dataset(tmp_path / "data", mask_value=9)
    result = run_cli(*_train_folder(data, tmp_path / "out"))
    assert_one_error_line(
        result, "num_classes=4", "train/masks/a.png", "values [9]"
    )


def test_image_without_mask_names_the_stem(tmp_path):
    data = _folder_dataset(tmp_path / "data", extra_image=True)
    result = run_cli(*_train_folder(data, tmp_path / "out"))
    assert_one_error_line(result, "images without mask ['b']")


def test_debug_shows_the_traceback(tmp_path):
    data = _folder_dataset(tmp_path / "data", mask_value=9)
    result = run_cli(*_train_folder(data, tmp_path / "out"), "--debug")
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "values [9]" in result.stderr


def test_unknown_preset_is_one_line(tmp_path):
    result = run_cli(
        "train",
        "--preset",
        "no_such_preset",
        "--dataset",
        "synthetic",
        "--epochs",
        "1",
        "--batch-size",
        "1",
        "--crop-size",
        "16",
        "16",
        "--output",
        tmp_path / "out",
    )
    assert_one_error_line(result, "no_such_preset")


def test_smoke_demo_output_is_plain_text_without_noise(tmp_path):
    result = run_cli("demo", "--smoke", "--output", tmp_path / "demo")
    assert result.returncode == 0, result.stderr[-3000:]
    for text in (result.stdout, result.stderr):
        assert "\x1b[" not in text and "\b" not in text and "\r" not in text
    for marker in NOISE_MARKERS:
        assert marker not in result.stderr, result.stderr[-3000:]
    # Keras verbosity 2 off a terminal: one plain line per epoch.
    assert " - loss: " in result.stdout and "mean IoU" in result.stdout
    assert (tmp_path / "demo" / "examples" / "example_00.png").is_file()


def test_train_with_a_loss_string_and_auto_class_weights(tmp_path):
    import json

    from keras_refinenet.cli.main import main
    from keras_refinenet.models.demo import build_demo_model

    preset = build_demo_model(4).save_to_preset(tmp_path / "start")
    output = tmp_path / "run"
    code = main(
        [
            "train",
            "--preset",
            str(preset),
            "--dataset",
            "synthetic",
            "--synthetic-train-images",
            "4",
            "--synthetic-val-images",
            "2",
            "--synthetic-image-size",
            "32",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "2",
            "--crop-size",
            "32",
            "32",
            "--jit-compile",
            "off",
            "--no-tensorboard",
            "--verbose",
            "0",
            "--output",
            str(output),
            "--loss",
            "ohem+0.5*lovasz",
            "--ohem-thresh",
            "0.8",
            "--class-weights",
            "auto",
        ]
    )
    assert code == 0
    record = json.loads((output / "class_weights.json").read_text())
    assert record["method"] == "median" and len(record["class_weights"]) == 4
    history = json.loads((output / "history.json").read_text())
    assert np.isfinite(history["loss"]).all()
