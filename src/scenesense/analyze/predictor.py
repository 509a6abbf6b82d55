"""Segments through a run: each segment's inputs made from its span, featurised by the run's
extractors, and classified.

A segment becomes one `scenesense.predict.inputs.Item`: its audio as a 16 kHz WAV, its frames
as a short video clip (`scenesense.analyze.frames.FrameCursor.write_clip`), its transcript as
text; only the inputs the run's extractors read are made. `SegmentPredictor` classifies a batch of segments at
once, through `scenesense.predict.model` (extraction, then one model pass); a run with
past-only dialogue context reads the segments as one conversation through
`scenesense.streaming.ConversationStream`, each segment predicted from it and the segments
before it. Problems name the recording and the segment's span, never the temporary files.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scenesense.analyze.timeline import SegmentPrediction
from scenesense.data.speaker_norm import apply_speaker_norm
from scenesense.extraction.audio_io import write_wav
from scenesense.extraction.vad import SAMPLE_RATE, SpeechSpan
from scenesense.predict import ItemPrediction, Predictor, clock
from scenesense.predict.inputs import Item
from scenesense.predict.model import (
    MIN_SPEAKER_ITEMS,
    SpeakerStats,
    chunk_statistics,
    classify,
    prepare_chunk,
)
from scenesense.predict.plan import version_warnings
from scenesense.streaming import ConversationStream

CONTEXT_WARNING = ("the run reads dialogue context (model.context), but its context model reads later "
                   "utterances too, or it normalises features per speaker (data.speaker_norm), which a "
                   "recording read from start to end cannot give: the segments are predicted each alone")


@dataclass
class SegmentInput:
    """What a segment gives the run: its span, its audio, its frames and its transcript.

    Fields:
        index: position in the recording, from 0.
        span: the audio span (16 kHz mono samples).
        text: the transcript (``None``: not transcribed).
        clip: a video of the frames in the span (``None``: no frame, or no video read).
        video_read: whether the recording's video was read for the span.
        problems: why an input is missing (e.g. the video could not be read).
    """

    index: int
    span: SpeechSpan
    text: str | None = None
    clip: Path | None = None
    video_read: bool = False
    problems: list[str] = field(default_factory=list)


def _stream_ok(predictor: Predictor) -> bool:
    """Whether the run reads past-only dialogue context and can stream (no speaker normalisation)."""
    context = getattr(predictor.model, "context", None)
    return (predictor.config.model.context is not None and not predictor.config.data.speaker_norm
            and getattr(context, "direction", None) == "past")


class SegmentPredictor:
    """A run that classifies segments (see the module docstring).

    Args:
        run: a finished run directory, or a `scenesense.predict.Predictor` already loaded.
        device: torch device of the model (when ``run`` is a directory).

    Attributes:
        predictor: the loaded run.
        stream: the conversation stream of a run with past-only context (``None`` otherwise).
        warnings: run-level warnings (modalities that cannot be extracted, extractor versions,
            a context the segments cannot feed).
        seconds: ``"features"`` and ``"model"`` -> wall seconds spent so far (with context, the
            stream extracts and classifies together: all of it counts as ``"model"``).

    Raises:
        FileNotFoundError: not a finished run.
        ValueError: no modality of the run can be extracted from raw inputs.
    """

    def __init__(self, run: str | Path | Predictor, device: str = "cpu") -> None:
        self.predictor = run if isinstance(run, Predictor) else Predictor(run, device=device)
        plans = self.predictor.plans
        self.warnings = [p.unavailable for p in plans.values() if p.unavailable] + version_warnings(plans)
        self.stream: ConversationStream | None = None
        if _stream_ok(self.predictor):
            self.stream = ConversationStream(self.predictor.run_dir, device=self.predictor.device)
        elif self.predictor.config.model.context is not None:
            self.warnings.append(CONTEXT_WARNING)
        self.seconds = {"features": 0.0, "model": 0.0}
        self._stats: SpeakerStats | None = None

    @property
    def spec(self) -> Any:  # noqa: ANN401
        """The run's `scenesense.runs.RunSpec`."""
        return self.predictor.spec

    def reads(self, kind: str) -> bool:
        """Whether an extractor of the run reads ``kind`` inputs (``text``, ``audio``, ``video``)."""
        return any(p.extractor is not None and p.extractor.input_kind == kind
                   for p in self.predictor.plans.values())

    def vision_fps(self) -> float | None:
        """The frame rate the run's video extractors sample at (the highest; ``None``: not recorded)."""
        rates = [p.provenance.get("params", {}).get("fps") for p in self.predictor.plans.values()
                 if p.extractor is not None and p.extractor.input_kind == "video"]
        numbers = [float(r) for r in rates if isinstance(r, (int, float)) and r > 0]
        return max(numbers) if numbers and len(numbers) == len(rates) else None

    def audio_rates(self) -> dict[str, int]:
        """Modality -> the sample rate an audio extractor of the run records, where it records one."""
        out = {}
        for m, p in self.predictor.plans.items():
            rate = p.provenance.get("params", {}).get("sample_rate")
            if p.extractor is not None and p.extractor.input_kind == "audio" and isinstance(rate, int):
                out[m] = rate
        return out

    def _item(self, segment: SegmentInput, folder: Path, media: Path) -> Item:
        """The segment as an item, its inputs written to ``folder``."""
        span, raw = segment.span, {}
        where = f"{media} [{clock(span.start_s)}-{clock(span.end_s)}]"
        item = Item(str(segment.index), raw, problems=list(segment.problems))
        if self.reads("audio"):
            item.audio = write_wav(folder / f"segment{segment.index}.wav", span.samples, SAMPLE_RATE)
            raw["audio"] = str(item.audio)
        if self.reads("video") and segment.clip is not None:
            item.video = segment.clip
            raw["video"] = str(item.video)
        elif self.reads("video") and segment.video_read:
            item.problems.append(f"vision: no video frame in {where}")
        if self.reads("text") and segment.text:
            item.text = raw["text"] = segment.text
        elif self.reads("text") and segment.text is not None:
            item.problems.append(f"text: no words heard in {where}")
        return item

    def predict(self, segments: Sequence[SegmentInput], folder: Path, media: Path) -> list[SegmentPrediction]:
        """Classify a batch of segments (in time order, after those of earlier calls).

        Args:
            segments: the batch.
            folder: a scratch folder for the segments' input files.
            media: the recording (named in problems).
        """
        items = [self._item(s, folder, media) for s in segments]
        if self.stream is not None:
            start = time.perf_counter()
            results = [self.stream.add({**item.raw, "id": item.id}) for item in items]
            results = [replace(r, problems=tuple(item.problems) + r.problems)
                       for r, item in zip(results, items)]
            self.seconds["model"] += time.perf_counter() - start
        else:
            start = time.perf_counter()
            results, samples = prepare_chunk(self.spec, self.predictor.plans, items)
            if self.predictor.config.data.speaker_norm and samples:
                self._stats = self._stats or chunk_statistics(samples, self.predictor.plans)
                samples = [apply_speaker_norm(s, self._stats) for s in samples]
            middle = time.perf_counter()
            results = classify(self.predictor.model, self.spec, results, samples, self.predictor.device)
            self.seconds["features"] += middle - start
            self.seconds["model"] += time.perf_counter() - middle
        return [_prediction(s, r, media) for s, r in zip(segments, results)]

    @property
    def batch_size_floor(self) -> int:
        """The smallest batch that gives per-speaker statistics (runs with ``data.speaker_norm``)."""
        return MIN_SPEAKER_ITEMS if self.predictor.config.data.speaker_norm else 1


def _named(line: str, raw: Mapping[str, str], where: str) -> str:
    """``line`` with the segment's temporary file names replaced by the recording and span."""
    for kind in ("audio", "video"):
        if kind in raw:
            line = line.replace(raw[kind], where)
    return line


def _prediction(segment: SegmentInput, result: ItemPrediction, media: Path) -> SegmentPrediction:
    span = segment.span
    where = f"{media} [{clock(span.start_s)}-{clock(span.end_s)}]"
    error = None
    if result.error is not None:
        error = _named(result.error.removeprefix("no modality could be extracted: "), result.inputs, where)
    return SegmentPrediction(segment.index, span.start_s, span.end_s, segment.text or "", result.label,
                             dict(result.probabilities), result.value, tuple(result.used),
                             tuple(result.missing),
                             tuple(_named(p, result.inputs, where) for p in result.problems), error)
