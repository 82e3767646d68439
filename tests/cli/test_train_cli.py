import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from keras_refinenet.cli import train as train_cli
from keras_refinenet.cli.main import build_parser, main
from keras_refinenet.data.synthetic import SYNTHETIC_CLASS_NAMES
from keras_refinenet.models.demo import build_demo_model
from keras_refinenet.models.refinenet import RefineNet
from keras_refinenet.training import trainer
from keras_refinenet.training.callbacks import NaNLossError

NUM_CLASSES = len(SYNTHETIC_CLASS_NAMES)


def _train_args(preset, output, *extra):
    return [
        "train",
        "--preset",
        str(preset),
        "--dataset",
        "synthetic",
        "--synthetic-train-images",
        "8",
        "--synthetic-val-images",
        "4",
        "--synthetic-image-size",
        "32",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--batch-size",
        "4",
        "--crop-size",
        "32",
        "32",
        "--output",
        str(output),
        "--verbose",
        "2",
        *extra,
    ]


def test_arguments_become_a_config(tmp_path):
    args = build_parser().parse_args(
        _train_args("refinenet50", tmp_path, "--jit-compile", "off")
        + ["--strategy", "mirrored", "--mixed-precision", "mixed_bfloat16"]
    )
    config = train_cli.config_from_args(args)
    assert config.crop_size == (32, 32)
    assert config.batch_size == 4 and config.epochs == 1
    assert config.strategy == "mirrored"
    assert config.mixed_precision == "mixed_bfloat16"
    assert config.jit_compile is False
    assert config.weight_decay == "auto" and config.load_weights
    assert config.global_clipnorm == 1.0
    args = build_parser().parse_args(
        _train_args("p", tmp_path, "--clipnorm", "0")
    )
    assert train_cli.config_from_args(args).global_clipnorm is None


def test_unknown_strategy_is_rejected(tmp_path):
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            _train_args("p", tmp_path) + ["--strategy", "horovod"]
        )


def test_loss_options_are_checked_before_training(
    tmp_path, monkeypatch, capsys
):
    def must_not_run(config):
        raise AssertionError("training started")

    monkeypatch.setattr(trainer, "run_training", must_not_run)
    bad_combination = _train_args(
        "p", tmp_path, "--loss", "dice", "--ohem-thresh", "0.5"
    )
    assert main(bad_combination) == 2
    assert "need an 'ohem' loss term" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(_train_args("p", tmp_path, "--loss", "mse"))
    assert "Received: loss='mse'" in capsys.readouterr().err


def test_nan_loss_gives_an_exit_code(tmp_path, monkeypatch, capsys):
    def explode(config):
        raise NaNLossError("Training stopped: the loss became nan")

    monkeypatch.setattr(trainer, "run_training", explode)
    code = main(_train_args("p", tmp_path))
    assert code == trainer.EXIT_NAN_LOSS
    assert "the loss became nan" in capsys.readouterr().err


def test_train_writes_a_preset_and_logs(tmp_path, capsys):
    preset = build_demo_model(NUM_CLASSES).save_to_preset(tmp_path / "start")
    output = tmp_path / "run"
    code = main(_train_args(preset, output, "--optimizer", "adamw"))
    assert code == 0
    printed = capsys.readouterr().out
    assert "per-replica batch=4, global batch=4" in printed
    metadata = json.loads((output / "preset" / "metadata.json").read_text())
    assert metadata["class_names"] == list(SYNTHETIC_CLASS_NAMES)
    assert metadata["training"]["global_batch_size"] == 4
    history = json.loads((output / "history.json").read_text())
    assert len(history["loss"]) == 1 and "val_mean_iou" in history
    assert (output / "checkpoints" / "best.weights.h5").is_file()
    assert not (output / "backup").exists()
    trained = RefineNet.from_preset(output / "preset")
    assert trained.num_classes == NUM_CLASSES
    logits = trained.predict(np.zeros((1, 32, 32, 3)), verbose=0)
    assert logits.shape == (1, 32, 32, NUM_CLASSES)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.large
def test_multi_worker_train_on_two_local_workers(tmp_path):
    preset = build_demo_model(NUM_CLASSES).save_to_preset(tmp_path / "start")
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        args = _train_args(preset, tmp_path / f"out{index}")
        args += ["--strategy", "multi-worker"]
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "keras_refinenet.cli.main", *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    assert "replicas=2, per-replica batch=2, global batch=4" in outputs[0]
    assert (tmp_path / "out0" / "preset" / "model.weights.h5").is_file()
    worker_files = [p for p in (tmp_path / "out1").rglob("*") if p.is_file()]
    assert worker_files == []
