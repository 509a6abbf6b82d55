"""What an analysis is: one `SegmentPrediction` per segment in an `Analysis`, and its timeline files.

`write_timeline_csv` and `write_timeline_json` write ``timeline.csv`` and ``timeline.json``
atomically; both hold the same segments at full precision. `label_colors` gives each class the
colour it has in the plot and on the page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenesense.utils.io import atomic_write_text, write_json

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")  # matplotlib's tab10
_EMOTION_COLORS = {"anger": "#d62728", "angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd",
                   "fearful": "#9467bd", "joy": "#ffbf00", "happy": "#ffbf00", "happiness": "#ffbf00",
                   "neutral": "#7f7f7f", "calm": "#17becf", "sadness": "#1f77b4", "sad": "#1f77b4",
                   "surprise": "#ff7f0e", "surprised": "#ff7f0e", "positive": "#2ca02c",
                   "negative": "#d62728"}
NO_PREDICTION_COLOR = "#d0d0d0"
"""The colour of a segment without a prediction."""


def label_colors(label_names: Sequence[str]) -> dict[str, str]:
    """Class name -> ``#rrggbb``: the usual colour of an emotion's name (anger red, sadness blue, ...),
    else the next unused colour of matplotlib's ``tab10`` palette; distinct for up to 10 classes."""
    out: dict[str, str] = {}
    for name in label_names:
        colour = _EMOTION_COLORS.get(name.lower())
        if colour is not None and colour not in out.values():
            out[name] = colour
    free = iter([c for c in _PALETTE if c not in out.values()] + list(_PALETTE) * 10)
    return {name: out.get(name) or next(free) for name in label_names}


@dataclass(frozen=True)
class SegmentPrediction:
    """The prediction for one segment of a recording.

    Fields:
        index: position in the recording, from 0.
        start, end: the segment's span in seconds.
        transcript: what was said (``""`` when not transcribed or nothing was heard).
        label: predicted class (``None`` without a prediction, or for a regression run).
        probabilities: class -> probability, every class (empty without a prediction).
        value: the predicted target of a regression run (else ``None``).
        used: modalities the model saw, sorted.
        missing: the run's modalities it did not see, sorted.
        problems: one line per modality that failed (e.g. no face in the span).
        error: why the segment has no prediction (``None`` when it has one).
    """

    index: int
    start: float
    end: float
    transcript: str = ""
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    used: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the segment has a prediction."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"index": self.index, "start": self.start, "end": self.end, "transcript": self.transcript,
                "ok": self.ok, "label": self.label, "probabilities": dict(self.probabilities),
                "value": self.value, "used": list(self.used), "missing": list(self.missing),
                "problems": list(self.problems), "error": self.error}


@dataclass(frozen=True)
class Analysis:
    """A recording analysed segment by segment with a run.

    Fields:
        run_dir: the run.
        media: the recording.
        task: ``"classification"`` or ``"regression"``.
        label_names: the run's classes (or its regression target).
        duration: seconds of audio read.
        segments: one `SegmentPrediction` per segment, in time order.
        files: ``"csv"``, ``"json"``, ``"plot"``, ``"html"`` -> the files written (empty before).
        stage_seconds: stage -> wall seconds spent in it (``decode``, ``vad``, ``transcription``,
            ``features``, ``model``, ``write``), and ``total``.
        provenance: how the segments were made: segmenter and its parameters, transcriber, the
            run's features, media facts, scenesense version.
        warnings: run- and media-level warnings.
    """

    run_dir: Path
    media: Path
    task: str
    label_names: tuple[str, ...]
    duration: float
    segments: tuple[SegmentPrediction, ...]
    files: dict[str, Path] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def n_ok(self) -> int:
        """Segments with a prediction."""
        return sum(s.ok for s in self.segments)

    @property
    def realtime_factor(self) -> float | None:
        """Seconds of media analysed per second of wall time (``None`` before it is timed)."""
        total = self.stage_seconds.get("total")
        return self.duration / total if total else None

    def to_json(self) -> dict[str, Any]:
        """The JSON-able form written to ``timeline.json`` (a dict; ``json.dumps`` it for text)."""
        return {"run": str(self.run_dir), "media": str(self.media), "task": self.task,
                "label_names": list(self.label_names), "duration": self.duration,
                "n_segments": len(self.segments), "n_ok": self.n_ok, "warnings": list(self.warnings),
                "provenance": self.provenance, "stage_seconds": dict(self.stage_seconds),
                "realtime_factor": self.realtime_factor,
                "files": {k: str(v) for k, v in self.files.items()},
                "segments": [s.to_dict() for s in self.segments]}


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def timeline_header(task: str, label_names: Sequence[str]) -> list[str]:
    """The columns of ``timeline.csv`` (see `write_timeline_csv`)."""
    scores = ["value"] if task == "regression" else ["label", *(f"prob_{c}" for c in label_names)]
    return ["start", "end", *scores, "transcript", "used", "missing", "error"]


def write_timeline_csv(analysis: Analysis, path: str | Path) -> Path:
    """One row per segment, atomically: ``start, end`` (seconds), ``label`` and ``prob_<class>`` per
    class (``value`` for regression), ``transcript``, ``used`` and ``missing`` (modalities joined by
    ``+``) and ``error`` (blank scores on a row without a prediction)."""
    regression = analysis.task == "regression"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(timeline_header(analysis.task, analysis.label_names))
    for s in analysis.segments:
        scores = [_num(s.value)] if regression else [s.label or "", *(_num(s.probabilities.get(c))
                                                                      for c in analysis.label_names)]
        writer.writerow([_num(s.start), _num(s.end), *scores, s.transcript, "+".join(s.used),
                         "+".join(s.missing), s.error or ""])
    return atomic_write_text(path, buffer.getvalue())


def write_timeline_json(analysis: Analysis, path: str | Path) -> Path:
    """`Analysis.to_json` as a JSON file, atomically, at full precision."""
    return write_json(path, analysis.to_json())
