"""The command line takes its choices and defaults from the library."""

import argparse

import pytest

from keras_refinenet.cli.main import build_parser
from keras_refinenet.convert.dispatch import CHECKPOINT_FORMATS
from keras_refinenet.data import inspection
from keras_refinenet.data.datasets import DATASET_NAMES, SYNTHETIC_SIZES
from keras_refinenet.evaluation import PREDICTION_FOLDER_EVALUATORS
from keras_refinenet.inference.images import TTA_CHOICES, TTA_NONE
from keras_refinenet.inference.visualize import (
    DEFAULT_OUTPUT_FORMAT,
    OUTPUT_FORMATS,
)
from keras_refinenet.models.presets import RESNET_DEPTHS
from keras_refinenet.refinenet_release import DEFAULT_RESIZE_MODE
from keras_refinenet.training.defaults import OPTIMIZER_NAMES
from keras_refinenet.training.demo import DEFAULT_DEMO_SEED
from keras_refinenet.training.distribute import STRATEGY_NAMES
from keras_refinenet.training.precision import PRECISION_POLICIES
from keras_refinenet.training.trainer import TrainConfig


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
        if action.option_strings or action.dest
    }


@pytest.mark.parametrize(
    "command, dest, choices",
    [
        ("train", "dataset", DATASET_NAMES),
        ("evaluate", "dataset", DATASET_NAMES),
        ("train", "mixed_precision", PRECISION_POLICIES),
        ("export", "dtype", PRECISION_POLICIES),
        ("train", "strategy", STRATEGY_NAMES),
        ("train", "optimizer", OPTIMIZER_NAMES),
        ("predict", "fmt", OUTPUT_FORMATS),
        ("convert", "depth", RESNET_DEPTHS),
        ("convert", "source", CHECKPOINT_FORMATS),
        ("predict", "tta", TTA_CHOICES),
        (
            "evaluate-predictions",
            "dataset",
            tuple(PREDICTION_FOLDER_EVALUATORS),
        ),
    ],
)
def test_choices_are_the_library_names(command, dest, choices):
    assert tuple(_options(command)[dest].choices) == tuple(choices)


def test_train_defaults_are_the_config_defaults():
    options = _options("train")
    config = TrainConfig()
    for dest in (
        "strategy",
        "optimizer",
        "decoder_lr_multiplier",
        "warmup_steps",
        "seed",
        "jit_compile",
        "scale_range",
    ):
        assert options[dest].default == getattr(config, dest), dest
    assert options["clipnorm"].default == config.global_clipnorm
    assert options["synthetic_train_images"].default == SYNTHETIC_SIZES["train"]
    assert options["synthetic_val_images"].default == SYNTHETIC_SIZES["val"]
    assert options["synthetic_image_size"].default == (
        config.synthetic_image_size
    )
    assert _options("predict")["fmt"].default == DEFAULT_OUTPUT_FORMAT
    assert _options("predict")["tta"].default == TTA_NONE


def test_other_defaults_are_the_library_defaults():
    inspect_data = _options("inspect-data")
    assert inspect_data["layout"].choices == inspection.LAYOUTS
    assert inspect_data["layout"].default == inspection.AUTO_LAYOUT
    assert inspect_data["seed"].default == inspection.DEFAULT_SHEET_SEED
    assert inspect_data["sheet_pairs"].default == (
        inspection.DEFAULT_SHEET_PAIRS
    )
    assert _options("demo")["seed"].default == DEFAULT_DEMO_SEED
    assert _options("convert")["resize_mode"].default == DEFAULT_RESIZE_MODE
