"""The `keras-refinenet` command line.

Every module in `keras_refinenet.cli` that defines `add_parser(subparsers)`
is a subcommand: `add_parser` adds its `argparse` sub-parser and sets
`func` (called with the parsed arguments, returning an exit code). Only the
module of the command being run is imported; the others are listed in
`--help` with the name and help their `add_parser` passes to
`subparsers.add_parser`, read from their source, so `keras-refinenet
--help` imports neither Keras nor TensorFlow.

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
import ast
import contextlib
import importlib
import pathlib
import pkgutil
import sys
import warnings

from keras_refinenet.backend_support import BackendNotSupportedError
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
USER_ERRORS = (
    ValueError,
    OSError,
    KeyError,
    ImportError,
    BackendNotSupportedError,
)
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


CLI_PACKAGE = "keras_refinenet.cli"
CLI_DIRECTORY = pathlib.Path(__file__).parent
SUBCOMMAND_FUNCTION = "add_parser"
UNREADABLE = (None, None)


def declared_subcommand(path):
    """The name and help a subcommand module gives its sub-parser, read
    from its source without importing it.

    Args:
        path: the module's `.py` file.

    Returns:
        `(name, help)` of the first `subparsers.add_parser("name",
        help="...")` call in its `add_parser` function; `(None, None)`
        when that call is not written with literal strings; `None` when
        the module has no `add_parser` function.

    Example:

    >>> declared_subcommand(CLI_DIRECTORY / "presets.py")[0]
    'presets'
    """
    tree = ast.parse(pathlib.Path(path).read_text(encoding="utf-8"))
    functions = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and node.name == SUBCOMMAND_FUNCTION
    ]
    if not functions:
        return None
    for call in ast.walk(functions[0]):
        is_add_parser = (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == SUBCOMMAND_FUNCTION
            and call.args
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
        )
        if not is_add_parser:
            continue
        helps = [
            keyword.value.value
            for keyword in call.keywords
            if keyword.arg == "help" and isinstance(keyword.value, ast.Constant)
        ]
        return call.args[0].value, (helps[0] if helps else None)
    return UNREADABLE


def _subcommand_sources():
    """`(module name, declared_subcommand)` of every subcommand module."""
    for info in sorted(pkgutil.iter_modules([str(CLI_DIRECTORY)])):
        if info.name.startswith("_") or info.name == "main":
            continue
        declared = declared_subcommand(CLI_DIRECTORY / f"{info.name}.py")
        if declared is not None:
            yield f"{CLI_PACKAGE}.{info.name}", declared


def command_name(argv):
    """The subcommand named in `argv` (its first non-option token), or
    `None`; the global options take no values.

    Example:

    >>> command_name(["--verbose", "train", "--preset", "p"])
    'train'
    """
    return next((token for token in argv if not token.startswith("-")), None)


def build_parser(commands=None):
    """The top-level argument parser.

    Args:
        commands: names of the subcommands whose modules are imported and
            whose full sub-parsers are built; `None` builds all of them.
            The others are listed (name and help, for `--help`) without
            being imported.

    Returns:
        The `argparse.ArgumentParser`.
    """
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
    for module_name, (name, help_text) in _subcommand_sources():
        if name is None or commands is None or name in commands:
            importlib.import_module(module_name).add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
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
    commands = [command_name(argv)]
    if verbose:
        startup.restore_stderr()
        parser = build_parser(commands)
    else:
        startup.silence_stderr()
        try:
            parser = build_parser(commands)
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
