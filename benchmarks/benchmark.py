"""RefineNet-101 and Light-Weight RefineNet-101: Keras vs PyTorch reference.

Measures, each configuration in its own subprocess (so peak memory is its
own), the median forward latency and images/s over `--repeats` runs after
`--warmup` runs, the training step time (forward, loss, backward, SGD
update), and peak resident memory (`ru_maxrss`). Keras runs eagerly
(`eager`), as a `tf.function` (`graph`), with XLA (`xla`), as the bare
compiled inference network `predict_segmentation` runs (`network`: the
baseline of the user paths' overhead), or through the paths users call:
`model.predict` (`predict`) and `predict_segmentation` (`segment`, raw
pixels to class ids, softmax and resizing included), each timed in turn
with the bare network in its process (`vs bare`: its per-call overhead);
in
float32 or `mixed_bfloat16` (only where the CPU has bf16 instructions),
with the direct or Winograd decoder (`--decoder-convs`), BatchNorm folded
or not (`--fold`), oneDNN on or off or on with the inference-only
settings of `keras-refinenet predict` (`--onednn on off inference`).
The PyTorch reference (`tests/convert/reference_pytorch.py`) runs in
`channels_last` (its fastest layout) or `contiguous` (NCHW), in float32
or, for the `mixed_bfloat16` rows, under
`torch.autocast("cpu", dtype=torch.bfloat16)`. Both sides return
stride-4 logits (the reference has no final upsampling), with the same
thread count. Ratios are reference time / Keras time in the
same precision: above 1 means Keras is faster. Every table starts with the
CPU model, its ISA flags, the library versions and the oneDNN state.

Examples:
    # quick run (a few minutes): 512x1024, batch 1, graph mode, float32
    python benchmarks/benchmark.py
    # the full table of the performance issue
    python benchmarks/benchmark.py --sizes 512x1024 1024x2048 \
        --batches 1 4 --modes eager graph xla --precisions float32 \
        mixed_bfloat16 --torch-layouts channels_last contiguous
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from keras_refinenet.inference.process_settings import (  # noqa: E402
    INFERENCE_PROCESS_ENVIRONMENT,
)

# The paths users call (no training step through them).
USER_MODES = ("predict", "segment")
# The compiled inference network `predict_segmentation` runs (same
# precision, folding and `decoder_conv="auto"` choice), called bare: the
# baseline of the user paths' per-call overhead.
NETWORK_MODE = "network"
# `--precisions` value -> `predict_segmentation(precision=...)`.
INFERENCE_PRECISIONS = {"float32": "float32", "mixed_bfloat16": "bfloat16"}
SEPARATE_COPY_MODES = ("segment", NETWORK_MODE)
TRAIN_CROP = (512, 512)
TRAIN_BATCH = 2
SGD = {"learning_rate": 1e-4, "momentum": 0.9}
INFERENCE_ONEDNN = "inference"
# The Keras processes' environment per `--onednn` choice.
ONEDNN_ENVIRONMENTS = {
    "on": {common.ONEDNN_VARIABLE: "1"},
    "off": {common.ONEDNN_VARIABLE: "0"},
    INFERENCE_ONEDNN: INFERENCE_PROCESS_ENVIRONMENT,
}


# === Workers (run in a subprocess) ===
def _inference_network_call(model, pixels, precision, fold):
    import tensorflow as tf

    from keras_refinenet.inference.fast_path import (
        inference_forward,
        inference_tracing,
        resolve_decoder_conv,
    )

    precision = INFERENCE_PRECISIONS[precision]
    height, width = pixels.shape[1:3]
    conv = resolve_decoder_conv(model, "auto", precision, height * width)
    network = inference_forward(model, precision, fold, conv).network
    images = tf.constant(model.preprocess(pixels))
    with inference_tracing():
        step = tf.function(lambda x: network(x, training=False))
        step.get_concrete_function(images)
    return lambda: step(images).numpy()


def keras_worker(config):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_refinenet.inference.fold import fold_batch_normalization
    from keras_refinenet.inference.predict import predict_segmentation

    precision = config["precision"]
    mode = config["mode"]
    fold = config.get("fold", False)
    # predict_segmentation makes its own bfloat16 copy (`precision=`).
    if precision != "float32" and mode not in SEPARATE_COPY_MODES:
        keras.config.set_dtype_policy(precision)
    model = common.build_keras_model(
        config["model"], decoder_conv=config.get("decoder_conv", "direct")
    )
    batch = config["batch"]
    height, width = config["size"]
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (batch, height, width, 3)).astype("float32")
    images = tf.constant(pixels)
    if config["task"] == "forward":
        if mode in USER_MODES:
            if mode == "segment":

                def function():
                    predict_segmentation(
                        model,
                        pixels,
                        batch_size=batch,
                        fold_batchnorm=fold,
                        precision=INFERENCE_PRECISIONS[precision],
                    )

            else:

                def function():
                    model.predict(pixels, verbose=0)

            # Timed in turn with the user path: its per-call overhead.
            function.bare_network = _inference_network_call(
                model, pixels, precision, fold=True
            )
            return function
        if mode == NETWORK_MODE:
            return _inference_network_call(model, pixels, precision, fold)
        network = fold_batch_normalization(model) if fold else model
        if mode == "eager":
            step = network
        else:
            step = tf.function(
                lambda x: network(x, training=False),
                jit_compile=mode == "xla",
            )
        function = lambda: step(images).numpy()  # noqa: E731
    else:
        labels_shape = (batch, (height + 3) // 4, (width + 3) // 4)
        labels = tf.constant(
            rng.integers(0, common.NUM_CLASSES, labels_shape).astype("int32")
        )
        keras.Model.compile(
            model,
            optimizer=keras.optimizers.SGD(**SGD),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            run_eagerly=mode == "eager",
            jit_compile=mode == "xla",
        )
        function = lambda: model.train_on_batch(images, labels)  # noqa: E731
    return function


def torch_worker(config):
    import numpy as np
    import torch

    torch.set_num_threads(os.cpu_count())
    model = common.build_torch_model(config["model"])
    batch = config["batch"]
    height, width = config["size"]
    rng = np.random.default_rng(0)
    images = torch.from_numpy(
        rng.normal(size=(batch, 3, height, width)).astype("float32")
    )
    if config["layout"] == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    autocast = config["precision"] != "float32"
    if config["task"] == "forward":

        def function():
            with (
                torch.inference_mode(),
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast),
            ):
                model(images)

        return function
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    labels_shape = (batch, (height + 3) // 4, (width + 3) // 4)
    labels = torch.from_numpy(
        rng.integers(0, common.NUM_CLASSES, labels_shape).astype("int64")
    )

    def function():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()

    return function


def worker(config):
    build = keras_worker if config["framework"] == "keras" else torch_worker
    function = build(config)
    bare_network = getattr(function, "bare_network", None)
    overhead = {}
    if bare_network is None:
        seconds, times = common.median_time(
            function, config["repeats"], config["warmup"]
        )
    else:
        (seconds, times), (bare_seconds, _) = common.interleaved_median_times(
            [function, bare_network], config["repeats"], config["warmup"]
        )
        overhead = {"bare_network_seconds": bare_seconds}
    common.emit(
        {
            **config,
            **overhead,
            "seconds": seconds,
            "times": times,
            "images_per_s": config["batch"] / seconds,
            "peak_rss_gib": common.peak_rss_gib(),
        }
    )


# === Driver ===
def configurations(args):
    tasks = [task for task in ("forward", "train") if task in args.tasks]
    for model in args.models:
        for task in tasks:
            if task == "forward":
                shapes = [
                    (size, batch)
                    for size in args.sizes
                    for batch in args.batches
                ]
            else:
                shapes = [(TRAIN_CROP, TRAIN_BATCH)]
            for size, batch in shapes:
                base = {
                    "model": model,
                    "task": task,
                    "size": list(size),
                    "batch": batch,
                    "repeats": args.repeats,
                    "warmup": args.warmup,
                }
                # No PyTorch reference for the MobileNet model.
                layouts = (
                    []
                    if "mobilenet" in common.MODELS[model]
                    else (args.torch_layouts)
                )
                for precision in args.precisions:
                    if task == "train" and precision != "float32":
                        continue
                    for layout in layouts:
                        yield {
                            **base,
                            "framework": "torch",
                            "layout": layout,
                            "mode": "eager",
                            "precision": precision,
                        }
                    for onednn in args.onednn:
                        for mode in args.modes:
                            if task == "train" and (
                                mode in USER_MODES or onednn == INFERENCE_ONEDNN
                            ):
                                continue
                            for conv in args.decoder_convs:
                                for fold in args.fold:
                                    if fold == "on" and task == "train":
                                        continue
                                    # `model.predict` folds by itself.
                                    if (
                                        mode == "predict"
                                        and fold != (args.fold[0])
                                    ):
                                        continue
                                    yield {
                                        **base,
                                        "framework": "keras",
                                        "mode": mode,
                                        "precision": precision,
                                        "decoder_conv": conv,
                                        "fold": fold == "on"
                                        and mode != "predict",
                                        "onednn": onednn,
                                    }


def describe(result):
    precision = "bf16" if result["precision"] != "float32" else "fp32"
    if result["framework"] == "torch":
        autocast = " autocast" if precision == "bf16" else ""
        return f"torch {result['layout']} {precision}{autocast}"
    conv = result.get("decoder_conv", "direct")
    conv = "" if conv == "direct" else " wino"
    fold = " fold" if result.get("fold") else ""
    onednn = result.get("onednn", "on")
    onednn = "" if onednn == "on" else f" dnn-{onednn}"
    return f"keras {result['mode']} {precision}{conv}{fold}{onednn}"


def reference_key(result):
    return (
        result["model"],
        result["task"],
        tuple(result["size"]),
        result["batch"],
        result["precision"],
    )


def print_table(results):
    for line in common.machine_description():
        print(line)
    header = (
        f"{'model':16} {'task':7} {'input':14} {'implementation':34} "
        f"{'median s':>9} {'img/s':>7} {'peak GiB':>8} {'vs torch':>8} "
        f"{'vs bare':>7}"
    )
    print(header)
    print("-" * len(header))
    reference = {}
    for result in results:
        if result.get("framework") == "torch" and "seconds" in result:
            key = reference_key(result)
            if result["layout"] == "channels_last" or key not in reference:
                reference[key] = result["seconds"]
    for result in results:
        if "seconds" not in result:
            print(f"FAILED {result.get('config')}: {result['error'][-300:]}")
            continue
        height, width = result["size"]
        ratio = reference.get(reference_key(result))
        ratio = f"{ratio / result['seconds']:.2f}x" if ratio else "-"
        print(
            f"{result['model']:16} {result['task']:7} "
            f"{result['batch']}x{height}x{width:<8} {describe(result):34} "
            f"{result['seconds']:9.3f} {result['images_per_s']:7.3f} "
            f"{result['peak_rss_gib']:8.2f} {ratio:>8} "
            f"{_overhead(result):>7}"
        )


def _overhead(result):
    """A user path's time over the bare network's, timed in turn."""
    bare = result.get("bare_network_seconds")
    return f"{100 * (result['seconds'] / bare - 1):+.1f}%" if bare else ""


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument(
        "--models",
        nargs="+",
        default=["refinenet101", "lw_refinenet101"],
        choices=sorted(common.MODELS),
    )
    parser.add_argument(
        "--sizes", nargs="+", default=[(512, 1024)], type=common.parse_size
    )
    parser.add_argument("--batches", nargs="+", default=[1], type=int)
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["graph"],
        choices=["eager", "graph", "xla", NETWORK_MODE, *USER_MODES],
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["float32"],
        choices=["float32", "mixed_bfloat16"],
    )
    parser.add_argument(
        "--decoder-convs",
        nargs="+",
        default=["direct"],
        choices=common.DECODER_CONVS,
        help="decoder 3x3 convolutions: direct or Winograd F(4x4, 3x3)",
    )
    parser.add_argument(
        "--fold",
        nargs="+",
        default=["off"],
        choices=["off", "on"],
        help="BatchNorm folded into the convolutions (inference modes)",
    )
    parser.add_argument(
        "--onednn",
        nargs="+",
        default=["on"],
        choices=list(ONEDNN_ENVIRONMENTS),
        help="TF_ENABLE_ONEDNN_OPTS for the Keras processes; `inference`: "
        "oneDNN on with the inference-only settings `keras-refinenet "
        "predict` uses (frozen weights, advanced CPU ops; forward only)",
    )
    parser.add_argument(
        "--torch-layouts",
        nargs="*",
        default=["channels_last"],
        choices=["channels_last", "contiguous"],
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["forward", "train"],
        choices=["forward", "train"],
    )
    parser.add_argument("--repeats", default=3, type=int)
    parser.add_argument(
        "--warmup",
        default=2,
        type=int,
        help="PyTorch's oneDNN needs two calls to reach its speed",
    )
    parser.add_argument(
        "--timeout", default=1800, type=int, help="seconds per configuration"
    )
    parser.add_argument("--json", help="also write all results to this file")
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    if "mixed_bfloat16" in args.precisions and not common.bf16_supported():
        print("No bf16 instructions on this CPU: skipping mixed_bfloat16.")
        args.precisions = [p for p in args.precisions if p != "mixed_bfloat16"]
    for line in common.machine_description():
        print(line)
    print(f"conv3x3 rate: {common.conv3x3_rate():.1f} GFLOP/s")
    results = []
    for config in configurations(args):
        try:
            environment = ONEDNN_ENVIRONMENTS[config.get("onednn", "on")]
            outputs = common.run_isolated(
                __file__,
                ["--worker", json.dumps(config)],
                args.timeout,
                environment,
            )
        except Exception as error:  # a timeout: keep the other configs
            outputs = [{"error": repr(error)}]
        for output in outputs:
            output.setdefault("config", config)
            results.append(output)
            if "seconds" in output:
                print(
                    f"  {output['model']} {output['task']} {output['size']} "
                    f"b{output['batch']} {describe(output)}: "
                    f"{output['seconds']:.3f} s",
                    flush=True,
                )
            else:
                print(f"  FAILED {config}", flush=True)
    print(f"load average after: {common.load_average()}")
    print_table(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
