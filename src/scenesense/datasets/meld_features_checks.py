"""Checks of the MELD feature family against its published facts (formats.md §1.9, §2.3).

`validate_meld_features` checks every family file found under a folder; the ``meld_features``
dataset (`scenesense.datasets.meld_features`) runs it for ``scenesense data validate``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from scenesense.datasets.meld_pickles import (
    DIALOGUE_FILES,
    DIALOGUE_SLOTS,
    FILE_SPLIT,
    GLOVE_DIM,
    REV_KEYS,
    UTTERANCE_FILES,
    VISION_DIM,
    Key,
    Rev,
    check_vision_order,
    find_meld_feature_files,
    read_data_pickle,
    read_dialogue_pickle,
    read_utt_profile,
    read_utterance_pickle,
    read_vision_pickle,
    rebuild_vision_keys,
    utterance_id,
)
from scenesense.data.labels import MELD_EMOTIONS, MELD_SENTIMENTS, LabelSpace
from scenesense.data.meld import (
    MELD_PUBLISHED,
    MELD_SPLITS,
    MeldUtterance,
    validate_meld_csvs,
)
from scenesense.data.safe_pickle import UnsafePickleError
from scenesense.data.validation import DataFormatError, ValidationReport

LABELS: dict[str, LabelSpace] = {"emotion": MELD_EMOTIONS, "sentiment": MELD_SENTIMENTS}
PUBLISHED_ROWS: dict[str, int] = {"train": 9989, "dev": 1109, "test": 2610}
PUBLISHED_VISION_ROWS: dict[str, int] = {"train": 9988, "dev": 1109, "test": 2609}
PUBLISHED_EMOTION: dict[str, dict[str, int]] = {
    split: cast("dict[str, int]", MELD_PUBLISHED[split]["emotion"]) for split in MELD_SPLITS
}
PUBLISHED_SENTIMENT: dict[str, dict[str, int]] = {
    "train": {"neutral": 4710, "positive": 2334, "negative": 2945},
    "dev": {"neutral": 470, "positive": 233, "negative": 406},
    "test": {"neutral": 1256, "positive": 521, "negative": 833},
}
_ABSENT_EMOTION = {"train": "neutral", "test": "disgust"}  # emotion of dia125_utt3 / dia220_utt0

def validate_meld_features(root: Path, report: ValidationReport) -> ValidationReport:
    """Check every family file found under ``root`` (both label sets); absent files are not reported.

    CSVs (`validate_meld_csvs`); ``data_*.p`` structure, label_index, per-split revs counts
    and label histograms, keys and labels against the CSVs; utterance pickles' key patterns, dims
    and key coverage; dialogue pickles' shapes; FacialMMT layout, rows, label histogram and the
    row order (labels of the rebuilt keys). A file that cannot be read is one failed check.

    Raises:
        DataFormatError: none of the family's files (CSVs included) are under ``root``.
    """
    found = {label: find_meld_feature_files(root, label) for label in LABELS}
    if not any(f.paths() for f in found.values()):
        raise DataFormatError(f"{root}: none of the MELD CSVs, feature pickles or FacialMMT files are here")
    csv = validate_meld_csvs(root, report) if found["emotion"].csvs else {}
    rows = {s: {(u.dialogue_id, u.utterance_id): u for u in utts} for s, utts in csv.items()}
    revs: dict[str, dict[str, dict[Key, Rev]]] = {}
    for label, files in found.items():
        if files.data is not None:
            path = files.data
            revs[label] = _guard(report, _validate_data, path, label, report)
            _compare_revs_with_csv(path.name, label, revs[label], rows, report)
    any_revs = {s: set().union(*(r.get(s, {}) for r in revs.values())) for s in MELD_SPLITS}
    reference = {s: set(rows.get(s) or any_revs[s]) for s in MELD_SPLITS}
    for label, files in found.items():
        for name, _, _, dims in UTTERANCE_FILES:
            if name in files.utterance:
                path = files.utterance[name]
                _guard(report, _validate_utterance, path, dims.get(label), reference, report)
        for name, _, _, dims in DIALOGUE_FILES:
            if name in files.dialogue:
                path = files.dialogue[name]
                _guard(report, _validate_dialogue, path, dims.get(label), report)
    emotions = {s: {k: MELD_EMOTIONS.id_of(u.emotion) for k, u in rows[s].items()} for s in rows}
    for split, by_key in revs.get("emotion", {}).items():
        emotions.setdefault(split, {k: MELD_EMOTIONS.id_of(r.y) for k, r in by_key.items()
                                    if r.y in MELD_EMOTIONS.names})
    vision = found["emotion"]
    for split, path in vision.vision.items():
        _guard(report, _validate_vision, path, split, vision.profiles.get(split), reference[split],
               emotions.get(split, {}), report)
    return report


def _guard(report: ValidationReport, check: Callable[..., Any], path: Path, *args: Any) -> Any:  # noqa: ANN401
    """``check(path, *args)``; a file that cannot be read becomes one failed check (and ``{}``)."""
    try:
        return check(path, *args) or {}
    except (DataFormatError, UnsafePickleError) as err:
        report.check(f"{path.name} readable", False, str(err))
        return {}


def _validate_data(path: Path, label: str, report: ValidationReport) -> dict[str, dict[Key, Rev]]:
    text = read_data_pickle(path)
    name = path.name
    report.check(f"{name} is a list of 6", True, "revs, W, word_idx_map, vocab, max length, label_index")
    report.check(f"{name} revs keys", REV_KEYS <= text.rev_fields, f"{sorted(text.rev_fields)}")
    report.expect_equal(f"{name} W.shape[1]", int(text.W.shape[1]), GLOVE_DIM)
    report.check(f"{name} word_idx_map found by content", True,
                 f"element {text.word_map_element}: {text.disambiguation}")
    space = LABELS[label]
    report.expect_equal(f"{name} label_index", text.label_index, {n: i for i, n in enumerate(space.names)})
    by_split: dict[str, dict[Key, Rev]] = {}
    facts = {"emotion": PUBLISHED_EMOTION, "sentiment": PUBLISHED_SENTIMENT}
    for split in MELD_SPLITS:
        revs = text.by_split(split)
        by_split[split] = {r.key: r for r in revs}
        counts = Counter(r.y for r in revs)
        histogram = {n: counts.get(n, 0) for n in space.names}
        report.counts[f"{name} {split}"] = {"revs": len(revs), label: histogram}
        report.expect_equal(f"{name} {split} revs", len(revs), PUBLISHED_ROWS[split])
        report.check(f"{name} {split} keys unique", len(by_split[split]) == len(revs),
                     f"{len(revs) - len(by_split[split])} repeated")
        report.expect_equal(f"{name} {split} {label} counts", histogram, facts[label][split])
    return by_split


def _compare_revs_with_csv(name: str, label: str, revs: Mapping[str, Mapping[Key, Rev]],
                           rows: Mapping[str, Mapping[Key, MeldUtterance]], report: ValidationReport) -> None:
    for split, by_key in revs.items():
        if split not in rows:
            continue
        csv_keys, rev_keys = set(rows[split]), set(by_key)
        report.check(f"{name} {split} keys equal the CSV's", csv_keys == rev_keys,
                     f"{len(csv_keys - rev_keys)} CSV rows without a rev, "
                     f"{len(rev_keys - csv_keys)} revs not in the CSV")
        differ = sorted(k for k in csv_keys & rev_keys if by_key[k].y != getattr(rows[split][k], label))
        report.check(f"{name} {split} labels agree with the CSV", not differ,
                     f"{len(differ)} differ" + (f", e.g. {utterance_id(differ[0])}" if differ else ""))


def _coverage(report: ValidationReport, name: str, split: str, keys: set[Key], reference: set[Key]) -> None:
    if not reference:
        return
    missing, extra = len(reference - keys), len(keys - reference)
    report.check(f"{name} {split} key coverage", missing + extra <= max(1, len(reference) // 100),
                 f"{missing} of {len(reference)} utterances lack a key, {extra} keys are not utterances")


def _validate_utterance(path: Path, dim: int | None, reference: Mapping[str, set[Key]],
                        report: ValidationReport) -> None:
    feats = read_utterance_pickle(path)
    report.check(f"{path.name} is 3 dicts keyed dia_utt", True, "(train, val, test), keys '<dia>_<utt>'")
    if dim is not None:
        report.expect_equal(f"{path.name} dim", feats.dim, dim)
    for split, table in feats.rows.items():
        report.counts[f"{path.name} {split}"] = len(table)
        _coverage(report, path.name, split, set(table), reference[split])


def _validate_dialogue(path: Path, dim: int | None, report: ValidationReport) -> None:
    feats = read_dialogue_pickle(path)
    report.check(f"{path.name} is 3 dicts keyed by dialogue id", True, "(train, val, test), keys '<dia>'")
    report.expect_equal(f"{path.name} utterance slots", feats.slots, DIALOGUE_SLOTS)
    if dim is not None:
        report.expect_equal(f"{path.name} dim", feats.dim, dim)
    report.counts[path.name] = {split: len(table) for split, table in feats.rows.items()}


def _validate_vision(path: Path, split: str, profile: Path | None, reference: set[Key],
                     emotions: Mapping[Key, int], report: ValidationReport) -> None:
    vision = read_vision_pickle(path, FILE_SPLIT[split])
    name = path.name
    report.check(f"{name} layout", True,
                 f"{{{FILE_SPLIT[split]!r}: vision, vision_utt_mask, labels}}, mask in {{0, 1}}")
    report.expect_equal(f"{name} frame dim", int(vision.vision.shape[2]), VISION_DIM)
    report.expect_equal(f"{name} rows", vision.rows, PUBLISHED_VISION_ROWS[split])
    counts = Counter(vision.labels.tolist())
    histogram = {n: counts.get(i, 0) for i, n in enumerate(MELD_EMOTIONS.names)}
    expected = dict(PUBLISHED_EMOTION[split])
    if split in _ABSENT_EMOTION:
        expected[_ABSENT_EMOTION[split]] -= 1
    report.counts[name] = {"rows": vision.rows, "frames": int(vision.vision.shape[1]), "emotion": histogram,
                           "rows_without_frames": int((~vision.mask.any(axis=1)).sum())}
    report.expect_equal(f"{name} emotion counts", histogram, expected)
    if not emotions or (profile is None and not reference):
        return
    origin = profile.name if profile is not None else "CSV order"
    try:
        if profile is not None:
            keys = read_utt_profile(profile, vision.rows)
        else:
            keys = rebuild_vision_keys(split, list(reference), vision.rows, path, "the CSV/revs")
        check_vision_order(vision, keys, emotions, "the CSV/revs labels")
        report.check(f"{name} row order ({origin})", True, "labels match the utterances' emotions")
    except DataFormatError as err:
        report.check(f"{name} row order ({origin})", False, str(err))
