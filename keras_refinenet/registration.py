"""Registration of the package's serializable classes with `keras.saving`.

Keras finds a custom class in a `.keras` file only once the module defining
it has run. `import keras_refinenet` is lazy, so it calls
`register_keras_objects` itself only when Keras is already imported (then
the cost is paid anyway); otherwise touching any model, layer or loss
registers them, and so does calling this function.
"""

import importlib

# Every module that defines a `keras.saving.register_keras_serializable`
# class (layers, encoders, the model family, losses, metrics, schedules
# and the optimizers of `compile()`).
REGISTERING_MODULES = (
    "keras_refinenet.layers",
    "keras_refinenet.models.encoders",
    "keras_refinenet.models.refinenet",
    "keras_refinenet.training.defaults",
    "keras_refinenet.training.losses",
    "keras_refinenet.training.metrics",
    "keras_refinenet.training.schedules",
)


def register_keras_objects():
    """Imports every module that registers classes with `keras.saving`.

    Call it before `keras.saving.load_model` in a process that has not
    used keras-refinenet yet and imported Keras only after it.

    Returns:
        The names of the imported modules.

    Example:

    >>> import keras
    >>> names = register_keras_objects()
    >>> keras.saving.get_registered_object(
    ...     "keras_refinenet>RefineNetImageSegmenter"
    ... ).__name__
    'RefineNetImageSegmenter'
    """
    for name in REGISTERING_MODULES:
        importlib.import_module(name)
    return REGISTERING_MODULES
