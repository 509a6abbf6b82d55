"""The stub extractors of the test suite (no model, deterministic), registered by the fixtures
``stub_text_extractor`` and ``fakes`` of ``tests/conftest.py`` for one test at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from scenesense.extraction.base import FeatureExtractor, InputKind, ItemError, OutputSpec
from scenesense.extraction.text import TextExtractor, TextFeatures
from tests.support.media import read_audio


class StubTextExtractor(TextExtractor):
    """Text features without a model: D=4, one token per word plus two, each ``len(text) / 10``;
    counts its calls (``calls``)."""

    calls: ClassVar[int] = 0

    def __init__(self, max_tokens: int = 50, batch_size: int = 64, device: str = "cpu",
                 model_path: str | None = None) -> None:
        self.max_tokens = max_tokens

    @property
    def dim(self) -> int:
        return 4

    def provenance(self) -> dict[str, Any]:
        return {"extractor": "stub", "params": {"max_tokens": self.max_tokens}}

    def extract(self, texts: list[str]) -> TextFeatures:
        StubTextExtractor.calls += 1
        tokens = [np.full((min(len(t.split()) + 2, self.max_tokens), 4), len(t) / 10, np.float32) for t in texts]
        return TextFeatures(tokens, np.stack([tok[0] for tok in tokens]))


class FakeWavStats(FeatureExtractor):
    """Audio ``stats`` [rms * scale, peak, zero-crossing rate, seconds] and ``frames`` [T, 2]."""

    modality: ClassVar[str] = "audio"
    input_kind: ClassVar[InputKind] = "audio"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def outputs(self) -> dict[str, OutputSpec]:
        return {"stats": OutputSpec("vector", 4), "frames": OutputSpec("sequence", 2)}

    def provenance(self) -> dict[str, Any]:
        return {"extractor": "test_wav_stats", "params": {"scale": self.scale}}

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        x, rate = read_audio(Path(item))
        if x.size == 0 or not np.any(x):
            raise ItemError(f"{item}: silent audio (every sample is zero)")
        zcr = float(np.mean(np.abs(np.diff(np.sign(x))) > 0))
        stats = np.array([np.sqrt(np.mean(x ** 2)) * self.scale, np.abs(x).max(), zcr, x.size / rate])
        frames = x[: x.size // 100 * 100].reshape(-1, 100) if x.size >= 100 else x[None]
        return {"stats": stats.astype(np.float32),
                "frames": np.stack([np.sqrt((frames ** 2).mean(1)), np.abs(frames).max(1)], 1)}



class FakeFaces(FeatureExtractor):
    """Vision ``faces`` [T, 3]: mean RGB / 255 of every frame bright enough to hold a "face"."""

    modality: ClassVar[str] = "vision"
    input_kind: ClassVar[InputKind] = "video"

    def outputs(self) -> dict[str, OutputSpec]:
        return {"faces": OutputSpec("sequence", 3)}

    def provenance(self) -> dict[str, Any]:
        return {"extractor": "test_faces", "params": {}}

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        av = pytest.importorskip("av")
        try:
            with av.open(item) as container:
                frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        except (av.FFmpegError, IndexError) as err:
            raise ItemError(f"{item}: unreadable video ({err})") from None
        faces = [f.reshape(-1, 3).mean(0) / 255 for f in frames if f.mean() > 20]
        if not faces:
            raise ItemError(f"{item}: no face found in any of its {len(frames)} frames")
        return {"faces": np.stack(faces).astype(np.float32)}

