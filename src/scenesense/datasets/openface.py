"""OpenFace 2 per-frame CSVs as vision sequences: the ``openface`` dataset.

Input: one ``FeatureExtraction`` CSV per clip anywhere under ``data.root`` (clip id = file stem),
and a labels CSV ``id,label[,split][,dialogue_id][,speaker][,position]`` (``data.params.labels``,
default ``labels.csv``; splits train/dev/test with ``val``/``valid`` -> dev, or from an ``id,split``
CSV given as ``data.params.splits``; see `scenesense.datasets.table`).

OpenFace writes headers and values separated by ``", "`` (``frame, face_id, timestamp,
confidence, success, gaze_0_x, …, pose_Tx, …, x_0, …, p_scale, …, AU01_r, …, AU45_r, AU01_c, …,
AU45_c``); names are read with the leading spaces stripped, older files without ``face_id`` and
image-mode files without ``success`` are accepted. Frames with ``success == 0`` (no face found)
are dropped and counted, as are rows of faces other than ``face_id`` (default 0; ``None`` keeps
every row). A clip left with no frame has its vision modality missing (present False, counted).

Store: ``vision``, a sequence ``[N, T_max, D]`` with true lengths, of ``columns``: ``au`` (default:
every ``AU??_r`` then ``AU??_c`` column in file order, D = 35 for OpenFace 2.x), ``au_r`` (the 17
intensities), ``au_c`` (the 18 presences) or a list of exact column names (every clip must have
them). Labels as in the ``table`` dataset (``task``, ``label_names``); ids, dialogue ids, positions
and speakers from the labels file. Non-numeric, NaN or inf cells raise `DataFormatError`
naming the file, the frame and the column. One split's selected columns are held in memory while
it is written (``4 * D`` bytes per frame; the other ~680 columns are never kept).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.config import ConfigError
from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.datasets.table import (
    LabelRow,
    encode_labels,
    label_space,
    read_labels_csv,
    resolve_path,
    split_order,
)
from scenesense.data.labels import TASKS, LabelSpace
from scenesense.datasets.sources import DatasetSource, register_source
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.data.validation import DataFormatError
from scenesense.utils.io import walk_files

COLUMN_SETS = {"au": re.compile(r"^AU\d\d_[rc]$"), "au_r": re.compile(r"^AU\d\d_r$"),
               "au_c": re.compile(r"^AU\d\d_c$")}
_CHUNK = 256  # clips per store append


@dataclass(frozen=True)
class OpenFaceClip:
    """One clip's frames: ``path``; ``frames`` ``[T, D]`` float32 (``T`` may be 0); ``columns``
    ``[D]``; ``failed`` (frames dropped for ``success == 0``); ``other_faces`` (rows dropped)."""

    path: Path
    frames: np.ndarray
    columns: tuple[str, ...]
    failed: int
    other_faces: int


def select_columns(path: Path, header: Sequence[str], columns: str | Sequence[str]) -> list[int]:
    """Indices of the selected feature columns in ``header``.

    Raises:
        DataFormatError: no AU columns, or named columns missing from the file.
    """
    if isinstance(columns, str):
        found = [i for i, h in enumerate(header) if COLUMN_SETS[columns].match(h)]
        if columns == "au":  # OpenFace order: intensities, then presences
            found.sort(key=lambda i: (header[i].endswith("_c"), i))
        if not found:
            raise DataFormatError(f"{path}: no {columns} columns (was OpenFace run with -aus?)")
        return found
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {missing[:5]} of data.params.columns")
    return [header.index(c) for c in columns]


def _numbers(path: Path, frame: str, names: Sequence[str], cells: Sequence[str]) -> np.ndarray:
    try:
        values = np.asarray(cells, dtype=np.float64)
    except ValueError:
        bad = next(i for i, c in enumerate(cells) if not _is_number(c))
        raise DataFormatError(f"{path}: frame {frame}: column {names[bad]!r} is not a number "
                              f"({cells[bad]!r})") from None
    bad_at = np.flatnonzero(~np.isfinite(values))
    if bad_at.size:
        raise DataFormatError(f"{path}: frame {frame}: column {names[bad_at[0]]!r} is {values[bad_at[0]]}")
    return values


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_openface_csv(path: str | Path, columns: str | Sequence[str] = "au",
                      face_id: int | None = 0) -> OpenFaceClip:
    """Read one OpenFace per-frame CSV into the selected columns of its successful frames.

    Raises:
        DataFormatError: an empty file, a short row, missing columns or a bad cell.
    """
    path = Path(path)
    allow_fields_up_to(path.stat().st_size)
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = CsvRows(csv.reader(f, skipinitialspace=True), path)
        header = [h.strip() for h in next(reader, [])]
        if not header or header == [""]:
            raise DataFormatError(f"{path}: empty file, not an OpenFace CSV")
        chosen = select_columns(path, header, columns)
        names = [header[i] for i in chosen]
        at = {name: header.index(name) for name in ("frame", "success", "face_id") if name in header}
        rows, failed, others = [], 0, 0
        for line, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(header):
                raise DataFormatError(f"{path}: line {line} has {len(cells)} cells, "
                                      f"the header has {len(header)}")
            frame = cells[at["frame"]].strip() if "frame" in at else str(line - 1)
            flags = _numbers(path, frame, [n for n in ("success", "face_id") if n in at],
                             [cells[at[n]] for n in ("success", "face_id") if n in at])
            if "success" in at and flags[0] == 0:
                failed += 1
            elif face_id is not None and "face_id" in at and flags[-1] != face_id:
                others += 1
            else:
                rows.append(_numbers(path, frame, names, [cells[i] for i in chosen]))
    frames = np.array(rows, dtype=np.float32).reshape(len(rows), len(names))  # [T, D]
    return OpenFaceClip(path, frames, tuple(names), failed, others)


def find_clip_csvs(root: Path, ids: set[str], exclude: Sequence[Path]) -> tuple[dict[str, Path], int]:
    """Clip id -> CSV for the labelled ids, and how many other CSVs were ignored.

    Raises:
        DataFormatError: two CSVs with the same labelled stem.
    """
    skip = {p.resolve() for p in exclude}
    found: dict[str, Path] = {}
    ignored = 0
    for path in sorted(walk_files(root)):
        if path.suffix != ".csv" or path.resolve() in skip or path.name.startswith("."):
            continue
        if path.stem not in ids:
            ignored += 1
        elif path.stem in found:
            raise DataFormatError(f"{path}: clip {path.stem!r} also has {found[path.stem]}")
        else:
            found[path.stem] = path
    return found, ignored


def write_openface_split(path: Path, rows: Sequence[LabelRow], csvs: Mapping[str, Path], space: LabelSpace,
                         params: Mapping[str, Any], source: Mapping[str, Any], labels_path: Path) -> Path:
    """Read the clips of ``rows`` (held in memory: ``[T_i, D]`` each) and write one split's ``vision``.

    Raises:
        DataFormatError: a malformed CSV, or clips whose columns differ.
    """
    clips = [read_openface_csv(csvs[r.id], params["columns"], params["face_id"]) for r in rows]
    first = clips[0]
    for clip in clips:
        if clip.columns != first.columns:
            raise DataFormatError(f"{clip.path}: columns differ from {first.path.name} "
                                  f"({len(clip.columns)} vs {len(first.columns)})")
    counts = {"frames_failed_dropped": sum(c.failed for c in clips),
              "rows_of_other_faces_dropped": sum(c.other_faces for c in clips),
              "clips_without_frames": sum(len(c.frames) == 0 for c in clips)}
    longest = max(len(c.frames) for c in clips)
    provenance = {"extractor": "OpenFace 2 FeatureExtraction (per-frame CSV)", "columns": list(first.columns),
                  "face_id": params["face_id"], **counts}
    spec = FeatureSpec("vision", "sequence", len(first.columns), max_len=max(1, longest),
                       provenance=provenance)
    with StoreWriter(path, label_space=space, features={"vision": spec},
                     source={**source, **counts}) as writer:
        for start in range(0, len(rows), _CHUNK):
            part, chunk = rows[start:start + _CHUNK], clips[start:start + _CHUNK]
            writer.append([r.id for r in part], encode_labels(space, part, labels_path),
                          {"vision": [c.frames if len(c.frames) else None for c in chunk]},
                          dialogue_ids=[r.dialogue_id for r in part], positions=[r.position for r in part],
                          speakers=[r.speaker for r in part])
    return path


@register_source("openface")
class OpenFaceSource(DatasetSource):
    """OpenFace 2 per-frame CSVs under ``data.root`` plus a labels CSV (see the module docstring).

    ``data.params``: ``labels``, ``splits`` (paths), ``columns`` (au | au_r | au_c | list of
    names), ``face_id`` (int or ``None``), ``task`` (classification | regression), ``label_names``.
    """

    modalities: ClassVar[tuple[str, ...]] = ("vision",)
    root_hint: ClassVar[str] = "the folder of OpenFace 2 per-frame CSVs (--root path/to/folder)"
    defaults: ClassVar[Mapping[str, Any]] = {
        "labels": "labels.csv", "splits": None, "columns": "au", "face_id": 0, "task": "classification",
        "label_names": None,
    }

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters, checked: columns, face id and task."""
        params = super().params(given)
        columns = params["columns"]
        named = isinstance(columns, str) and columns in COLUMN_SETS
        listed = not isinstance(columns, str) and bool(columns) and all(isinstance(c, str) for c in columns)
        if not named and not listed:
            raise ConfigError(f"data.params.columns must be one of {sorted(COLUMN_SETS)} or a list of column "
                              f"names, got {columns!r}")
        params["columns"] = columns if isinstance(columns, str) else [c.strip() for c in columns]
        if params["face_id"] is not None and (isinstance(params["face_id"], bool)
                                              or not isinstance(params["face_id"], int)):
            raise ConfigError(f"data.params.face_id must be an int or null, got {params['face_id']!r}")
        if params["task"] not in TASKS:
            raise ConfigError(f"data.params.task must be one of {list(TASKS)}, got {params['task']!r}")
        return params

    def _labels(self, root: Path | None, params: Mapping[str, Any]
                ) -> tuple[Path, Path | None, list[LabelRow]]:
        assert root is not None
        labels = resolve_path(root, params["labels"])
        splits = resolve_path(root, params["splits"]) if params["splits"] else None
        return labels, splits, read_labels_csv(labels, "id", splits)

    def inputs(self, root: Path | None, params: Mapping[str, Any]) -> list[Path]:
        """The labels (and splits) file and the labelled clips' CSVs."""
        assert root is not None
        labels, splits, rows = self._labels(root, params)
        csvs, _ = find_clip_csvs(root, {r.id for r in rows}, [labels] + ([splits] if splits else []))
        return [labels] + ([splits] if splits else []) + sorted(csvs.values())

    def splits(self, root: Path | None, params: Mapping[str, Any]) -> list[str]:
        """The splits named in the labels (or splits) file."""
        return split_order(self._labels(root, params)[2])

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Join labels to per-clip CSVs by id (file stem) and write one store file per split.

        Raises:
            DataFormatError: labelled clips without a CSV, malformed CSVs or labels.
        """
        assert root is not None
        labels, splits, rows = self._labels(root, params)
        csvs, ignored = find_clip_csvs(root, {r.id for r in rows}, [labels] + ([splits] if splits else []))
        missing = [r.id for r in rows if r.id not in csvs]
        if missing:
            raise DataFormatError(f"{labels}: no OpenFace CSV under {root} for {len(missing)} labelled "
                                  f"id(s), e.g. {missing[:5]}")
        space = label_space(rows, params["task"], params["label_names"])
        written = {}
        for split in split_order(rows):
            source = {"dataset": "openface", "root": str(root), "labels": labels.name, "split": split,
                      "task": space.task, "label_names": list(space.names),
                      "unlabelled_csvs_ignored": ignored}
            chosen = [r for r in rows if r.split == split]
            written[split] = write_openface_split(out / f"{split}.h5", chosen, csvs, space, params, source,
                                                  labels)
        return written
