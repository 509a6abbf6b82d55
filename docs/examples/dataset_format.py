"""A new dataset format: a reader of a toy JSON-lines file that writes a feature store, then a run on it.

Each line of `clips.jsonl` is one utterance:
`{"id": "c007", "split": "train", "emotion": "angry", "pitch": [4 numbers], "words": [[8 numbers], ...]}`
(`pitch` becomes an audio vector, `words` a text sequence).

Run it with `python dataset_format.py [OUTPUT_FOLDER]` (default: `example-runs`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import scenesense
from scenesense.data import FeatureSpec, LabelSpace, StoreWriter
from scenesense.data.validation import DataFormatError
from scenesense.datasets.sources import DATASETS, DatasetSource, register_source

EMOTIONS = ("angry", "calm")
FILE_NAME = "clips.jsonl"


@register_source("toy_jsonl")
class ToyJsonlSource(DatasetSource):
    """Utterances from a `clips.jsonl` file: a pitch vector (audio) and word vectors (text)."""

    defaults: ClassVar[Mapping[str, Any]] = {"max_words": 40}  # every accepted `data.params` key
    root_hint: ClassVar[str] = f"the folder holding {FILE_NAME} (--root path/to/toy)"
    modalities: ClassVar[tuple[str, ...]] = ("audio", "text")

    def inputs(self, root: Path | None, params: Mapping[str, Any]) -> list[Path]:
        """The one file `convert` reads: its fingerprint keys the cached store."""
        assert root is not None
        return [root / FILE_NAME]

    def splits(self, root: Path | None, params: Mapping[str, Any]) -> list[str]:
        """The splits named in the file."""
        return sorted({row["split"] for row in self._rows(root)})

    def convert(self, root: Path | None, out: Path, params: Mapping[str, Any]) -> dict[str, Path]:
        """Write one `<split>.h5` per split: `pitch` -> audio `[4]`, `words` -> text `[T, 8]`."""
        rows = self._rows(root)
        features = {
            "audio": FeatureSpec("audio", "vector", dim=4,
                                 provenance={"reader": "toy_jsonl", "field": "pitch"}),
            "text": FeatureSpec("text", "sequence", dim=8, max_len=params["max_words"],
                                provenance={"reader": "toy_jsonl", "field": "words"}),
        }
        space = LabelSpace(EMOTIONS)
        written = {}
        for split in sorted({row["split"] for row in rows}):
            part = [row for row in rows if row["split"] == split]
            with StoreWriter(out / f"{split}.h5", label_space=space, features=features,
                             source={"dataset": "toy_jsonl", "file": FILE_NAME}) as writer:
                writer.append(
                    [row["id"] for row in part],
                    [EMOTIONS.index(row["emotion"]) for row in part],
                    {"audio": [np.asarray(row["pitch"], dtype=np.float32) for row in part],
                     "text": [np.asarray(row["words"][: params["max_words"]], dtype=np.float32)
                              if row["words"] else None for row in part]},  # None: text missing
                )
            written[split] = out / f"{split}.h5"
        return written

    def _rows(self, root: Path | None) -> list[dict[str, Any]]:
        assert root is not None
        path = root / FILE_NAME
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            row = json.loads(line)
            if row.get("emotion") not in EMOTIONS:
                raise DataFormatError(f"{path}: line {number}: emotion {row.get('emotion')!r} is not one of "
                                      f"{list(EMOTIONS)}")
            rows.append(row)
        return rows


def write_toy_file(folder: Path, n: int = 160, seed: int = 0) -> Path:
    """A `clips.jsonl` whose `angry` clips have a higher pitch and other words; every tenth has no words."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        label = i % 2
        split = "train" if i < n * 0.6 else "dev" if i < n * 0.8 else "test"
        pitch = rng.normal(loc=1.5 * label, size=4)
        words = rng.normal(loc=-label, size=(int(rng.integers(2, 12)), 8))
        if i % 10 == 9:
            words = words[:0]  # a clip without a transcript: its text is stored as missing
        lines.append(json.dumps({"id": f"c{i:03d}", "split": split, "emotion": EMOTIONS[label],
                                 "pitch": pitch.round(4).tolist(), "words": words.round(4).tolist()}))
    path = folder / FILE_NAME
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(output: Path) -> None:
    toy = write_toy_file(output / "toy").parent
    config = {
        "name": "toy",
        "data": {"dataset": "toy_jsonl", "root": str(toy), "params": {"max_words": 16},
                 "cache_dir": str(output / "cache")},
        "model": {"out_dim": 16, "head_hidden_dim": 16,
                  "sequence_encoder": {"name": "transformer", "num_layers": 1, "num_heads": 2,
                                       "dim_feedforward": 32}},
        "trainer": {"epochs": 8, "lr": 3e-3, "batch_size": 16, "progress": False},
    }
    run = scenesense.train(config, run_dir=output / "toy_run")
    test = run.evaluate(split="test")
    print("registered datasets:", ", ".join(DATASETS.names()))
    print(f"feature store: {run.spec.store}")
    print(f"run folder: {run.run_dir}")
    print(f"test accuracy: {test.metrics['accuracy']:.3f} on {test.metrics['n']} clips")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "example-runs"))
