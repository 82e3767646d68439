"""The demo recipe: its `TrainConfig` follows the settings it is given."""

from keras_refinenet.data.synthetic import SYNTHETIC_PALETTE
from keras_refinenet.training.demo import (
    DEMO_TRAINING,
    SMOKE_TRAINING,
    demo_train_config,
)
from keras_refinenet.training.trainer import TrainConfig


def test_full_recipe_config():
    config = demo_train_config("runs/demo", seed=3)
    assert isinstance(config, TrainConfig)
    assert config.preset is None and config.dataset == "synthetic"
    assert config.output == "runs/demo" and config.seed == 3
    assert (config.epochs, config.steps_per_epoch, config.batch_size) == (
        20,
        32,
        16,
    )
    assert config.crop_size == (64, 64)
    assert config.synthetic_image_size == 64
    assert (config.synthetic_train_images, config.synthetic_val_images) == (
        512,
        64,
    )
    assert (config.optimizer, config.learning_rate) == ("adamw", 2e-3)
    assert config.warmup_steps == 20 and config.global_clipnorm == 1.0
    assert config.scale_range == (0.75, 1.5)
    metadata = config.preset_metadata
    assert metadata["palette"] == [list(color) for color in SYNTHETIC_PALETTE]
    assert "demo" in metadata["description"]


def test_smoke_settings_and_overrides():
    config = demo_train_config(
        "out", SMOKE_TRAINING, loss="ce+dice", validation_steps=0
    )
    assert config.epochs == 1 and config.batch_size == 4
    assert config.synthetic_train_images == 8
    assert config.loss == "ce+dice" and config.validation_steps == 0
    # The smoke recipe is the full one cut short: same model input size.
    assert SMOKE_TRAINING["image_size"] == DEMO_TRAINING["image_size"]
    assert SMOKE_TRAINING["optimizer"] == DEMO_TRAINING["optimizer"]
