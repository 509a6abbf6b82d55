"""Training: the generic `Trainer`, its checkpoint files and the registered losses.

Importing this package (or any module in it) fills `LOSSES` with every loss.
"""

from __future__ import annotations

from scenesense.training.checkpoint import load_weights as load_weights
from scenesense.training.losses import LOSSES as LOSSES
from scenesense.training.losses import CrossEntropyLoss as CrossEntropyLoss
from scenesense.training.losses import FocalLoss as FocalLoss
from scenesense.training.losses import LogitAdjustedLoss as LogitAdjustedLoss
from scenesense.training.losses import adjust_logits as adjust_logits
from scenesense.training.losses import class_priors_from_dataset as class_priors_from_dataset
from scenesense.training.losses import class_priors_from_labels as class_priors_from_labels
from scenesense.training.losses import class_weights_from_dataset as class_weights_from_dataset
from scenesense.training.losses import class_weights_from_labels as class_weights_from_labels
from scenesense.training.trainer import FitResult as FitResult
from scenesense.training.trainer import Predictions as Predictions
from scenesense.training.trainer import Trainer as Trainer

__all__ = ["LOSSES", "CrossEntropyLoss", "FitResult", "FocalLoss", "LogitAdjustedLoss", "Predictions", "Trainer",
           "adjust_logits", "class_priors_from_dataset", "class_priors_from_labels",
           "class_weights_from_dataset", "class_weights_from_labels", "load_weights"]
