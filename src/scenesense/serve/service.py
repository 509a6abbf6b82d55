"""A run served: loaded once, requests predicted one at a time, answers as JSON-able payloads.

Every prediction goes through `scenesense.predict.Predictor` (the code path of
``scenesense predict``: a long clip is the mean of its windows); a clip's timeline is its
segments from `scenesense.analyze.analyze_media` (speech segments by default, as
``scenesense analyze`` finds them), or, when those cannot be made (e.g. without the ``speech``
extra), the prediction's own windows. Conversations go through
`scenesense.streaming.ConversationStream` when the run reads dialogue context that can
stream (past only), else utterance by utterance.
Texts from a request are always given as ``{"text": ...}`` items, never routed, so a text that
looks like a file name is classified as a text, not opened. One lock serialises the model work:
requests may arrive together, the model and its extractors see one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scenesense.analyze import analyze_media, check_segmenter
from scenesense.extraction.base import package_versions
from scenesense.extraction.transcribe import Transcriber
from scenesense.predict import DEFAULT_WINDOW_S, ItemPrediction, PredictionResult, Predictor
from scenesense.predict.transcripts import reads_text
from scenesense.serve.media import MediaInfo
from scenesense.streaming import ConversationStream
from scenesense.utils.extras import MissingExtraError


class PredictionError(Exception):
    """The request was well formed but nothing could be predicted from it (answered with a 422)."""


def _scrub(value: Any, secret: str, shown: str) -> Any:  # noqa: ANN401
    """``value`` with every occurrence of ``secret`` (a server path) in its strings replaced by ``shown``."""
    if isinstance(value, str):
        return value.replace(secret, shown)
    if isinstance(value, Mapping):
        return {k: _scrub(v, secret, shown) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secret, shown) for v in value]
    return value


def _item_payload(item: ItemPrediction, top_k: int) -> dict[str, Any]:
    """An item's prediction as the API returns it: `ItemPrediction.to_dict` without its id and inputs."""
    out = item.to_dict(top_k)
    for key in ("id", "inputs", "attention"):
        out.pop(key, None)
    return out


class ServedRun:
    """The run a server answers with.

    Args:
        run_dir: a finished run directory.
        device: torch device of the model.
        window_s: window length for clips: a clip longer than two windows is predicted window by
            window (the mean of the windows); also the length of ``fixed`` timeline segments.
        transcribe: ``"auto"``: a clip sent without its transcript is transcribed when the run
            reads text; ``"never"``: its text is missing.
        segmenter: how a clip's timeline is cut (`scenesense.analyze.SEGMENTERS`): ``"vad"``
            (speech segments), ``"transcript"`` or ``"fixed"`` (windows of ``window_s``).

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run.
        ValueError: no modality of the run can be extracted from raw inputs; a bad argument.
    """

    def __init__(self, run_dir: str | Path, *, device: str = "cpu", window_s: float = DEFAULT_WINDOW_S,
                 transcribe: str = "auto", segmenter: str = "vad") -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0 seconds, got {window_s}")
        check_segmenter(segmenter, transcribe)
        self.predictor = Predictor(run_dir, device=device, transcribe=transcribe)
        self.run_dir, self.window_s, self.device = Path(run_dir), window_s, device
        self.transcribe, self.segmenter = transcribe, segmenter
        self.spec = self.predictor.spec
        self.stream: ConversationStream | None = None
        self.conversation_note: str | None = None
        if self.predictor.config.model.context is not None:
            try:
                self.stream = ConversationStream(run_dir, device=device)
            except ValueError as err:
                self.conversation_note = (f"conversations are predicted utterance by utterance, without "
                                          f"context: {err}")
        self.top_k = min(3, len(self.spec.label_names))
        self._lock = threading.Lock()

    def health(self) -> dict[str, Any]:
        """What ``GET /health`` says: the run, its modalities, classes, inputs read and the version."""
        kinds = sorted({p.extractor.input_kind for p in self.predictor.plans.values() if p.extractor})
        return {"status": "ok", "run": self.run_dir.name, "name": self.predictor.config.name,
                "task": self.spec.task, "modalities": list(self.predictor.modalities),
                "labels": list(self.spec.label_names), "inputs": kinds,
                "context": self.stream is not None, "transcribe": self.transcribe, "segmenter": self.segmenter,
                "version": package_versions(("scenesense",))["scenesense"]}

    def _result(self, result: PredictionResult, item: ItemPrediction) -> dict[str, Any]:
        if not item.ok:
            raise PredictionError(item.error or "no prediction")
        return {"run": self.run_dir.name, "task": result.task, "labels": list(result.label_names),
                "warnings": list(result.warnings), **_item_payload(item, self.top_k)}

    def predict_text(self, text: str) -> dict[str, Any]:
        """Classify one text (never read as a path).

        Raises:
            PredictionError: the run reads no text, or its extractor failed on this text.
        """
        with self._lock:
            result = self.predictor.predict([{"id": "0", "text": text}], window_s=self.window_s)
        return {"input": "text", **self._result(result, result.items[0])}

    def _transcriber(self) -> Transcriber | None:
        """The predictor's transcriber (loaded once) when the timeline needs one, else ``None``."""
        if self.segmenter != "transcript" and (self.transcribe == "never" or not reads_text(self.predictor.plans)):
            return None
        try:
            return self.predictor.transcriber()
        except MissingExtraError:
            return None  # analyze_media says what is missing

    def _segments(self, path: Path, workdir: Path) -> tuple[list[dict[str, Any]] | None, list[str]]:
        """The clip's timeline from `analyze_media` and its warnings; ``None`` when it cannot be made."""
        try:
            analysis = analyze_media(self.predictor, path, workdir, transcribe=self.transcribe,
                                     segmenter=self.segmenter, window=self.window_s, progress=False,
                                     device=self.device, transcriber=self._transcriber())
        except (MissingExtraError, ValueError) as err:
            return None, [f"timeline: {err}; the timeline shows the prediction's windows instead"]
        notes = list(analysis.warnings)
        if not analysis.segments:
            notes.append("timeline: no speech was found in the clip")
        return [segment.to_dict() for segment in analysis.segments], notes

    def predict_clip(self, path: Path, kind: str, name: str, info: MediaInfo, workdir: Path,
                     transcript: str | None = None) -> dict[str, Any]:
        """Classify an uploaded clip (with its transcript, if given) and cut its timeline.

        Args:
            path: the file in the request's temporary folder.
            kind: ``"audio"`` or ``"video"``.
            name: the client's file name (last component), shown instead of ``path`` in messages.
            info: what `scenesense.serve.media.inspect_media` found.
            workdir: an empty folder of the request for the timeline's files.
            transcript: the clip's transcript, if the client sent one.

        Raises:
            PredictionError: no modality of the run could be extracted from the clip.
        """
        item: dict[str, str] = {"id": "0", kind: str(path)}
        if transcript is not None and transcript.strip():
            item["text"] = transcript
        with self._lock:
            result = self.predictor.predict([item], window_s=self.window_s)
            try:
                payload = self._result(result, result.items[0])
            except PredictionError as err:
                raise PredictionError(_scrub(str(err), str(path), name)) from None
            segments, notes = self._segments(path, workdir)
        if segments is None and not payload["timeline"]:  # a short clip predicted whole is one segment
            segments = [{"start": 0.0, "end": info.seconds, "ok": True, "label": payload["label"],
                         "probabilities": payload["probabilities"], "value": payload["value"], "error": None}]
        if segments is not None:
            payload["timeline"] = segments
        payload["warnings"] += [note for note in notes if note not in payload["warnings"]]
        return {"input": kind, "file": name, "seconds": info.seconds, **_scrub(payload, str(path), name)}

    def predict_conversation(self, utterances: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Classify the ``(speaker, text)`` utterances of one conversation, in the order given.

        With a run that reads past dialogue context, each utterance is predicted from it and the
        ones before it; otherwise each alone. An utterance that cannot be predicted gets an error
        entry; when none can, `PredictionError`.
        """
        items = [{"id": str(i), "text": text, "speaker": speaker} for i, (speaker, text) in enumerate(utterances)]
        with self._lock:
            if self.stream is not None:
                self.stream.reset()
                result = self.stream.result([self.stream.add(item, dialogue="conversation") for item in items])
            else:
                result = self.predictor.predict(items, window_s=self.window_s)
        if not result.n_ok:
            raise PredictionError(f"no utterance could be predicted; first: {result.items[0].error}")
        warnings = list(result.warnings) + ([self.conversation_note] if self.conversation_note else [])
        return {"input": "conversation", "run": self.run_dir.name, "task": result.task,
                "labels": list(result.label_names), "context": self.stream is not None, "warnings": warnings,
                "utterances": [{"speaker": speaker, "text": text, **_item_payload(item, self.top_k)}
                               for (speaker, text), item in zip(utterances, result.items)]}
