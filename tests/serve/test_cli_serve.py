"""``scenesense serve`` on the command line: arguments, the one-line errors, the loopback warning, and a
real child process that answers HTTP and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import scenesense.serve
from scenesense.cli import build_parser, main
from tests.serve.conftest import require_serve

require_serve()
import httpx  # noqa: E402 - after the skip


def test_serve_listens_on_loopback_port_8000_by_default():
    args = build_parser().parse_args(["serve", "path/to/run"])
    assert (args.host, args.port, args.max_upload_mb, args.max_seconds) == ("127.0.0.1", 8000, 50.0, 600.0)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("127.0.0.2", True), ("0.0.0.0", False), ("::", False),
                                                ("192.168.1.10", False), ("example.org", False)])
def test_is_loopback(host, loopback):
    assert scenesense.serve.is_loopback(host) is loopback


@pytest.fixture
def no_server(monkeypatch):
    """The handler runs up to the server, which stops at once as on Ctrl-C; no run is loaded."""
    seen = {}

    def create_app(run_dir, limits, **options):
        seen.update(run_dir=run_dir, limits=limits, **options)
        return object()

    def run_server(app, sock):
        seen["port"] = sock.getsockname()[1]
        raise KeyboardInterrupt

    monkeypatch.setattr(scenesense.serve, "create_app", create_app)
    monkeypatch.setattr(scenesense.serve, "run_server", run_server)
    return seen


def test_a_non_loopback_host_prints_a_one_line_warning(no_server, capsys):
    assert main(["serve", "path/to/run", "--host", "0.0.0.0", "--port", "0", "--max-upload-mb", "2"]) == 0
    out, err = capsys.readouterr()
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "0.0.0.0" in warning[0] and "no authentication" in warning[0]
    assert "serving path/to/run on http://0.0.0.0:" in out and "scenesense serve: stopped" in out
    assert no_server["limits"].max_upload_bytes == 2 * 2**20 and no_server["port"] > 0


def test_loopback_gives_no_warning(no_server, capsys):
    assert main(["serve", "path/to/run", "--port", "0", "--transcribe", "never", "--segmenter", "fixed"]) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err and "http://127.0.0.1:" in out
    assert (no_server["transcribe"], no_server["segmenter"]) == ("never", "fixed")


@pytest.mark.parametrize(("argv", "words"), [
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--max-upload-mb", "0"], "--max-upload-mb must be > 0"),
    (["--max-seconds", "-1"], "--max-seconds must be > 0"),
    (["--window", "0"], "--window must be > 0"),
])
def test_bad_limits_are_usage_errors(no_server, capsys, argv, words):
    assert main(["serve", "path/to/run", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err


def test_a_port_in_use_is_one_line(no_server, capsys):
    taken = scenesense.serve.bind("127.0.0.1", 0)
    try:
        assert main(["serve", "path/to/run", "--port", str(taken.getsockname()[1])]) == 1
    finally:
        taken.close()
    err = capsys.readouterr().err.strip()
    assert err.startswith("scenesense: error: cannot listen on 127.0.0.1:") and "\n" not in err


def test_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope"), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("scenesense: error:") and "not a finished run" in err and "\n" not in err


def _lines(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_command_serves_and_stops_cleanly(run_a, stop):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([sys.executable, "-m", "scenesense", "serve", str(run_a), "--port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = _lines(child.stdout), _lines(child.stderr)
    try:
        deadline, url = time.monotonic() + 120, None
        while url is None:
            assert child.poll() is None and time.monotonic() < deadline, "the server did not start"
            try:
                found = re.search(r" on (http://127\.0\.0\.1:\d+) ", out.get(timeout=1))
            except queue.Empty:
                continue
            url = found.group(1) if found else None
        for _ in range(100):  # the socket listens before uvicorn has started: wait for an answer
            try:
                health = httpx.get(f"{url}/health", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health.json()["run"] == run_a.name
        answer = httpx.post(f"{url}/predict", json={"text": "Leave me alone."}, timeout=60)
        assert answer.status_code == 200 and answer.json()["label"] in ("calm", "angry")
        child.send_signal(stop)
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    printed = []
    while not out.empty():
        printed.append(out.get())
    assert "scenesense serve: stopped\n" in printed
    errors = []
    while not err.empty():
        errors.append(err.get())
    assert not any("Traceback" in line or "error:" in line for line in errors), errors


def test_transcript_segments_need_transcription():
    from scenesense.serve.service import ServedRun

    with pytest.raises(ValueError, match="needs transcribe='auto'"):
        ServedRun("path/to/run", segmenter="transcript", transcribe="never")
    with pytest.raises(ValueError, match="segmenter must be one of"):
        ServedRun("path/to/run", segmenter="words")


def test_without_the_serve_extra_the_command_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['fastapi'] = None; from scenesense.cli import main; "
            f"sys.exit(main(['serve', {str(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1
    assert done.stderr.strip() == ('scenesense: error: scenesense serve: fastapi is not installed; run '
                                   'pip install "scenesense[serve]"')
