"""A new fusion: a gated sum of the modality vectors, registered and trained for one epoch.

Run it with `python fusion.py [OUTPUT_FOLDER]` (default: `example-runs`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Literal

import torch
from torch import nn

import scenesense
from scenesense.fusions import FUSIONS, Fusion
from scenesense.types import EncoderOutput, FusionOutput


@FUSIONS.register("gated_sum")
class GatedSumFusion(Fusion):
    """Weighted sum of the pooled modality vectors, with one learned gate per modality and sample.

    Each pooled vector `[B, D_m]` is projected to `dim`; a linear scorer turns each projection
    into one score, and a softmax over the modalities turns the scores into weights `[B]`.

    Args:
        modality_dims: encoder output size per modality (passed by the model builder).
        dim: size of the fused vector.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "pooled"

    def __init__(self, modality_dims: Mapping[str, int], dim: int = 64) -> None:
        super().__init__(modality_dims)  # checks the sizes, sorts the modalities
        self.project = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in self.modality_dims.items()})
        self.score = nn.Linear(dim, 1)
        self.out_dim = dim

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Fuse the pooled vectors.

        Args:
            encoded: per modality an `EncoderOutput` with `pooled` `[B, D_m]`.

        Returns:
            `FusionOutput` with `fused` `[B, dim]` and one weight `[B]` per modality.
        """
        self.check_encoded(encoded)
        projected = torch.stack([self.project[m](encoded[m].pooled) for m in self.modalities],
                                dim=1)  # [B, M, dim]
        weights = torch.softmax(self.score(torch.tanh(projected)).squeeze(-1), dim=1)  # [B, M]
        fused = (weights.unsqueeze(-1) * projected).sum(dim=1)  # [B, dim]
        per_modality = {m: weights[:, i] for i, m in enumerate(self.modalities)}  # [B] each
        return FusionOutput(fused=fused, modality_weights=per_modality)


def main(output: Path) -> None:
    config = {
        "name": "gated_sum",
        "data": {"dataset": "synthetic", "params": {"n_train": 96, "n_dev": 48, "n_test": 48},
                 "cache_dir": str(output / "cache")},
        "model": {"fusion": {"name": "gated_sum", "dim": 32}, "out_dim": 32, "head_hidden_dim": 32,
                  "sequence_encoder": {"name": "transformer", "num_layers": 1, "num_heads": 2,
                                       "dim_feedforward": 64}},
        "trainer": {"epochs": 1, "lr": 1e-3, "progress": False},
    }
    run = scenesense.train(config, run_dir=output / "gated_sum")
    print("registered fusions:", ", ".join(FUSIONS.names()))
    print(f"run folder: {run.run_dir}")
    print(f"dev weighted F1 after {run.metrics['epochs_run']} epoch: {run.metrics['weighted_f1']:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "example-runs"))
