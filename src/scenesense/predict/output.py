"""What ``predict`` returns, and its CSV writer: one `ItemPrediction` per item (with a
``timeline`` of `WindowPrediction` for long media) in a `PredictionResult`."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenesense.extraction.transcribe import Transcript
from scenesense.utils.io import atomic_write_text


@dataclass(frozen=True)
class WindowPrediction:
    """The prediction for one window of a long item (see `ItemPrediction.timeline`).

    Fields:
        start, end: the window's span in the item's audio, in seconds.
        label: predicted class name (``None`` when the window failed or for regression).
        probabilities: class name -> probability (empty when the window failed or for regression).
        value: the predicted target of a regression run (else ``None``).
        error: why the window got no prediction, e.g. silence (``None`` when it has one).
        transcript: what speech recognition heard in the window (``""``: nothing), when the
            window's text was transcribed; else ``None``.
    """

    start: float
    end: float
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    error: str | None = None
    transcript: str | None = None

    @property
    def ok(self) -> bool:
        """True when the window has a prediction."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"start": self.start, "end": self.end, "ok": self.ok, "label": self.label,
                "probabilities": dict(self.probabilities), "value": self.value, "error": self.error,
                "transcript": self.transcript}


@dataclass(frozen=True)
class ItemPrediction:
    """The prediction for one item.

    Fields:
        id: the item's key (given, else its position in the input, from 0).
        inputs: input kind (``text``/``audio``/``video``/``media``; ``file`` for a bare path
            that is none of them) -> the raw input as given.
        label: predicted class name (``None`` for an error row or a regression run).
        probabilities: class name -> probability, every class (empty for an error row or regression).
        value: the predicted target of a regression run (else ``None``).
        used: modalities the model saw for this item, sorted.
        missing: modalities of the run it did not see (not given, failed, or not extractable), sorted.
        problems: one line per input or modality that failed, e.g. ``"audio: a.wav: silent audio"``.
        modality_weights: modality -> the fusion's weight for this item (mean over channels), where
            the fusion provides weights.
        attention: attention map name (``"text->vision"``) -> mean attention per real key step,
            averaged over the real query steps, where the fusion provides attention maps.
        error: why the item got no prediction (``None`` when it has one).
        timeline: for long media predicted in windows, one `WindowPrediction` per window
            in time order (the item's scores are then their mean); empty otherwise.
        transcript: the `scenesense.extraction.transcribe.Transcript` of the item's audio
            when its text came from speech recognition (an item given no text; for long media the
            windows' transcripts, times from the start of the recording); else ``None``.
    """

    id: str
    inputs: dict[str, str]
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    used: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    modality_weights: dict[str, float] | None = None
    attention: dict[str, list[float]] | None = None
    error: str | None = None
    timeline: tuple[WindowPrediction, ...] = ()
    transcript: Transcript | None = None

    @property
    def ok(self) -> bool:
        """True when the item has a prediction."""
        return self.error is None

    def top(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable classes, most probable first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    def to_dict(self, top_k: int | None = None) -> dict[str, Any]:
        """JSON-able form; with ``top_k`` also a ``top`` list of ``[class, probability]`` pairs."""
        out: dict[str, Any] = {
            "id": self.id, "inputs": dict(self.inputs), "ok": self.ok, "label": self.label,
            "probabilities": dict(self.probabilities), "value": self.value, "used": list(self.used),
            "missing": list(self.missing), "problems": list(self.problems),
            "modality_weights": self.modality_weights, "attention": self.attention, "error": self.error,
            "timeline": [window.to_dict() for window in self.timeline],
            "transcript": None if self.transcript is None else self.transcript.to_dict(),
        }
        if top_k is not None:
            out["top"] = [[name, p] for name, p in self.top(top_k)]
        return out


@dataclass(frozen=True)
class PredictionResult:
    """Predictions for a batch of items.

    Fields:
        run_dir: the run that predicted.
        task: ``"classification"`` or ``"regression"``.
        label_names: the run's classes (or regression target name).
        modalities: the run's modalities, sorted.
        features: modality -> how raw inputs are featurised (``extractor``, ``output``), or
            ``{"unavailable": reason}``.
        warnings: run-level warnings (e.g. a modality that cannot be extracted from raw media).
        items: one `ItemPrediction` per input item, in input order.
        transcriber: the provenance of the transcriber that gave items their text
            (`scenesense.extraction.transcribe.Transcriber.provenance`), ``None`` when none did.
    """

    run_dir: Path
    task: str
    label_names: tuple[str, ...]
    modalities: tuple[str, ...]
    features: dict[str, dict[str, Any]]
    warnings: tuple[str, ...]
    items: tuple[ItemPrediction, ...]
    transcriber: dict[str, Any] | None = None

    @property
    def n_ok(self) -> int:
        """Items with a prediction."""
        return sum(item.ok for item in self.items)

    def to_dict(self, top_k: int | None = None) -> dict[str, Any]:
        """JSON-able form of the whole result."""
        return {
            "run": str(self.run_dir), "task": self.task, "labels": list(self.label_names),
            "modalities": list(self.modalities), "features": self.features, "warnings": list(self.warnings),
            "n": len(self.items), "n_ok": self.n_ok, "n_failed": len(self.items) - self.n_ok,
            "items": [item.to_dict(top_k) for item in self.items], "transcriber": self.transcriber,
        }


def write_predictions(result: PredictionResult, path: str | Path) -> Path:
    """Write one CSV row per item, atomically.

    Columns: ``id, ok, label`` (or ``value`` for regression), ``prob_<class>`` per class,
    ``used``, ``missing`` (modalities joined by ``+``), ``weight_<modality>`` where the fusion
    gives weights, ``transcript`` (the recognised text) when a transcriber gave any item its
    text, ``problems`` and ``error`` (one-line messages joined by `` | ``).
    Probabilities are written at full precision. When an item was predicted in windows (long
    media), ``start`` and ``end`` columns (seconds) follow ``id``: each such item's row (blank
    span: the overall prediction) is followed by one row per window, with the same ``id``.

    Returns:
        ``path`` as a `pathlib.Path`.
    """
    regression = result.task == "regression"
    weighted = sorted({m for item in result.items for m in (item.modality_weights or {})})
    span = ["start", "end"] if any(item.timeline for item in result.items) else []
    said = ["transcript"] if result.transcriber is not None else []
    names = ["value"] if regression else ["label", *(f"prob_{c}" for c in result.label_names)]
    header = ["id", *span, "ok", *names, "used", "missing", *(f"weight_{m}" for m in weighted), *said,
              "problems", "error"]

    def scores(p: ItemPrediction | WindowPrediction) -> list[str]:
        return ([_num(p.value)] if regression else
                [p.label or "", *(_num(p.probabilities.get(c)) for c in result.label_names)])

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for item in result.items:
        weights = [_num((item.modality_weights or {}).get(m)) for m in weighted]
        text = [item.transcript.text if item.transcript is not None else ""] if said else []
        writer.writerow([item.id, *([""] * len(span)), int(item.ok), *scores(item), "+".join(item.used),
                         "+".join(item.missing), *weights, *text, " | ".join(item.problems),
                         item.error or ""])
        for w in item.timeline:
            writer.writerow([item.id, _num(w.start), _num(w.end), int(w.ok), *scores(w), "", "",
                             *([""] * len(weighted)), *([w.transcript or ""] if said else []), "",
                             w.error or ""])
    return atomic_write_text(path, buffer.getvalue())


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))
