"""The one architecture: encode each modality, fuse, classify."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from scenesense.fusions.base import Fusion
from scenesense.models.modality_dropout import ModalityDropout
from scenesense.models.standardize import FeatureStandardizer
from scenesense.types import EncoderOutput, FusionOutput, ModelOutput


def _batch_size(inputs: Mapping[str, Tensor], modalities: tuple[str, ...]) -> int:
    # Sizes stay as torch gives them (no int()): an exported graph keeps its batch size dynamic.
    first = inputs[modalities[0]].shape[0]
    if any(inputs[m].shape[0] != first for m in modalities):
        sizes = {m: int(inputs[m].shape[0]) for m in modalities}
        raise ValueError(f"modalities disagree on the batch size: {sizes}")
    return first


def _flags(name: str, flags: Tensor, batch_size: int, device: torch.device) -> Tensor:
    if flags.shape != (batch_size,):
        raise ValueError(f"present[{name!r}] must have shape [{batch_size}], got {tuple(flags.shape)}")
    return (flags if flags.dtype == torch.bool else flags != 0).to(device)


def _hide(out: EncoderOutput, keep: Tensor) -> EncoderOutput:
    """Zero ``pooled``/``sequence`` and clear ``mask`` of the rows where ``keep`` ``[B]`` is False;
    ``present`` is ``keep``."""
    zero = torch.zeros((), dtype=out.pooled.dtype, device=out.pooled.device)
    pooled = torch.where(keep.unsqueeze(-1), out.pooled, zero)  # [B, D]
    sequence = None if out.sequence is None else torch.where(keep.view(-1, 1, 1), out.sequence, zero)
    mask = None if out.mask is None else out.mask & keep.unsqueeze(-1)  # [B, T]
    return EncoderOutput(sequence=sequence, pooled=pooled, mask=mask, present=keep)


class MultimodalClassifier(nn.Module):
    """``head(fusion({m: encoder_m(x_m, mask_m)}))`` with missing-modality handling.

    A modality that is missing for a sample (``present`` False) or dropped by modality dropout
    has its ``pooled`` and ``sequence`` outputs zeroed and its mask set all-False, so
    pooled fusions see zeros and cross-attention treats it as absent.

    Args:
        encoders: one `scenesense.encoders.base.ModalityEncoder` per modality.
        fusion: fuses the encoder outputs; built for exactly these modalities.
        head: maps ``[B, fusion.out_dim]`` to logits ``[B, C]``.
        modality_dropout: applied while training (``None``: never).
        standardizer: z-scores the inputs first, with the train split's statistics (``None``: raw).

    Raises:
        ValueError: if there are no encoders or the fusion was built for other modalities.
    """

    def __init__(
        self,
        encoders: nn.ModuleDict,
        fusion: Fusion,
        head: nn.Module,
        modality_dropout: ModalityDropout | None = None,
        standardizer: FeatureStandardizer | None = None,
    ) -> None:
        super().__init__()
        if len(encoders) == 0:
            raise ValueError("MultimodalClassifier needs at least one encoder")
        self.modalities: tuple[str, ...] = tuple(sorted(encoders.keys()))
        if tuple(fusion.modalities) != self.modalities:
            raise ValueError(
                f"fusion was built for {list(fusion.modalities)} but the encoders are {list(self.modalities)}"
            )
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.fusion = fusion
        self.head = head
        self.modality_dropout = modality_dropout
        self.standardizer = standardizer

    def forward(
        self,
        inputs: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
        present: Mapping[str, Tensor] | None = None,
    ) -> ModelOutput:
        """Classify a batch: `encode`, then the head.

        Args:
            inputs: per modality ``[B, T, D]`` or ``[B, D]``; extra modalities are ignored.
            masks: per sequence modality ``[B, T]`` booleans, True = real step (absent: all real).
            present: per modality ``[B]`` booleans, False = missing for that sample (absent: all present).

        Returns:
            `scenesense.types.ModelOutput` with ``logits`` ``[B, C]``; ``aux_losses`` are the fusion's.

        Raises:
            ValueError: if a modality the model needs is not in ``inputs``, or flags/batch sizes disagree.
        """
        fused = self.encode(inputs, masks, present)
        return ModelOutput(
            logits=self.head(fused.fused),
            fused=fused.fused,
            modality_weights=fused.modality_weights,
            attention=fused.attention,
            aux_losses=dict(fused.aux_losses or {}),
        )

    def encode(
        self,
        inputs: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
        present: Mapping[str, Tensor] | None = None,
    ) -> FusionOutput:
        """Standardise, encode each modality, hide missing/dropped ones and fuse (no head).

        Args and errors as `forward`.

        Returns:
            The fusion's `scenesense.types.FusionOutput`; ``fused`` is ``[B, fusion.out_dim]``.
        """
        for m in self.modalities:
            if m not in inputs:
                raise ValueError(f"model needs modality {m!r} but the batch has only {sorted(inputs)}")
        masks = masks or {}
        present = present or {}
        if self.standardizer is not None:
            inputs = self.standardizer(inputs, masks)
        batch_size = _batch_size(inputs, self.modalities)
        device = inputs[self.modalities[0]].device
        keep = (
            self.modality_dropout(self.modalities, batch_size, device)
            if self.modality_dropout is not None
            else {m: torch.ones(batch_size, dtype=torch.bool, device=device) for m in self.modalities}
        )
        encoded: dict[str, EncoderOutput] = {}
        for m in self.modalities:
            if m in present:
                keep[m] = keep[m] & _flags(m, present[m], batch_size, device)
            encoded[m] = _hide(self.encoders[m](inputs[m], masks.get(m)), keep[m])
        return self.fusion(encoded)

    def parameter_groups(self) -> list[dict[str, object]]:
        """Optimizer groups: those of each encoder that defines ``parameter_groups``, then the rest.

        Returns:
            Dicts with ``params``, ``lr_scale`` and ``frozen_epochs`` (the contract read by
            `scenesense.training.trainer.Trainer`); the last group holds every parameter
            not in an encoder's groups, with ``lr_scale`` 1 and ``frozen_epochs`` 0.
        """
        groups: list[dict[str, object]] = []
        taken: set[int] = set()
        for m in self.modalities:
            make = getattr(self.encoders[m], "parameter_groups", None)
            for group in make() if callable(make) else []:
                groups.append(group)
                taken.update(id(p) for p in group["params"])
        rest = [p for p in self.parameters() if id(p) not in taken]
        groups.append({"params": rest, "lr_scale": 1.0, "frozen_epochs": 0})
        return groups

    def aux_loss_weights(self) -> dict[str, float]:
        """The default weights of the fusion's auxiliary losses (the contract read by
        `scenesense.training.trainer.Trainer`; ``trainer.aux_loss_weights`` overrides them).

        Returns:
            A copy of the fusion's ``aux_loss_weights`` attribute (auxiliary loss name -> weight),
            ``{}`` if it has none: a term without a default weighs 1.
        """
        return dict(getattr(self.fusion, "aux_loss_weights", {}))
