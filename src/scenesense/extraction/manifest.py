"""Extraction manifests: the items ``scenesense extract`` reads, and the manifest CSV format.

Every reader returns a `Manifest`: typed `ManifestItem` rows (id, split, label name
or ``None``, text, media paths, dialogue id, speaker, position) plus a JSON-able ``source``
description recorded in the store. Readers here know no dataset:

- `read_manifest_csv`: a CSV with ``id``, ``split`` (optional, default ``test``), ``label``
  (optional), one or more of ``text``, ``audio``, ``video``, ``media`` (paths relative to the
  CSV's folder), and optional ``dialogue_id``, ``speaker``, ``position``;
- `read_folder_manifest`: any folder of audio/video clips (ids = file stems, no labels).

The CSV is parsed once for both commands that read it (`read_manifest_rows`):
``scenesense predict`` reads the same columns leniently (`scenesense.predict.read_manifest`:
no ``id`` needed, other columns ignored, a row without input is that item's problem).

The datasets build their manifests next to their formats:
`scenesense.datasets.meld_manifest.read_meld_manifest` (a MELD CSV and its clips) and
`scenesense.datasets.ravdess_manifest.read_ravdess_manifest` (a RAVDESS tree).

Structural problems (unknown or missing columns, duplicate ids, labels outside the label set, a
bad split name) raise `scenesense.data.validation.DataFormatError`, one line naming the
file and the row. A media file that does not exist is NOT an error here: the pipeline records it
as a per-item error and goes on.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.data.labels import LabelSpace
from scenesense.data.validation import DataFormatError
from scenesense.extraction.base import InputKind
from scenesense.utils.io import walk_files

MANIFEST_COLUMNS: tuple[str, ...] = ("id", "split", "label", "text", "audio", "video", "media",
                                     "dialogue_id", "speaker", "position")
INPUT_COLUMNS: tuple[str, ...] = ("text", "audio", "video", "media")
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_SPLIT = "test"

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ManifestItem:
    """One utterance to extract.

    Fields:
        id: unique key (becomes ``/meta/ids`` in the store).
        split: store split name (``<split>.h5``).
        label: label name, or ``None`` when unlabelled.
        text: the transcript, or ``None``.
        audio: a file read by audio extractors (an audio file, or a video whose sound is meant), or ``None``.
        video: a file read by video extractors only, or ``None``.
        media: a file usable for both audio and video (e.g. an ``.mp4`` with sound), or ``None``.
        dialogue_id: dialogue key (``""`` when unknown).
        speaker: speaker name (``""`` when unknown).
        position: position in the dialogue (``-1`` when unknown).
        where: where the item came from (``"<file>: line <n>"`` or a path), for messages.
    """

    id: str
    split: str = DEFAULT_SPLIT
    label: str | None = None
    text: str | None = None
    audio: Path | None = None
    video: Path | None = None
    media: Path | None = None
    dialogue_id: str = ""
    speaker: str = ""
    position: int = -1
    where: str = ""

    def input_for(self, kind: InputKind) -> str | Path | None:
        """What an extractor of input kind ``kind`` reads for this item (``None``: nothing to read).

        ``text`` -> the text; ``audio`` -> ``audio``, else ``media`` (its sound track);
        ``video`` -> ``video``, else ``media``. A ``video`` path is never read for audio.
        """
        if kind == "text":
            return self.text
        if kind == "audio":
            return self.audio or self.media
        if kind == "video":
            return self.video or self.media
        raise ValueError(f"unknown input kind {kind!r}; expected text, audio or video")


@dataclass(frozen=True)
class Manifest:
    """The items of one manifest, its provenance and (when the format fixes one) its label set.

    Fields: ``items``; ``source`` (JSON-able: ``kind``, ``path`` and format details);
    ``label_space`` (`LabelSpace` fixed by the format, e.g. MELD or RAVDESS; ``None``
    when labels are free names).
    """

    items: tuple[ManifestItem, ...]
    source: dict[str, Any] = field(default_factory=dict)
    label_space: LabelSpace | None = None


def check_split_name(split: str, where: str) -> str:
    """Return ``split`` if it is usable as a file name (``[A-Za-z0-9][A-Za-z0-9_.-]*``).

    Raises:
        DataFormatError: naming ``where``.
    """
    if not _SPLIT_NAME.match(split or ""):
        raise DataFormatError(f"{where}: split {split!r} is not a valid name "
                              f"(letters, digits, '_', '-', '.')")
    return split


def check_unique_ids(items: Iterable[ManifestItem]) -> None:
    """Raise `DataFormatError` naming both places when two items share an id."""
    seen: dict[str, ManifestItem] = {}
    for item in items:
        first = seen.setdefault(item.id, item)
        if first is not item:
            raise DataFormatError(f"{item.where}: duplicate id {item.id!r} (first at {first.where})")


def _check_label(label: str | None, space: LabelSpace | None, where: str) -> str | None:
    if label is not None and space is not None and label not in space.names:
        raise DataFormatError(f"{where}: label {label!r} is not in the label set {list(space.names)}")
    return label


# --- (a) CSV manifest ------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestRows:
    """A manifest CSV as parsed, before its columns are read (``scenesense extract`` and ``predict``).

    Fields: ``path``; ``header`` (column names, stripped); ``rows`` (per record, in file order:
    the line it ends on and its cells; empty lines left out).
    """

    path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]


def read_manifest_rows(path: str | Path) -> ManifestRows:
    """Read a manifest CSV (UTF-8, optional BOM; fields of any length) into its header and rows.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: not UTF-8 text, or not valid CSV (one line naming the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such manifest file")
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="strict")
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path}: manifest is not UTF-8 text ({err.reason} at byte {err.start})") from None
    allow_fields_up_to(len(text))
    reader = CsvRows(csv.reader(io.StringIO(text, newline="")), path)
    header = tuple(name.strip() for name in next(reader, []))
    rows = tuple((reader.line_num, tuple(cells)) for cells in reader if cells)
    return ManifestRows(path, header, rows)


def resolve_path(cell: str | None, folder: Path) -> Path | None:
    """The path in a manifest cell (``~`` expanded; relative to ``folder``), ``None`` when blank."""
    if cell is None or not cell.strip():
        return None
    path = Path(cell.strip()).expanduser()
    return path if path.is_absolute() else folder / path


def _position(cell: str | None, where: str) -> int:
    if cell is None or not cell.strip():
        return -1
    try:
        return int(cell.strip())
    except ValueError:
        raise DataFormatError(f"{where}: position {cell!r} is not an integer") from None


def _check_header(path: Path, header: Sequence[str]) -> list[str]:
    header = list(header)
    if not header:
        raise DataFormatError(f"{path}: empty file, expected a header with 'id' and text/audio/video/media")
    repeated = sorted({name for name in header if header.count(name) > 1})
    unknown = [name for name in header if name not in MANIFEST_COLUMNS]
    if repeated or unknown:
        what = f"repeated column(s) {repeated}" if repeated else f"unknown column(s) {unknown}"
        raise DataFormatError(f"{path}: line 1: {what}; allowed columns are {list(MANIFEST_COLUMNS)}")
    if "id" not in header:
        raise DataFormatError(f"{path}: line 1: no 'id' column (found {header})")
    if not any(c in header for c in INPUT_COLUMNS):
        raise DataFormatError(f"{path}: line 1: needs at least one of {list(INPUT_COLUMNS)} (found {header})")
    return header


def read_manifest_csv(path: str | Path, *, label_space: LabelSpace | None = None,
                      split: str | None = None) -> Manifest:
    """Read a CSV manifest (see the module docstring for its columns).

    Empty cells mean "absent": no label, no text, no such medium. Relative paths are resolved
    against the CSV's folder; files are not opened here.

    Args:
        path: the CSV (UTF-8, optional BOM).
        label_space: when given, every label must be one of its names.
        split: put every row in this split (overrides the ``split`` column).

    Returns:
        The `Manifest`, rows in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: unknown/repeated/missing columns, an empty id, a duplicate id, a bad
            split name or position, a label outside ``label_space``, or a row with no input.
    """
    table = read_manifest_rows(path)
    path = table.path
    header = _check_header(path, table.header)
    folder = path.parent
    items: list[ManifestItem] = []
    for line, row in table.rows:
        where = f"{path}: line {line}"
        if len(row) > len(header):
            raise DataFormatError(f"{where}: more cells than the {len(header)} header columns")
        given = dict(zip(header, row))  # a short row lacks its last columns
        cells = {c: given.get(c) or None for c in MANIFEST_COLUMNS}
        key = (cells["id"] or "").strip()
        if not key:
            raise DataFormatError(f"{where}: empty id")
        where = f"{where} ({key})"
        item = ManifestItem(
            id=key,
            split=check_split_name(split or (cells["split"] or "").strip() or DEFAULT_SPLIT, where),
            label=_check_label((cells["label"] or "").strip() or None, label_space, where),
            text=cells["text"] if cells["text"] and cells["text"].strip() else None,
            audio=resolve_path(cells["audio"], folder), video=resolve_path(cells["video"], folder),
            media=resolve_path(cells["media"], folder),
            dialogue_id=(cells["dialogue_id"] or "").strip(), speaker=(cells["speaker"] or "").strip(),
            position=_position(cells["position"], where), where=where,
        )
        if item.text is None and item.audio is None and item.video is None and item.media is None:
            raise DataFormatError(f"{where}: no text, audio, video or media for this row")
        items.append(item)
    if not items:
        raise DataFormatError(f"{path}: no rows after the header")
    check_unique_ids(items)
    return Manifest(tuple(items), {"kind": "csv", "path": str(path.resolve())}, label_space)


# --- (b) folders of clips ------------------------------------------------------------------


def clip_paths(root: Path, suffixes: Sequence[str]) -> list[Path]:
    """Non-hidden files under ``root`` whose suffix is in ``suffixes`` (macOS ``._*`` are hidden).

    Symbolic links to folders are followed, each folder once (`scenesense.utils.io.walk_files`).
    """
    return sorted(p for p in walk_files(root) if p.suffix.lower() in suffixes and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def read_folder_manifest(root: str | Path, *, split: str | None = None) -> Manifest:
    """Every audio/video clip under ``root`` (recursively), unlabelled.

    Ids are file stems (must be unique); audio files (`AUDIO_SUFFIXES`) give ``audio``,
    video files (`VIDEO_SUFFIXES`) give ``media`` (read by both audio and video extractors).

    Args:
        root: the folder.
        split: split name for every clip (default ``test``).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        DataFormatError: no clip found, or two clips with the same stem.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of clips")
    split = check_split_name(split or DEFAULT_SPLIT, str(root))
    items = []
    for path in clip_paths(root, AUDIO_SUFFIXES + VIDEO_SUFFIXES):
        kind = "audio" if path.suffix.lower() in AUDIO_SUFFIXES else "media"
        items.append(ManifestItem(id=path.stem, split=split, where=str(path), **{kind: path}))
    if not items:
        suffixes = ", ".join(AUDIO_SUFFIXES + VIDEO_SUFFIXES)
        raise DataFormatError(f"{root}: no audio or video files ({suffixes})")
    check_unique_ids(items)
    return Manifest(tuple(items), {"kind": "folder", "path": str(root.resolve())})
