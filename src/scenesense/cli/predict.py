"""``scenesense predict``: classify texts, audio/video files, a manifest or a conversation with a run.

Exit codes: 0 when every item was predicted; 1 when any item could not be (the others are still
printed and written, and each failed item's problem is shown); 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from scenesense.cli.common import print_json
from scenesense.predict.options import DEFAULT_WINDOW_S, TRANSCRIBE_MODES, clock

_TEXT_WIDTH = 32  # characters of a text shown in the table's input column
_SEGMENTS_SHOWN = 12  # timeline segments printed per long item (--json and --out have every window)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="predict emotions from texts, audio/video files or a manifest with a trained run",
        description="Each positional INPUT is one item: a text, or an audio/video file (routed by its "
                    "type); give the INPUTs together, right after RUN_DIR (options go before RUN_DIR or "
                    "after the last INPUT). "
                    "--text, --audio and --video together describe ONE more item (e.g. a clip and its "
                    "transcript). --manifest adds one item per CSV row (columns id, text, audio, video, "
                    "media; the manifest of `scenesense extract` works). A run with dialogue context "
                    "predicts such items each alone; --conversation (a MELD-format CSV) and --stream "
                    "(JSON lines on stdin, one prediction line each as soon as it is made) give it "
                    "whole conversations, each utterance predicted from its past only. Audio longer than "
                    "two windows (--window) is streamed from disk and predicted window by window: the item "
                    "gets a timeline and the mean of its windows' probabilities. For a run that reads text, "
                    "an audio or video item without a text is transcribed (Whisper tiny.en by default) and "
                    "its transcript is its text (--transcribe). Exit code 1 when any item could not be "
                    "predicted (the others are still printed and written).")
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="a finished run directory (has checkpoint.pt and model_spec.json), or its archive "
                        "(RUN.tar.gz from `scenesense export --format archive`, its .sha256 file beside it)")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="a text, or an audio or video file; one item each")
    p.add_argument("--text", help="the transcript of the flag item")
    p.add_argument("--audio", help="an audio file of the flag item (a video file gives its audio track)")
    p.add_argument("--video", help="a video file of the flag item (also its audio when --audio is not given)")
    p.add_argument("--id", dest="item_id", help="id of the flag item (default: its position)")
    p.add_argument("--manifest", help="a CSV with one item per row: id, text, audio, video, media columns")
    p.add_argument("--conversation", metavar="FILE.csv",
                   help="a MELD-format CSV (Utterance, Speaker, Dialogue_ID, Utterance_ID): every utterance "
                        "predicted with its dialogue's earlier utterances as context")
    p.add_argument("--stream", action="store_true",
                   help='read JSON lines from stdin, e.g. {"dialogue": "d1", "speaker": "Joey", "text": '
                        '"...", "audio": "a.wav"}, and print one JSON line per utterance as soon as it is '
                        'predicted')
    p.add_argument("--top-k", type=int, default=3, help="classes shown per item (%(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every probability")
    p.add_argument("--out", help="also write one CSV row per item to this file (written atomically)")
    p.add_argument("--batch-size", type=int, default=32, help="items extracted and classified together "
                                                              "(%(default)s)")
    p.add_argument("--device", default="cpu", help="torch device of the model (%(default)s)")
    p.add_argument("--window", type=float, default=DEFAULT_WINDOW_S, metavar="SECONDS",
                   help="window length for long audio, predicted window by window when longer than two "
                        "windows (%(default)s s, about the length of the acted clips runs are trained on)")
    p.add_argument("--transcribe", choices=TRANSCRIBE_MODES, default="auto",
                   help="auto: for a run that reads text, transcribe the speech of audio and video items "
                        "given no text and use the transcript as their text (needs scenesense[speech]); "
                        "never: their text is missing (%(default)s)")
    p.add_argument("--whisper-model", metavar="DIR",
                   help="a local CTranslate2 Whisper model folder to transcribe with (default: the Whisper "
                        "tiny.en model that scenesense[speech] installs)")
    p.set_defaults(handler=run)


def _items(args: argparse.Namespace) -> list[Any]:
    """Positional inputs, then the flag item, then the manifest rows."""
    from scenesense.config import ConfigError
    from scenesense.predict import read_manifest

    items: list[Any] = list(args.inputs)
    given = (("text", args.text), ("audio", args.audio), ("video", args.video))
    flags = {k: v for k, v in given if v is not None}
    if flags:
        items.append({**flags, **({"id": args.item_id} if args.item_id else {})})
    elif args.item_id:
        raise ConfigError("--id names the item given by --text/--audio/--video; none was given")
    if args.manifest:
        items += read_manifest(args.manifest)
    if not items:
        raise ConfigError("predict needs something to predict: INPUT arguments, --text/--audio/--video "
                          "or --manifest")
    return items


def _short_input(inputs: dict[str, str]) -> str:
    parts = []
    for kind, raw in inputs.items():
        if kind == "text":
            text = " ".join(raw.split())
            parts.append('"' + (text if len(text) <= _TEXT_WIDTH else text[:_TEXT_WIDTH - 3] + "...") + '"')
        else:
            parts.append(Path(raw).name or raw)
    return " + ".join(parts)


def _said(transcript: Any) -> str:
    """A transcript as the table shows it: quoted and cut, ``-`` for none or nothing heard."""
    if transcript is None or not transcript.text:
        return "-"
    return _short_input({"text": transcript.text})


def _table(result: Any, top_k: int) -> str:
    from scenesense.evaluation.report import format_metrics_table

    weighted = sorted({m for item in result.items for m in (item.modality_weights or {})})
    said = ["transcript"] if result.transcriber is not None else []
    rows = []
    for item in result.items:
        row: dict[str, Any] = {"id": item.id, "input": _short_input(item.inputs),
                               "used": "+".join(item.used) or "-", "missing": "+".join(item.missing) or "-"}
        if said:
            row["transcript"] = _said(item.transcript)
        if not item.ok:
            row["prediction"] = "ERROR"
        elif result.task == "regression":
            row["prediction"] = f"{item.value:.4f}"
        else:
            row["prediction"] = item.label
            row[f"top {top_k}"] = ", ".join(f"{name} {p:.3f}" for name, p in item.top(top_k))
        for m in weighted:
            w = (item.modality_weights or {}).get(m)
            row[f"w_{m}"] = "" if w is None else f"{w:.3f}"
        rows.append(row)
    scores = [] if result.task == "regression" else [f"top {top_k}"]
    columns = ["id", "input", *said, "prediction", *scores, "used", "missing", *(f"w_{m}" for m in weighted)]
    lines = [format_metrics_table(rows, columns)]
    problems = [(item.id, line) for item in result.items
                for line in ([item.error] if item.error else list(item.problems))]
    if problems:
        lines += ["", "problems:", *(f"  {item_id}: {line}" for item_id, line in problems)]
    timelines = [item for item in result.items if item.timeline]
    if timelines:
        lines += ["", "timelines (consecutive windows with the same prediction merged):"]
        lines += [f"  {item.id}: {_timeline(item.timeline, result.task)}" for item in timelines]
    return "\n".join(lines)


def _timeline(windows: Any, task: str) -> str:
    """``"0:00.0-0:12.0 calm, 0:12.0-0:16.0 angry, ..."``: segments of equal predictions (``-``: failed)."""
    segments: list[list[Any]] = []  # [start, end, prediction]
    for w in windows:
        said = "-" if not w.ok else f"{w.value:.2f}" if task == "regression" else w.label
        if segments and segments[-1][2] == said:
            segments[-1][1] = w.end
        else:
            segments.append([w.start, w.end, said])
    shown = ", ".join(f"{clock(a)}-{clock(b)} {said}" for a, b, said in segments[:_SEGMENTS_SHOWN])
    more = len(segments) - _SEGMENTS_SHOWN
    return f"{len(windows)} windows: {shown}" + (f", ... ({more} more segments; --json or --out has every "
                                                  f"window)" if more > 0 else "")


def _check_conversation_args(args: argparse.Namespace) -> None:
    """--conversation and --stream take the whole input: no other input, not both."""
    from scenesense.config import ConfigError

    if args.conversation and args.stream:
        raise ConfigError("give either --conversation or --stream, not both")
    mode = "--conversation" if args.conversation else "--stream"
    others = [name for name, given in (("INPUT", args.inputs), ("--text", args.text), ("--audio", args.audio),
                                       ("--video", args.video), ("--id", args.item_id),
                                       ("--manifest", args.manifest),
                                       ("--whisper-model", args.whisper_model)) if given]
    if others:
        raise ConfigError(f"{mode} reads the whole input; drop {', '.join(others)}")
    if args.stream and (args.out or args.json):
        raise ConfigError("--stream prints one JSON line per utterance; --json and --out do not apply")


def _stream(args: argparse.Namespace) -> int:
    """Predict JSON lines from stdin as they come; one JSON line out per non-blank line in."""
    import json

    from scenesense.streaming import ConversationStream

    stream = ConversationStream(args.run_dir, device=args.device)
    top_k = min(args.top_k, len(stream.label_names))
    n = n_ok = 0
    for number, line in enumerate(iter(sys.stdin.readline, ""), start=1):
        if not line.strip():
            continue
        n += 1
        try:
            given = json.loads(line)
            if not isinstance(given, (dict, str)):
                raise ValueError(f"expected a JSON object or string, got {type(given).__name__}")
            item = stream.add(given)
            out = {"dialogue": str(given.get("dialogue") or "") if isinstance(given, dict) else "",
                   "speaker": str(given.get("speaker") or "") if isinstance(given, dict) else "",
                   **item.to_dict(top_k)}
            n_ok += item.ok
        except ValueError as err:  # incl. JSON errors: the stream goes on
            out = {"line": number, "ok": False, "error": f"line {number}: {err}"}
        print(json.dumps(out), flush=True)
    if n and not n_ok:
        print(f"scenesense: error: no utterance could be predicted ({n} failed)", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    from scenesense.export import opened_run

    with opened_run(args.run_dir) as run_dir:  # an archive is checked against its .sha256 and unpacked
        return _predict(argparse.Namespace(**{**vars(args), "run_dir": str(run_dir)}))


def _predict(args: argparse.Namespace) -> int:
    from scenesense.config import ConfigError
    from scenesense.predict import default_transcriber, predict, write_predictions
    from scenesense.streaming import predict_conversation

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {args.top_k}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not args.window > 0:
        raise ConfigError(f"--window must be > 0 seconds, got {args.window}")
    if args.whisper_model and args.transcribe == "never":
        raise ConfigError("--whisper-model names the model to transcribe with; drop it or --transcribe never")
    if args.conversation or args.stream:
        _check_conversation_args(args)
    if args.stream:
        return _stream(args)
    if args.conversation:
        result = predict_conversation(args.run_dir, args.conversation, device=args.device)
    else:
        transcriber = default_transcriber(args.whisper_model) if args.whisper_model else None
        result = predict(args.run_dir, _items(args), batch_size=args.batch_size, device=args.device,
                         window_s=args.window, transcribe=args.transcribe, transcriber=transcriber)
    top_k = min(args.top_k, len(result.label_names))
    out = write_predictions(result, args.out) if args.out else None
    if args.json:
        print_json({**result.to_dict(top_k), **({"predictions_csv": str(out)} if out else {})})
    else:
        print(_table(result, top_k))
        if out is not None:
            print(f"predictions: {out}")
    failed = len(result.items) - result.n_ok
    if result.n_ok == 0:
        print(f"scenesense: error: no item could be predicted ({failed} failed; see problems)",
              file=sys.stderr)
        return 1
    if failed:
        written = f" and written to {out}" if out is not None else ""
        print(f"scenesense: error: {failed} of {len(result.items)} items could not be predicted (see "
              f"problems); the predictions of the other {result.n_ok} are printed{written}", file=sys.stderr)
        return 1
    return 0
