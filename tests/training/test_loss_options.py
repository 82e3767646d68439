"""Loss options checked before training: the rules of `training_loss`."""

import argparse
import re

import pytest

from keras_refinenet.training.loss_options import (
    check_loss_options,
    checked_loss_spec,
    command_line_type,
)
from keras_refinenet.training.losses import parse_class_weights


def test_checked_loss_spec_returns_the_text():
    assert checked_loss_spec("ce + 0.5*lovasz") == "ce + 0.5*lovasz"
    with pytest.raises(ValueError, match="Received: loss='mse'"):
        checked_loss_spec("mse")


def test_command_line_type_reports_the_library_message():
    parse = command_line_type(parse_class_weights)
    assert parse.__name__ == "parse_class_weights"
    assert parse("0.5,2") == [0.5, 2.0]
    with pytest.raises(argparse.ArgumentTypeError) as error:
        parse("-1,2")
    assert "Received: class_weights='-1,2'" in str(error.value)


def test_command_line_type_in_a_parser(capsys):
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--loss", type=command_line_type(checked_loss_spec))
    assert parser.parse_args(["--loss", "ohem+dice"]).loss == "ohem+dice"
    with pytest.raises(SystemExit):
        parser.parse_args(["--loss", "ce+mse"])
    assert "Received: loss='ce+mse'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"loss": None},
        {"loss": "ce+dice", "class_weights": [1.0, 3.0]},
        {"loss": "ohem", "ohem_thresh": 0.6, "ohem_min_kept": 10},
        # "auto" with OHEM options becomes "ohem", as in a training run.
        {"ohem_min_kept": 10, "class_weights": [1.0, 2.0]},
        {"ohem_thresh": 0.5},
        # A method name is checked for its name only.
        {"loss": "ce", "class_weights": "auto"},
        {"class_weights": "inverse"},
    ],
)
def test_options_a_training_run_accepts(options):
    check_loss_options(**options)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"loss": "dice", "ohem_thresh": 0.5}, "need an 'ohem' loss term"),
        ({"loss": "dice", "class_weights": [1.0]}, "cross-entropy terms"),
        ({"loss": "lovasz", "class_weights": "auto"}, "cross-entropy terms"),
        ({"loss": "ce", "class_weights": "heaviest"}, "Class weights must"),
        ({"loss": "ce+"}, re.escape("Received: loss='ce+'")),
    ],
)
def test_options_a_training_run_refuses(options, message):
    with pytest.raises(ValueError, match=message):
        check_loss_options(**options)
