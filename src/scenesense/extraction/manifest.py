"""Extraction manifests: the items ``scenesense extract`` reads, from four kinds of input.

Every reader returns a :class:`Manifest`: typed :class:`ManifestItem` rows (id, split, label name
or ``None``, text, media paths, dialogue id, speaker, position) plus a JSON-able ``source``
description recorded in the store. Readers:

- :func:`read_manifest_csv`: a CSV with ``id``, ``split`` (optional, default ``test``), ``label``
  (optional), one or more of ``text``, ``audio``, ``video``, ``media`` (paths relative to the
  CSV's folder), and optional ``dialogue_id``, ``speaker``, ``position``;
- :func:`read_meld_manifest`: a MELD CSV (ids ``dia{D}_utt{U}``), with the ``dia{D}_utt{U}.mp4``
  clips of a ``MELD.Raw`` folder when ``media_dir`` is given;
- :func:`read_ravdess_manifest`: a RAVDESS tree ``Actor_XX/MM-VV-EE-II-SS-RR-AA.{wav,mp4}``
  (labels from the names, splits by actor);
- :func:`read_folder_manifest`: any folder of audio/video clips (ids = file stems, no labels).

Structural problems (unknown or missing columns, duplicate ids, labels outside the label set, a
bad split name) raise :class:`~scenesense.data.validation.DataFormatError`, one line naming the
file and the row. A media file that does not exist is NOT an error here: the pipeline records it
as a per-item error and goes on.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.data.labels import MELD_EMOTIONS, MELD_SENTIMENTS, LabelSpace
from scenesense.data.validation import DataFormatError
from scenesense.extraction.base import InputKind
from scenesense.utils.io import walk_files

MANIFEST_COLUMNS: tuple[str, ...] = ("id", "split", "label", "text", "audio", "video", "media",
                                     "dialogue_id", "speaker", "position")
INPUT_COLUMNS: tuple[str, ...] = ("text", "audio", "video", "media")
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_SPLIT = "test"
RAVDESS_ACTOR_SPLITS: Mapping[str, tuple[int, ...]] = {
    "train": tuple(range(1, 17)), "dev": tuple(range(17, 21)), "test": tuple(range(21, 25)),
}
"""Speaker-independent RAVDESS splits by actor (train 1-16, dev 17-20, test 21-24)."""

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MELD_LABELS = {"emotion": MELD_EMOTIONS, "sentiment": MELD_SENTIMENTS}


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
    ``label_space`` (:class:`LabelSpace` fixed by the format, e.g. MELD or RAVDESS; ``None``
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
    """Raise :class:`DataFormatError` naming both places when two items share an id."""
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


def _resolve(cell: str | None, folder: Path) -> Path | None:
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


def _read_header(path: Path, reader: Any) -> list[str]:  # noqa: ANN401
    header = [(name or "").strip() for name in (reader.fieldnames or [])]
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
        The :class:`Manifest`, rows in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: unknown/repeated/missing columns, an empty id, a duplicate id, a bad
            split name or position, a label outside ``label_space``, or a row with no input.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such manifest file")
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="strict")
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path}: manifest is not UTF-8 text ({err.reason} at byte {err.start})") from None
    allow_fields_up_to(len(text))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = _read_header(path, reader)
    reader.fieldnames = header
    folder = path.parent
    items: list[ManifestItem] = []
    for row in CsvRows(reader, path):
        where = f"{path}: line {reader.line_num}"
        if None in row:
            raise DataFormatError(f"{where}: more cells than the {len(header)} header columns")
        key = (row.get("id") or "").strip()
        if not key:
            raise DataFormatError(f"{where}: empty id")
        where = f"{where} ({key})"
        cells = {c: (row.get(c) if row.get(c) not in (None, "") else None) for c in MANIFEST_COLUMNS}
        item = ManifestItem(
            id=key,
            split=check_split_name(split or (cells["split"] or "").strip() or DEFAULT_SPLIT, where),
            label=_check_label((cells["label"] or "").strip() or None, label_space, where),
            text=cells["text"] if cells["text"] and cells["text"].strip() else None,
            audio=_resolve(cells["audio"], folder), video=_resolve(cells["video"], folder),
            media=_resolve(cells["media"], folder),
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


# --- (b) MELD CSV ----------------------------------------------------------------------------


def meld_split_from_name(path: Path) -> str:
    """``train``/``dev``/``test`` from a MELD file name (``val`` counts as ``dev``); else ``test``."""
    stem = path.name.lower()
    for split, keys in (("train", ("train",)), ("dev", ("dev", "val")), ("test", ("test",))):
        if any(stem.startswith(k) for k in keys):
            return split
    return DEFAULT_SPLIT


def read_meld_manifest(path: str | Path, *, media_dir: str | Path | None = None, label: str = "emotion",
                       split: str | None = None) -> Manifest:
    """Read a MELD CSV (:func:`scenesense.data.meld.read_meld_csv`) as manifest items.

    Ids ``dia{D}_utt{U}``; text = the utterance; dialogue ``dia{D}``; speaker; position = rank
    of the utterance id in its dialogue. With ``media_dir``, ``media`` is
    ``<media_dir>/dia{D}_utt{U}.mp4`` (the ``MELD.Raw`` clip naming; a missing clip becomes a
    per-item error in the pipeline).

    Args:
        path: a ``*_sent_emo.csv``.
        media_dir: folder holding the split's clips, or ``None`` for text only.
        label: ``"emotion"`` (7 classes) or ``"sentiment"`` (3 classes).
        split: split name; default from the file name (train/dev/val/test), else ``test``.

    Raises:
        ValueError: unknown ``label``.
        FileNotFoundError: ``media_dir`` is not a folder.
        DataFormatError: the CSV does not follow the MELD format.
    """
    from scenesense.data.meld import dialogue_positions, read_meld_csv

    if label not in _MELD_LABELS:
        raise ValueError(f"unknown MELD label {label!r}; expected one of {sorted(_MELD_LABELS)}")
    path = Path(path)
    folder = None if media_dir is None else Path(media_dir)
    if folder is not None and not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such media folder (--media-dir)")
    split = check_split_name(split or meld_split_from_name(path), str(path))
    utterances = read_meld_csv(path)
    positions = dialogue_positions(utterances)
    items = tuple(ManifestItem(
        id=u.id, split=split, label=getattr(u, label), text=u.text,
        media=None if folder is None else folder / f"{u.id}.mp4", dialogue_id=u.dialogue_key,
        speaker=u.speaker, position=pos, where=f"{path} ({u.id})",
    ) for u, pos in zip(utterances, positions, strict=True))
    source = {"kind": "meld", "path": str(path.resolve()), "label": label,
              "media_dir": None if folder is None else str(folder.resolve())}
    return Manifest(items, source, _MELD_LABELS[label])


# --- (c) RAVDESS tree ------------------------------------------------------------------------


def _clip_paths(root: Path, suffixes: Sequence[str]) -> list[Path]:
    """Non-hidden files under ``root`` whose suffix is in ``suffixes`` (macOS ``._*`` are hidden).

    Symbolic links to folders are followed, each folder once (:func:`~scenesense.utils.io.walk_files`).
    """
    return sorted(p for p in walk_files(root) if p.suffix.lower() in suffixes and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def read_ravdess_manifest(root: str | Path, *, split: str | None = None, channel: str = "all",
                          actor_splits: Mapping[str, Sequence[int]] = RAVDESS_ACTOR_SPLITS) -> Manifest:
    """Read a RAVDESS tree: every ``.wav``/``.mp4`` clip, named as published.

    Names are parsed and checked by :func:`scenesense.data.formats.ravdess.parse_ravdess_name`.
    Label = the emotion field (one of the 8 RAVDESS emotions); speaker and dialogue =
    ``actor{AA}``. Audio-only ``03-…wav`` gives ``audio``; audio-video ``01-…mp4`` gives
    ``media``; video-only ``02-…mp4`` gives ``video`` (so audio extractors skip it).

    Args:
        root: the folder holding ``Actor_XX`` folders (searched recursively).
        split: put every clip in this split; ``None`` = by actor (``actor_splits``).
        channel: ``"speech"``, ``"song"`` or ``"all"``.
        actor_splits: split name -> actors, speaker-independent (default train 1-16, dev 17-20,
            test 21-24); clips of other actors are left out.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        DataFormatError: a clip name breaks the RAVDESS naming rules, or no clip was found.
        ValueError: an actor is in two splits, or ``channel`` is unknown.
    """
    from scenesense.data.formats.ravdess import CLIP_PATTERN, RAVDESS_EMOTIONS, parse_ravdess_name

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such RAVDESS folder")
    channels = {"speech": (1,), "song": (2,), "all": (1, 2)}
    if channel not in channels:
        raise ValueError(f"unknown RAVDESS channel {channel!r}; expected one of {sorted(channels)}")
    owner: dict[int, str] = {}
    for name, actors in actor_splits.items():
        check_split_name(name, str(root))
        for actor in actors:
            if owner.setdefault(int(actor), name) != name:
                raise ValueError(f"RAVDESS splits must be speaker-independent: actor {actor} is in "
                                 f"{owner[int(actor)]} and {name}")
    if split is not None:
        check_split_name(split, str(root))
    items: list[ManifestItem] = []
    paths = _clip_paths(root, (".wav", ".mp4"))
    if not paths:
        raise DataFormatError(f"no RAVDESS clips ({CLIP_PATTERN}) found under {root}")
    in_channel = 0
    for path in paths:
        name = parse_ravdess_name(path)
        target = split or owner.get(name.actor)
        in_channel += name.channel in channels[channel]
        if name.channel not in channels[channel] or target is None:
            continue
        kind = "audio" if name.modality == 3 else "media" if name.modality == 1 else "video"
        actor = f"actor{name.actor:02d}"
        items.append(ManifestItem(
            id=path.name.split(".")[0], split=target, label=RAVDESS_EMOTIONS.names[name.emotion - 1],
            dialogue_id=actor, speaker=actor, where=str(path), **{kind: path},
        ))
    if not items:
        wanted = f"{channel} clips" if not in_channel else f"clips of the chosen actors {sorted(owner)}"
        raise DataFormatError(f"no RAVDESS {wanted} among the {len(paths)} clips found under {root}")
    check_unique_ids(items)
    source = {"kind": "ravdess", "path": str(root.resolve()), "channel": channel,
              "actor_splits": None if split else {k: list(v) for k, v in actor_splits.items()}}
    return Manifest(tuple(items), source, RAVDESS_EMOTIONS)


# --- (d) folder of clips ---------------------------------------------------------------------


def read_folder_manifest(root: str | Path, *, split: str | None = None) -> Manifest:
    """Every audio/video clip under ``root`` (recursively), unlabelled.

    Ids are file stems (must be unique); audio files (:data:`AUDIO_SUFFIXES`) give ``audio``,
    video files (:data:`VIDEO_SUFFIXES`) give ``media`` (read by both audio and video extractors).

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
    for path in _clip_paths(root, AUDIO_SUFFIXES + VIDEO_SUFFIXES):
        kind = "audio" if path.suffix.lower() in AUDIO_SUFFIXES else "media"
        items.append(ManifestItem(id=path.stem, split=split, where=str(path), **{kind: path}))
    if not items:
        suffixes = ", ".join(AUDIO_SUFFIXES + VIDEO_SUFFIXES)
        raise DataFormatError(f"{root}: no audio or video files ({suffixes})")
    check_unique_ids(items)
    return Manifest(tuple(items), {"kind": "folder", "path": str(root.resolve())})
