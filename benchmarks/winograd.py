"""Winograd F(2x2, 3x3) and F(4x4, 3x3) 'same' convolutions vs TF's direct.

The decoder's 3x3 convolutions, run on the computation of
`keras_refinenet.layers.winograd_conv` (tile extraction by reshapes, the
transforms and the products as matrix products, in one `tf.function`):
the Winograd transform trades multiplications (2.25x fewer for
F(2x2, 3x3), 4x for F(4x4, 3x3)) for extra memory traffic (tile
extraction and the input/output transforms). Prints median times, the
speed ratio against `tf.nn.conv2d`, and the largest error relative to
the output scale.

Example:
    python benchmarks/winograd.py --shapes 1x128x256x256 1x64x128x256
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import numpy as np  # noqa: E402

from keras_refinenet.layers.winograd_conv import (  # noqa: E402
    WINOGRAD_TILE_SIZES,
    _winograd,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shapes",
        nargs="+",
        default=["1x128x256x256", "1x64x128x256", "1x16x32x512"],
    )
    parser.add_argument("--repeats", default=5, type=int)
    args = parser.parse_args(argv)
    print(f"load average {common.load_average()}")
    print(
        f"{'shape':16} {'direct ms':>10} {'F2 ms':>8} {'F2 x':>6} "
        f"{'F2 err':>8} {'F4 ms':>8} {'F4 x':>6} {'F4 err':>8}"
    )
    for text in args.shapes:
        print(measure(text, args.repeats), flush=True)


def measure(text, repeats):
    """One table row: direct vs F(2x2, 3x3) vs F(4x4, 3x3) on `text`."""
    import tensorflow as tf

    batch, height, width, channels = (int(v) for v in text.split("x"))
    rng = np.random.default_rng(0)
    x = tf.constant(
        rng.normal(size=(batch, height, width, channels)).astype("float32")
    )
    kernel = tf.constant(
        (
            rng.normal(size=(3, 3, channels, channels)) / np.sqrt(9 * channels)
        ).astype("float32")
    )
    direct = tf.function(lambda: tf.nn.conv2d(x, kernel, 1, "SAME"))
    reference = direct().numpy()
    seconds, _ = common.median_time(lambda: direct().numpy(), repeats, 1)
    row = f"{text:16} {1e3 * seconds:10.1f}"
    for tile in WINOGRAD_TILE_SIZES:
        # The layer's transforms and products as one graph.
        conv = tf.function(lambda tile=tile: _winograd(x, kernel, tile))
        error = np.max(np.abs(conv().numpy() - reference)) / np.max(
            np.abs(reference)
        )
        wino, _ = common.median_time(
            lambda conv=conv: conv().numpy(), repeats, 1
        )
        row += f" {1e3 * wino:8.1f} {seconds / wino:6.2f} {error:8.1e}"
    return row


if __name__ == "__main__":
    main()
