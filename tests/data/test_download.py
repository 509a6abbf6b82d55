"""``scenesense.data.download`` against a local HTTP server (no outside traffic).

The server serves bytes built in ``tmp_path``, honours ``Range: bytes=N-`` requests, and can be told
to cut a response short, ignore Range, or fail with an HTTP status. Registry entries point at it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scenesense.data import download as dl
from scenesense.data.archives import ArchiveError, UnsafeArchiveError, archive_kind, safe_extract
from scenesense.data.download import ChecksumError, DatasetEntry, DownloadError, RemoteFile, download_dataset
from tests.support.archives import tar_gz_bytes

WAVS = {"Actor_01/03-01-01-01-01-01-01.wav": b"RIFF" + bytes(range(256)) * 40,
        "Actor_02/03-01-05-02-01-02-02.wav": b"RIFF" + bytes(range(255, -1, -1)) * 30}


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 with Range support and switchable faults."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut_after: dict[str, list[int]] = {}  # path -> byte counts for the next responses
        self.fail: dict[str, int] = {}  # path -> HTTP status
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                if path in server.fail:
                    self.send_error(server.fail[path])
                    return
                if path not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[path], 0
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cuts = server.cut_after.get(path)
                stop = start + cuts.pop(0) if cuts else len(body)
                self.wfile.write(body[start:stop])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _serve(server: LocalServer, name: str, data: bytes, *, known: bool = True, size: bool = True,
           archive: str = "none", extract_to: str = ".", inner: tuple[str, ...] = ()
           ) -> dict[str, DatasetEntry]:
    """Serve ``data`` as ``/<name>`` and return a one-file registry ``tiny`` pointing at it."""
    server.files[f"/{name}"] = data
    file = RemoteFile(name, server.url(f"/{name}"), _sha(data) if known else None,
                      len(data) if size else None, archive=archive,  # type: ignore[arg-type]
                      extract_to=extract_to, inner_archives=inner)
    return {"tiny": DatasetEntry("tiny", "test data", "", "", (file,))}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fresh_download_verifies_and_extracts(server, tmp_path):
    data = _zip(WAVS)
    reg = _serve(server, "speech.zip", data, archive="zip", extract_to="audio")
    result = download_dataset("tiny", tmp_path / "d", registry=reg, progress=False)
    (f,) = result.files
    assert (f.action, f.checked_against) == ("downloaded", "registry")
    assert (f.sha256, f.size) == (_sha(data), len(data))
    assert (tmp_path / "d" / "speech.zip").read_bytes() == data
    for name, content in WAVS.items():
        assert (tmp_path / "d" / "audio" / name).read_bytes() == content
    assert not list((tmp_path / "d").glob("*.part")) and not list((tmp_path / "d" / "audio").glob(".*"))
    record = json.loads((tmp_path / "d" / "checksums.json").read_text())["speech.zip"]
    assert (record["sha256"], record["extracted_to"]) == (_sha(data), "audio")
    assert server.requests == [("/speech.zip", None)]


def test_second_run_verifies_without_downloading(server, tmp_path):
    reg = _serve(server, "speech.zip", _zip(WAVS), archive="zip", extract_to="audio")
    download_dataset("tiny", tmp_path, registry=reg, progress=False)
    again = download_dataset("tiny", tmp_path, registry=reg, progress=False)
    assert again.files[0].action == "present" and len(server.requests) == 1


def test_unknown_checksum_is_recorded_then_verified(server, tmp_path):
    data = b"Sr No.,Utterance\r\n1,hi\r\n"
    reg = _serve(server, "train_sent_emo.csv", data, known=False, size=False)
    first = download_dataset("tiny", tmp_path, registry=reg, progress=False).files[0]
    assert (first.checked_against, first.sha256) == ("recorded now", _sha(data))
    assert json.loads((tmp_path / "checksums.json").read_text())["train_sent_emo.csv"]["sha256"] == _sha(data)
    second = download_dataset("tiny", tmp_path, registry=reg, progress=False).files[0]
    assert (second.action, second.checked_against) == ("present", "recorded")
    (tmp_path / "train_sent_emo.csv").write_bytes(data + b"2,changed\r\n")
    expected = f"train_sent_emo.csv: checksum mismatch: expected sha256 {_sha(data)}"
    with pytest.raises(ChecksumError, match=expected):
        download_dataset("tiny", tmp_path, registry=reg, progress=False)


def test_recorded_checksum_guards_a_later_download(server, tmp_path):
    data = b"a,b\r\n1,2\r\n"
    reg = _serve(server, "dev_sent_emo.csv", data, known=False, size=False)
    download_dataset("tiny", tmp_path, registry=reg, progress=False)
    (tmp_path / "dev_sent_emo.csv").unlink()
    server.files["/dev_sent_emo.csv"] = b"a,b\r\n1,3\r\n"  # the host now serves something else
    with pytest.raises(ChecksumError, match="recorded in"):
        download_dataset("tiny", tmp_path, registry=reg, progress=False)
    assert not (tmp_path / "dev_sent_emo.csv").exists() and not (tmp_path / "dev_sent_emo.csv.part").exists()


def test_truncated_transfer_is_resumed_with_a_range_request(server, tmp_path):
    data = _zip(WAVS)
    reg = _serve(server, "speech.zip", data, archive="zip")
    server.cut_after["/speech.zip"] = [1000]
    result = download_dataset("tiny", tmp_path, registry=reg, progress=False)
    assert server.requests == [("/speech.zip", None), ("/speech.zip", "bytes=1000-")]
    assert result.files[0].action == "resumed"
    assert (tmp_path / "speech.zip").read_bytes() == data


def test_a_kept_part_file_is_resumed_by_the_next_run(server, tmp_path):
    data = _zip(WAVS)
    reg = _serve(server, "speech.zip", data)
    server.cut_after["/speech.zip"] = [700] * dl._ATTEMPTS  # every attempt of the first run stops early
    with pytest.raises(DownloadError, match="transfer kept stopping early.*--from-file"):
        download_dataset("tiny", tmp_path, registry=reg, progress=False)
    assert (tmp_path / "speech.zip.part").stat().st_size == 700 * dl._ATTEMPTS
    assert not (tmp_path / "speech.zip").exists()
    server.requests.clear()
    download_dataset("tiny", tmp_path, registry=reg, progress=False)
    assert server.requests == [("/speech.zip", f"bytes={700 * dl._ATTEMPTS}-")]
    assert (tmp_path / "speech.zip").read_bytes() == data


def test_a_server_ignoring_range_restarts_from_zero(server, tmp_path):
    data = _zip(WAVS)
    reg = _serve(server, "speech.zip", data)
    (tmp_path / "speech.zip.part").write_bytes(b"garbage-from-an-older-run")
    server.ignore_range = True
    result = download_dataset("tiny", tmp_path, registry=reg, progress=False)
    assert server.requests == [("/speech.zip", "bytes=25-")] and result.files[0].action == "downloaded"
    assert (tmp_path / "speech.zip").read_bytes() == data


def test_checksum_mismatch_is_one_line_and_leaves_no_file(server, tmp_path):
    data = _zip(WAVS)
    reg = _serve(server, "speech.zip", data, archive="zip")
    wrong = "0" * 64
    file = reg["tiny"].files[0]
    reg = {"tiny": DatasetEntry("tiny", "", "", "", (RemoteFile(file.name, file.url, wrong, archive="zip"),))}
    with pytest.raises(ChecksumError) as err:
        download_dataset("tiny", tmp_path, registry=reg, progress=False)
    message = str(err.value)
    assert "\n" not in message and "speech.zip" in message and wrong in message and _sha(data) in message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unreachable_host_names_the_url_and_the_from_file_hint(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/speech.zip"
    reg = {"tiny": DatasetEntry("tiny", "", "", "", (RemoteFile("speech.zip", url, None),))}
    with pytest.raises(DownloadError) as err:
        download_dataset("tiny", tmp_path, registry=reg, progress=False, timeout=5)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{url}: cannot reach host (")
    assert "--from-file PATH" in message


def test_http_error_names_the_status(server, tmp_path):
    reg = _serve(server, "speech.zip", b"x")
    server.fail["/speech.zip"] = 503
    with pytest.raises(DownloadError, match=r"/speech.zip: HTTP 503 .*--from-file PATH"):
        download_dataset("tiny", tmp_path, registry=reg, progress=False)


def test_from_file_installs_the_same_result_without_traffic(server, tmp_path):
    data = _zip(WAVS)
    reg = _serve(server, "speech.zip", data, archive="zip", extract_to="audio")
    download_dataset("tiny", tmp_path / "net", registry=reg, progress=False)
    local = tmp_path / "fetched-elsewhere.zip"
    local.write_bytes(data)
    server.requests.clear()
    result = download_dataset("tiny", tmp_path / "off", registry=reg, from_files=[local], progress=False)
    assert server.requests == [] and result.files[0].action == "installed"
    tree = {p.relative_to(tmp_path / "net").as_posix() for p in (tmp_path / "net").rglob("*")}
    assert tree == {p.relative_to(tmp_path / "off").as_posix() for p in (tmp_path / "off").rglob("*")}
    assert (tmp_path / "off" / "audio" / "Actor_01" / "03-01-01-01-01-01-01.wav").exists()
    assert local.read_bytes() == data  # the user's copy is left alone


def test_from_file_with_the_wrong_content_is_refused(server, tmp_path):
    reg = _serve(server, "speech.zip", _zip(WAVS), archive="zip")
    local = tmp_path / "speech.zip"
    local.write_bytes(_zip({"Actor_01/other.wav": b"x"}))
    with pytest.raises(ChecksumError, match="speech.zip: checksum mismatch"):
        download_dataset("tiny", tmp_path / "d", registry=reg, from_files=[local], progress=False)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == []


def test_nested_archives_are_unpacked_in_place(server, tmp_path):
    inner = tar_gz_bytes({"dev_splits_complete/dia0_utt0.mp4": b"\x00mp4"})
    outer = tar_gz_bytes({"MELD.Raw/dev.tar.gz": inner, "MELD.Raw/dev_sent_emo.csv": b"a,b\r\n"})
    reg = _serve(server, "MELD.Raw.tar.gz", outer, known=False, archive="tar.gz", inner=("dev.tar.gz",))
    download_dataset("tiny", tmp_path, registry=reg, progress=False)
    assert (tmp_path / "MELD.Raw" / "dev_splits_complete" / "dia0_utt0.mp4").read_bytes() == b"\x00mp4"
    assert (tmp_path / "MELD.Raw" / "dev_sent_emo.csv").exists()
    assert not (tmp_path / "MELD.Raw" / "dev.tar.gz").exists()


@pytest.mark.parametrize(("name", "archive"), [
    ("evil.zip", _zip({"Actor_01/ok.wav": b"x", "../escaped.txt": b"x"})),
    ("evil.zip", _zip({"/tmp/absolute.txt": b"x"})),
    ("evil.tar.gz", tar_gz_bytes({"ok.txt": b"x", "sub/../../escaped.txt": b"x"})),
    ("evil.tar.gz", tar_gz_bytes({"/abs/escaped.txt": b"x"})),
    ("evil.tar.gz", tar_gz_bytes({}, {"link": ("../../outside", tarfile.SYMTYPE)})),
    ("evil.tar.gz", tar_gz_bytes({}, {"link": ("/etc/passwd", tarfile.SYMTYPE)})),
    ("evil.tar.gz", tar_gz_bytes({}, {"hard": ("../outside", tarfile.LNKTYPE)})),
])
def test_path_traversal_members_are_refused(tmp_path, name, archive):
    path = tmp_path / name
    path.write_bytes(archive)
    target = tmp_path / "out" / "inner"
    with pytest.raises(UnsafeArchiveError, match=f"{name}: member .*refusing to extract"):
        safe_extract(path, target)
    assert list(target.iterdir()) == [] and not (tmp_path / "out" / "escaped.txt").exists()


def test_path_traversal_in_a_download_leaves_the_archive_unextracted(server, tmp_path):
    reg = _serve(server, "evil.zip", _zip({"../escaped.txt": b"x"}), archive="zip", extract_to="x")
    with pytest.raises(UnsafeArchiveError, match="path traversal"):
        download_dataset("tiny", tmp_path, registry=reg, progress=False)
    assert not (tmp_path / "escaped.txt").exists() and list((tmp_path / "x").iterdir()) == []


def test_a_symlink_inside_the_target_is_allowed(tmp_path):
    path = tmp_path / "ok.tar.gz"
    path.write_bytes(tar_gz_bytes({"data/a.txt": b"x"}, {"data/b.txt": ("a.txt", tarfile.SYMTYPE)}))
    safe_extract(path, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "b.txt").read_bytes() == b"x"


def test_unknown_dataset_lists_the_names():
    with pytest.raises(KeyError, match="ravdess"):
        download_dataset("nope", progress=False)


def test_registry_entries_are_well_formed():
    assert {"meld", "meld_raw", "meld_features", "ravdess", "ravdess_song"} <= set(dl.REGISTRY)
    for name, entry in dl.REGISTRY.items():
        assert entry.name == name and entry.files
        for f in entry.files:
            assert f.url.startswith("https://") and f.url.split("?")[0].endswith("/" + f.name)
            assert f.sha256 is None or (len(f.sha256) == 64 and int(f.sha256, 16) >= 0)
            assert f.archive == archive_kind(f.name)
    ravdess = [f for n in ("ravdess", "ravdess_song") for f in dl.REGISTRY[n].files]
    assert all(f.sha256 and f.md5 and f.size for f in ravdess)
    files = {r["file"] for r in dl.registry_table()}
    assert files >= {"MELD.Raw.tar.gz", "MELD.Features.Models.tar.gz", "test_sent_emo.csv"}


# ---- link chains, damaged archives, files that are not archives (issue 17, defects 10 and 11) -----

CHAIN = {"L": ("a/b/s/../../..", tarfile.SYMTYPE), "a/b/s": ("../..", tarfile.SYMTYPE)}  # L first


def _memberstar_gz_bytes(members: list[tuple[str, str, str]]) -> bytes:
    """A .tar.gz of ``(kind, name, target)`` in order; kind is file, dir, symlink or hardlink."""
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for kind, name, target in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = types[kind], target, 0o755 if kind == "dir" else 0o644
            data = f"{name}\n".encode() if kind == "file" else b""
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _escapes(target: Path) -> list[str]:
    """Paths under ``target`` (links not followed) whose real path lies outside it."""
    root = os.path.realpath(target)
    out = []
    for folder, dirs, files in os.walk(target):
        for name in dirs + files:
            real = os.path.realpath(os.path.join(folder, name))
            if os.path.commonpath([root, real]) != root:
                out.append(f"{os.path.relpath(os.path.join(folder, name), target)} -> {real}")
    return out


def test_a_link_chain_through_a_later_link_is_refused(tmp_path):
    path = tmp_path / "chain.tar.gz"
    path.write_bytes(tar_gz_bytes({}, CHAIN))
    target = tmp_path / "out" / "dest"
    with pytest.raises(UnsafeArchiveError, match=r"chain.tar.gz: member 'L' links to 'a/b/s/\.\./\.\./\.\.', "
                                                 r"a path through 'a/b/s'"):
        safe_extract(path, target)
    assert list(target.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.tar.gz", "out"]


def test_a_link_chain_in_a_download_is_refused_and_nothing_is_kept(server, tmp_path):
    reg = _serve(server, "chain.tar.gz", tar_gz_bytes({"a/b/ok.txt": b"x"}, CHAIN), known=False, archive="tar.gz")
    expected = "chain.tar.gz from http://.*a path through 'a/b/s'.*nothing was installed or recorded; re-run"
    with pytest.raises(UnsafeArchiveError, match=expected):
        download_dataset("tiny", tmp_path / "d", registry=reg, progress=False)
    assert not os.path.lexists(tmp_path / "d" / "L") and sorted(os.listdir(tmp_path / "d")) == []


def test_links_inside_the_archive_are_made_whatever_their_order(tmp_path):
    members = [("symlink", "top", "a/first"), ("symlink", "a/first", "../b/second"),  # a chain of links
               ("symlink", "b/second", "data.txt"), ("file", "b/data.txt", ""),
               ("hardlink", "a/copy.txt", "b/data.txt"), ("symlink", "a/up", ".."),
               ("symlink", "loop", "loop")]
    path = tmp_path / "ok.tar.gz"
    path.write_bytes(_memberstar_gz_bytes(members))
    out = safe_extract(path, tmp_path / "out")
    assert (out / "top").read_text() == (out / "a" / "copy.txt").read_text() == "b/data.txt\n"
    assert os.path.realpath(out / "a" / "up") == os.path.realpath(out) and os.path.islink(out / "loop")
    assert _escapes(out) == []


@pytest.mark.parametrize("members", [
    [("symlink", "s", "x"), ("file", "s/inside.txt", "")],  # a member under a link
    [("file", "f", ""), ("symlink", "f", "g")],  # a name given as a file and as a link
    [("symlink", "d/l", "../../x")],
    [("hardlink", "h", "s"), ("symlink", "s", "f"), ("file", "f", "")],  # hard link to a link
    [("hardlink", "h", "missing.txt")],
    [("hardlink", "h", "/etc/passwd")],
    [("symlink", "l", "")],
])
def test_unsafe_or_inconsistent_trees_are_refused(tmp_path, members):
    path = tmp_path / "bad.tar.gz"
    path.write_bytes(_memberstar_gz_bytes(members))
    with pytest.raises(UnsafeArchiveError, match="bad.tar.gz: member .*refusing to extract"):
        safe_extract(path, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []


def test_a_folder_that_older_links_pass_through_is_not_replaced(tmp_path):
    first, second = tmp_path / "first.tar.gz", tmp_path / "second.tar.gz"
    first.write_bytes(_memberstar_gz_bytes([("dir", "d", ""), ("symlink", "x", "d/..")]))  # x -> the target itself
    second.write_bytes(_memberstar_gz_bytes([("symlink", "d", ".")]))  # would turn x into target/..
    out = safe_extract(first, tmp_path / "out")
    with pytest.raises(UnsafeArchiveError, match="member 'd' would replace the folder"):
        safe_extract(second, out)
    assert (out / "d").is_dir() and not (out / "d").is_symlink() and _escapes(out) == []


def _path(*last: str) -> st.SearchStrategy[str]:
    """Up to two folders ``a``/``b`` then one of ``last``."""
    return st.builds(lambda folders, name: "/".join([*folders, name]),
                     st.lists(st.sampled_from(["a", "b"]), max_size=2), st.sampled_from(last))


_TARGET = st.builds(lambda lead, steps: lead + "/".join(steps), st.sampled_from(["", "", "", "", "/"]),
                    st.lists(st.sampled_from(["..", "..", ".", "", "a", "b", "s", "L"]),
                             min_size=1, max_size=6))
_FILE = st.tuples(st.sampled_from(["file", "dir"]), _path("a", "b", "f"), st.just(""))


@st.composite
def _trees(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    """Files and folders, then symlinks and hard links (often to those files), in a random order."""
    files = draw(st.lists(_FILE, min_size=1, max_size=5))
    known = st.sampled_from([name for kind, name, _ in files if kind == "file"] or ["f"])
    symlink = st.tuples(st.just("symlink"), _path("s", "L", "s", "L", "a"),
                        _TARGET | _path("a", "f", "s", "L"))
    hardlink = st.tuples(st.just("hardlink"), _path("h", "s"), st.one_of(known, known, known, _TARGET))
    links = draw(st.lists(symlink | hardlink, max_size=5))
    members = draw(st.permutations(files + links))
    return list({name: (kind, name, target) for kind, name, target in members}.values())  # unique names


@settings(max_examples=150, deadline=None)
@given(_trees())
@example([("symlink", "L", "a/b/s/../../.."), ("symlink", "a/b/s", "../..")])
@example([("symlink", "s", "a"), ("dir", "a", ""), ("symlink", "s/x", "../../..")])
def test_extraction_never_leaves_a_path_outside_the_target(members):
    """Random trees of files, folders and link chains: refused with nothing left, or all inside.

    Names are unique here; names given twice are refused by ``_clash`` (tested above).
    """
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        archive, target = base / "a.tar.gz", base / "out" / "t"
        archive.write_bytes(_memberstar_gz_bytes(members))
        try:
            safe_extract(archive, target)
        except ArchiveError as err:
            assert "\n" not in str(err) and str(err).startswith(f"{archive}: ")
            assert os.listdir(target) == []
        else:
            assert _escapes(target) == []
        assert sorted(os.listdir(base)) == ["a.tar.gz", "out"] and os.listdir(base / "out") == ["t"]


def _bad_crc_zip() -> bytes:
    data = bytearray(_zip({"a.wav": b"RIFF" + bytes(200)}))  # stored: the payload is verbatim
    at = data.index(b"RIFF")
    data[at + 10] ^= 0xFF
    return bytes(data)


def _specialtar_gz_bytes(kind: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("dev/thing")
        info.type = kind
        tf.addfile(info)
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "data", "message"), [
    ("x.tar.gz", b"Sr No.,Utterance\r\n1,hi\r\n", "not a tar archive"),
    ("x.tar.gz", b"", "not a tar archive"),
    ("x.tar.gz", tar_gz_bytes({"a.txt": bytes(range(256)) * 400})[:-200], "damaged tar.gz archive"),  # truncated gzip
    ("x.tar.gz", tar_gz_bytes({"a.txt": b"x"})[:10] + bytes(300), "damaged tar.gz archive|not a tar archive"),
    ("x.zip", b"a,b\n1,2\n", "not a zip archive"),
    ("x.zip", _bad_crc_zip(), "damaged zip archive .*CRC"),
    ("x.tar.gz", tar_gz_bytes({"/abs.txt": b"x"}), "absolute path"),
    ("x.tar.gz", _specialtar_gz_bytes(tarfile.CHRTYPE), "device or fifo"),
    ("x.tar.gz", _specialtar_gz_bytes(tarfile.FIFOTYPE), "device or fifo"),
])
def test_every_archive_problem_is_one_archive_error(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ArchiveError, match=message) as err:
        safe_extract(path, tmp_path / "out")
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{path}: ")
    assert os.listdir(tmp_path / "out") == []


def test_a_non_archive_is_neither_installed_nor_recorded(server, tmp_path):
    data = b"Sr No.,Utterance\r\n1,hi\r\n"
    reg = _serve(server, "feat.tar.gz", data, known=False, size=False, archive="tar.gz")
    local = tmp_path / "some.csv"
    local.write_bytes(data)
    expected = f"^{local}: not a tar archive.*nothing was installed or recorded$"
    with pytest.raises(ArchiveError, match=expected):
        download_dataset("tiny", tmp_path / "d", registry=reg, from_files=[local], progress=False)
    with pytest.raises(ArchiveError, match="^feat.tar.gz from http://.*: not a tar archive"):
        download_dataset("tiny", tmp_path / "d", registry=reg, progress=False)
    assert os.listdir(tmp_path / "d") == [] and local.read_bytes() == data
    server.files["/feat.tar.gz"] = good = tar_gz_bytes({"f/x.pkl": b"x"})  # the host is fixed: the next run succeeds
    (f,) = download_dataset("tiny", tmp_path / "d", registry=reg, progress=False).files
    assert f.sha256 == _sha(good) and (tmp_path / "d" / "f" / "x.pkl").read_bytes() == b"x"


def test_an_installed_file_that_does_not_unpack_is_deleted_with_its_record(server, tmp_path):
    """A bad file trusted by an older version is not trusted forever: the next run removes it."""
    data = b"a,b\r\n1,2\r\n"
    reg = _serve(server, "feat.tar.gz", data, known=False, archive="tar.gz")
    (tmp_path / "feat.tar.gz").write_bytes(data)
    (tmp_path / "checksums.json").write_text(json.dumps({"feat.tar.gz": {"sha256": _sha(data)}}))
    with pytest.raises(ArchiveError, match="feat.tar.gz: not a tar archive.*deleted it and its record"):
        download_dataset("tiny", tmp_path, registry=reg, progress=False)
    assert not (tmp_path / "feat.tar.gz").exists()
    assert json.loads((tmp_path / "checksums.json").read_text()) == {}
