"""keras-refinenet: RefineNet semantic segmentation for Keras 3.

Importing the package imports no framework: each name below is imported on
first use (`keras_refinenet.RefineNet` imports the model, keras-hub and
what they need), so `import keras_refinenet` stays fast and does not import
TensorFlow on the JAX or PyTorch backend.
"""

import sys
from typing import TYPE_CHECKING

# Before TensorFlow: quiet start-up of the `keras-refinenet` command only.
from keras_refinenet.cli import startup as _cli_startup  # noqa: F401, I001
from keras_refinenet.lazy_imports import lazy_exports as _lazy_exports
from keras_refinenet.version import __version__

if TYPE_CHECKING:
    from keras_refinenet import layers
    from keras_refinenet.models.encoders import resnet_backbone
    from keras_refinenet.models.preset_io import (
        CorruptedWeightsError,
        PresetWeightsNotFoundError,
    )
    from keras_refinenet.models.refinenet import (
        RefineNet,
        RefineNetBackbone,
        RefineNetImageConverter,
        RefineNetImageSegmenter,
        RefineNetImageSegmenterPreprocessor,
    )
    from keras_refinenet.models.tiny import tiny_refinenet
    from keras_refinenet.registration import register_keras_objects

# Subpackages reachable as attributes without an import statement.
SUBPACKAGES = (
    "convert",
    "data",
    "evaluation",
    "export",
    "inference",
    "layers",
    "models",
    "serving",
    "training",
)

__all__ = [
    "CorruptedWeightsError",
    "PresetWeightsNotFoundError",
    "RefineNet",
    "RefineNetBackbone",
    "RefineNetImageConverter",
    "RefineNetImageSegmenter",
    "RefineNetImageSegmenterPreprocessor",
    "__version__",
    "layers",
    "register_keras_objects",
    "resnet_backbone",
    "tiny_refinenet",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__, SUBPACKAGES)

if "keras" in sys.modules:
    # Keras is loaded already: register our classes now, so that
    # `keras.saving.load_model` right after `import keras_refinenet` works.
    from keras_refinenet.registration import register_keras_objects

    register_keras_objects()
