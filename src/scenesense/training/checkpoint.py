"""Checkpoint files of a run directory, random-state capture and the trainer-config fingerprint.

A run directory holds two files written by `scenesense.training.trainer.Trainer`:

- ``last.pt``: everything needed to resume after a kill (model and optimizer state, epoch,
  history, best weights, early-stopping counters, random states, config fingerprint);
- ``checkpoint.pt``: ``{"model": best state_dict, "meta": {...}}``, the file users load.

Both are written atomically (`scenesense.utils.io.atomic_torch_save`). Every file a user
hands in is read by `load_checkpoint` (``weights_only=True``: no code in it ever runs); a
file that is not a checkpoint is a `CheckpointError` naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import random
import re
import warnings
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from scenesense.config import TrainerConfig, diff_mappings, to_dict
from scenesense.utils.io import atomic_torch_save

LAST_FILE = "last.pt"
CHECKPOINT_FILE = "checkpoint.pt"
# TrainerConfig fields that cannot change a run's numbers and may differ on resume.
_UNFINGERPRINTED = ("progress", "loggers", "mlflow")
_LAST_KEYS = ("model", "optimizer", "state", "rng", "fingerprint", "trainer_config")


class CheckpointError(ValueError):
    """A file that should be a scenesense checkpoint is not one (foreign, damaged or tampered with)."""


@dataclass
class TrainingState:
    """What changes from epoch to epoch of a fit (saved in ``last.pt``)."""

    epoch: int = 0  # last finished epoch (1-based; 0 = none)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_dev_loss: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None  # CPU copy of the best weights
    bad_epochs: int = 0  # epochs since the last dev-loss improvement
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Shallow field dict (tensors are not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def fingerprinted_config(cfg: TrainerConfig) -> dict[str, Any]:
    """The trainer settings a resumed run must share with the original (all but the progress bar and
    the experiment loggers)."""
    return {k: v for k, v in to_dict(cfg).items() if k not in _UNFINGERPRINTED}


def config_fingerprint(cfg: TrainerConfig) -> str:
    """A SHA-256 hex digest of `fingerprinted_config`, stable across processes."""
    text = json.dumps(fingerprinted_config(cfg), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_diff(saved: dict[str, Any], cfg: TrainerConfig) -> list[str]:
    """Human-readable ``"key: saved -> current"`` lines where ``cfg`` differs from ``saved``.

    A key that ``saved`` lacks (a setting added after the run was written) counts as its default.
    """
    return diff_mappings({**fingerprinted_config(TrainerConfig()), **saved}, fingerprinted_config(cfg))


def cpu_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module.state_dict()`` (independent of later training)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def capture_rng_state() -> dict[str, Any]:
    """The state of Python's, numpy's and torch's global generators, as torch-loadable values."""
    _, key, pos, has_gauss, cached = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore generators saved by `capture_rng_state`."""
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    key = n["key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value: Any) -> Any:  # noqa: ANN401
    """Lists back to tuples, recursively (``random.setstate`` wants tuples)."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_last(path: str | Path, state: TrainingState, model: nn.Module, optimizer: torch.optim.Optimizer,
              cfg: TrainerConfig) -> Path:
    """Atomically write the resume file: weights, optimizer, state, random states, fingerprint."""
    payload = {"model": cpu_state_dict(model), "optimizer": optimizer.state_dict(), "state": state.as_dict(),
               "rng": capture_rng_state(), "fingerprint": config_fingerprint(cfg),
               "trainer_config": fingerprinted_config(cfg)}
    return atomic_torch_save(payload, path)


def load_last(path: str | Path, cfg: TrainerConfig) -> dict[str, Any] | None:
    """Read the resume file at ``path`` (``None`` if there is none) and check it matches ``cfg``.

    Returns:
        ``{"model", "optimizer", "state": TrainingState, "rng", ...}`` or ``None``.

    Raises:
        ValueError: "run_dir was created with a different trainer config", with the differences.
    """
    if not Path(path).exists():
        return None
    saved = load_checkpoint(path)
    missing = [k for k in _LAST_KEYS if k not in saved]
    if missing:
        raise CheckpointError(f"{path}: not a scenesense resume file (no {missing}); "
                              "delete it to train this run from the start")
    if saved["fingerprint"] != config_fingerprint(cfg):
        diff = config_diff(saved["trainer_config"], cfg)  # settings added since the run count as defaults
        if diff:
            raise ValueError(f"run_dir was created with a different trainer config ({path}: {'; '.join(diff)}); "
                             "use a new run_dir or the original settings")
    return {**saved, "state": TrainingState(**saved["state"])}


def save_checkpoint(path: str | Path, model_state: dict[str, torch.Tensor],
                    meta: dict[str, Any] | None = None) -> Path:
    """Atomically write ``{"model": model_state, "meta": meta}`` (the file users load).

    Args:
        path: destination, usually ``<run_dir>/checkpoint.pt``.
        model_state: a ``state_dict`` (best weights).
        meta: small JSON-like metadata (best epoch, dev loss, ...).

    Returns:
        ``path`` as a `pathlib.Path`.
    """
    return atomic_torch_save({"model": model_state, "meta": dict(meta or {})}, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint or training state on the CPU, with ``weights_only=True`` (no code runs).

    Every ``torch.load`` of a file a user may hand in goes through here.

    Returns:
        The saved mapping (e.g. ``{"model": state_dict, "meta": {...}}``).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: ``"<path>: not a scenesense checkpoint (<why>)"``: not a ``torch.save``
            file, damaged, empty, not a mapping, or refers to Python code (which is never run).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of foreign files
            warnings.simplefilter("ignore")
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, TypeError,
            AttributeError, ImportError, IndexError, KeyError, UnicodeError) as err:
        raise CheckpointError(f"{path}: not a scenesense checkpoint ({_why_unreadable(err)})") from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: not a scenesense checkpoint (it holds a {type(saved).__name__}, "
                              "not a mapping of weights)")
    return saved


def _why_unreadable(err: BaseException) -> str:
    """A short, one-line reason for a failed ``torch.load``."""
    text = " ".join(str(err).split())
    code = re.search(r"GLOBAL (\S+)", text)
    if code:
        return f"it refers to Python code ({code.group(1)}), which is never loaded"
    if isinstance(err, EOFError) or not text:
        return "the file is empty or cut short"
    if isinstance(err, pickle.UnpicklingError):
        return "not a file written by torch.save, or damaged"
    first = text.split(". ")[0]
    return f"{type(err).__name__}: {first[:160]}"


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the ``"model"`` weights of checkpoint ``path`` into ``model`` (strict) and return it.

    Raises:
        CheckpointError: the file holds no ``"model"`` weights.
    """
    saved = load_checkpoint(path)
    if "model" not in saved:
        raise CheckpointError(f"{path}: not a scenesense checkpoint (no 'model' weights in it)")
    model.load_state_dict(saved["model"])
    return model
