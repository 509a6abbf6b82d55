"""TMT: the Token-disentangling Mutual Transformer (Yin et al., EAAI 2024), with padding masks and AMW."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.fusions.base import FUSIONS, Fusion, steps_or_token
from scenesense.layers.attention import unmask_empty_rows
from scenesense.layers.modality_weighting import modality_softmax
from scenesense.layers.pooling import masked_mean
from scenesense.layers.positional import sinusoidal_positions
from scenesense.layers.prenorm import PreNormTransformer
from scenesense.layers.regularizers import decorrelation_loss, mmd_loss
from scenesense.types import EncoderOutput, FusionOutput

AMW_CHOICES = ("none", "static", "sample", "temporal")
AUX_LOSS_WEIGHTS: dict[str, float] = {"orthogonality": 0.01, "similarity": 1.0}
"""The published weights of TMT's auxiliary losses (alpha, beta); the task loss has weight 10 (delta)."""


def _check_args(modalities: Sequence[str], sequence_modalities: Sequence[str], amw: str,
                counts: Mapping[str, int], dropouts: Mapping[str, float]) -> None:
    """Raise ``ValueError`` naming the first invalid constructor argument of `TMTFusion`."""
    if len(modalities) < 2:
        raise ValueError(f"tmt fusion needs at least 2 modalities, got {list(modalities)}")
    if isinstance(sequence_modalities, str):
        raise ValueError(f"sequence_modalities must be a list of names, got {sequence_modalities!r}")  # noqa: TRY004
    unknown = sorted(set(sequence_modalities) - set(modalities))
    if unknown:
        raise ValueError(f"sequence modalities {unknown} are not among the fused {list(modalities)}")
    if amw not in AMW_CHOICES:
        raise ValueError(f"amw must be one of {list(AMW_CHOICES)}, got {amw!r}")
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    for name, p in dropouts.items():
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {p!r}")


def _present_rows(out: EncoderOutput, mask: Tensor) -> Tensor:
    """``[B]`` False where the modality is hidden (classifier flag) or has no real step."""
    present = mask.any(dim=1)
    return present if out.present is None else present & out.present.to(torch.bool)


@FUSIONS.register("tmt")
class TMTFusion(Fusion):
    """Disentangle shared and modality-specific tokens, then let the two groups read each other.

    For ``M >= 2`` modalities (sorted), with width ``d = dim``:

    1. each modality's steps ``[B, T_m, D_m]`` (a vector modality is one step) get dropout
       (``input_dropout``) and a ``Linear(D_m, d)`` projection; padded steps are zeroed first
       (NaN or inf there never leaks);
    2. positional information per modality: sinusoidal positions over the modality's own steps
       plus a learned embedding of the modality;
    3. ``shared_tokens`` learnable modality-invariant tokens and ``specific_tokens`` learnable
       tokens per modality are put in front of the concatenated steps (tokens first, then the
       modalities in sorted order), dropout ``embedding_dropout``, and a pre-norm transformer
       (``depth`` layers, ``num_heads`` heads of ``head_dim``, FFN ``mlp_dim``, separate q/k/v
       LayerNorms, `scenesense.layers.prenorm.PreNormTransformer`) reads them together, with
       key padding masks: padded steps and hidden modalities are never attended to;
    4. the outputs at the token positions are the invariant tokens ``[B, S, d]`` and each
       modality's specific tokens ``[B, P, d]``;
    5. AMW (``amw``): the specific tokens of modality ``m`` are multiplied by weights that are a
       softmax over modalities per feature (`scenesense.layers.modality_weighting.modality_softmax`,
       hidden modalities excluded): ``static`` learns the ``[M, d]`` logits, ``sample`` computes
       them per sample from each modality's mean specific token (one ``Linear(d, d)`` per
       modality), ``temporal`` per token (the ``j``-th specific tokens of the modalities compete);
       ``none`` leaves the tokens as they are;
    6. two mutual transformers (``mutual_depth`` layers, FFN ``mutual_mlp_dim``), each adding its
       own learned positional embeddings to both token groups: the invariant tokens attend to the
       specific ones (those of hidden modalities masked), and the specific tokens attend to the
       invariant ones; each output is mean-pooled over its tokens (the specific over those of
       present modalities) and the two are summed: ``fused`` ``[B, d]``.

    Auxiliary losses (``FusionOutput.aux_losses``, unweighted; the published weights are
    `AUX_LOSS_WEIGHTS`, also the ``aux_loss_weights`` attribute the trainer reads):
    ``orthogonality`` is the mean `scenesense.layers.regularizers.decorrelation_loss` of the
    token-averaged invariant vs each modality's specific tokens plus the mean over every pair of
    modalities' specific tokens; ``similarity`` is the mean over modalities of the
    `scenesense.layers.regularizers.mmd_loss` between the modality's projected steps (mean over
    real steps, before positions) and its specific tokens (mean). Each term uses only the rows
    where its modalities are present (none: the term is 0).

    Differences from the published code, on purpose: padding masks everywhere (``mask=False``
    turns them off to reproduce the published behaviour: every step, padded or hidden, is
    attended to and averaged); positions per modality with no maximum length instead of one
    learned table sized for one dataset; the classifier's head has a nonlinearity.

    ``modality_weights`` (with AMW): per modality ``[B, d]``, the mean over its specific tokens.

    Args:
        modality_dims: encoder output size per modality (at least two).
        sequence_modalities: which of them give sequences; the others join as one step.
        dim: width ``d`` of tokens and projections (the AMW paper uses 128, the code 256).
        shared_tokens: number of modality-invariant tokens (published: 6).
        specific_tokens: number of specific tokens per modality (published: 2).
        depth: layers of the disentangling transformer.
        num_heads: attention heads.
        head_dim: width of each head (the inner attention width is ``num_heads * head_dim``).
        mlp_dim: FFN width of the disentangling transformer.
        mutual_depth: layers of each mutual transformer.
        mutual_mlp_dim: FFN width of the mutual transformers.
        dropout: inside both transformers.
        input_dropout: on the modality steps before the projection.
        embedding_dropout: on the transformers' inputs after positions are added.
        amw: ``"none"``, ``"static"``, ``"sample"`` or ``"temporal"`` (see 5.).
        mask: honour padding and hidden modalities (``False``: the published, unmasked behaviour).

    Raises:
        ValueError: fewer than 2 modalities, unknown sequence modalities, a count below 1, a
            dropout outside ``[0, 1)`` or an unknown ``amw``.
    """

    level: ClassVar[Literal["pooled", "sequence", "decision"]] = "sequence"

    def __init__(
        self,
        modality_dims: Mapping[str, int],
        sequence_modalities: Sequence[str] = (),
        dim: int = 128,
        shared_tokens: int = 6,
        specific_tokens: int = 2,
        depth: int = 2,
        num_heads: int = 8,
        head_dim: int = 64,
        mlp_dim: int = 512,
        mutual_depth: int = 2,
        mutual_mlp_dim: int = 256,
        dropout: float = 0.5,
        input_dropout: float = 0.5,
        embedding_dropout: float = 0.1,
        amw: Literal["none", "static", "sample", "temporal"] = "none",
        mask: bool = True,
    ) -> None:
        super().__init__(modality_dims)
        counts = {"dim": dim, "shared_tokens": shared_tokens, "specific_tokens": specific_tokens, "depth": depth,
                  "num_heads": num_heads, "head_dim": head_dim, "mlp_dim": mlp_dim, "mutual_depth": mutual_depth,
                  "mutual_mlp_dim": mutual_mlp_dim}
        _check_args(self.modalities, sequence_modalities, amw, counts,
                    {"dropout": dropout, "input_dropout": input_dropout, "embedding_dropout": embedding_dropout})
        self.sequence_modalities = tuple(sorted(set(sequence_modalities)))
        self.out_dim = dim
        self.amw, self.mask = amw, bool(mask)
        self.aux_loss_weights = dict(AUX_LOSS_WEIGHTS)
        m = len(self.modalities)
        self.n_shared, self.n_specific = shared_tokens, specific_tokens
        self.input_dropout = nn.Dropout(input_dropout)
        self.projections = nn.ModuleDict({k: nn.Linear(d, dim) for k, d in self.modality_dims.items()})
        self.modality_embedding = nn.Parameter(torch.randn(m, dim) * 0.02)  # [M, d]
        self.tokens = nn.Parameter(torch.randn(shared_tokens + m * specific_tokens, dim))  # [S + M P, d]
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.disentangle = PreNormTransformer(dim, depth, num_heads, head_dim, mlp_dim, dropout)
        # mutual transformers: each with learned positions for its two token groups
        self.to_specific = PreNormTransformer(dim, mutual_depth, num_heads, head_dim, mutual_mlp_dim, dropout)
        self.to_invariant = PreNormTransformer(dim, mutual_depth, num_heads, head_dim, mutual_mlp_dim, dropout)
        self.positions = nn.ParameterDict({
            name: nn.Parameter(torch.randn(n, dim))
            for name, n in (("specific_query", m * specific_tokens), ("invariant_source", shared_tokens),
                            ("invariant_query", shared_tokens), ("specific_source", m * specific_tokens))
        })
        if amw == "static":
            self.amw_logits = nn.Parameter(torch.zeros(m, dim))  # [M, d]: uniform weights at the start
        elif amw in ("sample", "temporal"):
            self.amw_scorers = nn.ModuleDict({k: nn.Linear(dim, dim) for k in self.modalities})

    def _embed(self, encoded: Mapping[str, EncoderOutput]) -> tuple[dict[str, Tensor], dict[str, Tensor],
                                                                     dict[str, Tensor], Tensor]:
        """Per modality the projected steps ``[B, T_m, d]``, their masks ``[B, T_m]``, presence
        ``[B]``; and the transformer input with positions ``[B, T_all, d]``."""
        projected, masks, present, streams = {}, {}, {}, []
        for i, m in enumerate(self.modalities):
            out = encoded[m]
            steps, mask = steps_or_token("tmt", m, out, self.modality_dims[m], m in self.sequence_modalities)
            if self.mask:  # unmasked, as published: whatever sits in the padding is read
                steps = torch.where(mask.unsqueeze(-1), steps, torch.zeros((), dtype=steps.dtype, device=steps.device))
            projected[m] = self.projections[m](self.input_dropout(steps))  # [B, T_m, d]
            present[m] = _present_rows(out, mask)
            masks[m] = mask & present[m].unsqueeze(-1)
            table = sinusoidal_positions(steps.shape[1], self.out_dim, device=steps.device, dtype=steps.dtype)
            streams.append(projected[m] + table + self.modality_embedding[i])
        return projected, masks, present, torch.cat(streams, dim=1)

    def _weights(self, specific: Tensor, present: Tensor) -> Tensor | None:
        """AMW weights ``[B, M, P, d]`` for the specific tokens ``[B, M, P, d]`` (``None``: no AMW)."""
        if self.amw == "none":
            return None
        if self.amw == "static":
            logits = self.amw_logits[None, :, None, :].expand_as(specific)
        else:
            source = specific.mean(dim=2, keepdim=True) if self.amw == "sample" else specific  # [B, M, 1|P, d]
            logits = torch.stack([self.amw_scorers[m](source[:, i]) for i, m in enumerate(self.modalities)], dim=1)
            logits = logits.expand_as(specific)
        return modality_softmax(logits, present if self.mask else None)

    def _mutual(self, invariant: Tensor, specific: Tensor, token_mask: Tensor) -> Tensor:
        """``fused`` ``[B, d]`` from invariant ``[B, S, d]`` and specific tokens ``[B, M P, d]``."""
        pos = self.positions
        inv_query = self.embedding_dropout(invariant + pos["invariant_query"])
        spec_source = self.embedding_dropout(specific + pos["specific_source"])
        has_key = token_mask.any(dim=1, keepdim=True)  # [B, 1]
        read = self.to_specific(inv_query, spec_source, unmask_empty_rows(token_mask))  # invariant reads specific
        read = torch.where(has_key.unsqueeze(-1), read, inv_query)  # nothing to read: the query as it is
        spec_query = self.embedding_dropout(specific + pos["specific_query"])
        inv_source = self.embedding_dropout(invariant + pos["invariant_source"])
        written = self.to_invariant(spec_query, inv_source)  # specific reads invariant
        return read.mean(dim=1) + masked_mean(written, token_mask)

    def forward(self, encoded: dict[str, EncoderOutput]) -> FusionOutput:
        """Disentangle, weight, read across, pool.

        Args:
            encoded: per sequence modality ``sequence`` ``[B, T_m, D_m]`` and ``mask``
                ``[B, T_m]``; per vector modality ``pooled`` ``[B, D_m]``; ``present`` ``[B]``
                where the classifier hid a modality.

        Returns:
            ``FusionOutput(fused [B, d], modality_weights={m: [B, d]} with AMW, aux_losses=
            {"orthogonality", "similarity"})``.

        Raises:
            ValueError: if a modality is missing or unexpected, or a sequence modality has no sequence.
        """
        self.check_encoded(encoded)
        projected, masks, present, steps = self._embed(encoded)
        batch, m, p = steps.shape[0], len(self.modalities), self.n_specific
        tokens = self.tokens.unsqueeze(0).expand(batch, -1, -1)  # [B, S + M P, d]
        x = self.embedding_dropout(torch.cat([tokens, steps], dim=1))
        real = torch.cat([torch.ones(tokens.shape[:2], dtype=torch.bool, device=x.device),
                          *(masks[k] for k in self.modalities)], dim=1)  # [B, S + M P + T_all]
        x = self.disentangle(x, allowed=real if self.mask else None)
        invariant = x[:, : self.n_shared]  # [B, S, d]
        specific = x[:, self.n_shared : self.n_shared + m * p].unflatten(1, (m, p))  # [B, M, P, d]
        flags = torch.stack([present[k] for k in self.modalities], dim=1)  # [B, M]
        if not self.mask:
            flags = torch.ones_like(flags)
        weights = self._weights(specific, flags)
        weighted = specific if weights is None else weights * specific
        token_mask = flags.repeat_interleave(p, dim=1)  # [B, M P]
        fused = self._mutual(invariant, weighted.flatten(1, 2), token_mask)
        aux = self._aux_losses(invariant, specific, projected, masks, flags)
        modality_weights = None if weights is None else {
            k: weights[:, i].mean(dim=1) for i, k in enumerate(self.modalities)}
        return FusionOutput(fused=fused, modality_weights=modality_weights, aux_losses=aux)

    def _aux_losses(self, invariant: Tensor, specific: Tensor, projected: Mapping[str, Tensor],
                    masks: Mapping[str, Tensor], flags: Tensor) -> dict[str, Tensor]:
        """The unweighted orthogonality and similarity losses over the rows where their modalities are present."""
        shared = invariant.mean(dim=1)  # [B, d]
        own = specific.mean(dim=2)  # [B, M, d]
        n = len(self.modalities)
        with_invariant = [decorrelation_loss(shared, own[:, i], flags[:, i]) for i in range(n)]
        pairs = [decorrelation_loss(own[:, i], own[:, j], flags[:, i] & flags[:, j])
                 for i in range(n) for j in range(i + 1, n)]
        similarity = [mmd_loss(masked_mean(projected[k], masks[k] if self.mask else None), own[:, i], flags[:, i])
                      for i, k in enumerate(self.modalities)]
        return {"orthogonality": torch.stack(with_invariant).mean() + torch.stack(pairs).mean(),
                "similarity": torch.stack(similarity).mean()}
