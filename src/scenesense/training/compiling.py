"""Optional ``torch.compile`` of the model being trained (``trainer.compile``), with an eager fallback.

The model is compiled before Fabric sets it up (Fabric keeps the compiled wrapper around its own
and saves the original module's weights, so checkpoints are the same with and without
compilation). Compilation can fail in three places, and none of them stops a run:

* this Python or platform has no TorchDynamo (``torch._dynamo.is_dynamo_supported()`` is False):
  a warning, and the model trains eagerly;
* the backend fails on a part of the model (no C++ compiler for ``inductor`` on CPU, an operator
  it cannot lower, ...): that part runs eagerly and PyTorch logs the error as a warning
  (`eager_fallback`, TorchDynamo's ``suppress_errors`` for the duration of the fit);
* a backend name that does not exist is a `ConfigError` before anything is trained.

A compiled run is not the eager run of the same seed: compiled kernels round differently and
``inductor`` draws dropout masks from its own generator, so scores differ as between two seeds
(on CPU, measured by ``benchmarks/compile_speed.py``). A killed compiled run resumes compiled.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
import torch._dynamo
from torch import nn

from scenesense.config import ConfigError, TrainerConfig

log = logging.getLogger(__name__)


def check_compile_config(cfg: TrainerConfig) -> None:
    """Raise `ConfigError` when ``compile`` is on and ``compile_backend`` names no TorchDynamo backend."""
    if not cfg.compile:
        return
    backends = torch._dynamo.list_backends(exclude_tags=())
    if cfg.compile_backend not in backends:
        raise ConfigError(f"unknown trainer.compile_backend {cfg.compile_backend!r}; torch.compile knows "
                          f"{', '.join(backends)}")


def compile_model(model: nn.Module, backend: str) -> nn.Module:
    """``torch.compile(model, backend=backend)``, or ``model`` itself where TorchDynamo is unsupported.

    Args:
        model: the model to train.
        backend: a TorchDynamo backend, e.g. ``"inductor"``.

    Returns:
        The compiled wrapper (its ``_orig_mod`` is ``model``), or ``model`` with a warning.
    """
    if not torch._dynamo.is_dynamo_supported():
        log.warning("trainer.compile: torch.compile is not supported on this platform or Python; "
                    "training without compilation")
        return model
    return torch.compile(model, backend=backend)


@contextlib.contextmanager
def eager_fallback(enabled: bool) -> Iterator[None]:
    """While active (and ``enabled``), a part of the model that fails to compile runs eagerly."""
    if not enabled:
        yield
        return
    with torch._dynamo.config.patch(suppress_errors=True):
        yield
