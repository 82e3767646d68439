"""Segment images with a RefineNet preset and write overlays.

For every image writes `<stem>_ids.png` (class ids), `<stem>_overlay.png`
(colours over the image) and, once, `legend.png`. Large images are tiled;
`--scales` and `--flip` average test-time augmentations.

    python examples/predict_and_visualize.py --preset refinenet101_cityscapes \
        --image frame.png --tile-size 1024 --scales 0.75 1 1.25 --flip \
        --output prediction/
    python examples/predict_and_visualize.py --smoke --output /tmp/prediction
"""

import argparse
import pathlib
import tempfile
import time

import numpy as np
from PIL import Image


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", help="preset name or directory")
    parser.add_argument("--image", nargs="+", default=[], help="image files")
    parser.add_argument("--output", default="prediction")
    parser.add_argument("--tile-size", type=int, help="largest tile")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--flip", action="store_true", help="flip TTA")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument(
        "--no-weights",
        action="store_true",
        help="random weights (to try a preset without converted weights)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny model and synthetic images made on the fly",
    )
    args = parser.parse_args()
    if not args.smoke and (not args.preset or not args.image):
        parser.error(
            "--preset and --image are required without --smoke. "
            f"Received: preset={args.preset!r}, image={args.image!r}"
        )
    return args


def make_smoke_inputs(folder):
    """A tiny preset and two synthetic images of different sizes."""
    from keras_refinenet import tiny_refinenet
    from keras_refinenet.data import (
        SYNTHETIC_CLASS_NAMES,
        SYNTHETIC_PALETTE,
        make_synthetic_arrays,
    )

    model = tiny_refinenet(num_classes=len(SYNTHETIC_CLASS_NAMES))
    preset = model.save_to_preset(
        folder / "preset",
        metadata={
            "class_names": list(SYNTHETIC_CLASS_NAMES),
            "palette": [list(color) for color in SYNTHETIC_PALETTE],
        },
    )
    paths = []
    for index, size in enumerate([(96, 128), (150, 90)]):
        images, _ = make_synthetic_arrays(1, image_size=size, seed=index)
        path = folder / f"synthetic_{index}.png"
        Image.fromarray(images[0]).save(path)
        paths.append(str(path))
    return str(preset), paths


def main():
    args = parse_args()
    started = time.time()
    from keras_refinenet import RefineNet
    from keras_refinenet.inference.visualize import (
        legend,
        overlay,
        preset_palette,
        write_png,
    )

    output = pathlib.Path(args.output)
    preset, image_paths = args.preset, args.image
    tile_size = args.tile_size
    if args.smoke:
        preset, image_paths = make_smoke_inputs(
            pathlib.Path(tempfile.mkdtemp(prefix="refinenet_predict_"))
        )
        tile_size, args.flip = 64, True

    model = RefineNet.from_preset(preset, load_weights=not args.no_weights)
    palette, class_names = preset_palette(preset, model.num_classes)
    write_png(legend(class_names, palette), output / "legend.png")
    for path in image_paths:
        image = np.asarray(Image.open(path).convert("RGB"))
        class_ids = model.predict_segmentation(
            image, tile_size=tile_size, scales=args.scales, flip=args.flip
        )
        stem = pathlib.Path(path).stem
        write_png(class_ids.astype(np.uint8), output / f"{stem}_ids.png")
        write_png(
            overlay(image, class_ids, alpha=args.alpha, palette=palette),
            output / f"{stem}_overlay.png",
        )
        present = [class_names[i] for i in np.unique(class_ids)]
        print(f"{path}: {image.shape[1]}x{image.shape[0]}, classes {present}")
    print(f"Wrote {len(image_paths)} predictions and legend.png to {output}")
    print(f"Done in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
