"""``scenesense.streaming``: conversations predicted utterance by utterance with past-only context.

Tiny runs are trained once per session on MELD-format CSVs featurised by the real
``word_vectors`` extractor (a 6-d vector file written here), so raw transcripts can be predicted.
The label of an utterance is the cue word of the utterance before it (the first: its own), so
the trained context matters. The reference is ``api.evaluate`` on the same CSV: whole dialogues
through ``scenesense.runs.batching`` and ``Trainer.predict``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from scenesense import api
from scenesense.config import build_config
from scenesense.datasets.meld_text import extract_meld_split
from scenesense.data.meld import read_meld_csv
from scenesense.data.validation import DataFormatError
from scenesense.extraction.word_vectors import WordVectorTextExtractor
from scenesense.predict import NO_CONTEXT_WARNING, predict
from scenesense.streaming import ConversationStream, predict_conversation, read_conversation_csv

CUES = {"happy": "joy", "angry": "anger", "sad": "sadness", "fine": "neutral"}
FILLERS = ("well", "okay", "so", "hmm", "really")
SENTIMENT = {"joy": "positive", "anger": "negative", "sadness": "negative", "neutral": "neutral"}
MELD_HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
               "Season", "Episode", "StartTime", "EndTime"]
# the conversation predicted in the tests: (Dialogue_ID, Utterance_ID, speaker, text); utterance ids
# have gaps, "Guest" is a speaker the runs never saw and "" an unnamed one
CONVERSATION = [
    (7, 0, "Joey", "happy well"), (7, 1, "Rachel", "angry so"), (7, 3, "Guest", "sad okay"),
    (7, 4, "Joey", "happy hmm"), (7, 6, "", "angry really"), (7, 9, "Rachel", "fine well"),
    (7, 10, "Guest", "sad so"),
    (2, 1, "Rachel", "sad hmm"), (2, 2, "Joey", "fine okay"), (2, 5, "Rachel", "happy so"),
    (40, 3, "Monica", "angry well"),
]


def _write_vectors(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = [(w, np.eye(6)[i] * 2) for i, w in enumerate(CUES)]
    rows += [(w, rng.normal(scale=0.3, size=6)) for w in FILLERS]
    path.write_text("".join(f"{w} {' '.join(f'{v:.4f}' for v in vec)}\n" for w, vec in rows))
    return path


def _write_meld_csv(path: Path, rows: list[tuple[int, int, str, str]]) -> Path:
    """A MELD-format CSV; each row's emotion is the previous cue of its dialogue (the first: its own)."""
    previous: dict[int, str] = {}
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(MELD_HEADER)
        for n, (dia, utt, speaker, text) in enumerate(rows):
            cue = CUES[text.split()[0]]
            emotion = previous.get(dia, cue)
            previous[dia] = cue
            writer.writerow([n, text, speaker, emotion, SENTIMENT[emotion], dia, utt, 1, 1, "0:00:01,000",
                             "0:00:02,000"])
    return path


def _random_dialogues(rng: np.random.Generator, n: int) -> list[tuple[int, int, str, str]]:
    rows = []
    for d in range(n):
        for k in range(int(rng.integers(3, 8))):
            text = f"{rng.choice(list(CUES))} {rng.choice(FILLERS)}"
            rows.append((d, k, ("Joey", "Rachel", "Monica")[int(rng.integers(0, 3))], text))
    return rows


_SESSION: dict[str, Any] = {}  # built once even when another test module imports the fixtures


def _once(key: str, build: Any) -> Any:  # noqa: ANN401
    if key not in _SESSION:
        _SESSION[key] = build()
    return _SESSION[key]


def _build_store(root: Path) -> Path:
    extractor = WordVectorTextExtractor(model_path=str(_write_vectors(root / "vectors.txt")))
    rng = np.random.default_rng(1)
    for split, n in (("train", 30), ("dev", 6)):
        extract_meld_split(_write_meld_csv(root / f"{split}.csv", _random_dialogues(rng, n)),
                           root / "store" / f"{split}.h5", extractor=extractor)
    return root / "store"


def _train(store: Path, run_dir: Path, context: dict[str, Any]) -> Path:
    model = {"out_dim": 8, "head_hidden_dim": 8, "head_dropout": 0.0,
             "context": {"name": "transformer", "d_model": 8, "num_heads": 2, "dropout": 0.0, **context}}
    cfg = build_config({"name": run_dir.name, "modalities": ["text"],
                        "data": {"dataset": "store", "root": str(store), "speaker_min_utterances": 1,
                                 "features": {"text": "text_sentence"}},
                        "model": model,
                        "trainer": {"epochs": 8, "lr": 0.01, "batch_size": 4, "patience": 8,
                                    "progress": False}})
    return api.train(cfg, run_dir).run_dir


def _without_context(run: Path, dest: Path) -> Path:
    """A copy of ``run`` with its utterance model only: a finished run without context, no training."""
    shutil.copytree(run, dest)
    cfg = yaml.safe_load((dest / "config.yaml").read_text())
    cfg["model"]["context"] = None
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg))
    state = torch.load(dest / "checkpoint.pt", weights_only=True)
    weights = {k.removeprefix("utterance."): v for k, v in state["model"].items()
               if k.startswith("utterance.")}
    torch.save({**state, "model": weights}, dest / "checkpoint.pt")
    return dest


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    """``past``: unbounded past context, two layers, speaker relation + embedding;
    ``window``: window 1, one layer (receptive field 1); ``alone``: ``window`` without its context."""
    def build() -> dict[str, Path]:
        root = tmp_path_factory.mktemp("streaming")
        store = _build_store(root)
        window = _train(store, root / "window", {"window": 1, "num_layers": 1})
        return {"past": _train(store, root / "past", {"window": 0, "num_layers": 2, "speaker": "both"}),
                "window": window, "alone": _without_context(window, root / "alone")}
    return _once("runs", build)


@pytest.fixture
def conversation(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))  # where evaluate caches the CSV's store
    return _write_meld_csv(tmp_path / "conversation.csv", CONVERSATION)


def _evaluated(run: Path, csv_path: Path, out: Path) -> dict[str, dict[str, float]]:
    """Probabilities per id from ``api.evaluate`` (whole dialogues at once)."""
    scored = api.evaluate(run, csv=csv_path, output_dir=out)
    rows = csv.DictReader(scored.predictions_csv.open())
    return {r["id"]: {k[5:]: float(v) for k, v in r.items() if k.startswith("prob_")} for r in rows}


def _assert_same(got: dict[str, dict[str, float]], want: dict[str, dict[str, float]], abs: float) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=abs), key


def _ids(rows: list[tuple[int, int, str, str]]) -> list[str]:
    return [f"dia{d}_utt{u}" for d, u, _, _ in rows]


# ---------------------------------------------------------------------------------------------
# the reader


def test_read_conversation_csv_keys_and_optional_labels(tmp_path, conversation):
    utterances = read_conversation_csv(conversation)
    published = read_meld_csv(conversation)  # the same ids, speakers and texts as the MELD reader
    assert [(u.id, u.dialogue, u.speaker, u.text) for u in utterances] == \
        [(u.id, u.dialogue_key, u.speaker, u.text) for u in published]
    bare = tmp_path / "bare.csv"  # no labels, no other MELD columns, a BOM and cp1252 punctuation
    bare.write_bytes("\ufeffDialogue_ID,Utterance_ID,Speaker,Utterance\r\n3,0,Joey,It\x92s fine\r\n"
                     .encode("utf-8"))
    (u,) = read_conversation_csv(bare)
    assert (u.id, u.dialogue, u.utterance_id, u.speaker) == ("dia3_utt0", "dia3", 0, "Joey")
    assert u.text == "It’s fine"
    bad = tmp_path / "bad.csv"
    bad.write_text("Dialogue_ID,Utterance_ID,Speaker\n1,0,Joey\n")
    with pytest.raises(DataFormatError, match=r"missing column\(s\) \['Utterance'\]"):
        read_conversation_csv(bad)
    bad.write_text("Dialogue_ID,Utterance_ID,Speaker,Utterance\n1,0,Joey,hi\n1,0,Ross,hello\n")
    with pytest.raises(DataFormatError, match="line 3: duplicate utterance dia1_utt0, first at line 2"):
        read_conversation_csv(bad)


# ---------------------------------------------------------------------------------------------
# streaming equals evaluating whole dialogues


def test_stream_equals_evaluate_on_whole_dialogues(runs, conversation, tmp_path, caplog):
    want = _evaluated(runs["past"], conversation, tmp_path / "eval")
    stream = ConversationStream(runs["past"])
    assert stream.receptive_field is None
    got = {}
    for dia, utt, speaker, text in CONVERSATION:  # dialogue by dialogue, one utterance at a time
        item = stream.add({"id": f"dia{dia}_utt{utt}", "text": text}, dialogue=f"dia{dia}", speaker=speaker)
        assert item.ok and item.used == ("text",)
        assert item.label == max(item.probabilities, key=item.probabilities.get)
        got[item.id] = item.probabilities
    assert list(got) == _ids(CONVERSATION)
    _assert_same(got, want, abs=1e-5)
    # the context matters: each utterance alone (plain predict) is predicted differently ...
    caplog.clear()
    alone = predict(runs["past"], [{"id": i, "text": t} for i, (_, _, _, t) in zip(got, CONVERSATION)])
    assert NO_CONTEXT_WARNING in alone.warnings
    assert any(r.levelname == "WARNING" and r.getMessage() == NO_CONTEXT_WARNING for r in caplog.records)
    moved = [max(abs(p - got[it.id][c]) for c, p in it.probabilities.items()) for it in alone.items]
    assert max(moved) > 0.05, moved


def test_bounded_window_truncates_the_history_exactly(runs, conversation, tmp_path):
    want = _evaluated(runs["window"], conversation, tmp_path / "eval")
    stream = ConversationStream(runs["window"])
    assert stream.receptive_field == 1
    lengths = []
    for dia, utt, speaker, text in CONVERSATION[:7]:  # dialogue 7: 7 utterances
        item = stream.add(text, dialogue="d7", speaker=speaker)
        assert item.probabilities == pytest.approx(want[f"dia{dia}_utt{utt}"], abs=1e-5)
        lengths.append(len(stream._dialogues["d7"].fused))
    assert lengths == [1, 2, 2, 2, 2, 2, 2]  # itself and one earlier utterance, never more
    assert stream._dialogues["d7"].positions == [5, 6]
    # without speaker embeddings, an utterance with no past is predicted as it is alone
    alone = predict(runs["window"], [CONVERSATION[0][3], CONVERSATION[1][3]]).items
    assert alone[0].probabilities == pytest.approx(want["dia7_utt0"], abs=1e-5)
    assert alone[1].probabilities != pytest.approx(want["dia7_utt1"], abs=1e-3)


def test_out_of_order_csv_gives_the_same_predictions_in_row_order(runs, conversation, tmp_path):
    rows = [CONVERSATION[i] for i in np.random.default_rng(5).permutation(len(CONVERSATION))]
    shuffled = _write_meld_csv(tmp_path / "shuffled.csv", rows)  # labels differ; predictions ignore them
    assert [u.id for u in read_conversation_csv(shuffled)] == _ids(rows)  # really out of order
    result = predict_conversation(runs["past"], shuffled)
    assert [it.id for it in result.items] == _ids(rows)
    sorted_result = {it.id: it.probabilities for it in predict_conversation(runs["past"], conversation).items}
    for it in result.items:
        assert it.probabilities == pytest.approx(sorted_result[it.id], abs=1e-6)
    want = _evaluated(runs["past"], conversation, tmp_path / "eval")
    _assert_same({it.id: it.probabilities for it in result.items}, want, abs=1e-5)


def test_item_mappings_with_dialogue_and_speaker_keys(runs, conversation):
    by_csv = {it.id: it for it in predict_conversation(runs["past"], conversation).items}
    items = [{"id": f"dia{d}_utt{u}", "dialogue": f"x{d}", "speaker": s, "text": t}
             for d, u, s, t in CONVERSATION]
    interleaved = items[7:] + items[:7]  # dialogues may interleave; each keeps its own order
    interleaved.insert(3, {"dialogue": "x7", "text": ""})  # an empty text: an error row
    result = predict_conversation(runs["past"], interleaved)
    assert [it.id for it in result.items] == [i.get("id", "3") for i in interleaved]
    failed = result.items[3]
    assert not failed.ok and failed.error == "no modality could be extracted: text: empty text"
    for it in result.items:
        if it.ok:
            assert it.probabilities == pytest.approx(by_csv[it.id].probabilities, abs=1e-5)


def test_speakers_and_failed_items_in_the_history(runs):
    stream = ConversationStream(runs["past"])
    first = stream.add({"text": "angry so", "speaker": "Rachel", "dialogue": "d"})
    failed = stream.add({"text": "   "}, dialogue="d", speaker="Joey")
    assert not failed.ok and failed.probabilities == {}
    assert stream._dialogues["d"].positions == [0] and stream._dialogues["d"].said == 2
    guest = stream.add("happy well", dialogue="d", speaker="Guest")  # unseen: id 0, still its own turn
    assert (first.id, failed.id, guest.id) == ("0", "1", "2")
    assert stream._dialogues["d"].positions == [0, 2]
    assert stream._dialogues["d"].speakers == ["Rachel", "Guest"]
    # the same two utterances as a fresh dialogue (no gap): the distance differs, so does the prediction
    stream.reset("d")
    stream.add("angry so", dialogue="d", speaker="Rachel")
    close = stream.add("happy well", dialogue="d", speaker="Guest")
    assert close.probabilities != pytest.approx(guest.probabilities, abs=1e-6)
    stream.reset()
    unseen = stream.add("happy well", dialogue="d", speaker="Guest")  # a first utterance again
    unnamed = stream.add("happy well", dialogue="e")
    assert unseen.probabilities == pytest.approx(unnamed.probabilities, abs=1e-6)  # both speaker id 0


def test_run_without_context_predicts_like_predict(runs, conversation):
    result = predict_conversation(runs["alone"], conversation)
    plain = predict(runs["alone"], [{"id": f"dia{d}_utt{u}", "text": t} for d, u, _, t in CONVERSATION])
    assert NO_CONTEXT_WARNING not in plain.warnings
    _assert_same({it.id: it.probabilities for it in result.items},
                 {it.id: it.probabilities for it in plain.items}, abs=1e-6)
    assert ConversationStream(runs["alone"]).receptive_field == 0


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c["model"]["context"]["params"].update(direction="both"), r"direction 'both', i\.e\. later"),
    (lambda c: c["data"].update(speaker_norm=True), r"data\.speaker_norm"),
])
def test_runs_that_need_later_utterances_are_refused(runs, tmp_path, edit, message):
    run = Path(shutil.copytree(runs["past"], tmp_path / "run"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    edit(cfg)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=message):
        ConversationStream(run)


def test_runs_with_context_inside_their_text_features_are_refused(runs, tmp_path):
    run = Path(shutil.copytree(runs["alone"], tmp_path / "run"))
    spec = json.loads((run / "model_spec.json").read_text())
    spec["provenance"]["features"]["text"]["dialogue_context"] = {"past": 2, "future": 0, "speakers": False}
    (run / "model_spec.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="none of the run's modalities can be extracted.*carry dialogue context"):
        ConversationStream(run)


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_stream_prints_one_line_per_input_line(runs, conversation, monkeypatch, capsys):
    from scenesense.cli import main

    lines = [json.dumps({"dialogue": f"dia{d}", "speaker": s, "text": t, "id": f"dia{d}_utt{u}"})
             for d, u, s, t in CONVERSATION[:4]]
    lines[2:2] = ["", "{not json", json.dumps({"dialogue": "dia7", "text": "sad", "colour": "red"})]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["predict", str(runs["past"]), "--stream", "--top-k", "2"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 6  # one per non-blank input line, in order
    assert [o.get("id") for o in out] == ["dia7_utt0", "dia7_utt1", None, None, "dia7_utt3", "dia7_utt4"]
    assert out[2] == {"line": 4, "ok": False, "error": out[2]["error"]}
    assert out[2]["error"].startswith("line 4: Expecting property name")
    assert "line 5: item 2: unknown input key(s) ['colour']" in out[3]["error"]
    want = {it.id: it.probabilities for it in predict_conversation(runs["past"], conversation).items}
    for o in (out[0], out[1], out[4], out[5]):
        assert o["ok"] and o["dialogue"] == "dia7" and len(o["top"]) == 2
        assert o["probabilities"] == pytest.approx(want[o["id"]], abs=1e-5)
    assert out[4]["speaker"] == "Guest"


def test_cli_conversation_writes_the_outputs(runs, conversation, tmp_path, capsys):
    from scenesense.cli import main

    out = tmp_path / "p.csv"
    argv = ["predict", str(runs["past"]), "--conversation", str(conversation), "--json", "--out", str(out)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == len(CONVERSATION) and printed["predictions_csv"] == str(out)
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == _ids(CONVERSATION)
    want = {it.id: it for it in predict_conversation(runs["past"], conversation).items}
    for row in rows:
        assert row["label"] == want[row["id"]].label
        assert float(row["prob_joy"]) == pytest.approx(want[row["id"]].probabilities["joy"], abs=1e-6)
    assert main(["predict", str(runs["past"]), "hello", "--conversation", str(conversation)]) == 2
    assert "--conversation reads the whole input; drop INPUT" in capsys.readouterr().err
