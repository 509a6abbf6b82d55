"""Modality dropout: randomly hide whole modalities while training."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

_MODES = ("batch", "sample")


class ModalityDropout(nn.Module):
    """Draws per-modality keep flags while training; no rescaling (as in the paper).

    Modes:

    * ``"batch"`` (the paper): one draw per modality per batch, shared by every sample.
      Each modality is dropped with probability ``p`` independently, so **all modalities
      may be dropped at once** (probability ``p ** n``), exactly as the published code did.
    * ``"sample"``: independent draws per sample and modality; a sample that would lose
      every modality keeps one chosen uniformly at random, so **at least one modality is
      kept per sample** (the effective drop rate is therefore slightly below ``p``).

    In eval mode, with ``p == 0`` or with fewer than two modalities every flag is True.

    Args:
        p: probability of dropping a modality, in ``[0, 1)``.
        mode: ``"batch"`` or ``"sample"``.

    Raises:
        ValueError: if ``p`` is outside ``[0, 1)`` or ``mode`` is unknown.
    """

    def __init__(self, p: float = 0.5, mode: str = "batch") -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"modality dropout p must be in [0, 1), got {p}")
        if mode not in _MODES:
            raise ValueError(f"modality dropout mode must be one of {list(_MODES)}, got {mode!r}")
        self.p = p
        self.mode = mode

    def forward(
        self, modalities: Sequence[str], batch_size: int, device: torch.device | None = None
    ) -> dict[str, Tensor]:
        """Draw keep flags.

        Args:
            modalities: the model's modalities (order does not matter; drawn in sorted order).
            batch_size: ``B``.
            device: device of the flags.

        Returns:
            Per modality ``[B]`` booleans, True = keep.
        """
        names = sorted(modalities)
        if not self.training or self.p == 0.0 or len(names) < 2:
            return {m: torch.ones(batch_size, dtype=torch.bool, device=device) for m in names}
        if self.mode == "batch":
            keep = (
                (torch.rand(len(names), device=device) >= self.p).unsqueeze(0).expand(batch_size, -1)
            )  # [B, M]
        else:
            keep = torch.rand(batch_size, len(names), device=device) >= self.p  # [B, M]
            rescue = torch.randint(len(names), (batch_size,), device=device)  # [B]
            none_kept = ~keep.any(dim=1, keepdim=True)  # [B, 1]
            keep = keep | (none_kept & nn.functional.one_hot(rescue, len(names)).bool())
        return {m: keep[:, i].contiguous() for i, m in enumerate(names)}

    def extra_repr(self) -> str:  # noqa: D102
        return f"p={self.p}, mode={self.mode!r}"
