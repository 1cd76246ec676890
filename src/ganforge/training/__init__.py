"""Training: the loop, checkpoints, EMA, batches."""
