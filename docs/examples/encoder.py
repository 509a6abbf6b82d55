"""A new encoder: a bidirectional GRU over sequence features, registered and trained for one epoch.

Run it with `python encoder.py [OUTPUT_FOLDER]` (default: `example-runs`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar, Literal

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import scenesense
from scenesense.encoders import ENCODERS, ModalityEncoder, validate_sequence_input
from scenesense.layers import masked_mean
from scenesense.types import EncoderOutput


@ENCODERS.register("gru")
class GRUSequenceEncoder(ModalityEncoder):
    """A bidirectional GRU over `[B, T, D]` features, mean-pooled over the real steps.

    Padded steps never reach the GRU, so a padded sequence encodes exactly as the same sequence
    without padding.

    Args:
        in_dim: input feature size `D` (derived from the data).
        out_dim: output size (derived from `model.out_dim`; even, half per direction).
        num_layers: stacked GRU layers.
        dropout: dropout on the output sequence.
    """

    input_kind: ClassVar[Literal["sequence", "vector"]] = "sequence"

    def __init__(self, in_dim: int, out_dim: int = 128, num_layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        if out_dim % 2:
            raise ValueError(f"out_dim must be even (half per direction), got {out_dim}")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.gru = nn.GRU(in_dim, out_dim // 2, num_layers=num_layers, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """Encode a batch of sequences.

        Args:
            x: `[B, T, in_dim]` features, zero padded.
            mask: `[B, T]` booleans, True = real step (`None`: every step is real).

        Returns:
            `EncoderOutput` with `sequence` `[B, T, out_dim]`, `pooled` `[B, out_dim]` and the mask.
        """
        mask = validate_sequence_input(x, mask, self.in_dim)  # [B, T] bool
        # Packing hides the padded steps from both directions; a row without any real step (a
        # missing modality) is run over one step and zeroed below.
        lengths = mask.sum(dim=1).clamp(min=1).cpu()  # [B]
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        sequence, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])
        sequence = self.dropout(sequence) * mask.unsqueeze(-1)  # [B, T, out_dim], zero at padding
        return EncoderOutput(sequence=sequence, pooled=masked_mean(sequence, mask), mask=mask)


def main(output: Path) -> None:
    config = {
        "name": "gru",
        "data": {"dataset": "synthetic", "params": {"n_train": 96, "n_dev": 48, "n_test": 48},
                 "cache_dir": str(output / "cache")},
        "model": {"sequence_encoder": {"name": "gru", "num_layers": 1}, "out_dim": 32, "head_hidden_dim": 32},
        "trainer": {"epochs": 1, "lr": 1e-3, "progress": False},
    }
    run = scenesense.train(config, run_dir=output / "gru")
    kinds = run.spec.feature_kinds
    print("registered encoders:", ", ".join(ENCODERS.names()))
    print("the GRU encodes:", ", ".join(m for m in run.spec.modalities if kinds[m] == "sequence"))
    print(f"run folder: {run.run_dir}")
    print(f"dev weighted F1 after {run.metrics['epochs_run']} epoch: {run.metrics['weighted_f1']:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "example-runs"))
