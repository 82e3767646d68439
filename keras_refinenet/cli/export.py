"""`keras-refinenet export`: a TensorFlow Serving SavedModel from a preset."""

import sys

from keras_refinenet.constants import IMAGE_BYTES_SIGNATURE, IMAGES_SIGNATURE
from keras_refinenet.training.precision import (
    DEFAULT_PRECISION,
    PRECISION_POLICIES,
)


def add_parser(subparsers):
    """Adds the `export` sub-command."""
    from keras_refinenet.export.saved_model import DEFAULT_MAX_PIXELS

    parser = subparsers.add_parser(
        "export",
        help="export a preset as a TensorFlow Serving SavedModel",
        description="Writes MODEL_BASE/VERSION/, a SavedModel with the "
        f"signatures {IMAGES_SIGNATURE} (uint8 images) and "
        f"{IMAGE_BYTES_SIGNATURE} (encoded PNG/JPEG), ready for "
        "tensorflow/serving.",
    )
    parser.add_argument(
        "--preset", required=True, help="preset name or preset directory"
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="MODEL_BASE",
        help="model base folder (the one TF Serving watches)",
    )
    parser.add_argument(
        "--version", type=int, help="version number; default: the next one"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="largest height*width a request may have",
    )
    parser.add_argument(
        "--dtype",
        choices=PRECISION_POLICIES,
        default=DEFAULT_PRECISION,
        help="dtype policy of the exported model",
    )
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Runs `keras-refinenet export`; returns the exit code."""
    from keras_refinenet.export.saved_model import export_saved_model
    from keras_refinenet.models.preset_io import PresetWeightsNotFoundError
    from keras_refinenet.models.refinenet import RefineNet

    overrides = {}
    if args.dtype != DEFAULT_PRECISION:
        overrides["dtype"] = args.dtype
    try:
        model = RefineNet.from_preset(args.preset, **overrides)
        path = export_saved_model(
            model, args.output, version=args.version, max_pixels=args.max_pixels
        )
    except (ValueError, FileExistsError, PresetWeightsNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Exported SavedModel version {path.name} to {path}")
    return 0
