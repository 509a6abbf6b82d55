"""``scenesense serve``: a trained run behind an HTTP API, with a web page on the same server.

`create_app` loads a run once and returns a FastAPI application:

* ``POST /predict``: a JSON text (``{"text": ...}``), a JSON conversation
  (``{"conversation": [{"speaker": ..., "text": ...}, ...]}``) or an uploaded audio or video
  file (``multipart/form-data``, field ``file``; optional ``text``: its transcript). A clip
  longer than two windows is predicted window by window (its ``timeline``).
* ``GET /health``: the run, its modalities and classes, the limits, the version.
* ``GET /``: a page to type a sentence or upload a clip and see the probabilities and timeline.
* ``GET /docs`` and ``GET /openapi.json``: the API's OpenAPI description.

Uploads are streamed into a temporary folder of their own, removed when the request ends, and
checked against `Limits` (size while streaming, then length, after decoding proves the file is
media). The client's file name is never used as a path; nothing from a request is unpickled.
The ``serve`` extra (FastAPI, uvicorn, python-multipart) is needed: ``pip install
"scenesense[serve]"``; uploads also need PyAV (the ``audio`` extra).

Modules, top-down: `scenesense.serve.app` (the routes), `scenesense.serve.service` (the
run and its predictions), `scenesense.serve.uploads` (bounded bodies, streamed uploads),
`scenesense.serve.media` (sniffing uploads), `scenesense.serve.schemas` (request and
answer models), `scenesense.serve.limits` and `scenesense.serve.server` (uvicorn).
"""

from __future__ import annotations

from scenesense.serve.app import create_app as create_app
from scenesense.serve.limits import Limits as Limits
from scenesense.serve.server import bind as bind
from scenesense.serve.server import is_loopback as is_loopback
from scenesense.serve.server import run_server as run_server
from scenesense.serve.server import url_of as url_of

__all__ = ["Limits", "bind", "create_app", "is_loopback", "run_server", "url_of"]
