"""Bidirectional cross-attention between sequence modalities (Scene Sense), plain and residual."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.fusions.base import FUSIONS, Fusion, steps_or_token
from scenesense.layers.attention import CrossAttentionBlock, relative_times, validate_heads
from scenesense.layers.pooling import masked_mean
from scenesense.types import EncoderOutput, FusionOutput


def _validate_sequence_modalities(
    modality_dims: Mapping[str, int], sequence_modalities: Sequence[str], vector_tokens: bool
) -> tuple[str, ...]:
    if isinstance(sequence_modalities, str):
        raise ValueError(
            f"sequence_modalities must be a list of names, got the string {sequence_modalities!r}"
        )
    chosen = tuple(sorted(set(sequence_modalities)))
    unknown = [m for m in chosen if m not in modality_dims]
    if unknown:
        raise ValueError(
            f"sequence modalities {unknown} are not among the fused modalities {sorted(modality_dims)}"
        )
    vectors = sorted(set(modality_dims) - set(chosen))
    if vector_tokens and len(modality_dims) < 2:
        raise ValueError(f"cross-attention fusion needs at least 2 modalities, got {sorted(modality_dims)}")
    if not vector_tokens and len(chosen) < 2:
        hint = "; set vector_tokens=true to let them join as one-step sequences" if vectors else ""
        raise ValueError(
            f"cross-attention fusion needs at least 2 sequence modalities, got {list(chosen)} "
            f"(vector modalities: {vectors}){hint}"
        )
    return chosen


@FUSIONS.register("cross_attention")
class CrossAttentionFusion(Fusion):
    """Each sequence modality's steps attend to the other sequence modalities' steps.

    For every sequence modality ``m`` (sorted): its encoder sequence (projected to ``dim`` if its
    size differs) is the query; the key/value stream is the concatenation over time of all other
    sequence modalities' projected sequences, with their masks. The attended steps are
    masked-mean pooled over ``m``'s own real steps. Vector modalities (e.g. audio) join as their
    pooled vectors. ``fused`` concatenates these per-modality vectors in sorted order, so
    ``out_dim = dim * n_sequence + sum(vector sizes)``.

    With ``vector_tokens=True`` the vector modalities take part too, each as a one-step
    sequence (its pooled vector, always real): e.g. an audio LLD sequence attends to a per-clip
    AU vector, and the vector attends to the audio steps. Every modality is then a token
    modality, the ``>= 2`` check counts them all and ``out_dim = dim * n_modalities``. A vector
    token cannot be told absent (its encoder gives no mask; an absent row is a zero vector),
    and under ``time_bias`` it sits at relative time 0.5, mid-utterance.

    A modality absent for a row (all-False mask) contributes zeros as a query; as a key it is
    attended to by nobody (zero attention output, or ``LayerNorm(query)`` with the residual).

    ``FusionOutput.attention`` holds head-averaged maps ``"text->vision"`` ``[B, T_text,
    T_vision]``; with 3+ sequence modalities each map is the slice of one joint softmax over
    all other modalities' steps.

    Args:
        modality_dims: encoder output size per modality.
        sequence_modalities: which of them give sequences (at least two, unless ``vector_tokens``).
        num_heads: attention heads (must divide ``dim``).
        dropout: attention dropout.
        use_residual: ``LayerNorm(attended + query)`` in each direction.
        dim: attention width (``None``: the largest size among the modalities that attend).
        dim_feedforward: position-wise feed-forward sublayer after attention (0: none, as the paper).
        time_bias: initial slope of the same-moment prior (0: none, as the paper); see
            `scenesense.layers.attention.CrossAttentionBlock`.
        vector_tokens: vector modalities attend and are attended to as one-step sequences.

    Raises:
        ValueError: with fewer than 2 sequence modalities (2 modalities with ``vector_tokens``),
            unknown sequence modalities, or a ``dim`` not divisible by ``num_heads``.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "sequence"

    def __init__(
        self,
        modality_dims: Mapping[str, int],
        sequence_modalities: Sequence[str],
        num_heads: int = 8,
        dropout: float = 0.0,
        use_residual: bool = False,
        dim: int | None = None,
        dim_feedforward: int = 0,
        time_bias: float = 0.0,
        vector_tokens: bool = False,
    ) -> None:
        super().__init__(modality_dims)
        self.sequence_modalities = _validate_sequence_modalities(
            self.modality_dims, sequence_modalities, vector_tokens
        )
        self.vector_tokens = vector_tokens
        # the modalities that attend (sorted): the sequences, plus every vector one with vector_tokens
        self.token_modalities = self.modalities if vector_tokens else self.sequence_modalities
        self.dim = max(self.modality_dims[m] for m in self.token_modalities) if dim is None else dim
        validate_heads(self.dim, num_heads)
        self.use_residual = use_residual
        self.projections = nn.ModuleDict(
            {
                m: nn.Identity()
                if self.modality_dims[m] == self.dim
                else nn.Linear(self.modality_dims[m], self.dim)
                for m in self.token_modalities
            }
        )
        self.blocks = nn.ModuleDict(
            {
                m: CrossAttentionBlock(self.dim, num_heads, dropout=dropout, use_residual=use_residual,
                                       dim_feedforward=dim_feedforward, time_bias=time_bias)
                for m in self.token_modalities
            }
        )
        vector_dims = sum(d for m, d in self.modality_dims.items() if m not in self.token_modalities)
        self.out_dim = self.dim * len(self.token_modalities) + vector_dims

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Cross-attend, pool and concatenate.

        Args:
            encoded: per sequence modality ``sequence`` ``[B, T_m, D_m]`` and ``mask``
                ``[B, T_m]``; per vector modality ``pooled`` ``[B, D_m]``.

        Returns:
            ``FusionOutput(fused [B, out_dim], attention={"q->k": [B, T_q, T_k]})`` (``T = 1``
            for a vector token).

        Raises:
            ValueError: if a modality is missing or unexpected, or a sequence modality has no sequence.
        """
        self.check_encoded(encoded)
        streams: dict[str, Tensor] = {}
        masks: dict[str, Tensor] = {}
        for m in self.token_modalities:
            sequence, masks[m] = steps_or_token("cross-attention", m, encoded[m], self.modality_dims[m], m in self.sequence_modalities)
            streams[m] = self.projections[m](sequence)  # [B, T_m, dim]
        times = {m: relative_times(masks[m]) for m in self.token_modalities}  # [B, T_m] in (0, 1)
        parts: list[Tensor] = []
        attention: dict[str, Tensor] = {}
        for m in self.modalities:
            if m not in self.token_modalities:
                parts.append(encoded[m].pooled)  # [B, D_m]
                continue
            others = [o for o in self.token_modalities if o != m]
            keys = torch.cat([streams[o] for o in others], dim=1)  # [B, sum T_o, dim]
            key_mask = torch.cat([masks[o] for o in others], dim=1)  # [B, sum T_o]
            key_times = torch.cat([times[o] for o in others], dim=1)  # [B, sum T_o]
            attended, weights = self.blocks[m](
                streams[m], keys, key_mask, masks[m], query_times=times[m], key_times=key_times
            )  # [B, T_m, dim], [B, T_m, sum T_o]
            parts.append(masked_mean(attended, masks[m]))  # [B, dim]
            per_other = weights.split([streams[o].shape[1] for o in others], dim=-1)
            for o, w in zip(others, per_other, strict=True):
                attention[f"{m}->{o}"] = w  # [B, T_m, T_o]
        return FusionOutput(fused=torch.cat(parts, dim=-1), attention=attention)


@FUSIONS.register("residual_cross_attention")
class ResidualCrossAttentionFusion(CrossAttentionFusion):
    """`CrossAttentionFusion` with ``use_residual=True``: ``LayerNorm(attended + query)``.

    The query stream is the one added back (the published code added the text stream to the
    vision branch, which crashed whenever the two lengths differed).

    Args:
        modality_dims: encoder output size per modality.
        sequence_modalities: which of them give sequences (at least two, unless ``vector_tokens``).
        num_heads: attention heads (must divide ``dim``).
        dropout: attention dropout.
        dim: attention width (``None``: the largest size among the modalities that attend).
        dim_feedforward: position-wise feed-forward sublayer after attention (0: none).
        time_bias: initial slope of the same-moment prior (0: none).
        vector_tokens: vector modalities attend and are attended to as one-step sequences.
    """

    def __init__(
        self,
        modality_dims: Mapping[str, int],
        sequence_modalities: Sequence[str],
        num_heads: int = 8,
        dropout: float = 0.0,
        dim: int | None = None,
        dim_feedforward: int = 0,
        time_bias: float = 0.0,
        vector_tokens: bool = False,
    ) -> None:
        super().__init__(
            modality_dims,
            sequence_modalities,
            num_heads=num_heads,
            dropout=dropout,
            use_residual=True,
            dim=dim,
            dim_feedforward=dim_feedforward,
            time_bias=time_bias,
            vector_tokens=vector_tokens,
        )
