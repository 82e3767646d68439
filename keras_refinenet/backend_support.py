"""Which Keras backend is active, and a clear error for TensorFlow-only
features (SavedModel export, `tf.distribute` strategies, the tfds
Cityscapes builder) called on JAX or PyTorch.

Reading the backend name imports no framework: it is the `KERAS_BACKEND`
environment variable, else the `backend` of `~/.keras/keras.json`, else
TensorFlow, as Keras decides; once Keras is imported, Keras is asked.
"""

import json
import os
import sys

TENSORFLOW = "tensorflow"
BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_VARIABLE = "KERAS_BACKEND"
KERAS_CONFIG_FILE = "keras.json"


class BackendNotSupportedError(RuntimeError):
    """A feature was called on a Keras backend that cannot run it."""


def _configured_backend():
    keras_home = os.environ.get(
        "KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")
    )
    try:
        with open(os.path.join(keras_home, KERAS_CONFIG_FILE)) as file:
            return json.load(file).get("backend", TENSORFLOW)
    except (OSError, ValueError):
        return TENSORFLOW


def backend_name():
    """The Keras backend of this process, without importing a framework.

    Returns:
        `"tensorflow"`, `"jax"`, `"torch"` (or another backend name).

    Example:

    >>> backend_name() in BACKENDS
    True
    """
    if "keras" in sys.modules:
        return sys.modules["keras"].config.backend()
    return os.environ.get(BACKEND_VARIABLE) or _configured_backend()


def require_tensorflow_backend(feature, received=None):
    """Raises `BackendNotSupportedError` unless Keras runs on TensorFlow.

    Args:
        feature: what needs TensorFlow, e.g. `"SavedModel export"`; the
            message reads "`feature` needs the TensorFlow backend".
        received: the argument that asked for the feature, for the
            message's `Received:` part (default: the backend).

    Raises:
        BackendNotSupportedError: on the JAX or PyTorch backend.

    Example:

    >>> import keras
    >>> if keras.config.backend() == "tensorflow":
    ...     require_tensorflow_backend("SavedModel export")
    """
    backend = backend_name()
    if backend == TENSORFLOW:
        return
    received = received or f"KERAS_BACKEND={backend!r}"
    raise BackendNotSupportedError(
        f"{feature} needs the TensorFlow backend; KERAS_BACKEND is "
        f"{backend!r}. Set KERAS_BACKEND=tensorflow before Keras is "
        f"imported. Received: {received}"
    )
