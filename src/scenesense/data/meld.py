"""MELD transcripts: ``{train,dev,test}_sent_emo.csv`` exactly as published (formats.md §1.2-1.3).

The reader accepts the three encodings found in the wild and returns the current-GitHub text:

1. clean UTF-8 (current release; CRLF, optional BOM);
2. UTF-8 whose cp1252 punctuation was stored as C1 code points U+0080-U+009F (pre-2020 and
   ``MELD.Raw``): each such character is mapped to its cp1252 character, NBSP becomes a space;
3. cp1252 mojibake of UTF-8 (``â€™`` for ``’``): each lead+continuation sequence is turned back
   into its bytes and decoded as UTF-8 where that succeeds (legitimate ``é`` or ``’`` stay).

Utterances are keyed ``dia{Dialogue_ID}_utt{Utterance_ID}``, never by row position (IDs have
gaps and some dialogues start above 0). Problems raise `DataFormatError`, one line that
names the file and the row.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.data.labels import MELD_EMOTIONS, MELD_SENTIMENTS
from scenesense.data.validation import DataFormatError, ValidationReport
from scenesense.utils.io import walk_files

MELD_COLUMNS: tuple[str, ...] = (
    "Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
    "Season", "Episode", "StartTime", "EndTime",
)
MELD_SPLITS: tuple[str, ...] = ("train", "dev", "test")
_SPLIT_FILE_STEMS = {"train": ("train",), "dev": ("dev", "val"), "test": ("test",)}
_BOM = "\ufeff"
# cp1252 view of the bytes 0x80-0xFF (undefined bytes map to the same-valued code point, as latin-1).
_CP1252_BYTE = {(bytes([b]).decode("cp1252", "ignore") or chr(b)): b for b in range(0x80, 0x100)}


def _char_class(lo: int, hi: int) -> str:
    return "[" + "".join(re.escape(ch) for ch, b in _CP1252_BYTE.items() if lo <= b <= hi) + "]"


_CONT = _char_class(0x80, 0xBF)
# A UTF-8 multi-byte sequence seen through cp1252: a lead byte and its exact number of continuations.
_MOJIBAKE = re.compile(f"{_char_class(0xC2, 0xDF)}{_CONT}|{_char_class(0xE0, 0xEF)}{_CONT}{{2}}"
                       f"|{_char_class(0xF0, 0xF4)}{_CONT}{{3}}")

@dataclass(frozen=True)
class MeldUtterance:
    """One CSV row.

    Fields: ``id`` (``"dia{D}_utt{U}"``), ``dialogue_id`` (int D), ``utterance_id`` (int U),
    ``speaker``, ``text``, ``emotion``, ``sentiment`` (lowercase label names), ``season``,
    ``episode``, ``start_time``/``end_time`` (``"h:mm:ss,mmm"`` strings as published), ``sr_no``
    (the non-unique ``Sr No.`` column).
    """

    id: str
    dialogue_id: int
    utterance_id: int
    speaker: str
    text: str
    emotion: str
    sentiment: str
    season: int
    episode: int
    start_time: str
    end_time: str
    sr_no: int

    @property
    def dialogue_key(self) -> str:
        """Dialogue key ``"dia{D}"``."""
        return f"dia{self.dialogue_id}"


def _fix_c1(ch: str) -> str:
    try:
        return bytes([ord(ch)]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D have no cp1252 character
        return ch


def _fix_mojibake(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        return bytes(_CP1252_BYTE[ch] for ch in run).decode("utf-8")
    except UnicodeDecodeError:
        return run


def repair_text(text: str) -> str:
    """Undo MELD's encoding damage in one string (C1 controls, NBSP, cp1252 mojibake).

    Args:
        text: a decoded CSV field.

    Returns:
        The text as in the current UTF-8 release; clean text is returned unchanged.
    """
    text = text.replace(_BOM, "")
    if any("\x80" <= ch <= "\x9f" for ch in text):
        text = "".join(_fix_c1(ch) if "\x80" <= ch <= "\x9f" else ch for ch in text)
    text = text.replace("\xa0", " ")
    if any(ch in _CP1252_BYTE for ch in text):
        text = _MOJIBAKE.sub(_fix_mojibake, text)
    return text


def decode_csv_bytes(raw: bytes) -> str:
    """UTF-8 (BOM stripped); a file that is not UTF-8 is read as cp1252."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def meld_csv_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """The rows of a MELD-format CSV: decoded, header names repaired, ``columns`` required.

    Fields of any length are read (`scenesense.data.csvfile.allow_fields_up_to` the file's
    size); blank lines are skipped.

    Returns:
        ``(line, row)`` per record: the line it starts on, and header name -> cell (``""`` for a
        cell the row lacks).

    Raises:
        DataFormatError: a column of ``columns`` is missing, or the file is not valid CSV (the
            message names the file and line).
    """
    text = decode_csv_bytes(path.read_bytes())
    allow_fields_up_to(len(text))
    rows = CsvRows(csv.reader(io.StringIO(text, newline="")), path)
    header = [repair_text(name).strip() for name in next(rows, [])]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {missing}; found {header}")
    return [(rows.record_line, {name: cells[i] if i < len(cells) else "" for i, name in enumerate(header)})
            for cells in rows if cells]


def int_field(row: Mapping[str, str], column: str, where: str) -> int:
    """The integer in ``row[column]``; a clear error naming ``where`` otherwise."""
    value = (row.get(column) or "").strip()
    try:
        return int(value)
    except ValueError:
        raise DataFormatError(f"{where}: {column} {value!r} is not an integer") from None


def _label_field(row: Mapping[str, str], column: str, valid: tuple[str, ...], where: str) -> str:
    value = repair_text(row[column]).strip().lower()
    if value not in valid:
        raise DataFormatError(f"{where}: unknown {column.lower()} {row[column]!r}; valid: {list(valid)}")
    return value


def read_meld_csv(path: str | Path) -> list[MeldUtterance]:
    """Read and validate one MELD CSV.

    Args:
        path: a ``*_sent_emo.csv`` file in the published layout (11 columns, any of the three
            encoding variants, CRLF or LF).

    Returns:
        Utterances in file order.

    Raises:
        DataFormatError: missing column(s), a non-integer ID/Season/Episode, an unknown emotion or
            sentiment, or a duplicate ``(Dialogue_ID, Utterance_ID)``.
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    out: list[MeldUtterance] = []
    seen: dict[str, int] = {}
    for line, row in meld_csv_rows(path, MELD_COLUMNS):
        where = f"{path}: line {line}"
        dia = int_field(row, "Dialogue_ID", where)
        utt = int_field(row, "Utterance_ID", where)
        key = f"dia{dia}_utt{utt}"
        where = f"{path}: line {line} ({key})"
        if key in seen:
            raise DataFormatError(f"{where}: duplicate utterance (Dialogue_ID {dia}, Utterance_ID {utt}), "
                                  f"first at line {seen[key]}")
        seen[key] = line
        out.append(MeldUtterance(
            id=key, dialogue_id=dia, utterance_id=utt,
            speaker=repair_text(row["Speaker"]).strip(), text=repair_text(row["Utterance"]),
            emotion=_label_field(row, "Emotion", MELD_EMOTIONS.names, where),
            sentiment=_label_field(row, "Sentiment", MELD_SENTIMENTS.names, where),
            season=int_field(row, "Season", where), episode=int_field(row, "Episode", where),
            start_time=row["StartTime"].strip(), end_time=row["EndTime"].strip(),
            sr_no=int_field(row, "Sr No.", where),
        ))
    if not out:
        raise DataFormatError(f"{path}: no utterances")
    return out


def dialogue_positions(utterances: list[MeldUtterance]) -> list[int]:
    """Position of each utterance in its dialogue: the rank of its integer Utterance_ID.

    Returns:
        ``[N]`` positions (0-based), aligned with ``utterances``; gaps in IDs do not leave gaps.
    """
    by_dialogue: dict[int, list[int]] = {}
    for u in utterances:
        by_dialogue.setdefault(u.dialogue_id, []).append(u.utterance_id)
    ranks = {d: {uid: r for r, uid in enumerate(sorted(ids))} for d, ids in by_dialogue.items()}
    return [ranks[u.dialogue_id][u.utterance_id] for u in utterances]


def find_meld_csv(root: str | Path, split: str, *, required: bool = True) -> Path | None:
    """Locate ``{split}_sent_emo.csv`` anywhere under ``root`` (``dev`` also matches ``val``).

    Args:
        root: a folder, searched recursively.
        split: ``"train"``, ``"dev"`` (alias ``"val"``) or ``"test"``.
        required: raise when absent instead of returning ``None``.

    Returns:
        The CSV path, or ``None`` when absent and not ``required``.

    Raises:
        ValueError: unknown split.
        FileNotFoundError: absent and ``required``.
        DataFormatError: several candidate files (the message lists them).
    """
    key = "dev" if split == "val" else split
    if key not in _SPLIT_FILE_STEMS:
        raise ValueError(f"unknown MELD split {split!r}; expected one of {list(MELD_SPLITS)} (or 'val')")
    root = Path(root)
    names = [f"{stem}_sent_emo.csv" for stem in _SPLIT_FILE_STEMS[key]]
    found = sorted(p for p in walk_files(root) if p.name in names) if root.is_dir() else []
    if len(found) > 1:
        raise DataFormatError(f"{root}: several MELD {key} CSVs {[str(p) for p in found]}; "
                              f"keep one or point to its folder")
    if found:
        return found[0]
    if required:
        raise FileNotFoundError(f"no {' or '.join(names)} under {root}")
    return None


# Published facts (formats.md §1.2, from the current CSVs): rows, distinct dialogues, emotion counts.
MELD_PUBLISHED: dict[str, dict[str, object]] = {
    "train": {"rows": 9989, "dialogues": 1038, "emotion": {"neutral": 4710, "surprise": 1205, "fear": 268,
                                                           "sadness": 683, "joy": 1743, "disgust": 271,
                                                           "anger": 1109}},
    "dev": {"rows": 1109, "dialogues": 114, "emotion": {"neutral": 470, "surprise": 150, "fear": 40,
                                                        "sadness": 111, "joy": 163, "disgust": 22, "anger": 153}},
    "test": {"rows": 2610, "dialogues": 280, "emotion": {"neutral": 1256, "surprise": 281, "fear": 50,
                                                         "sadness": 208, "joy": 402, "disgust": 68, "anger": 345}},
}


def encoding_variant(path: str | Path) -> str:
    """Which of the three published encodings a MELD CSV uses.

    Returns:
        ``"utf-8"`` (current release), ``"c1-controls"`` (pre-2020 / MELD.Raw) or ``"mojibake"``.
    """
    text = decode_csv_bytes(Path(path).read_bytes())
    if _MOJIBAKE.sub(_fix_mojibake, text) != text:  # checked first: mojibake may hold C1 code points too
        return "mojibake"
    if any("\x80" <= ch <= "\x9f" for ch in text):
        return "c1-controls"
    return "utf-8"


def validate_meld_csvs(root: str | Path, report: ValidationReport) -> dict[str, list[MeldUtterance]]:
    """Check the MELD CSVs under ``root`` against the published counts (formats.md §1.2, §1.9).

    Checks per split found (train and dev required, test optional): the file parses (columns,
    labels, unique keys), row count, distinct dialogues, emotion histogram, rows sorted by
    ``(Dialogue_ID, Utterance_ID)``; the encoding variant is recorded in ``report.counts``.

    Returns:
        The parsed utterances per split (for adapters that align other files to them).
    """
    parsed: dict[str, list[MeldUtterance]] = {}
    for split in MELD_SPLITS:
        try:
            path = find_meld_csv(root, split, required=split != "test")
        except (FileNotFoundError, DataFormatError) as err:
            report.check(f"{split} CSV present", False, str(err))
            continue
        if path is None:
            continue
        try:
            utterances = read_meld_csv(path)
        except DataFormatError as err:
            report.check(f"{split} CSV parses", False, str(err))
            continue
        parsed[split] = utterances
        facts = MELD_PUBLISHED[split]
        emotions = Counter(u.emotion for u in utterances)
        report.counts[split] = {"file": str(path), "rows": len(utterances), "encoding": encoding_variant(path),
                                "emotion": {name: emotions.get(name, 0) for name in MELD_EMOTIONS.names}}
        report.expect_equal(f"{split} rows", len(utterances), facts["rows"])
        report.expect_equal(f"{split} dialogues", len({u.dialogue_id for u in utterances}), facts["dialogues"])
        report.expect_equal(f"{split} emotion counts", report.counts[split]["emotion"], facts["emotion"])
        keys = [(u.dialogue_id, u.utterance_id) for u in utterances]
        report.check(f"{split} rows sorted by (Dialogue_ID, Utterance_ID)", keys == sorted(keys),
                     "sorted" if keys == sorted(keys) else "rows are out of order (joins use keys, not rows)")
    return parsed
