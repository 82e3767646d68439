"""The `keras-refinenet` command line.

Every module in `keras_refinenet.cli` that defines `add_parser(subparsers)`
is a subcommand: `add_parser` adds its `argparse` sub-parser and sets
`func` (called with the parsed arguments, returning an exit code). Modules
import TensorFlow and the model lazily inside their `run` functions, so
`keras-refinenet --help` stays fast.
"""

import argparse
import importlib
import pkgutil
import sys

from keras_refinenet.version import __version__

PROGRAM = "keras-refinenet"


def _subcommand_modules():
    package = importlib.import_module("keras_refinenet.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__)):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"keras_refinenet.cli.{info.name}")
        if hasattr(module, "add_parser"):
            yield module


def build_parser():
    """The top-level argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="RefineNet semantic segmentation for Keras 3.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _subcommand_modules():
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    """Runs the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
