"""The experiment report's tables, built from groups of runs.

Each builder returns a `scenesense.evaluation.report_types.Table`: raw rows (full precision,
the CSV and JSON columns) and display columns (the formatted cells Markdown, LaTeX and HTML show), so
every format renders the same rows (`scenesense.evaluation.report_html` renders them). The
paper's table numbers appear in the captions and in the tables' keys (``table3``, ...), not in the
builders' names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from scenesense.evaluation.report_types import Column, Group, Row, Scope, Table
from scenesense.evaluation.statistics import (
    METRICS,
    bootstrap_interval,
    mcnemar_test,
    paired_permutation_test,
    seed_summary,
    verdict,
)


def _missing(v: Any) -> bool:  # noqa: ANN401
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt(v: Any, digits: int = 3) -> str:  # noqa: ANN401
    if _missing(v):
        return "–"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.{digits}f}"
    return str(v)


def _text(key: str, header: str | None = None) -> Column:
    return Column(header or key, lambda r: _fmt(r.get(key)), numeric=False)


def _num(key: str, header: str | None = None, digits: int = 3) -> Column:
    return Column(header or key, lambda r: _fmt(r.get(key), digits))


def _si(key: str, header: str) -> Column:
    def cell(r: Row) -> str:
        v = r.get(key)
        if _missing(v):
            return "–"
        for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= scale:
                return f"{v / scale:.2f}{unit}"
        return _fmt(v, 1)
    return Column(header, cell)


def _mean_std(key: str, header: str, n_key: str = "seeds") -> Column:
    """``"mean ± std"`` from ``<key>_mean`` and ``<key>_std``; the mean alone where the row's ``n_key``
    (its number of seeds) is 1, as one run has no spread."""
    def cell(r: Row) -> str:
        mean = _fmt(r.get(f"{key}_mean"))
        return mean if r.get(n_key) == 1 else f"{mean} ± {_fmt(r.get(f'{key}_std'))}"
    return Column(header, cell)


def _interval(key: str, header: str) -> Column:
    """``"value [low, high]"`` from ``<key>_pooled``, ``<key>_ci_low``, ``<key>_ci_high``."""
    return Column(header, lambda r: f"{_fmt(r.get(f'{key}_pooled'))} "
                                    f"[{_fmt(r.get(f'{key}_ci_low'))}, {_fmt(r.get(f'{key}_ci_high'))}]")


def _signed(key: str, header: str) -> Column:
    return Column(header, lambda r: "–" if _missing(r.get(key)) else f"{r[key]:+.3f}")


def _p(key: str, header: str) -> Column:
    return Column(header, lambda r: "–" if _missing(r.get(key)) else f"{r[key]:.3g}")


def fusion_comparison_table(groups: Sequence[Group], *, n_bootstrap: int = 2000, seed: int = 0) -> Table:
    """The paper's Table 3 (key ``table3``): accuracy and weighted F1 per (modality set, variant), mean
    ± std over seeds and a bootstrap 95% CI of the pooled (seed, utterance) predictions."""
    rows = []
    for g in groups:
        y, p = g.pooled_arrays()
        row: Row = {"modalities": g.modality_set, "variant": g.variant, "seeds": len(g.runs),
                    "n_utterances": len({key for r in g.runs for key in r.ids}), "n_pooled": int(y.size)}
        for metric in ("accuracy", "weighted_f1", "macro_f1"):
            s = seed_summary(g.values(metric))
            row |= {f"{metric}_mean": s.mean, f"{metric}_std": s.std}
        for metric in ("accuracy", "weighted_f1"):
            ci = bootstrap_interval(y, p, metric, n_resamples=n_bootstrap, seed=seed)
            row |= {f"{metric}_pooled": ci.value, f"{metric}_ci_low": ci.low, f"{metric}_ci_high": ci.high}
        rows.append(row | {"split": Scope.of([g]).split, "seed_list": g.seeds})
    columns = (_text("modalities"), _text("variant"), _num("seeds"), _num("n_utterances", "n"),
               _mean_std("accuracy", "accuracy"), _interval("accuracy", "pooled accuracy [95% CI]"),
               _mean_std("weighted_f1", "weighted F1"),
               _interval("weighted_f1", "pooled weighted F1 [95% CI]"))
    scope = Scope.of(groups)
    return Table("table3", "Table 3: accuracy and weighted F1 per modality set and fusion "
                 f"({scope.describe()}; 95% bootstrap CI of the pooled (seed, utterance) predictions)", rows,
                 columns, scope=scope)


def fusion_ablation_table(groups: Sequence[Group], baseline: Group, *, n_permutations: int = 5000,
                          seed: int = 0, alpha: float = 0.05) -> Table:
    """The paper's Table 4 (key ``table4``), the fusion ablation: every variant of one modality set
    against ``baseline`` on the pooled (seed, utterance) pairs, with a paired permutation test on
    weighted F1 and McNemar's test on accuracy."""
    rows, notes = [], []
    for g in groups:
        if g is baseline:
            continue
        y, a, b = g.paired_with(baseline)
        f1 = paired_permutation_test(y, a, b, "weighted_f1", n_resamples=n_permutations, seed=seed)
        acc = mcnemar_test(y, a, b)
        sentences = (verdict(g.variant, baseline.variant, f1, alpha),
                     verdict(g.variant, baseline.variant, acc, alpha))
        rows.append({"modalities": g.modality_set, "variant": g.variant, "baseline": baseline.variant,
                     "n_pairs": f1.n, "weighted_f1": METRICS["weighted_f1"](y, a),
                     "baseline_weighted_f1": METRICS["weighted_f1"](y, b), "delta_weighted_f1": f1.difference,
                     "p_weighted_f1": f1.p_value, "accuracy": METRICS["accuracy"](y, a),
                     "baseline_accuracy": METRICS["accuracy"](y, b), "delta_accuracy": acc.difference,
                     "p_accuracy": acc.p_value, "verdict_weighted_f1": sentences[0],
                     "verdict_accuracy": sentences[1], "split": Scope.of([g, baseline]).split,
                     "seeds": len(g.runs), "seed_list": g.seeds})
        notes += sentences
    columns = (_text("variant"), _text("baseline"), _num("n_pairs", "pairs"),
               _num("weighted_f1", "weighted F1"), _signed("delta_weighted_f1", "Δ weighted F1"),
               _p("p_weighted_f1", "p (permutation)"), _num("accuracy"),
               _signed("delta_accuracy", "Δ accuracy"), _p("p_accuracy", "p (McNemar)"))
    if not rows:
        notes = [f"only one variant ({baseline.variant}) of {baseline.modality_set}: nothing to compare"]
    scope = Scope.of(groups)
    return Table("table4", f"Table 4: fusion ablation on {baseline.modality_set} against {baseline.variant} "
                 f"({scope.describe('pooled')}, paired by seed and utterance id; alpha = {alpha})", rows,
                 columns, tuple(notes), scope)


def per_class_f1_table(model_a: Group, model_b: Group, label_names: Sequence[str]) -> Table:
    """The paper's Table 5 (key ``table5``): per-class F1 of two models, mean ± std over seeds."""
    rows = []
    scope = Scope.of([model_a] if model_a is model_b else [model_a, model_b])
    for name in label_names:
        a = seed_summary([r.metrics["per_class"][name]["f1"] for r in model_a.runs])
        b = seed_summary([r.metrics["per_class"][name]["f1"] for r in model_b.runs])
        rows.append({"class": name, "support": model_a.runs[0].metrics["per_class"][name]["support"],
                     "model_a": model_a.name, "f1_a_mean": a.mean, "f1_a_std": a.std,
                     "model_b": model_b.name, "f1_b_mean": b.mean, "f1_b_std": b.std,
                     "difference": a.mean - b.mean, "split": scope.split, "seeds_a": a.n,
                     "seed_list_a": model_a.seeds, "seeds_b": b.n, "seed_list_b": model_b.seeds})
    columns = (_text("class"), _num("support"), _mean_std("f1_a", f"{model_a.name} F1", "seeds_a"),
               _mean_std("f1_b", f"{model_b.name} F1", "seeds_b"), _signed("difference", "difference"))
    return Table("table5", f"Table 5: per-class F1 of {model_a.name} and {model_b.name} "
                 f"({scope.describe()})", rows, columns, scope=scope)


def _condition_key(c: Mapping[str, Any]) -> tuple[str, str, float | None, str]:
    return (c["kind"], c["modality"], c.get("severity"), c.get("label") or f"{c['kind']} {c['modality']}")


def robustness_table(groups: Sequence[Group]) -> Table | None:
    """Clean and perturbed scores per group from the runs' ``robustness.json`` (mean ± std over the
    seeds that have one); ``None`` when no run has one."""
    rows, covered, splits = [], [], set()
    for g in groups:
        files = [r.robustness for r in g.runs if r.robustness]
        if not files:
            continue
        covered.append(Group(g.modality_set, g.variant, tuple(r for r in g.runs if r.robustness)))
        split = ", ".join(sorted({str(f.get("split", "dev")) for f in files}))
        splits.add(split)
        metric = files[0]["metric"]
        entries: dict[tuple[str, str, float | None, str], list[Mapping[str, Any]]] = {
            ("clean", "", None, "clean"): [f["clean"] for f in files]}
        for f in files:
            for c in f["conditions"]:
                entries.setdefault(_condition_key(c), []).append(c)
        clean = float(np.mean([e[metric] for e in entries[("clean", "", None, "clean")]]))
        for (kind, modality, severity, label), scores in entries.items():
            s = seed_summary([e[metric] for e in scores])
            rows.append({"modalities": g.modality_set, "variant": g.variant, "condition": label, "kind": kind,
                         "modality": modality or None, "severity": severity, "seeds": s.n, "metric": metric,
                         "value_mean": s.mean, "value_std": s.std, "delta_vs_clean": s.mean - clean,
                         **{f"{m}_mean": float(np.mean([e[m] for e in scores]))
                            for m in ("accuracy", "weighted_f1", "macro_f1") if m in scores[0]},
                         "split": split, "seed_list": covered[-1].seeds})
    if not rows:
        return None
    columns = (_text("modalities"), _text("variant"), _text("condition"), _num("seeds"),
               _mean_std("value", rows[0]["metric"]), _signed("delta_vs_clean", "Δ vs clean"))
    scope = Scope.of(covered, ", ".join(sorted(splits)))
    return Table("robustness", f"Robustness: {rows[0]['metric']} with a modality removed, zeroed, noised or "
                 f"with frames dropped ({scope.describe()})", rows, columns, scope=scope)


def degradation_curves(table: Table) -> tuple[dict[str, dict[str, tuple[list[float], list[float]]]],
                                                  dict[str, float]]:
    """Robustness rows with a severity as curves: ``{"<kind> <modality>": {group: (severities, values)}}``
    (sorted by severity), plus each group's clean value."""
    curves: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    clean = {}
    for r in table.rows:
        group = f"{r['modalities']}/{r['variant']}"
        if r["kind"] == "clean":
            clean[group] = r["value_mean"]
        elif r["severity"] is not None:
            xs, ys = curves.setdefault(f"{r['kind']} {r['modality']}", {}).setdefault(group, ([], []))
            xs.append(float(r["severity"]))
            ys.append(r["value_mean"])
    for panel in curves.values():
        for group, (xs, ys) in panel.items():
            order = np.argsort(xs)
            panel[group] = ([xs[i] for i in order], [ys[i] for i in order])
    return curves, clean


_EFFICIENCY = ("parameters", "macs_per_sample", "flops_per_sample", "throughput_per_s", "peak_memory_mb",
               "epoch_seconds", "threads")


def efficiency_table(groups: Sequence[Group]) -> Table | None:
    """Efficiency per group and device from the runs' ``efficiency.json`` (mean over seeds; a field
    missing or ``null`` in every file stays empty); ``None`` when no run has one.

    A latency is a number of milliseconds or ``{"median": ms, ...}`` (the median is shown).
    """
    rows, batches, covered = [], set(), []
    for g in groups:
        by_device: dict[str, list[Mapping[str, Any]]] = {}
        seeds: dict[str, list[int]] = {}
        for r in g.runs:
            if r.efficiency:
                by_device.setdefault(str(r.efficiency.get("device")), []).append(r.efficiency)
                seeds.setdefault(str(r.efficiency.get("device")), []).append(r.seed)
        if by_device:
            covered.append(Group(g.modality_set, g.variant, tuple(r for r in g.runs if r.efficiency)))
        for device, files in by_device.items():
            latency = [{f"latency_ms_{b}": v.get("median") if isinstance(v, Mapping) else v
                        for b, v in (f.get("latency_ms") or {}).items()} for f in files]
            batches |= {k for d in latency for k in d}
            flat = [{**{k: f.get(k) for k in _EFFICIENCY}, **lat}
                    for f, lat in zip(files, latency, strict=True)]
            keys = dict.fromkeys(k for d in flat for k in d)
            rows.append({"modalities": g.modality_set, "variant": g.variant, "device": device,
                         "seeds": len(files), **{k: _mean_or_none([d.get(k) for d in flat]) for k in keys},
                         "seed_list": seeds[device]})
    if not rows:
        return None
    latency_columns = [_num(k, f"latency b={k.rsplit('_', 1)[1]} (ms)", 2)
                       for k in sorted(batches, key=lambda k: int(k.rsplit("_", 1)[1]))]
    columns = (_text("modalities"), _text("variant"), _text("device"), _si("parameters", "parameters"),
               _si("macs_per_sample", "MACs/sample"), _si("flops_per_sample", "FLOPs/sample"),
               *latency_columns,
               _num("throughput_per_s", "samples/s", 1), _num("peak_memory_mb", "peak MB", 1),
               _num("epoch_seconds", "s/epoch", 2))
    scope = replace(Scope.of(covered), split=None)
    return Table("efficiency", "Efficiency: parameters, compute per sample, latency per batch size, "
                 f"throughput, peak memory and time per training epoch (timings, no split scored; "
                 f"{scope.describe('mean')})", rows, columns, scope=scope)


def _mean_or_none(values: Sequence[Any]) -> float | None:
    numbers = [float(v) for v in values if v is not None]
    return float(np.mean(numbers)) if numbers else None
