"""The feature plan: how each modality of a run is made from raw inputs.

For every modality the extractor that made its training features is rebuilt from the feature
provenance in the run's spec (``extractor`` + ``params``, through ``EXTRACTORS``) and the output
that matches the training features is picked; a modality that cannot be rebuilt gets the reason
why (`ModalityPlan.unavailable`) and is treated as missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenesense.data.store import StoreError, find_store_splits, open_store_split
from scenesense.extraction.base import EXTRACTORS, FeatureExtractor, OutputSpec
from scenesense.predict.inputs import INPUT_KINDS
from scenesense.runs import RunSpec


@dataclass
class ModalityPlan:
    """How one modality of a run is featurised from raw inputs.

    Fields:
        modality: the model modality.
        kind: ``"sequence"`` or ``"vector"`` (as trained).
        dim: feature size ``D`` (as trained).
        provenance: the training feature set's provenance.
        extractor: the rebuilt extractor (``None`` when unavailable).
        output: the extractor output that matches the training features.
        unavailable: why raw inputs cannot feed this modality (``None`` when they can).
    """

    modality: str
    kind: str
    dim: int
    provenance: dict[str, Any]
    extractor: FeatureExtractor | None = None
    output: str | None = None
    unavailable: str | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: extractor name, params and output, or the reason it is unavailable."""
        if self.extractor is None:
            return {"unavailable": self.unavailable}
        return {"extractor": self.provenance["extractor"], "params": self.provenance["params"],
                "output": self.output, "input_kind": self.extractor.input_kind}


def feature_provenance(spec: RunSpec, modality: str) -> dict[str, Any] | None:
    """The provenance of the feature set a run was trained on for ``modality``.

    Read from the model spec (`scenesense.runs.RunSpec.provenance_of`); for older runs
    without it, from the training store the spec names (``store`` + the feature set's name) if
    reachable. ``None`` when neither has it.
    """
    recorded = spec.provenance_of(modality)
    if recorded is not None:
        return dict(recorded)
    feature = spec.features.get(modality)
    store, name = spec.store, None if feature is None else feature.name
    if not store or not name or not Path(store).is_dir():
        return None
    for split_file in find_store_splits(store).values():
        try:
            info = open_store_split(split_file).features.get(name)
        except StoreError:
            continue
        if info is not None:
            return dict(info.provenance)
    return None


def recorded_output(provenance: Mapping[str, Any]) -> str | None:
    """The extractor output a feature set holds, as recorded by the extraction pipeline
    (``extraction.output``) or at the top level (``output``); ``None`` when not recorded."""
    extraction = provenance.get("extraction")
    named = extraction.get("output") if isinstance(extraction, Mapping) else None
    named = provenance.get("output") if named is None else named
    return None if named is None else str(named)


def _pick_output(outputs: Mapping[str, OutputSpec], provenance: Mapping[str, Any], kind: str,
                 dim: int) -> tuple[str | None, str | None]:
    """``(output name, None)``, or ``(None, why not)``: the recorded ``output``, else the unique
    output with the trained kind and size."""
    have = ", ".join(f"{n} ({s.kind}, {s.dim}-d)" for n, s in outputs.items())
    named = recorded_output(provenance)
    if named is not None:
        spec = outputs.get(named)
        if spec is None or spec.kind != kind or spec.dim != dim:
            return None, f"its recorded output {named!r} is not a {kind} of {dim} dims (it has {have})"
        return named, None
    matches = [n for n, s in outputs.items() if s.kind == kind and s.dim == dim]
    if len(matches) == 1:
        return matches[0], None
    if not matches:
        return None, f"it has no {kind} output of {dim} dims like the training features (it has {have})"
    return None, (f"several outputs match the training features ({matches}) and the feature "
                  f"provenance records no 'output'")


def plan_modality(spec: RunSpec, modality: str) -> ModalityPlan:
    """Rebuild the extractor that made a run's ``modality`` features (see `ModalityPlan`)."""
    kind, dim = spec.features[modality].kind, spec.features[modality].dim
    provenance = feature_provenance(spec, modality)
    plan = ModalityPlan(modality, kind, dim, provenance or {})
    if provenance is None:
        plan.unavailable = (f"{modality}: the run records no provenance for its {modality} features and its "
                            f"training store ({spec.store}) is not readable, so {modality} cannot be "
                            f"extracted from raw inputs; it is treated as missing")
        return plan
    name, params = provenance.get("extractor"), provenance.get("params")
    if isinstance(name, str) and isinstance(params, dict) and name not in EXTRACTORS:
        plan.unavailable = (f"{modality}: the run's {modality} features were made by extractor {name!r}, "
                            f"which is not registered here (registered: {EXTRACTORS.names()}); "
                            f"{modality} is treated as missing")
        return plan
    if not isinstance(name, str) or name not in EXTRACTORS or not isinstance(params, dict):
        made_by = f"by {name!r}" if isinstance(name, str) else f"from {_short(provenance)}"
        plan.unavailable = (f"{modality}: the run's {modality} features were made {made_by}, not by a "
                            f"registered extractor, so they cannot be extracted from raw media; "
                            f"{modality} is treated as missing")
        return plan
    if provenance.get("dialogue_context") is not None:
        plan.unavailable = (f"{modality}: the run's {modality} features carry dialogue context "
                            f"({provenance['dialogue_context']}: neighbouring turns in the input), which single "
                            f"items cannot give; score a MELD-format CSV with `scenesense evaluate` instead; "
                            f"{modality} is treated as missing")
        return plan
    try:
        extractor = EXTRACTORS.create(name, **params)
    except (TypeError, ValueError) as err:
        plan.unavailable = (f"{modality}: cannot rebuild extractor {name!r} with {params}: {err}; "
                            f"{modality} is treated as missing")
        return plan
    if extractor.modality != modality:
        plan.unavailable = (f"{modality}: extractor {name!r} makes {extractor.modality} features, not "
                            f"{modality}; {modality} is treated as missing")
        return plan
    output, why = _pick_output(extractor.outputs(), provenance, kind, dim)
    if output is None:
        plan.unavailable = f"{modality}: extractor {name!r} cannot reproduce the training features: {why}; " \
                           f"{modality} is treated as missing"
        return plan
    plan.extractor, plan.output = extractor, output
    return plan


def _short(provenance: Mapping[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in provenance.items() if not isinstance(v, (list, dict)))
    return f"a converted feature set ({text})" if text else "an unknown source (no provenance)"


_RUN_RECORDS = ("extraction", "output")  # added to a feature set's provenance by whoever wrote it


def version_warnings(plans: Mapping[str, ModalityPlan]) -> list[str]:
    """One warning per rebuilt extractor whose provenance (e.g. package versions) differs now."""
    out = []
    for m, plan in plans.items():
        if plan.extractor is None:
            continue
        now = {k: v for k, v in plan.extractor.provenance().items() if k not in _RUN_RECORDS}
        then = {k: v for k, v in plan.provenance.items() if k not in _RUN_RECORDS}
        changed = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
        if changed:
            out.append(f"{m}: extractor {plan.provenance['extractor']!r} differs from the one the run was "
                       f"trained with in {changed}; predictions may shift slightly")
    return out


def _input_kinds_used(plans: Mapping[str, ModalityPlan], transcribes: bool) -> set[str]:
    kinds = {p.extractor.input_kind for p in plans.values() if p.extractor is not None}
    kinds |= {"audio"} if transcribes else set()  # transcribed into the text the run reads
    kinds |= {"media"} if kinds & {"audio", "video"} else set()
    return kinds | ({"video"} if "audio" in kinds else set())  # audio extractors read video files too


def ignored_input_warnings(given: Iterable[str], plans: Mapping[str, ModalityPlan],
                           transcribes: bool = False) -> list[str]:
    """One warning per input kind given (``text``, ``audio``, ...) that no modality of the run reads
    (with ``transcribes``, audio, video and media files are read for their speech)."""
    used = _input_kinds_used(plans, transcribes)
    return [f"{kind} inputs are ignored: no modality of this run is extracted from {kind}"
            for kind in sorted(set(given) & set(INPUT_KINDS) - used)]
