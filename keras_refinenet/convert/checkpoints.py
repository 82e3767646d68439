"""Safe reading of PyTorch checkpoints and key/shape checking.

Checkpoints are untrusted files: they are read with
`torch.load(..., weights_only=True)`, which unpickles only tensors and
plain containers and refuses anything that would run code.
"""

import os
import pickle

import numpy as np

TORCH_INSTALL_HINT = (
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
)
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
DATA_PARALLEL_PREFIX = "module."
IGNORED_KEY_SUFFIXES = ("num_batches_tracked",)
MAX_LISTED_MISMATCHES = 10


class TorchNotInstalledError(ImportError):
    """Raised when a converter needs `torch` and it is not installed."""


class UnsafeCheckpointError(ValueError):
    """Raised for a checkpoint that holds more than tensors (e.g. code)."""


class CheckpointMismatchError(ValueError):
    """Raised when a checkpoint's keys or shapes do not fit the model."""


def import_torch():
    """Imports `torch`, or raises `TorchNotInstalledError` saying how."""
    try:
        import torch
    except ImportError as error:
        raise TorchNotInstalledError(
            "Reading PyTorch checkpoints needs `torch`, which is not "
            f"installed. Install the CPU build with:\n  {TORCH_INSTALL_HINT}"
        ) from error
    return torch


def unwrap_state_dict(checkpoint):
    """Finds the `state_dict` in a (possibly wrapped) checkpoint.

    Accepts a plain `state_dict`, a dictionary holding it under
    `state_dict`, `model_state_dict` or `model`, and keys prefixed with
    `module.` by `DataParallel`.

    Args:
        checkpoint: the object read from the checkpoint file.

    Returns:
        A dict from key to tensor or array.

    Example:

    >>> sorted(unwrap_state_dict({"state_dict": {"module.w": 1}}))
    ['w']
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(
            "The checkpoint must hold a `state_dict` (a dict of tensors). "
            f"Received: checkpoint of type {type(checkpoint).__name__}"
        )
    for key in WRAPPER_KEYS:
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    keys = list(checkpoint)
    if keys and all(str(key).startswith(DATA_PARALLEL_PREFIX) for key in keys):
        checkpoint = {
            key[len(DATA_PARALLEL_PREFIX) :]: value
            for key, value in checkpoint.items()
        }
    return dict(checkpoint)


def _to_numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().float().numpy()
    return np.asarray(value, dtype="float32")


def load_torch_state_dict(path):
    """Reads a PyTorch checkpoint into float32 numpy arrays, safely.

    Args:
        path: a `.pth`/`.pt` file written by `torch.save`.

    Returns:
        A dict from `state_dict` key to `np.ndarray`, without the
        `num_batches_tracked` counters.

    Raises:
        TorchNotInstalledError: `torch` is not installed.
        UnsafeCheckpointError: the file holds objects other than tensors
            and plain containers (such a pickle could run code).
        FileNotFoundError: `path` does not exist.

    Example:

    >>> state_dict = load_torch_state_dict("rf101.pth")  # doctest: +SKIP
    >>> state_dict["clf_conv.weight"].shape  # doctest: +SKIP
    (21, 256, 3, 3)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No checkpoint file at {path}. Received: path={path!r}"
        )
    torch = import_torch()
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(
            f"Refused to load {path}: it contains objects other than "
            "tensors, which could run arbitrary code when unpickled "
            f"(torch.load with weights_only=True said: {error})"
        ) from error
    state_dict = unwrap_state_dict(checkpoint)
    return {
        key: _to_numpy(value)
        for key, value in state_dict.items()
        if not key.endswith(IGNORED_KEY_SUFFIXES)
    }


def check_state_dict(state_dict, expected_shapes, source="checkpoint"):
    """Raises unless `state_dict` has exactly the expected keys and shapes.

    Args:
        state_dict: dict from key to array.
        expected_shapes: dict from key to shape tuple.
        source: how to name the checkpoint in the error message.

    Raises:
        CheckpointMismatchError: listing the first missing keys,
            unexpected keys and shape mismatches.
    """
    missing = [key for key in expected_shapes if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected_shapes]
    wrong_shapes = [
        f"{key}: checkpoint {tuple(state_dict[key].shape)}, "
        f"expected {tuple(shape)}"
        for key, shape in expected_shapes.items()
        if key in state_dict and tuple(state_dict[key].shape) != tuple(shape)
    ]
    if not (missing or unexpected or wrong_shapes):
        return
    lines = [f"The {source} does not match the model:"]
    for title, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches", wrong_shapes),
    ):
        if items:
            shown = items[:MAX_LISTED_MISMATCHES]
            more = len(items) - len(shown)
            lines.append(f"  {len(items)} {title}:")
            lines += [f"    {item}" for item in shown]
            if more:
                lines.append(f"    ... and {more} more")
    raise CheckpointMismatchError("\n".join(lines))
