"""The names of what a run folder and a checkpoint folder hold (see ``i2i.runs.checkpoint``)."""

from __future__ import annotations

LATEST = "latest"  # checkpoints/latest: the name of the newest complete checkpoint
BEST = "best"  # checkpoints/best: the best-scoring one under --eval-every (best.json: score)
CARD = "model.json"  # a checkpoint's model card
WEIGHTS = "model.safetensors"  # a checkpoint's weights, keys prefixed by the net's name
TRAINER_JSON, TRAINER_TENSORS = "trainer.json", "trainer.safetensors"  # for resume
CONFIG = "config.yaml"  # a run's whole config
# a run's small files, mirrored to object storage after each checkpoint
RUN_FILES = (CONFIG, "metrics.jsonl", "eval.jsonl", "train.log", "samples.png", "loss_curves.png")
RUN_FOLDERS = ("tensorboard", "samples")  # mirrored file by file as they grow
POINTERS = ("best.json", BEST, LATEST)  # upload order: "latest" last
