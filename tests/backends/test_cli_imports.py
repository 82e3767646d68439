"""`keras-refinenet --help` imports no framework; the subcommands it lists
without importing them are the ones their modules define."""

import argparse
import os
import pathlib
import subprocess
import sys

import pytest

from keras_refinenet.cli import main as cli_main

REPO_ROOT = pathlib.Path(__file__).parents[2]
FRAMEWORKS = ("tensorflow", "keras", "keras_hub", "keras_cv", "jax", "torch")
HELP_AND_MODULES = """
import sys
from keras_refinenet.cli.main import main
try:
    main(["--help"])
except SystemExit:
    pass
print([name for name in {frameworks!r} if name in sys.modules])
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_help_imports_no_framework(backend):
    environment = dict(os.environ, KERAS_BACKEND=backend)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), environment.get("PYTHONPATH", "")]
    )
    completed = subprocess.run(
        [sys.executable, "-c", HELP_AND_MODULES.format(frameworks=FRAMEWORKS)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "train" in completed.stdout
    assert completed.stdout.strip().splitlines()[-1] == "[]"


def _subcommands(parser):
    action = next(
        action
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    return {
        choice.dest: choice.help for choice in action._choices_actions
    }, set(action.choices)


def test_listed_subcommands_are_the_modules_own():
    listed = _subcommands(cli_main.build_parser(commands=()))
    built = _subcommands(cli_main.build_parser())
    assert listed == built
    assert "train" in built[1] and "evaluate-predictions" in built[1]


def test_only_the_command_run_gets_its_full_parser():
    parser = cli_main.build_parser(commands=["presets"])
    _, choices = _subcommands(parser)
    action = next(
        action
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    assert "presets" in choices
    assert action.choices["presets"].get_default("func") is not None
    assert action.choices["train"].get_default("func") is None
