"""``load_audio``: every container and codec PyAV decodes, resampling and downmix, and one clear
ItemError (naming the file) per failure mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from audio_fixtures import dominant_frequency, voiced, write_audio, write_video, write_wav  # noqa: E402

from scenesense.extraction.audio_io import SILENCE_PEAK, load_audio  # noqa: E402
from scenesense.extraction.base import ItemError  # noqa: E402

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
                            "truncated WAV"),
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
