"""MulT: directional cross-modal transformers (Tsai et al., ACL 2019, "Multimodal Transformer")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.fusions.base import FUSIONS, Fusion, steps_or_token
from scenesense.layers.attention import unmask_empty_rows, validate_heads
from scenesense.layers.pooling import masked_mean
from scenesense.layers.positional import SinusoidalPositionalEncoding
from scenesense.types import EncoderOutput, FusionOutput

_POOLINGS = ("last", "mean")


def _last_real_step(x: Tensor, mask: Tensor) -> Tensor:
    """The hidden state at each row's last real step (zeros for a row without one).

    Args:
        x: ``[B, T, W]`` sequence.
        mask: ``[B, T]`` booleans, True = real step.

    Returns:
        ``[B, W]``.
    """
    steps = torch.arange(x.shape[1], device=x.device)  # [T]
    last = torch.where(mask, steps, -1).amax(dim=1)  # [B], -1 where no step is real
    picked = x[torch.arange(x.shape[0], device=x.device), last.clamp(min=0)]  # [B, W]
    return torch.where((last >= 0).unsqueeze(-1), picked, torch.zeros((), dtype=x.dtype, device=x.device))


def _validate_args(
    modalities: Sequence[str], sequence_modalities: Sequence[str], dim: int, num_heads: int,
    num_layers: int, self_layers: int, dim_feedforward: int | None, dropout: float, attn_dropout: float,
    pooling: str,
) -> None:
    """Raise ``ValueError`` naming the first invalid constructor argument of `MulTFusion`."""
    if len(modalities) < 2:
        raise ValueError(f"mult fusion needs at least 2 modalities, got {list(modalities)}")
    if isinstance(sequence_modalities, str):
        raise ValueError(f"sequence_modalities must be a list of names, got {sequence_modalities!r}")
    unknown = sorted(set(sequence_modalities) - set(modalities))
    if unknown:
        raise ValueError(f"sequence modalities {unknown} are not among the fused {list(modalities)}")
    for name, value, low in (("dim", dim, 1), ("num_layers", num_layers, 1), ("self_layers", self_layers, 0),
                             ("dim_feedforward", dim_feedforward, 1)):
        if value is None and name == "dim_feedforward":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    validate_heads(dim, num_heads)
    for name, p in (("dropout", dropout), ("attn_dropout", attn_dropout)):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {p!r}")
    if pooling not in _POOLINGS:
        raise ValueError(f"pooling must be one of {list(_POOLINGS)}, got {pooling!r}")


class _PreNormLayer(nn.Module):
    """``z + MHA(LN(z), LN(src), LN(src))``, then ``z + FFN(LN(z))``; one LN for both streams, as MulT."""

    def __init__(self, width: int, num_heads: int, dim_feedforward: int, dropout: float,
                 attn_dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, num_heads, dropout=attn_dropout, batch_first=True)
        self.ff_norm = nn.LayerNorm(width)
        self.feedforward = nn.Sequential(nn.Linear(width, dim_feedforward), nn.ReLU(), nn.Dropout(dropout),
                                         nn.Linear(dim_feedforward, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, z: Tensor, source: Tensor | None, key_mask: Tensor, has_key: Tensor,
                need_weights: bool) -> tuple[Tensor, Tensor | None]:
        """One layer.

        Args:
            z: ``[B, Tq, W]`` query stream.
            source: ``[B, Tk, W]`` key/value stream (``None``: self-attention over ``z``).
            key_mask: ``[B, Tk]`` booleans, True = real key, at least one per row.
            has_key: ``[B, 1, 1]`` False for rows whose source has no real step (output zeroed).
            need_weights: return the attention weights.

        Returns:
            ``(z [B, Tq, W], head-averaged weights [B, Tq, Tk] or None)``.
        """
        query = self.norm(z)
        kv = query if source is None else self.norm(source)
        attended, weights = self.attention(
            query, kv, kv, key_padding_mask=~key_mask, need_weights=need_weights
        )  # [B, Tq, W], [B, Tq, Tk] averaged over heads (or None)
        attended = torch.where(has_key, attended, torch.zeros((), dtype=z.dtype, device=z.device))
        z = z + self.dropout(attended)
        return z + self.dropout(self.feedforward(self.ff_norm(z))), weights


class _TransformerStack(nn.Module):
    """``num_layers`` pre-norm layers and a final LayerNorm (no layers: the identity).

    Cross-modal when given a ``source`` (fixed keys/values for every layer), else self-attention.
    """

    def __init__(self, width: int, num_layers: int, num_heads: int, dim_feedforward: int, dropout: float,
                 attn_dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            _PreNormLayer(width, num_heads, dim_feedforward, dropout, attn_dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(width) if num_layers else nn.Identity()

    def forward(self, z: Tensor, source: Tensor | None, source_mask: Tensor,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Run the layers and the final LayerNorm.

        Args:
            z: ``[B, Tq, W]`` query stream.
            source: ``[B, Tk, W]`` key/value stream (``None``: self-attention, keys are ``z``).
            source_mask: ``[B, Tk]`` booleans, True = real key. A row without any gets zero
                attention output and zero weights.
            need_weights: return the last layer's attention weights.

        Returns:
            ``(z [B, Tq, W], last layer's head-averaged weights [B, Tq, Tk] or None)``.
        """
        has_key = source_mask.any(dim=1).view(-1, 1, 1)  # [B, 1, 1]
        key_mask = unmask_empty_rows(source_mask)  # softmax over one zeroed-out key, not over nothing
        weights = None
        for i, layer in enumerate(self.layers):
            z, weights = layer(z, source, key_mask, has_key, need_weights and i == len(self.layers) - 1)
        if weights is not None:
            weights = torch.where(has_key, weights, torch.zeros((), dtype=weights.dtype,
                                                                device=weights.device))
        return self.norm(z), weights


@FUSIONS.register("mult")
class MulTFusion(Fusion):
    """Every modality, as a target, is rewritten by cross-modal transformers from each other one.

    Design (MulT, Tsai et al. 2019), for ``M >= 2`` modalities:

    1. each modality's steps ``[B, T_m, D_m]`` are projected to the common width ``dim`` (MulT's
       kernel-1 Conv1d, i.e. a bias-free Linear), get sinusoidal positions and dropout;
    2. for each target ``t`` and each other modality ``s`` (sorted), a cross-modal transformer
       ``s -> t`` of ``num_layers`` pre-LayerNorm layers: queries from ``t``, keys/values from
       ``s`` (the same source for every layer, key padding from ``s``'s mask),
       ``z = z + MHA(LN(z), LN(src), LN(src))`` (one LayerNorm per layer for both streams, as
       MulT), ``z = z + FFN(LN(z))``, then a final LayerNorm: ``[B, T_t, dim]``;
    3. the ``M - 1`` streams of ``t`` are concatenated on the feature axis
       (``[B, T_t, (M - 1) * dim]``) and go through ``self_layers`` self-attention layers of the
       same kind (key padding from ``t``'s mask, FFN width ``(M - 1) * dim_feedforward``);
    4. ``t``'s vector ``[B, (M - 1) * dim]`` is the hidden state at its last real step
       (``pooling="last"``) or the mean over its real steps (``"mean"``).

    ``fused`` concatenates the targets' vectors in sorted order: ``out_dim = M * (M - 1) * dim``.
    MulT's own output MLP is left to the classifier head.

    Differences from the original: with padded batches the *last real* step is taken (MulT
    takes the last element of unpadded or aligned sequences); a vector modality (encoder gives
    no sequence, or not in ``sequence_modalities``) joins as a one-step sequence (its pooled
    vector, always real); positions are added once after the projection (MulT adds them again
    inside each transformer, after scaling by ``sqrt(dim)``); the projection width is shared by
    all modalities.

    Padded steps are zeroed before the projection and masked as keys, so they never influence
    real outputs. A row whose modality is absent (all-False mask) attends to nothing as a source
    (zero attention output: the target passes through the layer's FFN only) and gives a zero
    vector as a target.

    ``FusionOutput.attention["t->s"]`` ``[B, T_t, T_s]``: the head-averaged weights of the last
    layer of the ``s -> t`` transformer (``t``'s steps attending to ``s``'s), zero at padded
    steps.

    Args:
        modality_dims: encoder output size per modality (at least two modalities).
        sequence_modalities: which of them give sequences; the others join as one step.
        dim: common width (``None``: the largest modality size).
        num_heads: attention heads (must divide ``dim``).
        num_layers: cross-modal layers per source-target pair.
        self_layers: self-attention layers per target (0: none).
        dim_feedforward: hidden size of the cross-modal FFN (``None``: ``4 * dim``).
        dropout: dropout on embeddings, residual branches and inside the FFN.
        attn_dropout: dropout on the attention weights.
        pooling: ``"last"`` (last real step, as MulT) or ``"mean"`` (mean over real steps).

    Raises:
        ValueError: with fewer than 2 modalities, unknown sequence modalities, a non-positive
            size or layer count, ``num_heads`` not dividing ``dim``, a dropout outside ``[0, 1)``
            or an unknown ``pooling``.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "sequence"

    def __init__(
        self,
        modality_dims: Mapping[str, int],
        sequence_modalities: Sequence[str] = (),
        dim: int | None = None,
        num_heads: int = 1,
        num_layers: int = 2,
        self_layers: int = 1,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        pooling: str = "last",
    ) -> None:
        super().__init__(modality_dims)
        self.dim = max(self.modality_dims.values()) if dim is None else dim
        _validate_args(self.modalities, sequence_modalities, self.dim, num_heads, num_layers, self_layers,
                       dim_feedforward, dropout, attn_dropout, pooling)
        ff = 4 * self.dim if dim_feedforward is None else dim_feedforward
        self.sequence_modalities = tuple(sorted(set(sequence_modalities)))
        self.pooling = pooling
        others = len(self.modalities) - 1
        self.out_dim = len(self.modalities) * others * self.dim
        self.projections = nn.ModuleDict(
            {m: nn.Linear(d, self.dim, bias=False) for m, d in self.modality_dims.items()}
        )
        self.positions = SinusoidalPositionalEncoding(self.dim)
        self.dropout = nn.Dropout(dropout)
        self.cross = nn.ModuleDict(
            {
                f"{s}_to_{t}": _TransformerStack(self.dim, num_layers, num_heads, ff, dropout, attn_dropout)
                for t in self.modalities
                for s in self.modalities
                if s != t
            }
        )
        self.self_attention = nn.ModuleDict(
            {
                t: _TransformerStack(others * self.dim, self_layers, num_heads, others * ff, dropout,
                                     attn_dropout)
                for t in self.modalities
            }
        )

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Cross-modal transformers per (source, target), self-attention per target, pool, concatenate.

        Args:
            encoded: per sequence modality ``sequence`` ``[B, T_m, D_m]`` and ``mask``
                ``[B, T_m]``; per vector modality ``pooled`` ``[B, D_m]``.

        Returns:
            ``FusionOutput(fused [B, out_dim], attention={"t->s": [B, T_t, T_s]})``.

        Raises:
            ValueError: if a modality is missing or unexpected, or a sequence modality has no sequence.
        """
        self.check_encoded(encoded)
        streams: dict[str, Tensor] = {}
        masks: dict[str, Tensor] = {}
        for m in self.modalities:
            steps, masks[m] = steps_or_token("mult", m, encoded[m], self.modality_dims[m], m in self.sequence_modalities)
            steps = torch.where(masks[m].unsqueeze(-1), steps, torch.zeros((), dtype=steps.dtype,
                                                                          device=steps.device))  # pads -> 0
            streams[m] = self.dropout(self.positions(self.projections[m](steps)))  # [B, T_m, dim]
        parts: list[Tensor] = []
        attention: dict[str, Tensor] = {}
        for t in self.modalities:
            crossed: list[Tensor] = []
            query_real = masks[t].unsqueeze(-1)  # [B, T_t, 1]
            for s in self.modalities:
                if s == t:
                    continue
                z, weights = self.cross[f"{s}_to_{t}"](streams[t], streams[s], masks[s], need_weights=True)
                crossed.append(z)  # [B, T_t, dim]
                if weights is not None:  # always, as need_weights=True
                    attention[f"{t}->{s}"] = weights * query_real.to(weights.dtype)  # [B, T_t, T_s]
            concatenated = torch.cat(crossed, dim=-1)  # [B, T_t, (M - 1) * dim]
            hidden, _ = self.self_attention[t](concatenated, None, masks[t])  # [B, T_t, (M - 1) * dim]
            pool = _last_real_step if self.pooling == "last" else masked_mean
            parts.append(pool(hidden, masks[t]))  # [B, (M - 1) * dim]
        return FusionOutput(fused=torch.cat(parts, dim=-1), attention=attention)
