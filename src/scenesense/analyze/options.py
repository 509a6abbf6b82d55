"""Analysis settings the command line shows before any model code loads."""

from __future__ import annotations

DEFAULT_MAX_SEGMENT_S = 10.0
"""Longest segment (seconds): longer speech is cut (acted clips last 3-5 s, MELD utterances about 3 s)."""

TRANSCRIBE_MODES = ("auto", "always", "never")
"""``auto``: transcribe when the run reads text; ``always``: also for the timeline; ``never``."""

SEGMENTERS = ("vad", "transcript", "fixed")
"""How a recording is cut: speech spans, the transcription's segments, or fixed windows."""
