"""``scenesense export``: a trained run as an ONNX or TorchScript model, or as one checksummed archive."""

from __future__ import annotations

import argparse

from scenesense.cli.common import print_json

FORMATS = ("onnx", "torchscript", "archive")  # scenesense.export.FORMATS (checked by the tests); no torch here


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a trained run: an ONNX or TorchScript model of its features-to-probabilities "
                       "graph, or the run as one .tar.gz with a SHA-256 checksum",
        description="onnx and torchscript write the model file (model.onnx, model.ts) and model.json (input "
                    "names, shapes and dtypes, label names, feature provenance, the model file's SHA-256) into "
                    "--out (default RUN_DIR/export/<format>); the export is checked against PyTorch on batches "
                    "of other sizes and lengths and not kept if they disagree. archive writes RUN_DIR.tar.gz "
                    "(config, model spec, best weights, metrics) and RUN_DIR.tar.gz.sha256 (or --out and "
                    "--out.sha256); `scenesense predict` takes such an archive in place of the run folder.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (has checkpoint.pt and "
                                                      "model_spec.json)")
    p.add_argument("--format", default="onnx", choices=FORMATS, help="what to write (default: %(default)s)")
    p.add_argument("--out", help="the folder to write into (onnx, torchscript) or the .tar.gz to write (archive)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the written files")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scenesense.config import ConfigError
    from scenesense.export import export_run

    if args.opset is not None and args.format != "onnx":
        raise ConfigError(f"--opset applies to --format onnx only, not {args.format}")
    result = export_run(args.run_dir, args.out, args.format, opset=args.opset)
    if args.json:
        print_json({"format": result.format, "files": [str(f) for f in result.files], "sha256": result.sha256,
                    "max_difference": result.max_difference})
        return 0
    first, second = result.files
    if result.format == "archive":
        print(f"archive: {first}\nchecksum: {second} (check it with: sha256sum -c {second.name})")
    else:
        print(f"{result.format}: {first} (sha256 {result.sha256})\ndescription: {second}\n"
              f"check: largest difference from PyTorch {result.max_difference:.2g} on batches of other sizes")
    return 0
