"""`--precision` and `--decoder-conv` come from the library's constants."""

import argparse

from keras_refinenet.cli.main import build_parser
from keras_refinenet.constants import (
    AUTO_DECODER_CONV,
    DECODER_CONVS,
    DEFAULT_INFERENCE_PRECISION,
    DIRECT_CONV,
    INFERENCE_DECODER_CONVS,
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


def test_predict_decoder_conv_defaults_to_the_fastest_exact_one():
    option = _options("predict")["decoder_conv"]
    assert tuple(option.choices) == INFERENCE_DECODER_CONVS
    assert option.default == AUTO_DECODER_CONV == "auto"


def test_export_decoder_conv_defaults_to_direct():
    # A SavedModel may be served on a GPU, where the direct convolution is
    # cuDNN's.
    option = _options("export")["decoder_conv"]
    assert tuple(option.choices) == DECODER_CONVS
    assert option.default == DIRECT_CONV
