"""``scenesense evaluate``: score a trained run on labelled data (a store split, a MELD CSV, a dataset root)."""

from __future__ import annotations

import argparse

from scenesense.cli.common import headline_keys, parse_params, print_json, summary_row


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a trained run on a store split or a MELD-format CSV")
    p.add_argument("run_dir", help="a finished run directory (has checkpoint.pt)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", help="a MELD-format CSV of any split, with labels; features are extracted")
    src.add_argument("--store", help="a feature store folder (with --split) or one split file (.h5)")
    src.add_argument("--root", help="data in the run's dataset format at any path (e.g. a RAVDESS tree "
                                    "plus its AU table); converted with the run's parameters")
    p.add_argument("--split", help="split name inside a store folder (default: test)")
    p.add_argument("--set", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="with --root: override a dataset parameter (repeatable)")
    p.add_argument("--logit-adjust", type=float, metavar="TAU",
                   help="post-hoc logit adjustment: subtract TAU x log(training class prior) from the logits "
                        "(1 aims at balanced error, favouring rare classes; 0 changes nothing)")
    p.add_argument("--output-dir", help="where predictions and metrics go (default: <run_dir>/eval/<name>, "
                                        "<name>-tau<TAU> with --logit-adjust)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the metrics")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scenesense import api
    from scenesense.evaluation.report import format_metrics_table

    result = api.evaluate(args.run_dir, store=args.store, split=args.split, csv=args.csv, root=args.root,
                          params=parse_params(args.params), output_dir=args.output_dir,
                          logit_adjust=args.logit_adjust)
    if args.json:
        print_json({**result.metrics, "predictions": str(result.predictions_csv)})
        return 0
    m = result.metrics
    print(format_metrics_table([summary_row(m["data"], m)], ["run", "n", *headline_keys(m)]))
    if "per_class" in m:
        per_class = [{"class": k, **v} for k, v in m["per_class"].items()]
        print(format_metrics_table(per_class, ["class", "precision", "recall", "f1", "support"]))
    print(f"predictions: {result.predictions_csv}")
    return 0
