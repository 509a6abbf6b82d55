"""``scenesense.predict``: raw texts, WAVs, videos and manifests through a trained run.

Two tiny runs are trained once per session on stores built here:

* run A (concat): audio = WAV statistics from a fake extractor (the label is the loudness),
  text = real MiniLM sentence vectors, vision = a table-converted feature set (no extractor);
* run B (cross-attention): audio statistics, MiniLM token sequences and per-frame "face"
  features from a fake video extractor; its dev split is extracted from real media files, so
  predicting those files must reproduce the run's own dev predictions;
* the LLD run (like the RAVDESS audio run: openSMILE eGeMAPS low-level descriptors with
  ``max_frames`` unset, a transformer encoder): label ``high`` = a high-pitched voice-like tone,
  ``low`` = a low one; for long media and truncated WAVs through the real audio path.

The runs are the session fixtures ``run_a``, ``run_b`` and ``lld_run`` of ``tests/conftest.py``
(built by ``tests/support/predict_runs.py``); the fake extractors (``tests/support/extractors.py``)
are registered in ``EXTRACTORS`` only while a test runs (``fakes``). Video files are written with
PyAV (tests needing them skip without it).
"""

from __future__ import annotations

import csv
import json
import shutil
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import scenesense.predict.windows as predict_module
from scenesense import api
from scenesense.config import build_config
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.extraction import EXTRACTORS
from scenesense.extraction.base import OutputSpec
from scenesense.predict import (
    PredictionResult,
    predict,
    read_manifest,
    route_input,
    write_predictions,
)
from scenesense.predict.model import _attention_per_item, _weights_per_item
from scenesense.predict.plan import _pick_output
from tests.support.extractors import FakeWavStats
from tests.support.media import truncate_wav, voice, write_samples, write_video, write_wav
from tests.support.predict_runs import SENTENCES, TINY, train_run


def _by_id(result: PredictionResult) -> dict[str, Any]:
    return {item.id: item for item in result.items}


# ---------------------------------------------------------------------------------------------
# routing and manifests (no run needed)


def test_route_input_tells_texts_from_files(tmp_path):
    wav, clip, notes = write_wav(tmp_path / "a.wav", 0.5), tmp_path / "c.MP4", tmp_path / "notes.txt"
    clip.write_bytes(b"x")
    notes.write_text("hi")
    assert route_input(str(wav)) == "audio"
    assert route_input(str(clip)) == "video"  # suffixes are case-insensitive
    assert route_input(str(notes)) == "file"  # exists, but no extractor reads it
    assert route_input(str(tmp_path)) == "file"  # a folder
    assert route_input("missing.wav") == "audio"  # looks like a file: reported, not read as text
    assert route_input("clips/take1") == "file"
    for text in ("I love it.", "Really?", "missing.wav is a file name", "", "   ", "a" * 5000, "e.g."):
        assert route_input(text) == "text", text


def test_read_manifest_resolves_paths_and_checks_columns(tmp_path):
    (tmp_path / "m").mkdir()
    manifest = tmp_path / "m" / "list.csv"
    manifest.write_text("ID,Text,audio,video,label,media\nu1,hello there,a.wav,,joy,\n,,,clip.mp4,x,\n"
                        "\n,,,,,\nu9,,,,x,\nu10,,,,,/abs/both.mp4\n", encoding="utf-8")
    rows = read_manifest(manifest)
    assert rows == [{"id": "u1", "text": "hello there", "audio": str(tmp_path / "m" / "a.wav")},
                    {"id": "1", "video": str(tmp_path / "m" / "clip.mp4")},
                    {"id": "u9", "text": ""},  # kept, to be reported as an empty text
                    {"id": "u10", "media": "/abs/both.mp4"}]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\nx,joy\n")
    with pytest.raises(ValueError, match=r"bad\.csv: manifest needs a 'text', 'audio', 'video' or 'media'"):
        read_manifest(bad)
    bad.write_text("id,text\nx,a\nx,b\n")
    with pytest.raises(ValueError, match=r"duplicate ids in the manifest: \['x'\]"):
        read_manifest(bad)
    bad.write_bytes(b"id,text\nx,\xff\xfe\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_manifest(bad)
    with pytest.raises(FileNotFoundError, match="nope.csv: no such manifest file"):
        read_manifest(tmp_path / "nope.csv")


def test_pick_output_uses_the_recorded_output_else_a_unique_shape_match():
    outputs = {"a": OutputSpec("vector", 4), "b": OutputSpec("vector", 4), "seq": OutputSpec("sequence", 4)}
    assert _pick_output(outputs, {}, "sequence", 4) == ("seq", None)
    assert _pick_output(outputs, {"output": "b"}, "vector", 4) == ("b", None)
    assert _pick_output(outputs, {"extraction": {"output": "a"}}, "vector", 4) == ("a", None)  # pipeline
    name, why = _pick_output(outputs, {}, "vector", 4)
    assert name is None and "several outputs match" in why and "records no 'output'" in why
    name, why = _pick_output(outputs, {}, "vector", 8)
    assert name is None and "no vector output of 8 dims" in why
    name, why = _pick_output(outputs, {"output": "seq"}, "vector", 4)
    assert name is None and "recorded output 'seq' is not a vector of 4 dims" in why


def test_weights_and_attention_summaries():
    weights = _weights_per_item({"text": torch.tensor([0.25, 1.0]),
                                 "audio": torch.tensor([[0.5, 1.5], [0.0, 1.0]])})  # [B] and [B, D]
    assert weights == [{"audio": 1.0, "text": 0.25}, {"audio": 0.5, "text": 1.0}]
    assert _weights_per_item(None) is None and _weights_per_item({}) is None
    maps = torch.tensor([[[0.5, 0.5, 0.0], [0.1, 0.9, 0.0], [0.3, 0.3, 0.4]],   # item 0: 2 real q, 2 real k
                         [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # item 1: no real query
    masks = {"text": torch.tensor([[True, True, False], [False, False, False]]),
             "vision": torch.tensor([[True, True, False], [True, True, True]])}
    summary = _attention_per_item({"text->vision": maps}, masks)
    assert summary[0]["text->vision"] == pytest.approx([0.3, 0.7])
    assert summary[1] == {}  # text missing for item 1
    # maps whose length the input masks do not describe count every step
    assert _attention_per_item({"text->vision": maps}, {})[1]["text->vision"] == pytest.approx([1 / 3] * 3)
    # step weights of one modality keep its real steps
    steps = _attention_per_item({"vision:steps": torch.tensor([[[0.25, 0.75, 0.0]], [[0.2, 0.3, 0.5]]])}, masks)
    assert steps[0]["vision:steps"] == pytest.approx([0.25, 0.75])
    assert steps[1]["vision:steps"] == pytest.approx([0.2, 0.3, 0.5])


# ---------------------------------------------------------------------------------------------
# run A: text, WAV, a table-converted modality, failures


def test_text_string_alone(run_a, fakes):
    result = predict(run_a, ["That is wonderful news."])
    (item,) = result.items
    assert item.ok and item.used == ("text",) and item.missing == ("audio", "vision")
    assert set(item.probabilities) == {"calm", "angry"}
    assert sum(item.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert item.label == max(item.probabilities, key=item.probabilities.get)
    assert result.features["text"] == {"extractor": "minilm", "output": "sentence", "input_kind": "text",
                                       "params": {"model_path": None, "max_tokens": 50}}
    assert result.features["audio"]["output"] == "stats"  # the vector output, not the frames sequence
    (warning,) = result.warnings  # vision came from a table: missing, with a warning naming it
    assert warning.startswith("vision: ") and "not by a registered extractor" in warning
    assert "treated as missing" in result.features["vision"]["unavailable"]


def test_partial_inputs_match_evaluate_on_a_store_with_missing_modalities(run_a, fakes):
    scored = api.evaluate(run_a, store=run_a.parent / "store", split="test")
    saved = {row["id"]: row for row in csv.DictReader(scored.predictions_csv.open())}
    wav = run_a.parent / "wav" / "test0.wav"
    result = predict(run_a, [{"id": "test0", "text": SENTENCES[0], "audio": wav},
                             {"id": "test1", "text": SENTENCES[1]}, {"id": "test2", "text": SENTENCES[2]}])
    assert [i.used for i in result.items] == [("audio", "text"), ("text",), ("text",)]
    for item in result.items:
        want = {c: float(saved[item.id][f"prob_{c}"]) for c in ("calm", "angry")}
        assert item.probabilities == pytest.approx(want, abs=1e-5), item.id


def test_wav_loudness_decides_the_label(run_a, fakes, tmp_path):
    loud, soft = write_wav(tmp_path / "loud.wav", 0.8, 300), write_wav(tmp_path / "soft.wav", 0.04, 200)
    result = predict(run_a, [str(loud), {"audio": soft, "id": "s"}])
    by_id = _by_id(result)
    assert [i.used for i in result.items] == [("audio",), ("audio",)]
    assert by_id["0"].label == "angry" and by_id["0"].probabilities["angry"] > 0.7
    assert by_id["s"].label == "calm" and by_id["s"].probabilities["calm"] > 0.7
    assert by_id["0"].modality_weights is None and by_id["0"].attention is None  # concat has neither


def test_failures_are_reported_per_item_and_spare_the_batch(run_a, fakes, tmp_path):
    good_wav, good_text = write_wav(tmp_path / "ok.wav", 0.7), "Where did you put the keys?"
    silent = write_wav(tmp_path / "silent.wav", 0.0)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....not a wav")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    batch = [
        {"id": "good", "audio": good_wav, "text": good_text},
        {"id": "silent", "audio": silent},
        {"id": "broken", "audio": broken},
        {"id": "empty", "text": "  \n"},
        {"id": "notes", "audio": notes},
        str(notes),
        {"id": "nofile", "audio": tmp_path / "nothere.wav"},
        {"id": "partial", "audio": silent, "text": good_text},
    ]
    by_id = _by_id(predict(run_a, batch, batch_size=3))  # failures spread over several chunks
    expected = {
        "silent": "audio: " + f"{silent}: silent audio (every sample is zero)",
        "broken": f"audio: {broken}: unreadable audio (",
        "empty": "text: empty text",
        "notes": f"audio: {notes}: unsupported format '.txt' for audio input",
        "5": f"input: {notes}: unsupported format '.txt' (audio: .wav",
        "nofile": f"audio: {tmp_path / 'nothere.wav'}: no such file",
    }
    for item_id, start in expected.items():
        item = by_id[item_id]
        assert not item.ok and item.probabilities == {} and item.label is None
        assert item.error.startswith("no modality could be extracted: " + start), item.error
        assert "\n" not in item.error
    assert by_id["partial"].ok and by_id["partial"].used == ("text",)
    assert by_id["partial"].problems == (f"audio: {silent}: silent audio (every sample is zero)",)
    alone = predict(run_a, [batch[0]]).items[0]
    assert by_id["good"].used == ("audio", "text") and by_id["good"].problems == ()
    assert by_id["good"].probabilities == pytest.approx(alone.probabilities, abs=1e-6)


def test_inputs_the_run_cannot_use(run_a, fakes, tmp_path):
    with pytest.raises(ValueError, match=r"item 0: unknown input key\(s\) \['smell'\]"):
        predict(run_a, [{"smell": "x"}])
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a video")
    result = predict(run_a, [{"id": "v", "video": clip}, {"id": "nothing"}])
    by_id = _by_id(result)
    # run A reads audio from a video file's track: this one has none, so the item fails cleanly
    assert not by_id["v"].ok and f"audio: {clip}: " in by_id["v"].error
    assert by_id["nothing"].error == ("no modality could be extracted: input: no text, audio, video or media "
                                      "given")


def test_regression_run_predicts_a_value(tmp_path, fakes):
    audio_ext, rng = FakeWavStats(), np.random.default_rng(2)
    specs = {"audio": FeatureSpec("audio", "vector", 4, provenance=audio_ext.provenance())}
    for split, n in (("train", 32), ("dev", 8)):
        amplitudes = rng.uniform(0.05, 0.9, size=n)
        wavs = [write_wav(tmp_path / "wav" / f"{split}{i}.wav", a) for i, a in enumerate(amplitudes)]
        with StoreWriter(tmp_path / "store" / f"{split}.h5", features=specs, source={"dataset": "reg"},
                         label_space=LabelSpace(("arousal",), "regression")) as w:
            w.append([f"{split}{i}" for i in range(n)], (2 * amplitudes - 1).tolist(),
                     {"audio": [audio_ext.extract_one(str(p))["stats"] for p in wavs]})
    run = train_run(tmp_path / "store", tmp_path / "run", {}, {}, {"epochs": 12, "lr": 1e-2, "patience": 12},
                 modalities=("audio",))
    loud, soft = write_wav(tmp_path / "loud.wav", 0.85), write_wav(tmp_path / "soft.wav", 0.1)
    result = predict(run, [str(loud), str(soft), "some text"])
    assert result.task == "regression" and result.label_names == ("arousal",)
    high, low, text = result.items
    assert high.label is None and high.probabilities == {}
    assert high.value > low.value + 0.3, (high.value, low.value)  # measured: 0.567 vs -0.182
    assert not text.ok and "feed none of the run's extractable modalities (audio)" in text.error
    assert "text inputs are ignored: no modality of this run is extracted from text" in result.warnings
    rows = list(csv.DictReader(write_predictions(result, tmp_path / "p.csv").open()))
    assert list(rows[0])[:3] == ["id", "ok", "value"] and float(rows[0]["value"]) == high.value


def test_not_a_run(tmp_path, fakes):
    with pytest.raises(FileNotFoundError, match=r"not a finished run \(missing config\.yaml\)"):
        predict(tmp_path, ["hello"])
    with pytest.raises(ValueError, match="nothing to predict"):
        predict(tmp_path, [])


def test_provenance_fallbacks_and_warnings(run_a, fakes, tmp_path):
    run = Path(shutil.copytree(run_a, tmp_path / "run"))
    spec_file = run / "model_spec.json"
    spec = json.loads(spec_file.read_text())
    # an older spec without provenance: read from the training store it names
    spec_file.write_text(json.dumps({k: v for k, v in spec.items() if k != "provenance"}))
    assert predict(run, ["hello"]).features == predict(run_a, ["hello"]).features
    # ... and the store gone too: no modality can be rebuilt
    spec_file.write_text(json.dumps({**{k: v for k, v in spec.items() if k != "provenance"},
                                     "store": str(tmp_path / "gone")}))
    with pytest.raises(ValueError, match="none of the run's modalities can be extracted from raw inputs"):
        predict(run, ["hello"])
    # what the extraction pipeline records beside the extractor's provenance is no difference
    spec["provenance"]["features"]["text"]["extraction"] = {"output": "sentence", "split": "train"}
    spec_file.write_text(json.dumps(spec))
    result = predict(run, ["hello"])
    assert result.features["text"]["output"] == "sentence" and len(result.warnings) == 1  # vision's
    # a different extractor version than the run's is a warning, not an error
    spec["provenance"]["features"]["text"]["versions"]["torch"] = "0.0.1"
    spec_file.write_text(json.dumps(spec))
    result = predict(run, ["hello"])
    assert result.items[0].ok
    assert any(w.startswith("text: extractor 'minilm' differs") and "['versions']" in w
               for w in result.warnings)
    # an extractor this installation does not register
    spec["provenance"]["features"]["text"]["extractor"] = "minilm_v9"
    spec_file.write_text(json.dumps(spec))
    result = predict(run, ["hello", str(write_wav(tmp_path / "b.wav", 0.5))])
    assert result.features["text"]["unavailable"].startswith(
        "text: the run's text features were made by extractor 'minilm_v9', which is not registered")
    assert not result.items[0].ok and result.items[1].used == ("audio",)
    spec["provenance"]["features"]["text"]["extractor"] = "minilm"
    # a recorded output that does not match the training features: audio is unavailable, and
    # an item with only audio gets an error row saying so
    spec["provenance"]["features"]["audio"]["output"] = "frames"
    spec_file.write_text(json.dumps(spec))
    result = predict(run, [str(write_wav(tmp_path / "a.wav", 0.5)), "hello"], transcribe="never")
    assert "recorded output 'frames' is not a vector of 4 dims" in result.features["audio"]["unavailable"]
    assert "audio inputs are ignored: no modality of this run is extracted from audio" in result.warnings
    assert result.items[0].error == ("no modality could be extracted: its inputs (audio) feed none of the "
                                     "run's extractable modalities (text)")
    assert result.items[1].ok
    # text features with dialogue context in the input cannot come from single items
    spec["provenance"]["features"]["audio"].pop("output")
    spec["provenance"]["features"]["text"]["dialogue_context"] = {"past": 2, "future": 0, "speakers": True}
    spec_file.write_text(json.dumps(spec))
    result = predict(run, ["hello", str(write_wav(tmp_path / "a.wav", 0.5))])
    assert result.features["text"]["unavailable"].startswith("text: the run's text features carry dialogue context")
    assert "scenesense evaluate" in result.features["text"]["unavailable"]
    assert not result.items[0].ok and result.items[1].used == ("audio",)


def test_csv_output(run_a, fakes, tmp_path):
    result = predict(run_a, ["That is wonderful news.", {"id": "bad", "text": ""}])
    path = write_predictions(result, tmp_path / "out" / "p.csv")
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["id", "ok", "label", "prob_calm", "prob_angry", "used", "missing", "problems",
                             "error"]
    assert rows[0]["ok"] == "1" and rows[0]["used"] == "text" and rows[0]["missing"] == "audio+vision"
    assert float(rows[0]["prob_calm"]) == result.items[0].probabilities["calm"]  # full precision
    assert rows[1]["ok"] == "0" and rows[1]["prob_calm"] == "" and "empty text" in rows[1]["error"]
    assert not list(path.parent.glob(".*tmp"))
    as_json = json.loads(json.dumps(result.to_dict(top_k=1)))
    assert as_json["n"] == 2 and as_json["n_ok"] == 1
    assert as_json["items"][0]["top"][0][0] == result.items[0].label


def test_manifest_path(run_a, fakes, tmp_path):
    write_wav(tmp_path / "media" / "a.wav", 0.8)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,text,audio\nx,Leave me alone.,media/a.wav\ny,,media/missing.wav\n")
    by_id = _by_id(predict(run_a, manifest))
    assert by_id["x"].ok and by_id["x"].used == ("audio", "text")
    assert by_id["x"].inputs == {"text": "Leave me alone.", "audio": str(tmp_path / "media" / "a.wav")}
    assert by_id["y"].error.endswith(f"{tmp_path / 'media' / 'missing.wav'}: no such file")


# ---------------------------------------------------------------------------------------------
# run B: videos feed vision and audio; raw media reproduce the run's own dev predictions


def test_raw_media_reproduce_the_runs_dev_predictions(run_b, fakes):
    run, items = run_b
    result = predict(run, items)
    saved = {row["id"]: row for row in csv.DictReader((run / "predictions.csv").open())}
    assert [i.id for i in result.items] == list(saved)
    for item in result.items:
        assert item.used == ("audio", "text", "vision") and item.problems == ()
        want = {c: float(saved[item.id][f"prob_{c}"]) for c in ("joy", "neutral", "sadness")}
        assert item.probabilities == pytest.approx(want, abs=1e-5)
        assert item.label == saved[item.id]["pred_name"]
        assert set(item.attention) == {"text->vision", "vision->text"}
        assert len(item.attention["vision->text"]) >= 3  # one weight per real text token
        for name, weights in item.attention.items():
            assert sum(weights) == pytest.approx(1.0, abs=1e-5), name
    frames = {f"dev{i}": 3 + i for i in range(len(items))}  # every frame of these videos has a "face"
    assert {i.id: len(i.attention["text->vision"]) for i in result.items} == frames  # one per frame


def test_video_without_face_or_sound(run_b, fakes, tmp_path):
    run, items = run_b
    dark = write_video(tmp_path / "dark.mp4", 0, 0.5)
    dark_mute = write_video(tmp_path / "dark_mute.mp4", 0, None)
    face_mute = write_video(tmp_path / "face_mute.mp4", 150, None)
    wav = write_wav(tmp_path / "voice.wav", 0.5)
    result = predict(run, [str(dark), str(dark_mute), {"video": face_mute, "audio": wav}, items[0],
                           {"video": wav}, {"media": items[1]["video"]}, {"media": wav}],
                     transcribe="never")  # no speech in these clips (tests/cli/test_predict_transcribe.py)
    dark_item, mute_item, own_audio, good, wav_as_video, media, wav_as_media = result.items
    assert dark_item.ok and dark_item.used == ("audio",)
    assert dark_item.problems == (f"vision: {dark}: no face found in any of its 6 frames",)
    assert dark_item.attention == {}  # no text or vision steps, so no attention map
    assert not mute_item.ok
    assert f"audio: {dark_mute}: no audio track" in mute_item.error
    assert f"vision: {dark_mute}: no face found" in mute_item.error
    assert own_audio.ok and own_audio.used == ("audio", "vision")  # a separate audio file wins
    assert good.ok and good.used == ("audio", "text", "vision")
    assert not wav_as_video.ok and "unsupported format '.wav' for video input" in wav_as_video.error
    assert media.ok and media.used == ("audio", "vision")  # a media file feeds both, like a video
    assert not wav_as_media.ok and "unsupported format '.wav' for media input" in wav_as_media.error


def test_speaker_normalised_run_predicts_like_evaluate(tmp_path, fakes, monkeypatch):
    """A run trained with data.speaker_norm normalises the given items per speaker, as evaluate does."""
    audio_ext, rng = FakeWavStats(), np.random.default_rng(3)
    specs = {"audio": FeatureSpec("audio", "vector", 4, provenance=audio_ext.provenance())}
    wavs: dict[str, Path] = {}
    speakers: dict[str, str] = {}
    for split, n in (("train", 40), ("dev", 20)):
        amplitudes = rng.uniform(0.05, 0.9, size=n)
        ids = [f"{split}{i}" for i in range(n)]
        for i, a in zip(ids, amplitudes):
            wavs[i] = write_wav(tmp_path / "wav" / f"{i}.wav", a)
            speakers[i] = f"spk{int(i[-1]) % 2}"
        with StoreWriter(tmp_path / "store" / f"{split}.h5", features=specs, source={"dataset": "spk"},
                         label_space=LabelSpace(("soft", "loud"))) as w:
            w.append(ids, (amplitudes > 0.5).astype(int).tolist(),
                     {"audio": [audio_ext.extract_one(str(wavs[i]))["stats"] for i in ids]},
                     speakers=[speakers[i] for i in ids])
    cfg = build_config({"modalities": ["audio"], "data": {"dataset": "store", "root": str(tmp_path / "store"),
                                                          "speaker_norm": True},
                        "model": {**TINY}, "trainer": {"epochs": 3, "batch_size": 8, "progress": False}})
    run = api.train(cfg, tmp_path / "run").run_dir
    evaluated = {r["id"]: float(r["prob_loud"]) for r in csv.DictReader((run / "predictions.csv").open())}
    dev = [i for i in wavs if i.startswith("dev")]
    result = predict(run, [{"id": i, "audio": str(wavs[i]), "speaker": speakers[i]} for i in dev])
    assert {r.id: r.probabilities["loud"] for r in result.items} == pytest.approx(evaluated, abs=1e-5)
    assert not any("per speaker" in w for w in result.warnings)  # 10 items per speaker: no fallback
    alone = predict(run, [str(wavs[dev[0]])])
    assert any("normalised with the statistics of all 1 items" in w for w in alone.warnings)
    # long audio: every window is normalised with the statistics of the first batch of windows
    calls: list[int] = []
    statistics = predict_module.chunk_statistics

    def statistics_spy(samples: Any, plans: Any) -> Any:  # noqa: ANN401
        calls.append(len(samples))
        return statistics(samples, plans)

    monkeypatch.setattr(predict_module, "chunk_statistics", statistics_spy)
    loud = np.round(0.8 * 32767 * np.sin(2 * np.pi * 220 * np.arange(8 * 8000) / 8000)).astype("<i2")
    long_wav = tmp_path / "long.wav"
    with wave.open(str(long_wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(loud.tobytes())
    (item,) = predict(run, [str(long_wav)], window_s=0.25, batch_size=4).items
    assert item.ok and len(item.timeline) == 32 and all(w.ok for w in item.timeline)
    assert calls == [10]  # one batch of at least MIN_SPEAKER_ITEMS windows, then reused


# ---------------------------------------------------------------------------------------------
# unexpected extractor failures stay with their item


class _Exploding(FakeWavStats):
    """FakeWavStats that fails, with an empty message, on files named ``boom*``."""

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        if Path(item).name.startswith("boom"):
            raise RuntimeError
        return super().extract_one(item)


def test_an_unexpected_extractor_exception_is_that_items_problem(run_a, fakes, tmp_path, monkeypatch):
    monkeypatch.setitem(EXTRACTORS._items, "test_wav_stats", _Exploding)
    good, boom = write_wav(tmp_path / "good.wav", 0.8), write_wav(tmp_path / "boom.wav", 0.8)
    result = predict(run_a, [str(good), str(boom), {"audio": str(boom), "text": SENTENCES[0]}],
                     transcribe="never")
    fine, failed, partial = result.items
    assert fine.ok and fine.label == "angry"
    assert not failed.ok
    assert failed.error == (f"no modality could be extracted: audio: {boom}: extractor 'test_wav_stats' "
                            "failed (RuntimeError)")
    assert partial.ok and partial.used == ("text",) and "RuntimeError" in partial.problems[0]


# ---------------------------------------------------------------------------------------------
# the real audio path (openSMILE LLD run): truncated WAVs and long media in windows


def test_truncated_wav_is_a_per_item_problem_saying_what_is_wrong(lld_run, tmp_path):
    good = write_samples(tmp_path / "good.wav", voice(1.0, 270))
    bad = truncate_wav(write_samples(tmp_path / "bad.wav", voice(10.0, 270)), 0.2)
    result = predict(lld_run, [str(good), str(bad)])
    assert result.items[0].ok and result.items[0].label == "high"
    assert result.items[1].error == (f"no modality could be extracted: audio: {bad}: WAV header says "
                                     "10.0 s of audio but the file holds 0.200 s (truncated?)")


def _segments(seconds: float, f0s: Sequence[float]) -> np.ndarray:
    """Voice of ``f0s[0]`` for ``seconds``, then ``f0s[1]``, ...: ``[S]`` at 16 kHz."""
    return np.concatenate([voice(seconds, f0) for f0 in f0s])


def test_long_audio_is_predicted_in_windows_in_bounded_memory(lld_run, tmp_path, monkeypatch):
    """A 2-minute WAV is read 4 s at a time and the encoder sees at most one window of frames."""
    from scenesense.encoders.transformer import TransformerSequenceEncoder
    from scenesense.extraction import audio

    path = write_samples(tmp_path / "long.wav", _segments(32.0, [110, 270, 110, 270]))  # 128 s
    decoded: list[int] = []  # samples of every window streamed, and of every file an extractor loads
    steps: list[int] = []  # sequence lengths the encoder is given
    stream = getattr(predict_module, "audio_windows", None)
    load, forward = audio.load_audio, TransformerSequenceEncoder.forward

    def windows_spy(*args: Any, **kwargs: Any) -> Any:
        for window in stream(*args, **kwargs):
            decoded.append(window.samples.size)
            yield window

    def load_spy(*args: Any, **kwargs: Any) -> np.ndarray:
        signal = load(*args, **kwargs)
        decoded.append(signal.size)
        return signal

    def forward_spy(self: TransformerSequenceEncoder, x: torch.Tensor, mask: Any = None) -> Any:
        steps.append(x.shape[1])
        assert x.shape[1] <= 600, f"the encoder was given {x.shape[1]} steps"  # before the O(T^2) attention
        return forward(self, x, mask)

    monkeypatch.setattr(predict_module, "audio_windows", windows_spy, raising=False)
    monkeypatch.setattr(audio, "load_audio", load_spy)
    monkeypatch.setattr(TransformerSequenceEncoder, "forward", forward_spy)
    (item,) = predict(lld_run, [str(path)], batch_size=8).items
    assert max(decoded) <= 1.5 * 4 * 16000 and len(decoded) == 2 * 32  # 32 windows streamed, 32 loaded
    assert steps and max(steps) <= 4 * 100  # LLD frames of one 4 s window
    assert item.ok and item.used == ("audio",) and len(item.timeline) == 32
    assert [(w.start, w.end) for w in item.timeline] == [(4.0 * k, 4.0 * k + 4) for k in range(32)]
    expected = ["low"] * 8 + ["high"] * 8 + ["low"] * 8 + ["high"] * 8
    assert sum(w.label == e for w, e in zip(item.timeline, expected)) >= 30
    mean = {c: np.mean([w.probabilities[c] for w in item.timeline]) for c in ("low", "high")}
    assert item.probabilities == pytest.approx(mean, abs=1e-9)
    assert item.label == max(mean, key=mean.get)


def test_windows_keep_the_tail_report_silence_and_skip_other_inputs(lld_run, tmp_path):
    samples = np.concatenate([voice(8.0, 270), np.zeros(4 * 16000), voice(5.0, 110)])  # 17 s
    path = write_samples(tmp_path / "talk.wav", samples)
    (item,) = predict(lld_run, [{"id": "talk", "audio": str(path), "text": "hello"}], window_s=4.0).items
    assert [(w.start, w.end) for w in item.timeline] == [(0, 4), (4, 8), (8, 12), (12, 17)]  # 1 s tail merged
    silent = item.timeline[2]
    assert not silent.ok and silent.label is None
    assert silent.error.startswith(f"audio: {path} [0:08.0-0:12.0]: silent")
    assert [w.label for w in item.timeline] == ["high", "high", None, "low"]
    assert item.ok and item.probabilities["high"] == pytest.approx(
        np.mean([w.probabilities["high"] for w in item.timeline if w.ok]))
    assert f"audio: 1 of 4 windows of {path} could not be predicted (first: audio: {path} [0:08.0-0:12.0]" \
           in item.problems[-1]
    as_json = json.loads(json.dumps(item.to_dict()))
    assert [w["ok"] for w in as_json["timeline"]] == [True, True, False, True]
    rows = list(csv.DictReader(write_predictions(predict(lld_run, [str(path)]), tmp_path / "p.csv").open()))
    assert [(r["start"], r["ok"]) for r in rows] == [("", "1"), ("0.0", "1"), ("4.0", "1"), ("8.0", "0"),
                                                     ("12.0", "1")]
    short_wav = write_samples(tmp_path / "short.wav", voice(7.9, 270))
    short = predict(lld_run, [str(short_wav)], window_s=4.0).items[0]
    assert short.ok and short.timeline == ()  # up to two windows long: one clip, as trained


def test_a_truncated_long_wav_is_refused_before_any_window(lld_run, tmp_path):
    path = truncate_wav(write_samples(tmp_path / "cut.wav", voice(20.0, 270)), 12.5)
    (item,) = predict(lld_run, [str(path)]).items
    assert not item.ok and item.timeline == ()  # a truncated WAV is refused before any window is read
    assert "WAV header says 20.0 s of audio but the file holds 12.5 s (truncated?)" in item.error


def test_window_length_must_be_positive(lld_run):
    with pytest.raises(ValueError, match="window_s must be > 0"):
        predict(lld_run, ["x.wav"], window_s=0)
