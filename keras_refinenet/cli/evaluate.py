"""`keras-refinenet evaluate`: mean IoU of a preset on a dataset."""

import json
import pathlib

from keras_refinenet.cli.train import add_dataset_arguments

DEFAULT_SPLIT = "val"


def add_parser(subparsers):
    """Adds the `evaluate` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a preset on a dataset (mean IoU, per-class IoU)",
        description="Evaluates a preset at full image size and prints mean "
        "IoU, the per-class IoU table and pixel accuracy; with --output the "
        "numbers are also written as JSON.",
    )
    parser.add_argument(
        "--preset", required=True, help="preset name or preset directory"
    )
    parser.add_argument("--num-classes", type=int)
    add_dataset_arguments(parser)
    parser.add_argument("--split", default=DEFAULT_SPLIT)
    parser.add_argument(
        "--max-images", type=int, help="evaluate at most this many images"
    )
    parser.add_argument("--output", help="JSON file for the metrics")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Runs `keras-refinenet evaluate`; returns the exit code."""
    from keras_refinenet.data.pipeline import evaluation_pipeline
    from keras_refinenet.models.refinenet import RefineNet
    from keras_refinenet.training import trainer

    model = RefineNet.from_preset(args.preset)
    num_classes = args.num_classes or model.num_classes
    if num_classes != model.num_classes:
        raise ValueError(
            f"The preset predicts {model.num_classes} classes. "
            f"Received: num_classes={num_classes}"
        )
    splits = trainer.load_dataset_splits(
        args.dataset,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        num_classes=num_classes,
        synthetic_train_images=args.synthetic_train_images,
        synthetic_val_images=args.synthetic_val_images,
        synthetic_image_size=args.synthetic_image_size,
        splits=(args.split, args.split),
    )
    dataset = splits.val
    if args.max_images:
        dataset = dataset.take(args.max_images)
    trainer.log(f"evaluating {args.preset} on {args.dataset}/{args.split}")
    confusion, images_seen = trainer.confusion_over_dataset(
        model, evaluation_pipeline(dataset), num_classes
    )
    metadata = trainer._preset_metadata(args.preset)
    class_names = trainer.class_names_for(
        num_classes, splits.class_names, metadata.get("class_names")
    )
    report = trainer.metrics_report(
        confusion,
        class_names,
        extra={
            "preset": str(args.preset),
            "dataset": args.dataset,
            "split": args.split,
            "num_images": images_seen,
        },
    )
    print(trainer.format_report(report))
    if args.output:
        path = pathlib.Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        trainer.log(f"wrote {path}")
    return 0
