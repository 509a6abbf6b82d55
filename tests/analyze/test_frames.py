"""``scenesense.analyze.frames``: a video read once, segment by segment, into lossless clips."""

from __future__ import annotations

import numpy as np
import pytest

from scenesense.extraction.video import iter_frames
from tests.analyze.support import brightness_at, write_tone_video, write_tones

av = pytest.importorskip("av")

from scenesense.analyze.frames import FrameCursor, has_video  # noqa: E402


@pytest.fixture
def video(tmp_path):
    return write_tone_video(tmp_path / "clip.mp4", [(1.0, 2.0, 0.5)], 6.0)  # 10 fps, one grey level a second


def _levels(frames) -> list[int]:
    return [round(image.mean()) for _, image in frames]


def test_clips_hold_the_frames_of_their_span_at_the_sampling_rate(tmp_path, video):
    cursor = FrameCursor(video, fps=5.0)
    clip = cursor.write_clip(tmp_path / "a.mkv", 2.0, 4.0)
    frames = list(iter_frames(clip, 5.0, 300))  # as an extractor sampling at 5 fps reads it
    assert [round(t, 3) for t, _ in frames] == [round(0.2 * k, 3) for k in range(10)]
    levels = _levels(frames)
    assert all(abs(a - b) <= 3 for a, b in zip(levels, [brightness_at(2.0)] * 5 + [brightness_at(3.0)] * 5))
    assert cursor.write_clip(tmp_path / "b.mkv", 4.5, 5.0) is not None  # later spans, in order
    assert cursor.write_clip(tmp_path / "c.mkv", 7.0, 8.0) is None  # past the end: no frame
    assert not (tmp_path / "c.mkv").exists()
    cursor.close()


def test_every_frame_at_its_own_time_without_a_rate(tmp_path, video):
    cursor = FrameCursor(video, fps=None)
    clip = cursor.write_clip(tmp_path / "a.mkv", 1.0, 2.0)
    frames = list(iter_frames(clip, 1000.0, 300))
    assert len(frames) == 10
    assert np.allclose([t for t, _ in frames], np.arange(10) / 10, atol=2e-3)
    assert all(abs(level - brightness_at(1.0)) <= 3 for level in _levels(frames))


def test_has_video(tmp_path, video):
    assert has_video(video)
    assert not has_video(write_tones(tmp_path / "tones.wav", [(0.1, 0.5, 0.5)], 1.0))
    assert not has_video(tmp_path / "missing.mp4")
