"""`keras-refinenet demo`: train, evaluate and look at a small RefineNet.

Trains the demo RefineNet (`models.demo`) with the demo recipe
(`training.demo`) on the built-in synthetic shapes dataset, which takes a
few minutes on a laptop CPU, then evaluates the saved preset on held-out
synthetic images and writes example sheets (`inference.visualize`).
"""

import pathlib
import time

from keras_refinenet.cli.main import EXIT_FAILURE, EXIT_OK
from keras_refinenet.training.demo import DEFAULT_DEMO_SEED

DEFAULT_OUTPUT = "refinenet_demo"
METRICS_FILE = "metrics.json"
EXAMPLES_DIR = "examples"


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
    parser.add_argument("--seed", type=int, default=DEFAULT_DEMO_SEED)
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
    from keras_refinenet.inference.visualize import example_sheet, write_png
    from keras_refinenet.models.demo import build_demo_model
    from keras_refinenet.models.refinenet import RefineNet
    from keras_refinenet.training import trainer
    from keras_refinenet.training.demo import (
        DEMO_TRAINING,
        SMOKE_TRAINING,
        SYNTHETIC_DATASET,
        TARGET_MEAN_IOU,
        demo_palette,
        demo_train_config,
    )

    started = time.time()
    settings = dict(SMOKE_TRAINING if args.smoke else DEMO_TRAINING)
    if args.epochs:
        settings["epochs"] = args.epochs
    output = pathlib.Path(args.output)
    palette = demo_palette()
    config = demo_train_config(output, settings, seed=args.seed)
    trained = trainer.run_training(config, build_model=build_demo_model)
    train_seconds = time.time() - started

    model = RefineNet.from_preset(trained["preset_dir"])
    test_set = load_dataset(
        SYNTHETIC_DATASET,
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
        return EXIT_FAILURE
    return EXIT_OK
