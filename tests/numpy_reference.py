"""Independent numpy implementations of RefineNet's operations for tests.

Written from the definitions (loops over output positions and taps), not
from the package's code, so the layers can be checked against them.
"""

import numpy as np


def conv2d_same(x, kernel, bias=None):
    """Stride-1 'same' convolution (cross-correlation), NHWC and HWIO."""
    kh, kw, _, out_channels = kernel.shape
    pad_h, pad_w = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(
        x.astype(np.float64),
        ((0, 0), (pad_h, kh - 1 - pad_h), (pad_w, kw - 1 - pad_w), (0, 0)),
    )
    batch, height, width, _ = x.shape
    out = np.zeros((batch, height, width, out_channels), np.float64)
    for dy in range(kh):
        for dx in range(kw):
            window = padded[:, dy : dy + height, dx : dx + width, :]
            out += window @ kernel[dy, dx].astype(np.float64)
    if bias is not None:
        out += bias
    return out


def max_pool_same(x, pool_size):
    """Stride-1 max pooling; padded positions never win (-inf padding)."""
    pad = (pool_size - 1) // 2
    padded = np.pad(
        x.astype(np.float64),
        (
            (0, 0),
            (pad, pool_size - 1 - pad),
            (pad, pool_size - 1 - pad),
            (0, 0),
        ),
        constant_values=-np.inf,
    )
    height, width = x.shape[1:3]
    out = np.full(x.shape, -np.inf)
    for dy in range(pool_size):
        for dx in range(pool_size):
            out = np.maximum(out, padded[:, dy : dy + height, dx : dx + width])
    return out


def relu(x):
    return np.maximum(x, 0.0)


def _axis_weights(in_size, out_size, align_corners):
    """Dense (out_size, in_size) bilinear interpolation matrix."""
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        if align_corners:
            src = 0.0 if out_size == 1 else i * (in_size - 1) / (out_size - 1)
        else:
            src = (i + 0.5) * in_size / out_size - 0.5
            src = min(max(src, 0.0), in_size - 1)
        low = int(np.floor(src))
        high = min(low + 1, in_size - 1)
        frac = src - low
        matrix[i, low] += 1.0 - frac
        matrix[i, high] += frac
    return matrix


def resize_bilinear(x, size, align_corners=True):
    """Bilinear resize of an NHWC array by separable interpolation matrices."""
    rows = _axis_weights(x.shape[1], size[0], align_corners)
    cols = _axis_weights(x.shape[2], size[1], align_corners)
    out = np.einsum("oh,bhwc->bowc", rows, x.astype(np.float64))
    return np.einsum("pw,bowc->bopc", cols, out)


def residual_conv_unit(x, kernels_and_biases):
    """RCU chain: per unit x + conv(relu(conv_bias(relu(x))))."""
    for first, second in kernels_and_biases:
        residual = x
        x = conv2d_same(relu(x), *first)
        x = conv2d_same(relu(x), *second)
        x = x + residual
    return x


def chained_residual_pooling(x, kernels, pool_size=5, conv_before_pool=False):
    """CRP: top = conv(pool(top)) (or pool(conv(top))); x += top."""
    top = x
    for kernel in kernels:
        if conv_before_pool:
            top = max_pool_same(conv2d_same(top, kernel), pool_size)
        else:
            top = conv2d_same(max_pool_same(top, pool_size), kernel)
        x = x + top
    return x


def multi_resolution_fusion(inputs, kernels, align_corners=True):
    """Conv per input, bilinear resize to the largest input, sum."""
    height = max(x.shape[1] for x in inputs)
    width = max(x.shape[2] for x in inputs)
    total = 0.0
    for x, kernel in zip(inputs, kernels):
        y = conv2d_same(x, kernel)
        if y.shape[1:3] != (height, width):
            y = resize_bilinear(y, (height, width), align_corners)
        total = total + y
    return total


def conv2d_padded(x, kernel, bias=None, stride=1, pad=0):
    """MatConvNet convolution: `pad` zeros on every side, then `stride`.

    Output size `floor((H + 2 * pad - k) / stride) + 1`, NHWC and HWIO.
    """
    kh, kw, _, out_channels = kernel.shape
    padded = np.pad(
        x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0))
    )
    out_h = (padded.shape[1] - kh) // stride + 1
    out_w = (padded.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, out_channels), np.float64)
    for dy in range(kh):
        for dx in range(kw):
            window = padded[
                :,
                dy : dy + (out_h - 1) * stride + 1 : stride,
                dx : dx + (out_w - 1) * stride + 1 : stride,
                :,
            ]
            out += window @ kernel[dy, dx].astype(np.float64)
    if bias is not None:
        out += np.ravel(bias)
    return out


def max_pool_padded(x, pool_size, stride, pad):
    """MatConvNet max pooling: `-inf` padding on every side, then `stride`."""
    padded = np.pad(
        x.astype(np.float64),
        ((0, 0), (pad, pad), (pad, pad), (0, 0)),
        constant_values=-np.inf,
    )
    out_h = (padded.shape[1] - pool_size) // stride + 1
    out_w = (padded.shape[2] - pool_size) // stride + 1
    out = np.full((x.shape[0], out_h, out_w, x.shape[3]), -np.inf)
    for dy in range(pool_size):
        for dx in range(pool_size):
            window = padded[
                :,
                dy : dy + (out_h - 1) * stride + 1 : stride,
                dx : dx + (out_w - 1) * stride + 1 : stride,
                :,
            ]
            out = np.maximum(out, window)
    return out


def batchnorm_from_moments(x, mult, bias, moments):
    """MatConvNet test-time BatchNorm, `moments` (C, 2) = [mean, sigma]."""
    moments = np.asarray(moments, np.float64)
    mean, sigma = moments[:, 0], moments[:, 1]
    return np.ravel(mult) * (x - mean) / sigma + np.ravel(bias)


def per_class_iou(pred, label, num_classes, ignore=255):
    """Per-class IoU with boolean masks, NaN for empty unions; predictions
    at ignored pixels do not count."""
    valid = label != ignore
    ious = []
    for cls in range(num_classes):
        pred_c = (pred == cls) & valid
        label_c = label == cls
        union = (pred_c | label_c).sum()
        ious.append((pred_c & label_c).sum() / union if union else np.nan)
    return np.array(ious)
