"""Run an extractor over items: batches, checked outputs, one result per item.

`extract_items` is the one loop of every extraction path (the manifest pipeline, the RAVDESS
source's audio, MELD transcripts, ``scenesense predict``). It calls the extractor ``batch_size``
items at a time and checks every result against the extractor's outputs, so an item gets either
its float32 outputs or the `scenesense.extraction.base.ItemError` saying why it has none.
What an unexpected exception (not an ``ItemError``) does is the caller's choice: it propagates,
or, with ``on_error``, it becomes the error of the one item that raised it. A missing extra
(`scenesense.utils.extras.MissingExtraError`) is no item's fault: it always propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

import numpy as np

from scenesense.extraction.base import FeatureExtractor, ItemError, OutputSpec, check_output
from scenesense.utils.extras import MissingExtraError

Item = TypeVar("Item")
Result = dict[str, np.ndarray] | ItemError
"""One item's result: output name -> checked float32 array (``[D]`` or ``[T, D]``), or its error."""


def one_line(err: BaseException) -> str:
    """``err`` as one line: its message with whitespace collapsed; any exception other than an
    `ItemError` is prefixed with its type (``"RuntimeError: ..."``, the bare type name
    when it has no message)."""
    text = " ".join(str(err).split())
    if isinstance(err, ItemError):
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def extract_items(extractor: FeatureExtractor, items: Sequence[Item], *, batch_size: int | None = None,
                  outputs: Mapping[str, OutputSpec] | None = None,
                  on_error: Callable[[Item, Exception], ItemError] | None = None,
                  fatal: tuple[type[BaseException], ...] = (),
                  call: Callable[[list[Item]], Sequence[object]] | None = None) -> Iterator[list[Result]]:
    """Extract ``items`` in batches; yield each batch's results, one per item, in order.

    Every result must be a mapping holding exactly the extractor's declared outputs
    (`scenesense.extraction.base.FeatureExtractor.outputs`); the ones in ``outputs`` are
    checked (`scenesense.extraction.base.check_output`) and returned.

    Args:
        extractor: the extractor.
        items: what it reads, e.g. texts or media paths (anything ``call`` takes).
        batch_size: items per call; ``None``: all items in one call.
        outputs: output name -> the shape it must have; default: every declared output.
        on_error: makes an unexpected exception the error of its item. A batch that raises is
            then retried one item at a time, so only the items that raise fail; ``None``: the
            exception propagates.
        fatal: exception types that propagate even with ``on_error`` (e.g. ``MemoryError``);
            `scenesense.utils.extras.MissingExtraError` always does.
        call: the batch call; default ``extractor.extract_batch``.

    Yields:
        Per batch, per item: its checked ``outputs``, or its `ItemError`.

    Raises:
        RuntimeError: the extractor returned more or fewer results than items (without ``on_error``).
    """
    declared = dict(extractor.outputs())
    checks = dict(declared if outputs is None else outputs)
    run = call or extractor.extract_batch
    size = batch_size or max(1, len(items))
    for start in range(0, len(items), size):
        yield _run_batch(run, list(items[start:start + size]), declared, checks, on_error, fatal)


def _run_batch(run: Callable[[list[Item]], Sequence[object]], batch: list[Item],
               declared: Mapping[str, OutputSpec], checks: Mapping[str, OutputSpec],
               on_error: Callable[[Item, Exception], ItemError] | None,
               fatal: tuple[type[BaseException], ...]) -> list[Result]:
    try:
        results = list(run(batch))
        if len(results) != len(batch):
            raise RuntimeError(f"extract_batch returned {len(results)} results for {len(batch)} items")
    except (MissingExtraError, *fatal):
        raise
    except Exception as err:  # with on_error, any extractor failure is the item's
        if on_error is None:
            raise
        if len(batch) > 1:
            return [r for item in batch for r in _run_batch(run, [item], declared, checks, on_error, fatal)]
        return [on_error(batch[0], err)]
    return [_checked(result, item, declared, checks, on_error)
            for result, item in zip(results, batch, strict=True)]


def _checked(result: object, item: Item, declared: Mapping[str, OutputSpec], checks: Mapping[str, OutputSpec],
             on_error: Callable[[Item, Exception], ItemError] | None) -> Result:
    """The checked outputs of one result, or the `ItemError` it is or leads to."""
    if isinstance(result, ItemError):
        return result
    if isinstance(result, Exception):  # returned rather than raised
        if on_error is None:
            raise result
        return on_error(item, result)
    if not isinstance(result, Mapping) or set(result) != set(declared):
        got = sorted(result) if isinstance(result, Mapping) else type(result).__name__
        return ItemError(f"{item}: extractor returned {got}, expected outputs {sorted(declared)}")
    try:
        return {name: check_output(name, result[name], spec, str(item)) for name, spec in checks.items()}
    except ItemError as err:
        return err
