"""Whether a finished split file may be reused: the inputs and parameters it records, compared.

A converter that reuses finished split files records what each was made from (input file
fingerprints, parameters, extractor provenance) as ``source["identity"]``; `stale_reason` says
why a file cannot be reused, in one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scenesense.config import diff_mappings
from scenesense.data.store import StoreError, open_store_split


def stale_reason(path: str | Path, identity: Mapping[str, Any]) -> str | None:
    """Why the split file at ``path`` cannot be reused for inputs and parameters ``identity``.

    A converter that reuses finished split files records what each was made from (input file
    fingerprints, parameters, extractor provenance) as ``source["identity"]``; a file is reusable
    only when that record equals ``identity`` (compared as JSON).

    Returns:
        ``None`` when reusable; otherwise one line: the file is absent or invalid, records no
        identity, or the differing keys with both values (``label: 'emotion' -> 'sentiment'``).
    """
    try:
        recorded = open_store_split(path).source.get("identity")
    except StoreError as err:
        return str(err)
    if recorded is None:
        return "it does not record the inputs and parameters it was made from (an older scenesense)"
    changes = diff_mappings(recorded, json.loads(json.dumps(dict(identity), sort_keys=True, default=str)),
                            show=_short)
    return "; ".join(changes) if changes else None


def _short(value: Any) -> str:  # noqa: ANN401
    """``repr`` of a value, long strings (hashes, paths) cut to 16 characters."""
    return repr(value[:16] + "...") if isinstance(value, str) and len(value) > 19 else repr(value)
