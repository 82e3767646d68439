"""`keras-refinenet evaluate`: mean IoU of a preset on a dataset."""

from keras_refinenet.cli.main import EXIT_OK
from keras_refinenet.cli.train import add_dataset_arguments
from keras_refinenet.data.datasets import TRAIN_SPLIT, VAL_SPLIT


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
    parser.add_argument("--split", default=VAL_SPLIT)
    parser.add_argument(
        "--max-images", type=int, help="evaluate at most this many images"
    )
    parser.add_argument("--output", help="JSON file for the metrics")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Runs `keras-refinenet evaluate`; returns the exit code."""
    from keras_refinenet.data.datasets import class_names_for, load_dataset
    from keras_refinenet.data.pipeline import evaluation_pipeline
    from keras_refinenet.evaluation import (
        evaluate_model,
        format_report,
        write_report,
    )
    from keras_refinenet.inference.visualize import preset_palette
    from keras_refinenet.models.refinenet import RefineNet

    model = RefineNet.from_preset(args.preset)
    num_classes = args.num_classes or model.num_classes
    if num_classes != model.num_classes:
        raise ValueError(
            f"The preset predicts {model.num_classes} classes. "
            f"Received: num_classes={num_classes}"
        )
    synthetic_images = (
        args.synthetic_train_images
        if args.split == TRAIN_SPLIT
        else args.synthetic_val_images
    )
    dataset = load_dataset(
        args.dataset,
        args.split,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        num_classes=num_classes,
        synthetic_images=synthetic_images,
        synthetic_image_size=args.synthetic_image_size,
    )
    examples = dataset.examples
    if args.max_images:
        examples = examples.take(args.max_images)
    _, preset_class_names = preset_palette(args.preset, num_classes)
    print(f"Evaluating {args.preset} on {args.dataset}/{args.split}.")
    report = evaluate_model(
        model,
        evaluation_pipeline(examples),
        num_classes,
        class_names=class_names_for(
            num_classes, dataset.class_names, preset_class_names
        ),
        extra={
            "preset": str(args.preset),
            "dataset": args.dataset,
            "split": args.split,
        },
    )
    print(format_report(report))
    if args.output:
        print(f"Wrote {write_report(report, args.output)}.")
    return EXIT_OK
