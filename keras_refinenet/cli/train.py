"""`keras-refinenet train`: train a RefineNet and write it as a preset."""

import sys

from keras_refinenet.cli.main import EXIT_OK
from keras_refinenet.data.datasets import (
    DATASET_NAMES,
    SYNTHETIC_SIZES,
    TRAIN_SPLIT,
    VAL_SPLIT,
)
from keras_refinenet.training.defaults import AUTO, OPTIMIZER_NAMES
from keras_refinenet.training.distribute import STRATEGY_NAMES
from keras_refinenet.training.loss_options import (
    check_loss_options,
    checked_loss_spec,
    command_line_type,
)
from keras_refinenet.training.losses import (
    AUTO_CLASS_WEIGHTS,
    CLASS_WEIGHT_METHODS,
    DEFAULT_OHEM_MIN_KEPT,
    DEFAULT_OHEM_THRESH,
    LOSS_NAMES,
    parse_class_weights,
)
from keras_refinenet.training.precision import PRECISION_POLICIES
from keras_refinenet.training.trainer import (
    EXIT_NAN_LOSS,
    JIT_COMPILE_OPTIONS,
    TrainConfig,
)


def add_dataset_arguments(parser):
    """Adds `--dataset`, `--data-dir`, `--manual-dir` and synthetic sizes."""
    parser.add_argument("--dataset", choices=DATASET_NAMES, required=True)
    parser.add_argument(
        "--data-dir",
        help="folder dataset root (DIR/{train,val}/{images,masks} or a VOC "
        "folder), or the tfds data directory for Cityscapes",
    )
    parser.add_argument(
        "--manual-dir", help="folder holding the Cityscapes zips"
    )
    parser.add_argument(
        "--synthetic-train-images",
        type=int,
        default=SYNTHETIC_SIZES[TRAIN_SPLIT],
    )
    parser.add_argument(
        "--synthetic-val-images", type=int, default=SYNTHETIC_SIZES[VAL_SPLIT]
    )
    parser.add_argument(
        "--synthetic-image-size",
        type=int,
        default=TrainConfig.synthetic_image_size,
    )


def add_loss_arguments(parser):
    """Adds `--loss`, `--class-weights`, `--ohem-thresh`, `--ohem-min-kept`."""
    parser.add_argument(
        "--loss",
        type=command_line_type(checked_loss_spec),
        default=None,
        help=f"{', '.join(LOSS_NAMES)} or a weighted sum such as "
        "'ce+0.5*dice' (default: ce)",
    )
    parser.add_argument(
        "--class-weights",
        type=command_line_type(parse_class_weights),
        help="per-class weights of the cross-entropy: w0,w1,... or "
        f"{AUTO_CLASS_WEIGHTS} (median frequency, from the training masks; "
        f"also {' or '.join(CLASS_WEIGHT_METHODS)}); saved in "
        "OUTPUT/class_weights.json",
    )
    parser.add_argument(
        "--ohem-thresh",
        type=float,
        help="OHEM: keep pixels whose true-class probability is below this "
        f"(default {DEFAULT_OHEM_THRESH})",
    )
    parser.add_argument(
        "--ohem-min-kept",
        type=int,
        help=f"OHEM: pixels kept at least per image (default "
        f"{DEFAULT_OHEM_MIN_KEPT})",
    )


def add_parser(subparsers):
    """Adds the `train` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train a RefineNet and save it as a preset",
        description="Trains a RefineNet with model.fit and writes the "
        "trained model as a preset directory in OUTPUT/preset, with "
        "TensorBoard logs, the best checkpoint by validation mean IoU, and "
        "a backup that lets the same command resume an interrupted run.",
    )
    parser.add_argument(
        "--preset", required=True, help="preset name or preset directory"
    )
    parser.add_argument("--num-classes", type=int)
    add_dataset_arguments(parser)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument(
        "--batch-size",
        type=int,
        required=True,
        help="global batch size (split over the replicas)",
    )
    parser.add_argument(
        "--crop-size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        required=True,
    )
    parser.add_argument(
        "--strategy", choices=STRATEGY_NAMES, default=TrainConfig.strategy
    )
    parser.add_argument("--tpu", help="TPU name or grpc:// address")
    parser.add_argument("--mixed-precision", choices=PRECISION_POLICIES)
    parser.add_argument("--output", required=True)
    parser.add_argument(
        "--optimizer", choices=OPTIMIZER_NAMES, default=TrainConfig.optimizer
    )
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument(
        "--decoder-lr-multiplier",
        type=float,
        default=TrainConfig.decoder_lr_multiplier,
    )
    parser.add_argument(
        "--warmup-steps", type=int, default=TrainConfig.warmup_steps
    )
    parser.add_argument(
        "--clipnorm",
        type=float,
        default=TrainConfig.global_clipnorm,
        help="clip the global gradient norm (0 disables; default %(default)s)",
    )
    add_loss_arguments(parser)
    parser.add_argument(
        "--scale-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=TrainConfig.scale_range,
    )
    parser.add_argument(
        "--validation-steps",
        type=int,
        help="validation batches per epoch (0 skips validation)",
    )
    parser.add_argument(
        "--no-weights",
        action="store_true",
        help="start from random weights instead of the preset's",
    )
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument(
        "--jit-compile",
        choices=tuple(JIT_COMPILE_OPTIONS),
        default=TrainConfig.jit_compile,
        help="XLA compilation (auto: Keras decides; off is faster on CPU)",
    )
    parser.add_argument(
        "--backup-every-steps",
        type=int,
        help="also back up every N steps (default: every epoch)",
    )
    parser.add_argument("--no-tensorboard", action="store_true")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2))
    parser.set_defaults(func=run)
    return parser


def config_from_args(args):
    """The `TrainConfig` of parsed `train` arguments."""
    check_loss_options(
        args.loss,
        class_weights=args.class_weights,
        ohem_thresh=args.ohem_thresh,
        ohem_min_kept=args.ohem_min_kept,
    )
    return TrainConfig(
        preset=args.preset,
        output=args.output,
        dataset=args.dataset,
        num_classes=args.num_classes,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        crop_size=tuple(args.crop_size),
        strategy=args.strategy,
        tpu=args.tpu,
        mixed_precision=args.mixed_precision,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        weight_decay=(
            TrainConfig.weight_decay
            if args.weight_decay is None
            else args.weight_decay
        ),
        decoder_lr_multiplier=args.decoder_lr_multiplier,
        warmup_steps=args.warmup_steps,
        global_clipnorm=args.clipnorm or None,
        scale_range=tuple(args.scale_range),
        validation_steps=args.validation_steps,
        load_weights=not args.no_weights,
        seed=args.seed,
        jit_compile=JIT_COMPILE_OPTIONS[args.jit_compile],
        synthetic_train_images=args.synthetic_train_images,
        synthetic_val_images=args.synthetic_val_images,
        synthetic_image_size=args.synthetic_image_size,
        backup_every_steps=args.backup_every_steps,
        tensorboard=not args.no_tensorboard,
        verbose=args.verbose,
        loss=args.loss or AUTO,
        class_weights=args.class_weights,
        ohem_thresh=args.ohem_thresh,
        ohem_min_kept=args.ohem_min_kept,
    )


def run(args):
    """Runs `keras-refinenet train`; returns the exit code."""
    from keras_refinenet.training.callbacks import NaNLossError
    from keras_refinenet.training.trainer import run_training

    try:
        run_training(config_from_args(args))
    except NaNLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NAN_LOSS
    return EXIT_OK
