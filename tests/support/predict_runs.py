"""The runs of the predict tests, each trained on a store built here (see ``tests/test_predict.py``):
run A (concat; loud/soft WAV statistics, MiniLM sentence vectors, a table-converted vision set),
run B (cross-attention; audio statistics, MiniLM tokens, face sequences extracted from real mp4s) and
the LLD run (eGeMAPS low-level descriptors of high and low voice-like tones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scenesense import api
from scenesense.config import build_config
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.extraction import EXTRACTORS
from scenesense.extraction.text import MiniLMTextExtractor
from tests.support.extractors import FakeFaces, FakeWavStats
from tests.support.media import voice, write_samples, write_video, write_wav

SENTENCES = ["I can't believe you did that!", "Okay, see you tomorrow.", "That is wonderful news.",
             "Leave me alone.", "Where did you put the keys?", "We lost everything."]

TINY = {"out_dim": 8, "head_hidden_dim": 8,
        "sequence_encoder": {"name": "transformer", "params": {"num_layers": 1, "num_heads": 2, "d_model": 8,
                                                               "dim_feedforward": 16}}}



def train_run(store: Path, run_dir: Path, features: dict[str, str], model: dict[str, Any],
           trainer: dict[str, Any], modalities: tuple[str, ...] = ("audio", "text", "vision")) -> Path:
    cfg = build_config({"name": run_dir.name, "modalities": list(modalities),
                        "data": {"dataset": "store", "root": str(store), "features": features},
                        "model": {**TINY, **model},
                        "trainer": {"batch_size": 8, "progress": False, **trainer}})
    return api.train(cfg, run_dir).run_dir



def build_run_a(root: Path, minilm: MiniLMTextExtractor) -> Path:
    audio_ext, rng = FakeWavStats(), np.random.default_rng(0)
    sentence = minilm.extract(SENTENCES).sentence
    specs = {
        "audio": FeatureSpec("audio", "vector", 4, provenance=audio_ext.provenance()),
        "text_sentence": FeatureSpec("text", "vector", 384, provenance=minilm.provenance()),
        "vision": FeatureSpec("vision", "vector", 5,
                              provenance={"table": "au.csv", "recipe": "AUs averaged"}),
    }
    for split, n in (("train", 48), ("dev", 12)):
        labels = [i % 2 for i in range(n)]  # 0 calm, 1 angry
        amplitudes = [rng.uniform(0.5, 0.9) if y else rng.uniform(0.02, 0.08) for y in labels]
        wavs = [write_wav(root / "wav" / f"{split}{i}.wav", a, freq=rng.uniform(150, 400))
                for i, a in enumerate(amplitudes)]
        with StoreWriter(root / "store" / f"{split}.h5", label_space=LabelSpace(("calm", "angry")),
                         features=specs, source={"dataset": "test_predict_a"}) as w:
            w.append([f"{split}{i}" for i in range(n)], labels, {
                "audio": [audio_ext.extract_one(str(p))["stats"] for p in wavs],
                "text_sentence": [sentence[i % len(SENTENCES)] for i in range(n)],
                "vision": list(rng.normal(size=(n, 5)).astype(np.float32)),
            })
    # a "test" split of items missing audio and/or vision, as the reference for partial inputs
    test_wav = write_wav(root / "wav" / "test0.wav", 0.6)
    with StoreWriter(root / "store" / "test.h5", label_space=LabelSpace(("calm", "angry")),
                     features=specs, source={"dataset": "test_predict_a"}) as w:
        w.append(["test0", "test1", "test2"], [1, 0, 0], {
            "audio": [audio_ext.extract_one(str(test_wav))["stats"], None, None],
            "text_sentence": list(sentence[:3]), "vision": [None, None, None]})
    return train_run(root / "store", root / "run", {"text": "text_sentence"},
                  {"modality_dropout": 0.3, "modality_dropout_mode": "sample"},
                  {"epochs": 15, "lr": 3e-3, "patience": 15})



def build_run_b(root: Path, minilm: MiniLMTextExtractor) -> tuple[Path, list[dict[str, str]]]:
    audio_ext, faces_ext, rng = FakeWavStats(scale=2.0), FakeFaces(), np.random.default_rng(1)
    specs = {
        "audio": FeatureSpec("audio", "vector", 4, provenance=audio_ext.provenance()),
        "text": FeatureSpec("text", "sequence", 384, max_len=50, provenance=minilm.provenance()),
        "text_sentence": FeatureSpec("text", "vector", 384, provenance=minilm.provenance()),
        "vision": FeatureSpec("vision", "sequence", 3, max_len=16, provenance=faces_ext.provenance()),
    }
    space = LabelSpace(("joy", "neutral", "sadness"))
    n = 12  # train: random features in the extractors' shapes
    with StoreWriter(root / "store" / "train.h5", label_space=space, features=specs,
                     source={"dataset": "test_predict_b"}) as w:
        w.append([f"train{i}" for i in range(n)], [i % 3 for i in range(n)], {
            "audio": list(rng.uniform(0, 1, size=(n, 4)).astype(np.float32)),
            "text": [rng.normal(size=(3 + i % 5, 384)).astype(np.float32) for i in range(n)],
            "text_sentence": list(rng.normal(size=(n, 384)).astype(np.float32)),
            "vision": [rng.uniform(0, 1, size=(2 + i % 4, 3)).astype(np.float32) for i in range(n)],
        })
    videos = [write_video(root / "media" / f"dev{i}.mp4", 60 + 40 * i, 0.2 + 0.2 * i, frames=3 + i)
              for i in range(4)]
    items = [{"id": f"dev{i}", "video": str(v), "text": SENTENCES[i]} for i, v in enumerate(videos)]
    text = minilm.extract([it["text"] for it in items])
    with StoreWriter(root / "store" / "dev.h5", label_space=space, features=specs,
                     source={"dataset": "test_predict_b"}) as w:
        w.append([it["id"] for it in items], [0, 1, 2, 0], {
            "audio": [audio_ext.extract_one(it["video"])["stats"] for it in items],
            "text": text.tokens, "text_sentence": list(text.sentence),
            "vision": [faces_ext.extract_one(it["video"])["faces"] for it in items],
        })
    run = train_run(root / "store", root / "run", {"text": "text"},
                 {"fusion": {"name": "cross_attention", "params": {"num_heads": 2}}},
                 {"epochs": 2, "lr": 1e-3})
    return run, items



def build_lld_run(root: Path) -> Path:
    extractor, rng = EXTRACTORS.create("egemaps_lld"), np.random.default_rng(5)
    specs = {"audio": FeatureSpec("audio", "sequence", 25, max_len=400, provenance=extractor.provenance())}
    for split, n in (("train", 24), ("dev", 8)):
        labels = [i % 2 for i in range(n)]  # 0 low, 1 high
        f0s = [rng.uniform(240, 300) if y else rng.uniform(100, 130) for y in labels]
        wavs = [write_samples(root / "wav" / f"{split}{i}.wav",
                              voice(rng.uniform(0.8, 1.5), f0, rng.uniform(0.1, 0.5)))
                for i, f0 in enumerate(f0s)]
        features = [r["lld"] for r in extractor.extract_batch([str(p) for p in wavs])]
        with StoreWriter(root / "store" / f"{split}.h5", label_space=LabelSpace(("low", "high")),
                         features=specs, source={"dataset": "test_predict_lld"}) as w:
            w.append([f"{split}{i}" for i in range(n)], labels, {"audio": features})
    return train_run(root / "store", root / "run", {}, {"standardize": True},
                  {"epochs": 12, "lr": 3e-3, "patience": 12}, modalities=("audio",))
