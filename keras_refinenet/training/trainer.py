"""Training and evaluation runs shared by the command-line tools.

`run_training(TrainConfig(...))` does what `keras-refinenet train` does:
picks the `tf.distribute` strategy and precision, loads the dataset, builds
and compiles the model in the strategy scope, fits it with resumable
backups, and writes the trained model as a preset directory.
"""

import dataclasses
import json
import math
import pathlib
import sys
import time

import numpy as np

from keras_refinenet.training import distribute

DATASET_NAMES = ("cityscapes", "folder", "synthetic")
PRECISION_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
PRESET_DIR_NAME = "preset"
HISTORY_FILE = "history.json"
SUMMARY_FILE = "training_summary.json"
FOLDER_IMAGE_DIR = "images"
FOLDER_MASK_DIR = "masks"
VOC_IMAGE_DIR = "JPEGImages"
TRAIN_SPLIT = "train"
VAL_SPLIT = "val"
SYNTHETIC_TRAIN_SEED = 1
SYNTHETIC_VAL_SEED = 2
EXIT_NAN_LOSS = 3
DEFAULT_CLIPNORM = 1.0
LOG_PREFIX = "[keras-refinenet]"


def log(message):
    """Prints one progress line (flushed, so pipes see it at once)."""
    print(f"{LOG_PREFIX} {message}", flush=True)


@dataclasses.dataclass
class TrainConfig:
    """Everything `keras-refinenet train` needs.

    Args:
        preset: built-in preset name or preset directory.
        output: output folder (preset, logs, checkpoints, backups).
        dataset: one of `DATASET_NAMES`.
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
        mixed_precision: one of `PRECISION_POLICIES`, `None` for float32.
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
    weight_decay: object = "auto"
    decoder_lr_multiplier: float = 1.0
    warmup_steps: int = 0
    global_clipnorm: float | None = DEFAULT_CLIPNORM
    scale_range: tuple | None = (0.5, 2.0)
    validation_steps: int | None = None
    load_weights: bool = True
    seed: int = 0
    jit_compile: object = "auto"
    synthetic_train_images: int = 512
    synthetic_val_images: int = 64
    synthetic_image_size: int = 64
    backup_every_steps: int | None = None
    tensorboard: bool = True
    verbose: int | None = None
    preset_metadata: dict | None = None


@dataclasses.dataclass
class DatasetSplits:
    """Training and validation `(image, mask)` datasets of one source."""

    train: object
    val: object
    num_classes: int | None
    class_names: tuple | None
    train_size: int | None


def _check_choice(argument, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{argument}` must be one of {choices}. "
            f"Received: {argument}={value!r}"
        )


def _dataset_size(dataset):
    import tensorflow as tf

    size = int(dataset.cardinality())
    if size in (tf.data.INFINITE_CARDINALITY, tf.data.UNKNOWN_CARDINALITY):
        return None
    return size


def _folder_splits(data_dir, num_classes, splits):
    from keras_refinenet.data import folder

    if num_classes is None:
        raise ValueError(
            "The folder dataset needs the number of classes: pass "
            "`--num-classes` or a preset with the right classes. "
            "Received: num_classes=None"
        )
    root = pathlib.Path(data_dir)
    if (root / VOC_IMAGE_DIR).is_dir():
        return [
            folder.load_voc_dataset(root, split=split, num_classes=num_classes)
            for split in splits
        ]
    datasets = []
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir():
            raise ValueError(
                f"The folder dataset needs {split_dir}/{FOLDER_IMAGE_DIR} and "
                f"{split_dir}/{FOLDER_MASK_DIR} (or a PASCAL VOC layout with "
                f"{VOC_IMAGE_DIR}/). Received: data_dir={str(data_dir)!r}"
            )
        datasets.append(
            folder.load_folder_dataset(
                split_dir / FOLDER_IMAGE_DIR,
                split_dir / FOLDER_MASK_DIR,
                num_classes=num_classes,
            )
        )
    return datasets


def load_dataset_splits(
    dataset,
    data_dir=None,
    manual_dir=None,
    num_classes=None,
    synthetic_train_images=512,
    synthetic_val_images=64,
    synthetic_image_size=64,
    splits=(TRAIN_SPLIT, VAL_SPLIT),
):
    """Loads the training and validation splits of a dataset.

    - `"cityscapes"`: tfds `cityscapes/semantic_segmentation` prepared from
      the zips in `manual_dir` (19 train ids, 255 ignored).
    - `"folder"`: `data_dir/{train,val}/{images,masks}` with masks matched
      by file stem, or a PASCAL VOC folder (`JPEGImages`,
      `SegmentationClass`, `ImageSets/Segmentation/{train,val}.txt`).
    - `"synthetic"`: generated shapes; training and validation images come
      from different seeds.

    Args:
        dataset: one of `DATASET_NAMES`.
        data_dir: see above.
        manual_dir: folder of the Cityscapes zips.
        num_classes: class count (needed by the folder dataset).
        synthetic_train_images: synthetic training images.
        synthetic_val_images: synthetic validation images.
        synthetic_image_size: synthetic image size.
        splits: the two split names to load.

    Returns:
        A `DatasetSplits`.

    Example:

    >>> splits = load_dataset_splits("synthetic", synthetic_train_images=4,
    ...                              synthetic_val_images=2)
    >>> splits.num_classes, splits.train_size
    (4, 4)
    """
    _check_choice("dataset", dataset, DATASET_NAMES)
    train_split, val_split = splits
    if dataset == "synthetic":
        from keras_refinenet.data import synthetic

        train = synthetic.load_synthetic(
            synthetic_train_images,
            image_size=synthetic_image_size,
            seed=SYNTHETIC_TRAIN_SEED,
        )
        val = synthetic.load_synthetic(
            synthetic_val_images,
            image_size=synthetic_image_size,
            seed=SYNTHETIC_VAL_SEED,
        )
        num_classes = synthetic.SYNTHETIC_NUM_CLASSES
        class_names = synthetic.SYNTHETIC_CLASS_NAMES
    elif dataset == "cityscapes":
        from keras_refinenet.data import cityscapes

        train, val = (
            cityscapes.load_cityscapes(
                split, data_dir=data_dir, manual_dir=manual_dir
            )
            for split in (train_split, val_split)
        )
        num_classes = cityscapes.CITYSCAPES_NUM_CLASSES
        class_names = cityscapes.CITYSCAPES_CLASS_NAMES
    else:
        if data_dir is None:
            raise ValueError(
                "The folder dataset needs `--data-dir`. Received: data_dir=None"
            )
        train, val = _folder_splits(
            data_dir, num_classes, (train_split, val_split)
        )
        class_names = None
    return DatasetSplits(
        train=train,
        val=val,
        num_classes=num_classes,
        class_names=tuple(class_names) if class_names else None,
        train_size=_dataset_size(train),
    )


def set_precision(policy):
    """Sets the global Keras dtype policy; returns the policy name."""
    import keras

    policy = policy or "float32"
    _check_choice("mixed_precision", policy, PRECISION_POLICIES)
    keras.config.set_dtype_policy(policy)
    return policy


def class_names_for(num_classes, *candidates):
    """The first candidate list of the right length, else `class_i`."""
    for names in candidates:
        if names and len(names) == num_classes:
            return [str(name) for name in names]
    return [f"class_{index}" for index in range(num_classes)]


def _preset_metadata(preset):
    from keras_refinenet.models.preset_io import preset_metadata

    if preset is None:
        return {}
    try:
        return preset_metadata(preset) or {}
    except ValueError:
        return {}


def _preset_num_classes(preset):
    from keras_refinenet.models.preset_io import is_preset_dir
    from keras_refinenet.models.presets import PRESETS

    if preset in PRESETS:
        return PRESETS[preset]["config"].get("num_classes")
    if is_preset_dir(preset):
        config = json.loads((pathlib.Path(preset) / "config.json").read_text())
        return config.get("config", {}).get("num_classes")
    return None


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


def run_training(config, build_model=None):
    """Trains a RefineNet as described by a `TrainConfig`.

    Writes, in `config.output` (the chief's only, in multi-worker runs):
    `preset/` (the trained model), `checkpoints/best.weights.h5` (best
    epoch by validation mean IoU), `logs/` (TensorBoard),
    `history.json`, `training_summary.json`, and `backup/` while a run is
    unfinished (rerun the same command to resume after an interruption).

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
    _check_choice("strategy", config.strategy, distribute.STRATEGY_NAMES)
    strategy = distribute.get_strategy(config.strategy, tpu=config.tpu)
    import keras

    from keras_refinenet.data.pipeline import (
        evaluation_pipeline,
        training_pipeline,
    )
    from keras_refinenet.models.refinenet import RefineNet
    from keras_refinenet.training.callbacks import (
        BACKUP_DIR_NAME,
        training_callbacks,
    )

    started = time.time()
    keras.utils.set_random_seed(config.seed)
    policy = set_precision(config.mixed_precision)
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

    num_classes = config.num_classes
    if num_classes is None and config.dataset == "folder":
        num_classes = _preset_num_classes(config.preset)
    splits = load_dataset_splits(
        config.dataset,
        data_dir=config.data_dir,
        manual_dir=config.manual_dir,
        num_classes=num_classes,
        synthetic_train_images=config.synthetic_train_images,
        synthetic_val_images=config.synthetic_val_images,
        synthetic_image_size=config.synthetic_image_size,
    )
    num_classes = num_classes or splits.num_classes
    steps_per_epoch = config.steps_per_epoch
    if steps_per_epoch is None:
        if not splits.train_size:
            raise ValueError(
                "The training set size is unknown: pass `--steps-per-epoch`. "
                "Received: steps_per_epoch=None"
            )
        steps_per_epoch = max(splits.train_size // global_batch, 1)
    train_batches = training_pipeline(
        splits.train.cache() if config.dataset == "synthetic" else splits.train,
        batch_size=global_batch,
        crop_size=tuple(config.crop_size),
        seed=config.seed,
        scale_range=config.scale_range,
        repeat=True,
    )
    validate = config.validation_steps != 0
    val_batches = None
    if validate:
        val_batch = (
            global_batch
            if config.dataset == "synthetic"
            else strategy.num_replicas_in_sync
        )
        val_batches = evaluation_pipeline(splits.val, batch_size=val_batch)
    log(
        f"dataset={config.dataset}, classes={num_classes}, "
        f"train images={splits.train_size}, epochs={config.epochs}, "
        f"steps per epoch={steps_per_epoch}, crop={tuple(config.crop_size)}"
    )

    with strategy.scope():
        if build_model is not None:
            model = build_model(num_classes)
        else:
            overrides = {"num_classes": num_classes}
            if config.mixed_precision:
                overrides["dtype"] = policy
            model = RefineNet.from_preset(
                config.preset, load_weights=config.load_weights, **overrides
            )
        model.compile(
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
    if chief:
        metadata = dict(_preset_metadata(config.preset))
        metadata.update(
            {
                "dataset": config.dataset,
                "class_names": class_names_for(
                    num_classes,
                    splits.class_names,
                    metadata.get("class_names"),
                ),
                "weights": None,
                "training": {
                    "epochs": config.epochs,
                    "steps_per_epoch": steps_per_epoch,
                    "global_batch_size": global_batch,
                    "crop_size": list(config.crop_size),
                    "precision": policy,
                    "strategy": config.strategy,
                },
            }
        )
        metadata.pop("weights_on_disk", None)
        if metadata.get("palette") and len(metadata["palette"]) != num_classes:
            metadata["palette"] = None
        metadata.update(config.preset_metadata or {})
        preset_dir = model.save_to_preset(output / PRESET_DIR_NAME, metadata)
        result["preset_dir"] = str(preset_dir)
        (output / HISTORY_FILE).write_text(
            json.dumps(result["history"], indent=2)
        )
        summary = {k: v for k, v in result.items() if k != "history"}
        (output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        log(f"wrote the trained preset to {preset_dir} ({seconds:.0f} s)")
    return result


def predict_class_ids_fn(model):
    """A compiled `images -> class ids` function for any image size."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def predict(images):
        logits = model(images, training=False)
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    return predict


def confusion_over_dataset(model, batches, num_classes, max_batches=None):
    """Accumulates a `ConfusionMatrix` of `model` over `(image, mask)`
    batches (full-size evaluation).

    Args:
        model: a segmentation model returning logits at the input size.
        batches: `tf.data.Dataset` of `(images, masks)` batches.
        num_classes: number of classes.
        max_batches: stop after this many batches.

    Returns:
        `(ConfusionMatrix, images_seen)`.
    """
    from keras_refinenet.training.metrics import ConfusionMatrix

    predict = predict_class_ids_fn(model)
    confusion = ConfusionMatrix(num_classes)
    images_seen = 0
    for index, (images, masks) in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        confusion.update(predict(images).numpy(), masks.numpy())
        images_seen += int(images.shape[0])
    return confusion, images_seen


def metrics_report(confusion, class_names, extra=None):
    """JSON-ready `mean_iou`, `per_class_iou` (by name), `pixel_accuracy`.

    Classes absent from labels and predictions get `null`.

    Args:
        confusion: a `ConfusionMatrix`.
        class_names: one name per class.
        extra: more entries for the dict.

    Returns:
        A dict.

    Example:

    >>> import numpy as np
    >>> from keras_refinenet.training.metrics import ConfusionMatrix
    >>> confusion = ConfusionMatrix(2)
    >>> confusion.update(np.array([0, 1]), np.array([0, 0]))
    >>> metrics_report(confusion, ["a", "b"])["per_class_iou"]
    {'a': 0.5, 'b': 0.0}
    """
    per_class = confusion.per_class_iou()
    report = {
        "mean_iou": _json_number(confusion.mean_iou()),
        "per_class_iou": {
            name: _json_number(value)
            for name, value in zip(class_names, per_class)
        },
        "pixel_accuracy": _json_number(confusion.pixel_accuracy()),
    }
    report.update(extra or {})
    return report


def format_report(report):
    """A plain-text table of a `metrics_report` dict.

    Example:

    >>> print(format_report({"mean_iou": 0.5, "pixel_accuracy": 0.75,
    ...                      "per_class_iou": {"road": 0.5, "sky": None}}))
    class     IoU
    road   0.5000
    sky       n/a
    <BLANKLINE>
    mean IoU        0.5000
    pixel accuracy  0.7500
    """
    per_class = report["per_class_iou"]
    width = max([len("class")] + [len(name) for name in per_class])
    lines = [f"{'class':<{width}}  {'IoU':>6}"]
    for name, value in per_class.items():
        shown = "n/a" if value is None or np.isnan(value) else f"{value:.4f}"
        lines.append(f"{name:<{width}}  {shown:>6}")
    lines.append("")
    for label, key in (
        ("mean IoU", "mean_iou"),
        ("pixel accuracy", "pixel_accuracy"),
    ):
        value = report[key]
        shown = "n/a" if value is None else f"{value:.4f}"
        lines.append(f"{label:<14}  {shown:>6}")
    return "\n".join(lines)
