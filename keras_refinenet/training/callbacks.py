"""Training callbacks: resumable backups, best checkpoint, NaN stop."""

import importlib.util
import json
import logging
import math
import pathlib
import tempfile

import keras

BACKUP_DIR_NAME = "backup"
CHECKPOINT_DIR_NAME = "checkpoints"
TENSORBOARD_DIR_NAME = "logs"
BEST_WEIGHTS_FILE = "best.weights.h5"
BEST_STATE_SUFFIX = ".best.json"
DEFAULT_MONITOR = "val_mean_iou"

logger = logging.getLogger(__name__)


def tensorboard_available():
    """Whether the `tensorboard` package (needed for summaries) exists."""
    return importlib.util.find_spec("tensorboard") is not None


class NaNLossError(RuntimeError):
    """Raised by `StopOnNaNLoss` when the training loss is not finite."""


class StopOnNaNLoss(keras.callbacks.Callback):
    """Stops training with a clear error when the loss becomes NaN or inf.

    The error is raised inside `fit`, so no later callback saves the broken
    weights: a `BackupAndRestore` backup still holds the last good epoch.

    Args:
        backup_dir: where the last good backup is, named in the message.

    Example:

    >>> callback = StopOnNaNLoss()
    >>> callback.on_epoch_begin(0)
    >>> try:
    ...     callback.on_train_batch_end(3, {"loss": float("nan")})
    ... except NaNLossError as error:
    ...     print(str(error)[:52])
    Training stopped: the loss became nan at epoch 1, ba
    """

    def __init__(self, backup_dir=None):
        super().__init__()
        self.backup_dir = backup_dir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if math.isfinite(loss):
            return
        message = (
            f"Training stopped: the loss became {loss} at epoch "
            f"{self.epoch + 1}, batch {batch + 1}. Lower the learning rate, "
            "or use float32 or mixed_bfloat16 instead of mixed_float16."
        )
        if self.backup_dir:
            message += (
                f" The backup of the last completed epoch is kept in "
                f"{self.backup_dir}."
            )
        logger.error(message)
        raise NaNLossError(message)


class BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keeps the weights of the best epoch by a validation metric.

    Unlike `keras.callbacks.ModelCheckpoint`, the best value so far is
    stored next to the weights (`<filepath>.best.json`), so a resumed run
    keeps comparing with the best epoch from before the interruption.

    Args:
        filepath: `.weights.h5` path of the best weights.
        monitor: metric to maximize (default `val_mean_iou`).
        mode: `"max"` or `"min"`.
        verbose: verbosity of `ModelCheckpoint`.

    Example:

    >>> checkpoint = BestCheckpoint("/tmp/best.weights.h5")
    >>> checkpoint.monitor
    'val_mean_iou'
    """

    def __init__(
        self, filepath, monitor=DEFAULT_MONITOR, mode="max", verbose=0
    ):
        super().__init__(
            filepath,
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
            verbose=verbose,
        )
        self.state_path = pathlib.Path(str(filepath) + BEST_STATE_SUFFIX)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.state_path.is_file():
            state = json.loads(self.state_path.read_text())
            if state.get("monitor") == self.monitor:
                self.best = state["best"]

    def on_epoch_end(self, epoch, logs=None):
        previous_best = self.best
        super().on_epoch_end(epoch, logs)
        if self.best != previous_best and self.best is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            self.state_path.write_text(
                json.dumps(
                    {
                        "monitor": self.monitor,
                        "best": float(self.best),
                        "epoch": epoch + 1,
                    }
                )
            )


def training_callbacks(
    output_dir,
    chief=True,
    worker_name="chief",
    validation=True,
    monitor=DEFAULT_MONITOR,
    tensorboard=True,
    backup_every_steps=None,
):
    """The callbacks of `keras-refinenet train`.

    Only the chief writes to `output_dir`: the best checkpoint and
    TensorBoard logs of the other workers go to a temporary folder. Every
    worker keeps its own backup (`output_dir/backup/<worker_name>`), so
    each one restores the same epoch after a restart.

    Args:
        output_dir: training output folder.
        chief: whether this process is the chief.
        worker_name: name of this worker's backup folder.
        validation: whether `fit` gets validation data (enables the best
            checkpoint).
        monitor: metric of the best checkpoint.
        tensorboard: write TensorBoard logs to `output_dir/logs` (skipped
            with a warning if the `tensorboard` package is missing).
        backup_every_steps: back up every N steps too, not only at the end
            of each epoch.

    Returns:
        A list of callbacks.

    Example:

    >>> callbacks = training_callbacks("/tmp/run", tensorboard=False)
    >>> [type(callback).__name__ for callback in callbacks]
    ['StopOnNaNLoss', 'BackupAndRestore', 'BestCheckpoint']
    """
    output_dir = pathlib.Path(output_dir)
    writable_dir = (
        output_dir
        if chief
        else pathlib.Path(tempfile.mkdtemp(prefix=f"{worker_name}_"))
    )
    backup_dir = output_dir / BACKUP_DIR_NAME / worker_name
    callbacks = [
        StopOnNaNLoss(backup_dir=str(backup_dir)),
        keras.callbacks.BackupAndRestore(
            str(backup_dir),
            save_freq=backup_every_steps or "epoch",
            double_checkpoint=True,
        ),
    ]
    if validation:
        callbacks.append(
            BestCheckpoint(
                str(writable_dir / CHECKPOINT_DIR_NAME / BEST_WEIGHTS_FILE),
                monitor=monitor,
            )
        )
    if tensorboard and not tensorboard_available():
        logger.warning(
            "TensorBoard logs are skipped: `pip install tensorboard` to "
            "write them."
        )
    elif tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=str(writable_dir / TENSORBOARD_DIR_NAME)
            )
        )
    return callbacks
