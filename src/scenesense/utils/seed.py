"""Seeding of every random number generator a run uses."""

from __future__ import annotations

import random

import numpy as np
import torch

_MAX_SEED = 2**32 - 1  # numpy accepts seeds in [0, 2**32 - 1]


def seed_everything(seed: int) -> dict[str, int]:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and every CUDA device).

    Unlike ``lightning_fabric.utilities.seed.seed_everything`` this writes no environment
    variables. Data-loader order is seeded separately by the trainer (a generator per epoch).

    Args:
        seed: an integer in ``[0, 2**32 - 1]``.

    Returns:
        The seed applied to each library, e.g. ``{"python": 0, "numpy": 0, "torch": 0}`` (plus
        ``"cuda"`` when CUDA is available).

    Raises:
        ValueError: if ``seed`` is not an integer in range.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, {_MAX_SEED}], got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    seeded = {"python": seed, "numpy": seed, "torch": seed}
    if torch.cuda.is_available():
        seeded["cuda"] = seed
    return seeded


def derive_seed(*keys: int) -> int:
    """Return a well-mixed 32-bit seed for the tuple ``keys`` (e.g. ``(seed, epoch)``).

    Nearby keys give unrelated streams, and the result depends only on ``keys``, never on how
    much randomness was drawn before.
    """
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed.

    Torch already gives each worker its own seed; without this, forked workers would share the
    parent's numpy and Python streams.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
