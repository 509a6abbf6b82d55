"""The Extending pages' examples run as shown: each ``docs/examples/<name>.py`` is the code its page
includes, run here as a user would (a child process, so that what it registers never reaches this
process's registries), and its outcome is checked: the component is registered and does its job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scenesense.data import open_store_split
from scenesense.datasets.sources import DATASETS
from scenesense.encoders import ENCODERS
from scenesense.extraction import EXTRACTORS
from scenesense.fusions import FUSIONS
from scenesense.runs import read_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
PAGES = {"fusion": "fusion.md", "encoder": "encoder.md", "dataset_format": "dataset-format.md",
         "extractor": "extractor.md"}


def run_example(name: str, tmp_path: Path) -> tuple[Path, str]:
    """Run ``docs/examples/<name>.py out`` in ``tmp_path``; return the output folder and stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCENESENSE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "out"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return tmp_path / "out", proc.stdout


def run_check(name: str, code: str, tmp_path: Path) -> None:
    """Run ``code`` in a child process after defining (and registering) what example ``name`` defines."""
    script = f"import runpy\nrunpy.run_path({str(EXAMPLES / f'{name}.py')!r}, run_name='example')\n{code}"
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


def registered(stdout: str, kind: str) -> list[str]:
    """The names an example printed on its ``registered <kind>: a, b, ...`` line."""
    line = next(line for line in stdout.splitlines() if line.startswith(f"registered {kind}:"))
    return line.split(":", 1)[1].strip().split(", ")


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_extending_page_shows_its_tested_example(name):
    page = (REPO / "docs" / "extending" / PAGES[name]).read_text(encoding="utf-8")
    assert f'--8<-- "docs/examples/{name}.py"' in page


def test_fusion_example_registers_and_trains_a_fusion(tmp_path):
    out, stdout = run_example("fusion", tmp_path)
    assert "gated_sum" in registered(stdout, "fusions")
    run_dir = out / "gated_sum"
    assert read_config(run_dir).model.fusion.name == "gated_sum"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1 and 0.0 <= metrics["weighted_f1"] <= 1.0
    assert (run_dir / "modality_weights.png").is_file()  # the fusion's weights reached the run's plots
    assert "gated_sum" not in FUSIONS


FUSION_CONTRACT = """
import torch
from scenesense.fusions import FUSIONS
from scenesense.types import EncoderOutput

fusion = FUSIONS.create("gated_sum", modality_dims={"text": 6, "audio": 4}, dim=8).eval()
assert fusion.modalities == ("audio", "text") and fusion.out_dim == 8
encoded = {"text": EncoderOutput(None, torch.randn(3, 6), None),
           "audio": EncoderOutput(None, torch.randn(3, 4), None)}
out = fusion(encoded)
assert out.fused.shape == (3, 8) and torch.isfinite(out.fused).all()
assert torch.allclose(sum(out.modality_weights.values()), torch.ones(3))
assert torch.equal(fusion(dict(reversed(encoded.items()))).fused, out.fused)  # modality order is irrelevant
absent = {**encoded, "audio": EncoderOutput(None, torch.zeros(3, 4), None)}  # a missing modality is zeros
assert torch.isfinite(fusion(absent).fused).all()
try:
    fusion({"text": encoded["text"]})
except ValueError as err:
    assert "audio" in str(err)
else:
    raise AssertionError("a missing modality was not refused")
"""


def test_fusion_example_keeps_the_fusion_contract(tmp_path):
    run_check("fusion", FUSION_CONTRACT, tmp_path)


ENCODER_CONTRACT = """
import torch
from scenesense.encoders import ENCODERS

torch.manual_seed(0)
encoder = ENCODERS.create("gru", in_dim=5, out_dim=8, dropout=0.0).eval()
x = torch.randn(2, 6, 5)
mask = torch.tensor([[True] * 4 + [False] * 2, [True] * 6])
noisy = x.clone()
noisy[0, 4:] = 100.0  # padded steps: their values must not matter
out = encoder(x, mask)
assert out.sequence.shape == (2, 6, 8) and out.pooled.shape == (2, 8)
assert torch.allclose(encoder(noisy, mask).pooled, out.pooled, atol=1e-6)
assert torch.allclose(encoder(x[:1, :4], None).pooled, out.pooled[:1], atol=1e-6)  # padded == unpadded
empty = encoder(x, torch.zeros(2, 6, dtype=torch.bool))  # a missing modality: no real step
assert torch.equal(empty.pooled, torch.zeros(2, 8))
"""


def test_encoder_example_keeps_the_encoder_contract(tmp_path):
    run_check("encoder", ENCODER_CONTRACT, tmp_path)


def test_encoder_example_registers_and_trains_an_encoder(tmp_path):
    out, stdout = run_example("encoder", tmp_path)
    assert "gru" in registered(stdout, "encoders")
    run_dir = out / "gru"
    assert read_config(run_dir).model.sequence_encoder.name == "gru"
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 1
    weights = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    assert {"encoders.text.gru.weight_ih_l0", "encoders.vision.gru.weight_ih_l0"} <= set(weights)
    assert "gru" not in ENCODERS


def test_dataset_format_example_writes_a_store_and_trains_on_it(tmp_path):
    out, stdout = run_example("dataset_format", tmp_path)
    assert "toy_jsonl" in registered(stdout, "datasets")
    stores = list((out / "cache" / "toy_jsonl").iterdir())
    assert len(stores) == 1
    train = open_store_split(stores[0] / "train.h5")
    assert {name: (f.modality, f.kind, f.dim) for name, f in train.features.items()} == {
        "audio": ("audio", "vector", 4), "text": ("text", "sequence", 8)}
    assert train.label_space.names == ("angry", "calm") and train.n == 96
    assert {p.name for p in stores[0].glob("*.h5")} == {"train.h5", "dev.h5", "test.h5"}
    test = json.loads((out / "toy_run" / "eval" / "test" / "metrics.json").read_text())
    assert test["n"] == 32 and test["accuracy"] >= 0.75  # the run learned from the converted store
    assert "toy_jsonl" not in DATASETS


def test_extractor_example_extracts_items_and_a_store(tmp_path):
    out, stdout = run_example("extractor", tmp_path)
    assert "typography" in registered(stdout, "extractors")
    assert "failed: '   ': no words to describe" in stdout  # one bad item, the others extracted
    assert stdout.count("words (") == 3
    store = out / "typography_store"
    train, dev = open_store_split(store / "train.h5"), open_store_split(store / "dev.h5")
    assert (train.n, dev.n) == (4, 2)
    assert {name: (f.kind, f.dim, f.provenance["extractor"]) for name, f in train.features.items()} == {
        "text": ("sequence", 3, "typography"), "text_summary": ("vector", 4, "typography")}
    assert train.features["text"].provenance["params"] == {"max_words": 16}
    assert "typography" not in EXTRACTORS
