"""``scenesense report``: rebuild the experiment report (Tables 3-5, figures, HTML) from finished runs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables (Markdown, CSV, JSON, LaTeX), figures and one HTML report "
                                      "from finished runs")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="finished run folders, or experiment folders (every cells/*/ run inside is used)")
    p.add_argument("--split", metavar="SPLIT",
                   help="the scored split every table and figure reports: dev (default; the split each run "
                        "selected its best epoch on, read from the run's metrics.json and predictions.csv) "
                        "or test (read from <run>/eval/test/, written by `scenesense evaluate RUN --store "
                        "STORE --split test`); the report names it")
    p.add_argument("--output-dir", help="where the report goes (default: <common parent of RUN_DIRs>/report; "
                                        "an experiment folder is its own parent)")
    p.add_argument("--baseline", metavar="VARIANT",
                   help="Table 4's reference variant (default: concat if present, else the first variant)")
    p.add_argument("--models", nargs=2, metavar=("A", "B"),
                   help="Table 5's two models, each a variant or SET/VARIANT such as audio+text/concat "
                        "(default: the best by mean weighted F1 and the baseline)")
    p.add_argument("--modalities", metavar="SET",
                   help="Table 4's modality set, e.g. audio+text (default: the set with the most modalities)")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="bootstrap resamples of the 95%% confidence intervals (default: %(default)s)")
    p.add_argument("--permutations", type=int, default=5000, metavar="N",
                   help="resamples of the paired permutation test (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: %(default)s)")
    p.add_argument("--dpi", type=int, default=120, help="resolution of the figures (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (Table 3 rows and the files written) instead of Markdown")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scenesense.cli.common import print_json
    from scenesense.evaluation.experiment_report import build_report, default_output_dir, write_report
    from scenesense.evaluation.report_html import table_to_markdown
    from scenesense.runs import load_runs

    for name in ("bootstrap", "permutations", "dpi"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
    runs = load_runs(args.run_dirs, split=args.split)
    report = build_report(runs, baseline=args.baseline, models=args.models, modalities=args.modalities,
                          n_bootstrap=args.bootstrap, n_permutations=args.permutations, seed=args.seed)
    out_dir = args.output_dir or default_output_dir(args.run_dirs)
    files = write_report(report, out_dir, dpi=args.dpi)
    table3 = next(t for t in report.tables if t.name == "table3")
    if args.json:
        print_json({"output_dir": str(out_dir), "scope": report.scope.to_json(), "table3": table3.rows,
                    "files": {k: str(v) for k, v in files.items()}})
        return 0
    print(table_to_markdown(table3))
    print()
    for kind in ("html", "markdown", "csv", "json", "latex"):
        print(f"{kind}: {files[kind]}")
    n_figures = sum(k.startswith("figure:") for k in files)
    print(f"figures: {files['html'].parent / 'figures'} ({n_figures} files)")
    return 0
