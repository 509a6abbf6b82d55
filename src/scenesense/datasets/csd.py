"""CMU-MultimodalSDK computational sequences (``.csd``, formats.md §6): the ``csd`` dataset.

Input (``data.root``): a folder of ``.csd`` files (searched recursively). Each is HDF5 with one
top-level group (the root name; like the SDK, the FIRST key is taken) holding
``data/<video id>/features`` ``(n, d)`` and ``intervals`` ``(n, 2)`` (seconds), and
``metadata/<key>`` (JSON-encoded strings; a value that is not JSON is kept as the raw string).
Files whose features are byte strings (words, phones) are skipped: only numeric features are read.

Files are chosen by ``data.params.features`` (modality -> file stem or root name, e.g.
``{"text": "CMU_MOSI_TimestampedWordVectors", "audio": "CMU_MOSI_COVAREP",
"vision": "CMU_MOSI_Visual_Facet_42"}``) and ``data.params.labels`` (e.g. ``CMU_MOSI_Opinion_Labels``,
``CMU_MOSEI_Labels``), matched case-insensitively. By default the labels file is the one numeric
file whose stem or root name contains "label", and each other numeric file is given the modality
its name suggests (text: word vectors / glove / bert; audio: covarep / opensmile; vision: facet /
openface / visual), or, when the name says nothing, its dimension (text 300 / 768, audio 74 / 384 /
1582, vision 35 / 47 / 713); two files for one modality are an error asking for ``features``.

Store: one sample per label row (segment) ``k`` of video ``vid``, id ``f"{vid}[{k}]"``, dialogue id
``vid``, position ``k``. Each modality's rows whose intervals overlap the segment's interval
(``start < seg_end and end > seg_start``) form the sample's sequence in feature set ``text`` /
``audio`` / ``vision`` (the SDK's align-to-labels, without a collapse function); no overlapping row
stores the modality as missing (counted). Videos absent from a chosen file are dropped and counted
(the SDK's unify). Non-finite feature values (COVAREP's ``-inf``, NaN) are set to 0 and counted.
Labels: column ``label_column`` (0 = sentiment, also for MOSEI's 7-d labels) of the labels file;
``label`` = ``regression`` (target ``sentiment``, default), ``binary`` (negative < 0 vs positive > 0;
segments labelled exactly 0 are dropped and counted), ``sentiment3`` (Negative / Neutral / Positive
by `scenesense.data.labels.sentiment3_ids`: Neutral when ``|score| <= neutral_band``, default
0, i.e. exactly-zero scores, MMSA's convention; 3 sentiment classes on MOSEI as in arXiv 2501.08085)
``sentiment7`` (clipped to [-3, 3] and rounded half to even as MulT's Acc-7 does: classes "-3" ... "3")
or ``sentiment5`` (`SENTIMENT5`, Strongly Negative .. Strongly Positive: ``round(clip(s, -2, 2)) + 2``, the
classes of Acc-5; `scenesense.data.labels.sentiment5_ids` with rule ``round``).

Splits: ``folds`` (path of a JSON file ``{"train": [...], "valid": [...], "test": [...]}`` of video
ids) or ``splits`` (the same mapping inline). The standard CMU folds live in the SDK and are not
shipped here. Without either, videos are split 70 / 10 / 20 by a hash of the video id
(`hash_split`): deterministic but NOT the standard folds, as the store's provenance says.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from scenesense.config import ConfigError
from scenesense.data.labels import SENTIMENT3, SENTIMENT5, LabelSpace, sentiment3_ids, sentiment5_ids
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.data.validation import DataFormatError, ValidationReport
from scenesense.datasets.csd_files import CsdFile, normalise, open_csd, overlapping, read_csd, read_entry
from scenesense.datasets.pickle_splits import SPLIT_NAMES
from scenesense.datasets.sources import DatasetSource, register_source
from scenesense.types import MODALITIES
from scenesense.utils.io import walk_files

logger = logging.getLogger(__name__)

SENTIMENT7 = LabelSpace(("-3", "-2", "-1", "0", "1", "2", "3"))
"""7-class sentiment: the rounded score ``s`` in [-3, 3] has class id ``s + 3``."""
BINARY = LabelSpace(("negative", "positive"))
"""Binary sentiment: < 0 negative, > 0 positive (zeros dropped)."""
_LABELS = {"regression": LabelSpace(("sentiment",), "regression"), "binary": BINARY, "sentiment3": SENTIMENT3,
           "sentiment5": SENTIMENT5, "sentiment7": SENTIMENT7}
_KEYWORDS = {"text": ("wordvector", "glove", "bert"), "audio": ("covarep", "opensmile", "audio", "acoustic"),
             "vision": ("facet", "openface", "visual", "vision")}
_DIMS = {"text": (300, 768), "audio": (74, 384, 1582), "vision": (35, 47, 713)}
KNOWN_DIMS: dict[str, int] = {
    "cmumoseitimestampedwordvectors": 300, "cmumoseicovarep": 74, "cmumoseivisualfacet42": 35,
    "cmumoseilabels": 7, "alllabels": 7, "cmumoseitimestampedglovevectorswithsp": 300,
    "cmumositimestampedwordvectors": 300, "cmumosicovarep": 74, "cmumosiopinionlabels": 1,
}
"""Feature dims confirmed in formats.md §6, by normalised stem or root name (lowercase alphanumerics)."""
MOSI_FOLDS = {"videos": {"train": 52, "dev": 10, "test": 31},
              "segments": {"train": 1284, "dev": 229, "test": 686}}
MOSEI_FOLDS = {"videos": {"train": 2249, "dev": 300, "test": 678},
               "segments": {"train": 16326, "dev": 1871, "test": 4659}}
"""Standard-fold sizes (formats.md §6); MOSEI's segment counts are those of the MulT/MMSA versions."""
HASH_SPLIT = "70/10/20 of videos by sha256(video id) -- NOT the standard CMU folds"
_WRITE_CHUNK = 256


def hash_split(video: str) -> str:
    """``train`` / ``dev`` / ``test`` (70 / 10 / 20 %) from the SHA-256 of the video id."""
    fraction = int(hashlib.sha256(video.encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return "train" if fraction < 0.7 else "dev" if fraction < 0.8 else "test"


def _match(files: Sequence[CsdFile], name: str, what: str, root: Path) -> CsdFile:
    wanted = normalise(name)
    found = [c for c in files if wanted in c.names()]
    if len(found) != 1:
        raise ConfigError(f"{root}: {what} {name!r} matches {len(found)} .csd files by stem or root name "
                          f"(files: {sorted(c.path.stem for c in files)})")
    return found[0]


def _guess_modality(csd: CsdFile) -> str | None:
    text = " ".join(csd.names())
    by_name = [m for m, words in _KEYWORDS.items() if any(w in text for w in words)]
    if by_name:
        return by_name[0] if len(by_name) == 1 else None
    by_dim = [m for m, dims in _DIMS.items() if csd.dim in dims]
    return by_dim[0] if len(by_dim) == 1 else None


@dataclass
class Selection:
    """The files a conversion reads: ``labels`` and modality -> file; ``skipped`` token files."""

    labels: CsdFile
    features: dict[str, CsdFile]
    skipped: list[str]


def select_files(root: Path, params: Mapping[str, Any]) -> Selection:
    """Choose the labels file and one file per modality (module docstring rules).

    Raises:
        DataFormatError: no ``.csd`` files, or a malformed one.
        ConfigError: a named file matches none or several files, a modality is ambiguous, or no
            feature file is found.
    """
    paths = sorted(p for p in walk_files(root) if p.suffix == ".csd" and not p.name.startswith("."))
    if not paths:
        raise DataFormatError(f"{root}: no .csd files")
    files = [read_csd(p) for p in paths]
    numeric = [c for c in files if c.numeric]
    skipped = [c.path.name for c in files if not c.numeric]
    if params["labels"]:
        labels = _match(numeric, params["labels"], "labels", root)
    else:
        found = [c for c in numeric if any("label" in n for n in c.names())]
        if len(found) != 1:
            raise ConfigError(f"{root}: {len(found)} .csd files look like labels "
                              f"({[c.path.name for c in found]}); name one with "
                              f"data.params.labels=<file stem or root name>")
        labels = found[0]
    if params["features"]:
        features = {m: _match(numeric, name, f"features.{m}", root) for m, name in params["features"].items()}
    else:
        candidates: dict[str, list[CsdFile]] = {m: [] for m in MODALITIES}
        for c in numeric:
            modality = _guess_modality(c) if c is not labels else None
            if modality is not None:
                candidates[modality].append(c)
        ambiguous = {m: [c.path.stem for c in cs] for m, cs in candidates.items() if len(cs) > 1}
        if ambiguous:
            m, stems = next(iter(ambiguous.items()))
            raise ConfigError(f"{root}: several .csd files could be the {m} modality {stems}; choose with "
                              f"data.params.features={{{m}: <file stem>}}")
        features = {m: cs[0] for m, cs in candidates.items() if cs}
    if not features:
        raise ConfigError(f"{root}: no numeric feature .csd file found; name them with data.params.features")
    return Selection(labels, dict(sorted(features.items())), skipped)


def assign_splits(videos: Sequence[str], params: Mapping[str, Any], root: Path) -> tuple[dict[str, str], str]:
    """Video id -> store split (videos in no fold are left out), and how the split was made."""
    folds = params["splits"]
    how = "data.params.splits"
    if params["folds"]:
        path = Path(params["folds"]).expanduser()
        try:
            folds = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DataFormatError(f"{path}: cannot read the folds JSON ({err})") from None
        how = f"folds file {path.name}"
    if not folds:
        return {v: hash_split(v) for v in videos}, HASH_SPLIT
    if not isinstance(folds, Mapping):
        raise ConfigError(f"{how} must map split names to lists of video ids, got {type(folds).__name__}")
    out: dict[str, str] = {}
    for key, ids in folds.items():
        split = SPLIT_NAMES.get(str(key))
        if split is None or isinstance(ids, str):
            raise ConfigError(f"{how}: {key!r} must be one of {sorted(SPLIT_NAMES)} with a list of video ids")
        for vid in map(str, ids):
            if out.get(vid, split) != split:
                raise ConfigError(f"{how}: video {vid!r} is in both {out[vid]!r} and {split!r}")
            out[vid] = split
    return {v: out[v] for v in videos if v in out}, how


@dataclass
class Segment:
    """One label segment: ``video``, ``index`` (k), ``label`` (class id or float) and its interval."""

    video: str
    index: int
    label: float | int
    start: float
    end: float


def label_segments(labels: CsdFile, handle: h5py.File, video: str, column: int, label: str,
                   neutral_band: float = 0.0) -> tuple[list[Segment], int]:
    """The segments of one video and how many were dropped (``binary``: score exactly 0).

    ``neutral_band`` is the Neutral half-width of ``label`` ``sentiment3``.
    """
    values, intervals = read_entry(labels, handle, video)
    if not np.isfinite(values[:, column]).all():
        raise DataFormatError(f"{labels.path}: data/{video}/features has a non-finite label in column "
                              f"{column}")
    out, dropped = [], 0
    scores = values[:, column]
    class_ids = (sentiment3_ids(scores, neutral_band).tolist() if label == "sentiment3"
                 else sentiment5_ids(scores, "round").tolist() if label == "sentiment5" else None)
    rows = zip(values[:, column].tolist(), intervals.tolist(), strict=True)
    for k, (score, (start, end)) in enumerate(rows):
        if label == "binary" and score == 0:
            dropped += 1
            continue
        value: float | int = score
        if label == "binary":
            value = int(score > 0)
        elif class_ids is not None:
            value = class_ids[k]
        elif label == "sentiment7":
            value = int(np.round(np.clip(score, -3, 3))) + 3
        out.append(Segment(video, k, value, start, end))
    return out, dropped


class _Plan:
    """Videos per split after unify, and the dropped counts (computed from structure only)."""

    def __init__(self, sel: Selection, params: Mapping[str, Any], root: Path) -> None:
        videos = sel.labels.entries
        self.assignment, self.how = assign_splits(videos, params, root)
        entries = {m: set(c.entries) for m, c in sel.features.items()}
        self.missing = {m: sorted(v for v in self.assignment if v not in have) for m, have in entries.items()}
        gone = {v for vs in self.missing.values() for v in vs}
        self.by_split: dict[str, list[str]] = {}
        for vid in videos:
            if vid in self.assignment and vid not in gone:
                self.by_split.setdefault(self.assignment[vid], []).append(vid)
        self.not_in_folds = len(videos) - len(self.assignment)


@register_source("csd")
class CsdSource(DatasetSource):
    """CMU-MultimodalSDK computational sequences (module docstring): label segments as samples.

    ``data.params``: ``features``, ``labels``, ``label_column``, ``label`` (regression | binary |
    sentiment3 | sentiment5 | sentiment7), ``neutral_band`` (sentiment3's Neutral half-width, default 0),
    ``folds`` (JSON file) or ``splits`` (inline mapping).
    """

    defaults: ClassVar[Mapping[str, Any]] = {"features": None, "labels": None, "label_column": 0,
                                             "label": "regression", "neutral_band": 0.0, "folds": None,
                                             "splits": None}

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters, checked: label, label_column, neutral_band, features' modalities, folds xor splits."""
        params = super().params(given)
        if params["label"] not in _LABELS:
            raise ConfigError(f"data.params.label must be one of {sorted(_LABELS)}, got {params['label']!r}")
        band = params["neutral_band"]
        if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0 <= band < float("inf"):
            raise ConfigError(f"data.params.neutral_band must be a finite number >= 0, got {band!r}")
        if band and params["label"] != "sentiment3":
            raise ConfigError(f"data.params.neutral_band applies to label sentiment3 only, "
                              f"not {params['label']!r}")
        column = params["label_column"]
        if isinstance(column, bool) or not isinstance(column, int) or column < 0:
            raise ConfigError(f"data.params.label_column must be an int >= 0, got {column!r}")
        features = params["features"]
        if features is not None and (not isinstance(features, Mapping)
                                     or any(m not in MODALITIES for m in features)):
            raise ConfigError(f"data.params.features must map modalities {list(MODALITIES)} to file stems, "
                              f"got {features!r}")
        if params["folds"] and params["splits"]:
            raise ConfigError("data.params: give folds (a JSON file) or splits (inline), not both")
        return params

    def inputs(self, root: Path | None, params: Mapping[str, Any]) -> list[Path]:
        """The chosen labels and feature files, and the folds file."""
        assert root is not None
        sel = select_files(root, params)
        paths = [sel.labels.path, *(c.path for c in sel.features.values())]
        return sorted({*paths, *([Path(params["folds"]).expanduser()] if params["folds"] else [])})

    def splits(self, root: Path | None, params: Mapping[str, Any]) -> list[str]:
        """The splits holding at least one video present in every chosen file."""
        assert root is not None
        return sorted(_Plan(select_files(root, params), params, root).by_split)

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Write one store split per split with videos (label segments as samples)."""
        assert root is not None
        sel = select_files(root, params)
        if params["label_column"] >= sel.labels.dim:
            raise ConfigError(f"data.params.label_column {params['label_column']} is outside the "
                              f"{sel.labels.dim} columns of {sel.labels.path.name}")
        plan = _Plan(sel, params, root)
        if not plan.by_split:
            raise DataFormatError(f"{root}: no video of {sel.labels.path.name} is in every chosen file and "
                                  f"in a split")
        written = {}
        with ExitStack() as stack:
            files = (sel.labels, *sel.features.values())
            handles = {c.path: stack.enter_context(open_csd(c.path)) for c in files}
            for split, videos in sorted(plan.by_split.items()):
                written[split] = _write_split(out / f"{split}.h5", sel, handles, videos, params, plan)
        return written

    def validate(self, root: Path, params: Mapping[str, Any]) -> ValidationReport:
        """formats.md §6 "Validate" list for every file, and segments per split of the chosen labels."""
        report = ValidationReport(self.name, str(root))
        files = {}
        for path in sorted(p for p in walk_files(root) if p.suffix == ".csd"):
            csd = _validate_file(report, path)
            if csd is not None:
                files[path.name] = {"root": csd.root, "dim": csd.dim, "entries": len(csd.entries),
                                    "numeric": csd.numeric}
        report.counts["files"] = files
        report.check("at least one .csd file", bool(files), f"{len(files)} readable")
        try:
            sel = select_files(root, params)
        except (ConfigError, DataFormatError) as err:
            report.check("labels and feature files chosen", False, str(err))
            return report
        plan = _Plan(sel, params, root)
        report.counts.update({"labels": sel.labels.path.name, "features": {m: c.path.name for m, c in
                                                                          sel.features.items()},
                              "split": plan.how, "videos_not_in_folds": plan.not_in_folds,
                              "videos_missing": {m: len(v) for m, v in plan.missing.items()}})
        with open_csd(sel.labels.path) as handle:
            segments = {s: sum(handle[sel.labels.root]["data"][v]["intervals"].shape[0] for v in vids)
                        for s, vids in plan.by_split.items()}
        videos = {s: len(v) for s, v in plan.by_split.items()}
        report.counts.update({"videos": videos, "segments": segments})
        name = " ".join(sel.labels.names())
        if plan.how != HASH_SPLIT and "cmumosi" in name and "cmumosei" not in name:
            report.expect_equal("MOSI standard folds: videos per split", videos, MOSI_FOLDS["videos"])
            report.expect_equal("MOSI standard folds: segments per split", segments, MOSI_FOLDS["segments"])
        elif "cmumosei" in name or "alllabels" in name:
            report.counts["mosei_published"] = {**MOSEI_FOLDS, "note": "segments after MulT/MMSA filtering"}
        return report


def _validate_file(report: ValidationReport, path: Path) -> CsdFile | None:
    """Checks of one file (structure, every entry's invariants, dim, metadata JSON)."""
    try:
        csd = read_csd(path)
    except DataFormatError as err:
        report.check(f"{path.name}: readable computational sequence", False, str(err))
        return None
    report.check(f"{path.name}: exactly one top-level group", len(csd.groups) == 1, str(csd.groups))
    bad = []
    with open_csd(path) as f:
        for entry, group in f[csd.root]["data"].items():
            feats, ints = group.get("features"), group.get("intervals")
            if feats is None or ints is None or ints.ndim != 2 or ints.shape[1] != 2 or feats.ndim < 2 \
                    or feats.shape[0] != ints.shape[0]:
                bad.append(entry)
    report.check(f"{path.name}: entries have features (n, d) and intervals (n, 2) with equal n", not bad,
                 f"{len(csd.entries)} entries" if not bad else f"{len(bad)} bad, first {bad[0]!r}")
    known = next((KNOWN_DIMS[n] for n in csd.names() if n in KNOWN_DIMS), None)
    if known is not None and csd.numeric:
        report.expect_equal(f"{path.name}: feature dim", csd.dim, known)
    report.check(f"{path.name}: metadata values are JSON", not csd.not_json,
                 f"{len(csd.metadata)} keys" if not csd.not_json else f"not JSON: {csd.not_json}")
    return csd


def _write_split(out_file: Path, sel: Selection, handles: Mapping[Path, h5py.File], videos: Sequence[str],
                 params: Mapping[str, Any], plan: _Plan) -> Path:
    """Write the segments of ``videos`` into one store split.

    Two passes over the videos: the first finds each modality's longest segment and the counts
    that go into the provenance (written when the file is created), the second writes.
    """
    longest = dict.fromkeys(sel.features, 1)
    counts: dict[str, dict[str, int]] = {m: {"nonfinite_zeroed": 0, "no_overlap": 0} for m in sel.features}
    dropped = 0
    for vid in videos:
        samples, n_dropped = _video_samples(sel, handles, vid, params, counts)
        dropped += n_dropped
        for _, rows in samples:
            for m, r in rows.items():
                longest[m] = max(longest[m], 0 if r is None else r.shape[0])
    specs = {m: FeatureSpec(m, "sequence", csd.dim, max_len=longest[m], provenance={
        "dataset": "csd", "file": csd.path.name, "root": csd.root, **counts[m],
        "alignment": "rows whose interval overlaps the label segment (SDK align to labels, no collapse)",
        "metadata": {k: str(v)[:200] for k, v in csd.metadata.items()}}) for m, csd in sel.features.items()}
    source = {"dataset": "csd", "labels": sel.labels.path.name, "labels_root": sel.labels.root,
              "label": params["label"], "label_column": params["label_column"],
              "neutral_band": params["neutral_band"], "split": plan.how,
              "videos": len(videos),
              "videos_dropped_missing_modality_all_splits": {m: len(v) for m, v in plan.missing.items()},
              "videos_not_in_folds": plan.not_in_folds, "segments_dropped_zero_label": dropped,
              "skipped_token_files": sel.skipped}
    with StoreWriter(out_file, label_space=_LABELS[params["label"]], features=specs, source=source) as writer:
        batch: list[tuple[Segment, dict[str, np.ndarray | None]]] = []
        for vid in videos:
            batch += _video_samples(sel, handles, vid, params, None)[0]
            if len(batch) >= _WRITE_CHUNK:
                _append(writer, batch)
                batch = []
        if batch:
            _append(writer, batch)
    logger.info("csd %s: %d videos, %s", out_file.stem, len(videos), counts)
    return out_file


def _video_samples(sel: Selection, handles: Mapping[Path, h5py.File], vid: str, params: Mapping[str, Any],
                   counts: dict[str, dict[str, int]] | None
                   ) -> tuple[list[tuple[Segment, dict[str, np.ndarray | None]]], int]:
    """Every kept segment of ``vid`` with its rows per modality, and the number of dropped segments."""
    segments, dropped = label_segments(sel.labels, handles[sel.labels.path], vid, params["label_column"],
                                       params["label"], params["neutral_band"])
    data = {m: read_entry(csd, handles[csd.path], vid) for m, csd in sel.features.items()}
    samples = [(s, {m: _segment_rows(feats, ints, s, None if counts is None else counts[m])
                    for m, (feats, ints) in data.items()}) for s in segments]
    return samples, dropped


def _segment_rows(features: np.ndarray, intervals: np.ndarray, s: Segment, counts: dict[str, int] | None
                  ) -> np.ndarray | None:
    """Rows overlapping the segment, non-finite values set to 0 (counted into ``counts`` if given)."""
    rows = features[overlapping(intervals, s.start, s.end)]
    bad = ~np.isfinite(rows)
    if counts is not None:
        counts["no_overlap"] += int(rows.shape[0] == 0)
        counts["nonfinite_zeroed"] += int(bad.sum())
    if rows.shape[0] == 0:
        return None
    return np.where(bad, np.float32(0), rows) if bad.any() else rows


def _append(writer: StoreWriter, batch: Sequence[tuple[Segment, dict[str, np.ndarray | None]]]) -> None:
    writer.append([f"{s.video}[{s.index}]" for s, _ in batch], [s.label for s, _ in batch],
                  {m: [rows[m] for _, rows in batch] for m in writer.features},
                  dialogue_ids=[s.video for s, _ in batch], positions=[s.index for s, _ in batch])
