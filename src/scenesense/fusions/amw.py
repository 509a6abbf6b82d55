"""Adaptive Modality Weighting (AMW): a per-dimension softmax over modalities, static or per sample."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.fusions.base import FUSIONS, Fusion
from scenesense.layers.modality_weighting import modality_softmax
from scenesense.types import EncoderOutput, FusionOutput

_MODES = ("static", "sample")
_PROJECTIONS = ("auto", "always", "never")


def _resolve_dim(modality_dims: Mapping[str, int], dim: int | None, projection: str) -> tuple[int, bool]:
    """Return ``(common size d, whether to project)`` after checking the arguments."""
    if len(modality_dims) < 2:
        raise ValueError(f"amw fusion needs at least 2 modalities, got {sorted(modality_dims)}")
    if projection not in _PROJECTIONS:
        raise ValueError(f"amw fusion: projection must be one of {list(_PROJECTIONS)}, got {projection!r}")
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        raise ValueError(f"amw fusion: dim must be a positive int, got {dim!r}")
    sizes = set(modality_dims.values())
    equal = len(sizes) == 1 and (dim is None or dim in sizes)
    if projection == "never" and not equal:
        raise ValueError(
            f"amw fusion with projection='never' needs equal modality sizes (and dim), got "
            f"{dict(modality_dims)} and dim={dim}"
        )
    project = projection == "always" or not equal
    return (min(sizes) if dim is None else dim), project


def _present(out: EncoderOutput) -> Tensor | None:
    """``[B]`` booleans, False where a sequence modality's mask row is all False; ``None`` for vectors."""
    if out.mask is None:
        return None
    mask = out.mask if out.mask.dtype == torch.bool else out.mask != 0
    return mask.any(dim=-1)


@FUSIONS.register("amw")
class AdaptiveModalityWeightingFusion(Fusion):
    """``fused = sum_m w_m * h_m`` with ``w = softmax over modalities`` of ``[M, d]`` logits.

    ``h_m`` ``[B, d]`` is modality ``m``'s pooled vector (linearly projected to ``d`` when
    projecting). For every feature dimension the weights over the ``M`` modalities sum to 1, so
    they show which modality the model relies on, per dimension and per sample.

    Modes:
        ``"static"``: learnable logits ``[M, d]`` (initialised to 0, i.e. uniform weights), the
        same for every sample.
        ``"sample"``: logits computed from the input, ``logit_m = Linear_m(h_m)`` ``[B, d]`` (one
        ``d -> d`` scorer per modality), so weights change from sample to sample.

    Missing modalities: a *sequence* modality whose mask row is all False (how the classifier
    hides a missing or dropped modality) is excluded from that row's softmax, so the present
    modalities share the weight. A *vector* modality (mask ``None``) cannot be detected as
    missing here, because an all-zero pooled row is also a legitimate value: it keeps its
    softmax weight and, its features being zeroed by the classifier, contributes nothing to
    ``fused`` (only its projection's bias when projecting). A row where every modality is detected missing falls back to the unmasked softmax
    (its features are all zero, so ``fused`` is zero there).

    Args:
        modality_dims: encoder output size per modality (at least two modalities).
        mode: ``"static"`` or ``"sample"`` (see above).
        dim: common size ``d`` (``None``: the smallest modality size).
        projection: ``"auto"`` projects every modality with its own ``Linear(D_m, d)`` only when
            the sizes (or ``dim``) differ, otherwise weights the pooled vectors directly;
            ``"always"`` always projects; ``"never"`` never does and then requires equal sizes.

    Raises:
        ValueError: with fewer than 2 modalities, an unknown ``mode``/``projection``, a bad
            ``dim``, or unequal sizes with ``projection="never"``.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "pooled"

    def __init__(
        self,
        modality_dims: Mapping[str, int],
        mode: Literal["static", "sample"] = "static",
        dim: int | None = None,
        projection: Literal["auto", "always", "never"] = "auto",
    ) -> None:
        super().__init__(modality_dims)
        if mode not in _MODES:
            raise ValueError(f"amw fusion: mode must be one of {list(_MODES)}, got {mode!r}")
        self.mode = mode
        self.out_dim, project = _resolve_dim(self.modality_dims, dim, projection)
        self.projections = nn.ModuleDict(
            {
                m: nn.Linear(d, self.out_dim) if project else nn.Identity()
                for m, d in self.modality_dims.items()
            }
        )
        if mode == "static":
            self.logits = nn.Parameter(torch.zeros(len(self.modalities), self.out_dim))  # [M, d]
        else:
            self.scorers = nn.ModuleDict({m: nn.Linear(self.out_dim, self.out_dim) for m in self.modalities})

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Weight the (projected) pooled vectors per dimension and sum them.

        Args:
            encoded: per modality ``pooled`` ``[B, D_m]``; a sequence modality's ``mask``
                ``[B, T]`` marks it missing for a row when all False.

        Returns:
            ``FusionOutput(fused [B, d], modality_weights={m: [B, d]})``.

        Raises:
            ValueError: if a modality is missing or unexpected.
        """
        self.check_encoded(encoded)
        h = torch.stack([self.projections[m](encoded[m].pooled) for m in self.modalities], dim=1)  # [B, M, d]
        if self.mode == "static":
            logits = self.logits.unsqueeze(0).expand_as(h)  # [B, M, d]
        else:
            logits = torch.stack([self.scorers[m](h[:, i]) for i, m in enumerate(self.modalities)], dim=1)
        present = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)  # [B, M]
        for i, m in enumerate(self.modalities):
            known = _present(encoded[m])
            if known is not None:
                present[:, i] = known
        weights = modality_softmax(logits, present)  # [B, M, d]
        fused = (weights * h).sum(dim=1)  # [B, d]
        return FusionOutput(
            fused=fused, modality_weights={m: weights[:, i] for i, m in enumerate(self.modalities)}
        )
