from __future__ import annotations

from pathlib import Path

import pytest

from scenesense.datasets.sources import default_cache_dir
from scenesense.extraction.text_traced import trace_cache_dir
from scenesense.utils.cache import CACHE_ENV, cache_root
from scenesense.utils.model_store import model_cache_dir


@pytest.mark.parametrize("value", [None, ""])
def test_the_root_is_under_the_home_folder_by_default(monkeypatch: pytest.MonkeyPatch, value: str | None):
    if value is None:
        monkeypatch.delenv(CACHE_ENV, raising=False)
    else:
        monkeypatch.setenv(CACHE_ENV, value)
    assert cache_root() == Path.home() / ".cache" / "scenesense"


def test_every_cache_lies_under_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert default_cache_dir() == tmp_path / "c"
    assert model_cache_dir() == tmp_path / "c" / "models"
    assert trace_cache_dir() == tmp_path / "c" / "traced-text"
    monkeypatch.setenv(CACHE_ENV, "~/elsewhere")
    assert cache_root() == Path.home() / "elsewhere"
