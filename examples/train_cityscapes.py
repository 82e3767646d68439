"""Train RefineNet on Cityscapes (19 classes) and evaluate it.

Reads the official `leftImg8bit_trainvaltest.zip` and
`gtFine_trainvaltest.zip` from MANUAL_DIR (prepared once as TensorFlow
Datasets records), trains with `model.fit` under the chosen
`tf.distribute` strategy, writes the trained model as OUTPUT/preset, and
prints per-class IoU on full-resolution validation images. Rerunning the
same command resumes an interrupted run.

    python examples/train_cityscapes.py --manual-dir ~/data/cityscapes_zips \
        --epochs 100 --batch-size 8 --crop-size 512 1024 \
        --strategy mirrored --mixed-precision mixed_float16 \
        --output runs/cityscapes
    python examples/train_cityscapes.py --smoke
"""

import argparse
import io
import pathlib
import tempfile
import time
import zipfile

import numpy as np
from PIL import Image

STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")
PRECISIONS = ("mixed_float16", "mixed_bfloat16")
# Fake Cityscapes for --smoke: frame names per split and label-id regions.
FAKE_FRAMES = {
    "train": ("aachen_000000_000019", "bochum_000000_000313"),
    "val": ("frankfurt_000000_000294",),
    "test": ("berlin_000000_000019",),
}
FAKE_FRAME_SHAPE = (1024, 2048)
FAKE_LABEL_IDS = (7, 11, 21, 23, 26)  # road, building, vegetation, sky, car


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--manual-dir", help="folder with the two zips")
    parser.add_argument("--data-dir", help="TensorFlow Datasets folder")
    parser.add_argument("--preset", default="refinenet101_cityscapes")
    parser.add_argument(
        "--no-weights",
        action="store_true",
        help="random initialisation instead of the preset's weights",
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--batch-size", type=int, default=8, help="global")
    parser.add_argument(
        "--crop-size",
        type=int,
        nargs=2,
        default=(512, 1024),
        metavar=("H", "W"),
    )
    parser.add_argument("--strategy", choices=STRATEGIES, default="default")
    parser.add_argument("--tpu", help="TPU name for --strategy tpu")
    parser.add_argument("--mixed-precision", choices=PRECISIONS)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--decoder-lr-multiplier", type=float, default=10.0)
    parser.add_argument("--validation-steps", type=int)
    parser.add_argument(
        "--eval-images", type=int, help="evaluate on at most this many"
    )
    parser.add_argument("--output", default="runs/cityscapes")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="fake Cityscapes zips, a tiny model, two steps",
    )
    args = parser.parse_args()
    if not args.smoke and not args.manual_dir and not args.data_dir:
        parser.error(
            "--manual-dir (or a prepared --data-dir) is required without "
            "--smoke. Received: manual_dir=None, data_dir=None"
        )
    return args


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def write_fake_cityscapes(manual_dir):
    """Two zips in the official layout with a few flat-coloured frames."""
    manual_dir.mkdir(parents=True, exist_ok=True)
    height, width = FAKE_FRAME_SHAPE
    band = height // len(FAKE_LABEL_IDS)
    label_ids = np.zeros(FAKE_FRAME_SHAPE, np.uint8)
    image = np.zeros(FAKE_FRAME_SHAPE + (3,), np.uint8)
    rng = np.random.default_rng(0)
    for index, label_id in enumerate(FAKE_LABEL_IDS):
        rows = slice(index * band, (index + 1) * band)
        label_ids[rows] = label_id
        image[rows] = rng.integers(0, 256, size=3)
    images_zip = zipfile.ZipFile(
        manual_dir / "leftImg8bit_trainvaltest.zip", "w"
    )
    labels_zip = zipfile.ZipFile(manual_dir / "gtFine_trainvaltest.zip", "w")
    image_png, label_png = _png(image), _png(label_ids)
    with images_zip, labels_zip:
        for split, frames in FAKE_FRAMES.items():
            for frame in frames:
                city = frame.split("_")[0]
                images_zip.writestr(
                    f"leftImg8bit/{split}/{city}/{frame}_leftImg8bit.png",
                    image_png,
                )
                labels_zip.writestr(
                    f"gtFine/{split}/{city}/{frame}_gtFine_labelIds.png",
                    label_png,
                )
    return manual_dir


def tiny_model(num_classes):
    """A small RefineNet for --smoke runs."""
    from keras_refinenet import tiny_refinenet

    return tiny_refinenet(num_classes=num_classes)


def main():
    args = parse_args()
    started = time.time()
    from keras_refinenet import RefineNet
    from keras_refinenet.data import (
        CITYSCAPES_CLASS_NAMES,
        evaluation_pipeline,
        load_cityscapes,
    )
    from keras_refinenet.evaluation.report import (
        confusion_over_dataset,
        format_report,
        metrics_report,
    )
    from keras_refinenet.training.trainer import TrainConfig, run_training

    build_model = None
    if args.smoke:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="refinenet_cityscapes_"))
        args.manual_dir = str(write_fake_cityscapes(folder / "zips"))
        args.data_dir, args.output = str(folder / "tfds"), str(folder / "run")
        args.epochs, args.steps_per_epoch, args.batch_size = 1, 2, 2
        args.crop_size, args.validation_steps = (128, 256), 0
        args.eval_images, build_model = 1, tiny_model

    config = TrainConfig(
        preset=args.preset,
        output=args.output,
        dataset="cityscapes",
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        crop_size=tuple(args.crop_size),
        strategy=args.strategy,
        tpu=args.tpu,
        mixed_precision=args.mixed_precision,
        learning_rate=args.learning_rate,
        decoder_lr_multiplier=args.decoder_lr_multiplier,
        validation_steps=args.validation_steps,
        load_weights=not args.no_weights,
        jit_compile=False if args.smoke else "auto",
        tensorboard=not args.smoke,
        verbose=2,
    )
    result = run_training(config, build_model=build_model)
    print(
        f"Trained in {result['seconds']:.0f} s; preset: {result['preset_dir']}"
    )
    if not result["chief"]:
        return

    model = RefineNet.from_preset(result["preset_dir"])
    val = load_cityscapes(
        "val", data_dir=args.data_dir, manual_dir=args.manual_dir
    )
    confusion, seen = confusion_over_dataset(
        model,
        evaluation_pipeline(val, batch_size=1),
        model.num_classes,
        max_batches=args.eval_images,
    )
    report = metrics_report(confusion, CITYSCAPES_CLASS_NAMES, {"images": seen})
    print(f"Validation ({seen} full-resolution images):")
    print(format_report(report))
    print(f"Done in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
