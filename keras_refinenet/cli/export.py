"""`keras-refinenet export`: a preset as SavedModel, ONNX, LiteRT, OpenVINO."""

import json
import sys

from keras_refinenet.constants import (
    DECODER_CONVS,
    DIRECT_CONV,
    IMAGE_BYTES_SIGNATURE,
    IMAGES_SIGNATURE,
    TTA_SIGNATURE,
)
from keras_refinenet.training.precision import (
    DEFAULT_PRECISION,
    PRECISION_POLICIES,
)

NATIVE_RESIZE_OPS = "native"
GATHER_RESIZE_OPS = "gather"
RESIZE_OPS = (NATIVE_RESIZE_OPS, GATHER_RESIZE_OPS)


def add_parser(subparsers):
    """Adds the `export` sub-command."""
    from keras_refinenet.cli.predict import add_tta_arguments
    from keras_refinenet.export import verify
    from keras_refinenet.export.formats import DEFAULT_FORMAT, EXPORT_FORMATS
    from keras_refinenet.export.litert import DEFAULT_CALIBRATION_IMAGES
    from keras_refinenet.export.saved_model import DEFAULT_MAX_PIXELS
    from keras_refinenet.inference.predict import DEFAULT_TILE_OVERLAP

    parser = subparsers.add_parser(
        "export",
        help="export a preset (SavedModel, ONNX, LiteRT, OpenVINO)",
        description="Writes MODEL_BASE/VERSION/, a SavedModel with the "
        f"signatures {IMAGES_SIGNATURE} (uint8 images) and "
        f"{IMAGE_BYTES_SIGNATURE} (encoded PNG/JPEG), ready for "
        "tensorflow/serving; with --tile, --tta or --scales also "
        f"{TTA_SIGNATURE} (predict_segmentation's tiling and test-time "
        "augmentation inside the graph). Other formats write OUTPUT/model.*.",
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
    parser.add_argument(
        "--decoder-conv",
        choices=DECODER_CONVS,
        default=DIRECT_CONV,
        help="decoder 3x3 convolutions: direct or Winograd F(4x4, 3x3)",
    )
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default=DEFAULT_FORMAT,
        help="export format; all but saved_model write OUTPUT/model.*",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="fixed input size (required by litert and litert-int8)",
    )
    parser.add_argument(
        "--calibration-data",
        help="litert-int8: folder of images or 'synthetic' (default)",
    )
    parser.add_argument(
        "--num-calibration-images",
        type=int,
        default=DEFAULT_CALIBRATION_IMAGES,
        help="litert-int8: calibration images used",
    )
    parser.add_argument(
        "--tile",
        type=int,
        help=f"saved_model ({TTA_SIGNATURE}), onnx, openvino: largest tile "
        "the network sees (pixels); default: whole images",
    )
    parser.add_argument(
        "--tile-overlap",
        type=float,
        default=DEFAULT_TILE_OVERLAP,
        help="with --tile: fraction of a tile shared with its neighbours",
    )
    add_tta_arguments(
        parser,
        tta_help=f"saved_model ({TTA_SIGNATURE}), onnx, openvino: test-time "
        "augmentation in the graph: horizontal flip and/or the authors' "
        "Cityscapes scales 0.5-1.75",
    )
    parser.add_argument(
        "--resize-ops",
        choices=RESIZE_OPS,
        help="onnx, litert, openvino: bilinear resizes as the format's "
        "native resize op or as the Keras gathers; default: native for "
        "litert (faster there), gather for onnx and openvino (faster there)",
    )
    parser.add_argument(
        "--verify",
        metavar="DATA",
        help="run the export in its runtime on DATA (folder, folder with "
        "images/ and masks/, or 'synthetic') and compare with Keras; "
        "exit 1 past the tolerances",
    )
    parser.add_argument(
        "--verify-images",
        type=int,
        default=verify.DEFAULT_VERIFY_IMAGES,
        help="images used by --verify",
    )
    parser.add_argument(
        "--max-relative-difference",
        type=float,
        default=verify.DEFAULT_MAX_RELATIVE_DIFFERENCE,
        help="float formats: largest logit difference / largest logit",
    )
    parser.add_argument(
        "--min-argmax-agreement",
        type=float,
        default=verify.DEFAULT_MIN_ARGMAX_AGREEMENT,
        help="float formats: smallest fraction of equal argmax pixels",
    )
    parser.add_argument(
        "--max-mean-iou-drop",
        type=float,
        default=verify.DEFAULT_MAX_MEAN_IOU_DROP,
        help="litert-int8: largest mean IoU loss (0.01 = 1 point)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Runs `keras-refinenet export`; returns the exit code."""
    from keras_refinenet.export.formats import (
        LITERT_INT8,
        ONNX,
        OPENVINO,
        SAVED_MODEL,
        MissingExtraError,
        check_extra,
        check_input_size,
        check_tta_format,
        export_model,
        wants_tta,
    )
    from keras_refinenet.export.verify import verify_export
    from keras_refinenet.inference.images import TTA_NONE, tta_options
    from keras_refinenet.models.preset_io import PresetWeightsNotFoundError
    from keras_refinenet.models.refinenet import RefineNet

    overrides = {}
    if args.dtype != DEFAULT_PRECISION:
        overrides["dtype"] = args.dtype
    if args.decoder_conv != DIRECT_CONV:
        overrides["decoder_conv"] = args.decoder_conv
    if args.format == SAVED_MODEL:
        options = {"version": args.version, "max_pixels": args.max_pixels}
    else:
        options = {}
    if args.resize_ops is not None and args.format != SAVED_MODEL:
        options["native_resize"] = args.resize_ops == NATIVE_RESIZE_OPS
    if args.format == LITERT_INT8:
        options["num_calibration_images"] = args.num_calibration_images
    tiled = args.tile is not None or args.tta != TTA_NONE or args.scales
    try:
        if tiled:
            options.update(tta_options(args.tta, args.scales))
            options.update(tile_size=args.tile, tile_overlap=args.tile_overlap)
            if args.format in (ONNX, OPENVINO):
                options["max_pixels"] = args.max_pixels
                if args.verify:
                    raise ValueError(
                        "--verify compares logits; an onnx or openvino "
                        "export with --tile/--tta/--scales outputs "
                        "probabilities. Received: --verify with "
                        "--tile/--tta/--scales"
                    )
        # Argument and extra errors before the model is loaded.
        check_tta_format(args.format, options)
        check_input_size(args.format, args.input_size)
        check_extra(args.format, tta=wants_tta(**options))
        if args.verify:
            check_extra(args.format, runtime=True)
        model = RefineNet.from_preset(args.preset, **overrides)
        path = export_model(
            model,
            args.output,
            format=args.format,
            input_size=args.input_size,
            calibration_data=args.calibration_data,
            **options,
        )
        if args.format == SAVED_MODEL:
            print(f"Exported SavedModel version {path.name} to {path}")
        else:
            print(f"Exported {args.format} to {path}")
        if not args.verify:
            return 0
        report = verify_export(
            model,
            path,
            args.format,
            data=args.verify,
            input_size=args.input_size,
            num_images=args.verify_images,
            max_relative_difference=args.max_relative_difference,
            min_argmax_agreement=args.min_argmax_agreement,
            max_mean_iou_drop=args.max_mean_iou_drop,
        )
    except (
        ValueError,
        FileExistsError,
        PresetWeightsNotFoundError,
        MissingExtraError,
    ) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    if not report["passed"]:
        print(
            f"error: verify failed: {'; '.join(report['failures'])}",
            file=sys.stderr,
        )
        return 1
    return 0
