"""`keras-refinenet evaluate-predictions`: score saved Cityscapes PNGs."""

import json
import math
import pathlib

DATASET_CHOICES = ("cityscapes",)


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
        "--dataset", choices=DATASET_CHOICES, default="cityscapes"
    )
    parser.add_argument("--output", required=True)
    parser.set_defaults(func=run)
    return parser


def _json_ready(value):
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def run(args):
    """Runs `keras-refinenet evaluate-predictions`; returns the exit code."""
    from keras_refinenet.evaluation.cityscapes import (
        evaluate_prediction_folder,
    )
    from keras_refinenet.training.trainer import format_report, log

    scores = evaluate_prediction_folder(args.predictions, args.ground_truth)
    report = _json_ready(
        {
            "mean_iou": float(scores["mean_iou"]),
            "per_class_iou": {
                name: float(value)
                for name, value in scores["per_class_iou"].items()
            },
            "pixel_accuracy": float(scores["pixel_accuracy"]),
        }
    )
    print(format_report(report))
    path = pathlib.Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    log(f"wrote {path}")
    return 0
