"""`keras-refinenet convert`: published weights -> a RefineNet preset.

keras-refinenet convert refinenet-pytorch CHECKPOINT --name refinenet101_voc
keras-refinenet convert light-weight-refinenet CHECKPOINT --output DIR
keras-refinenet convert matconvnet refinenet_res101_cityscapes.mat \
    --name refinenet101_cityscapes
keras-refinenet convert imagenet --depth 101 --num-classes 19 --output DIR
"""

import sys

from keras_refinenet.data.voc import VOC_NUM_CLASSES
from keras_refinenet.models.presets import RESNET_DEPTHS
from keras_refinenet.refinenet_release import (
    DEFAULT_RESIZE_MODE,
    RELEASED_DATASETS,
    RESIZE_MODES,
)

SOURCES = (
    "refinenet-pytorch",
    "light-weight-refinenet",
    "matconvnet",
    "imagenet",
)
DEFAULT_DEPTH = 101
DEFAULT_IMAGENET_CLASSES = VOC_NUM_CLASSES


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
    parser.add_argument("source", choices=SOURCES, help="what to convert")
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


def _convert(args):
    if args.source == "refinenet-pytorch":
        from keras_refinenet.convert.refinenet_pytorch import (
            convert_refinenet_pytorch,
        )

        return convert_refinenet_pytorch(args.checkpoint, depth=args.depth)
    if args.source == "light-weight-refinenet":
        from keras_refinenet.convert.light_weight_refinenet import (
            convert_light_weight_refinenet,
        )

        return convert_light_weight_refinenet(args.checkpoint, depth=args.depth)
    if args.source == "matconvnet":
        from keras_refinenet.convert.matconvnet import convert_matconvnet

        return convert_matconvnet(
            args.checkpoint,
            depth=args.depth,
            dataset=args.dataset,
            resize_mode=args.resize_mode,
        )
    num_classes = args.num_classes or DEFAULT_IMAGENET_CLASSES
    if args.keras_hub_preset:
        from keras_refinenet.convert.imagenet import keras_hub_refinenet

        return keras_hub_refinenet(args.keras_hub_preset, num_classes)
    from keras_refinenet.convert.imagenet import (
        applications_resnet,
        imagenet_refinenet,
    )

    depth = args.depth or DEFAULT_DEPTH
    source = applications_resnet(depth, weights=args.checkpoint or "imagenet")
    return imagenet_refinenet(depth, num_classes, source=source)


def run(args):
    """Converts and writes the preset; returns the exit code."""
    from keras_refinenet.convert.checkpoints import (
        CheckpointMismatchError,
        TorchNotInstalledError,
        UnsafeCheckpointError,
    )
    from keras_refinenet.convert.install import (
        save_converted,
        with_num_classes,
    )

    if args.source != "imagenet" and not args.checkpoint:
        print(
            f"error: `{args.source}` needs a CHECKPOINT file.", file=sys.stderr
        )
        return 2
    if not (args.output or args.name):
        print("error: give --output DIR or --name PRESET.", file=sys.stderr)
        return 2
    try:
        model = with_num_classes(_convert(args), args.num_classes)
        preset_dir = save_converted(
            model,
            output=args.output,
            name=args.name,
            source=args.checkpoint,
            metadata={
                **getattr(model, "matconvnet_metadata", {}),
                "converted_with": f"keras-refinenet convert {args.source}",
            },
        )
    except (
        CheckpointMismatchError,
        TorchNotInstalledError,
        UnsafeCheckpointError,
        FileNotFoundError,
        ValueError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Wrote preset {preset_dir} ({model.count_params():,} parameters).")
    if args.name and not args.output:
        print(f'Load it with RefineNet.from_preset("{args.name}").')
    return 0
