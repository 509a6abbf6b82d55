"""``predict()``: every item of a batch through a trained run (see `scenesense.predict`);
`Predictor`: the same with the run loaded once, for many calls (a server, a notebook)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from scenesense.extraction.transcribe import Transcriber, Transcript
from scenesense.predict.inputs import InputItem, Item, normalise_inputs
from scenesense.predict.model import predict_chunk, speaker_norm_warnings
from scenesense.predict.options import DEFAULT_WINDOW_S
from scenesense.predict.output import ItemPrediction, PredictionResult
from scenesense.predict.plan import ignored_input_warnings, plan_modality, version_warnings
from scenesense.predict.transcripts import (
    asr_warning,
    check_mode,
    default_transcriber,
    transcribe_item,
    unavailable_warning,
    wants_transcript,
)
from scenesense.predict.windows import long_audio, predict_windows
from scenesense.runs import load_run
from scenesense.utils.extras import MissingExtraError

log = logging.getLogger(__name__)

NO_CONTEXT_WARNING = ("the run reads dialogue context (model.context), but these items are predicted "
                      "each alone, without it; for predictions with context give whole conversations: "
                      "`scenesense predict RUN --conversation FILE.csv` (a MELD-format CSV) or "
                      "`--stream` (JSON lines), or scenesense.streaming in Python")


def _check_sizes(batch_size: int, window_s: float) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0 seconds, got {window_s}")


class Predictor:
    """A trained run loaded once: its model and the extractors of its modalities.

    `predict` with it gives what `scenesense.predict.predict` gives, without loading the run
    and rebuilding its extractors again for every call. Not safe for concurrent calls: serialise
    them (one lock per `Predictor`).

    Args:
        run_dir: a finished run directory (``config.yaml``, ``model_spec.json``, ``checkpoint.pt``).
        device: torch device of the model, e.g. ``"cpu"``.
        transcribe: ``"auto"``: an item with audio or video but no text gets the transcript of its
            speech as its text when the run reads text (`scenesense.predict.transcripts`);
            ``"never"``: its text is missing.
        transcriber: the transcriber to use (default: built on first need by
            `scenesense.predict.transcripts.default_transcriber`, then kept).

    Attributes:
        run_dir, device, config, spec, model: the run as loaded.
        modalities: the run's modalities, sorted.
        plans: modality -> its `scenesense.predict.ModalityPlan`.

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run.
        ValueError: no modality of the run can be extracted from raw inputs, or an unknown
            ``transcribe`` mode.
    """

    def __init__(self, run_dir: str | Path, *, device: str = "cpu", transcribe: str = "auto",
                 transcriber: Transcriber | None = None) -> None:
        check_mode(transcribe)
        self.transcribe, self._transcriber = transcribe, transcriber
        self._no_transcriber: MissingExtraError | None = None
        self.config, self.spec, self.model = load_run(run_dir)
        self.model.to(device)
        self.run_dir, self.device = Path(run_dir), device
        self.modalities = tuple(sorted(self.config.modalities))
        self.plans = {m: plan_modality(self.spec, m) for m in self.modalities}
        unavailable = [p.unavailable for p in self.plans.values() if p.unavailable]
        if all(p.extractor is None for p in self.plans.values()):
            raise ValueError(f"{run_dir}: none of the run's modalities can be extracted from raw inputs: "
                             + "; ".join(unavailable))
        self._run_warnings = unavailable + version_warnings(self.plans)

    def predict(self, inputs: Sequence[InputItem | str] | os.PathLike[str] | str, *, batch_size: int = 32,
                window_s: float = DEFAULT_WINDOW_S) -> PredictionResult:
        """Predict every item of ``inputs`` (see `scenesense.predict.predict`, same arguments)."""
        _check_sizes(batch_size, window_s)
        return self.predict_items(normalise_inputs(inputs), batch_size=batch_size, window_s=window_s)

    def transcriber(self) -> Transcriber:
        """The transcriber given, else the default one, built on the first call and kept.

        Raises:
            MissingExtraError: no transcriber was given and the ``speech`` extra is not installed.
        """
        if self._transcriber is None:
            if self._no_transcriber is not None:
                raise self._no_transcriber
            try:
                self._transcriber = default_transcriber()
            except MissingExtraError as err:
                self._no_transcriber = err
                raise
        return self._transcriber

    def predict_items(self, items: Sequence[Item], *, batch_size: int = 32,
                      window_s: float = DEFAULT_WINDOW_S) -> PredictionResult:
        """Predict normalised items (`scenesense.predict.inputs.normalise_inputs`); the items the
        transcribe step gives a text are copied first, never changed."""
        _check_sizes(batch_size, window_s)
        cfg, spec, model, plans = self.config, self.spec, self.model, self.plans
        warnings = list(self._run_warnings)
        items = list(items)
        wanting = ({i for i, item in enumerate(items) if wants_transcript(item, plans)}
                   if self.transcribe == "auto" else set())
        transcriber = None
        if wanting:
            try:
                transcriber = self.transcriber()
            except MissingExtraError as err:
                warnings.append(unavailable_warning(err))
                wanting = set()
        for i in wanting:
            items[i] = replace(items[i], unmade=dict(items[i].unmade))
        warnings += ignored_input_warnings({k for item in items for k in item.raw}, plans,
                                           transcribes=bool(wanting))
        if cfg.model.context is not None:
            warnings.append(NO_CONTEXT_WARNING)
        long = {i: path for i, item in enumerate(items)
                if (path := long_audio(item, plans, window_s, transcribed=i in wanting)) is not None}
        whole = [i for i in range(len(items)) if i not in long]
        speaker_norm, chunk_size = cfg.data.speaker_norm, batch_size
        if speaker_norm and whole:
            chunk_size = len(whole)  # speaker statistics come from all the items given (long ones: their windows)
            warnings += speaker_norm_warnings([items[i] for i in whole])
        if transcriber is not None and wanting:
            warnings.append(asr_warning(transcriber.provenance(), len(wanting)))
        for message in warnings:
            log.warning("%s", message)
        transcripts: dict[int, Transcript | None] = {}
        if transcriber is not None:
            transcripts = {i: transcribe_item(transcriber, items[i]) for i in whole if i in wanting}
        predicted: dict[int, ItemPrediction] = {}
        for start in range(0, len(whole), chunk_size):
            chunk = whole[start:start + chunk_size]
            predicted.update(zip(chunk, predict_chunk(model, spec, plans, [items[i] for i in chunk],
                                                      self.device, speaker_norm)))
        for i, path in long.items():
            predicted[i] = predict_windows(model, spec, plans, items[i], path, window_s, batch_size=batch_size,
                                           device=self.device, speaker_norm=speaker_norm,
                                           transcriber=transcriber if i in wanting else None)
        for i, transcript in transcripts.items():
            predicted[i] = replace(predicted[i], transcript=transcript)
        features = {m: p.describe() for m, p in plans.items()}
        return PredictionResult(self.run_dir, spec.task, spec.label_names, self.modalities, features,
                                tuple(warnings), tuple(predicted[i] for i in range(len(items))),
                                None if transcriber is None else transcriber.provenance())


def predict(run_dir: str | Path, inputs: Sequence[InputItem | str] | os.PathLike[str] | str, *,
            batch_size: int = 32, device: str = "cpu", window_s: float = DEFAULT_WINDOW_S,
            transcribe: str = "auto", transcriber: Transcriber | None = None) -> PredictionResult:
    """Predict every item of ``inputs`` with the trained run at ``run_dir``.

    Loads the run for this call; `Predictor` keeps it loaded for many calls.

    Args:
        run_dir: a finished run directory (``config.yaml``, ``model_spec.json``, ``checkpoint.pt``).
        inputs: a manifest CSV path (``os.PathLike``, see `read_manifest`); a single string
            (one item, routed by `route_input`); or a sequence of items, each a string
            (routed) or a mapping with any of ``text``, ``audio``, ``video`` (``vision`` is an
            alias), ``media`` and an optional ``id``.
        batch_size: items (or windows of a long item) extracted and classified together.
        device: torch device of the model, e.g. ``"cpu"``.
        window_s: window length in seconds for long media: audio longer than twice this is
            predicted window by window (see the module docstring).
        transcribe: ``"auto"``: for a run that reads text, an item with audio or video but no
            text is given the transcript of its speech (see `Predictor`); ``"never"``: its text
            is missing.
        transcriber: the transcriber to use (default: Whisper tiny.en with speech detection,
            `scenesense.predict.transcripts.default_transcriber`).

    Returns:
        The `PredictionResult`, one item per input in order.

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run, or the manifest does not exist.
        ValueError: a malformed manifest or item mapping, a ``batch_size`` or ``window_s`` that
            is not positive, an unknown ``transcribe`` mode, or no modality of the run can be
            extracted from raw inputs.
    """
    _check_sizes(batch_size, window_s)
    check_mode(transcribe)
    items = normalise_inputs(inputs)
    return Predictor(run_dir, device=device, transcribe=transcribe,
                     transcriber=transcriber).predict_items(items, batch_size=batch_size, window_s=window_s)
