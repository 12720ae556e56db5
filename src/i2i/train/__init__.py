"""Training: the loop, checkpoints, and what a run writes while it learns."""

from i2i.train.loop import TrainingDiverged, TrainResult, load_run_config, train

__all__ = ["TrainResult", "TrainingDiverged", "load_run_config", "train"]
