"""The scenesense feature store: HDF5, one directory per dataset, one ``<split>.h5`` per split.

Layout of one split file (``format = "scenesense-store"``, ``version = 1``):

```text
/                      attrs: format, version, task, label_names (JSON list), complete (bool),
                              created_by, source (JSON provenance of the dataset)
/meta/ids              [N] utf-8 str, unique utterance keys
/meta/dialogue_id      [N] utf-8 str ("" when unknown)
/meta/position         [N] int64, position in the dialogue (-1 when unknown)
/meta/speaker          [N] utf-8 str ("" when unknown)
/meta/label            [N] int64 class ids (-1 = unlabelled), or float32 regression targets
/features/<name>/data     [N, T_max, D] float32 zero padded ("sequence") or [N, D] ("vector")
/features/<name>/lengths  [N] int64 true lengths (sequences only; 0 where missing)
/features/<name>/present  [N] bool, False = modality missing for that sample (data is zero)
                          attrs: modality, kind, dim, allow_nonfinite, provenance (JSON)
```

Feature data is chunked a few rows per chunk (lzf-compressed by default, which also squeezes
the zero padding), so a reader fetches a batch without touching the rest of the matrix.
Writers write ``.<split>.h5.<random>.tmp`` beside the target and ``os.replace`` it into place
only after setting ``complete = True``: a killed extraction never leaves a file that looks done.

Contents, top-down: specs and infos, the reader (`open_store_split`) and the writer
(`StoreWriter`). The checks both share are in `scenesense.data.store_checks`, the reuse
test of a finished split in `scenesense.data.store_identity`, and the lazy torch dataset over a
split in `scenesense.data.dataset`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from scenesense.data.labels import LabelSpace
from scenesense.data.store_checks import StoreError, check_labels, check_lengths, json_object
from scenesense.types import MODALITIES, validate_modality
from scenesense.utils.io import default_file_mode, temp_beside

FORMAT = "scenesense-store"
VERSION = 1
FeatureKind = Literal["sequence", "vector"]
_STR = h5py.string_dtype("utf-8")
_CHUNK_BYTES = 1 << 16  # ~64 KiB of float32 per feature chunk: one MiniLM row, many small rows


@dataclass(frozen=True)
class FeatureSpec:
    """What a writer accepts for one feature set.

    Args:
        modality: ``"audio"``, ``"text"`` or ``"vision"``.
        kind: ``"sequence"`` (rows ``[T, D]``) or ``"vector"`` (rows ``[D]``).
        dim: feature size ``D``.
        max_len: upper bound on ``T`` (sequences only; the stored ``T_max`` is the longest row).
        allow_nonfinite: accept NaN/inf values (rejected by default).
        provenance: JSON-able description: extractor name, parameters, package versions.
    """

    modality: str
    kind: FeatureKind
    dim: int
    max_len: int | None = None
    allow_nonfinite: bool = False
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_modality(self.modality)
        if self.kind not in ("sequence", "vector"):
            raise ValueError(f"feature kind must be 'sequence' or 'vector', got {self.kind!r}")
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"feature dim must be a positive int, got {self.dim!r}")
        if self.kind == "sequence" and (not isinstance(self.max_len, int) or self.max_len < 1):
            raise ValueError(f"a sequence feature needs max_len >= 1, got {self.max_len!r}")


@dataclass(frozen=True)
class FeatureInfo:
    """One feature set as found in a store file.

    Fields: ``name``; ``modality``; ``kind``; ``dim`` (``D``); ``max_len`` (stored ``T_max``,
    ``None`` for vectors); ``allow_nonfinite``; ``provenance`` (decoded JSON).
    """

    name: str
    modality: str
    kind: FeatureKind
    dim: int
    max_len: int | None
    allow_nonfinite: bool
    provenance: dict[str, Any]


@dataclass(frozen=True, eq=False)
class StoreSplit:
    """Metadata of one validated split file (features are not loaded).

    Fields: ``path``; ``label_space``; ``ids`` ``[N]``; ``labels`` ``[N]`` (int64 or float32);
    ``dialogue_ids`` ``[N]``; ``positions`` ``[N]`` int64; ``speakers`` ``[N]``;
    ``features`` (name -> `FeatureInfo`); ``source`` (dataset provenance); ``created_by``.
    """

    path: Path
    label_space: LabelSpace
    ids: tuple[str, ...]
    labels: np.ndarray
    dialogue_ids: tuple[str, ...]
    positions: np.ndarray
    speakers: tuple[str, ...]
    features: dict[str, FeatureInfo]
    source: dict[str, Any]
    created_by: str

    @property
    def n(self) -> int:
        """Number of samples ``N``."""
        return len(self.ids)


def _decode(values: np.ndarray) -> tuple[str, ...]:
    return tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values)


def open_store_split(path: str | Path) -> StoreSplit:
    """Validate a split file and read its metadata.

    Checked at open, from metadata and ``[N]`` columns only (a feature matrix is never read):
    format, version, completeness; ``/meta`` columns of ``N`` rows and unique ids; class ids in
    ``[0, C)`` or ``-1`` (unlabelled), or finite regression targets; per feature set, its
    attributes, a data shape ``[N, T_max, D]`` / ``[N, D]`` whose ``D`` is the ``dim`` attribute,
    and sequence lengths in ``[1, T_max]`` where the modality is present and ``0`` where absent.
    NaN/inf feature values are refused row by row when read
    (`scenesense.data.dataset.FeatureStoreDataset`).

    Args:
        path: a ``<split>.h5`` file.

    Returns:
        The split's `StoreSplit`.

    Raises:
        StoreError: one line naming the file (and the row, where one is at fault): missing, not
            HDF5, wrong format or version, incomplete, or inconsistent or invalid metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such store file")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise StoreError(f"{path}: not a readable HDF5 file ({err})") from None
    with handle as f:
        try:
            return _read_split(f, path)
        except StoreError:
            raise
        except (KeyError, OSError, TypeError, ValueError) as err:  # a missing object, bad attribute or JSON
            raise StoreError(f"{path.name}: malformed store ({type(err).__name__}: {err})") from None


def _read_split(f: h5py.File, path: Path) -> StoreSplit:
    attrs = f.attrs
    if attrs.get("format") != FORMAT:
        raise StoreError(f"{path.name}: not a scenesense store (format={attrs.get('format')!r})")
    if int(attrs.get("version", -1)) != VERSION:
        raise StoreError(f"{path.name}: store version {attrs.get('version')!r} is not supported "
                         f"(expected {VERSION}); re-run the extraction")
    if not bool(attrs.get("complete", False)):
        raise StoreError(f"{path.name}: store is incomplete (written by a killed process?); "
                         f"re-run the extraction")
    space = LabelSpace(tuple(json.loads(attrs["label_names"])), str(attrs["task"]))  # type: ignore[arg-type]
    meta = f["meta"]
    ids = _decode(meta["ids"][:])
    if len(set(ids)) != len(ids):
        raise StoreError(f"{path.name}: /meta/ids are not unique")
    columns = {name: meta[name][:] for name in ("label", "dialogue_id", "position", "speaker")}
    wrong = {name: list(values.shape) for name, values in columns.items() if values.shape != (len(ids),)}
    if wrong:
        raise StoreError(f"{path.name}: /meta column shape(s) {wrong} do not match the {len(ids)} ids")
    if columns["position"].dtype.kind not in "iu":
        raise StoreError(f"{path.name}: /meta/position holds {columns['position'].dtype}, not integers")
    return StoreSplit(
        path=path, label_space=space, ids=ids, labels=check_labels(path.name, ids, columns["label"], space),
        dialogue_ids=_decode(columns["dialogue_id"]), positions=columns["position"].astype(np.int64),
        speakers=_decode(columns["speaker"]),
        features={name: _feature_info(name, group, ids, path) for name, group in f["features"].items()},
        source=json_object(attrs, "source", path.name), created_by=str(attrs.get("created_by", "")),
    )


def _feature_info(name: str, group: h5py.Group, ids: tuple[str, ...], path: Path) -> FeatureInfo:
    """The feature set's `FeatureInfo`, after checking its attributes, shapes and lengths."""
    where = f"{path.name}: feature set {name!r}"
    kind, modality = str(group.attrs.get("kind")), str(group.attrs.get("modality"))
    dim = group.attrs.get("dim")
    if kind not in ("sequence", "vector") or modality not in MODALITIES:
        raise StoreError(f"{where}: kind {kind!r} / modality {modality!r} is not one of "
                         f"['sequence', 'vector'] / {list(MODALITIES)}")
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, (bool, np.bool_)) or dim < 1:
        raise StoreError(f"{where}: dim attribute {dim!r} is not a positive integer")
    n, data = len(ids), group["data"]
    expected = [n, "T_max", int(dim)] if kind == "sequence" else [n, int(dim)]
    if (data.ndim != len(expected) or data.shape[0] != n or data.shape[-1] != dim
            or data.dtype.kind != "f" or (kind == "sequence" and data.shape[1] < 1)):
        raise StoreError(f"{where}: data is {data.dtype} {list(data.shape)}, expected float {expected}")
    present = group["present"][:]
    if present.shape != (n,) or present.dtype.kind != "b":
        raise StoreError(f"{where}: present is {present.dtype} {list(present.shape)}, expected bool [{n}]")
    if kind == "sequence":
        check_lengths(where, ids, group["lengths"][:], present, int(data.shape[1]))
    return FeatureInfo(
        name=name, modality=modality, kind=kind,  # type: ignore[arg-type]
        dim=int(dim), max_len=int(data.shape[1]) if kind == "sequence" else None,
        allow_nonfinite=bool(group.attrs.get("allow_nonfinite", False)),
        provenance=json_object(group.attrs, "provenance", where),
    )


def find_store_splits(root: str | Path) -> dict[str, Path]:
    """Split name -> file for every ``<split>.h5`` directly inside store directory ``root``."""
    return {p.stem: p for p in sorted(Path(root).glob("*.h5")) if not p.name.startswith(".")}


def _package_version() -> str:
    try:
        return f"scenesense {metadata.version('scenesense')}"
    except metadata.PackageNotFoundError:
        return "scenesense"


def _row_chunk(row_shape: tuple[int, ...]) -> tuple[int, ...]:
    rows = max(1, _CHUNK_BYTES // (4 * int(np.prod(row_shape))))
    return (rows, *row_shape)


class StoreWriter:
    """Write one split file incrementally; the file appears only once complete.

    Use as a context manager (an exception inside removes the temporary file):

    ```python
    with StoreWriter(dir / "train.h5", label_space=space, features=specs, source={...}) as w:
        w.append(ids, labels, {"text": rows, "audio": vectors})
    ```

    Args:
        path: the target ``<split>.h5``; its folder is created if needed.
        label_space: labels of the task (classification ids or regression targets).
        features: feature set name -> `FeatureSpec`.
        source: JSON-able provenance of the dataset (stored as the ``source`` attribute).
        created_by: free text stored as ``created_by`` (default: ``"scenesense <version>"``).
        compression: h5py filter for feature data (``"lzf"``, ``"gzip"`` or ``None``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        label_space: LabelSpace,
        features: Mapping[str, FeatureSpec],
        source: Mapping[str, Any],
        created_by: str | None = None,
        compression: str | None = "lzf",
    ) -> None:
        if not features:
            raise ValueError("a store needs at least one feature set")
        bad = [name for name in features if not name or "/" in name]
        if bad:
            raise ValueError(f"invalid feature set name(s) {bad!r}")
        self.path = Path(path)
        self.label_space = label_space
        self.features = dict(features)
        fd, self._tmp = temp_beside(self.path)
        os.close(fd)
        self._n = 0
        self._seen: set[str] = set()
        self._longest = dict.fromkeys(self.features, 0)
        self._file: h5py.File | None = h5py.File(self._tmp, "w")
        try:
            self._create_layout(source, created_by or _package_version(), compression)
        except BaseException:
            self.abort()
            raise

    def _create_layout(self, source: Mapping[str, Any], created_by: str, compression: str | None) -> None:
        f = self._require_open()
        f.attrs.update({
            "format": FORMAT, "version": VERSION, "task": self.label_space.task,
            "label_names": json.dumps(list(self.label_space.names)), "complete": False,
            "created_by": created_by, "source": json.dumps(dict(source), sort_keys=True, default=str),
        })
        label_dtype = np.int64 if self.label_space.is_classification else np.float32
        meta = f.create_group("meta")
        for name, dtype in (("ids", _STR), ("dialogue_id", _STR), ("position", np.int64),
                            ("speaker", _STR), ("label", label_dtype)):
            meta.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(4096,))
        for name, spec in self.features.items():
            group = f.create_group(f"features/{name}")
            group.attrs.update({
                "modality": spec.modality, "kind": spec.kind, "dim": spec.dim,
                "allow_nonfinite": spec.allow_nonfinite,
                "provenance": json.dumps(dict(spec.provenance), sort_keys=True, default=str),
            })
            is_sequence = spec.kind == "sequence"
            row: tuple[int, ...] = (int(spec.max_len or 1), spec.dim) if is_sequence else (spec.dim,)
            group.create_dataset("data", shape=(0, *row), maxshape=(None, *row), dtype=np.float32,
                                 chunks=_row_chunk(row), compression=compression, fillvalue=0.0)
            group.create_dataset("present", shape=(0,), maxshape=(None,), dtype=bool, chunks=(4096,))
            if is_sequence:
                group.create_dataset("lengths", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise StoreError(f"{self.path.name}: writer is already closed")
        return self._file

    def append(
        self,
        ids: Sequence[str],
        labels: Sequence[int] | Sequence[float] | np.ndarray,
        features: Mapping[str, Sequence[np.ndarray | None]],
        *,
        dialogue_ids: Sequence[str] | None = None,
        positions: Sequence[int] | None = None,
        speakers: Sequence[str] | None = None,
    ) -> None:
        """Append ``B`` rows.

        Args:
            ids: ``B`` unique utterance keys (unique across the whole split).
            labels: ``B`` class ids (classification) or floats (regression).
            features: for every feature set, ``B`` rows: ``[T_i, D]`` (sequence) or ``[D]``
                (vector) arrays, or ``None`` where the modality is missing for that sample.
            dialogue_ids: ``B`` dialogue keys (default ``""``).
            positions: ``B`` positions in the dialogue (default ``-1``).
            speakers: ``B`` speaker names (default ``""``).

        Raises:
            StoreError: wrong counts, duplicate ids, bad labels, or a row with a wrong shape or
                non-finite values; the message names the offending id.
        """
        f = self._require_open()
        b = len(ids)
        dialogue_ids = [""] * b if dialogue_ids is None else list(dialogue_ids)
        positions = [-1] * b if positions is None else list(positions)
        speakers = [""] * b if speakers is None else list(speakers)
        self._check_batch(ids, labels, features, dialogue_ids, positions, speakers)
        label_array = check_labels(self.path.name, ids, labels, self.label_space)
        blocks = {name: self._pack(name, ids, features[name]) for name in self.features}
        start, stop = self._n, self._n + b
        columns = {
            "ids": np.asarray(ids, dtype=object), "dialogue_id": np.asarray(dialogue_ids, dtype=object),
            "position": np.asarray(positions, dtype=np.int64), "speaker": np.asarray(speakers, dtype=object),
            "label": label_array,
        }
        for name, values in columns.items():
            f["meta"][name].resize((stop,))
            f["meta"][name][start:stop] = values
        for name, (data, lengths, present) in blocks.items():
            group = f["features"][name]
            group["data"].resize(stop, axis=0)
            if data.ndim == 3:
                group["data"][start:stop, : data.shape[1]] = data
                group["lengths"].resize((stop,))
                group["lengths"][start:stop] = lengths
            else:
                group["data"][start:stop] = data
            group["present"].resize((stop,))
            group["present"][start:stop] = present
        self._seen.update(ids)
        self._n = stop

    def _check_batch(self, ids: Sequence[str], labels: Any, features: Mapping[str, Any],  # noqa: ANN401
                     *columns: Sequence[Any]) -> None:
        b = len(ids)
        missing = sorted(set(self.features) - set(features))
        unknown = sorted(set(features) - set(self.features))
        if missing or unknown:
            raise StoreError(f"{self.path.name}: feature sets missing {missing} / unknown {unknown}; "
                             f"the store declares {sorted(self.features)}")
        sizes = [len(labels), *(len(c) for c in columns), *(len(v) for v in features.values())]
        if any(size != b for size in sizes):
            raise StoreError(f"{self.path.name}: append got {b} ids but column lengths {sizes}")
        for key in ids:
            if not isinstance(key, str) or not key:
                raise StoreError(f"{self.path.name}: ids must be non-empty strings, got {key!r}")
        repeated = sorted(k for k, c in Counter(ids).items() if c > 1 or k in self._seen)
        if repeated:
            raise StoreError(f"{self.path.name}: duplicate id(s) {repeated[:5]}")

    def _pack(self, name: str, ids: Sequence[str], rows: Sequence[np.ndarray | None]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validate and pad rows: data ``[B, T_b, D]`` or ``[B, D]``, lengths ``[B]``, present ``[B]``."""
        spec = self.features[name]
        present = np.array([r is not None for r in rows], dtype=bool)
        arrays = [None if r is None else np.asarray(r, dtype=np.float32) for r in rows]
        lengths = np.zeros(len(rows), dtype=np.int64)
        for i, arr in enumerate(arrays):
            if arr is None:
                continue
            ok = (arr.shape == (spec.dim,)) if spec.kind == "vector" else (
                arr.ndim == 2 and arr.shape[1] == spec.dim and 1 <= arr.shape[0] <= (spec.max_len or 0))
            if not ok:
                expected = f"[{spec.dim}]" if spec.kind == "vector" else f"[1..{spec.max_len}, {spec.dim}]"
                raise StoreError(f"{self.path.name}: id {ids[i]!r}: feature {name!r} has shape "
                                 f"{list(arr.shape)}, expected {expected}")
            if not spec.allow_nonfinite and not np.isfinite(arr).all():
                raise StoreError(f"{self.path.name}: id {ids[i]!r}: feature {name!r} has NaN or inf values")
            lengths[i] = arr.shape[0] if spec.kind == "sequence" else 0
        if spec.kind == "vector":
            data = np.zeros((len(rows), spec.dim), dtype=np.float32)
            for i, arr in enumerate(arrays):
                if arr is not None:
                    data[i] = arr
            return data, lengths, present
        t_b = max(1, int(lengths.max(initial=0)))
        data = np.zeros((len(rows), t_b, spec.dim), dtype=np.float32)  # [B, T_b, D]
        for i, arr in enumerate(arrays):
            if arr is not None:
                data[i, : arr.shape[0]] = arr
        self._longest[name] = max(self._longest[name], int(lengths.max(initial=0)))
        return data, lengths, present

    def close(self) -> Path:
        """Finish the split: trim ``T_max`` to the longest row, mark complete, move into place.

        Returns:
            The final path.

        Raises:
            StoreError: no rows were written (the temporary file is removed).
        """
        f = self._require_open()
        try:
            if self._n == 0:
                raise StoreError(f"{self.path.name}: no rows were written")
            for name, spec in self.features.items():
                if spec.kind == "sequence":
                    f["features"][name]["data"].resize(max(1, self._longest[name]), axis=1)
            f.attrs["complete"] = True
            f.close()
            self._file = None
            os.chmod(self._tmp, default_file_mode())  # mkstemp makes 0600; follow the umask
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    finalize = close

    def abort(self) -> None:
        """Discard everything written so far (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self.abort()
        elif self._file is not None:
            self.close()
