"""Live servers for the serve tests: uvicorn on a free port of 127.0.0.1, in a thread of the test process.

`live` serves run A of the predict tests (MiniLM text, WAV statistics through a fake audio extractor,
a table-made vision set; ``angry`` = a loud clip) with small limits, so that tests can pass them:
uploads up to `MAX_UPLOAD` bytes, clips up to `MAX_SECONDS` seconds, timelines in fixed
`WINDOW_S` second segments, no transcription. Each upload's temporary folder is made under
``live.uploads``, which must be empty between requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scenesense.extraction import EXTRACTORS
from tests.support.extractors import FakeFaces, FakeWavStats

MAX_UPLOAD = 300_000
MAX_SECONDS = 8.0
WINDOW_S = 0.5  # run A's audio feature includes the length: it was trained on 0.25 s clips


@dataclass(frozen=True)
class LiveServer:
    url: str
    uploads: Path
    run_dir: Path


def require_serve() -> None:
    for module in ("fastapi", "uvicorn", "python_multipart", "httpx", "av"):
        pytest.importorskip(module)


@contextmanager
def serving(run_dir: Path, uploads: Path, **options: Any) -> Iterator[LiveServer]:  # noqa: ANN401
    """`scenesense.serve.create_app` with ``options`` behind uvicorn, with the fake extractors
    registered while the run loads."""
    require_serve()
    import uvicorn

    from scenesense.serve import bind, create_app, url_of

    with pytest.MonkeyPatch.context() as patch:  # the run's extractors are rebuilt once, here
        patch.setitem(EXTRACTORS._items, "test_wav_stats", FakeWavStats)
        patch.setitem(EXTRACTORS._items, "test_faces", FakeFaces)
        app = create_app(run_dir, temp_dir=uploads, **options)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield LiveServer(url_of(sock), uploads, run_dir)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture(scope="module")
def live(run_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from scenesense.serve import Limits

    limits = Limits(max_upload_bytes=MAX_UPLOAD, max_seconds=MAX_SECONDS)
    with serving(run_a, tmp_path_factory.mktemp("uploads"), limits=limits, window_s=WINDOW_S,
                 transcribe="never", segmenter="fixed") as server:
        yield server
