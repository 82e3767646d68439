"""The `keras-refinenet` command line.

Every module in `keras_refinenet.cli` that defines `add_parser(subparsers)`
is a subcommand: `add_parser` adds its `argparse` sub-parser and sets
`func` (called with the parsed arguments, returning an exit code). Modules
import TensorFlow and the model lazily inside their `run` functions, so
`keras-refinenet --help` stays fast.

How the command behaves for people:

- A bad argument, file or dataset ends in one `error: ...` line on stderr
  (the library's own message) and exit code 2 (`EXIT_USAGE`); an
  unexpected failure ends in one `error: ...` line and exit code 1. The
  traceback is shown only with `--debug` (anywhere on the command line).
- TensorFlow, absl and oneDNN start-up messages are hidden unless
  `--verbose` is given before the command (`keras-refinenet --verbose
  train ...`); the logging environment is set before TensorFlow is
  imported.
"""

import argparse
import contextlib
import importlib
import pkgutil
import sys
import warnings

from keras_refinenet.cli import startup
from keras_refinenet.version import __version__

PROGRAM = "keras-refinenet"
DEBUG_FLAG = "--debug"
VERBOSE_FLAG = "--verbose"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# Errors that describe the user's input (arguments, files, datasets).
USER_ERRORS = (ValueError, OSError, KeyError, ImportError)
WRAPPED_ERROR_PREFIXES = ("ValueError: ", "OSError: ", "FileNotFoundError: ")
FRAMEWORK_MODULES = ("tensorflow", "keras")
QUIET_LOGGERS = ("absl", "tensorflow", "h5py", "matplotlib")


class CommandParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one `error: ...` line."""

    def error(self, message):
        print(
            f"error: {self.prog}: {message} (see `{self.prog} --help`)",
            file=sys.stderr,
        )
        sys.exit(EXIT_USAGE)


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
    parser = CommandParser(
        prog=PROGRAM,
        description="RefineNet semantic segmentation for Keras 3.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        VERBOSE_FLAG,
        dest="framework_logs",
        action="store_true",
        help="show TensorFlow / absl log messages (before the command)",
    )
    parser.add_argument(
        DEBUG_FLAG,
        action="store_true",
        help="show the Python traceback of errors (anywhere on the line)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _subcommand_modules():
        module.add_parser(subparsers)
    return parser


def _split_global_flags(argv):
    """`(argv without --debug, debug, verbose)`; `--verbose` counts only
    before the command (after it, it is the command's own option)."""
    debug = DEBUG_FLAG in argv
    argv = [token for token in argv if token != DEBUG_FLAG]
    return argv, debug, startup.wants_framework_logs(argv)


def configure_logging(verbose):
    """Sets the framework logging environment; call before TensorFlow is
    imported. Values the user already set are kept.

    Args:
        verbose: keep the frameworks' own logging as it is.
    """
    if verbose:
        return
    startup.quiet_environment()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import logging

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def import_frameworks_quietly():
    """Imports TensorFlow and Keras with their start-up messages hidden."""
    startup.silence_stderr()
    try:
        for name in FRAMEWORK_MODULES:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
    finally:
        startup.restore_stderr()
    with contextlib.suppress(ImportError):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)


def error_message(error):
    """The one-line message of an exception.

    TensorFlow errors raised inside `tf.data` carry the original Python
    error (`ValueError: ...`) among their lines; that line is used.

    Example:

    >>> error_message(ValueError("Bad mask.\\nReceived: mask='a.png'"))
    "Bad mask. Received: mask='a.png'"
    """
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"{error.strerror or 'no such file'}: {error.filename!r}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1:
        for line in reversed(lines):
            for prefix in WRAPPED_ERROR_PREFIXES:
                if prefix in line:
                    return line.split(prefix, 1)[1]
    return " ".join(lines) or type(error).__name__


def progress_verbosity(stream=None):
    """Keras progress-bar verbosity for `stream` (stdout by default): 1
    (animated bar) on a terminal, else 2 (plain lines, no ANSI escapes).

    Example:

    >>> import io
    >>> progress_verbosity(io.StringIO())
    2
    """
    stream = sys.stdout if stream is None else stream
    return 1 if getattr(stream, "isatty", lambda: False)() else 2


def _is_user_error(error):
    if isinstance(error, USER_ERRORS):
        return True
    module = type(error).__module__ or ""
    # tf.errors.InvalidArgumentError and friends wrap errors of the data.
    return module.startswith("tensorflow") and "Error: " in str(error)


def main(argv=None):
    """Runs the command line; returns the process exit code."""
    argv, debug, verbose = _split_global_flags(
        list(sys.argv[1:] if argv is None else argv)
    )
    configure_logging(verbose)
    if verbose:
        startup.restore_stderr()
        parser = build_parser()
    else:
        startup.silence_stderr()
        try:
            parser = build_parser()
        finally:
            startup.restore_stderr()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if not verbose:
        import_frameworks_quietly()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if debug:
            raise
        message = error_message(error)
        if _is_user_error(error):
            print(f"error: {message}", file=sys.stderr)
            return EXIT_USAGE
        print(
            f"error: {type(error).__name__}: {message} "
            f"(rerun with {DEBUG_FLAG} for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
