"""Training: the generic `Trainer`, its checkpoint files and the registered losses.

`LOSSES` holds every loss wherever it is imported from (it lives beside the losses). Importing the
package itself loads nothing: each name below loads its module on first use, so reading a
checkpoint (`scenesense.training.checkpoint`) does not load the trainer, Lightning or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scenesense.utils.lazy import lazy_exports

if TYPE_CHECKING:  # for static tools; at run time each name loads on first use (see _LAZY)
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

_LAZY = {
    "load_weights": "scenesense.training.checkpoint",
    "LOSSES": "scenesense.training.losses",
    "CrossEntropyLoss": "scenesense.training.losses",
    "FocalLoss": "scenesense.training.losses",
    "LogitAdjustedLoss": "scenesense.training.losses",
    "adjust_logits": "scenesense.training.losses",
    "class_priors_from_dataset": "scenesense.training.losses",
    "class_priors_from_labels": "scenesense.training.losses",
    "class_weights_from_dataset": "scenesense.training.losses",
    "class_weights_from_labels": "scenesense.training.losses",
    "FitResult": "scenesense.training.trainer",
    "Predictions": "scenesense.training.trainer",
    "Trainer": "scenesense.training.trainer",
}

__all__ = ["LOSSES", "CrossEntropyLoss", "FitResult", "FocalLoss", "LogitAdjustedLoss", "Predictions", "Trainer",
           "adjust_logits", "class_priors_from_dataset", "class_priors_from_labels",
           "class_weights_from_dataset", "class_weights_from_labels", "load_weights"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
