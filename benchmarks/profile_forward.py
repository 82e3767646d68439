"""Where the forward time goes: Keras by layer kind, PyTorch by operator.

Keras runs eagerly (TF CPU ops run synchronously) with the `call` of each
layer kind and the resize helper wrapped by timers; PyTorch (channels_last)
runs under `torch.profiler`. Also times the backbones alone in graph mode.

Example:
    python benchmarks/profile_forward.py --model refinenet101 --size 512x1024
"""

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


def keras_profile(name, size, repeats):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_refinenet.layers import multi_resolution_fusion, resize

    model = common.build_keras_model(name)
    height, width = size
    images = tf.constant(
        np.random.default_rng(0)
        .uniform(0, 255, (1, height, width, 3))
        .astype("float32")
    )
    totals = collections.Counter()
    patched = []

    def timed(owner, attribute, label):
        original = getattr(owner, attribute)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = original(*args, **kwargs)
            totals[label] += time.perf_counter() - start
            return result

        setattr(owner, attribute, wrapper)
        patched.append((owner, attribute, original))

    graph = tf.function(lambda x: model(x, training=False))
    backbone = tf.function(lambda x: model.feature_extractor(x))
    seconds, _ = common.median_time(lambda: graph(images), repeats, 1)
    backbone_seconds, _ = common.median_time(
        lambda: backbone(images), repeats, 1
    )
    print(f"keras graph forward  {seconds:.3f} s")
    print(f"keras graph backbone {backbone_seconds:.3f} s")
    timed(keras.layers.Conv2D, "call", "conv")
    timed(keras.layers.DepthwiseConv2D, "call", "conv")
    timed(keras.layers.MaxPooling2D, "call", "max pool")
    timed(keras.layers.BatchNormalization, "call", "batch norm")
    timed(multi_resolution_fusion, "resize_if_needed", "upsample")
    timed(resize, "resize_images", "upsample")
    try:
        model(images, training=False)
        totals.clear()
        start = time.perf_counter()
        model(images, training=False)
        total = time.perf_counter() - start
    finally:
        for owner, attribute, original in reversed(patched):
            setattr(owner, attribute, original)
    print(f"keras eager forward  {total:.3f} s")
    for label, value in totals.most_common():
        print(f"  {label:22} {value:7.3f} s  {100 * value / total:5.1f}%")
    other = total - sum(totals.values())
    print(
        f"  {'other (relu, add, ...)':22} {other:7.3f} s  "
        f"{100 * other / total:5.1f}%"
    )


def torch_profile(name, size, repeats):
    import torch

    model = common.build_torch_model(name).to(memory_format=torch.channels_last)
    height, width = size
    images = torch.randn(1, 3, height, width).contiguous(
        memory_format=torch.channels_last
    )
    with torch.inference_mode():
        seconds, _ = common.median_time(lambda: model(images), repeats, 2)
        backbone, _ = common.median_time(
            lambda: model.backbone_features(images), repeats, 1
        )
        with torch.profiler.profile() as profiler:
            model(images)
    print(f"torch forward  {seconds:.3f} s (channels_last)")
    print(f"torch backbone {backbone:.3f} s")
    events = profiler.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    for event in sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]:
        share = 100 * event.self_cpu_time_total / total
        print(f"  {event.key:32} {share:5.1f}%")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="refinenet101", choices=sorted(common.MODELS)
    )
    parser.add_argument("--size", default="512x1024", type=common.parse_size)
    parser.add_argument("--repeats", default=2, type=int)
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args(argv)
    print(f"load average {common.load_average()}")
    # PyTorch first: TensorFlow's idle thread pools would slow it down.
    if not args.skip_torch:
        torch_profile(args.model, args.size, args.repeats)
    keras_profile(args.model, args.size, args.repeats)


if __name__ == "__main__":
    main()
