"""Command line: ``scenesense {demo,train,evaluate,experiment,report,robustness,profile,predict,extract,data,list}``.

Parsing and dispatch only.

Exit codes: 0 success, 2 usage or configuration error, 1 runtime failure (one-line message).
"""

from __future__ import annotations

import argparse
import logging
import sys

from scenesense.cli import (
    data,
    demo,
    evaluate,
    experiment,
    extract,
    listing,
    predict,
    profile,
    report,
    robustness,
    train,
)
from scenesense.config import ConfigError

_COMMANDS = (demo, train, evaluate, experiment, report, robustness, profile, predict, extract, data, listing)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (one sub-parser per command module)."""
    parser = argparse.ArgumentParser(
        prog="scenesense", description="Multimodal emotion recognition: train, evaluate, compare fusions."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.add_parser(sub)
    return parser


def _error(message: str) -> None:
    print(f"scenesense: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(message)s")
    try:
        return int(args.handler(args))
    except ConfigError as err:
        _error(str(err))
        return 2
    except KeyError as err:
        _error(str(err.args[0]) if err.args else repr(err))
        return 1
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        _error(str(err))
        return 1
    except KeyboardInterrupt:
        _error("interrupted; re-run the same command to resume")
        return 130
