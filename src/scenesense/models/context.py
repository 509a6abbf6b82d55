"""Dialogue context models, registered in `CONTEXTS`.

A context model reads the fused utterance vectors of a dialogue ``[G, L, D]`` and returns
context-aware vectors of the same shape; the classifier head then reads each utterance's vector.
Fusion stays per utterance, so every fusion works with every context model
(`scenesense.models.contextual.ContextualClassifier`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from scenesense.registry import Registry
from scenesense.types import DialogueLayout

_SPEAKER_MODES = ("none", "relation", "embedding", "both")

CONTEXTS: Registry[type[nn.Module]] = Registry("context")
"""Every context model class by name: ``forward(x [G, L, D], layout) -> [G, L, D]``."""


class _Layer(nn.Module):
    """Pre-norm self-attention + feed-forward block taking an additive attention bias."""

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attention = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Dropout(dropout),
                                          nn.Linear(2 * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """x ``[G, L, d]``, bias ``[G * heads, L, L]`` (``-inf`` = not allowed) -> ``[G, L, d]``."""
        h = self.norm1(x)
        x = x + self.dropout(self.attention(h, h, h, attn_mask=bias, need_weights=False)[0])
        return x + self.dropout(self.feed_forward(self.norm2(x)))


@CONTEXTS.register("transformer")
class DialogueTransformer(nn.Module):
    """A windowed transformer over a dialogue's utterances, optionally speaker-aware.

    Utterance ``i`` attends to utterance ``j`` of its dialogue when ``|p_i - p_j| <= window``
    (positions ``p``; ``window=0``: the whole dialogue) and, with ``direction="past"``, ``p_j <= p_i``: then a prediction never
    depends on what is said later, so it can be made while the conversation runs
    (`scenesense.streaming.predict_conversation`). Each head adds a learned bias per
    clipped relative distance ``p_i - p_j``. Speakers (``speaker``):

    - ``"relation"``: each head adds a learned bias for "same speaker" and one for "other
      speaker" (from ``turn_speaker``, so two speakers never seen in training are still told apart);
    - ``"embedding"``: a learned vector per known speaker is added to the utterance (unknown
      speakers share id 0; while training, each known id is replaced by 0 with probability
      ``speaker_dropout`` so that the unknown vector is learned);
    - ``"both"`` or ``"none"``.

    The output is ``x + W_out(h)`` with ``W_out`` initialised to zero, so training starts from the
    context-free model.

    Args:
        in_dim: size ``D`` of the fused utterance vectors (derived).
        num_speakers: speaker vocabulary size incl. the unknown id 0 (derived).
        window: utterances each side (``0``: the whole dialogue).
        direction: ``"past"`` (streaming) or ``"both"`` (past and future).
        speaker: ``"none"``, ``"relation"``, ``"embedding"`` or ``"both"``.
        d_model: the transformer's width.
        num_layers: number of transformer layers.
        num_heads: attention heads per layer.
        dropout: the transformer's dropout.
        speaker_dropout: probability of hiding a known speaker's id while training.

    Raises:
        ValueError: on an invalid value.
    """

    def __init__(self, in_dim: int, num_speakers: int = 1, window: int = 8, direction: str = "past",
                 speaker: str = "relation", d_model: int = 128, num_layers: int = 1, num_heads: int = 4,
                 dropout: float = 0.1, speaker_dropout: float = 0.1) -> None:
        super().__init__()
        if direction not in ("past", "both"):
            raise ValueError(f"direction must be 'past' or 'both', got {direction!r}")
        if speaker not in _SPEAKER_MODES:
            raise ValueError(f"speaker must be one of {list(_SPEAKER_MODES)}, got {speaker!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise ValueError(f"window must be an int >= 0 (0: the whole dialogue), got {window!r}")
        if num_layers < 1 or d_model % num_heads or not 0 <= dropout < 1 or not 0 <= speaker_dropout < 1:
            raise ValueError(f"need num_layers >= 1, d_model divisible by num_heads, dropouts in [0, 1); got "
                             f"{num_layers}, {d_model}/{num_heads}, {dropout}, {speaker_dropout}")
        if num_speakers < 1:
            raise ValueError(f"num_speakers must be >= 1 (the unknown id), got {num_speakers}")
        self.in_dim, self.window, self.direction, self.speaker = in_dim, window, direction, speaker
        self.num_heads, self.num_layers, self.speaker_dropout = num_heads, num_layers, speaker_dropout
        self.max_distance = window or 16  # relative distances beyond share one bias
        self.input = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, d_model))
        self.distance_bias = nn.Embedding(2 * self.max_distance + 1, num_heads)
        nn.init.zeros_(self.distance_bias.weight)
        self.speaker_bias = nn.Parameter(torch.zeros(2, num_heads)) if speaker in ("relation", "both") else None
        self.speaker_embedding = nn.Embedding(num_speakers, d_model) if speaker in ("embedding", "both") else None
        if self.speaker_embedding is not None:
            nn.init.normal_(self.speaker_embedding.weight, std=0.02)
        self.layers = nn.ModuleList(_Layer(d_model, num_heads, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, in_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    @property
    def receptive_field(self) -> int | None:
        """How many earlier utterances an output can depend on (``None``: unbounded)."""
        return self.window * self.num_layers if self.window else None

    def forward(self, x: Tensor, layout: DialogueLayout) -> Tensor:
        """Context-aware utterance vectors.

        Args:
            x: ``[G, L, D]`` fused utterance vectors (anything at padding slots).
            layout: the dialogues' `scenesense.types.DialogueLayout` (``[G, L]`` fields).

        Returns:
            ``[G, L, D]``; padding slots hold ``x`` unchanged.
        """
        h = self.input(x)  # [G, L, d]
        if self.speaker_embedding is not None:
            ids = layout.speaker
            if self.training and self.speaker_dropout > 0:
                ids = torch.where(torch.rand(ids.shape, device=ids.device) < self.speaker_dropout,
                                  torch.zeros_like(ids), ids)
            h = h + self.speaker_embedding(ids)
        bias = self._bias(layout, h.dtype)  # [G * heads, L, L]
        for layer in self.layers:
            h = layer(h, bias)
        out = x + self.output(self.norm(h))
        return torch.where(layout.mask.unsqueeze(-1), out, x)

    def _bias(self, layout: DialogueLayout, dtype: torch.dtype) -> Tensor:
        """Additive attention bias ``[G * heads, L, L]``: distance + speaker terms, ``-inf`` where masked."""
        g, length = layout.mask.shape
        distance = layout.position.unsqueeze(2) - layout.position.unsqueeze(1)  # [G, L, L]: p_i - p_j
        allowed = layout.mask.unsqueeze(1) & layout.mask.unsqueeze(2)
        if self.window:
            allowed &= distance.abs() <= self.window
        if self.direction == "past":
            allowed &= distance >= 0
        allowed |= torch.eye(length, dtype=torch.bool, device=allowed.device)  # padding rows attend to themselves
        clipped = distance.clamp(-self.max_distance, self.max_distance) + self.max_distance
        bias = self.distance_bias(clipped)  # [G, L, L, H]
        if self.speaker_bias is not None:
            turn = layout.turn_speaker
            same = (turn.unsqueeze(2) == turn.unsqueeze(1)) & (turn.unsqueeze(2) >= 0)  # [G, L, L]
            bias = bias + self.speaker_bias[(~same).long()]  # row 0: same speaker, row 1: other
        bias = bias.masked_fill(~allowed.unsqueeze(-1), float("-inf")).to(dtype)
        return bias.permute(0, 3, 1, 2).reshape(g * self.num_heads, length, length)
