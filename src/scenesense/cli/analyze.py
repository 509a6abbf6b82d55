"""``scenesense analyze``: a recording of any length to a timeline of emotions, a plot and a page.

Exit codes: 0 when the timeline was written and every segment found was predicted (or none was
found: a warning says so); 1 when some segments could not be predicted (the files are still
written); 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scenesense.analyze.options import DEFAULT_MAX_SEGMENT_S, SEGMENTERS, TRANSCRIBE_MODES
from scenesense.cli.common import print_json
from scenesense.predict.options import DEFAULT_WINDOW_S, clock

_SEGMENTS_SHOWN = 20  # rows of the printed timeline (the files have every segment)
_TEXT_WIDTH = 48  # characters of a transcript shown


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze", help="a recording of any length (a call, an interview, a scene) to a timeline of emotions",
        description="Find the speech segments of MEDIA (an audio or video file of any length), predict each "
                    "segment's emotions with the run RUN (the segment's audio, its transcript when the run "
                    "reads text, the faces in its frames when it reads vision) and write, in --output-dir: "
                    "timeline.csv and timeline.json (one row per segment: start, end, label, probabilities, "
                    "transcript), emotions.png (the probabilities over time) and index.html (the recording's "
                    "player beside a clickable timeline; open it in a browser). The recording is read as "
                    "a stream: memory does not grow with its length. A run with past-only dialogue context "
                    "reads the segments as one conversation.")
    p.add_argument("media", metavar="MEDIA", help="an audio or video file (WAV, MP3, MP4, MKV, ...)")
    p.add_argument("--run", required=True, metavar="RUN", help="a finished run directory")
    p.add_argument("--output-dir", metavar="DIR",
                   help="where the files go (default: MEDIA's folder, <name>.analysis/)")
    p.add_argument("--segmenter", choices=SEGMENTERS, default="vad",
                   help="how the recording is cut: speech segments found by voice activity detection, the "
                        "transcription's own segments, or fixed windows of --window seconds (%(default)s)")
    p.add_argument("--transcribe", choices=TRANSCRIBE_MODES, default="auto",
                   help="transcribe the segments: when the run reads text (auto), always (transcripts in the "
                        "timeline for any run) or never (%(default)s)")
    p.add_argument("--window", type=float, default=DEFAULT_WINDOW_S, metavar="SECONDS",
                   help="window length of --segmenter fixed (%(default)s s)")
    p.add_argument("--max-segment", type=float, default=DEFAULT_MAX_SEGMENT_S, metavar="SECONDS",
                   help="longest segment; longer speech is cut, at a pause where it can (%(default)s s)")
    p.add_argument("--copy-media", action="store_true",
                   help="copy MEDIA into the output folder for the page (default: the page plays MEDIA "
                        "from where it is)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="segments featurised and classified together (%(default)s)")
    p.add_argument("--device", default="cpu", help="torch device of the model (%(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the analysis as one JSON object")
    p.set_defaults(handler=run)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _TEXT_WIDTH else text[:_TEXT_WIDTH - 3] + "..."


def _summary(analysis: Any) -> str:  # noqa: ANN401
    from scenesense.evaluation.report import format_metrics_table

    regression = analysis.task == "regression"
    rows = []
    for s in analysis.segments[:_SEGMENTS_SHOWN]:
        said = "ERROR" if not s.ok else f"{s.value:.3f}" if regression else s.label
        top = "" if not s.ok or regression else f"{max(s.probabilities.values()):.2f}"
        rows.append({"span": f"{clock(s.start)}-{clock(s.end)}", "prediction": said, "p": top,
                     "transcript": _short(s.transcript), "used": "+".join(s.used) or "-"})
    lines = [format_metrics_table(rows, ["span", "prediction", "p", "transcript", "used"])] if rows else []
    more = len(analysis.segments) - _SEGMENTS_SHOWN
    if more > 0:
        lines.append(f"... {more} more segments in {analysis.files['csv']}")
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in analysis.stage_seconds.items() if k != "total")
    factor = analysis.realtime_factor or 0.0
    total = analysis.stage_seconds["total"]
    lines += ["", (f"{len(analysis.segments)} segments in {clock(analysis.duration)} of media, "
                   f"{analysis.n_ok} predicted, in {total:.1f} s ({factor:.1f}x real time): {stages}")]
    lines += [f"{key}: {path}" for key, path in analysis.files.items()]
    failed = [s for s in analysis.segments if not s.ok]
    if failed:
        lines += ["", f"{len(failed)} segments without a prediction (first: {failed[0].error})"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from scenesense.analyze import analyze_media
    from scenesense.config import ConfigError

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not args.window > 0:
        raise ConfigError(f"--window must be > 0 seconds, got {args.window}")
    if not args.max_segment > 0:
        raise ConfigError(f"--max-segment must be > 0 seconds, got {args.max_segment}")
    if args.segmenter == "transcript" and args.transcribe == "never":
        raise ConfigError("--segmenter transcript cuts where the transcription does; drop --transcribe never")
    analysis = analyze_media(args.run, args.media, args.output_dir, transcribe=args.transcribe,
                             segmenter=args.segmenter, max_segment=args.max_segment, window=args.window,
                             progress=not args.no_progress, copy_media=args.copy_media, device=args.device,
                             batch_size=args.batch_size)
    if args.json:
        print_json(analysis.to_json())
    else:
        print(_summary(analysis))
    if not analysis.segments:
        print(f"scenesense: warning: no speech found in {args.media}; the files hold an empty timeline "
              "(--segmenter fixed cuts the whole recording into windows)", file=sys.stderr)
        return 0
    failed = len(analysis.segments) - analysis.n_ok
    if failed:
        print(f"scenesense: error: {failed} of {len(analysis.segments)} segments could not be predicted "
              f"(see the error column of {analysis.files['csv']})", file=sys.stderr)
        return 1
    return 0
