"""A served run with the defaults of ``scenesense serve`` (speech segments, transcription): an uploaded
espeak-ng clip of two sentences apart gets a timeline of its speech and the transcripts of its words.
Skips without espeak-ng or the ``speech`` extra."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import LiveServer, require_serve, serving
from tests.support.speech import requires_espeak, write_speech_mp4

require_serve()
pytest.importorskip("faster_whisper")
pytest.importorskip("silero_vad")
import httpx  # noqa: E402 - after the skip

FIRST, SECOND = "We lost everything in the fire.", "Please leave me alone now."


@pytest.fixture(scope="module")
def live_speech(run_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(run_a, tmp_path_factory.mktemp("uploads")) as server:  # vad segments, transcribe auto
        yield server


@requires_espeak
def test_a_clip_gets_its_speech_segments_and_transcripts(live_speech, tmp_path):
    clip = write_speech_mp4(tmp_path / "talk.mp4", [FIRST, SECOND], pause_s=1.5)
    answer = httpx.post(f"{live_speech.url}/predict", files={"file": ("talk.mp4", clip.read_bytes())}, timeout=300)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["input"] == "video" and got["used"] == ["audio", "text"]
    heard = got["transcript"]["text"].lower()
    assert "lost" in heard and "alone" in heard
    timeline = got["timeline"]
    assert len(timeline) == 2, timeline
    first, second = timeline
    assert 0 <= first["start"] < first["end"] < second["start"] < second["end"] <= got["seconds"] + 0.05
    assert second["start"] - first["end"] > 0.8  # the pause is between them
    assert "lost" in first["transcript"].lower() and "alone" in second["transcript"].lower()
    assert all(s["ok"] and abs(sum(s["probabilities"].values()) - 1) < 1e-6 for s in timeline)
    assert list(live_speech.uploads.iterdir()) == []
