"""Running the planned batches: in this process or in a ``spawn`` process pool whose workers
rebuild each extractor once; every finished batch is journaled at once and its failures kept."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from scenesense.extraction.base import FeatureExtractor, ItemError
from scenesense.extraction.items import extract_items, one_line
from scenesense.extraction.journal import Journal, JournalEntry, journal_dir, write_shard
from scenesense.extraction.pipeline_plan import BuiltExtractor, ItemFailure, Task

_MESSAGE_CHARS = 500


def extract_batch_safely(extractor: FeatureExtractor, inputs: Sequence[str]
                         ) -> list[dict[str, np.ndarray] | str]:
    """Run ``extract_batch`` (`scenesense.extraction.items.extract_items`) and check every result.

    A batch that raises an unexpected exception is retried item by item, so only the item that
    raises fails. ``KeyboardInterrupt``/``SystemExit`` and a missing extra
    (`scenesense.utils.extras.MissingExtraError`) propagate.

    Returns:
        Per input, in order: its checked float32 outputs, or a one-line error message.
    """
    results = [r for batch in extract_items(extractor, inputs, on_error=_unexpected) for r in batch]
    return [one_line(r)[:_MESSAGE_CHARS] if isinstance(r, ItemError) else r for r in results]


def _unexpected(item: str, err: Exception) -> ItemError:
    return ItemError(one_line(err))


_WORKER_EXTRACTORS: dict[str, FeatureExtractor] = {}


def _init_worker(builds: Mapping[str, tuple[type, dict[str, Any]]], threads: int) -> None:
    """Process-pool initializer: share the thread budget, build every extractor once."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    for key, (cls, params) in builds.items():
        _WORKER_EXTRACTORS[key] = cls(**{k: v for k, v in params.items() if v is not None})


def _worker_batch(key: str, inputs: list[str]) -> list[dict[str, np.ndarray] | str]:
    return extract_batch_safely(_WORKER_EXTRACTORS[key], inputs)


def _record(task: Task, results: Sequence[dict[str, np.ndarray] | str], e: BuiltExtractor, out: Path,
            journal: Journal) -> list[ItemFailure]:
    """Journal a finished batch; return its failures."""
    good = [i for i, r in enumerate(results) if not isinstance(r, str)]
    failures = [ItemFailure(task.ids[i], task.split, task.key, str(r)) for i, r in enumerate(results)
                if isinstance(r, str)]
    if good:
        rows = [results[i] for i in good]
        shard = write_shard(journal_dir(out, task.split, e.key, e.digest), [task.ids[i] for i in good],
                             [task.fingerprints[i] for i in good], rows, e.outputs)  # type: ignore[arg-type]
        index = journal[(task.split, task.key)]
        for row, i in enumerate(good):
            lengths = {o: (int(rows[row][o].shape[0]) if spec.kind == "sequence" else 1)  # type: ignore[index]
                       for o, spec in e.outputs.items()}
            index[task.ids[i]] = JournalEntry(shard, row, task.fingerprints[i], lengths)
    return failures


def _thread_budget() -> int:
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def run_tasks(tasks: Sequence[Task], built: Mapping[str, BuiltExtractor], out: Path,
         journal: Journal, *, workers: int, progress: bool,
         resumed: int) -> list[ItemFailure]:
    """Extract every task, journaling each batch as it finishes; returns the failures."""
    from tqdm.auto import tqdm

    failures: list[ItemFailure] = []
    total = sum(len(t.ids) for t in tasks)
    with tqdm(total=total + resumed, initial=resumed, desc="extract", unit="item", disable=not progress,
              file=sys.stderr, dynamic_ncols=True) as bar:
        def finish(task: Task, results: Sequence[dict[str, np.ndarray] | str]) -> None:
            failures.extend(_record(task, results, built[task.key], out, journal))
            bar.update(len(task.ids))
            bar.set_postfix(errors=len(failures), refresh=False)

        if workers == 1 or not tasks:
            for task in tasks:
                finish(task, extract_batch_safely(built[task.key].extractor, task.inputs))
        else:
            _run_pool(tasks, built, workers, finish)
    return failures


def _run_pool(tasks: Sequence[Task], built: Mapping[str, BuiltExtractor], workers: int, finish: Any) -> None:  # noqa: ANN401
    """Run tasks in a spawn process pool, at most ``2 * workers`` batches in flight."""
    builds = {key: (e.cls, e.params) for key, e in built.items()}
    threads = max(1, _thread_budget() // workers)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(builds, threads))
    pending: dict[Future[Any], Task] = {}
    queue: Iterator[Task] = iter(tasks)
    clean = False
    try:
        def submit() -> None:
            task = next(queue, None)
            if task is not None:
                pending[pool.submit(_worker_batch, task.key, task.inputs)] = task

        for _ in range(2 * workers):
            submit()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    results = future.result()
                except BrokenProcessPool:
                    raise RuntimeError(f"a worker process died while extracting {task.key!r} for "
                                       f"{task.ids[:3]}... (out of memory, or a crash inside the extractor); "
                                       f"finished batches are kept: re-run to resume") from None
                finish(task, results)
                submit()
        clean = True
    finally:
        pool.shutdown(wait=clean, cancel_futures=True)
