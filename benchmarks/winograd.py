"""Winograd F(2x2, 3x3) and F(4x4, 3x3) 'same' convolutions vs TF's direct.

An experiment for the decoder's 3x3 convolutions: the Winograd transform
trades multiplications (2.25x fewer for F(2x2, 3x3), 4x for F(4x4, 3x3))
for extra memory traffic (tile extraction and the input/output
transforms). Prints median times, the speed ratio against
`tf.nn.conv2d`, and the largest error relative to the output scale.

Example:
    python benchmarks/winograd.py --shapes 1x128x256x256 1x64x128x256
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import numpy as np  # noqa: E402

# Lavin & Gray (2016) transforms.
F2_BT = np.array(
    [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], "float64"
)
F2_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
F2_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], "float64")
F4_BT = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    "float64",
)
F4_G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ]
)
F4_AT = np.array(
    [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, 0],
        [0, 1, 1, 4, 4, 0],
        [0, 1, -1, 8, -8, 1],
    ],
    "float64",
)
TRANSFORMS = {2: (F2_BT, F2_G, F2_AT), 4: (F4_BT, F4_G, F4_AT)}


def _apply_rows(matrix, rows):
    """`matrix @ [rows]` on a list of tensors, skipping zero terms."""
    outputs = []
    for coefficients in matrix:
        total = None
        for coefficient, row in zip(coefficients, rows):
            if coefficient == 0:
                continue
            term = row if coefficient == 1 else row * float(coefficient)
            total = term if total is None else total + term
        outputs.append(total)
    return outputs


def winograd_kernel(kernel, tile):
    """(3, 3, C, K) kernel -> ((tile + 2)^2, C, K) Winograd-domain kernel."""
    import tensorflow as tf

    g = tf.constant(TRANSFORMS[tile][1], kernel.dtype)
    u = tf.einsum("ai,ijck,bj->abck", g, kernel, g)
    alpha = tile + 2
    return tf.reshape(u, (alpha * alpha, kernel.shape[2], kernel.shape[3]))


def winograd_conv3x3(x, u, tile):
    """'same' stride-1 3x3 convolution of NHWC `x` with a transformed kernel."""
    import tensorflow as tf

    bt, _, at = TRANSFORMS[tile]
    alpha = tile + 2
    batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    channels = x.shape[-1]
    tiles_h = (height + tile - 1) // tile
    tiles_w = (width + tile - 1) // tile
    x = tf.pad(
        x,
        [
            [0, 0],
            [1, tiles_h * tile + 1 - height],
            [1, tiles_w * tile + 1 - width],
            [0, 0],
        ],
    )
    # d[i][j]: the (i, j) element of every input tile, (B, th, tw, C).
    rows = []
    for i in range(alpha):
        strip = x[:, i : i + tiles_h * tile : tile]
        rows.append(
            [strip[:, :, j : j + tiles_w * tile : tile] for j in range(alpha)]
        )
    # V = B^T d B: transform along the rows, then along the columns.
    # half[j][a] = sum_i BT[a, i] d[i][j]; v[a][b] = sum_j BT[b, j] half[j][a]
    half = [
        _apply_rows(bt, [rows[i][j] for i in range(alpha)])
        for j in range(alpha)
    ]
    v = [
        _apply_rows(bt, [half[j][a] for j in range(alpha)])
        for a in range(alpha)
    ]
    v = tf.stack([v[a][b] for a in range(alpha) for b in range(alpha)])
    v = tf.reshape(v, (alpha * alpha, -1, channels))
    m = tf.matmul(v, u)
    filters = u.shape[-1]
    m = tf.reshape(m, (alpha, alpha, batch, tiles_h, tiles_w, filters))
    m = [[m[a, b] for b in range(alpha)] for a in range(alpha)]
    # Y = A^T M A.
    cols = [
        _apply_rows(at, [m[a][b] for a in range(alpha)]) for b in range(alpha)
    ]  # cols[b][p] = sum_a AT[p, a] m[a][b]
    y = [
        _apply_rows(at, [cols[b][p] for b in range(alpha)]) for p in range(tile)
    ]  # y[p][q]
    y = tf.stack([tf.stack(row, axis=3) for row in y], axis=2)
    # (B, th, tile, tw, tile, K) -> (B, th * tile, tw * tile, K)
    y = tf.reshape(y, (batch, tiles_h * tile, tiles_w * tile, filters))
    return y[:, :height, :width]


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
    for tile in (2, 4):
        u = winograd_kernel(kernel, tile)
        conv = tf.function(lambda u=u, tile=tile: winograd_conv3x3(x, u, tile))
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
