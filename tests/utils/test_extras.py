"""`scenesense.utils.extras`: install lines, imports through an extra, early checks."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from scenesense.utils.extras import (
    EXTRAS,
    MissingExtraError,
    Needs,
    install_hint,
    missing_modules,
    require_extra,
)

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_install_hint_is_the_quoted_pip_line():
    assert install_hint("audio") == 'pip install "scenesense[audio]"'
    assert install_hint("text") == 'pip install "scenesense[text]"'


def test_install_hint_refuses_an_unknown_extra():
    with pytest.raises(KeyError, match="unknown extra 'sound'; known: text, audio, vision, ray, tracking, speech, serve, export, docs"):
        install_hint("sound")


def test_extras_match_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    optional = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]

    def names(specs):
        return [re.match(r"[\w.\[\]-]+", spec).group() for spec in specs]

    assert set(optional) - {"all", "dev"} == set(EXTRAS)
    for extra, wanted in EXTRAS.items():
        assert names(optional[extra]) == names(wanted), extra


def test_require_extra_returns_an_installed_module():
    assert require_extra("json", "text", "reading JSON") is json
    assert require_extra("importlib.util", "audio", "x").find_spec is not None


def test_require_extra_names_the_missing_module_and_the_install_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "opensmile", None)  # as if not installed
    with pytest.raises(MissingExtraError) as caught:
        require_extra("opensmile", "audio", "eGeMAPS audio features")
    assert str(caught.value) == 'eGeMAPS audio features: opensmile is not installed; run pip install "scenesense[audio]"'
    assert isinstance(caught.value, ImportError)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_require_extra_names_the_missing_parent_of_a_dotted_module():
    with pytest.raises(MissingExtraError, match=r'^face features: scenesense_no_such_pkg is not installed; '
                                                r'run pip install "scenesense\[vision\]"$'):
        require_extra("scenesense_no_such_pkg.interpreter", "vision", "face features")


def test_require_extra_refuses_an_unknown_extra_even_for_an_installed_module():
    with pytest.raises(KeyError, match="unknown extra 'sound'"):
        require_extra("json", "sound", "x")


def test_require_extra_tells_a_broken_install_from_a_missing_one(tmp_path, monkeypatch):
    (tmp_path / "scenesense_broken_pkg.py").write_text("raise ImportError('libfoo.so: cannot open shared object')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingExtraError) as caught:
        require_extra("scenesense_broken_pkg", "audio", "openSMILE audio features")
    assert str(caught.value) == ("openSMILE audio features: scenesense_broken_pkg is installed but cannot be imported "
                                 "(libfoo.so: cannot open shared object); reinstall it with "
                                 'pip install "scenesense[audio]"')


def test_missing_modules_finds_without_importing(monkeypatch):
    monkeypatch.delitem(sys.modules, "wave", raising=False)
    assert missing_modules(["json", "scenesense_no_such_pkg", "wave"]) == ["scenesense_no_such_pkg"]
    assert "wave" not in sys.modules  # found, not imported
    monkeypatch.setitem(sys.modules, "json", None)
    assert missing_modules(["json"]) == ["json"]


def test_missing_modules_counts_a_blocking_import_hook_as_missing(monkeypatch):
    class Blocker:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "scenesense_blocked":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(sys, "meta_path", [Blocker(), *sys.meta_path])
    assert missing_modules(["scenesense_blocked", "json"]) == ["scenesense_blocked"]


def test_needs_check_raises_the_same_line_as_require(monkeypatch):
    needs = Needs("audio", ("json", "opensmile"), "openSMILE audio features")
    monkeypatch.setitem(sys.modules, "opensmile", None)
    assert needs.missing() == ["opensmile"]
    with pytest.raises(MissingExtraError) as early:
        needs.check()
    with pytest.raises(MissingExtraError) as late:
        needs.require("opensmile")
    assert str(early.value) == str(late.value) == \
        'openSMILE audio features: opensmile is not installed; run pip install "scenesense[audio]"'


def test_needs_check_passes_and_require_imports_when_installed():
    needs = Needs("text", ("json",), "x")
    needs.check()
    assert needs.missing() == []
    assert needs.require("json") is json


def test_needs_refuses_an_unknown_extra_when_defined():
    with pytest.raises(KeyError, match="unknown extra 'sound'"):
        Needs("sound", ("json",), "x")
