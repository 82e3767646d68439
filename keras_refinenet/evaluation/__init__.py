"""Offline evaluation of saved predictions."""

from keras_refinenet.evaluation.cityscapes import evaluate_prediction_folder

__all__ = ["evaluate_prediction_folder"]
