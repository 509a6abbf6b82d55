"""The FastAPI application: ``POST /predict``, ``GET /health``, the page at ``/`` and the OpenAPI docs.

``POST /predict`` takes either a JSON body (`scenesense.serve.schemas.PredictRequest`: a text
or a conversation) or a ``multipart/form-data`` upload (field ``file``: an audio or video file;
optional field ``text``: its transcript). An upload lives in a temporary folder of its own,
removed when the request ends, whatever happens. Errors are answered as
``{"detail": "<one line>"}``: 413 (too large or too long), 415 (not a supported media file or
content type), 422 (an invalid request, or nothing could be predicted from it).
"""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from scenesense.predict import AUDIO_SUFFIXES, DEFAULT_WINDOW_S, VIDEO_SUFFIXES
from scenesense.serve.limits import Limits
from scenesense.serve.media import inspect_media
from scenesense.serve.schemas import (
    ErrorAnswer,
    Health,
    PredictAnswer,
    PredictRequest,
    pydantic,
    validation_message,
)
from scenesense.serve.service import PredictionError, ServedRun
from scenesense.serve.uploads import (
    FILE_FIELD,
    TEXT_FIELD,
    UploadError,
    read_body,
    receive_upload,
)
from scenesense.utils.extras import MissingExtraError, require_extra

fastapi = require_extra("fastapi", "serve", "scenesense serve")
responses = require_extra("fastapi.responses", "serve", "scenesense serve")
concurrency = require_extra("fastapi.concurrency", "serve", "scenesense serve")
openapi = require_extra("fastapi.openapi.utils", "serve", "scenesense serve")
requests = require_extra("starlette.requests", "serve", "scenesense serve")

PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "connect-src 'self'; img-src 'self' data:; form-action 'none'; base-uri 'none'; "
               "frame-ancestors 'none'")
"""The page's Content-Security-Policy: its inline script and style, requests to this server only."""

_DESCRIPTION = """\
Emotion predictions from a trained scenesense run.

`POST /predict` with a JSON body `{"text": "..."}` or `{"conversation": [{"speaker": "...", \
"text": "..."}, ...]}`, or a `multipart/form-data` upload: field `file` (audio or video), optional \
field `text` (its transcript). `GET /health` names the run, its classes and the server's limits.
"""

_UPLOAD_SCHEMA = {
    "type": "object", "required": [FILE_FIELD],
    "properties": {
        FILE_FIELD: {"type": "string", "format": "binary",
                     "description": f"audio ({' '.join(AUDIO_SUFFIXES)}) or video ({' '.join(VIDEO_SUFFIXES)})"},
        TEXT_FIELD: {"type": "string", "description": "the clip's transcript (optional)"},
    },
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorAnswer, "description": "the upload, the clip or the body is over the server's limit"},
    415: {"model": ErrorAnswer, "description": "not a supported audio or video file, or content type"},
    422: {"model": ErrorAnswer, "description": "an invalid request, or nothing could be predicted from it"},
}


class _Invalid(Exception):
    """A JSON request that fails validation: a one-line message and pydantic's error list."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Any:  # noqa: ANN401
    body: dict[str, Any] = {"detail": message, **({"errors": errors} if errors is not None else {})}
    return responses.JSONResponse(body, status_code=status)


def _page() -> str:
    return resources.files("scenesense.serve").joinpath("page.html").read_text(encoding="utf-8")


def _request_schemas() -> dict[str, Any]:
    """``PredictRequest`` and the models it uses, as OpenAPI component schemas."""
    schema = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "PredictRequest": schema}


def _with_request_schemas(app: Any) -> None:  # noqa: ANN401
    """Add the JSON request models to the app's OpenAPI document (the route reads its body itself)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = openapi.get_openapi(title=app.title, version=app.version, description=app.description,
                                         routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(_request_schemas())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build


def create_app(run_dir: str | Path, limits: Limits | None = None, *, device: str = "cpu",
               window_s: float = DEFAULT_WINDOW_S, transcribe: str = "auto", segmenter: str = "vad",
               temp_dir: str | Path | None = None) -> Any:  # noqa: ANN401
    """The server's FastAPI application; the run is loaded here, once.

    Args:
        run_dir: a finished run directory.
        limits: upload, clip, text and conversation limits (default `Limits()`).
        device: torch device of the model.
        window_s: window length of long clips (see `scenesense.serve.service.ServedRun`).
        transcribe: ``"auto"`` or ``"never"``: transcribe clips sent without their transcript
            when the run reads text.
        segmenter: how clip timelines are cut: ``"vad"``, ``"transcript"`` or ``"fixed"``.
        temp_dir: where each upload's temporary folder is made (default: the system's).

    Returns:
        A ``fastapi.FastAPI``, to run with any ASGI server (one worker: the run is in its memory).

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run.
        ValueError: no modality of the run can be extracted from raw inputs.
        MissingExtraError: the ``serve`` extra is not installed.
    """
    limits = limits or Limits()
    served = ServedRun(run_dir, device=device, window_s=window_s, transcribe=transcribe, segmenter=segmenter)
    page = _page()
    app = fastapi.FastAPI(title=f"scenesense: {Path(run_dir).name}", version=served.health()["version"],
                          description=_DESCRIPTION)
    app.state.served, app.state.limits = served, limits

    @app.exception_handler(UploadError)
    async def _refused(request: fastapi.Request, err: UploadError) -> Any:  # noqa: ANN401
        return _error(err.status, err.message)

    @app.exception_handler(PredictionError)
    async def _unpredictable(request: fastapi.Request, err: PredictionError) -> Any:  # noqa: ANN401
        return _error(422, str(err))

    @app.exception_handler(_Invalid)
    async def _invalid(request: fastapi.Request, err: _Invalid) -> Any:  # noqa: ANN401
        return _error(422, str(err), err.errors)

    @app.exception_handler(MissingExtraError)
    async def _missing(request: fastapi.Request, err: MissingExtraError) -> Any:  # noqa: ANN401
        return _error(501, str(err))

    @app.exception_handler(requests.ClientDisconnect)
    async def _gone(request: fastapi.Request, err: Exception) -> Any:  # noqa: ANN401
        return _error(400, "the client disconnected before the request was complete")

    @app.get("/", response_class=responses.HTMLResponse, include_in_schema=False)
    def index() -> Any:  # noqa: ANN401
        return responses.HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY,
                                                     "X-Content-Type-Options": "nosniff"})

    @app.get("/health", response_model=Health, summary="The run served, its classes and the limits")
    def health() -> dict[str, Any]:
        return {**served.health(), "limits": limits.describe()}

    async def predict_json(request: fastapi.Request) -> dict[str, Any]:
        body = await read_body(request.stream(), request.headers.get("content-length"), limits.max_json_bytes)
        try:
            given = PredictRequest.model_validate_json(body, context={"limits": limits})
        except pydantic.ValidationError as err:
            message, errors = validation_message(err)
            raise _Invalid(message, errors) from None
        if given.text is not None:
            return await concurrency.run_in_threadpool(served.predict_text, given.text)
        turns = [(u.speaker, u.text) for u in given.conversation or []]
        return await concurrency.run_in_threadpool(served.predict_conversation, turns)

    async def predict_upload(request: fastapi.Request) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="scenesense-upload-", dir=temp_dir) as folder:
            upload = await receive_upload(request.stream(), request.headers.get("content-type", ""),
                                          request.headers.get("content-length"), Path(folder), limits)
            if upload.path is None:
                if upload.text is None:
                    raise UploadError(422, f"the form has no '{FILE_FIELD}' field (an audio or video file)")
                return await concurrency.run_in_threadpool(served.predict_text, upload.text)
            info = await concurrency.run_in_threadpool(inspect_media, upload.path, upload.kind, upload.name,
                                                       limits.max_seconds)
            return await concurrency.run_in_threadpool(served.predict_clip, upload.path, upload.kind,
                                                       upload.name, info, Path(folder) / "timeline", upload.text)

    @app.post("/predict", response_model=PredictAnswer, responses=_ERRORS,
              summary="Predict the emotion of a text, a conversation or an uploaded clip",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
                  "multipart/form-data": {"schema": _UPLOAD_SCHEMA}}}})
    async def predict(request: fastapi.Request) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            return await predict_upload(request)
        if kind == "application/json":
            return await predict_json(request)
        raise UploadError(415, f"unsupported content type {kind or '(none)'!r}: send application/json "
                               f"({{\"text\": ...}} or {{\"conversation\": [...]}}) or a multipart/form-data "
                               f"upload (field '{FILE_FIELD}')")

    _with_request_schemas(app)
    return app
