"""Serving: a checkpoint in, predictions out."""

from .predictor import Prediction, Predictor

__all__ = ["Prediction", "Predictor"]
