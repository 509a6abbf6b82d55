"""TACFN: adaptive cross-modal fusion with intra-modal self-attention (arXiv 2505.06536)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.fusions.base import FUSIONS, Fusion, sequence_and_mask
from scenesense.layers.attention import relative_times, validate_heads
from scenesense.layers.pooling import masked_mean
from scenesense.types import EncoderOutput, FusionOutput


def align_steps(source: Tensor, source_mask: Tensor, target_mask: Tensor) -> Tensor:
    """Resample ``source`` onto the target's steps by relative time (nearest earlier source step).

    Target step ``i`` of a row with ``L_t`` real steps sits at ``tau = (i + 0.5) / L_t`` and reads
    source step ``floor(tau * L_s)`` of the same row (``L_s`` real source steps), so two sequences
    covering the same utterance meet at the same moment whatever their frame rates; equal lengths
    give the identity. Rows whose source is absent (no real step) read zeros.

    Args:
        source: ``[B, T_s, D]`` per-step features.
        source_mask: ``[B, T_s]`` booleans, True = real step (real steps first).
        target_mask: ``[B, T_t]`` booleans, True = real step (real steps first).

    Returns:
        ``[B, T_t, D]`` source features at each target step (padded target steps read the last
        real source step; mask them downstream).
    """
    lengths = source_mask.sum(dim=1, keepdim=True)  # [B, 1]
    index = torch.floor(relative_times(target_mask) * lengths).long()  # [B, T_t]
    index = torch.minimum(index, (lengths - 1).clamp_min(0))
    aligned = torch.gather(source, 1, index.unsqueeze(-1).expand(-1, -1, source.shape[-1]))
    return aligned * (lengths > 0).unsqueeze(-1).to(source.dtype)


@FUSIONS.register("tacfn")
class TACFNFusion(Fusion):
    """Each modality is a target re-weighted by the self-attention-selected other modalities.

    For every target ``t`` (sorted), the other modalities ``s`` are its sources:

    1. intra-modal selection ``a_s``: self-attention over the source's encoder ``sequence``
       ``[B, T_s, D_s]`` (key padding from ``mask``), giving one selected vector per step; for
       a vector source, self-attention over its single pooled vector, which is exactly its value
       and output projections, i.e. one ``Linear(D_s, D_s)``;
    2. ``w_t = softmax(tanh(sum_s P_{s->t} a_s + Q_t x_t))`` (softmax over the feature axis),
       ``P_{s->t}: Linear(D_s, D_t)``, ``Q_t: Linear(D_t, D_t)``;
    3. ``y_t = w_t * x_t + x_t`` (``w_t * x_t`` without the residual).

    Where ``x_t`` and ``a_s`` live depends on ``temporal``:

    * ``temporal=True`` (default; the paper's blocks act on feature sequences): a *sequence*
      target is weighted step by step, ``x_t`` ``[B, T_t, D_t]`` its encoder steps and each
      sequence source's selected steps aligned to them by relative time (`align_steps`;
      identity for equal lengths), a vector source broadcast over the steps. A *vector* target
      uses pooled sources.
    * ``temporal=False``: every target is its pooled vector ``[B, D_t]`` and every source its
      selection masked-mean pooled over its real steps (timing is lost before fusing).

    The paper does not pin the axis of the softmax for a sequence target; ``weight_axis``
    chooses it (vector targets always use the feature axis):

    * ``"time"`` (default): per feature, a softmax over the target's real steps, so ``w_t`` is
      a temporal weighting guided by what the sources do *at each moment*;
      ``y_t = sum_i w_t[i] * x_t[i]`` (+ the masked mean of ``x_t`` with the residual). The
      map ``"t:steps"`` ``[B, 1, T_t]`` holds ``w_t`` averaged over features. A target row with
      one real step gets weight 1 there, whatever the sources.
    * ``"features"``: a softmax over the feature axis at every step, then ``y_t`` and ``w_t``
      masked-mean pooled over the real steps (``modality_weights[t]``). Each weight is near
      ``1 / D_t``, so a source can only nudge the target; measured on the synthetic probe
      (`scenesense.evaluation.fusion_probe`) this reading stays at chance on the
      co-occurrence classes, while ``"time"`` solves them.

    ``fused = concat_t y_t`` in sorted order, so ``out_dim = sum_m D_m``. With two modalities
    this is the paper's two blocks (audio->visual and visual->audio) followed by concatenation.
    With more, each target gets one block whose sources are all the others, their projections
    added, because the paper's block already combines source and target by addition and ends
    in one weight vector over the *target's* features. Each modality has one self-attention,
    shared by the targets it serves.

    Ablations: ``self_attention=False`` uses the encoder output as the selection (its steps,
    or ``pooled`` for pooled sources); ``residual=False`` drops ``+ x_t``; ``block=False``
    returns the plain concatenation of the pooled vectors (no parameters, no weights or maps).

    A modality absent for a row (all-False mask, zero pooled vector) selects zeros as a source
    and is re-weighted zeros as a target.

    ``FusionOutput.modality_weights[t]`` holds ``w_t`` ``[B, D_t]`` of every target weighted on
    the feature axis; ``FusionOutput.attention`` holds the head-averaged self-attention map
    ``"m->m"`` ``[B, T_m, T_m]`` of each sequence modality (zero rows and columns at padded
    steps) and the step weights ``"t:steps"`` of time-weighted targets.

    Args:
        modality_dims: encoder output size per modality (at least two modalities).
        sequence_modalities: which of them give sequences (self-attended over their steps).
        num_heads: self-attention heads (must divide each sequence modality's size).
        dropout: self-attention dropout.
        self_attention: intra-modal self-attention on the sources.
        residual: add the target back after re-weighting.
        block: ``False`` replaces the whole fusion by plain concatenation.
        temporal: weight sequence targets step by step (see above).
        weight_axis: ``"time"`` or ``"features"``: the softmax axis for sequence targets.

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
        temporal: bool = True,
        weight_axis: Literal["features", "time"] = "time",
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
        self.temporal = temporal
        if weight_axis not in ("features", "time"):
            raise ValueError(f"weight_axis must be 'features' or 'time', got {weight_axis!r}")
        self.weight_axis = weight_axis
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

    def _select(self, m: str, out: EncoderOutput) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """Intra-modal selection of modality ``m``.

        Returns:
            ``(pooled [B, D_m], steps [B, T_m, D_m] or None, mask [B, T_m] or None,
            map [B, T_m, T_m] or None)``; steps, mask and map only for sequence modalities.
        """
        if m not in self.sequence_modalities:
            pooled = self.selectors[m](out.pooled) if self.self_attention else out.pooled
            return pooled, None, None, None
        sequence, mask = sequence_and_mask("tacfn", m, out, self.modality_dims[m])
        zero = torch.zeros((), dtype=sequence.dtype, device=sequence.device)
        sequence = torch.where(mask.unsqueeze(-1), sequence, zero)  # pads -> 0
        if not self.self_attention:
            return out.pooled, sequence, mask, None
        # a row with no real step attends over its zeroed steps (no NaN); its results are zeroed
        key_padding = ~mask & mask.any(dim=1, keepdim=True)  # [B, T]
        attended, weights = self.selectors[m](
            sequence, sequence, sequence, key_padding_mask=key_padding, need_weights=True
        )  # [B, T, D], [B, T, T] averaged over heads
        attended = torch.where(mask.unsqueeze(-1), attended, zero)
        real = mask.unsqueeze(2) & mask.unsqueeze(1)  # [B, T, T]
        return masked_mean(attended, mask), attended, mask, weights * real.to(weights.dtype)

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Select, weight each target by its sources, add it back, concatenate.

        Args:
            encoded: per modality ``pooled`` ``[B, D_m]``; per sequence modality also
                ``sequence`` ``[B, T_m, D_m]`` and ``mask`` ``[B, T_m]``.

        Returns:
            ``FusionOutput(fused [B, out_dim], modality_weights={t: [B, D_t]},
            attention={"m->m": [B, T_m, T_m], "t:steps": [B, 1, T_t]})`` (weights and maps
            ``None`` without them).

        Raises:
            ValueError: if a modality is missing or unexpected, or a sequence modality has no sequence.
        """
        self.check_encoded(encoded)
        if not self.block:
            return FusionOutput(fused=torch.cat([encoded[m].pooled for m in self.modalities], dim=-1))
        selected = {m: self._select(m, encoded[m]) for m in self.modalities}
        attention = {f"{m}->{m}": s[3] for m, s in selected.items() if s[3] is not None}
        parts: list[Tensor] = []
        modality_weights: dict[str, Tensor] = {}
        for t in self.modalities:
            steps, mask = selected[t][1], selected[t][2]
            if self.temporal and steps is not None and mask is not None:
                target = torch.where(mask.unsqueeze(-1), encoded[t].sequence, 0.0)  # [B, T_t, D_t]
                sources = {s: self._aligned(selected[s], mask) for s in self.modalities if s != t}
            else:
                target, mask = encoded[t].pooled, None  # [B, D_t]
                sources = {s: selected[s][0] for s in self.modalities if s != t}
            combined = self.target_projections[t](target)
            for s, source in sources.items():
                combined = combined + self.source_projections[f"{s}_to_{t}"](source)
            if mask is not None and self.weight_axis == "time":
                w, y = self._over_time(torch.tanh(combined), target, mask)
                attention[f"{t}:steps"] = w.mean(dim=-1).unsqueeze(1)  # [B, 1, T_t]
                parts.append(y)
                continue
            w = torch.softmax(torch.tanh(combined), dim=-1)  # [B, D_t] or [B, T_t, D_t]
            y = w * target + target if self.residual else w * target
            if mask is not None:
                w, y = masked_mean(w, mask), masked_mean(y, mask)
            modality_weights[t] = w
            parts.append(y)
        return FusionOutput(
            fused=torch.cat(parts, dim=-1),
            modality_weights=modality_weights or None,
            attention=attention or None,
        )

    def _over_time(self, scores: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Softmax over the target's real steps, per feature: ``(w [B, T, D], y [B, D])``.

        ``y = sum_i w_i * x_i`` (+ the masked mean of ``x`` with the residual); a row without a
        real step has zero weights and ``y = 0``.
        """
        real = mask.unsqueeze(-1)  # [B, T, 1]
        has_step = mask.any(dim=1).view(-1, 1, 1)  # [B, 1, 1]
        scores = scores.masked_fill(~real & has_step, float("-inf"))
        w = torch.where(real, torch.softmax(scores, dim=1), 0.0)  # [B, T, D]
        y = (w * target).sum(dim=1)
        return w, y + masked_mean(target, mask) if self.residual else y

    @staticmethod
    def _aligned(selection: tuple[Tensor, Tensor | None, Tensor | None, Tensor | None],
                 target_mask: Tensor) -> Tensor:
        """A source's selection at each target step: ``[B, T_t, D_s]`` (vectors broadcast)."""
        pooled, steps, mask, _ = selection
        if steps is None or mask is None:
            return pooled.unsqueeze(1)  # [B, 1, D_s], broadcast over the steps
        return align_steps(steps, mask, target_mask)
