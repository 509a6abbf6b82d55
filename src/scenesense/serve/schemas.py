"""The API's request and response bodies (pydantic models, shown in the OpenAPI document).

A JSON request is exactly one of ``{"text": ...}`` and ``{"conversation": [{"speaker": ...,
"text": ...}, ...]}``; any other field is refused (422). Length limits come from the server's
`scenesense.serve.limits.Limits`, given as the validation context ``{"limits": ...}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from scenesense.serve.limits import Limits
from scenesense.utils.extras import require_extra

pydantic = require_extra("pydantic", "serve", "scenesense serve")

_STRICT = pydantic.ConfigDict(extra="forbid")
_OPEN = pydantic.ConfigDict(extra="allow")  # answers may carry more fields than documented here


def _limits(info: Any) -> Limits:  # noqa: ANN401
    context = info.context or {}
    return context.get("limits") or Limits()


def _check_text(text: str, what: str, limits: Limits) -> str:
    if not text.strip():
        raise ValueError(f"{what} is empty")
    if len(text) > limits.max_text_chars:
        raise ValueError(f"{what} has {len(text)} characters, more than the {limits.max_text_chars} this "
                         f"server accepts")
    return text


class Utterance(pydantic.BaseModel):
    """One utterance of a conversation."""

    model_config = _STRICT
    speaker: str = pydantic.Field("", max_length=200, description="who says it (may be empty)")
    text: str = pydantic.Field(description="what is said")

    @pydantic.field_validator("text")
    @classmethod
    def _text(cls, text: str, info: Any) -> str:  # noqa: ANN401
        return _check_text(text, "the utterance's text", _limits(info))


class PredictRequest(pydantic.BaseModel):
    """A JSON request: one text, or one conversation (its utterances in the order they were said)."""

    model_config = pydantic.ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "I can't believe you did that!"},
        {"conversation": [{"speaker": "Ann", "text": "We lost everything."},
                          {"speaker": "Bob", "text": "Oh no. I'm so sorry."}]},
    ]})
    text: str | None = pydantic.Field(None, description="a text to classify")
    conversation: list[Utterance] | None = pydantic.Field(None, description="utterances in order")

    @pydantic.field_validator("text")
    @classmethod
    def _text(cls, text: str | None, info: Any) -> str | None:  # noqa: ANN401
        return None if text is None else _check_text(text, "the text", _limits(info))

    @pydantic.field_validator("conversation")
    @classmethod
    def _conversation(cls, turns: list[Utterance] | None, info: Any) -> list[Utterance] | None:  # noqa: ANN401
        limit = _limits(info).max_utterances
        if turns is not None and not turns:
            raise ValueError("the conversation has no utterances")
        if turns is not None and len(turns) > limit:
            raise ValueError(f"the conversation has {len(turns)} utterances, more than the {limit} this "
                             f"server accepts")
        return turns

    @pydantic.model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        if (self.text is None) == (self.conversation is None):
            raise ValueError("give either 'text' or 'conversation'")
        return self


class Segment(pydantic.BaseModel):
    """A span of a clip and its prediction."""

    model_config = _OPEN
    start: float = pydantic.Field(description="seconds from the start of the clip")
    end: float
    ok: bool
    label: str | None = None
    probabilities: dict[str, float] = pydantic.Field(default_factory=dict)
    value: float | None = None
    error: str | None = None


class _Scores(pydantic.BaseModel):
    model_config = _OPEN
    ok: bool
    label: str | None = pydantic.Field(None, description="the most probable class (None for regression)")
    probabilities: dict[str, float] = pydantic.Field(default_factory=dict,
                                                     description="class -> probability, every class")
    value: float | None = pydantic.Field(None, description="the predicted value of a regression run")
    top: list[tuple[str, float]] = pydantic.Field(default_factory=list,
                                                  description="the most probable classes, best first")
    used: list[str] = pydantic.Field(default_factory=list, description="modalities the model saw")
    missing: list[str] = pydantic.Field(default_factory=list, description="modalities it did not see")
    problems: list[str] = pydantic.Field(default_factory=list,
                                         description="why an input or modality was left out")
    modality_weights: dict[str, float] | None = None
    error: str | None = None


class Prediction(_Scores):
    """The answer for a text or a clip."""

    input: Literal["text", "audio", "video"]
    run: str
    task: str
    labels: list[str]
    warnings: list[str] = pydantic.Field(default_factory=list)
    file: str | None = pydantic.Field(None, description="the uploaded file's name")
    seconds: float | None = pydantic.Field(None, description="the clip's length")
    timeline: list[Segment] = pydantic.Field(default_factory=list, description="a clip's segments, in time order")


class UtterancePrediction(_Scores):
    """The answer for one utterance of a conversation."""

    speaker: str
    text: str


class ConversationPrediction(pydantic.BaseModel):
    """The answer for a conversation: one prediction per utterance, in the order given."""

    model_config = _OPEN
    input: Literal["conversation"]
    run: str
    task: str
    labels: list[str]
    context: bool = pydantic.Field(description="whether each utterance was predicted with the ones before it")
    warnings: list[str] = pydantic.Field(default_factory=list)
    utterances: list[UtterancePrediction]


PredictAnswer = Annotated[Prediction | ConversationPrediction, pydantic.Field(discriminator="input")]


class Health(pydantic.BaseModel):
    """``GET /health``: the run served and the server's limits."""

    model_config = _OPEN
    status: Literal["ok"]
    run: str
    name: str
    task: str
    modalities: list[str]
    labels: list[str]
    inputs: list[str] = pydantic.Field(description="input kinds the run's extractors read")
    context: bool = pydantic.Field(description="whether conversations are predicted with their past context")
    transcribe: str = pydantic.Field(description="'auto': clips without a transcript are transcribed")
    segmenter: str = pydantic.Field(description="how clip timelines are cut: vad, transcript or fixed")
    version: str
    limits: dict[str, int | float] = pydantic.Field(description="max_upload_mb, max_seconds, max_text_chars, "
                                                                "max_utterances")


class ErrorAnswer(pydantic.BaseModel):
    """Every error: a one-line message (``errors``: the invalid fields of a JSON request)."""

    detail: str
    errors: list[dict[str, Any]] | None = None


def validation_message(err: Any) -> tuple[str, list[dict[str, Any]]]:  # noqa: ANN401
    """A pydantic ``ValidationError`` as one line and its JSON-able error list (inputs left out)."""
    errors = err.errors(include_url=False, include_context=False, include_input=False)
    lines = []
    for e in errors:
        where = ".".join(str(part) for part in e["loc"])
        message = str(e["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines) or "invalid request", errors
