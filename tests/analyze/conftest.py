"""Runs of the analyze tests, trained once per session (see ``tests/analyze/support.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.analyze.support import build_audio_text_run, build_audio_vision_run


@pytest.fixture(scope="session")
def audio_text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Audio statistics (loud = ``angry``, soft = ``calm``) + stub sentence vectors; use it with the
    fixtures ``fakes`` and ``stub_text_extractor``, which register its extractors."""
    pytest.importorskip("av")
    return build_audio_text_run(tmp_path_factory.mktemp("analyze_run"))


@pytest.fixture(scope="session")
def audio_vision_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Audio statistics + fake face sequences; use it with the fixture ``fakes``."""
    pytest.importorskip("av")
    return build_audio_vision_run(tmp_path_factory.mktemp("analyze_vision_run"))
