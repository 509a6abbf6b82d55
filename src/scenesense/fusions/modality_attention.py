"""Multi-head self-attention across the modality representations (one token per modality)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import torch
from torch import nn

from scenesense.fusions.base import FUSIONS, Fusion
from scenesense.types import EncoderOutput, FusionOutput


@FUSIONS.register("modality_attention")
class ModalityAttentionFusion(Fusion):
    """``Z = MHA(X, X, X)`` over ``X [B, M, d]`` = each modality's pooled vector (projected to ``d``).

    ``fused`` concatenates ``Z``'s rows in sorted modality order (``out_dim = M * d``), so every
    modality's output has attended to all the others. A sequence modality whose mask row is all
    False (missing) is hidden as a key; a row with every modality missing attends to all.
    ``attention["modalities"]`` is the head-averaged map ``[B, M, M]`` (query, key in sorted order).

    Args:
        modality_dims: encoder output size per modality.
        sequence_modalities: modalities whose encoders give masks (to detect missing rows).
        dim: token size ``d``; ``None`` = the common size when all are equal (no projection), else
            the largest size (each modality projected with a linear layer).
        num_heads: attention heads (must divide ``d``).
        dropout: attention dropout.

    Raises:
        ValueError: fewer than 2 modalities, ``num_heads`` not dividing ``d``, or an unknown sequence modality.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "pooled"

    def __init__(self, modality_dims: Mapping[str, int], sequence_modalities: Sequence[str] = (),
                 dim: int | None = None, num_heads: int = 1, dropout: float = 0.0) -> None:
        super().__init__(modality_dims)
        if len(self.modalities) < 2:
            raise ValueError(f"modality_attention needs >= 2 modalities, got {list(self.modalities)}")
        unknown = sorted(set(sequence_modalities) - set(self.modalities))
        if unknown:
            raise ValueError(f"modality_attention: sequence modalities {unknown} are not among {list(self.modalities)}")
        sizes = set(self.modality_dims.values())
        d = dim if dim is not None else (sizes.pop() if len(sizes) == 1 else max(self.modality_dims.values()))
        if d % num_heads != 0:
            raise ValueError(f"modality_attention: num_heads {num_heads} does not divide the token size {d}")
        self.sequence_modalities = frozenset(sequence_modalities)
        self.project = nn.ModuleDict({m: nn.Identity() if size == d else nn.Linear(size, d)
                                      for m, size in self.modality_dims.items()})
        self.attention = nn.MultiheadAttention(d, num_heads, dropout=dropout, batch_first=True)
        self.out_dim = d * len(self.modalities)

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Attend across modalities.

        Args:
            encoded: per modality ``pooled`` ``[B, D_m]`` (and ``mask`` ``[B, T_m]`` for sequences).

        Returns:
            ``FusionOutput(fused [B, M * d], attention={"modalities": [B, M, M]})``.
        """
        self.check_encoded(encoded)
        tokens = torch.stack([self.project[m](encoded[m].pooled) for m in self.modalities], dim=1)  # [B, M, d]
        missing = torch.stack([
            ~encoded[m].mask.bool().any(dim=-1) if m in self.sequence_modalities and encoded[m].mask is not None
            else torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
            for m in self.modalities], dim=1)  # [B, M], True = hidden key
        missing = missing & ~missing.all(dim=1, keepdim=True)
        out, weights = self.attention(tokens, tokens, tokens, key_padding_mask=missing, need_weights=True,
                                      average_attn_weights=True)
        return FusionOutput(fused=out.flatten(1), attention={"modalities": weights})
