"""`keras-refinenet inspect CHECKPOINT`: what a `.mat` / `.pth` file holds.

Prints the groups, layers (types, inputs, outputs, settings), parameter
names and shapes, classes, input scales and the architecture derived from
the graph, so a user whose file differs from the released ones can see how
and report it. Nothing in the file is executed.
"""

from keras_refinenet.cli.main import EXIT_OK


def add_parser(subparsers):
    """Adds the `inspect` sub-command."""
    parser = subparsers.add_parser(
        "inspect",
        help="show what a MatConvNet (.mat, legacy folder) or PyTorch "
        "(.pth) checkpoint holds",
        description="Reads a checkpoint without running anything from it "
        "and prints its groups, layers, parameter names and shapes, "
        "classes, input scales and the RefineNet architecture derived from "
        "its graph.",
    )
    parser.add_argument(
        "checkpoint", help="a .mat file, a legacy model folder or a .pth file"
    )
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Prints the description; returns the exit code."""
    from keras_refinenet.convert.matconvnet_checkpoint import (
        describe_checkpoint,
    )

    print(describe_checkpoint(args.checkpoint))
    return EXIT_OK
