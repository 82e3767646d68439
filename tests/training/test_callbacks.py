import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_refinenet.training.callbacks import (
    BestCheckpoint,
    NaNLossError,
    StopOnNaNLoss,
    training_callbacks,
)
from keras_refinenet.training.losses import SparseCategoricalCrossentropyIgnore

RESUME_SCRIPT = pathlib.Path(__file__).with_name("resumable_training.py")
EPOCHS = 4
HANG_AT_EPOCH = 2
WAIT_SECONDS = 240


def _toy_model():
    model = keras.Sequential(
        [keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1)]
    )
    model.compile(optimizer="sgd", loss=SparseCategoricalCrossentropyIgnore())
    return model


def _read_events(path):
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_backup(tmp_path):
    model = _toy_model()
    images = np.ones((8, 4, 4, 3), "float32")
    images[4:] = np.nan  # the second epoch's batches
    masks = np.zeros((8, 4, 4), "int32")
    callbacks = training_callbacks(tmp_path, validation=False)
    with pytest.raises(NaNLossError, match="epoch 2, batch 1") as error:
        model.fit(
            images,
            masks,
            batch_size=2,
            steps_per_epoch=2,
            epochs=3,
            shuffle=False,
            callbacks=callbacks,
            verbose=0,
        )
    assert "Lower the learning rate" in str(error.value)
    backup = tmp_path / "backup" / "chief"
    assert str(backup) in str(error.value)
    metadata = json.loads((backup / "training_metadata.json").read_text())
    assert metadata["epoch"] == 1
    restored = _toy_model()
    restored.load_weights(backup / "latest.weights.h5")
    assert all(np.isfinite(w).all() for w in restored.get_weights())


def test_finite_losses_pass():
    callback = StopOnNaNLoss()
    callback.on_train_batch_end(0, {"loss": 1.5})
    callback.on_train_batch_end(1, {})


def test_best_checkpoint_survives_a_restart(tmp_path):
    path = tmp_path / "best.weights.h5"
    model = _toy_model()

    def run_epochs(values, start_epoch):
        checkpoint = BestCheckpoint(str(path))
        checkpoint.set_model(model)
        checkpoint.on_train_begin()
        saved = []
        for offset, value in enumerate(values):
            before = path.stat().st_mtime_ns if path.exists() else None
            time.sleep(0.01)
            logs = {"val_mean_iou": value}
            checkpoint.on_epoch_end(start_epoch + offset, logs)
            after = path.stat().st_mtime_ns if path.exists() else None
            saved.append(after != before)
        return saved

    assert run_epochs([0.5, 0.4], 0) == [True, False]
    state = json.loads(path.with_name(path.name + ".best.json").read_text())
    assert state == {"monitor": "val_mean_iou", "best": 0.5, "epoch": 1}
    # A new run (after a restart) still compares with 0.5.
    assert run_epochs([0.45, 0.6], 2) == [False, True]
    state = json.loads(path.with_name(path.name + ".best.json").read_text())
    assert state["best"] == 0.6 and state["epoch"] == 4


def test_only_the_chief_writes_to_the_output(tmp_path):
    callbacks = training_callbacks(
        tmp_path, chief=False, worker_name="worker_1", tensorboard=False
    )
    best = next(c for c in callbacks if isinstance(c, BestCheckpoint))
    assert not pathlib.Path(best.filepath).is_relative_to(tmp_path)
    backup = next(
        c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)
    )
    assert pathlib.Path(backup.backup_dir) == tmp_path / "backup" / "worker_1"


def _wait_for(events_path, predicate, process):
    deadline = time.time() + WAIT_SECONDS
    while time.time() < deadline:
        if any(predicate(event) for event in _read_events(events_path)):
            return
        if process.poll() is not None:
            pytest.fail(f"training exited early:\n{process.stdout.read()}")
        time.sleep(0.2)
    process.kill()
    pytest.fail("timed out waiting for the training process")


def test_sigkill_then_resume_keeps_completed_epochs(tmp_path):
    events_path = tmp_path / "events.jsonl"
    command = [sys.executable, str(RESUME_SCRIPT), str(tmp_path), str(EPOCHS)]
    process = subprocess.Popen(
        command + [str(HANG_AT_EPOCH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_for(events_path, lambda e: e["event"] == "hang", process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    killed_events = _read_events(events_path)
    completed = [e for e in killed_events if e["event"] == "epoch_end"]
    assert [e["epoch"] for e in completed] == [0, 1]

    resumed = subprocess.run(
        command, capture_output=True, text=True, timeout=WAIT_SECONDS
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_events = _read_events(events_path)[len(killed_events) :]
    begin = resumed_events[0]
    assert begin["event"] == "begin"
    assert begin["initial_epoch"] == HANG_AT_EPOCH
    assert begin["checksum"] == pytest.approx(completed[-1]["checksum"])
    assert begin["iterations"] == 2 * 4  # optimizer state restored too
    epochs_run = [
        e["epoch"] for e in resumed_events if e["event"] == "epoch_end"
    ]
    assert epochs_run == [2, 3]
    assert resumed_events[-1]["event"] == "done"
    assert not (tmp_path / "backup" / "chief").exists()


def test_tensorboard_logs_go_to_the_chief_output(tmp_path, monkeypatch):
    from keras_refinenet.training import callbacks as callbacks_module

    monkeypatch.setattr(callbacks_module, "tensorboard_available", lambda: True)
    chief = training_callbacks(tmp_path)
    board = next(c for c in chief if isinstance(c, keras.callbacks.TensorBoard))
    assert pathlib.Path(board.log_dir) == tmp_path / "logs"
    worker = training_callbacks(tmp_path, chief=False, worker_name="worker_1")
    board = next(
        c for c in worker if isinstance(c, keras.callbacks.TensorBoard)
    )
    assert not pathlib.Path(board.log_dir).is_relative_to(tmp_path)
    monkeypatch.setattr(
        callbacks_module, "tensorboard_available", lambda: False
    )
    names = [type(c).__name__ for c in training_callbacks(tmp_path)]
    assert "TensorBoard" not in names
