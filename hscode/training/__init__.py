"""Training: set preparation (Spark), distributed training (Horovod), search, baseline."""
