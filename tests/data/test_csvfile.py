"""CSV readers of user files: fields longer than Python's default csv limit, and no raw ``_csv.Error``."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scenesense.data.csvfile import CsvRows, allow_fields_up_to
from scenesense.data.meld import read_meld_csv
from scenesense.data.validation import DataFormatError
from scenesense.datasets.openface import read_openface_csv
from scenesense.datasets.ravdess_files import read_clip_table
from scenesense.datasets.table import read_feature_table, read_labels_csv
from scenesense.extraction.manifest import read_manifest_csv
from scenesense.predict import read_manifest
from scenesense.streaming import read_conversation_csv
from tests.support.meld import MELD_ROWS, render_meld_csv

DEFAULT_LIMIT = 131_072
HUGE = "word " * 40_000  # 200,000 characters: above the csv module's default field limit


@pytest.fixture(autouse=True)
def default_field_limit() -> Iterator[None]:
    """Each test starts from Python's default limit, so no test passes thanks to another one."""
    before = csv.field_size_limit(DEFAULT_LIMIT)
    yield
    csv.field_size_limit(before)


def _meld_with_huge_text(tmp_path: Path) -> Path:
    rows = [list(r) for r in MELD_ROWS]
    rows[2][1] = HUGE
    path = tmp_path / "dev_sent_emo.csv"
    path.write_bytes(render_meld_csv(rows))
    return path


def test_a_meld_utterance_over_the_csv_field_limit_is_read_whole(tmp_path):
    utterances = read_meld_csv(_meld_with_huge_text(tmp_path))
    assert [len(u.text) for u in utterances][2] == len(HUGE)
    assert [u.id for u in utterances] == [f"dia{r[5]}_utt{r[6]}" for r in MELD_ROWS]


def test_a_conversation_utterance_over_the_csv_field_limit_is_read_whole(tmp_path):
    conversation = read_conversation_csv(_meld_with_huge_text(tmp_path))
    assert len(conversation[2].text) == len(HUGE)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# Every reader of a user CSV, given a file with one 200k-character cell: (name, call).
READERS: list[tuple[str, Callable[[Path], object]]] = [
    ("predict manifest", lambda tmp: read_manifest(_write(tmp, "m.csv", f"id,text\na,\"{HUGE}\"\n"))),
    ("extract manifest", lambda tmp: read_manifest_csv(_write(tmp, "m.csv", f"id,text\na,\"{HUGE}\"\n"))),
    ("table labels", lambda tmp: read_labels_csv(_write(tmp, "l.csv", f"id,label\na,{HUGE}\n"))),
    ("table features", lambda tmp: read_feature_table(_write(tmp, "f.csv", f"id,x\na,{HUGE}\n"), "id", {"a"})),
    ("openface", lambda tmp: read_openface_csv(_write(tmp, "c.csv", f"frame, success, AU01_r\n1, 1, {HUGE}\n"))),
    ("ravdess table", lambda tmp: read_clip_table(_write(tmp, "t.csv", f"file,AU01_r\n{HUGE},1\n"))),
]


@pytest.mark.parametrize(("name", "read"), READERS, ids=[name for name, _ in READERS])
def test_every_user_csv_reader_takes_a_huge_field_without_a_raw_csv_error(tmp_path, name, read):
    try:
        read(tmp_path)
    except DataFormatError as err:  # the cell may be invalid for the format, but the file was read
        assert "field limit" not in str(err)
    except csv.Error as err:  # pragma: no cover - the defect
        pytest.fail(f"{name}: raw csv error {err}")


def test_the_field_limit_is_only_raised_and_never_at_import():
    import importlib

    import scenesense.data.csvfile
    import scenesense.data.meld

    importlib.reload(scenesense.data.meld)
    importlib.reload(scenesense.data.csvfile)
    assert csv.field_size_limit() == DEFAULT_LIMIT
    allow_fields_up_to(10)
    assert csv.field_size_limit() == DEFAULT_LIMIT
    allow_fields_up_to(500_000)
    assert csv.field_size_limit() == 500_001
    allow_fields_up_to(2**40)
    assert csv.field_size_limit() == 2**31 - 1


def test_a_csv_error_names_the_file_and_the_line_where_the_row_starts():
    text = 'a,b\n1,2\n3,"x\ny"z\n'
    rows = CsvRows(csv.reader(io.StringIO(text, newline=""), strict=True), Path("in.csv"))
    assert next(rows) == ["a", "b"] and next(rows) == ["1", "2"] and rows.record_line == 2
    with pytest.raises(DataFormatError, match=r"^in\.csv: line 3: not a valid CSV row \(.*'\"'.*\)$"):
        next(rows)
