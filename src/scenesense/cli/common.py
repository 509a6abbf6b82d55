"""Small helpers shared by the command modules."""

from __future__ import annotations

import json
import sys
from typing import Any

from scenesense.config import ConfigError, parse_value


def print_json(obj: Any) -> None:  # noqa: ANN401
    """Print ``obj`` as one JSON object on stdout."""
    json.dump(obj, sys.stdout, default=str)
    sys.stdout.write("\n")


HEADLINE_METRICS = {"classification": ("accuracy", "weighted_f1", "macro_f1"),
                    "regression": ("mae", "corr", "acc2", "f1", "acc7"),
                    "sentiment5": ("acc5", "f1_5", "mae", "corr"),
                    "regression_sentiment5": ("mae", "corr", "acc5", "f1_5", "acc2", "f1", "acc7")}


def headline_keys(metrics: dict[str, Any]) -> tuple[str, ...]:
    """The headline metric names for a metrics dict: classification dicts carry ``accuracy``, and
    5-class sentiment scores (``f1_5``) come first for data that has them."""
    if "accuracy" in metrics:
        return HEADLINE_METRICS["sentiment5" if "f1_5" in metrics else "classification"]
    return HEADLINE_METRICS["regression_sentiment5" if "f1_5" in metrics else "regression"]


def summary_row(name: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a metrics dict, for a table row."""
    return {"run": name, "n": metrics.get("n", ""), **{k: metrics[k] for k in headline_keys(metrics)}}


def parse_params(pairs: list[str], prefix: str = "--set ") -> dict[str, Any]:
    """``["key=value", ...]`` -> dict, each value parsed as YAML (``3`` int, ``[1, 2]`` list, ``x`` str).

    Errors name each pair as ``<prefix>key=value`` (e.g. ``--param audio.`` for ``--param``).
    """
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"{prefix}{pair!r} must look like key=value")
        key, raw = pair.split("=", 1)
        out[key.strip()] = parse_value(raw, f"{prefix}{key.strip()}")
    return out
