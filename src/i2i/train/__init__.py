"""Training: the loop (:mod:`.loop`), checkpoints, storage, logging and what a run writes
while it learns. Nothing is imported here, so that reading a checkpoint does not load the
training loop and its data pipeline."""
