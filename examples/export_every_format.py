"""Export a RefineNet preset to every format and run each file.

Writes SavedModel, ONNX, LiteRT (float32 and int8) and OpenVINO exports
into `OUTPUT/<format>/`, runs each one in its own runtime (a process that
does not import keras_refinenet) on synthetic demo images and prints how
far each is from the Keras model. Needs the extras:
`pip install "keras-refinenet[onnx,litert,openvino]"`.

    python examples/export_every_format.py --preset runs/demo/preset \
        --output exports
    python examples/export_every_format.py --smoke --output /tmp/exports
"""

import argparse
import pathlib

FIXED_SIZE = (96, 128)
SMOKE_CALIBRATION_IMAGES = 16
SMOKE_VERIFY_IMAGES = 2


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


if __name__ == "__main__":
    main()
