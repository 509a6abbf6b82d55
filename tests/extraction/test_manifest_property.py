"""Property tests: the manifest readers on arbitrary bytes.

Whatever the bytes, a reader returns rows or raises the package's one-line error (a
``ValueError`` naming the file).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenesense.data.labels import LabelSpace
from scenesense.extraction.manifest import read_manifest_csv
from scenesense.predict import read_manifest

COLUMNS = [
    "id",
    "split",
    "label",
    "text",
    "audio",
    "video",
    "media",
    "dialogue_id",
    "position",
    "speaker",
    "x",
]
CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "train", "dev", "a", "b", "-1", "3", "1e400", "nan", '"', "\n", "a,b", "\x00"]),
)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def manifests(draw: st.DrawFn) -> bytes:
    """CSV bytes: a random header from the real columns (repeats and unknowns allowed), random rows,
    sometimes raw random bytes, a BOM, a huge cell or a cut-off quote."""
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.binary(max_size=300))
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=6))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(header) + 1), max_size=6))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    if draw(st.booleans()):
        text += '"unterminated,' + "y" * draw(st.sampled_from([1, 200_000]))
    return (("\ufeff" if draw(st.booleans()) else "") + text).encode(
        draw(st.sampled_from(["utf-8", "utf-16"]))
    )


def _one_line_error_naming(path: Path, err: Exception) -> None:
    assert isinstance(err, ValueError), f"{type(err).__name__}: {err}"
    assert str(path.name) in str(err) and str(err).strip()


@SETTINGS
@given(raw=manifests())
def test_extract_manifest_reader_returns_rows_or_one_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("m") / "manifest.csv"
    path.write_bytes(raw)
    try:
        manifest = read_manifest_csv(path, label_space=LabelSpace(("a", "b")))
    except Exception as err:  # noqa: BLE001 - the property: only the package's error, naming the file
        _one_line_error_naming(path, err)
    else:
        ids = [item.id for item in manifest.items]
        assert len(ids) == len(set(ids)) and all(ids)


@SETTINGS
@given(raw=manifests())
def test_predict_manifest_reader_returns_items_or_one_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("m") / "manifest.csv"
    path.write_bytes(raw)
    try:
        items = read_manifest(path)
    except Exception as err:  # noqa: BLE001
        _one_line_error_naming(path, err)
    else:
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids))
