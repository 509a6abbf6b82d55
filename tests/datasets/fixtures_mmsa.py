"""Writers of tiny MMSA pickles in the published layout (formats.md §4), and the ``mmsa`` contract fixture.

Layout reproduced: top level ``{train, valid, test}``; per split ``raw_text``, ``text`` (N, L_t, 768),
``text_bert`` (N, 3, L_t) = [ids, mask, segments], ``audio`` with ``-inf`` values, ``vision``,
``audio_lengths`` / ``vision_lengths`` (unaligned only), ``id`` ``"{video}$_${clip}"``,
``annotations``, ``classification_labels``, ``regression_labels`` and, for SIMS,
``regression_labels_T`` / ``_A`` / ``_V``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

MOSI_DIMS = (768, 5, 20)
SIMS_DIMS = (768, 33, 709)
NEG_INF_PER_SPLIT = 3  # -inf values written into each split's audio (inside the true lengths)


def mmsa_split(n: int, *, seed: int, aligned: bool, dims: tuple[int, int, int] = MOSI_DIMS,
               steps: tuple[int, int, int] = (50, 375, 500), sims: bool = False) -> dict[str, Any]:
    """One split dict. Clips of video ``v{seed}`` are numbered 1, 2, 10, 3, ... (10 sorts after 3)."""
    rng = np.random.default_rng(seed)
    d_t, d_a, d_v = dims
    l_t, l_a, l_v = (steps[0],) * 3 if aligned else steps
    text_len = rng.integers(3, l_t + 1, size=n)
    text_len[0] = l_t  # one full-length row
    mask = (np.arange(l_t)[None, :] < text_len[:, None]).astype(np.float64)
    text_bert = np.stack([mask * rng.integers(100, 30000, size=(n, l_t)), mask, np.zeros((n, l_t))], axis=1)
    split: dict[str, Any] = {
        "raw_text": np.array([f"utterance {i} of split {seed}" for i in range(n)]),
        "text": rng.normal(size=(n, l_t, d_t)).astype(np.float32),
        "text_bert": text_bert,
        "audio": np.zeros((n, l_a, d_a), dtype=np.float32),
        "vision": np.zeros((n, l_v, d_v), dtype=np.float32),
    }
    lengths = {"audio": text_len.copy(), "vision": text_len.copy()}
    if not aligned:
        lengths = {"audio": rng.integers(2, l_a + 1, size=n), "vision": rng.integers(2, l_v + 1, size=n)}
        split["audio_lengths"] = [int(t) for t in lengths["audio"]]  # MMSA stores plain lists
        split["vision_lengths"] = [int(t) for t in lengths["vision"]]
    for m, d in (("audio", d_a), ("vision", d_v)):
        for i, t in enumerate(lengths[m]):
            split[m][i, :t] = rng.normal(size=(t, d))
    for k in range(NEG_INF_PER_SPLIT):  # COVAREP's -inf frames
        split["audio"][k % n, 0, k % d_a] = -np.inf
    clips = [1, 2, 10, *range(3, n)][:n]
    split["id"] = [f"v{seed}$_${c}" for c in clips]
    scale = 1.0 if sims else 3.0
    reg = np.round(rng.uniform(-scale, scale, size=n), 1).astype(np.float32)
    reg[1] = 0.0
    split["regression_labels"] = reg
    split["annotations"] = [("Negative", "Neutral", "Positive")[int(np.sign(v)) + 1] for v in reg]
    split["classification_labels"] = (np.sign(reg) + 1).astype(np.float32)
    if sims:
        for m in "TAV":
            split[f"regression_labels_{m}"] = np.round(rng.uniform(-1, 1, size=n), 1).astype(np.float32)
    return split


def write_mmsa(path: Path, splits: dict[str, dict[str, Any]]) -> Path:
    """Pickle ``splits`` (keys train / valid / test) to ``path`` the way MMSA's files were made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(splits, f, protocol=4)
    return path


def mmsa_file(folder: Path, *, aligned: bool = False, sims: bool = False,
              sizes: tuple[int, int, int] = (8, 4, 4),
              **kwargs: Any) -> Path:
    """``aligned_50.pkl`` / ``unaligned_50.pkl`` (MOSI dims) or ``unaligned_39.pkl`` (SIMS dims)."""
    if sims:
        kwargs = {"dims": SIMS_DIMS, "steps": (39, 400, 55), "sims": True, **kwargs}
        name = "unaligned_39.pkl"
    else:
        name = "aligned_50.pkl" if aligned else "unaligned_50.pkl"
    splits = {key: mmsa_split(n, seed=s, aligned=aligned, **kwargs)
              for s, (key, n) in enumerate(zip(("train", "valid", "test"), sizes, strict=True))}
    return write_mmsa(folder / name, splits)


def train_tiny(dataset: str, root: Path, params: dict[str, Any], tmp_path: Path, monkeypatch: Any
               ) -> dict[str, Any]:
    """Train a tiny 1-epoch model over all three modalities of ``dataset``; its dev metrics."""
    from scenesense import api
    from scenesense.config import build_config

    monkeypatch.setenv("SCENESENSE_CACHE", str(tmp_path / "cache"))
    model = {"out_dim": 8, "head_hidden_dim": 8, "modality_dropout": 0.0,
             "sequence_encoder": {"name": "transformer",
                                  "params": {"num_layers": 1, "num_heads": 1, "dim_feedforward": 8}}}
    cfg = build_config({"modalities": ["audio", "text", "vision"], "model": model,
                        "data": {"dataset": dataset, "root": str(root), "params": params},
                        "trainer": {"epochs": 1, "batch_size": 4, "progress": False}})
    return api.train(cfg, tmp_path / "run").metrics


def _build(tmp_path: Path):
    root = tmp_path / "MOSI" / "Processed"
    mmsa_file(root)
    return root, {"label": "classification"}  # regression (the default) is trained in test_mmsa.py


def _corrupt(root: Path) -> str:
    from scenesense.data.safe_pickle import load_pickle

    path = root / "unaligned_50.pkl"
    data = load_pickle(path)
    data["valid"]["audio"] = data["valid"]["audio"][:-1]  # one row short
    write_mmsa(path, data)
    return path.name


FIXTURES: dict[str, dict[str, Any]] = {
    "mmsa": {"build": _build, "corrupt": _corrupt, "modalities": ("audio", "text", "vision")},
}
