"""RAVDESS as published (formats.md §7): ``Actor_XX/MM-VV-EE-II-SS-RR-AA.{wav,mp4}`` plus a per-clip table.

Reads a folder of RAVDESS clips and, when present, the per-clip table ``openface_au_mfcc.csv``
(found anywhere under the root, or named by ``data.params.table``): one row per clip keyed by
the audio file name in column ``file``, OpenFace 2 action units ``AU01_r..AU45_r`` (intensity
0-5) and ``AU01_c..AU45_c`` (presence 0/1) averaged over the clip, then ``mfcc_stat_000..`` audio
statistics. The dataset is registered as ``ravdess``;
`scenesense.datasets.ravdess_manifest.read_ravdess_manifest` gives the same clips to
``scenesense extract --ravdess``. The RAVDESS defaults (actor splits, channels) are defined here,
once, for both.

Names and WAV headers are checked as `scenesense.datasets.ravdess_files` says (a
broken name or WAV raises `DataFormatError` naming the file); ``data validate`` runs
`scenesense.datasets.ravdess_checks`.

Store (one ``<split>.h5`` per split, rows ordered by actor then file name; written by
`scenesense.datasets.ravdess_store`):

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
- labels: the 8 emotions in RAVDESS order (`RAVDESS_EMOTIONS`, class id = field EE - 1).
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

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.config import ConfigError
from scenesense.datasets.ravdess_checks import validate_clips, validate_table
from scenesense.datasets.ravdess_files import (
    CHANNELS,
    CLIP_PATTERN,
    TABLE_NAME,
    clip_files,
    find_table,
    read_clip_table,
    scan_clips,
)
from scenesense.datasets.ravdess_store import extract_clip_audio, store_source, write_split
from scenesense.datasets.sources import DatasetSource, register_source
from scenesense.data.validation import DataFormatError, ValidationReport
from scenesense.extraction.base import EXTRACTORS, FeatureExtractor

logger = logging.getLogger(__name__)

# --- defaults: one place for both readers (the source and the extraction manifest) -----------

TRAIN_ACTORS: tuple[int, ...] = tuple(range(1, 17))
DEV_ACTORS: tuple[int, ...] = tuple(range(17, 21))
TEST_ACTORS: tuple[int, ...] = tuple(range(21, 25))
ACTOR_SPLITS: Mapping[str, tuple[int, ...]] = {"train": TRAIN_ACTORS, "dev": DEV_ACTORS, "test": TEST_ACTORS}
"""Speaker-independent splits by actor (train 1-16, dev 17-20, test 21-24). The source holds the
test actors out unless ``test_actors`` names them (score them with ``evaluate --root``);
``scenesense extract --ravdess`` writes all three splits."""
DEFAULT_CHANNEL = "speech"  # data.params.channel and extract --channel: speech clips (song: "song" / "all")
SPLIT_DESIGNS = ("actors", "kfold", "all")
AUDIO_FROM_TABLE = "table"  # data.params.audio: the table's mfcc_stat_* columns (else an extractor name)


# --- splits by actor -------------------------------------------------------------------------


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

# --- audio: an extractor instead of the table's mfcc columns ----------------------------------


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

# --- the dataset source ---------------------------------------------------------------------


@register_source("ravdess")
class RavdessSource(DatasetSource):
    """RAVDESS clips under ``data.root`` plus the per-clip AU/MFCC table (see the module docstring).

    ``data.params``: ``table`` (path; default: ``openface_au_mfcc.csv`` found under the root),
    ``channel`` (speech | song | all), ``split`` (actors | kfold | all), ``train_actors``,
    ``dev_actors``, ``test_actors`` (lists or ``"1-16"`` strings), ``folds``, ``fold``, ``audio``
    (``table`` or an audio extractor name such as ``egemaps``) and ``audio_params`` (that
    extractor's constructor arguments, e.g. ``{max_frames: 400}``).
    """

    modalities: ClassVar[tuple[str, ...]] = ("audio", "vision")
    root_hint: ClassVar[str] = ("the folder holding the Actor_XX clip folders and openface_au_mfcc.csv "
                                "(--root path/to/RAVDESS)")
    score_all: ClassVar[Mapping[str, Any]] = {"split": "all"}
    defaults: ClassVar[Mapping[str, Any]] = {
        "table": None, "channel": DEFAULT_CHANNEL, "split": "actors", "train_actors": list(TRAIN_ACTORS),
        "dev_actors": list(DEV_ACTORS), "test_actors": [], "folds": 5, "fold": 0,
        "audio": AUDIO_FROM_TABLE, "audio_params": None,
    }

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters, checked: channel, split design, actor lists, fold index, audio extractor."""
        params = super().params(given)
        if params["channel"] not in CHANNELS:
            raise ConfigError(f"data.params.channel must be one of {sorted(CHANNELS)}, "
                              f"got {params['channel']!r}")
        if params["split"] not in SPLIT_DESIGNS:
            raise ConfigError(f"data.params.split must be one of {list(SPLIT_DESIGNS)}, "
                              f"got {params['split']!r}")
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
        """As `DatasetSource.identity`, plus the audio extractor's provenance (its versions)."""
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
            source = store_source(root, chosen[split], table, split, actors, params, dropped, audio)
            written[split] = write_split(out / f"{split}.h5", chosen[split], table, source, audio)
        return written

    def validate(self, root: Path, params: Mapping[str, Any]) -> ValidationReport:
        """Names, counts per actor, WAV headers, table coverage and AU ranges (formats.md §7)."""
        report = ValidationReport(self.name, str(root))
        clips = validate_clips(root, report)
        table_path = find_table(root, params["table"])
        optional = params["audio"] != AUDIO_FROM_TABLE  # audio is extracted; the table only adds vision
        report.check("per-clip table found", table_path is not None or optional,
                     str(table_path or f"no {TABLE_NAME}" + (f" (optional with audio={params['audio']})"
                                                              if optional else "")))
        if table_path is not None:
            validate_table(table_path, clips, report)
        chosen = [c for c in clips if c.name.channel in CHANNELS[params["channel"]]]
        try:
            assignment = assign_splits(sorted({c.name.actor for c in chosen}), params)
            report.counts["splits"] = {s: {"actors": a, "clips": sum(c.name.actor in a for c in chosen)}
                                       for s, a in assignment.items()}
            report.check("splits are speaker-independent", True, f"{len(assignment)} splits")
        except ValueError as err:
            report.check("splits are speaker-independent", False, str(err))
        return report
