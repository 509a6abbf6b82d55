"""The lazy torch dataset over one split file of the feature store (`scenesense.data.store`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from torch.utils.data import Dataset

from scenesense.data.labels import LabelSpace
from scenesense.data.speaker_norm import Stats, apply_speaker_norm, speaker_statistics
from scenesense.data.store import StoreError, StoreSplit, open_store_split
from scenesense.types import Sample, validate_modality


def resolve_feature_sets(split: StoreSplit, modalities: Sequence[str],
                          features: Mapping[str, str]) -> dict[str, str]:
    """Map each modality to a feature set name.

    The explicit choice wins; else the set named like the modality; else the unique set whose
    ``modality`` attribute matches.
    """
    where = split.path.name
    have = sorted(split.features)
    for m in features:  # choices for modalities the model does not use are ignored (ablations)
        validate_modality(m)
    out: dict[str, str] = {}
    for m in modalities:
        name = features.get(m)
        if name is None:
            candidates = [m] if m in split.features else [n for n in have if split.features[n].modality == m]
            if not candidates:
                raise StoreError(f"model needs modality {m!r} but {where} has feature sets {have}")
            if len(candidates) > 1:
                raise StoreError(f"{where} has several feature sets for modality {m!r}: {candidates}; "
                                 f"choose one (data.features.{m}=<name>)")
            name = candidates[0]
        if name not in split.features:
            raise StoreError(f"{where}: no feature set {name!r} for modality {m!r}; it has {have}")
        if split.features[name].modality != m:
            raise StoreError(f"{where}: feature set {name!r} holds modality "
                             f"{split.features[name].modality!r}, not {m!r}")
        out[m] = name
    return out


class FeatureStoreDataset(Dataset):
    """Lazy torch dataset over one split file of a feature store.

    Metadata (ids, labels, lengths, presence) is read once; feature rows are read on demand, only
    their true length, in sorted row order for the whole batch (`__getitems__`, which
    PyTorch's DataLoader calls with the batch's indices); a whole feature matrix is never loaded
    unless ``in_memory``. Every row read is checked for NaN/inf. The HDF5 handle is opened on
    first access in each process, so the dataset is safe to use with forked DataLoader workers.

    Args:
        split_file: a ``<split>.h5`` file.
        modalities: modalities the model uses (iterated in sorted order).
        features: optional modality -> feature set name; by default the set named like the
            modality, else the unique set whose ``modality`` attribute matches. Entries for
            modalities not in ``modalities`` are ignored.
        in_memory: load all requested features once (fast for small stores on CPU).
        speaker_norm: z-score every sample by its speaker's statistics over this split
            (`scenesense.data.speaker_norm`; speakers with fewer than
            ``min_speaker_samples`` samples use the split's statistics).

    Attributes:
        split: the `StoreSplit` metadata.
        modalities: the used modalities, sorted.
        feature_names: modality -> the feature set read for it.

    Raises:
        StoreError: the file is invalid, or a modality has no (or an ambiguous) feature set.
    """

    def __init__(self, split_file: str | Path, modalities: Sequence[str],
                 features: Mapping[str, str] | None = None, *, in_memory: bool = False,
                 speaker_norm: bool = False, min_speaker_samples: int = 10) -> None:
        self.split = open_store_split(split_file)
        if not modalities:
            raise ValueError("FeatureStoreDataset needs at least one modality")
        self.modalities = tuple(sorted({validate_modality(m) for m in modalities}))
        self.feature_names = resolve_feature_sets(self.split, self.modalities, dict(features or {}))
        self.in_memory = in_memory
        self._infos = {m: self.split.features[name] for m, name in self.feature_names.items()}
        self._lengths: dict[str, np.ndarray] = {}
        self._present: dict[str, np.ndarray] = {}
        self._arrays: dict[str, np.ndarray] = {}
        with h5py.File(self.split.path, "r") as f:
            for m, name in self.feature_names.items():
                group = f["features"][name]
                self._present[m] = group["present"][:].astype(bool)
                if self._infos[m].kind == "sequence":
                    self._lengths[m] = group["lengths"][:].astype(np.int64)
                if in_memory:
                    self._arrays[m] = group["data"][:]
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._speaker_stats: dict[str, dict[str, Stats]] = {}
        if speaker_norm:
            chunks = (self.__getitems__(range(i, min(i + 256, self.split.n))) for i in range(0, self.split.n, 256))
            self._speaker_stats = speaker_statistics((s for chunk in chunks for s in chunk), self.modalities,
                                                     min_speaker_samples)

    @property
    def label_space(self) -> LabelSpace:
        """Labels of the task."""
        return self.split.label_space

    @property
    def ids(self) -> tuple[str, ...]:
        """``[N]`` utterance keys in row order."""
        return self.split.ids

    @property
    def labels(self) -> np.ndarray:
        """``[N]`` class ids (int64) or regression targets (float32)."""
        return self.split.labels

    @property
    def provenance(self) -> dict[str, Any]:
        """``{"source": <dataset provenance>, "features": {modality: <feature set provenance>}}``."""
        return {"source": dict(self.split.source),
                "features": {m: dict(info.provenance) for m, info in self._infos.items()}}

    @property
    def feature_dims(self) -> dict[str, int]:
        """Modality -> feature size ``D``."""
        return {m: info.dim for m, info in self._infos.items()}

    @property
    def feature_kinds(self) -> dict[str, str]:
        """Modality -> ``"sequence"`` or ``"vector"``."""
        return {m: info.kind for m, info in self._infos.items()}

    def __len__(self) -> int:
        return self.split.n

    def sequence_lengths(self) -> np.ndarray:
        """``[N]`` int64: real steps of each sample summed over its sequence modalities (0 when none)."""
        total = np.zeros(self.split.n, dtype=np.int64)
        for lengths in self._lengths.values():
            total += lengths
        return total

    def __getitem__(self, index: int) -> Sample:
        """One `scenesense.types.Sample`; sequences are trimmed to their true length."""
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Sample]:
        """Samples for a batch of indices, reading each feature set once for the whole batch."""
        n = len(self)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        idx = np.where(idx < 0, idx + n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"index out of range for a dataset of {n} samples: {list(indices)}")
        rows, inverse = np.unique(idx, return_inverse=True)
        inputs = {m: self._read(m, rows) for m in self.modalities}
        samples: list[Sample] = []
        for k, pos in zip(idx.tolist(), inverse.tolist()):
            label = self.split.labels[k]
            samples.append({
                "id": self.split.ids[k], "dialogue_id": self.split.dialogue_ids[k],
                "position": int(self.split.positions[k]), "speaker": self.split.speakers[k],
                "inputs": {m: inputs[m][pos] for m in self.modalities},
                "present": {m: bool(self._present[m][k]) for m in self.modalities},
                "label": int(label) if self.label_space.is_classification else float(label),
            })
        if self._speaker_stats:
            samples = [apply_speaker_norm(s, self._speaker_stats) for s in samples]
        return samples

    def _read(self, modality: str, rows: np.ndarray) -> list[np.ndarray]:
        """Rows ``rows`` (sorted, unique) of one modality: ``[T_i, D]`` or ``[D]`` arrays."""
        info = self._infos[modality]
        lengths = self._lengths[modality][rows] if info.kind == "sequence" else None
        # Row by row, in sorted order: with one-row chunks this beats h5py's fancy selection
        # (a list index), which takes ~5x longer for a batch of 32 MiniLM rows.
        source = self._arrays[modality] if self.in_memory else self._handle()["features"][info.name]["data"]
        if lengths is None:  # copies, so callers never write into the in-memory arrays
            out = [np.array(source[r]) for r in rows.tolist()]  # B x [D]
        else:
            out = [np.array(source[r, :n]) for r, n in zip(rows.tolist(), lengths.tolist())]  # B x [T_i, D]
        if not info.allow_nonfinite:
            for r, row in zip(rows.tolist(), out):
                if not np.isfinite(row).all():
                    raise StoreError(f"{self.split.path.name}: id {self.split.ids[r]!r}: feature set "
                                     f"{info.name!r} has NaN or inf values")
        return out

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.split.path, "r")
            self._pid = os.getpid()
        return self._file

    def close(self) -> None:
        """Close the HDF5 handle of this process (reopened on the next access)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None
        state["_pid"] = None
        return state
