"""Forward latency of one model in every runtime it exports to.

Builds benchmark model `--model` (random weights, stride-4 logits like the
PyTorch reference), exports it to ONNX, LiteRT float and int8 and OpenVINO
at one `--size`, and times batch-1 forwards of: the TensorFlow graph (the
frozen export function), ONNX Runtime, the LiteRT interpreter (float,
int8), OpenVINO (float32) and the PyTorch reference
(`tests/convert/reference_pytorch.py`, when torch is installed), all with
`--threads` CPU threads. Prints a Markdown table (median ms over
`--repeats` after `--warmup` runs) and the CPU name.

Example:
    python benchmarks/runtimes.py --model lw_refinenet50 --size 256x256
"""

import argparse
import os
import pathlib
import platform
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import common  # noqa: E402
import numpy as np  # noqa: E402

FORMATS = ("onnx", "litert", "litert-int8", "openvino")
RUNTIME_NAMES = {
    "onnx": "ONNX Runtime",
    "litert": "LiteRT float32",
    "litert-int8": "LiteRT int8",
    "openvino": "OpenVINO float32",
}
CALIBRATION_IMAGES = 16


def cpu_name():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="lw_refinenet50")
    parser.add_argument("--size", default="256x256", type=common.parse_size)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--torch-only", action="store_true", help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def torch_main(args):
    import torch

    torch.set_num_threads(args.threads)
    reference = common.build_torch_model(args.model)
    rng = np.random.default_rng(0)
    batch = torch.from_numpy(
        rng.uniform(0, 1, (1, 3, *args.size)).astype("float32")
    )

    def forward():
        with torch.inference_mode():
            reference(batch)

    seconds, _ = common.median_time(forward, args.repeats, args.warmup)
    common.emit({"milliseconds": seconds * 1000})


def main(argv=None):
    args = parse_args(argv)
    if args.torch_only:
        return torch_main(args)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    repository = pathlib.Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repository))
    from keras_refinenet.export import export_model
    from keras_refinenet.export.formats import logits_function
    from keras_refinenet.export.runtime_runner import RUNNERS

    keras.utils.set_random_seed(0)
    model = common.build_keras_model(args.model)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1, *args.size, 3), dtype=np.uint8)
    rows = []

    def measure(name, function):
        seconds, _ = common.median_time(function, args.repeats, args.warmup)
        rows.append((name, seconds * 1000))
        print(f"{name}: {seconds * 1000:.1f} ms", file=sys.stderr)

    frozen = logits_function(model, args.size, batch_size=1)
    tensor = tf.constant(images)
    measure("TensorFlow graph", lambda: frozen(tensor)[0].numpy())
    with tempfile.TemporaryDirectory() as folder:
        for format in FORMATS:
            path = export_model(
                model,
                pathlib.Path(folder) / format,
                format=format,
                input_size=args.size,
                **(
                    {"num_calibration_images": CALIBRATION_IMAGES}
                    if format == "litert-int8"
                    else {}
                ),
            )
            run = RUNNERS[format](path, args.threads)
            measure(RUNTIME_NAMES[format], lambda run=run: run(images))
    # PyTorch in its own process: its OpenMP threads and TensorFlow's
    # slow each other down when they share one.
    (result,) = common.run_isolated(
        __file__, [*(argv or sys.argv[1:]), "--torch-only"]
    )
    if "milliseconds" in result:
        rows.append(("PyTorch reference (NCHW)", result["milliseconds"]))
    else:
        print(f"PyTorch reference skipped: {result}", file=sys.stderr)
    height, width = args.size
    print(
        f"{args.model}, {height}x{width}, batch 1, {args.threads} threads, "
        f"{cpu_name()}\n"
    )
    print("| runtime | median ms |\n|---|---|")
    for name, milliseconds in rows:
        print(f"| {name} | {milliseconds:.1f} |")


if __name__ == "__main__":
    main()
