"""``scenesense data {convert,inspect,validate,download,export}``: published formats <-> stores, checks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scenesense.cli.common import parse_params, print_json
from scenesense.config import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="convert published dataset formats into stores, inspect, validate")
    cmds = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    convert = cmds.add_parser("convert", help="convert a dataset (`scenesense list datasets`) into a store")
    _source_args(convert)
    convert.add_argument("--out", required=True,
                         help="store folder to write (<out>/<split>.h5); a split already there is kept only "
                              "when made from the same input files and parameters, else rebuilt")
    convert.set_defaults(handler=run_convert)

    inspect = cmds.add_parser("inspect", help="counts, labels, shapes, missing modalities, NaN/inf of a store")
    inspect.add_argument("store", help="store folder (or one <split>.h5)")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.set_defaults(handler=run_inspect)

    validate = cmds.add_parser("validate", help="check a dataset source against its published facts")
    _source_args(validate)
    validate.set_defaults(handler=run_validate)

    download = cmds.add_parser("download", help="download a published dataset: resumable, checksums verified")
    download.add_argument("dataset", nargs="?", help="dataset to download (see --list)")
    download.add_argument("--dest", help="folder to download and unpack into (default: data/<dataset>)")
    download.add_argument("--from-file", action="append", default=[], metavar="PATH",
                          help="install a locally obtained copy instead of downloading it (repeatable)")
    download.add_argument("--list", action="store_true", help="print the downloadable datasets and exit")
    download.add_argument("--json", action="store_true", help="print one JSON object")
    download.set_defaults(handler=run_download)

    export = cmds.add_parser("export", help="write a store in another framework's format (MMSA pickle)")
    export.add_argument("store", help="store folder (<store>/<split>.h5)")
    export.add_argument("--format", required=True, choices=["mmsa"], help="mmsa: thuiar/MMSA 2.2.1 .pkl")
    export.add_argument("--out", required=True, help="file to write (one .pkl)")
    export.add_argument("--split", action="append", default=[], metavar="KEY=SPLIT",
                        help="MMSA split from a store split, e.g. test=dev (repeatable; default train=train "
                             "valid=dev test=test)")
    export.add_argument("--feature", action="append", default=[], metavar="MODALITY=SET",
                        help="feature set to export for a modality (repeatable)")
    export.add_argument("--modalities", nargs="+", metavar="MODALITY",
                        help="modalities to export (default: audio text vision); others count as missing")
    export.add_argument("--max-len", action="append", default=[], metavar="[MODALITY=]N",
                        help="cut sequences to N steps, for all or one modality (repeatable)")
    export.add_argument("--missing", choices=["error", "zeros"], default="error",
                        help="a modality without a feature set: fail (default) or write zeros [N, 1, 1]")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.set_defaults(handler=run_export)


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="dataset source name (`scenesense list datasets`)")
    p.add_argument("--root", help="the source's folder or file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a dataset parameter (data.params), e.g. --set label=sentiment (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _source_and_params(args: argparse.Namespace) -> tuple[Any, Path | None, dict[str, Any]]:
    from scenesense.config import DataConfig
    from scenesense.datasets.sources import get_source

    try:
        source = get_source(args.dataset)
    except KeyError as err:
        raise ConfigError(str(err.args[0])) from None
    cfg = DataConfig(dataset=args.dataset, root=args.root, params=parse_params(args.set))
    return source, source.resolve_root(cfg), source.params(cfg.params)


def run_convert(args: argparse.Namespace) -> int:
    from scenesense.data.inspect import format_inspection, inspect_store

    source, root, params = _source_and_params(args)
    out = Path(args.out)
    source.convert(root, out, params)
    info = inspect_store(out)
    if args.json:
        print_json(info)
    else:
        print(format_inspection(info))
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from scenesense.data.inspect import format_inspection, inspect_store

    info = inspect_store(args.store)
    if args.json:
        print_json(info)
    else:
        print(format_inspection(info))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    source, root, params = _source_and_params(args)
    if root is None:
        raise ConfigError(f"dataset {args.dataset!r} has no files to validate")
    try:
        report = source.validate(root, params)
    except NotImplementedError as err:
        raise ConfigError(str(err)) from None
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.format())
    if report.errors:
        raise ValueError(f"{report.errors} of {len(report.checks)} checks failed for {args.dataset} at {root}")
    return 0


def _format_registry(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'dataset':<14} {'file':<30} {'size':>12}  {'sha256':<10} url"]
    for r in rows:
        size = f"{r['size']:,}" if r["size"] is not None else "?"
        sha = r["sha256"][:8] + ".." if r["sha256"] else "on 1st run"
        lines.append(f"{r['dataset']:<14} {r['file']:<30} {size:>12}  {sha:<10} {r['url']}")
    return "\n".join(lines)


def run_download(args: argparse.Namespace) -> int:
    from scenesense.data.download import download_dataset, registry_table

    if args.list:
        rows = registry_table()
        if args.json:
            print_json({"datasets": rows})
        else:
            print(_format_registry(rows))
        return 0
    if not args.dataset:
        raise ConfigError("name a dataset to download (see `scenesense data download --list`)")
    try:
        result = download_dataset(args.dataset, args.dest, from_files=args.from_file)
    except KeyError as err:
        raise ConfigError(str(err.args[0])) from None
    if args.json:
        print_json(result.to_dict())
    else:
        for f in result.files:
            where = f" -> {f.extracted_to}" if f.extracted_to is not None else ""
            print(f"{f.action:<10} {f.path}  sha256 {f.sha256} ({f.checked_against}){where}")
    return 0


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{flag} {pair!r} must look like key=value")
        out[key.strip()] = value.strip()
    return out


def _max_len(values: list[str]) -> int | dict[str, int] | None:
    """``--max-len`` values: one bare ``N`` for every modality, or ``MODALITY=N`` pairs."""
    if not values:
        return None
    try:
        if len(values) == 1 and "=" not in values[0]:
            return int(values[0])
        return {m: int(n) for m, n in _pairs(values, "--max-len").items()}
    except ValueError:
        raise ConfigError(f"--max-len takes N or MODALITY=N with an integer N, got {values}") from None


def run_export(args: argparse.Namespace) -> int:
    from scenesense.data.export import export_mmsa

    result = export_mmsa(args.store, args.out, splits=_pairs(args.split, "--split"),
                         features=_pairs(args.feature, "--feature"), modalities=args.modalities,
                         max_len=_max_len(args.max_len),
                         missing=args.missing)
    info = result.to_dict()
    if args.json:
        print_json(info)
        return 0
    print(f"wrote {result.path} (MMSA feature pickle)")
    for key, split in result.splits.items():
        print(f"  {key:<6} <- {split:<8} {result.rows[key]:>7} rows")
    for m, name in result.feature_sets.items():
        source = name if name is not None else "zeros (no feature set)"
        cut = f", {result.truncated[m]} rows cut" if result.truncated[m] else ""
        print(f"  {m:<6} {source:<24} T={result.seq_lens[m]} D={result.feature_dims[m]}{cut}")
    if result.num_classes:
        print(f"  labels: {result.num_classes} classes as class ids; train MMSA with "
              f"config={{'train_mode': 'classification', 'num_classes': {result.num_classes}}}")
    else:
        print("  labels: regression targets in regression_labels (MMSA's default regression mode)")
    return 0
