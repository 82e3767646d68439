"""`keras-refinenet demo`: train, evaluate and look at a small RefineNet.

Trains a small RefineNet (a narrow ResNet-10-style keras-cv backbone and
32-wide RefineNet blocks) on the built-in synthetic shapes dataset, which
takes a few minutes on a laptop CPU, then evaluates the saved preset on
held-out synthetic images and writes side-by-side pictures.
"""

import pathlib
import time

DEFAULT_OUTPUT = "refinenet_demo"
METRICS_FILE = "metrics.json"
EXAMPLES_DIR = "examples"
TARGET_MEAN_IOU = 0.7
PANEL_SCALE = 4
PANEL_GAP = 4
PANEL_GAP_COLOR = 255
PANEL_TITLES = ("image", "ground truth", "prediction")
TITLE_HEIGHT = 16
TITLE_MARGIN = 3
TITLE_COLOR = (0, 0, 0)
# The demo model: a narrow 4-stage bottleneck ResNet and thin decoder.
DEMO_ENCODER_FILTERS = (16, 32, 64, 128)
DEMO_MODEL = {
    "top_filters": 32,
    "decoder_filters": 32,
    "backbone_dropout": 0.0,
    "classifier_dropout": 0.0,
}
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


def build_demo_model(num_classes):
    """The demo RefineNet (random initialisation).

    Args:
        num_classes: number of classes.

    Returns:
        A `RefineNet` with about 1.4 million parameters.

    Example:

    >>> build_demo_model(4).count_params() < 2_000_000
    True
    """
    from keras_refinenet.models.tiny import tiny_refinenet

    return tiny_refinenet(
        num_classes, encoder_filters=DEMO_ENCODER_FILTERS, **DEMO_MODEL
    )


def side_by_side(image, ground_truth, prediction, palette):
    """`image | ground truth | prediction overlay`, enlarged, as uint8.

    Args:
        image: `(H, W, 3)` RGB image.
        ground_truth: `(H, W)` class ids (255 ignored).
        prediction: `(H, W)` predicted class ids.
        palette: one RGB colour per class.

    Returns:
        `uint8 (H * 4, W * 12 + gaps, 3)` array.

    Example:

    >>> import numpy as np
    >>> panel = side_by_side(np.zeros((2, 3, 3)), np.zeros((2, 3), int),
    ...                      np.zeros((2, 3), int), [(0, 0, 0)])
    >>> panel.shape
    (8, 44, 3)
    """
    import numpy as np

    from keras_refinenet.inference.visualize import colorize, overlay

    image = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    panels = [
        image,
        colorize(np.asarray(ground_truth), palette=palette),
        overlay(image, np.asarray(prediction), palette=palette),
    ]
    height = image.shape[0] * PANEL_SCALE
    gap = np.full((height, PANEL_GAP, 3), PANEL_GAP_COLOR, np.uint8)
    row = []
    for panel in panels:
        enlarged = np.repeat(
            np.repeat(panel, PANEL_SCALE, axis=0), PANEL_SCALE, axis=1
        )
        row.extend([enlarged, gap])
    return np.concatenate(row[:-1], axis=1)


def example_sheet(image, ground_truth, prediction, palette, class_names):
    """`side_by_side` with a title over each panel (image, ground truth,
    prediction) and the class legend on the right.

    Args:
        image: `(H, W, 3)` RGB image.
        ground_truth: `(H, W)` class ids (255 ignored).
        prediction: `(H, W)` predicted class ids.
        palette: one RGB colour per class.
        class_names: one name per class.

    Returns:
        `uint8` RGB array.

    Example:

    >>> import numpy as np
    >>> sheet = example_sheet(np.zeros((8, 8, 3)), np.zeros((8, 8), int),
    ...                       np.zeros((8, 8), int), [(0, 0, 0)], ["bg"])
    >>> sheet.shape[0] == 8 * PANEL_SCALE + TITLE_HEIGHT
    True
    """
    import numpy as np
    from PIL import Image, ImageDraw

    from keras_refinenet.inference.visualize import legend

    panels = side_by_side(image, ground_truth, prediction, palette)
    key = legend(class_names, palette)
    height = max(panels.shape[0], key.shape[0]) + TITLE_HEIGHT
    width = panels.shape[1] + PANEL_GAP + key.shape[1]
    sheet = Image.new("RGB", (width, height), (PANEL_GAP_COLOR,) * 3)
    sheet.paste(Image.fromarray(panels), (0, TITLE_HEIGHT))
    sheet.paste(
        Image.fromarray(key), (panels.shape[1] + PANEL_GAP, TITLE_HEIGHT)
    )
    draw = ImageDraw.Draw(sheet)
    panel_width = np.asarray(image).shape[1] * PANEL_SCALE
    for index, title in enumerate(PANEL_TITLES):
        left = index * (panel_width + PANEL_GAP) + TITLE_MARGIN
        draw.text((left, TITLE_MARGIN), title, fill=TITLE_COLOR)
    return np.asarray(sheet)


def add_parser(subparsers):
    """Adds the `demo` sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="train a small RefineNet on synthetic shapes in a few minutes",
        description="Trains a small RefineNet on the built-in synthetic "
        "dataset (CPU, a few minutes), evaluates it on held-out images and "
        "writes metrics.json, the trained preset and side-by-side PNGs "
        "(image, ground truth, prediction overlay, with titles and the "
        "class legend) to OUTPUT.",
    )
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few seconds of training, to check the installation",
    )
    parser.add_argument("--epochs", type=int, help="override the epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Runs `keras-refinenet demo`; returns the exit code."""
    import numpy as np

    from keras_refinenet.data import synthetic
    from keras_refinenet.data.datasets import (
        SYNTHETIC_SEEDS,
        TEST_SPLIT,
        load_dataset,
    )
    from keras_refinenet.data.pipeline import evaluation_pipeline
    from keras_refinenet.evaluation import (
        evaluate_model,
        format_report,
        predict_class_ids_fn,
        write_report,
    )
    from keras_refinenet.inference.visualize import write_png
    from keras_refinenet.models.refinenet import RefineNet
    from keras_refinenet.training import trainer

    started = time.time()
    settings = dict(SMOKE_TRAINING if args.smoke else DEMO_TRAINING)
    if args.epochs:
        settings["epochs"] = args.epochs
    output = pathlib.Path(args.output)
    palette = [list(color) for color in synthetic.SYNTHETIC_PALETTE]
    config = trainer.TrainConfig(
        preset=None,
        output=str(output),
        dataset="synthetic",
        epochs=settings["epochs"],
        steps_per_epoch=settings["steps_per_epoch"],
        batch_size=settings["batch_size"],
        crop_size=(settings["image_size"], settings["image_size"]),
        optimizer=settings["optimizer"],
        learning_rate=settings["learning_rate"],
        warmup_steps=settings["warmup_steps"],
        global_clipnorm=settings["global_clipnorm"],
        scale_range=settings["scale_range"],
        seed=args.seed,
        synthetic_train_images=settings["train_images"],
        synthetic_val_images=settings["val_images"],
        synthetic_image_size=settings["image_size"],
        preset_metadata={
            "description": "keras-refinenet demo: a small RefineNet trained "
            "on the synthetic shapes dataset.",
            "palette": palette,
        },
    )
    trained = trainer.run_training(config, build_model=build_demo_model)
    train_seconds = time.time() - started

    model = RefineNet.from_preset(trained["preset_dir"])
    test_set = load_dataset(
        "synthetic",
        TEST_SPLIT,
        synthetic_images=settings["test_images"],
        synthetic_image_size=settings["image_size"],
    )
    report = evaluate_model(
        model,
        evaluation_pipeline(
            test_set.examples, batch_size=settings["batch_size"]
        ),
        class_names=synthetic.SYNTHETIC_CLASS_NAMES,
        extra={
            "train_seconds": round(train_seconds, 1),
            "total_seconds": round(time.time() - started, 1),
            "target_mean_iou": TARGET_MEAN_IOU,
            "smoke": bool(args.smoke),
            "preset_dir": trained["preset_dir"],
        },
    )
    write_report(report, output / METRICS_FILE)

    predict = predict_class_ids_fn(model)
    count = settings["examples"]
    test_images, test_masks = synthetic.make_synthetic_arrays(
        count,
        image_size=settings["image_size"],
        seed=SYNTHETIC_SEEDS[TEST_SPLIT],
    )
    predictions = predict(test_images[:count].astype(np.float32)).numpy()
    for index in range(count):
        sheet = example_sheet(
            test_images[index],
            test_masks[index],
            predictions[index],
            palette,
            synthetic.SYNTHETIC_CLASS_NAMES,
        )
        write_png(sheet, output / EXAMPLES_DIR / f"example_{index:02d}.png")

    print(format_report(report))
    trainer.log(
        f"demo finished in {report['total_seconds']:.0f} s: preset in "
        f"{trained['preset_dir']}, metrics in {output / METRICS_FILE}, "
        f"pictures in {output / EXAMPLES_DIR}"
    )
    if not args.smoke and (report["mean_iou"] or 0.0) < TARGET_MEAN_IOU:
        trainer.log(
            f"warning: mean IoU {report['mean_iou']:.3f} is below the "
            f"expected {TARGET_MEAN_IOU}"
        )
        return 1
    return 0
