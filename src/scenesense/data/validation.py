"""Validation reports: a source checked against its published facts (``scenesense data validate``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DataFormatError(ValueError):
    """A dataset file does not follow its published format (one line naming the file)."""


@dataclass(frozen=True)
class Check:
    """One fact checked: ``name`` (what), ``ok``, ``detail`` (what was found vs expected)."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class ValidationReport:
    """Everything ``validate`` found about one source.

    Fields: ``dataset`` (source name); ``root``; ``counts`` (free-form JSON-able facts such as
    rows per split and label histograms); ``checks`` (list of `Check`).
    """

    dataset: str
    root: str
    counts: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record a check and return ``ok``."""
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    def expect_equal(self, name: str, found: Any, expected: Any) -> bool:  # noqa: ANN401
        """Record ``found == expected`` with both values in the detail."""
        ok = found == expected
        return self.check(name, ok, f"{found!r}" if ok else f"found {found!r}, expected {expected!r}")

    @property
    def errors(self) -> int:
        """Number of failed checks."""
        return sum(not c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``--json`` output)."""
        return {"dataset": self.dataset, "root": self.root, "errors": self.errors, "counts": self.counts,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}

    def format(self) -> str:
        """Human-readable lines: one per check, then a summary."""
        lines = [f"{self.dataset} at {self.root}"]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        lines.append(f"{len(self.checks) - self.errors}/{len(self.checks)} checks passed")
        return "\n".join(lines)
