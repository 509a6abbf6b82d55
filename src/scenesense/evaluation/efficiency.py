"""What a trained model costs: size, FLOPs, latency, throughput, peak memory and training time.

`profile_run` loads a finished run, builds input batches and measures, in this order:

- **parameters**: total and trainable element counts.
- **latency**: per batch size, ``warmup`` untimed forward passes, then ``repeats`` timed ones
  (``time.perf_counter`` around the call; on CUDA the device is synchronised before and after),
  in eval mode under ``torch.no_grad`` (PyTorch's fused inference paths stay on, as in real use).
  Reported as the median and the 90th percentile (linear interpolation) in milliseconds. Input
  batches are already on the device: host-to-device copies are not timed. Throughput is the
  largest batch size divided by its median latency.
- **peak memory** of one more forward pass per batch size, after the timing (so one-time costs
  such as loading kernels are paid already), in MiB above the level just before them: weights
  and input batches are in place, so this is the forward passes' working memory.
  On CUDA: ``torch.cuda.max_memory_allocated`` minus ``torch.cuda.memory_allocated`` at the
  start (tensors only; the caching allocator's reserve is not counted). On CPU: the kernel's
  peak resident set size (``VmHWM``), reset with ``/proc/self/clear_refs`` (Linux >= 4.0) just
  before, minus the resident size then, after glibc's ``malloc_trim`` has handed freed heap
  memory back (else a model profiled after another reuses its freed pages and shows almost
  nothing). Resident size is a page-level measure shared with anything else the process does
  meanwhile, so treat small values (about 1 MiB) as noise. Where the peak cannot be reset
  (not Linux, or ``/proc`` read-only) it is ``None`` rather than a guess: ``ru_maxrss`` is a
  process-lifetime peak and ``tracemalloc`` does not see torch's allocations.
- **FLOPs**: counted by PyTorch's own `torch.utils.flop_counter.FlopCounterMode` on one
  forward pass of the largest batch, divided by its size (padding included: a padded batch is what
  gets computed). It counts matrix products (``mm``, ``addmm``, ``bmm``, ``baddbmm``),
  convolutions and the attention kernels it knows, at 2 FLOPs per multiply-accumulate; element-wise
  work (activations, normalisation, softmax, masking) is not counted. So ``macs = flops / 2``.
  Two PyTorch details would hide work from it, so the count runs with both switched off:
  the fused ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` inference fast path (counted
  as 0 FLOPs) and the CPU flash-attention kernel of ``scaled_dot_product_attention`` (not in the
  counter's table); the count uses the math attention backend, whose two batched products per
  attention (``Q K^T`` and ``A V``) are counted in full, over padded steps too.
- **epoch time**: the mean ``epoch_time`` of the run's ``metrics.json`` history, measured during
  training (train and dev passes) with whatever thread count and device training had (not recorded).

Inputs are the first rows of the run's dev split (cycled if it has fewer rows than the largest
batch size); if the run's feature store is gone they are synthetic: standard normal features of the
run's feature dims and kinds, sequences of ``synthetic_length`` real steps, every modality present.
"""

from __future__ import annotations

import ctypes
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from scenesense.data.collate import collate
from scenesense.data.dataset import FeatureStoreDataset
from scenesense.runs import EFFICIENCY_FILE, METRICS_FILE, RunSpec, load_run
from scenesense.utils.io import write_json

log = logging.getLogger("scenesense")

SYNTHETIC_LENGTH = 50  # steps per synthetic sequence when the run's store is gone
MIB = 2.0**20
_PROC_STATUS = Path("/proc/self/status")
_PROC_CLEAR_REFS = Path("/proc/self/clear_refs")

_clock = time.perf_counter  # the only clock the timed loop reads (tests replace it)

# One model input: (inputs, masks, present) as MultimodalClassifier.forward takes them.
ModelInputs = tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of the forward computation in ``fn()``, as counted by ``FlopCounterMode``.

    ``fn`` runs once under ``torch.no_grad`` with the attention fast path disabled (with grad
    enabled instead on a torch without ``torch.backends.mha``, which also keeps it off) and the math
    attention backend forced, so that attention is counted (see the module docstring for what is
    and is not counted). A ``Linear(8, 4)`` on a ``[1, 8]`` input counts ``2 * 1 * 8 * 4 = 64``.

    Args:
        fn: a no-argument callable running one forward pass.

    Returns:
        The total FLOPs (2 per multiply-accumulate).
    """
    mha = getattr(torch.backends, "mha", None)
    switch = mha is not None and hasattr(mha, "set_fastpath_enabled")
    fastpath = mha.get_fastpath_enabled() if switch else None
    if switch:
        mha.set_fastpath_enabled(False)
    try:
        with torch.set_grad_enabled(not switch), sdpa_kernel([SDPBackend.MATH]), \
                FlopCounterMode(display=False) as counter:
            fn()
    finally:
        if switch:
            mha.set_fastpath_enabled(fastpath)
    return int(counter.get_total_flops())


def time_calls(fn: Callable[[], Any], *, repeats: int, warmup: int,
               sync: Callable[[], None] | None = None) -> list[float]:
    """Wall-clock times of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones.

    Args:
        fn: the call to time.
        repeats: timed calls (>= 1).
        warmup: untimed calls first (>= 0).
        sync: called before starting and before stopping each clock (e.g. ``torch.cuda.synchronize``).

    Returns:
        ``repeats`` durations in milliseconds, in call order.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync is not None:
            sync()
        start = _clock()
        fn()
        if sync is not None:
            sync()
        times.append((_clock() - start) * 1000.0)
    return times


def _status_kb(field: str) -> int:
    for line in _PROC_STATUS.read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise OSError(f"{_PROC_STATUS} has no {field}")


def _trim_heap() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``), so it is not silently reused."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Context manager: peak memory of the block above its start level, in MiB (see module docstring).

    Args:
        device: the device the block computes on.

    Attributes:
        mb: set on exit; ``None`` where the peak cannot be measured honestly (CPU without a
            resettable ``/proc`` peak).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mb: float | None = None
        self._base: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        _trim_heap()
        try:
            _PROC_CLEAR_REFS.write_text("5", encoding="ascii")  # resets VmHWM to the current RSS
            self._base = _status_kb("VmRSS")
        except (OSError, ValueError):
            self._base = None
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._base is None or exc_type is not None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / MIB
            return
        try:
            self.mb = max(0, _status_kb("VmHWM") - self._base) * 1024 / MIB
        except (OSError, ValueError):
            self.mb = None


def _store_split_file(spec: RunSpec, store: str | Path | None, split: str) -> Path | None:
    """The split file to read, or ``None`` when the run's own store is gone (synthetic fallback).

    Raises:
        FileNotFoundError: an explicitly given ``store`` (or its split) does not exist.
    """
    if store is not None:
        path = Path(store)
        if path.is_file():
            return path
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such store file or folder")
        if not (path / f"{split}.h5").exists():
            raise FileNotFoundError(f"{path}: no split {split!r} in the store")
        return path / f"{split}.h5"
    path = Path(spec.store) / f"{split}.h5"
    if not path.exists():
        log.warning("%s not found: profiling on synthetic inputs", path)
        return None
    return path


def _real_inputs(path: Path, cfg: Any, spec: RunSpec,  # noqa: ANN401
                 sizes: Sequence[int]) -> dict[int, ModelInputs]:
    """Per batch size ``b``, the collated first ``b`` rows of the split file (cycled if it has fewer)."""
    dataset = FeatureStoreDataset(path, cfg.modalities, spec.feature_names, speaker_norm=cfg.data.speaker_norm)
    try:
        for m in cfg.modalities:
            if dataset.feature_dims[m] != spec.features[m].dim:
                raise ValueError(f"{path}: {m} features have {dataset.feature_dims[m]} dims, the run "
                                 f"was trained on {spec.features[m].dim}")
        if len(dataset) == 0:
            raise ValueError(f"{path}: the split is empty")
        out = {}
        for b in sizes:
            batch = collate(dataset.__getitems__([i % len(dataset) for i in range(b)]),
                            task=dataset.label_space.task)
            out[b] = (batch["inputs"], batch["masks"], batch["present"])
        return out
    finally:
        dataset.close()


def synthetic_inputs(feature_dims: Mapping[str, int], feature_kinds: Mapping[str, str], batch_size: int,
                     length: int = SYNTHETIC_LENGTH, seed: int = 0) -> ModelInputs:
    """Standard normal inputs of the given dims and kinds, all steps real, every modality present.

    Args:
        feature_dims: modality -> ``D``.
        feature_kinds: modality -> ``"sequence"`` (``[B, length, D]`` and a ``[B, length]`` mask)
            or ``"vector"`` (``[B, D]``).
        batch_size: ``B``.
        length: steps per sequence.
        seed: seed of the values.

    Returns:
        ``(inputs, masks, present)``.
    """
    gen = torch.Generator().manual_seed(seed)
    inputs, masks, present = {}, {}, {}
    for m in sorted(feature_dims):
        if feature_kinds[m] == "sequence":
            inputs[m] = torch.randn(batch_size, length, feature_dims[m], generator=gen)  # [B, T, D]
            masks[m] = torch.ones(batch_size, length, dtype=torch.bool)  # [B, T]
        else:
            inputs[m] = torch.randn(batch_size, feature_dims[m], generator=gen)  # [B, D]
        present[m] = torch.ones(batch_size, dtype=torch.bool)  # [B]
    return inputs, masks, present


def _epoch_seconds(run_dir: Path) -> float | None:
    path = run_dir / METRICS_FILE
    if not path.exists():
        return None
    times = [h["epoch_time"] for h in json.loads(path.read_text(encoding="utf-8")).get("history", [])
             if h.get("epoch_time") is not None]
    return float(np.mean(times)) if times else None


def _to(x: ModelInputs, device: torch.device) -> ModelInputs:
    return tuple({m: t.to(device) for m, t in part.items()} for part in x)  # type: ignore[return-value]


def _check_arguments(batch_sizes: Sequence[int], repeats: int, warmup: int, threads: int | None) -> list[int]:
    sizes = list(dict.fromkeys(int(b) for b in batch_sizes))
    if not sizes or min(sizes) < 1:
        raise ValueError(f"batch sizes must be positive integers, got {list(batch_sizes)}")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return sizes


def profile_run(run_dir: str | Path, *, device: str = "cpu", batch_sizes: Sequence[int] = (1, 32),
                repeats: int = 20, warmup: int = 3, threads: int | None = None,
                store: str | Path | None = None, split: str | None = None,
                synthetic_length: int = SYNTHETIC_LENGTH) -> dict[str, Any]:
    """Profile a trained run's model and write ``<run_dir>/efficiency.json`` (atomically).

    Args:
        run_dir: a finished run directory.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:1"``...).
        batch_sizes: batch sizes to time (duplicates dropped, order kept).
        repeats: timed forward passes per batch size.
        warmup: untimed forward passes before them.
        threads: torch intra-op threads while profiling (``None``: leave as is); restored after.
        store: a feature store folder or split file to draw inputs from (default: the run's own
            store; if that is gone, synthetic inputs).
        split: split inside a store folder (default: the run's dev split).
        synthetic_length: steps per sequence of synthetic inputs.

    Returns:
        ``{"device", "parameters", "trainable_parameters", "macs_per_sample", "flops_per_sample",
        "latency_ms": {"<b>": {"median", "p90"}}, "throughput_per_s", "peak_memory_mb",
        "epoch_seconds", "threads", "batch_source": "dev" | "synthetic", "torch"}``; times in
        milliseconds, memory in MiB, throughput in samples per second at the largest batch size.
        ``batch_source`` is ``"dev"`` for real rows from a store split (``split``, default the
        run's dev split).

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run, or an explicit ``store`` is missing.
        ValueError: bad arguments, or store features of other dims than the run's.
        RuntimeError: ``device`` is CUDA but CUDA is not available.
    """
    sizes = _check_arguments(batch_sizes, repeats, warmup, threads)
    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    run_path = Path(run_dir)
    cfg, spec, model = load_run(run_path)
    path = _store_split_file(spec, store, split or cfg.data.dev_split)
    if path is not None:
        batches = _real_inputs(path, cfg, spec, sizes)
    else:
        batches = {b: synthetic_inputs(spec.feature_dims, spec.feature_kinds, b, synthetic_length)
                   for b in sizes}
    model = model.to(target).eval()
    batches = {b: _to(x, target) for b, x in batches.items()}
    sync = (lambda: torch.cuda.synchronize(target)) if target.type == "cuda" else None
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        used_threads = torch.get_num_threads()
        latency: dict[str, dict[str, float]] = {}
        with torch.no_grad():
            for b in sizes:
                x = batches[b]
                times = time_calls(lambda x=x: model(*x), repeats=repeats, warmup=warmup, sync=sync)
                latency[str(b)] = {"median": float(np.median(times)), "p90": float(np.percentile(times, 90))}
            with PeakMemory(target) as peak:  # after timing: libraries and kernels are loaded by now
                for b in sizes:
                    model(*batches[b])
        largest = max(sizes)
        flops = count_flops(lambda: model(*batches[largest])) / largest
    finally:
        torch.set_num_threads(previous_threads)
    median_s = latency[str(largest)]["median"] / 1000.0
    result = {
        "device": str(target),
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "macs_per_sample": flops / 2.0,
        "flops_per_sample": float(flops),
        "latency_ms": latency,
        "throughput_per_s": largest / median_s if median_s > 0 else None,
        "peak_memory_mb": peak.mb,
        "epoch_seconds": _epoch_seconds(run_path),
        "threads": used_threads,
        "batch_source": "dev" if path is not None else "synthetic",
        "torch": torch.__version__,
    }
    write_json(run_path / EFFICIENCY_FILE, result)
    return result
