"""Small helpers shared by the command modules."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(obj: Any) -> None:  # noqa: ANN401
    """Print ``obj`` as one JSON object on stdout."""
    json.dump(obj, sys.stdout, default=str)
    sys.stdout.write("\n")


def summary_row(name: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a metrics dict, for a table row."""
    return {
        "run": name,
        "n": metrics.get("n", ""),
        "accuracy": metrics["accuracy"],
        "weighted_f1": metrics["weighted_f1"],
        "macro_f1": metrics["macro_f1"],
    }
