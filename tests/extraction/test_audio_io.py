"""``load_audio``: every container and codec PyAV decodes, resampling and downmix, and one clear
ItemError (naming the file) per failure mode."""

from __future__ import annotations

import io
import struct
import tempfile
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("av")

from scenesense.extraction.audio_io import (
    SILENCE_PEAK,
    audio_seconds,
    audio_windows,
    load_audio,
)
from scenesense.extraction.audio_io import write_wav as write_window
from scenesense.extraction.base import ItemError
from tests.extraction.audio_fixtures import dominant_frequency, voiced, write_audio, write_video, write_wav

SECONDS = 0.5


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    x16, x48 = voiced(SECONDS, 16000), voiced(SECONDS, 48000)
    return {
        "mono16": write_wav(d / "mono16.wav", x16, 16000),
        "stereo48": write_wav(d / "stereo48.wav", np.stack([x48, x48]), 48000),
        "mono48_24bit": write_wav(d / "mono48_24.wav", x48, 48000, width=3),
        "flac": write_audio(d / "a.flac", x16, 16000, "flac"),
        "mp4": write_video(d / "talk.mp4", SECONDS, x16),
        "mkv": write_video(d / "talk.mkv", SECONDS, x16),
        "m4a": write_audio(d / "a.m4a", x16, 16000, "aac", "mp4"),
        "mp3": write_audio(d / "a.mp3", x16, 16000, "libmp3lame"),
        "ogg": write_audio(d / "a.ogg", x48, 48000, "libopus", "ogg"),
    }


def test_16bit_mono_wav_is_read_exactly(media):
    y = load_audio(media["mono16"])
    assert y.dtype == np.float32 and y.shape == (int(SECONDS * 16000),)
    expected = np.round(voiced(SECONDS, 16000) * 32767) / 32768
    np.testing.assert_allclose(y, expected, atol=1e-6)


@pytest.mark.parametrize("name", ["stereo48", "mono48_24bit"])
def test_48k_stereo_and_24bit_resample_to_the_16k_signal(media, name):
    y, reference = load_audio(media[name]), load_audio(media["mono16"])
    assert y.shape == reference.shape
    inner = slice(200, -200)  # the resampler's filter rings at the very ends
    assert np.abs(y[inner] - reference[inner]).max() < 5e-4
    assert abs(np.abs(y).max() - np.abs(reference).max()) < 5e-3  # averaging keeps the level (no +3 dB)


def test_mono_false_keeps_channels_and_rate_none_keeps_the_file_rate(tmp_path):
    left, right = voiced(0.2, 48000, f0=150), voiced(0.2, 48000, f0=300, amplitude=0.1)
    path = write_wav(tmp_path / "lr.wav", np.stack([left, right]), 48000)
    both = load_audio(path, sample_rate=None, mono=False)
    assert both.shape == (2, 9600) and both.dtype == np.float32
    np.testing.assert_allclose(both, np.round(np.stack([left, right]) * 32767) / 32768, atol=1e-6)
    np.testing.assert_allclose(load_audio(path, sample_rate=None), both.mean(axis=0), atol=1e-7)
    assert load_audio(path, sample_rate=8000, mono=False).shape == (2, 1600)


def test_flac_decodes_to_the_same_samples_as_the_wav(media):
    np.testing.assert_array_equal(load_audio(media["flac"]), load_audio(media["mono16"]))


@pytest.mark.parametrize("name", ["mp4", "mkv", "m4a", "mp3", "ogg"])
def test_lossy_codecs_and_video_audio_tracks_hold_the_tone(media, name):
    y = load_audio(media[name])
    reference = load_audio(media["mono16"])
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - reference.size) <= 2048  # encoder priming/padding frames
    assert abs(dominant_frequency(y, 16000) - dominant_frequency(reference, 16000)) < 4.0
    assert 0.8 < np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(reference**2)) < 1.25


def test_avi_with_mp3_audio_track(tmp_path):
    path = write_video(tmp_path / "clip.avi", SECONDS, voiced(SECONDS, 16000), audio_codec="libmp3lame")
    assert abs(dominant_frequency(load_audio(path), 16000) - dominant_frequency(voiced(SECONDS, 16000), 16000)) < 4


# --- failures -----------------------------------------------------------------------------------

def _text_as_wav(d: Path) -> Path:
    path = d / "notes.wav"
    path.write_text("this is a text file renamed to .wav\n" * 20, encoding="utf-8")
    return path


def _cut(path: Path, keep: int) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep > 0 else data[:len(data) // 2])
    return path


FAILURES = {
    "missing": (lambda d: d / "nope.wav", "no such audio file"),
    "folder": (lambda d: d, "a folder"),
    "text renamed .wav": (_text_as_wav, "not a readable audio or video file"),
    "WAV cut in its header": (lambda d: _cut(write_wav(d / "cut.wav", voiced(0.2, 16000), 16000), 30),
                              "not a readable audio or video file"),
    "WAV cut in its data": (lambda d: _cut(write_wav(d / "half.wav", voiced(0.2, 16000), 16000), 0),
                            "WAV header says 0.200 s of audio but the file holds 0.099 s (truncated?)"),
    "MP4 cut in half": (lambda d: _cut(write_video(d / "cut.mp4", 0.5, voiced(0.5, 16000)), 0),
                        "not a readable audio or video file"),
    "FLAC cut in half": (lambda d: _cut(write_audio(d / "cut.flac", voiced(2.0, 16000), 16000, "flac"), 0),
                         "corrupt or unsupported audio"),
    "empty WAV": (lambda d: write_wav(d / "empty.wav", np.zeros(0), 16000), "no samples (empty)"),
    "all-zero WAV": (lambda d: write_wav(d / "zeros.wav", np.zeros(8000), 16000), "silent audio"),
    "near-silent WAV": (lambda d: write_wav(d / "hiss.wav", voiced(0.2, 16000, amplitude=6e-5), 16000),
                        "silent audio"),
    "video without audio": (lambda d: write_video(d / "mute.mp4", 0.5), "no audio stream (streams: video)"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_each_failure_is_one_line_naming_the_file(tmp_path, case):
    build, words = FAILURES[case]
    path = build(tmp_path)
    with pytest.raises(ItemError) as err:
        load_audio(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and words in message, message


def test_silence_threshold_is_a_parameter(tmp_path):
    quiet = write_wav(tmp_path / "quiet.wav", voiced(0.2, 16000, amplitude=6e-5), 16000)
    assert 0 < np.abs(load_audio(quiet, min_peak=0.0)).max() < SILENCE_PEAK
    zeros = write_wav(tmp_path / "zeros.wav", np.zeros(100), 16000)
    with pytest.raises(ItemError, match="silent"):
        load_audio(zeros, min_peak=0.0)  # all zeros is always silent


@pytest.mark.parametrize("kwargs", [{"sample_rate": 0}, {"sample_rate": 16000.0}, {"min_peak": -1.0}])
def test_bad_arguments_are_value_errors(media, kwargs):
    with pytest.raises(ValueError):
        load_audio(media["mono16"], **kwargs)


def test_audio_found_only_by_a_full_probe_is_still_read(tmp_path):
    import av

    # MPEG-TS with all video packets first: the first 64 KiB hold no audio packet
    path = write_video(tmp_path / "late.ts", 20.0, voiced(20.0, 16000))
    with av.open(str(path), container_options={"probesize": str(64 << 10)}) as quick:
        assert quick.streams.audio[0].codec_context.sample_rate == 0  # so load_audio must probe again
    y = load_audio(path)
    assert abs(y.size - 20 * 16000) <= 2048
    reference = voiced(20.0, 16000)
    n = min(y.size, reference.size)
    spectra = [np.abs(np.fft.rfft(x[:n])) for x in (y, reference)]
    assert np.corrcoef(*spectra)[0, 1] > 0.9  # the same tone (AAC may shift it by its priming delay)


# --- WAV headers that lie -----------------------------------------------------------------------

def _riff_fixed(path: Path, keep_seconds: float) -> Path:
    """Cut a 16 kHz mono 16-bit WAV after ``keep_seconds`` and rewrite its RIFF size to the cut file
    (the data chunk still declares the whole length)."""
    data = bytearray(path.read_bytes()[:44 + int(keep_seconds * 16000) * 2])
    data[4:8] = struct.pack("<I", len(data) - 8)
    path.write_bytes(bytes(data))
    return path


def test_a_wav_shorter_than_its_header_says_is_named_with_both_lengths(tmp_path):
    path = _riff_fixed(write_wav(tmp_path / "BAD.wav", voiced(10.0, 16000), 16000), 0.2)
    with pytest.raises(ItemError) as err:  # was a bare RuntimeError from the stdlib wave module
        load_audio(path)
    assert str(err.value) == (f"{path}: WAV header says 10.0 s of audio but the file holds 0.200 s "
                              "(truncated?)")
    with pytest.raises(ItemError, match=r"WAV header says 10\.0 s"):
        next(audio_windows(path, 1.0))


def _wav_bytes(seconds: float) -> bytes:
    """A 16 kHz mono 16-bit WAV file's bytes (a 44-byte header, then the samples)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.round(voiced(seconds, 16000) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


_HEADER = _wav_bytes(0.3)


@settings(max_examples=200, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 43), st.integers(0, 255)), max_size=4),
       keep=st.integers(0, len(_HEADER)))
def test_any_damaged_wav_header_is_an_item_error_or_decodes(edits, keep):
    """Bytes of the 44-byte header changed and the file cut anywhere: a one-line ItemError naming
    the file, never another exception or an empty message."""
    data = bytearray(_HEADER)
    for offset, value in edits:
        data[offset] = value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "damaged.wav"
        path.write_bytes(bytes(data[:keep]))
        for read in (lambda: load_audio(path, min_peak=0.0), lambda: list(audio_windows(path, 0.1))):
            try:
                read()
            except ItemError as err:
                message = str(err)
                assert message.startswith(f"{path}: ") and len(message) > len(f"{path}: ") + 5, message
                assert "\n" not in message


# --- long recordings: a length cap, and windows streamed from disk ------------------------------

def test_load_audio_stops_past_max_seconds(tmp_path):
    path = write_wav(tmp_path / "long.wav", voiced(3.0, 16000), 16000)
    assert load_audio(path, max_seconds=3.5).size == 48000
    with pytest.raises(ItemError, match=r"long\.wav: more than 2 s of audio, too long for one item"):
        load_audio(path, max_seconds=2.0)
    with pytest.raises(ValueError, match="max_seconds"):
        load_audio(path, max_seconds=0)


@pytest.mark.parametrize(("seconds", "spans"), [
    (10.3, [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10.3)]),  # a 0.3 s rest is merged into the last window
    (11.2, [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 11.2)]),  # a 1.2 s rest is a window of its own
    (0.7, [(0, 0.7)]),
])
def test_windows_cover_the_recording_in_order(tmp_path, seconds, spans):
    signal = np.stack([voiced(seconds, 16000), voiced(seconds, 16000, f0=300)])  # [2, S]
    path = write_wav(tmp_path / "w.wav", signal, 16000)
    windows = list(audio_windows(path, 2.0))
    assert [(w.start / w.rate, (w.start + w.samples.shape[1]) / w.rate) for w in windows] == spans
    assert all(w.rate == 16000 and w.samples.shape[0] == 2 and w.samples.dtype == np.float32 for w in windows)
    joined = np.concatenate([w.samples for w in windows], axis=1)
    np.testing.assert_array_equal(joined, load_audio(path, sample_rate=None, mono=False))


def test_windows_hold_a_bounded_number_of_samples(tmp_path):
    """Streaming a 5-minute WAV in 2 s windows allocates a few windows' worth of samples, not
    the 19 MB of the whole recording (numpy allocations, traced)."""
    path = write_wav(tmp_path / "five_minutes.wav", np.tile(voiced(10.0, 16000), 30), 16000)
    next(audio_windows(path, 2.0))  # PyAV's lazy imports happen outside the trace
    tracemalloc.start()
    try:
        count = sum(1 for _ in audio_windows(path, 2.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 150
    assert peak < 8 * 2.0 * 16000 * 4, peak  # a few 2 s windows (measured 0.5 MB; whole file: 19.2 MB)


def test_audio_seconds_reads_the_length_from_the_header(tmp_path):
    wav = write_wav(tmp_path / "a.wav", voiced(2.5, 16000), 16000)
    assert audio_seconds(wav) == pytest.approx(2.5)
    video = write_video(tmp_path / "v.mp4", 1.0, voiced(1.0, 16000))
    assert audio_seconds(video) == pytest.approx(1.0, abs=0.1)
    assert audio_seconds(_text_as_wav(tmp_path)) is None
    assert audio_seconds(write_video(tmp_path / "mute.mp4", 0.5)) is None


def test_a_window_written_back_reads_as_the_same_samples(tmp_path):
    x = np.stack([voiced(0.5, 22050), voiced(0.5, 22050, f0=90)]).astype(np.float32)
    path = write_window(tmp_path / "w.wav", x, 22050)
    np.testing.assert_allclose(load_audio(path, sample_rate=None, mono=False), x, atol=1 / 32768)
