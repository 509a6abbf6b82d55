"""Bounded memory: write and train on a MELD-vision-size feature store, against loading it whole.

MELD's vision features (formats.md) are about 13.7k utterances x up to 174 frames x 512 floats,
~4.9 GB as a padded float32 matrix. This benchmark writes a synthetic store of that shape (random
lengths 1..174, zero padded, train + dev split files) with :class:`~scenesense.data.store.StoreWriter`
in chunks, then measures, in one process and in this order:

1. ``write``: the writer (chunked appends): payload MB/s, peak RSS;
2. ``read``: :class:`~scenesense.data.dataset.FeatureStoreDataset` + ``DataLoader`` + ``collate``
   over the train split, no model: samples/s, peak RSS;
3. ``train``: one epoch of a small vision transformer through ``scenesense.api.train`` with
   ``data.dataset=store`` (or, with ``--batches N``, N batches of forward/backward through the same
   dataset, loader and collate): samples/s, peak RSS;
4. ``baseline``: the same reader with ``in_memory=True`` (the whole ``[N, T, D]`` matrix read once),
   then the same read pass: load time, samples/s, peak RSS. This is what bounded reading avoids.

With ``--data-share B``, the share of a training step spent waiting for data: B batches of the
small model trained through the lazy dataset with ``DataLoader(num_workers=W)`` for each W of
``--workers`` (the trainer's ``trainer.num_workers``), timing the wait for each batch apart from
forward, backward and the optimizer step (the first batch, which starts the workers, is not counted).

Peak RSS per phase is sampled from ``/proc/self/status`` (VmRSS, every 10 ms); ``ru_maxrss`` is
the process-wide peak so far (the baseline runs last, so ``ru_maxrss`` after phase 3 is the bounded
peak). The run fails (exit 1) if a bounded phase exceeds ``--limit-mb`` (default 2048).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/store_memory.py             # full size, ~5 GB disk
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/store_memory.py --n 500     # a quick check
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

MB = 1 << 20


def _status_kb(field: str, source: str = "/proc/self/status") -> int | None:
    try:
        for line in Path(source).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def ru_maxrss_mb() -> float:
    """Process-wide peak resident set size so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Samples VmRSS every ``interval`` seconds in a daemon thread; :meth:`phase` gives a phase's peak."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb("VmRSS") or 0)
            time.sleep(self.interval)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def phase(self, out: dict[str, Any]) -> Iterator[None]:
        """Record ``seconds``, ``peak_rss_mb`` (sampled) and ``ru_maxrss_mb`` of the block into ``out``."""
        self.peak_kb = _status_kb("VmRSS") or 0
        start = time.perf_counter()
        yield
        out["seconds"] = time.perf_counter() - start
        self.peak_kb = max(self.peak_kb, _status_kb("VmRSS") or 0)
        out["peak_rss_mb"] = self.peak_kb / 1024
        out["ru_maxrss_mb"] = ru_maxrss_mb()


def check_disk(folder: Path, needed: int) -> None:
    """Exit with a clear message when ``folder`` has less than ``needed`` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        sys.exit(f"store_memory: not enough free disk space in {folder}: the store needs up to "
                 f"{needed / 1e9:.1f} GB, {free / 1e9:.1f} GB are free; pass --out on a larger disk "
                 f"or a smaller --n")


def write_store(out: Path, splits: dict[str, int], max_len: int, dim: int, chunk: int, seed: int) -> int:
    """Write ``<out>/<split>.h5`` with one ``vision`` sequence feature set; return payload bytes.

    Rows are ``[T_i, dim]`` float32 with ``T_i`` uniform in ``1..max_len``; at most ``chunk`` rows
    are in memory at a time.
    """
    from scenesense.data.labels import MELD_EMOTIONS
    from scenesense.data.store import FeatureSpec, StoreWriter

    rng = np.random.default_rng(seed)
    spec = FeatureSpec("vision", "sequence", dim, max_len=max_len,
                       provenance={"generator": "benchmarks/store_memory.py", "seed": seed})
    payload = 0
    for split, n in splits.items():
        with StoreWriter(out / f"{split}.h5", label_space=MELD_EMOTIONS, features={"vision": spec},
                         source={"benchmark": "store_memory", "split": split}) as writer:
            for start in range(0, n, chunk):
                b = min(chunk, n - start)
                lengths = rng.integers(1, max_len + 1, size=b)
                rows = [rng.standard_normal((int(t), dim), dtype=np.float32) for t in lengths]  # B x [T_i, D]
                labels = rng.integers(0, MELD_EMOTIONS.num_classes, size=b)
                ids = [f"dia{start + i}_utt0" for i in range(b)]
                writer.append(ids, labels, {"vision": rows}, dialogue_ids=[str(start + i) for i in range(b)],
                              positions=[0] * b)
                payload += sum(r.nbytes for r in rows)
    return payload


def read_pass(dataset: Any, batch_size: int, batches: int) -> int:  # noqa: ANN401
    """Iterate ``batches`` shuffled batches (0: an epoch) through DataLoader + collate; return samples."""
    import torch
    from torch.utils.data import DataLoader

    from scenesense.data.collate import collate

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0))
    seen = 0
    for i, batch in enumerate(loader, start=1):
        seen += len(batch["ids"])
        if batches and i >= batches:
            break
    return seen


def _model_config() -> Any:  # noqa: ANN401
    from scenesense.config import ComponentConfig, ModelConfig

    encoder = ComponentConfig("transformer", {"d_model": 64, "num_layers": 1, "num_heads": 4,
                                              "dim_feedforward": 128, "dropout": 0.1})
    return ModelConfig(sequence_encoder=encoder, out_dim=64, head_hidden_dim=64)


def train_batches(train_file: Path, batch_size: int, batches: int) -> int:
    """Forward/backward over ``batches`` batches of the lazy dataset; return samples seen."""
    import torch
    from torch.utils.data import DataLoader

    from scenesense.data.collate import collate
    from scenesense.data.dataset import FeatureStoreDataset
    from scenesense.models.builders import build_model

    torch.manual_seed(0)
    ds = FeatureStoreDataset(train_file, ["vision"])
    model = build_model(_model_config(), ["vision"], ds.feature_dims, ds.feature_kinds,
                        ds.label_space.num_outputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, collate_fn=collate)
    seen = 0
    model.train()
    for i, batch in enumerate(loader, start=1):
        out = model(batch["inputs"], batch["masks"], batch["present"])
        loss = torch.nn.functional.cross_entropy(out.logits, batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(batch["ids"])
        if i >= batches:
            break
    return seen


def data_share(train_file: Path, batch_size: int, batches: int, workers: int) -> dict[str, float]:
    """Seconds waiting for data and computing over ``batches`` batches (after a first, uncounted one)."""
    import torch
    from torch.utils.data import DataLoader

    from scenesense.data.collate import collate
    from scenesense.data.dataset import FeatureStoreDataset
    from scenesense.models.builders import build_model

    torch.manual_seed(0)
    ds = FeatureStoreDataset(train_file, ["vision"])
    model = build_model(_model_config(), ["vision"], ds.feature_dims, ds.feature_kinds,
                        ds.label_space.num_outputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loader = iter(DataLoader(ds, batch_size=batch_size, shuffle=True, collate_fn=collate, num_workers=workers,
                             generator=torch.Generator().manual_seed(0)))
    wait = compute = 0.0
    model.train()
    for i in range(batches + 1):
        start = time.perf_counter()
        batch = next(loader)
        got = time.perf_counter()
        out = model(batch["inputs"], batch["masks"], batch["present"])
        loss = torch.nn.functional.cross_entropy(out.logits, batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:  # the first batch starts the workers
            wait, compute = wait + got - start, compute + time.perf_counter() - got
    return {"workers": workers, "wait_s": wait, "compute_s": compute, "share": wait / (wait + compute),
            "samples_per_s": batches * batch_size / (wait + compute)}


def train_epoch_api(store: Path, run_dir: Path, batch_size: int) -> dict[str, Any]:
    """One epoch through ``scenesense.api.train`` (``data.dataset=store``); return its summary."""
    from scenesense import api
    from scenesense.config import DataConfig, ExperimentConfig, TrainerConfig

    cfg = ExperimentConfig(name="store_memory", modalities=("vision",),
                           data=DataConfig(dataset="store", root=str(store)), model=_model_config(),
                           trainer=TrainerConfig(epochs=1, batch_size=batch_size, progress=False),
                           output_dir=str(run_dir))
    return api.train(cfg, run_dir=run_dir / "run").metrics


def _mem_available() -> int | None:
    kb = _status_kb("MemAvailable", "/proc/meminfo")
    return None if kb is None else kb * 1024


def run(args: argparse.Namespace, out: Path, sampler: RssSampler) -> dict[str, Any]:
    """All four phases; returns the report."""
    import torch.utils.data  # noqa: F401  (import everything up front: phases time work, not imports)

    import scenesense.api  # noqa: F401
    import scenesense.models.builders  # noqa: F401
    from scenesense.data.dataset import FeatureStoreDataset

    splits = {"train": args.n, "dev": args.n_dev}
    padded = args.n * args.max_len * args.dim * 4  # the train matrix [N, T, D] float32
    report: dict[str, Any] = {"n": args.n, "n_dev": args.n_dev, "max_len": args.max_len, "dim": args.dim,
                              "padded_train_matrix_mb": padded / MB, "store": str(out)}
    phases: dict[str, dict[str, Any]] = {k: {} for k in ("write", "read", "train", "baseline")}
    report["phases"] = phases

    with sampler.phase(phases["write"]):
        payload = write_store(out, splits, args.max_len, args.dim, args.chunk, args.seed)
    w = phases["write"]
    w["payload_mb"] = payload / MB
    w["store_mb"] = sum(p.stat().st_size for p in out.glob("*.h5")) / MB
    w["mb_per_s"] = w["payload_mb"] / w["seconds"]

    train_file = out / "train.h5"
    with sampler.phase(phases["read"]):
        seen = read_pass(FeatureStoreDataset(train_file, ["vision"]), args.batch_size, args.batches)
    phases["read"].update(samples=seen, samples_per_s=seen / phases["read"]["seconds"])

    t = phases["train"]
    with sampler.phase(t):
        if args.batches:
            t.update(mode=f"{args.batches} batches (dataset + DataLoader + collate + model)",
                     samples=train_batches(train_file, args.batch_size, args.batches))
        else:
            metrics = train_epoch_api(out, out / "runs", args.batch_size)
            t.update(mode="1 epoch via scenesense.api.train (data.dataset=store), incl. dev pass",
                     samples=args.n + args.n_dev, epoch_seconds=metrics["train_seconds"])
    t["samples_per_s"] = t["samples"] / t["seconds"]
    report["bounded_peak_rss_mb"] = max(phases[k]["peak_rss_mb"] for k in ("write", "read", "train"))
    report["bounded_ru_maxrss_mb"] = ru_maxrss_mb()

    if args.data_share:
        report["data_share"] = [data_share(train_file, args.batch_size, args.data_share, w) for w in args.workers]

    b = phases["baseline"]
    available = _mem_available()
    if args.no_baseline or (available is not None and available < 1.3 * padded):
        b["skipped"] = ("--no-baseline" if args.no_baseline else
                        f"needs ~{padded / MB:.0f} MB of RAM, {available / MB:.0f} MB available")
        return report
    with sampler.phase(b):
        start = time.perf_counter()
        full = FeatureStoreDataset(train_file, ["vision"], in_memory=True)
        b["load_seconds"] = time.perf_counter() - start
        b["samples"] = read_pass(full, args.batch_size, args.batches)
        b["samples_per_s"] = b["samples"] / (time.perf_counter() - start - b["load_seconds"])
        del full
    return report


def format_report(r: dict[str, Any], limit_mb: float) -> str:
    """A short human-readable table of the report."""
    p = r["phases"]

    def row(k: str, what: str) -> str:
        q = p[k]
        return f"{k:<10} {q['seconds']:>8.1f} {q['peak_rss_mb']:>12.0f} {q['ru_maxrss_mb']:>13.0f}  {what}"

    w, b = p["write"], p["baseline"]
    bounded = r["bounded_peak_rss_mb"]
    lines = [f"store: train {r['n']} + dev {r['n_dev']} x <= {r['max_len']} x {r['dim']} float32 "
             f"(padded train matrix {r['padded_train_matrix_mb']:.0f} MB) in {r['store']}",
             f"{'phase':<10} {'seconds':>8} {'peak RSS MB':>12} {'ru_maxrss MB':>13}  throughput",
             row("write", f"{w['mb_per_s']:.1f} MB/s payload ({w['payload_mb']:.0f} MB, "
                          f"{w['store_mb']:.0f} MB on disk)"),
             row("read", f"{p['read']['samples_per_s']:.0f} samples/s ({p['read']['samples']} samples)"),
             row("train", f"{p['train']['samples_per_s']:.0f} samples/s ({p['train']['mode']})")]
    if "skipped" in b:
        lines.append(f"{'baseline':<10} skipped: {b['skipped']}")
    else:
        lines.append(row("baseline", f"{b['samples_per_s']:.0f} samples/s after a {b['load_seconds']:.1f} s "
                                     f"full load (in_memory=True)"))
        lines.append(f"bounded reading avoids {b['peak_rss_mb'] - bounded:.0f} MB of peak RSS "
                     f"({bounded:.0f} MB vs {b['peak_rss_mb']:.0f} MB)")
    for d in r.get("data_share", []):
        lines.append(f"data share, num_workers={d['workers']}: {100 * d['share']:.1f}% of each training step "
                     f"waiting for data ({d['wait_s']:.2f} s of {d['wait_s'] + d['compute_s']:.1f} s; "
                     f"{d['samples_per_s']:.0f} samples/s)")
    ok = bounded <= limit_mb
    lines.append(f"bounded peak RSS {bounded:.0f} MB (ru_maxrss {r['bounded_ru_maxrss_mb']:.0f} MB) "
                 f"{'<=' if ok else '>'} limit {limit_mb:.0f} MB: {'ok' if ok else 'FAILED'}")
    return "\n".join(lines)


def _clean(out: Path, created: bool) -> None:
    """Remove the folder if this run made it, else only what this run wrote into it."""
    if created:
        shutil.rmtree(out, ignore_errors=True)
        return
    for split in ("train", "dev"):
        (out / f"{split}.h5").unlink(missing_ok=True)
    shutil.rmtree(out / "runs", ignore_errors=True)


def main() -> int:
    """Parse options, check disk space, run the phases, print the report; 1 if the bound is exceeded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=13708, help="train samples (MELD: 9,989 + 1,109 + 2,610)")
    parser.add_argument("--n-dev", type=int, default=None, help="dev samples (default: n // 12, >= 32)")
    parser.add_argument("--max-len", type=int, default=174, help="longest sequence T")
    parser.add_argument("--dim", type=int, default=512, help="feature size D")
    parser.add_argument("--out", help="store folder (default: a temporary folder, deleted unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the store folder")
    parser.add_argument("--batches", type=int, default=0,
                        help="train/read this many batches instead of one epoch through scenesense.api.train")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data-share", type=int, default=0, metavar="B",
                        help="also time B training batches per --workers value, data wait apart (0: skip)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="DataLoader workers for --data-share")
    parser.add_argument("--chunk", type=int, default=256, help="rows per StoreWriter.append")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the whole-matrix-in-RAM baseline")
    parser.add_argument("--limit-mb", type=float, default=2048, help="bound on the bounded phases' peak RSS")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args()
    if min(args.n, args.max_len, args.dim, args.batch_size, args.chunk) < 1 or args.batches < 0:
        parser.error("--n, --max-len, --dim, --batch-size and --chunk must be >= 1, --batches >= 0")
    args.n_dev = args.n_dev if args.n_dev is not None else max(32, args.n // 12)

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="scenesense-store-memory-"))
    created = not args.out or not out.exists()  # only a folder made here is removed as a whole
    out.mkdir(parents=True, exist_ok=True)
    if list(out.glob("*.h5")) or (out / "runs").exists():
        sys.exit(f"store_memory: {out} already holds .h5 files or runs/; choose an empty --out")
    check_disk(out, int((args.n + args.n_dev) * args.max_len * args.dim * 4 * 1.1) + 200 * MB)
    sampler = RssSampler().start()
    try:
        report = run(args, out, sampler)
    finally:
        sampler.stop()
        if not args.keep:
            _clean(out, created)
    print(json.dumps(report, default=str) if args.json else format_report(report, args.limit_mb))
    return 0 if report["bounded_peak_rss_mb"] <= args.limit_mb else 1


if __name__ == "__main__":
    sys.exit(main())
