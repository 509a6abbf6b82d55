"""``scenesense data validate ravdess``: names, counts per actor, WAV headers and the per-clip table.

Checks against formats.md §7: every name follows the rules, 60 speech (44 song, none for actor
18) ``.wav`` per actor, one sample rate per actor, 16-bit PCM WAVs, and a table whose rows and
clips match one to one by file name, without NaN, AU intensities in [0, 5] and presences in
[0, 1].
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scenesense.datasets.ravdess_files import (
    RULE_ACTOR18,
    RULE_NEUTRAL,
    RULE_SONG,
    SONG_PER_ACTOR,
    SPEECH_PER_ACTOR,
    RavdessClip,
    clip_files,
    parse_ravdess_name,
    read_clip_table,
    read_wav_info,
)
from scenesense.data.validation import DataFormatError, ValidationReport


def _first(items: Sequence[str], n: int = 3) -> str:
    return "; ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def validate_clips(root: Path, report: ValidationReport) -> list[RavdessClip]:
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


def validate_table(path: Path, clips: Sequence[RavdessClip], report: ValidationReport) -> None:
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
