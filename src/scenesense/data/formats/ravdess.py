"""RAVDESS as published (formats.md §7): ``Actor_XX/MM-VV-EE-II-SS-RR-AA.{wav,mp4}`` plus a per-clip table.

Reads a folder of RAVDESS clips and, when present, the per-clip table ``openface_au_mfcc.csv``
(found anywhere under the root, or named by ``data.params.table``): one row per clip keyed by
the audio file name in column ``file``, OpenFace 2 action units ``AU01_r..AU45_r`` (intensity
0-5) and ``AU01_c..AU45_c`` (presence 0/1) averaged over the clip, then ``mfcc_stat_000..`` audio
statistics. The dataset is registered as ``ravdess``.

Names are checked against the regex and rules of formats.md §7 (modality 01-03, vocal channel
01 speech / 02 song, emotion 01-08, intensity 01/02, statement 01/02, repetition 01/02, actor
01-24; neutral is never strong, song never has emotion 07/08, actor 18 has no song, ``.wav`` only
for modality 03 and ``.mp4`` only for 01/02, a file in ``Actor_XX`` has actor field ``XX``). WAV
headers are read with :mod:`wave`: 16-bit PCM at 48 kHz (the release) or 16 kHz (a downmixed
copy), mono or stereo (two files of actor 01 are stereo in the official release); other rates
and widths are accepted and recorded in provenance. A broken name or WAV raises
:class:`DataFormatError` naming the file.

Store (one ``<split>.h5`` per split, rows ordered by actor then file name):

- ``vision``: vector ``[N, 35]`` = the AU columns (table order); ``audio``: vector ``[N, 259]`` =
  the ``mfcc_stat_*`` columns. Joined to clips BY FILE NAME, never by row (a video clip
  ``01-…mp4``/``02-…mp4`` joins the row of its audio twin ``03-…wav``); a clip without a row
  has both modalities missing (present False).
- ``audio=<extractor>`` (any registered audio extractor, e.g. ``egemaps``; its constructor
  arguments in ``audio_params``) replaces the table's ``audio`` columns by features extracted
  from each clip's audio: the ``.wav`` itself, for a video clip its audio twin ``03-…wav`` when
  that is under the root, else the ``.mp4``'s own audio track. The extractor's single output is
  stored (vector ``[N, D]`` or sequence ``[N, T_max, D]``) with its provenance. A clip whose
  audio cannot be extracted (silent, too short, no audio track, undecodable) has its audio
  missing (present False); it is logged and counted in the store's ``source``
  (``clips_without_audio``, ``audio_errors``), and conversion goes on. The table is optional in
  this mode (without it the store has no ``vision``).
- labels: the 8 emotions in RAVDESS order (:data:`RAVDESS_EMOTIONS`, class id = field EE - 1).
  Intensity, statement, repetition and sex are parsed and validated but not stored (the store
  holds one label per sample).
- ids: the file stem; dialogue id and speaker: ``actor{AA}``; positions unknown (-1).

Splits are speaker-independent (no actor is in two splits; checked, a ``ValueError`` otherwise).
``split=actors`` (default): ``train_actors`` (1-16), ``dev_actors`` (17-20), ``test_actors``
(empty: no test split); clips of other actors are dropped and counted. ``split=kfold``: the
actors present are sorted and cut into ``folds`` contiguous groups of near-equal size (the first
``n % folds`` groups get one more actor, as ``numpy.array_split``); ``dev`` is group ``fold``,
``train`` the rest, no test. ``split=all``: every clip present goes into ONE split named
``test`` (to score a folder of withheld actors). ``channel``: ``speech`` (default), ``song`` or
``all``.
"""

from __future__ import annotations

import csv
import logging
import re
import wave
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from scenesense.config import ConfigError
from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.data.labels import LabelSpace
from scenesense.data.sources import DatasetSource, file_sha256, register_source
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.data.validation import DataFormatError, ValidationReport
from scenesense.utils.io import walk_files

if TYPE_CHECKING:
    from scenesense.extraction.base import FeatureExtractor

logger = logging.getLogger(__name__)

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
SPLIT_DESIGNS = ("actors", "kfold", "all")
AUDIO_FROM_TABLE = "table"  # data.params.audio: the table's mfcc_stat_* columns (else an extractor name)
SPEECH_PER_ACTOR, SONG_PER_ACTOR = 60, 44  # formats.md §7: 1,440 speech / 24 actors, 1,012 song / 23
_EXTRACT_BATCH = 32  # clips per extract_batch call (progress is logged after each)


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
    """Read and check a WAV header with :mod:`wave`; the last frame must be present.

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


def _actor_list(key: str, value: Any) -> list[int]:  # noqa: ANN401
    """Actors from a list of ints or a string such as ``"1-16"`` / ``"1,3,5-8"``."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    actors: list[int] = []
    try:
        for item in items:
            lo, _, hi = str(item).strip().partition("-")
            actors += range(int(lo), int(hi or lo) + 1)
    except ValueError:
        raise ConfigError(f"data.params.{key} must list actor numbers, got {value!r}") from None
    if any(not 1 <= a <= 24 for a in actors):
        raise ConfigError(f"data.params.{key}: actors are 1..24, got {value!r}")
    return sorted(set(actors))


def assign_splits(actors: Sequence[int], params: Mapping[str, Any]) -> dict[str, list[int]]:
    """Split name -> actors (speaker-independent), from ``params`` and the ``actors`` present.

    ``split=all`` puts every actor present into ``test``; ``kfold`` cuts the actors present into
    ``folds`` groups; ``actors`` uses the ``*_actors`` lists as given.

    Raises:
        ConfigError: bad parameters, or fewer actors than folds.
        ValueError: an actor would be in two splits.
    """
    if params["split"] == "all":
        out = {"test": sorted(set(actors))}
    elif params["split"] == "kfold":
        present, k, fold = sorted(set(actors)), int(params["folds"]), int(params["fold"])
        if len(present) < k:
            raise ConfigError(f"data.params.folds={k} needs at least {k} actors, found {present}")
        groups = [list(map(int, g)) for g in np.array_split(np.array(present), k)]
        out = {"train": sorted(a for i, g in enumerate(groups) if i != fold for a in g), "dev": groups[fold]}
    else:
        out = {s: _actor_list(f"{s}_actors", params[f"{s}_actors"]) for s in ("train", "dev", "test")}
        out = {s: a for s, a in out.items() if a or s != "test"}
    check_speaker_independent(out)
    return out


def check_speaker_independent(assignment: Mapping[str, Sequence[int]]) -> None:
    """Raise ``ValueError`` when an actor appears in two splits."""
    owner: dict[int, str] = {}
    for split, actors in assignment.items():
        for actor in actors:
            if owner.setdefault(actor, split) != split:
                raise ValueError(f"RAVDESS splits must be speaker-independent: actor {actor} is in both "
                                 f"{owner[actor]} and {split}")


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

    Fields: ``spec`` (the store's ``audio`` :class:`FeatureSpec`, provenance included); ``rows``
    (one ``[D]`` or ``[T, D]`` array per clip, ``None`` where extraction failed); ``errors`` (one
    line per failed clip).
    """

    spec: FeatureSpec
    rows: list[np.ndarray | None]
    errors: list[str]


def audio_extractor(params: Mapping[str, Any]) -> FeatureExtractor | None:
    """The extractor named by ``params["audio"]`` (``None`` for ``"table"``), built with ``audio_params``.

    Raises:
        ConfigError: not ``"table"`` nor a registered audio extractor, or bad ``audio_params``.
    """
    name = params["audio"]
    if name == AUDIO_FROM_TABLE:
        if params["audio_params"]:
            raise ConfigError(f"data.params.audio_params {params['audio_params']!r} needs data.params.audio "
                              f"set to an audio extractor (audio is {AUDIO_FROM_TABLE!r})")
        return None
    from scenesense.extraction.base import EXTRACTORS

    choices = [n for n in EXTRACTORS.names() if getattr(EXTRACTORS.get(n), "modality", None) == "audio"]
    if not isinstance(name, str) or name not in choices:
        raise ConfigError(f"data.params.audio must be {AUDIO_FROM_TABLE!r} or an audio extractor "
                          f"{choices}, got {name!r}")
    given = params["audio_params"] or {}
    if not isinstance(given, Mapping):
        raise ConfigError(f"data.params.audio_params must be a mapping of {name} arguments, got {given!r}")
    try:
        return EXTRACTORS.create(name, **given)  # constructors only check and store arguments
    except (TypeError, ValueError) as err:
        raise ConfigError(f"data.params.audio_params for extractor {name!r}: {err}") from None


def _audio_path(clip: RavdessClip, wavs: Mapping[str, Path]) -> Path:
    """The file the clip's audio comes from: itself, or for a video clip its audio twin if present."""
    return clip.path if clip.name.extension == "wav" else wavs.get(clip.name.audio_twin, clip.path)


def extract_clip_audio(clips: Sequence[RavdessClip], extractor: FeatureExtractor,
                       wavs: Mapping[str, Path]) -> ClipAudio:
    """Run ``extractor`` over the clips' audio (each file once); failures become missing rows.

    Args:
        clips: the clips of one split.
        extractor: a one-output audio extractor (:func:`audio_extractor`).
        wavs: ``.wav`` file name -> path of every audio clip found (for video clips' twins).

    Raises:
        ConfigError: the extractor has several outputs (the store's ``audio`` holds one).
    """
    from scenesense.extraction.base import ItemError, check_output

    outputs = extractor.outputs()
    if len(outputs) != 1:
        raise ConfigError(f"data.params.audio needs an extractor with one output; "
                          f"{type(extractor).__name__} has {sorted(outputs)}")
    (output, out_spec), = outputs.items()
    provenance = extractor.provenance()
    paths = [_audio_path(c, wavs) for c in clips]
    unique = list(dict.fromkeys(paths))
    results: dict[Path, np.ndarray | ItemError] = {}
    for start in range(0, len(unique), _EXTRACT_BATCH):
        batch = unique[start:start + _EXTRACT_BATCH]
        for path, result in zip(batch, extractor.extract_batch([str(p) for p in batch]), strict=True):
            if not isinstance(result, ItemError):
                try:
                    result = check_output(output, result[output], out_spec, str(path))
                except ItemError as err:
                    result = err
            results[path] = result
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


def _store_source(root: Path, clips: Sequence[RavdessClip], table: ClipTable | None, split: str,
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


def _first(items: Sequence[str], n: int = 3) -> str:
    return "; ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def _validate_clips(root: Path, report: ValidationReport) -> list[RavdessClip]:
    """Name rules, WAV headers and counts per actor; returns the clips that passed."""
    clips, broken, unreadable = [], [], []
    for path in clip_files(root):
        try:
            name = parse_ravdess_name(path)
        except DataFormatError as err:
            broken.append(str(err))
            continue
        try:
            clips.append(RavdessClip(path, name, read_wav_info(path) if name.extension == "wav" else None))
        except DataFormatError as err:
            unreadable.append(str(err))
    report.counts["files"] = len(clips) + len(broken) + len(unreadable)
    report.check("file names follow formats.md 7", not broken, _first(broken) or f"{len(clips)} names")
    for rule in (RULE_NEUTRAL, RULE_SONG, RULE_ACTOR18):
        found = [b for b in broken if rule in b]
        report.check(rule, not found, _first(found) or "0 violations")
    report.check("WAV headers readable", not unreadable, _first(unreadable) or "all readable")
    _validate_counts(clips, report)
    _validate_wav_formats(clips, report)
    return clips


def _validate_counts(clips: Sequence[RavdessClip], report: ValidationReport) -> None:
    actors = sorted({c.name.actor for c in clips})
    wavs = [c for c in clips if c.name.modality == 3]
    speech = {f"{a:02d}": sum(c.name.actor == a and c.name.channel == 1 for c in wavs) for a in actors}
    song = {f"{a:02d}": sum(c.name.actor == a and c.name.channel == 2 for c in wavs) for a in actors}
    report.counts.update({"actors": actors, "speech_wav_per_actor": speech, "song_wav_per_actor": song,
                          "by_modality": dict(Counter(f"{c.name.modality:02d}" for c in clips))})
    off = {a: n for a, n in speech.items() if n != SPEECH_PER_ACTOR}
    detail = f"{len(actors)} actors" if actors and not off else f"actors with other counts: {off or 'none'}"
    report.check(f"{SPEECH_PER_ACTOR} speech .wav per actor", bool(actors) and not off, detail)
    if any(song.values()):
        off = {a: n for a, n in song.items() if n != (0 if a == "18" else SONG_PER_ACTOR)}
        detail = f"other counts: {off}" if off else f"{len(actors)} actors"
        report.check(f"{SONG_PER_ACTOR} song .wav per actor (none for 18)", not off, detail)


def _validate_wav_formats(clips: Sequence[RavdessClip], report: ValidationReport) -> None:
    headers = [(c, c.wav) for c in clips if c.wav is not None]
    by_actor: dict[str, Counter[str]] = {}
    for clip, wav in headers:
        by_actor.setdefault(f"{clip.name.actor:02d}", Counter())[wav.label] += 1
    report.counts["wav_formats"] = dict(Counter(wav.label for _, wav in headers))
    report.counts["wav_formats_by_actor"] = {a: dict(h) for a, h in by_actor.items()}
    odd = [f"{clip.path.name}: {wav.label}" for clip, wav in headers
           if wav.width != 2 or wav.rate not in (16000, 48000) or wav.channels not in (1, 2)]
    report.check("WAV are 16-bit PCM, 48 or 16 kHz, mono or stereo", not odd,
                 _first(odd) or f"{len(headers)} files")
    rates = {a: sorted({int(label.split()[0]) for label in h}) for a, h in by_actor.items()}
    mixed = {a: r for a, r in rates.items() if len(r) > 1}
    report.check("one sample rate per actor", not mixed,
                 f"mixed: {mixed}" if mixed else str(dict(Counter(str(r[0]) for r in rates.values()))))


def _validate_table(path: Path, clips: Sequence[RavdessClip], report: ValidationReport) -> None:
    """Columns, key coverage (rows vs clips, by file name), NaN count and AU ranges."""
    try:
        table = read_clip_table(path)
    except DataFormatError as err:
        report.check("per-clip table readable", False, str(err))
        return
    report.counts.update({"table_rows": len(table.rows), "table_au_columns": len(table.au_columns),
                          "table_mfcc_columns": len(table.mfcc_columns),
                          "table_ignored_columns": list(table.ignored)})
    report.expect_equal("table AU columns", len(table.au_columns), 35)
    report.expect_equal("table mfcc_stat columns", len(table.mfcc_columns), 259)
    keys = {c.path.name if c.name.modality == 3 else c.name.audio_twin for c in clips}
    orphans, uncovered = sorted(set(table.rows) - keys), sorted(keys - set(table.rows))
    report.counts.update({"table_rows_without_clip": len(orphans), "clips_without_table_row": len(uncovered)})
    report.check("every table row has a clip", not orphans, _first(orphans) or f"{len(table.rows)} rows")
    report.check("every clip has a table row", not uncovered, _first(uncovered) or f"{len(keys)} clips")
    au = np.array([r[0] for r in table.rows.values()]).reshape(len(table.rows), -1)  # [rows, A]
    mfcc = np.array([r[1] for r in table.rows.values()]).reshape(len(table.rows), -1)  # [rows, M]
    nonfinite = int((~np.isfinite(au)).sum() + (~np.isfinite(mfcc)).sum())
    report.counts["table_nonfinite_cells"] = nonfinite
    report.expect_equal("table NaN/inf cells", nonfinite, 0)
    is_r = np.array([c.endswith("_r") for c in table.au_columns], dtype=bool)
    intensity, presence = au[:, is_r], au[:, ~is_r]
    with np.errstate(invalid="ignore"):
        bad_r = int(((intensity < 0) | (intensity > 5)).sum())
        bad_c = int(((presence < 0) | (presence > 1)).sum())
        fractional = int((np.isfinite(presence) & (presence != 0) & (presence != 1)).sum())
    report.counts["au_c_fractional_cells"] = fractional  # > 0: presence averaged over frames
    report.check("AU *_r intensities in [0, 5]", bad_r == 0,
                 f"{bad_r} cells outside" if bad_r else _range(intensity))
    report.check("AU *_c presence in [0, 1]", bad_c == 0,
                 f"{bad_c} cells outside" if bad_c else _range(presence))


def _range(values: np.ndarray) -> str:
    finite = values[np.isfinite(values)]
    return f"[{finite.min():.3g}, {finite.max():.3g}]" if finite.size else "no values"


@register_source("ravdess")
class RavdessSource(DatasetSource):
    """RAVDESS clips under ``data.root`` plus the per-clip AU/MFCC table (see the module docstring).

    ``data.params``: ``table`` (path; default: ``openface_au_mfcc.csv`` found under the root),
    ``channel`` (speech | song | all), ``split`` (actors | kfold | all), ``train_actors``,
    ``dev_actors``, ``test_actors`` (lists or ``"1-16"`` strings), ``folds``, ``fold``, ``audio``
    (``table`` or an audio extractor name such as ``egemaps``) and ``audio_params`` (that
    extractor's constructor arguments, e.g. ``{max_frames: 400}``).
    """

    score_all: ClassVar[Mapping[str, Any]] = {"split": "all"}
    defaults: ClassVar[Mapping[str, Any]] = {
        "table": None, "channel": "speech", "split": "actors", "train_actors": list(range(1, 17)),
        "dev_actors": list(range(17, 21)), "test_actors": [], "folds": 5, "fold": 0,
        "audio": AUDIO_FROM_TABLE, "audio_params": None,
    }

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters, checked: channel, split design, actor lists, fold index, audio extractor."""
        params = super().params(given)
        if params["channel"] not in CHANNELS:
            raise ConfigError(f"data.params.channel must be one of {sorted(CHANNELS)}, "
                              f"got {params['channel']!r}")
        if params["split"] not in SPLIT_DESIGNS:
            raise ConfigError(f"data.params.split must be one of {list(SPLIT_DESIGNS)}, got {params['split']!r}")
        folds, fold = params["folds"], params["fold"]
        if not isinstance(folds, int) or not isinstance(fold, int) or folds < 2 or not 0 <= fold < folds:
            raise ConfigError(f"data.params.folds must be an int >= 2 and fold in [0, folds), "
                              f"got {folds}, {fold}")
        if params["split"] == "actors":
            for key in ("train_actors", "dev_actors"):
                if not _actor_list(key, params[key]):
                    raise ConfigError(f"data.params.{key} must name at least one actor")
            assign_splits([], params)
        audio_extractor(params)
        return params

    def inputs(self, root: Path | None, params: Mapping[str, Any]) -> list[Path]:
        """Every clip file and the table."""
        assert root is not None
        table = find_table(root, params["table"])
        return clip_files(root) + ([table] if table is not None else [])

    def identity(self, root: Path | None, params: Mapping[str, Any]) -> dict[str, Any]:
        """As :meth:`DatasetSource.identity`, plus the audio extractor's provenance (its versions)."""
        identity = super().identity(root, params)
        extractor = audio_extractor(params)
        if extractor is not None:
            identity["audio_extractor"] = extractor.provenance()
        return identity

    def splits(self, root: Path | None, params: Mapping[str, Any]) -> list[str]:
        """train and dev, plus test when ``test_actors`` is set; only test for ``split=all``."""
        if params["split"] == "all":
            return ["test"]
        if params["split"] == "actors" and _actor_list("test_actors", params["test_actors"]):
            return ["train", "dev", "test"]
        return ["train", "dev"]

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Parse every clip, join the table by file name (or extract audio), write one store per split.

        Raises:
            DataFormatError: a broken name, WAV or table.
            ConfigError: no table (required unless ``audio`` names an extractor), or a split
                without clips.
        """
        assert root is not None
        extractor = audio_extractor(params)
        table_path = find_table(root, params["table"])
        if table_path is None and extractor is None:
            raise ConfigError(f"{root}: no {TABLE_NAME} under the root (give data.params.table), "
                              f"or extract audio features with data.params.audio (e.g. egemaps)")
        if table_path is None:
            logger.warning("ravdess: no %s under %s; the store has audio only", TABLE_NAME, root)
        clips = scan_clips(root, params["channel"])
        if not clips:
            channel = "" if params["channel"] == "all" else f"{params['channel']} "
            raise DataFormatError(f"no RAVDESS {channel}clips ({CLIP_PATTERN}) found under {root}")
        table = None if table_path is None else read_clip_table(table_path)
        assignment = assign_splits(sorted({c.name.actor for c in clips}), params)
        dropped = sum(not any(c.name.actor in a for a in assignment.values()) for c in clips)
        if dropped:
            logger.warning("ravdess: %d clips belong to actors outside every split; dropped", dropped)
        wavs = {c.path.name: c.path for c in clips if c.name.extension == "wav"}
        chosen = {split: [c for c in clips if c.name.actor in actors] for split, actors in assignment.items()}
        for split, actors in assignment.items():
            if not chosen[split]:
                present = sorted({c.name.actor for c in clips})
                raise ConfigError(f"{root}: no {params['channel']} clips of the {split} actors {actors} "
                                  f"(actors present: {present})")
        written = {}
        for split, actors in assignment.items():
            audio = None if extractor is None else extract_clip_audio(chosen[split], extractor, wavs)
            if audio is not None and audio.errors:
                logger.warning("ravdess: %s: %d of %d clips have no audio features", split, len(audio.errors),
                               len(chosen[split]))
            source = _store_source(root, chosen[split], table, split, actors, params, dropped, audio)
            written[split] = write_split(out / f"{split}.h5", chosen[split], table, source, audio)
        return written

    def validate(self, root: Path, params: Mapping[str, Any]) -> ValidationReport:
        """Names, counts per actor, WAV headers, table coverage and AU ranges (formats.md §7)."""
        report = ValidationReport(self.name, str(root))
        clips = _validate_clips(root, report)
        table_path = find_table(root, params["table"])
        optional = params["audio"] != AUDIO_FROM_TABLE  # audio is extracted; the table only adds vision
        report.check("per-clip table found", table_path is not None or optional,
                     str(table_path or f"no {TABLE_NAME}" + (f" (optional with audio={params['audio']})"
                                                              if optional else "")))
        if table_path is not None:
            _validate_table(table_path, clips, report)
        chosen = [c for c in clips if c.name.channel in CHANNELS[params["channel"]]]
        try:
            assignment = assign_splits(sorted({c.name.actor for c in chosen}), params)
            report.counts["splits"] = {s: {"actors": a, "clips": sum(c.name.actor in a for c in chosen)}
                                       for s, a in assignment.items()}
            report.check("splits are speaker-independent", True, f"{len(assignment)} splits")
        except ValueError as err:
            report.check("splits are speaker-independent", False, str(err))
        return report
