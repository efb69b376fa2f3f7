"""Task-independent training: seeding, loss, metrics, the loop, progress (checkpoints: ``checkpoint.py``)."""

from .distributed import DistributedContext, distributed, resolve_device
from .loader import make_loader
from .loop import TrainingDiverged, TrainResult, evaluate, fit, train_one_epoch
from .losses import classification_loss
from .metrics import SCORES, EpochRecord, accuracy, calibration_bins, confusion_matrix, expected_calibration_error
from .seed import capture_rng_state, deterministic_mode, restore_rng_state, seed_everything, seed_worker
from .split import Split, split_examples, stratified_split

__all__ = [
    "SCORES",
    "DistributedContext",
    "EpochRecord",
    "Split",
    "TrainResult",
    "TrainingDiverged",
    "accuracy",
    "calibration_bins",
    "capture_rng_state",
    "classification_loss",
    "confusion_matrix",
    "deterministic_mode",
    "distributed",
    "evaluate",
    "expected_calibration_error",
    "fit",
    "make_loader",
    "resolve_device",
    "restore_rng_state",
    "seed_everything",
    "seed_worker",
    "split_examples",
    "stratified_split",
    "train_one_epoch",
]
