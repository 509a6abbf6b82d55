"""Inputs and routing: bare strings, item mappings and manifest CSVs as normalised `Item` s.

A bare string is a text or a media path (`route_input`); a mapping names its inputs
(``text``, ``audio``, ``video``/``vision``, ``media``, ``id``, ``speaker``); a manifest is the
``scenesense extract`` CSV format read leniently (`read_manifest`). A missing or unreadable
file, an unsupported format or an empty text is the item's problem, never a failure of the batch.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenesense.extraction.manifest import read_manifest_rows, resolve_path

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
INPUT_KINDS = ("text", "audio", "video", "media")  # media: a video whose sound is the utterance too
_PATHLIKE = re.compile(r"\.[A-Za-z0-9]{2,5}$")  # a file suffix, for telling paths from texts

InputItem = Mapping[str, "str | os.PathLike[str]"]


@dataclass
class Item:
    """One normalised input item; ``problems`` holds its routing errors, ``unmade`` why an input
    that was to be made for it (a transcript: ``"text"``) could not be, as a problem line."""

    id: str
    raw: dict[str, str]
    text: str | None = None
    audio: Path | None = None
    video: Path | None = None
    media: Path | None = None
    problems: list[str] = field(default_factory=list)
    speaker: str = ""
    unmade: dict[str, str] = field(default_factory=dict)


def route_input(raw: str) -> str:
    """The input kind of a bare string: ``"text"``, ``"audio"``, ``"video"`` or ``"file"``.

    An existing file is audio or video by its suffix (``"file"``: any other file, an unsupported
    format). A string without whitespace that names a folder or looks like a file name (a path
    separator, or a 2-5 character suffix such as ``.wav``) is a path even when it does not exist,
    so a mistyped file name is reported, not classified as text. Anything else is text.
    """
    if not raw.strip():
        return "text"
    path = Path(raw).expanduser()
    is_path = _exists(path) or (not any(c.isspace() for c in raw)
                                and ("/" in raw or os.sep in raw or bool(_PATHLIKE.search(raw))))
    if not is_path:
        return "text"
    suffix = path.suffix.lower()
    return "audio" if suffix in AUDIO_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else "file"


def _exists(path: Path) -> bool:
    """``path.exists()``, False for strings no file system accepts (too long, NUL bytes)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _media_problem(path: Path, kind: str) -> str | None:
    """Why ``path`` cannot be used as a ``kind`` (audio/video) input, or ``None``."""
    allowed = AUDIO_SUFFIXES + VIDEO_SUFFIXES if kind == "audio" else VIDEO_SUFFIXES
    if not _exists(path):
        return f"{path}: no such file"
    if not path.is_file():
        return f"{path}: not a file"
    if path.suffix.lower() not in allowed:
        return (f"{path}: unsupported format {path.suffix or '(no suffix)'!r} for {kind} input "
                f"(expected one of {' '.join(allowed)})")
    if not os.access(path, os.R_OK):
        return f"{path}: not readable (permission denied)"
    return None


def item_from_string(index: int, raw: str) -> Item:
    """Item ``index`` from a bare string, routed by `route_input` (a file nobody reads is a problem)."""
    kind = route_input(raw)
    if kind == "file":
        path = Path(raw).expanduser()
        problem = (f"{path}: no such file" if not _exists(path)
                   else f"{path}: not a file" if not path.is_file()
                   else f"{path}: unsupported format {path.suffix or '(no suffix)'!r} (audio: "
                        f"{' '.join(AUDIO_SUFFIXES)}; video: {' '.join(VIDEO_SUFFIXES)})")
        if path.suffix.lower() == ".csv":
            problem += "; a manifest is passed as a Path (CLI: --manifest)"
        return Item(str(index), {"file": raw}, problems=[f"input: {problem}"])
    return item_from_mapping(index, {kind: raw})


def item_from_mapping(index: int, given: Mapping[str, Any]) -> Item:
    """Item ``index`` from a mapping of inputs (``vision`` means ``video``); unknown keys: ``ValueError``."""
    unknown = sorted(set(given) - {"id", "speaker", "vision", *INPUT_KINDS})
    if unknown:
        raise ValueError(f"item {index}: unknown input key(s) {unknown}; use id, speaker, text, audio, video, media")
    if "vision" in given and "video" in given:
        raise ValueError(f"item {index}: give the video file as 'video' or 'vision', not both")
    values = {("video" if k == "vision" else k): v for k, v in given.items()
              if v is not None and k not in ("id", "speaker")}
    item = Item(str(given["id"]) if given.get("id") not in (None, "") else str(index),
                 {k: str(v) for k, v in values.items() if str(v) != "" or k == "text"},
                 speaker=str(given.get("speaker") or ""))
    if "text" in values:
        text = values["text"]
        if not isinstance(text, str):
            item.problems.append(f"text: expected a string, got {type(text).__name__}")
        elif not text.strip():
            item.problems.append("text: empty text")
        else:
            item.text = text
    for kind in ("audio", "video", "media"):
        if kind not in values or str(values[kind]) == "":
            continue
        path = Path(values[kind]).expanduser()
        problem = _media_problem(path, kind)
        if problem:
            item.problems.append(f"{kind}: {problem}")
        else:
            setattr(item, kind, path)
    if not item.raw:
        item.problems.append("input: no text, audio, video or media given")
    return item


def read_manifest(path: str | Path) -> list[dict[str, str]]:
    """Read a manifest CSV: one item per row.

    Columns (header required, case-insensitive): ``id`` (optional; default: the item's number
    from 0, blank lines skipped), and at least one of ``text``, ``audio``, ``video``, ``media``
    (as in the ``scenesense extract`` manifest; its ``split``, ``label``, ``dialogue_id``, ...
    columns are ignored here; ``speaker`` is read, for runs trained with ``data.speaker_norm``).
    Empty cells mean "not given"; an empty ``text`` cell in a row
    with nothing else is kept (it is reported as an empty text). Relative paths are relative to
    the manifest's folder. The file is parsed as the ``scenesense extract`` manifest is
    (`scenesense.extraction.manifest.read_manifest_rows`); only the columns are read differently.

    Returns:
        One mapping per row: ``id`` and the given inputs (media paths resolved), ready for
        `predict`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a UTF-8 CSV, no input column, or duplicate ids (the message names the file).
    """
    table = read_manifest_rows(path)
    header = [name.lower() for name in table.header]
    columns = [c for c in INPUT_KINDS if c in header]
    if not columns:
        raise ValueError(f"{table.path}: manifest needs a 'text', 'audio', 'video' or 'media' column; "
                         f"it has {header}")
    rows: list[dict[str, str]] = []
    for _, cells in table.rows:
        if not any(c.strip() for c in cells):
            continue  # a blank line
        row = dict(zip(header, (_newlines(cell) for cell in cells)))
        item = {c: row[c] for c in columns if row.get(c, "").strip()}
        for kind in ("audio", "video", "media"):
            if kind in item:
                item[kind] = str(resolve_path(item[kind], table.path.parent))
        if not item and "text" in columns:
            item["text"] = row.get("text", "")
        item["id"] = row.get("id", "").strip() or str(len(rows))
        if row.get("speaker", "").strip():
            item["speaker"] = row["speaker"].strip()
        rows.append(item)
    ids = [r["id"] for r in rows]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{table.path}: duplicate ids in the manifest: {dupes[:5]}")
    if not rows:
        raise ValueError(f"{table.path}: the manifest has no rows")
    return rows


def _newlines(cell: str) -> str:
    """A cell's line breaks (inside quotes) as ``\\n``, as in a text file read with universal newlines."""
    return cell.replace("\r\n", "\n").replace("\r", "\n")


def normalise_inputs(inputs: Sequence[InputItem | str] | os.PathLike[str] | str) -> list[Item]:
    """The items of ``inputs`` as `scenesense.predict.predict` takes them, in order."""
    if isinstance(inputs, os.PathLike):
        return [item_from_mapping(i, row) for i, row in enumerate(read_manifest(inputs))]
    if isinstance(inputs, str):
        inputs = [inputs]
    if not inputs:
        raise ValueError("nothing to predict: no input items")
    items = []
    for i, given in enumerate(inputs):
        if isinstance(given, str):
            items.append(item_from_string(i, given))
        elif isinstance(given, Mapping):
            items.append(item_from_mapping(i, given))
        else:
            raise ValueError(f"item {i}: expected a string or a mapping, got {type(given).__name__}")
    return items
