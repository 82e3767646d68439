"""Fine-tune a RefineNet preset on a folder dataset with your own classes.

DATA_DIR holds `train/images`, `train/masks`, `val/images` and `val/masks`
(masks: single-channel PNGs with the image stems, class ids 0..N-1, 255 for
ignored pixels). The preset's classifier is rebuilt for `--num-classes`;
every other weight is loaded. Writes the fine-tuned model as a preset
directory with the class names, and prints per-class IoU.

    python examples/finetune_folder_dataset.py --data-dir my_dataset \
        --num-classes 5 --class-names bg road car person sky \
        --preset refinenet101_voc --epochs 30 --batch-size 8 \
        --crop-size 384 384 --output runs/mine
    python examples/finetune_folder_dataset.py --smoke
"""

import argparse
import pathlib
import tempfile
import time

from PIL import Image

SMOKE_CLASSES = ("background", "circle", "rectangle", "triangle")
SMOKE_IMAGES = {"train": 8, "val": 4}
SMOKE_PRETRAINED_CLASSES = 21


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data-dir", help="folder with train/ and val/")
    parser.add_argument("--num-classes", type=int)
    parser.add_argument("--class-names", nargs="+")
    parser.add_argument("--preset", default="refinenet101_voc")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--crop-size", type=int, nargs=2, default=(384, 384), metavar=("H", "W")
    )
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--decoder-lr-multiplier", type=float, default=10.0)
    parser.add_argument(
        "--freeze-batchnorm",
        action="store_true",
        help="keep the backbone's BatchNorm statistics (small batches)",
    )
    parser.add_argument(
        "--no-weights", action="store_true", help="start from random weights"
    )
    parser.add_argument("--output", default="runs/finetune")
    parser.add_argument("--smoke", action="store_true", help="tiny run")
    args = parser.parse_args()
    if not args.smoke and (args.data_dir is None or args.num_classes is None):
        parser.error(
            "--data-dir and --num-classes are required without --smoke. "
            f"Received: data_dir={args.data_dir!r}, "
            f"num_classes={args.num_classes!r}"
        )
    return args


def write_smoke_dataset(folder):
    """A folder dataset of synthetic shapes (PNG images and masks)."""
    from keras_refinenet.data import make_synthetic_arrays

    for seed, (split, count) in enumerate(SMOKE_IMAGES.items()):
        images, masks = make_synthetic_arrays(count, image_size=64, seed=seed)
        masks[:, :, :2] = 255
        for kind in ("images", "masks"):
            (folder / split / kind).mkdir(parents=True, exist_ok=True)
        for index, (image, mask) in enumerate(zip(images, masks)):
            Image.fromarray(image).save(
                folder / split / "images" / f"{index}.jpg"
            )
            Image.fromarray(mask).save(
                folder / split / "masks" / f"{index}.png"
            )
    return folder


def write_smoke_pretrained_preset(folder):
    """A small "pretrained" preset with 21 classes to fine-tune from."""
    from keras_refinenet import tiny_refinenet

    model = tiny_refinenet(num_classes=SMOKE_PRETRAINED_CLASSES)
    return str(model.save_to_preset(folder / "pretrained"))


def main():
    args = parse_args()
    started = time.time()
    import keras

    from keras_refinenet import RefineNet
    from keras_refinenet.data import (
        evaluation_pipeline,
        load_folder_dataset,
        training_pipeline,
    )
    from keras_refinenet.evaluation.report import (
        confusion_over_dataset,
        format_report,
        metrics_report,
    )

    if args.smoke:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="refinenet_finetune_"))
        args.data_dir = str(write_smoke_dataset(folder / "data"))
        args.preset = write_smoke_pretrained_preset(folder)
        args.num_classes, args.class_names = len(SMOKE_CLASSES), SMOKE_CLASSES
        args.epochs, args.batch_size, args.crop_size = 2, 4, (48, 48)
        args.learning_rate, args.output = 1e-2, str(folder / "run")
    class_names = list(
        args.class_names or [f"class_{i}" for i in range(args.num_classes)]
    )
    if len(class_names) != args.num_classes:
        raise SystemExit(
            "--class-names needs one name per class. Received: "
            f"{len(class_names)} names for {args.num_classes} classes"
        )

    data_dir = pathlib.Path(args.data_dir)
    train, val = (
        load_folder_dataset(
            data_dir / split / "images",
            data_dir / split / "masks",
            num_classes=args.num_classes,
        )
        for split in ("train", "val")
    )
    train_size = int(train.cardinality())
    steps_per_epoch = max(train_size // args.batch_size, 1)
    train_batches = training_pipeline(
        train.cache(),
        batch_size=args.batch_size,
        crop_size=tuple(args.crop_size),
        seed=0,
        repeat=True,
    )
    val_batches = evaluation_pipeline(val, batch_size=1)

    model = RefineNet.from_preset(
        args.preset,
        load_weights=not args.no_weights,
        num_classes=args.num_classes,
        freeze_batchnorm=args.freeze_batchnorm,
    )
    print(
        f"{args.preset}: classifier rebuilt for {args.num_classes} classes, "
        f"{model.count_params():,} parameters, {train_size} training images"
    )
    model.compile(
        learning_rate=args.learning_rate,
        decay_steps=args.epochs * steps_per_epoch,
        decoder_lr_multiplier=args.decoder_lr_multiplier,
        jit_compile=False,
    )
    output = pathlib.Path(args.output)
    model.fit(
        train_batches,
        epochs=args.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=val_batches,
        callbacks=[keras.callbacks.TerminateOnNaN()],
        verbose=2,
    )
    confusion, seen = confusion_over_dataset(
        model, val_batches, args.num_classes
    )
    report = metrics_report(confusion, class_names, {"images": seen})
    print(format_report(report))
    preset_dir = model.save_to_preset(
        output / "preset",
        metadata={"class_names": class_names, "finetuned_from": args.preset},
    )
    print(f"Saved the fine-tuned preset to {preset_dir}")
    print(f"Done in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
