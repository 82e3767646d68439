"""The demo's training recipe: the demo model on the synthetic shapes.

`keras-refinenet demo` trains `models.demo.build_demo_model` with
`demo_train_config(...)`: 20 epochs of AdamW on 64-pixel synthetic images,
a few CPU minutes to a mean IoU above `TARGET_MEAN_IOU`. `SMOKE_TRAINING`
is the same recipe cut to a few seconds.
"""

from keras_refinenet.data.synthetic import SYNTHETIC_PALETTE
from keras_refinenet.training.trainer import TrainConfig

SYNTHETIC_DATASET = "synthetic"
DEFAULT_DEMO_SEED = 0
# Mean IoU of the full demo on held-out synthetic images, at least.
TARGET_MEAN_IOU = 0.7
DEMO_DESCRIPTION = (
    "keras-refinenet demo: a small RefineNet trained on the synthetic "
    "shapes dataset."
)
DEMO_TRAINING = {
    "epochs": 20,
    "steps_per_epoch": 32,
    "batch_size": 16,
    "image_size": 64,
    "train_images": 512,
    "val_images": 64,
    "test_images": 128,
    "optimizer": "adamw",
    "learning_rate": 2e-3,
    "warmup_steps": 20,
    "global_clipnorm": 1.0,
    "scale_range": (0.75, 1.5),
    "examples": 6,
}
SMOKE_TRAINING = dict(
    DEMO_TRAINING,
    epochs=1,
    steps_per_epoch=2,
    batch_size=4,
    train_images=8,
    val_images=4,
    test_images=4,
    examples=2,
)


def demo_palette():
    """The synthetic classes' colours as lists (JSON-ready).

    Returns:
        One `[r, g, b]` list per synthetic class.

    Example:

    >>> demo_palette()[0]
    [0, 0, 0]
    """
    return [list(color) for color in SYNTHETIC_PALETTE]


def demo_train_config(
    output, settings=None, seed=DEFAULT_DEMO_SEED, **overrides
):
    """The `TrainConfig` of the demo (a new model, the synthetic dataset).

    Args:
        output: the run's output folder.
        settings: `DEMO_TRAINING` (default), `SMOKE_TRAINING` or a dict
            with the same keys.
        seed: random seed of the data and the initialisation.
        **overrides: more `TrainConfig` fields, e.g. `loss="ce+dice"`.

    Returns:
        A `TrainConfig`; train it with
        `run_training(config, build_model=build_demo_model)`.

    Example:

    >>> config = demo_train_config("runs/demo", SMOKE_TRAINING)
    >>> config.epochs, config.crop_size, config.preset
    (1, (64, 64), None)
    """
    settings = DEMO_TRAINING if settings is None else settings
    size = settings["image_size"]
    fields = {
        "preset": None,
        "output": str(output),
        "dataset": SYNTHETIC_DATASET,
        "epochs": settings["epochs"],
        "steps_per_epoch": settings["steps_per_epoch"],
        "batch_size": settings["batch_size"],
        "crop_size": (size, size),
        "optimizer": settings["optimizer"],
        "learning_rate": settings["learning_rate"],
        "warmup_steps": settings["warmup_steps"],
        "global_clipnorm": settings["global_clipnorm"],
        "scale_range": settings["scale_range"],
        "seed": seed,
        "synthetic_train_images": settings["train_images"],
        "synthetic_val_images": settings["val_images"],
        "synthetic_image_size": size,
        "preset_metadata": {
            "description": DEMO_DESCRIPTION,
            "palette": demo_palette(),
        },
    }
    return TrainConfig(**{**fields, **overrides})
