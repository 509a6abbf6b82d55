"""Speaker-level feature normalisation: z-score each speaker's features with that speaker's statistics.

Acted-emotion corpora (RAVDESS, CREMA-D) vary more between speakers than between emotions on
many acoustic and facial features; subtracting each speaker's own mean and dividing by their own
standard deviation removes that offset. The statistics use only features (never labels) of the
split being read, so held-out speakers are normalised with their own unlabelled clips; a speaker
needs several clips for this to be meaningful.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from scenesense.types import Sample

MIN_STD = 1e-6  # a dimension whose std is below this is only centred

Stats = tuple[np.ndarray, np.ndarray]  # (mean [D], std [D]) float32


def speaker_statistics(samples: Iterable[Sample], modalities: Sequence[str],
                       min_samples: int = 10) -> dict[str, dict[str, Stats]]:
    """Per modality and speaker, mean and std per dimension over present samples' real steps.

    Speakers with fewer than ``min_samples`` present samples (and the unknown speaker ``""``) get
    the statistics of the whole split, stored under ``""``.

    Returns:
        ``{modality: {speaker: (mean [D], std [D])}}``; every modality has the ``""`` entry.

    Raises:
        ValueError: a modality has no present sample.
    """
    count: dict[str, dict[str, int]] = {m: defaultdict(int) for m in modalities}
    n_samples: dict[str, dict[str, int]] = {m: defaultdict(int) for m in modalities}
    sums: dict[str, dict[str, np.ndarray]] = {m: {} for m in modalities}
    squares: dict[str, dict[str, np.ndarray]] = {m: {} for m in modalities}
    for sample in samples:
        for m in modalities:
            if not sample["present"][m]:
                continue
            x = np.asarray(sample["inputs"][m], dtype=np.float64)
            rows = x.reshape(-1, x.shape[-1])
            for key in {sample["speaker"], None}:  # None: the whole split
                if key not in sums[m]:
                    sums[m][key] = np.zeros(rows.shape[1])
                    squares[m][key] = np.zeros(rows.shape[1])
                count[m][key] += rows.shape[0]
                n_samples[m][key] += 1
                sums[m][key] += rows.sum(axis=0)
                squares[m][key] += np.square(rows).sum(axis=0)
    out: dict[str, dict[str, Stats]] = {}
    for m in modalities:
        if None not in sums[m]:
            raise ValueError(f"cannot normalise modality {m!r} by speaker: no sample has it")
        out[m] = {}
        for key in sums[m]:
            if key is not None and (key == "" or n_samples[m][key] < min_samples):
                continue
            mean = sums[m][key] / count[m][key]
            std = np.sqrt(np.maximum(squares[m][key] / count[m][key] - np.square(mean), 0.0))
            std = np.where(std < MIN_STD, 1.0, std)
            out[m]["" if key is None else key] = (mean.astype(np.float32), std.astype(np.float32))
    return out


def apply_speaker_norm(sample: Sample, stats: Mapping[str, Mapping[str, Stats]]) -> Sample:
    """``sample`` with each present modality z-scored by its speaker's statistics (else the split's)."""
    inputs = dict(sample["inputs"])
    for m, by_speaker in stats.items():
        if m in inputs and sample["present"][m]:
            mean, std = by_speaker.get(sample["speaker"], by_speaker[""])
            inputs[m] = ((inputs[m] - mean) / std).astype(np.float32)
    return {**sample, "inputs": inputs}
