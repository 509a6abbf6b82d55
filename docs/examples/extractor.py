"""A new extractor: typographic cues of a transcript (word shapes, exclamations), registered and run.

It is used twice: on a few texts with `extract_items`, then by the extraction pipeline, which
writes a feature store from manifest items.

Run it with `python extractor.py [OUTPUT_FOLDER]` (default: `example-runs`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scenesense.data import open_store_split
from scenesense.extraction import EXTRACTORS, FeatureExtractor
from scenesense.extraction.base import InputKind, ItemError, OutputSpec, package_versions
from scenesense.extraction.items import extract_items
from scenesense.extraction.manifest import ManifestItem
from scenesense.extraction.pipeline import extract_manifest


@EXTRACTORS.register("typography")
class TypographyExtractor(FeatureExtractor):
    """Typographic cues of a text: per word its shape, per text a summary.

    Outputs: `words` `[T, 3]` (length / 10, all capitals, ends in `!`) for the first
    `max_words` words, and `summary` `[4]` (words / 10, share of capital letters, `!` count,
    `?` count).

    Args:
        max_words: most words kept per text.
    """

    modality: ClassVar[str] = "text"
    input_kind: ClassVar[InputKind] = "text"

    def __init__(self, max_words: int = 32) -> None:
        if max_words < 1:
            raise ValueError(f"max_words must be >= 1, got {max_words}")
        self.max_words = max_words

    def outputs(self) -> dict[str, OutputSpec]:
        """`words`: a sequence of 3 values per word; `summary`: 4 values per text."""
        return {"words": OutputSpec("sequence", 3), "summary": OutputSpec("vector", 4)}

    def provenance(self) -> dict[str, Any]:
        """Name and parameters: enough to rebuild this extractor from a store or a run."""
        return {"extractor": "typography", "params": {"max_words": self.max_words},
                "versions": package_versions(["numpy"])}

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        """Both outputs of one text; an empty text is that item's `ItemError`."""
        words = item.split()[: self.max_words]
        if not words:
            raise ItemError(f"{item!r}: no words to describe")
        shapes = [[len(w) / 10, float(w.isupper()), float(w.endswith("!"))] for w in words]
        letters = [c for c in item if c.isalpha()]
        capitals = sum(c.isupper() for c in letters) / max(1, len(letters))
        summary = [len(words) / 10, capitals, item.count("!"), item.count("?")]
        return {"words": np.asarray(shapes, dtype=np.float32),  # [T, 3]
                "summary": np.asarray(summary, dtype=np.float32)}  # [4]


def main(output: Path) -> None:
    extractor = EXTRACTORS.create("typography", max_words=16)
    texts = ["I am SO done with this!", "Fine.", "   ", "Really? Why?"]
    for batch in extract_items(extractor, texts, batch_size=2):
        for result in batch:
            if isinstance(result, ItemError):
                print("failed:", result)
            else:
                summary = [round(float(v), 2) for v in result["summary"]]
                print("words", result["words"].shape, "summary", summary)

    items = [ManifestItem(id=f"u{i}", split="train" if i < 4 else "dev", label=label, text=text)
             for i, (text, label) in enumerate([
                 ("WHAT did you DO?!", "angry"), ("That is lovely.", "calm"), ("STOP IT NOW!", "angry"),
                 ("Let us talk later.", "calm"), ("NO! Never!", "angry"), ("Sounds good to me.", "calm")])]
    report = extract_manifest(items, {"text": ("typography", {"max_words": 16})}, output / "typography_store",
                              progress=False)
    split = open_store_split(report.files["train"])
    print("registered extractors:", ", ".join(EXTRACTORS.names()))
    for name, info in split.features.items():
        print(f"feature set {name}: {info.kind} of dim {info.dim}, made by {info.provenance['extractor']}")
    print(f"store: {report.out_dir} ({report.rows})")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "example-runs"))
