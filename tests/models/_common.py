"""Tiny configs and batches shared by the model tests."""

from __future__ import annotations

import torch

from scenesense.config import ComponentConfig, ModelConfig

B = 3
NUM_CLASSES = 7
FEATURE_DIMS = {"audio": 5, "text": 6, "vision": 4}
FEATURE_KINDS = {"audio": "vector", "text": "sequence", "vision": "sequence"}
LENGTHS = {"text": (4, 2, 3), "vision": (5, 1, 5)}


def tiny_config(fusion_name: str = "concat", **overrides) -> ModelConfig:
    fusion_params = {"num_heads": 2} if "cross_attention" in fusion_name else {}
    values = {
        "sequence_encoder": ComponentConfig(
            "transformer", {"num_layers": 1, "num_heads": 2, "dim_feedforward": 16, "dropout": 0.0}
        ),
        "out_dim": 8,
        "fusion": ComponentConfig(fusion_name, fusion_params),
        "head_hidden_dim": 4,
        "head_dropout": 0.0,
        **overrides,
    }
    return ModelConfig(**values)


def tiny_batch(modalities, seed: int = 0):
    """``(inputs, masks)`` with zero padding, for ``B`` samples."""
    g = torch.Generator().manual_seed(seed)
    inputs, masks = {}, {}
    for m in modalities:
        if FEATURE_KINDS[m] == "vector":
            inputs[m] = torch.randn(B, FEATURE_DIMS[m], generator=g)
            continue
        lengths = torch.tensor(LENGTHS[m])
        masks[m] = torch.arange(int(lengths.max())).unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
        inputs[m] = torch.randn(B, masks[m].shape[1], FEATURE_DIMS[m], generator=g) * masks[m].unsqueeze(-1)
    return inputs, masks
