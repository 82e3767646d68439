"""Quiet framework start-up for the `keras-refinenet` command.

Imported first by `keras_refinenet/__init__.py`, before TensorFlow. In a
`keras-refinenet` process (the console script or `python -m
keras_refinenet.cli.main`) without `--verbose` before the command, it sets
the framework logging environment and sends file descriptor 2 to
/dev/null until `keras_refinenet.cli.main.main` calls `restore_stderr()`
(TensorFlow's C++ start-up messages ignore `TF_CPP_MIN_LOG_LEVEL`). For
`keras-refinenet predict` it also sets TensorFlow's inference-only CPU
settings (`keras_refinenet.inference.process_settings`). In any other
process (a library user's script, the tests) it does nothing.
"""

import atexit
import os
import sys

PROGRAM = "keras-refinenet"
CLI_MODULE = "keras_refinenet.cli.main"
VERBOSE_FLAG = "--verbose"
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR"}

# Commands that only run inference get TensorFlow's inference-only CPU
# settings (`keras_refinenet.inference.process_settings`).
INFERENCE_COMMANDS = ("predict",)

_saved_stderr = None


def is_cli_process():
    """Whether this process runs the `keras-refinenet` command."""
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    command_line = list(getattr(sys, "orig_argv", []))
    return program == PROGRAM or CLI_MODULE in command_line


def wants_framework_logs(argv):
    """Whether `--verbose` comes before the command name in `argv`."""
    for token in argv:
        if not token.startswith("-"):
            return False
        if token == VERBOSE_FLAG:
            return True
    return False


def command_name(argv):
    """The sub-command in `argv` (the first token that is not a flag)."""
    for token in argv:
        if not token.startswith("-"):
            return token
    return None


def inference_environment(argv):
    """Sets the inference-only CPU settings for `predict` (user values are
    kept); returns whether it did."""
    if command_name(argv) not in INFERENCE_COMMANDS:
        return False
    from keras_refinenet.inference import process_settings

    process_settings.use_inference_process_settings()
    return True


def quiet_environment():
    """Sets the logging environment (values the user set are kept)."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def silence_stderr():
    """Sends file descriptor 2 to /dev/null until `restore_stderr()`."""
    global _saved_stderr
    if _saved_stderr is not None:
        return
    sys.stderr.flush()
    _saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def restore_stderr():
    """Gives file descriptor 2 back (safe to call more than once)."""
    global _saved_stderr
    if _saved_stderr is None:
        return
    sys.stderr.flush()
    os.dup2(_saved_stderr, 2)
    os.close(_saved_stderr)
    _saved_stderr = None


def _excepthook(*exc_info):
    restore_stderr()
    sys.__excepthook__(*exc_info)


if is_cli_process():
    inference_environment(sys.argv[1:])
    if not wants_framework_logs(sys.argv[1:]):
        quiet_environment()
        silence_stderr()
        atexit.register(restore_stderr)
        sys.excepthook = _excepthook
