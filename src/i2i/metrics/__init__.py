"""Metrics: how good a translation is."""

from i2i.metrics.paired import PairedScores, evaluate_paired, pixel_accuracy, rmse

__all__ = ["PairedScores", "evaluate_paired", "pixel_accuracy", "rmse"]
