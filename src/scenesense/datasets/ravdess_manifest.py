"""A RAVDESS tree as an extraction manifest: ``scenesense extract --ravdess``.

The clips and defaults (actor splits, channels) are the ``ravdess`` source's
(`scenesense.datasets.ravdess`); kept apart from it so that importing the dataset
sources never imports the extraction manifests, which sit below them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from scenesense.datasets.ravdess import ACTOR_SPLITS, DEFAULT_CHANNEL
from scenesense.datasets.ravdess_files import CHANNELS, CLIP_PATTERN, RAVDESS_EMOTIONS, parse_ravdess_name
from scenesense.data.validation import DataFormatError
from scenesense.extraction.manifest import (
    Manifest,
    ManifestItem,
    check_split_name,
    check_unique_ids,
    clip_paths,
)


def read_ravdess_manifest(root: str | Path, *, split: str | None = None, channel: str = DEFAULT_CHANNEL,
                          actor_splits: Mapping[str, Sequence[int]] = ACTOR_SPLITS) -> Manifest:
    """Read a RAVDESS tree for extraction: every ``.wav``/``.mp4`` clip, named as published.

    Names are parsed and checked by `scenesense.datasets.ravdess_files.parse_ravdess_name`.
    Label = the emotion field (one of the 8 RAVDESS emotions); speaker and dialogue =
    ``actor{AA}``. Audio-only ``03-…wav`` gives ``audio``; audio-video ``01-…mp4`` gives
    ``media``; video-only ``02-…mp4`` gives ``video`` (so audio extractors skip it).

    Args:
        root: the folder holding ``Actor_XX`` folders (searched recursively).
        split: put every clip in this split; ``None`` = by actor (``actor_splits``).
        channel: ``"speech"``, ``"song"`` or ``"all"`` (default ``DEFAULT_CHANNEL``, as the
            ``ravdess`` source).
        actor_splits: split name -> actors, speaker-independent (default `ACTOR_SPLITS`:
            train 1-16, dev 17-20, test 21-24); clips of other actors are left out.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        DataFormatError: a clip name breaks the RAVDESS naming rules, or no clip was found.
        ValueError: an actor is in two splits, or ``channel`` is unknown.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such RAVDESS folder")
    if channel not in CHANNELS:
        raise ValueError(f"unknown RAVDESS channel {channel!r}; expected one of {sorted(CHANNELS)}")
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
    paths = clip_paths(root, (".wav", ".mp4"))
    if not paths:
        raise DataFormatError(f"no RAVDESS clips ({CLIP_PATTERN}) found under {root}")
    in_channel = 0
    for path in paths:
        name = parse_ravdess_name(path)
        target = split or owner.get(name.actor)
        in_channel += name.channel in CHANNELS[channel]
        if name.channel not in CHANNELS[channel] or target is None:
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
