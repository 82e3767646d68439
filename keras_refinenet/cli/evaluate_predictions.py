"""`keras-refinenet evaluate-predictions`: score saved Cityscapes PNGs."""

from keras_refinenet.cli.main import EXIT_OK
from keras_refinenet.evaluation import PREDICTION_FOLDER_EVALUATORS


def add_parser(subparsers):
    """Adds the `evaluate-predictions` sub-command."""
    parser = subparsers.add_parser(
        "evaluate-predictions",
        help="score saved label-id PNGs like the official Cityscapes script",
        description="Matches prediction PNGs (Cityscapes label ids) to "
        "*_gtFine_labelIds.png by their city_seq_frame stem and writes "
        "mean_iou, per_class_iou and pixel_accuracy as JSON.",
    )
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--ground-truth", required=True)
    parser.add_argument(
        "--dataset",
        choices=tuple(PREDICTION_FOLDER_EVALUATORS),
        default=next(iter(PREDICTION_FOLDER_EVALUATORS)),
    )
    parser.add_argument("--output", required=True)
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Runs `keras-refinenet evaluate-predictions`; returns the exit code."""
    from keras_refinenet.evaluation import (
        format_report,
        json_ready,
        write_report,
    )

    evaluate = PREDICTION_FOLDER_EVALUATORS[args.dataset]
    report = json_ready(evaluate(args.predictions, args.ground_truth))
    print(format_report(report))
    print(f"Wrote {write_report(report, args.output)}.")
    return EXIT_OK
