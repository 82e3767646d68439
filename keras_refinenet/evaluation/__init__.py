"""Evaluation: metrics reports of a model on a dataset, and offline scoring
of saved predictions (the Cityscapes protocol)."""

from typing import TYPE_CHECKING

from keras_refinenet.evaluation.cityscapes import evaluate_prediction_folder
from keras_refinenet.lazy_imports import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from keras_refinenet.evaluation.confusion import ConfusionMatrix
    from keras_refinenet.evaluation.report import (
        evaluate_model,
        format_report,
        json_ready,
        metrics_report,
        predict_class_ids_fn,
        write_report,
    )

# Dataset name -> scorer of a folder of saved predictions.
PREDICTION_FOLDER_EVALUATORS = {"cityscapes": evaluate_prediction_folder}

__all__ = [
    "ConfusionMatrix",
    "PREDICTION_FOLDER_EVALUATORS",
    "evaluate_model",
    "evaluate_prediction_folder",
    "format_report",
    "json_ready",
    "metrics_report",
    "predict_class_ids_fn",
    "write_report",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
