"""Cross-attention: a query stream attends to a key/value stream under a key-padding mask."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def unmask_empty_rows(mask: Tensor) -> Tensor:
    """Mark the first step of every row that has no real step as real.

    Attention over a row whose keys are all padding is a softmax over nothing (NaN). Callers
    unmask one (zeroed) key with this function and zero the affected rows' results afterwards.

    Args:
        mask: ``[B, T]`` booleans, True = real step (``T >= 1``).

    Returns:
        ``[B, T]`` copy of ``mask`` in which every row has at least one True.
    """
    empty = ~mask.any(dim=1, keepdim=True)  # [B, 1]
    first = torch.zeros_like(mask)
    first[:, :1] = True  # [B, T], True at step 0 only
    return mask | (empty & first)


def relative_times(mask: Tensor) -> Tensor:
    """Each real step's position as a fraction of its row's true length.

    Step ``t`` of a row with ``L`` real steps gets ``(t + 0.5) / L``, so two sequences that cover
    the same utterance are compared on one time axis whatever their frame rates.

    Args:
        mask: ``[B, T]`` booleans, True = real step (real steps first).

    Returns:
        ``[B, T]`` float times in ``(0, 1)`` (padding steps get values > 1; they are masked anyway).
    """
    lengths = mask.sum(dim=1, keepdim=True).clamp(min=1)  # [B, 1]
    steps = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)  # [1, T]
    return (steps + 0.5) / lengths


def validate_heads(dim: int, num_heads: int) -> None:
    """Raise ``ValueError`` unless ``num_heads >= 1`` divides ``dim``.

    Args:
        dim: model width.
        num_heads: number of attention heads.
    """
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}")
    if dim % num_heads != 0:
        raise ValueError(f"dimension {dim} is not divisible by num_heads {num_heads}")


def _check_stream(name: str, x: Tensor, dim: int) -> None:
    if x.dim() != 3 or x.shape[-1] != dim:
        raise ValueError(f"{name} must have shape [B, T, {dim}], got {tuple(x.shape)}")


def _bool_mask(name: str, mask: Tensor | None, x: Tensor) -> Tensor:
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2]:
        raise ValueError(
            f"{name} shape {tuple(mask.shape)} does not match its stream [B, T] = {tuple(x.shape[:2])}"
        )
    return mask if mask.dtype == torch.bool else mask != 0


class CrossAttentionBlock(nn.Module):
    """Multi-head cross-attention from a query stream to a key/value stream.

    ``attended = MHA(query, key_value, key_value)`` with the key-padding mask honoured;
    the output is ``LayerNorm(attended + query)`` when ``use_residual`` else ``attended``, then
    optionally a position-wise feed-forward sublayer ``LayerNorm(out + FFN(out))``.

    Time bias (``time_bias > 0``): for two streams that cover the same utterance, each head adds
    ``-slope_h * |t_query - t_key|`` to its attention scores, with times from
    `relative_times` and learnable slopes initialised to ``time_bias``. It is a prior that
    a step looks first at what happens at the same moment in the other modality; the model can
    learn the slopes down to 0.

    Edge cases, both NaN-free:

    * a row whose key stream has no real step attends to nothing: its ``attended`` and its
      attention weights are zeros, so the output is zeros (``LayerNorm(query)`` with the
      residual, i.e. the query passes through unchanged by the absent stream);
    * padded query steps (``query_mask`` False) are zeros in the output and the weights.

    Args:
        dim: width ``D`` of both streams.
        num_heads: attention heads (must divide ``dim``).
        dropout: dropout on the attention weights.
        use_residual: add the query back and apply LayerNorm.
        dim_feedforward: hidden size of the feed-forward sublayer (0: none).
        time_bias: initial slope of the time-distance penalty (0: no time bias).

    Raises:
        ValueError: if ``num_heads`` does not divide ``dim``.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, use_residual: bool = False,
                 dim_feedforward: int = 0, time_bias: float = 0.0) -> None:
        super().__init__()
        validate_heads(dim, num_heads)
        if dim_feedforward < 0 or time_bias < 0:
            raise ValueError(f"dim_feedforward and time_bias must be >= 0, got {dim_feedforward}, {time_bias}")
        self.dim = dim
        self.num_heads = num_heads
        # learnable per-head slope (log-parameterised) of the penalty -slope * |t_query - t_key|
        self.log_time_slope = nn.Parameter(torch.full((num_heads,), math.log(time_bias))) if time_bias else None
        self.use_residual = use_residual
        self.attention = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim) if use_residual else None
        self.feedforward = None
        if dim_feedforward:
            self.feedforward = nn.Sequential(nn.Linear(dim, dim_feedforward), nn.ReLU(), nn.Dropout(dropout),
                                             nn.Linear(dim_feedforward, dim))
            self.ff_norm = nn.LayerNorm(dim)

    def _bias(self, key_mask: Tensor, query_times: Tensor | None, key_times: Tensor | None,
              tq: int, dtype: torch.dtype) -> Tensor:
        """Additive attention bias ``[B * heads, Tq, Tk]``: -inf on padded keys, minus the time penalty."""
        b, tk = key_mask.shape
        bias = torch.zeros(b, self.num_heads, tq, tk, device=key_mask.device, dtype=dtype)
        if self.log_time_slope is not None:
            if query_times is None or key_times is None:
                raise ValueError("a cross-attention block with a time bias needs query_times and key_times")
            distance = (query_times.unsqueeze(2) - key_times.unsqueeze(1)).abs()  # [B, Tq, Tk]
            bias = bias - self.log_time_slope.exp().view(1, -1, 1, 1) * distance.unsqueeze(1)
        bias = bias.masked_fill(~key_mask.view(b, 1, 1, tk), float("-inf"))
        return bias.reshape(b * self.num_heads, tq, tk)

    def forward(
        self,
        query: Tensor,
        key_value: Tensor,
        key_mask: Tensor | None = None,
        query_mask: Tensor | None = None,
        query_times: Tensor | None = None,
        key_times: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend from ``query`` to ``key_value``.

        Args:
            query: ``[B, Tq, D]`` query stream.
            key_value: ``[B, Tk, D]`` key/value stream.
            key_mask: ``[B, Tk]`` booleans, True = real key (``None``: all real).
            query_mask: ``[B, Tq]`` booleans, True = real query (``None``: all real).
            query_times: ``[B, Tq]`` times on a shared axis (see `relative_times`); with
                ``key_times``, needed when the block has a time bias.
            key_times: ``[B, Tk]`` times of the keys.

        Returns:
            ``(output [B, Tq, D], weights [B, Tq, Tk])``; weights are averaged over heads.

        Raises:
            ValueError: on mismatched shapes.
        """
        _check_stream("query", query, self.dim)
        _check_stream("key_value", key_value, self.dim)
        if query.shape[0] != key_value.shape[0]:
            raise ValueError(f"batch sizes differ: query {query.shape[0]}, key_value {key_value.shape[0]}")
        key_mask = _bool_mask("key_mask", key_mask, key_value)
        query_mask = _bool_mask("query_mask", query_mask, query)
        zero = torch.zeros((), dtype=query.dtype, device=query.device)
        key_value = torch.where(key_mask.unsqueeze(-1), key_value, zero)  # padded keys never leak
        query = torch.where(query_mask.unsqueeze(-1), query, zero)
        has_key = key_mask.any(dim=1).view(-1, 1, 1)  # [B, 1, 1]
        bias = self._bias(unmask_empty_rows(key_mask), query_times, key_times, query.shape[1], query.dtype)
        attended, weights = self.attention(
            query, key_value, key_value, attn_mask=bias, need_weights=True, average_attn_weights=True
        )  # [B, Tq, D], [B, Tq, Tk]
        keep = has_key & query_mask.unsqueeze(-1)  # [B, Tq, 1]
        attended = torch.where(has_key, attended, zero)
        weights = torch.where(keep, weights, zero)
        out = self.norm(attended + query) if self.norm is not None else attended
        if self.feedforward is not None:  # position-wise sublayer: [B, Tq, D] -> [B, Tq, D]
            out = self.ff_norm(out + self.feedforward(out))
        return torch.where(query_mask.unsqueeze(-1), out, zero), weights
