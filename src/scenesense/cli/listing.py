"""``scenesense list``: what the registries hold."""

from __future__ import annotations

import argparse

from scenesense.cli.common import print_json
from scenesense.registry import CONTEXTS, DATASETS, ENCODERS, EXTRACTORS, FUSIONS, LOSSES, RECIPES, Registry

_KINDS: dict[str, Registry] = {
    "contexts": CONTEXTS,
    "datasets": DATASETS,
    "encoders": ENCODERS,
    "extractors": EXTRACTORS,
    "fusions": FUSIONS,
    "losses": LOSSES,
    "recipes": RECIPES,
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered components")
    p.add_argument("kind", nargs="?", choices=sorted(_KINDS), help="one kind (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def _describe(kind: str, name: str) -> str:
    entry = _KINDS[kind].get(name)
    if isinstance(entry, dict):
        return str(entry.get("description", ""))
    doc = (getattr(entry, "__doc__", None) or "").strip().splitlines()
    return doc[0] if doc else ""


def run(args: argparse.Namespace) -> int:
    import scenesense.components  # noqa: F401  (registers everything)

    kinds = [args.kind] if args.kind else sorted(_KINDS)
    listing = {k: {n: _describe(k, n) for n in _KINDS[k].names()} for k in kinds}
    if args.json:
        print_json(listing)
        return 0
    for kind in kinds:
        print(f"{kind}:")
        for name, desc in listing[kind].items():
            print(f"  {name:<26} {desc}")
    return 0
