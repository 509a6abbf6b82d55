"""``scenesense list``: what the registries hold, one plain sentence per entry.

An entry that imports from a ``scenesense[...]`` extra that is not installed (its class declares
``needs``, a `scenesense.utils.extras.Needs`) ends with ``(needs scenesense[<extra>])``; the
registries themselves import no optional dependency.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from scenesense.cli.common import print_json
from scenesense.registry import Registry
from scenesense.utils.extras import Needs

KINDS = ("contexts", "datasets", "encoders", "extractors", "fusions", "losses", "recipes", "transcribers")
"""What ``scenesense list`` shows, one registry each (`registries`)."""


def registries() -> dict[str, Registry[Any]]:
    """Each kind of `KINDS` -> its registry (imported here: the registries load the model code)."""
    from scenesense.datasets.sources import DATASETS
    from scenesense.encoders import ENCODERS
    from scenesense.extraction import EXTRACTORS
    from scenesense.extraction.transcribe import TRANSCRIBERS
    from scenesense.fusions import FUSIONS
    from scenesense.models import CONTEXTS
    from scenesense.recipes import RECIPES
    from scenesense.training import LOSSES

    return {"contexts": CONTEXTS, "datasets": DATASETS, "encoders": ENCODERS, "extractors": EXTRACTORS,
            "fusions": FUSIONS, "losses": LOSSES, "recipes": RECIPES, "transcribers": TRANSCRIBERS}

_ROLE = re.compile(r":([\w:.-]+):`(~?)([^`<]*?)\s*(<[^>]*>)?`")  # `a.b.C`, `text <target>`
_LITERAL = re.compile(r"``(.*?)``|`([^`]*)`")  # ``x`` and `x`
_EMPHASIS = re.compile(r"\*\*(.+?)\*\*|\*(\S(?:.*?\S)?)\*")  # **x** and *x*
_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z(\"']|\s*$)")  # not "e.g. x", "et al. 2017", "v1.2"


def _plain(text: str) -> str:
    """``text`` without RST/Markdown inline markup (literals, emphasis, cross-references).

    A cross-reference reads as its explicit title, a module as its dotted name, any other object as
    its last name (class ``a.b.C`` reads ``C``).
    """

    def role(match: re.Match[str]) -> str:
        kind, short, target, titled = match.groups()
        if titled or (kind == "mod" and not short):
            return target
        return target.rsplit(".", 1)[-1]

    text = _ROLE.sub(role, text)
    text = _LITERAL.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)
    return _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), text)


def summary(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line, as plain text.

    Args:
        doc: a docstring (or ``None``).

    Returns:
        The sentence up to and including its final ``.``, ``!`` or ``?``; the whole first paragraph
        when it has no sentence end; ``""`` for no docstring.

    >>> summary('''Cross-entropy over ``[B, C]`` logits (see
    ...     `torch.nn.CrossEntropyLoss`), e.g. for MELD. Weighted by class.''')
    'Cross-entropy over [B, C] logits (see torch.nn.CrossEntropyLoss), e.g. for MELD.'
    """
    paragraph = (doc or "").strip().split("\n\n", 1)[0]
    text = _plain(" ".join(paragraph.split()))
    end = _SENTENCE_END.search(text)
    return text[: end.end()] if end else text


def _missing_extra(entry: object) -> str | None:
    """The extra an entry needs and that is not (fully) installed, from its ``needs``; else ``None``."""
    needs = getattr(entry, "needs", None)
    return needs.extra if isinstance(needs, Needs) and needs.missing() else None


def _describe(kind: str, entry: object) -> str:
    """The first sentence of a registry entry: a recipe's description, else its docstring."""
    return summary(getattr(entry, "description", None) if kind == "recipes" else entry.__doc__)


def _line(kind: str, entry: object) -> str:
    """`_describe`, plus ``(needs scenesense[<extra>])`` when the entry's extra is missing."""
    text = _describe(kind, entry)
    extra = _missing_extra(entry)
    return text if extra is None else f"{text} (needs scenesense[{extra}])"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered components")
    p.add_argument("kind", nargs="?", choices=KINDS, help="one kind (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else list(KINDS)
    found = registries()
    listing = {k: {n: _line(k, found[k].get(n)) for n in found[k].names()} for k in kinds}
    if args.json:
        print_json(listing)
        return 0
    for kind in kinds:
        print(f"{kind}:")
        for name, desc in listing[kind].items():
            print(f"  {name:<26} {desc}")
    return 0
