"""TensorFlow CPU settings for processes that only run inference.

They must be in the environment before TensorFlow starts; `keras-refinenet
predict` sets them itself (`keras_refinenet.cli.startup`), and a script
that only predicts can export them before Python starts:

- `TF_ENABLE_ONEDNN_OPTS=1`: TensorFlow runs oneDNN kernels by default
  only on CPUs with AVX-512 VNNI / BF16 or AMX. On an AVX2 AMD EPYC the
  Winograd inference network ran RefineNet-101 at 512x1024 in 5.7 s with
  oneDNN against 10.5 s with Eigen (direct convolutions: 20.6 s against
  9.0 s, so `fastest_decoder_conv` picks Winograd only where oneDNN is on).
- `TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1`: each oneDNN convolution keeps the
  weights it reordered into the CPU's blocked layout on its first call
  instead of reordering them on every call (157 ms of a 643 ms bfloat16
  RefineNet-101 forward on an Intel Xeon with AMX). Only correct while
  no weight changes after the first convolution ran: it silently stops
  training (measured: the loss of a `fit` stays at its first value).
- `TF_USE_ADVANCED_CPU_OPS=1`: TensorFlow's extra CPU fusions.

With all three, `predict_segmentation` ran RefineNet-101 at 512x1024 in
5.58 s against 6.03 s with oneDNN alone (AVX2 AMD EPYC) and 0.49 s against
0.55 s in bfloat16 (Intel Xeon with AMX); `benchmarks/README.md`.
"""

import os

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
FROZEN_WEIGHTS_VARIABLE = "TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"
ADVANCED_CPU_OPS_VARIABLE = "TF_USE_ADVANCED_CPU_OPS"
INFERENCE_PROCESS_ENVIRONMENT = {
    ONEDNN_VARIABLE: "1",
    FROZEN_WEIGHTS_VARIABLE: "1",
    ADVANCED_CPU_OPS_VARIABLE: "1",
}
TRUE_VALUES = ("1", "true")


def use_inference_process_settings(environ=None):
    """Sets the TensorFlow CPU variables of an inference-only process.

    Values already in the environment are kept, so
    `TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=0` turns the weight cache off and
    `TF_ENABLE_ONEDNN_OPTS=0` keeps Eigen kernels. `keras-refinenet
    predict` calls this before TensorFlow starts; never call it in a
    process that trains, or in one that changes weights after predicting
    (e.g. `set_weights` or loading another checkpoint into the same
    model), because the convolutions would keep computing with the first
    weights they saw. Calling it after TensorFlow started changes nothing.

    Args:
        environ: the mapping to update (default `os.environ`).

    Returns:
        Whether the weight cache is on in `environ` afterwards.

    Example:

    >>> environ = {}
    >>> use_inference_process_settings(environ)
    True
    >>> environ["TF_ENABLE_ONEDNN_OPTS"], environ["TF_USE_ADVANCED_CPU_OPS"]
    ('1', '1')
    >>> use_inference_process_settings({FROZEN_WEIGHTS_VARIABLE: "0"})
    False
    """
    environ = os.environ if environ is None else environ
    for name, value in INFERENCE_PROCESS_ENVIRONMENT.items():
        environ.setdefault(name, value)
    return frozen_weights_assumed(environ)


def variable_on(name, environ=None):
    """Whether the boolean TensorFlow variable `name` is on in `environ`.

    Args:
        name: the variable, e.g. `TF_ENABLE_ONEDNN_OPTS`.
        environ: the mapping to read (default `os.environ`).

    Returns:
        `True` or `False` (unset is off).

    Example:

    >>> variable_on("TF_ENABLE_ONEDNN_OPTS", {"TF_ENABLE_ONEDNN_OPTS": "1"})
    True
    """
    environ = os.environ if environ is None else environ
    return environ.get(name, "0").strip().lower() in TRUE_VALUES


def frozen_weights_assumed(environ=None):
    """Whether `TF_ONEDNN_ASSUME_FROZEN_WEIGHTS` is on in `environ`.

    Args:
        environ: the mapping to read (default `os.environ`).

    Returns:
        `True` or `False`.

    Example:

    >>> frozen_weights_assumed({"TF_ONEDNN_ASSUME_FROZEN_WEIGHTS": "true"})
    True
    """
    return variable_on(FROZEN_WEIGHTS_VARIABLE, environ)
