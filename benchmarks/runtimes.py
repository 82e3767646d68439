"""Forward latency of one model in every runtime it exports to.

Builds benchmark model `--model` (random weights, stride-4 logits like the
PyTorch reference), exports it to ONNX, LiteRT float and int8 and OpenVINO
at one `--size`, and times batch-1 forwards of: the TensorFlow graph (the
frozen export function), the user paths (`predict_segmentation` in
float32 and, where the CPU has bf16, bfloat16; `model.predict`, all with
the TensorFlow settings `keras-refinenet predict` starts with), ONNX
Runtime, the LiteRT interpreter (float, int8), OpenVINO (float32 and its
bf16 hint) and the PyTorch reference
(`tests/convert/reference_pytorch.py`, when torch is installed: NCHW and
channels_last float32, channels_last under bfloat16 autocast), all with
`--threads` CPU threads. Each export runs in its own process (the
converters of a 118M-parameter model take many GiB; a row whose process
is killed says so). ONNX and OpenVINO are timed twice: with the native
resize ops the exports use by default and with the Keras gather resizes
(`native_resize=False`). Prints a Markdown table (median ms over
`--repeats` after `--warmup` runs; each runtime's largest logit
difference and argmax agreement against the first row), the CPU name and
the load average before and after.

Example:
    python benchmarks/runtimes.py --model refinenet101 --size 512x512 \
        --threads 2
"""

import argparse
import functools
import os
import pathlib
import platform
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import common  # noqa: E402
import numpy as np  # noqa: E402

# Lightest conversions first.
FORMATS = ("litert", "onnx", "openvino", "openvino-bf16", "litert-int8")
RUNTIME_NAMES = {
    "onnx": "ONNX Runtime",
    "litert": "LiteRT float32",
    "litert-int8": "LiteRT int8",
    "openvino": "OpenVINO float32",
    "openvino-bf16": "OpenVINO bf16 hint",
}
# The OpenVINO export run with the CPU plugin's bfloat16 precision hint.
OPENVINO_BF16 = "openvino-bf16"
# Exports timed a second time with the Keras gather resizes, to show what
# the native resize ops change.
GATHER_FORMATS = ("onnx", "openvino")
NATIVE_NOTE = "native resize"
GATHER_NOTE = "Keras gather resize"
CALIBRATION_IMAGES = 16
TORCH_NCHW = "PyTorch reference (NCHW)"
TORCH_CHANNELS_LAST = "PyTorch reference (channels_last)"
TORCH_BF16 = "PyTorch reference (channels_last, bf16 autocast)"


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
        "--no-gather-rows",
        action="store_true",
        help="skip the exports with the Keras gather resizes",
    )
    parser.add_argument(
        "--torch-only", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument("--export-only", help=argparse.SUPPRESS)
    parser.add_argument(
        "--gather-resize", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument("--logits-file", help=argparse.SUPPRESS)
    parser.add_argument(
        "--formats",
        nargs="+",
        default=list(FORMATS),
        choices=FORMATS,
        help="exports to time (default: all)",
    )
    return parser.parse_args(argv)


def torch_main(args):
    """The reference in NCHW and channels_last float32, and channels_last
    under bfloat16 autocast where the CPU has bf16."""
    import torch

    torch.set_num_threads(args.threads)
    reference = common.build_torch_model(args.model)
    rng = np.random.default_rng(0)
    batch = torch.from_numpy(
        rng.uniform(0, 1, (1, 3, *args.size)).astype("float32")
    )
    variants = [(TORCH_NCHW, False, False), (TORCH_CHANNELS_LAST, True, False)]
    if common.bf16_supported():
        variants.append((TORCH_BF16, True, True))
    times = {}
    for name, channels_last, autocast in variants:
        layout = (
            torch.channels_last if channels_last else torch.contiguous_format
        )
        model = reference.to(memory_format=layout)
        inputs = batch.contiguous(memory_format=layout)

        def forward(model=model, inputs=inputs, autocast=autocast):
            with (
                torch.inference_mode(),
                torch.autocast("cpu", torch.bfloat16, enabled=autocast),
            ):
                model(inputs)

        seconds, _ = common.median_time(forward, args.repeats, args.warmup)
        times[name] = seconds * 1000
    common.emit({"milliseconds": times})


def _keras_model(args, inter_op_threads=1):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    import keras

    repository = pathlib.Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(repository))
    keras.utils.set_random_seed(0)
    return common.build_keras_model(args.model)


def _images(args):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (1, *args.size, 3), dtype=np.uint8)


def _openvino_bf16_runner(path, threads):
    import openvino

    config = {"INFERENCE_PRECISION_HINT": "bf16"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = openvino.Core().compile_model(str(path), "CPU", config)
    output = compiled.outputs[0]
    return lambda images: compiled([images])[output]


def export_main(args):
    """One export timed in its own process (converters need much memory)."""
    import gc

    model = _keras_model(args)
    from keras_refinenet.export import export_model
    from keras_refinenet.export.runtime_runner import RUNNERS

    format = args.export_only
    bf16_hint = format == OPENVINO_BF16
    if bf16_hint:
        format = "openvino"
    options = {"native_resize": not args.gather_resize}
    if format == "litert-int8":
        options["num_calibration_images"] = CALIBRATION_IMAGES
    images = _images(args)
    with tempfile.TemporaryDirectory() as folder:
        path = export_model(
            model, folder, format=format, input_size=args.size, **options
        )
        del model
        gc.collect()
        run = RUNNERS[format](path, args.threads)
        if bf16_hint:
            run = _openvino_bf16_runner(path, args.threads)
        seconds, _ = common.median_time(
            lambda: run(images), args.repeats, args.warmup
        )
        np.save(args.logits_file, np.asarray(run(images), np.float32))
    common.emit({"milliseconds": seconds * 1000})


def main(argv=None):
    args = parse_args(argv)
    if args.torch_only:
        return torch_main(args)
    if args.export_only:
        return export_main(args)
    # The user paths run as `keras-refinenet predict` starts TensorFlow.
    from keras_refinenet.inference.process_settings import (
        use_inference_process_settings,
    )

    use_inference_process_settings()
    import tensorflow as tf

    model = _keras_model(args, inter_op_threads=None)
    from keras_refinenet.export.formats import logits_function

    images = _images(args)
    rows = []
    load_before = common.load_average()
    reference = {}

    def record(name, resize, milliseconds, logits):
        if logits is None:
            rows.append((name, resize, milliseconds))
        else:
            if not reference:
                reference["logits"] = logits
            expected = reference["logits"]
            scale = np.abs(expected).max()
            difference = np.abs(logits - expected).max() / scale
            agreement = np.mean(logits.argmax(-1) == expected.argmax(-1))
            rows.append((name, resize, milliseconds, difference, agreement))
        print(f"row: {rows[-1]}", file=sys.stderr, flush=True)

    tensor = tf.constant(images)
    for native_resize in (False, True):
        frozen = logits_function(
            model, args.size, batch_size=1, native_resize=native_resize
        )

        def forward(frozen=frozen):
            return frozen(tensor)[0].numpy()

        seconds, _ = common.median_time(forward, args.repeats, args.warmup)
        record(
            "TensorFlow graph",
            NATIVE_NOTE if native_resize else GATHER_NOTE,
            seconds * 1000,
            forward(),
        )
        del frozen, forward
    from keras_refinenet.inference.predict import predict_segmentation

    precisions = ["float32"]
    if common.bf16_supported():
        precisions.append("bfloat16")
    for precision in precisions:
        segment = functools.partial(
            predict_segmentation, model, images, precision=precision
        )
        seconds, _ = common.median_time(segment, args.repeats, args.warmup)
        name = f"Keras predict_segmentation ({precision})"
        record(name, "-", seconds * 1000, None)
    predict = functools.partial(model.predict, images, verbose=0)
    seconds, _ = common.median_time(predict, args.repeats, args.warmup)
    record("Keras model.predict (float32)", "-", seconds * 1000, predict())
    del model, segment, predict
    exports = [(format, True) for format in args.formats]
    if not args.no_gather_rows:
        exports += [
            (format, False)
            for format in GATHER_FORMATS
            if format in args.formats
        ]
    base = [arg for arg in (argv or sys.argv[1:])]
    if "--formats" in base:  # the children get one format each
        start = base.index("--formats")
        end = start + 1
        while end < len(base) and not base[end].startswith("--"):
            end += 1
        del base[start:end]
    with tempfile.TemporaryDirectory() as folder:
        for format, native_resize in exports:
            logits_file = os.path.join(folder, f"{format}-{native_resize}.npy")
            arguments = [*base, "--export-only", format]
            arguments += ["--logits-file", logits_file]
            if not native_resize:
                arguments.append("--gather-resize")
            (result,) = common.run_isolated(__file__, arguments)
            name = RUNTIME_NAMES[format]
            resize = NATIVE_NOTE if native_resize else GATHER_NOTE
            if "milliseconds" in result:
                record(
                    name, resize, result["milliseconds"], np.load(logits_file)
                )
            else:
                failure = f"failed (exit {result['returncode']})"
                rows.append((name, resize, failure))
                print(f"{name} ({resize}) failed: {result}", file=sys.stderr)
    # PyTorch in its own process: its OpenMP threads and TensorFlow's
    # slow each other down when they share one.
    (result,) = common.run_isolated(__file__, [*base, "--torch-only"])
    if "milliseconds" in result:
        for name, milliseconds in result["milliseconds"].items():
            rows.append((name, "PyTorch", milliseconds))
    else:
        print(f"PyTorch reference skipped: {result}", file=sys.stderr)
    load_after = common.load_average()
    height, width = args.size
    print(
        f"{args.model}, {height}x{width}, batch 1, {args.threads} threads, "
        f"{cpu_name()}; load average (1, 5, 15 min) before "
        f"{', '.join(f'{v:.2f}' for v in load_before)}, after "
        f"{', '.join(f'{v:.2f}' for v in load_after)}\n"
    )
    print(
        "| runtime | resize | median ms | max abs diff / max abs logit "
        "| argmax agreement |\n|---|---|---:|---:|---:|"
    )
    for name, resize, milliseconds, *checks in rows:
        if isinstance(milliseconds, str):
            print(f"| {name} | {resize} | {milliseconds} | - | - |")
            continue
        if checks:
            difference, agreement = checks
            checked = f"{difference:.1e} | {agreement:.4f}"
        else:
            checked = "(other weights) | -"
        print(f"| {name} | {resize} | {milliseconds:.1f} | {checked} |")


if __name__ == "__main__":
    main()
