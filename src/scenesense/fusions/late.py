"""Late (decision-level) fusion: one classifier per modality, combined by averaging or majority vote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.fusions.base import FUSIONS, Fusion
from scenesense.types import EncoderOutput, FusionOutput

MODES = ("average", "vote")


@FUSIONS.register("late")
class LateFusion(Fusion):
    """Decision-level fusion: per-modality class probabilities, averaged or voted.

    Each modality has a linear classifier ``p_m = softmax(W_m pooled_m + b_m)`` ``[B, C]``, then:

    - ``mode="average"``: ``fused = log(mean_m p_m)`` (log of the averaged probabilities);
    - ``mode="vote"``: while training, the same average (a vote has no gradient); in eval mode
      ``fused = log((votes + mean_m p_m) / (M + 1))``, where ``votes[c]`` counts the modalities
      whose argmax is ``c``. This is a probability distribution whose argmax is the majority
      class; a tie between classes with equally many votes goes to the one with the higher mean
      probability (then the lower class id, as ``argmax`` does).

    The means run over the modalities present in the row: a sequence modality whose mask row is
    all False (how the classifier hides a missing one) is left out; a vector modality cannot be
    told missing from its zeroed features and always counts. A row with no present modality
    averages over all of them. ``out_dim = C``; the model uses no extra head (``level="decision"``).

    Args:
        modality_dims: encoder output size per modality.
        num_classes: ``C``.
        sequence_modalities: modalities whose encoders give masks (to detect missing rows).
        mode: ``"average"`` or ``"vote"``.

    Raises:
        ValueError: fewer than 2 classes, or an unknown mode / sequence modality.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "decision"

    def __init__(self, modality_dims: Mapping[str, int], num_classes: int,
                 sequence_modalities: Sequence[str] = (), mode: str = "average") -> None:
        super().__init__(modality_dims)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"late fusion needs num_classes >= 2, got {num_classes!r}")
        if mode not in MODES:
            raise ValueError(f"late fusion mode must be one of {MODES}, got {mode!r}")
        unknown = sorted(set(sequence_modalities) - set(self.modalities))
        if unknown:
            raise ValueError(f"late fusion: sequence modalities {unknown} are not among {list(self.modalities)}")
        self.mode = mode
        self.sequence_modalities = frozenset(sequence_modalities)
        self.classifiers = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in self.modality_dims.items()})
        self.out_dim = num_classes

    def _present(self, encoded: Mapping[str, EncoderOutput]) -> Tensor:
        """``[M, B]`` float: 1 where the modality counts for the row."""
        rows = []
        for m in self.modalities:
            out = encoded[m]
            if m in self.sequence_modalities and out.mask is not None:
                rows.append(out.mask.bool().any(dim=-1).to(out.pooled.dtype))
            else:
                rows.append(torch.ones(out.pooled.shape[0], dtype=out.pooled.dtype, device=out.pooled.device))
        present = torch.stack(rows)
        none = present.sum(dim=0) == 0
        return torch.where(none.unsqueeze(0), torch.ones_like(present), present)

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Classify each modality and combine.

        Args:
            encoded: per modality ``pooled`` ``[B, D_m]`` (and ``mask`` ``[B, T_m]`` for sequences).

        Returns:
            ``FusionOutput(fused [B, C] log-probabilities)``.
        """
        self.check_encoded(encoded)
        probs = torch.stack([self.classifiers[m](encoded[m].pooled).softmax(dim=-1)
                             for m in self.modalities])  # [M, B, C]
        present = self._present(encoded).unsqueeze(-1)  # [M, B, 1]
        count = present.sum(dim=0)  # [B, 1]
        mean = (probs * present).sum(dim=0) / count  # [B, C]
        if self.mode == "vote" and not self.training:
            votes = (nn.functional.one_hot(probs.argmax(dim=-1), probs.shape[-1]).to(probs.dtype)
                     * present).sum(dim=0)  # [B, C]
            combined = (votes + mean) / (count + 1)
        else:
            combined = mean
        fused = torch.log(combined.clamp_min(torch.finfo(combined.dtype).tiny))
        return FusionOutput(fused=fused)
