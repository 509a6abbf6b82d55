"""Local Hugging Face model folders: where the transformers model is, and what identifies it.

Shared by the ``hf`` text extractor, which stores a model's hidden states, and the ``hf``
encoder, which runs the model's remaining layers on them: both find the transformers model
inside a folder the same way (`transformer_dir`), and the features record the model's
`model_identity` so that the encoder can refuse hidden states of another model. Nothing here
imports transformers.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

WEIGHT_PATTERNS = ("model.safetensors", "model-*-of-*.safetensors", "pytorch_model.bin",
                   "pytorch_model-*-of-*.bin")
"""The weight files transformers loads from a folder, safetensors first (the first pattern
group that matches any file is the model's weights)."""

_CHUNK = 1 << 22  # bytes read at a time while hashing


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when the file is missing or unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(value) if isinstance(value, dict) else {}


def transformer_dir(folder: str | Path) -> Path:
    """The transformers model inside ``folder``: itself, or a sentence-transformers Transformer module.

    A folder with a ``modules.json`` is a sentence-transformers model; its first module whose
    type ends in ``Transformer`` names the sub-folder (often ``""``: the folder itself).

    Raises:
        ValueError: ``modules.json`` is unreadable.
    """
    folder = Path(folder)
    modules = folder / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"{modules}: unreadable sentence-transformers module list ({err})") from None
        for entry in entries:
            if str(entry.get("type", "")).endswith("Transformer"):
                return folder / str(entry.get("path", ""))
    return folder


def num_layers(config: dict[str, Any]) -> int | None:
    """Transformer layers of a model from its ``config.json`` contents (``None`` if not recorded)."""
    for key in ("num_hidden_layers", "num_layers", "n_layer"):
        if isinstance(config.get(key), int):
            return int(config[key])
    return None


def weight_files(model_dir: str | Path) -> list[Path]:
    """The files holding the weights transformers loads from ``model_dir`` (sorted; empty if none)."""
    model_dir = Path(model_dir)
    for patterns in (WEIGHT_PATTERNS[:2], WEIGHT_PATTERNS[2:]):
        found = sorted({p for pattern in patterns for p in model_dir.glob(pattern) if p.is_file()})
        if found:
            return found
    return []


def model_identity(model_dir: str | Path) -> dict[str, Any]:
    """What identifies the transformers model in ``model_dir`` (`transformer_dir` of a model folder).

    Returns:
        ``{"model_type", "hidden_size", "num_layers", "weights_sha256"}``: the architecture from
        ``config.json`` and the SHA-256 of the weight files (their names and bytes, in name
        order). The same weights give the same identity wherever the folder lies; the hash is
        computed once per process for an unchanged folder.

    Raises:
        ValueError: the folder has no ``config.json`` or no weight file.
    """
    model_dir = Path(model_dir)
    config = read_json(model_dir / "config.json")
    if not config:
        raise ValueError(f"{model_dir} is not a Hugging Face model folder (no readable config.json)")
    files = weight_files(model_dir)
    if not files:
        raise ValueError(f"{model_dir} holds no model weights (model.safetensors or pytorch_model.bin)")
    stamps = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return {"model_type": config.get("model_type"), "hidden_size": config.get("hidden_size"),
            "num_layers": num_layers(config), "weights_sha256": _weights_sha256(stamps)}


@lru_cache(maxsize=32)
def _weights_sha256(stamps: tuple[tuple[str, int, int], ...]) -> str:
    """SHA-256 over ``name\\0bytes`` of each file; ``stamps`` (path, size, mtime) key the cache."""
    sha = hashlib.sha256()
    for path, _, _ in stamps:
        sha.update(Path(path).name.encode("utf-8") + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                sha.update(chunk)
    return sha.hexdigest()
