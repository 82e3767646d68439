"""TensorFlow's inference-only CPU settings and the `predict` start-up."""

import json
import os
import subprocess
import sys

import keras
import pytest

from keras_refinenet.cli import startup
from keras_refinenet.inference.process_settings import (
    INFERENCE_PROCESS_ENVIRONMENT,
    frozen_weights_assumed,
    use_inference_process_settings,
)

VARIABLES = tuple(INFERENCE_PROCESS_ENVIRONMENT)


def test_settings_keep_what_the_user_set():
    assert VARIABLES == (
        "TF_ENABLE_ONEDNN_OPTS",
        "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS",
        "TF_USE_ADVANCED_CPU_OPS",
    )
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0", "OTHER": "x"}
    assert use_inference_process_settings(environ) is True
    assert environ == {
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "1",
        "TF_USE_ADVANCED_CPU_OPS": "1",
        "OTHER": "x",
    }
    assert not use_inference_process_settings(
        {"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "false"}
    )
    assert frozen_weights_assumed({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": " 1 "})
    assert not frozen_weights_assumed({})


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["predict", "--preset", "p"], "predict"),
        (["--verbose", "--debug", "predict"], "predict"),
        (["train", "predict"], "train"),
        (["--verbose"], None),
    ],
)
def test_command_name(argv, expected):
    assert startup.command_name(argv) == expected


def test_only_predict_gets_the_settings(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for command in ("train", "evaluate", "export", "demo"):
        assert startup.inference_environment([command]) is False
        assert not any(name in os.environ for name in VARIABLES)
    assert startup.inference_environment(["--verbose", "predict"]) is True
    assert {name: os.environ[name] for name in VARIABLES} == (
        INFERENCE_PROCESS_ENVIRONMENT
    )


def _child_environment():
    return {
        key: value for key, value in os.environ.items() if key not in VARIABLES
    }


@pytest.mark.parametrize("command", ["predict", "train"])
def test_cli_start_up_sets_them_before_the_framework(command):
    script = (
        f"import sys; sys.argv = ['keras-refinenet', {command!r}]\n"
        "import os, json, keras_refinenet\n"
        "print(json.dumps({'tensorflow': 'tensorflow' in sys.modules, "
        f"**{{k: os.environ.get(k) for k in {VARIABLES!r}}}}}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=_child_environment(),
        check=True,
    )
    state = json.loads(completed.stdout.strip().splitlines()[-1])
    assert state.pop("tensorflow") is False
    if command == "predict":
        assert state == INFERENCE_PROCESS_ENVIRONMENT
    else:
        assert state == dict.fromkeys(VARIABLES)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow variables"
)
def test_logits_under_the_settings_match_a_plain_process():
    script = (
        "import json, keras, numpy as np\n"
        "from keras_refinenet import tiny_refinenet\n"
        "from keras_refinenet.inference.predict import predict_segmentation\n"
        "keras.utils.set_random_seed(3)\n"
        "model = tiny_refinenet(num_classes=3)\n"
        "images = np.random.default_rng(4).uniform(0, 255, (2, 40, 48, 3))\n"
        "images = images.astype('float32')\n"
        "for _ in range(2):\n"
        "    _, probabilities = predict_segmentation(\n"
        "        model, images, return_probabilities=True)\n"
        "print(json.dumps(np.asarray(probabilities).ravel().tolist()))\n"
    )
    outputs = []
    for settings in ({}, INFERENCE_PROCESS_ENVIRONMENT):
        completed = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env={**_child_environment(), **settings},
            check=True,
        )
        outputs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    plain, tuned = outputs
    assert len(plain) == len(tuned) == 2 * 40 * 48 * 3
    assert max(abs(a - b) for a, b in zip(plain, tuned)) < 1e-5
