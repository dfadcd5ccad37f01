"""Training engine: one trainer for every method, with NC tracking, resume and DDP."""

from ncollapse.train.trainer import (
    Trainer,
    TrainingDiverged,
    TrainResult,
    resume_run,
    train_from_config,
)

__all__ = ["Trainer", "TrainResult", "TrainingDiverged", "train_from_config", "resume_run"]
