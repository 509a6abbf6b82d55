"""Bring-your-own feature tables: the ``table`` dataset (CSV, Parquet or NPZ features + a labels CSV).

Inputs (paths relative to ``data.root``, or absolute):

- ``features``: one row per sample keyed by ``id_column`` (default ``id``). Default: the root
  itself when it is a file, else the one ``features.{csv,parquet,npz}`` in the root folder.

  * CSV (UTF-8, optional BOM): a header, the id column, numeric columns.
  * Parquet: the same columns; read with pandas and needs ``pyarrow``.
  * NPZ (``numpy.savez``, no pickles): an array ``ids`` ``[N]`` (str or int) and one numeric
    array per feature set ``[N, D]`` (``[N]`` counts as ``D = 1``), row ``i`` belonging to ``ids[i]``.

- ``labels``: a CSV with columns ``id,label`` and optionally ``split`` (train/dev/test; ``val``,
  ``valid``, ``validation`` -> dev), ``dialogue_id``, ``speaker``, ``position`` (default
  ``labels.csv``). ``splits``: an optional CSV ``id,split`` that assigns the splits instead.

Modalities: CSV/Parquet columns form one vector feature set per modality, named after it; by
default every non-id column goes to ``modality`` (audio); ``columns`` maps modality -> column-name
prefixes (``{"vision": ["AU"], "audio": ["mfcc"]}``), columns matching no prefix are ignored and
counted. NPZ arrays are feature sets of their own name; their modality is the ``columns`` prefix
match on the array name (unmatched arrays are ignored), or without ``columns`` the array name
when it is a modality, else ``modality`` (several sets of one modality: pick one with
``data.features.<modality>=<name>``).

Labels: ``task=classification`` (names from ``label_names``, else the sorted unique labels,
numerically when all are integers; recorded in the store) or ``regression`` (float targets; the
target is named ``label_names[0]`` or ``label``). Every labelled id must have features (else one
error listing the first missing ids); extra feature rows are ignored and counted. A non-numeric,
NaN or inf cell raises `DataFormatError` naming the file, the id and the column.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.config import ConfigError
from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.data.labels import TASKS, LabelSpace
from scenesense.datasets.sources import DatasetSource, file_sha256, register_source
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.data.validation import DataFormatError
from scenesense.types import MODALITIES

SPLIT_NAMES = {"train": "train", "dev": "dev", "val": "dev", "valid": "dev", "validation": "dev",
               "test": "test"}
FEATURE_SUFFIXES = (".csv", ".parquet", ".npz")
_CHUNK = 2048  # rows per store append


@dataclass(frozen=True)
class LabelRow:
    """One labels-file row: ``id``, ``label`` (text), ``split`` (normalised or ``None``),
    ``dialogue_id``/``speaker`` (``""`` when absent) and ``position`` (-1 when absent)."""

    id: str
    label: str
    split: str | None
    dialogue_id: str = ""
    speaker: str = ""
    position: int = -1


def resolve_path(root: Path, value: str | Path) -> Path:
    """``value`` if absolute, else relative to ``root`` (or to its folder when ``root`` is a file)."""
    path = Path(value).expanduser()
    base = root if root.is_dir() else root.parent
    return path if path.is_absolute() else base / path


def _csv_rows(path: Path, required: Sequence[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Header (stripped) and rows of a small CSV; the ``required`` columns must exist."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    allow_fields_up_to(path.stat().st_size)
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = CsvRows(csv.reader(f, skipinitialspace=True), path)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataFormatError(f"{path}: missing column(s) {missing} (header {header[:6]})")
        rows = [dict(zip(header, (c.strip() for c in cells), strict=False)) for cells in reader if cells]
    return header, rows


def normalise_split(value: str, where: str) -> str:
    """``train``/``dev``/``test`` from a split cell (``val``/``valid``/``validation`` -> ``dev``)."""
    split = SPLIT_NAMES.get(value.strip().lower())
    if split is None:
        raise DataFormatError(f"{where}: split {value!r} is not one of {sorted(SPLIT_NAMES)}")
    return split


def read_labels_csv(path: Path, id_column: str = "id", splits: Path | None = None) -> list[LabelRow]:
    """Read a labels CSV (``id,label[,split][,dialogue_id][,speaker][,position]``).

    Args:
        path: the labels file.
        id_column: name of the id column.
        splits: an optional CSV ``id,split`` whose splits replace the ``split`` column.

    Raises:
        DataFormatError: missing columns, empty or duplicate ids, empty labels, bad splits or
            positions, or an id without a split (one line naming the file and the id).
    """
    header, rows = _csv_rows(path, (id_column, "label"))
    assigned = None
    if splits is not None:
        _, split_rows = _csv_rows(splits, (id_column, "split"))
        assigned = {r[id_column]: normalise_split(r["split"], f"{splits}: id {r[id_column]!r}")
                    for r in split_rows}
    out, seen = [], set()
    for line, row in enumerate(rows, start=2):
        key = row.get(id_column, "")
        where = f"{path}: line {line} id {key!r}"
        if not key or key in seen:
            raise DataFormatError(f"{where}: {'empty' if not key else 'duplicate'} id")
        if not row.get("label"):
            raise DataFormatError(f"{where}: empty label")
        seen.add(key)
        if assigned is not None:
            if key not in assigned:
                raise DataFormatError(f"{splits}: no split for id {key!r} of {path.name}")
            split: str | None = assigned[key]
        else:
            split = normalise_split(row["split"], where) if "split" in header else None
        try:
            position = int(row.get("position") or -1)
        except ValueError:
            raise DataFormatError(f"{where}: position {row['position']!r} is not an integer") from None
        out.append(LabelRow(key, row["label"], split, row.get("dialogue_id", ""), row.get("speaker", ""),
                            position))
    if not out:
        raise DataFormatError(f"{path}: no labelled rows")
    if out[0].split is None:
        raise DataFormatError(f"{path}: no 'split' column (train/dev/test); add one or set "
                              f"data.params.splits")
    return out


def label_space(rows: Sequence[LabelRow], task: str, label_names: Sequence[str] | None) -> LabelSpace:
    """Classification: ``label_names`` or the sorted unique labels; regression: one target."""
    if task == "regression":
        return LabelSpace((label_names[0] if label_names else "label",), "regression")
    if label_names:
        return LabelSpace(tuple(label_names))
    names = sorted({r.label for r in rows})
    if all(n.lstrip("-").isdigit() for n in names):
        names.sort(key=int)
    return LabelSpace(tuple(names))


def encode_labels(space: LabelSpace, rows: Sequence[LabelRow], path: Path) -> np.ndarray:
    """``[N]`` int64 class ids or float32 targets; an unknown or non-numeric label names the id."""
    out = []
    for row in rows:
        try:
            out.append(space.id_of(row.label) if space.is_classification else float(row.label))
        except (KeyError, ValueError):
            valid = list(space.names) if space.is_classification else "a number"
            raise DataFormatError(f"{path}: id {row.id!r}: label {row.label!r} is not {valid}") from None
        if not space.is_classification and not np.isfinite(out[-1]):
            raise DataFormatError(f"{path}: id {row.id!r}: label {row.label!r} is not finite")
    return np.asarray(out, dtype=np.int64 if space.is_classification else np.float32)


def numeric_row(path: Path, key: str, columns: Sequence[str], cells: Sequence[Any]) -> np.ndarray:
    """``[C]`` float32 from raw cells; a non-numeric, NaN or inf cell names file, id and column."""
    try:
        values = np.asarray(cells, dtype=np.float64)
    except (TypeError, ValueError):
        for column, cell in zip(columns, cells, strict=True):
            try:
                float(cell)
            except (TypeError, ValueError):
                raise DataFormatError(f"{path}: id {key!r}: column {column!r} is not a number "
                                      f"({cell!r})") from None
        raise
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataFormatError(f"{path}: id {key!r}: column {columns[bad[0]]!r} is {values[bad[0]]} (NaN/inf)")
    return values.astype(np.float32)


@dataclass(frozen=True)
class FeatureTable:
    """A feature table: ``path``; ``columns`` ``[C]``; ``groups`` ``[C]`` (what ``columns`` prefixes
    match: the column name, or the NPZ array name); ``rows`` (labelled id -> ``C`` raw cells);
    ``extra`` (rows of ids without labels, ignored); ``is_npz``."""

    path: Path
    columns: tuple[str, ...]
    groups: tuple[str, ...]
    rows: dict[str, Sequence[Any]]
    extra: int
    is_npz: bool = False


def _keep(path: Path, ids: Sequence[str], cells: Sequence[Sequence[Any]], wanted: set[str]
          ) -> tuple[dict[str, Sequence[Any]], int]:
    rows: dict[str, Sequence[Any]] = {}
    seen: set[str] = set()
    for key, row in zip(ids, cells, strict=True):
        if not key or key in seen:
            raise DataFormatError(f"{path}: {'empty' if not key else 'duplicate'} id {key!r}")
        seen.add(key)
        if key in wanted:
            rows[key] = row
    return rows, len(seen) - len(rows)


def _read_csv(path: Path, id_column: str, wanted: set[str]) -> FeatureTable:
    allow_fields_up_to(path.stat().st_size)
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = CsvRows(csv.reader(f, skipinitialspace=True), path)
        header = [h.strip() for h in next(reader, [])]
        if id_column not in header:
            raise DataFormatError(f"{path}: no id column {id_column!r} (header {header[:6]}); "
                                  f"set data.params.id_column")
        at = header.index(id_column)
        ids, cells = [], []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DataFormatError(f"{path}: line {line} has {len(row)} cells, "
                                      f"the header has {len(header)}")
            ids.append(row[at].strip())
            cells.append(row[:at] + row[at + 1:])
    columns = tuple(header[:at] + header[at + 1:])
    rows, extra = _keep(path, ids, cells, wanted)
    return FeatureTable(path, columns, columns, rows, extra)


def _read_parquet(path: Path, id_column: str, wanted: set[str]) -> FeatureTable:
    if importlib.util.find_spec("pandas") is None or importlib.util.find_spec("pyarrow") is None:
        raise ConfigError(f"{path}: reading Parquet needs pandas and pyarrow; install them "
                          f"(pip install pandas pyarrow) or save the table as CSV/NPZ")
    import pandas as pd

    frame = pd.read_parquet(path, engine="pyarrow")
    frame.columns = [str(c).strip() for c in frame.columns]
    if id_column not in frame.columns:
        raise DataFormatError(f"{path}: no id column {id_column!r} (columns {list(frame.columns)[:6]})")
    columns = tuple(c for c in frame.columns if c != id_column)
    ids = [str(v).strip() for v in frame[id_column].tolist()]
    rows, extra = _keep(path, ids, list(frame[list(columns)].to_numpy(dtype=object)), wanted)
    return FeatureTable(path, columns, columns, rows, extra)


def _read_npz(path: Path, wanted: set[str]) -> FeatureTable:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as err:  # object arrays need pickles, which are never loaded here
        raise DataFormatError(f"{path}: an array holds Python objects ({err}); "
                              f"save ids as a str array") from None
    except (OSError, EOFError) as err:
        raise DataFormatError(f"{path}: not a readable NPZ file ({err})") from None
    ids = arrays.pop("ids", None)
    if ids is None or ids.ndim != 1 or ids.dtype.kind not in "iuUS":
        raise DataFormatError(f"{path}: needs an array 'ids' [N] of str or int (has {sorted(arrays)})")
    keys = [v.decode() if isinstance(v, bytes) else str(v) for v in ids.tolist()]
    blocks, columns, groups = [], [], []
    for name, array in arrays.items():
        array = array[:, None] if array.ndim == 1 else array  # [N] -> [N, 1]
        if array.ndim != 2 or array.shape[0] != len(keys) or array.dtype.kind not in "biuf":
            raise DataFormatError(f"{path}: array {name!r} must be numeric [N={len(keys)}, D], got "
                                  f"{array.dtype} {list(array.shape)}")
        blocks.append(array.astype(np.float64))
        columns += [f"{name}[{j}]" for j in range(array.shape[1])]
        groups += [name] * array.shape[1]
    if not blocks:
        raise DataFormatError(f"{path}: no feature arrays beside 'ids'")
    rows, extra = _keep(path, keys, list(np.concatenate(blocks, axis=1)), wanted)  # [N, C] rows
    return FeatureTable(path, tuple(columns), tuple(groups), rows, extra, is_npz=True)


def read_feature_table(path: Path, id_column: str, wanted: set[str]) -> FeatureTable:
    """Read a CSV/Parquet/NPZ feature table, keeping the rows of ``wanted`` ids.

    Raises:
        DataFormatError: a malformed table, duplicate ids, or an unknown file type.
        ConfigError: a Parquet file without pandas + pyarrow installed.
    """
    suffix = path.suffix.lower()
    if suffix not in FEATURE_SUFFIXES:
        raise DataFormatError(f"{path}: unknown feature table type (expected {', '.join(FEATURE_SUFFIXES)})")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such feature table")
    if suffix == ".npz":
        return _read_npz(path, wanted)
    return _read_csv(path, id_column, wanted) if suffix == ".csv" else _read_parquet(path, id_column, wanted)


def feature_plan(table: FeatureTable, modality: str, prefixes: Mapping[str, Sequence[str]] | None
                 ) -> tuple[dict[str, tuple[str, list[int]]], list[str]]:
    """Feature set name -> (modality, column indices), and the ignored columns.

    Raises:
        ConfigError: a column claimed by two modalities, or a modality matching no column.
    """
    chosen = dict(prefixes or {})
    owner: list[str | None] = []
    for group in table.groups:
        hits = sorted(m for m, ps in chosen.items() if any(group.startswith(p) for p in ps))
        if len(hits) > 1:
            raise ConfigError(f"{table.path}: column {group!r} matches the prefixes of {hits}")
        named = table.is_npz and group in MODALITIES
        default = None if prefixes is not None else group if named else modality
        owner.append(hits[0] if hits else default)
    for m, ps in chosen.items():
        if m not in owner:
            raise ConfigError(f"data.params.columns: no column of {table.path.name} starts with {list(ps)}")
    plan: dict[str, tuple[str, list[int]]] = {}
    for i, (group, owned) in enumerate(zip(table.groups, owner, strict=True)):
        if owned is not None:
            plan.setdefault(group if table.is_npz else owned, (owned, []))[1].append(i)
    if not plan:
        raise DataFormatError(f"{table.path}: no feature columns")
    return plan, [c for c, m in zip(table.columns, owner, strict=True) if m is None]


def column_summary(columns: Sequence[str]) -> list[str] | str:
    """All column names when few, else ``"first..last (n columns)"`` (for provenance)."""
    return list(columns) if len(columns) <= 64 else f"{columns[0]}..{columns[-1]} ({len(columns)} columns)"


def split_order(rows: Sequence[LabelRow]) -> list[str]:
    """The splits present, in train/dev/test order."""
    present = {r.split for r in rows}
    return [s for s in ("train", "dev", "test") if s in present]


def write_table_split(path: Path, rows: Sequence[LabelRow], table: FeatureTable, space: LabelSpace,
                      specs: Mapping[str, FeatureSpec], plan: Mapping[str, tuple[str, list[int]]],
                      source: Mapping[str, Any], labels_path: Path) -> Path:
    """Write ``rows`` (labels-file order) with their table features to ``path``, in chunks."""
    with StoreWriter(path, label_space=space, features=specs, source=source) as writer:
        for start in range(0, len(rows), _CHUNK):
            part = rows[start:start + _CHUNK]
            values = [numeric_row(table.path, r.id, table.columns, table.rows[r.id]) for r in part]  # [B][C]
            writer.append([r.id for r in part], encode_labels(space, part, labels_path),
                          {name: [v[idx] for v in values] for name, (_, idx) in plan.items()},
                          dialogue_ids=[r.dialogue_id for r in part], positions=[r.position for r in part],
                          speakers=[r.speaker for r in part])
    return path


@register_source("table")
class TableSource(DatasetSource):
    """Your own per-sample features (CSV/Parquet/NPZ) and labels CSV (see the module docstring).

    ``data.params``: ``features``, ``labels``, ``splits`` (paths), ``modality`` or ``columns``
    (modality -> column-name prefixes), ``id_column``, ``task`` (classification | regression),
    ``label_names``.
    """

    defaults: ClassVar[Mapping[str, Any]] = {
        "features": None, "labels": "labels.csv", "splits": None, "modality": "audio", "columns": None,
        "id_column": "id", "task": "classification", "label_names": None,
    }

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters, checked: modality, columns mapping, task and label names."""
        params = super().params(given)
        if params["modality"] not in MODALITIES:
            raise ConfigError(f"data.params.modality must be one of {list(MODALITIES)}, "
                              f"got {params['modality']!r}")
        if params["task"] not in TASKS:
            raise ConfigError(f"data.params.task must be one of {list(TASKS)}, got {params['task']!r}")
        columns = params["columns"]
        if columns is not None:
            if not isinstance(columns, Mapping) or not columns or any(m not in MODALITIES for m in columns):
                raise ConfigError(f"data.params.columns must map modalities {list(MODALITIES)} to "
                                  f"column-name prefixes, got {columns!r}")
            params["columns"] = {m: [p] if isinstance(p, str) else [str(x) for x in p]
                                 for m, p in columns.items()}
        names = params["label_names"]
        if names is not None and (isinstance(names, str) or not all(isinstance(n, str) for n in names)):
            raise ConfigError(f"data.params.label_names must be a list of strings, got {names!r}")
        return params

    def _paths(self, root: Path | None, params: Mapping[str, Any]) -> tuple[Path, Path, Path | None]:
        """The features, labels and (optional) splits files."""
        assert root is not None
        if params["features"]:
            features = resolve_path(root, params["features"])
        elif root.is_file():
            features = root
        else:
            found = [root / f"features{s}" for s in FEATURE_SUFFIXES if (root / f"features{s}").is_file()]
            if len(found) != 1:
                names = [p.name for p in found] or "no"
                raise ConfigError(f"{root}: set data.params.features (found {names} "
                                  f"features.csv/.parquet/.npz)")
            features = found[0]
        splits = resolve_path(root, params["splits"]) if params["splits"] else None
        return features, resolve_path(root, params["labels"]), splits

    def inputs(self, root: Path | None, params: Mapping[str, Any]) -> list[Path]:
        """The features, labels and splits files."""
        return [p for p in self._paths(root, params) if p is not None]

    def splits(self, root: Path | None, params: Mapping[str, Any]) -> list[str]:
        """The splits named in the labels (or splits) file."""
        _, labels, splits = self._paths(root, params)
        return split_order(read_labels_csv(labels, params["id_column"], splits))

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Join the labels to the features by id and write one store file per split.

        Raises:
            DataFormatError: malformed files, labelled ids without features, bad cells or labels.
        """
        features, labels, splits = self._paths(root, params)
        rows = read_labels_csv(labels, params["id_column"], splits)
        table = read_feature_table(features, params["id_column"], {r.id for r in rows})
        missing = [r.id for r in rows if r.id not in table.rows]
        if missing:
            raise DataFormatError(f"{features}: no features for {len(missing)} labelled id(s) of "
                                  f"{labels.name}, e.g. {missing[:5]}")
        plan, ignored = feature_plan(table, params["modality"], params["columns"])
        space = label_space(rows, params["task"], params["label_names"])
        specs = {name: FeatureSpec(m, "vector", len(idx), provenance={
            "file": features.name, "columns": column_summary([table.columns[i] for i in idx])})
            for name, (m, idx) in plan.items()}
        written, sha256 = {}, file_sha256(features)
        for split in split_order(rows):
            chosen = [r for r in rows if r.split == split]
            source = {"dataset": "table", "features": features.name, "features_sha256": sha256,
                      "labels": labels.name, "split": split, "task": space.task,
                      "label_names": list(space.names),
                      "label_names_from": "params" if params["label_names"] else "sorted unique labels",
                      "extra_feature_rows_ignored": table.extra, "ignored_columns": column_summary(ignored)}
            written[split] = write_table_split(out / f"{split}.h5", chosen, table, space, specs, plan, source,
                                               labels)
        return written
