"""Training module: synthetic source-task pretraining and glioblastoma GTV fine-tuning."""
