"""A pre-norm transformer with separate query, key and value LayerNorms and key-padding masks."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class _Attention(nn.Module):
    """Multi-head attention with inner width ``heads * head_dim`` (independent of ``dim``)."""

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.norm_q, self.norm_k, self.norm_v = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def _split(self, x: Tensor) -> Tensor:  # [B, T, H * Dh] -> [B, H, T, Dh]
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def forward(self, query: Tensor, source: Tensor, allowed: Tensor | None) -> Tensor:
        """``[B, Tq, dim]`` attending to ``source`` ``[B, Tk, dim]``; ``allowed`` ``[B, Tk]`` (``None``: all)."""
        q = self._split(self.to_q(self.norm_q(query)))
        k = self._split(self.to_k(self.norm_k(source)))
        v = self._split(self.to_v(self.norm_v(source)))
        mask = None if allowed is None else allowed[:, None, None, :]  # [B, 1, 1, Tk]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B, H, Tq, Dh]
        return self.out(attended.transpose(1, 2).flatten(2))


class PreNormTransformer(nn.Module):
    """``depth`` layers of ``x = x + Attn(LN_q(x), LN_k(s), LN_v(s))``, ``x = x + FFN(LN(x))``.

    Self-attention (``source=None``: ``s = x``) or cross-attention (``s = source``, the same for
    every layer). The FFN is ``Linear -> GELU -> Dropout -> Linear -> Dropout``; attention scores
    are scaled by ``1 / sqrt(head_dim)``. No final LayerNorm.

    Args:
        dim: width of the streams.
        depth: number of layers (>= 1).
        heads: attention heads (>= 1).
        head_dim: width per head (>= 1); the attention's inner width is ``heads * head_dim``.
        mlp_dim: hidden width of the FFN (>= 1).
        dropout: on the attention output and inside the FFN, in ``[0, 1)``.
    """

    def __init__(self, dim: int, depth: int, heads: int, head_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("depth", depth), ("heads", heads), ("head_dim", head_dim),
                            ("mlp_dim", mlp_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.attention = nn.ModuleList(_Attention(dim, heads, head_dim, dropout) for _ in range(depth))
        self.feedforward = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                          nn.Linear(mlp_dim, dim), nn.Dropout(dropout))
            for _ in range(depth)
        )

    def forward(self, x: Tensor, source: Tensor | None = None, allowed: Tensor | None = None) -> Tensor:
        """Run the layers.

        Args:
            x: ``[B, Tq, dim]`` query stream.
            source: ``[B, Tk, dim]`` key/value stream (``None``: self-attention over ``x``).
            allowed: ``[B, Tk]`` booleans, True = a key may be attended to (``None``: every key);
                every row needs at least one True (a row without any gives NaN).

        Returns:
            ``[B, Tq, dim]``.
        """
        for attention, feedforward in zip(self.attention, self.feedforward, strict=True):
            x = x + attention(x, x if source is None else source, allowed)
            x = x + feedforward(x)
        return x
