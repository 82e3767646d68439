"""Export a RefineNet preset as a TensorFlow Serving SavedModel.

Writes `MODEL_BASE/VERSION/` with the `serving_default` (uint8 images) and
`predict_image_bytes` (PNG/JPEG bytes) signatures, reloads it with
`tf.saved_model.load` and checks that it predicts what the Keras model
predicts.

    python examples/export_for_tf_serving.py --preset runs/mine/preset \
        --model-base models/refinenet
    python examples/export_for_tf_serving.py --smoke --model-base /tmp/models
"""

import argparse
import io
import pathlib
import tempfile
import time

import numpy as np
from PIL import Image

CHECK_SIZE = (96, 128)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", help="preset name or directory")
    parser.add_argument("--model-base", default="models/refinenet")
    parser.add_argument("--version", type=int, help="default: next free")
    parser.add_argument(
        "--max-pixels", type=int, help="largest height * width per request"
    )
    parser.add_argument("--model-name", default="refinenet")
    parser.add_argument(
        "--no-weights", action="store_true", help="export random weights"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny model")
    args = parser.parse_args()
    if not args.smoke and not args.preset:
        parser.error(
            "--preset is required without --smoke. Received: preset=None"
        )
    return args


def tiny_preset(folder):
    """A small randomly initialised RefineNet saved as a preset."""
    from keras_refinenet import tiny_refinenet

    model = tiny_refinenet(num_classes=3)
    return str(model.save_to_preset(pathlib.Path(folder) / "preset"))


def png_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def main():
    args = parse_args()
    started = time.time()
    import tensorflow as tf

    from keras_refinenet import RefineNet
    from keras_refinenet.export.saved_model import export_saved_model

    preset = args.preset
    if args.smoke:
        preset = tiny_preset(tempfile.mkdtemp(prefix="refinenet_export_"))
    model = RefineNet.from_preset(preset, load_weights=not args.no_weights)
    options = {} if args.max_pixels is None else {"max_pixels": args.max_pixels}
    path = export_saved_model(
        model, args.model_base, version=args.version, **options
    )
    print(f"Exported to {path}")

    loaded = tf.saved_model.load(str(path))
    print("Signatures:", sorted(loaded.signatures))
    image = np.random.default_rng(0).integers(
        0, 256, size=CHECK_SIZE + (3,), dtype=np.uint8
    )
    expected = model.predict_segmentation(image)
    served = loaded.signatures["serving_default"](
        images=tf.constant(image[None])
    )
    from_bytes = loaded.signatures["predict_image_bytes"](
        image_bytes=tf.constant([png_bytes(image)])
    )
    for name, outputs in (("images", served), ("image_bytes", from_bytes)):
        class_ids = outputs["class_ids"].numpy()[0]
        agreement = float(np.mean(class_ids == expected))
        error = outputs["error"].numpy()[0].decode()
        print(
            f"{name}: class ids {class_ids.shape}, agreement with Keras "
            f"{agreement:.4f}, error {error!r}"
        )
        if agreement < 0.999 or error:
            raise SystemExit(f"The exported {name} signature disagrees.")
    base = pathlib.Path(args.model_base).resolve()
    print("Serve it with:")
    print(
        f"  docker run -p 8500:8500 -p 8501:8501 -v {base}:/models/"
        f"{args.model_name} -e MODEL_NAME={args.model_name} tensorflow/serving"
    )
    print(f"Done in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
