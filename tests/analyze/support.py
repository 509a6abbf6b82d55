"""Stand-ins and media for the analyze tests: an energy VAD, a scripted transcriber, tone clips, runs.

`EnergyVAD` scores a frame 1 when its RMS is above a threshold (so tone bursts are "speech");
`ScriptedTranscriber` returns, for every burst of sound in the audio it is given, the next text of
its script, its words spread over the burst; `write_tones` writes a WAV of tone bursts with known
spans; `build_audio_text_run` trains a tiny run on audio statistics (loud = ``angry``, soft =
``calm``) and stub sentence vectors of the transcript.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter
from scenesense.extraction.transcribe import Segment, Transcriber, Transcript, Word
from tests.support.extractors import FakeFaces, FakeWavStats, StubTextExtractor
from tests.support.media import mux_grey_mp4, write_samples, write_wav
from tests.support.predict_runs import train_run

RATE = 16000


class EnergyVAD:
    """Speech probability of a 512-sample frame: 1 when its RMS exceeds ``threshold``, else 0."""

    def __init__(self, threshold: float = 0.01) -> None:
        self.threshold = threshold
        self.calls = 0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        self.calls += 1
        return (np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) > self.threshold).astype(np.float32)

    def reset(self) -> None:
        pass


def bursts(samples: np.ndarray, rate: int = RATE, min_gap_s: float = 0.25) -> list[tuple[float, float]]:
    """``(start, end)`` seconds of the stretches of sound (20 ms RMS > 0.01) apart by >= ``min_gap_s``."""
    hop = rate // 50
    n = samples.size // hop
    loud = np.sqrt((samples[:n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1)) > 0.01
    out: list[list[float]] = []
    for i in np.flatnonzero(loud):
        start, end = i * hop / rate, (i + 1) * hop / rate
        if out and start - out[-1][1] < min_gap_s:
            out[-1][1] = end
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


class ScriptedTranscriber(Transcriber):
    """Each burst of sound in the audio given gets the next text of ``script`` (cycled); its words are
    spread evenly over the burst. Records every call's length in seconds (``calls``)."""

    def __init__(self, script: Sequence[str]) -> None:
        self.script = list(script)
        self.said = 0
        self.calls: list[float] = []

    def transcribe(self, samples: np.ndarray, sample_rate: int = RATE) -> Transcript:
        self.calls.append(samples.size / sample_rate)
        segments = []
        for start, end in bursts(np.asarray(samples, np.float32), sample_rate, min_gap_s=0.45):
            text = self.script[self.said % len(self.script)]
            self.said += 1
            words = text.split()
            edges = np.linspace(start, end, len(words) + 1)
            segments.append(Segment(start, end, text, tuple(Word(float(a), float(b), w, 1.0)
                                                            for a, b, w in zip(edges[:-1], edges[1:], words))))
        return Transcript(" ".join(s.text for s in segments), "en", tuple(segments))

    def provenance(self) -> dict[str, Any]:
        return {"transcriber": "scripted", "params": {}}


def write_tones(path: Path, spans: Sequence[tuple[float, float, float]], seconds: float,
                freq: float = 220.0, rate: int = RATE) -> Path:
    """A 16-bit mono WAV of ``seconds``: silence, and a tone of amplitude ``a`` over each ``(start, end, a)``."""
    x = np.zeros(round(seconds * rate), np.float32)
    for start, end, amplitude in spans:
        a, b = round(start * rate), round(end * rate)
        x[a:b] = amplitude * np.sin(2 * np.pi * freq * np.arange(b - a) / rate)
    return write_samples(path, x, rate)


def build_audio_text_run(root: Path) -> Path:
    """Audio ``stats`` (FakeWavStats: loud = angry, soft = calm) + stub ``sentence`` vectors of the
    text; the test registers ``test_wav_stats`` and ``stub`` (fixtures ``fakes``, ``stub_text_extractor``)."""
    audio, text, rng = FakeWavStats(), StubTextExtractor(), np.random.default_rng(0)
    specs = {"audio": FeatureSpec("audio", "vector", 4, provenance={**audio.provenance(), "output": "stats"}),
             "text": FeatureSpec("text", "vector", 4, provenance={**text.provenance(), "output": "sentence"})}
    sentences = ["I can not believe it", "fine", "see you tomorrow then", "why did you do that"]
    for split, n in (("train", 40), ("dev", 12)):
        labels = [i % 2 for i in range(n)]  # 0 calm, 1 angry
        wavs = [write_wav(root / "wav" / f"{split}{i}.wav", rng.uniform(0.4, 0.8) if y else rng.uniform(0.02, 0.06),
                          freq=220.0, seconds=rng.uniform(0.5, 1.5), rate=RATE) for i, y in enumerate(labels)]
        texts = [sentences[i // 2 % len(sentences)] for i in range(n)]  # the same texts in both classes
        with StoreWriter(root / "store" / f"{split}.h5", label_space=LabelSpace(("calm", "angry")),
                         features=specs, source={"dataset": "analyze_test"}) as w:
            w.append([f"{split}{i}" for i in range(n)], labels, {
                "audio": [audio.extract_one(str(p))["stats"] for p in wavs],
                "text": list(text.extract(texts).sentence)})
    return train_run(root / "store", root / "run", {}, {"modality_dropout": 0.2, "modality_dropout_mode": "sample"},
                     {"epochs": 25, "lr": 1e-2, "patience": 25}, modalities=("audio", "text"))


def brightness_at(t: float) -> int:
    """The grey level of the frames of `write_tone_video` at ``t`` seconds: one step per second."""
    return 40 + 20 * int(t)


def write_tone_video(path: Path, spans: Sequence[tuple[float, float, float]], seconds: float,
                     fps: int = 10) -> Path:
    """An MP4 (H.264 32x32 grey frames at `brightness_at`, AAC 16 kHz) with the tone bursts of `write_tones`."""
    wav = write_tones(path.with_suffix(".wav"), spans, seconds)
    with wave.open(str(wav), "rb") as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    return mux_grey_mp4(path, [brightness_at(i / fps) for i in range(round(seconds * fps))], fps, audio, RATE)


class SpyFaces(FakeFaces):
    """`FakeFaces` that keeps every output it makes (``seen``: one ``[T, 3]`` array per call)."""

    seen: ClassVar[list[np.ndarray]] = []

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        out = super().extract_one(item)
        SpyFaces.seen.append(out["faces"])
        return out


def build_audio_vision_run(root: Path) -> Path:
    """Audio ``stats`` (loud = angry) + fake face sequences (``faces`` [T, 3]); the test registers
    ``test_wav_stats`` and ``test_faces`` (fixture ``fakes``, or `SpyFaces` as ``test_faces``)."""
    audio, faces, rng = FakeWavStats(), FakeFaces(), np.random.default_rng(2)
    specs = {"audio": FeatureSpec("audio", "vector", 4, provenance=audio.provenance()),
             "vision": FeatureSpec("vision", "sequence", 3, max_len=64, provenance=faces.provenance())}
    for split, n in (("train", 24), ("dev", 8)):
        labels = [i % 2 for i in range(n)]
        wavs = [write_wav(root / "wav" / f"{split}{i}.wav", rng.uniform(0.4, 0.8) if y else rng.uniform(0.02, 0.06),
                          seconds=1.0, rate=RATE) for i, y in enumerate(labels)]
        with StoreWriter(root / "store" / f"{split}.h5", label_space=LabelSpace(("calm", "angry")),
                         features=specs, source={"dataset": "analyze_test"}) as w:
            w.append([f"{split}{i}" for i in range(n)], labels, {
                "audio": [audio.extract_one(str(p))["stats"] for p in wavs],
                "vision": [rng.uniform(0, 1, size=(3 + i % 5, 3)).astype(np.float32) for i in range(n)]})
    return train_run(root / "store", root / "run", {}, {}, {"epochs": 3, "lr": 3e-3}, modalities=("audio", "vision"))
