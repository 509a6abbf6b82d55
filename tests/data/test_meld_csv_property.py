"""Property tests of the MELD CSV readers: any file gives utterances or one DataFormatError line.

Files are generated from random rows (texts with quotes, commas, line breaks, C1 controls,
mojibake and fields over the csv module's default limit; unknown labels; non-integer or duplicate
ids), then optionally damaged: a column dropped from the header, re-encoded as cp1252, cut at a
random byte, random bytes spliced in, or replaced by random bytes altogether.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenesense.data.labels import MELD_EMOTIONS, MELD_SENTIMENTS
from scenesense.data.meld import read_meld_csv, repair_text
from scenesense.data.validation import DataFormatError
from scenesense.streaming import read_conversation_csv
from tests.support.meld import MELD_HEADER

DEFAULT_LIMIT = 131_072
_alphabet = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
_tricky = ['"', '""', ",", "\n", "\r\n", "\r", "’", "â€™", "\x92", "\xa0", "\ufeff"]  # quotes, breaks, encodings
_piece = st.one_of(st.text(_alphabet, max_size=4), st.sampled_from(_tricky))
_text = st.builds(lambda pieces, times: "".join(pieces) * times, st.lists(_piece, max_size=4),
                  st.sampled_from([1, 1, 1, 2, 30_000]))  # 30,000 repeats: over the default field limit
_emotion = st.sampled_from([*MELD_EMOTIONS.names, "Joy", " anger ", "happy", ""])
_sentiment = st.sampled_from([*MELD_SENTIMENTS.names, "Positive", "meh", ""])
_ident = st.one_of(st.integers(0, 3).map(str), st.sampled_from(["", "x", "1.5", " 2 "]))
_row = st.tuples(st.integers(0, 9).map(str), _text, _text, _emotion, _sentiment, _ident, _ident,
                 st.just("1"), st.just("2"), st.just("0:00:01,000"), st.just("0:00:02,000"))


def _render(header: list[str], rows: list[tuple[str, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@st.composite
def meld_files(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, ...]], str]:
    """(file bytes, the rows rendered, the damage done: none, drop column, cp1252, cut, splice, random)."""
    header = list(MELD_HEADER)
    rows = draw(st.lists(_row, max_size=5))
    damage = draw(st.sampled_from(["none", "none", "drop column", "cp1252", "cut", "splice", "random"]))
    if damage == "drop column":
        header.pop(draw(st.integers(0, len(header) - 1)))
    text = _render(header, rows)
    data = ("\ufeff" if draw(st.booleans()) else "").encode() + text.encode("utf-8")
    if damage == "cp1252":
        data = text.encode("cp1252", errors="replace")
    elif damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "splice":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif damage == "random":
        data = draw(st.binary(max_size=200))
    return data, rows, damage


def _well_formed(rows: list[tuple[str, ...]]) -> bool:
    """Rows the reader must accept: integer and unique ids, known labels, at least one row."""
    if not rows or not all(r[5].strip().isdigit() and r[6].strip().isdigit() for r in rows):
        return False
    keys = {(int(r[5]), int(r[6])) for r in rows}
    known = all(r[3].strip().lower() in MELD_EMOTIONS.names and r[4].strip().lower() in MELD_SENTIMENTS.names
                for r in rows)
    return known and len(keys) == len(rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=meld_files())
def test_a_meld_csv_is_read_or_refused_with_one_line_naming_the_file(tmp_path, file):
    csv.field_size_limit(DEFAULT_LIMIT)  # each example starts from Python's default
    data, rows, damage = file
    path = tmp_path / "dev_sent_emo.csv"
    path.write_bytes(data)
    for read in (read_meld_csv, read_conversation_csv):  # convert, evaluate --csv; predict --conversation
        try:
            utterances = read(path)
        except DataFormatError as err:
            assert str(err).startswith(f"{path}: ") and "\n" not in str(err)
            assert damage != "none" or not _well_formed(rows)
            continue
        assert damage != "drop column" or read is read_conversation_csv
        if damage == "none":
            assert [u.text for u in utterances] == [repair_text(r[1]) for r in rows]
            assert [u.speaker for u in utterances] == [repair_text(r[2]).strip() for r in rows]


def test_the_property_test_reaches_huge_fields(tmp_path):
    """A guard: the strategy above can produce a field over the default limit, and it is read."""
    csv.field_size_limit(DEFAULT_LIMIT)
    rows = [("1", "ab\"c,\n" * 30_000, "Ross", "joy", "positive", "0", "0", "1", "2", "a", "b")]
    path = tmp_path / "dev_sent_emo.csv"
    path.write_bytes(_render(list(MELD_HEADER), rows).encode())
    assert read_meld_csv(path)[0].text == rows[0][1]
    assert read_conversation_csv(Path(path))[0].text == rows[0][1]
