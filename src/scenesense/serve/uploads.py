"""Request bodies read in bounded memory: JSON bodies, and multipart uploads streamed to a folder.

An uploaded file is written, as its bytes arrive, to ``<folder>/upload<suffix>`` in the
request's own temporary folder, and the upload stops with a 413 as soon as it passes
`scenesense.serve.limits.Limits.max_upload_bytes` (or at once, when the declared
``Content-Length`` is already too large). The client's file name is never used as a path: only
its suffix, checked against the audio and video suffixes `scenesense predict` reads, and its last
component, shown in messages. Form fields other than ``file`` and ``text`` are refused (422).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from scenesense.predict import AUDIO_SUFFIXES, VIDEO_SUFFIXES
from scenesense.serve.limits import MB, Limits
from scenesense.utils.extras import require_extra

multipart = require_extra("python_multipart.multipart", "serve", "scenesense serve")

FILE_FIELD = "file"
TEXT_FIELD = "text"
_FORM_OVERHEAD = 64 * 1024  # bytes of a form beyond its file: boundaries, part headers, the text field
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


class UploadError(Exception):
    """A request the server refuses: an HTTP status (4xx) and a one-line message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Upload:
    """What a multipart request carried.

    Fields:
        path: the uploaded file in the request's temporary folder (``None``: no file was sent).
        name: the client's file name reduced to its last component, for messages only.
        kind: ``"audio"`` or ``"video"``, from the file name's suffix.
        size: bytes of the file.
        text: the ``text`` field (a transcript), ``None`` when not sent.
    """

    path: Path | None = None
    name: str = ""
    kind: str = ""
    size: int = 0
    text: str | None = None


def display_name(filename: str) -> str:
    """The last component of a client's file name, without control characters, at most 100 characters."""
    last = filename.replace("\\", "/").rsplit("/", 1)[-1]
    last = _UNSAFE.sub("", last).strip()[-100:]
    return last if last not in ("", ".", "..") else "upload"


def media_kind(name: str) -> str:
    """``"audio"`` or ``"video"`` by the suffix of ``name``.

    Raises:
        UploadError: 415, a suffix that is neither.
    """
    suffix = Path(name).suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise UploadError(415, f"{name}: unsupported file type {suffix or '(no suffix)'!r}; send audio "
                           f"({' '.join(AUDIO_SUFFIXES)}) or video ({' '.join(VIDEO_SUFFIXES)})")


def _too_large(limit: int, what: str) -> UploadError:
    return UploadError(413, f"{what} is larger than the {limit / MB:g} MiB this server accepts")


def declared_length(content_length: str | None) -> int | None:
    """The ``Content-Length`` header as a number of bytes (``None`` when absent).

    Raises:
        UploadError: 400, a header that is not a number.
    """
    if content_length is None:
        return None
    try:
        return int(content_length)
    except ValueError:
        raise UploadError(400, f"invalid Content-Length header {content_length!r}") from None


async def read_body(chunks: AsyncIterator[bytes], content_length: str | None, limit: int) -> bytes:
    """The whole body, or a 413 when its declared length or the bytes received pass ``limit``."""
    declared = declared_length(content_length)
    if declared is not None and declared > limit:
        raise _too_large(limit, "the request body")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise _too_large(limit, "the request body")
    return bytes(body)


class _FormReader:
    """Callbacks of a streaming multipart parser: the file part to disk, the text field in memory."""

    def __init__(self, folder: Path, limits: Limits) -> None:
        self.folder, self.limits = folder, limits
        self.upload = Upload()
        self._headers: dict[str, str] = {}
        self._name, self._value = bytearray(), bytearray()
        self._file: BinaryIO | None = None
        self.text: bytearray | None = None
        self._part = ""

    def callbacks(self) -> dict[str, object]:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._end}

    def _begin(self) -> None:
        self._headers, self._part = {}, ""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        key = self._name.decode("latin-1").lower()
        self._headers[key] = self._value.decode("utf-8", "replace")
        self._name, self._value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, options = multipart.parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if name == FILE_FIELD:
            self._open_file(filename)
        elif name == TEXT_FIELD:
            if self.text is not None:
                raise UploadError(422, "the form has more than one 'text' field")
            self.text = bytearray()
        else:
            shown = display_name(name) if name else "(unnamed)"
            raise UploadError(422, f"unknown form field {shown!r}; send '{FILE_FIELD}' (an audio or video "
                                   f"file) and optionally '{TEXT_FIELD}' (its transcript)")
        self._part = name

    def _open_file(self, filename: bytes | None) -> None:
        if self.upload.path is not None:
            raise UploadError(422, "send one file per request")
        if filename is None:
            raise UploadError(422, f"the '{FILE_FIELD}' field must be a file (e.g. curl -F file=@clip.wav)")
        name = display_name(filename.decode("utf-8", "replace"))
        kind = media_kind(name)
        path = self.folder / f"upload{Path(name).suffix.lower()}"  # only the whitelisted suffix is kept
        self.upload.path, self.upload.name, self.upload.kind = path, name, kind
        self._file = path.open("xb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part == FILE_FIELD:
            assert self._file is not None
            self.upload.size += end - start
            if self.upload.size > self.limits.max_upload_bytes:
                raise _too_large(self.limits.max_upload_bytes, f"{self.upload.name}")
            self._file.write(data[start:end])
        elif self._part == TEXT_FIELD:
            assert self.text is not None
            self.text += data[start:end]
            if len(self.text) > 4 * self.limits.max_text_chars:  # UTF-8: at most 4 bytes a character
                raise UploadError(422, f"the text is longer than {self.limits.max_text_chars} characters")

    def _end(self) -> None:
        self.close()
        self._part = ""

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def receive_upload(chunks: AsyncIterator[bytes], content_type: str, content_length: str | None,
                         folder: Path, limits: Limits) -> Upload:
    """Stream a ``multipart/form-data`` body into ``folder`` (see the module docstring).

    Args:
        chunks: the request body as it arrives.
        content_type: the ``Content-Type`` header (with its ``boundary``).
        content_length: the ``Content-Length`` header, if sent.
        folder: the request's temporary folder (its owner removes it).
        limits: the server's limits.

    Returns:
        The `Upload`; its ``path`` is ``None`` when the form had no file.

    Raises:
        UploadError: 413 for a file over the limit, 415 for an unsupported suffix, 422 for an
            unknown or repeated field, a text over the limit, a malformed form or an empty file.
    """
    declared = declared_length(content_length)
    if declared is not None and declared > limits.max_upload_bytes + _FORM_OVERHEAD:
        raise _too_large(limits.max_upload_bytes, "the upload")
    _, options = multipart.parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise UploadError(422, "a multipart/form-data body needs a boundary in its Content-Type")
    reader = _FormReader(folder, limits)
    parser = multipart.MultipartParser(boundary, reader.callbacks())
    received = 0
    try:
        async for chunk in chunks:
            parser.write(chunk)  # the file part is counted (and stopped) as it is written
            received += len(chunk)
            if received > limits.max_upload_bytes + _FORM_OVERHEAD:  # the rest of the form
                raise _too_large(limits.max_upload_bytes, "the upload")
        parser.finalize()
    except multipart.MultipartParseError as err:
        raise UploadError(422, f"malformed multipart/form-data body ({err})") from None
    finally:
        reader.close()
    upload = reader.upload
    if reader.text is not None:
        try:
            upload.text = reader.text.decode("utf-8")
        except UnicodeDecodeError:
            raise UploadError(422, "the text field is not UTF-8") from None
        if len(upload.text) > limits.max_text_chars:
            raise UploadError(422, f"the text is longer than {limits.max_text_chars} characters")
    if upload.path is not None and upload.size == 0:
        raise UploadError(422, f"{upload.name}: the file is empty")
    return upload
