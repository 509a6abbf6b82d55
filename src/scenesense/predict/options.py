"""Prediction settings the command line shows before any model code loads, and the clock format."""

from __future__ import annotations

DEFAULT_WINDOW_S = 4.0  # seconds of audio per window of long media (acted clips last 3-5 s)

TRANSCRIBE_MODES = ("auto", "never")
"""``auto``: transcribe items without a text for runs that read text; ``never``: leave their text missing."""


def clock(seconds: float) -> str:
    """A time in a recording as ``"M:SS.s"`` (``"H:MM:SS.s"`` from one hour)."""
    minutes, sec = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{sec:04.1f}" if hours else f"{minutes}:{sec:04.1f}"
