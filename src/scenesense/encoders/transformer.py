"""Transformer encoder for feature sequences ``[B, T, D]`` (the Scene Sense text and vision encoders)."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.encoders.base import ENCODERS, ModalityEncoder, validate_sequence_input
from scenesense.layers.attention import unmask_empty_rows
from scenesense.layers.pooling import masked_mean
from scenesense.layers.positional import SinusoidalPositionalEncoding
from scenesense.types import EncoderOutput


def _validate_sizes(in_dim: int, out_dim: int, d_model: int, num_layers: int, num_heads: int) -> None:
    for name, value in (
        ("in_dim", in_dim),
        ("out_dim", out_dim),
        ("d_model", d_model),
        ("num_layers", num_layers),
        ("num_heads", num_heads),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if d_model % num_heads != 0:
        raise ValueError(
            f"d_model {d_model} is not divisible by num_heads {num_heads}; change num_heads or d_model"
        )


@ENCODERS.register("transformer")
class TransformerSequenceEncoder(ModalityEncoder):
    """Input projection, sinusoidal positions, a padding-aware TransformerEncoder, output projection.

    With ``h = TransformerEncoder(PE(In(x)))`` (``In`` = Linear to ``d_model``, identity when
    ``d_model`` is the input size) and ``P`` = Linear(d_model -> out_dim):

    * plain: ``sequence = P(h)``, ``pooled = masked_mean(P(h))`` (= ``P(masked_mean(h))``, the
      paper's global average pooling then Linear);
    * ``use_residual`` (the paper's outer residual around the encoder, ``R`` = Linear(in_dim ->
      out_dim)): ``pooled = LayerNorm(P(mean h) + R(mean x))`` with masked means, and per step
      ``sequence = LayerNorm(P(h) + R(x))``;
    * ``pooling="last"``: ``pooled`` is ``sequence`` at each row's last *real* step (the "final
      hidden state" of arXiv 2501.08085's per-modality encoders), whatever the padding.

    Padded steps never influence real outputs (they are zeroed on input and masked in
    attention); padded steps of ``sequence`` are zeros, and a row without any real step has
    zero ``pooled`` and ``sequence``.

    Args:
        in_dim: input feature size ``D``.
        out_dim: output size.
        d_model: transformer width (``None``: ``in_dim`` as in the paper, rounded up to a multiple
            of ``num_heads`` when it is not one, e.g. 25 eGeMAPS descriptors with 4 heads -> 28).
        num_layers: encoder layers.
        num_heads: attention heads (must divide ``d_model``).
        dim_feedforward: feed-forward size inside each layer.
        dropout: dropout inside each layer.
        use_residual: the outer residual variant described above.
        pooling: ``"mean"`` over the real steps or the ``"last"`` real step.

    Raises:
        ValueError: if ``d_model`` is not divisible by ``num_heads``, a size is not positive or
            ``pooling`` is unknown.
    """

    input_kind: ClassVar[Literal["sequence", "vector"]] = "sequence"

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 512,
        d_model: int | None = None,
        num_layers: int = 3,
        num_heads: int = 4,
        dim_feedforward: int = 512,
        dropout: float = 0.1,
        use_residual: bool = False,
        pooling: Literal["mean", "last"] = "mean",
    ) -> None:
        super().__init__()
        if d_model is None:  # the input size, rounded up to a multiple of num_heads
            d_model = -(-in_dim // num_heads) * num_heads if num_heads > 0 else in_dim
        _validate_sizes(in_dim, out_dim, d_model, num_layers, num_heads)
        if pooling not in ("mean", "last"):
            raise ValueError(f"pooling must be 'mean' or 'last', got {pooling!r}")
        self.pooling = pooling
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.d_model = d_model
        self.use_residual = use_residual
        self.input_proj: nn.Module = nn.Linear(in_dim, d_model) if d_model != in_dim else nn.Identity()
        self.positional = SinusoidalPositionalEncoding(d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, num_heads, dim_feedforward=dim_feedforward, dropout=dropout, batch_first=True
        )
        # No nested tensors: padded positions must come back as numbers so they can be masked.
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.out_proj = nn.Linear(d_model, out_dim)
        self.residual_proj = nn.Linear(in_dim, out_dim) if use_residual else None
        self.norm = nn.LayerNorm(out_dim) if use_residual else None

    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """Encode a padded batch of sequences.

        Args:
            x: ``[B, T, in_dim]`` features, padded.
            mask: ``[B, T]`` booleans, True = real step (``None``: all real).

        Returns:
            ``EncoderOutput(sequence [B, T, out_dim], pooled [B, out_dim], mask [B, T])``; the
            output mask is the input mask.

        Raises:
            ValueError: if ``x`` is not ``[B, T, in_dim]`` or the mask does not match it.
        """
        mask = validate_sequence_input(x, mask, self.in_dim)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        real = mask.unsqueeze(-1)  # [B, T, 1]
        has_step = mask.any(dim=1, keepdim=True)  # [B, 1]
        x = torch.where(real, x, zero)
        h = self.positional(self.input_proj(x))  # [B, T, d_model]
        # A row with no real step gets one (zeroed) step unmasked so attention stays finite.
        h = self.encoder(h, src_key_padding_mask=~unmask_empty_rows(mask))  # [B, T, d_model]
        sequence = self.out_proj(h)  # [B, T, out_dim]
        if self.residual_proj is not None and self.norm is not None:
            sequence = self.norm(sequence + self.residual_proj(x))
            pooled = self.norm(self.out_proj(masked_mean(h, mask)) + self.residual_proj(masked_mean(x, mask)))
        else:
            pooled = masked_mean(sequence, mask)  # [B, out_dim]
        sequence = torch.where(real, sequence, zero)
        if self.pooling == "last":
            last = (mask.sum(dim=1) - 1).clamp_min(0)  # [B] index of the last real step
            pooled = sequence[torch.arange(sequence.shape[0], device=x.device), last]  # [B, out_dim]
        pooled = torch.where(has_step, pooled, zero)
        return EncoderOutput(sequence=sequence, pooled=pooled, mask=mask)
