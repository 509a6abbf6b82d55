"""A MELD CSV (and its ``MELD.Raw`` clips) as an extraction manifest: ``scenesense extract --meld-csv``.

Kept apart from `scenesense.datasets.meld_text` (the registered ``meld`` source) so that
importing the dataset sources never imports the extraction manifests, which sit below them.
"""

from __future__ import annotations

from pathlib import Path

from scenesense.data.labels import MELD_EMOTIONS, MELD_SENTIMENTS
from scenesense.data.meld import dialogue_positions, read_meld_csv
from scenesense.extraction.manifest import DEFAULT_SPLIT, Manifest, ManifestItem, check_split_name

_MELD_LABELS = {"emotion": MELD_EMOTIONS, "sentiment": MELD_SENTIMENTS}


def meld_split_from_name(path: Path) -> str:
    """``train``/``dev``/``test`` from a MELD file name (``val`` counts as ``dev``); else ``test``."""
    stem = path.name.lower()
    for split, keys in (("train", ("train",)), ("dev", ("dev", "val")), ("test", ("test",))):
        if any(stem.startswith(k) for k in keys):
            return split
    return DEFAULT_SPLIT


def read_meld_manifest(path: str | Path, *, media_dir: str | Path | None = None, label: str = "emotion",
                       split: str | None = None) -> Manifest:
    """Read a MELD CSV (`scenesense.data.meld.read_meld_csv`) as manifest items.

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
