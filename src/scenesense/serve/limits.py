"""What one request may send: upload size, clip length, text length, conversation length."""

from __future__ import annotations

import math
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The limits of a server, checked on every request (over a limit: a 413 or 422 with a message).

    Fields:
        max_upload_bytes: the most bytes of one uploaded file, counted while it streams in
            (``--max-upload-mb``, default 50 MiB).
        max_seconds: the longest clip accepted, in seconds (``--max-seconds``, default 600).
        max_text_chars: the longest text (or utterance, or transcript), in characters.
        max_utterances: the most utterances of one conversation.
        max_json_bytes: the most bytes of a JSON request body.
    """

    max_upload_bytes: int = 50 * MB
    max_seconds: float = 600.0
    max_text_chars: int = 10_000
    max_utterances: int = 500
    max_json_bytes: int = 2 * MB

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_text_chars", "max_utterances", "max_json_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.max_seconds, (int, float)) and math.isfinite(self.max_seconds)
                and self.max_seconds > 0):
            raise ValueError(f"max_seconds must be a positive number of seconds, got {self.max_seconds!r}")

    @classmethod
    def from_megabytes(cls, max_upload_mb: float, max_seconds: float) -> Limits:
        """Limits with the upload size in MiB (as the command line gives it), the rest default.

        Raises:
            ValueError: a size or duration that is not positive.
        """
        if not (math.isfinite(max_upload_mb) and max_upload_mb > 0):
            raise ValueError(f"--max-upload-mb must be > 0, got {max_upload_mb}")
        if not (math.isfinite(max_seconds) and max_seconds > 0):
            raise ValueError(f"--max-seconds must be > 0, got {max_seconds}")
        return cls(max_upload_bytes=max(1, int(max_upload_mb * MB)), max_seconds=float(max_seconds))

    def describe(self) -> dict[str, float | int]:
        """JSON-able summary (``GET /health``)."""
        return {"max_upload_mb": round(self.max_upload_bytes / MB, 3), "max_seconds": self.max_seconds,
                "max_text_chars": self.max_text_chars, "max_utterances": self.max_utterances}
