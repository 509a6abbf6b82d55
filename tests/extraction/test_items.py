"""``extract_items``: the one extraction loop (batches, checked outputs, per-item errors)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pytest

from scenesense.extraction.base import FeatureExtractor, InputKind, ItemError, OutputSpec
from scenesense.extraction.items import extract_items, one_line


class Lengths(FeatureExtractor):
    """``[len(item), 1]`` per item; ``bad*`` items are ItemErrors, ``boom*`` raise, ``nan*`` give NaN."""

    modality: ClassVar[str] = "text"
    input_kind: ClassVar[InputKind] = "text"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def outputs(self) -> dict[str, OutputSpec]:
        return {"size": OutputSpec("vector", 2)}

    def provenance(self) -> dict[str, object]:
        return {"extractor": "lengths", "params": {}}

    def extract_batch(self, items: Sequence[str]) -> list[dict[str, np.ndarray] | ItemError]:
        self.calls.append(list(items))
        if any(item.startswith("boom") for item in items):
            raise RuntimeError(f"crashed on {len(items)} items")
        return [ItemError(f"{item}: unreadable") if item.startswith("bad")
                else {"size": np.array([np.nan if item.startswith("nan") else len(item), 1.0])} for item in items]


def _flat(batches):
    return [result for batch in batches for result in batch]


def test_batches_keep_order_and_size():
    extractor = Lengths()
    batches = list(extract_items(extractor, ["a", "bb", "bad", "cccc", "nan"], batch_size=2))
    assert extractor.calls == [["a", "bb"], ["bad", "cccc"], ["nan"]]
    assert [len(b) for b in batches] == [2, 2, 1]
    results = _flat(batches)
    np.testing.assert_array_equal(results[1]["size"], [2.0, 1.0])
    assert results[1]["size"].dtype == np.float32
    assert str(results[2]) == "bad: unreadable"
    assert str(results[4]) == "nan: output 'size' holds NaN or inf values"


def test_an_unexpected_exception_is_the_items_error_with_on_error_else_it_propagates():
    extractor = Lengths()
    results = _flat(extract_items(extractor, ["a", "boom", "cc"],
                                  on_error=lambda item, err: ItemError(f"{item}: {one_line(err)}")))
    assert extractor.calls == [["a", "boom", "cc"], ["a"], ["boom"], ["cc"]]  # retried one at a time
    assert str(results[1]) == "boom: RuntimeError: crashed on 1 items"
    assert isinstance(results[0], dict) and isinstance(results[2], dict)
    with pytest.raises(RuntimeError, match="crashed on 2 items"):
        _flat(extract_items(Lengths(), ["a", "boom"]))
    with pytest.raises(RuntimeError, match="crashed on 2 items"):
        _flat(extract_items(Lengths(), ["a", "boom"], on_error=lambda item, err: ItemError(""),
                            fatal=(RuntimeError,)))


def test_results_that_break_the_contract_are_item_errors():
    class Wrong(Lengths):
        def extract_batch(self, items: Sequence[str]) -> list[dict[str, np.ndarray] | ItemError]:
            return [{"other": np.zeros(2)}, {"size": np.zeros(3)}][: len(items)]

    first, second = _flat(extract_items(Wrong(), ["x", "y"]))
    assert str(first) == "x: extractor returned ['other'], expected outputs ['size']"
    assert str(second) == "y: output 'size' has shape [3], expected [2]"

    class Short(Lengths):
        def extract_batch(self, items: Sequence[str]) -> list[dict[str, np.ndarray] | ItemError]:
            return [{"size": np.ones(2)} for _ in items[1:]]

    short = _flat(extract_items(Short(), ["x", "y"], on_error=lambda item, err: ItemError(one_line(err))))
    assert [str(r) for r in short] == ["RuntimeError: extract_batch returned 0 results for 1 items"] * 2
    with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
        _flat(extract_items(Short(), ["x", "y"]))


def test_a_batch_call_other_than_extract_batch():
    extractor = Lengths()
    results = _flat(extract_items(extractor, [("a", "b")], call=lambda pairs: [{"size": np.ones(2)} for _ in pairs]))
    assert extractor.calls == [] and results[0]["size"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("module", ["scenesense.extraction.manifest", "scenesense.extraction.pipeline",
                                    "scenesense.datasets.ravdess_manifest", "scenesense.predict"])
def test_each_entry_module_imports_first_without_a_circular_import(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
