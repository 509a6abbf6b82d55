"""Command line: ``scenesense {demo,train,evaluate,experiment,report,robustness,profile,predict,analyze,serve,extract,data,export,list}``.

Parsing and dispatch only. Each command module imports the library inside its handler, so a
command loads only what it runs (``scenesense --help`` and ``--version`` load no model code); the
import contracts in ``pyproject.toml`` check those imports like any other.

Exit codes: 0 success, 2 usage or configuration error, 1 runtime failure, 130 interrupted.

Every error reaches the user as one line, ``scenesense: error: <message>``, on stderr. Errors that
bad input raises (`INPUT_ERRORS`) and a missing optional dependency
(`scenesense.utils.extras.MissingExtraError`, whose message names the ``pip install
"scenesense[...]"`` line) print their message; any other exception is a bug in
scenesense and prints its type and message with a pointer to ``--debug``. ``--debug`` (or the
environment variable ``SCENESENSE_DEBUG=1``) prints the full traceback before that line.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import sys
import traceback

from scenesense import __version__
from scenesense.cli import (
    analyze,
    data,
    demo,
    evaluate,
    experiment,
    export,
    extract,
    listing,
    predict,
    profile,
    report,
    robustness,
    serve,
    train,
)
from scenesense.config import ConfigError
from scenesense.registry import PluginError, load_plugins
from scenesense.utils.extras import MissingExtraError

INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, OSError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError, UnicodeError,
)
"""Exception types raised by bad input (files, arguments, data): reported by their message alone."""

DEBUG_ENV = "SCENESENSE_DEBUG"

_COMMANDS = (demo, train, evaluate, experiment, report, robustness, profile, predict, analyze, serve, extract,
             data, export, listing)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (one sub-parser per command module)."""
    parser = argparse.ArgumentParser(
        prog="scenesense", description="Multimodal emotion recognition: train, evaluate, compare fusions."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    parser.add_argument("--debug", action="store_true",
                        help=f"print the full traceback of an error (also: {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.add_parser(sub)
    return parser


def _error(message: str) -> None:
    print(f"scenesense: error: {message}", file=sys.stderr)


def error_message(err: BaseException) -> str:
    """The one-line text of an input error: its message, or its type when the message is empty."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    text = " ".join(text.split())
    return text or f"{type(err).__name__} (no message)"


def _debugging(args: argparse.Namespace | None) -> bool:
    return bool(args is not None and args.debug) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    Plugin modules (`scenesense.registry.load_plugins`) are imported first, so that their
    components are choices of every command.
    """
    try:
        load_plugins()
    except PluginError as err:
        _error(error_message(err))
        return 1
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(message)s")
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        _error("interrupted; re-run the same command to resume")
        return 130
    except Exception as err:  # noqa: BLE001 - the one place every error becomes one line
        if _debugging(args):
            traceback.print_exc()
        if isinstance(err, ConfigError):
            _error(error_message(err))
            return 2
        if isinstance(err, MemoryError):
            _error("out of memory; use smaller inputs or batches (--debug shows where)")
        elif isinstance(err, (MissingExtraError, *INPUT_ERRORS)):
            _error(error_message(err))
        else:
            _error(f"internal error {type(err).__name__}: {error_message(err)}. This is a bug in scenesense: "
                   f"re-run with --debug (or {DEBUG_ENV}=1) for the traceback and report it")
        return 1
