"""`--precision` and `--decoder-conv` come from the library's constants."""

import argparse

import pytest

from keras_refinenet.cli.main import build_parser
from keras_refinenet.constants import (
    DECODER_CONVS,
    DEFAULT_INFERENCE_PRECISION,
    DIRECT_CONV,
    INFERENCE_PRECISIONS,
)


def _options(command):
    parser = build_parser()
    subparsers = next(
        action
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    return {
        action.dest: action
        for action in subparsers.choices[command]._actions
        if action.option_strings
    }


def test_predict_precision_defaults_to_float32():
    option = _options("predict")["precision"]
    assert tuple(option.choices) == INFERENCE_PRECISIONS
    assert option.default == DEFAULT_INFERENCE_PRECISION == "float32"


@pytest.mark.parametrize("command", ["predict", "export"])
def test_decoder_conv_choices(command):
    option = _options(command)["decoder_conv"]
    assert tuple(option.choices) == DECODER_CONVS
    assert option.default == DIRECT_CONV
