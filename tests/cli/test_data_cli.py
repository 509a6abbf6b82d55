"""``scenesense data download`` in-process: listing, JSON output, exit codes and one-line errors.

Downloads go to a local ``http.server`` serving files from ``tmp_path``; nothing leaves the machine.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scenesense.cli import main
from scenesense.data import download as dl
from tests.support.archives import tar_gz_bytes


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("Actor_01/03-01-01-01-01-01-01.wav", b"RIFF" + bytes(500))
    return buffer.getvalue()


def _entry(url: str, data: bytes) -> dl.DatasetEntry:
    file = dl.RemoteFile("speech.zip", url, hashlib.sha256(data).hexdigest(), len(data), archive="zip",
                         extract_to="audio")
    return dl.DatasetEntry("tiny", "test data", "", "", (file,))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """(URL of ``speech.zip`` on a local server, its bytes)."""
    root = tmp_path / "www"
    root.mkdir()
    data = _zip_bytes()
    (root / "speech.zip").write_bytes(data)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/speech.zip", data
    httpd.shutdown()
    httpd.server_close()


def _error_line_of(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("scenesense: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    return _error_line_of(capsys.readouterr().err)


def test_list_prints_the_registry(capsys):
    assert main(["data", "download", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("meld", "meld_raw", "meld_features", "ravdess", "ravdess_song"):
        assert f"\n{name} " in out
    assert "Audio_Speech_Actors_01-24.zip" in out and "MELD.Raw.tar.gz" in out


def test_list_json_has_one_row_per_file(capsys):
    assert main(["data", "download", "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["datasets"]
    assert len(rows) == sum(len(e.files) for e in dl.REGISTRY.values())
    assert {r["dataset"] for r in rows} == set(dl.REGISTRY)


def test_download_prints_json_and_unpacks(served, tmp_path, capsys, monkeypatch):
    url, data = served
    monkeypatch.setitem(dl.REGISTRY, "tiny", _entry(url, data))
    assert main(["data", "download", "tiny", "--dest", str(tmp_path / "d"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "tiny" and out["files"][0]["action"] == "downloaded"
    assert out["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "d" / "audio" / "Actor_01" / "03-01-01-01-01-01-01.wav").exists()


def test_unreachable_host_exits_1_with_the_from_file_hint(tmp_path, capsys, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/speech.zip"
    monkeypatch.setitem(dl.REGISTRY, "tiny", _entry(url, _zip_bytes()))
    assert main(["data", "download", "tiny", "--dest", str(tmp_path / "d")]) == 1
    line = _error_line(capsys)
    assert line.startswith(f"scenesense: error: {url}: cannot reach host") and "--from-file PATH" in line


def test_from_file_installs_offline(tmp_path, capsys, monkeypatch):
    data = _zip_bytes()
    local = tmp_path / "downloaded-by-hand.zip"
    local.write_bytes(data)
    monkeypatch.setitem(dl.REGISTRY, "tiny", _entry("http://127.0.0.1:9/speech.zip", data))
    assert main(["data", "download", "tiny", "--dest", str(tmp_path / "d"), "--from-file", str(local)]) == 0
    assert capsys.readouterr().out.startswith("installed ")
    assert (tmp_path / "d" / "speech.zip").read_bytes() == data
    assert (tmp_path / "d" / "audio" / "Actor_01" / "03-01-01-01-01-01-01.wav").exists()


def test_from_file_with_a_wrong_checksum_exits_1(tmp_path, capsys, monkeypatch):
    local = tmp_path / "speech.zip"
    local.write_bytes(b"not the archive")
    monkeypatch.setitem(dl.REGISTRY, "tiny", _entry("http://127.0.0.1:9/speech.zip", _zip_bytes()))
    assert main(["data", "download", "tiny", "--dest", str(tmp_path / "d"), "--from-file", str(local)]) == 1
    assert "speech.zip: checksum mismatch" in _error_line(capsys)
    assert not (tmp_path / "d" / "speech.zip").exists()


@pytest.mark.parametrize("argv", [["data", "download"], ["data", "download", "no_such_dataset"]])
def test_missing_or_unknown_dataset_exits_2(capsys, argv):
    assert main(argv) == 2
    assert "download" in _error_line(capsys)


def test_from_file_that_is_not_an_archive_exits_1_and_records_nothing(tmp_path, capsys):
    """Issue 17, defect 11: a CSV passed for MELD.Features.Models.tar.gz is neither kept nor trusted."""
    dest, bad, good = tmp_path / "d", tmp_path / "some.csv", tmp_path / "MELD.Features.Models.tar.gz"
    bad.write_bytes(b"Sr No.,Utterance,Speaker\r\n1,hello,Joey\r\n")
    assert main(["data", "download", "meld_features", "--dest", str(dest), "--from-file", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and _error_line_of(err) == (f"scenesense: error: {bad}: not a tar archive "
                                                               f"(or one damaged at its start); nothing was "
                                                               f"installed or recorded")
    records = dest / dl.CHECKSUMS
    assert not records.exists() or "MELD.Features.Models.tar.gz" not in json.loads(records.read_text())
    assert not (dest / "MELD.Features.Models.tar.gz").exists() and bad.exists()
    good.write_bytes(tar_gz_bytes({"MELD.Features.Models/features/text.pkl": b"x"}))
    assert main(["data", "download", "meld_features", "--dest", str(dest), "--from-file", str(good)]) == 0
    assert capsys.readouterr().out.startswith("installed ")
    assert (dest / "MELD.Features.Models" / "features" / "text.pkl").read_bytes() == b"x"
    record = json.loads(records.read_text())["MELD.Features.Models.tar.gz"]
    assert record["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest() and record["extracted_to"] == "."


def test_install_removes_the_stale_temp_of_a_killed_checksum_write(tmp_path, capsys, monkeypatch):
    from scenesense.utils.io import STALE_TEMP_SECONDS

    dest = tmp_path / "d"
    dest.mkdir()
    killed = dest / f".{dl.CHECKSUMS}.k1ll3d.tmp"
    killed.write_text("{")
    then = killed.stat().st_mtime - 2 * STALE_TEMP_SECONDS
    os.utime(killed, (then, then))
    data = _zip_bytes()
    local = tmp_path / "speech.zip"
    local.write_bytes(data)
    monkeypatch.setitem(dl.REGISTRY, "tiny", _entry("http://127.0.0.1:9/speech.zip", data))
    assert main(["data", "download", "tiny", "--dest", str(dest), "--from-file", str(local)]) == 0
    assert not killed.exists() and (dest / dl.CHECKSUMS).is_file()
