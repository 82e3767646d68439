"""RefineNet as a keras-hub model family.

`RefineNetBackbone` (image encoder + multi-path refinement),
`RefineNetImageSegmenter` (the task, also `keras_refinenet.RefineNet`),
`RefineNetImageSegmenterPreprocessor` and `RefineNetImageConverter` (the
normalization), and the preset registry.
"""

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
from keras_refinenet.models.refinenet.refinenet_image_segmenter_preprocessor import (  # noqa: E501
    RefineNetImageSegmenterPreprocessor,
)

# The documented name of the task.
RefineNet = RefineNetImageSegmenter

__all__ = [
    "RefineNet",
    "RefineNetBackbone",
    "RefineNetImageConverter",
    "RefineNetImageSegmenter",
    "RefineNetImageSegmenterPreprocessor",
    "build_preprocessor",
    "cascade_groups",
]
