"""Adaptive Modality Weighting (AMW): per-dimension softmax over modalities, fixed, per sample or segment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.fusions.base import FUSIONS, Fusion, steps_or_token
from scenesense.layers.modality_weighting import modality_softmax
from scenesense.layers.pooling import segment_means
from scenesense.types import EncoderOutput, FusionOutput

_MODES = ("static", "sample", "temporal")
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


def _check_temporal(modalities: Sequence[str], mode: str, segments: int,
                    sequence_modalities: Sequence[str]) -> None:
    """Raise ``ValueError`` naming a bad ``segments`` or ``sequence_modalities`` (``TypeError`` for a
    string instead of a list of names)."""
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"amw fusion: segments must be an int >= 1, got {segments!r}")
    if isinstance(sequence_modalities, str):
        raise TypeError(f"amw fusion: sequence_modalities must be a list of names, "
                        f"got {sequence_modalities!r}")
    unknown = sorted(set(sequence_modalities) - set(modalities))
    if unknown:
        raise ValueError(f"amw fusion: sequence modalities {unknown} are not among the fused "
                         f"{list(modalities)}")
    if mode == "temporal" and not sequence_modalities:
        raise ValueError(
            f"amw fusion with mode='temporal' needs at least one sequence modality, but all of "
            f"{list(modalities)} are vectors; use mode='sample'"
        )


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
        ``"temporal"``: weights per time segment. Modalities need not be aligned in time (text
        tokens, video frames), so each sequence modality's real steps are cut by relative
        position into ``segments`` contiguous near-equal parts, each averaged
        (`scenesense.layers.pooling.segment_means`: ``[B, K, D_m]``); a vector modality gives its
        pooled vector in every segment. Each segment's vector is projected to ``d`` as above and
        scored by the modality's ``Linear_m`` (``logits [B, M, K, d]``); the softmax over
        modalities is taken per segment, ``fused_k = sum_m w_mk * h_mk`` and ``fused`` is the mean
        of the ``fused_k``. ``FusionOutput.modality_weights[m]`` is the mean of the segment
        weights ``[B, d]``; `segment_weights` gives them per segment ``[B, K, d]``. When every
        sequence modality has the same ``T`` steps without padding and ``segments = T``, segment
        ``k`` is step ``k``: the weights are per time step. A row with fewer real steps than
        ``segments`` repeats steps (see `segment_means`). Needs at least one sequence modality
        (``sequence_modalities``, derived from the encoders when built from a config).

    Missing modalities: a *sequence* modality whose mask row is all False (how the classifier
    hides a missing or dropped modality) is excluded from that row's softmax, so the present
    modalities share the weight. A *vector* modality (mask ``None``) cannot be detected as
    missing here, because an all-zero pooled row is also a legitimate value: it keeps its
    softmax weight and, its features being zeroed by the classifier, contributes nothing to
    ``fused`` (only its projection's bias when projecting). A row where every modality is detected
    missing falls back to the unmasked softmax (its features are all zero, so ``fused`` is zero
    there).

    Args:
        modality_dims: encoder output size per modality (at least two modalities).
        mode: ``"static"``, ``"sample"`` or ``"temporal"`` (see above).
        dim: common size ``d`` (``None``: the smallest modality size).
        projection: ``"auto"`` projects every modality with its own ``Linear(D_m, d)`` only when
            the sizes (or ``dim``) differ, otherwise weights the pooled vectors directly;
            ``"always"`` always projects; ``"never"`` never does and then requires equal sizes.
        segments: number of time segments ``K`` per sequence in ``"temporal"`` mode (int >= 1;
            unused by the other modes). More segments follow time more finely but average fewer
            steps each; ``1`` scores each modality's mean over its real steps.
        sequence_modalities: modalities whose encoders give sequences (read in ``"temporal"``
            mode; the others are weighted through their pooled vector).

    Raises:
        ValueError: with fewer than 2 modalities, an unknown ``mode``/``projection``, a bad
            ``dim`` or ``segments``, unequal sizes with ``projection="never"``, sequence
            modalities that are not fused, or ``"temporal"`` mode without a sequence modality.
        TypeError: if ``sequence_modalities`` is a string.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "pooled"

    def __init__(
        self,
        modality_dims: Mapping[str, int],
        mode: Literal["static", "sample", "temporal"] = "static",
        dim: int | None = None,
        projection: Literal["auto", "always", "never"] = "auto",
        segments: int = 8,
        sequence_modalities: Sequence[str] = (),
    ) -> None:
        super().__init__(modality_dims)
        if mode not in _MODES:
            raise ValueError(f"amw fusion: mode must be one of {list(_MODES)}, got {mode!r}")
        self.mode = mode
        self.out_dim, project = _resolve_dim(self.modality_dims, dim, projection)
        _check_temporal(self.modalities, mode, segments, sequence_modalities)
        self.segments = segments
        self.sequence_modalities = frozenset(sequence_modalities)
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
        """Weight the (projected) pooled vectors, or segment vectors, per dimension and sum them.

        Args:
            encoded: per modality ``pooled`` ``[B, D_m]``; a sequence modality's ``mask``
                ``[B, T]`` marks it missing for a row when all False. In ``"temporal"`` mode a
                sequence modality also gives ``sequence`` ``[B, T_m, D_m]``.

        Returns:
            ``FusionOutput(fused [B, d], modality_weights={m: [B, d]})`` (in ``"temporal"`` mode
            the weights are averaged over the segments).

        Raises:
            ValueError: if a modality is missing or unexpected, or a sequence modality gives no
                sequence in ``"temporal"`` mode.
        """
        self.check_encoded(encoded)
        if self.mode == "temporal":
            weights, h = self._temporal(encoded)  # [B, M, K, d] each
            fused = (weights * h).sum(dim=1).mean(dim=1)  # [B, d]
            weights = weights.mean(dim=2)  # [B, M, d]
            return FusionOutput(
                fused=fused, modality_weights={m: weights[:, i] for i, m in enumerate(self.modalities)}
            )
        h = torch.stack([self.projections[m](encoded[m].pooled) for m in self.modalities], dim=1)  # [B, M, d]
        if self.mode == "static":
            logits = self.logits.unsqueeze(0).expand_as(h)  # [B, M, d]
        else:
            logits = torch.stack([self.scorers[m](h[:, i]) for i, m in enumerate(self.modalities)], dim=1)
        weights = modality_softmax(logits, self._present(encoded, h))  # [B, M, d]
        fused = (weights * h).sum(dim=1)  # [B, d]
        return FusionOutput(
            fused=fused, modality_weights={m: weights[:, i] for i, m in enumerate(self.modalities)}
        )

    def segment_weights(self, encoded: dict[str, EncoderOutput]) -> dict[str, Tensor]:
        """The ``"temporal"`` mode's weights per segment, before they are averaged.

        Args:
            encoded: as for `forward`.

        Returns:
            Per modality ``[B, K, d]`` weights (``K = segments``), summing to 1 over modalities.

        Raises:
            ValueError: if the fusion is not in ``"temporal"`` mode, or as `forward`.
        """
        if self.mode != "temporal":
            raise ValueError(f"amw fusion: segment_weights needs mode='temporal', this one is {self.mode!r}")
        self.check_encoded(encoded)
        weights, _ = self._temporal(encoded)
        return {m: weights[:, i] for i, m in enumerate(self.modalities)}

    def _temporal(self, encoded: Mapping[str, EncoderOutput]) -> tuple[Tensor, Tensor]:
        """``(weights, projected segment vectors)``, both ``[B, M, K, d]``."""
        segments = []
        for m in self.modalities:
            steps, mask = steps_or_token(
                "amw", m, encoded[m], self.modality_dims[m], m in self.sequence_modalities
            )  # [B, T_m, D_m] (a vector: one step), [B, T_m]
            segments.append(self.projections[m](segment_means(steps, mask, self.segments)))  # [B, K, d]
        h = torch.stack(segments, dim=1)  # [B, M, K, d]
        logits = torch.stack([self.scorers[m](h[:, i]) for i, m in enumerate(self.modalities)], dim=1)
        return modality_softmax(logits, self._present(encoded, h)), h

    def _present(self, encoded: Mapping[str, EncoderOutput], h: Tensor) -> Tensor:
        """``[B, M]`` booleans, False where a sequence modality's mask row is all False."""
        present = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)  # [B, M]
        for i, m in enumerate(self.modalities):
            known = _present(encoded[m])
            if known is not None:
                present[:, i] = known
        return present
