"""``scenesense extract``: build a feature store from a dataset source or a media manifest.

Two families:

- ``scenesense extract meld|synthetic ...``: the built-in sources (MELD text with MiniLM, the
  synthetic benchmark);
- ``scenesense extract --manifest CSV | --meld-csv FILE [--media-dir DIR] | --ravdess DIR |
  --folder DIR --features text=minilm audio=egemaps ... --out STORE``: any registered extractors
  over raw text/audio/video, with workers, a progress bar, resumption and ``errors.csv``
  (`scenesense.extraction.pipeline.extract_manifest`).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from scenesense.cli.common import parse_params, print_json
from scenesense.config import ConfigError

_MANIFEST_FLAGS = ("manifest", "meld_csv", "ravdess", "folder")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="extract features into a feature store folder",
                       description="Extract features into a store folder (<out>/<split>.h5). Either a "
                                   "built-in source (meld, synthetic) or a manifest (--manifest, --meld-csv, "
                                   "--ravdess, --folder) with --features.")
    p.add_argument("source", nargs="?", choices=["meld", "synthetic"], help="a built-in source")
    p.add_argument("--root", help="meld: folder holding the MELD CSVs (train and dev; test optional)")
    p.add_argument("--csv", help="meld: one MELD-format CSV of any split (instead of --root)")
    p.add_argument("--split", help="split name: meld --csv (default test); manifests: put every item in this "
                                   "split (default: the manifest's split column, the MELD file name, RAVDESS "
                                   "actors 1-16 train / 17-20 dev / 21-24 test, or test)")
    p.add_argument("--label", default="emotion", choices=["emotion", "sentiment"],
                   help="MELD label set (meld and --meld-csv; %(default)s)")
    p.add_argument("--max-tokens", type=int, default=50, help="meld: word-pieces per utterance (%(default)s)")
    p.add_argument("--model-path", help="meld: a local sentence-transformers model (default: shipped MiniLM)")
    p.add_argument("--seed", type=int, default=0, help="synthetic: generator seed (%(default)s)")
    group = p.add_argument_group("manifests")
    group.add_argument("--manifest", metavar="CSV",
                       help="CSV with id, split, label and one or more of text/audio/video/media")
    group.add_argument("--meld-csv", metavar="FILE", help="a MELD *_sent_emo.csv")
    group.add_argument("--media-dir", metavar="DIR", help="--meld-csv: folder of dia{D}_utt{U}.mp4 clips")
    group.add_argument("--ravdess", metavar="DIR",
                       help="a RAVDESS tree (Actor_XX/MM-VV-EE-II-SS-RR-AA.wav|mp4)")
    group.add_argument("--folder", metavar="DIR", help="a folder of audio/video clips (unlabelled)")
    p.add_argument("--channel", choices=("speech", "song", "all"), default=None,
                   help="--ravdess: which clips (default speech, as the ravdess dataset source)")
    group.add_argument("--features", nargs="+", metavar="NAME=EXTRACTOR",
                       help="feature set name (usually the modality) = registered extractor, e.g. "
                            "text=minilm audio=egemaps vision=face (`scenesense list extractors`)")
    group.add_argument("--param", action="append", default=[], metavar="NAME.KEY=VALUE",
                       help="an extractor parameter, NAME = feature set name or extractor name, VALUE parsed "
                            "as YAML, e.g. --param text.max_tokens=32 (repeatable)")
    group.add_argument("--labels", metavar="NAMES",
                       help="label set of a --manifest: comma-separated names in class-id order, or a "
                            "preset (meld_emotion, meld_sentiment, ravdess); default: the sorted labels "
                            "found")
    group.add_argument("--workers", type=int, default=1, help="extraction processes (%(default)s)")
    group.add_argument("--batch-size", type=int, default=16, help="items per extractor call (%(default)s)")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="store folder to write (<out>/<split>.h5)")
    p.add_argument("--json", action="store_true", help="print one JSON object describing the store")
    p.set_defaults(handler=run)


def _describe(out: Path) -> dict:
    from scenesense.data.store import find_store_splits, open_store_split

    splits = {}
    for name, path in sorted(find_store_splits(out).items()):
        info = open_store_split(path)
        splits[name] = {"n": info.n, "features": {k: {"modality": f.modality, "kind": f.kind, "dim": f.dim}
                                                  for k, f in info.features.items()}}
    return {"store": str(out), "splits": splits}


def _print_store(out: Path, summary: dict) -> None:
    for name, s in summary["splits"].items():
        feats = ", ".join(f"{k} ({v['kind']}, {v['dim']}-d)" for k, v in s["features"].items())
        print(f"{out}/{name}.h5: {s['n']} samples; {feats}")


def run(args: argparse.Namespace) -> int:
    chosen = [flag for flag in _MANIFEST_FLAGS if getattr(args, flag)]
    if len(chosen) + (args.source is not None) != 1:
        given = ([args.source] if args.source else []) + ["--" + c.replace("_", "-") for c in chosen]
        raise ConfigError(f"extract needs exactly one of: a source (meld, synthetic), --manifest, "
                          f"--meld-csv, --ravdess, --folder (got {given or 'none'})")
    if chosen:
        return _run_manifest(args, chosen[0])
    if args.features or args.media_dir:
        raise ConfigError("--features/--media-dir go with --manifest, --meld-csv, --ravdess or --folder, "
                          f"not with the {args.source!r} source")
    return _run_source(args)


def _run_source(args: argparse.Namespace) -> int:
    from scenesense.config import DataConfig
    from scenesense.datasets.meld_text import extract_meld_split
    from scenesense.datasets.sources import prepare_dataset
    from scenesense.extraction.text import MiniLMTextExtractor

    out = Path(args.out)
    if args.source == "synthetic":
        built = prepare_dataset(DataConfig(dataset="synthetic", params={"seed": args.seed}))
        out.mkdir(parents=True, exist_ok=True)
        for split_file in built.glob("*.h5"):
            shutil.copyfile(split_file, out / split_file.name)
    elif args.csv:
        extractor = MiniLMTextExtractor(model_path=args.model_path, max_tokens=args.max_tokens)
        extract_meld_split(args.csv, out / f"{args.split or 'test'}.h5", extractor=extractor,
                           label=args.label)
    elif args.root:
        params = {"label": args.label, "max_tokens": args.max_tokens, "model_path": args.model_path}
        built = prepare_dataset(DataConfig(dataset="meld", root=args.root, params=params))
        out.mkdir(parents=True, exist_ok=True)
        for split_file in built.glob("*.h5"):
            shutil.copyfile(split_file, out / split_file.name)
    else:
        raise ConfigError("extract meld needs --root (a folder of MELD CSVs) or --csv (one CSV)")
    summary = _describe(out)
    if args.json:
        print_json(summary)
    else:
        _print_store(out, summary)
    return 0


def parse_features(pairs: list[str] | None, params: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """``["text=minilm", ...]`` + ``["text.max_tokens=32", ...]`` -> name -> (extractor, params).

    Raises:
        ConfigError: a malformed pair, an unknown extractor, a repeated name, or a parameter whose
            prefix is neither a feature set name nor a chosen extractor.
    """
    from scenesense.extraction import EXTRACTORS

    if not pairs:
        raise ConfigError(f"--features is required with a manifest, e.g. --features text=minilm "
                          f"audio=egemaps; extractors: {EXTRACTORS.names()}")
    chosen: dict[str, tuple[str, dict[str, Any]]] = {}
    for pair in pairs:
        name, sep, extractor = (part.strip() for part in pair.partition("="))
        if not sep or not name or not extractor:
            raise ConfigError(f"--features {pair!r} must look like NAME=EXTRACTOR, e.g. text=minilm")
        if extractor not in EXTRACTORS:
            raise ConfigError(f"--features {pair!r}: unknown extractor {extractor!r}; choose from "
                              f"{EXTRACTORS.names()}")
        if name in chosen:
            raise ConfigError(f"--features: feature set {name!r} is given twice")
        chosen[name] = (extractor, {})
    for pair in params:
        target, dot, rest = pair.partition(".")
        if not dot or "=" not in rest:
            raise ConfigError(f"--param {pair!r} must look like NAME.KEY=VALUE, e.g. text.max_tokens=32")
        names = [target] if target in chosen else [n for n, (e, _) in chosen.items() if e == target]
        if not names:
            raise ConfigError(f"--param {pair!r}: {target!r} is neither a feature set {sorted(chosen)} nor a "
                              f"chosen extractor {sorted({e for e, _ in chosen.values()})}")
        for name in names:
            chosen[name][1].update(parse_params([rest], prefix=f"--param {target}."))
    return chosen


def _label_space(spec: str | None) -> Any:  # noqa: ANN401
    """``None``, a preset (meld_emotion, meld_sentiment, ravdess) or comma-separated names."""
    from scenesense.data.labels import MELD_EMOTIONS, MELD_SENTIMENTS, LabelSpace

    if spec is None:
        return None
    if spec == "ravdess":
        from scenesense.datasets.ravdess_files import RAVDESS_EMOTIONS

        return RAVDESS_EMOTIONS
    if spec in ("meld_emotion", "meld_sentiment"):
        return MELD_EMOTIONS if spec == "meld_emotion" else MELD_SENTIMENTS
    try:
        return LabelSpace(tuple(name.strip() for name in spec.split(",")))
    except ValueError as err:
        raise ConfigError(f"--labels {spec!r}: {err}") from None


def _read_manifest(args: argparse.Namespace, flag: str, label_names: str | None) -> Any:  # noqa: ANN401
    from scenesense.datasets.meld_manifest import read_meld_manifest
    from scenesense.datasets.ravdess import DEFAULT_CHANNEL
    from scenesense.datasets.ravdess_manifest import read_ravdess_manifest
    from scenesense.extraction import manifest as m

    if args.media_dir and flag != "meld_csv":
        raise ConfigError("--media-dir goes with --meld-csv")
    if args.channel and flag != "ravdess":
        raise ConfigError("--channel goes with --ravdess")
    if flag == "meld_csv":
        return read_meld_manifest(args.meld_csv, media_dir=args.media_dir, label=args.label, split=args.split)
    if flag == "ravdess":
        return read_ravdess_manifest(args.ravdess, split=args.split, channel=args.channel or DEFAULT_CHANNEL)
    space = _label_space(label_names)
    if flag == "manifest":
        return m.read_manifest_csv(args.manifest, label_space=space, split=args.split)
    folder = m.read_folder_manifest(args.folder, split=args.split)
    return m.Manifest(folder.items, folder.source, space)


def _run_manifest(args: argparse.Namespace, flag: str) -> int:
    from scenesense.extraction.pipeline import extract_manifest

    if args.workers < 1 or args.batch_size < 1:
        raise ConfigError(f"--workers and --batch-size must be >= 1, got {args.workers} and "
                          f"{args.batch_size}")
    if flag in ("meld_csv", "ravdess") and args.labels:
        raise ConfigError("--labels applies to --manifest and --folder; MELD and RAVDESS have fixed "
                          "label sets")
    extractors = parse_features(args.features, args.param)
    manifest = _read_manifest(args, flag, args.labels)
    out = Path(args.out)
    report = extract_manifest(manifest.items, extractors, out, workers=args.workers,
                              batch_size=args.batch_size, label_space=manifest.label_space,
                              progress=not args.no_progress, source=manifest.source)
    summary = {**report.to_dict(), **_describe(out)}
    summary["splits"] = {k: v for k, v in summary["splits"].items() if k in report.files}
    if args.json:
        print_json(summary)
        return 0
    _print_store(out, summary)
    if report.reused:
        print(f"{out} already holds these features (same inputs, extractors and parameters); "
              f"nothing extracted; {report.seconds:.1f} s")
    else:
        print(f"{report.items} items: {report.extracted} extracted, {report.resumed} resumed, "
              f"{len(report.failures)} failed, {len(report.dropped)} left out (no modality), "
              f"{report.unlabelled} unlabelled; {report.seconds:.1f} s")
    for name, entry in summary["failures_by_feature_set"].items():
        print(f"  {name}: {entry['count']} failed, first: {entry['first']}")
    if report.failures:
        print(f"errors: {report.errors_file}")
    return 0
