"""``scenesense serve``: a run behind an HTTP API (``POST /predict``, ``GET /health``, ``/docs``) and a page.

Exit codes: 0 when stopped (Ctrl-C or SIGTERM), 1 when the run cannot be loaded or the address
cannot be used, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import signal
import sys

from scenesense.predict.options import DEFAULT_WINDOW_S


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve a trained run over HTTP: a JSON API and a web page",
        description="Load RUN once and answer HTTP requests: POST /predict with a JSON text "
                    '({"text": "..."}), a JSON conversation ({"conversation": [{"speaker": "...", '
                    '"text": "..."}]}) or an uploaded audio or video file (multipart field "file"); '
                    "GET /health; GET /docs for the API description; GET / for a page where you type a "
                    "sentence or upload a clip. Listens on 127.0.0.1 (this machine only) unless --host "
                    "says otherwise. Ctrl-C stops it.")
    p.add_argument("run_dir", metavar="RUN", help="a finished run directory (has checkpoint.pt and model_spec.json)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (%(default)s: this machine only; 0.0.0.0: every network "
                        "interface, anyone who can reach it can use the API)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (%(default)s; 0: any free port)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, metavar="MB",
                   help="largest upload accepted, in MiB (%(default)s)")
    p.add_argument("--max-seconds", type=float, default=600.0, metavar="SECONDS",
                   help="longest clip accepted, in seconds (%(default)s)")
    p.add_argument("--window", type=float, default=DEFAULT_WINDOW_S, metavar="SECONDS",
                   help="clips longer than two windows are predicted window by window, their scores the "
                        "mean of the windows' (%(default)s s)")
    p.add_argument("--transcribe", choices=("auto", "never"), default="auto",
                   help="auto: a clip sent without its transcript is transcribed when the run reads text "
                        "(needs the speech extra); never: its text is missing (%(default)s)")
    p.add_argument("--segmenter", choices=("vad", "transcript", "fixed"), default="vad",
                   help="how a clip's timeline is cut, as by `scenesense analyze`: vad (speech segments; "
                        "needs the speech extra), transcript (the transcription's segments) or fixed "
                        "(windows of --window seconds) (%(default)s)")
    p.add_argument("--device", default="cpu", help="torch device of the model (%(default)s)")
    p.set_defaults(handler=run)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from scenesense.config import ConfigError
    from scenesense.serve import Limits, bind, create_app, is_loopback, run_server, url_of

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}")
    if not args.window > 0:
        raise ConfigError(f"--window must be > 0 seconds, got {args.window}")
    try:
        limits = Limits.from_megabytes(args.max_upload_mb, args.max_seconds)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    app = create_app(args.run_dir, limits, device=args.device, window_s=args.window, transcribe=args.transcribe,
                     segmenter=args.segmenter)
    sock = bind(args.host, args.port)
    if not is_loopback(args.host):
        print(f"scenesense: warning: listening on {args.host}: anyone who can reach this machine on port "
              f"{sock.getsockname()[1]} can use the API (there is no authentication)", file=sys.stderr)
    url = url_of(sock)
    print(f"serving {args.run_dir} on {url} (page: {url}/, API: {url}/docs); Ctrl-C stops", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops as Ctrl-C does
    try:
        run_server(app, sock)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    print("scenesense serve: stopped", flush=True)
    return 0
