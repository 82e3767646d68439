"""Side-by-side ratios on a loaded machine: every variant in one process.

Builds RefineNet once (direct and Winograd decoders with the same
weights, each with and without folded BatchNorm, optionally in mixed
bfloat16) and the PyTorch reference, then calls them in turn, round after
round, so that load changes hit every variant alike. Prints the median per
variant and its ratio to the reference in the same precision, with the
machine description. The user paths (`model.predict`,
`predict_segmentation`) are included.

Example:
    python benchmarks/interleaved.py --model refinenet101 --size 512x1024
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


def keras_variants(name, height, width, precision):
    import numpy as np
    import tensorflow as tf

    from keras_refinenet.inference.fast_path import (
        inference_forward,
        with_precision,
    )
    from keras_refinenet.inference.fold import fold_batch_normalization
    from keras_refinenet.inference.predict import predict_segmentation

    direct = common.build_keras_model(name)
    winograd = common.build_keras_model(name, decoder_conv="winograd")
    winograd.set_weights(direct.get_weights())
    label = "bf16" if precision == "bfloat16" else "fp32"
    if precision == "bfloat16":
        direct = with_precision(direct, precision)
        winograd = with_precision(winograd, precision)
    pixels = np.random.default_rng(0).uniform(0, 255, (1, height, width, 3))
    pixels = pixels.astype("float32")
    images = direct.preprocess(tf.constant(pixels))
    variants = {}
    outputs = {}
    for conv, model in (("direct", direct), ("winograd", winograd)):
        for fold in (False, True):
            network = fold_batch_normalization(model) if fold else model
            step = tf.function(lambda x, n=network: n(x, training=False))
            key = f"keras graph {label} {conv}{' fold' if fold else ''}"
            variants[key] = lambda s=step: s(images).numpy()
            outputs[key] = step(images).numpy()
    if precision == "float32":
        # What `predict_segmentation` and `model.predict` run by default.
        network = inference_forward(direct, decoder_conv="winograd").network
        step = tf.function(lambda x, n=network: n(x, training=False))
        key = f"keras graph {label} all-3x3 winograd fold"
        variants[key] = lambda s=step: s(images).numpy()
        outputs[key] = step(images).numpy()
    reference = outputs[f"keras graph {label} direct"]
    for key, value in outputs.items():
        error = np.max(np.abs(value - reference)) / np.max(np.abs(reference))
        print(f"  {key}: max |diff| / max |direct| = {error:.1e}")
    for conv, model in (("direct", direct), ("winograd", winograd)):
        key = f"keras model.predict {label} {conv} model, defaults"
        variants[key] = lambda m=model: m.predict(pixels, verbose=0)
    exact = common.build_keras_model(name, predict_decoder_conv="direct")
    exact.set_weights(direct.get_weights())
    if precision == "bfloat16":
        exact = with_precision(exact, precision)
    key = f"keras model.predict {label} predict_decoder_conv=direct"
    variants[key] = lambda: exact.predict(pixels, verbose=0)
    for conv in ("direct", "winograd"):
        key = f"keras predict_segmentation {label} {conv} fold"
        variants[key] = lambda c=conv: predict_segmentation(
            direct, pixels, batch_size=1, decoder_conv=c
        )
    # What a user gets: the model as built, every default.
    key = f"keras predict_segmentation {label} defaults"
    variants[key] = lambda: predict_segmentation(direct, pixels)
    return variants


def torch_variants(name, height, width, precision):
    import numpy as np
    import torch

    torch.set_num_threads(os.cpu_count())
    model = common.build_torch_model(name).to(memory_format=torch.channels_last)
    images = torch.from_numpy(
        np.random.default_rng(0)
        .normal(size=(1, 3, height, width))
        .astype("float32")
    ).contiguous(memory_format=torch.channels_last)
    autocast = precision == "bfloat16"

    def run():
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast),
        ):
            model(images)

    label = "bf16 autocast" if autocast else "fp32"
    return {f"torch channels_last {label}": run}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="refinenet101")
    parser.add_argument("--size", default="512x1024", type=common.parse_size)
    parser.add_argument(
        "--precision", default="float32", choices=["float32", "bfloat16"]
    )
    parser.add_argument("--rounds", default=3, type=int)
    parser.add_argument("--warmup", default=2, type=int)
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="time only the Keras variants whose names contain one of "
        "these strings (the reference always runs)",
    )
    args = parser.parse_args(argv)
    height, width = args.size
    for line in common.machine_description():
        print(line)
    variants = torch_variants(args.model, height, width, args.precision)
    reference = next(iter(variants))
    keras = keras_variants(args.model, height, width, args.precision)
    variants.update(
        (key, function)
        for key, function in keras.items()
        if args.only is None or any(part in key for part in args.only)
    )
    for _ in range(args.warmup):
        for function in variants.values():
            function()
    times = {key: [] for key in variants}
    for _ in range(args.rounds):
        for key, function in variants.items():
            start = time.perf_counter()
            function()
            times[key].append(time.perf_counter() - start)
    medians = {key: statistics.median(value) for key, value in times.items()}
    print(f"{args.model} forward 1x{height}x{width}, {args.rounds} rounds")
    print(f"{'variant':48} {'median s':>9} {'vs torch':>8}  times")
    for key, seconds in medians.items():
        ratio = medians[reference] / seconds
        spread = " ".join(f"{value:.2f}" for value in times[key])
        print(f"{key:48} {seconds:9.3f} {ratio:7.2f}x  {spread}")
    print(f"load average after: {common.load_average()}")


if __name__ == "__main__":
    main()
