"""Evaluation: metrics reports of a model on a dataset, and offline scoring
of saved predictions (the Cityscapes protocol)."""

from keras_refinenet.evaluation.cityscapes import evaluate_prediction_folder
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
    "PREDICTION_FOLDER_EVALUATORS",
    "evaluate_model",
    "evaluate_prediction_folder",
    "format_report",
    "json_ready",
    "metrics_report",
    "predict_class_ids_fn",
    "write_report",
]
