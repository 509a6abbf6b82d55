"""``scenesense serve``'s HTTP API, over real HTTP (httpx) against a live server on 127.0.0.1.

Run A labels a clip ``angry`` when it is loud and ``calm`` when it is soft (its audio feature is the
loudness); its text is MiniLM sentence vectors. See ``tests/serve/conftest.py`` for the server.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import scenesense
from tests.serve.conftest import MAX_SECONDS, MAX_UPLOAD, WINDOW_S, LiveServer, require_serve
from tests.support.media import voice, write_samples, write_video, write_wav

require_serve()
import httpx  # noqa: E402 - after the skip


def _post(live: LiveServer, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{live.url}/predict", timeout=60, **kwargs)  # type: ignore[arg-type]


def _upload(live: LiveServer, name: str, data: bytes, **fields: str) -> httpx.Response:
    return _post(live, files={"file": (name, data)}, data=fields)


def _refused(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    for word in words:
        assert word in detail, detail
    return detail


@pytest.fixture
def clean(live: LiveServer):
    """The uploads' temporary folders are gone after the test's requests, whatever they were."""
    yield live
    assert list(live.uploads.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# health, OpenAPI, the page


def test_health_names_the_run_its_classes_and_limits(live):
    health = httpx.get(f"{live.url}/health").json()
    assert health["status"] == "ok" and health["run"] == live.run_dir.name
    assert health["labels"] == ["calm", "angry"] and health["task"] == "classification"
    assert health["modalities"] == ["audio", "text", "vision"] and health["inputs"] == ["audio", "text"]
    assert health["version"] == scenesense.__version__ and health["context"] is False
    assert health["limits"]["max_seconds"] == MAX_SECONDS and health["limits"]["max_text_chars"] == 10_000
    assert isinstance(health["limits"]["max_utterances"], int)
    assert (health["transcribe"], health["segmenter"]) == ("never", "fixed")
    assert health["limits"]["max_upload_mb"] == pytest.approx(MAX_UPLOAD / 2**20, abs=1e-3)


def test_openapi_describes_predict_json_and_uploads(live):
    spec = httpx.get(f"{live.url}/openapi.json").json()
    assert {"/predict", "/health"} <= set(spec["paths"])
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/PredictRequest"}
    assert body["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    schemas = spec["components"]["schemas"]
    assert {"PredictRequest", "Utterance", "Prediction", "ConversationPrediction", "Health"} <= set(schemas)
    assert set(schemas["PredictRequest"]["properties"]) == {"text", "conversation"}
    assert {"413", "415", "422"} <= set(spec["paths"]["/predict"]["post"]["responses"])


def test_the_page_is_served_with_a_strict_content_security_policy(live):
    page = httpx.get(f"{live.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert 'id="predict-text"' in page.text and 'id="file"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: works offline


# ---------------------------------------------------------------------------------------------
# texts and conversations


def test_text_prediction_equals_the_python_api(live, fakes):
    sentence = "That is wonderful news."
    answer = _post(live, json={"text": sentence})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    expected = scenesense.load(live.run_dir).predict([sentence]).items[0]
    assert got["input"] == "text" and got["label"] == expected.label and got["ok"] is True
    assert got["probabilities"].keys() == expected.probabilities.keys()
    for name, p in expected.probabilities.items():
        assert got["probabilities"][name] == pytest.approx(p, abs=1e-6)
    assert got["used"] == ["text"] and got["missing"] == ["audio", "vision"]
    assert got["top"][0][0] == expected.label and "inputs" not in got


@pytest.mark.parametrize("text", ["/etc/passwd", "../../x.wav", "checkpoint.pt"])
def test_a_text_that_looks_like_a_path_is_classified_as_text(live, text):
    got = _post(live, json={"text": text}).json()
    assert got["input"] == "text" and got["ok"] is True and got["used"] == ["text"]
    assert not any("no such file" in p for p in got["problems"])


@pytest.mark.parametrize(("body", "words"), [
    ({"text": ""}, ["text", "empty"]),
    ({"text": "   \n"}, ["text", "empty"]),
    ({"txt": "hello"}, ["txt", "Extra inputs are not permitted"]),
    ({"text": "hello", "top_k": 3}, ["top_k"]),
    ({}, ["give either 'text' or 'conversation'"]),
    ({"text": "hi", "conversation": [{"text": "hi"}]}, ["give either"]),
    ({"conversation": []}, ["no utterances"]),
    ({"conversation": [{"speaker": "Ann", "text": "hi", "audio": "/etc/x.wav"}]}, ["audio", "not permitted"]),
    ({"text": "x" * 10_001}, ["more than the 10000"]),
    ({"text": 3}, ["text"]),
    ({"conversation": [{"text": "hi"}] * 501}, ["501 utterances, more than the 500"]),
    ({"conversation": [{"speaker": "Ann"}]}, ["conversation.0.text", "Field required"]),
])
def test_invalid_json_requests_get_422_with_a_message(live, body, words):
    response = _post(live, json=body)
    _refused(response, 422, *words)
    assert isinstance(response.json()["errors"], list)


def test_malformed_json_and_other_content_types_are_refused(live):
    _refused(_post(live, content=b"{not json", headers={"Content-Type": "application/json"}), 422, "JSON")
    _refused(_post(live, content=b"hello", headers={"Content-Type": "text/plain"}), 415, "text/plain")
    _refused(_post(live, content=b"x", headers={"Content-Type": "multipart/form-data"}), 422, "boundary")
    big = b'{"text": "' + b"a" * (3 * 2**20) + b'"}'
    _refused(_post(live, content=big, headers={"Content-Type": "application/json"}), 413, "MiB")


def test_conversation_gets_one_prediction_per_utterance(live, fakes):
    turns = [{"speaker": "Ann", "text": "We lost everything."}, {"speaker": "Bob", "text": "That is wonderful news."},
             {"text": "Leave me alone."}]
    got = _post(live, json={"conversation": turns}).json()
    assert got["input"] == "conversation" and got["context"] is False
    expected = scenesense.load(live.run_dir).predict([t["text"] for t in turns]).items
    assert [u["speaker"] for u in got["utterances"]] == ["Ann", "Bob", ""]
    for utterance, item in zip(got["utterances"], expected, strict=True):
        assert utterance["label"] == item.label
        assert utterance["probabilities"]["angry"] == pytest.approx(item.probabilities["angry"], abs=1e-6)


def test_concurrent_requests_each_get_their_own_answer(live):
    texts = ["We lost everything.", "That is wonderful news.", "Leave me alone.", "Okay, see you tomorrow."] * 2
    alone = {t: _post(live, json={"text": t}).json()["probabilities"] for t in set(texts)}
    answers: dict[int, dict] = {}

    def ask(i: int) -> None:
        answers[i] = _post(live, json={"text": texts[i]}).json()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for i, text in enumerate(texts):
        for name, p in alone[text].items():
            assert answers[i]["probabilities"][name] == pytest.approx(p, abs=1e-6)


def test_requests_never_load_the_run_or_its_extractors_again(live, monkeypatch, tmp_path):
    import scenesense.predict.predictor
    import scenesense.streaming
    from scenesense.extraction import EXTRACTORS

    def refuse(*args, **kwargs):
        raise AssertionError("loaded again")

    for module in (scenesense.predict.predictor, scenesense.streaming):
        monkeypatch.setattr(module, "load_run", refuse)
    monkeypatch.setattr(EXTRACTORS, "create", refuse)
    assert _post(live, json={"text": "Leave me alone."}).status_code == 200
    assert _post(live, json={"conversation": [{"text": "Leave me alone."}]}).status_code == 200
    assert _upload(live, "a.wav", write_wav(tmp_path / "a.wav", 0.8).read_bytes()).status_code == 200


# ---------------------------------------------------------------------------------------------
# uploads


def test_wav_upload_is_predicted_from_its_loudness(clean, tmp_path):
    loud = _upload(clean, "loud.wav", write_wav(tmp_path / "a.wav", 0.8).read_bytes())
    soft = _upload(clean, "soft.wav", write_wav(tmp_path / "b.wav", 0.03).read_bytes())
    assert loud.status_code == 200 and soft.status_code == 200, (loud.text, soft.text)
    assert loud.json()["label"] == "angry" and soft.json()["label"] == "calm"
    got = loud.json()
    assert got["input"] == "audio" and got["file"] == "loud.wav" and got["seconds"] == pytest.approx(0.25)
    assert "audio" in got["used"]
    assert [(s["start"], s["end"], s["label"]) for s in got["timeline"]] == [(0.0, pytest.approx(0.25), "angry")]


def test_wav_upload_with_its_transcript_uses_both(clean, tmp_path):
    got = _upload(clean, "loud.wav", write_wav(tmp_path / "a.wav", 0.8).read_bytes(), text="Leave me alone.").json()
    assert got["used"] == ["audio", "text"] and got["label"] == "angry"


def test_long_clip_gets_a_timeline_of_windows(clean, tmp_path):
    quiet, loud = 0.1 * voice(1.0, 200.0), 3 * voice(1.0, 200.0)  # peaks 0.03 and 0.9
    wav = write_samples(tmp_path / "long.wav", np.concatenate([quiet, loud]))
    got = _upload(clean, "long.wav", wav.read_bytes()).json()
    timeline = got["timeline"]
    assert len(timeline) == 4 and timeline[0]["start"] == 0.0
    assert [s["end"] for s in timeline] == pytest.approx([WINDOW_S * (k + 1) for k in range(4)])
    assert [s["label"] for s in timeline] == ["calm", "calm", "angry", "angry"]
    assert sum(timeline[0]["probabilities"].values()) == pytest.approx(1.0)


def test_mp4_upload_is_predicted_from_its_sound(clean, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 120, amplitude=0.8)
    got = _upload(clean, "clip.mp4", clip.read_bytes())
    assert got.status_code == 200, got.text
    assert got.json()["input"] == "video" and "audio" in got.json()["used"] and got.json()["label"] == "angry"


def test_oversized_upload_gets_413_and_leaves_nothing(clean):
    detail = _refused(_upload(clean, "big.wav", b"\0" * (MAX_UPLOAD + 1)), 413, "big.wav", "MiB")
    assert "larger than" in detail
    _refused(_upload(clean, "huge.wav", b"\0" * (4 * MAX_UPLOAD)), 413, "MiB")  # refused by its Content-Length


def test_oversized_upload_without_content_length_is_stopped_while_streaming(clean):
    def chunks():
        head = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n\r\n"
        yield head
        for _ in range(40):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    response = _post(clean, content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    _refused(response, 413, "big.wav")


def test_garbage_named_wav_gets_415(clean):
    _refused(_upload(clean, "noise.wav", np.random.default_rng(0).bytes(20_000)), 415, "noise.wav",
             "not a readable audio or video file")
    _refused(_upload(clean, "text.mp4", b"just some text, not a video\n" * 100), 415, "text.mp4")


def test_too_long_clip_gets_413(clean, tmp_path):
    wav = write_samples(tmp_path / "long.wav", voice(MAX_SECONDS + 1, 200.0))
    _refused(_upload(clean, "long.wav", wav.read_bytes()), 413, "long.wav", "lasts 9.0 s", f"{MAX_SECONDS:g} s")


def test_path_like_file_names_are_only_shown_never_used(clean, tmp_path):
    data = write_wav(tmp_path / "a.wav", 0.8).read_bytes()
    for name in ("../../x.wav", "..\\..\\x.wav", "/etc/x.wav", "C:\\temp\\x.wav"):
        got = _upload(clean, name, data)
        assert got.status_code == 200, got.text
        assert got.json()["file"] == "x.wav"
    for folder in (clean.uploads, clean.uploads.parent, clean.uploads.parent.parent, Path("/etc")):
        assert not (folder / "x.wav").exists()


def test_no_server_path_reaches_the_client(clean, tmp_path):
    silent = write_samples(tmp_path / "silent.wav", np.zeros(4000))
    detail = _refused(_upload(clean, "quiet.wav", silent.read_bytes()), 422, "quiet.wav", "silent")
    assert str(clean.uploads) not in detail and "upload.wav" not in detail


@pytest.mark.parametrize(("files", "data", "status", "words"), [
    ({"file": ("notes.txt", b"hello")}, {}, 415, ["notes.txt", "unsupported file type '.txt'"]),
    ({"file": ("clip", b"hello")}, {}, 415, ["(no suffix)"]),
    ({"file": ("empty.wav", b"")}, {}, 422, ["empty.wav", "empty"]),
    ({"file": ("a.wav", b"x"), "other": ("b.wav", b"y")}, {}, 422, ["unknown form field 'other'"]),
    ({"file": ("a.wav", b"x")}, {"speaker": "Ann"}, 422, ["unknown form field 'speaker'"]),
    ({"text": (None, "x" * 10_001)}, {}, 422, ["longer than 10000"]),
    ({"text": (None, "a"), "file": ("a.wav", b"x")}, {"text": "b"}, 422, ["more than one 'text' field"]),
])
def test_malformed_uploads_get_4xx_with_a_message(clean, files, data, status, words):
    _refused(_post(clean, files=files, data=data), status, *words)


def test_form_without_a_file_is_refused_or_read_as_text(clean):
    _refused(_post(clean, content=b"--b--\r\n", headers={"Content-Type": "multipart/form-data; boundary=b"}), 422,
             "no 'file' field")
    got = _post(clean, files={"text": (None, "Leave me alone.")})
    assert got.status_code == 200 and got.json()["input"] == "text"
