"""RAVDESS files as published (formats.md §7): clip names, WAV headers and the per-clip table.

Names ``Actor_XX/MM-VV-EE-II-SS-RR-AA.{wav,mp4}`` are checked against the regex and rules of
formats.md §7 (modality 01-03, vocal channel 01 speech / 02 song, emotion 01-08, intensity
01/02, statement 01/02, repetition 01/02, actor 01-24; neutral is never strong, song never has
emotion 07/08, actor 18 has no song, ``.wav`` only for modality 03 and ``.mp4`` only for 01/02,
a file in ``Actor_XX`` has actor field ``XX``). WAV headers are read with `wave`: 16-bit
PCM at 48 kHz (the release) or 16 kHz (a downmixed copy), mono or stereo (two files of actor 01
are stereo in the official release); other rates and widths are accepted and recorded in
provenance. The per-clip table ``openface_au_mfcc.csv`` has one row per clip keyed by the audio
file name in column ``file``, then ``AU??_r``/``AU??_c`` and ``mfcc_stat_*`` columns. A broken
name, WAV or table raises `DataFormatError` naming the file.
"""

from __future__ import annotations

import csv
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.data.labels import LabelSpace
from scenesense.data.validation import DataFormatError
from scenesense.utils.io import walk_files

RAVDESS_EMOTIONS = LabelSpace(("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"))
"""The 8 RAVDESS emotions in name-code order (01 neutral … 08 surprised), formats.md §7."""

NAME_PATTERN = re.compile(r"^0[1-3]-0[12]-0[1-8]-0[12]-0[12]-0[12]-(0[1-9]|1\d|2[0-4])\.(wav|mp4)$")
TABLE_NAME = "openface_au_mfcc.csv"
_FIELDS = ("modality", "vocal channel", "emotion", "intensity", "statement", "repetition", "actor")
_ALLOWED = (("01", "02", "03"), ("01", "02"), tuple(f"{i:02d}" for i in range(1, 9)), ("01", "02"),
            ("01", "02"), ("01", "02"), tuple(f"{i:02d}" for i in range(1, 25)))
_AU = re.compile(r"^AU\d\d_[rc]$")
_MFCC = re.compile(r"^mfcc_stat_\d+$")
_ACTOR_DIR = re.compile(r"^Actor_(\d\d)$")
CHANNELS = {"speech": (1,), "song": (2,), "all": (1, 2)}
RULE_NEUTRAL = "neutral (emotion 01) has no strong intensity (02)"
RULE_SONG = "song (channel 02) never has emotion 07 or 08"
RULE_ACTOR18 = "actor 18 has no song files"
SPEECH_PER_ACTOR, SONG_PER_ACTOR = 60, 44  # formats.md §7: 1,440 speech / 24 actors, 1,012 song / 23


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of one RAVDESS file name (ints) and its extension (``wav``/``mp4``)."""

    modality: int
    channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int
    extension: str

    @property
    def sex(self) -> str:
        """``male`` for odd actors, ``female`` for even ones."""
        return "male" if self.actor % 2 else "female"

    @property
    def audio_twin(self) -> str:
        """The audio-only file name of the same recording (``03-…wav``), the table's key."""
        fields = (3, self.channel, self.emotion, self.intensity, self.statement, self.repetition, self.actor)
        return "-".join(f"{f:02d}" for f in fields) + ".wav"


def parse_ravdess_name(path: str | Path) -> RavdessName:
    """Parse and check a RAVDESS file name (formats.md §7); the folder ``Actor_XX`` must match.

    Raises:
        DataFormatError: one line naming the file and the broken rule.
    """
    path = Path(path)
    stem, _, ext = path.name.partition(".")
    parts = stem.split("-")
    if len(parts) != 7 or ext not in ("wav", "mp4"):
        raise DataFormatError(f"{path}: not a RAVDESS name (7 two-digit fields MM-VV-EE-II-SS-RR-AA "
                              f"and .wav/.mp4, regex {NAME_PATTERN.pattern})")
    for field, value, allowed in zip(_FIELDS, parts, _ALLOWED, strict=True):
        if value not in allowed:
            raise DataFormatError(f"{path}: {field} field {value!r} is not one of "
                                  f"{allowed[0]}..{allowed[-1]}")
    modality, channel, emotion, intensity, statement, repetition, actor = (int(p) for p in parts)
    name = RavdessName(modality, channel, emotion, intensity, statement, repetition, actor, ext)
    rules = (
        (name.emotion == 1 and name.intensity == 2, RULE_NEUTRAL),
        (name.channel == 2 and name.emotion in (7, 8), RULE_SONG),
        (name.channel == 2 and name.actor == 18, RULE_ACTOR18),
        ((name.modality == 3) != (ext == "wav"), "modality 03 is .wav, modalities 01/02 are .mp4"),
    )
    for broken, rule in rules:
        if broken:
            raise DataFormatError(f"{path}: breaks the RAVDESS rule: {rule}")
    folder = _ACTOR_DIR.match(path.parent.name)
    if folder and int(folder.group(1)) != name.actor:
        raise DataFormatError(f"{path}: actor field {name.actor:02d} does not match folder "
                              f"{path.parent.name}")
    return name


@dataclass(frozen=True)
class WavInfo:
    """A WAV header: ``rate`` (Hz), ``channels``, ``width`` (bytes per sample), ``frames``."""

    rate: int
    channels: int
    width: int
    frames: int

    @property
    def label(self) -> str:
        """E.g. ``"48000 Hz 1 ch 16 bit"`` (histogram key)."""
        return f"{self.rate} Hz {self.channels} ch {8 * self.width} bit"


def read_wav_info(path: str | Path) -> WavInfo:
    """Read and check a WAV header with `wave`; the last frame must be present.

    Raises:
        DataFormatError: not a PCM WAV, no frames, or truncated (one line naming the file).
    """
    try:
        with wave.open(str(path), "rb") as w:
            info = WavInfo(w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
            if info.frames < 1:
                raise DataFormatError(f"{path}: WAV has no audio frames")
            w.setpos(info.frames - 1)
            if len(w.readframes(1)) != info.channels * info.width:
                raise DataFormatError(f"{path}: truncated WAV (header says {info.frames} frames)")
    except (wave.Error, EOFError) as err:
        problem = err or "unexpected end of file"
        raise DataFormatError(f"{path}: not a readable PCM WAV file ({problem})") from None
    return info


@dataclass(frozen=True)
class RavdessClip:
    """One clip: ``path``, parsed ``name``, ``wav`` header (``None`` for ``.mp4``)."""

    path: Path
    name: RavdessName
    wav: WavInfo | None

    @property
    def id(self) -> str:
        """The file stem."""
        return self.path.name.split(".")[0]

    @property
    def speaker(self) -> str:
        """``actor{AA}``."""
        return f"actor{self.name.actor:02d}"


def clip_files(root: Path) -> list[Path]:
    """Every non-hidden ``.wav``/``.mp4`` file under ``root`` (macOS ``._*`` files are hidden).

    Symbolic links to folders (e.g. ``Actor_01 -> /data/...``) are followed, each folder once.
    """
    return sorted(p for p in walk_files(root) if p.suffix.lower() in (".wav", ".mp4") and p.is_file()
                  and not p.name.startswith("."))


CLIP_PATTERN = "*.wav, *.mp4 named like 03-01-05-01-02-01-12.wav"  # how a person recognises a clip


def scan_clips(root: Path, channel: str = "all") -> list[RavdessClip]:
    """Parse every clip under ``root`` of the given channel, sorted by actor then name.

    Raises:
        DataFormatError: a broken name or WAV, or the same file name twice.
    """
    clips: list[RavdessClip] = []
    seen: dict[str, Path] = {}
    for path in clip_files(root):
        name = parse_ravdess_name(path)
        if name.channel not in CHANNELS[channel]:
            continue
        if path.name in seen:
            raise DataFormatError(f"{path}: the same clip is also at {seen[path.name]}")
        seen[path.name] = path
        clips.append(RavdessClip(path, name, read_wav_info(path) if name.extension == "wav" else None))
    return sorted(clips, key=lambda c: (c.name.actor, c.path.name))


@dataclass(frozen=True)
class ClipTable:
    """The per-clip table: ``path``, ``au_columns``, ``mfcc_columns``, ``rows`` (file name ->
    ``(au [A], mfcc [M])`` float64, NaN kept) and ``ignored`` (other columns)."""

    path: Path
    au_columns: tuple[str, ...]
    mfcc_columns: tuple[str, ...]
    rows: dict[str, tuple[np.ndarray, np.ndarray]]
    ignored: tuple[str, ...]


def _float_cell(path: Path, key: str, column: str, cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise DataFormatError(f"{path}: row {key!r}: column {column!r} is not a number ({cell!r})") from None


def read_clip_table(path: str | Path) -> ClipTable:
    """Read ``openface_au_mfcc.csv``-style tables, keyed by the (base) file name in ``file``.

    Raises:
        DataFormatError: no ``file`` column, no AU/mfcc columns, a duplicate key or a non-number.
    """
    path = Path(path)
    allow_fields_up_to(path.stat().st_size)
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = CsvRows(csv.reader(f), path)
        header = [h.strip() for h in next(reader, [])]
        if "file" not in header:
            raise DataFormatError(f"{path}: no 'file' column (header starts {header[:3]})")
        au = [i for i, h in enumerate(header) if _AU.match(h)]
        mfcc = [i for i, h in enumerate(header) if _MFCC.match(h)]
        if not au and not mfcc:
            raise DataFormatError(f"{path}: no AU??_r/AU??_c or mfcc_stat_* columns")
        key_at = header.index("file")
        rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for line, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(header):
                raise DataFormatError(f"{path}: line {line} has {len(cells)} cells, header has {len(header)}")
            key = Path(cells[key_at].strip()).name
            if key in rows:
                raise DataFormatError(f"{path}: line {line}: file {key!r} appears twice")
            au_row, mfcc_row = (np.array([_float_cell(path, key, header[i], cells[i]) for i in group])
                                for group in (au, mfcc))
            rows[key] = (au_row, mfcc_row)
    ignored = tuple(h for i, h in enumerate(header) if i != key_at and i not in au and i not in mfcc)
    return ClipTable(path, tuple(header[i] for i in au), tuple(header[i] for i in mfcc), rows, ignored)


def find_table(root: Path, table: str | None) -> Path | None:
    """``table`` (relative to ``root`` or absolute) or the first ``openface_au_mfcc.csv`` under root."""
    if table:
        path = Path(table).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such table (data.params.table)")
        return path
    return next(iter(sorted(p for p in walk_files(root) if p.name == TABLE_NAME)), None)
