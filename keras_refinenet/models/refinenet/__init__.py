"""RefineNet as a keras-hub model family.

`RefineNetBackbone` (image encoder + multi-path refinement),
`RefineNetImageSegmenter` (the task, also `keras_refinenet.RefineNet`),
`RefineNetImageSegmenterPreprocessor` and `RefineNetImageConverter` (the
normalization), and the preset registry.
"""

from typing import TYPE_CHECKING

from keras_refinenet.lazy_imports import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from keras_refinenet.models.refinenet.refinenet_backbone import (
        RefineNetBackbone,
        cascade_groups,
    )
    from keras_refinenet.models.refinenet.refinenet_image_converter import (
        RefineNetImageConverter,
    )
    from keras_refinenet.models.refinenet.refinenet_image_segmenter import (
        RefineNetImageSegmenter,
        build_preprocessor,
    )

    # The documented name of the task.
    from keras_refinenet.models.refinenet.refinenet_image_segmenter import (
        RefineNetImageSegmenter as RefineNet,
    )
    from keras_refinenet.models.refinenet.refinenet_image_segmenter_preprocessor import (  # noqa: E501
        RefineNetImageSegmenterPreprocessor,
    )

__all__ = [
    "RefineNet",
    "RefineNetBackbone",
    "RefineNetImageConverter",
    "RefineNetImageSegmenter",
    "RefineNetImageSegmenterPreprocessor",
    "build_preprocessor",
    "cascade_groups",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
