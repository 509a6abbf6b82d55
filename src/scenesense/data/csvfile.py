"""CSV files given by users: fields of any length, and no raw ``_csv.Error``.

Python's csv module refuses a field longer than ``csv.field_size_limit()`` (131,072 characters by
default) with a bare ``_csv.Error``. The limit is process-wide, so it is never touched at import:
`allow_fields_up_to` raises it, when a file is read, to that file's size (no field can be
longer than the file holding it) and never lowers it. `CsvRows` wraps a ``csv.reader`` or
``csv.DictReader`` so that any ``csv.Error`` becomes a `DataFormatError` naming the file and
line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from scenesense.data.validation import DataFormatError

_C_LONG_MAX = 2**31 - 1  # csv.field_size_limit takes a C long: 32 bits on Windows
Row = TypeVar("Row")


class _Reader(Protocol[Row]):
    line_num: int

    def __next__(self) -> Row: ...


def allow_fields_up_to(size: int) -> None:
    """Let the csv module read fields of up to ``size`` characters (a file's size in bytes or chars).

    ``csv.field_size_limit`` is raised to ``size`` (at most 2**31 - 1), never lowered.
    """
    limit = min(max(int(size), 0) + 1, _C_LONG_MAX)
    if limit > csv.field_size_limit():
        csv.field_size_limit(limit)


class CsvRows(Generic[Row]):
    """The rows of ``reader`` (over ``path``); a ``csv.Error`` becomes a `DataFormatError`.

    Iterate it as the reader itself (``next(rows, [])`` for a header, ``for row in rows``);
    ``line_num`` is the reader's current line, ``record_line`` the line the last row began on
    (they differ for a row with a quoted line break).

    Args:
        reader: a ``csv.reader`` or ``csv.DictReader``.
        path: the file being read, for messages.
    """

    def __init__(self, reader: _Reader[Row], path: Path) -> None:
        self._reader = reader
        self.path = Path(path)
        self.record_line = 0

    @property
    def line_num(self) -> int:
        """The line the reader has reached (1-based)."""
        return self._reader.line_num

    def __iter__(self) -> Iterator[Row]:
        return self

    def __next__(self) -> Row:
        self.record_line = self._reader.line_num + 1
        try:
            return next(self._reader)
        except csv.Error as err:
            raise DataFormatError(f"{self.path}: line {self.record_line}: not a valid CSV row "
                                  f"({err})") from None
