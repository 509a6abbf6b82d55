"""One RAVDESS split as a store file: the per-clip table joined by file name, or audio extracted from the clips.

Rows are the split's clips in the order given (actor, then file name). ``vision`` and ``audio``
come from the table row of each clip (a video clip's row is its audio twin's, ``03-…wav``); with
an audio extractor, ``audio`` holds its one output for the clip's audio instead (the ``.wav``,
a video clip's audio twin when present, else its own audio track), and a clip whose audio
fails is stored without audio and counted in the split's ``source``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from scenesense.config import ConfigError
from scenesense.datasets.ravdess_files import RAVDESS_EMOTIONS, ClipTable, RavdessClip
from scenesense.datasets.sources import file_sha256
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.data.validation import DataFormatError
from scenesense.extraction.base import FeatureExtractor, ItemError
from scenesense.extraction.items import extract_items

logger = logging.getLogger(__name__)

_EXTRACT_BATCH = 32  # clips per extract_batch call (progress is logged after each)


def _row(table: ClipTable | None, clip: RavdessClip) -> tuple[np.ndarray, np.ndarray] | None:
    if table is None:
        return None
    return table.rows.get(clip.path.name) or table.rows.get(clip.name.audio_twin)


def _finite(table: ClipTable, clip: RavdessClip, values: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataFormatError(f"{table.path}: row {clip.path.name!r}: column {columns[bad[0]]!r} is "
                              f"{values[bad[0]]} (NaN/inf are not features)")
    return values.astype(np.float32)


class ClipAudio(NamedTuple):
    """Audio features extracted for the clips of one split.

    Fields: ``spec`` (the store's ``audio`` `FeatureSpec`, provenance included); ``rows``
    (one ``[D]`` or ``[T, D]`` array per clip, ``None`` where extraction failed); ``errors`` (one
    line per failed clip).
    """

    spec: FeatureSpec
    rows: list[np.ndarray | None]
    errors: list[str]


def _audio_path(clip: RavdessClip, wavs: Mapping[str, Path]) -> Path:
    """The file the clip's audio comes from: itself, or for a video clip its audio twin if present."""
    return clip.path if clip.name.extension == "wav" else wavs.get(clip.name.audio_twin, clip.path)


def extract_clip_audio(clips: Sequence[RavdessClip], extractor: FeatureExtractor,
                       wavs: Mapping[str, Path]) -> ClipAudio:
    """Run ``extractor`` over the clips' audio (each file once); failures become missing rows.

    Args:
        clips: the clips of one split.
        extractor: a one-output audio extractor (`audio_extractor`).
        wavs: ``.wav`` file name -> path of every audio clip found (for video clips' twins).

    Raises:
        ConfigError: the extractor has several outputs (the store's ``audio`` holds one).
    """
    outputs = extractor.outputs()
    if len(outputs) != 1:
        raise ConfigError(f"data.params.audio needs an extractor with one output; "
                          f"{type(extractor).__name__} has {sorted(outputs)}")
    (output, out_spec), = outputs.items()
    provenance = extractor.provenance()
    paths = [_audio_path(c, wavs) for c in clips]
    unique = list(dict.fromkeys(paths))
    results: dict[Path, np.ndarray | ItemError] = {}
    batches = extract_items(extractor, [str(p) for p in unique], batch_size=_EXTRACT_BATCH)
    for start, batch in zip(range(0, len(unique), _EXTRACT_BATCH), batches, strict=True):
        for path, result in zip(unique[start:start + _EXTRACT_BATCH], batch, strict=True):
            results[path] = result if isinstance(result, ItemError) else result[output]
        logger.info("ravdess: audio %s: %d/%d files", provenance["extractor"], len(results), len(unique))
    rows: list[np.ndarray | None] = []
    errors: list[str] = []
    for clip, path in zip(clips, paths, strict=True):
        result = results[path]
        if isinstance(result, ItemError):
            logger.warning("ravdess: clip %s has no audio features: %s", clip.id, result)
            errors.append(f"{clip.id}: {result}")
            rows.append(None)
        else:
            rows.append(result)
    longest = max((r.shape[0] for r in rows if r is not None and r.ndim == 2), default=1)
    spec = FeatureSpec("audio", out_spec.kind, out_spec.dim,
                       max_len=longest if out_spec.kind == "sequence" else None,
                       provenance={**provenance, "output": output,
                                   "clip_audio": "the clip's .wav; a video clip's audio twin 03-...wav "
                                                 "if present, else its own audio track"})
    return ClipAudio(spec, rows, errors)


def store_source(root: Path, clips: Sequence[RavdessClip], table: ClipTable | None, split: str,
                  actors: Sequence[int], params: Mapping[str, Any], dropped: int,
                  audio: ClipAudio | None = None) -> dict[str, Any]:
    source = {
        "dataset": "ravdess", "root": str(root), "split": split, "actors": list(actors),
        "split_design": params["split"], "channel": params["channel"], "clips": len(clips),
        "clips_outside_splits": dropped, "table": None if table is None else table.path.name,
        "table_sha256": None if table is None else file_sha256(table.path),
        "join": "by file name (video clips by their audio twin 03-...wav)",
        "clips_without_table_row": sum(_row(table, c) is None for c in clips),
        "wav_formats": dict(Counter(c.wav.label for c in clips if c.wav is not None)),
        "audio": params["audio"],
    }
    if audio is not None:
        source.update({"clips_without_audio": len(audio.errors), "audio_errors": audio.errors[:5]})
    return source


def _specs(table: ClipTable | None) -> dict[str, FeatureSpec]:
    if table is None:
        return {}
    provenance = {"table": table.path.name, "recipe": "OpenFace 2 AUs averaged over the clip's frames"}
    specs = {}
    if table.au_columns:
        specs["vision"] = FeatureSpec("vision", "vector", len(table.au_columns),
                                      provenance={**provenance, "columns": list(table.au_columns)})
    if table.mfcc_columns:
        specs["audio"] = FeatureSpec("audio", "vector", len(table.mfcc_columns), provenance={
            "table": table.path.name, "recipe": "MFCC statistics (recipe undocumented)",
            "columns": f"{table.mfcc_columns[0]}..{table.mfcc_columns[-1]}"})
    return specs


def _table_rows(table: ClipTable, clips: Sequence[RavdessClip], name: str) -> list[np.ndarray | None]:
    """The ``vision`` (AU) or ``audio`` (mfcc) cells of each clip's row; ``None`` without a row."""
    columns, part = (table.au_columns, 0) if name == "vision" else (table.mfcc_columns, 1)
    rows: list[np.ndarray | None] = []
    for clip in clips:
        row = _row(table, clip)
        rows.append(None if row is None else _finite(table, clip, row[part], columns))
    return rows


def write_split(path: Path, clips: Sequence[RavdessClip], table: ClipTable | None,
                source: Mapping[str, Any], audio: ClipAudio | None = None) -> Path:
    """Write one split of ``clips`` (joined to ``table`` by file name) to ``path``.

    Args:
        path: the ``<split>.h5`` to write.
        clips: the split's clips, in store order.
        table: the per-clip table (``vision`` and, unless ``audio`` is given, ``audio``).
        source: dataset provenance stored in the file.
        audio: extracted audio features replacing the table's ``audio`` columns.

    Raises:
        DataFormatError: a NaN/inf cell in a row that is used.
    """
    specs = {n: spec for n, spec in _specs(table).items() if n != "audio" or audio is None}
    features = {} if table is None else {n: _table_rows(table, clips, n) for n in specs}
    if audio is not None:
        specs["audio"] = audio.spec
        features["audio"] = list(audio.rows)
    with StoreWriter(path, label_space=RAVDESS_EMOTIONS, features=specs, source=source) as writer:
        writer.append([c.id for c in clips], [c.name.emotion - 1 for c in clips], features,
                      dialogue_ids=[c.speaker for c in clips], speakers=[c.speaker for c in clips])
    return path
