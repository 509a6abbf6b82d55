"""``analyze_media``: a recording of any length through a run, segment by segment, to a timeline.

The recording is streamed: its audio is decoded chunk by chunk (16 kHz mono,
`scenesense.extraction.audio_io.audio_chunks`) into the segmenter, and the segments it completes
are transcribed, featurised and classified a batch at a time, so memory holds one batch of
segments, never the recording. Its video, when the run reads faces, is decoded once in step
with the segments (`scenesense.analyze.frames.FrameCursor`). The timeline, the plot and the
page are written when the recording ends.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from tqdm import tqdm

from scenesense.analyze.frames import FrameCursor, has_video
from scenesense.analyze.options import DEFAULT_MAX_SEGMENT_S, SEGMENTERS, TRANSCRIBE_MODES
from scenesense.analyze.page import write_page
from scenesense.analyze.plot import plot_emotions
from scenesense.analyze.predictor import SegmentInput, SegmentPredictor
from scenesense.analyze.segments import (
    BLOCK_S,
    FixedSegmenter,
    Segmenter,
    split_by_transcript,
    transcribe_spans,
)
from scenesense.analyze.timeline import Analysis, SegmentPrediction, write_timeline_csv, write_timeline_json
from scenesense.extraction.audio_io import audio_chunks, audio_seconds
from scenesense.extraction.base import ItemError, package_versions
from scenesense.extraction.transcribe import TRANSCRIBERS, Transcriber
from scenesense.extraction.vad import SAMPLE_RATE, SileroVAD, SpeechProbabilities, SpeechSpan, VADSegmenter
from scenesense.predict import DEFAULT_WINDOW_S, Predictor
from scenesense.utils.extras import MissingExtraError

log = logging.getLogger(__name__)

STAGES = ("decode", "vad", "transcription", "features", "model", "write")
"""The stages timed in `Analysis.stage_seconds` (``vad``: the segmenter, whichever it is)."""

OUTPUT_FILES = {"csv": "timeline.csv", "json": "timeline.json", "plot": "emotions.png", "html": "index.html"}
"""Key in `Analysis.files` -> file name in the output folder."""

_FLUSH_S = 60.0  # seconds of pending segments that make a batch even when it has fewer segments
T = TypeVar("T")


class _StageTimer:
    """Wall seconds per stage."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def timed(self, items: Iterator[T], stage: str) -> Iterator[T]:
        """``items``, the time spent producing each counted in ``stage``."""
        while True:
            start = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                self.seconds[stage] += time.perf_counter() - start
                return
            self.seconds[stage] += time.perf_counter() - start
            yield item


def default_output_dir(media: str | Path) -> Path:
    """Where an analysis of ``media`` goes by default: ``<stem>.analysis/`` beside it."""
    media = Path(media)
    return media.parent / f"{media.stem}.analysis"


def check_segmenter(segmenter: str, transcribe: str) -> None:
    """Raise ``ValueError`` for an unknown ``segmenter``, or the transcript segmenter without transcription."""
    if segmenter not in SEGMENTERS:
        raise ValueError(f"segmenter must be one of {list(SEGMENTERS)}, got {segmenter!r}")
    if segmenter == "transcript" and transcribe == "never":
        raise ValueError("the transcript segmenter cuts the recording where the transcription does; it "
                         "needs transcribe='auto' or 'always', not 'never'")


def _validate(transcribe: str, segmenter: str, max_segment: float, window: float, batch_size: int) -> None:
    if transcribe not in TRANSCRIBE_MODES:
        raise ValueError(f"transcribe must be one of {list(TRANSCRIBE_MODES)}, got {transcribe!r}")
    check_segmenter(segmenter, transcribe)
    if not max_segment > 0:
        raise ValueError(f"max_segment must be > 0 seconds, got {max_segment!r}")
    if not window > 0:
        raise ValueError(f"window must be > 0 seconds, got {window!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")


def _transcriber(mode: str, segmenter: str, reads_text: bool,
                 given: Transcriber | None) -> Transcriber | None:
    """The transcriber to use (``None``: no transcription)."""
    if segmenter != "transcript" and (mode == "never" or (mode == "auto" and not reads_text)):
        return None
    if given is not None:
        return given
    try:
        return TRANSCRIBERS.create("whisper")
    except MissingExtraError as err:
        raise MissingExtraError(f"{err}; or analyze without transcripts: --transcribe never") from None


def _segmenter(name: str, max_segment: float, window: float, vad: SpeechProbabilities | None) -> Segmenter:
    if name == "fixed":
        return FixedSegmenter(window)
    try:
        model = vad if vad is not None else SileroVAD()  # a missing speech extra fails here, before any work
    except MissingExtraError as err:
        raise MissingExtraError(f"{err}; or cut the recording into fixed windows: --segmenter fixed") \
            from None
    return VADSegmenter(model, max_segment_s=BLOCK_S if name == "transcript" else max_segment)


def _media_src(media: Path, output_dir: Path, copy: bool) -> str:
    """The player's ``src``: the recording's path relative to the page, or a copy beside it."""
    if not copy:
        try:
            return quote(Path(os.path.relpath(media.resolve(), output_dir.resolve())).as_posix())
        except ValueError:  # another drive (Windows): no relative path
            pass
    dest = output_dir / media.name
    if not (dest.exists() and dest.resolve() == media.resolve()):
        partial = output_dir / f".{media.name}.copying"
        shutil.copyfile(media, partial)
        os.replace(partial, dest)
    return quote(media.name)


def _provenance(segmenter: Segmenter, name: str, transcriber: Transcriber | None, mode: str,
                predictor: SegmentPredictor, video: bool) -> dict[str, Any]:
    model = getattr(segmenter, "model", None)
    vad = model.provenance() if hasattr(model, "provenance") else (type(model).__name__ if model else None)
    return {"segmenter": {"name": name, **segmenter.params(), **({"vad": vad} if vad else {})},
            "transcribe": mode, "transcriber": None if transcriber is None else transcriber.provenance(),
            "context": "conversation (past segments)" if predictor.stream is not None else None,
            "features": {m: p.describe() for m, p in predictor.predictor.plans.items()},
            "media": {"has_video": video, "sample_rate": SAMPLE_RATE},
            "scenesense": package_versions(("scenesense",))["scenesense"]}


class _Run:
    """One analysis in progress: pending spans become predicted segments a batch at a time."""

    def __init__(self, predictor: SegmentPredictor, media: Path, folder: Path, segmenter: str,
                 transcriber: Transcriber | None, cursor: FrameCursor | None, max_segment: float,
                 timer: _StageTimer) -> None:
        self.predictor, self.media, self.folder, self.segmenter = predictor, media, folder, segmenter
        self.transcriber, self.cursor, self.max_segment, self.timer = transcriber, cursor, max_segment, timer
        self.pending: list[SpeechSpan] = []
        self.results: list[SegmentPrediction] = []

    def pending_seconds(self) -> float:
        return sum(len(s.samples) for s in self.pending) / SAMPLE_RATE

    def flush(self) -> None:
        """Transcribe, featurise and classify the pending spans."""
        spans, self.pending = self.pending, []
        if not spans:
            return
        texts: list[str | None] = [None] * len(spans)
        if self.segmenter == "transcript" and self.transcriber is not None:
            with self.timer("transcription"):
                spans = [piece for s in spans for piece in
                         split_by_transcript(s, self.transcriber.transcribe(s.samples, SAMPLE_RATE),
                                             self.max_segment)]
            texts = [s.text for s in spans]
        elif self.transcriber is not None:
            with self.timer("transcription"):
                texts = list(transcribe_spans(self.transcriber, spans))
        inputs = []
        for k, (span, text) in enumerate(zip(spans, texts)):
            segment = SegmentInput(len(self.results) + k, span, text)
            if self.cursor is not None:
                with self.timer("decode"):
                    segment.clip = self.cursor.write_clip(self.folder / f"segment{segment.index}.mkv",
                                                          span.start_s, span.end_s)
                segment.video_read = True
                if self.cursor.error:
                    segment.problems.append(f"vision: {self.cursor.error}")
            inputs.append(segment)
        before = dict(self.predictor.seconds)
        self.results += self.predictor.predict(inputs, self.folder, self.media)
        for stage in ("features", "model"):
            self.timer.seconds[stage] += self.predictor.seconds[stage] - before[stage]
        for leftover in self.folder.iterdir():  # the segments' input files
            leftover.unlink()


def _progress(total: float | None, name: str, enabled: bool) -> tqdm:
    """A bar over the media's seconds with the time left (the seconds done only, for an unknown length)."""
    fmt = ("{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of media [{elapsed}<{remaining}]"
           if total else "{desc}: {n:.0f} s of media [{elapsed}]")
    return tqdm(total=round(total, 1) if total else None, unit="s", desc=name, disable=not enabled,
                dynamic_ncols=True, leave=True, bar_format=fmt)


def analyze_media(run_dir: str | Path | Predictor, media: str | Path, output_dir: str | Path | None = None, *,
                  transcribe: str = "auto", segmenter: str = "vad",
                  max_segment: float = DEFAULT_MAX_SEGMENT_S, window: float = DEFAULT_WINDOW_S,
                  progress: bool = True, copy_media: bool = False, media_url: str | None = None,
                  device: str = "cpu", batch_size: int = 16,
                  transcriber: Transcriber | None = None, vad: SpeechProbabilities | None = None,
                  on_segment: Callable[[SegmentPrediction], None] | None = None) -> Analysis:
    """Analyse a recording of any length with a run: segments, their emotions, a timeline, a plot, a page.

    Args:
        run_dir: a finished run directory, or a `scenesense.predict.Predictor` holding one.
        media: an audio or video file (anything FFmpeg decodes).
        output_dir: where the files go (created; default `default_output_dir`: ``<stem>.analysis/``
            beside the media).
        transcribe: ``"auto"`` (transcribe when the run reads text), ``"always"`` (also for the
            timeline's transcripts) or ``"never"``.
        segmenter: ``"vad"`` (speech spans, Silero VAD), ``"transcript"`` (the transcription's own
            segments) or ``"fixed"`` (consecutive windows of ``window`` seconds, speech or not).
        max_segment: longest segment in seconds; longer speech is cut (at a pause when it can).
        window: window length of the ``fixed`` segmenter, seconds.
        progress: show a progress bar with the time left (on stderr).
        copy_media: copy the recording into the output folder for the page (default: the page
            plays it from where it is, by a relative path).
        media_url: the player's ``src`` instead (e.g. a server's URL of the recording).
        device: torch device of the model.
        batch_size: segments featurised and classified together.
        transcriber: the transcriber to use (default: ``TRANSCRIBERS.create("whisper")``).
        vad: the speech-probability model of the ``vad`` and ``transcript`` segmenters (default:
            `scenesense.extraction.vad.SileroVAD`).
        on_segment: called with each segment's prediction as soon as it is made.

    Returns:
        The `Analysis`; its ``files`` are ``timeline.csv``, ``timeline.json``, ``emotions.png``
        and ``index.html`` in ``output_dir``.

    Raises:
        FileNotFoundError: ``media`` or the run does not exist.
        ValueError: a bad argument, an unreadable recording or one without audio, or a run none of
            whose modalities can be extracted from raw media.
        MissingExtraError: the ``speech`` extra (VAD, transcription), or the extra of an
            extractor of the run, is not installed.
    """
    started = time.perf_counter()
    _validate(transcribe, segmenter, max_segment, window, batch_size)
    media = Path(media)
    if not media.is_file():
        raise FileNotFoundError(f"{media}: no such media file")
    output_dir = Path(output_dir) if output_dir is not None else default_output_dir(media)
    predictor = SegmentPredictor(run_dir, device)
    warnings = list(predictor.warnings)
    chosen = _transcriber(transcribe, segmenter, predictor.reads("text"), transcriber)
    cutter = _segmenter(segmenter, max_segment, window, vad)
    if predictor.reads("text") and chosen is None:
        warnings.append("text: not transcribed (transcribe='never'), so the run's text modality is missing "
                        "for every segment")
    video = has_video(media)
    cursor = FrameCursor(media, predictor.vision_fps()) if video and predictor.reads("video") else None
    if predictor.reads("video") and not video:
        warnings.append(f"vision: {media} has no video stream, so the run's vision modality is missing")
    for modality, rate in sorted(predictor.audio_rates().items()):
        if rate > SAMPLE_RATE:
            warnings.append(f"{modality}: the run's features were extracted at {rate} Hz; a recording is "
                            f"analysed at {SAMPLE_RATE} Hz, so its {modality} lacks frequencies above "
                            f"{SAMPLE_RATE // 2} Hz")
    for message in warnings:
        log.warning("%s", message)
    timer = _StageTimer()
    size = max(batch_size, predictor.batch_size_floor)
    bar = _progress(audio_seconds(media), media.name, progress)
    try:
        with tempfile.TemporaryDirectory(prefix="scenesense-analyze-") as folder:
            run = _Run(predictor, media, Path(folder), segmenter, chosen, cursor, max_segment, timer)
            try:
                for chunk in timer.timed(audio_chunks(media, SAMPLE_RATE), "decode"):
                    with timer("vad"):
                        run.pending += cutter.feed(chunk)
                    if len(run.pending) >= size or (run.pending_seconds() >= _FLUSH_S
                                                    and len(run.pending) >= predictor.batch_size_floor):
                        _flush(run, on_segment, bar, cutter.position)
            except ItemError as err:
                if cutter.position == 0:
                    raise ValueError(str(err)) from None
                warnings.append(f"audio: {err}; the recording is analysed up to {cutter.position:.1f} s")
                log.warning("%s", warnings[-1])
            with timer("vad"):
                run.pending += cutter.finish()
            _flush(run, on_segment, bar, cutter.position)
    finally:
        bar.close()
        if cursor is not None:
            cursor.close()
    analysis = Analysis(predictor.predictor.run_dir, media, predictor.spec.task,
                        tuple(predictor.spec.label_names), cutter.position, tuple(run.results), {}, {},
                        _provenance(cutter, segmenter, chosen, transcribe, predictor, video), tuple(warnings))
    return _write(analysis, output_dir, timer, started, media_url, copy_media, video)


def _flush(run: _Run, on_segment: Callable[[SegmentPrediction], None] | None, bar: tqdm,
           position: float) -> None:
    done = len(run.results)
    run.flush()
    if on_segment is not None:
        for result in run.results[done:]:
            on_segment(result)
    bar.update(max(0.0, (min(position, bar.total) if bar.total else position) - bar.n))


def _write(analysis: Analysis, output_dir: Path, timer: _StageTimer, started: float, media_url: str | None,
           copy_media: bool, video: bool) -> Analysis:
    """Write the four files; the analysis with its ``files`` and stage times (as written to the JSON)."""
    with timer("write"):
        output_dir.mkdir(parents=True, exist_ok=True)
        files = {key: output_dir / name for key, name in OUTPUT_FILES.items()}
        write_timeline_csv(analysis, files["csv"])
        plot_emotions(analysis, files["plot"])
        src = media_url if media_url is not None else _media_src(analysis.media, output_dir, copy_media)
    stages = {k: round(v, 4) for k, v in timer.seconds.items()}
    stages["total"] = round(time.perf_counter() - started, 4)
    analysis = replace(analysis, files=files, stage_seconds=stages)
    write_timeline_json(analysis, files["json"])
    write_page(analysis, files["html"], src, is_video=video)
    return analysis
