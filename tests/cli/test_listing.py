"""``scenesense list``: every registered name gets one plain, whole sentence."""

from __future__ import annotations

import doctest
import json
import re

import pytest

import scenesense.cli.listing as listing
from scenesense.cli import main
from scenesense.cli.listing import summary

_MARKUP = re.compile(r"``|`|:\w+:|\*\*")
_ALL = [(kind, name) for kind, registry in sorted(listing.registries().items()) for name in registry.names()]


@pytest.mark.parametrize(("kind", "name"), _ALL, ids=[f"{k}-{n}" for k, n in _ALL])
def test_every_entry_has_a_plain_whole_sentence(kind, name):
    text = listing._describe(kind, listing.registries()[kind].get(name))
    assert text and "\n" not in text and text == text.strip()
    assert not _MARKUP.search(text), text
    if kind != "recipes":  # recipe descriptions are one-line phrases without a final stop
        assert text[-1] in ".!?", f"{kind} {name!r} summary is cut: {text!r}"


def test_summary_strips_markup_and_keeps_the_whole_first_sentence():
    doc = """Fusion over ``[B, D]`` vectors (see :class:`~scenesense.fusions.base.Fusion` and
    :mod:`scenesense.layers`), e.g. for *MELD*; a :func:`title <a.b.c>` too. Second sentence.

    Details.
    """
    assert summary(doc) == ("Fusion over [B, D] vectors (see Fusion and scenesense.layers), e.g. for MELD; "
                            "a title too.")
    assert summary("Focal loss (Lin et al. 2017), gamma 2. More.") == "Focal loss (Lin et al. 2017), gamma 2."
    assert summary("No sentence end here:\n\n- a list") == "No sentence end here:"
    assert summary(None) == ""


def test_summary_docstring_example_runs():
    assert doctest.testmod(listing, raise_on_error=True).attempted >= 1


def test_list_prints_one_line_per_name(capsys):
    assert main(["list", "fusions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "fusions:"
    assert len(lines) == 1 + len(listing.registries()["fusions"].names())
    assert main(["list", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == set(listing.KINDS)
