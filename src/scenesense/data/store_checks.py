"""Checks shared by the store's reader and writer: labels, sequence lengths, JSON attributes.

Every failure is a `StoreError`: one line naming the file (``where``), the first bad row
and the valid range.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from scenesense.data.labels import UNLABELLED, LabelSpace


class StoreError(ValueError):
    """A feature store file is missing, malformed, incomplete, or a row is invalid."""


def json_object(attrs: h5py.AttributeManager, name: str, where: str) -> dict[str, Any]:
    """The JSON object stored in attribute ``name`` (``{}`` when absent).

    Raises:
        StoreError: the attribute holds another JSON value.
    """
    value = json.loads(attrs.get(name, "{}"))
    if not isinstance(value, dict):
        raise StoreError(f"{where}: attribute {name!r} is not a JSON object")
    return value


def check_labels(where: str, ids: Sequence[str], labels: Sequence[float] | np.ndarray,
                 space: LabelSpace) -> np.ndarray:
    """``[N]`` labels as stored: int64 class ids in ``[0, C)`` or ``-1``, or finite float32 targets.

    Raises:
        StoreError: ``where: id <first bad id>: ...``, naming the value and the valid range.
    """
    values = np.asarray(labels)
    if space.is_classification:
        if values.dtype.kind not in "iu":
            raise StoreError(f"{where}: class ids must be integers, got dtype {values.dtype}")
        bad = np.flatnonzero((values < UNLABELLED) | (values >= space.num_classes))
        if bad.size:
            more = f"; {bad.size} rows like it" if bad.size > 1 else ""
            raise StoreError(f"{where}: id {ids[bad[0]]!r}: class id {int(values[bad[0]])} outside "
                             f"[0, {space.num_classes}) for {list(space.names)} (or {UNLABELLED} = "
                             f"unlabelled){more}")
        return values.astype(np.int64)
    if values.dtype.kind not in "iuf":
        raise StoreError(f"{where}: regression targets must be numbers, got dtype {values.dtype}")
    values = values.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise StoreError(f"{where}: id {ids[bad[0]]!r}: non-finite target {values[bad[0]]}")
    return values


def check_lengths(where: str, ids: tuple[str, ...], lengths: np.ndarray, present: np.ndarray,
                   t_max: int) -> None:
    """Sequence lengths ``[N]``: ``1..T_max`` where present, ``0`` where the modality is absent."""
    if lengths.shape != present.shape or lengths.dtype.kind not in "iu":
        raise StoreError(f"{where}: lengths is {lengths.dtype} {list(lengths.shape)}, "
                         f"expected integer [{len(ids)}]")
    bad = np.flatnonzero(np.where(present, (lengths < 1) | (lengths > t_max), lengths != 0))
    if bad.size:
        i = int(bad[0])
        expected = f"1..{t_max} (the padded length)" if present[i] else "0 (the modality is absent)"
        more = f"; {bad.size} rows like it" if bad.size > 1 else ""
        raise StoreError(f"{where}: id {ids[i]!r}: length {int(lengths[i])}, expected {expected}{more}")
