"""`keras-refinenet convert`: published weights -> a RefineNet preset.

keras-refinenet convert refinenet-pytorch CHECKPOINT --name refinenet101_voc
keras-refinenet convert light-weight-refinenet CHECKPOINT --output DIR
keras-refinenet convert matconvnet refinenet_res101_cityscapes.mat \
    --name refinenet101_cityscapes
keras-refinenet convert imagenet --depth 101 --num-classes 19 --output DIR
"""

import sys

from keras_refinenet.cli.main import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from keras_refinenet.convert.dispatch import (
    CHECKPOINT_FORMATS,
    CONVERSION_ERRORS,
    check_conversion_request,
    convert_checkpoint,
    converted_metadata,
)
from keras_refinenet.models.presets import RESNET_DEPTHS
from keras_refinenet.refinenet_release import (
    DEFAULT_RESIZE_MODE,
    RELEASED_DATASETS,
    RESIZE_MODES,
)


def add_parser(subparsers):
    """Adds the `convert` sub-command."""
    parser = subparsers.add_parser(
        "convert",
        help="convert published weights into a RefineNet preset",
        description="Converts the authors' PyTorch (RefineNet, Light-Weight "
        "RefineNet) or MatConvNet checkpoints, or ImageNet backbones, into "
        "a preset directory (--output) or installs it in the preset cache "
        "(--name) so that RefineNet.from_preset(NAME) loads it.",
    )
    parser.add_argument(
        "source", choices=CHECKPOINT_FORMATS, help="what to convert"
    )
    parser.add_argument(
        "checkpoint",
        nargs="?",
        help="the checkpoint (.pth/.pt or .mat); for imagenet, an optional "
        "keras.applications weights file (default: Keras' ImageNet "
        "download)",
    )
    parser.add_argument("--output", help="preset directory to write")
    parser.add_argument(
        "--name",
        help="preset name; without --output the preset is installed in the "
        "cache under this name",
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        help="classes of the written preset (a new classifier if it differs "
        "from the checkpoint's)",
    )
    parser.add_argument(
        "--depth",
        type=int,
        choices=RESNET_DEPTHS,
        help="ResNet depth (imagenet; checked against the file for "
        "matconvnet, inferred for PyTorch)",
    )
    parser.add_argument(
        "--dataset",
        choices=sorted(RELEASED_DATASETS),
        help="matconvnet: the dataset of the released model, for its class "
        "names, label values and palette (default: from the authors' file "
        "name, e.g. refinenet_res101_cityscapes.mat)",
    )
    parser.add_argument(
        "--resize-mode",
        choices=sorted(RESIZE_MODES),
        default=DEFAULT_RESIZE_MODE,
        help="matconvnet: the authors' bicubic resize semantics, gpu (one "
        "factor and a top-left crop, their released results; default) or "
        "cpu (straight to the target size)",
    )
    parser.add_argument(
        "--keras-hub-preset",
        help="imagenet: use this keras-hub ResNetBackbone preset instead "
        "of keras.applications weights",
    )
    parser.set_defaults(func=run)


def run(args):
    """Converts and writes the preset; returns the exit code."""
    from keras_refinenet.convert.install import save_converted

    try:
        check_conversion_request(args.source, args.checkpoint)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not (args.output or args.name):
        print("error: give --output DIR or --name PRESET.", file=sys.stderr)
        return EXIT_USAGE
    try:
        model = convert_checkpoint(
            args.source,
            args.checkpoint,
            depth=args.depth,
            num_classes=args.num_classes,
            dataset=args.dataset,
            resize_mode=args.resize_mode,
            keras_hub_preset=args.keras_hub_preset,
        )
        preset_dir = save_converted(
            model,
            output=args.output,
            name=args.name,
            source=args.checkpoint,
            metadata=converted_metadata(model, args.source),
        )
    except CONVERSION_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"Wrote preset {preset_dir} ({model.count_params():,} parameters).")
    if args.name and not args.output:
        print(f'Load it with RefineNet.from_preset("{args.name}").')
    return EXIT_OK
