"""Datasets, label tables and `tf.data` pipelines.

Importing this package imports no framework: TensorFlow is imported by the
functions that build `tf.data` pipelines, when they are called.
"""

from typing import TYPE_CHECKING

from keras_refinenet.lazy_imports import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from keras_refinenet.data.cityscapes import (
        CITYSCAPES_CLASS_NAMES,
        CITYSCAPES_PALETTE,
        label_ids_to_train_ids,
        load_cityscapes,
        train_ids_to_label_ids,
    )
    from keras_refinenet.data.datasets import (
        DATASET_NAMES,
        SegmentationDataset,
        class_names_for,
        default_class_names,
        load_dataset,
    )
    from keras_refinenet.data.folder import (
        load_folder_dataset,
        load_voc_dataset,
    )
    from keras_refinenet.data.pipeline import (
        evaluation_pipeline,
        training_pipeline,
    )
    from keras_refinenet.data.synthetic import (
        SYNTHETIC_CLASS_NAMES,
        SYNTHETIC_PALETTE,
        load_synthetic,
        make_synthetic_arrays,
    )
    from keras_refinenet.data.voc import VOC_CLASS_NAMES, VOC_PALETTE

__all__ = [
    "CITYSCAPES_CLASS_NAMES",
    "CITYSCAPES_PALETTE",
    "DATASET_NAMES",
    "SYNTHETIC_CLASS_NAMES",
    "SYNTHETIC_PALETTE",
    "VOC_CLASS_NAMES",
    "VOC_PALETTE",
    "SegmentationDataset",
    "class_names_for",
    "default_class_names",
    "evaluation_pipeline",
    "label_ids_to_train_ids",
    "load_cityscapes",
    "load_dataset",
    "load_folder_dataset",
    "load_synthetic",
    "load_voc_dataset",
    "make_synthetic_arrays",
    "train_ids_to_label_ids",
    "training_pipeline",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
