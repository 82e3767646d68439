"""Numpy reference of MATLAB's `imresize` (bicubic), from its documentation.

Written with plain loops over output pixels and taps, in float64, from the
documented algorithm, not from the package's code:

- Keys' cubic kernel with a = -0.5, non-zero on (-2, 2);
- output pixel x (1-based) maps to input coordinate
  u = x / scale + 0.5 * (1 - 1 / scale);
- the taps are the ceil(width) + 2 pixels from floor(u - width / 2);
- weights are normalised to sum 1 per output pixel, then taps outside the
  image are mirrored through the index sequence 1..n, n..1 (repeating the
  edge pixel), weights landing on the same pixel adding up;
- when shrinking with antialiasing (MATLAB's default) the kernel becomes
  scale * kernel(scale * t) and its width 4 / scale;
- `imresize(A, [h w])` uses scale = out / in per axis, `imresize(A, r)`
  uses scale = r and output size ceil(r * size);
- the axes are resized one after the other, the smaller scale first (ties:
  rows first), and a uint8 image is rounded to uint8 after each pass.
"""

import math

import numpy as np


def keys_cubic(t):
    """Keys' cubic convolution kernel with a = -0.5 at one offset."""
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t <= 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def mirror_index(tap, length):
    """0-based pixel of 1-based tap `tap` in the sequence 1..n, n..1, ..."""
    sequence = list(range(length)) + list(range(length - 1, -1, -1))
    return sequence[(tap - 1) % (2 * length)]


def axis_weights(in_length, out_length, scale, antialias=True):
    """Dense `(out_length, in_length)` interpolation matrix of one axis."""
    if scale < 1 and antialias:
        width = 4.0 / scale

        def kernel(t):
            return scale * keys_cubic(scale * t)

    else:
        width = 4.0
        kernel = keys_cubic
    matrix = np.zeros((out_length, in_length))
    for x in range(1, out_length + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = range(left, left + math.ceil(width) + 2)
        weights = [kernel(u - tap) for tap in taps]
        total = sum(weights)
        for tap, weight in zip(taps, weights):
            matrix[x - 1, mirror_index(tap, in_length)] += weight / total
    return matrix


def _round_uint8(x):
    return np.clip(np.floor(x + 0.5), 0, 255)


# Values this close to k + 0.5 are exact ties in exact arithmetic (scale 1.2
# gives weights in multiples of 1/3456, so integer pixels can sum to k + 0.5
# exactly); MATLAB, like any float code, resolves them by round-off.
TIE_TOLERANCE = 1e-6


def _is_tie(x):
    return np.abs(x - np.floor(x) - 0.5) < TIE_TOLERANCE


def imresize(
    image,
    output_size=None,
    scale=None,
    antialias=True,
    uint8=False,
    order=None,
    return_ties=False,
):
    """MATLAB `imresize(image, output_size)` or `imresize(image, scale)`.

    Args:
        image: `(height, width)` or `(height, width, channels)` array.
        output_size: `(height, width)`; with `scale` too, the output keeps
            the first rows and columns of `imresize(image, scale)`.
        scale: the scale factor (one number).
        antialias: MATLAB's `Antialiasing` option.
        uint8: round to uint8 after each pass (a uint8 image in MATLAB).
        order: force the pass order, e.g. `(1, 0)` for columns first;
            default MATLAB's (smaller scale first).
        return_ties: also return a boolean mask of the output pixels that
            depend on an exact .5 tie of a uint8 rounding (which may round
            either way in any float implementation, MATLAB's included).

    Returns:
        The resized float64 array (and the tie mask).
    """
    x = np.asarray(image, np.float64)
    in_size = x.shape[:2]
    if scale is not None:
        scales = (scale, scale)
        if output_size is None:
            output_size = tuple(math.ceil(scale * n) for n in in_size)
    else:
        scales = tuple(o / n for o, n in zip(output_size, in_size))
    if order is None:
        order = sorted(range(2), key=lambda axis: scales[axis])
    ties = np.zeros(x.shape, bool)
    for axis in order:
        matrix = axis_weights(
            in_size[axis], output_size[axis], scales[axis], antialias
        )
        x = np.moveaxis(np.tensordot(matrix, x, axes=([1], [axis])), 0, axis)
        ties = np.moveaxis(
            np.tensordot(matrix != 0, ties, axes=([1], [axis])) > 0, 0, axis
        )
        if uint8:
            ties |= _is_tie(x)
            x = _round_uint8(x)
    return (x, ties) if return_ties else x


def imresize_uniform_crop(image, output_size):
    """The authors' GPU fusion resize: one factor, then a top-left crop.

    `r = max(output_size ./ size)`, `imresize(image, r)`, then
    `x(1:h, 1:w, :)` (`main/my_resize.m`, `do_resize_with_gpu`).
    """
    in_size = np.asarray(image).shape[:2]
    factor = max(o / n for o, n in zip(output_size, in_size))
    full = imresize(image, scale=factor)
    assert full.shape[0] >= output_size[0]
    assert full.shape[1] >= output_size[1]
    return full[: output_size[0], : output_size[1]]


def imresize_batch(images, **kwargs):
    """`imresize` applied to every image of an NHWC batch."""
    results = [imresize(image, **kwargs) for image in images]
    if kwargs.get("return_ties"):
        return tuple(np.stack(parts) for parts in zip(*results))
    return np.stack(results)
