"""Robustness suite: how a trained run degrades when a modality is missing or corrupted.

Every perturbation acts on the *loaded* input features of one modality (after the store read and
the optional speaker normalisation, before padding and before the model's own standardizer), and
is drawn from a generator seeded with ``(seed, sample index, condition)``, so a result does not
depend on the batch size or the order in which conditions run. Per modality ``m``:

- ``remove``: ``present[m]`` False for every sample, the model's missing-modality path (its
  encoder output is zeroed and its mask cleared, so the stored values are never seen);
- ``zero``: every value of ``m`` set to 0 while ``present[m]`` stays True (the model encodes zeros);
- ``noise``: additive Gaussian noise at a signal-to-noise ratio of ``snr`` dB: noise variance
  ``P / 10 ** (snr / 10)``, where ``P`` is the mean square of *that sample's* values of ``m``
  (its real steps only: padding is never counted, it is added by the collate afterwards);
- ``drop_frames`` (sequence modalities only): ``floor(fraction * T)`` of the sample's ``T`` real
  steps (at most ``T - 1``) are deleted uniformly at random, the rest keep their order; the
  sequence becomes shorter, so the padding masks built by the collate mark only kept steps.

A sample whose modality is already missing in the data is left as it is by every condition.
Only classification runs are supported (accuracy, weighted and macro F1 from
`scenesense.evaluation.statistics.METRICS`); a regression run raises ``ValueError``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from scenesense.config import ExperimentConfig
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.evaluation.statistics import METRICS
from scenesense.runs import ROBUSTNESS_FILE, RunSpec, batching, load_run, open_scored_split, split_file
from scenesense.training.trainer import Trainer
from scenesense.types import Sample
from scenesense.utils.io import write_json

KINDS: tuple[str, ...] = ("remove", "zero", "noise", "drop_frames")
SCORES: tuple[str, ...] = ("accuracy", "weighted_f1", "macro_f1")


@dataclass(frozen=True)
class Condition:
    """One perturbation of one modality.

    Fields:
        kind: ``"remove"``, ``"zero"``, ``"noise"`` or ``"drop_frames"``.
        modality: the perturbed modality.
        severity: SNR in dB for ``noise``, the dropped fraction for ``drop_frames``, else ``None``.
    """

    kind: str
    modality: str
    severity: float | None = None

    @property
    def label(self) -> str:
        """Human-readable name, e.g. ``"noise audio 10 dB"`` or ``"drop 50% text frames"``."""
        if self.kind == "noise":
            return f"noise {self.modality} {self.severity:g} dB"
        if self.kind == "drop_frames":
            return f"drop {100 * float(self.severity or 0.0):g}% {self.modality} frames"
        return f"{self.kind} {self.modality}"


def signal_power(x: np.ndarray) -> float:
    """Mean square of all values of ``x`` (``[T, D]`` real steps or ``[D]``), in float64."""
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def add_gaussian_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` plus i.i.d. Gaussian noise of power ``signal_power(x) / 10 ** (snr_db / 10)``.

    Args:
        x: ``[T, D]`` or ``[D]`` features of one sample.
        snr_db: signal-to-noise ratio in dB (finite).
        rng: source of the noise.

    Returns:
        A new array of ``x``'s shape and dtype (``x`` itself is not modified).

    Raises:
        ValueError: if ``snr_db`` is not finite.
    """
    if not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db!r}")
    std = math.sqrt(signal_power(x) / 10.0 ** (snr_db / 10.0))
    return (x + rng.normal(0.0, std, size=x.shape)).astype(x.dtype, copy=False)


def drop_steps(x: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Delete ``floor(fraction * T)`` random steps (at most ``T - 1``) of ``x`` ``[T, D]``, keeping order.

    Returns:
        ``[T', D]`` with ``T' = max(1, T - floor(fraction * T))`` (``x`` itself for ``T == 0``).

    Raises:
        ValueError: if ``x`` is not ``[T, D]`` or ``fraction`` is outside ``[0, 1]``.
    """
    if x.ndim != 2:
        raise ValueError(f"drop_steps needs a [T, D] sequence, got shape {x.shape}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"drop fraction must be in [0, 1], got {fraction!r}")
    steps = x.shape[0]
    if steps == 0:
        return x
    n_drop = min(steps - 1, math.floor(fraction * steps + 1e-9))  # 1e-9: 0.29 * 100 is 28.999...
    keep = np.sort(rng.choice(steps, size=steps - n_drop, replace=False))
    return x[keep]


def perturb_sample(sample: Sample, condition: Condition, rng: np.random.Generator) -> Sample:
    """A copy of ``sample`` with ``condition`` applied to its modality (the input is not modified)."""
    m = condition.modality
    if not sample["present"].get(m, True):  # already missing: nothing to corrupt
        return sample
    inputs, present, x = dict(sample["inputs"]), dict(sample["present"]), np.asarray(sample["inputs"][m])
    if condition.kind == "remove":
        present[m] = False
    elif condition.kind == "zero":
        inputs[m] = np.zeros_like(x)
    elif condition.kind == "noise":
        inputs[m] = add_gaussian_noise(x, float(condition.severity or 0.0), rng)
    elif condition.kind == "drop_frames":
        inputs[m] = drop_steps(x, float(condition.severity or 0.0), rng)
    else:
        raise ValueError(f"unknown perturbation {condition.kind!r}; expected one of {list(KINDS)}")
    return {**sample, "inputs": inputs, "present": present}


def build_conditions(feature_kinds: Mapping[str, str], snr_db: Sequence[float],
                     drop_fractions: Sequence[float]) -> list[Condition]:
    """Every condition for the modalities in ``feature_kinds`` (sorted): remove, zero, noise, drops.

    ``drop_frames`` conditions are made only for ``"sequence"`` modalities.

    Raises:
        ValueError: a non-finite SNR or a drop fraction outside ``[0, 1]``.
    """
    for snr in snr_db:
        if not math.isfinite(snr):
            raise ValueError(f"SNR values must be finite, got {list(snr_db)}")
    for frac in drop_fractions:
        if not 0.0 <= frac <= 1.0:
            raise ValueError(f"drop fractions must be in [0, 1], got {list(drop_fractions)}")
    out: list[Condition] = []
    for m in sorted(feature_kinds):
        out += [Condition("remove", m), Condition("zero", m)]
        out += [Condition("noise", m, float(s)) for s in snr_db]
        if feature_kinds[m] == "sequence":
            out += [Condition("drop_frames", m, float(f)) for f in drop_fractions]
    return out


class PerturbedDataset(Dataset):
    """``base`` with one condition applied to every sample, deterministically per sample index.

    Args:
        base: a map-style dataset of `scenesense.types.Sample` (``__getitems__`` is used
            when it has one).
        condition: the perturbation; ``None`` passes samples through.
        seed: with the index and the condition's label, seeds each sample's generator (``>= 0``).

    Raises:
        ValueError: if ``seed`` is negative.
    """

    def __init__(self, base: Dataset, condition: Condition | None, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.base = base
        self.condition = condition
        self.seed = seed
        self._key = zlib.crc32(condition.label.encode()) if condition is not None else 0

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Sample:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Sample]:
        getitems = getattr(self.base, "__getitems__", None)
        samples = getitems(indices) if getitems is not None else [self.base[i] for i in indices]
        if self.condition is None:
            return list(samples)
        n = len(self)
        return [perturb_sample(s, self.condition, np.random.default_rng([self.seed, int(i) % n, self._key]))
                for i, s in zip(indices, samples, strict=True)]


def _scores(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    y_pred = probs.argmax(axis=1)
    return {name: METRICS[name](labels, y_pred) for name in SCORES}


def _load_split(cfg: ExperimentConfig, spec: RunSpec, store: str | Path | None,
                split: str | None) -> tuple[FeatureStoreDataset, str]:
    """The labelled split to score (default: the run's own store and dev split), checked against the run."""
    path = Path(store) if store is not None else Path(spec.store)
    if path.is_dir():
        name = split or cfg.data.dev_split
        data_file = split_file(path, name)
    elif path.exists():
        data_file, name = path, path.stem
    else:
        raise FileNotFoundError(f"{path}: no such store file or folder")
    dataset = open_scored_split(cfg, spec, data_file)
    return dataset, name


def evaluate_robustness(run_dir: str | Path, *, store: str | Path | None = None, split: str | None = None,
                        snr_db: Sequence[float] = (20, 10, 5, 0),
                        drop_fractions: Sequence[float] = (0.25, 0.5, 0.75), seed: int = 0,
                        batch_size: int = 64, output: str | Path | None = None,
                        accelerator: str | None = None) -> dict[str, Any]:
    """Score a trained classification run clean and under every perturbation of every modality.

    Args:
        run_dir: a finished run directory (`scenesense.runs.load_run`).
        store: a store folder (scored split: ``split``, default the run's dev split) or one split
            file; default the store the run was trained on (``model_spec.json``).
        split: split name inside a store folder (default: the run's ``data.dev_split``).
        snr_db: noise levels in dB (finite).
        drop_fractions: fractions of real steps dropped, each in ``[0, 1]``.
        seed: seeds every perturbation (same seed, same result).
        batch_size: prediction batch size (results do not depend on it beyond float rounding).
        output: where the JSON goes (default ``<run_dir>/robustness.json``); written atomically.
        accelerator: Fabric accelerator for prediction (default ``"cpu"``).

    Returns:
        ``{"metric": "weighted_f1", "split", "n", "seed", "clean": {accuracy, weighted_f1, macro_f1},
        "conditions": [{"kind", "modality", "severity", "label", accuracy, weighted_f1, macro_f1}, ...]}``.

    Raises:
        ValueError: a regression run, data that does not match the run, or bad severities.
        FileNotFoundError: a missing run, store or split.
    """
    cfg, spec, model = load_run(run_dir)
    if spec.task != "classification":
        raise ValueError(f"{run_dir}: the robustness suite scores classification runs only "
                         f"(accuracy, weighted/macro F1); this run's task is {spec.task!r}")
    kinds = {m: spec.features[m].kind for m in cfg.modalities}
    conditions = build_conditions(kinds, snr_db, drop_fractions)
    dataset, name = _load_split(cfg, spec, store, split)
    predict_cfg = replace(cfg.trainer, accelerator=accelerator or "cpu", devices=1, batch_size=batch_size)
    trainer = Trainer(predict_cfg, run_dir=None)

    def score(condition: Condition | None) -> dict[str, float]:
        pred = trainer.predict(model, *batching(cfg, spec, PerturbedDataset(dataset, condition, seed), dataset))
        return _scores(pred.labels, pred.probs)

    result = {
        "metric": "weighted_f1", "split": name, "n": len(dataset), "seed": int(seed), "clean": score(None),
        "conditions": [{"kind": c.kind, "modality": c.modality, "severity": c.severity, "label": c.label,
                        **score(c)} for c in conditions],
    }
    write_json(Path(output) if output is not None else Path(run_dir) / ROBUSTNESS_FILE, result)
    return result
