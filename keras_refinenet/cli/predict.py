"""`keras-refinenet predict`: segment image files and write PNGs.

Formats: `overlay` (colours blended over the image), `color` (the colour
label map), `labels` (class ids as a single-channel PNG) and
`cityscapes-submission` (Cityscapes label ids, train ids mapped back to the
34 ids, named `<city>_<seq>_<frame>_leftImg8bit.png` as the benchmark
scripts and server expect). `overlay` and `color` also write `legend.png`.
"""

import pathlib
import sys

from keras_refinenet.cli.main import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from keras_refinenet.constants import (
    AUTO_DECODER_CONV,
    DEFAULT_INFERENCE_PRECISION,
    INFERENCE_DECODER_CONVS,
    INFERENCE_PRECISIONS,
    VOID_AS_LABEL,
    VOID_RULES,
)
from keras_refinenet.inference.images import (
    TTA_CHOICES,
    TTA_NONE,
    collect_images,
    read_image,
    tta_options,
)
from keras_refinenet.inference.visualize import (
    DEFAULT_ALPHA,
    DEFAULT_OUTPUT_FORMAT,
    LEGEND_FILE,
    LEGEND_FORMATS,
    OUTPUT_FORMATS,
)

TTA_HELP = (
    "test-time augmentation: horizontal flip and/or the authors' "
    "Cityscapes scales 0.5-1.75"
)


def add_tta_arguments(parser, tta_help=TTA_HELP):
    """Adds `--tta` and `--scales`, the arguments of
    `inference.images.tta_options`."""
    parser.add_argument(
        "--tta", choices=TTA_CHOICES, default=TTA_NONE, help=tta_help
    )
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        help="scales for multiscale TTA (overrides the default scales)",
    )


def add_parser(subparsers):
    """Adds the `predict` sub-command."""
    from keras_refinenet.inference.predict import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_TILE_OVERLAP,
    )

    parser = subparsers.add_parser(
        "predict",
        help="segment images and write overlay, colour or label PNGs",
        description="Segments image files (or every image in the given "
        "folders) with a preset and writes one PNG per image into --output.",
    )
    parser.add_argument(
        "--preset", required=True, help="preset name or preset directory"
    )
    parser.add_argument(
        "images", nargs="+", help="image files or folders of images"
    )
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default=DEFAULT_OUTPUT_FORMAT,
        dest="fmt",
    )
    parser.add_argument(
        "--tile",
        type=int,
        help="largest tile the network sees (pixels); default: whole images",
    )
    parser.add_argument(
        "--tile-overlap", type=float, default=DEFAULT_TILE_OVERLAP
    )
    add_tta_arguments(parser)
    parser.add_argument(
        "--void",
        choices=VOID_RULES,
        default=VOID_AS_LABEL,
        help="models with a void channel (the authors' MatConvNet presets): "
        "label = void wins like a class and gives its label (255 for "
        "Cityscapes; the authors' rule), exclude = only real classes",
    )
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--precision",
        choices=INFERENCE_PRECISIONS,
        default=DEFAULT_INFERENCE_PRECISION,
        help="bfloat16: mixed bfloat16 inference (faster on CPUs with "
        "AVX-512 BF16 or AMX, argmax agrees on >= 99.5%% of pixels)",
    )
    parser.add_argument(
        "--decoder-conv",
        choices=INFERENCE_DECODER_CONVS,
        default=AUTO_DECODER_CONV,
        help="decoder 3x3 convolutions: direct, Winograd F(4x4, 3x3), or "
        "auto (the fastest exact one: Winograd for float32 views of at "
        "least 256x512 pixels on a CPU)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Runs `keras-refinenet predict`; returns the exit code."""
    import keras

    from keras_refinenet.inference import visualize
    from keras_refinenet.inference.predict import check_options
    from keras_refinenet.models.preset_io import PresetWeightsNotFoundError
    from keras_refinenet.models.refinenet import RefineNet

    options = {
        "tile_size": args.tile,
        "tile_overlap": args.tile_overlap,
        **tta_options(args.tta, args.scales),
        "batch_size": args.batch_size,
        "void": args.void,
        "precision": args.precision,
        "decoder_conv": args.decoder_conv,
    }
    try:
        check_options(
            options["tile_size"],
            options["tile_overlap"],
            options["scales"],
            options["batch_size"],
        )
        paths = collect_images(args.images)
        names = visualize.output_names(paths, args.fmt)
        overrides = {}
        if args.decoder_conv != AUTO_DECODER_CONV:
            overrides["decoder_conv"] = args.decoder_conv
        model = RefineNet.from_preset(args.preset, **overrides)
        visualize.check_output_format(args.fmt, model.num_classes)
    except (ValueError, FileNotFoundError, PresetWeightsNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not paths:
        print("error: no images found.", file=sys.stderr)
        return EXIT_USAGE
    palette, class_names = visualize.preset_palette(
        args.preset, num_classes=model.num_classes
    )
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    if args.fmt in LEGEND_FORMATS:
        visualize.write_png(
            visualize.legend(class_names, palette), output / LEGEND_FILE
        )
    failures = []
    from keras_refinenet.cli.main import progress_verbosity

    progress = keras.utils.Progbar(
        len(paths), unit_name="image", verbose=progress_verbosity()
    )
    for index, (name, path) in enumerate(names.items(), start=1):
        try:
            image = read_image(path)
            class_ids = model.predict_segmentation(image, **options)
            picture = visualize.render_prediction(
                image, class_ids, args.fmt, palette, alpha=args.alpha
            )
            visualize.write_png(picture, output / name)
        except (OSError, ValueError) as error:
            failures.append(f"{path}: {error}")
        progress.update(index)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    written = len(paths) - len(failures)
    print(f"Wrote {written} {args.fmt} PNGs to {output}.")
    return EXIT_FAILURE if failures else EXIT_OK
