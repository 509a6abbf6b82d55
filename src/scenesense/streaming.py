"""Predict the utterances of a conversation as they are said, with a run's dialogue context.

A run with a past-only context model (``model.context`` with ``direction: past``) classifies an
utterance from it and the utterances before it in its dialogue, never from later ones, so it can
run live. `ConversationStream` keeps, per dialogue, the fused vector of every utterance
said so far (only the last ``receptive_field`` positions when the context model's reach is
bounded: relative positions make that truncation exact) and classifies each new utterance from
that history. `predict_conversation` feeds whole conversations (a MELD-format CSV, or item
mappings) through one stream; its predictions equal those of ``scenesense evaluate`` on the same
dialogues.

Raw inputs are featurised as `scenesense.predict.predict` does (the extractors rebuilt from
the run's feature provenance); a run without context is accepted and classifies each utterance
alone, exactly as ``predict``.

Contents, top-down: the conversation CSV reader, `ConversationStream`,
`predict_conversation`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from scenesense.data.collate import collate
from scenesense.data.dialogues import dialogue_layout
from scenesense.data.meld import int_field, meld_csv_rows, repair_text
from scenesense.data.validation import DataFormatError
from scenesense.predict.inputs import InputItem, item_from_mapping, item_from_string
from scenesense.predict.model import predict_chunk, prepare_chunk, scores_from_output
from scenesense.predict.output import ItemPrediction, PredictionResult
from scenesense.predict.plan import ignored_input_warnings, plan_modality, version_warnings
from scenesense.runs import load_run
from scenesense.types import DialogueLayout, ModelOutput

log = logging.getLogger(__name__)

CONVERSATION_COLUMNS = ("Utterance", "Speaker", "Dialogue_ID", "Utterance_ID")  # the MELD names


# ---------------------------------------------------------------------------------------------
# conversations from a MELD-format CSV


@dataclass(frozen=True)
class ConversationUtterance:
    """One utterance of a conversation file.

    Fields:
        id: ``"dia{D}_utt{U}"``, the key MELD stores use.
        dialogue: ``"dia{D}"``.
        dialogue_id, utterance_id: the integer ``Dialogue_ID`` and ``Utterance_ID``.
        speaker: the speaker's name (``""`` when unnamed).
        text: the transcript.
    """

    id: str
    dialogue: str
    dialogue_id: int
    utterance_id: int
    speaker: str
    text: str


def read_conversation_csv(path: str | os.PathLike[str]) -> list[ConversationUtterance]:
    """Read the transcripts of a MELD-format CSV, labelled or not.

    Only ``Utterance``, ``Speaker``, ``Dialogue_ID`` and ``Utterance_ID`` are needed (a published
    ``*_sent_emo.csv`` works; labels and other columns are ignored). Decoding and text repair are
    those of `scenesense.data.meld.read_meld_csv`, so texts equal the ones a MELD store holds.

    Returns:
        Utterances in file order.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: a missing column, a non-integer id, a duplicate ``(Dialogue_ID,
            Utterance_ID)`` or no rows (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such conversation file")
    out: list[ConversationUtterance] = []
    seen: dict[str, int] = {}
    for line, row in meld_csv_rows(path, CONVERSATION_COLUMNS):
        where = f"{path}: line {line}"
        dia, utt = int_field(row, "Dialogue_ID", where), int_field(row, "Utterance_ID", where)
        key = f"dia{dia}_utt{utt}"
        if key in seen:
            raise DataFormatError(f"{where}: duplicate utterance {key}, first at line {seen[key]}")
        seen[key] = line
        speaker = repair_text(row["Speaker"]).strip()
        text = repair_text(row["Utterance"])
        out.append(ConversationUtterance(key, f"dia{dia}", dia, utt, speaker, text))
    if not out:
        raise DataFormatError(f"{path}: no utterances")
    return out


# ---------------------------------------------------------------------------------------------
# the stream


@dataclass
class _Dialogue:
    """What a stream remembers of one dialogue: utterances said, and the fused history."""

    said: int = 0  # utterances given so far (also those that could not be extracted)
    positions: list[int] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)
    fused: list[torch.Tensor] = field(default_factory=list)  # [D] each

    def keep_last(self, positions: int) -> None:
        """Forget utterances more than ``positions`` positions before the latest one."""
        start = next(i for i, p in enumerate(self.positions) if p >= self.positions[-1] - positions)
        del self.positions[:start], self.speakers[:start], self.fused[:start]


def _validate_streamable(cfg: Any, model: torch.nn.Module, run_dir: str | Path) -> None:  # noqa: ANN401
    """Refuse runs whose predictions need utterances that have not been said yet."""
    if cfg.data.speaker_norm:
        raise ValueError(f"{run_dir}: the run normalises features per speaker (data.speaker_norm), which "
                         "needs every utterance of a speaker first; it cannot predict a conversation as it "
                         "runs")
    context = getattr(model, "context", None)
    if context is not None and getattr(context, "direction", None) != "past":
        raise ValueError(f"{run_dir}: the run's context model reads direction "
                         f"{getattr(context, 'direction', None)!r}, i.e. later utterances too; only a 'past' "
                         "context (model.context direction: past) can predict a conversation as it runs")


class ConversationStream:
    """Classify utterances one by one, each with the earlier utterances of its dialogue as context.

    Args:
        run_dir: a finished run; with dialogue context its context model must be past-only.
        device: torch device of the model.

    Attributes:
        run_dir, task, label_names, modalities: of the run.
        features: modality -> how raw inputs are featurised (as `PredictionResult.features`).
        warnings: run-level warnings (logged once, here).
        receptive_field: earlier positions a prediction can depend on (``None``: unbounded; 0 for
            a run without context).

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run.
        ValueError: a run with a context model that reads later utterances, a run with
            ``data.speaker_norm``, or a run none of whose modalities can be extracted.
    """

    def __init__(self, run_dir: str | Path, device: str = "cpu") -> None:
        cfg, spec, model = load_run(run_dir)
        _validate_streamable(cfg, model, run_dir)
        self.run_dir, self.device = Path(run_dir), device
        self.model = model.to(device).eval()
        self.spec = spec
        self.modalities = tuple(sorted(cfg.modalities))
        self.plans = {m: plan_modality(spec, m) for m in self.modalities}
        unavailable = [p.unavailable for p in self.plans.values() if p.unavailable]
        if all(p.extractor is None for p in self.plans.values()):
            raise ValueError(f"{run_dir}: none of the run's modalities can be extracted from raw inputs: "
                             + "; ".join(unavailable))
        self.warnings = tuple(unavailable + version_warnings(self.plans))
        for message in self.warnings:
            log.warning("%s", message)
        self.task = spec.task
        self.label_names = spec.label_names
        self.features = {m: p.describe() for m, p in self.plans.items()}
        self.context = getattr(model, "context", None)
        self.receptive_field = 0 if self.context is None else getattr(self.context, "receptive_field", None)
        self.vocabulary = spec.speaker_vocabulary
        self.given_kinds: set[str] = set()  # input kinds seen so far (text, audio, ...)
        self._dialogues: dict[str, _Dialogue] = {}
        self._count = 0

    def add(self, item: InputItem | str, *, dialogue: str = "", speaker: str = "") -> ItemPrediction:
        """Classify the next utterance of ``dialogue`` from it and that dialogue's history.

        Args:
            item: a text or media path (routed as `scenesense.predict.route_input`), or a
                mapping of ``text``/``audio``/``video``/``media`` and an optional ``id`` (default:
                the number of items added before, from 0); it may carry ``dialogue`` and
                ``speaker`` too.
            dialogue: the dialogue it belongs to (default: the item's ``dialogue``, else ``""``).
            speaker: who says it (default: the item's ``speaker``, else unnamed).

        Returns:
            Its `scenesense.predict.ItemPrediction`. An item none of whose modalities can be
            extracted gets an error row and stays out of the history (it still counts as said,
            so later utterances keep their true distance to the earlier ones).

        Raises:
            ValueError: a mapping with unknown keys, or an item that is neither a string nor a mapping.
        """
        if isinstance(item, Mapping):
            given = {k: v for k, v in item.items() if k != "dialogue"}
            dialogue = dialogue or str(item.get("dialogue") or "")
            speaker = speaker or str(item.get("speaker") or "")
            normalised = item_from_mapping(self._count, {**given, "speaker": speaker})
        elif isinstance(item, str):
            normalised = item_from_string(self._count, item)
            normalised.speaker = speaker
        else:
            raise ValueError(f"item {self._count}: expected a string or a mapping, got {type(item).__name__}")
        self._count += 1
        self.given_kinds |= set(normalised.raw)
        state = self._dialogues.setdefault(dialogue, _Dialogue())
        position, state.said = state.said, state.said + 1
        if self.context is None:
            return predict_chunk(self.model, self.spec, self.plans, [normalised], self.device)[0]
        results, samples = prepare_chunk(self.spec, self.plans, [normalised])
        if not samples:
            return results[0]
        return replace(results[0], **self._classify(samples, state, position, speaker))

    def reset(self, dialogue: str | None = None) -> None:
        """Forget one dialogue (its next utterance is its first again), or every dialogue (``None``)."""
        if dialogue is None:
            self._dialogues.clear()
        else:
            self._dialogues.pop(dialogue, None)

    def _classify(self, samples: Sequence[Any], state: _Dialogue, position: int,
                  speaker: str) -> dict[str, Any]:
        """Fuse one utterance alone, append it to ``state`` and classify it in context."""
        regression = self.task == "regression"
        batch = collate(samples, task="regression" if regression else "classification")
        to = self.device
        with torch.no_grad():
            fused = self.model.utterance.encode({m: x.to(to) for m, x in batch["inputs"].items()},
                                                {m: x.to(to) for m, x in batch["masks"].items()},
                                                {m: x.to(to) for m, x in batch["present"].items()})
            state.positions.append(position)
            state.speakers.append(speaker)
            state.fused.append(fused.fused[0])  # [D]
            if self.receptive_field is not None:
                state.keep_last(self.receptive_field)
            turns = [{"position": p, "speaker": s} for p, s in zip(state.positions, state.speakers)]
            layout = dialogue_layout([turns], self.vocabulary)  # type: ignore[list-item]
            x = torch.stack(state.fused).unsqueeze(0)  # [1, L, D]: the dialogue so far
            context = self.context(x, DialogueLayout(*(t.to(to) for t in layout)))[:, -1]  # [1, D]
            out = ModelOutput(logits=self.model.utterance.head(context), fused=context, aux_losses=dict(fused.aux_losses or {}),
                              modality_weights=fused.modality_weights, attention=fused.attention)
        return scores_from_output(out, batch["masks"], self.label_names, regression)[0]

    def result(self, items: Sequence[ItemPrediction]) -> PredictionResult:
        """A `scenesense.predict.PredictionResult` of ``items`` predicted by this stream."""
        warnings = self.warnings + tuple(ignored_input_warnings(self.given_kinds, self.plans))
        return PredictionResult(self.run_dir, self.task, self.label_names, self.modalities, self.features,
                                warnings, tuple(items))


# ---------------------------------------------------------------------------------------------
# whole conversations


def _conversation_items(source: Sequence[Mapping[str, Any]] | str | os.PathLike[str],
                        ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """Items (with ``dialogue``/``speaker``) in input order, and the order key each is fed by."""
    if isinstance(source, (str, os.PathLike)):
        rows = read_conversation_csv(source)
        items = [{"id": u.id, "text": u.text, "dialogue": u.dialogue, "speaker": u.speaker} for u in rows]
        return items, [(u.dialogue_id, u.utterance_id) for u in rows]
    if not source:
        raise ValueError("nothing to predict: no utterances")
    for i, given in enumerate(source):
        if not isinstance(given, Mapping):
            raise ValueError(f"item {i}: expected a mapping with dialogue, speaker and inputs, "
                             f"got {type(given).__name__}")
    return [dict(given) for given in source], [(i,) for i in range(len(source))]


def predict_conversation(run_dir: str | Path, source: Sequence[Mapping[str, Any]] | str | os.PathLike[str],
                         *, device: str = "cpu") -> PredictionResult:
    """Predict every utterance of one or more conversations, each from its past only.

    Args:
        run_dir: a finished run (see `ConversationStream`).
        source: a MELD-format CSV path (`read_conversation_csv`; ids ``dia{D}_utt{U}``, fed
            in order of ``(Dialogue_ID, Utterance_ID)``, never by row order), or a sequence of item
            mappings as `ConversationStream.add` takes them, with ``dialogue`` and
            ``speaker`` keys, each dialogue's utterances in the order they were said.
        device: torch device of the model.

    Returns:
        The `scenesense.predict.PredictionResult`, one item per utterance in input order.

    Raises:
        FileNotFoundError, DataFormatError: a missing or malformed CSV.
        ValueError: a run that cannot stream (see `ConversationStream`), or a bad item.
    """
    items, keys = _conversation_items(source)
    stream = ConversationStream(run_dir, device)
    predicted: list[ItemPrediction | None] = [None] * len(items)
    for i in sorted(range(len(items)), key=lambda i: keys[i]):
        predicted[i] = stream.add(items[i])
    return stream.result([p for p in predicted if p is not None])
