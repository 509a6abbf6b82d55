from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("av")

import tests.extraction.video_fixtures as fx  # noqa: E402
from scenesense.extraction.base import ItemError  # noqa: E402
from scenesense.extraction.video import iter_frames, read_frames  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """30 frames at 25 fps (0 .. 1.16 s) and the exact frames it was encoded from."""
    frames = fx.face_frames(30)
    return fx.write_video(tmp_path_factory.mktemp("video") / "face.mp4", frames), frames


def test_constant_rate_sampling_picks_every_kth_frame(clip):
    path, source = clip
    every = read_frames(path, fps=1000)  # faster than the file: each frame exactly once
    assert every.images.shape == (30, 160, 160, 3) and every.images.dtype == np.uint8
    np.testing.assert_allclose(every.times, np.arange(30) / 25, atol=1e-6)
    assert np.abs(every.images.astype(int) - source).mean() < 6  # lossy H.264, same pictures

    sampled = read_frames(path, fps=5)
    np.testing.assert_allclose(sampled.times, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-6)
    np.testing.assert_array_equal(sampled.images, every.images[::5])
    assert sampled.times.dtype == np.float64


def test_max_frames_and_lazy_iteration(clip):
    path, _ = clip
    assert read_frames(path, fps=10, max_frames=3).times.tolist() == pytest.approx([0.0, 0.12, 0.2])
    frames = iter_frames(path, fps=25)
    first_time, first_image = next(frames)
    frames.close()  # stops decoding and closes the file
    assert first_time == 0.0 and first_image.shape == (160, 160, 3)


def _grid_reference(times, fps):
    """The first time at or after each grid point t0 + k / fps, each time used at most once."""
    kept, k = [], 0
    for t in times:
        if t >= times[0] + k / fps - 1e-9:
            kept.append(t)
            k = int(np.floor((t - times[0]) * fps + 1e-9)) + 1
    return kept


def test_variable_frame_rate_follows_presentation_time(tmp_path):
    gaps = [0.04, 0.1, 0.04, 0.3, 0.02, 0.02, 0.5, 0.04] * 3
    times = np.round(np.concatenate([[0.0], np.cumsum(gaps)]), 3)
    path = fx.write_video(tmp_path / "vfr.mp4", fx.face_frames(len(times)), times=times)
    every = read_frames(path, fps=1000)
    np.testing.assert_allclose(every.times, times, atol=1e-6)
    for fps in (2, 5, 12.5):
        sampled = read_frames(path, fps=fps)
        np.testing.assert_allclose(sampled.times, _grid_reference(times, fps), atol=1e-6)
        assert np.all(np.diff(sampled.times) > 0)


def test_display_rotation_is_applied(tmp_path):
    upright = fx.face_frames(3)[:, :, 16:144]  # [3, 160, 128, 3], taller than wide
    stored = np.ascontiguousarray(np.rot90(upright, k=1, axes=(1, 2)))  # turned a quarter counter-clockwise
    path = fx.write_video(tmp_path / "rotated.mp4", stored, display_rotation=-90)
    images = read_frames(path, fps=25).images
    assert images.shape == upright.shape
    assert np.abs(images.astype(int) - upright).mean() < 8


def test_image_file_is_one_frame(tmp_path):
    image = fx.face_frames(1)[0]
    frames = read_frames(fx.write_image(tmp_path / "face.png", image))
    assert frames.times.tolist() == [0.0]
    np.testing.assert_array_equal(frames.images[0], image)  # PNG is lossless


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "missing.mp4", "no such video file"),
    (lambda d: d, "a folder, not a video file"),
    (lambda d: fx.write_corrupt(d / "corrupt.mp4"), "not a readable video or image file"),
    (lambda d: fx.write_bytes(d / "empty.mp4", b""), "not a readable video or image file"),
    (lambda d: fx.write_audio_only(d / "tone.wav"), "no video stream (streams: audio)"),
])
def test_bad_files_are_item_errors(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ItemError) as info:
        read_frames(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_truncated_file_is_an_item_error(tmp_path, clip):
    data = clip[0].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: unreadable
    with pytest.raises(ItemError, match="cut.mp4: not a readable video"):
        read_frames(path)


@pytest.mark.parametrize(("fps", "max_frames"), [(0, 5), (-1, 5), (float("nan"), 5), (True, 5), (5, 0), (5, 2.0)])
def test_bad_rates_are_value_errors(clip, fps, max_frames):
    with pytest.raises(ValueError):
        read_frames(clip[0], fps=fps, max_frames=max_frames)
