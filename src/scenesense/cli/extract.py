"""``scenesense extract``: build a feature store from a dataset source."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from scenesense.cli.common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help="extract features into a feature store folder")
    p.add_argument("source", choices=["meld", "synthetic"], help="what to extract")
    p.add_argument("--root", help="meld: folder holding the MELD CSVs (train and dev; test optional)")
    p.add_argument("--csv", help="meld: one MELD-format CSV of any split (instead of --root)")
    p.add_argument("--split", default="test", help="split name for --csv (%(default)s)")
    p.add_argument("--label", default="emotion", choices=["emotion", "sentiment"], help="meld label set")
    p.add_argument("--max-tokens", type=int, default=50, help="meld: word-pieces per utterance (%(default)s)")
    p.add_argument("--model-path", help="meld: a local sentence-transformers model (default: shipped MiniLM)")
    p.add_argument("--seed", type=int, default=0, help="synthetic: generator seed (%(default)s)")
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


def run(args: argparse.Namespace) -> int:
    from scenesense.config import ConfigError, DataConfig
    from scenesense.data.formats.meld_text import extract_meld_split
    from scenesense.data.sources import prepare_dataset
    from scenesense.extraction.text import MiniLMTextExtractor

    out = Path(args.out)
    if args.source == "synthetic":
        built = prepare_dataset(DataConfig(dataset="synthetic", params={"seed": args.seed}))
        out.mkdir(parents=True, exist_ok=True)
        for split_file in built.glob("*.h5"):
            shutil.copyfile(split_file, out / split_file.name)
    elif args.csv:
        extractor = MiniLMTextExtractor(model_path=args.model_path, max_tokens=args.max_tokens)
        extract_meld_split(args.csv, out / f"{args.split}.h5", extractor=extractor, label=args.label)
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
        for name, s in summary["splits"].items():
            feats = ", ".join(f"{k} ({v['kind']}, {v['dim']}-d)" for k, v in s["features"].items())
            print(f"{out}/{name}.h5: {s['n']} samples; {feats}")
    return 0
