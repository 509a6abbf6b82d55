"""TACFN: adaptive cross-modal fusion with intra-modal self-attention (arXiv 2505.06536)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.fusions.base import Fusion, sequence_and_mask
from scenesense.layers.attention import validate_heads
from scenesense.layers.pooling import masked_mean
from scenesense.registry import FUSIONS
from scenesense.types import EncoderOutput, FusionOutput


@FUSIONS.register("tacfn")
class TACFNFusion(Fusion):
    """Each modality is a target re-weighted by the self-attention-selected other modalities.

    For every target ``t`` (sorted) with pooled vector ``x_t`` ``[B, D_t]`` and the other
    modalities ``s`` as sources:

    1. intra-modal selection ``a_s`` ``[B, D_s]``: self-attention over the source's encoder
       ``sequence`` ``[B, T_s, D_s]`` (key padding from ``mask``), masked-mean pooled over the
       real steps; for a vector source, self-attention over its single pooled vector, which is
       exactly its value and output projections, i.e. one ``Linear(D_s, D_s)``;
    2. ``w_t = softmax(tanh(sum_s P_{s->t} a_s + Q_t x_t))`` ``[B, D_t]`` (softmax over the
       feature axis), with ``P_{s->t}: Linear(D_s, D_t)`` and ``Q_t: Linear(D_t, D_t)``;
    3. ``y_t = w_t * x_t + x_t`` (``w_t * x_t`` without the residual).

    ``fused = concat_t y_t`` in sorted order, so ``out_dim = sum_m D_m``. With two modalities
    this is the paper's two blocks (audio->visual and visual->audio) followed by concatenation.
    With more, each target gets one block whose sources are all the others, their projections
    added, because the paper's block already combines source and target by addition and ends
    in one weight vector over the *target's* features; one block per target keeps one weight
    vector per target (``modality_weights[t]``) and ``out_dim`` independent of the pair count.
    Each modality has one self-attention, shared by the targets it serves.

    Ablations: ``self_attention=False`` uses the pooled vector ``a_s = pooled_s``;
    ``residual=False`` drops ``+ x_t``; ``block=False`` returns the plain concatenation of the
    pooled vectors (no parameters, no weights or maps).

    A modality absent for a row (all-False mask, zero pooled vector) selects a zero vector as
    a source and is re-weighted zeros as a target.

    ``FusionOutput.modality_weights[t]`` holds ``w_t`` ``[B, D_t]``; ``FusionOutput.attention``
    holds the head-averaged self-attention map ``"m->m"`` ``[B, T_m, T_m]`` of each sequence
    modality (zero rows and columns at padded steps).

    Args:
        modality_dims: encoder output size per modality (at least two modalities).
        sequence_modalities: which of them give sequences (self-attended over their steps).
        num_heads: self-attention heads (must divide each sequence modality's size).
        dropout: self-attention dropout.
        self_attention: intra-modal self-attention on the sources.
        residual: add the target back after re-weighting.
        block: ``False`` replaces the whole fusion by plain concatenation.

    Raises:
        ValueError: with fewer than 2 modalities, unknown sequence modalities, or a sequence
            size not divisible by ``num_heads``.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "sequence"

    def __init__(
        self,
        modality_dims: Mapping[str, int],
        sequence_modalities: Sequence[str] = (),
        num_heads: int = 1,
        dropout: float = 0.0,
        self_attention: bool = True,
        residual: bool = True,
        block: bool = True,
    ) -> None:
        super().__init__(modality_dims)
        if len(self.modalities) < 2:
            raise ValueError(f"tacfn fusion needs at least 2 modalities, got {list(self.modalities)}")
        if isinstance(sequence_modalities, str):
            raise ValueError(f"sequence_modalities must be a list of names, got {sequence_modalities!r}")
        unknown = sorted(set(sequence_modalities) - set(self.modalities))
        if unknown:
            raise ValueError(f"sequence modalities {unknown} are not among {list(self.modalities)}")
        self.sequence_modalities = tuple(sorted(set(sequence_modalities)))
        self.self_attention, self.residual, self.block = self_attention, residual, block
        self.out_dim = sum(self.modality_dims.values())
        self.selectors = nn.ModuleDict()
        self.source_projections = nn.ModuleDict()
        self.target_projections = nn.ModuleDict()
        if not block:
            return
        if self_attention:
            for m, d in self.modality_dims.items():
                if m in self.sequence_modalities:
                    validate_heads(d, num_heads)
                    self.selectors[m] = nn.MultiheadAttention(d, num_heads, dropout=dropout, batch_first=True)
                else:
                    self.selectors[m] = nn.Linear(d, d)
        for t, d_t in self.modality_dims.items():
            self.target_projections[t] = nn.Linear(d_t, d_t)
            for s, d_s in self.modality_dims.items():
                if s != t:
                    self.source_projections[f"{s}_to_{t}"] = nn.Linear(d_s, d_t)

    def _select(self, m: str, out: EncoderOutput) -> tuple[Tensor, Tensor | None]:
        """Intra-modal selection ``[B, D_m]`` and, for sequences, the map ``[B, T_m, T_m]``."""
        if not self.self_attention:
            return out.pooled, None
        if m not in self.sequence_modalities:
            return self.selectors[m](out.pooled), None
        sequence, mask = sequence_and_mask("tacfn", m, out, self.modality_dims[m])
        sequence = torch.where(mask.unsqueeze(-1), sequence, torch.zeros((), dtype=sequence.dtype,
                                                                         device=sequence.device))  # pads -> 0
        # a row with no real step attends over its zeroed steps (no NaN); its pooled result is 0
        key_padding = ~mask & mask.any(dim=1, keepdim=True)  # [B, T]
        attended, weights = self.selectors[m](
            sequence, sequence, sequence, key_padding_mask=key_padding, need_weights=True
        )  # [B, T, D], [B, T, T] averaged over heads
        real = mask.unsqueeze(2) & mask.unsqueeze(1)  # [B, T, T]
        weights = weights * real.to(weights.dtype)
        return masked_mean(attended, mask), weights

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Select, weight each target by its sources, add it back, concatenate.

        Args:
            encoded: per modality ``pooled`` ``[B, D_m]``; per sequence modality also
                ``sequence`` ``[B, T_m, D_m]`` and ``mask`` ``[B, T_m]``.

        Returns:
            ``FusionOutput(fused [B, out_dim], modality_weights={t: [B, D_t]},
            attention={"m->m": [B, T_m, T_m]})`` (weights and maps ``None`` without them).

        Raises:
            ValueError: if a modality is missing or unexpected, or a sequence modality has no sequence.
        """
        self.check_encoded(encoded)
        if not self.block:
            return FusionOutput(fused=torch.cat([encoded[m].pooled for m in self.modalities], dim=-1))
        selected: dict[str, Tensor] = {}
        attention: dict[str, Tensor] = {}
        for m in self.modalities:
            selected[m], weights = self._select(m, encoded[m])  # [B, D_m]
            if weights is not None:
                attention[f"{m}->{m}"] = weights
        parts: list[Tensor] = []
        modality_weights: dict[str, Tensor] = {}
        for t in self.modalities:
            target = encoded[t].pooled  # [B, D_t]
            combined = self.target_projections[t](target)
            for s in self.modalities:
                if s != t:
                    combined = combined + self.source_projections[f"{s}_to_{t}"](selected[s])
            w = torch.softmax(torch.tanh(combined), dim=-1)  # [B, D_t]
            modality_weights[t] = w
            parts.append(w * target + target if self.residual else w * target)
        return FusionOutput(
            fused=torch.cat(parts, dim=-1),
            modality_weights=modality_weights,
            attention=attention or None,
        )
