"""A numpy interpreter of MatConvNet DagNN graphs: the conversion oracle.

It runs a DAG as MatConvNet 1.0-beta23 does at test time, layer by layer
from the graph's own description (types, inputs, outputs, params, block
settings), with no knowledge of RefineNet or of the converter:

- `dagnn.Conv`: cross-correlation with explicit `pad` = [top bottom left
  right], `stride`, `dilate`; filters stored H x W x In x Out.
- `dagnn.BatchNorm`: `mult * (x - mean) / sigma + bias` with `moments` =
  [mean, sigma] (`vl_nnbnorm` with given moments; sigma holds epsilon).
- `dagnn.ReLU` (with `leak`), `dagnn.Sum`, `dagnn.DropOut` (identity at
  test time), `My_copy_layer` (identity).
- `dagnn.Pooling`: max over the window clipped to the image (padded cells
  never win) or average over the full window.
- `My_sum_layer`: every input resized to the largest input size with the
  authors' `my_resize` (GPU semantics by default: one scale factor
  `max(target ./ size)`, MATLAB `imresize`, top-left crop; or CPU: bicubic
  straight to the target size), then summed.

Arrays are single images `(H, W, C)` in float64.
"""

import numpy as np

from tests.layers.matlab_imresize_reference import (
    imresize,
    imresize_uniform_crop,
)


def _pairs(values, count):
    values = [int(v) for v in np.ravel(values)]
    if len(values) == 1:
        values = values * count
    assert len(values) == count, values
    return values


def conv(x, filters, bias=None, pad=0, stride=1, dilate=1):
    """MatConvNet `vl_nnconv` of one `(H, W, C)` image."""
    top, bottom, left, right = _pairs(pad, 4)
    stride_y, stride_x = _pairs(stride, 2)
    dilate_y, dilate_x = _pairs(dilate, 2)
    filters = np.asarray(filters, "float64")
    if filters.ndim == 3:
        filters = filters[..., None]
    kernel_h, kernel_w, in_channels, out_channels = filters.shape
    padded = np.pad(x, ((top, bottom), (left, right), (0, 0)))
    span_h = (kernel_h - 1) * dilate_y + 1
    span_w = (kernel_w - 1) * dilate_x + 1
    out_h = (padded.shape[0] - span_h) // stride_y + 1
    out_w = (padded.shape[1] - span_w) // stride_x + 1
    y = np.zeros((out_h, out_w, out_channels))
    for i in range(kernel_h):
        for j in range(kernel_w):
            window = padded[
                i * dilate_y : i * dilate_y
                + (out_h - 1) * stride_y
                + 1 : stride_y,
                j * dilate_x : j * dilate_x
                + (out_w - 1) * stride_x
                + 1 : stride_x,
                :in_channels,
            ]
            y += window @ filters[i, j]
    if bias is not None:
        y += np.ravel(bias)
    return y


def batch_norm(x, mult, bias, moments):
    """Test-time MatConvNet BatchNorm from `moments` = [mean, sigma]."""
    moments = np.asarray(moments, "float64").reshape(-1, 2)
    mean, sigma = moments[:, 0], moments[:, 1]
    return np.ravel(mult) * (x - mean) / sigma + np.ravel(bias)


def pool(x, method, pool_size, pad=0, stride=1):
    """MatConvNet `vl_nnpool` of one `(H, W, C)` image."""
    top, bottom, left, right = _pairs(pad, 4)
    pool_h, pool_w = _pairs(pool_size, 2)
    stride_y, stride_x = _pairs(stride, 2)
    fill = -np.inf if method == "max" else 0.0
    padded = np.pad(
        x, ((top, bottom), (left, right), (0, 0)), constant_values=fill
    )
    out_h = (padded.shape[0] - pool_h) // stride_y + 1
    out_w = (padded.shape[1] - pool_w) // stride_x + 1
    windows = np.stack(
        [
            padded[
                i : i + (out_h - 1) * stride_y + 1 : stride_y,
                j : j + (out_w - 1) * stride_x + 1 : stride_x,
            ]
            for i in range(pool_h)
            for j in range(pool_w)
        ]
    )
    if method == "max":
        return windows.max(axis=0)
    return windows.sum(axis=0) / (pool_h * pool_w)


def authors_resize(x, target_size, mode="gpu"):
    """The authors' `my_resize`: `x` to `target_size` (H, W)."""
    target_size = tuple(int(v) for v in target_size)
    if tuple(x.shape[:2]) == target_size:
        return x
    if mode == "cpu":
        return imresize(x, output_size=target_size)
    return imresize_uniform_crop(x, target_size)


def _as_list(value):
    if isinstance(value, str):
        return [value]
    return [str(v) for v in np.ravel(np.asarray(value, dtype=object))]


def run_dag(layers, params, feeds, resize_mode="gpu"):
    """Runs a DagNN on `feeds` and returns every variable.

    Args:
        layers: list of dicts with `name`, `type`, `inputs`, `outputs`,
            `params` (parameter names) and `block` (dict of settings).
        params: dict parameter name -> array (MATLAB order).
        feeds: dict input variable name -> `(H, W, C)` array.
        resize_mode: `"gpu"` or `"cpu"` semantics of `My_sum_layer`.

    Returns:
        Dict variable name -> array.
    """
    values = {name: np.asarray(x, "float64") for name, x in feeds.items()}
    pending = list(layers)
    while pending:
        ready = [
            layer
            for layer in pending
            if all(name in values for name in _as_list(layer["inputs"]))
        ]
        if not ready:
            missing = sorted(
                {
                    name
                    for layer in pending
                    for name in _as_list(layer["inputs"])
                    if name not in values
                }
            )
            raise ValueError(f"DAG inputs never computed: {missing[:10]}")
        for layer in ready:
            pending.remove(layer)
            inputs = [values[name] for name in _as_list(layer["inputs"])]
            weights = [params[name] for name in _as_list(layer["params"])]
            outputs = _as_list(layer["outputs"])
            values[outputs[0]] = _run_layer(layer, inputs, weights, resize_mode)
    return values


def _run_layer(layer, inputs, weights, resize_mode):
    kind = layer["type"]
    block = layer.get("block", {}) or {}
    if kind == "dagnn.Conv":
        has_bias = bool(np.ravel(block.get("hasBias", len(weights) > 1))[0])
        bias = weights[1] if has_bias and len(weights) > 1 else None
        return conv(
            inputs[0],
            weights[0],
            bias,
            pad=block.get("pad", 0),
            stride=block.get("stride", 1),
            dilate=block.get("dilate", 1),
        )
    if kind == "dagnn.BatchNorm":
        return batch_norm(inputs[0], *weights)
    if kind == "dagnn.ReLU":
        leak = float(np.ravel(block.get("leak", 0.0))[0])
        return np.where(inputs[0] > 0, inputs[0], leak * inputs[0])
    if kind == "dagnn.Pooling":
        method = block.get("method", "max")
        if not isinstance(method, str):
            method = "".join(chr(int(c)) for c in np.ravel(method))
        return pool(
            inputs[0],
            method,
            block["poolSize"],
            pad=block.get("pad", 0),
            stride=block.get("stride", 1),
        )
    if kind == "dagnn.Sum":
        return np.sum(inputs, axis=0)
    if kind == "My_sum_layer":
        target = (
            max(x.shape[0] for x in inputs),
            max(x.shape[1] for x in inputs),
        )
        return np.sum(
            [authors_resize(x, target, resize_mode) for x in inputs], axis=0
        )
    if kind in ("dagnn.DropOut", "My_copy_layer"):
        return inputs[0]
    raise ValueError(f"Layer type not in the oracle: {kind!r}")
