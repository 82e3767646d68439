"""`run_training`: one training run, as `keras-refinenet train` does it.

`run_training(TrainConfig(...))` picks the `tf.distribute` strategy and
the precision, loads the dataset (`keras_refinenet.data.load_dataset`),
builds and compiles the model in the strategy scope, fits it with
resumable backups, and writes the trained model as a preset directory.
The global dtype policy and the Keras multi-worker fixes are in force only
during the run.
"""

import dataclasses
import json
import math
import pathlib
import sys
import time

from keras_refinenet.data.augment import DEFAULT_SCALE_RANGE
from keras_refinenet.data.datasets import (
    DATASET_CLASS_NAMES,
    DEFAULT_SYNTHETIC_IMAGE_SIZE,
    SYNTHETIC_SIZES,
    TRAIN_SPLIT,
    VAL_SPLIT,
    class_names_for,
)
from keras_refinenet.training import distribute
from keras_refinenet.training.defaults import AUTO, DEFAULT_GLOBAL_CLIPNORM
from keras_refinenet.training.losses import training_loss
from keras_refinenet.training.precision import precision_policy

PRESET_DIR_NAME = "preset"
HISTORY_FILE = "history.json"
SUMMARY_FILE = "training_summary.json"
EXIT_NAN_LOSS = 3
# Command-line spelling -> `TrainConfig.jit_compile`.
JIT_COMPILE_OPTIONS = {AUTO: AUTO, "on": True, "off": False}
LOG_PREFIX = "[keras-refinenet]"


def log(message):
    """Prints one progress line (flushed, so pipes see it at once).

    Example:

    >>> log("epoch 1 done")
    [keras-refinenet] epoch 1 done
    """
    print(f"{LOG_PREFIX} {message}", flush=True)


@dataclasses.dataclass
class TrainConfig:
    """Everything `keras-refinenet train` needs.

    Args:
        preset: built-in preset name or preset directory.
        output: output folder (preset, logs, checkpoints, backups).
        dataset: one of `keras_refinenet.data.DATASET_NAMES`.
        num_classes: number of classes; `None` uses the dataset's (or, for
            a folder dataset, the preset's).
        data_dir: dataset folder (folder dataset) or tfds data directory
            (Cityscapes).
        manual_dir: folder with the Cityscapes zips.
        epochs: number of epochs.
        steps_per_epoch: steps per epoch; `None` for one pass over the
            training set.
        batch_size: global batch size (over all replicas).
        crop_size: `(height, width)` of the training crops.
        strategy: one of `distribute.STRATEGY_NAMES`.
        tpu: TPU name or address for `strategy="tpu"`.
        mixed_precision: one of `precision.PRECISION_POLICIES`, `None`
            for float32.
        optimizer: `"sgd"` or `"adamw"`.
        learning_rate: base learning rate, `None` for the default.
        weight_decay: decoupled weight decay, `"auto"` or `None`.
        decoder_lr_multiplier: decoder learning-rate factor.
        warmup_steps: linear warm-up steps.
        global_clipnorm: global gradient-norm clipping, `None` for none.
            The default (1.0) keeps randomly initialised decoders from
            diverging in the first steps.
        scale_range: `(min, max)` random scale of training images.
        validation_steps: validation batches per epoch, `None` for all,
            0 to skip validation.
        load_weights: load the preset's weights.
        seed: random seed of the data pipeline and initialization.
        jit_compile: `"auto"`, `True` or `False` (XLA).
        synthetic_train_images: training images of the synthetic dataset.
        synthetic_val_images: validation images of the synthetic dataset.
        synthetic_image_size: image size of the synthetic dataset.
        backup_every_steps: also back up every N steps.
        tensorboard: write TensorBoard logs.
        verbose: Keras progress verbosity; `None` picks 1 on a terminal,
            else 2.
        preset_metadata: extra metadata of the written preset
            (`class_names`, `palette`, `description`, ...).
        loss: a loss, a `losses.get_loss` string (`"ce+dice"`, ...) or
            `"auto"`.
        class_weights: `None`, a list, or `"auto"`/`"median"`/`"inverse"`
            (computed from the training masks, written to
            `class_weights.json`).
        ohem_thresh: threshold of an `ohem` loss term.
        ohem_min_kept: `min_kept` of an `ohem` loss term.
    """

    preset: str = "refinenet50"
    output: str = "refinenet_run"
    dataset: str = "synthetic"
    num_classes: int | None = None
    data_dir: str | None = None
    manual_dir: str | None = None
    epochs: int = 1
    steps_per_epoch: int | None = None
    batch_size: int = 8
    crop_size: tuple = (512, 512)
    strategy: str = "default"
    tpu: str | None = None
    mixed_precision: str | None = None
    optimizer: str = "sgd"
    learning_rate: float | None = None
    weight_decay: object = AUTO
    decoder_lr_multiplier: float = 1.0
    warmup_steps: int = 0
    global_clipnorm: float | None = DEFAULT_GLOBAL_CLIPNORM
    scale_range: tuple | None = DEFAULT_SCALE_RANGE
    validation_steps: int | None = None
    load_weights: bool = True
    seed: int = 0
    jit_compile: object = AUTO
    synthetic_train_images: int = SYNTHETIC_SIZES[TRAIN_SPLIT]
    synthetic_val_images: int = SYNTHETIC_SIZES[VAL_SPLIT]
    synthetic_image_size: int = DEFAULT_SYNTHETIC_IMAGE_SIZE
    backup_every_steps: int | None = None
    tensorboard: bool = True
    verbose: int | None = None
    preset_metadata: dict | None = None
    loss: object = AUTO
    class_weights: object = None
    ohem_thresh: float | None = None
    ohem_min_kept: int | None = None


def _preset_metadata(preset):
    from keras_refinenet.models.preset_io import preset_metadata

    if preset is None:
        return {}
    try:
        return preset_metadata(preset) or {}
    except ValueError:
        return {}


def _verbosity(verbose):
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2


def _json_number(value):
    value = float(value)
    return None if math.isnan(value) else value


def _history_for_json(history):
    return {
        key: [_json_number(value) for value in values]
        for key, values in history.items()
    }


def _remove_empty_dir(path):
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()


def _load_splits(config, num_classes, validate):
    """The training set and, if `validate`, the validation set."""
    from keras_refinenet.data.datasets import load_dataset

    options = {
        "data_dir": config.data_dir,
        "manual_dir": config.manual_dir,
        "num_classes": num_classes,
        "synthetic_image_size": config.synthetic_image_size,
    }
    train = load_dataset(
        config.dataset,
        TRAIN_SPLIT,
        synthetic_images=config.synthetic_train_images,
        **options,
    )
    val = None
    if validate:
        val = load_dataset(
            config.dataset,
            VAL_SPLIT,
            synthetic_images=config.synthetic_val_images,
            **options,
        )
    return train, val


def _steps_per_epoch(config, train_size, global_batch):
    if config.steps_per_epoch is not None:
        return config.steps_per_epoch
    if not train_size:
        raise ValueError(
            "The training set size is unknown: pass `--steps-per-epoch`. "
            "Received: steps_per_epoch=None"
        )
    return max(train_size // global_batch, 1)


def _build_model(config, num_classes, policy, build_model):
    if build_model is not None:
        return build_model(num_classes)
    from keras_refinenet.models.refinenet import RefineNet

    overrides = {}
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if config.mixed_precision:
        overrides["dtype"] = policy
    return RefineNet.from_preset(
        config.preset, load_weights=config.load_weights, **overrides
    )


def _trained_preset_metadata(config, num_classes, class_names, training):
    metadata = dict(_preset_metadata(config.preset))
    metadata.update(
        {
            "dataset": config.dataset,
            "class_names": list(
                class_names_for(
                    num_classes, class_names, metadata.get("class_names")
                )
            ),
            "weights": None,
            "training": training,
        }
    )
    metadata.pop("weights_on_disk", None)
    if metadata.get("palette") and len(metadata["palette"]) != num_classes:
        metadata["palette"] = None
    metadata.update(config.preset_metadata or {})
    return metadata


def run_training(config, build_model=None):
    """Trains a RefineNet as described by a `TrainConfig`.

    Writes, in `config.output` (the chief's only, in multi-worker runs):
    `preset/` (the trained model), `checkpoints/best.weights.h5` (best
    epoch by validation mean IoU), `logs/` (TensorBoard),
    `history.json`, `training_summary.json`, and `backup/` while a run is
    unfinished (rerun the same command to resume after an interruption).

    The global Keras dtype policy is `config.mixed_precision` during the
    run and restored afterwards; a multi-worker run fits inside
    `distribute.keras_multi_worker_fixes`.

    Args:
        config: a `TrainConfig`.
        build_model: optional callable `num_classes -> RefineNet` used
            instead of `RefineNet.from_preset(config.preset, ...)`; it is
            called in the strategy scope.

    Returns:
        A dict: `history`, `preset_dir` (or `None` on non-chief workers),
        `chief`, `global_batch_size`, `per_replica_batch_size`,
        `replicas`, `seconds`.

    Raises:
        NaNLossError: if the loss became NaN or infinite.
    """
    if config.dataset not in DATASET_CLASS_NAMES:
        raise ValueError(
            f"`dataset` must be one of {tuple(DATASET_CLASS_NAMES)}. "
            f"Received: dataset={config.dataset!r}"
        )
    strategy = distribute.get_strategy(config.strategy, tpu=config.tpu)
    with precision_policy(config.mixed_precision) as policy:
        with distribute.keras_multi_worker_fixes(strategy):
            return _run(config, strategy, policy, build_model)


def _run(config, strategy, policy, build_model):
    import keras

    from keras_refinenet.data.pipeline import (
        evaluation_pipeline,
        training_pipeline,
    )
    from keras_refinenet.training.callbacks import (
        BACKUP_DIR_NAME,
        training_callbacks,
    )

    started = time.time()
    keras.utils.set_random_seed(config.seed)
    chief = distribute.is_chief()
    worker = distribute.task_label()
    per_replica_batch, global_batch = distribute.replica_batch_sizes(
        strategy, config.batch_size
    )
    log(
        f"strategy={config.strategy} ({type(strategy).__name__}), "
        f"replicas={strategy.num_replicas_in_sync}, "
        f"per-replica batch={per_replica_batch}, global batch={global_batch}, "
        f"precision={policy}, task={worker}, chief={chief}"
    )

    class_names = DATASET_CLASS_NAMES[config.dataset]
    num_classes = config.num_classes or (
        len(class_names) if class_names else None
    )
    with strategy.scope():
        model = _build_model(config, num_classes, policy, build_model)
    if num_classes is None:
        num_classes = model.num_classes
    validate = config.validation_steps != 0
    train, val = _load_splits(config, num_classes, validate)
    steps_per_epoch = _steps_per_epoch(config, train.size, global_batch)
    synthetic = config.dataset == "synthetic"
    train_batches = training_pipeline(
        train.examples.cache() if synthetic else train.examples,
        batch_size=global_batch,
        crop_size=tuple(config.crop_size),
        seed=config.seed,
        scale_range=config.scale_range,
        repeat=True,
    )
    val_batches = None
    if validate:
        val_batch = global_batch if synthetic else strategy.num_replicas_in_sync
        val_batches = evaluation_pipeline(val.examples, batch_size=val_batch)
    log(
        f"dataset={config.dataset}, classes={num_classes}, "
        f"train images={train.size}, epochs={config.epochs}, "
        f"steps per epoch={steps_per_epoch}, crop={tuple(config.crop_size)}"
    )
    loss = training_loss(
        config.loss,
        class_weights=config.class_weights,
        ohem_thresh=config.ohem_thresh,
        ohem_min_kept=config.ohem_min_kept,
        num_classes=num_classes,
        train_examples=train.examples,
        output_dir=config.output if chief else None,
    )
    with strategy.scope():
        model.compile(
            loss=loss,
            optimizer_name=config.optimizer,
            learning_rate=config.learning_rate,
            decay_steps=config.epochs * steps_per_epoch,
            warmup_steps=config.warmup_steps,
            weight_decay=config.weight_decay,
            decoder_lr_multiplier=config.decoder_lr_multiplier,
            global_clipnorm=config.global_clipnorm,
            jit_compile=config.jit_compile,
        )

    output = pathlib.Path(config.output)
    if chief:
        output.mkdir(parents=True, exist_ok=True)
    callbacks = training_callbacks(
        output,
        chief=chief,
        worker_name=worker,
        validation=validate,
        tensorboard=config.tensorboard,
        backup_every_steps=config.backup_every_steps,
    )
    history = model.fit(
        train_batches,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=val_batches,
        validation_steps=config.validation_steps,
        callbacks=callbacks,
        shuffle=False,
        verbose=_verbosity(config.verbose),
    )
    seconds = time.time() - started
    _remove_empty_dir(output / BACKUP_DIR_NAME)
    result = {
        "history": _history_for_json(history.history),
        "preset_dir": None,
        "chief": chief,
        "global_batch_size": global_batch,
        "per_replica_batch_size": per_replica_batch,
        "replicas": strategy.num_replicas_in_sync,
        "seconds": seconds,
    }
    if not chief:
        return result
    metadata = _trained_preset_metadata(
        config,
        num_classes,
        train.class_names,
        training={
            "epochs": config.epochs,
            "steps_per_epoch": steps_per_epoch,
            "global_batch_size": global_batch,
            "crop_size": list(config.crop_size),
            "precision": policy,
            "strategy": config.strategy,
        },
    )
    preset_dir = model.save_to_preset(output / PRESET_DIR_NAME, metadata)
    result["preset_dir"] = str(preset_dir)
    (output / HISTORY_FILE).write_text(json.dumps(result["history"], indent=2))
    summary = {k: v for k, v in result.items() if k != "history"}
    (output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    log(f"wrote the trained preset to {preset_dir} ({seconds:.0f} s)")
    return result
