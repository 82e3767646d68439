"""Export a RefineNet preset to every format and run each file.

Writes SavedModel, ONNX, LiteRT (float32 and int8) and OpenVINO exports
into `OUTPUT/<format>/`, runs each one in its own runtime (a process that
does not import keras_refinenet) on synthetic demo images and prints how
far each is from the Keras model. Needs the extras:
`pip install "keras-refinenet[onnx,litert,openvino]"`.

    python examples/export_every_format.py --preset runs/demo/preset \
        --output exports
    python examples/export_every_format.py --smoke --output /tmp/exports

With `--tta`, it also exports the SavedModel's `predict_tta` signature
and the ONNX file with tiling (64-pixel tiles), scales 0.75 and 1.25 and
flip inside the graph, and compares both with `predict_segmentation` on a
97x133 image.
"""

import argparse
import pathlib

FIXED_SIZE = (96, 128)
SMOKE_CALIBRATION_IMAGES = 16
SMOKE_VERIFY_IMAGES = 2
TTA_OPTIONS = {"tile_size": 64, "scales": (0.75, 1.25), "flip": True}
TTA_IMAGE_SIZE = (97, 133)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", help="preset name or directory")
    parser.add_argument("--output", default="exports")
    parser.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        default=FIXED_SIZE,
        metavar=("H", "W"),
        help="input size of the LiteRT files",
    )
    parser.add_argument("--calibration-data", default="synthetic")
    parser.add_argument("--smoke", action="store_true", help="tiny model")
    parser.add_argument(
        "--tta",
        action="store_true",
        help="also check tiling/TTA inside the SavedModel and ONNX graphs",
    )
    args = parser.parse_args()
    if not args.smoke and not args.preset:
        parser.error(
            "--preset is required without --smoke. Received: preset=None"
        )
    return args


def main():
    args = parse_args()
    from keras_refinenet import RefineNet, tiny_refinenet
    from keras_refinenet.export import EXPORT_FORMATS, export_model
    from keras_refinenet.export.formats import FIXED_SIZE_FORMATS
    from keras_refinenet.export.verify import verify_export

    if args.smoke:
        model = tiny_refinenet(num_classes=3)
    else:
        model = RefineNet.from_preset(args.preset)
    output = pathlib.Path(args.output)
    size = tuple(args.input_size)
    rows = []
    for format in EXPORT_FORMATS:
        fixed = format in FIXED_SIZE_FORMATS
        options = {}
        if format == "litert-int8":
            options["calibration_data"] = args.calibration_data
            if args.smoke:
                options["num_calibration_images"] = SMOKE_CALIBRATION_IMAGES
        path = export_model(
            model,
            output / format.replace("-", "_"),
            format=format,
            input_size=size if fixed else None,
            **options,
        )
        report = verify_export(
            model,
            path,
            format,
            input_size=size if fixed else None,
            num_images=SMOKE_VERIFY_IMAGES if args.smoke else 8,
        )
        rows.append((format, path, report))
        print(f"exported and ran {format}: {path}")
    print(
        "\n| format | largest relative logit difference | argmax agreement "
        "| mean IoU Keras / export | within tolerance |\n|---|---|---|---|---|"
    )
    for format, _, report in rows:
        print(
            f"| {format} | {report['max_relative_logit_difference']:.2e} "
            f"| {report['argmax_agreement']:.4f} "
            f"| {report['mean_iou_keras']:.4f} / "
            f"{report['mean_iou_export']:.4f} | {report['passed']} |"
        )
    if args.tta:
        check_tta(model, output)


def check_tta(model, output):
    """Tiled, test-time augmented exports against `predict_segmentation`."""
    import numpy as np
    import onnxruntime
    import tensorflow as tf

    from keras_refinenet.export import export_model
    from keras_refinenet.inference.predict import predict_segmentation

    images = np.random.default_rng(0).integers(
        0, 256, (1, *TTA_IMAGE_SIZE, 3), dtype=np.uint8
    )
    # Exports first: predict_segmentation's fast path annotates the model.
    saved = export_model(model, output / "saved_model_tta", **TTA_OPTIONS)
    onnx_path = export_model(
        model, output / "onnx_tta", format="onnx", **TTA_OPTIONS
    )
    expected_ids, expected = predict_segmentation(
        model, images, return_probabilities=True, **TTA_OPTIONS
    )
    serve = tf.saved_model.load(str(saved)).signatures["predict_tta"]
    results = {"saved_model predict_tta": serve(images=tf.constant(images))}
    session = onnxruntime.InferenceSession(
        str(onnx_path), providers=["CPUExecutionProvider"]
    )
    names = [item.name for item in session.get_outputs()]
    results["onnx (ONNX Runtime)"] = dict(
        zip(names, session.run(None, {"images": images}))
    )
    print(
        "\n| export | largest probability difference to "
        "predict_segmentation | class id agreement |\n|---|---|---|"
    )
    for name, outputs in results.items():
        probabilities = np.asarray(outputs["probabilities"])
        ids = np.asarray(outputs["class_ids"])
        print(
            f"| {name} | {np.abs(probabilities - expected).max():.1e} "
            f"| {np.mean(ids == expected_ids):.4f} |"
        )


if __name__ == "__main__":
    main()
